/* Tests for stages/ovi_fusion.c without the real checkpoint:
 *  - the tensor table built from the real Ovi config equals the released
 *    FusionModel manifest name for name, shape for shape, in state_dict
 *    order, and sums to its parameter count (and per tower prefix);
 *  - config errors (towers that differ, a non-t2a audio tower) are refused;
 *  - with the golden file's weights: they bind with the file's config, a
 *    wrong ffn_dim fails naming the tensor, padding either seq_len leaves
 *    the real tokens unchanged, equal per-token timesteps match a scalar,
 *    skip-layer guidance changes the output, and a bad slg_layer is refused;
 *  - configs/ovi-720x720-5s.yaml gives the same fusion table, and the
 *    MMAudio VAE / BigVGAN tables of the released checkpoints' manifests,
 *    and 157 audio latents for its 121 frames at 24 fps. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "pipeline/model_config.h"
#include "pipeline/spec.h"
#include "stages/ovi_fusion.h"
#include "tests/manifest.h"
#include "tests/test.h"

static int ovi_table(const struct reel_json *config, struct manifest_list *got,
                     struct reel_err *err)
{
    struct reel_ovi_config cfg;
    int rc = reel_ovi_config_from_json(config, &cfg, err);
    if (rc == 0)
        reel_ovi_tensor_table(&cfg, manifest_list_add, got);
    return rc;
}

struct prefix_sum {
    int64_t video, audio, other;
};

static void sum_visit(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    struct prefix_sum *s = ctx;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    if (!strncmp(name, "video_model.", 12))
        s->video += n;
    else if (!strncmp(name, "audio_model.", 12))
        s->audio += n;
    else
        s->other += n;
}

static void test_prefix_totals(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/real/ovi_fusion_720x720_5s.json", manifest_golden_dir());
    size_t len = 0;
    char *text = reel_read_file(path, &len);
    char msg[128];
    struct reel_json *j = text ? reel_json_parse(text, len, msg, sizeof msg) : NULL;
    free(text);
    if (!CHECK(j != NULL, "Ovi manifest readable for per-tower totals", "%s", path))
        return;
    struct reel_ovi_config cfg;
    struct reel_err err = {0};
    struct prefix_sum s = {0, 0, 0};
    int rc = reel_ovi_config_from_json(reel_json_get(j, "config"), &cfg, &err);
    if (!rc)
        reel_ovi_tensor_table(&cfg, sum_visit, &s);
    const struct reel_json *pp = reel_json_get(j, "params_per_prefix");
    int64_t wv = reel_json_int(pp, "video_model", -1), wa = reel_json_int(pp, "audio_model", -1);
    CHECK(rc == 0 && s.video == wv && s.audio == wa && s.other == 0,
          "Ovi manifest: params per tower (video_model., audio_model.)",
          "rc %d: video %lld (want %lld), audio %lld (want %lld), other %lld", rc,
          (long long)s.video, (long long)wv, (long long)s.audio, (long long)wa,
          (long long)s.other);
    reel_json_free(j);
}

static void test_config_errors(void)
{
    static const struct {
        const char *json, *name, *needle;
    } cases[] = {
        {"{\"video\": {\"model_type\": \"ti2v\", \"dim\": 128, \"num_heads\": 2, \"num_layers\": 2},"
         " \"audio\": {\"model_type\": \"t2a\", \"patch_size\": [1], \"dim\": 64, \"num_heads\": 2,"
         " \"num_layers\": 2}}",
         "towers of different width refused", "differ"},
        {"{\"video\": {\"model_type\": \"ti2v\"}, \"audio\": {\"model_type\": \"t2v\"}}",
         "non-t2a audio tower refused", "t2a"},
        {"{\"video\": {\"model_type\": \"ti2v\"}, \"audio\": {\"model_type\": \"t2a\", "
         "\"patch_size\": [2]}}",
         "audio patch_size other than [1] refused", "patch_size"},
        {"{\"video\": {\"model_type\": \"ti2v\"}}", "missing audio tower refused", "audio"},
        {"{\"video\": {\"model_type\": \"ti2v\"}, \"audio\": {\"model_type\": \"t2a\", "
         "\"temporal_rope_scaling_factor\": -1}}",
         "negative rope scaling refused", "temporal_rope_scaling_factor"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[128];
        struct reel_json *j = reel_json_parse(cases[i].json, strlen(cases[i].json), msg,
                                              sizeof msg);
        struct reel_ovi_config cfg;
        struct reel_err err = {0};
        int rc = j ? reel_ovi_config_from_json(j, &cfg, &err) : -1;
        CHECK(rc == REEL_E_MODEL && strstr(err.msg, cases[i].needle), cases[i].name,
              "rc %d: %s", rc, j ? err.msg : msg);
        reel_json_free(j);
    }
}

/* ------------------------------------------------ golden-weight forwards */

struct golden {
    struct reel_st_file *f;
    struct reel_weights *w;
    struct reel_json *j;
    struct reel_ovi_config cfg;
    float *vid, *aud, *vctx, *actx;
    int64_t vd[4], ad[2], vcl, acl;
};

static float *load(struct reel_st_file *f, const char *name, int64_t *dims, int nd)
{
    const struct reel_tensor *t = reel_st_find(f, name);
    if (!t || t->dtype != REEL_F32)
        return NULL;
    int off = t->ndim - nd;
    if (off < 0)
        return NULL;
    for (int i = 0; i < nd; i++)
        dims[i] = t->shape[off + i];
    int64_t n = reel_tensor_numel(t);
    float *p = malloc(sizeof(float) * (size_t)n);
    if (p)
        memcpy(p, t->data, sizeof(float) * (size_t)n);
    return p;
}

static int golden_open(struct golden *g, struct reel_err *err)
{
    char path[512], msg[128];
    snprintf(path, sizeof path, "%s/ovi_fusion.safetensors", manifest_golden_dir());
    int rc = reel_st_open(path, &g->f, err);
    if (rc)
        return rc;
    const char *cfg_text = reel_st_meta(g->f, "config");
    g->j = cfg_text ? reel_json_parse(cfg_text, strlen(cfg_text), msg, sizeof msg) : NULL;
    if (!g->j)
        return reel_errf(err, REEL_E_MODEL, "golden config missing or invalid");
    if ((rc = reel_ovi_config_from_json(g->j, &g->cfg, err)) ||
        (rc = reel_weights_from_file(g->f, "weights.", &g->w, err)))
        return rc;
    int64_t c[2];
    g->vid = load(g->f, "in.vid", g->vd, 4);
    g->aud = load(g->f, "in.audio", g->ad, 2);
    g->vctx = load(g->f, "in.vid_context", c, 2);
    g->vcl = c[0];
    g->actx = load(g->f, "in.audio_context", c, 2);
    g->acl = c[0];
    if (!g->vid || !g->aud || !g->vctx || !g->actx)
        return reel_errf(err, REEL_E_MODEL, "golden inputs missing");
    return REEL_OK;
}

static void golden_close(struct golden *g)
{
    free(g->vid);
    free(g->aud);
    free(g->vctx);
    free(g->actx);
    reel_weights_close(g->w);
    reel_json_free(g->j);
    reel_st_close(g->f);
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = d; /* NaN propagates */
    }
    return m;
}

static void test_golden_forwards(struct reel_backend *be)
{
    struct golden g = {0};
    struct reel_err err = {0};
    struct reel_ovi_fusion *m = NULL;
    float *v0 = NULL, *a0 = NULL, *v1 = NULL, *a1 = NULL, *tv = NULL, *ta = NULL;
    int rc = golden_open(&g, &err);
    if (!CHECK(rc == 0, "golden Ovi file opens", "%s", err.msg))
        goto out;

    /* a wrong ffn_dim fails naming the first tensor it mis-sizes */
    struct reel_ovi_config bad = g.cfg;
    bad.video.ffn_dim *= 2;
    rc = reel_ovi_fusion_create(&bad, g.w, be, &m, &err);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "video_model.blocks.0.ffn.0.weight"),
          "golden Ovi weights with a wrong ffn_dim fail naming the tensor", "rc %d: %s", rc,
          err.msg);
    reel_ovi_fusion_destroy(m);
    m = NULL;
    memset(&err, 0, sizeof err);
    rc = reel_ovi_fusion_create(&g.cfg, g.w, be, &m, &err);
    if (!CHECK(rc == 0, "golden Ovi weights bind with their own config", "%s", err.msg))
        goto out;

    const int64_t nv = g.cfg.video.out_dim * g.vd[1] * g.vd[2] * g.vd[3];
    const int64_t na = g.cfg.audio.out_dim * g.ad[0];
    const int64_t ntv = (g.vd[1] / g.cfg.video.patch[0]) * (g.vd[2] / g.cfg.video.patch[1]) *
                        (g.vd[3] / g.cfg.video.patch[2]);
    v0 = malloc(sizeof(float) * (size_t)nv);
    v1 = malloc(sizeof(float) * (size_t)nv);
    a0 = malloc(sizeof(float) * (size_t)na);
    a1 = malloc(sizeof(float) * (size_t)na);
    tv = malloc(sizeof(float) * (size_t)(ntv + 7));
    ta = malloc(sizeof(float) * (size_t)(g.ad[0] + 5));
    if (!v0 || !v1 || !a0 || !a1 || !tv || !ta)
        goto out;
    float t = 700.0f;
    struct reel_ovi_input in = {
        .vid = g.vid, .frames = g.vd[1], .height = g.vd[2], .width = g.vd[3],
        .audio = g.aud, .audio_len = g.ad[0], .vid_t = &t, .audio_t = &t,
        .vid_context = g.vctx, .vid_context_len = g.vcl,
        .audio_context = g.actx, .audio_context_len = g.acl,
        .vid_seq_len = ntv, .audio_seq_len = g.ad[0],
    };
    rc = reel_ovi_fusion_forward(m, &in, v0, a0, &err);
    if (!CHECK(rc == 0, "golden Ovi forward runs", "%s", err.msg))
        goto out;
    const struct reel_tensor *ov = reel_st_find(g.f, "out.vid");
    const struct reel_tensor *oa = reel_st_find(g.f, "out.audio");
    double dv = ov && reel_tensor_numel(ov) == nv ? max_diff(v0, ov->data, nv) : 1;
    double da = oa && reel_tensor_numel(oa) == na ? max_diff(a0, oa->data, na) : 1;
    CHECK(dv <= 2e-5 && da <= 2e-5, "golden Ovi outputs within 2e-5", "vid %g audio %g", dv, da);

    /* padding both sequences: the real tokens do not change */
    struct reel_ovi_input pad = in;
    pad.vid_seq_len = ntv + 7;
    pad.audio_seq_len = g.ad[0] + 5;
    rc = reel_ovi_fusion_forward(m, &pad, v1, a1, &err);
    dv = rc ? 1 : max_diff(v0, v1, nv);
    da = rc ? 1 : max_diff(a0, a1, na);
    CHECK(rc == 0 && dv <= 1e-5 && da <= 1e-5, "seq_len padding leaves both towers unchanged",
          "rc %d %s: vid %g audio %g", rc, err.msg, dv, da);

    /* equal per-token timesteps == the scalar */
    for (int64_t i = 0; i < ntv + 7; i++)
        tv[i] = t;
    for (int64_t i = 0; i < g.ad[0] + 5; i++)
        ta[i] = t;
    pad.vid_t = tv;
    pad.audio_t = ta;
    pad.vid_t_per_token = pad.audio_t_per_token = 1;
    rc = reel_ovi_fusion_forward(m, &pad, v1, a1, &err);
    dv = rc ? 1 : max_diff(v0, v1, nv);
    da = rc ? 1 : max_diff(a0, a1, na);
    CHECK(rc == 0 && dv <= 1e-5 && da <= 1e-5, "equal per-token timesteps match the scalar",
          "rc %d %s: vid %g audio %g", rc, err.msg, dv, da);

    /* skip-layer guidance skips a block: the output moves */
    struct reel_ovi_input slg = in;
    slg.slg_layer = 1;
    rc = reel_ovi_fusion_forward(m, &slg, v1, a1, &err);
    CHECK(rc == 0 && max_diff(v0, v1, nv) > 1e-4 && max_diff(a0, a1, na) > 1e-4,
          "slg_layer 1 changes both towers", "rc %d %s", rc, err.msg);
    memset(&err, 0, sizeof err);
    slg.slg_layer = g.cfg.video.num_layers;
    rc = reel_ovi_fusion_forward(m, &slg, v1, a1, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "slg_layer"), "slg_layer past the blocks refused",
          "rc %d: %s", rc, err.msg);
    memset(&err, 0, sizeof err);
    struct reel_ovi_input shortl = in;
    shortl.audio_seq_len = g.ad[0] - 1;
    rc = reel_ovi_fusion_forward(m, &shortl, v1, a1, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "seq_len"), "audio seq_len below its tokens refused",
          "rc %d: %s", rc, err.msg);

out:
    free(v0);
    free(v1);
    free(a0);
    free(a1);
    free(tv);
    free(ta);
    reel_ovi_fusion_destroy(m);
    golden_close(&g);
}

/* ------------------------------------------ the shipped Ovi model config */

static struct reel_model_config ovi_model;

/* The tables from the model config (the manifest's own config is ignored:
 * the point is that the YAML gives the same networks). */
static int cfg_fusion_table(const struct reel_json *config, struct manifest_list *got,
                            struct reel_err *err)
{
    (void)config;
    (void)err;
    struct reel_ovi_config oc;
    reel_model_config_ovi(&ovi_model, &oc);
    reel_ovi_tensor_table(&oc, manifest_list_add, got);
    return 0;
}

static int cfg_audio_vae_table(const struct reel_json *config, struct manifest_list *got,
                               struct reel_err *err)
{
    (void)config;
    (void)err;
    reel_mmaudio_vae_tensor_table(&ovi_model.audio.vae.cfg, manifest_list_add, got);
    return 0;
}

static int cfg_vocoder_table(const struct reel_json *config, struct manifest_list *got,
                             struct reel_err *err)
{
    (void)config;
    (void)err;
    reel_bigvgan_tensor_table(&ovi_model.audio.vocoder.cfg, REEL_BIGVGAN_PLAIN, manifest_list_add,
                              got);
    return 0;
}

static void test_model_config(void)
{
    char dir[4096], path[4200];
    struct reel_err err = {0};
    if (!CHECK(reel_model_configs_dir(dir, sizeof dir, &err) == 0, "configs directory found", "%s",
               err.msg))
        return;
    snprintf(path, sizeof path, "%s/ovi-720x720-5s.yaml", dir);
    struct reel_diag d = {0};
    int rc = reel_model_config_load(path, NULL, &ovi_model, &d);
    CHECK(rc == 0 && ovi_model.audio.enabled && ovi_model.family == REEL_FAMILY_OVI,
          "configs/ovi-720x720-5s.yaml loads as a joint-audio model", "rc %d: %s", rc,
          d.count ? d.items[0].text : "");
    reel_diag_free(&d);
    if (rc)
        return;
    manifest_check("ovi_fusion_720x720_5s.json", cfg_fusion_table, "total_params");
    manifest_check("mmaudio_vae16k.json", cfg_audio_vae_table, "total_state_dict_elements");
    manifest_check("bigvgan16k.json", cfg_vocoder_table, "total_state_dict_elements");
    const struct reel_model_config *m = &ovi_model;
    int64_t n = reel_model_audio_latents(m, m->defaults.frames / m->defaults.fps);
    CHECK(m->defaults.frames == 121 && m->defaults.fps == 24 && n == 157 &&
              m->audio.latents_per_second == 31.25 && m->audio.sample_rate == 16000,
          "ovi-720x720-5s: 121 frames at 24 fps, 157 audio latents (31.25 per second)",
          "%d frames, %g fps, %lld latents, %g per second", m->defaults.frames, m->defaults.fps,
          (long long)n, m->audio.latents_per_second);
    CHECK(reel_model_audio_latents(m, 5.0) == 156 && reel_model_audio_latents(m, 10.0) == 312,
          "audio latents follow seconds, not frame counts", "%lld, %lld",
          (long long)reel_model_audio_latents(m, 5.0), (long long)reel_model_audio_latents(m, 10.0));
    reel_model_config_free(&ovi_model);
}

int main(void)
{
    manifest_check("ovi_fusion_720x720_5s.json", ovi_table, "total_params");
    test_prefix_totals();
    test_config_errors();
    test_model_config();
    struct reel_backend *be = reel_backend_cpu_create(2);
    if (CHECK(be != NULL, "cpu backend", "cannot create"))
        test_golden_forwards(be);
    reel_backend_destroy(be);
    TEST_EXIT();
}
