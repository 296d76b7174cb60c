/* Shared Wan-family DiT pieces (see wan_blocks.h). The arithmetic here is
 * the one the Wan golden files were matched with; wan_dit.c and
 * ovi_fusion.c only sequence these calls, so both towers of Ovi and the
 * plain Wan DiT cannot drift apart. */
#include "stages/wan_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows of the FFN hidden state kept at once, so the [L, ffn_dim] activation
 * never exists whole (16M floats = 64 MiB per buffer). */
#define FFN_CHUNK_FLOATS ((int64_t)16 << 20)
/* Ovi's injected pre_attn_norm_fusion / norm_k_fusion use a fixed eps, not
 * the config's. */
#define FUSION_EPS 1e-6f

/* ------------------------------------------------------------ weights */

void reel_wan_put(const struct reel_wan_walker *wk, struct reel_wslot *slot, int small,
                  const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                  int64_t d4)
{
    int64_t shape[5] = {d0, d1, d2, d3, d4};
    char full[192];
    snprintf(full, sizeof full, "%s%s", wk->prefix ? wk->prefix : "", name);
    wk->fn(wk->ctx, full, ndim, shape, slot, small);
}

void reel_wan_put_linear(const struct reel_wan_walker *wk, const char *name, int64_t out,
                         int64_t in, struct reel_wslot *w, struct reel_wslot *b)
{
    char n[160];
    snprintf(n, sizeof n, "%s.weight", name);
    reel_wan_put(wk, w, 0, n, 2, out, in, 0, 0, 0);
    snprintf(n, sizeof n, "%s.bias", name);
    reel_wan_put(wk, b, 1, n, 1, out, 0, 0, 0, 0);
}

void reel_wan_bind_visit(void *vctx, const char *name, int ndim, const int64_t *shape,
                         struct reel_wslot *slot, int small)
{
    struct reel_wan_bind *b = vctx;
    if (b->rc)
        return; /* keep the first error */
    b->rc = reel_weights_get(b->w, name, ndim, shape, &slot->t, b->err);
    if (!b->rc && small)
        b->rc = reel_weights_get_f32(b->w, name, ndim, shape, &slot->f, b->err);
}

void reel_wan_free_visit(void *vctx, const char *name, int ndim, const int64_t *shape,
                         struct reel_wslot *slot, int small)
{
    (void)vctx;
    (void)name;
    (void)ndim;
    (void)shape;
    (void)small;
    free(slot->f);
    slot->f = NULL;
}

void reel_wan_table_visit(void *vctx, const char *name, int ndim, const int64_t *shape,
                          struct reel_wslot *slot, int small)
{
    (void)slot;
    (void)small;
    const struct reel_wan_table *t = vctx;
    t->emit(t->ctx, name, ndim, shape);
}

#define BS(field) (b ? &b->field : NULL)

void reel_wan_walk_block(const struct reel_wan_walker *wk, const struct reel_wan_dims *d, int i,
                         enum reel_wan_block_layout layout, struct reel_wan_block_w *b)
{
    const int64_t dim = d->dim;
    char name[160], pre[128];

    /* Wan: the block's own Parameter comes before its submodules; Ovi's
     * ModulationAdd is a submodule registered after ffn */
    if (layout == REEL_WAN_LAYOUT_WAN) {
        snprintf(name, sizeof name, "blocks.%d.modulation", i);
        reel_wan_put(wk, BS(mod), 1, name, 3, 1, 6, dim, 0, 0);
    }
    static const char *const att[2] = {"self_attn", "cross_attn"};
    for (int a = 0; a < 2; a++) {
        if (a == 1 && d->cross_attn_norm) {
            snprintf(name, sizeof name, "blocks.%d.norm3.weight", i);
            reel_wan_put(wk, BS(n3_w), 1, name, 1, dim, 0, 0, 0, 0);
            snprintf(name, sizeof name, "blocks.%d.norm3.bias", i);
            reel_wan_put(wk, BS(n3_b), 1, name, 1, dim, 0, 0, 0, 0);
        }
        struct reel_wslot *s[10] = {NULL};
        if (b) {
            struct reel_wslot *sa[10] = {&b->sa_q_w, &b->sa_q_b, &b->sa_k_w, &b->sa_k_b,
                                         &b->sa_v_w, &b->sa_v_b, &b->sa_o_w, &b->sa_o_b,
                                         &b->sa_nq,  &b->sa_nk};
            struct reel_wslot *ca[10] = {&b->ca_q_w, &b->ca_q_b, &b->ca_k_w, &b->ca_k_b,
                                         &b->ca_v_w, &b->ca_v_b, &b->ca_o_w, &b->ca_o_b,
                                         &b->ca_nq,  &b->ca_nk};
            memcpy(s, a ? ca : sa, sizeof s);
        }
        static const char *const lin[4] = {"q", "k", "v", "o"};
        for (int l = 0; l < 4; l++) {
            snprintf(pre, sizeof pre, "blocks.%d.%s.%s", i, att[a], lin[l]);
            reel_wan_put_linear(wk, pre, dim, dim, s[2 * l], s[2 * l + 1]);
        }
        if (d->qk_norm) {
            snprintf(name, sizeof name, "blocks.%d.%s.norm_q.weight", i, att[a]);
            reel_wan_put(wk, s[8], 1, name, 1, dim, 0, 0, 0, 0);
            snprintf(name, sizeof name, "blocks.%d.%s.norm_k.weight", i, att[a]);
            reel_wan_put(wk, s[9], 1, name, 1, dim, 0, 0, 0, 0);
        }
        if (a == 1 && layout == REEL_WAN_LAYOUT_OVI) {
            /* injected after construction, so registered last in cross_attn */
            snprintf(pre, sizeof pre, "blocks.%d.cross_attn.k_fusion", i);
            reel_wan_put_linear(wk, pre, dim, dim, BS(kf_w), BS(kf_b));
            snprintf(pre, sizeof pre, "blocks.%d.cross_attn.v_fusion", i);
            reel_wan_put_linear(wk, pre, dim, dim, BS(vf_w), BS(vf_b));
            snprintf(name, sizeof name, "blocks.%d.cross_attn.pre_attn_norm_fusion.weight", i);
            reel_wan_put(wk, BS(pf_w), 1, name, 1, dim, 0, 0, 0, 0);
            snprintf(name, sizeof name, "blocks.%d.cross_attn.pre_attn_norm_fusion.bias", i);
            reel_wan_put(wk, BS(pf_b), 1, name, 1, dim, 0, 0, 0, 0);
            if (d->qk_norm) {
                snprintf(name, sizeof name, "blocks.%d.cross_attn.norm_k_fusion.weight", i);
                reel_wan_put(wk, BS(nkf), 1, name, 1, dim, 0, 0, 0, 0);
            }
        }
    }
    snprintf(pre, sizeof pre, "blocks.%d.ffn.0", i);
    reel_wan_put_linear(wk, pre, d->ffn_dim, dim, BS(ffn0_w), BS(ffn0_b));
    snprintf(pre, sizeof pre, "blocks.%d.ffn.2", i);
    reel_wan_put_linear(wk, pre, dim, d->ffn_dim, BS(ffn2_w), BS(ffn2_b));
    if (layout == REEL_WAN_LAYOUT_OVI) {
        snprintf(name, sizeof name, "blocks.%d.modulation.modulation", i);
        reel_wan_put(wk, BS(mod), 1, name, 3, 1, 6, dim, 0, 0);
    }
}

#define ES(field) (e ? &e->field : NULL)

void reel_wan_walk_embed(const struct reel_wan_walker *wk, int64_t dim, int64_t text_dim,
                         int64_t freq_dim, struct reel_wan_embed_w *e)
{
    reel_wan_put_linear(wk, "text_embedding.0", dim, text_dim, ES(txt0_w), ES(txt0_b));
    reel_wan_put_linear(wk, "text_embedding.2", dim, dim, ES(txt2_w), ES(txt2_b));
    reel_wan_put_linear(wk, "time_embedding.0", dim, freq_dim, ES(time0_w), ES(time0_b));
    reel_wan_put_linear(wk, "time_embedding.2", dim, dim, ES(time2_w), ES(time2_b));
    reel_wan_put_linear(wk, "time_projection.1", 6 * dim, dim, ES(proj_w), ES(proj_b));
}

void reel_wan_walk_head(const struct reel_wan_walker *wk, int64_t dim, int64_t head_out,
                        struct reel_wan_embed_w *e)
{
    reel_wan_put(wk, ES(head_mod), 1, "head.modulation", 3, 1, 2, dim, 0, 0);
    reel_wan_put_linear(wk, "head.head", head_out, dim, ES(head_w), ES(head_b));
}

/* ------------------------------------------------------------ timesteps */

struct tsort {
    float v;
    int64_t i;
};

static int tsort_cmp(const void *a, const void *b)
{
    const struct tsort *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

int reel_wan_tsteps_init(struct reel_wan_tsteps *ts, const float *t, int per_token, int64_t L,
                         struct reel_err *err)
{
    memset(ts, 0, sizeof *ts);
    const int64_t nt = per_token ? L : 1;
    struct tsort *srt = malloc(sizeof *srt * (size_t)(nt > 0 ? nt : 1));
    ts->tok_u = malloc(sizeof *ts->tok_u * (size_t)(L > 0 ? L : 1));
    ts->tval = malloc(sizeof *ts->tval * (size_t)(nt > 0 ? nt : 1));
    if (!srt || !ts->tok_u || !ts->tval) {
        free(srt);
        reel_wan_tsteps_free(ts);
        return reel_errf(err, REEL_E_OTHER, "out of memory for the timesteps");
    }
    for (int64_t i = 0; i < nt; i++) {
        if (!isfinite(t[i])) {
            free(srt);
            reel_wan_tsteps_free(ts);
            return reel_errf(err, REEL_E_SPEC, "timestep %lld is not finite", (long long)i);
        }
        srt[i].v = t[i];
        srt[i].i = i;
    }
    qsort(srt, (size_t)nt, sizeof *srt, tsort_cmp);
    int64_t U = 0;
    for (int64_t i = 0; i < nt; i++) {
        if (i == 0 || srt[i].v != srt[i - 1].v)
            ts->tval[U++] = srt[i].v;
        if (per_token)
            ts->tok_u[srt[i].i] = (int32_t)(U - 1);
    }
    if (!per_token)
        for (int64_t r = 0; r < L; r++)
            ts->tok_u[r] = 0;
    free(srt);
    ts->L = L;
    ts->U = U;
    return REEL_OK;
}

void reel_wan_tsteps_free(struct reel_wan_tsteps *ts)
{
    free(ts->tok_u);
    free(ts->tval);
    ts->tok_u = NULL;
    ts->tval = NULL;
}

int64_t reel_wan_run_end(const struct reel_wan_tsteps *ts, int64_t r0)
{
    int64_t r1 = r0 + 1;
    while (r1 < ts->L && ts->tok_u[r1] == ts->tok_u[r0])
        r1++;
    return r1;
}

int reel_wan_time_embed(struct reel_backend *be, const struct reel_wan_embed_w *w, int64_t dim,
                        int64_t freq_dim, const struct reel_wan_tsteps *ts, float *sinus,
                        float *e, float *e0, struct reel_err *err)
{
    const int64_t U = ts->U, D = dim, FD = freq_dim, h2 = FD / 2;
    for (int64_t u = 0; u < U; u++)
        for (int64_t i = 0; i < h2; i++) {
            double a = (double)ts->tval[u] * pow(10000.0, -(double)i / (double)h2);
            sinus[u * FD + i] = (float)cos(a);
            sinus[u * FD + h2 + i] = (float)sin(a);
        }
    float *eh = malloc(sizeof *eh * (size_t)(U * D > 0 ? U * D : 1));
    float *ea = malloc(sizeof *ea * (size_t)(U * D > 0 ? U * D : 1));
    int rc = REEL_OK;
    if (!eh || !ea) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory for the time embedding");
        goto done;
    }
    /* Linear-SiLU-Linear, then the SiLU-Linear projection to 6 vectors */
    if ((rc = be->linear(be, eh, sinus, U, FD, w->time0_w.t, w->time0_b.f, err)))
        goto done;
    be->silu(be, ea, eh, U * D);
    if ((rc = be->linear(be, e, ea, U, D, w->time2_w.t, w->time2_b.f, err)))
        goto done;
    be->silu(be, eh, e, U * D);
    rc = be->linear(be, e0, eh, U, D, w->proj_w.t, w->proj_b.f, err);
done:
    free(eh);
    free(ea);
    return rc;
}

int reel_wan_text_embed(struct reel_backend *be, const struct reel_wan_embed_w *w, int64_t dim,
                        int64_t text_dim, int64_t text_len, const float *context,
                        int64_t context_len, float *out, struct reel_err *err)
{
    const int64_t T = text_len, D = dim;
    float *in = malloc(sizeof *in * (size_t)(T * text_dim > 0 ? T * text_dim : 1));
    float *h = malloc(sizeof *h * (size_t)(T * D > 0 ? T * D : 1));
    int rc = REEL_OK;
    if (!in || !h) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory for the text embedding");
        goto done;
    }
    /* zero-padded to text_len and not masked later: the padded rows take
     * part in cross-attention, as in the reference */
    memset(in, 0, sizeof(float) * (size_t)(T * text_dim));
    if (context_len > 0)
        memcpy(in, context, sizeof(float) * (size_t)(context_len * text_dim));
    if ((rc = be->linear(be, out, in, T, text_dim, w->txt0_w.t, w->txt0_b.f, err)))
        goto done;
    be->gelu_tanh(be, h, out, T * D);
    rc = be->linear(be, out, h, T, D, w->txt2_w.t, w->txt2_b.f, err);
done:
    free(in);
    free(h);
    return rc;
}

/* ------------------------------------------------------------ rotary */

void reel_wan_rope_inv_freqs(int hd, double *inv, int *c0, int *c1)
{
    /* rope_params(1024, d_axis): 1 / 10000^(2j / d_axis), per axis */
    int c = hd / 2;
    *c0 = c - 2 * (c / 3);
    *c1 = c / 3;
    int d0 = hd - 4 * (hd / 6), d1 = 2 * (hd / 6);
    for (int j = 0; j < *c0; j++)
        inv[j] = 1.0 / pow(10000.0, (double)(2 * j) / d0);
    for (int j = 0; j < *c1; j++) {
        inv[*c0 + j] = 1.0 / pow(10000.0, (double)(2 * j) / d1);
        inv[*c0 + *c1 + j] = inv[*c0 + j];
    }
}

int reel_wan_rope_table_3d(int hd, int64_t gf, int64_t gh, int64_t gw, float *cos_t,
                           float *sin_t, struct reel_err *err)
{
    const int half = hd / 2;
    double *inv = malloc(sizeof *inv * (size_t)(half > 0 ? half : 1));
    if (!inv)
        return reel_errf(err, REEL_E_OTHER, "out of memory for the rotary tables");
    int c0, c1;
    reel_wan_rope_inv_freqs(hd, inv, &c0, &c1);
    for (int64_t f = 0; f < gf; f++)
        for (int64_t hh = 0; hh < gh; hh++)
            for (int64_t ww = 0; ww < gw; ww++) {
                int64_t n = (f * gh + hh) * gw + ww;
                for (int j = 0; j < half; j++) {
                    int64_t pos = j < c0 ? f : j < c0 + c1 ? hh : ww;
                    double a = (double)pos * inv[j];
                    cos_t[n * half + j] = (float)cos(a);
                    sin_t[n * half + j] = (float)sin(a);
                }
            }
    free(inv);
    return REEL_OK;
}

/* ------------------------------------------------------------ scratch */

int reel_wan_scratch_init(struct reel_wan_scratch *s, const struct reel_wan_dims *d, int64_t rows,
                          int64_t ctx_rows, int64_t tgt_rows, struct reel_err *err)
{
    memset(s, 0, sizeof *s);
    const int64_t D = d->dim, FF = d->ffn_dim;
    s->rows = rows;
    s->ffn_rows = FF > 0 && FFN_CHUNK_FLOATS / FF < rows
                      ? (FFN_CHUNK_FLOATS / FF > 0 ? FFN_CHUNK_FLOATS / FF : 1)
                      : rows;
#define SALLOC(p, n)                                                   \
    do {                                                               \
        (p) = malloc(sizeof *(p) * (size_t)((n) > 0 ? (n) : 1));       \
        if (!(p))                                                      \
            goto oom;                                                  \
    } while (0)
    SALLOC(s->xn, rows * D);
    SALLOC(s->A, rows * D);
    SALLOC(s->B, rows * D);
    SALLOC(s->C, rows * D);
    SALLOC(s->Y, rows * D);
    SALLOC(s->ck, ctx_rows * D);
    SALLOC(s->cv, ctx_rows * D);
    if (tgt_rows > 0) {
        SALLOC(s->tn, tgt_rows * D);
        SALLOC(s->tk, tgt_rows * D);
        SALLOC(s->tv, tgt_rows * D);
    }
    SALLOC(s->fh, s->ffn_rows * FF);
    SALLOC(s->fa, s->ffn_rows * FF);
#undef SALLOC
    return REEL_OK;
oom:
    reel_wan_scratch_free(s);
    return reel_errf(err, REEL_E_OTHER, "out of memory for the activations");
}

void reel_wan_scratch_free(struct reel_wan_scratch *s)
{
    free(s->xn);
    free(s->A);
    free(s->B);
    free(s->C);
    free(s->Y);
    free(s->ck);
    free(s->cv);
    free(s->tn);
    free(s->tk);
    free(s->tv);
    free(s->fh);
    free(s->fa);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------ blocks */

void reel_wan_block_mod(struct reel_backend *be, const struct reel_wan_dims *d,
                        const struct reel_wan_block_w *b, const struct reel_wan_tsteps *ts,
                        const float *e0, float *modb)
{
    const int64_t D6 = 6 * d->dim;
    for (int64_t u = 0; u < ts->U; u++)
        be->add(be, modb + u * D6, b->mod.f, e0 + u * D6, D6);
}

/* xn = LN(x) * (1 + mod[scale]) + mod[shift] over timestep runs. */
static void norm_modulate(struct reel_backend *be, const struct reel_wan_dims *d, float *xn,
                          const float *x, int64_t L, const struct reel_wan_tsteps *ts,
                          const float *mod, int64_t mod_stride, int shift, int scale)
{
    const int64_t D = d->dim;
    be->layernorm(be, xn, x, L, D, NULL, NULL, d->eps);
    for (int64_t r0 = 0, r1; r0 < L; r0 = r1) {
        r1 = reel_wan_run_end(ts, r0);
        const float *mb = mod + (int64_t)ts->tok_u[r0] * mod_stride;
        be->modulate(be, xn + r0 * D, xn + r0 * D, r1 - r0, D, mb + shift * D, mb + scale * D, 0);
    }
}

static void gated_runs(struct reel_backend *be, const struct reel_wan_dims *d, float *x,
                       const float *y, int64_t L, const struct reel_wan_tsteps *ts,
                       const float *modb, int gate)
{
    const int64_t D = d->dim;
    for (int64_t r0 = 0, r1; r0 < L; r0 = r1) {
        r1 = reel_wan_run_end(ts, r0);
        const float *mb = modb + (int64_t)ts->tok_u[r0] * 6 * D;
        be->gated_add(be, x + r0 * D, y + r0 * D, r1 - r0, D, mb + gate * D, 0);
    }
}

int reel_wan_self_attn(struct reel_backend *be, const struct reel_wan_dims *d,
                       const struct reel_wan_block_w *b, float *x, int64_t L, int64_t N,
                       const struct reel_wan_tsteps *ts, const float *modb, const float *cos_t,
                       const float *sin_t, struct reel_wan_scratch *s, struct reel_err *err)
{
    const int64_t D = d->dim;
    const int heads = d->heads, hd = d->head_dim;
    const float scale = (float)(1.0 / sqrt((double)hd));
    int rc;
    norm_modulate(be, d, s->xn, x, L, ts, modb, 6 * D, 0, 1);
    if ((rc = be->linear(be, s->A, s->xn, L, D, b->sa_q_w.t, b->sa_q_b.f, err)) ||
        (rc = be->linear(be, s->B, s->xn, L, D, b->sa_k_w.t, b->sa_k_b.f, err)) ||
        (rc = be->linear(be, s->C, s->xn, L, D, b->sa_v_w.t, b->sa_v_b.f, err)))
        return rc;
    if (d->qk_norm) {
        be->rmsnorm(be, s->A, s->A, L, D, b->sa_nq.f, d->eps);
        be->rmsnorm(be, s->B, s->B, L, D, b->sa_nk.f, d->eps);
    }
    /* rotary on the N real tokens only: padding rows stay as they are */
    be->rope(be, s->A, N, heads, hd, D, cos_t, sin_t);
    be->rope(be, s->B, N, heads, hd, D, cos_t, sin_t);
    if ((rc = be->attention(be, s->xn, s->A, s->B, s->C, L, L, N, heads, hd, D, D, D, scale, NULL,
                            err)))
        return rc;
    if ((rc = be->linear(be, s->Y, s->xn, L, D, b->sa_o_w.t, b->sa_o_b.f, err)))
        return rc;
    gated_runs(be, d, x, s->Y, L, ts, modb, 2);
    return REEL_OK;
}

int reel_wan_cross_attn(struct reel_backend *be, const struct reel_wan_dims *d,
                        const struct reel_wan_block_w *b, const float *x, int64_t L, int64_t N,
                        const float *ctx, int64_t T, const float *q_cos, const float *q_sin,
                        const struct reel_wan_target *tgt, struct reel_wan_scratch *s,
                        struct reel_err *err)
{
    const int64_t D = d->dim;
    const int heads = d->heads, hd = d->head_dim;
    const float scale = (float)(1.0 / sqrt((double)hd));
    int rc;
    const float *xc = x;
    if (d->cross_attn_norm) {
        be->layernorm(be, s->xn, x, L, D, b->n3_w.f, b->n3_b.f, d->eps);
        xc = s->xn;
    }
    /* text: no RoPE, no mask (the padded context rows are attended) */
    if ((rc = be->linear(be, s->A, xc, L, D, b->ca_q_w.t, b->ca_q_b.f, err)) ||
        (rc = be->linear(be, s->ck, ctx, T, D, b->ca_k_w.t, b->ca_k_b.f, err)) ||
        (rc = be->linear(be, s->cv, ctx, T, D, b->ca_v_w.t, b->ca_v_b.f, err)))
        return rc;
    if (d->qk_norm) {
        be->rmsnorm(be, s->A, s->A, L, D, b->ca_nq.f, d->eps);
        be->rmsnorm(be, s->ck, s->ck, T, D, b->ca_nk.f, d->eps);
    }
    if ((rc = be->attention(be, s->C, s->A, s->ck, s->cv, L, T, T, heads, hd, D, D, D, scale, NULL,
                            err)))
        return rc;

    if (tgt) {
        /* the other tower: its own LayerNorm and k/v projections, the
         * shared (already normed) q; each side carries its own RoPE */
        be->layernorm(be, s->tn, tgt->x, tgt->L, D, b->pf_w.f, b->pf_b.f, FUSION_EPS);
        if ((rc = be->linear(be, s->tk, s->tn, tgt->L, D, b->kf_w.t, b->kf_b.f, err)) ||
            (rc = be->linear(be, s->tv, s->tn, tgt->L, D, b->vf_w.t, b->vf_b.f, err)))
            return rc;
        if (d->qk_norm)
            be->rmsnorm(be, s->tk, s->tk, tgt->L, D, b->nkf.f, FUSION_EPS);
        be->rope(be, s->A, N, heads, hd, D, q_cos, q_sin);
        be->rope(be, s->tk, tgt->N, heads, hd, D, tgt->cos_t, tgt->sin_t);
        if ((rc = be->attention(be, s->B, s->A, s->tk, s->tv, L, tgt->L, tgt->N, heads, hd, D, D,
                                D, scale, NULL, err)))
            return rc;
        be->add(be, s->C, s->C, s->B, L * D);
    }
    return be->linear(be, s->Y, s->C, L, D, b->ca_o_w.t, b->ca_o_b.f, err);
}

int reel_wan_ffn(struct reel_backend *be, const struct reel_wan_dims *d,
                 const struct reel_wan_block_w *b, float *x, int64_t L,
                 const struct reel_wan_tsteps *ts, const float *modb, struct reel_wan_scratch *s,
                 struct reel_err *err)
{
    const int64_t D = d->dim, FF = d->ffn_dim;
    int rc;
    norm_modulate(be, d, s->xn, x, L, ts, modb, 6 * D, 3, 4);
    for (int64_t r0 = 0; r0 < L; r0 += s->ffn_rows) {
        int64_t rows = L - r0 < s->ffn_rows ? L - r0 : s->ffn_rows;
        if ((rc = be->linear(be, s->fh, s->xn + r0 * D, rows, D, b->ffn0_w.t, b->ffn0_b.f, err)))
            return rc;
        be->gelu_tanh(be, s->fa, s->fh, rows * FF);
        if ((rc = be->linear(be, s->Y + r0 * D, s->fa, rows, FF, b->ffn2_w.t, b->ffn2_b.f, err)))
            return rc;
    }
    gated_runs(be, d, x, s->Y, L, ts, modb, 5);
    return REEL_OK;
}

int reel_wan_head(struct reel_backend *be, const struct reel_wan_dims *d,
                  const struct reel_wan_embed_w *w, const float *x, int64_t L,
                  const struct reel_wan_tsteps *ts, const float *e, struct reel_wan_scratch *s,
                  float *out, struct reel_err *err)
{
    const int64_t D = d->dim, U = ts->U;
    float *hmod = malloc(sizeof *hmod * (size_t)(U * 2 * D > 0 ? U * 2 * D : 1));
    if (!hmod)
        return reel_errf(err, REEL_E_OTHER, "out of memory for the head");
    /* (shift, scale) = head.modulation + e, per distinct timestep */
    for (int64_t u = 0; u < U; u++)
        for (int k = 0; k < 2; k++)
            be->add(be, hmod + (u * 2 + k) * D, w->head_mod.f + k * D, e + u * D, D);
    norm_modulate(be, d, s->xn, x, L, ts, hmod, 2 * D, 0, 1);
    int rc = be->linear(be, out, s->xn, L, D, w->head_w.t, w->head_b.f, err);
    free(hmod);
    return rc;
}

int reel_wan_patch_grid(const int patch[3], int64_t frames, int64_t height, int64_t width,
                        const char *who, int64_t grid[3], struct reel_err *err)
{
    const int pt = patch[0], ph = patch[1], pw = patch[2];
    if (frames <= 0 || height <= 0 || width <= 0 || frames % pt || height % ph || width % pw)
        return reel_errf(err, REEL_E_SPEC,
                         "%s: latent %lldx%lldx%lld is not a positive multiple of the patch "
                         "%dx%dx%d",
                         who, (long long)frames, (long long)height, (long long)width, pt, ph, pw);
    grid[0] = frames / pt;
    grid[1] = height / ph;
    grid[2] = width / pw;
    if (grid[0] > REEL_WAN_ROPE_MAX_POS || grid[1] > REEL_WAN_ROPE_MAX_POS ||
        grid[2] > REEL_WAN_ROPE_MAX_POS)
        return reel_errf(err, REEL_E_SPEC,
                         "%s: patch grid %lldx%lldx%lld exceeds the %d rotary positions", who,
                         (long long)grid[0], (long long)grid[1], (long long)grid[2],
                         REEL_WAN_ROPE_MAX_POS);
    return REEL_OK;
}
