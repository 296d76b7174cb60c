/* Pieces shared by the Wan-family DiTs (stages/wan_dit.c, stages/ovi_fusion.c):
 * weight slots and the tensor-table walker, the per-token timestep runs,
 * the time/text embeddings, rotary tables, the three halves of an attention
 * block (self-attention, cross-attention with an optional cross-modal
 * target, FFN) and the modulated head. Everything runs on the op table. */
#ifndef REEL_WAN_BLOCKS_H
#define REEL_WAN_BLOCKS_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/safetensors.h"

/* ------------------------------------------------------------ weights */

/* A bound parameter: the stored tensor, plus an f32 copy for the small ones
 * (biases, norm gammas, modulation tables) that ops take as float arrays. */
struct reel_wslot {
    const struct reel_tensor *t;
    float *f;
};

/* visit(ctx, name, ndim, shape, slot, small): slot is NULL when walking
 * without a model; small asks for an f32 copy. */
typedef void (*reel_wan_walk_fn)(void *ctx, const char *name, int ndim, const int64_t *shape,
                                 struct reel_wslot *slot, int small);

struct reel_wan_walker {
    reel_wan_walk_fn fn;
    void *ctx;
    const char *prefix; /* prepended to every name ("" or "video_model.") */
};

/* One tensor `prefix + name` (ndim of d0..d4). slot may be NULL. */
void reel_wan_put(const struct reel_wan_walker *wk, struct reel_wslot *slot, int small,
                  const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                  int64_t d4);
/* Linear "<name>.weight" [out, in] and "<name>.bias" [out]. */
void reel_wan_put_linear(const struct reel_wan_walker *wk, const char *name, int64_t out,
                         int64_t in, struct reel_wslot *w, struct reel_wslot *b);

/* Visitors: bind (reel_weights_get, plus the f32 copy for small ones; keeps
 * the first error) and free (the f32 copies). */
struct reel_wan_bind {
    const struct reel_weights *w;
    struct reel_err *err;
    int rc;
};
void reel_wan_bind_visit(void *ctx, const char *name, int ndim, const int64_t *shape,
                         struct reel_wslot *slot, int small);
void reel_wan_free_visit(void *ctx, const char *name, int ndim, const int64_t *shape,
                         struct reel_wslot *slot, int small);
/* and table: forwards each name and shape to emit (the tensor-table API). */
struct reel_wan_table {
    void (*emit)(void *ctx, const char *name, int ndim, const int64_t *shape);
    void *ctx;
};
void reel_wan_table_visit(void *ctx, const char *name, int ndim, const int64_t *shape,
                          struct reel_wslot *slot, int small);

/* Sizes of one attention block. */
struct reel_wan_dims {
    int64_t dim, ffn_dim;
    int heads, head_dim;
    int qk_norm, cross_attn_norm;
    float eps;
};

/* One WanAttentionBlock. The *_fusion slots exist only in Ovi's towers. */
struct reel_wan_block_w {
    struct reel_wslot mod;
    struct reel_wslot sa_q_w, sa_q_b, sa_k_w, sa_k_b, sa_v_w, sa_v_b, sa_o_w, sa_o_b, sa_nq, sa_nk;
    struct reel_wslot n3_w, n3_b;
    struct reel_wslot ca_q_w, ca_q_b, ca_k_w, ca_k_b, ca_v_w, ca_v_b, ca_o_w, ca_o_b, ca_nq, ca_nk;
    struct reel_wslot kf_w, kf_b, vf_w, vf_b, pf_w, pf_b, nkf;
    struct reel_wslot ffn0_w, ffn0_b, ffn2_w, ffn2_b;
};

enum reel_wan_block_layout {
    REEL_WAN_LAYOUT_WAN, /* "blocks.N.modulation" first (a Parameter of the block) */
    REEL_WAN_LAYOUT_OVI, /* fusion tensors in cross_attn; "blocks.N.modulation.modulation" last */
};

/* Block i's tensors in state_dict order. b may be NULL (table only). */
void reel_wan_walk_block(const struct reel_wan_walker *wk, const struct reel_wan_dims *d, int i,
                         enum reel_wan_block_layout layout, struct reel_wan_block_w *b);

/* text_embedding, time_embedding, time_projection and head weights. */
struct reel_wan_embed_w {
    struct reel_wslot txt0_w, txt0_b, txt2_w, txt2_b;
    struct reel_wslot time0_w, time0_b, time2_w, time2_b;
    struct reel_wslot proj_w, proj_b;
    struct reel_wslot head_mod, head_w, head_b;
};
/* text_embedding.*, time_embedding.*, time_projection.* in state_dict order. */
void reel_wan_walk_embed(const struct reel_wan_walker *wk, int64_t dim, int64_t text_dim,
                         int64_t freq_dim, struct reel_wan_embed_w *e);
/* head.modulation, head.head.* (head_out = prod(patch) * out_dim). */
void reel_wan_walk_head(const struct reel_wan_walker *wk, int64_t dim, int64_t head_out,
                        struct reel_wan_embed_w *e);

/* ------------------------------------------------------------ timesteps */

/* Per-token timesteps as distinct values: each distinct value is embedded
 * once and modulation is applied over runs of tokens sharing a value. */
struct reel_wan_tsteps {
    int64_t L, U;
    int32_t *tok_u; /* [L] index into tval */
    float *tval;    /* [U] */
};
/* t holds 1 value (broadcast) or L values (per_token). Refuses non-finite. */
int reel_wan_tsteps_init(struct reel_wan_tsteps *ts, const float *t, int per_token, int64_t L,
                         struct reel_err *err);
void reel_wan_tsteps_free(struct reel_wan_tsteps *ts);
/* End of the run of tokens starting at r0 that share one timestep. */
int64_t reel_wan_run_end(const struct reel_wan_tsteps *ts, int64_t r0);

/* sinus [U, freq_dim] (cos half first, double precision as the reference),
 * e [U, dim] = time_embedding(sinus), e0 [U, 6*dim] = time_projection(e). */
int reel_wan_time_embed(struct reel_backend *be, const struct reel_wan_embed_w *w, int64_t dim,
                        int64_t freq_dim, const struct reel_wan_tsteps *ts, float *sinus,
                        float *e, float *e0, struct reel_err *err);
/* out [text_len, dim] = text_embedding(context zero-padded to text_len rows). */
int reel_wan_text_embed(struct reel_backend *be, const struct reel_wan_embed_w *w, int64_t dim,
                        int64_t text_dim, int64_t text_len, const float *context,
                        int64_t context_len, float *out, struct reel_err *err);

/* ------------------------------------------------------------ rotary */

/* Rotary tables cover positions [0, 1024), as the reference's freqs do. */
#define REEL_WAN_ROPE_MAX_POS 1024

/* Per-pair inverse frequencies of the (frame, height, width) axes for head
 * size hd: pairs [0, c0) frame, [c0, c0+c1) height, [c0+c1, hd/2) width. */
void reel_wan_rope_inv_freqs(int hd, double *inv, int *c0, int *c1);

/* The patch grid of a latent [F, H, W]: each side a positive multiple of its
 * patch size, and within the rotary table. who names the model in errors
 * (REEL_E_SPEC). */
int reel_wan_patch_grid(const int patch[3], int64_t frames, int64_t height, int64_t width,
                        const char *who, int64_t grid[3], struct reel_err *err);
/* cos/sin [gf*gh*gw, hd/2] for tokens in (f, h, w) raster order. */
int reel_wan_rope_table_3d(int hd, int64_t gf, int64_t gh, int64_t gw, float *cos_t,
                           float *sin_t, struct reel_err *err);

/* ------------------------------------------------------------ blocks */

/* Scratch for the block functions, sized for `rows` tokens, `ctx_rows`
 * context rows and `tgt_rows` cross-modal target rows (0: no fusion). */
struct reel_wan_scratch {
    float *xn, *A, *B, *C, *Y;    /* [rows, dim] */
    float *ck, *cv;               /* [ctx_rows, dim] */
    float *tn, *tk, *tv;          /* [tgt_rows, dim] */
    float *fh, *fa;               /* [ffn_rows, ffn_dim] */
    int64_t rows, ffn_rows;
};
int reel_wan_scratch_init(struct reel_wan_scratch *s, const struct reel_wan_dims *d, int64_t rows,
                          int64_t ctx_rows, int64_t tgt_rows, struct reel_err *err);
void reel_wan_scratch_free(struct reel_wan_scratch *s);

/* modb [U, 6*dim]: the block's modulation + e0 per distinct timestep. */
void reel_wan_block_mod(struct reel_backend *be, const struct reel_wan_dims *d,
                        const struct reel_wan_block_w *b, const struct reel_wan_tsteps *ts,
                        const float *e0, float *modb);

/* x [L, dim] += SA(LN(x)(1+scale1)+shift1) * gate1. RoPE (cos/sin [N, hd/2])
 * on the first N tokens; keys >= N are masked. */
int reel_wan_self_attn(struct reel_backend *be, const struct reel_wan_dims *d,
                       const struct reel_wan_block_w *b, float *x, int64_t L, int64_t N,
                       const struct reel_wan_tsteps *ts, const float *modb, const float *cos_t,
                       const float *sin_t, struct reel_wan_scratch *s, struct reel_err *err);

/* A cross-modal target (Ovi): the other tower's tokens and rotary tables. */
struct reel_wan_target {
    const float *x;               /* [L, dim] */
    int64_t L, N;                 /* rows; real tokens (keys >= N are masked, RoPE on < N) */
    const float *cos_t, *sin_t;   /* [N, hd/2] */
};

/* s->Y [L, dim] = the cross-attention output (after o, before the residual):
 * o(attn(q, k_txt, v_txt) [+ attn(rope(q), rope(k_tgt), v_tgt)]) on
 * norm3(x); ctx [T, dim] is the embedded text. With tgt NULL it is Wan's
 * text cross-attention; q_cos/q_sin [N, hd/2] are then unused. */
int reel_wan_cross_attn(struct reel_backend *be, const struct reel_wan_dims *d,
                        const struct reel_wan_block_w *b, const float *x, int64_t L, int64_t N,
                        const float *ctx, int64_t T, const float *q_cos, const float *q_sin,
                        const struct reel_wan_target *tgt, struct reel_wan_scratch *s,
                        struct reel_err *err);

/* x += FFN(LN(x)(1+scale2)+shift2) * gate2 (GELU-tanh), in row chunks. */
int reel_wan_ffn(struct reel_backend *be, const struct reel_wan_dims *d,
                 const struct reel_wan_block_w *b, float *x, int64_t L,
                 const struct reel_wan_tsteps *ts, const float *modb, struct reel_wan_scratch *s,
                 struct reel_err *err);

/* out [L, head_out] = head(LN(x)(1 + m1 + e) + m0 + e); e [U, dim]. Uses
 * s->xn. */
int reel_wan_head(struct reel_backend *be, const struct reel_wan_dims *d,
                  const struct reel_wan_embed_w *w, const float *x, int64_t L,
                  const struct reel_wan_tsteps *ts, const float *e, struct reel_wan_scratch *s,
                  float *out, struct reel_err *err);

#endif
