/* Stage `denoise`: seeded noise through the sampler loop over the DiT with
 * classifier-free guidance. After every step the latent and the sampler's
 * state go to denoise.safetensors (atomically), so a killed render resumes
 * at the next step and ends with the same bytes as an uninterrupted one. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/rng.h"
#include "pipeline/job.h"
#include "stages/denoise.h"

/* Latent geometry of a job: [C, F, H, W]. */
static void latent_shape(const struct reel_spec *s, int64_t shape[4])
{
    const struct reel_model_config *m = &s->model_config;
    shape[0] = m->dit.cfg.out_dim;
    shape[1] = (s->frames - 1) / m->vae.temporal_stride + 1;
    shape[2] = s->height / m->vae.spatial_stride;
    shape[3] = s->width / m->vae.spatial_stride;
}

struct checkpoint_ctx {
    struct reel_job *job;
    struct reel_flow_sampler *sampler;
    int64_t shape[4];
    unsigned char *state;
};

static int write_checkpoint(struct checkpoint_ctx *c, int step, const float *latent,
                            struct reel_err *err)
{
    /* The state grows as the solver's history fills: size it at every save. */
    size_t nb = reel_flow_sampler_state_bytes(c->sampler);
    unsigned char *buf = realloc(c->state, nb + 1);
    if (!buf)
        return reel_errf(err, REEL_E_OTHER, "out of memory saving the sampler state");
    c->state = buf;
    reel_flow_sampler_state_save(c->sampler, c->state);
    int64_t step64 = step;
    struct reel_tensor t[3] = {
        {.dtype = REEL_F32, .ndim = 4, .data = (void *)latent, .name = "latent"},
        {.dtype = REEL_U8, .ndim = 1, .shape = {(int64_t)nb}, .data = c->state,
         .name = "sampler_state"},
        {.dtype = REEL_I64, .ndim = 1, .shape = {1}, .data = &step64, .name = "step"},
    };
    memcpy(t[0].shape, c->shape, sizeof c->shape);
    char path[4096];
    reel_workdir_path(c->job->wd, "denoise.safetensors", path, sizeof path);
    return reel_st_write(path, t, 3, NULL, 0, err);
}

static int on_step(void *ctx, const struct reel_denoise_step_info *info, struct reel_err *err)
{
    struct checkpoint_ctx *c = ctx;
    int rc = write_checkpoint(c, info->step, info->latent, err);
    if (rc)
        return rc;
    reel_progress_step(c->job->progress, info->step + 1);
    reel_job_kill_point("denoise", info->step);
    return REEL_OK;
}

/* Loads a tensor of the expected float count from an artifact file. */
static int artifact_f32(const struct reel_st_file *f, const char *name, int64_t *rows,
                        int64_t cols, float **out, struct reel_err *err)
{
    const struct reel_tensor *t = reel_st_find(f, name);
    if (!t || t->dtype != REEL_F32 || t->ndim != 2 || (cols >= 0 && t->shape[1] != cols))
        return reel_errf(err, REEL_E_MEDIA, "%s: tensor '%s' missing or malformed", f->path,
                         name);
    *rows = t->shape[0];
    *out = malloc(sizeof(float) * (size_t)(reel_tensor_numel(t) + 1));
    if (!*out)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    reel_tensor_to_f32(t, 0, reel_tensor_numel(t), *out);
    return REEL_OK;
}

int reel_stage_denoise(struct reel_job *job, struct reel_err *err)
{
    const struct reel_spec *s = job->spec;
    const struct reel_model_config *m = &s->model_config;
    if (m->audio.enabled) /* joint video + audio: stages/stage_denoise_av.c */
        return reel_stage_denoise_av(job, err);
    struct checkpoint_ctx c = {.job = job};
    latent_shape(s, c.shape);
    int64_t n = c.shape[0] * c.shape[1] * c.shape[2] * c.shape[3];
    int guided = s->sampler.guidance != 1.0;

    struct reel_st_file *text = NULL, *ck = NULL;
    struct reel_weights *w = NULL;
    struct reel_wan_dit *dit = NULL;
    float *ctx = NULL, *ctx_null = NULL, *latent = NULL;
    int64_t len = 0, len_null = 0;
    char path[4096];

    int rc = reel_st_open(reel_workdir_path(job->wd, "text.safetensors", path, sizeof path),
                          &text, err);
    if (!rc)
        rc = artifact_f32(text, "context", &len, m->dit.cfg.text_dim, &ctx, err);
    if (!rc && guided)
        rc = artifact_f32(text, "context_null", &len_null, m->dit.cfg.text_dim, &ctx_null, err);
    if (!rc)
        rc = reel_weights_open(m->dit.weights, &w, err);
    if (!rc)
        rc = reel_wan_dit_create(&m->dit.cfg, w, job->be, &dit, err);
    if (!rc)
        rc = reel_flow_sampler_create(s->sampler.solver, s->sampler.steps, s->sampler.shift,
                                      NULL, &c.sampler, err);
    if (!rc && !(latent = malloc(sizeof(float) * (size_t)n)))
        rc = reel_errf(err, REEL_E_OTHER, "out of memory for the latent");
    if (rc)
        goto done;

    /* Fresh start from seeded noise, or resume after the last checkpoint. */
    int start = 0;
    reel_workdir_path(job->wd, "denoise.safetensors", path, sizeof path);
    if (access(path, F_OK) == 0) {
        if ((rc = reel_st_open(path, &ck, err)))
            goto done;
        const struct reel_tensor *tl = reel_st_find(ck, "latent");
        const struct reel_tensor *ts = reel_st_find(ck, "sampler_state");
        const struct reel_tensor *tk = reel_st_find(ck, "step");
        if (!tl || tl->dtype != REEL_F32 || reel_tensor_numel(tl) != n || !ts || !tk ||
            tk->dtype != REEL_I64) {
            rc = reel_errf(err, REEL_E_MEDIA, "%s: not a checkpoint of this job", path);
            goto done;
        }
        int64_t step;
        memcpy(&step, tk->data, 8);
        reel_tensor_to_f32(tl, 0, n, latent);
        if ((rc = reel_flow_sampler_state_load(c.sampler, ts->data,
                                               (size_t)reel_tensor_numel(ts), err)))
            goto done;
        start = (int)step + 1;
    } else {
        reel_rng_normal(s->seed, 0, 0, n, latent);
    }

    reel_progress_stage(job->progress, "denoise", s->sampler.steps);
    reel_progress_step(job->progress, start);
    if (start < s->sampler.steps) {
        int64_t tokens = c.shape[1] * (c.shape[2] / m->dit.cfg.patch[1]) *
                         (c.shape[3] / m->dit.cfg.patch[2]);
        struct reel_denoise_params p = {
            .dit = dit,
            .dit_cfg = &m->dit.cfg,
            .sampler = c.sampler,
            .channels = c.shape[0],
            .frames = c.shape[1],
            .height = c.shape[2],
            .width = c.shape[3],
            .context = ctx,
            .context_len = len,
            .context_null = ctx_null,
            .context_null_len = len_null,
            .seq_len = tokens,
            .guide_scale = s->sampler.guidance,
            .start_step = start,
            .on_step = on_step,
            .on_step_ctx = &c,
        };
        rc = reel_denoise(&p, latent, err);
    }
done:
    reel_st_close(ck);
    reel_st_close(text);
    reel_wan_dit_destroy(dit);
    reel_weights_close(w);
    reel_flow_sampler_destroy(c.sampler);
    free(c.state);
    free(latent);
    free(ctx);
    free(ctx_null);
    return rc;
}
