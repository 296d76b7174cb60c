/* The Wan DiT (WanModel of Wan2.1 / Wan2.2): config, weights by the
 * checkpoint's own tensor names, and the forward pass. */
#ifndef REEL_WAN_DIT_H
#define REEL_WAN_DIT_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"

enum reel_wan_model_type { REEL_WAN_T2V, REEL_WAN_I2V, REEL_WAN_TI2V };

struct reel_wan_dit_config {
    enum reel_wan_model_type model_type;
    int patch[3];      /* (1, 2, 2) */
    int text_len;      /* 512 */
    int in_dim, dim, ffn_dim, freq_dim, text_dim, out_dim;
    int num_heads, num_layers;
    int qk_norm, cross_attn_norm;
    double eps;
};

/* Fills cfg from a JSON object with WanModel's constructor kwargs (missing
 * keys take WanModel's defaults). Errors (REEL_E_MODEL) name the key. */
int reel_wan_dit_config_from_json(const struct reel_json *j, struct reel_wan_dit_config *cfg,
                                  struct reel_err *err);

/* Every tensor the model expects, in state_dict order: calls emit once per
 * tensor. The loader uses this same table, so a test can compare it with
 * the manifests in shared/golden/real/. */
typedef void (*reel_tensor_emit_fn)(void *ctx, const char *name, int ndim, const int64_t *shape);
void reel_wan_dit_tensor_table(const struct reel_wan_dit_config *cfg, reel_tensor_emit_fn emit,
                               void *ctx);

struct reel_wan_dit;

/* Binds the weights (not copied; bf16/f16/f32 as stored). Every missing or
 * mis-shaped tensor is an error naming the tensor. */
int reel_wan_dit_create(const struct reel_wan_dit_config *cfg, const struct reel_weights *w,
                        struct reel_backend *be, struct reel_wan_dit **out, struct reel_err *err);
void reel_wan_dit_destroy(struct reel_wan_dit *m);

/* Optional capture of intermediates for golden debugging: called with names
 * such as "t_sinusoid", "e", "e0", "context_emb", "x_tokens", "block0_out",
 * "head_out" (the names of the golden mid.* tensors without "mid."). */
typedef void (*reel_wan_dit_probe_fn)(void *ctx, const char *name, const float *data, int64_t n);

struct reel_wan_dit_input {
    const float *x;          /* [in_dim, F, H, W] latent (for i2v: noise, mask, cond already concatenated) */
    int64_t frames, height, width;  /* latent F, H, W */
    const float *t;          /* timesteps: 1 value, or one per token when t_per_token */
    int t_per_token;         /* ti2v: t has seq_len values */
    const float *context;    /* [context_len, text_dim], zero-padded to text_len inside */
    int64_t context_len;
    int64_t seq_len;         /* >= token count; keys beyond the token count are masked */
    reel_wan_dit_probe_fn probe;
    void *probe_ctx;
};

/* out: [out_dim, F, H, W]. */
int reel_wan_dit_forward(struct reel_wan_dit *m, const struct reel_wan_dit_input *in, float *out,
                         struct reel_err *err);

#endif
