/* Stage `denoise` for models with an audio tower (Ovi): seeded video and
 * audio noise through one shared timestep schedule, the fusion model's
 * conditional pass (both towers on the prompt) and, with guidance, its
 * unconditional pass (each tower on its own negative prompt, with skip-layer
 * guidance), a guidance scale per tower, and one sampler per tower - the
 * loop of Ovi's OviFusionEngine.generate. After every step both latents and
 * both samplers' states go to denoise.safetensors (atomically), so a killed
 * render resumes at the next step with the same bytes.
 *
 * A model with frame conditioning (dit.frame_cond) gets the video tower's
 * input as the channel concat [x_t | mask | cond latent] of cond.safetensors
 * (stage `cond`) on every pass, conditional and unconditional alike; the
 * audio tower is unchanged. With dit.pin_first_latent and frame 0 given,
 * the first latent frame is set to (1 - sigma) cond + sigma noise before the
 * first pass and after every step (its own initial noise, so the sample
 * stays on the path the model was trained on), ending on the condition
 * latent itself at sigma 0. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/rng.h"
#include "pipeline/job.h"
#include "stages/ovi_fusion.h"

/* Noise stream of the audio latent (the video latent uses stream 0, as Wan). */
#define AUDIO_NOISE_STREAM 1

struct av_state {
    struct reel_job *job;
    struct reel_flow_sampler *sv, *sa;
    int64_t vshape[4], ashape[2];
    unsigned char *buf;
};

static int save_checkpoint(struct av_state *c, int step, const float *vid, const float *aud,
                           struct reel_err *err)
{
    size_t nv = reel_flow_sampler_state_bytes(c->sv), na = reel_flow_sampler_state_bytes(c->sa);
    unsigned char *buf = realloc(c->buf, nv + na + 1);
    if (!buf)
        return reel_errf(err, REEL_E_OTHER, "out of memory saving the sampler state");
    c->buf = buf;
    reel_flow_sampler_state_save(c->sv, buf);
    reel_flow_sampler_state_save(c->sa, buf + nv);
    int64_t step64 = step;
    struct reel_tensor t[5] = {
        {.dtype = REEL_F32, .ndim = 4, .data = (void *)vid, .name = "latent"},
        {.dtype = REEL_F32, .ndim = 2, .data = (void *)aud, .name = "audio_latent"},
        {.dtype = REEL_U8, .ndim = 1, .shape = {(int64_t)nv}, .data = buf,
         .name = "sampler_state"},
        {.dtype = REEL_U8, .ndim = 1, .shape = {(int64_t)na}, .data = buf + nv,
         .name = "audio_sampler_state"},
        {.dtype = REEL_I64, .ndim = 1, .shape = {1}, .data = &step64, .name = "step"},
    };
    memcpy(t[0].shape, c->vshape, sizeof c->vshape);
    memcpy(t[1].shape, c->ashape, sizeof c->ashape);
    char path[4096];
    reel_workdir_path(c->job->wd, "denoise.safetensors", path, sizeof path);
    return reel_st_write(path, t, 5, NULL, 0, err);
}

static int load_checkpoint(struct av_state *c, const char *path, float *vid, float *aud,
                           int *start, struct reel_err *err)
{
    struct reel_st_file *f = NULL;
    int rc = reel_st_open(path, &f, err);
    if (rc)
        return rc;
    int64_t nv = c->vshape[0] * c->vshape[1] * c->vshape[2] * c->vshape[3];
    int64_t na = c->ashape[0] * c->ashape[1];
    const struct reel_tensor *tv = reel_st_find(f, "latent");
    const struct reel_tensor *ta = reel_st_find(f, "audio_latent");
    const struct reel_tensor *sv = reel_st_find(f, "sampler_state");
    const struct reel_tensor *sa = reel_st_find(f, "audio_sampler_state");
    const struct reel_tensor *tk = reel_st_find(f, "step");
    if (!tv || tv->dtype != REEL_F32 || reel_tensor_numel(tv) != nv || !ta ||
        ta->dtype != REEL_F32 || reel_tensor_numel(ta) != na || !sv || !sa || !tk ||
        tk->dtype != REEL_I64) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: not a checkpoint of this job", path);
    } else {
        int64_t step;
        memcpy(&step, tk->data, 8);
        reel_tensor_to_f32(tv, 0, nv, vid);
        reel_tensor_to_f32(ta, 0, na, aud);
        rc = reel_flow_sampler_state_load(c->sv, sv->data, (size_t)reel_tensor_numel(sv), err);
        if (!rc)
            rc = reel_flow_sampler_state_load(c->sa, sa->data, (size_t)reel_tensor_numel(sa),
                                              err);
        *start = (int)step + 1;
    }
    reel_st_close(f);
    return rc;
}

/* A [rows, cols] f32 tensor of text.safetensors (cols = the text width). */
static int text_tensor(const struct reel_st_file *f, const char *name, int64_t cols, float **out,
                       int64_t *rows, struct reel_err *err)
{
    const struct reel_tensor *t = reel_st_find(f, name);
    if (!t || t->dtype != REEL_F32 || t->ndim != 2 || t->shape[1] != cols)
        return reel_errf(err, REEL_E_MEDIA, "%s: tensor '%s' missing or malformed", f->path,
                         name);
    *rows = t->shape[0];
    if (!(*out = malloc(sizeof(float) * (size_t)(reel_tensor_numel(t) + 1))))
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    reel_tensor_to_f32(t, 0, reel_tensor_numel(t), *out);
    return REEL_OK;
}

/* The frame conditioning of cond.safetensors into vin's channels
 * [out_dim, in_dim): mask (4 channels) then the condition latent. vin:
 * [in_dim, F, H, W]; n_cell = F * H * W. */
static int load_cond(struct reel_job *job, const struct reel_wan_dit_config *vc, int64_t n_cell,
                     const int64_t *vshape, float *vin, struct reel_err *err)
{
    char path[4096];
    reel_workdir_path(job->wd, "cond.safetensors", path, sizeof path);
    struct reel_st_file *f = NULL;
    int rc = reel_st_open(path, &f, err);
    if (rc)
        return rc;
    const struct reel_tensor *tm = reel_st_find(f, "mask");
    const struct reel_tensor *tl = reel_st_find(f, "latent");
    int64_t mc = vc->in_dim - 2 * (int64_t)vc->out_dim;
    int ok = tm && tl && tm->dtype == REEL_F32 && tl->dtype == REEL_F32 && tm->ndim == 4 &&
             tl->ndim == 4 && tm->shape[0] == mc && tl->shape[0] == vc->out_dim;
    for (int d = 1; ok && d < 4; d++)
        ok = tm->shape[d] == vshape[d] && tl->shape[d] == vshape[d];
    if (!ok) {
        rc = reel_errf(err, REEL_E_MEDIA,
                       "%s: mask [%lld, F, H, W] / latent [%d, F, H, W] missing or not of this "
                       "job's shape",
                       path, (long long)mc, vc->out_dim);
    } else {
        reel_tensor_to_f32(tm, 0, mc * n_cell, vin + vc->out_dim * n_cell);
        reel_tensor_to_f32(tl, 0, (int64_t)vc->out_dim * n_cell,
                           vin + (vc->out_dim + mc) * n_cell);
    }
    reel_st_close(f);
    return rc;
}

/* The first latent frame pinned to the condition: x = (1 - sigma) c + sigma eps
 * over its h*w cells in each of the z channels. vid: [z, F, h, w]; c and eps
 * hold the same cells of the condition latent and of the initial noise. */
struct first_pin {
    float *eps;          /* [z, hw] */
    const float *cond;   /* vin's condition latent, [z, F, h, w] */
    int64_t z, hw, n_cell;
};

static void pin_first_latent(const struct first_pin *p, float sigma, float *vid)
{
    for (int64_t c = 0; c < p->z; c++) {
        const float *cc = p->cond + c * p->n_cell, *e = p->eps + c * p->hw;
        float *x = vid + c * p->n_cell;
        for (int64_t i = 0; i < p->hw; i++)
            x[i] = (1.0f - sigma) * cc[i] + sigma * e[i];
    }
}

/* out = uncond + g * (cond - uncond), in place over cond; g == 1 keeps cond. */
static void guide(float *cond, const float *uncond, int64_t n, double g)
{
    if (g == 1.0)
        return;
    float gf = (float)g;
    for (int64_t i = 0; i < n; i++)
        cond[i] = uncond[i] + gf * (cond[i] - uncond[i]);
}

int reel_stage_denoise_av(struct reel_job *job, struct reel_err *err)
{
    const struct reel_spec *s = job->spec;
    const struct reel_model_config *m = &s->model_config;
    const struct reel_wan_dit_config *vc = &m->dit.cfg;
    struct av_state c = {.job = job};
    c.vshape[0] = vc->out_dim;
    c.vshape[1] = (s->frames - 1) / m->vae.temporal_stride + 1;
    c.vshape[2] = s->height / m->vae.spatial_stride;
    c.vshape[3] = s->width / m->vae.spatial_stride;
    /* audio length from the clip's duration in seconds */
    c.ashape[0] = reel_model_audio_latents(m, s->duration);
    c.ashape[1] = m->audio.tower.in_dim;
    int64_t nv = c.vshape[0] * c.vshape[1] * c.vshape[2] * c.vshape[3];
    int64_t na = c.ashape[0] * c.ashape[1];
    double gv = s->sampler.guidance, ga = s->sampler.audio_guidance;
    int guided = gv != 1.0 || ga != 1.0;

    struct reel_st_file *text = NULL;
    struct reel_weights *w = NULL;
    struct reel_ovi_fusion *model = NULL;
    float *ctx = NULL, *ctx_nv = NULL, *ctx_na = NULL;
    float *vid = NULL, *aud = NULL, *vpos = NULL, *apos = NULL, *vneg = NULL, *aneg = NULL;
    float *vin = NULL; /* frame_cond: [x_t | mask | cond latent] */
    struct first_pin pin = {0};
    const int frame_cond = m->dit.frame_cond;
    const int64_t n_cell = c.vshape[1] * c.vshape[2] * c.vshape[3];
    int64_t len = 0, len_nv = 0, len_na = 0;
    char path[4096];
    struct reel_ovi_config oc;
    reel_model_config_ovi(m, &oc);

    int rc = reel_st_open(reel_workdir_path(job->wd, "text.safetensors", path, sizeof path),
                          &text, err);
    if (!rc)
        rc = text_tensor(text, "context", vc->text_dim, &ctx, &len, err);
    if (!rc && guided)
        rc = text_tensor(text, "context_null", vc->text_dim, &ctx_nv, &len_nv, err);
    if (!rc && guided)
        rc = text_tensor(text, "context_null_audio", vc->text_dim, &ctx_na, &len_na, err);
    if (!rc)
        rc = reel_weights_open(m->dit.weights, &w, err);
    if (!rc)
        rc = reel_ovi_fusion_create(&oc, w, job->be, &model, err);
    /* one schedule for both towers: two samplers built alike */
    if (!rc)
        rc = reel_flow_sampler_create(s->sampler.solver, s->sampler.steps, s->sampler.shift, NULL,
                                      &c.sv, err);
    if (!rc)
        rc = reel_flow_sampler_create(s->sampler.solver, s->sampler.steps, s->sampler.shift, NULL,
                                      &c.sa, err);
    if (!rc) {
        vid = malloc(sizeof(float) * (size_t)nv);
        vpos = malloc(sizeof(float) * (size_t)nv);
        aud = malloc(sizeof(float) * (size_t)na);
        apos = malloc(sizeof(float) * (size_t)na);
        if (guided) {
            vneg = malloc(sizeof(float) * (size_t)nv);
            aneg = malloc(sizeof(float) * (size_t)na);
        }
        if (frame_cond)
            vin = malloc(sizeof(float) * (size_t)(vc->in_dim * n_cell));
        if (!vid || !vpos || !aud || !apos || (guided && (!vneg || !aneg)) || (frame_cond && !vin))
            rc = reel_errf(err, REEL_E_OTHER, "out of memory for the latents");
    }
    if (!rc && frame_cond)
        rc = load_cond(job, vc, n_cell, c.vshape, vin, err);
    /* mask channel 0 of latent frame 0 says whether frame 0 is given */
    if (!rc && m->dit.pin_first_latent && vin[vc->out_dim * n_cell] > 0.5f) {
        pin.z = vc->out_dim;
        pin.hw = c.vshape[2] * c.vshape[3];
        pin.n_cell = n_cell;
        pin.cond = vin + (vc->in_dim - vc->out_dim) * n_cell;
        if (!(pin.eps = malloc(sizeof(float) * (size_t)(pin.z * pin.hw))))
            rc = reel_errf(err, REEL_E_OTHER, "out of memory for the first-frame pin");
        for (int64_t ch = 0; !rc && ch < pin.z; ch++)
            reel_rng_normal(s->seed, 0, ch * n_cell, pin.hw, pin.eps + ch * pin.hw);
    }
    if (rc)
        goto done;

    int start = 0;
    reel_workdir_path(job->wd, "denoise.safetensors", path, sizeof path);
    if (access(path, F_OK) == 0) {
        if ((rc = load_checkpoint(&c, path, vid, aud, &start, err)))
            goto done;
    } else {
        reel_rng_normal(s->seed, 0, 0, nv, vid);
        reel_rng_normal(s->seed, AUDIO_NOISE_STREAM, 0, na, aud);
    }

    reel_progress_stage(job->progress, "denoise", s->sampler.steps);
    reel_progress_step(job->progress, start);
    const int64_t *ts = reel_flow_sampler_timesteps(c.sv);
    const float *sigmas = reel_flow_sampler_sigmas(c.sv);
    if (pin.eps)
        pin_first_latent(&pin, sigmas[start], vid);
    int64_t vtokens = c.vshape[1] * (c.vshape[2] / vc->patch[1]) * (c.vshape[3] / vc->patch[2]);
    for (int step = start; step < s->sampler.steps; step++) {
        float t = (float)ts[step];
        if (frame_cond)
            memcpy(vin, vid, sizeof(float) * (size_t)nv);
        struct reel_ovi_input in = {
            .vid = frame_cond ? vin : vid, .frames = c.vshape[1], .height = c.vshape[2], .width = c.vshape[3],
            .audio = aud, .audio_len = c.ashape[0],
            .vid_t = &t, .audio_t = &t,
            .vid_context = ctx, .audio_context = ctx,
            .vid_context_len = len, .audio_context_len = len,
            .vid_seq_len = vtokens, .audio_seq_len = c.ashape[0],
        };
        if ((rc = reel_ovi_fusion_forward(model, &in, vpos, apos, err)))
            goto done;
        if (guided) {
            in.vid_context = ctx_nv;
            in.vid_context_len = len_nv;
            in.audio_context = ctx_na;
            in.audio_context_len = len_na;
            in.slg_layer = s->sampler.slg_layer > 0 ? s->sampler.slg_layer : 0;
            if ((rc = reel_ovi_fusion_forward(model, &in, vneg, aneg, err)))
                goto done;
            guide(vpos, vneg, nv, gv);
            guide(apos, aneg, na, ga);
        }
        if ((rc = reel_flow_sampler_step(c.sv, step, vpos, vid, nv, err)) ||
            (rc = reel_flow_sampler_step(c.sa, step, apos, aud, na, err)))
            goto done;
        if (pin.eps)
            pin_first_latent(&pin, sigmas[step + 1], vid);
        if ((rc = save_checkpoint(&c, step, vid, aud, err)))
            goto done;
        reel_progress_step(job->progress, step + 1);
        reel_job_kill_point("denoise", step);
    }
done:
    reel_st_close(text);
    reel_ovi_fusion_destroy(model);
    reel_weights_close(w);
    reel_flow_sampler_destroy(c.sv);
    reel_flow_sampler_destroy(c.sa);
    free(c.buf);
    free(ctx);
    free(ctx_nv);
    free(ctx_na);
    free(vid);
    free(vin);
    free(pin.eps);
    free(aud);
    free(vpos);
    free(apos);
    free(vneg);
    free(aneg);
    return rc;
}
