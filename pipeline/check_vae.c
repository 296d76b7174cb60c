/* `reel check` runner for the Wan VAE golden files (WanVAE_ of vae.py or
 * vae2_2.py, chosen by the `reference` metadata). Sizes come from the
 * file's tensors and config, so any configuration, resolution and frame
 * count recorded the same way checks without code changes. Encodes in.video
 * (out.mu, mid.enc_conv1_out) and decodes in.latent (out.decoded,
 * mid.dec_conv2_out), the decoded frames assembled from the stream. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/check.h"
#include "stages/wan_vae.h"

#define MU_TOL 5e-5
#define DECODED_TOL 1e-4
#define MID_TOL 5e-5

/* Gathers per-chunk intermediates into whole [c, F, h, w] tensors. */
struct vae_mid {
    float *enc, *dec;
    int64_t enc_c, dec_c, frames, plane;
};

static void probe(void *ctx, const char *name, const float *data, int64_t channels,
                  int64_t first, int64_t frames, int64_t h, int64_t w)
{
    struct vae_mid *m = ctx;
    int is_enc = !strcmp(name, "enc_conv1_out");
    float *dst = is_enc ? m->enc : m->dec;
    int64_t want_c = is_enc ? m->enc_c : m->dec_c;
    if (!dst || channels != want_c || h * w != m->plane || first + frames > m->frames)
        return;
    for (int64_t c = 0; c < channels; c++)
        memcpy(dst + (c * m->frames + first) * m->plane, data + c * frames * m->plane,
               (size_t)(frames * m->plane) * sizeof(float));
}

struct vae_sink {
    float *out; /* [3, T, H, W] */
    int64_t T, plane, next;
};

static int sink(void *ctx, const float *frames, int64_t first, int64_t n, struct reel_err *err)
{
    struct vae_sink *s = ctx;
    if (first != s->next || first + n > s->T)
        return reel_errf(err, REEL_E_OTHER, "decode delivered frames %lld..%lld, expected %lld",
                         (long long)first, (long long)(first + n - 1), (long long)s->next);
    for (int c = 0; c < 3; c++)
        memcpy(s->out + (c * s->T + first) * s->plane, frames + c * n * s->plane,
               (size_t)(n * s->plane) * sizeof(float));
    s->next += n;
    return REEL_OK;
}

/* Shape without leading 1s (the batch): wants exactly `keep` dims. */
static int dims_of(struct reel_check *c, const char *name, int keep, int64_t *dims,
                   struct reel_err *err)
{
    const struct reel_tensor *t = reel_check_tensor(c, name);
    if (!t)
        return reel_errf(err, REEL_E_MODEL, "%s: no tensor '%s'", c->file->path, name);
    int off = 0;
    while (t->ndim - off > keep && t->shape[off] == 1)
        off++;
    if (t->ndim - off != keep)
        return reel_errf(err, REEL_E_MODEL, "%s: '%s' should have %d dimensions", c->file->path,
                         name, keep);
    for (int i = 0; i < keep; i++)
        dims[i] = t->shape[off + i];
    return REEL_OK;
}

int reel_check_wan_vae(struct reel_check *c, struct reel_err *err)
{
    const char *ref = reel_st_meta(c->file, "reference");
    int version = ref && strstr(ref, "vae2_2.py") ? 22 : 21;
    struct reel_wan_vae_config cfg;
    int rc = reel_wan_vae_config_from_json(c->config, version, &cfg, err);
    if (rc) {
        reel_err_prefix(err, "%s: ", c->file->path);
        return rc;
    }
    struct reel_wan_vae *vae = NULL;
    rc = reel_wan_vae_create(&cfg, c->weights, c->be, &vae, err);
    if (rc) {
        reel_err_prefix(err, "%s: ", c->file->path);
        return rc;
    }
    int z = cfg.z_dim, s = reel_wan_vae_spatial_factor(vae);
    float *mean = NULL, *inv_std = NULL, *video = NULL, *latent = NULL, *mu = NULL, *dec = NULL;
    struct vae_mid mid = {0};
    int64_t n;
    if ((rc = reel_check_input_f32(c, "in.scale_mean", &mean, &n, err)))
        goto done;
    if (n != z) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: in.scale_mean has %lld values, z_dim is %d",
                       c->file->path, (long long)n, z);
        goto done;
    }
    if ((rc = reel_check_input_f32(c, "in.scale_inv_std", &inv_std, &n, err)))
        goto done;
    if (n != z) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: in.scale_inv_std has %lld values, z_dim is %d",
                       c->file->path, (long long)n, z);
        goto done;
    }
    reel_wan_vae_set_probe(vae, probe, &mid);

    if (reel_check_tensor(c, "in.video")) {
        int64_t d[4];
        if ((rc = dims_of(c, "in.video", 4, d, err)))
            goto done;
        if (d[0] != 3) {
            rc = reel_errf(err, REEL_E_MODEL, "%s: in.video has %lld channels, expected 3",
                           c->file->path, (long long)d[0]);
            goto done;
        }
        if ((rc = reel_check_input_f32(c, "in.video", &video, &n, err)))
            goto done;
        int64_t F = reel_wan_vae_latent_frames(vae, d[1]), plane = (d[2] / s) * (d[3] / s);
        mu = malloc(sizeof(float) * (size_t)(z * F * plane));
        mid.enc = malloc(sizeof(float) * (size_t)(2 * z * F * plane));
        if (!mu || !mid.enc) {
            rc = reel_errf(err, REEL_E_OTHER, "out of memory");
            goto done;
        }
        mid.enc_c = 2 * z;
        mid.frames = F;
        mid.plane = plane;
        rc = reel_wan_vae_encode(vae, video, d[1], d[2], d[3], mean, inv_std, mu, err);
        if (rc)
            goto done;
        reel_check_compare(c, "mid.enc_conv1_out", mid.enc, 2 * z * F * plane, MID_TOL);
        reel_check_compare(c, "out.mu", mu, z * F * plane, MU_TOL);
        free(mid.enc);
        mid.enc = NULL;
    }

    if (reel_check_tensor(c, "in.latent")) {
        int64_t d[4];
        if ((rc = dims_of(c, "in.latent", 4, d, err)))
            goto done;
        if (d[0] != z) {
            rc = reel_errf(err, REEL_E_MODEL, "%s: in.latent has %lld channels, z_dim is %d",
                           c->file->path, (long long)d[0], z);
            goto done;
        }
        if ((rc = reel_check_input_f32(c, "in.latent", &latent, &n, err)))
            goto done;
        int64_t T = reel_wan_vae_video_frames(vae, d[1]), H = d[2] * s, W = d[3] * s;
        struct vae_sink sk = {NULL, T, H * W, 0};
        sk.out = dec = malloc(sizeof(float) * (size_t)(3 * T * H * W));
        mid.dec = malloc(sizeof(float) * (size_t)(z * d[1] * d[2] * d[3]));
        if (!dec || !mid.dec) {
            rc = reel_errf(err, REEL_E_OTHER, "out of memory");
            goto done;
        }
        mid.dec_c = z;
        mid.frames = d[1];
        mid.plane = d[2] * d[3];
        rc = reel_wan_vae_decode(vae, latent, d[1], d[2], d[3], mean, inv_std, sink, &sk, err);
        if (rc)
            goto done;
        if (sk.next != T) {
            rc = reel_errf(err, REEL_E_OTHER, "%s: decode delivered %lld frames, expected %lld",
                           c->file->path, (long long)sk.next, (long long)T);
            goto done;
        }
        reel_check_compare(c, "mid.dec_conv2_out", mid.dec, z * d[1] * d[2] * d[3], MID_TOL);
        reel_check_compare(c, "out.decoded", dec, 3 * T * H * W, DECODED_TOL);
    }
done:
    reel_wan_vae_destroy(vae);
    free(mean);
    free(inv_std);
    free(video);
    free(latent);
    free(mu);
    free(dec);
    free(mid.enc);
    free(mid.dec);
    return rc;
}
