/* Tests for the Wan VAE tensor tables and loader without the real
 * checkpoints:
 *  - for the released Wan2.1 and Wan2.2 VAEs, the table built from each
 *    manifest's config lists exactly the manifest's (name, shape) pairs, in
 *    state_dict order, and sums to its total_params;
 *  - config errors are refused (unknown key, dec_dim on 2.1, bad types);
 *  - creating a model whose config does not match the weights fails and
 *    names the tensor (using the tiny golden files' weights). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/wan_vae.h"
#include "tests/manifest.h"
#include "tests/test.h"

static void golden_path(char *buf, size_t n, const char *sub, const char *file)
{
    const char *g = getenv("REEL_GOLDEN_DIR");
    snprintf(buf, n, "%s%s/%s", g && *g ? g : "../shared/golden", sub, file);
}

static int vae21_table(const struct reel_json *config, struct manifest_list *got,
                       struct reel_err *err)
{
    struct reel_wan_vae_config cfg;
    int rc = reel_wan_vae_config_from_json(config, 21, &cfg, err);
    if (rc == 0)
        reel_wan_vae_tensor_table(&cfg, manifest_list_add, got);
    return rc;
}

static int vae22_table(const struct reel_json *config, struct manifest_list *got,
                       struct reel_err *err)
{
    struct reel_wan_vae_config cfg;
    int rc = reel_wan_vae_config_from_json(config, 22, &cfg, err);
    if (rc == 0)
        reel_wan_vae_tensor_table(&cfg, manifest_list_add, got);
    return rc;
}

static int config_rc(const char *json, int version, struct reel_err *err)
{
    char msg[256];
    struct reel_json *j = reel_json_parse(json, strlen(json), msg, sizeof msg);
    if (!j)
        return -1;
    struct reel_wan_vae_config cfg;
    int rc = reel_wan_vae_config_from_json(j, version, &cfg, err);
    reel_json_free(j);
    return rc;
}

static void check_config_errors(void)
{
    struct reel_err err = {0};
    int rc = config_rc("{\"dim\": 96, \"dec_dim\": 96}", 21, &err);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "dec_dim"), "2.1 config refuses dec_dim",
          "rc %d: %s", rc, err.msg);
    memset(&err, 0, sizeof err);
    rc = config_rc("{\"dim\": 96, \"dec_dim\": 96}", 22, &err);
    CHECK(rc == 0, "2.2 config takes dec_dim", "rc %d: %s", rc, err.msg);
    memset(&err, 0, sizeof err);
    rc = config_rc("{\"dim\": \"96\"}", 21, &err);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "'dim'"), "string dim refused", "rc %d: %s", rc,
          err.msg);
    memset(&err, 0, sizeof err);
    rc = config_rc("{\"temperal_downsample\": [0, 1, 1]}", 21, &err);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "temperal_downsample"),
          "non-boolean temperal_downsample refused", "rc %d: %s", rc, err.msg);
    memset(&err, 0, sizeof err);
    rc = config_rc("{\"z_dim\": 16, \"scale\": 2}", 22, &err);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "scale"), "unknown key refused", "rc %d: %s", rc,
          err.msg);
    memset(&err, 0, sizeof err);
    rc = config_rc("{}", 23, &err);
    CHECK(rc == REEL_E_MODEL, "unknown version refused", "rc %d: %s", rc, err.msg);
}

/* The tiny golden weights with a config that does not fit them. */
static void check_bad_weights(void)
{
    char path[512];
    golden_path(path, sizeof path, "", "wan21_vae.safetensors");
    struct reel_err err = {0};
    struct reel_st_file *f = NULL;
    struct reel_weights *w = NULL;
    int rc = reel_st_open(path, &f, &err);
    if (!CHECK(rc == 0, "tiny 2.1 golden file opens", "%s", err.msg))
        return;
    rc = reel_weights_from_file(f, "weights.", &w, &err);
    struct reel_backend *be = reel_backend_cpu_create(1);
    if (CHECK(rc == 0 && be, "tiny 2.1 weights wrap", "%s", err.msg)) {
        const char *good = "{\"dim\": 8, \"z_dim\": 4, \"dim_mult\": [1, 2, 4, 4], "
                           "\"num_res_blocks\": 2, \"attn_scales\": [], "
                           "\"temperal_downsample\": [false, true, true], \"dropout\": 0.0}";
        const char *wrong_z = "{\"dim\": 8, \"z_dim\": 5, \"temperal_downsample\": [false, "
                              "true, true]}";
        const char *configs[2] = {good, wrong_z};
        for (int k = 0; k < 2; k++) {
            char msg[256];
            struct reel_json *j = reel_json_parse(configs[k], strlen(configs[k]), msg, sizeof msg);
            struct reel_wan_vae_config cfg;
            struct reel_wan_vae *vae = NULL;
            memset(&err, 0, sizeof err);
            rc = j ? reel_wan_vae_config_from_json(j, 21, &cfg, &err) : -1;
            if (!rc)
                rc = reel_wan_vae_create(&cfg, w, be, &vae, &err);
            if (k == 0)
                CHECK(rc == 0 && vae, "matching config binds every tensor", "rc %d: %s", rc,
                      err.msg);
            else
                CHECK(rc == REEL_E_MODEL && !vae && strstr(err.msg, "encoder.head.2.weight"),
                      "wrong z_dim names the mis-shaped tensor", "rc %d: %s", rc, err.msg);
            reel_wan_vae_destroy(vae);
            reel_json_free(j);
        }
    }
    reel_backend_destroy(be);
    reel_weights_close(w);
    reel_st_close(f);
}

int main(void)
{
    manifest_check("wan21_vae.json", vae21_table, "total_params");
    manifest_check("wan22_vae.json", vae22_table, "total_params");
    check_config_errors();
    check_bad_weights();
    TEST_EXIT();
}
