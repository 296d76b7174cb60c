/* MMAudio audio stack beyond the golden checks: the computed slaney mel
 * filterbank and Hann window against the checkpoint buffers (and a mel
 * computed without them), MPConv1D weight-norm removal against the golden
 * file's raw tensor, BigVGAN loaded from all three weight-norm namings giving
 * the same wave, and bad configs / weights / inputs refused with messages
 * that name the problem. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/bigvgan.h"
#include "audio/mel.h"
#include "audio/mmaudio_vae.h"
#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "tests/test.h"

static const char *golden_dir(void)
{
    const char *g = getenv("REEL_GOLDEN_DIR");
    return g && *g ? g : "../shared/golden";
}

struct gfile {
    struct reel_st_file *f;
    struct reel_weights *w;
    struct reel_json *cfg;
};

static int gopen(const char *name, struct gfile *g)
{
    char path[512], msg[256];
    struct reel_err err = {0};
    memset(g, 0, sizeof *g);
    snprintf(path, sizeof path, "%s/%s", golden_dir(), name);
    if (reel_st_open(path, &g->f, &err) || reel_weights_from_file(g->f, "weights.", &g->w, &err)) {
        CHECK(0, name, "cannot open: %s", err.msg);
        return -1;
    }
    const char *c = reel_st_meta(g->f, "config");
    g->cfg = c ? reel_json_parse(c, strlen(c), msg, sizeof msg) : NULL;
    return 0;
}

static void gclose(struct gfile *g)
{
    reel_json_free(g->cfg);
    reel_weights_close(g->w);
    reel_st_close(g->f);
}

static float *tensor_f32(const struct reel_st_file *f, const char *name, int64_t *n)
{
    const struct reel_tensor *t = reel_st_find(f, name);
    if (!t)
        return NULL;
    *n = reel_tensor_numel(t);
    float *b = malloc(sizeof(float) * (size_t)*n);
    if (b)
        reel_tensor_to_f32(t, 0, *n, b);
    return b;
}

static double maxdiff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static void test_mel(struct reel_backend *be)
{
    struct gfile g;
    if (gopen("mel16k.safetensors", &g))
        return;
    struct reel_mel_config cfg;
    struct reel_err err = {0};
    int rc = reel_mel_config_from_json(g.cfg, &cfg, &err);
    CHECK(rc == 0, "mel config from the golden file", "%s", err.msg);
    int64_t nb = cfg.n_fft / 2 + 1, n;
    float *bank = malloc(sizeof(float) * (size_t)(cfg.num_mels * nb));
    float *win = malloc(sizeof(float) * (size_t)cfg.n_fft);
    reel_mel_filterbank(cfg.sampling_rate, cfg.n_fft, cfg.num_mels, cfg.fmin, cfg.fmax, bank);
    reel_hann_window(cfg.n_fft, win);
    float *gb = tensor_f32(g.f, "weights.mel_basis", &n), *gw = NULL;
    double e = gb && n == cfg.num_mels * nb ? maxdiff(bank, gb, n) : INFINITY;
    CHECK(e <= 1e-8, "slaney mel filterbank equals the checkpoint buffer", "max diff %.3g", e);
    gw = tensor_f32(g.f, "weights.hann_window", &n);
    e = gw && n == cfg.n_fft ? maxdiff(win, gw, n) : INFINITY;
    CHECK(e <= 1e-7, "periodic Hann window equals the checkpoint buffer", "max diff %.3g", e);

    /* a converter built without the buffers reproduces out.mel */
    struct reel_mel *m = NULL;
    rc = reel_mel_create(&cfg, NULL, be, &m, &err);
    float *wave = tensor_f32(g.f, "in.wave", &n), *ref;
    int64_t nref;
    ref = tensor_f32(g.f, "out.mel", &nref);
    int64_t T = m ? reel_mel_frames(m, n) : 0;
    float *mel = malloc(sizeof(float) * (size_t)(cfg.num_mels * (T > 0 ? T : 1)));
    if (!rc)
        rc = reel_mel_forward(m, wave, n, mel, &err);
    e = !rc && ref && nref == cfg.num_mels * T ? maxdiff(mel, ref, nref) : INFINITY;
    CHECK(e <= 5e-4, "mel with computed filterbank and window matches out.mel", "rc %d %s, %.3g",
          rc, err.msg, e);
    /* too short for the reflect padding */
    memset(&err, 0, sizeof err);
    rc = m ? reel_mel_forward(m, wave, 100, mel, &err) : -1;
    CHECK(rc == REEL_E_MEDIA && strstr(err.msg, "too few"), "mel refuses a too-short wave",
          "rc %d: %s", rc, err.msg);
    /* unsupported settings */
    const char *bad[3] = {"{\"norm_fn\": \"ln\"}", "{\"win_size\": 512}", "{\"n_fft\": -4}"};
    for (int i = 0; i < 3; i++) {
        char msg[128], label[96];
        struct reel_json *j = reel_json_parse(bad[i], strlen(bad[i]), msg, sizeof msg);
        memset(&err, 0, sizeof err);
        rc = reel_mel_config_from_json(j, &cfg, &err);
        snprintf(label, sizeof label, "mel config %s refused", bad[i]);
        CHECK(rc == REEL_E_MODEL, label, "rc %d", rc);
        reel_json_free(j);
    }
    reel_mel_destroy(m);
    free(bank), free(win), free(gb), free(gw), free(wave), free(ref), free(mel);
    gclose(&g);
}

static void test_vae(struct reel_backend *be)
{
    struct gfile g;
    if (gopen("mmaudio_vae16k.safetensors", &g))
        return;
    int64_t n, nw;
    float *raw = tensor_f32(g.f, "ckpt.decoder.conv_in.weight", &n);
    float *want = tensor_f32(g.f, "weights.decoder.conv_in.weight", &nw);
    const struct reel_tensor *t = reel_st_find(g.f, "ckpt.decoder.conv_in.weight");
    double e = INFINITY;
    if (raw && want && n == nw && t->ndim == 3) {
        float *got = malloc(sizeof(float) * (size_t)n);
        reel_mpconv_remove_weight_norm(raw, t->shape[0], t->shape[1] * t->shape[2], got);
        e = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = fabs((double)got[i] - want[i]) / (fabs(want[i]) + 1e-30);
            e = d > e ? d : e;
        }
        free(got);
    }
    CHECK(e < 1e-6, "MPConv1D weight-norm removal matches remove_weight_norm()",
          "max rel diff %.3g", e);
    free(raw), free(want);

    struct reel_mmaudio_vae_config cfg;
    struct reel_err err = {0};
    int rc = reel_mmaudio_vae_config_from_json(g.cfg, &cfg, &err);
    CHECK(rc == 0, "VAE config from the golden file", "%s", err.msg);
    /* a config that does not fit the weights names the tensor */
    struct reel_mmaudio_vae_config wrong = cfg;
    wrong.hidden_dim = 48;
    struct reel_mmaudio_vae *vae = NULL;
    memset(&err, 0, sizeof err);
    rc = reel_mmaudio_vae_create(&wrong, g.w, 1, be, &vae, &err);
    CHECK(rc == REEL_E_MODEL && !vae && strstr(err.msg, "encoder.conv_in.weight"),
          "VAE with the wrong hidden_dim names the mis-shaped tensor", "rc %d: %s", rc, err.msg);
    /* decoder-only: encode refused, decode works */
    struct reel_mmaudio_vae_config dec_only = cfg;
    dec_only.encoder = 0;
    memset(&err, 0, sizeof err);
    rc = reel_mmaudio_vae_create(&dec_only, g.w, 1, be, &vae, &err);
    CHECK(rc == 0, "decoder-only VAE loads", "%s", err.msg);
    if (vae) {
        float z[20 * 4] = {0}, mel[80 * 8], mom[40 * 4];
        memset(&err, 0, sizeof err);
        rc = reel_mmaudio_vae_encode(vae, mel, 8, mom, &err);
        CHECK(rc == REEL_E_MODEL, "decoder-only VAE refuses to encode", "rc %d", rc);
        memset(&err, 0, sizeof err);
        rc = reel_mmaudio_vae_decode(vae, z, 4, mel, &err);
        CHECK(rc == 0 && reel_mmaudio_vae_mel_len(vae, 4) == 8, "decoder-only VAE decodes",
              "rc %d: %s", rc, err.msg);
        memset(&err, 0, sizeof err);
        rc = reel_mmaudio_vae_decode(vae, z, 0, mel, &err);
        CHECK(rc == REEL_E_MEDIA, "empty latent refused", "rc %d", rc);
        reel_mmaudio_vae_destroy(vae);
    }
    const char *bad[3] = {"{\"ch_mult\": []}", "{\"kernel_size\": 4}", "{\"hidden_dim\": \"32\"}"};
    for (int i = 0; i < 3; i++) {
        char msg[128], label[96];
        struct reel_json *j = reel_json_parse(bad[i], strlen(bad[i]), msg, sizeof msg);
        memset(&err, 0, sizeof err);
        rc = reel_mmaudio_vae_config_from_json(j, &cfg, &err);
        snprintf(label, sizeof label, "VAE config %s refused", bad[i]);
        CHECK(rc == REEL_E_MODEL, label, "rc %d", rc);
        reel_json_free(j);
    }
    gclose(&g);
}

static int run_bigvgan(const struct reel_bigvgan_config *cfg, const struct reel_weights *w,
                       struct reel_backend *be, const float *mel, int64_t T, float *wave,
                       struct reel_err *err)
{
    struct reel_bigvgan *v = NULL;
    int rc = reel_bigvgan_create(cfg, w, be, &v, err);
    if (!rc)
        rc = reel_bigvgan_forward(v, mel, T, wave, err);
    reel_bigvgan_destroy(v);
    return rc;
}

/* Writes the golden weights (unprefixed, as a checkpoint holds them) with
 * every weight-normed conv in the legacy weight_g / weight_v naming (from
 * the file's ckpt.* g/v). */
static int write_legacy(const struct reel_st_file *f, const char *path, struct reel_err *err)
{
    struct reel_tensor *ts = calloc((size_t)f->count, sizeof *ts);
    char **names = calloc((size_t)f->count, sizeof *names);
    int n = 0, rc;
    for (int i = 0; i < f->count; i++) {
        const struct reel_tensor *t = &f->tensors[i];
        char buf[256];
        if (!strncmp(t->name, "ckpt.", 5)) {
            const char *p = strstr(t->name, ".parametrizations.weight.original");
            if (!p)
                continue;
            snprintf(buf, sizeof buf, "%.*s.weight_%c", (int)(p - t->name - 5),
                     t->name + 5, p[strlen(".parametrizations.weight.original")] == '0' ? 'g' : 'v');
        } else if (!strncmp(t->name, "weights.", 8)) {
            size_t len = strlen(t->name);
            char gname[256];
            snprintf(gname, sizeof gname, "ckpt.%.*s.parametrizations.weight.original0",
                     (int)(len - 8 - 7), t->name + 8);
            if (len > 15 && !strcmp(t->name + len - 7, ".weight") && reel_st_find(f, gname))
                continue; /* replaced by g/v */
            snprintf(buf, sizeof buf, "%s", t->name + 8);
        } else {
            continue;
        }
        names[n] = strdup(buf);
        ts[n] = *t;
        ts[n].name = names[n];
        n++;
    }
    rc = reel_st_write(path, ts, n, NULL, 0, err);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(ts);
    return rc;
}

static void test_bigvgan(struct reel_backend *be)
{
    struct gfile g;
    if (gopen("bigvgan16k.safetensors", &g))
        return;
    struct reel_bigvgan_config cfg;
    struct reel_err err = {0};
    int rc = reel_bigvgan_config_from_json(g.cfg, &cfg, &err);
    CHECK(rc == 0, "BigVGAN config from the golden file", "%s", err.msg);
    const struct reel_tensor *tm = reel_st_find(g.f, "in.mel");
    int64_t T = tm ? tm->shape[tm->ndim - 1] : 0, n, nref;
    float *mel = tensor_f32(g.f, "in.mel", &n), *ref = tensor_f32(g.f, "out.wave", &nref);
    int64_t L = T * 256;
    float *w0 = malloc(sizeof(float) * (size_t)L), *w1 = malloc(sizeof(float) * (size_t)L);
    float *w2 = malloc(sizeof(float) * (size_t)L);
    rc = run_bigvgan(&cfg, g.w, be, mel, T, w0, &err);
    double e = !rc && nref == L ? maxdiff(w0, ref, L) : INFINITY;
    CHECK(e <= 2e-5, "BigVGAN plain .weight naming matches out.wave", "rc %d %s, %.3g", rc,
          err.msg, e);

    /* parametrize naming: ckpt.* g/v are preferred over weights.*.weight */
    struct reel_weights *wp = NULL;
    rc = reel_weights_from_file(g.f, "weights.", &wp, &err);
    if (!rc)
        rc = reel_weights_add_prefix(wp, "ckpt.") ? REEL_E_OTHER : 0;
    if (!rc)
        rc = run_bigvgan(&cfg, wp, be, mel, T, w1, &err);
    e = rc ? INFINITY : maxdiff(w0, w1, L);
    CHECK(e <= 1e-6, "BigVGAN from parametrizations.weight.original0/1 gives the same wave",
          "rc %d %s, %.3g", rc, err.msg, e);
    reel_weights_close(wp);

    /* legacy naming, from a file written here */
    char path[256];
    snprintf(path, sizeof path, "/tmp/reel_test_bigvgan_legacy_%d.safetensors", (int)getpid());
    struct reel_weights *wl = NULL;
    memset(&err, 0, sizeof err);
    rc = write_legacy(g.f, path, &err);
    if (!rc)
        rc = reel_weights_open(path, &wl, &err);
    int legacy_seen = wl && reel_weights_find(wl, "ups.0.0.weight_g") &&
                      !reel_weights_find(wl, "ups.0.0.weight");
    if (!rc)
        rc = run_bigvgan(&cfg, wl, be, mel, T, w2, &err);
    e = rc ? INFINITY : maxdiff(w0, w2, L);
    CHECK(legacy_seen && e <= 1e-6, "BigVGAN from weight_g/weight_v gives the same wave",
          "rc %d %s, legacy names %d, %.3g", rc, err.msg, legacy_seen, e);
    reel_weights_close(wl);
    unlink(path);

    /* ConvTranspose1d g is per input channel (dim 0): fold equals the saved weight */
    int64_t ng, nv, nw;
    float *gg = tensor_f32(g.f, "ckpt.ups.0.0.parametrizations.weight.original0", &ng);
    float *vv = tensor_f32(g.f, "ckpt.ups.0.0.parametrizations.weight.original1", &nv);
    float *ww = tensor_f32(g.f, "weights.ups.0.0.weight", &nw);
    e = INFINITY;
    if (gg && vv && ww && nv == nw) {
        reel_weight_norm_fold(gg, vv, ng, nv / ng, vv);
        e = maxdiff(vv, ww, nw);
    }
    CHECK(e <= 1e-6, "weight-norm fold of a ConvTranspose1d over input channels", "%.3g", e);
    free(gg), free(vv), free(ww);

    /* missing tensor, bad configs */
    struct reel_bigvgan_config wrong = cfg;
    wrong.upsample_initial_channel = 128;
    struct reel_bigvgan *v = NULL;
    memset(&err, 0, sizeof err);
    rc = reel_bigvgan_create(&wrong, g.w, be, &v, &err);
    CHECK(rc == REEL_E_MODEL && !v && strstr(err.msg, "conv_pre"),
          "BigVGAN with the wrong width names the tensor", "rc %d: %s", rc, err.msg);
    const char *bad[4] = {"{\"resblock\": \"2\"}", "{\"activation\": \"relu\"}",
                          "{\"upsample_rates\": [4, 4], \"upsample_kernel_sizes\": [8]}",
                          "{\"upsample_rates\": [3], \"upsample_kernel_sizes\": [4]}"};
    for (int i = 0; i < 4; i++) {
        char msg[128], label[128];
        struct reel_json *j = reel_json_parse(bad[i], strlen(bad[i]), msg, sizeof msg);
        memset(&err, 0, sizeof err);
        rc = reel_bigvgan_config_from_json(j, &cfg, &err);
        snprintf(label, sizeof label, "BigVGAN config %s refused", bad[i]);
        CHECK(rc == REEL_E_MODEL, label, "rc %d", rc);
        reel_json_free(j);
    }
    free(mel), free(ref), free(w0), free(w1), free(w2);
    gclose(&g);
}

/* A whole clip's vocoding (the decode stage's) has no edge transient: on a
 * constant mel the wave is periodic with the hop inside, and its last hop
 * must look like an interior one; the plain forward's last hop does not
 * (its convolutions see zeros past the end), which is what the clip version
 * is for. Both agree away from the end. */
static void test_bigvgan_clip_tail(struct reel_backend *be)
{
    struct gfile g;
    if (gopen("bigvgan16k.safetensors", &g))
        return;
    struct reel_bigvgan_config cfg;
    struct reel_err err = {0};
    struct reel_bigvgan *v = NULL;
    int rc = reel_bigvgan_config_from_json(g.cfg, &cfg, &err);
    if (!rc)
        rc = reel_bigvgan_create(&cfg, g.w, be, &v, &err);
    CHECK(rc == 0, "BigVGAN from the golden file for the clip tail", "%s", err.msg);
    if (rc) {
        gclose(&g);
        return;
    }
    const int64_t T = 64, D = cfg.num_mels, hop = reel_bigvgan_hop(v), L = T * hop;
    float *mel = malloc(sizeof(float) * (size_t)(D * T));
    float *plain = malloc(sizeof(float) * (size_t)L), *clip = malloc(sizeof(float) * (size_t)L);
    for (int64_t i = 0; i < D * T; i++)
        mel[i] = -4.0f; /* log10 mel of a quiet hiss */
    rc = reel_bigvgan_forward(v, mel, T, plain, &err);
    if (!rc)
        rc = reel_bigvgan_forward_clip(v, mel, T, clip, &err);
    CHECK(rc == 0, "BigVGAN clip forward runs", "%s", err.msg);
    if (!rc) {
        const float *mid = clip + (T / 2) * hop;
        double amp = 0, tail_clip = 0, tail_plain = 0, head = 0;
        for (int64_t i = 0; i < hop; i++) {
            amp = fmax(amp, fabs(mid[i]));
            tail_clip = fmax(tail_clip, fabs(clip[L - hop + i] - mid[i]));
            tail_plain = fmax(tail_plain, fabs(plain[L - hop + i] - mid[i]));
        }
        head = maxdiff(plain, clip, L / 4);
        printf("# BigVGAN on a constant mel: interior peak %.3g, last hop off the interior by "
               "%.3g (clip) / %.3g (plain), first quarter differs by %.3g\n",
               amp, tail_clip, tail_plain, head);
        CHECK(amp > 0 && tail_clip <= 0.02 * amp && tail_plain >= 0.1 * amp,
              "BigVGAN clip forward: no transient in the last hop (the plain forward has one)",
              "peak %.3g, clip %.3g, plain %.3g", amp, tail_clip, tail_plain);
        CHECK(head <= 1e-6, "BigVGAN clip forward equals the plain one away from the end", "%.3g",
              head);
    }
    reel_bigvgan_destroy(v);
    free(mel), free(plain), free(clip);
    gclose(&g);
}

int main(void)
{
    struct reel_backend *be = reel_backend_cpu_create(2);
    if (!CHECK(be != NULL, "cpu backend", "create failed"))
        TEST_EXIT();
    test_mel(be);
    test_vae(be);
    test_bigvgan(be);
    test_bigvgan_clip_tail(be);
    reel_backend_destroy(be);
    TEST_EXIT();
}
