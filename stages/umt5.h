/* The umT5 text encoder (Wan's T5Encoder, wan/modules/t5.py): config, weights
 * by either of the two namings real checkpoints use (Wan's own .pth layout
 * and the Hugging Face T5 layout of repackaged umt5_xxl_*.safetensors), and
 * the forward pass over one token sequence. */
#ifndef REEL_UMT5_H
#define REEL_UMT5_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"

struct reel_umt5_config {
    int vocab, dim, dim_attn, dim_ffn, num_heads, num_layers, num_buckets;
    int shared_pos; /* one relative-position table for all layers (T5) or one per layer (umT5) */
    double eps;     /* T5LayerNorm eps, 1e-6 */
};

/* The relative-position bias of T5RelativeEmbedding: max distance of the
 * log buckets (the reference never changes it). */
#define REEL_UMT5_MAX_DIST 128

/* umT5-XXL as Wan builds it (umt5_xxl(encoder_only=True)). */
void reel_umt5_config_xxl(struct reel_umt5_config *cfg);

/* Fills cfg from T5Encoder's constructor kwargs (vocab, dim, dim_attn,
 * dim_ffn, num_heads, num_layers, num_buckets required; shared_pos defaults
 * to true as in the constructor; dropout ignored). Errors name the key. */
int reel_umt5_config_from_json(const struct reel_json *j, struct reel_umt5_config *cfg,
                               struct reel_err *err);
/* Infers the config from the tensor shapes of a checkpoint (either layout):
 * a real checkpoint comes without the constructor kwargs. */
int reel_umt5_config_from_weights(const struct reel_weights *w, struct reel_umt5_config *cfg,
                                  struct reel_err *err);

enum reel_umt5_layout {
    REEL_UMT5_WAN, /* token_embedding.weight, blocks.N.attn.q.weight, ... */
    REEL_UMT5_HF,  /* shared.weight, encoder.block.N.layer.0.SelfAttention.q.weight, ... */
};

/* Which naming a weight set uses, by probing names; REEL_E_MODEL when
 * neither is found. */
int reel_umt5_detect_layout(const struct reel_weights *w, enum reel_umt5_layout *layout,
                            struct reel_err *err);

/* Every tensor the model binds in the given layout (for the Wan layout in
 * state_dict order); the loader walks this same table. */
typedef void (*reel_umt5_emit_fn)(void *ctx, const char *name, int ndim, const int64_t *shape);
void reel_umt5_tensor_table(const struct reel_umt5_config *cfg, enum reel_umt5_layout layout,
                            reel_umt5_emit_fn emit, void *ctx);

/* _relative_position_bucket of T5RelativeEmbedding for one relative
 * position (key index minus query index), including its float32 log math
 * and truncation. */
int64_t reel_umt5_bucket(int64_t rel_pos, int num_buckets, int bidirectional, int max_dist);

struct reel_umt5;

/* Binds the weights in place (bf16/f16/f32 as stored; not copied except the
 * small norm gammas and position tables). The layout is detected. Every
 * missing or mis-shaped tensor is an error naming it. */
int reel_umt5_create(const struct reel_umt5_config *cfg, const struct reel_weights *w,
                     struct reel_backend *be, struct reel_umt5 **out, struct reel_err *err);
void reel_umt5_destroy(struct reel_umt5 *m);
const struct reel_umt5_config *reel_umt5_get_config(const struct reel_umt5 *m);
enum reel_umt5_layout reel_umt5_get_layout(const struct reel_umt5 *m);

/* Capture of intermediates, named like the golden mid.* tensors without
 * "mid.": "block{i}_pos_bias" ([heads, L, L], before masking), "block{i}_out"
 * ([L, dim]). */
typedef void (*reel_umt5_probe_fn)(void *ctx, const char *name, const float *data, int64_t n);

struct reel_umt5_input {
    const int32_t *ids;   /* [len] token ids < vocab */
    int64_t len;
    const uint8_t *mask;  /* [len] 1 token, 0 padding; NULL = all tokens */
    reel_umt5_probe_fn probe;
    void *probe_ctx;
};

/* out: [len, dim], the final norm output for every position (padding rows
 * included, as the reference computes them). Padded keys get no attention
 * weight, so the rows of real tokens equal those of the same tokens run
 * without the padding. */
int reel_umt5_forward(struct reel_umt5 *m, const struct reel_umt5_input *in, float *out,
                      struct reel_err *err);

#endif
