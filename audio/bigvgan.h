/* The BigVGAN vocoder MMAudio uses at 16 kHz (mmaudio/ext/bigvgan/models.py
 * BigVGANVocoder, resblock '1'): conv_pre, ConvTranspose1d upsamplers each
 * followed by the mean of AMP blocks (dilated convs with anti-aliased
 * SnakeBeta/Snake), anti-aliased activation, conv_post, tanh. Weight norm is
 * folded at load from whichever naming the checkpoint uses. */
#ifndef REEL_BIGVGAN_H
#define REEL_BIGVGAN_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/wan_dit.h" /* reel_tensor_emit_fn */

#define REEL_BIGVGAN_MAX 8

struct reel_bigvgan_config {
    int num_mels;
    int upsample_initial_channel;
    int n_ups;
    int upsample_rates[REEL_BIGVGAN_MAX], upsample_kernel_sizes[REEL_BIGVGAN_MAX];
    int n_kernels;
    int resblock_kernel_sizes[REEL_BIGVGAN_MAX];
    int n_dilations; /* per kernel; the same count for every kernel */
    int resblock_dilation_sizes[REEL_BIGVGAN_MAX][REEL_BIGVGAN_MAX];
    int snake_beta;     /* 1: activation 'snakebeta', 0: 'snake' */
    int snake_logscale; /* alpha/beta stored as logs */
    int aa_ratio, aa_taps; /* Activation1d: 2x, 12-tap filters */
};

/* bigvgan_vocoder.yml (MMAudio 16k): 80 mels, 1536 channels, rates
 * 4,4,2,2,2,2, kernels 8,8,4,4,4,4, resblock kernels 3,7,11 x dilations
 * 1,3,5, snakebeta with log scale. */
void reel_bigvgan_config_16k(struct reel_bigvgan_config *cfg);
/* From the yml's keys as JSON (missing keys keep the 16k values). Refuses
 * resblock '2' and activations other than snake/snakebeta. */
int reel_bigvgan_config_from_json(const struct reel_json *j, struct reel_bigvgan_config *cfg,
                                  struct reel_err *err);

/* The three namings a checkpoint can use for each weight-normed conv. */
enum reel_bigvgan_naming {
    REEL_BIGVGAN_PLAIN,       /* `.weight` (after remove_weight_norm) */
    REEL_BIGVGAN_PARAMETRIZE, /* `.parametrizations.weight.original0` (g) / `original1` (v) */
    REEL_BIGVGAN_LEGACY,      /* `.weight_g` / `.weight_v` */
};

/* Every tensor of the state_dict in that naming, in order, buffers included. */
void reel_bigvgan_tensor_table(const struct reel_bigvgan_config *cfg,
                               enum reel_bigvgan_naming naming, reel_tensor_emit_fn emit,
                               void *ctx);

/* Folds w = g * v / ||v|| (norm over all dims but 0, per dim-0 slice d0 of
 * `inner` elements), as torch's weight_norm, into out (f32). */
void reel_weight_norm_fold(const float *g, const float *v, int64_t d0, int64_t inner, float *out);

struct reel_bigvgan;

/* Each conv is taken from g/v (either naming) when present, else `.weight`;
 * g/v are folded into an owned f32 weight. */
int reel_bigvgan_create(const struct reel_bigvgan_config *cfg, const struct reel_weights *w,
                        struct reel_backend *be, struct reel_bigvgan **out, struct reel_err *err);
void reel_bigvgan_destroy(struct reel_bigvgan *v);

/* Samples per mel frame (product of the upsample rates). */
int64_t reel_bigvgan_hop(const struct reel_bigvgan *v);

/* Intermediates: "conv_pre", "ups.i", "stage.i", "activation_post", "conv_post". */
typedef void (*reel_bigvgan_probe_fn)(void *ctx, const char *name, const float *data, int64_t n);
void reel_bigvgan_set_probe(struct reel_bigvgan *v, reel_bigvgan_probe_fn fn, void *ctx);

/* mel [num_mels, T] (log10) -> wave [T * hop] in [-1, 1]. */
int reel_bigvgan_forward(struct reel_bigvgan *v, const float *mel, int64_t T, float *wave,
                         struct reel_err *err);

/* The same for a whole clip's mel, without the click the convolutions make
 * at its end: the mel's last frame is repeated REEL_BIGVGAN_TAIL_FRAMES
 * times and the extra samples dropped. wave [T * hop]. */
enum { REEL_BIGVGAN_TAIL_FRAMES = 8 };
int reel_bigvgan_forward_clip(struct reel_bigvgan *v, const float *mel, int64_t T, float *wave,
                              struct reel_err *err);

#endif
