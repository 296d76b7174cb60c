/* BigVGAN vocoder (MMAudio 16 kHz): see bigvgan.h. One walker visits the
 * modules in state_dict order for both the tensor table (in any of the
 * three weight-norm namings) and the loader. */
#include "audio/bigvgan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRE_POST_K 7 /* conv_pre / conv_post: Conv1d(..., 7, 1, padding=3) in the reference */

struct wconv {
    const struct reel_tensor *w;
    struct reel_tensor own_t;
    float *own, *bias;
    int cin, cout, k;
};

struct act {
    float *alpha, *beta; /* linear scale; beta == alpha for Snake */
    float *up_f, *down_f;
};

struct amp {
    struct wconv c1[REEL_BIGVGAN_MAX], c2[REEL_BIGVGAN_MAX];
    struct act acts[2 * REEL_BIGVGAN_MAX];
    int dil[REEL_BIGVGAN_MAX];
    int k, ch;
};

struct reel_bigvgan {
    struct reel_bigvgan_config cfg;
    struct reel_backend *be;
    struct wconv conv_pre, ups[REEL_BIGVGAN_MAX], conv_post;
    struct amp *rb; /* n_ups * n_kernels */
    struct act post;
    reel_bigvgan_probe_fn probe;
    void *probe_ctx;
};

/* ---------------------------------------------------------------- config */

void reel_bigvgan_config_16k(struct reel_bigvgan_config *cfg)
{
    static const int rates[6] = {4, 4, 2, 2, 2, 2}, ks[6] = {8, 8, 4, 4, 4, 4};
    memset(cfg, 0, sizeof *cfg);
    cfg->num_mels = 80;
    cfg->upsample_initial_channel = 1536;
    cfg->n_ups = 6;
    memcpy(cfg->upsample_rates, rates, sizeof rates);
    memcpy(cfg->upsample_kernel_sizes, ks, sizeof ks);
    cfg->n_kernels = 3;
    cfg->resblock_kernel_sizes[0] = 3;
    cfg->resblock_kernel_sizes[1] = 7;
    cfg->resblock_kernel_sizes[2] = 11;
    cfg->n_dilations = 3;
    for (int i = 0; i < 3; i++) {
        cfg->resblock_dilation_sizes[i][0] = 1;
        cfg->resblock_dilation_sizes[i][1] = 3;
        cfg->resblock_dilation_sizes[i][2] = 5;
    }
    cfg->snake_beta = 1;
    cfg->snake_logscale = 1;
    cfg->aa_ratio = 2;
    cfg->aa_taps = 12;
}

static int int_list(const struct reel_json *v, const char *key, int *out, int *n,
                    struct reel_err *err)
{
    if (!v)
        return 0;
    if (v->type != REEL_JSON_ARRAY || v->count < 1 || v->count > REEL_BIGVGAN_MAX)
        return reel_errf(err, REEL_E_MODEL, "BigVGAN config: '%s' must be a list of 1 to %d",
                         key, REEL_BIGVGAN_MAX);
    for (size_t i = 0; i < v->count; i++) {
        const struct reel_json *e = v->items[i];
        if (e->type != REEL_JSON_NUMBER || !e->is_integer || e->integer < 1 || e->integer > 4096)
            return reel_errf(err, REEL_E_MODEL, "BigVGAN config: '%s' must hold positive integers",
                             key);
        out[i] = (int)e->integer;
    }
    *n = (int)v->count;
    return 0;
}

int reel_bigvgan_config_from_json(const struct reel_json *j, struct reel_bigvgan_config *cfg,
                                  struct reel_err *err)
{
    reel_bigvgan_config_16k(cfg);
    if (!j)
        return 0;
    if (j->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "BigVGAN config: not a JSON object");
    int rc, n1 = cfg->n_ups, n2 = cfg->n_ups;
    if ((rc = reel_json_cfg_int(j, "BigVGAN", "num_mels", cfg->num_mels, 1, &cfg->num_mels, err)) ||
        (rc = reel_json_cfg_int(j, "BigVGAN", "upsample_initial_channel", cfg->upsample_initial_channel, 1, &cfg->upsample_initial_channel, err)) ||
        (rc = int_list(reel_json_get(j, "upsample_rates"), "upsample_rates", cfg->upsample_rates,
                       &n1, err)) ||
        (rc = int_list(reel_json_get(j, "upsample_kernel_sizes"), "upsample_kernel_sizes",
                       cfg->upsample_kernel_sizes, &n2, err)) ||
        (rc = int_list(reel_json_get(j, "resblock_kernel_sizes"), "resblock_kernel_sizes",
                       cfg->resblock_kernel_sizes, &cfg->n_kernels, err)))
        return rc;
    if (n1 != n2)
        return reel_errf(err, REEL_E_MODEL,
                         "BigVGAN config: upsample_rates and upsample_kernel_sizes differ in length");
    cfg->n_ups = n1;
    for (int i = 0; i < n1; i++)
        if ((cfg->upsample_kernel_sizes[i] - cfg->upsample_rates[i]) % 2 ||
            cfg->upsample_kernel_sizes[i] < cfg->upsample_rates[i])
            return reel_errf(err, REEL_E_MODEL,
                             "BigVGAN config: upsample kernel %d with rate %d: k - u must be "
                             "even and >= 0",
                             cfg->upsample_kernel_sizes[i], cfg->upsample_rates[i]);
    const struct reel_json *d = reel_json_get(j, "resblock_dilation_sizes");
    if (d) {
        if (d->type != REEL_JSON_ARRAY || (int)d->count != cfg->n_kernels)
            return reel_errf(err, REEL_E_MODEL,
                             "BigVGAN config: resblock_dilation_sizes needs one list per kernel");
        for (size_t i = 0; i < d->count; i++) {
            int n = 0;
            if ((rc = int_list(d->items[i], "resblock_dilation_sizes",
                               cfg->resblock_dilation_sizes[i], &n, err)))
                return rc;
            if (i && n != cfg->n_dilations)
                return reel_errf(err, REEL_E_MODEL,
                                 "BigVGAN config: every dilation list must have the same length");
            cfg->n_dilations = n;
        }
    }
    const char *rb = reel_json_str(j, "resblock", "1");
    if (strcmp(rb, "1"))
        return reel_errf(err, REEL_E_MODEL, "BigVGAN config: resblock '%s' is not supported ('1')",
                         rb);
    const char *act = reel_json_str(j, "activation", "snakebeta");
    if (!strcmp(act, "snakebeta"))
        cfg->snake_beta = 1;
    else if (!strcmp(act, "snake"))
        cfg->snake_beta = 0;
    else
        return reel_errf(err, REEL_E_MODEL,
                         "BigVGAN config: activation '%s' is not supported (snake, snakebeta)", act);
    const struct reel_json *ls = reel_json_get(j, "snake_logscale");
    if (ls) {
        if (ls->type != REEL_JSON_BOOL)
            return reel_errf(err, REEL_E_MODEL, "BigVGAN config: 'snake_logscale' must be a boolean");
        cfg->snake_logscale = ls->boolean;
    }
    const struct reel_json *aa = reel_json_get(j, "activation1d");
    if (aa && aa->type == REEL_JSON_OBJECT) {
        int up = 2, dn = 2, uk = 12, dk = 12;
        if ((rc = reel_json_cfg_int(aa, "BigVGAN", "up_ratio", up, 1, &up, err)) || (rc = reel_json_cfg_int(aa, "BigVGAN", "down_ratio", dn, 1, &dn, err)) ||
            (rc = reel_json_cfg_int(aa, "BigVGAN", "up_kernel_size", uk, 1, &uk, err)) ||
            (rc = reel_json_cfg_int(aa, "BigVGAN", "down_kernel_size", dk, 1, &dk, err)))
            return rc;
        if (up != dn || uk != dk || uk % up)
            return reel_errf(err, REEL_E_MODEL,
                             "BigVGAN config: activation1d needs equal up/down ratios and kernels");
        cfg->aa_ratio = up;
        cfg->aa_taps = uk;
    }
    if ((int64_t)cfg->upsample_initial_channel >> cfg->n_ups < 1)
        return reel_errf(err, REEL_E_MODEL, "BigVGAN config: too few channels for %d upsamplers",
                         cfg->n_ups);
    return 0;
}

/* ---------------------------------------------------------------- walker */

struct walk {
    enum reel_bigvgan_naming naming;
    reel_tensor_emit_fn emit;
    void *ectx;
    const struct reel_weights *w;
    struct reel_err *err;
    int rc;
};

void reel_weight_norm_fold(const float *g, const float *v, int64_t d0, int64_t inner, float *out)
{
    for (int64_t o = 0; o < d0; o++) {
        const float *src = v + o * inner;
        double acc = 0;
        for (int64_t i = 0; i < inner; i++)
            acc += (double)src[i] * src[i];
        float q = g[o] / (float)sqrt(acc); /* torch: v * (g / ||v||) */
        for (int64_t i = 0; i < inner; i++)
            out[o * inner + i] = src[i] * q;
    }
}

static void emit(struct walk *wk, const char *name, int ndim, const int64_t *shape)
{
    if (wk->emit)
        wk->emit(wk->ectx, name, ndim, shape);
}

static void get_f32(struct walk *wk, const char *name, int ndim, const int64_t *shape,
                    float **out)
{
    if (wk->w && !wk->rc)
        wk->rc = reel_weights_get_f32(wk->w, name, ndim, shape, out, wk->err);
}

/* Binds `pre`.weight from g/v (parametrize, then legacy naming) or plain. */
static void bind_weight(struct walk *wk, struct wconv *c, const char *pre, const int64_t *shape)
{
    char gn[192], vn[192];
    const struct reel_tensor *g = NULL, *v = NULL, *t = NULL;
    snprintf(gn, sizeof gn, "%s.parametrizations.weight.original0", pre);
    snprintf(vn, sizeof vn, "%s.parametrizations.weight.original1", pre);
    if (!reel_weights_find(wk->w, gn)) {
        snprintf(gn, sizeof gn, "%s.weight_g", pre);
        snprintf(vn, sizeof vn, "%s.weight_v", pre);
    }
    if (reel_weights_find(wk->w, gn)) {
        int64_t gs[3] = {shape[0], 1, 1};
        if ((wk->rc = reel_weights_get(wk->w, gn, 3, gs, &g, wk->err)) ||
            (wk->rc = reel_weights_get(wk->w, vn, 3, shape, &v, wk->err)))
            return;
        int64_t n = shape[0] * shape[1] * shape[2];
        float *gf = malloc(sizeof(float) * (size_t)shape[0]);
        c->own = malloc(sizeof(float) * (size_t)n);
        if (!gf || !c->own) {
            free(gf);
            wk->rc = reel_errf(wk->err, REEL_E_OTHER, "%s: out of memory", pre);
            return;
        }
        reel_tensor_to_f32(g, 0, shape[0], gf);
        reel_tensor_to_f32(v, 0, n, c->own);
        reel_weight_norm_fold(gf, c->own, shape[0], n / shape[0], c->own);
        free(gf);
        c->own_t = *v;
        c->own_t.dtype = REEL_F32;
        c->own_t.data = c->own;
        c->w = &c->own_t;
        return;
    }
    snprintf(gn, sizeof gn, "%s.weight", pre);
    if ((wk->rc = reel_weights_get(wk->w, gn, 3, shape, &t, wk->err)))
        return;
    c->w = t;
}

/* A weight-normed conv: bias, then the weight in the walk's naming. */
static void visit_conv(struct walk *wk, struct wconv *c, const char *pre, int64_t d0, int64_t d1,
                       int k, int cin, int cout)
{
    char name[192];
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    int64_t bshape[1] = {cout}, shape[3] = {d0, d1, k}, gshape[3] = {d0, 1, 1};
    snprintf(name, sizeof name, "%s.bias", pre);
    emit(wk, name, 1, bshape);
    get_f32(wk, name, 1, bshape, &c->bias);
    switch (wk->naming) {
    case REEL_BIGVGAN_PLAIN:
        snprintf(name, sizeof name, "%s.weight", pre);
        emit(wk, name, 3, shape);
        break;
    case REEL_BIGVGAN_PARAMETRIZE:
        snprintf(name, sizeof name, "%s.parametrizations.weight.original0", pre);
        emit(wk, name, 3, gshape);
        snprintf(name, sizeof name, "%s.parametrizations.weight.original1", pre);
        emit(wk, name, 3, shape);
        break;
    case REEL_BIGVGAN_LEGACY:
        snprintf(name, sizeof name, "%s.weight_g", pre);
        emit(wk, name, 3, gshape);
        snprintf(name, sizeof name, "%s.weight_v", pre);
        emit(wk, name, 3, shape);
        break;
    }
    if (wk->w && !wk->rc)
        bind_weight(wk, c, pre, shape);
}

static void visit_act(struct walk *wk, const struct reel_bigvgan_config *cfg, struct act *a,
                      const char *pre, int ch)
{
    char name[192];
    int64_t cs[1] = {ch}, fs[3] = {1, 1, cfg->aa_taps};
    snprintf(name, sizeof name, "%s.act.alpha", pre);
    emit(wk, name, 1, cs);
    get_f32(wk, name, 1, cs, &a->alpha);
    if (cfg->snake_beta) {
        snprintf(name, sizeof name, "%s.act.beta", pre);
        emit(wk, name, 1, cs);
        get_f32(wk, name, 1, cs, &a->beta);
    }
    snprintf(name, sizeof name, "%s.upsample.filter", pre);
    emit(wk, name, 3, fs);
    get_f32(wk, name, 3, fs, &a->up_f);
    snprintf(name, sizeof name, "%s.downsample.lowpass.filter", pre);
    emit(wk, name, 3, fs);
    get_f32(wk, name, 3, fs, &a->down_f);
    if (wk->w && !wk->rc) {
        if (cfg->snake_logscale)
            for (int i = 0; i < ch; i++) {
                a->alpha[i] = expf(a->alpha[i]);
                if (a->beta)
                    a->beta[i] = expf(a->beta[i]);
            }
        if (!a->beta) {
            a->beta = malloc(sizeof(float) * (size_t)ch);
            if (!a->beta) {
                wk->rc = reel_errf(wk->err, REEL_E_OTHER, "%s: out of memory", pre);
                return;
            }
            memcpy(a->beta, a->alpha, sizeof(float) * (size_t)ch);
        }
    }
}

static void walk_all(struct walk *wk, const struct reel_bigvgan_config *cfg,
                     struct reel_bigvgan *v)
{
    char pre[160];
    int ch0 = cfg->upsample_initial_channel;
    visit_conv(wk, &v->conv_pre, "conv_pre", ch0, cfg->num_mels, PRE_POST_K, cfg->num_mels, ch0);
    for (int i = 0; i < cfg->n_ups; i++) {
        int cin = ch0 >> i, cout = ch0 >> (i + 1);
        snprintf(pre, sizeof pre, "ups.%d.0", i);
        /* ConvTranspose1d weight is [in, out, k]; weight norm's dim 0 is `in` */
        visit_conv(wk, &v->ups[i], pre, cin, cout, cfg->upsample_kernel_sizes[i], cin, cout);
    }
    int ch = ch0;
    for (int i = 0; i < cfg->n_ups; i++) {
        ch = ch0 >> (i + 1);
        for (int j = 0; j < cfg->n_kernels; j++) {
            int r = i * cfg->n_kernels + j, k = cfg->resblock_kernel_sizes[j];
            struct amp *b = &v->rb[r];
            b->k = k;
            b->ch = ch;
            for (int d = 0; d < cfg->n_dilations; d++) {
                b->dil[d] = cfg->resblock_dilation_sizes[j][d];
                snprintf(pre, sizeof pre, "resblocks.%d.convs1.%d", r, d);
                visit_conv(wk, &b->c1[d], pre, ch, ch, k, ch, ch);
            }
            for (int d = 0; d < cfg->n_dilations; d++) {
                snprintf(pre, sizeof pre, "resblocks.%d.convs2.%d", r, d);
                visit_conv(wk, &b->c2[d], pre, ch, ch, k, ch, ch);
            }
            for (int m = 0; m < 2 * cfg->n_dilations; m++) {
                snprintf(pre, sizeof pre, "resblocks.%d.activations.%d", r, m);
                visit_act(wk, cfg, &b->acts[m], pre, ch);
            }
        }
    }
    visit_act(wk, cfg, &v->post, "activation_post", ch);
    visit_conv(wk, &v->conv_post, "conv_post", 1, ch, PRE_POST_K, ch, 1);
}

static struct reel_bigvgan *alloc_model(const struct reel_bigvgan_config *cfg)
{
    struct reel_bigvgan *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->rb = calloc((size_t)(cfg->n_ups * cfg->n_kernels), sizeof *v->rb);
    if (!v->rb) {
        free(v);
        return NULL;
    }
    v->cfg = *cfg;
    return v;
}

void reel_bigvgan_tensor_table(const struct reel_bigvgan_config *cfg,
                               enum reel_bigvgan_naming naming, reel_tensor_emit_fn fn, void *ctx)
{
    struct reel_bigvgan *v = alloc_model(cfg);
    if (!v)
        return;
    struct walk wk = {naming, fn, ctx, NULL, NULL, 0};
    walk_all(&wk, cfg, v);
    reel_bigvgan_destroy(v);
}

static void free_conv(struct wconv *c)
{
    free(c->own);
    free(c->bias);
}

static void free_act(struct act *a)
{
    free(a->alpha);
    free(a->beta);
    free(a->up_f);
    free(a->down_f);
}

void reel_bigvgan_destroy(struct reel_bigvgan *v)
{
    if (!v)
        return;
    free_conv(&v->conv_pre);
    free_conv(&v->conv_post);
    for (int i = 0; i < REEL_BIGVGAN_MAX; i++)
        free_conv(&v->ups[i]);
    for (int r = 0; v->rb && r < v->cfg.n_ups * v->cfg.n_kernels; r++) {
        for (int d = 0; d < REEL_BIGVGAN_MAX; d++) {
            free_conv(&v->rb[r].c1[d]);
            free_conv(&v->rb[r].c2[d]);
        }
        for (int m = 0; m < 2 * REEL_BIGVGAN_MAX; m++)
            free_act(&v->rb[r].acts[m]);
    }
    free(v->rb);
    free_act(&v->post);
    free(v);
}

int reel_bigvgan_create(const struct reel_bigvgan_config *cfg, const struct reel_weights *w,
                        struct reel_backend *be, struct reel_bigvgan **out, struct reel_err *err)
{
    *out = NULL;
    if (cfg->n_ups < 1 || cfg->n_ups > REEL_BIGVGAN_MAX || cfg->n_kernels < 1 ||
        cfg->n_kernels > REEL_BIGVGAN_MAX || cfg->n_dilations < 1 ||
        cfg->n_dilations > REEL_BIGVGAN_MAX || cfg->aa_ratio < 1 || cfg->aa_taps < 1 ||
        (cfg->upsample_initial_channel >> cfg->n_ups) < 1)
        return reel_errf(err, REEL_E_MODEL, "BigVGAN: invalid configuration");
    struct reel_bigvgan *v = alloc_model(cfg);
    if (!v)
        return reel_errf(err, REEL_E_OTHER, "BigVGAN: out of memory");
    v->be = be;
    struct walk wk = {REEL_BIGVGAN_PLAIN, NULL, NULL, w, err, 0};
    walk_all(&wk, cfg, v);
    if (wk.rc) {
        reel_bigvgan_destroy(v);
        return wk.rc;
    }
    *out = v;
    return 0;
}

int64_t reel_bigvgan_hop(const struct reel_bigvgan *v)
{
    int64_t h = 1;
    for (int i = 0; i < v->cfg.n_ups; i++)
        h *= v->cfg.upsample_rates[i];
    return h;
}

void reel_bigvgan_set_probe(struct reel_bigvgan *v, reel_bigvgan_probe_fn fn, void *ctx)
{
    v->probe = fn;
    v->probe_ctx = ctx;
}

/* --------------------------------------------------------------- forward */

struct fw {
    struct reel_bigvgan *v;
    struct reel_backend *be;
    struct reel_err *err;
    int rc;
};

static float *fw_alloc(struct fw *f, int64_t n)
{
    if (f->rc)
        return NULL;
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!p)
        f->rc = reel_errf(f->err, REEL_E_OTHER, "BigVGAN: out of memory");
    return p;
}

static void probe(struct fw *f, const char *name, const float *x, int64_t n)
{
    if (f->v->probe && !f->rc)
        f->v->probe(f->v->probe_ctx, name, x, n);
}

static void conv(struct fw *f, const struct wconv *c, const float *x, int64_t L, int dil,
                 float *y)
{
    if (f->rc)
        return;
    int pad = (c->k * dil - dil) / 2;
    struct reel_conv1d_geom g = {c->cin, L, c->cout, c->k, 1, dil, pad, pad};
    f->rc = f->be->conv1d(f->be, y, x, &g, c->w, c->bias, f->err);
}

/* Activation1d: 2x upsample, Snake(Beta), 2x downsample; x [C, L] -> y [C, L]. */
static void act_fwd(struct fw *f, const struct act *a, int64_t C, const float *x, int64_t L,
                    float *y)
{
    const struct reel_bigvgan_config *cfg = &f->v->cfg;
    float *up = fw_alloc(f, C * L * cfg->aa_ratio);
    if (f->rc)
        return;
    f->be->aa_upsample(f->be, up, x, C, L, cfg->aa_ratio, a->up_f, cfg->aa_taps);
    f->be->snake_beta(f->be, up, up, C, L * cfg->aa_ratio, a->alpha, a->beta);
    f->be->aa_downsample(f->be, y, up, C, L * cfg->aa_ratio, cfg->aa_ratio, a->down_f,
                         cfg->aa_taps);
    free(up);
}

/* AMPBlock1 on x [C, L] -> out [C, L] */
static void amp_fwd(struct fw *f, const struct amp *b, const float *x, int64_t L, float *out)
{
    const struct reel_bigvgan_config *cfg = &f->v->cfg;
    int64_t n = b->ch * L;
    float *t1 = fw_alloc(f, n), *t2 = fw_alloc(f, n);
    if (!f->rc) {
        memcpy(out, x, sizeof(float) * (size_t)n);
        for (int d = 0; d < cfg->n_dilations && !f->rc; d++) {
            act_fwd(f, &b->acts[2 * d], b->ch, out, L, t1);
            conv(f, &b->c1[d], t1, L, b->dil[d], t2);
            if (f->rc)
                break;
            act_fwd(f, &b->acts[2 * d + 1], b->ch, t2, L, t1);
            conv(f, &b->c2[d], t1, L, 1, t2);
            if (!f->rc)
                f->be->add(f->be, out, t2, out, n);
        }
    }
    free(t1);
    free(t2);
}

int reel_bigvgan_forward(struct reel_bigvgan *v, const float *mel, int64_t T, float *wave,
                         struct reel_err *err)
{
    const struct reel_bigvgan_config *cfg = &v->cfg;
    if (T <= 0)
        return reel_errf(err, REEL_E_MEDIA, "BigVGAN: empty mel");
    struct fw f = {v, v->be, err, 0};
    char name[32];
    int64_t L = T, C = cfg->upsample_initial_channel;
    float *x = fw_alloc(&f, C * L);
    conv(&f, &v->conv_pre, mel, L, 1, x);
    probe(&f, "conv_pre", x, C * L);
    for (int i = 0; i < cfg->n_ups && !f.rc; i++) {
        const struct wconv *u = &v->ups[i];
        int rate = cfg->upsample_rates[i], pad = (u->k - rate) / 2;
        struct reel_conv1d_geom g = {u->cin, L, u->cout, u->k, rate, 1, pad, pad};
        int64_t lo = (L - 1) * rate + u->k - 2 * pad;
        float *y = fw_alloc(&f, u->cout * lo);
        if (!f.rc)
            f.rc = f.be->conv_transpose1d(f.be, y, x, &g, u->w, u->bias, err);
        free(x);
        x = y;
        L = lo;
        C = u->cout;
        snprintf(name, sizeof name, "ups.%d", i);
        probe(&f, name, x, C * L);
        float *xs = fw_alloc(&f, C * L), *t = fw_alloc(&f, C * L);
        for (int j = 0; j < cfg->n_kernels && !f.rc; j++) {
            amp_fwd(&f, &v->rb[i * cfg->n_kernels + j], x, L, j ? t : xs);
            if (j && !f.rc)
                f.be->add(f.be, xs, xs, t, C * L);
        }
        if (!f.rc)
            f.be->axpby(f.be, xs, 1.0f / (float)cfg->n_kernels, xs, 0.0f, xs, C * L);
        free(t);
        free(x);
        x = xs;
        snprintf(name, sizeof name, "stage.%d", i);
        probe(&f, name, x, C * L);
    }
    float *a = fw_alloc(&f, C * L);
    if (!f.rc)
        act_fwd(&f, &v->post, C, x, L, a);
    probe(&f, "activation_post", a, C * L);
    conv(&f, &v->conv_post, a, L, 1, wave);
    probe(&f, "conv_post", wave, L);
    if (!f.rc)
        f.be->tanh_act(f.be, wave, wave, L);
    free(a);
    free(x);
    return f.rc;
}

/* Past the last mel frame the convolutions see zeros, which for a log mel is
 * a loud frame: the default model's vocoder answers a silent constant mel
 * with a -43 dBFS tick in its last 5 ms, which an onset detector (and a
 * listener in a quiet room) hears as a sound where nothing happens. With the
 * last frame held for a few more frames the end of the clip is interior. */
int reel_bigvgan_forward_clip(struct reel_bigvgan *v, const float *mel, int64_t T, float *wave,
                              struct reel_err *err)
{
    if (T <= 0)
        return reel_errf(err, REEL_E_MEDIA, "BigVGAN: empty mel");
    const int64_t D = v->cfg.num_mels, Tp = T + REEL_BIGVGAN_TAIL_FRAMES,
                  hop = reel_bigvgan_hop(v);
    float *held = malloc(sizeof(float) * (size_t)(Tp * D));
    float *full = malloc(sizeof(float) * (size_t)(Tp * hop));
    int rc = REEL_OK;
    if (!held || !full) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory for the vocoder");
    } else {
        for (int64_t d = 0; d < D; d++)
            for (int64_t t = 0; t < Tp; t++)
                held[d * Tp + t] = mel[d * T + (t < T ? t : T - 1)];
        rc = reel_bigvgan_forward(v, held, Tp, full, err);
        if (!rc)
            memcpy(wave, full, sizeof(float) * (size_t)(T * hop));
    }
    free(held);
    free(full);
    return rc;
}
