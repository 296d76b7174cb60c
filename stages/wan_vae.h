/* The Wan temporal VAEs: WanVAE_ of Wan2.1 (vae.py: 4x8x8, z 16) and of
 * Wan2.2 (vae2_2.py: 2x2 patchify, then 4x8x8, z 48). Config from the
 * constructor kwargs, weights bound by the checkpoint's own names, and
 * chunked causal encode / streaming decode exactly as the reference runs
 * them (frame 0 alone, then groups of 4 frames, feature cache carried). */
#ifndef REEL_WAN_VAE_H
#define REEL_WAN_VAE_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/wan_dit.h" /* reel_tensor_emit_fn */

#define REEL_WAN_VAE_MAX_MULT 8
/* The encoder reads frame 0 alone, then chunks of this many video frames:
 * an encoded clip has 1 + 4k frames whatever the VAE's temporal stride. */
#define REEL_WAN_VAE_CHUNK_FRAMES 4

struct reel_wan_vae_config {
    int version;            /* 21 (vae.py) or 22 (vae2_2.py) */
    int dim;                /* encoder base width (2.1: decoder too) */
    int dec_dim;            /* 2.2 decoder base width; equals dim for 2.1 */
    int z_dim;              /* latent channels */
    int dim_mult[REEL_WAN_VAE_MAX_MULT];
    int n_mult;
    int num_res_blocks;
    double attn_scales[REEL_WAN_VAE_MAX_MULT]; /* 2.1 only; 2.2 ignores them like the reference */
    int n_attn_scales;
    int temporal_downsample[REEL_WAN_VAE_MAX_MULT]; /* the reference's `temperal_downsample` */
    int n_temporal;
};

/* Fills cfg from a JSON object of WanVAE_ kwargs; missing keys take the
 * constructor defaults of that version. Errors (REEL_E_MODEL) name the key. */
int reel_wan_vae_config_from_json(const struct reel_json *j, int version,
                                  struct reel_wan_vae_config *cfg, struct reel_err *err);

/* Every tensor of WanVAE_.state_dict(), in order (names as in the .pth). */
void reel_wan_vae_tensor_table(const struct reel_wan_vae_config *cfg, reel_tensor_emit_fn emit,
                               void *ctx);

struct reel_wan_vae;

/* Binds the weights (not copied). A missing or mis-shaped tensor is an error
 * naming it. */
int reel_wan_vae_create(const struct reel_wan_vae_config *cfg, const struct reel_weights *w,
                        struct reel_backend *be, struct reel_wan_vae **out, struct reel_err *err);
void reel_wan_vae_destroy(struct reel_wan_vae *vae);

/* Sizes. Video H and W must be multiples of the spatial factor (8 for 2.1,
 * 16 for 2.2 with the real dim_mult). Video frames beyond 1 + 4k are ignored,
 * as the reference does; a latent of F frames decodes to
 * 1 + (F - 1) * temporal_factor frames. */
int reel_wan_vae_spatial_factor(const struct reel_wan_vae *vae);
int reel_wan_vae_temporal_factor(const struct reel_wan_vae *vae);
int64_t reel_wan_vae_latent_frames(const struct reel_wan_vae *vae, int64_t video_frames);
int64_t reel_wan_vae_video_frames(const struct reel_wan_vae *vae, int64_t latent_frames);

/* Optional capture of intermediates (golden debugging): called per chunk with
 * "enc_conv1_out" (the [2z, n, h, w] output of WanVAE_.conv1, frames
 * first_frame.. of the latent) and "dec_conv2_out" ([z, 1, h, w]). */
typedef void (*reel_wan_vae_probe_fn)(void *ctx, const char *name, const float *data,
                                      int64_t channels, int64_t first_frame, int64_t frames,
                                      int64_t h, int64_t w);
void reel_wan_vae_set_probe(struct reel_wan_vae *vae, reel_wan_vae_probe_fn fn, void *ctx);

/* video: [3, T, H, W] in [-1, 1]. mean / inv_std: [z_dim] (the wrapper's
 * scale = [mean, 1/std]). mu_out: [z_dim, latent_frames(T), H/s, W/s]
 * receives (mu_raw - mean) * inv_std. */
int reel_wan_vae_encode(struct reel_wan_vae *vae, const float *video, int64_t T, int64_t H,
                        int64_t W, const float *mean, const float *inv_std, float *mu_out,
                        struct reel_err *err);

/* Called after each latent frame with its decoded frames [3, n, H, W]
 * (H = h * spatial_factor; n = 1 for the first latent frame,
 * temporal_factor after). Unclamped: the caller clamps to [-1, 1]. A
 * non-zero return stops decoding and is returned by decode (the callback
 * should fill err; a generic message is used if it does not). */
typedef int (*reel_wan_vae_frame_fn)(void *ctx, const float *frames, int64_t first_index,
                                     int64_t n, struct reel_err *err);

/* latent: [z_dim, F, h, w]; z / inv_std + mean, conv2, then the decoder one
 * latent frame at a time. Memory does not depend on F. */
int reel_wan_vae_decode(struct reel_wan_vae *vae, const float *latent, int64_t F, int64_t h,
                        int64_t w, const float *mean, const float *inv_std,
                        reel_wan_vae_frame_fn frame_cb, void *ctx, struct reel_err *err);

#endif
