/* Training tool: encodes a batch of videos with reel's own Wan VAE encoder
 * (the C engine, so the default model's DiT trains on exactly the latents
 * reel computes, and fast: PyTorch's CPU conv3d is ~30x slower here).
 *   tool_vae_encode [--recon] 21|22 VAE_KWARGS_JSON VAE.safetensors IN.safetensors OUT.safetensors [THREADS]
 * VAE_KWARGS_JSON: {"dim": 8, "z_dim": 4, ...} (WanVAE_ kwargs of that version).
 * IN holds "video" F32 [N, 3, T, H, W] in [-1, 1]; OUT gets "mu" F32
 * [N, z, latent_frames, H/s, W/s], the raw encoder mean (not normalised).
 * --recon also decodes mu back and writes "recon" F32 [N, 3, T', H, W]
 * clamped to [-1, 1] (T' = the frames the latent decodes to): the VAE round
 * trip that frame-conditioned renders are measured against
 * (scripts/eval_default.py --frames). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/wan_vae.h"

struct recon_sink {
    float *dst; /* [3, T', H, W] of one clip */
    int64_t frames, hw;
};

static int recon_frames(void *ctx, const float *frames, int64_t first, int64_t n, struct reel_err *err)
{
    (void)err;
    struct recon_sink *s = ctx;
    for (int64_t c = 0; c < 3; c++)
        for (int64_t t = 0; t < n; t++)
            for (int64_t i = 0; i < s->hw; i++) {
                float v = frames[(c * n + t) * s->hw + i];
                s->dst[(c * s->frames + first + t) * s->hw + i] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
            }
    return 0;
}

static int encode_all(int version, const char *kwargs, const char *wpath, const char *in, const char *out,
                      int threads, int recon, struct reel_err *err)
{
    char msg[256];
    struct reel_json *j = reel_json_parse(kwargs, strlen(kwargs), msg, sizeof msg);
    if (!j)
        return reel_errf(err, REEL_E_SPEC, "VAE kwargs: %s", msg);
    struct reel_wan_vae_config cfg;
    int rc = reel_wan_vae_config_from_json(j, version, &cfg, err);
    reel_json_free(j);
    if (rc)
        return rc;
    struct reel_weights *w = NULL;
    struct reel_st_file *f = NULL;
    struct reel_wan_vae *vae = NULL;
    struct reel_backend *be = reel_backend_cpu_create(threads);
    float *mu = NULL, *mean = NULL, *inv = NULL, *rec = NULL;
    if (!be)
        return reel_errf(err, REEL_E_OTHER, "cannot create the CPU backend");
    if ((rc = reel_weights_open(wpath, &w, err)) ||
        (rc = reel_wan_vae_create(&cfg, w, be, &vae, err)) || (rc = reel_st_open(in, &f, err)))
        goto done;
    const struct reel_tensor *v = reel_st_find(f, "video");
    if (!v || v->dtype != REEL_F32 || v->ndim != 5 || v->shape[1] != 3) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: no F32 tensor 'video' [N, 3, T, H, W]", in);
        goto done;
    }
    int64_t N = v->shape[0], T = v->shape[2], H = v->shape[3], W = v->shape[4];
    int64_t s = reel_wan_vae_spatial_factor(vae), lt = reel_wan_vae_latent_frames(vae, T);
    int64_t per = (int64_t)cfg.z_dim * lt * (H / s) * (W / s);
    int64_t rt = reel_wan_vae_video_frames(vae, lt), rper = 3 * rt * H * W;
    mu = malloc(sizeof(float) * (size_t)(N * per));
    if (recon && !(rec = malloc(sizeof(float) * (size_t)(N * rper)))) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    mean = calloc((size_t)cfg.z_dim, sizeof(float));
    inv = malloc(sizeof(float) * (size_t)cfg.z_dim);
    if (!mu || !mean || !inv) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    for (int c = 0; c < cfg.z_dim; c++)
        inv[c] = 1.0f;
    const float *vid = v->data;
    for (int64_t n = 0; n < N && !rc; n++) {
        rc = reel_wan_vae_encode(vae, vid + n * 3 * T * H * W, T, H, W, mean, inv, mu + n * per,
                                 err);
        if (!rc && recon) {
            struct recon_sink sink = {.dst = rec + n * rper, .frames = rt, .hw = H * W};
            rc = reel_wan_vae_decode(vae, mu + n * per, lt, H / s, W / s, mean, inv, recon_frames,
                                     &sink, err);
        }
    }
    if (!rc) {
        struct reel_tensor t[2] = {
            {.dtype = REEL_F32, .ndim = 5, .shape = {N, cfg.z_dim, lt, H / s, W / s}, .data = mu,
             .name = "mu"},
            {.dtype = REEL_F32, .ndim = 5, .shape = {N, 3, rt, H, W}, .data = rec, .name = "recon"}};
        rc = reel_st_write(out, t, recon ? 2 : 1, NULL, 0, err);
    }
done:
    free(mu);
    free(rec);
    free(mean);
    free(inv);
    reel_st_close(f);
    reel_wan_vae_destroy(vae);
    reel_weights_close(w);
    be->destroy(be);
    return rc;
}

int main(int argc, char **argv)
{
    const char *prog = argv[0];
    int recon = argc > 1 && strcmp(argv[1], "--recon") == 0;
    argc -= recon;
    argv += recon;
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s [--recon] 21|22 VAE_KWARGS_JSON VAE.safetensors IN.safetensors "
                        "OUT.safetensors [THREADS]\n", prog);
        return 2;
    }
    struct reel_err err = {0};
    int rc = encode_all(atoi(argv[1]), argv[2], argv[3], argv[4], argv[5],
                        argc == 7 ? atoi(argv[6]) : 0, recon, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", prog, err.msg);
    return rc;
}
