/* `reel check` runner for Ovi FusionModel.forward golden files: sizes and
 * configs come from the file (config metadata, tensor shapes). A file
 * without weights (the skip-layer-guidance case) names the file that holds
 * them in its `weights_from` metadata, resolved beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/check.h"
#include "stages/ovi_fusion.h"

#define OVI_TOL 2e-5

static void ovi_probe_fn(void *vctx, const char *name, const float *data, int64_t n)
{
    struct reel_check *c = vctx;
    char full[128];
    snprintf(full, sizeof full, "mid.%s", name);
    reel_check_compare(c, full, data, n, OVI_TOL);
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

/* One integer input (I64 or float tensor of one value); dflt when absent. */
static int read_int(struct reel_check *c, const char *name, int64_t dflt, int64_t *out,
                    struct reel_err *err)
{
    const struct reel_tensor *t = reel_check_tensor(c, name);
    *out = dflt;
    if (!t)
        return REEL_OK;
    if (reel_tensor_numel(t) != 1)
        return reel_errf(err, REEL_E_MODEL, "%s: %s must hold one value", c->file->path, name);
    if (t->dtype == REEL_I64) {
        memcpy(out, t->data, 8);
    } else if (t->dtype == REEL_F32 || t->dtype == REEL_BF16 || t->dtype == REEL_F16) {
        float v;
        reel_tensor_to_f32(t, 0, 1, &v);
        *out = (int64_t)v;
    } else {
        return reel_errf(err, REEL_E_MODEL, "%s: %s must be I64 or float", c->file->path, name);
    }
    return REEL_OK;
}

/* The weights named by `weights_from`, beside the checked file. */
static int open_weights_from(struct reel_check *c, const char *from, struct reel_st_file **f,
                             struct reel_weights **w, struct reel_err *err)
{
    const char *path = c->file->path;
    const char *slash = strrchr(path, '/');
    char full[4096];
    if (from[0] == '/' || !slash)
        snprintf(full, sizeof full, "%s", from);
    else
        snprintf(full, sizeof full, "%.*s/%s", (int)(slash - path), path, from);
    int rc = reel_st_open(full, f, err);
    if (!rc)
        rc = reel_weights_from_file(*f, "weights.", w, err);
    if (rc) {
        reel_err_prefix(err, "%s: weights_from: ", path);
        return rc;
    }
    /* both files record the hash of the weights they were made with */
    const char *h1 = reel_st_meta(c->file, "weights_sha256");
    const char *h2 = reel_st_meta(*f, "weights_sha256");
    if (h1 && h2 && strcmp(h1, h2))
        return reel_errf(err, REEL_E_MODEL,
                         "%s: weights_from %s holds other weights (weights_sha256 differs)", path,
                         full);
    return REEL_OK;
}

int reel_check_ovi_fusion(struct reel_check *c, struct reel_err *err)
{
    const char *path = c->file->path;
    struct reel_ovi_config cfg;
    struct reel_ovi_fusion *m = NULL;
    struct reel_st_file *wf = NULL;
    struct reel_weights *ww = NULL;
    float *vid = NULL, *aud = NULL, *t = NULL, *vctx = NULL, *actx = NULL, *vout = NULL,
          *aout = NULL;
    int rc;

    if ((rc = reel_ovi_config_from_json(c->config, &cfg, err))) {
        reel_err_prefix(err, "%s: ", path);
        return rc;
    }
    const struct reel_weights *weights = c->weights;
    const char *from = reel_st_meta(c->file, "weights_from");
    if (from) {
        if ((rc = open_weights_from(c, from, &wf, &ww, err)))
            goto done;
        weights = ww;
    }

    const struct reel_tensor *tv = reel_check_tensor(c, "in.vid");
    const struct reel_tensor *ta = reel_check_tensor(c, "in.audio");
    const struct reel_tensor *tvc = reel_check_tensor(c, "in.vid_context");
    const struct reel_tensor *tac = reel_check_tensor(c, "in.audio_context");
    int64_t vd[4], ad[2], vcd[2], acd[2];
    if (!tv || squeeze_to(tv, 4, vd) || vd[0] != cfg.video.in_dim) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: in.vid must be [%d, F, H, W]", path,
                       cfg.video.in_dim);
        goto done;
    }
    if (!ta || squeeze_to(ta, 2, ad) || ad[1] != cfg.audio.in_dim) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: in.audio must be [L, %d] (channel-last)", path,
                       cfg.audio.in_dim);
        goto done;
    }
    if (!tvc || squeeze_to(tvc, 2, vcd) || vcd[1] != cfg.video.text_dim || !tac ||
        squeeze_to(tac, 2, acd) || acd[1] != cfg.audio.text_dim) {
        rc = reel_errf(err, REEL_E_MODEL,
                       "%s: in.vid_context / in.audio_context must be [L, text_dim %d / %d]",
                       path, cfg.video.text_dim, cfg.audio.text_dim);
        goto done;
    }
    const int64_t nv = (vd[1] / cfg.video.patch[0]) * (vd[2] / cfg.video.patch[1]) *
                       (vd[3] / cfg.video.patch[2]);
    int64_t vsl, asl, slg;
    if ((rc = read_int(c, "in.vid_seq_len", nv, &vsl, err)) ||
        (rc = read_int(c, "in.audio_seq_len", ad[0], &asl, err)) ||
        (rc = read_int(c, "in.slg_layer", 0, &slg, err)))
        goto done;

    int64_t n;
    if ((rc = reel_check_input_f32(c, "in.vid", &vid, &n, err)) ||
        (rc = reel_check_input_f32(c, "in.audio", &aud, &n, err)) ||
        (rc = reel_check_input_f32(c, "in.vid_context", &vctx, &n, err)) ||
        (rc = reel_check_input_f32(c, "in.audio_context", &actx, &n, err)) ||
        (rc = reel_check_input_f32(c, "in.t", &t, &n, err)))
        goto done;
    if (n != 1) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: in.t must hold one timestep (FusionModel's t)",
                       path);
        goto done;
    }

    const int64_t vn = (int64_t)cfg.video.out_dim * vd[1] * vd[2] * vd[3];
    const int64_t an = (int64_t)cfg.audio.out_dim * ad[0];
    vout = malloc(sizeof *vout * (size_t)(vn > 0 ? vn : 1));
    aout = malloc(sizeof *aout * (size_t)(an > 0 ? an : 1));
    if (!vout || !aout) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    if ((rc = reel_ovi_fusion_create(&cfg, weights, c->be, &m, err))) {
        reel_err_prefix(err, "%s: ", path);
        goto done;
    }
    struct reel_ovi_input in = {
        .vid = vid, .frames = vd[1], .height = vd[2], .width = vd[3],
        .audio = aud, .audio_len = ad[0],
        .vid_t = t, .audio_t = t,
        .vid_context = vctx, .vid_context_len = vcd[0],
        .audio_context = actx, .audio_context_len = acd[0],
        .vid_seq_len = vsl, .audio_seq_len = asl,
        .slg_layer = slg > 0 && slg < (int64_t)1 << 30 ? (int)slg : slg > 0 ? -1 : 0,
        .probe = c->verbose ? ovi_probe_fn : NULL, .probe_ctx = c,
    };
    if ((rc = reel_ovi_fusion_forward(m, &in, vout, aout, err))) {
        reel_err_prefix(err, "%s: ", path);
        goto done;
    }
    reel_check_compare(c, "out.vid", vout, vn, OVI_TOL);
    reel_check_compare(c, "out.audio", aout, an, OVI_TOL);

done:
    reel_ovi_fusion_destroy(m);
    reel_weights_close(ww);
    reel_st_close(wf);
    free(vid);
    free(aud);
    free(t);
    free(vctx);
    free(actx);
    free(vout);
    free(aout);
    return rc;
}
