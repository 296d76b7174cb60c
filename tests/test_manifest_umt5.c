/* Tests for the umT5 weight tables (stages/umt5.c) without the real
 * checkpoint:
 *  - the Wan-layout table for umT5-XXL equals shared/golden/real/
 *    umt5_xxl_encoder.json (names, shapes, state_dict order, total params),
 *    and reel_umt5_config_xxl is that manifest's config;
 *  - the golden file's weights renamed to the Hugging Face T5 layout (with
 *    the test's own renaming, not the loader's table) load, infer the same
 *    config, and give the same hidden states as the Wan layout; also with
 *    the embedding under encoder.embed_tokens.weight;
 *  - a T5 (not umT5) file with one shared position table, in either layout,
 *    equals the per-layer model whose every table is that one;
 *  - BF16 weights give the output of the same values stored as F32. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/umt5.h"
#include "tests/manifest.h"
#include "tests/test.h"

static char tmpdir[256];

static int xxl_table(const struct reel_json *config, struct manifest_list *got,
                     struct reel_err *err)
{
    struct reel_umt5_config cfg;
    int rc = reel_umt5_config_from_json(config, &cfg, err);
    if (rc == 0)
        reel_umt5_tensor_table(&cfg, REEL_UMT5_WAN, manifest_list_add, got);
    return rc;
}

static void check_xxl_config(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/real/umt5_xxl_encoder.json", manifest_golden_dir());
    size_t len = 0;
    char *text = reel_read_file(path, &len);
    char msg[256];
    struct reel_json *j = text ? reel_json_parse(text, len, msg, sizeof msg) : NULL;
    free(text);
    struct reel_umt5_config a, b;
    struct reel_err err = {0};
    reel_umt5_config_xxl(&b);
    int ok = j && reel_umt5_config_from_json(reel_json_get(j, "config"), &a, &err) == 0 &&
             !memcmp(&a, &b, sizeof a);
    CHECK(ok, "reel_umt5_config_xxl is the manifest's config", "%s", err.msg);
    reel_json_free(j);
}

/* ------------------------------------------------------------ renaming */

/* The golden file's Wan names in the Hugging Face T5 layout; written out
 * here by hand so the loader's own table is not checked against itself. */
static int hf_name(const char *wan, char *out, size_t n, int embed_tokens)
{
    const char *fixed = NULL;
    if (!strcmp(wan, "token_embedding.weight"))
        fixed = embed_tokens ? "encoder.embed_tokens.weight" : "shared.weight";
    else if (!strcmp(wan, "norm.weight"))
        fixed = "encoder.final_layer_norm.weight";
    else if (!strcmp(wan, "pos_embedding.embedding.weight"))
        fixed = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
    if (fixed) {
        snprintf(out, n, "%s", fixed);
        return 1;
    }
    int blk;
    char rest[96];
    if (sscanf(wan, "blocks.%d.%95s", &blk, rest) != 2)
        return 0;
    static const char *const map[][2] = {
        {"norm1.weight", "layer.0.layer_norm.weight"},
        {"attn.q.weight", "layer.0.SelfAttention.q.weight"},
        {"attn.k.weight", "layer.0.SelfAttention.k.weight"},
        {"attn.v.weight", "layer.0.SelfAttention.v.weight"},
        {"attn.o.weight", "layer.0.SelfAttention.o.weight"},
        {"norm2.weight", "layer.1.layer_norm.weight"},
        {"ffn.gate.0.weight", "layer.1.DenseReluDense.wi_0.weight"},
        {"ffn.fc1.weight", "layer.1.DenseReluDense.wi_1.weight"},
        {"ffn.fc2.weight", "layer.1.DenseReluDense.wo.weight"},
        {"pos_embedding.embedding.weight", "layer.0.SelfAttention.relative_attention_bias.weight"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(rest, map[i][0])) {
            snprintf(out, n, "encoder.block.%d.%s", blk, map[i][1]);
            return 1;
        }
    return 0;
}

enum layout_kind { K_WAN, K_HF, K_HF_EMBED_TOKENS };
enum pos_kind { POS_PER_LAYER, POS_SHARED };

/* Writes the golden weights to path in a layout, dtype and position-table
 * arrangement. POS_SHARED keeps only block 0's table (Wan: at the top level
 * as pos_embedding.embedding.weight; HF: in block 0, as T5 v1.1 does). With
 * bf16, F32 values are rounded to bf16 first (and written as F32 again when
 * dt is F32 and round_bf16 is set), so two files can hold the same numbers. */
static int write_variant(const char *path, const struct reel_st_file *g, enum layout_kind k,
                         enum pos_kind pk, enum reel_dtype dt, int round_bf16)
{
    struct reel_tensor *ts = calloc((size_t)g->count, sizeof *ts);
    char(*names)[128] = calloc((size_t)g->count, sizeof *names);
    void **bufs = calloc((size_t)g->count, sizeof *bufs);
    int n = 0, rc = -1;
    if (!ts || !names || !bufs)
        goto done;
    for (int i = 0; i < g->count; i++) {
        const struct reel_tensor *t = &g->tensors[i];
        if (strncmp(t->name, "weights.", 8))
            continue;
        const char *wan = t->name + 8;
        int blk;
        char wname[128];
        snprintf(wname, sizeof wname, "%s", wan);
        if (pk == POS_SHARED && strstr(wan, ".pos_embedding.") &&
            sscanf(wan, "blocks.%d.", &blk) == 1) {
            if (blk != 0)
                continue;
            snprintf(wname, sizeof wname, "pos_embedding.embedding.weight");
        }
        if (k == K_WAN)
            snprintf(names[n], sizeof names[n], "%s", wname);
        else if (!hf_name(wname, names[n], sizeof names[n], k == K_HF_EMBED_TOKENS))
            goto done;
        int64_t cnt = reel_tensor_numel(t);
        float *f = malloc(sizeof(float) * (size_t)cnt);
        if (!f)
            goto done;
        reel_tensor_to_f32(t, 0, cnt, f);
        if (dt == REEL_BF16 || round_bf16)
            for (int64_t e = 0; e < cnt; e++)
                f[e] = reel_bf16_to_f32(reel_f32_to_bf16(f[e]));
        if (dt == REEL_BF16) {
            uint16_t *h = malloc(sizeof(uint16_t) * (size_t)cnt);
            if (!h) {
                free(f);
                goto done;
            }
            for (int64_t e = 0; e < cnt; e++)
                h[e] = reel_f32_to_bf16(f[e]);
            free(f);
            bufs[n] = h;
        } else {
            bufs[n] = f;
        }
        ts[n] = *t;
        ts[n].dtype = dt;
        ts[n].name = names[n];
        ts[n].data = bufs[n];
        n++;
    }
    struct reel_err err = {0};
    rc = reel_st_write(path, ts, n, NULL, 0, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
done:
    for (int i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(names);
    free(ts);
    return rc;
}

/* ------------------------------------------------------------- running */

struct golden {
    struct reel_st_file *f;
    struct reel_umt5_config cfg;
    int32_t ids[64];
    uint8_t mask[64];
    int64_t L;
};

static int open_golden(struct golden *g)
{
    char path[512], msg[256];
    struct reel_err err = {0};
    snprintf(path, sizeof path, "%s/umt5_encoder.safetensors", manifest_golden_dir());
    if (reel_st_open(path, &g->f, &err))
        return -1;
    const char *c = reel_st_meta(g->f, "config");
    struct reel_json *j = c ? reel_json_parse(c, strlen(c), msg, sizeof msg) : NULL;
    int rc = j ? reel_umt5_config_from_json(j, &g->cfg, &err) : -1;
    reel_json_free(j);
    const struct reel_tensor *ti = reel_st_find(g->f, "in.ids");
    const struct reel_tensor *tm = reel_st_find(g->f, "in.mask");
    if (rc || !ti || !tm || reel_tensor_numel(ti) > 64)
        return -1;
    g->L = reel_tensor_numel(ti);
    for (int64_t i = 0; i < g->L; i++) {
        int64_t a, b;
        memcpy(&a, (const char *)ti->data + 8 * i, 8);
        memcpy(&b, (const char *)tm->data + 8 * i, 8);
        g->ids[i] = (int32_t)a;
        g->mask[i] = b != 0;
    }
    return 0;
}

/* Loads a weight set (config inferred from it unless cfg is given), runs
 * the golden ids; returns a malloc'd [L, dim] or NULL (err filled). */
static float *run(const struct reel_weights *w, const struct reel_umt5_config *cfg_in,
                  const struct golden *g, struct reel_backend *be, struct reel_umt5_config *cfg_out,
                  enum reel_umt5_layout *layout, struct reel_err *err)
{
    struct reel_umt5_config cfg;
    struct reel_umt5 *m = NULL;
    if (cfg_in)
        cfg = *cfg_in;
    else if (reel_umt5_config_from_weights(w, &cfg, err))
        return NULL;
    if (cfg_out)
        *cfg_out = cfg;
    if (reel_umt5_create(&cfg, w, be, &m, err))
        return NULL;
    if (layout)
        *layout = reel_umt5_get_layout(m);
    float *out = malloc(sizeof(float) * (size_t)(g->L * cfg.dim));
    struct reel_umt5_input in = {.ids = g->ids, .len = g->L, .mask = g->mask};
    if (out && reel_umt5_forward(m, &in, out, err)) {
        free(out);
        out = NULL;
    }
    reel_umt5_destroy(m);
    return out;
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d))
            d = e;
    }
    return d;
}

/* Writes a variant, runs it, compares with ref; checks the inferred config
 * against want (when given) and the detected layout. */
static void check_variant(const char *label, const struct golden *g, struct reel_backend *be,
                          enum layout_kind k, enum pos_kind pk, enum reel_dtype dt, int round,
                          const float *ref, double tol, const struct reel_umt5_config *want)
{
    char path[512], name[256];
    snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, label);
    struct reel_err err = {0};
    struct reel_weights *w = NULL;
    float *out = NULL;
    struct reel_umt5_config cfg;
    enum reel_umt5_layout layout = REEL_UMT5_WAN;
    int ok = write_variant(path, g->f, k, pk, dt, round) == 0 &&
             reel_weights_open(path, &w, &err) == 0 &&
             (out = run(w, NULL, g, be, &cfg, &layout, &err)) != NULL;
    snprintf(name, sizeof name, "%s: loads and runs", label);
    if (CHECK(ok, name, "%s", err.msg)) {
        snprintf(name, sizeof name, "%s: layout detected", label);
        CHECK((layout == REEL_UMT5_WAN) == (k == K_WAN), name, "got %d", (int)layout);
        if (want) {
            snprintf(name, sizeof name, "%s: config inferred from the shapes", label);
            CHECK(!memcmp(&cfg, want, sizeof cfg), name,
                  "vocab %d dim %d attn %d ffn %d heads %d layers %d buckets %d shared %d",
                  cfg.vocab, cfg.dim, cfg.dim_attn, cfg.dim_ffn, cfg.num_heads, cfg.num_layers,
                  cfg.num_buckets, cfg.shared_pos);
        }
        double d = max_diff(out, ref, g->L * g->cfg.dim);
        snprintf(name, sizeof name, "%s: same hidden states", label);
        CHECK(d <= tol, name, "max abs diff %.3g > %.3g", d, tol);
    }
    free(out);
    reel_weights_close(w);
    unlink(path);
}

int main(void)
{
    manifest_check("umt5_xxl_encoder.json", xxl_table, "total_params");
    check_xxl_config();

    snprintf(tmpdir, sizeof tmpdir, "/tmp/reel_umt5_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "temp dir", "mkdtemp failed");
        TEST_EXIT();
    }
    struct golden g = {0};
    struct reel_backend *be = reel_backend_cpu_create(2);
    if (!CHECK(open_golden(&g) == 0 && be, "golden umt5_encoder opens", "cannot read it")) {
        reel_st_close(g.f);
        reel_backend_destroy(be);
        rmdir(tmpdir);
        TEST_EXIT();
    }

    /* the reference: the golden file's own (Wan) weights */
    struct reel_err err = {0};
    struct reel_weights *gw = NULL;
    float *ref = NULL;
    struct reel_umt5_config inferred;
    if (reel_weights_from_file(g.f, "weights.", &gw, &err) == 0)
        ref = run(gw, NULL, &g, be, &inferred, NULL, &err);
    if (CHECK(ref != NULL, "Wan layout: config inferred and runs", "%s", err.msg)) {
        CHECK(!memcmp(&inferred, &g.cfg, sizeof inferred),
              "Wan layout: inferred config equals the file's config", "differs");

        check_variant("hf", &g, be, K_HF, POS_PER_LAYER, REEL_F32, 0, ref, 0, &g.cfg);
        check_variant("hf_embed_tokens", &g, be, K_HF_EMBED_TOKENS, POS_PER_LAYER, REEL_F32, 0,
                      ref, 0, &g.cfg);

        /* one shared table = every layer using block 0's table */
        struct reel_umt5_config shared = g.cfg;
        shared.shared_pos = 1;
        char path[512];
        snprintf(path, sizeof path, "%s/same_tables.safetensors", tmpdir);
        struct reel_weights *sw = NULL;
        float *same = NULL;
        /* the per-layer model with every block's table replaced by block 0's */
        {
            struct reel_tensor ts[64];
            int n = 0;
            const struct reel_tensor *p0 =
                reel_st_find(g.f, "weights.blocks.0.pos_embedding.embedding.weight");
            for (int i = 0; i < g.f->count && n < 64; i++) {
                const struct reel_tensor *t = &g.f->tensors[i];
                if (strncmp(t->name, "weights.", 8))
                    continue;
                ts[n] = *t;
                ts[n].name = t->name + 8;
                if (strstr(t->name, ".pos_embedding.") && p0)
                    ts[n].data = p0->data;
                n++;
            }
            if (reel_st_write(path, ts, n, NULL, 0, &err) == 0 &&
                reel_weights_open(path, &sw, &err) == 0)
                same = run(sw, NULL, &g, be, NULL, NULL, &err);
        }
        if (CHECK(same != NULL, "per-layer model with equal tables runs", "%s", err.msg)) {
            check_variant("wan_shared_pos", &g, be, K_WAN, POS_SHARED, REEL_F32, 0, same, 0,
                          &shared);
            check_variant("hf_shared_pos", &g, be, K_HF, POS_SHARED, REEL_F32, 0, same, 0,
                          &shared);
        }
        free(same);
        reel_weights_close(sw);
        unlink(path);

        /* bf16 in place: the F32 file of the same rounded values is the reference */
        float *rounded = NULL;
        struct reel_weights *rw = NULL;
        snprintf(path, sizeof path, "%s/rounded.safetensors", tmpdir);
        if (write_variant(path, g.f, K_WAN, POS_PER_LAYER, REEL_F32, 1) == 0 &&
            reel_weights_open(path, &rw, &err) == 0)
            rounded = run(rw, NULL, &g, be, NULL, NULL, &err);
        if (CHECK(rounded != NULL, "bf16-rounded F32 weights run", "%s", err.msg)) {
            check_variant("wan_bf16", &g, be, K_WAN, POS_PER_LAYER, REEL_BF16, 0, rounded, 1e-5,
                          NULL);
            check_variant("hf_bf16", &g, be, K_HF, POS_PER_LAYER, REEL_BF16, 0, rounded, 1e-5,
                          NULL);
        }
        free(rounded);
        reel_weights_close(rw);
        unlink(path);
    }

    free(ref);
    reel_weights_close(gw);
    reel_st_close(g.f);
    reel_backend_destroy(be);
    rmdir(tmpdir);
    TEST_EXIT();
}
