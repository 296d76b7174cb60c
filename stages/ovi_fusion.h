/* Ovi's FusionModel: a video WanModel (Wan2.2 ti2v layout) and an audio
 * WanModel (model_type t2a) run block pair by block pair, each tower's
 * cross-attention also attending to the other tower. Weights load by the
 * checkpoint's own names (video_model.* / audio_model.*). */
#ifndef REEL_OVI_FUSION_H
#define REEL_OVI_FUSION_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/wan_dit.h"

/* The audio tower's WanModel kwargs (model_type 't2a', patch_size [1]). */
struct reel_ovi_audio_config {
    int in_dim, out_dim, dim, ffn_dim, freq_dim, text_dim, text_len;
    int num_heads, num_layers;
    int qk_norm, cross_attn_norm;
    double eps;
    double rope_scale; /* temporal_rope_scaling_factor: aligns audio positions to video frames */
};

struct reel_ovi_config {
    struct reel_wan_dit_config video;
    struct reel_ovi_audio_config audio;
};

/* From a JSON object holding the two towers' kwargs under "video"/"audio"
 * (or FusionModel's "video_config"/"audio_config"). Missing keys take
 * WanModel's defaults. The towers must agree on dim, heads and layers. */
int reel_ovi_config_from_json(const struct reel_json *j, struct reel_ovi_config *cfg,
                              struct reel_err *err);

/* Every tensor FusionModel.state_dict() holds, in its order. */
void reel_ovi_tensor_table(const struct reel_ovi_config *cfg, reel_tensor_emit_fn emit,
                           void *ctx);

struct reel_ovi_fusion;

int reel_ovi_fusion_create(const struct reel_ovi_config *cfg, const struct reel_weights *w,
                           struct reel_backend *be, struct reel_ovi_fusion **out,
                           struct reel_err *err);
void reel_ovi_fusion_destroy(struct reel_ovi_fusion *m);

/* Intermediates for golden debugging, named like the golden mid.* tensors
 * without "mid." ("vid.e0", "audio.block.1.cross_attn_out", ...). */
typedef void (*reel_ovi_probe_fn)(void *ctx, const char *name, const float *data, int64_t n);

struct reel_ovi_input {
    const float *vid;                 /* [in_dim, F, H, W] */
    int64_t frames, height, width;
    const float *audio;               /* [audio_len, in_dim], channel-last */
    int64_t audio_len;
    const float *vid_t, *audio_t;     /* 1 value, or one per token (seq_len) with *_per_token */
    int vid_t_per_token, audio_t_per_token;
    const float *vid_context, *audio_context; /* [len, text_dim] */
    int64_t vid_context_len, audio_context_len;
    int64_t vid_seq_len, audio_seq_len; /* >= token counts; extra keys masked */
    int slg_layer;                    /* > 0: skip that whole fused block (skip-layer guidance) */
    reel_ovi_probe_fn probe;
    void *probe_ctx;
};

/* vid_out [out_dim, F, H, W]; audio_out [audio_len, out_dim]. */
int reel_ovi_fusion_forward(struct reel_ovi_fusion *m, const struct reel_ovi_input *in,
                            float *vid_out, float *audio_out, struct reel_err *err);

#endif
