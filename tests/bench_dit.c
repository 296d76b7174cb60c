/* Benchmark: one Wan DiT forward at Wan2.1-T2V-1.3B shapes (dim 1536, 12
 * heads, ffn 8960, 9x30x52 latent = 3510 tokens, 512x4096 context) with a
 * reduced layer count, on random bf16 weights.
 *
 *   bench_dit [--layers N] [--dir DIR] [--threads N] [--runs N]
 *
 * The weights (real tensor names, from reel_wan_dit_tensor_table) and the
 * inputs are generated deterministically into DIR once and reused; the
 * PyTorch reference (scripts/bench_dit_torch.py) reads the same files, so
 * both sides run the same numbers. Our output goes to DIR/dit_out_ours.*
 * for the comparison. Prints '#' lines and, last, "seconds=X": the best
 * forward time over --runs (the first run also warms the page cache). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kernels/backend.h"
#include "kernels/safetensors.h"
#include "stages/wan_dit.h"
#include "tests/bench_util.h"

/* Bumped whenever what the generator writes changes, so stale files in
 * build/bench are regenerated rather than silently reused. */
#define BENCH_FORMAT "reel-bench-dit-v1"

/* --------------------------------------------------------- generators */

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Scales chosen so activations stay O(1) through the layers, like a
 * trained model's and unlike N(0,1) weights: torch's default Linear init
 * range for matrices, gammas near 1, modulation at randn/sqrt(dim) as in
 * WanModel's own init (the head is not zeroed, so the output is not). */
static void fill_weight(void *ctx, const struct bench_entry *e, float *v)
{
    const int dim = *(const int *)ctx;
    uint64_t s = bench_name_seed(e->name);
    float lo = 0, amp;
    if (ends_with(e->name, "modulation")) {
        amp = sqrtf(3.0f / (float)dim);
    } else if (ends_with(e->name, ".bias")) {
        amp = 0.05f;
    } else if (e->ndim == 1) { /* norm gammas */
        lo = 1.0f;
        amp = 0.1f;
    } else {
        amp = 1.0f / sqrtf((float)(e->numel / e->shape[0]));
    }
    for (int64_t i = 0; i < e->numel; i++)
        v[i] = lo + amp * bench_urand(&s);
}

static void fill_input(void *ctx, const struct bench_entry *e, float *v)
{
    (void)ctx;
    if (!strcmp(e->name, "t")) {
        v[0] = 500.0f;
        return;
    }
    uint64_t s = bench_name_seed(e->name);
    for (int64_t i = 0; i < e->numel; i++)
        v[i] = bench_nrand(&s);
}

static void fill_copy(void *ctx, const struct bench_entry *e, float *v)
{
    memcpy(v, ctx, sizeof(float) * (size_t)e->numel);
}

static void config_json(const struct reel_wan_dit_config *c, char *buf, size_t n)
{
    snprintf(buf, n,
             "{\"model_type\": \"t2v\", \"patch_size\": [%d, %d, %d], \"text_len\": %d, "
             "\"in_dim\": %d, \"dim\": %d, \"ffn_dim\": %d, \"freq_dim\": %d, \"text_dim\": %d, "
             "\"out_dim\": %d, \"num_heads\": %d, \"num_layers\": %d, \"window_size\": [-1, -1], "
             "\"qk_norm\": true, \"cross_attn_norm\": true, \"eps\": %g}",
             c->patch[0], c->patch[1], c->patch[2], c->text_len, c->in_dim, c->dim, c->ffn_dim,
             c->freq_dim, c->text_dim, c->out_dim, c->num_heads, c->num_layers, c->eps);
}

/* --------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    int layers = 4;
    struct bench_opts opt = {"build/bench", 2, 2};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            layers = atoi(argv[++i]);
        else if (bench_common_arg(argc, argv, &i, &opt))
            continue;
        else {
            fprintf(stderr, "usage: %s [--layers N] [--dir DIR] [--threads N] [--runs N]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *dir = opt.dir;
    int threads = opt.threads, runs = opt.runs;
    if (layers < 1 || threads < 1 || runs < 1)
        bench_die("%s", "--layers, --threads and --runs must be >= 1");

    /* Wan2.1-T2V-1.3B, but `layers` blocks instead of 30. */
    struct reel_wan_dit_config cfg = {
        .model_type = REEL_WAN_T2V, .patch = {1, 2, 2}, .text_len = 512, .in_dim = 16,
        .dim = 1536, .ffn_dim = 8960, .freq_dim = 256, .text_dim = 4096, .out_dim = 16,
        .num_heads = 12, .num_layers = layers, .qk_norm = 1, .cross_attn_norm = 1, .eps = 1e-6,
    };
    const int64_t F = 9, H = 30, W = 52, CTX = 512;
    const int64_t tokens = F * (H / 2) * (W / 2);

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        bench_die("cannot create %s", dir);
    char config[1024], wpath[4096], ipath[4096], opath[4096];
    config_json(&cfg, config, sizeof config);
    snprintf(wpath, sizeof wpath, "%s/wan13b_%dl_bf16.safetensors", dir, layers);
    snprintf(ipath, sizeof ipath, "%s/dit_inputs.safetensors", dir);
    snprintf(opath, sizeof opath, "%s/dit_out_ours.safetensors", dir);

    if (!bench_file_is_current(wpath, BENCH_FORMAT, config)) {
        double t0 = bench_now();
        struct bench_list l = {0};
        reel_wan_dit_tensor_table(&cfg, bench_emit_bf16, &l);
        bench_write(wpath, &l, BENCH_FORMAT, config, fill_weight, &cfg.dim);
        free(l.e);
        printf("# generated %s in %.1f s\n", wpath, bench_now() - t0);
    }
    /* The inputs do not depend on the layer count; their config tag is the
     * shapes only. */
    char ishape[256];
    snprintf(ishape, sizeof ishape, "x=[16,%lld,%lld,%lld] t=500 context=[%lld,4096]",
             (long long)F, (long long)H, (long long)W, (long long)CTX);
    if (!bench_file_is_current(ipath, BENCH_FORMAT, ishape)) {
        struct bench_list l = {0};
        bench_list_add(&l, "x", REEL_F32, 4, (const int64_t[]){16, F, H, W});
        bench_list_add(&l, "t", REEL_F32, 1, (const int64_t[]){1});
        bench_list_add(&l, "context", REEL_F32, 2, (const int64_t[]){CTX, 4096});
        bench_write(ipath, &l, BENCH_FORMAT, ishape, fill_input, NULL);
        free(l.e);
    }

    struct reel_err err = {0};
    struct reel_weights *w = NULL;
    struct reel_st_file *inf = NULL;
    struct reel_backend *be = reel_backend_cpu_create(threads);
    struct reel_wan_dit *m = NULL;
    if (!be)
        bench_die("%s", "cannot create the CPU backend");
    if (reel_weights_open(wpath, &w, &err) != REEL_OK ||
        reel_st_open(ipath, &inf, &err) != REEL_OK ||
        reel_wan_dit_create(&cfg, w, be, &m, &err) != REEL_OK)
        bench_die("%s", err.msg);
    const struct reel_tensor *tx = reel_st_find(inf, "x"), *tt = reel_st_find(inf, "t"),
                             *tc = reel_st_find(inf, "context");
    if (!tx || !tt || !tc)
        bench_die("%s: missing x, t or context", ipath);

    struct reel_wan_dit_input in = {
        .x = tx->data, .frames = F, .height = H, .width = W, .t = tt->data,
        .context = tc->data, .context_len = CTX, .seq_len = tokens,
    };
    int64_t out_n = 16 * F * H * W;
    float *out = malloc(sizeof(float) * (size_t)out_n);
    if (!out)
        bench_die("%s", "out of memory");
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double t0 = bench_now();
        if (reel_wan_dit_forward(m, &in, out, &err) != REEL_OK)
            bench_die("%s", err.msg);
        double dt = bench_now() - t0;
        printf("# ours run %d: %.3f s\n", r + 1, dt);
        fflush(stdout);
        if (dt < best)
            best = dt;
    }
    double amax = 0;
    for (int64_t i = 0; i < out_n; i++)
        if (fabs(out[i]) > amax)
            amax = fabs(out[i]);
    if (!isfinite(amax))
        bench_die("%s", "non-finite output");

    struct bench_list ol = {0};
    bench_list_add(&ol, "x", REEL_F32, 4, (const int64_t[]){16, F, H, W});
    bench_write(opath, &ol, BENCH_FORMAT, "output", fill_copy, out);
    free(ol.e);

    printf("# ours: %d of 30 layers, %lld tokens, %d threads, best of %d, max |out| %.4g\n",
           layers, (long long)tokens, threads, runs, amax);
    printf("seconds=%.4f\n", best);
    free(out);
    reel_wan_dit_destroy(m);
    reel_st_close(inf);
    reel_weights_close(w);
    reel_backend_destroy(be);
    return 0;
}
