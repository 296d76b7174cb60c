/* `reel check` runner for T5Encoder.forward golden files (the umT5 text
 * encoder of Wan): the config comes from the file (or, without one, from the
 * weight shapes), the ids and mask from in.ids / in.mask; out.hidden holds
 * every position, padding included, so the whole sequence is run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/check.h"
#include "stages/umt5.h"

#define UMT5_TOL 2e-5

static void umt5_probe_fn(void *vctx, const char *name, const float *data, int64_t n)
{
    struct reel_check *c = vctx;
    char full[64];
    snprintf(full, sizeof full, "mid.%s", name);
    reel_check_compare(c, full, data, n, UMT5_TOL);
}

/* Reads an I64 [1, L] or [L] tensor into ints; *n = L. */
static int read_ids(struct reel_check *c, const char *name, int64_t **out, int64_t *n,
                    struct reel_err *err)
{
    const struct reel_tensor *t = reel_check_tensor(c, name);
    if (!t)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' is missing", c->file->path, name);
    if (t->dtype != REEL_I64 || t->ndim < 1 || t->ndim > 2 || (t->ndim == 2 && t->shape[0] != 1))
        return reel_errf(err, REEL_E_MODEL, "%s: '%s' must be an I64 [1, L] tensor",
                         c->file->path, name);
    int64_t cnt = reel_tensor_numel(t);
    int64_t *v = malloc(sizeof *v * (size_t)(cnt > 0 ? cnt : 1));
    if (!v)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    memcpy(v, t->data, sizeof *v * (size_t)cnt);
    *out = v;
    *n = cnt;
    return REEL_OK;
}

int reel_check_umt5(struct reel_check *c, struct reel_err *err)
{
    const char *path = c->file->path;
    struct reel_umt5_config cfg;
    struct reel_umt5 *m = NULL;
    int64_t *ids64 = NULL, *mask64 = NULL, *rel = NULL, *got = NULL;
    int32_t *ids = NULL;
    uint8_t *mask = NULL;
    float *out = NULL;
    int64_t L = 0, nm = 0;
    int rc;

    rc = c->config ? reel_umt5_config_from_json(c->config, &cfg, err)
                   : reel_umt5_config_from_weights(c->weights, &cfg, err);
    if (rc) {
        reel_err_prefix(err, "%s: ", path);
        return rc;
    }
    if ((rc = read_ids(c, "in.ids", &ids64, &L, err)))
        goto done;
    if (reel_check_tensor(c, "in.mask")) {
        if ((rc = read_ids(c, "in.mask", &mask64, &nm, err)))
            goto done;
        if (nm != L) {
            rc = reel_errf(err, REEL_E_MODEL, "%s: in.mask has %lld entries, in.ids %lld", path,
                           (long long)nm, (long long)L);
            goto done;
        }
    }
    ids = malloc(sizeof *ids * (size_t)(L > 0 ? L : 1));
    mask = malloc((size_t)(L > 0 ? L : 1));
    out = malloc(sizeof *out * (size_t)(L * cfg.dim > 0 ? L * cfg.dim : 1));
    if (!ids || !mask || !out) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < L; i++) {
        if (ids64[i] < 0 || ids64[i] >= cfg.vocab) {
            rc = reel_errf(err, REEL_E_MODEL, "%s: in.ids[%lld] = %lld is outside the vocabulary",
                           path, (long long)i, (long long)ids64[i]);
            goto done;
        }
        ids[i] = (int32_t)ids64[i];
        mask[i] = mask64 ? mask64[i] != 0 : 1;
    }

    /* the bucket function over the file's relative positions */
    if (c->verbose && reel_check_tensor(c, "mid.rel_bucket_pos")) {
        int64_t n = 0;
        if ((rc = read_ids(c, "mid.rel_bucket_pos", &rel, &n, err)))
            goto done;
        got = malloc(sizeof *got * (size_t)(n > 0 ? n : 1));
        if (!got) {
            rc = reel_errf(err, REEL_E_OTHER, "out of memory");
            goto done;
        }
        /* the positions themselves: a contiguous range centred on 0 */
        for (int64_t i = 0; i < n; i++)
            got[i] = i - (n - 1) / 2;
        reel_check_compare_i64(c, "mid.rel_bucket_pos", got, n);
        for (int64_t i = 0; i < n; i++)
            got[i] = reel_umt5_bucket(rel[i], cfg.num_buckets, 1, REEL_UMT5_MAX_DIST);
        reel_check_compare_i64(c, "mid.rel_bucket", got, n);
    }

    if ((rc = reel_umt5_create(&cfg, c->weights, c->be, &m, err)))
        goto done;
    struct reel_umt5_input in = {
        .ids = ids, .len = L, .mask = mask,
        .probe = c->verbose ? umt5_probe_fn : NULL, .probe_ctx = c,
    };
    if ((rc = reel_umt5_forward(m, &in, out, err))) {
        reel_err_prefix(err, "%s: ", path);
        goto done;
    }
    reel_check_compare(c, "out.hidden", out, L * cfg.dim, UMT5_TOL);

done:
    reel_umt5_destroy(m);
    free(ids64);
    free(mask64);
    free(rel);
    free(got);
    free(ids);
    free(mask);
    free(out);
    return rc;
}
