/* MMAudio 1D mel VAE: see mmaudio_vae.h. One walker visits the modules in
 * state_dict order; it fills the layer geometry, emits (name, shape) for the
 * tensor table and binds the weights, so the table and the loader cannot
 * drift apart. Weights are used in place unless they must be rewritten at
 * load (weight-norm removal of raw checkpoints, conv_out's gain folded in
 * as the reference's `weight * gain`). */
#include "audio/mmaudio_vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 9
#define PIXEL_EPS 1e-4f
#define MP_SILU_DIV 0.596f

struct mpconv {
    const struct reel_tensor *w; /* the tensor used (file's or own) */
    struct reel_tensor own_t;
    float *own;
    int cin, cout, k;
};

struct resblock {
    struct mpconv c1, c2, nin;
    int has_nin, cin, cout;
};

struct attn {
    struct mpconv qkv, proj;
    int c;
};

struct level {
    struct resblock b[MAXB];
    struct attn a[MAXB];
    int nb, has_attn, has_rs;
    struct mpconv rs1, rs2; /* encoder: downsample conv1/conv2; decoder: upsample conv */
};

struct coder {
    struct mpconv conv_in, conv_out;
    struct level lv[REEL_MMVAE_MAX_LEVELS];
    struct resblock mid1, mid2;
    struct attn mida;
    float gain;
};

struct reel_mmaudio_vae {
    struct reel_mmaudio_vae_config cfg;
    struct reel_backend *be;
    struct coder enc, dec;
    float *mean, *std, *inv_std, *neg_mean_over_std;
    int ndown;
    reel_mmaudio_vae_probe_fn probe;
    void *probe_ctx;
};

/* ---------------------------------------------------------------- config */

void reel_mmaudio_vae_config_16k(struct reel_mmaudio_vae_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->data_dim = 80;
    cfg->embed_dim = 20;
    cfg->hidden_dim = 384;
    cfg->n_mult = 3;
    cfg->ch_mult[0] = 1;
    cfg->ch_mult[1] = 2;
    cfg->ch_mult[2] = 4;
    cfg->num_res_blocks = 2;
    cfg->n_attn = 1;
    cfg->attn_layers[0] = 3;
    cfg->n_down = 1;
    cfg->down_layers[0] = 0;
    cfg->kernel_size = 3;
    cfg->clip_act = 256.0;
    cfg->encoder = 1;
}

static int get_int_list(const struct reel_json *j, const char *key, int *out, int *n, int lo,
                        struct reel_err *err)
{
    const struct reel_json *v = reel_json_get(j, key);
    if (!v)
        return 0;
    if (v->type != REEL_JSON_ARRAY || v->count > REEL_MMVAE_MAX_LEVELS)
        return reel_errf(err, REEL_E_MODEL, "MMAudio VAE config: '%s' must be a list of at most %d",
                         key, REEL_MMVAE_MAX_LEVELS);
    for (size_t i = 0; i < v->count; i++) {
        const struct reel_json *e = v->items[i];
        if (e->type != REEL_JSON_NUMBER || !e->is_integer || e->integer < lo || e->integer > 1 << 20)
            return reel_errf(err, REEL_E_MODEL,
                             "MMAudio VAE config: '%s' must hold integers >= %d", key, lo);
        out[i] = (int)e->integer;
    }
    *n = (int)v->count;
    return 0;
}

static int coder_keys(const struct reel_json *j, struct reel_mmaudio_vae_config *cfg,
                      struct reel_err *err)
{
    int rc;
    if ((rc = get_int_list(j, "ch_mult", cfg->ch_mult, &cfg->n_mult, 1, err)) ||
        (rc = reel_json_cfg_int(j, "MMAudio VAE", "num_res_blocks", cfg->num_res_blocks, 1, &cfg->num_res_blocks, err)) ||
        (rc = get_int_list(j, "attn_layers", cfg->attn_layers, &cfg->n_attn, 0, err)) ||
        (rc = get_int_list(j, "down_layers", cfg->down_layers, &cfg->n_down, 0, err)) ||
        (rc = reel_json_cfg_int(j, "MMAudio VAE", "kernel_size", cfg->kernel_size, 1, &cfg->kernel_size, err)))
        return rc;
    const struct reel_json *c = reel_json_get(j, "clip_act");
    if (c) {
        if (c->type != REEL_JSON_NUMBER || !(c->number > 0))
            return reel_errf(err, REEL_E_MODEL, "MMAudio VAE config: 'clip_act' must be > 0");
        cfg->clip_act = c->number;
    }
    return 0;
}

int reel_mmaudio_vae_config_from_json(const struct reel_json *j,
                                      struct reel_mmaudio_vae_config *cfg, struct reel_err *err)
{
    reel_mmaudio_vae_config_16k(cfg);
    if (!j)
        return 0;
    if (j->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "MMAudio VAE config: not a JSON object");
    int rc;
    if ((rc = reel_json_cfg_int(j, "MMAudio VAE", "data_dim", cfg->data_dim, 1, &cfg->data_dim, err)) ||
        (rc = reel_json_cfg_int(j, "MMAudio VAE", "embed_dim", cfg->embed_dim, 1, &cfg->embed_dim, err)) ||
        (rc = reel_json_cfg_int(j, "MMAudio VAE", "hidden_dim", cfg->hidden_dim, 1, &cfg->hidden_dim, err)) ||
        (rc = coder_keys(j, cfg, err)))
        return rc;
    const struct reel_json *enc = reel_json_get(j, "encoder");
    if (enc && enc->type == REEL_JSON_OBJECT && (rc = coder_keys(enc, cfg, err)))
        return rc;
    const struct reel_json *inc = reel_json_get(j, "encoder_included");
    if (inc) {
        if (inc->type != REEL_JSON_BOOL)
            return reel_errf(err, REEL_E_MODEL,
                             "MMAudio VAE config: 'encoder_included' must be a boolean");
        cfg->encoder = inc->boolean;
    }
    const struct reel_json *heads = reel_json_get(j, "attn_num_heads");
    if (heads && !(heads->type == REEL_JSON_NUMBER && heads->number == 1))
        return reel_errf(err, REEL_E_MODEL, "MMAudio VAE config: only attn_num_heads 1 exists");
    if (cfg->n_mult < 1)
        return reel_errf(err, REEL_E_MODEL, "MMAudio VAE config: 'ch_mult' is empty");
    if (cfg->num_res_blocks + 1 > MAXB)
        return reel_errf(err, REEL_E_MODEL, "MMAudio VAE config: num_res_blocks above %d",
                         MAXB - 1);
    if (cfg->kernel_size % 2 == 0)
        return reel_errf(err, REEL_E_MODEL, "MMAudio VAE config: kernel_size must be odd");
    return 0;
}

static int in_list(const int *l, int n, int v)
{
    for (int i = 0; i < n; i++)
        if (l[i] == v)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------- walker */

struct walk {
    reel_tensor_emit_fn emit;
    void *ectx;
    const struct reel_weights *w;
    int removed;
    struct reel_err *err;
    int rc;
};

void reel_mpconv_remove_weight_norm(const float *w, int64_t cout, int64_t fan_in, float *out)
{
    /* edm2 normalize(): norm in float32, eps + norm * sqrt(numel(norm) / numel(w)),
     * then the extra 1 / sqrt(fan_in) of remove_weight_norm */
    float a = (float)sqrt(1.0 / (double)fan_in), s = (float)sqrt((double)fan_in);
    for (int64_t o = 0; o < cout; o++) {
        const float *src = w + o * fan_in;
        double acc = 0;
        for (int64_t i = 0; i < fan_in; i++)
            acc += (double)src[i] * src[i];
        float d = 1e-4f + a * (float)sqrt(acc);
        for (int64_t i = 0; i < fan_in; i++)
            out[o * fan_in + i] = src[i] / d / s;
    }
}

static void visit_conv(struct walk *wk, struct mpconv *cv, const char *name, int cout, int cin,
                       int k, const float *gain)
{
    cv->cin = cin;
    cv->cout = cout;
    cv->k = k;
    int64_t shape[3] = {cout, cin, k};
    if (wk->emit)
        wk->emit(wk->ectx, name, 3, shape);
    if (!wk->w || wk->rc)
        return;
    const struct reel_tensor *t;
    if ((wk->rc = reel_weights_get(wk->w, name, 3, shape, &t, wk->err)))
        return;
    cv->w = t;
    if (wk->removed && !gain)
        return;
    int64_t n = (int64_t)cout * cin * k;
    float *buf = malloc(sizeof(float) * (size_t)n);
    if (!buf) {
        wk->rc = reel_errf(wk->err, REEL_E_OTHER, "%s: out of memory", name);
        return;
    }
    reel_tensor_to_f32(t, 0, n, buf);
    if (!wk->removed)
        reel_mpconv_remove_weight_norm(buf, cout, (int64_t)cin * k, buf);
    if (gain)
        for (int64_t i = 0; i < n; i++)
            buf[i] = buf[i] * *gain;
    cv->own = buf;
    cv->own_t = *t;
    cv->own_t.dtype = REEL_F32;
    cv->own_t.data = buf;
    cv->w = &cv->own_t;
}

static void visit_res(struct walk *wk, struct resblock *b, const char *pre, int cin, int cout,
                      int k)
{
    char name[160];
    b->cin = cin;
    b->cout = cout;
    snprintf(name, sizeof name, "%s.conv1.weight", pre);
    visit_conv(wk, &b->c1, name, cout, cin, k, NULL);
    snprintf(name, sizeof name, "%s.conv2.weight", pre);
    visit_conv(wk, &b->c2, name, cout, cout, k, NULL);
    b->has_nin = cin != cout;
    if (b->has_nin) {
        snprintf(name, sizeof name, "%s.nin_shortcut.weight", pre);
        visit_conv(wk, &b->nin, name, cout, cin, 1, NULL);
    }
}

static void visit_attn(struct walk *wk, struct attn *a, const char *pre, int c)
{
    char name[160];
    a->c = c;
    snprintf(name, sizeof name, "%s.qkv.weight", pre);
    visit_conv(wk, &a->qkv, name, 3 * c, c, 1, NULL);
    snprintf(name, sizeof name, "%s.proj_out.weight", pre);
    visit_conv(wk, &a->proj, name, c, c, 1, NULL);
}

static void visit_gain(struct walk *wk, struct coder *cd, const char *name)
{
    cd->gain = 1.0f;
    int64_t none[1] = {0};
    if (wk->emit)
        wk->emit(wk->ectx, name, 0, none);
    if (!wk->w || wk->rc)
        return;
    const struct reel_tensor *t;
    if ((wk->rc = reel_weights_get(wk->w, name, -1, NULL, &t, wk->err)))
        return;
    if (reel_tensor_numel(t) != 1) {
        wk->rc = reel_errf(wk->err, REEL_E_MODEL, "tensor '%s' must hold one value", name);
        return;
    }
    float g;
    reel_tensor_to_f32(t, 0, 1, &g);
    cd->gain = g + 1.0f; /* the reference's learnable_gain + 1 */
}

static void walk_encoder(struct walk *wk, const struct reel_mmaudio_vae_config *cfg,
                         struct coder *e)
{
    char pre[160], name[160];
    int dim = cfg->hidden_dim, k = cfg->kernel_size;
    visit_gain(wk, e, "encoder.learnable_gain");
    visit_conv(wk, &e->conv_in, "encoder.conv_in.weight", dim, cfg->data_dim, k, NULL);
    int block_in = dim;
    for (int i = 0; i < cfg->n_mult; i++) {
        struct level *lv = &e->lv[i];
        int bin = dim * (i ? cfg->ch_mult[i - 1] : 1), bout = dim * cfg->ch_mult[i];
        lv->nb = cfg->num_res_blocks;
        lv->has_attn = in_list(cfg->attn_layers, cfg->n_attn, i);
        for (int j = 0; j < lv->nb; j++) {
            snprintf(pre, sizeof pre, "encoder.down.%d.block.%d", i, j);
            visit_res(wk, &lv->b[j], pre, bin, bout, k);
            bin = bout;
        }
        if (lv->has_attn)
            for (int j = 0; j < lv->nb; j++) {
                snprintf(pre, sizeof pre, "encoder.down.%d.attn.%d", i, j);
                visit_attn(wk, &lv->a[j], pre, bout);
            }
        lv->has_rs = in_list(cfg->down_layers, cfg->n_down, i);
        if (lv->has_rs) {
            snprintf(name, sizeof name, "encoder.down.%d.downsample.conv1.weight", i);
            visit_conv(wk, &lv->rs1, name, bout, bout, 1, NULL);
            snprintf(name, sizeof name, "encoder.down.%d.downsample.conv2.weight", i);
            visit_conv(wk, &lv->rs2, name, bout, bout, 1, NULL);
        }
        block_in = bout;
    }
    visit_res(wk, &e->mid1, "encoder.mid.block_1", block_in, block_in, k);
    visit_attn(wk, &e->mida, "encoder.mid.attn_1", block_in);
    visit_res(wk, &e->mid2, "encoder.mid.block_2", block_in, block_in, k);
    visit_conv(wk, &e->conv_out, "encoder.conv_out.weight", 2 * cfg->embed_dim, block_in, k,
               &e->gain);
}

/* The decoder's blocks and upsampler use the modules' default kernel 3;
 * only conv_in / conv_out get kernel_size (as Decoder1D passes it). */
static void walk_decoder(struct walk *wk, const struct reel_mmaudio_vae_config *cfg,
                         struct coder *d)
{
    char pre[160], name[160];
    int dim = cfg->hidden_dim, k = cfg->kernel_size, n = cfg->n_mult;
    int block_in = dim * cfg->ch_mult[n - 1];
    visit_gain(wk, d, "decoder.learnable_gain");
    visit_conv(wk, &d->conv_in, "decoder.conv_in.weight", block_in, cfg->embed_dim, k, NULL);
    visit_res(wk, &d->mid1, "decoder.mid.block_1", block_in, block_in, 3);
    visit_attn(wk, &d->mida, "decoder.mid.attn_1", block_in);
    visit_res(wk, &d->mid2, "decoder.mid.block_2", block_in, block_in, 3);
    /* channel flow runs from the deepest level up, but state_dict lists up.0 first */
    int level_in[REEL_MMVAE_MAX_LEVELS];
    for (int i = n - 1; i >= 0; i--) {
        level_in[i] = block_in;
        block_in = dim * cfg->ch_mult[i];
    }
    for (int i = 0; i < n; i++) {
        struct level *lv = &d->lv[i];
        int bin = level_in[i], bout = dim * cfg->ch_mult[i];
        lv->nb = cfg->num_res_blocks + 1;
        lv->has_attn = in_list(cfg->attn_layers, cfg->n_attn, i);
        for (int j = 0; j < lv->nb; j++) {
            snprintf(pre, sizeof pre, "decoder.up.%d.block.%d", i, j);
            visit_res(wk, &lv->b[j], pre, bin, bout, 3);
            bin = bout;
        }
        if (lv->has_attn)
            for (int j = 0; j < lv->nb; j++) {
                snprintf(pre, sizeof pre, "decoder.up.%d.attn.%d", i, j);
                visit_attn(wk, &lv->a[j], pre, bout);
            }
        lv->has_rs = i > 0 && in_list(cfg->down_layers, cfg->n_down, i - 1);
        if (lv->has_rs) {
            snprintf(name, sizeof name, "decoder.up.%d.upsample.conv.weight", i);
            visit_conv(wk, &lv->rs1, name, bout, bout, 3, NULL);
        }
    }
    visit_conv(wk, &d->conv_out, "decoder.conv_out.weight", cfg->data_dim,
               dim * cfg->ch_mult[0], k, &d->gain);
}

static void walk_vae(struct walk *wk, const struct reel_mmaudio_vae_config *cfg,
                     struct reel_mmaudio_vae *v)
{
    int64_t stat[3] = {1, cfg->data_dim, 1};
    if (wk->emit) {
        wk->emit(wk->ectx, "data_mean", 3, stat);
        wk->emit(wk->ectx, "data_std", 3, stat);
    }
    if (wk->w && !wk->rc &&
        ((wk->rc = reel_weights_get_f32(wk->w, "data_mean", 3, stat, &v->mean, wk->err)) ||
         (wk->rc = reel_weights_get_f32(wk->w, "data_std", 3, stat, &v->std, wk->err))))
        return;
    if (cfg->encoder)
        walk_encoder(wk, cfg, &v->enc);
    walk_decoder(wk, cfg, &v->dec);
}

void reel_mmaudio_vae_tensor_table(const struct reel_mmaudio_vae_config *cfg,
                                   reel_tensor_emit_fn emit, void *ctx)
{
    struct reel_mmaudio_vae *v = calloc(1, sizeof *v);
    if (!v)
        return;
    struct walk wk = {emit, ctx, NULL, 1, NULL, 0};
    walk_vae(&wk, cfg, v);
    free(v);
}

static void free_conv(struct mpconv *c)
{
    free(c->own);
}

static void free_res(struct resblock *b)
{
    free_conv(&b->c1);
    free_conv(&b->c2);
    free_conv(&b->nin);
}

static void free_coder(struct coder *c)
{
    free_conv(&c->conv_in);
    free_conv(&c->conv_out);
    free_res(&c->mid1);
    free_res(&c->mid2);
    free_conv(&c->mida.qkv);
    free_conv(&c->mida.proj);
    for (int i = 0; i < REEL_MMVAE_MAX_LEVELS; i++) {
        for (int j = 0; j < MAXB; j++) {
            free_res(&c->lv[i].b[j]);
            free_conv(&c->lv[i].a[j].qkv);
            free_conv(&c->lv[i].a[j].proj);
        }
        free_conv(&c->lv[i].rs1);
        free_conv(&c->lv[i].rs2);
    }
}

void reel_mmaudio_vae_destroy(struct reel_mmaudio_vae *vae)
{
    if (!vae)
        return;
    free_coder(&vae->enc);
    free_coder(&vae->dec);
    free(vae->mean);
    free(vae->std);
    free(vae->inv_std);
    free(vae->neg_mean_over_std);
    free(vae);
}

int reel_mmaudio_vae_create(const struct reel_mmaudio_vae_config *cfg,
                            const struct reel_weights *w, int weight_norm_removed,
                            struct reel_backend *be, struct reel_mmaudio_vae **out,
                            struct reel_err *err)
{
    *out = NULL;
    if (cfg->n_mult < 1 || cfg->n_mult > REEL_MMVAE_MAX_LEVELS ||
        cfg->num_res_blocks + 1 > MAXB || cfg->data_dim <= 0 || cfg->embed_dim <= 0 ||
        cfg->hidden_dim <= 0 || cfg->kernel_size <= 0 || cfg->kernel_size % 2 == 0)
        return reel_errf(err, REEL_E_MODEL, "MMAudio VAE: invalid configuration");
    struct reel_mmaudio_vae *v = calloc(1, sizeof *v);
    if (!v)
        return reel_errf(err, REEL_E_OTHER, "MMAudio VAE: out of memory");
    v->cfg = *cfg;
    v->be = be;
    struct walk wk = {NULL, NULL, w, weight_norm_removed, err, 0};
    walk_vae(&wk, cfg, v);
    if (wk.rc) {
        reel_mmaudio_vae_destroy(v);
        return wk.rc;
    }
    int D = cfg->data_dim;
    v->inv_std = malloc(sizeof(float) * (size_t)D);
    v->neg_mean_over_std = malloc(sizeof(float) * (size_t)D);
    if (!v->inv_std || !v->neg_mean_over_std) {
        reel_mmaudio_vae_destroy(v);
        return reel_errf(err, REEL_E_OTHER, "MMAudio VAE: out of memory");
    }
    for (int i = 0; i < D; i++) {
        v->inv_std[i] = 1.0f / v->std[i];
        v->neg_mean_over_std[i] = -v->mean[i] / v->std[i];
    }
    for (int i = 0; i < cfg->n_mult; i++)
        v->ndown += in_list(cfg->down_layers, cfg->n_down, i);
    *out = v;
    return 0;
}

void reel_mmaudio_vae_set_probe(struct reel_mmaudio_vae *vae, reel_mmaudio_vae_probe_fn fn,
                                void *ctx)
{
    vae->probe = fn;
    vae->probe_ctx = ctx;
}

int64_t reel_mmaudio_vae_latent_len(const struct reel_mmaudio_vae *vae, int64_t T)
{
    for (int i = 0; i < vae->ndown; i++)
        T /= 2;
    return T;
}

int64_t reel_mmaudio_vae_mel_len(const struct reel_mmaudio_vae *vae, int64_t L)
{
    return L << vae->ndown;
}

/* --------------------------------------------------------------- forward */

struct fw {
    struct reel_mmaudio_vae *v;
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
        f->rc = reel_errf(f->err, REEL_E_OTHER, "MMAudio VAE: out of memory");
    return p;
}

static void probe(struct fw *f, const char *name, const float *x, int64_t n)
{
    if (f->v->probe && !f->rc)
        f->v->probe(f->v->probe_ctx, name, x, n);
}

static void conv(struct fw *f, const struct mpconv *c, const float *x, int64_t L, float *y)
{
    if (f->rc)
        return;
    struct reel_conv3d_geom g = {0};
    g.cin = c->cin;
    g.t = 1;
    g.h = 1;
    g.w = L;
    g.cout = c->cout;
    g.kt = g.kh = 1;
    g.kw = c->k;
    g.st = g.sh = g.sw = 1;
    g.pw0 = g.pw1 = c->k / 2;
    f->rc = f->be->conv3d(f->be, y, x, &g, c->w, NULL, f->err);
}

static void mp_silu(struct fw *f, float *y, const float *x, int64_t n)
{
    f->be->silu(f->be, y, x, n);
    f->be->axpby(f->be, y, 1.0f / MP_SILU_DIV, y, 0.0f, y, n);
}

/* mp_sum(a, b, 0.3) = lerp(a, b, 0.3) / sqrt(0.7^2 + 0.3^2), into y */
static void mp_sum(struct fw *f, float *y, const float *a, const float *b, int64_t n)
{
    const float s = (float)sqrt(0.58);
    f->be->axpby(f->be, y, 0.7f / s, a, 0.3f / s, b, n);
}

/* ResnetBlock1D: x [cin, L] -> y [cout, L] */
static void res_fwd(struct fw *f, const struct resblock *b, const float *x, int64_t L, float *y)
{
    struct reel_backend *be = f->be;
    float *xn = fw_alloc(f, b->cin * L), *t = fw_alloc(f, b->cin * L);
    float *h = fw_alloc(f, b->cout * L), *h2 = fw_alloc(f, b->cout * L);
    float *sc = b->has_nin ? fw_alloc(f, b->cout * L) : NULL;
    if (!f->rc) {
        be->pixel_norm(be, xn, x, b->cin, L, PIXEL_EPS);
        mp_silu(f, t, xn, b->cin * L);
        conv(f, &b->c1, t, L, h);
        if (!f->rc)
            mp_silu(f, h, h, b->cout * L);
        conv(f, &b->c2, h, L, h2);
        if (b->has_nin)
            conv(f, &b->nin, xn, L, sc);
        if (!f->rc)
            mp_sum(f, y, b->has_nin ? sc : xn, h2, b->cout * L);
    }
    free(xn);
    free(t);
    free(h);
    free(h2);
    free(sc);
}

static void transpose(const float *x, int64_t rows, int64_t cols, float *y)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            y[j * rows + i] = x[i * cols + j];
}

/* AttnBlock1D (1 head): x [C, L] -> y [C, L] (y may not alias x) */
static void attn_fwd(struct fw *f, const struct attn *a, const float *x, int64_t L, float *y)
{
    struct reel_backend *be = f->be;
    int64_t C = a->c;
    float *qkv = fw_alloc(f, 3 * C * L), *cl = fw_alloc(f, 3 * C * L);
    float *lc = fw_alloc(f, 3 * C * L), *o = fw_alloc(f, C * L), *h = fw_alloc(f, C * L);
    conv(f, &a->qkv, x, L, qkv);
    if (!f->rc) {
        /* channel 3c + j is component j of feature c: gather each component */
        for (int j = 0; j < 3; j++)
            for (int64_t c = 0; c < C; c++)
                memcpy(cl + (j * C + c) * L, qkv + (3 * c + j) * L, sizeof(float) * (size_t)L);
        for (int j = 0; j < 3; j++) {
            be->pixel_norm(be, cl + j * C * L, cl + j * C * L, C, L, PIXEL_EPS);
            transpose(cl + j * C * L, C, L, lc + j * C * L);
        }
        f->rc = be->attention(be, o, lc, lc + C * L, lc + 2 * C * L, L, L, L, 1, (int)C, C, C,
                              C, (float)(1.0 / sqrt((double)C)), NULL, f->err);
    }
    if (!f->rc) {
        transpose(o, L, C, qkv);
        conv(f, &a->proj, qkv, L, h);
    }
    if (!f->rc)
        mp_sum(f, y, x, h, C * L);
    free(qkv);
    free(cl);
    free(lc);
    free(o);
    free(h);
}

static void clamp_act(struct fw *f, float *x, int64_t n)
{
    float c = (float)f->v->cfg.clip_act;
    if (!f->rc)
        f->be->clamp(f->be, x, x, n, -c, c);
}

/* Runs a res block (+ attention) on *x [cin, L], replacing it with the result. */
static void block_step(struct fw *f, const struct level *lv, int j, float **x, int64_t L,
                       const char *name)
{
    const struct resblock *b = &lv->b[j];
    float *y = fw_alloc(f, b->cout * L);
    res_fwd(f, b, *x, L, y);
    if (lv->has_attn && !f->rc) {
        float *z = fw_alloc(f, b->cout * L);
        attn_fwd(f, &lv->a[j], y, L, z);
        free(y);
        y = z;
    }
    probe(f, name, y, b->cout * L);
    clamp_act(f, y, b->cout * L);
    free(*x);
    *x = y;
}

/* The middle: block_1, attn_1, block_2, clamp; *x [C, L] replaced. */
static void mid_step(struct fw *f, const struct coder *cd, float **x, int64_t L,
                     const char *pre)
{
    char name[64];
    int64_t C = cd->mid1.cout;
    float *a = fw_alloc(f, C * L), *b = fw_alloc(f, C * L);
    res_fwd(f, &cd->mid1, *x, L, a);
    snprintf(name, sizeof name, "%s.mid.block_1", pre);
    probe(f, name, a, C * L);
    if (!f->rc)
        attn_fwd(f, &cd->mida, a, L, b);
    snprintf(name, sizeof name, "%s.mid.attn_1", pre);
    probe(f, name, b, C * L);
    res_fwd(f, &cd->mid2, b, L, a);
    snprintf(name, sizeof name, "%s.mid.block_2", pre);
    probe(f, name, a, C * L);
    clamp_act(f, a, C * L);
    free(b);
    free(*x);
    *x = a;
}

int reel_mmaudio_vae_encode(struct reel_mmaudio_vae *vae, const float *mel, int64_t T,
                            float *moments, struct reel_err *err)
{
    const struct reel_mmaudio_vae_config *cfg = &vae->cfg;
    if (!cfg->encoder)
        return reel_errf(err, REEL_E_MODEL, "MMAudio VAE: this model was loaded without encoder");
    if (T < (1 << vae->ndown))
        return reel_errf(err, REEL_E_MEDIA, "MMAudio VAE: %lld mel frames are too few to encode",
                         (long long)T);
    struct fw f = {vae, vae->be, err, 0};
    struct coder *e = &vae->enc;
    char name[64];
    int64_t L = T;
    float *xn = fw_alloc(&f, (int64_t)cfg->data_dim * L);
    if (f.rc)
        return f.rc;
    f.be->channel_affine(f.be, xn, mel, cfg->data_dim, L, vae->inv_std, vae->neg_mean_over_std);
    probe(&f, "enc.normalized_input", xn, (int64_t)cfg->data_dim * L);
    float *x = fw_alloc(&f, (int64_t)e->conv_in.cout * L);
    conv(&f, &e->conv_in, xn, L, x);
    free(xn);
    probe(&f, "enc.conv_in", x, (int64_t)e->conv_in.cout * L);
    int64_t C = e->conv_in.cout;
    for (int i = 0; i < cfg->n_mult && !f.rc; i++) {
        const struct level *lv = &e->lv[i];
        for (int j = 0; j < lv->nb && !f.rc; j++) {
            snprintf(name, sizeof name, "enc.down.%d.block.%d", i, j);
            block_step(&f, lv, j, &x, L, name);
            C = lv->b[j].cout;
        }
        if (lv->has_rs && !f.rc) {
            float *a = fw_alloc(&f, C * L), *b = fw_alloc(&f, C * (L / 2));
            conv(&f, &lv->rs1, x, L, a);
            if (!f.rc)
                f.be->avg_pool1d(f.be, b, a, C, L, 2);
            L /= 2;
            conv(&f, &lv->rs2, b, L, a);
            snprintf(name, sizeof name, "enc.down.%d.downsample", i);
            probe(&f, name, a, C * L);
            free(b);
            free(x);
            x = a;
        }
    }
    if (!f.rc)
        mid_step(&f, e, &x, L, "enc");
    if (!f.rc) {
        mp_silu(&f, x, x, C * L);
        conv(&f, &e->conv_out, x, L, moments);
    }
    free(x);
    return f.rc;
}

int reel_mmaudio_vae_decode(struct reel_mmaudio_vae *vae, const float *z, int64_t L, float *mel,
                            struct reel_err *err)
{
    const struct reel_mmaudio_vae_config *cfg = &vae->cfg;
    if (L <= 0)
        return reel_errf(err, REEL_E_MEDIA, "MMAudio VAE: empty latent");
    struct fw f = {vae, vae->be, err, 0};
    struct coder *d = &vae->dec;
    char name[64];
    int64_t C = d->conv_in.cout;
    float *x = fw_alloc(&f, C * L);
    conv(&f, &d->conv_in, z, L, x);
    probe(&f, "dec.conv_in", x, C * L);
    if (!f.rc)
        mid_step(&f, d, &x, L, "dec");
    for (int i = cfg->n_mult - 1; i >= 0 && !f.rc; i--) {
        const struct level *lv = &d->lv[i];
        for (int j = 0; j < lv->nb && !f.rc; j++) {
            snprintf(name, sizeof name, "dec.up.%d.block.%d", i, j);
            block_step(&f, lv, j, &x, L, name);
            C = lv->b[j].cout;
        }
        if (lv->has_rs && !f.rc) {
            float *a = fw_alloc(&f, C * 2 * L), *b = fw_alloc(&f, C * 2 * L);
            if (!f.rc)
                f.be->upsample_nearest1d(f.be, a, x, C, L, 2);
            L *= 2;
            conv(&f, &lv->rs1, a, L, b);
            snprintf(name, sizeof name, "dec.up.%d.upsample", i);
            probe(&f, name, b, C * L);
            free(a);
            free(x);
            x = b;
        }
    }
    if (!f.rc) {
        mp_silu(&f, x, x, C * L);
        conv(&f, &d->conv_out, x, L, mel);
        probe(&f, "dec.raw", mel, (int64_t)cfg->data_dim * L);
    }
    if (!f.rc)
        f.be->channel_affine(f.be, mel, mel, cfg->data_dim, L, vae->std, vae->mean);
    free(x);
    return f.rc;
}
