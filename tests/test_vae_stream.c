/* Streaming behaviour of the Wan VAE decoder (and chunking of the encoder)
 * on the tiny golden models:
 *  - the frame callback receives frames in order, 1 then 4 per latent frame,
 *    and the assembled stream equals the reference's whole decode;
 *  - decoding a prefix of the latent gives the same leading frames (the
 *    decoder is causal), and a second decode is identical (cache reset);
 *  - a callback that fails stops decoding at once and its error comes back;
 *  - encoding 1 + 4k + r frames ignores the r trailing ones, as the
 *    reference does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/safetensors.h"
#include "stages/wan_vae.h"
#include "tests/test.h"

struct collect {
    float *out; /* [3, T, H, W] */
    int64_t T, plane, next;
    int calls, counts[64];
    int fail_at; /* call index that fails, -1 never */
    int in_order;
};

static int collect_cb(void *ctx, const float *frames, int64_t first, int64_t n,
                      struct reel_err *err)
{
    struct collect *c = ctx;
    if (c->calls == c->fail_at) {
        c->calls++;
        return reel_errf(err, REEL_E_MEDIA, "consumer full at frame %lld", (long long)first);
    }
    if (c->calls < 64)
        c->counts[c->calls] = (int)n;
    c->calls++;
    if (first != c->next || first + n > c->T) {
        c->in_order = 0;
        return REEL_OK;
    }
    for (int ch = 0; ch < 3; ch++)
        memcpy(c->out + (ch * c->T + first) * c->plane, frames + ch * n * c->plane,
               (size_t)(n * c->plane) * sizeof(float));
    c->next += n;
    return REEL_OK;
}

static float *input(struct reel_st_file *f, const char *name, int64_t *n)
{
    const struct reel_tensor *t = reel_st_find(f, name);
    if (!t)
        return NULL;
    *n = reel_tensor_numel(t);
    float *p = malloc(sizeof(float) * (size_t)*n);
    if (p)
        reel_tensor_to_f32(t, 0, *n, p);
    return p;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d))
            return INFINITY;
        if (d > m)
            m = d;
    }
    return m;
}

static void run_file(const char *file, int version, struct reel_backend *be)
{
    char path[512], label[192];
    const char *g = getenv("REEL_GOLDEN_DIR");
    snprintf(path, sizeof path, "%s/%s", g && *g ? g : "../shared/golden", file);
    struct reel_err err = {0};
    struct reel_st_file *f = NULL;
    struct reel_weights *w = NULL;
    struct reel_wan_vae *vae = NULL;
    struct reel_json *cj = NULL;
    float *latent = NULL, *mean = NULL, *inv = NULL, *video = NULL, *ref = NULL;
    struct collect a = {0}, b = {0}, p = {0};
    float *mu = NULL, *mu5 = NULL;

    int rc = reel_st_open(path, &f, &err);
    if (!rc)
        rc = reel_weights_from_file(f, "weights.", &w, &err);
    const char *cfg_text = f ? reel_st_meta(f, "config") : NULL;
    char msg[256] = "no config";
    if (!rc && cfg_text)
        cj = reel_json_parse(cfg_text, strlen(cfg_text), msg, sizeof msg);
    struct reel_wan_vae_config cfg;
    if (!rc && !cj)
        rc = reel_errf(&err, REEL_E_MODEL, "config: %s", msg);
    if (!rc)
        rc = reel_wan_vae_config_from_json(cj, version, &cfg, &err);
    if (!rc)
        rc = reel_wan_vae_create(&cfg, w, be, &vae, &err);
    snprintf(label, sizeof label, "%s: model loads", file);
    if (!CHECK(rc == 0, label, "%s", err.msg))
        goto done;

    int64_t n_lat, n_mean, n_inv, n_vid;
    latent = input(f, "in.latent", &n_lat);
    mean = input(f, "in.scale_mean", &n_mean);
    inv = input(f, "in.scale_inv_std", &n_inv);
    video = input(f, "in.video", &n_vid);
    const struct reel_tensor *rt = reel_st_find(f, "out.decoded");
    const struct reel_tensor *lt = reel_st_find(f, "in.latent");
    const struct reel_tensor *vt = reel_st_find(f, "in.video");
    snprintf(label, sizeof label, "%s: inputs present", file);
    if (!CHECK(latent && mean && inv && video && rt && lt && vt && lt->ndim == 5 && vt->ndim == 5,
               label, "missing in.* / out.decoded"))
        goto done;
    int64_t z = lt->shape[1], F = lt->shape[2], h = lt->shape[3], wd = lt->shape[4];
    int64_t T = reel_wan_vae_video_frames(vae, F);
    int s = reel_wan_vae_spatial_factor(vae);
    int64_t plane = h * s * wd * s, total = 3 * T * plane;
    ref = input(f, "out.decoded", &(int64_t){0});

    /* 1. stream order, counts, equality with the reference's whole decode */
    a = (struct collect){malloc(sizeof(float) * (size_t)total), T, plane, 0, 0, {0}, -1, 1};
    rc = reel_wan_vae_decode(vae, latent, F, h, wd, mean, inv, collect_cb, &a, &err);
    snprintf(label, sizeof label, "%s: decode runs", file);
    CHECK(rc == 0, label, "%s", err.msg);
    int counts_ok = a.calls == F && a.in_order && a.next == T;
    for (int i = 0; counts_ok && i < a.calls; i++)
        counts_ok = a.counts[i] == (i ? reel_wan_vae_temporal_factor(vae) : 1);
    snprintf(label, sizeof label, "%s: frames delivered in order, counts 1,4,4", file);
    CHECK(counts_ok, label, "%d calls, first counts %d,%d,%d, in order %d, %lld frames",
          a.calls, a.counts[0], a.counts[1], a.counts[2], a.in_order, (long long)a.next);
    double d = rc == 0 && ref ? max_diff(a.out, ref, total) : 1e9;
    snprintf(label, sizeof label, "%s: streamed frames equal the whole decode", file);
    CHECK(d <= 1e-4, label, "max abs %.3g", d);

    /* 2. determinism across calls, causality over a latent prefix */
    b = (struct collect){malloc(sizeof(float) * (size_t)total), T, plane, 0, 0, {0}, -1, 1};
    rc = reel_wan_vae_decode(vae, latent, F, h, wd, mean, inv, collect_cb, &b, &err);
    d = rc == 0 ? max_diff(a.out, b.out, total) : 1e9;
    snprintf(label, sizeof label, "%s: a second decode is identical", file);
    CHECK(d == 0, label, "max abs %.3g (rc %d)", d, rc);

    /* the first 2 latent frames, taken out of the [z, F, h, w] layout */
    int64_t T2 = reel_wan_vae_video_frames(vae, 2);
    float *lat2 = malloc(sizeof(float) * (size_t)(z * 2 * h * wd));
    p = (struct collect){malloc(sizeof(float) * (size_t)(3 * T2 * plane)), T2, plane, 0, 0, {0},
                         -1, 1};
    for (int64_t c = 0; lat2 && c < z; c++)
        memcpy(lat2 + c * 2 * h * wd, latent + c * F * h * wd,
               sizeof(float) * (size_t)(2 * h * wd));
    rc = lat2 ? reel_wan_vae_decode(vae, lat2, 2, h, wd, mean, inv, collect_cb, &p, &err) : -1;
    double dp = 0;
    for (int ch = 0; rc == 0 && ch < 3; ch++) {
        double dc = max_diff(p.out + ch * T2 * plane, a.out + ch * T * plane, T2 * plane);
        dp = dc > dp ? dc : dp;
    }
    snprintf(label, sizeof label, "%s: a latent prefix decodes to the same leading frames", file);
    CHECK(rc == 0 && p.next == T2 && dp == 0, label, "rc %d, %lld frames, max abs %.3g", rc,
          (long long)p.next, dp);
    free(lat2);

    /* 3. a failing consumer stops the decode and its error propagates */
    struct collect e = {a.out, T, plane, 0, 0, {0}, 1, 1};
    memset(&err, 0, sizeof err);
    rc = reel_wan_vae_decode(vae, latent, F, h, wd, mean, inv, collect_cb, &e, &err);
    snprintf(label, sizeof label, "%s: callback error stops decoding and propagates", file);
    CHECK(rc == REEL_E_MEDIA && e.calls == 2 && strstr(err.msg, "consumer full at frame 1"),
          label, "rc %d after %d calls: %s", rc, e.calls, err.msg);

    /* bad sizes are refused before any work */
    memset(&err, 0, sizeof err);
    rc = reel_wan_vae_encode(vae, video, vt->shape[2], vt->shape[3] - 1, vt->shape[4], mean, inv,
                             a.out, &err);
    snprintf(label, sizeof label, "%s: encode refuses a height that is not a multiple of %d",
             file, s);
    CHECK(rc == REEL_E_MEDIA && strstr(err.msg, "multiples"), label, "rc %d: %s", rc, err.msg);
    memset(&err, 0, sizeof err);
    rc = reel_wan_vae_decode(vae, latent, 0, h, wd, mean, inv, collect_cb, &e, &err);
    snprintf(label, sizeof label, "%s: decode refuses an empty latent", file);
    CHECK(rc == REEL_E_MEDIA, label, "rc %d: %s", rc, err.msg);

    /* 4. trailing frames beyond 1 + 4k are ignored by encode */
    int64_t VT = vt->shape[2], VH = vt->shape[3], VW = vt->shape[4];
    if (VT >= 7) {
        int64_t Fl = reel_wan_vae_latent_frames(vae, VT), n = z * Fl * h * wd;
        int64_t T5 = VT - 2; /* drops r = 2 frames when VT = 1 + 4k + ... */
        mu = malloc(sizeof(float) * (size_t)n);
        mu5 = malloc(sizeof(float) * (size_t)n);
        float *v5 = malloc(sizeof(float) * (size_t)(3 * T5 * VH * VW));
        for (int ch = 0; v5 && ch < 3; ch++)
            memcpy(v5 + ch * T5 * VH * VW, video + ch * VT * VH * VW,
                   sizeof(float) * (size_t)(T5 * VH * VW));
        int64_t F5 = reel_wan_vae_latent_frames(vae, T5);
        memset(&err, 0, sizeof err);
        rc = reel_wan_vae_encode(vae, video, VT, VH, VW, mean, inv, mu, &err);
        int rc5 = v5 ? reel_wan_vae_encode(vae, v5, T5, VH, VW, mean, inv, mu5, &err) : -1;
        double de = 1e9;
        if (!rc && !rc5) {
            de = 0;
            for (int64_t c = 0; c < z; c++) {
                double dc = max_diff(mu + c * Fl * h * wd, mu5 + c * F5 * h * wd, F5 * h * wd);
                de = dc > de ? dc : de;
            }
        }
        snprintf(label, sizeof label, "%s: encode of %lld frames uses the first %lld", file,
                 (long long)T5, (long long)(1 + (T5 - 1) / 4 * 4));
        CHECK(de == 0 && F5 == 1 + ((T5 - 1) / 4) * (4 / (int64_t)reel_wan_vae_temporal_factor(vae)),
              label, "rc %d/%d, %lld latent frames, max abs %.3g", rc, rc5, (long long)F5, de);
        free(v5);
    }

done:
    free(a.out);
    free(b.out);
    free(p.out);
    free(mu);
    free(mu5);
    free(latent);
    free(mean);
    free(inv);
    free(video);
    free(ref);
    reel_json_free(cj);
    reel_wan_vae_destroy(vae);
    reel_weights_close(w);
    reel_st_close(f);
}

int main(void)
{
    struct reel_backend *be = reel_backend_cpu_create(2);
    if (!CHECK(be != NULL, "cpu backend", "out of memory"))
        TEST_EXIT();
    run_file("wan21_vae.safetensors", 21, be);
    run_file("wan22_vae.safetensors", 22, be);
    reel_backend_destroy(be);
    TEST_EXIT();
}
