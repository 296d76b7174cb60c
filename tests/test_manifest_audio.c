/* Tensor tables of MMAudio's 16 kHz VAE and BigVGAN vocoder against the
 * manifests of the released checkpoints (real/mmaudio_vae16k.json,
 * real/bigvgan16k.json): names, shapes, state_dict order and element totals
 * with the buffers; BigVGAN in all three weight-norm namings; the
 * decoder-only VAE subset; and the tiny golden files' weights.* / ckpt.*
 * names against the tables built from their configs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/bigvgan.h"
#include "audio/mmaudio_vae.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "tests/manifest.h"
#include "tests/test.h"

static int vae_table(const struct reel_json *config, struct manifest_list *got,
                     struct reel_err *err)
{
    struct reel_mmaudio_vae_config cfg;
    int rc = reel_mmaudio_vae_config_from_json(config, &cfg, err);
    if (rc == 0)
        reel_mmaudio_vae_tensor_table(&cfg, manifest_list_add, got);
    return rc;
}

static int bigvgan_table(const struct reel_json *config, struct manifest_list *got,
                         struct reel_err *err)
{
    struct reel_bigvgan_config cfg;
    int rc = reel_bigvgan_config_from_json(config, &cfg, err);
    if (rc == 0)
        reel_bigvgan_tensor_table(&cfg, REEL_BIGVGAN_PLAIN, manifest_list_add, got);
    return rc;
}

static struct reel_json *read_manifest(const char *file)
{
    char path[512], msg[256];
    snprintf(path, sizeof path, "%s/real/%s", manifest_golden_dir(), file);
    size_t len = 0;
    char *text = reel_read_file(path, &len);
    if (!text)
        return NULL;
    struct reel_json *j = reel_json_parse(text, len, msg, sizeof msg);
    free(text);
    return j;
}

/* The list under `key` equals got exactly, in order. */
static void same_list(const struct reel_json *arr, const struct manifest_list *got,
                      const char *label)
{
    char why[256] = "";
    if (!arr || arr->type != REEL_JSON_ARRAY)
        snprintf(why, sizeof why, "no such list in the manifest");
    else if ((int)arr->count != got->n)
        snprintf(why, sizeof why, "%d tensors, manifest %zu", got->n, arr->count);
    for (int i = 0; !why[0] && i < got->n; i++) {
        const struct reel_json *t = arr->items[i];
        const struct reel_json *nm = t->count == 2 ? t->items[0] : NULL;
        const struct reel_json *sh = t->count == 2 ? t->items[1] : NULL;
        int same = nm && sh && nm->type == REEL_JSON_STRING && !strcmp(nm->string, got->e[i].name) &&
                   sh->type == REEL_JSON_ARRAY && (int)sh->count == got->e[i].ndim;
        for (int d = 0; same && d < got->e[i].ndim; d++)
            same = (int64_t)reel_json_at_num(sh, (size_t)d, -1) == got->e[i].shape[d];
        if (!same)
            snprintf(why, sizeof why, "entry %d: table '%s'", i, got->e[i].name);
    }
    CHECK(!why[0], label, "%s", why);
}

static void bigvgan_namings(void)
{
    struct reel_json *j = read_manifest("bigvgan16k.json");
    if (!CHECK(j != NULL, "bigvgan16k.json readable for the g/v namings", "cannot read"))
        return;
    struct reel_bigvgan_config cfg;
    struct reel_err err = {0};
    int rc = reel_bigvgan_config_from_json(reel_json_get(j, "config"), &cfg, &err);
    static const struct {
        enum reel_bigvgan_naming n;
        const char *key;
    } nm[2] = {{REEL_BIGVGAN_PARAMETRIZE, "tensors_before_remove_weight_norm_parametrize"},
               {REEL_BIGVGAN_LEGACY, "tensors_before_remove_weight_norm_legacy"}};
    for (int i = 0; rc == 0 && i < 2; i++) {
        struct manifest_list got = {0};
        reel_bigvgan_tensor_table(&cfg, nm[i].n, manifest_list_add, &got);
        char label[160];
        snprintf(label, sizeof label, "bigvgan16k.json: %s table equals the manifest", nm[i].key);
        same_list(reel_json_get(j, nm[i].key), &got, label);
        free(got.e);
    }
    /* buffers: every one listed is in the table, and they are exactly the filters */
    struct manifest_list got = {0};
    reel_bigvgan_tensor_table(&cfg, REEL_BIGVGAN_PLAIN, manifest_list_add, &got);
    const struct reel_json *buf = reel_json_get(j, "buffers");
    int nfilters = 0, missing = 0;
    for (int i = 0; i < got.n; i++)
        nfilters += strstr(got.e[i].name, ".filter") != NULL;
    for (size_t i = 0; buf && i < buf->count; i++) {
        int found = 0;
        for (int k = 0; !found && k < got.n; k++)
            found = !strcmp(got.e[k].name, buf->items[i]->string);
        missing += !found;
    }
    CHECK(buf && !missing && (int)buf->count == nfilters,
          "bigvgan16k.json: the 218 filter buffers are in the table", "%d missing, %d filters vs %zu",
          missing, nfilters, buf ? buf->count : (size_t)0);
    free(got.e);
    reel_json_free(j);
}

static void vae_decoder_only(void)
{
    struct reel_json *j = read_manifest("mmaudio_vae16k.json");
    if (!CHECK(j != NULL, "mmaudio_vae16k.json readable", "cannot read"))
        return;
    struct reel_mmaudio_vae_config cfg;
    struct reel_err err = {0};
    int rc = reel_mmaudio_vae_config_from_json(reel_json_get(j, "config"), &cfg, &err);
    cfg.encoder = 0;
    struct manifest_list got = {0};
    if (rc == 0)
        reel_mmaudio_vae_tensor_table(&cfg, manifest_list_add, &got);
    int want = (int)reel_json_int(j, "num_tensors_without_encoder", -1), enc = 0;
    for (int i = 0; i < got.n; i++)
        enc += !strncmp(got.e[i].name, "encoder.", 8);
    CHECK(rc == 0 && got.n == want && !enc, "mmaudio_vae16k.json: decoder-only table",
          "%d tensors (%d encoder), manifest %d", got.n, enc, want);
    free(got.e);
    reel_json_free(j);
}

/* The golden file's weights.* (and ckpt.*, in the parametrize naming) are
 * the table built from its own config. */
static void golden_names(const char *file, int bigvgan)
{
    char path[512], label[160];
    snprintf(path, sizeof path, "%s/%s", manifest_golden_dir(), file);
    struct reel_st_file *f = NULL;
    struct reel_err err = {0};
    snprintf(label, sizeof label, "%s opens", file);
    if (!CHECK(reel_st_open(path, &f, &err) == 0, label, "%s", err.msg))
        return;
    const char *cfg_text = reel_st_meta(f, "config");
    char msg[256];
    struct reel_json *j = cfg_text ? reel_json_parse(cfg_text, strlen(cfg_text), msg, sizeof msg) : NULL;
    struct manifest_list got = {0}, gv = {0};
    int rc;
    if (bigvgan) {
        struct reel_bigvgan_config cfg;
        rc = reel_bigvgan_config_from_json(j, &cfg, &err);
        if (!rc) {
            reel_bigvgan_tensor_table(&cfg, REEL_BIGVGAN_PLAIN, manifest_list_add, &got);
            reel_bigvgan_tensor_table(&cfg, REEL_BIGVGAN_PARAMETRIZE, manifest_list_add, &gv);
        }
    } else {
        struct reel_mmaudio_vae_config cfg;
        rc = reel_mmaudio_vae_config_from_json(j, &cfg, &err);
        if (!rc)
            reel_mmaudio_vae_tensor_table(&cfg, manifest_list_add, &got);
    }
    char why[256] = "";
    int nweights = 0;
    for (int i = 0; i < f->count; i++) {
        const struct reel_tensor *t = &f->tensors[i];
        int is_w = !strncmp(t->name, "weights.", 8), is_ck = !strncmp(t->name, "ckpt.", 5);
        if (!is_w && !is_ck)
            continue;
        nweights += is_w;
        const char *n = t->name + (is_w ? 8 : 5);
        const struct manifest_list *l = is_w || !bigvgan ? &got : &gv;
        int found = -1;
        for (int k = 0; found < 0 && k < l->n; k++)
            if (!strcmp(l->e[k].name, n))
                found = k;
        int same = found >= 0 && l->e[found].ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = l->e[found].shape[d] == t->shape[d];
        /* the golden writer stores the 0-dim learnable_gain as [1] */
        if (found >= 0 && l->e[found].ndim == 0 && reel_tensor_numel(t) == 1)
            same = 1;
        if (!same && !why[0])
            snprintf(why, sizeof why, "'%s' not in the table (or another shape)", t->name);
    }
    if (!why[0] && nweights != got.n)
        snprintf(why, sizeof why, "%d weights.* tensors, table %d", nweights, got.n);
    snprintf(label, sizeof label, "%s: weights.*/ckpt.* are the table of its config", file);
    CHECK(rc == 0 && !why[0], label, "%s%s", err.msg, why);
    free(got.e);
    free(gv.e);
    reel_json_free(j);
    reel_st_close(f);
}

int main(void)
{
    manifest_check("mmaudio_vae16k.json", vae_table, "total_state_dict_elements");
    manifest_check("bigvgan16k.json", bigvgan_table, "total_state_dict_elements");
    bigvgan_namings();
    vae_decoder_only();
    golden_names("mmaudio_vae16k.safetensors", 0);
    golden_names("bigvgan16k.safetensors", 1);
    TEST_EXIT();
}
