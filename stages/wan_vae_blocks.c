/* The Wan VAE pieces both versions share, and the chunk drivers.
 *
 * A network is a flat layer program built by wan_vae21.c / wan_vae22.c while
 * they walk the checkpoint's tensors in state_dict order (so the names the
 * loader binds are the names the manifest test checks). It runs on one chunk
 * (1 or 4 video frames, 1 latent frame) at a time; every causal conv keeps
 * the reference's feature cache (at most CACHE_T = 2 input frames), so memory
 * depends on the frame size, never on the clip length.
 *
 * The cache follows vae.py / vae2_2.py exactly, quirks included:
 *  - a causal conv gets cat(cache, x) and zero-pads only the 2*pad - n
 *    frames the cache does not supply; the new cache is x's last 2 frames,
 *    or (x has 1 frame) the old cache's last frame + x;
 *  - upsample3d's time_conv skips the first chunk (slot marked "Rep"), and
 *    on the next chunk runs with zero padding, not with a cache; a 1-frame
 *    cache made after "Rep" is [zeros, x];
 *  - downsample3d's time_conv also skips the first chunk, then runs stride 2
 *    over [last frame of the previous chunk, x] without padding.
 *
 * Runs of frame-local layers (everything but the 3d resamples and the
 * temporal AvgDown/DupUp shortcuts) go one frame at a time: a causal conv
 * fed frame by frame sees the same windows, and the peak activation memory
 * drops to one frame's worth. What stays is the cache itself (2 frames per
 * causal conv), exactly what the reference holds.
 *
 * Activations are channel-first [c, t, h, w] f32. Compute goes through the
 * backend op table; this file only moves data (gathers, transposes,
 * patchify). channel_rmsnorm and silu are called in place (y == x). */
#include "stages/wan_vae_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_T 2
#define MAX_GROUP_DEPTH 4

/* ------------------------------------------------------------------ config */

static const struct reel_json *cfg_array(const struct reel_json *j, const char *key, int *present,
                                         struct reel_err *err, int *rc)
{
    const struct reel_json *v = reel_json_get(j, key);
    *present = v != NULL;
    if (!v)
        return NULL;
    if (v->type != REEL_JSON_ARRAY || v->count > REEL_WAN_VAE_MAX_MULT) {
        *rc = reel_errf(err, REEL_E_MODEL, "WanVAE_ config: '%s' must be an array of at most %d",
                        key, REEL_WAN_VAE_MAX_MULT);
        return NULL;
    }
    return v;
}

int reel_wan_vae_config_from_json(const struct reel_json *j, int version,
                                  struct reel_wan_vae_config *cfg, struct reel_err *err)
{
    if (version != 21 && version != 22)
        return reel_errf(err, REEL_E_MODEL, "WanVAE_: unknown version %d (21 or 22)", version);
    if (j && j->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "WanVAE_ config: not a JSON object");
    memset(cfg, 0, sizeof *cfg);
    /* the constructors' defaults */
    cfg->version = version;
    cfg->dim = version == 21 ? 128 : 160;
    cfg->dec_dim = 256;
    cfg->z_dim = version == 21 ? 4 : 16;
    static const int mult[4] = {1, 2, 4, 4};
    memcpy(cfg->dim_mult, mult, sizeof mult);
    cfg->n_mult = 4;
    cfg->num_res_blocks = 2;
    cfg->temporal_downsample[0] = 1;
    cfg->temporal_downsample[1] = 1;
    cfg->temporal_downsample[2] = 0;
    cfg->n_temporal = 3;
    if (!j)
        goto done;

    /* The reference rejects unknown kwargs; so do we, to catch a 2.2 config
     * handed to the 2.1 model and similar mix-ups. */
    static const char *known[] = {"dim", "z_dim", "dim_mult", "num_res_blocks", "attn_scales",
                                  "temperal_downsample", "dropout", "dec_dim"};
    for (size_t i = 0; i < j->count; i++) {
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            ok |= !strcmp(j->keys[i], known[k]) && (k != 7 || version == 22);
        if (!ok)
            return reel_errf(err, REEL_E_MODEL, "WanVAE_ config (Wan%s): unknown key '%s'",
                             version == 21 ? "2.1" : "2.2", j->keys[i]);
    }
    int rc;
    if ((rc = reel_json_cfg_int(j, "WanVAE_", "dim", cfg->dim, 1, &cfg->dim, err)) ||
        (rc = reel_json_cfg_int(j, "WanVAE_", "z_dim", cfg->z_dim, 1, &cfg->z_dim, err)) ||
        (rc = reel_json_cfg_int(j, "WanVAE_", "num_res_blocks", cfg->num_res_blocks, 1,
                                &cfg->num_res_blocks, err)))
        return rc;
    if (version == 22 &&
        (rc = reel_json_cfg_int(j, "WanVAE_", "dec_dim", cfg->dec_dim, 1, &cfg->dec_dim, err)))
        return rc;
    const struct reel_json *d = reel_json_get(j, "dropout");
    if (d && d->type != REEL_JSON_NUMBER)
        return reel_errf(err, REEL_E_MODEL, "WanVAE_ config: 'dropout' must be a number");

    int present;
    rc = 0;
    const struct reel_json *a = cfg_array(j, "dim_mult", &present, err, &rc);
    if (rc)
        return rc;
    if (present) {
        if (a->count < 1)
            return reel_errf(err, REEL_E_MODEL, "WanVAE_ config: 'dim_mult' is empty");
        for (size_t i = 0; i < a->count; i++) {
            const struct reel_json *e = a->items[i];
            if (e->type != REEL_JSON_NUMBER || !e->is_integer || !e->integer_ok ||
                e->integer < 1 || e->integer > 64)
                return reel_errf(err, REEL_E_MODEL,
                                 "WanVAE_ config: 'dim_mult' must hold integers in [1, 64]");
            cfg->dim_mult[i] = (int)e->integer;
        }
        cfg->n_mult = (int)a->count;
    }
    a = cfg_array(j, "attn_scales", &present, err, &rc);
    if (rc)
        return rc;
    if (present) {
        for (size_t i = 0; i < a->count; i++) {
            if (a->items[i]->type != REEL_JSON_NUMBER)
                return reel_errf(err, REEL_E_MODEL,
                                 "WanVAE_ config: 'attn_scales' must hold numbers");
            cfg->attn_scales[i] = a->items[i]->number;
        }
        cfg->n_attn_scales = (int)a->count;
    }
    a = cfg_array(j, "temperal_downsample", &present, err, &rc);
    if (rc)
        return rc;
    if (present) {
        for (size_t i = 0; i < a->count; i++) {
            if (a->items[i]->type != REEL_JSON_BOOL)
                return reel_errf(err, REEL_E_MODEL,
                                 "WanVAE_ config: 'temperal_downsample' must hold booleans");
            cfg->temporal_downsample[i] = a->items[i]->boolean;
        }
        cfg->n_temporal = (int)a->count;
    }
done:
    if (version == 21)
        cfg->dec_dim = cfg->dim;
    return REEL_OK;
}

/* ---------------------------------------------------------------- builders */

static void walk_tensor(struct vae_walk *wk, const char *name, int ndim, const int64_t *shape,
                        const struct reel_tensor **t, float **f32)
{
    if (wk->emit)
        wk->emit(wk->ectx, name, ndim, shape);
    if (!wk->w || wk->rc)
        return;
    if (t)
        wk->rc = reel_weights_get(wk->w, name, ndim, shape, t, wk->err);
    else
        wk->rc = reel_weights_get_f32(wk->w, name, ndim, shape, f32, wk->err);
}

void vae_build_conv(struct vae_walk *wk, const char *prefix, struct vae_conv *cv, int cout,
                    int cin, int kt, int kh, int kw, int conv2d)
{
    memset(cv, 0, sizeof *cv);
    cv->cin = cin;
    cv->cout = cout;
    cv->kt = kt;
    cv->kh = kh;
    cv->kw = kw;
    cv->st = cv->ss = 1;
    char name[256];
    int64_t shape[5] = {cout, cin, kt, kh, kw};
    if (conv2d) {
        shape[2] = kh;
        shape[3] = kw;
    }
    snprintf(name, sizeof name, "%s.weight", prefix);
    walk_tensor(wk, name, conv2d ? 4 : 5, shape, &cv->w, NULL);
    snprintf(name, sizeof name, "%s.bias", prefix);
    walk_tensor(wk, name, 1, shape, NULL, &cv->b);
}

/* RMS_norm gamma: [c, 1, 1, 1] (images=False) or [c, 1, 1] (images=True). */
static void build_gamma(struct vae_walk *wk, const char *name, float **g, int c, int ndim)
{
    int64_t shape[4] = {c, 1, 1, 1};
    walk_tensor(wk, name, ndim, shape, NULL, g);
}

static void layer_free(struct vae_layer *l)
{
    free(l->gamma1);
    free(l->gamma2);
    free(l->conv1.b);
    free(l->conv2.b);
    free(l->shortcut.b);
}

static void net_add(struct vae_net *net, struct vae_layer *l)
{
    if (!net) {
        layer_free(l);
        return;
    }
    if (net->n == net->cap) {
        int cap = net->cap ? 2 * net->cap : 32;
        struct vae_layer *nl = realloc(net->l, sizeof *nl * (size_t)cap);
        if (!nl) {
            net->oom = 1;
            layer_free(l);
            return;
        }
        net->l = nl;
        net->cap = cap;
    }
    net->l[net->n++] = *l;
}

static int take_cache(struct vae_net *net, int n)
{
    if (!net)
        return 0;
    int first = net->ncache;
    net->ncache += n;
    return first;
}

/* A causal 3x3x3 conv with padding 1 (front pad 2 frames, 1 pixel around). */
static void causal333(struct vae_walk *wk, const char *prefix, struct vae_conv *cv, int cin,
                      int cout)
{
    vae_build_conv(wk, prefix, cv, cout, cin, 3, 3, 3, 0);
    cv->pt = 1;
    cv->ph0 = cv->ph1 = cv->pw0 = cv->pw1 = 1;
}

void vae_build_conv_in(struct vae_net *net, struct vae_walk *wk, const char *prefix, int cin,
                       int cout)
{
    struct vae_layer l = {0};
    l.op = VAE_CONV_IN;
    l.cin = cin;
    l.cout = cout;
    causal333(wk, prefix, &l.conv1, cin, cout);
    l.cache = take_cache(net, 1);
    net_add(net, &l);
}

void vae_build_res(struct vae_net *net, struct vae_walk *wk, const char *prefix, int cin,
                   int cout)
{
    struct vae_layer l = {0};
    char name[256];
    l.op = VAE_RES;
    l.cin = cin;
    l.cout = cout;
    snprintf(name, sizeof name, "%s.residual.0.gamma", prefix);
    build_gamma(wk, name, &l.gamma1, cin, 4);
    snprintf(name, sizeof name, "%s.residual.2", prefix);
    causal333(wk, name, &l.conv1, cin, cout);
    snprintf(name, sizeof name, "%s.residual.3.gamma", prefix);
    build_gamma(wk, name, &l.gamma2, cout, 4);
    snprintf(name, sizeof name, "%s.residual.6", prefix);
    causal333(wk, name, &l.conv2, cout, cout);
    if (cin != cout) {
        snprintf(name, sizeof name, "%s.shortcut", prefix);
        vae_build_conv(wk, name, &l.shortcut, cout, cin, 1, 1, 1, 0);
        l.has_shortcut = 1;
    }
    l.cache = take_cache(net, 2);
    net_add(net, &l);
}

void vae_build_attn(struct vae_net *net, struct vae_walk *wk, const char *prefix, int c)
{
    struct vae_layer l = {0};
    char name[256];
    l.op = VAE_ATTN;
    l.cin = l.cout = c;
    snprintf(name, sizeof name, "%s.norm.gamma", prefix);
    build_gamma(wk, name, &l.gamma1, c, 3);
    snprintf(name, sizeof name, "%s.to_qkv", prefix);
    vae_build_conv(wk, name, &l.conv1, 3 * c, c, 1, 1, 1, 1);
    snprintf(name, sizeof name, "%s.proj", prefix);
    vae_build_conv(wk, name, &l.conv2, c, c, 1, 1, 1, 1);
    net_add(net, &l);
}

void vae_build_middle(struct vae_net *net, struct vae_walk *wk, const char *coder, int c)
{
    char p[64];
    snprintf(p, sizeof p, "%s.middle.0", coder);
    vae_build_res(net, wk, p, c, c);
    snprintf(p, sizeof p, "%s.middle.1", coder);
    vae_build_attn(net, wk, p, c);
    snprintf(p, sizeof p, "%s.middle.2", coder);
    vae_build_res(net, wk, p, c, c);
}

void vae_build_resample(struct vae_net *net, struct vae_walk *wk, const char *prefix,
                        enum vae_op mode, int c, int cout)
{
    struct vae_layer l = {0};
    char name[256];
    l.op = mode;
    l.cin = c;
    l.cout = cout;
    snprintf(name, sizeof name, "%s.resample.1", prefix);
    vae_build_conv(wk, name, &l.conv1, cout, c, 1, 3, 3, 1);
    if (mode == VAE_UP2D || mode == VAE_UP3D) {
        /* nearest x2, then Conv2d(3, padding=1) */
        l.conv1.ph0 = l.conv1.ph1 = l.conv1.pw0 = l.conv1.pw1 = 1;
    } else {
        /* ZeroPad2d((0, 1, 0, 1)), then Conv2d(3, stride=2) */
        l.conv1.ph1 = l.conv1.pw1 = 1;
        l.conv1.ss = 2;
    }
    snprintf(name, sizeof name, "%s.time_conv", prefix);
    if (mode == VAE_UP3D) {
        vae_build_conv(wk, name, &l.conv2, 2 * c, c, 3, 1, 1, 0);
        l.conv2.pt = 1;
        l.cache = take_cache(net, 1);
    } else if (mode == VAE_DOWN3D) {
        vae_build_conv(wk, name, &l.conv2, c, c, 3, 1, 1, 0);
        l.conv2.st = 2;
        l.cache = take_cache(net, 1);
    }
    net_add(net, &l);
}

void vae_build_head(struct vae_net *net, struct vae_walk *wk, const char *prefix, int cin,
                    int cout)
{
    struct vae_layer l = {0};
    char name[256];
    l.op = VAE_HEAD;
    l.cin = cin;
    l.cout = cout;
    snprintf(name, sizeof name, "%s.0.gamma", prefix);
    build_gamma(wk, name, &l.gamma1, cin, 4);
    snprintf(name, sizeof name, "%s.2", prefix);
    causal333(wk, name, &l.conv1, cin, cout);
    l.cache = take_cache(net, 1);
    net_add(net, &l);
}

void vae_build_marker(struct vae_net *net, enum vae_op op, int cin, int cout, int ft, int fs)
{
    struct vae_layer l = {0};
    l.op = op;
    l.cin = cin;
    l.cout = cout;
    l.ft = ft;
    l.fs = fs;
    net_add(net, &l);
}

/* ------------------------------------------------------- table and create */

static void build(const struct reel_wan_vae_config *cfg, struct vae_walk *wk,
                  struct reel_wan_vae *m)
{
    if (cfg->version == 21)
        vae21_build(cfg, wk, m);
    else if (cfg->version == 22)
        vae22_build(cfg, wk, m);
    else if (!wk->rc)
        wk->rc = reel_errf(wk->err, REEL_E_MODEL, "WanVAE_: unknown version %d", cfg->version);
}

void reel_wan_vae_tensor_table(const struct reel_wan_vae_config *cfg, reel_tensor_emit_fn emit,
                               void *ctx)
{
    struct reel_err err = {0};
    struct vae_walk wk = {emit, ctx, NULL, &err, 0};
    build(cfg, &wk, NULL);
}

static void net_free(struct vae_net *net)
{
    for (int i = 0; i < net->n; i++)
        layer_free(&net->l[i]);
    free(net->l);
    memset(net, 0, sizeof *net);
}

static void caches_clear(struct vae_cache *c, int n)
{
    for (int i = 0; c && i < n; i++) {
        free(c[i].d);
        memset(&c[i], 0, sizeof c[i]);
    }
}

void reel_wan_vae_destroy(struct reel_wan_vae *vae)
{
    if (!vae)
        return;
    caches_clear(vae->enc_cache, vae->enc.ncache);
    caches_clear(vae->dec_cache, vae->dec.ncache);
    free(vae->enc_cache);
    free(vae->dec_cache);
    net_free(&vae->enc);
    net_free(&vae->dec);
    free(vae->conv1.b);
    free(vae->conv2.b);
    free(vae);
}

int reel_wan_vae_create(const struct reel_wan_vae_config *cfg, const struct reel_weights *w,
                        struct reel_backend *be, struct reel_wan_vae **out, struct reel_err *err)
{
    *out = NULL;
    struct reel_wan_vae *m = calloc(1, sizeof *m);
    if (!m)
        return reel_errf(err, REEL_E_OTHER, "WanVAE_: out of memory");
    m->cfg = *cfg;
    m->be = be;
    struct vae_walk wk = {NULL, NULL, w, err, 0};
    build(cfg, &wk, m);
    int rc = wk.rc;
    if (!rc && (m->enc.oom || m->dec.oom))
        rc = reel_errf(err, REEL_E_OTHER, "WanVAE_: out of memory");
    if (!rc && (m->t_down < 1 || REEL_WAN_VAE_CHUNK_FRAMES % m->t_down || m->t_up < 1 ||
                REEL_WAN_VAE_CHUNK_FRAMES % m->t_up))
        rc = reel_errf(err, REEL_E_MODEL,
                       "WanVAE_: temporal factors %d (encoder) / %d (decoder) do not divide the "
                       "%d-frame chunks",
                       m->t_down, m->t_up, REEL_WAN_VAE_CHUNK_FRAMES);
    if (!rc) {
        m->enc_cache = calloc((size_t)m->enc.ncache + 1, sizeof *m->enc_cache);
        m->dec_cache = calloc((size_t)m->dec.ncache + 1, sizeof *m->dec_cache);
        if (!m->enc_cache || !m->dec_cache)
            rc = reel_errf(err, REEL_E_OTHER, "WanVAE_: out of memory");
    }
    if (rc) {
        reel_wan_vae_destroy(m);
        return rc;
    }
    *out = m;
    return REEL_OK;
}

void reel_wan_vae_set_probe(struct reel_wan_vae *vae, reel_wan_vae_probe_fn fn, void *ctx)
{
    vae->probe = fn;
    vae->probe_ctx = ctx;
}

int reel_wan_vae_spatial_factor(const struct reel_wan_vae *vae)
{
    return vae->s_factor;
}

int reel_wan_vae_temporal_factor(const struct reel_wan_vae *vae)
{
    return vae->t_up;
}

int64_t reel_wan_vae_latent_frames(const struct reel_wan_vae *vae, int64_t video_frames)
{
    if (video_frames < 1)
        return 0;
    int64_t chunks = 1 + (video_frames - 1) / REEL_WAN_VAE_CHUNK_FRAMES;
    return 1 + (chunks - 1) * (REEL_WAN_VAE_CHUNK_FRAMES / vae->t_down);
}

int64_t reel_wan_vae_video_frames(const struct reel_wan_vae *vae, int64_t latent_frames)
{
    if (latent_frames < 1)
        return 0;
    return 1 + (latent_frames - 1) * vae->t_up;
}

/* ------------------------------------------------------------ activations */

struct vae_act {
    float *d;
    int64_t c, t, h, w;
};

static int64_t act_n(const struct vae_act *a)
{
    return a->c * a->t * a->h * a->w;
}

static int act_alloc(struct vae_act *a, int64_t c, int64_t t, int64_t h, int64_t w,
                     struct reel_err *err)
{
    a->c = c;
    a->t = t;
    a->h = h;
    a->w = w;
    int64_t n = c * t * h * w;
    a->d = n > 0 && (uint64_t)n < SIZE_MAX / sizeof(float) ? malloc((size_t)n * sizeof(float))
                                                            : NULL;
    if (!a->d)
        return reel_errf(err, REEL_E_OTHER,
                         "WanVAE_: out of memory for a [%lld, %lld, %lld, %lld] activation",
                         (long long)c, (long long)t, (long long)h, (long long)w);
    return REEL_OK;
}

static void act_free(struct vae_act *a)
{
    free(a->d);
    a->d = NULL;
}

static float *floats(int64_t n, struct reel_err *err)
{
    float *p = n > 0 ? malloc((size_t)n * sizeof(float)) : NULL;
    if (!p)
        reel_errf(err, REEL_E_OTHER, "WanVAE_: out of memory for %lld floats", (long long)n);
    return p;
}

static void fill(float *p, float v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = v;
}

/* Frame f of a [c, t, hw] tensor <-> a contiguous [c, hw] plane stack. */
static void gather_frame(float *dst, const float *src, int64_t c, int64_t t, int64_t hw,
                         int64_t f)
{
    for (int64_t ch = 0; ch < c; ch++)
        memcpy(dst + ch * hw, src + (ch * t + f) * hw, (size_t)hw * sizeof(float));
}

static void scatter_frame(float *dst, const float *src, int64_t c, int64_t t, int64_t hw,
                          int64_t f)
{
    for (int64_t ch = 0; ch < c; ch++)
        memcpy(dst + (ch * t + f) * hw, src + ch * hw, (size_t)hw * sizeof(float));
}

/* [rows, cols] -> [cols, rows], in cache-sized tiles. */
static void transpose(float *dst, const float *src, int64_t rows, int64_t cols)
{
    const int64_t B = 32;
    for (int64_t i0 = 0; i0 < rows; i0 += B)
        for (int64_t j0 = 0; j0 < cols; j0 += B) {
            int64_t i1 = i0 + B < rows ? i0 + B : rows, j1 = j0 + B < cols ? j0 + B : cols;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++)
                    dst[j * rows + i] = src[i * cols + j];
        }
}

/* ------------------------------------------------------------ convolutions */

/* y = conv(x[cv->cin, t, h, w]) with pt0 frames of zeros in front. */
static int conv_run(struct reel_wan_vae *m, const struct vae_conv *cv, const float *x, int64_t t,
                    int64_t h, int64_t w, int pt0, struct vae_act *y, struct reel_err *err)
{
    struct reel_conv3d_geom g = {0};
    g.cin = cv->cin;
    g.t = t;
    g.h = h;
    g.w = w;
    g.cout = cv->cout;
    g.kt = cv->kt;
    g.kh = cv->kh;
    g.kw = cv->kw;
    g.st = cv->st;
    g.sh = g.sw = cv->ss;
    g.pt0 = pt0;
    g.ph0 = cv->ph0;
    g.ph1 = cv->ph1;
    g.pw0 = cv->pw0;
    g.pw1 = cv->pw1;
    const char *name = cv->w && cv->w->name ? cv->w->name : "conv";
    if (t + pt0 < cv->kt || h + g.ph0 + g.ph1 < cv->kh || w + g.pw0 + g.pw1 < cv->kw)
        return reel_errf(err, REEL_E_MEDIA,
                         "WanVAE_: %s: input of %lld frames of %lldx%lld is too small", name,
                         (long long)t, (long long)h, (long long)w);
    int64_t to = (t + pt0 - cv->kt) / cv->st + 1;
    int64_t ho = (h + g.ph0 + g.ph1 - cv->kh) / cv->ss + 1;
    int64_t wo = (w + g.pw0 + g.pw1 - cv->kw) / cv->ss + 1;
    int rc = act_alloc(y, cv->cout, to, ho, wo, err);
    if (rc)
        return rc;
    rc = m->be->conv3d(m->be, y->d, x, &g, cv->w, cv->b, err);
    if (rc)
        act_free(y);
    return rc;
}

static int cache_fit(struct vae_cache *cc, int64_t c, int64_t hw, struct reel_err *err)
{
    if (cc->d && cc->c == c && cc->hw == hw)
        return REEL_OK;
    if (cc->state == VAE_CACHE_FRAMES)
        return reel_errf(err, REEL_E_OTHER, "WanVAE_: feature cache shape changed mid-clip");
    free(cc->d);
    cc->d = floats(c * CACHE_T * hw, err);
    if (!cc->d)
        return REEL_E_OTHER;
    cc->c = c;
    cc->hw = hw;
    cc->n = 0;
    return REEL_OK;
}

/* The cache after x went through the conv: x's last 2 frames, or with one
 * frame the previous cache's last frame (zeros after "Rep") and x. */
static int cache_update(struct vae_cache *cc, const struct vae_act *x, struct reel_err *err)
{
    int64_t hw = x->h * x->w, T = x->t;
    int rc = cache_fit(cc, x->c, hw, err);
    if (rc)
        return rc;
    size_t plane = (size_t)hw * sizeof(float);
    for (int64_t ch = 0; ch < x->c; ch++) {
        float *d = cc->d + ch * CACHE_T * hw;
        const float *s = x->d + ch * T * hw;
        if (T >= 2) {
            memcpy(d, s + (T - 2) * hw, 2 * plane);
        } else if (cc->state == VAE_CACHE_FRAMES) {
            if (cc->n == 2)
                memcpy(d, d + hw, plane);
            memcpy(d + hw, s, plane);
        } else if (cc->state == VAE_CACHE_REP) {
            memset(d, 0, plane);
            memcpy(d + hw, s, plane);
        } else {
            memcpy(d, s, plane);
        }
    }
    cc->n = T >= 2 || cc->state != VAE_CACHE_NONE ? 2 : 1;
    cc->state = VAE_CACHE_FRAMES;
    return REEL_OK;
}

/* downsample3d keeps only the last frame. */
static int cache_store_last(struct vae_cache *cc, const struct vae_act *x, struct reel_err *err)
{
    int64_t hw = x->h * x->w;
    int rc = cache_fit(cc, x->c, hw, err);
    if (rc)
        return rc;
    for (int64_t ch = 0; ch < x->c; ch++)
        memcpy(cc->d + ch * CACHE_T * hw, x->d + (ch * x->t + x->t - 1) * hw,
               (size_t)hw * sizeof(float));
    cc->n = 1;
    cc->state = VAE_CACHE_FRAMES;
    return REEL_OK;
}

/* [c, n + t, hw] = cat(first n cache frames, x) along time. */
static float *cat_cache(const struct vae_cache *cc, int n, const struct vae_act *x,
                        struct reel_err *err)
{
    int64_t hw = x->h * x->w, T = x->t;
    if (cc->c != x->c || cc->hw != hw) {
        reel_errf(err, REEL_E_OTHER, "WanVAE_: feature cache does not match its input");
        return NULL;
    }
    float *b = floats(x->c * (n + T) * hw, err);
    if (!b)
        return NULL;
    for (int64_t ch = 0; ch < x->c; ch++) {
        float *d = b + ch * (n + T) * hw;
        memcpy(d, cc->d + ch * CACHE_T * hw, (size_t)(n * hw) * sizeof(float));
        memcpy(d + n * hw, x->d + ch * T * hw, (size_t)(T * hw) * sizeof(float));
    }
    return b;
}

/* CausalConv3d.forward(x, cache) followed by the cache update the caller
 * does in the reference: the cache (when it holds frames) stands in for that
 * many of the 2*pad front zero frames, then takes x's frames. With consume,
 * x is freed as soon as it has been copied, before the conv runs, so a conv
 * holds its padded input and its output but not x as well. */
static int causal_conv(struct reel_wan_vae *m, const struct vae_conv *cv, struct vae_cache *cc,
                       struct vae_act *x, int consume, struct vae_act *y, struct reel_err *err)
{
    int pad = 2 * cv->pt, rc;
    int n = pad > 0 && cc->state == VAE_CACHE_FRAMES ? cc->n : 0;
    if (n == 0) {
        rc = conv_run(m, cv, x->d, x->t, x->h, x->w, pad, y, err);
        if (!rc && (rc = cache_update(cc, x, err)))
            act_free(y);
    } else {
        int64_t t = n + x->t, h = x->h, w = x->w;
        float *b = cat_cache(cc, n, x, err);
        rc = b ? cache_update(cc, x, err) : REEL_E_OTHER;
        if (!rc && consume)
            act_free(x);
        if (!rc)
            rc = conv_run(m, cv, b, t, h, w, pad - n, y, err);
        free(b);
    }
    if (!rc && consume)
        act_free(x);
    return rc;
}

/* ------------------------------------------------------------------ layers */

static void norm_silu(struct reel_wan_vae *m, float *y, const struct vae_act *x,
                      const float *gamma)
{
    int64_t s = x->t * x->h * x->w;
    m->be->channel_rmsnorm(m->be, y, x->d, x->c, s, gamma, NULL);
    m->be->silu(m->be, y, y, x->c * s);
}

/* x <- conv_cached(x), the cache taking x's frames. */
static int run_conv_in(struct reel_wan_vae *m, const struct vae_layer *l, struct vae_cache *cc,
                       struct vae_act *x, struct reel_err *err)
{
    struct vae_act y = {0};
    int rc = causal_conv(m, &l->conv1, cc, x, 1, &y, err);
    if (rc)
        return rc;
    *x = y;
    return REEL_OK;
}

/* HEAD: RMS_norm, SiLU, cached conv. */
static int run_head(struct reel_wan_vae *m, const struct vae_layer *l, struct vae_cache *cc,
                    struct vae_act *x, struct reel_err *err)
{
    norm_silu(m, x->d, x, l->gamma1);
    return run_conv_in(m, l, cc, x, err);
}

/* ResidualBlock: conv(silu(norm(conv(silu(norm(x)))))) + shortcut(x). The
 * shortcut is taken first so that x can go before the convs run. */
static int run_res(struct reel_wan_vae *m, const struct vae_layer *l, struct vae_cache *caches,
                   struct vae_act *x, struct reel_err *err)
{
    struct vae_act t = {0}, y = {0}, z = {0};
    int rc = act_alloc(&t, x->c, x->t, x->h, x->w, err);
    if (rc)
        return rc;
    norm_silu(m, t.d, x, l->gamma1);
    if (l->has_shortcut) {
        struct vae_act h = {0};
        rc = conv_run(m, &l->shortcut, x->d, x->t, x->h, x->w, 0, &h, err);
        if (rc) {
            act_free(&t);
            return rc;
        }
        act_free(x);
        *x = h;
    }
    rc = causal_conv(m, &l->conv1, &caches[l->cache], &t, 1, &y, err);
    if (rc) {
        act_free(&t);
        return rc;
    }
    norm_silu(m, y.d, &y, l->gamma2);
    /* dropout: identity at inference */
    rc = causal_conv(m, &l->conv2, &caches[l->cache + 1], &y, 1, &z, err);
    if (rc) {
        act_free(&y);
        return rc;
    }
    m->be->add(m->be, z.d, z.d, x->d, act_n(&z));
    act_free(x);
    *x = z;
    return REEL_OK;
}

/* AttentionBlock: per frame, single-head attention over the h*w pixels. */
static int run_attn(struct reel_wan_vae *m, const struct vae_layer *l, struct vae_act *x,
                    struct reel_err *err)
{
    struct reel_backend *be = m->be;
    int64_t c = x->c, T = x->t, hw = x->h * x->w;
    float *xf = floats(c * hw, err), *xn = floats(c * hw, err), *xt = floats(c * hw, err);
    float *qkv = floats(3 * c * hw, err), *o = floats(c * hw, err);
    int rc = xf && xn && xt && qkv && o ? REEL_OK : REEL_E_OTHER;
    for (int64_t f = 0; !rc && f < T; f++) {
        gather_frame(xf, x->d, c, T, hw, f);
        be->channel_rmsnorm(be, xn, xf, c, hw, l->gamma1, NULL);
        transpose(xt, xn, c, hw); /* tokens [hw, c] */
        rc = be->linear(be, qkv, xt, hw, c, l->conv1.w, l->conv1.b, err);
        if (!rc)
            rc = be->attention(be, o, qkv, qkv + c, qkv + 2 * c, hw, hw, hw, 1, (int)c, 3 * c,
                               3 * c, c, 1.0f / sqrtf((float)c), NULL, err);
        if (!rc)
            rc = be->linear(be, xt, o, hw, c, l->conv2.w, l->conv2.b, err);
        if (rc)
            break;
        transpose(xn, xt, hw, c);
        be->add(be, xn, xn, xf, c * hw);
        scatter_frame(x->d, xn, c, T, hw, f);
    }
    free(xf);
    free(xn);
    free(xt);
    free(qkv);
    free(o);
    return rc;
}

/* upsample2d / upsample3d. 3d first runs the cached time_conv (not on the
 * first chunk) and interleaves the two halves of its channels in time. */
static int run_up(struct reel_wan_vae *m, const struct vae_layer *l, struct vae_cache *cc,
                  struct vae_act *x, struct reel_err *err)
{
    struct reel_backend *be = m->be;
    int64_t c = x->c, T = x->t, h = x->h, w = x->w, hw = h * w;
    struct vae_act tc = {0}, out = {0};
    int inter = 0, rc;
    if (l->op == VAE_UP3D) {
        if (cc->state == VAE_CACHE_NONE) {
            cc->state = VAE_CACHE_REP;
        } else {
            rc = causal_conv(m, &l->conv2, cc, x, 0, &tc, err);
            if (rc)
                return rc;
            inter = 1;
        }
    }
    int64_t T2 = inter ? 2 * T : T;
    rc = act_alloc(&out, l->cout, T2, 2 * h, 2 * w, err);
    float *g = floats(c * hw, err), *u = floats(c * 4 * hw, err);
    if (!rc && (!g || !u))
        rc = REEL_E_OTHER;
    for (int64_t j = 0; !rc && j < T2; j++) {
        if (inter) /* frame 2t + k is half k of time_conv's channels at t */
            for (int64_t ch = 0; ch < c; ch++)
                memcpy(g + ch * hw, tc.d + (((j % 2) * c + ch) * T + j / 2) * hw,
                       (size_t)hw * sizeof(float));
        else
            gather_frame(g, x->d, c, T, hw, j);
        be->upsample_nearest2x(be, u, g, c, h, w);
        struct vae_act o = {0};
        rc = conv_run(m, &l->conv1, u, 1, 2 * h, 2 * w, 0, &o, err);
        if (rc)
            break;
        scatter_frame(out.d, o.d, l->cout, T2, 4 * hw, j);
        act_free(&o);
    }
    free(g);
    free(u);
    act_free(&tc);
    if (rc) {
        act_free(&out);
        return rc;
    }
    act_free(x);
    *x = out;
    return REEL_OK;
}

/* downsample2d / downsample3d: zero pad right/bottom, 3x3 stride 2 conv on
 * every frame; 3d then the stride-2 time_conv over [cached frame, x]. */
static int run_down(struct reel_wan_vae *m, const struct vae_layer *l, struct vae_cache *cc,
                    struct vae_act *x, struct reel_err *err)
{
    struct vae_act s = {0}, y = {0};
    int rc = conv_run(m, &l->conv1, x->d, x->t, x->h, x->w, 0, &s, err);
    if (rc)
        return rc;
    act_free(x);
    if (l->op == VAE_DOWN2D || cc->state == VAE_CACHE_NONE) {
        if (l->op == VAE_DOWN3D && (rc = cache_store_last(cc, &s, err))) {
            act_free(&s);
            return rc;
        }
        *x = s;
        return REEL_OK;
    }
    float *b = cat_cache(cc, 1, &s, err);
    rc = b ? conv_run(m, &l->conv2, b, 1 + s.t, s.h, s.w, 0, &y, err) : REEL_E_OTHER;
    free(b);
    if (!rc)
        rc = cache_store_last(cc, &s, err);
    act_free(&s);
    if (rc) {
        act_free(&y);
        return rc;
    }
    *x = y;
    return REEL_OK;
}

/* AvgDown3D: zero frames in front up to a multiple of ft, fold each
 * ft x fs x fs block into channels (c, t-offset, h-offset, w-offset), then
 * average consecutive groups of those channels down to cout. */
static int avg_down(struct reel_wan_vae *m, const struct vae_act *x, int cout, int ft, int fs,
                    struct vae_act *y, struct reel_err *err)
{
    int64_t cin = x->c, T = x->t, H = x->h, W = x->w;
    int64_t factor = (int64_t)ft * fs * fs;
    if (H % fs || W % fs || (cin * factor) % cout)
        return reel_errf(err, REEL_E_MEDIA, "WanVAE_: AvgDown3D cannot fold %lldx%lld by %d",
                         (long long)H, (long long)W, fs);
    int64_t pad = (ft - T % ft) % ft, To = (T + pad) / ft, Ho = H / fs, Wo = W / fs;
    int64_t group = cin * factor / cout, plane = To * Ho * Wo;
    int rc = act_alloc(y, cout, To, Ho, Wo, err);
    if (rc)
        return rc;
    float *tmp = floats(plane, err);
    if (!tmp) {
        act_free(y);
        return REEL_E_OTHER;
    }
    for (int64_t o = 0; o < cout; o++) {
        float *yo = y->d + o * plane;
        for (int64_t k = 0; k < group; k++) {
            int64_t e = o * group + k, ci = e / factor, sub = e % factor;
            int64_t it = sub / (fs * fs), ih = sub / fs % fs, iw = sub % fs;
            float *dst = k ? tmp : yo;
            for (int64_t t = 0; t < To; t++) {
                int64_t ti = t * ft + it - pad;
                float *d = dst + t * Ho * Wo;
                if (ti < 0) {
                    memset(d, 0, (size_t)(Ho * Wo) * sizeof(float));
                    continue;
                }
                const float *s = x->d + (ci * T + ti) * H * W;
                for (int64_t hh = 0; hh < Ho; hh++)
                    for (int64_t ww = 0; ww < Wo; ww++)
                        d[hh * Wo + ww] = s[(hh * fs + ih) * W + ww * fs + iw];
            }
            if (k)
                m->be->add(m->be, yo, yo, tmp, plane);
        }
    }
    if (group > 1) {
        fill(tmp, (float)(1.0 / (double)group), plane);
        for (int64_t o = 0; o < cout; o++)
            m->be->mul(m->be, y->d + o * plane, y->d + o * plane, tmp, plane);
    }
    free(tmp);
    return REEL_OK;
}

/* x += DupUp3D(xin): each input channel repeated into cout channels of
 * ft x fs x fs blocks; the first chunk drops the ft - 1 leading frames. */
static int dup_up_add(struct reel_wan_vae *m, struct vae_act *x, const struct vae_act *xin, int ft,
                      int fs, int first, struct reel_err *err)
{
    int64_t cin = xin->c, cout = x->c, factor = (int64_t)ft * fs * fs;
    int64_t drop = first ? ft - 1 : 0;
    int64_t To = xin->t * ft - drop, Ho = xin->h * fs, Wo = xin->w * fs;
    if ((cout * factor) % cin || x->t != To || x->h != Ho || x->w != Wo)
        return reel_errf(err, REEL_E_OTHER, "WanVAE_: DupUp3D shortcut does not match the block");
    int64_t repeats = cout * factor / cin, plane = To * Ho * Wo;
    int64_t T = xin->t, H = xin->h, W = xin->w;
    float *tmp = floats(plane, err);
    if (!tmp)
        return REEL_E_OTHER;
    for (int64_t o = 0; o < cout; o++) {
        for (int64_t t = 0; t < To; t++) {
            int64_t tf = t + drop, ti = tf / ft, it = tf % ft;
            for (int64_t hh = 0; hh < Ho; hh++) {
                int64_t ih = hh % fs;
                float *d = tmp + (t * Ho + hh) * Wo;
                for (int64_t ww = 0; ww < Wo; ww++) {
                    int64_t e = o * factor + (it * fs + ih) * fs + ww % fs;
                    d[ww] = xin->d[((e / repeats * T + ti) * H + hh / fs) * W + ww / fs];
                }
            }
        }
        m->be->add(m->be, x->d + o * plane, x->d + o * plane, tmp, plane);
    }
    free(tmp);
    return REEL_OK;
}

/* Shortcut stack of the Wan2.2 residual down/up blocks. */
struct vae_stack {
    struct vae_act a[MAX_GROUP_DEPTH];
    int sp;
};

static void stack_free(struct vae_stack *st)
{
    while (st->sp > 0)
        act_free(&st->a[--st->sp]);
}

/* Runs layer i on x in place. */
static int step(struct reel_wan_vae *m, const struct vae_net *net, int i,
                struct vae_cache *caches, struct vae_act *x, int first_chunk,
                struct vae_stack *st, struct reel_err *err)
{
    const struct vae_layer *l = &net->l[i];
    struct vae_act *top = st->sp ? &st->a[st->sp - 1] : NULL;
    int rc;
    if (x->c != l->cin && l->op != VAE_AVG_END && l->op != VAE_DUP_END)
        return reel_errf(err, REEL_E_OTHER, "WanVAE_: layer %d expects %d channels, got %lld", i,
                         l->cin, (long long)x->c);
    switch (l->op) {
    case VAE_CONV_IN:
        return run_conv_in(m, l, &caches[l->cache], x, err);
    case VAE_HEAD:
        return run_head(m, l, &caches[l->cache], x, err);
    case VAE_RES:
        return run_res(m, l, caches, x, err);
    case VAE_ATTN:
        return run_attn(m, l, x, err);
    case VAE_UP2D:
    case VAE_UP3D:
        return run_up(m, l, &caches[l->cache], x, err);
    case VAE_DOWN2D:
    case VAE_DOWN3D:
        return run_down(m, l, &caches[l->cache], x, err);
    case VAE_AVG_BEGIN:
    case VAE_DUP_BEGIN:
        if (st->sp == MAX_GROUP_DEPTH)
            return reel_errf(err, REEL_E_OTHER, "WanVAE_: blocks nested too deep");
        /* The down shortcut is smaller than the block input: make it now.
         * The up shortcut is larger: keep the input and expand it later. */
        if (l->op == VAE_AVG_BEGIN) {
            rc = avg_down(m, x, l->cout, l->ft, l->fs, &st->a[st->sp], err);
        } else {
            rc = act_alloc(&st->a[st->sp], x->c, x->t, x->h, x->w, err);
            if (!rc)
                memcpy(st->a[st->sp].d, x->d, (size_t)act_n(x) * sizeof(float));
        }
        if (!rc)
            st->sp++;
        return rc;
    case VAE_AVG_END:
        if (!top || top->c != x->c || top->t != x->t || top->h != x->h || top->w != x->w)
            return reel_errf(err, REEL_E_OTHER,
                             "WanVAE_: AvgDown3D shortcut does not match the block");
        m->be->add(m->be, x->d, x->d, top->d, act_n(x));
        act_free(&st->a[--st->sp]);
        return REEL_OK;
    case VAE_DUP_END:
        if (!top)
            return reel_errf(err, REEL_E_OTHER, "WanVAE_: unbalanced up block");
        rc = dup_up_add(m, x, top, l->ft, l->fs, first_chunk, err);
        act_free(&st->a[--st->sp]);
        return rc;
    }
    return reel_errf(err, REEL_E_OTHER, "WanVAE_: unknown layer kind");
}

/* Layers that map each frame to one frame using nothing of the chunk but
 * that frame and the causal cache. */
static int frame_local(const struct vae_layer *l)
{
    switch (l->op) {
    case VAE_UP3D:
    case VAE_DOWN3D:
        return 0;
    case VAE_AVG_BEGIN:
    case VAE_AVG_END:
    case VAE_DUP_BEGIN:
    case VAE_DUP_END:
        return l->ft == 1;
    default:
        return 1;
    }
}

/* End of the longest run of frame-local layers from i whose residual blocks
 * open and close inside it. */
static int frame_local_run(const struct vae_net *net, int i)
{
    int open[MAX_GROUP_DEPTH + 1], depth = 0, j = i;
    for (; j < net->n && frame_local(&net->l[j]); j++) {
        enum vae_op op = net->l[j].op;
        if (op == VAE_AVG_BEGIN || op == VAE_DUP_BEGIN) {
            if (depth == MAX_GROUP_DEPTH)
                break;
            open[depth++] = j;
        } else if (op == VAE_AVG_END || op == VAE_DUP_END) {
            if (!depth)
                break;
            depth--;
        }
    }
    return depth ? open[0] : j;
}

/* Runs layers [i, j) one frame at a time. A causal conv fed frame by frame
 * sees the same windows as on the whole chunk (its cache rolls the same
 * way), so this only changes the peak memory: one frame's activations
 * instead of four. */
static int run_frames(struct reel_wan_vae *m, const struct vae_net *net, int i, int j,
                      struct vae_cache *caches, struct vae_act *x, int first_chunk,
                      struct reel_err *err)
{
    int64_t T = x->t, hw = x->h * x->w;
    struct vae_act out = {0};
    int rc = REEL_OK;
    for (int64_t f = 0; !rc && f < T; f++) {
        struct vae_act xf = {0};
        struct vae_stack st = {0};
        rc = act_alloc(&xf, x->c, 1, x->h, x->w, err);
        if (rc)
            break;
        gather_frame(xf.d, x->d, x->c, T, hw, f);
        for (int k = i; !rc && k < j; k++)
            rc = step(m, net, k, caches, &xf, first_chunk, &st, err);
        stack_free(&st);
        if (!rc && xf.t != 1)
            rc = reel_errf(err, REEL_E_OTHER, "WanVAE_: a frame-local layer changed the frames");
        if (!rc && !out.d)
            rc = act_alloc(&out, xf.c, T, xf.h, xf.w, err);
        if (!rc && (out.c != xf.c || out.h != xf.h || out.w != xf.w))
            rc = reel_errf(err, REEL_E_OTHER, "WanVAE_: frames of one chunk differ in shape");
        if (!rc)
            scatter_frame(out.d, xf.d, out.c, T, out.h * out.w, f);
        act_free(&xf);
    }
    if (rc) {
        act_free(&out);
        return rc;
    }
    act_free(x);
    *x = out;
    return REEL_OK;
}

/* Runs one chunk through a network; consumes *x and leaves the output there. */
static int net_forward(struct reel_wan_vae *m, const struct vae_net *net,
                       struct vae_cache *caches, struct vae_act *x, int first_chunk,
                       struct reel_err *err)
{
    struct vae_stack st = {0};
    int rc = REEL_OK;
    for (int i = 0; !rc && i < net->n;) {
        int j = x->t > 1 ? frame_local_run(net, i) : i;
        if (j > i) {
            rc = run_frames(m, net, i, j, caches, x, first_chunk, err);
            i = j;
        } else {
            rc = step(m, net, i, caches, x, first_chunk, &st, err);
            i++;
        }
    }
    stack_free(&st);
    return rc;
}

/* ----------------------------------------------------------------- drivers */

/* b c f (h q) (w r) -> b (c r q) f h w */
static int patchify(struct vae_act *x, int p, struct reel_err *err)
{
    struct vae_act y = {0};
    int rc = act_alloc(&y, x->c * p * p, x->t, x->h / p, x->w / p, err);
    if (rc)
        return rc;
    for (int64_t c = 0; c < x->c; c++)
        for (int r = 0; r < p; r++)
            for (int q = 0; q < p; q++) {
                float *d = y.d + ((c * p + r) * p + q) * y.t * y.h * y.w;
                for (int64_t t = 0; t < x->t; t++)
                    for (int64_t h = 0; h < y.h; h++) {
                        const float *s = x->d + ((c * x->t + t) * x->h + h * p + q) * x->w + r;
                        float *dr = d + (t * y.h + h) * y.w;
                        for (int64_t w = 0; w < y.w; w++)
                            dr[w] = s[w * p];
                    }
            }
    act_free(x);
    *x = y;
    return REEL_OK;
}

/* b (c r q) f h w -> b c f (h q) (w r) */
static int unpatchify(struct vae_act *x, int p, struct reel_err *err)
{
    struct vae_act y = {0};
    if (x->c % (p * p))
        return reel_errf(err, REEL_E_OTHER, "WanVAE_: unpatchify of %lld channels",
                         (long long)x->c);
    int rc = act_alloc(&y, x->c / (p * p), x->t, x->h * p, x->w * p, err);
    if (rc)
        return rc;
    for (int64_t c = 0; c < y.c; c++)
        for (int r = 0; r < p; r++)
            for (int q = 0; q < p; q++) {
                const float *s = x->d + ((c * p + r) * p + q) * x->t * x->h * x->w;
                for (int64_t t = 0; t < x->t; t++)
                    for (int64_t h = 0; h < x->h; h++) {
                        const float *sr = s + (t * x->h + h) * x->w;
                        float *d = y.d + ((c * y.t + t) * y.h + h * p + q) * y.w + r;
                        for (int64_t w = 0; w < x->w; w++)
                            d[w * p] = sr[w];
                    }
            }
    act_free(x);
    *x = y;
    return REEL_OK;
}

int reel_wan_vae_encode(struct reel_wan_vae *vae, const float *video, int64_t T, int64_t H,
                        int64_t W, const float *mean, const float *inv_std, float *mu_out,
                        struct reel_err *err)
{
    struct reel_backend *be = vae->be;
    int s = vae->s_factor, z = vae->cfg.z_dim;
    if (T < 1 || H < s || W < s || H % s || W % s)
        return reel_errf(err, REEL_E_MEDIA,
                         "WanVAE_ encode: video %lldx%lld with %lld frames; need at least one "
                         "frame and sizes that are multiples of %d",
                         (long long)H, (long long)W, (long long)T, s);
    int64_t F = reel_wan_vae_latent_frames(vae, T), h = H / s, w = W / s, plane = h * w;
    int64_t chunks = 1 + (T - 1) / REEL_WAN_VAE_CHUNK_FRAMES, fo = 0;
    float *tmp = floats(REEL_WAN_VAE_CHUNK_FRAMES * plane, err);
    if (!tmp)
        return REEL_E_OTHER;
    caches_clear(vae->enc_cache, vae->enc.ncache);
    int rc = REEL_OK;
    for (int64_t i = 0; !rc && i < chunks; i++) {
        int64_t f0 = i ? 1 + REEL_WAN_VAE_CHUNK_FRAMES * (i - 1) : 0, nf = i ? REEL_WAN_VAE_CHUNK_FRAMES : 1;
        struct vae_act x = {0}, y = {0};
        rc = act_alloc(&x, 3, nf, H, W, err);
        if (rc)
            break;
        for (int64_t c = 0; c < 3; c++)
            memcpy(x.d + c * nf * H * W, video + (c * T + f0) * H * W,
                   (size_t)(nf * H * W) * sizeof(float));
        if (vae->patch > 1)
            rc = patchify(&x, vae->patch, err);
        if (!rc)
            rc = net_forward(vae, &vae->enc, vae->enc_cache, &x, i == 0, err);
        if (!rc)
            rc = conv_run(vae, &vae->conv1, x.d, x.t, x.h, x.w, 0, &y, err);
        act_free(&x);
        if (!rc && (y.h != h || y.w != w || fo + y.t > F || y.t * plane > REEL_WAN_VAE_CHUNK_FRAMES * plane))
            rc = reel_errf(err, REEL_E_OTHER, "WanVAE_ encode: chunk %lld gave an unexpected "
                           "[%lld, %lld, %lld] latent", (long long)i, (long long)y.t,
                           (long long)y.h, (long long)y.w);
        if (!rc) {
            if (vae->probe)
                vae->probe(vae->probe_ctx, "enc_conv1_out", y.d, y.c, fo, y.t, h, w);
            /* mu = (mu_raw - mean) * inv_std; log_var (channels z..2z) is dropped */
            int64_t n = y.t * plane;
            for (int c = 0; c < z; c++) {
                float *src = y.d + c * n;
                fill(tmp, mean[c], n);
                be->axpby(be, src, 1.0f, src, -1.0f, tmp, n);
                fill(tmp, inv_std[c], n);
                be->mul(be, src, src, tmp, n);
                memcpy(mu_out + (c * F + fo) * plane, src, (size_t)n * sizeof(float));
            }
            fo += y.t;
        }
        act_free(&y);
    }
    caches_clear(vae->enc_cache, vae->enc.ncache);
    free(tmp);
    if (!rc && fo != F)
        rc = reel_errf(err, REEL_E_OTHER, "WanVAE_ encode: made %lld latent frames, expected %lld",
                       (long long)fo, (long long)F);
    return rc;
}

int reel_wan_vae_decode(struct reel_wan_vae *vae, const float *latent, int64_t F, int64_t h,
                        int64_t w, const float *mean, const float *inv_std,
                        reel_wan_vae_frame_fn frame_cb, void *ctx, struct reel_err *err)
{
    struct reel_backend *be = vae->be;
    int z = vae->cfg.z_dim, s = vae->s_factor;
    if (F < 1 || h < 1 || w < 1)
        return reel_errf(err, REEL_E_MEDIA, "WanVAE_ decode: empty latent [%lld, %lld, %lld]",
                         (long long)F, (long long)h, (long long)w);
    int64_t plane = h * w, next = 0;
    float *tmp = floats(plane, err);
    if (!tmp)
        return REEL_E_OTHER;
    caches_clear(vae->dec_cache, vae->dec.ncache);
    int rc = REEL_OK;
    for (int64_t i = 0; !rc && i < F; i++) {
        struct vae_act x = {0}, y = {0};
        rc = act_alloc(&x, z, 1, h, w, err);
        if (rc)
            break;
        /* z / inv_std + mean (as 1/inv_std: there is no divide op) */
        for (int c = 0; c < z; c++) {
            float *d = x.d + c * plane;
            memcpy(d, latent + (c * F + i) * plane, (size_t)plane * sizeof(float));
            fill(tmp, 1.0f / inv_std[c], plane);
            be->mul(be, d, d, tmp, plane);
            fill(tmp, mean[c], plane);
            be->add(be, d, d, tmp, plane);
        }
        rc = conv_run(vae, &vae->conv2, x.d, 1, h, w, 0, &y, err);
        act_free(&x);
        if (!rc && vae->probe)
            vae->probe(vae->probe_ctx, "dec_conv2_out", y.d, y.c, i, 1, h, w);
        if (!rc)
            rc = net_forward(vae, &vae->dec, vae->dec_cache, &y, i == 0, err);
        if (!rc && vae->patch > 1)
            rc = unpatchify(&y, vae->patch, err);
        if (!rc && (y.c != 3 || y.h != h * s || y.w != w * s || y.t != (i ? vae->t_up : 1)))
            rc = reel_errf(err, REEL_E_OTHER,
                           "WanVAE_ decode: latent frame %lld gave an unexpected [%lld, %lld, "
                           "%lld, %lld] chunk",
                           (long long)i, (long long)y.c, (long long)y.t, (long long)y.h,
                           (long long)y.w);
        if (!rc && frame_cb) {
            rc = frame_cb(ctx, y.d, next, y.t, err);
            if (rc && !err->code)
                reel_errf(err, rc, "WanVAE_ decode: the frame consumer stopped at frame %lld",
                          (long long)next);
        }
        next += y.t;
        act_free(&y);
    }
    caches_clear(vae->dec_cache, vae->dec.ncache);
    free(tmp);
    return rc;
}
