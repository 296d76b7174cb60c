/* The umT5 encoder (Wan's T5Encoder) on the backend op table.
 *
 * Per layer: x += o(attn(rms1(x))) with a relative-position bias and no
 * 1/sqrt(d) scale; x += fc2(fc1(h) * gelu_tanh(gate(h))) with h = rms2(x);
 * then a final RMS norm. Activations stay f32 throughout: the reference runs
 * in bf16 on GPU, f32 is the more accurate of the two and is what the golden
 * files record.
 *
 * One name table (NAMES) maps each parameter to its Wan name and its
 * Hugging Face T5 name; walk_tensors visits the parameters in Wan's
 * state_dict order, and the manifest test, the loader and the config
 * inference all go through it. */
#include "stages/umt5.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows of the FFN hidden state kept at once (16M floats = 64 MiB a buffer). */
#define FFN_CHUNK_FLOATS ((int64_t)16 << 20)

/* ------------------------------------------------------------ name table */

enum umt5_param {
    P_EMB,        /* [vocab, dim] */
    P_POS_SHARED, /* [num_buckets, heads], shared_pos only */
    P_NORM1,      /* [dim] */
    P_Q,          /* [dim_attn, dim] */
    P_K,
    P_V,
    P_O,          /* [dim, dim_attn] */
    P_NORM2,      /* [dim] */
    P_GATE,       /* [dim_ffn, dim], the GELU side */
    P_FC1,        /* [dim_ffn, dim], the linear side */
    P_FC2,        /* [dim, dim_ffn] */
    P_POS,        /* [num_buckets, heads], per layer unless shared_pos */
    P_NORM,       /* [dim] final */
    P_COUNT
};

/* %d is the block index. HF T5's gated GELU is gelu(wi_0 x) * wi_1 x, so
 * wi_0 is Wan's gate and wi_1 its fc1. A HF T5 (not umT5) checkpoint keeps
 * the one shared relative_attention_bias in block 0; `hf_alt` is a second
 * name some repackagings use for the embedding. */
static const struct umt5_name {
    const char *wan, *hf, *hf_alt;
} NAMES[P_COUNT] = {
    [P_EMB] = {"token_embedding.weight", "shared.weight", "encoder.embed_tokens.weight"},
    [P_POS_SHARED] = {"pos_embedding.embedding.weight",
                      "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                      NULL},
    [P_NORM1] = {"blocks.%d.norm1.weight", "encoder.block.%d.layer.0.layer_norm.weight", NULL},
    [P_Q] = {"blocks.%d.attn.q.weight", "encoder.block.%d.layer.0.SelfAttention.q.weight", NULL},
    [P_K] = {"blocks.%d.attn.k.weight", "encoder.block.%d.layer.0.SelfAttention.k.weight", NULL},
    [P_V] = {"blocks.%d.attn.v.weight", "encoder.block.%d.layer.0.SelfAttention.v.weight", NULL},
    [P_O] = {"blocks.%d.attn.o.weight", "encoder.block.%d.layer.0.SelfAttention.o.weight", NULL},
    [P_NORM2] = {"blocks.%d.norm2.weight", "encoder.block.%d.layer.1.layer_norm.weight", NULL},
    [P_GATE] = {"blocks.%d.ffn.gate.0.weight",
                "encoder.block.%d.layer.1.DenseReluDense.wi_0.weight", NULL},
    [P_FC1] = {"blocks.%d.ffn.fc1.weight", "encoder.block.%d.layer.1.DenseReluDense.wi_1.weight",
               NULL},
    [P_FC2] = {"blocks.%d.ffn.fc2.weight", "encoder.block.%d.layer.1.DenseReluDense.wo.weight",
               NULL},
    [P_POS] = {"blocks.%d.pos_embedding.embedding.weight",
               "encoder.block.%d.layer.0.SelfAttention.relative_attention_bias.weight", NULL},
    [P_NORM] = {"norm.weight", "encoder.final_layer_norm.weight", NULL},
};

/* The name of parameter p of block `block` in a layout; alt picks hf_alt
 * (returns 0 when there is none). */
static int param_name(enum umt5_param p, int block, enum reel_umt5_layout layout, int alt,
                      char *buf, size_t n)
{
    const char *pat = layout == REEL_UMT5_WAN ? (alt ? NULL : NAMES[p].wan)
                                              : (alt ? NAMES[p].hf_alt : NAMES[p].hf);
    if (!pat)
        return 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, n, pat, block);
#pragma GCC diagnostic pop
    return 1;
}

/* Finds parameter p under its name or its alternative name. */
static const struct reel_tensor *find_param(const struct reel_weights *w, enum umt5_param p,
                                            int block, enum reel_umt5_layout layout, char *name,
                                            size_t n)
{
    param_name(p, block, layout, 0, name, n);
    const struct reel_tensor *t = reel_weights_find(w, name);
    char alt[160];
    if (!t && param_name(p, block, layout, 1, alt, sizeof alt) && (t = reel_weights_find(w, alt)))
        snprintf(name, n, "%s", alt);
    return t;
}

/* ------------------------------------------------------------------ config */

void reel_umt5_config_xxl(struct reel_umt5_config *cfg)
{
    *cfg = (struct reel_umt5_config){
        .vocab = 256384, .dim = 4096, .dim_attn = 4096, .dim_ffn = 10240, .num_heads = 64,
        .num_layers = 24, .num_buckets = 32, .shared_pos = 0, .eps = 1e-6,
    };
}

static int validate(const struct reel_umt5_config *c, struct reel_err *err)
{
    if (c->vocab < 1 || c->dim < 1 || c->dim_attn < 1 || c->dim_ffn < 1 || c->num_heads < 1 ||
        c->num_layers < 0)
        return reel_errf(err, REEL_E_MODEL,
                         "T5Encoder config: vocab, dim, dim_attn, dim_ffn and num_heads must be "
                         "positive and num_layers >= 0");
    if (c->dim_attn % c->num_heads != 0)
        return reel_errf(err, REEL_E_MODEL,
                         "T5Encoder config: dim_attn %d does not split into %d heads",
                         c->dim_attn, c->num_heads);
    /* bidirectional buckets: max_exact = num_buckets / 4 must be >= 1 and
     * below max_dist, or the reference's log-bucket formula divides by 0 */
    if (c->num_buckets < 4 || c->num_buckets / 4 >= REEL_UMT5_MAX_DIST)
        return reel_errf(err, REEL_E_MODEL,
                         "T5Encoder config: num_buckets %d must be in [4, %d)", c->num_buckets,
                         4 * REEL_UMT5_MAX_DIST);
    if (!(c->eps > 0) || !isfinite(c->eps))
        return reel_errf(err, REEL_E_MODEL, "T5Encoder config: eps must be positive");
    return REEL_OK;
}

/* Every T5Encoder size is a required constructor argument. */
static int cfg_int(const struct reel_json *j, const char *key, int *out, struct reel_err *err)
{
    const struct reel_json *v = reel_json_get(j, key);
    if (!v || v->type == REEL_JSON_NULL)
        return reel_errf(err, REEL_E_MODEL, "T5Encoder config: '%s' is missing", key);
    return reel_json_cfg_int(j, "T5Encoder", key, 0, 0, out, err);
}

int reel_umt5_config_from_json(const struct reel_json *j, struct reel_umt5_config *cfg,
                               struct reel_err *err)
{
    struct reel_umt5_config c = {.shared_pos = 1, .eps = 1e-6};
    if (!j || j->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "T5Encoder config: not a JSON object");
    int rc = cfg_int(j, "vocab", &c.vocab, err);
    if (!rc) rc = cfg_int(j, "dim", &c.dim, err);
    if (!rc) rc = cfg_int(j, "dim_attn", &c.dim_attn, err);
    if (!rc) rc = cfg_int(j, "dim_ffn", &c.dim_ffn, err);
    if (!rc) rc = cfg_int(j, "num_heads", &c.num_heads, err);
    if (!rc) rc = cfg_int(j, "num_layers", &c.num_layers, err);
    if (!rc) rc = cfg_int(j, "num_buckets", &c.num_buckets, err);
    if (rc)
        return rc;
    const struct reel_json *sp = reel_json_get(j, "shared_pos");
    if (sp && sp->type != REEL_JSON_NULL) {
        if (sp->type != REEL_JSON_BOOL)
            return reel_errf(err, REEL_E_MODEL,
                             "T5Encoder config: 'shared_pos' must be true or false");
        c.shared_pos = sp->boolean;
    }
    if ((rc = validate(&c, err)))
        return rc;
    *cfg = c;
    return REEL_OK;
}

int reel_umt5_detect_layout(const struct reel_weights *w, enum reel_umt5_layout *layout,
                            struct reel_err *err)
{
    char name[160];
    if (find_param(w, P_EMB, 0, REEL_UMT5_WAN, name, sizeof name) ||
        find_param(w, P_NORM1, 0, REEL_UMT5_WAN, name, sizeof name)) {
        *layout = REEL_UMT5_WAN;
        return REEL_OK;
    }
    if (find_param(w, P_EMB, 0, REEL_UMT5_HF, name, sizeof name) ||
        find_param(w, P_NORM1, 0, REEL_UMT5_HF, name, sizeof name)) {
        *layout = REEL_UMT5_HF;
        return REEL_OK;
    }
    return reel_errf(err, REEL_E_MODEL,
                     "not a T5 encoder checkpoint: neither Wan's names (token_embedding.weight, "
                     "blocks.0.norm1.weight) nor Hugging Face T5 names (shared.weight, "
                     "encoder.block.0.layer.0.layer_norm.weight) are present");
}

/* A present 2D tensor's shape, or an error naming the tensor. */
static int shape2(const struct reel_weights *w, enum umt5_param p, int block,
                  enum reel_umt5_layout layout, int64_t *d0, int64_t *d1, struct reel_err *err)
{
    char name[160];
    const struct reel_tensor *t = find_param(w, p, block, layout, name, sizeof name);
    if (!t)
        return reel_errf(err, REEL_E_MODEL, "T5 encoder: tensor '%s' is missing", name);
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[0] > INT_MAX ||
        t->shape[1] > INT_MAX)
        return reel_errf(err, REEL_E_MODEL, "T5 encoder: tensor '%s' must be a 2D matrix", name);
    *d0 = t->shape[0];
    *d1 = t->shape[1];
    return REEL_OK;
}

int reel_umt5_config_from_weights(const struct reel_weights *w, struct reel_umt5_config *cfg,
                                  struct reel_err *err)
{
    enum reel_umt5_layout layout;
    int rc = reel_umt5_detect_layout(w, &layout, err);
    if (rc)
        return rc;
    struct reel_umt5_config c = {.eps = 1e-6};
    char name[160];
    int64_t a, b;
    if ((rc = shape2(w, P_EMB, 0, layout, &a, &b, err)))
        return rc;
    c.vocab = (int)a;
    c.dim = (int)b;
    while (c.num_layers < 100000 && find_param(w, P_NORM1, c.num_layers, layout, name, sizeof name))
        c.num_layers++;
    if (c.num_layers > 0) {
        if ((rc = shape2(w, P_Q, 0, layout, &a, &b, err)))
            return rc;
        c.dim_attn = (int)a;
        if ((rc = shape2(w, P_FC1, 0, layout, &a, &b, err)))
            return rc;
        c.dim_ffn = (int)a;
    } else {
        c.dim_attn = c.dim_ffn = c.dim;
    }
    /* Wan keeps a shared table at the top level; HF T5 keeps it in block 0
     * only, where umT5 has one in every block */
    if (layout == REEL_UMT5_WAN)
        c.shared_pos = find_param(w, P_POS_SHARED, 0, layout, name, sizeof name) != NULL;
    else
        c.shared_pos = c.num_layers > 1 && !find_param(w, P_POS, 1, layout, name, sizeof name);
    if ((rc = shape2(w, c.shared_pos ? P_POS_SHARED : P_POS, 0, layout, &a, &b, err)))
        return rc;
    c.num_buckets = (int)a;
    c.num_heads = (int)b;
    if ((rc = validate(&c, err)))
        return rc;
    *cfg = c;
    return REEL_OK;
}

/* ----------------------------------------------------------- tensor table */

/* A bound parameter: the stored tensor, plus an f32 copy for the small ones
 * (norm gammas, position tables) that the forward reads directly. */
struct wslot {
    const struct reel_tensor *t;
    float *f;
};

struct umt5_block {
    struct wslot p[P_COUNT]; /* the per-block entries are used */
};

struct reel_umt5 {
    struct reel_umt5_config cfg;
    enum reel_umt5_layout layout;
    struct reel_backend *be;
    struct wslot top[P_COUNT]; /* P_EMB, P_POS_SHARED, P_NORM */
    struct umt5_block *blocks;
};

typedef void (*walk_fn)(void *ctx, const char *name, const char *alt, int ndim,
                        const int64_t *shape, struct wslot *slot, int small);

static void visit(const struct reel_umt5_config *cfg, enum reel_umt5_layout layout,
                  struct reel_umt5 *m, walk_fn fn, void *ctx, enum umt5_param p, int block)
{
    const int64_t D = cfg->dim, DA = cfg->dim_attn, FF = cfg->dim_ffn;
    int64_t s[2];
    int ndim = 2, small = 0;
    switch (p) {
    case P_EMB: s[0] = cfg->vocab; s[1] = D; break;
    case P_POS_SHARED:
    case P_POS: s[0] = cfg->num_buckets; s[1] = cfg->num_heads; small = 1; break;
    case P_Q:
    case P_K:
    case P_V: s[0] = DA; s[1] = D; break;
    case P_O: s[0] = D; s[1] = DA; break;
    case P_GATE:
    case P_FC1: s[0] = FF; s[1] = D; break;
    case P_FC2: s[0] = D; s[1] = FF; break;
    default: ndim = 1; s[0] = D; small = 1; break; /* the norms */
    }
    char name[160], alt[160];
    param_name(p, block, layout, 0, name, sizeof name);
    int has_alt = param_name(p, block, layout, 1, alt, sizeof alt);
    struct wslot *slot = NULL;
    if (m)
        slot = block < 0 ? &m->top[p] : &m->blocks[block].p[p];
    fn(ctx, name, has_alt ? alt : NULL, ndim, s, slot, small);
}

/* Wan's state_dict order: token_embedding, [pos_embedding], blocks.N.(norm1,
 * attn.q/k/v/o, norm2, ffn.gate.0/fc1/fc2, [pos_embedding]), norm. */
static void walk_tensors(const struct reel_umt5_config *cfg, enum reel_umt5_layout layout,
                         struct reel_umt5 *m, walk_fn fn, void *ctx)
{
    visit(cfg, layout, m, fn, ctx, P_EMB, -1);
    if (cfg->shared_pos)
        visit(cfg, layout, m, fn, ctx, P_POS_SHARED, -1);
    for (int i = 0; i < cfg->num_layers; i++) {
        for (int p = P_NORM1; p <= P_FC2; p++)
            visit(cfg, layout, m, fn, ctx, (enum umt5_param)p, i);
        if (!cfg->shared_pos)
            visit(cfg, layout, m, fn, ctx, P_POS, i);
    }
    visit(cfg, layout, m, fn, ctx, P_NORM, -1);
}

struct table_ctx {
    reel_umt5_emit_fn emit;
    void *ctx;
};

static void table_visit(void *vctx, const char *name, const char *alt, int ndim,
                        const int64_t *shape, struct wslot *slot, int small)
{
    (void)alt;
    (void)slot;
    (void)small;
    const struct table_ctx *t = vctx;
    t->emit(t->ctx, name, ndim, shape);
}

void reel_umt5_tensor_table(const struct reel_umt5_config *cfg, enum reel_umt5_layout layout,
                            reel_umt5_emit_fn emit, void *ctx)
{
    struct table_ctx t = {emit, ctx};
    walk_tensors(cfg, layout, NULL, table_visit, &t);
}

/* ------------------------------------------------------------------ loader */

struct bind_ctx {
    const struct reel_weights *w;
    struct reel_err *err;
    int rc;
};

static void bind_visit(void *vctx, const char *name, const char *alt, int ndim,
                       const int64_t *shape, struct wslot *slot, int small)
{
    struct bind_ctx *b = vctx;
    if (b->rc)
        return; /* keep the first error */
    if (alt && !reel_weights_find(b->w, name) && reel_weights_find(b->w, alt))
        name = alt;
    b->rc = reel_weights_get(b->w, name, ndim, shape, &slot->t, b->err);
    if (!b->rc && small)
        b->rc = reel_weights_get_f32(b->w, name, ndim, shape, &slot->f, b->err);
}

static void free_visit(void *vctx, const char *name, const char *alt, int ndim,
                       const int64_t *shape, struct wslot *slot, int small)
{
    (void)vctx;
    (void)name;
    (void)alt;
    (void)ndim;
    (void)shape;
    (void)small;
    free(slot->f);
    slot->f = NULL;
}

void reel_umt5_destroy(struct reel_umt5 *m)
{
    if (!m)
        return;
    if (m->blocks)
        walk_tensors(&m->cfg, m->layout, m, free_visit, NULL);
    free(m->blocks);
    free(m);
}

int reel_umt5_create(const struct reel_umt5_config *cfg, const struct reel_weights *w,
                     struct reel_backend *be, struct reel_umt5 **out, struct reel_err *err)
{
    *out = NULL;
    int rc = validate(cfg, err);
    enum reel_umt5_layout layout;
    if (rc || (rc = reel_umt5_detect_layout(w, &layout, err)))
        return rc;
    struct reel_umt5 *m = calloc(1, sizeof *m);
    if (!m)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    m->cfg = *cfg;
    m->layout = layout;
    m->be = be;
    m->blocks = calloc((size_t)(cfg->num_layers > 0 ? cfg->num_layers : 1), sizeof *m->blocks);
    if (!m->blocks) {
        free(m);
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    }
    struct bind_ctx b = {w, err, REEL_OK};
    walk_tensors(cfg, layout, m, bind_visit, &b);
    if (b.rc) {
        reel_umt5_destroy(m);
        return b.rc;
    }
    *out = m;
    return REEL_OK;
}

const struct reel_umt5_config *reel_umt5_get_config(const struct reel_umt5 *m)
{
    return &m->cfg;
}

enum reel_umt5_layout reel_umt5_get_layout(const struct reel_umt5 *m)
{
    return m->layout;
}

/* ----------------------------------------------------------------- forward */

int64_t reel_umt5_bucket(int64_t rel_pos, int num_buckets, int bidirectional, int max_dist)
{
    int64_t nb = num_buckets, base = 0;
    if (bidirectional) {
        nb = num_buckets / 2;
        base = rel_pos > 0 ? nb : 0;
        rel_pos = rel_pos < 0 ? -rel_pos : rel_pos;
    } else {
        rel_pos = rel_pos < 0 ? -rel_pos : 0;
    }
    const int64_t max_exact = nb / 2;
    if (rel_pos < max_exact)
        return base + rel_pos;
    /* The reference's float32 tensor math: (rel.float() / max_exact).log()
     * / math.log(max_dist / max_exact) * (nb - max_exact), truncated; the
     * python scalars enter the float32 ops as float32. The boundary cases
     * (rel = 16, 32, 64 for 32 buckets) land exactly on integers. */
    float r = (float)rel_pos / (float)max_exact;
    float l = logf(r) / (float)log((double)max_dist / (double)max_exact);
    l = l * (float)(nb - max_exact);
    int64_t large = nb - 1;
    if (l < (float)(nb - 1)) /* also keeps the cast in range */
        large = max_exact + (int64_t)l;
    if (large > nb - 1)
        large = nb - 1;
    return base + large;
}

/* bias[h, i, j] = table[bucket(j - i), h] for an L x L block: each row is a
 * slice of one per-head vector over relative positions. */
static void fill_pos_bias(float *bias, float *rowv, const int32_t *bucket, const float *table,
                          int heads, int64_t L)
{
    for (int h = 0; h < heads; h++) {
        for (int64_t r = 0; r < 2 * L - 1; r++)
            rowv[r] = table[(int64_t)bucket[r] * heads + h];
        for (int64_t i = 0; i < L; i++)
            memcpy(bias + ((int64_t)h * L + i) * L, rowv + (L - 1 - i), sizeof(float) * (size_t)L);
    }
}

int reel_umt5_forward(struct reel_umt5 *m, const struct reel_umt5_input *in, float *out,
                      struct reel_err *err)
{
    const struct reel_umt5_config *cfg = &m->cfg;
    struct reel_backend *be = m->be;
    const int64_t L = in->len, D = cfg->dim, DA = cfg->dim_attn, FF = cfg->dim_ffn;
    const int H = cfg->num_heads, hd = cfg->dim_attn / cfg->num_heads;
    const float eps = (float)cfg->eps;
    int rc = REEL_OK;

    if (L < 0 || (L > 0 && !in->ids))
        return reel_errf(err, REEL_E_SPEC, "T5 encoder: missing token ids");
    if (L == 0)
        return REEL_OK;
    if (L > (int64_t)1 << 20)
        return reel_errf(err, REEL_E_SPEC, "T5 encoder: %lld tokens is too many",
                         (long long)L);
    for (int64_t i = 0; i < L; i++)
        if (in->ids[i] < 0 || in->ids[i] >= cfg->vocab)
            return reel_errf(err, REEL_E_SPEC,
                             "T5 encoder: token id %d at position %lld is outside the vocabulary "
                             "of %d",
                             (int)in->ids[i], (long long)i, cfg->vocab);

    /* Keys past the last real token are skipped by k_len; a padding key
     * before it gets -FLT_MAX in the bias, which is what the reference's
     * masked_fill(finfo(float32).min) amounts to (zero weight). With no real
     * token at all every key is masked, and the reference's scores are all
     * exactly finfo.min: uniform weights over every key, reproduced by
     * masking everything. */
    int64_t k_len = 0, n_holes = 0;
    if (in->mask) {
        for (int64_t j = 0; j < L; j++)
            if (in->mask[j])
                k_len = j + 1;
        for (int64_t j = 0; j < k_len; j++)
            n_holes += !in->mask[j];
        if (k_len == 0) {
            k_len = L;
            n_holes = L;
        }
    } else {
        k_len = L;
    }
    const int64_t ffn_rows = FFN_CHUNK_FLOATS / FF < 1 ? 1
                             : FFN_CHUNK_FLOATS / FF < L ? FFN_CHUNK_FLOATS / FF
                                                        : L;
    int32_t *bucket = NULL;
    int64_t *holes = NULL;
    float *x = NULL, *xn = NULL, *q = NULL, *k = NULL, *v = NULL, *ao = NULL, *y = NULL,
          *g = NULL, *f = NULL, *bias = NULL, *rowv = NULL;
#define ALLOC(p, n)                                              \
    do {                                                         \
        (p) = malloc(sizeof *(p) * (size_t)((n) > 0 ? (n) : 1)); \
        if (!(p))                                                \
            goto oom;                                            \
    } while (0)
    ALLOC(bucket, 2 * L - 1);
    ALLOC(holes, n_holes);
    ALLOC(x, L * D);
    ALLOC(xn, L * D);
    ALLOC(q, L * DA);
    ALLOC(k, L * DA);
    ALLOC(v, L * DA);
    ALLOC(ao, L * DA);
    ALLOC(y, L * D);
    ALLOC(g, ffn_rows * FF);
    ALLOC(f, ffn_rows * FF);
    ALLOC(bias, (int64_t)H * L * L);
    ALLOC(rowv, 2 * L - 1);
#undef ALLOC

    n_holes = 0;
    for (int64_t j = 0; j < k_len; j++)
        if (in->mask && !in->mask[j])
            holes[n_holes++] = j;
    /* relative position r - (L - 1) = key - query */
    for (int64_t r = 0; r < 2 * L - 1; r++)
        bucket[r] = (int32_t)reel_umt5_bucket(r - (L - 1), cfg->num_buckets, 1,
                                              REEL_UMT5_MAX_DIST);

    /* token embedding: one row per id, converted from the stored dtype */
    for (int64_t i = 0; i < L; i++)
        reel_tensor_to_f32(m->top[P_EMB].t, (int64_t)in->ids[i] * D, D, x + i * D);

    for (int li = 0; li < cfg->num_layers; li++) {
        const struct umt5_block *b = &m->blocks[li];
        char name[48];

        const float *table = cfg->shared_pos ? m->top[P_POS_SHARED].f : b->p[P_POS].f;
        fill_pos_bias(bias, rowv, bucket, table, H, L);
        if (in->probe) {
            snprintf(name, sizeof name, "block%d_pos_bias", li);
            in->probe(in->probe_ctx, name, bias, (int64_t)H * L * L);
        }
        for (int h = 0; h < H; h++)
            for (int64_t i = 0; i < L; i++) {
                float *row = bias + ((int64_t)h * L + i) * L;
                for (int64_t t = 0; t < n_holes; t++)
                    row[holes[t]] = -FLT_MAX;
            }

        /* self-attention: scores are q.k with no 1/sqrt(d) */
        be->rmsnorm(be, xn, x, L, D, b->p[P_NORM1].f, eps);
        if ((rc = be->linear(be, q, xn, L, D, b->p[P_Q].t, NULL, err)) ||
            (rc = be->linear(be, k, xn, L, D, b->p[P_K].t, NULL, err)) ||
            (rc = be->linear(be, v, xn, L, D, b->p[P_V].t, NULL, err)))
            goto done;
        if ((rc = be->attention(be, ao, q, k, v, L, L, k_len, H, hd, DA, DA, DA, 1.0f, bias,
                                err)))
            goto done;
        if ((rc = be->linear(be, y, ao, L, DA, b->p[P_O].t, NULL, err)))
            goto done;
        be->add(be, x, x, y, L * D);

        /* gated-GELU FFN, in row chunks */
        be->rmsnorm(be, xn, x, L, D, b->p[P_NORM2].f, eps);
        for (int64_t r0 = 0; r0 < L; r0 += ffn_rows) {
            int64_t rows = L - r0 < ffn_rows ? L - r0 : ffn_rows;
            if ((rc = be->linear(be, g, xn + r0 * D, rows, D, b->p[P_GATE].t, NULL, err)) ||
                (rc = be->linear(be, f, xn + r0 * D, rows, D, b->p[P_FC1].t, NULL, err)))
                goto done;
            be->gelu_tanh(be, g, g, rows * FF);
            be->mul(be, f, f, g, rows * FF);
            if ((rc = be->linear(be, y + r0 * D, f, rows, FF, b->p[P_FC2].t, NULL, err)))
                goto done;
        }
        be->add(be, x, x, y, L * D);

        if (in->probe) {
            snprintf(name, sizeof name, "block%d_out", li);
            in->probe(in->probe_ctx, name, x, L * D);
        }
    }
    be->rmsnorm(be, out, x, L, D, m->top[P_NORM].f, eps);
    goto done;

oom:
    rc = reel_errf(err, REEL_E_OTHER, "T5 encoder: out of memory for %lld tokens", (long long)L);
done:
    free(bucket);
    free(holes);
    free(x);
    free(xn);
    free(q);
    free(k);
    free(v);
    free(ao);
    free(y);
    free(g);
    free(f);
    free(bias);
    free(rowv);
    return rc;
}
