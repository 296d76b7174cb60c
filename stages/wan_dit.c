/* The Wan DiT (WanModel of Wan2.1 / Wan2.2) on the backend op table.
 *
 * One table (walk_tensors) lists every checkpoint tensor in state_dict order;
 * both reel_wan_dit_tensor_table and the loader go through it, so the names
 * the loader binds cannot drift from the names the manifest test checks.
 *
 * Per-token timesteps (ti2v) are handled by embedding each distinct timestep
 * value once and applying the modulation over runs of consecutive tokens that
 * share a value: a real TI2V frame has two values (t=0 on the first latent
 * frame, t elsewhere), so this costs two small GEMMs instead of one
 * [L, 6*dim] projection, and never materialises a per-token e0.
 *
 * The block math lives in stages/wan_blocks.c, shared with Ovi's towers;
 * this file holds the config, the tensor table and the patchify/unpatchify. */
#include "stages/wan_dit.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/wan_blocks.h"


/* ------------------------------------------------------------------ config */

int reel_wan_dit_config_from_json(const struct reel_json *j, struct reel_wan_dit_config *cfg,
                                  struct reel_err *err)
{
    /* WanModel.__init__ defaults */
    struct reel_wan_dit_config c = {
        .model_type = REEL_WAN_T2V, .patch = {1, 2, 2}, .text_len = 512, .in_dim = 16,
        .dim = 2048, .ffn_dim = 8192, .freq_dim = 256, .text_dim = 4096, .out_dim = 16,
        .num_heads = 16, .num_layers = 32, .qk_norm = 1, .cross_attn_norm = 1, .eps = 1e-6,
    };
    if (j && j->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "WanModel config: not a JSON object");

    const struct reel_json *mt = reel_json_get(j, "model_type");
    if (mt && mt->type != REEL_JSON_NULL) {
        if (mt->type != REEL_JSON_STRING)
            return reel_errf(err, REEL_E_MODEL, "WanModel config: 'model_type' must be a string");
        if (!strcmp(mt->string, "t2v"))
            c.model_type = REEL_WAN_T2V;
        else if (!strcmp(mt->string, "i2v"))
            c.model_type = REEL_WAN_I2V;
        else if (!strcmp(mt->string, "ti2v"))
            c.model_type = REEL_WAN_TI2V;
        else if (!strcmp(mt->string, "flf2v"))
            return reel_errf(err, REEL_E_MODEL,
                             "WanModel config: model_type 'flf2v' needs the Wan2.1 CLIP image "
                             "branch (img_emb, cross_attn.k_img/v_img), which is not supported");
        else
            return reel_errf(err, REEL_E_MODEL,
                             "WanModel config: model_type '%s' is not supported (t2v, i2v, ti2v)",
                             mt->string);
    }

    int win[2] = {-1, -1};
    int rc = reel_json_cfg_ints(j, "WanModel", "patch_size", 3, c.patch, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "text_len", c.text_len, 1, &c.text_len, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "in_dim", c.in_dim, 1, &c.in_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "dim", c.dim, 1, &c.dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "ffn_dim", c.ffn_dim, 1, &c.ffn_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "freq_dim", c.freq_dim, 2, &c.freq_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "text_dim", c.text_dim, 1, &c.text_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "out_dim", c.out_dim, 1, &c.out_dim, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "num_heads", c.num_heads, 1, &c.num_heads, err);
    if (!rc) rc = reel_json_cfg_int(j, "WanModel", "num_layers", c.num_layers, 0, &c.num_layers, err);
    if (!rc) rc = reel_json_cfg_ints(j, "WanModel", "window_size", 2, win, err);
    if (!rc) rc = reel_json_cfg_bool(j, "WanModel", "qk_norm", c.qk_norm, &c.qk_norm, err);
    if (!rc) rc = reel_json_cfg_bool(j, "WanModel", "cross_attn_norm", c.cross_attn_norm, &c.cross_attn_norm, err);
    if (rc)
        return rc;
    const struct reel_json *eps = reel_json_get(j, "eps");
    if (eps && eps->type != REEL_JSON_NULL) {
        if (eps->type != REEL_JSON_NUMBER || !(eps->number > 0) || !isfinite(eps->number))
            return reel_errf(err, REEL_E_MODEL, "WanModel config: 'eps' must be a positive number");
        c.eps = eps->number;
    }

    if (win[0] != -1 || win[1] != -1)
        return reel_errf(err, REEL_E_MODEL,
                         "WanModel config: window_size (%d, %d) is not supported: only global "
                         "attention (-1, -1)",
                         win[0], win[1]);
    for (int i = 0; i < 3; i++)
        if (c.patch[i] < 1)
            return reel_errf(err, REEL_E_MODEL,
                             "WanModel config: 'patch_size' entries must be positive");
    if (c.dim % c.num_heads != 0 || (c.dim / c.num_heads) % 2 != 0)
        return reel_errf(err, REEL_E_MODEL,
                         "WanModel config: dim %d must split into %d heads of even size", c.dim,
                         c.num_heads);
    if (c.freq_dim % 2 != 0)
        return reel_errf(err, REEL_E_MODEL, "WanModel config: 'freq_dim' %d must be even",
                         c.freq_dim);
    *cfg = c;
    return REEL_OK;
}

/* ----------------------------------------------------------- tensor table */

struct reel_wan_dit {
    struct reel_wan_dit_config cfg;
    struct reel_wan_dims dims;
    struct reel_backend *be;
    struct reel_wslot patch_w, patch_b;
    struct reel_wan_embed_w emb;
    struct reel_wan_block_w *blocks;
};

static struct reel_wan_dims dit_dims(const struct reel_wan_dit_config *cfg)
{
    struct reel_wan_dims d = {
        .dim = cfg->dim, .ffn_dim = cfg->ffn_dim, .heads = cfg->num_heads,
        .head_dim = cfg->dim / cfg->num_heads, .qk_norm = cfg->qk_norm,
        .cross_attn_norm = cfg->cross_attn_norm, .eps = (float)cfg->eps,
    };
    return d;
}

static void walk_tensors(const struct reel_wan_dit_config *cfg, struct reel_wan_dit *m,
                         reel_wan_walk_fn fn, void *ctx)
{
    const struct reel_wan_walker wk = {fn, ctx, ""};
    const struct reel_wan_dims d = dit_dims(cfg);
    const int64_t dim = cfg->dim;
    const int64_t pvol = (int64_t)cfg->patch[0] * cfg->patch[1] * cfg->patch[2];

    reel_wan_put(&wk, m ? &m->patch_w : NULL, 0, "patch_embedding.weight", 5, dim, cfg->in_dim,
                 cfg->patch[0], cfg->patch[1], cfg->patch[2]);
    reel_wan_put(&wk, m ? &m->patch_b : NULL, 1, "patch_embedding.bias", 1, dim, 0, 0, 0, 0);
    reel_wan_walk_embed(&wk, dim, cfg->text_dim, cfg->freq_dim, m ? &m->emb : NULL);
    for (int i = 0; i < cfg->num_layers; i++)
        reel_wan_walk_block(&wk, &d, i, REEL_WAN_LAYOUT_WAN, m ? &m->blocks[i] : NULL);
    reel_wan_walk_head(&wk, dim, pvol * cfg->out_dim, m ? &m->emb : NULL);
}

void reel_wan_dit_tensor_table(const struct reel_wan_dit_config *cfg, reel_tensor_emit_fn emit,
                               void *ctx)
{
    struct reel_wan_table t = {emit, ctx};
    walk_tensors(cfg, NULL, reel_wan_table_visit, &t);
}

/* ------------------------------------------------------------------ loader */

void reel_wan_dit_destroy(struct reel_wan_dit *m)
{
    if (!m)
        return;
    if (m->blocks)
        walk_tensors(&m->cfg, m, reel_wan_free_visit, NULL);
    free(m->blocks);
    free(m);
}

int reel_wan_dit_create(const struct reel_wan_dit_config *cfg, const struct reel_weights *w,
                        struct reel_backend *be, struct reel_wan_dit **out, struct reel_err *err)
{
    *out = NULL;
    /* Wan2.1 I2V/FLF2V checkpoints carry a CLIP image branch this port does
     * not implement; running without it would silently give wrong videos. */
    if (reel_weights_find(w, "img_emb.proj.0.weight") ||
        reel_weights_find(w, "blocks.0.cross_attn.k_img.weight"))
        return reel_errf(err, REEL_E_MODEL,
                         "this Wan checkpoint has the Wan2.1 I2V CLIP image branch (img_emb, "
                         "cross_attn.k_img), which is not supported");
    struct reel_wan_dit *m = calloc(1, sizeof *m);
    if (!m)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    m->cfg = *cfg;
    m->dims = dit_dims(cfg);
    m->be = be;
    m->blocks = calloc((size_t)(cfg->num_layers > 0 ? cfg->num_layers : 1), sizeof *m->blocks);
    if (!m->blocks) {
        free(m);
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    }
    struct reel_wan_bind b = {w, err, REEL_OK};
    walk_tensors(cfg, m, reel_wan_bind_visit, &b);
    if (b.rc) {
        reel_wan_dit_destroy(m);
        return b.rc;
    }
    *out = m;
    return REEL_OK;
}

/* ----------------------------------------------------------------- forward */

/* Probe helper: token-level timestep quantities are stored per distinct
 * value; the probe sees them per token ([L, n]) when t is per token. */
static void probe_per_token(const struct reel_wan_dit_input *in, const char *name, const float *u,
                            int64_t n, const struct reel_wan_tsteps *ts, float *tmp)
{
    if (!in->t_per_token) {
        in->probe(in->probe_ctx, name, u, n);
        return;
    }
    for (int64_t r = 0; r < ts->L; r++)
        memcpy(tmp + r * n, u + (int64_t)ts->tok_u[r] * n, sizeof(float) * (size_t)n);
    in->probe(in->probe_ctx, name, tmp, ts->L * n);
}

int reel_wan_dit_forward(struct reel_wan_dit *m, const struct reel_wan_dit_input *in, float *out,
                         struct reel_err *err)
{
    const struct reel_wan_dit_config *cfg = &m->cfg;
    const struct reel_wan_dims *dm = &m->dims;
    struct reel_backend *be = m->be;
    const int pt = cfg->patch[0], ph = cfg->patch[1], pw = cfg->patch[2];
    const int64_t D = cfg->dim, FD = cfg->freq_dim, T = cfg->text_len;
    const int hd = cfg->dim / cfg->num_heads, half = hd / 2;
    const int64_t P = (int64_t)pt * ph * pw, OD = (int64_t)cfg->out_dim * P;

    if (!in->x || !in->t || (in->context_len > 0 && !in->context))
        return reel_errf(err, REEL_E_SPEC, "Wan DiT: missing input");
    int64_t grid[3];
    int grc = reel_wan_patch_grid(cfg->patch, in->frames, in->height, in->width, "Wan DiT", grid,
                                  err);
    if (grc)
        return grc;
    const int64_t gf = grid[0], gh = grid[1], gw = grid[2];
    const int64_t N = gf * gh * gw, L = in->seq_len;
    if (L < N)
        return reel_errf(err, REEL_E_SPEC, "Wan DiT: seq_len %lld is below the token count %lld",
                         (long long)L, (long long)N);
    if (in->context_len < 0 || in->context_len > T)
        return reel_errf(err, REEL_E_SPEC,
                         "Wan DiT: %lld context tokens do not fit text_len %lld",
                         (long long)in->context_len, (long long)T);

    struct reel_wan_tsteps ts = {0};
    struct reel_wan_scratch s = {0};
    int rc = reel_wan_tsteps_init(&ts, in->t, in->t_per_token, L, err);
    if (rc) {
        reel_err_prefix(err, "Wan DiT: ");
        return rc;
    }
    const int64_t U = ts.U;
    const int64_t kpatch = (int64_t)cfg->in_dim * P;
    float *sinus = NULL, *e = NULL, *e0 = NULL, *modb = NULL, *ctx = NULL, *cos_t = NULL,
          *sin_t = NULL, *patches = NULL, *x = NULL, *hout = NULL, *ptmp = NULL;

#define ALLOC(p, n)                                                   \
    do {                                                              \
        (p) = malloc(sizeof *(p) * (size_t)((n) > 0 ? (n) : 1));      \
        if (!(p))                                                     \
            goto oom;                                                 \
    } while (0)

    ALLOC(sinus, U * FD);
    ALLOC(e, U * D);
    ALLOC(e0, U * 6 * D);
    ALLOC(modb, U * 6 * D);
    ALLOC(ctx, T * D);
    ALLOC(cos_t, N * half);
    ALLOC(sin_t, N * half);
    ALLOC(x, L * D);
    ALLOC(hout, L * OD);
    if (in->probe) {
        int64_t pn = L * 6 * D;
        if (pn < L * FD)
            pn = L * FD;
        if (pn < (int64_t)REEL_WAN_ROPE_MAX_POS * hd)
            pn = (int64_t)REEL_WAN_ROPE_MAX_POS * hd;
        ALLOC(ptmp, pn);
    }
    if ((rc = reel_wan_scratch_init(&s, dm, L, T, 0, err)))
        goto done;

    if ((rc = reel_wan_time_embed(be, &m->emb, D, FD, &ts, sinus, e, e0, err)))
        goto done;
    if (in->probe) {
        probe_per_token(in, "t_sinusoid", sinus, FD, &ts, ptmp);
        probe_per_token(in, "e", e, D, &ts, ptmp);
        probe_per_token(in, "e0", e0, 6 * D, &ts, ptmp);
    }
    if ((rc = reel_wan_text_embed(be, &m->emb, D, cfg->text_dim, T, in->context, in->context_len,
                                  ctx, err)))
        goto done;
    if (in->probe)
        in->probe(in->probe_ctx, "context_emb", ctx, T * D);

    /* rotary tables per token: (frame, row, column) positions */
    if ((rc = reel_wan_rope_table_3d(hd, gf, gh, gw, cos_t, sin_t, err)))
        goto done;
    if (in->probe) {
        double inv[REEL_WAN_ROPE_MAX_POS];
        int c0, c1;
        if (half <= REEL_WAN_ROPE_MAX_POS) {
            reel_wan_rope_inv_freqs(hd, inv, &c0, &c1);
            for (int64_t p = 0; p < REEL_WAN_ROPE_MAX_POS; p++)
                for (int j = 0; j < half; j++) {
                    double a = (double)p * inv[j];
                    ptmp[(p * half + j) * 2] = (float)cos(a);
                    ptmp[(p * half + j) * 2 + 1] = (float)sin(a);
                }
            in->probe(in->probe_ctx, "rope_freqs", ptmp, (int64_t)REEL_WAN_ROPE_MAX_POS * hd);
        }
    }

    /* patch embedding: a Conv3d with stride = kernel is a Linear over the
     * gathered patches, each laid out (c, kt, kh, kw) like the weight */
    ALLOC(patches, N * kpatch);
    {
        const int64_t H = in->height, W = in->width, FHW = in->frames * H * W;
        for (int64_t f = 0; f < gf; f++)
            for (int64_t hh = 0; hh < gh; hh++)
                for (int64_t ww = 0; ww < gw; ww++) {
                    float *row = patches + ((f * gh + hh) * gw + ww) * kpatch;
                    for (int64_t c = 0; c < cfg->in_dim; c++)
                        for (int a = 0; a < pt; a++)
                            for (int b = 0; b < ph; b++)
                                for (int d = 0; d < pw; d++)
                                    *row++ = in->x[c * FHW + (f * pt + a) * H * W +
                                                   (hh * ph + b) * W + ww * pw + d];
                }
    }
    rc = be->linear(be, x, patches, N, kpatch, m->patch_w.t, m->patch_b.f, err);
    free(patches);
    patches = NULL;
    if (rc)
        goto done;
    memset(x + N * D, 0, sizeof(float) * (size_t)((L - N) * D));
    if (in->probe)
        in->probe(in->probe_ctx, "x_tokens", x, L * D);

    for (int i = 0; i < cfg->num_layers; i++) {
        const struct reel_wan_block_w *b = &m->blocks[i];
        reel_wan_block_mod(be, dm, b, &ts, e0, modb);
        if ((rc = reel_wan_self_attn(be, dm, b, x, L, N, &ts, modb, cos_t, sin_t, &s, err)) ||
            (rc = reel_wan_cross_attn(be, dm, b, x, L, N, ctx, T, NULL, NULL, NULL, &s, err)))
            goto done;
        be->add(be, x, x, s.Y, L * D);
        if ((rc = reel_wan_ffn(be, dm, b, x, L, &ts, modb, &s, err)))
            goto done;
        if (in->probe) {
            char name[32];
            snprintf(name, sizeof name, "block%d_out", i);
            in->probe(in->probe_ctx, name, x, L * D);
        }
    }

    if ((rc = reel_wan_head(be, dm, &m->emb, x, L, &ts, e, &s, hout, err)))
        goto done;
    if (in->probe)
        in->probe(in->probe_ctx, "head_out", hout, L * OD);

    /* unpatchify: token (f,h,w) row (p,q,r,c) -> out[c, f*pt+p, h*ph+q, w*pw+r] */
    {
        const int64_t H = in->height, W = in->width, FHW = in->frames * H * W;
        const int64_t c_out = cfg->out_dim;
        for (int64_t f = 0; f < gf; f++)
            for (int64_t hh = 0; hh < gh; hh++)
                for (int64_t ww = 0; ww < gw; ww++) {
                    const float *row = hout + ((f * gh + hh) * gw + ww) * OD;
                    for (int a = 0; a < pt; a++)
                        for (int bb = 0; bb < ph; bb++)
                            for (int d = 0; d < pw; d++)
                                for (int64_t c = 0; c < c_out; c++)
                                    out[c * FHW + (f * pt + a) * H * W + (hh * ph + bb) * W +
                                        ww * pw + d] = *row++;
                }
    }
#undef ALLOC
    goto done;

oom:
    rc = reel_errf(err, REEL_E_OTHER, "Wan DiT: out of memory for the activations");
done:
    reel_wan_tsteps_free(&ts);
    reel_wan_scratch_free(&s);
    free(sinus);
    free(e);
    free(e0);
    free(modb);
    free(ctx);
    free(cos_t);
    free(sin_t);
    free(patches);
    free(x);
    free(hout);
    free(ptmp);
    return rc;
}
