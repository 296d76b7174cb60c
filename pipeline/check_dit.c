/* `reel check` runner for WanModel.forward golden files (Wan2.1 t2v, Wan2.2
 * ti2v/t2v/i2v): every size comes from the file's config and tensor shapes,
 * so any configuration recorded the same way checks without code changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/check.h"
#include "stages/wan_dit.h"

#define DIT_TOL 2e-5

struct dit_probe {
    struct reel_check *c;
    float *tile;
    int64_t tile_n;
};

/* Compares one intermediate with mid.<name>. A file made by the Wan2.2 code
 * with a scalar t stores the timestep quantities per token ([1, L, ...]),
 * while the forward reports them once: those are tiled to the file's size. */
static void dit_probe_fn(void *vctx, const char *name, const float *data, int64_t n)
{
    struct dit_probe *p = vctx;
    char full[64];
    snprintf(full, sizeof full, "mid.%s", name);
    const struct reel_tensor *t = reel_check_tensor(p->c, full);
    if (!t)
        return; /* intermediates are optional */
    int64_t tn = reel_tensor_numel(t);
    int timey = !strcmp(name, "t_sinusoid") || !strcmp(name, "e") || !strcmp(name, "e0");
    if (timey && n > 0 && tn > n && tn % n == 0) {
        if (p->tile_n < tn) {
            float *nt = realloc(p->tile, sizeof(float) * (size_t)tn);
            if (!nt)
                return;
            p->tile = nt;
            p->tile_n = tn;
        }
        for (int64_t i = 0; i < tn; i += n)
            memcpy(p->tile + i, data, sizeof(float) * (size_t)n);
        reel_check_compare(p->c, full, p->tile, tn, DIT_TOL);
        return;
    }
    reel_check_compare(p->c, full, data, n, DIT_TOL);
}

/* Drops leading size-1 dimensions beyond `keep`, e.g. a batch of 1. */
static int squeeze_to(const struct reel_tensor *t, int keep, int64_t *dims)
{
    int nd = t->ndim, off = 0;
    while (nd - off > keep && t->shape[off] == 1)
        off++;
    if (nd - off != keep)
        return -1;
    for (int i = 0; i < keep; i++)
        dims[i] = t->shape[off + i];
    return 0;
}

int reel_check_wan_dit(struct reel_check *c, struct reel_err *err)
{
    struct reel_wan_dit_config cfg;
    struct reel_wan_dit *m = NULL;
    float *x = NULL, *t = NULL, *ctx = NULL, *out = NULL;
    struct dit_probe probe = {c, NULL, 0};
    const char *path = c->file->path;
    int rc;

    if ((rc = reel_wan_dit_config_from_json(c->config, &cfg, err))) {
        reel_err_prefix(err, "%s: ", path);
        return rc;
    }

    /* in.x [C, F, H, W] */
    const struct reel_tensor *tx = reel_check_tensor(c, "in.x");
    int64_t xd[4];
    if (!tx || squeeze_to(tx, 4, xd))
        return reel_errf(err, REEL_E_MODEL, "%s: in.x must be a [C, F, H, W] tensor", path);
    /* i2v files may keep the condition apart (forward(..., y=[in.y])); the
     * reference concatenates it after x along the channels */
    const struct reel_tensor *ty = reel_check_tensor(c, "in.y");
    int64_t yd[4] = {0, 0, 0, 0};
    if (ty && (squeeze_to(ty, 4, yd) || yd[1] != xd[1] || yd[2] != xd[2] || yd[3] != xd[3]))
        return reel_errf(err, REEL_E_MODEL, "%s: in.y must be [C, F, H, W] like in.x", path);
    if (xd[0] + yd[0] != cfg.in_dim)
        return reel_errf(err, REEL_E_MODEL, "%s: in.x%s has %lld channels but in_dim is %d",
                         path, ty ? " + in.y" : "", (long long)(xd[0] + yd[0]), cfg.in_dim);
    const int64_t ntok = (xd[1] / cfg.patch[0]) * (xd[2] / cfg.patch[1]) * (xd[3] / cfg.patch[2]);

    /* in.seq_len (I64 [1]); the metadata copy, then the token count, as fallbacks */
    int64_t seq_len = ntok;
    const struct reel_tensor *tsl = reel_check_tensor(c, "in.seq_len");
    const char *msl = reel_st_meta(c->file, "seq_len");
    if (tsl) {
        if (reel_tensor_numel(tsl) != 1)
            return reel_errf(err, REEL_E_MODEL, "%s: in.seq_len must hold one value", path);
        if (tsl->dtype == REEL_I64) {
            memcpy(&seq_len, tsl->data, 8);
        } else {
            float v;
            if (tsl->dtype != REEL_F32 && tsl->dtype != REEL_BF16 && tsl->dtype != REEL_F16)
                return reel_errf(err, REEL_E_MODEL, "%s: in.seq_len must be I64 or float", path);
            reel_tensor_to_f32(tsl, 0, 1, &v);
            seq_len = (int64_t)v;
        }
    } else if (msl) {
        seq_len = strtoll(msl, NULL, 10);
    }

    /* in.context [Lc, text_dim] */
    const struct reel_tensor *tc = reel_check_tensor(c, "in.context");
    int64_t cd[2];
    if (!tc || squeeze_to(tc, 2, cd)) {
        if (tc && tc->ndim == 1 && tc->shape[0] == 0) {
            cd[0] = 0;
            cd[1] = cfg.text_dim;
        } else {
            return reel_errf(err, REEL_E_MODEL, "%s: in.context must be a [L, text_dim] tensor",
                             path);
        }
    }
    if (cd[1] != cfg.text_dim)
        return reel_errf(err, REEL_E_MODEL, "%s: in.context rows have %lld values, text_dim is %d",
                         path, (long long)cd[1], cfg.text_dim);

    int64_t n;
    if ((rc = reel_check_input_f32(c, "in.x", &x, &n, err)))
        goto done;
    if (ty) {
        float *y = NULL, *xy;
        if ((rc = reel_check_input_f32(c, "in.y", &y, &n, err)))
            goto done;
        xy = realloc(x, sizeof *x * (size_t)(cfg.in_dim * xd[1] * xd[2] * xd[3]));
        if (!xy) {
            free(y);
            rc = reel_errf(err, REEL_E_OTHER, "out of memory");
            goto done;
        }
        x = xy;
        memcpy(x + xd[0] * xd[1] * xd[2] * xd[3], y, sizeof *y * (size_t)n);
        free(y);
    }
    if ((rc = reel_check_input_f32(c, "in.t", &t, &n, err)))
        goto done;
    int per_token = n != 1;
    if (per_token && n != seq_len) {
        rc = reel_errf(err, REEL_E_MODEL,
                       "%s: in.t holds %lld timesteps; expected 1 or seq_len = %lld", path,
                       (long long)n, (long long)seq_len);
        goto done;
    }
    if ((rc = reel_check_input_f32(c, "in.context", &ctx, &n, err)))
        goto done;

    const int64_t out_n = (int64_t)cfg.out_dim * xd[1] * xd[2] * xd[3];
    out = malloc(sizeof *out * (size_t)(out_n > 0 ? out_n : 1));
    if (!out) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    if ((rc = reel_wan_dit_create(&cfg, c->weights, c->be, &m, err)))
        goto done;

    struct reel_wan_dit_input in = {
        .x = x, .frames = xd[1], .height = xd[2], .width = xd[3],
        .t = t, .t_per_token = per_token,
        .context = ctx, .context_len = cd[0],
        .seq_len = seq_len,
        .probe = c->verbose ? dit_probe_fn : NULL, .probe_ctx = &probe,
    };
    if ((rc = reel_wan_dit_forward(m, &in, out, err))) {
        reel_err_prefix(err, "%s: ", path);
        goto done;
    }
    reel_check_compare(c, "out.x", out, out_n, DIT_TOL);

done:
    reel_wan_dit_destroy(m);
    free(probe.tile);
    free(x);
    free(t);
    free(ctx);
    free(out);
    return rc;
}
