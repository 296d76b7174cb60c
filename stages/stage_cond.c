/* Stage `cond`: frame conditioning inputs (see stages/stage_cond.h). */
#include "stages/stage_cond.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/job.h"
#include "stages/image_read.h"
#include "stages/wan_vae.h"

void reel_cond_mask(const unsigned char *frame_has_image, int stride, int64_t latent_frames,
                    int64_t hw, float *out)
{
    for (int64_t c = 0; c < stride; c++) {
        for (int64_t j = 0; j < latent_frames; j++) {
            int64_t k = stride * j + c; /* index into the expanded sequence */
            int64_t f = k < stride ? 0 : k - (stride - 1);
            float v = frame_has_image[f] ? 1.0f : 0.0f;
            float *dst = out + (c * latent_frames + j) * hw;
            for (int64_t i = 0; i < hw; i++)
                dst[i] = v;
        }
    }
}

int reel_stage_cond(struct reel_job *job, struct reel_err *err)
{
    const struct reel_spec *s = job->spec;
    const struct reel_model_config *m = &s->model_config;
    const int64_t F = s->frames, H = s->height, W = s->width;
    const int64_t ts = m->vae.temporal_stride, ss = m->vae.spatial_stride;
    const int64_t Fl = (F - 1) / ts + 1, h = H / ss, w = W / ss, z = m->vae.cfg.z_dim;
    /* the mask has one channel per video frame of a latent frame (Wan2.1's
     * 4; 2 for a VAE that halves time), and the encoder reads 1 + 4k frames */
    if (ts < 1 || ts > REEL_WAN_VAE_CHUNK_FRAMES || (F - 1) % REEL_WAN_VAE_CHUNK_FRAMES != 0 ||
        m->dit.cfg.in_dim != 2 * z + ts)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: frame conditioning needs 1 + 4k frames and dit.in_dim = 2 z_dim + "
                         "the VAE's temporal stride (%lld frames, stride %lld, in_dim %d, z_dim %lld)",
                         m->path, (long long)F, (long long)ts, m->dit.cfg.in_dim, (long long)z);
    const size_t plane = (size_t)(H * W);
    float *video = calloc((size_t)(3 * F) * plane, sizeof *video); /* 0 = mid-grey */
    float *img = malloc(3 * plane * sizeof *img);
    float *mask = malloc(sizeof(float) * (size_t)(ts * Fl * h * w));
    float *lat = malloc(sizeof(float) * (size_t)(z * Fl * h * w));
    unsigned char *has = calloc((size_t)F, 1);
    struct reel_weights *wt = NULL;
    struct reel_wan_vae *vae = NULL;
    int rc = REEL_OK;
    if (!video || !img || !mask || !lat || !has) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory for the condition video");
        goto done;
    }
    reel_progress_stage(job->progress, "cond", s->n_keyframes + 1);
    for (int i = 0; i < s->n_keyframes; i++) {
        const struct reel_spec_keyframe *k = &s->keyframes[i];
        if (k->frame < 0 || k->frame >= F) {
            rc = reel_errf(err, REEL_E_SPEC, "%s: frame %d outside the clip", k->where, k->frame);
            goto done;
        }
        if ((rc = reel_image_read(k->image, (int)W, (int)H, img, err)))
            goto done;
        for (int64_t c = 0; c < 3; c++)
            memcpy(video + ((size_t)(c * F + k->frame)) * plane, img + (size_t)c * plane,
                   plane * sizeof *img);
        has[k->frame] = 1;
        reel_progress_step(job->progress, i + 1);
    }
    reel_cond_mask(has, (int)ts, Fl, h * w, mask);

    if ((rc = reel_weights_open(m->vae.weights, &wt, err)) ||
        (rc = reel_wan_vae_create(&m->vae.cfg, wt, job->be, &vae, err)))
        goto done;
    if (reel_wan_vae_latent_frames(vae, F) != Fl) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: the VAE makes %lld latent frames of %lld, not %lld",
                       m->path, (long long)reel_wan_vae_latent_frames(vae, F), (long long)F,
                       (long long)Fl);
        goto done;
    }
    if ((rc = reel_wan_vae_encode(vae, video, F, H, W, m->vae.latent_mean,
                                  m->vae.latent_inv_std, lat, err)))
        goto done;
    reel_progress_step(job->progress, s->n_keyframes + 1);

    struct reel_tensor t[2] = {
        {.dtype = REEL_F32, .ndim = 4, .shape = {ts, Fl, h, w}, .data = mask,
         .name = "mask"},
        {.dtype = REEL_F32, .ndim = 4, .shape = {z, Fl, h, w}, .data = lat, .name = "latent"},
    };
    char path[4096];
    rc = reel_st_write(reel_workdir_path(job->wd, "cond.safetensors", path, sizeof path), t, 2,
                       NULL, 0, err);
    if (!rc)
        reel_job_kill_point("cond", 0);
done:
    reel_wan_vae_destroy(vae);
    reel_weights_close(wt);
    free(video);
    free(img);
    free(mask);
    free(lat);
    free(has);
    return rc;
}
