/* The Wan denoising loop: for each scheduler timestep, the DiT's conditional
 * (and, with guidance, unconditional) flow prediction, classifier-free
 * guidance, and one sampler step - the loop of WanT2V.generate, plus the
 * TI2V per-token timesteps and the i2v channel concatenation. */
#ifndef REEL_DENOISE_H
#define REEL_DENOISE_H

#include <stdint.h>

#include "kernels/err.h"
#include "stages/flow_sampler.h"
#include "stages/wan_dit.h"

/* What the per-step callback sees; the pointers are valid during the call only. */
struct reel_denoise_step_info {
    int step;                     /* 0-based index into the schedule */
    int steps;                    /* schedule length */
    int64_t timestep;             /* the int64 timestep fed to the DiT */
    const float *latent;          /* the latent after this step */
    const float *noise_pred_cond; /* conditional prediction */
    const float *noise_pred;      /* guided prediction (== cond when guide_scale == 1) */
    int64_t n;                    /* floats in each of the three */
};

/* Called after every step (checkpointing, progress, golden comparison).
 * A non-zero return stops the loop and is returned (fill err). */
typedef int (*reel_denoise_step_fn)(void *ctx, const struct reel_denoise_step_info *info,
                                    struct reel_err *err);

struct reel_denoise_params {
    struct reel_wan_dit *dit;
    const struct reel_wan_dit_config *dit_cfg; /* the config dit was built from (shapes, patch) */
    struct reel_flow_sampler *sampler;   /* its schedule drives the loop */
    int64_t channels, frames, height, width; /* latent [C, F, H, W] */
    const float *context;                /* [context_len, text_dim] */
    int64_t context_len;
    const float *context_null;           /* negative prompt; unused when guide_scale == 1 */
    int64_t context_null_len;
    int64_t seq_len;                     /* DiT seq_len (>= token count) */
    double guide_scale;                  /* 1 = no unconditional pass */

    /* i2v: channels appended to the latent before every DiT call (the
     * reference's y = [mask; image latent]), [concat_channels, F, H, W]. */
    const float *concat;
    int64_t concat_channels;

    /* TI2V: mask [C, F, H, W] (1 = generated, 0 = kept from cond_latent).
     * The latent starts as (1 - mask) * cond_latent + mask * latent and is
     * re-blended after every step; the DiT gets per-token timesteps
     * mask[0, f*pt, h*ph, w*pw] * t (patch from dit_cfg),
     * padded to seq_len with t. */
    const float *mask;
    const float *cond_latent;

    /* Resume: first step to run (the sampler must be at that step, e.g. via
     * reel_flow_sampler_state_load, and the latent the one after step
     * start_step - 1). 0 for a fresh run. */
    int start_step;
    /* One past the last step to run; 0 = to the end of the schedule. With
     * start_step it splits a run, e.g. across Wan2.2's high-noise and
     * low-noise experts or at a checkpoint. */
    int end_step;

    reel_denoise_step_fn on_step;
    void *on_step_ctx;
};

/* Runs the loop in place: latent [C, F, H, W] holds the initial noise (or
 * the resumed latent) and ends as the final latent. */
int reel_denoise(const struct reel_denoise_params *p, float *latent, struct reel_err *err);

#endif
