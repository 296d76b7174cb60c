/* Stage `cond` of models with frame conditioning (dit.frame_cond, the
 * Wan2.1 i2v / FLF2V channel-concat convention): the spec's images at their
 * frames, mid-grey (0) elsewhere, through the VAE encoder (mu, normalised as
 * the denoiser's latents: (mu - latent_mean) / latent_std), and the 4-channel
 * frame mask, into cond.safetensors:
 *   mask   [4, F_lat, H_lat, W_lat]
 *   latent [z_dim, F_lat, H_lat, W_lat]
 * stage_denoise_av feeds [x_t | mask | latent] to the video tower on every
 * pass (conditional and unconditional alike). */
#ifndef REEL_STAGE_COND_H
#define REEL_STAGE_COND_H

#include <stdint.h>

#include "kernels/err.h"

struct reel_job;

int reel_stage_cond(struct reel_job *job, struct reel_err *err);

/* The mask of a clip of F = 4 * (F_lat - 1) + 1 video frames (temporal
 * stride 4) with frame_has_image[f] in {0, 1}: the sequence
 * [m_0, m_0, m_0, m_0, m_1, ..., m_{F-1}] (length 4 * F_lat) read as
 * [F_lat, 4] and transposed, so channel c of latent frame j is element
 * 4 * j + c, broadcast over the hw = H_lat * W_lat cells.
 * out: [4, F_lat, hw]. */
void reel_cond_mask(const unsigned char *frame_has_image, int64_t latent_frames, int64_t hw,
                    float *out);

#endif
