/* Benchmark: audio decode at MMAudio/Ovi 16 kHz shapes: the MMAudio VAE
 * decoder (hidden 384, ch_mult 1,2,4, 20 latent channels) turns an audio
 * latent [20, L] into a log10 mel [80, 2L], and the BigVGAN vocoder (1536
 * channels, rates 4,4,2,2,2,2) turns that into 512 L samples at 16 kHz.
 * L = 157 is Ovi's 5 s clip (80384 samples, 5.024 s).
 *
 *   bench_audio [--latents L] [--dir DIR] [--threads N] [--runs N]
 *
 * Random f32 weights with the real tensor names and shapes (from
 * reel_mmaudio_vae_tensor_table, decoder only, and reel_bigvgan_tensor_table)
 * are generated deterministically into DIR once and reused, as is the latent;
 * scripts/bench_audio_torch.py reads the same files. Our mel and wave go to
 * DIR/audio_out_ours.safetensors for the comparison. Prints '#' lines,
 * "audio_seconds=X" (the clip's length) and, last, "seconds=X": the best
 * VAE-decode + vocoder time over --runs. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audio/bigvgan.h"
#include "audio/mmaudio_vae.h"
#include "tests/bench_util.h"
#include "kernels/backend.h"
#include "kernels/safetensors.h"

/* Bumped whenever what the generator writes changes, so stale files in
 * build/bench are regenerated rather than silently reused. */
#define BENCH_FORMAT "reel-bench-audio-v1"
#define SAMPLE_RATE 16000

/* The VAE table lists the whole VAE; the decoder-only file (MMAudio's
 * need_vae_encoder=False) keeps the buffers and the decoder. */
static void table_emit(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    if (strncmp(name, "encoder.", 8) != 0)
        bench_list_add(ctx, name, REEL_F32, ndim, shape);
}

struct sbuf {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            bench_die("%s", "vsnprintf failed");
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            bench_die("%s", "out of memory");
    }
}

/* --------------------------------------------------------- generators */

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* MMAudio VAE, stored as after VAE.remove_weight_norm() (as the golden
 * files; the loader skips the per-row normalisation): uniform weights with
 * each output row normalised the way the removal does, so every conv is
 * magnitude-preserving as in the trained model. The mel statistics are a
 * smooth ramp in the range of the real DATA_MEAN/STD_80D; learnable_gain 0. */
static void fill_vae(void *ctx, const struct bench_entry *e, float *v)
{
    (void)ctx;
    uint64_t s = bench_name_seed(e->name);
    if (!strcmp(e->name, "data_mean")) {
        for (int64_t i = 0; i < e->numel; i++)
            v[i] = -1.3f - 1.6f * (float)i / (float)(e->numel - 1);
    } else if (!strcmp(e->name, "data_std")) {
        for (int64_t i = 0; i < e->numel; i++)
            v[i] = 0.95f + 0.1f * bench_urand(&s);
    } else if (ends_with(e->name, "learnable_gain")) {
        v[0] = 0.0f;
    } else {
        for (int64_t i = 0; i < e->numel; i++)
            v[i] = bench_urand(&s);
        reel_mpconv_remove_weight_norm(v, e->shape[0], e->numel / e->shape[0], v);
    }
}

static double bessel_i0(double x)
{
    double sum = 1, term = 1;
    for (int k = 1; k < 60; k++) {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
    }
    return sum;
}

/* alias_free_torch's kaiser-windowed sinc (cutoff 0.25, half-width 0.3 for
 * the 2x resamplers), the buffer BigVGAN's state_dict holds. */
static void kaiser_sinc(float *out, int taps, double cutoff, double half_width)
{
    int half = taps / 2;
    double a = 2.285 * (half - 1) * M_PI * 4.0 * half_width + 7.95, beta = 0;
    if (a > 50)
        beta = 0.1102 * (a - 8.7);
    else if (a >= 21)
        beta = 0.5842 * pow(a - 21, 0.4) + 0.07886 * (a - 21);
    double sum = 0, tmp[64];
    for (int n = 0; n < taps; n++) {
        double r = taps > 1 ? 2.0 * n / (taps - 1) - 1.0 : 0.0;
        double win = bessel_i0(beta * sqrt(fmax(0.0, 1.0 - r * r))) / bessel_i0(beta);
        double t = taps % 2 == 0 ? n - half + 0.5 : n - half;
        double xx = 2 * cutoff * t;
        double sinc = xx == 0 ? 1.0 : sin(M_PI * xx) / (M_PI * xx);
        tmp[n] = 2 * cutoff * win * sinc;
        sum += tmp[n];
    }
    for (int n = 0; n < taps; n++)
        out[n] = (float)(tmp[n] / sum);
}

/* BigVGAN (plain `.weight`, as after remove_weight_norm()): convs uniform
 * in +-1/sqrt(fan-in) (PyTorch's default Conv1d bound; for the transposed
 * convs the fan-in of one output sample, in * k / stride), small biases,
 * log-scale alpha/beta near 0 (the init), the real anti-aliasing filters. */
static void fill_vocoder(void *ctx, const struct bench_entry *e, float *v)
{
    (void)ctx;
    uint64_t s = bench_name_seed(e->name);
    if (ends_with(e->name, ".filter")) {
        kaiser_sinc(v, (int)e->numel, 0.25, 0.3);
        return;
    }
    float amp;
    if (ends_with(e->name, ".alpha") || ends_with(e->name, ".beta"))
        amp = 0.1f;
    else if (ends_with(e->name, ".bias"))
        amp = 0.02f;
    else if (!strncmp(e->name, "ups.", 4)) /* [in, out, k], stride k / 2 */
        amp = 1.0f / sqrtf((float)(e->shape[0] * 2));
    else
        amp = 1.0f / sqrtf((float)(e->numel / e->shape[0]));
    for (int64_t i = 0; i < e->numel; i++)
        v[i] = amp * bench_urand(&s);
}

static void fill_normal(void *ctx, const struct bench_entry *e, float *v)
{
    (void)ctx;
    uint64_t s = bench_name_seed(e->name);
    for (int64_t i = 0; i < e->numel; i++)
        v[i] = bench_nrand(&s);
}

struct outs {
    const float *mel, *wave;
};

static void fill_out(void *ctx, const struct bench_entry *e, float *v)
{
    const struct outs *o = ctx;
    memcpy(v, strcmp(e->name, "mel") ? o->wave : o->mel, sizeof(float) * (size_t)e->numel);
}

static void int_list_json(struct sbuf *b, const char *key, const int *v, int n)
{
    sb_printf(b, "\"%s\": [", key);
    for (int i = 0; i < n; i++)
        sb_printf(b, "%s%d", i ? ", " : "", v[i]);
    sb_printf(b, "]");
}

/* Config strings: what the PyTorch side builds its modules from. */
static void vae_config_json(const struct reel_mmaudio_vae_config *c, struct sbuf *b)
{
    sb_printf(b, "{\"data_dim\": %d, \"embed_dim\": %d, \"hidden_dim\": %d, ", c->data_dim,
              c->embed_dim, c->hidden_dim);
    int_list_json(b, "ch_mult", c->ch_mult, c->n_mult);
    sb_printf(b, ", \"num_res_blocks\": %d, ", c->num_res_blocks);
    int_list_json(b, "attn_layers", c->attn_layers, c->n_attn);
    sb_printf(b, ", ");
    int_list_json(b, "down_layers", c->down_layers, c->n_down);
    sb_printf(b, ", \"kernel_size\": %d, \"clip_act\": %g, \"encoder_included\": false}",
              c->kernel_size, c->clip_act);
}

static void vocoder_config_json(const struct reel_bigvgan_config *c, struct sbuf *b)
{
    sb_printf(b, "{\"resblock\": \"1\", \"num_mels\": %d, ", c->num_mels);
    int_list_json(b, "upsample_rates", c->upsample_rates, c->n_ups);
    sb_printf(b, ", ");
    int_list_json(b, "upsample_kernel_sizes", c->upsample_kernel_sizes, c->n_ups);
    sb_printf(b, ", \"upsample_initial_channel\": %d, ", c->upsample_initial_channel);
    int_list_json(b, "resblock_kernel_sizes", c->resblock_kernel_sizes, c->n_kernels);
    sb_printf(b, ", \"resblock_dilation_sizes\": [");
    for (int j = 0; j < c->n_kernels; j++) {
        sb_printf(b, "%s[", j ? ", " : "");
        for (int d = 0; d < c->n_dilations; d++)
            sb_printf(b, "%s%d", d ? ", " : "", c->resblock_dilation_sizes[j][d]);
        sb_printf(b, "]");
    }
    sb_printf(b, "], \"activation\": \"%s\", \"snake_logscale\": %s}",
              c->snake_beta ? "snakebeta" : "snake", c->snake_logscale ? "true" : "false");
}

/* --------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    int latents = 157;
    struct bench_opts opt = {"build/bench", 2, 2};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--latents") && i + 1 < argc)
            latents = atoi(argv[++i]);
        else if (bench_common_arg(argc, argv, &i, &opt))
            continue;
        else {
            fprintf(stderr,
                    "usage: %s [--latents L] [--dir DIR] [--threads N] [--runs N]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *dir = opt.dir;
    int threads = opt.threads, runs = opt.runs;
    if (latents < 1 || threads < 1 || runs < 1)
        bench_die("%s", "--latents, --threads and --runs must be >= 1");

    struct reel_mmaudio_vae_config vcfg;
    reel_mmaudio_vae_config_16k(&vcfg);
    vcfg.encoder = 0; /* decode only: MMAudio's need_vae_encoder=False file */
    struct reel_bigvgan_config gcfg;
    reel_bigvgan_config_16k(&gcfg);

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        bench_die("cannot create %s", dir);
    char vpath[4096], gpath[4096], ipath[4096], opath[4096];
    snprintf(vpath, sizeof vpath, "%s/mmaudio_vae16k_dec_f32.safetensors", dir);
    snprintf(gpath, sizeof gpath, "%s/bigvgan16k_f32.safetensors", dir);
    snprintf(ipath, sizeof ipath, "%s/audio_latent_%d.safetensors", dir, latents);
    snprintf(opath, sizeof opath, "%s/audio_out_ours.safetensors", dir);

    struct sbuf vconf = {0}, gconf = {0};
    vae_config_json(&vcfg, &vconf);
    vocoder_config_json(&gcfg, &gconf);
    if (!bench_file_is_current(vpath, BENCH_FORMAT, vconf.p)) {
        double t0 = bench_now();
        struct bench_list l = {0};
        reel_mmaudio_vae_tensor_table(&vcfg, table_emit, &l);
        bench_write(vpath, &l, BENCH_FORMAT, vconf.p, fill_vae, NULL);
        free(l.e);
        printf("# generated %s in %.1f s\n", vpath, bench_now() - t0);
    }
    if (!bench_file_is_current(gpath, BENCH_FORMAT, gconf.p)) {
        double t0 = bench_now();
        struct bench_list l = {0};
        reel_bigvgan_tensor_table(&gcfg, REEL_BIGVGAN_PLAIN, table_emit, &l);
        bench_write(gpath, &l, BENCH_FORMAT, gconf.p, fill_vocoder, NULL);
        free(l.e);
        printf("# generated %s in %.1f s\n", gpath, bench_now() - t0);
    }
    char ishape[64];
    snprintf(ishape, sizeof ishape, "z=[%d,%d] N(0,1)", vcfg.embed_dim, latents);
    if (!bench_file_is_current(ipath, BENCH_FORMAT, ishape)) {
        struct bench_list l = {0};
        bench_list_add(&l, "z", REEL_F32, 2, (const int64_t[]){vcfg.embed_dim, latents});
        bench_write(ipath, &l, BENCH_FORMAT, ishape, fill_normal, NULL);
        free(l.e);
    }

    struct reel_err err = {0};
    struct reel_weights *vw = NULL, *gw = NULL;
    struct reel_st_file *inf = NULL;
    struct reel_backend *be = reel_backend_cpu_create(threads);
    struct reel_mmaudio_vae *vae = NULL;
    struct reel_bigvgan *voc = NULL;
    if (!be)
        bench_die("%s", "cannot create the CPU backend");
    if (reel_weights_open(vpath, &vw, &err) != REEL_OK ||
        reel_weights_open(gpath, &gw, &err) != REEL_OK ||
        reel_st_open(ipath, &inf, &err) != REEL_OK ||
        reel_mmaudio_vae_create(&vcfg, vw, 1, be, &vae, &err) != REEL_OK ||
        reel_bigvgan_create(&gcfg, gw, be, &voc, &err) != REEL_OK)
        bench_die("%s", err.msg);
    const struct reel_tensor *tz = reel_st_find(inf, "z");
    if (!tz || tz->dtype != REEL_F32)
        bench_die("%s: missing f32 z", ipath);

    int64_t T = reel_mmaudio_vae_mel_len(vae, latents), N = T * reel_bigvgan_hop(voc);
    float *mel = malloc(sizeof(float) * (size_t)(vcfg.data_dim * T));
    float *wave = malloc(sizeof(float) * (size_t)N);
    if (!mel || !wave)
        bench_die("%s", "out of memory");
    double best = 1e30, best_vae = 0, best_voc = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = bench_now();
        if (reel_mmaudio_vae_decode(vae, tz->data, latents, mel, &err) != REEL_OK)
            bench_die("%s", err.msg);
        double t1 = bench_now();
        if (reel_bigvgan_forward(voc, mel, T, wave, &err) != REEL_OK)
            bench_die("%s", err.msg);
        double t2 = bench_now();
        printf("# ours run %d: %.3f s (VAE decode %.3f s, vocoder %.3f s)\n", r + 1, t2 - t0,
               t1 - t0, t2 - t1);
        fflush(stdout);
        if (t2 - t0 < best) {
            best = t2 - t0;
            best_vae = t1 - t0;
            best_voc = t2 - t1;
        }
    }
    double mmax = 0, wmax = 0, wmean = 0;
    for (int64_t i = 0; i < vcfg.data_dim * T; i++)
        mmax = fmax(mmax, fabs(mel[i]));
    for (int64_t i = 0; i < N; i++) {
        wmax = fmax(wmax, fabs(wave[i]));
        wmean += fabs(wave[i]);
    }
    if (!isfinite(mmax) || !isfinite(wmean))
        bench_die("%s", "non-finite output");

    struct bench_list ol = {0};
    bench_list_add(&ol, "mel", REEL_F32, 2, (const int64_t[]){vcfg.data_dim, T});
    bench_list_add(&ol, "wave", REEL_F32, 1, (const int64_t[]){N});
    struct outs o = {mel, wave};
    bench_write(opath, &ol, BENCH_FORMAT, "output", fill_out, &o);
    free(ol.e);

    printf("# ours: latent [%d,%d] -> mel [%d,%lld] -> %lld samples, %d threads, best of %d "
           "(VAE %.3f s + vocoder %.3f s), max |mel| %.3g, max |wave| %.3g, mean |wave| %.3g\n",
           vcfg.embed_dim, latents, vcfg.data_dim, (long long)T, (long long)N, threads, runs,
           best_vae, best_voc, mmax, wmax, wmean / (double)N);
    printf("audio_seconds=%.4f\n", (double)N / SAMPLE_RATE);
    printf("seconds=%.4f\n", best);
    free(mel);
    free(wave);
    free(vconf.p);
    free(gconf.p);
    reel_bigvgan_destroy(voc);
    reel_mmaudio_vae_destroy(vae);
    reel_st_close(inf);
    reel_weights_close(gw);
    reel_weights_close(vw);
    reel_backend_destroy(be);
    return 0;
}
