/* The Wan CFG denoising loop (WanT2V.generate / WanTI2V.generate).
 *
 * The guidance is computed as uncond + g * (cond - uncond) with one float32
 * rounding per operation in exactly that order, like the reference's tensor
 * expression; a fused or reassociated form drifts from the golden
 * trajectories step after step. */
#include "stages/denoise.h"

#include <stdlib.h>
#include <string.h>

/* (1 - mask) * z + mask * x, float32, in the reference's order. */
static void blend(float *x, const float *mask, const float *z, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float keep = 1.0f - mask[i];
        float a = keep * z[i];
        float b = mask[i] * x[i];
        x[i] = a + b;
    }
}

static int check_params(const struct reel_denoise_params *p, const float *latent,
                        struct reel_err *err)
{
    if (!p || !p->dit || !p->dit_cfg || !p->sampler || !latent)
        return reel_errf(err, REEL_E_OTHER, "denoise: missing DiT, config, sampler or latent");
    const struct reel_wan_dit_config *cfg = p->dit_cfg;
    if (p->channels < 1 || p->frames < 1 || p->height < 1 || p->width < 1)
        return reel_errf(err, REEL_E_SPEC, "denoise: bad latent shape [%lld, %lld, %lld, %lld]",
                         (long long)p->channels, (long long)p->frames, (long long)p->height,
                         (long long)p->width);
    if (p->concat_channels < 0 || (p->concat_channels > 0 && !p->concat))
        return reel_errf(err, REEL_E_SPEC, "denoise: concat_channels without concat data");
    if (p->channels + p->concat_channels != cfg->in_dim)
        return reel_errf(err, REEL_E_SPEC,
                         "denoise: latent has %lld channels (+%lld concatenated), the DiT takes %d",
                         (long long)p->channels, (long long)p->concat_channels, cfg->in_dim);
    if (p->channels != cfg->out_dim)
        return reel_errf(err, REEL_E_SPEC,
                         "denoise: latent has %lld channels, the DiT predicts %d",
                         (long long)p->channels, cfg->out_dim);
    if (!p->context || p->context_len < 1)
        return reel_errf(err, REEL_E_SPEC, "denoise: missing text context");
    if (p->guide_scale != 1.0 && (!p->context_null || p->context_null_len < 1))
        return reel_errf(err, REEL_E_SPEC,
                         "denoise: guidance scale %g needs a negative-prompt context",
                         p->guide_scale);
    if ((p->mask == NULL) != (p->cond_latent == NULL))
        return reel_errf(err, REEL_E_SPEC, "denoise: mask and cond_latent go together");
    if (p->mask) {
        for (int i = 0; i < 3; i++)
            if (cfg->patch[i] < 1)
                return reel_errf(err, REEL_E_SPEC, "denoise: bad patch size in the DiT config");
        int64_t tokens = (p->frames / cfg->patch[0]) * (p->height / cfg->patch[1]) *
                         (p->width / cfg->patch[2]);
        if (tokens > p->seq_len)
            return reel_errf(err, REEL_E_SPEC, "denoise: %lld tokens exceed seq_len %lld",
                             (long long)tokens, (long long)p->seq_len);
    }
    int steps = reel_flow_sampler_steps(p->sampler);
    if (p->start_step < 0 || p->start_step > steps)
        return reel_errf(err, REEL_E_SPEC, "denoise: start step %d outside 0..%d",
                         p->start_step, steps);
    if (p->end_step != 0 && (p->end_step < p->start_step || p->end_step > steps))
        return reel_errf(err, REEL_E_SPEC, "denoise: end step %d outside %d..%d", p->end_step,
                         p->start_step, steps);
    if (reel_flow_sampler_next_step(p->sampler) != p->start_step)
        return reel_errf(err, REEL_E_OTHER,
                         "denoise: the sampler is at step %d, the loop starts at %d",
                         reel_flow_sampler_next_step(p->sampler), p->start_step);
    return REEL_OK;
}

int reel_denoise(const struct reel_denoise_params *p, float *latent, struct reel_err *err)
{
    int rc = check_params(p, latent, err);
    if (rc)
        return rc;
    const struct reel_wan_dit_config *cfg = p->dit_cfg;
    const int64_t plane = p->frames * p->height * p->width;
    const int64_t n = p->channels * plane;
    const int guided = p->guide_scale != 1.0;
    const float g = (float)p->guide_scale; /* a Python float times a float32 tensor */
    const int steps = reel_flow_sampler_steps(p->sampler);
    const int end = p->end_step ? p->end_step : steps;
    const int64_t *timesteps = reel_flow_sampler_timesteps(p->sampler);

    float *cond = malloc(sizeof(float) * (size_t)n);
    float *uncond = guided ? malloc(sizeof(float) * (size_t)n) : NULL;
    float *pred = guided ? malloc(sizeof(float) * (size_t)n) : NULL;
    float *x_in = p->concat ? malloc(sizeof(float) * (size_t)(n + p->concat_channels * plane))
                            : NULL;
    int64_t nt = p->mask ? p->seq_len : 1;
    float *tvals = malloc(sizeof(float) * (size_t)nt);
    if (!cond || (guided && (!uncond || !pred)) || (p->concat && !x_in) || !tvals) {
        rc = reel_errf(err, REEL_E_OTHER, "denoise: out of memory");
        goto done;
    }
    if (x_in)
        memcpy(x_in + n, p->concat, sizeof(float) * (size_t)(p->concat_channels * plane));
    if (p->mask && p->start_step == 0)
        blend(latent, p->mask, p->cond_latent, n);

    for (int k = p->start_step; k < end; k++) {
        const float t = (float)timesteps[k];
        if (p->mask) {
            /* Token grid in (f, h, w) row-major order, like the patch embedding. */
            const int pt = cfg->patch[0], ph = cfg->patch[1], pw = cfg->patch[2];
            const int64_t tf = p->frames / pt, th = p->height / ph, tw = p->width / pw;
            int64_t i = 0;
            for (int64_t f = 0; f < tf; f++)
                for (int64_t h = 0; h < th; h++)
                    for (int64_t w = 0; w < tw; w++) {
                        float m = p->mask[((f * pt) * p->height + h * ph) * p->width + w * pw];
                        tvals[i++] = m * t;
                    }
            for (; i < nt; i++)
                tvals[i] = t;
        } else {
            tvals[0] = t;
        }
        if (x_in)
            memcpy(x_in, latent, sizeof(float) * (size_t)n);

        struct reel_wan_dit_input in = {
            .x = x_in ? x_in : latent,
            .frames = p->frames,
            .height = p->height,
            .width = p->width,
            .t = tvals,
            .t_per_token = p->mask != NULL,
            .context = p->context,
            .context_len = p->context_len,
            .seq_len = p->seq_len,
        };
        rc = reel_wan_dit_forward(p->dit, &in, cond, err);
        if (rc) {
            reel_err_prefix(err, "denoise step %d (t=%lld), conditional pass: ", k,
                            (long long)timesteps[k]);
            goto done;
        }
        const float *noise_pred = cond;
        if (guided) {
            in.context = p->context_null;
            in.context_len = p->context_null_len;
            rc = reel_wan_dit_forward(p->dit, &in, uncond, err);
            if (rc) {
                reel_err_prefix(err, "denoise step %d (t=%lld), unconditional pass: ", k,
                                (long long)timesteps[k]);
                goto done;
            }
            for (int64_t i = 0; i < n; i++) {
                float d = cond[i] - uncond[i];
                float gd = g * d;
                pred[i] = uncond[i] + gd;
            }
            noise_pred = pred;
        }

        rc = reel_flow_sampler_step(p->sampler, k, noise_pred, latent, n, err);
        if (rc)
            goto done;
        if (p->mask)
            blend(latent, p->mask, p->cond_latent, n);

        if (p->on_step) {
            struct reel_denoise_step_info info = {
                .step = k,
                .steps = steps,
                .timestep = timesteps[k],
                .latent = latent,
                .noise_pred_cond = cond,
                .noise_pred = noise_pred,
                .n = n,
            };
            rc = p->on_step(p->on_step_ctx, &info, err);
            if (rc) {
                if (!err || err->code == REEL_OK)
                    reel_errf(err, rc, "denoise: stopped by the step callback at step %d", k);
                goto done;
            }
        }
    }
    rc = REEL_OK;
done:
    free(cond);
    free(uncond);
    free(pred);
    free(x_in);
    free(tvals);
    return rc;
}
