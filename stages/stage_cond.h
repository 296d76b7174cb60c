/* Stage `cond` of models with frame conditioning (dit.frame_cond, the
 * Wan2.1 i2v / FLF2V channel-concat convention): the spec's images at their
 * frames, mid-grey (0) elsewhere, through the VAE encoder (mu, normalised as
 * the denoiser's latents: (mu - latent_mean) / latent_std), and the frame
 * mask (one channel per video frame of a latent frame), into cond.safetensors:
 *   mask   [S, F_lat, H_lat, W_lat]   (S: the VAE's temporal stride)
 *   latent [z_dim, F_lat, H_lat, W_lat]
 * stage_denoise_av feeds [x_t | mask | latent] to the video tower on every
 * pass (conditional and unconditional alike). */
#ifndef REEL_STAGE_COND_H
#define REEL_STAGE_COND_H

#include <stdint.h>

#include "kernels/err.h"

struct reel_job;

int reel_stage_cond(struct reel_job *job, struct reel_err *err);

/* The mask of a clip of F = S * (F_lat - 1) + 1 video frames (S = stride,
 * the VAE's temporal stride: 4 for Wan2.1, 2 for a VAE that halves time)
 * with frame_has_image[f] in {0, 1}: the sequence
 * [m_0 (S times), m_1, ..., m_{F-1}] (length S * F_lat) read as [F_lat, S]
 * and transposed, so channel c of latent frame j is element S * j + c,
 * broadcast over the hw = H_lat * W_lat cells. out: [S, F_lat, hw]. */
void reel_cond_mask(const unsigned char *frame_has_image, int stride, int64_t latent_frames,
                    int64_t hw, float *out);

#endif
