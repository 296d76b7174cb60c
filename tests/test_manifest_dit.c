/* Tests for stages/wan_dit.c without the real checkpoints:
 *  - the tensor table equals, name for name and shape for shape, the
 *    manifests of the released Wan2.1 T2V-1.3B / T2V-14B and Wan2.2 TI2V-5B
 *    checkpoints (shared/golden/real), and sums to their parameter counts;
 *  - the loader rejects a weight set with a missing or mis-shaped tensor,
 *    or a Wan2.1 I2V CLIP branch, naming the tensor;
 *  - config errors (window attention, flf2v, bad types) are refused;
 *  - on a tiny random model written at run time: BF16 weights give the
 *    same output as the same values in F32, padding seq_len beyond the token
 *    count leaves the real tokens unchanged, and per-token timesteps that
 *    are all equal match a scalar timestep. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/wan_dit.h"
#include "tests/manifest.h"
#include "tests/test.h"

static char tmpdir[256];

static const char *golden_dir(void)
{
    return manifest_golden_dir();
}

static int dit_table(const struct reel_json *config, struct manifest_list *got,
                     struct reel_err *err)
{
    struct reel_wan_dit_config cfg;
    int rc = reel_wan_dit_config_from_json(config, &cfg, err);
    if (rc == 0)
        reel_wan_dit_tensor_table(&cfg, manifest_list_add, got);
    return rc;
}

/* ------------------------------------------------------ tiny model files */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / (double)(1ull << 23) - 1.0);
}

enum tweak { TW_NONE, TW_MISSING, TW_SHAPE, TW_EXTRA_IMG };

/* Writes the model's tensors (values from a fixed seed, rounded to bf16 so
 * F32 and BF16 files hold the same numbers) as one safetensors file. */
static int write_model(const char *path, const struct reel_wan_dit_config *cfg,
                       enum reel_dtype dt, enum tweak tw, const char *victim)
{
    struct manifest_list l = {0};
    reel_wan_dit_tensor_table(cfg, manifest_list_add, &l);
    if (tw == TW_EXTRA_IMG) {
        int64_t s[2] = {cfg->dim, 1280};
        manifest_list_add(&l, "img_emb.proj.0.weight", 2, s);
    }
    size_t esz = dt == REEL_F32 ? 4 : 2;
    size_t hcap = 256 + (size_t)l.n * 160, hlen = 0, off = 0;
    char *h = malloc(hcap);
    hlen += (size_t)snprintf(h + hlen, hcap - hlen, "{");
    int64_t *numel = calloc((size_t)l.n, sizeof *numel);
    int first = 1;
    for (int i = 0; i < l.n; i++) {
        struct manifest_entry *e = &l.e[i];
        if (tw == TW_MISSING && !strcmp(e->name, victim))
            continue;
        if (tw == TW_SHAPE && !strcmp(e->name, victim))
            e->shape[0] += 1;
        numel[i] = 1;
        for (int d = 0; d < e->ndim; d++)
            numel[i] *= e->shape[d];
        hlen += (size_t)snprintf(h + hlen, hcap - hlen, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                 first ? "" : ",", e->name, reel_dtype_name(dt));
        first = 0;
        for (int d = 0; d < e->ndim; d++)
            hlen += (size_t)snprintf(h + hlen, hcap - hlen, "%s%lld", d ? "," : "",
                                     (long long)e->shape[d]);
        hlen += (size_t)snprintf(h + hlen, hcap - hlen, "],\"data_offsets\":[%zu,%zu]}", off,
                                 off + (size_t)numel[i] * esz);
        off += (size_t)numel[i] * esz;
    }
    hlen += (size_t)snprintf(h + hlen, hcap - hlen, "}");
    while (hlen % 8)
        h[hlen++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(h);
        free(numel);
        free(l.e);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(h, 1, hlen, f);
    rng = 12345;
    for (int i = 0; i < l.n; i++) {
        for (int64_t k = 0; k < numel[i]; k++) {
            /* modulation and norm gammas near their real scale; the rest small */
            float v = 0.2f * frand();
            if (strstr(l.e[i].name, "norm"))
                v += 1.0f;
            uint16_t b16 = reel_f32_to_bf16(v);
            if (dt == REEL_F32) {
                float fv = reel_bf16_to_f32(b16);
                fwrite(&fv, 4, 1, f);
            } else {
                fwrite(&b16, 2, 1, f);
            }
        }
    }
    fclose(f);
    free(h);
    free(numel);
    free(l.e);
    return 0;
}

static struct reel_wan_dit_config tiny_config(void)
{
    struct reel_wan_dit_config c = {
        .model_type = REEL_WAN_TI2V, .patch = {1, 2, 2}, .text_len = 6, .in_dim = 4, .dim = 24,
        .ffn_dim = 32, .freq_dim = 16, .text_dim = 8, .out_dim = 4, .num_heads = 2,
        .num_layers = 2, .qk_norm = 1, .cross_attn_norm = 1, .eps = 1e-6,
    };
    return c;
}

/* Opens a weight file and tries to build the model; returns create's code. */
static int try_create(const char *path, const struct reel_wan_dit_config *cfg,
                      struct reel_backend *be, struct reel_err *err)
{
    struct reel_weights *w = NULL;
    struct reel_wan_dit *m = NULL;
    int rc = reel_weights_open(path, &w, err);
    if (!rc)
        rc = reel_wan_dit_create(cfg, w, be, &m, err);
    reel_wan_dit_destroy(m);
    reel_weights_close(w);
    return rc;
}

static void test_loader_errors(struct reel_backend *be)
{
    struct reel_wan_dit_config cfg = tiny_config();
    char path[512];
    struct reel_err err = {0};

    snprintf(path, sizeof path, "%s/missing.safetensors", tmpdir);
    const char *victim = "blocks.1.cross_attn.norm_k.weight";
    write_model(path, &cfg, REEL_F32, TW_MISSING, victim);
    int rc = try_create(path, &cfg, be, &err);
    CHECK(rc != 0 && strstr(err.msg, victim), "create fails naming a missing tensor", "rc %d: %s",
          rc, err.msg);

    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "%s/shape.safetensors", tmpdir);
    victim = "blocks.0.ffn.0.weight";
    write_model(path, &cfg, REEL_F32, TW_SHAPE, victim);
    rc = try_create(path, &cfg, be, &err);
    CHECK(rc != 0 && strstr(err.msg, victim), "create fails naming a mis-shaped tensor",
          "rc %d: %s", rc, err.msg);

    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "%s/img.safetensors", tmpdir);
    write_model(path, &cfg, REEL_F32, TW_EXTRA_IMG, NULL);
    rc = try_create(path, &cfg, be, &err);
    CHECK(rc != 0 && strstr(err.msg, "img_emb"), "create refuses the Wan2.1 I2V CLIP branch",
          "rc %d: %s", rc, err.msg);

    /* the golden file's weights with a wrong ffn_dim */
    memset(&err, 0, sizeof err);
    snprintf(path, sizeof path, "%s/wan21_dit_t2v.safetensors", golden_dir());
    struct reel_st_file *f = NULL;
    struct reel_weights *w = NULL;
    struct reel_wan_dit *m = NULL;
    rc = reel_st_open(path, &f, &err);
    if (CHECK(rc == 0, "golden DiT file opens", "%s", err.msg)) {
        const char *cfg_text = reel_st_meta(f, "config");
        char msg[128];
        struct reel_json *j = cfg_text ? reel_json_parse(cfg_text, strlen(cfg_text), msg,
                                                         sizeof msg)
                                       : NULL;
        struct reel_wan_dit_config gc;
        rc = reel_wan_dit_config_from_json(j, &gc, &err);
        if (CHECK(rc == 0 && j, "golden DiT config parses", "%s", err.msg)) {
            rc = reel_weights_from_file(f, "weights.", &w, &err);
            if (!rc)
                rc = reel_wan_dit_create(&gc, w, be, &m, &err);
            CHECK(rc == 0, "golden DiT weights bind with their own config", "%s", err.msg);
            reel_wan_dit_destroy(m);
            m = NULL;
            memset(&err, 0, sizeof err);
            gc.ffn_dim *= 2;
            rc = reel_wan_dit_create(&gc, w, be, &m, &err);
            CHECK(rc == REEL_E_MODEL && strstr(err.msg, "blocks.0.ffn.0.weight"),
                  "golden DiT weights with a wrong ffn_dim fail naming the tensor", "rc %d: %s",
                  rc, err.msg);
            reel_wan_dit_destroy(m);
        }
        reel_json_free(j);
    }
    reel_weights_close(w);
    reel_st_close(f);
}

static void test_config_errors(void)
{
    static const struct {
        const char *json, *name, *needle;
    } cases[] = {
        {"{\"window_size\": [4, 4]}", "window attention refused", "window_size"},
        {"{\"model_type\": \"flf2v\"}", "flf2v refused", "flf2v"},
        {"{\"model_type\": \"s2v\"}", "s2v refused", "s2v"},
        {"{\"dim\": 100, \"num_heads\": 3}", "dim not divisible by heads refused", "heads"},
        {"{\"dim\": \"big\"}", "non-integer dim refused", "dim"},
        {"{\"qk_norm\": 1}", "non-bool qk_norm refused", "qk_norm"},
        {"{\"patch_size\": [1, 2]}", "short patch_size refused", "patch_size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[128];
        struct reel_json *j = reel_json_parse(cases[i].json, strlen(cases[i].json), msg,
                                              sizeof msg);
        struct reel_wan_dit_config cfg;
        struct reel_err err = {0};
        int rc = reel_wan_dit_config_from_json(j, &cfg, &err);
        CHECK(rc == REEL_E_MODEL && strstr(err.msg, cases[i].needle), cases[i].name,
              "rc %d: %s", rc, err.msg);
        reel_json_free(j);
    }
    struct reel_wan_dit_config cfg;
    struct reel_err err = {0};
    int rc = reel_wan_dit_config_from_json(NULL, &cfg, &err);
    CHECK(rc == 0 && cfg.dim == 2048 && cfg.num_layers == 32 && cfg.text_len == 512 &&
              cfg.patch[2] == 2 && cfg.eps == 1e-6 && cfg.model_type == REEL_WAN_T2V,
          "missing keys take WanModel's defaults", "rc %d dim %d", rc, cfg.dim);
}

/* ------------------------------------------------------ forward checks */

struct fwd {
    float x[4 * 2 * 4 * 6];
    float ctx[3 * 8];
    float t[64];
};

static int run(struct reel_wan_dit *m, const struct fwd *d, int64_t seq_len, int per_token,
               float *out, struct reel_err *err)
{
    struct reel_wan_dit_input in = {
        .x = d->x, .frames = 2, .height = 4, .width = 6, .t = d->t, .t_per_token = per_token,
        .context = d->ctx, .context_len = 3, .seq_len = seq_len,
    };
    return reel_wan_dit_forward(m, &in, out, err);
}

static double max_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = d; /* NaN propagates */
    }
    return m;
}

static void test_forward(struct reel_backend *be)
{
    struct reel_wan_dit_config cfg = tiny_config();
    char p32[512], p16[512];
    snprintf(p32, sizeof p32, "%s/tiny_f32.safetensors", tmpdir);
    snprintf(p16, sizeof p16, "%s/tiny_bf16.safetensors", tmpdir);
    write_model(p32, &cfg, REEL_F32, TW_NONE, NULL);
    write_model(p16, &cfg, REEL_BF16, TW_NONE, NULL);

    struct reel_err err = {0};
    struct reel_weights *w32 = NULL, *w16 = NULL;
    struct reel_wan_dit *m32 = NULL, *m16 = NULL;
    int rc = reel_weights_open(p32, &w32, &err);
    if (!rc)
        rc = reel_wan_dit_create(&cfg, w32, be, &m32, &err);
    if (!rc)
        rc = reel_weights_open(p16, &w16, &err);
    if (!rc)
        rc = reel_wan_dit_create(&cfg, w16, be, &m16, &err);
    if (!CHECK(rc == 0, "tiny model loads (F32 and BF16)", "%s", err.msg))
        goto out;

    static struct fwd d;
    rng = 777;
    for (size_t i = 0; i < sizeof d.x / sizeof d.x[0]; i++)
        d.x[i] = frand();
    for (size_t i = 0; i < sizeof d.ctx / sizeof d.ctx[0]; i++)
        d.ctx[i] = frand();
    const int ntok = 2 * 2 * 3, nout = 4 * 2 * 4 * 6;
    float a[4 * 2 * 4 * 6], b[4 * 2 * 4 * 6], c[4 * 2 * 4 * 6];

    /* BF16 storage == F32 storage of the same values */
    d.t[0] = 500;
    rc = run(m32, &d, ntok, 0, a, &err);
    if (!rc)
        rc = run(m16, &d, ntok, 0, b, &err);
    double diff = rc ? 1 : max_diff(a, b, nout), mag = 0;
    for (int i = 0; i < nout; i++)
        mag = fmax(mag, fabs(a[i]));
    CHECK(rc == 0 && diff <= 1e-5 && mag > 1e-3, "BF16 weights match the same values in F32",
          "rc %d %s max diff %g (max |out| %g)", rc, err.msg, diff, mag);

    /* padding seq_len past the tokens: real tokens unchanged */
    rc = run(m32, &d, ntok + 5, 0, b, &err);
    diff = rc ? 1 : max_diff(a, b, nout);
    CHECK(rc == 0 && diff <= 1e-5, "seq_len padding leaves the output unchanged",
          "rc %d %s max diff %g", rc, err.msg, diff);

    /* per-token t all equal == scalar t */
    for (int i = 0; i < ntok + 5; i++)
        d.t[i] = 500;
    rc = run(m32, &d, ntok + 5, 1, b, &err);
    diff = rc ? 1 : max_diff(a, b, nout);
    CHECK(rc == 0 && diff <= 1e-5, "equal per-token timesteps match a scalar timestep",
          "rc %d %s max diff %g", rc, err.msg, diff);

    /* ti2v-style t (frame 0 at t=0): differs from the scalar case only
     * through the modulation, and is padding-invariant too */
    for (int i = 0; i < ntok + 5; i++)
        d.t[i] = i < 6 ? 0.0f : 700.0f;
    rc = run(m32, &d, ntok, 1, b, &err);
    if (!rc)
        rc = run(m32, &d, ntok + 5, 1, c, &err);
    diff = rc ? 1 : max_diff(b, c, nout);
    CHECK(rc == 0 && diff <= 1e-5 && max_diff(a, b, nout) > 1e-4,
          "per-token timesteps: padded and unpadded agree", "rc %d %s max diff %g", rc, err.msg,
          diff);

    /* bad inputs */
    memset(&err, 0, sizeof err);
    struct reel_wan_dit_input in = {
        .x = d.x, .frames = 2, .height = 3, .width = 8, .t = d.t, .context = d.ctx,
        .context_len = 3, .seq_len = 100,
    };
    rc = reel_wan_dit_forward(m32, &in, c, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "patch"), "odd latent size refused", "rc %d: %s",
          rc, err.msg);
    memset(&err, 0, sizeof err);
    in.height = 4;
    in.width = 6;
    in.seq_len = ntok;
    in.context_len = 7;
    rc = reel_wan_dit_forward(m32, &in, c, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "text_len"), "context longer than text_len refused",
          "rc %d: %s", rc, err.msg);
    memset(&err, 0, sizeof err);
    in.context_len = 3;
    in.seq_len = ntok - 1;
    rc = reel_wan_dit_forward(m32, &in, c, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "seq_len"), "seq_len below the token count refused",
          "rc %d: %s", rc, err.msg);

out:
    reel_wan_dit_destroy(m32);
    reel_wan_dit_destroy(m16);
    reel_weights_close(w32);
    reel_weights_close(w16);
}

static void cleanup_tmp(void)
{
    static const char *names[] = {"missing", "shape", "img", "tiny_f32", "tiny_bf16"};
    char path[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(void)
{
    manifest_check("wan21_t2v_1.3b.json", dit_table, "total_params");
    manifest_check("wan21_t2v_14b.json", dit_table, "total_params");
    manifest_check("wan22_ti2v_5b.json", dit_table, "total_params");
    test_config_errors();

    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/reel_dit_XXXXXX", t && *t ? t : "/tmp");
    if (!CHECK(mkdtemp(tmpdir) != NULL, "temp dir", "mkdtemp failed"))
        TEST_EXIT();
    struct reel_backend *be = reel_backend_cpu_create(2);
    if (CHECK(be != NULL, "cpu backend", "cannot create")) {
        test_loader_errors(be);
        test_forward(be);
    }
    reel_backend_destroy(be);
    cleanup_tmp();
    TEST_EXIT();
}
