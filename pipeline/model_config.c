/* Model configs: configs/NAME.yaml through the spec's schema walker into a
 * raw struct, then checks across sections (DiT widths against the VAE and
 * text encoder, defaults against the model's size and frame rules) and
 * path resolution (weights_dir against the config's folder, weight files
 * against weights_dir). Every error is collected, as in job specs. */
#include "pipeline/model_config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/spec.h"

static const char *const family_names[] = {"wan2.1", "wan2.2", "reel-default", "ovi", NULL};
static const char *const model_type_names[] = {"t2v", "i2v", "ti2v", NULL};
static const char *const te_kind_names[] = {"umt5", NULL};
static const char *const solver_names[] = {"euler", "unipc", "dpm++", "dpmpp", "dpm-solver++", NULL};

const char *reel_model_family_name(enum reel_model_family f)
{
    return (unsigned)f < 4 ? family_names[f] : "?";
}

/* The config as written. */
struct cfg_raw {
    char *name, *description, *weights_dir;
    int family, trained;
    char *dit_weights;
    int model_type, patch[3], text_len, in_dim, dim, ffn_dim, freq_dim, text_dim, out_dim;
    int num_heads, num_layers, qk_norm, cross_attn_norm, frame_cond, pin_first_latent;
    double eps;
    int vae_version;
    char *vae_weights;
    int vae_dim, vae_dec_dim, z_dim, num_res_blocks;
    int dim_mult[REEL_WAN_VAE_MAX_MULT], n_dim_mult;
    double attn_scales[REEL_WAN_VAE_MAX_MULT];
    int n_attn_scales;
    int temporal[REEL_WAN_VAE_MAX_MULT], n_temporal;
    double mean[REEL_MODEL_MAX_Z], std[REEL_MODEL_MAX_Z];
    int n_mean, n_std;
    int te_kind;
    char *te_weights, *te_tokenizer;
    int te_text_len, te_vocab, te_dim, te_dim_attn, te_dim_ffn, te_heads, te_layers, te_buckets;
    int te_shared_pos;
    int size[2];
    double fps;
    int frames;
    char *negative_prompt;
    int solver, steps;
    double shift, guidance;
    /* joint audio (family ovi) */
    double audio_guidance;
    char *audio_negative_prompt;
    int slg_layer;
    int a_in_dim, a_out_dim, a_dim, a_ffn_dim, a_freq_dim, a_heads, a_layers;
    int a_qk_norm, a_cross_attn_norm;
    double a_eps, a_rope_scale;
    char *avae_weights;
    int avae_wn_removed, avae_data_dim, avae_embed_dim, avae_hidden_dim, avae_res_blocks;
    int avae_ch_mult[REEL_MMVAE_MAX_LEVELS], n_avae_ch_mult;
    int avae_attn[REEL_MMVAE_MAX_LEVELS], n_avae_attn;
    int avae_down[REEL_MMVAE_MAX_LEVELS], n_avae_down;
    int avae_kernel, avae_encoder;
    double avae_clip;
    char *voc_weights;
    int voc_mels, voc_channels, voc_snake_beta, voc_logscale;
    int voc_rates[REEL_BIGVGAN_MAX], n_voc_rates;
    int voc_kernels[REEL_BIGVGAN_MAX], n_voc_kernels;
    int voc_rb_kernels[REEL_BIGVGAN_MAX], n_voc_rb_kernels;
    int voc_dilations[REEL_BIGVGAN_MAX], n_voc_dilations;
    int sample_rate;
};

#define OFF(f) offsetof(struct cfg_raw, f)
#define INF HUGE_VAL
#define REQ REEL_FF_REQUIRED
#define VAR REEL_FF_VARLEN
/* The model config schema (docs/model-config.md). */
static const struct reel_field cfg_fields[] = {
    {"name", REEL_F_STR, OFF(name), 0, 0, REQ | REEL_FF_NONEMPTY, NULL, 0, 0},
    {"family", REEL_F_ENUM, OFF(family), 0, 0, REQ, family_names, 0, 0},
    {"description", REEL_F_STR, OFF(description), 0, 0, 0, NULL, 0, 0},
    {"trained", REEL_F_BOOL, OFF(trained), 0, 0, 0, NULL, 0, 0},
    {"weights_dir", REEL_F_RAWPATH, OFF(weights_dir), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"dit", REEL_F_SECTION, 0, 0, 0, REQ, NULL, 0, 0},
    {"dit.weights", REEL_F_RAWPATH, OFF(dit_weights), 0, 0, REQ | REEL_FF_NONEMPTY, NULL, 0, 0},
    {"dit.model_type", REEL_F_ENUM, OFF(model_type), 0, 0, 0, model_type_names, 0, 0},
    {"dit.patch_size", REEL_F_INTS, OFF(patch), 1, 16, 0, NULL, 3, 0},
    {"dit.text_len", REEL_F_INT, OFF(text_len), 1, 65536, 0, NULL, 0, 0},
    {"dit.in_dim", REEL_F_INT, OFF(in_dim), 1, 65536, 0, NULL, 0, 0},
    {"dit.dim", REEL_F_INT, OFF(dim), 1, 65536, 0, NULL, 0, 0},
    {"dit.ffn_dim", REEL_F_INT, OFF(ffn_dim), 1, 1 << 20, 0, NULL, 0, 0},
    {"dit.freq_dim", REEL_F_INT, OFF(freq_dim), 2, 65536, 0, NULL, 0, 0},
    {"dit.text_dim", REEL_F_INT, OFF(text_dim), 1, 65536, 0, NULL, 0, 0},
    {"dit.out_dim", REEL_F_INT, OFF(out_dim), 1, 65536, 0, NULL, 0, 0},
    {"dit.num_heads", REEL_F_INT, OFF(num_heads), 1, 1024, 0, NULL, 0, 0},
    {"dit.num_layers", REEL_F_INT, OFF(num_layers), 0, 1024, 0, NULL, 0, 0},
    {"dit.qk_norm", REEL_F_BOOL, OFF(qk_norm), 0, 0, 0, NULL, 0, 0},
    {"dit.cross_attn_norm", REEL_F_BOOL, OFF(cross_attn_norm), 0, 0, 0, NULL, 0, 0},
    {"dit.eps", REEL_F_NUM, OFF(eps), 0, 1, REEL_FF_MIN_EXCL, NULL, 0, 0},
    {"dit.frame_cond", REEL_F_BOOL, OFF(frame_cond), 0, 0, 0, NULL, 0, 0},
    {"dit.pin_first_latent", REEL_F_BOOL, OFF(pin_first_latent), 0, 0, 0, NULL, 0, 0},
    {"vae", REEL_F_SECTION, 0, 0, 0, REQ, NULL, 0, 0},
    {"vae.version", REEL_F_INT, OFF(vae_version), 21, 22, REQ, NULL, 0, 0},
    {"vae.weights", REEL_F_RAWPATH, OFF(vae_weights), 0, 0, REQ | REEL_FF_NONEMPTY, NULL, 0, 0},
    {"vae.dim", REEL_F_INT, OFF(vae_dim), 1, 65536, 0, NULL, 0, 0},
    {"vae.dec_dim", REEL_F_INT, OFF(vae_dec_dim), 1, 65536, 0, NULL, 0, 0},
    {"vae.z_dim", REEL_F_INT, OFF(z_dim), 1, REEL_MODEL_MAX_Z, REQ, NULL, 0, 0},
    {"vae.dim_mult", REEL_F_INTS, OFF(dim_mult), 1, 64, VAR, NULL, REEL_WAN_VAE_MAX_MULT, OFF(n_dim_mult)},
    {"vae.num_res_blocks", REEL_F_INT, OFF(num_res_blocks), 1, 64, 0, NULL, 0, 0},
    {"vae.attn_scales", REEL_F_NUMS, OFF(attn_scales), 0, INF, VAR, NULL, REEL_WAN_VAE_MAX_MULT, OFF(n_attn_scales)},
    {"vae.temporal_downsample", REEL_F_BOOLS, OFF(temporal), 0, 0, VAR, NULL, REEL_WAN_VAE_MAX_MULT, OFF(n_temporal)},
    {"vae.latent_mean", REEL_F_NUMS, OFF(mean), -INF, INF, REQ | VAR, NULL, REEL_MODEL_MAX_Z, OFF(n_mean)},
    {"vae.latent_std", REEL_F_NUMS, OFF(std), 0, INF, REQ | VAR | REEL_FF_MIN_EXCL, NULL, REEL_MODEL_MAX_Z, OFF(n_std)},
    {"text_encoder", REEL_F_SECTION, 0, 0, 0, REQ, NULL, 0, 0},
    {"text_encoder.kind", REEL_F_ENUM, OFF(te_kind), 0, 0, 0, te_kind_names, 0, 0},
    {"text_encoder.weights", REEL_F_RAWPATH, OFF(te_weights), 0, 0, REQ | REEL_FF_NONEMPTY, NULL, 0, 0},
    {"text_encoder.tokenizer", REEL_F_RAWPATH, OFF(te_tokenizer), 0, 0, REQ | REEL_FF_NONEMPTY, NULL, 0, 0},
    {"text_encoder.text_len", REEL_F_INT, OFF(te_text_len), 1, 65536, 0, NULL, 0, 0},
    {"text_encoder.vocab", REEL_F_INT, OFF(te_vocab), 1, 1 << 24, 0, NULL, 0, 0},
    {"text_encoder.dim", REEL_F_INT, OFF(te_dim), 1, 65536, 0, NULL, 0, 0},
    {"text_encoder.dim_attn", REEL_F_INT, OFF(te_dim_attn), 1, 65536, 0, NULL, 0, 0},
    {"text_encoder.dim_ffn", REEL_F_INT, OFF(te_dim_ffn), 1, 1 << 20, 0, NULL, 0, 0},
    {"text_encoder.num_heads", REEL_F_INT, OFF(te_heads), 1, 1024, 0, NULL, 0, 0},
    {"text_encoder.num_layers", REEL_F_INT, OFF(te_layers), 0, 1024, 0, NULL, 0, 0},
    {"text_encoder.num_buckets", REEL_F_INT, OFF(te_buckets), 1, 4096, 0, NULL, 0, 0},
    {"text_encoder.shared_pos", REEL_F_BOOL, OFF(te_shared_pos), 0, 0, 0, NULL, 0, 0},
    {"defaults", REEL_F_SECTION, 0, 0, 0, REQ, NULL, 0, 0},
    {"defaults.size", REEL_F_INTS, OFF(size), 16, 8192, REQ, NULL, 2, 0},
    {"defaults.fps", REEL_F_NUM, OFF(fps), 1, 120, REQ, NULL, 0, 0},
    {"defaults.frames", REEL_F_INT, OFF(frames), 1, 3600 * 120, REQ, NULL, 0, 0},
    {"defaults.negative_prompt", REEL_F_STR, OFF(negative_prompt), 0, 0, 0, NULL, 0, 0},
    {"defaults.sampler", REEL_F_SECTION, 0, 0, 0, 0, NULL, 0, 0},
    {"defaults.sampler.name", REEL_F_ENUM, OFF(solver), 0, 0, 0, solver_names, 0, 0},
    {"defaults.sampler.steps", REEL_F_INT, OFF(steps), 1, 1000, 0, NULL, 0, 0},
    {"defaults.sampler.shift", REEL_F_NUM, OFF(shift), 0, INF, REEL_FF_MIN_EXCL, NULL, 0, 0},
    {"defaults.sampler.guidance", REEL_F_NUM, OFF(guidance), 0, INF, 0, NULL, 0, 0},
    {"defaults.sampler.audio_guidance", REEL_F_NUM, OFF(audio_guidance), 0, INF, 0, NULL, 0, 0},
    {"defaults.sampler.slg_layer", REEL_F_INT, OFF(slg_layer), -1, 1024, 0, NULL, 0, 0},
    {"defaults.audio_negative_prompt", REEL_F_STR, OFF(audio_negative_prompt), 0, 0, 0, NULL, 0, 0},
    /* family ovi: the audio tower, the MMAudio VAE and the BigVGAN vocoder */
    {"audio", REEL_F_SECTION, 0, 0, 0, 0, NULL, 0, 0},
    {"audio.sample_rate", REEL_F_INT, OFF(sample_rate), 1000, 192000, 0, NULL, 0, 0},
    {"audio.dit", REEL_F_SECTION, 0, 0, 0, 0, NULL, 0, 0},
    {"audio.dit.in_dim", REEL_F_INT, OFF(a_in_dim), 1, 65536, 0, NULL, 0, 0},
    {"audio.dit.out_dim", REEL_F_INT, OFF(a_out_dim), 1, 65536, 0, NULL, 0, 0},
    {"audio.dit.dim", REEL_F_INT, OFF(a_dim), 1, 65536, 0, NULL, 0, 0},
    {"audio.dit.ffn_dim", REEL_F_INT, OFF(a_ffn_dim), 1, 1 << 20, 0, NULL, 0, 0},
    {"audio.dit.freq_dim", REEL_F_INT, OFF(a_freq_dim), 2, 65536, 0, NULL, 0, 0},
    {"audio.dit.num_heads", REEL_F_INT, OFF(a_heads), 1, 1024, 0, NULL, 0, 0},
    {"audio.dit.num_layers", REEL_F_INT, OFF(a_layers), 0, 1024, 0, NULL, 0, 0},
    {"audio.dit.qk_norm", REEL_F_BOOL, OFF(a_qk_norm), 0, 0, 0, NULL, 0, 0},
    {"audio.dit.cross_attn_norm", REEL_F_BOOL, OFF(a_cross_attn_norm), 0, 0, 0, NULL, 0, 0},
    {"audio.dit.eps", REEL_F_NUM, OFF(a_eps), 0, 1, REEL_FF_MIN_EXCL, NULL, 0, 0},
    {"audio.dit.rope_scale", REEL_F_NUM, OFF(a_rope_scale), 0, INF, REEL_FF_MIN_EXCL, NULL, 0, 0},
    {"audio.vae", REEL_F_SECTION, 0, 0, 0, 0, NULL, 0, 0},
    {"audio.vae.weights", REEL_F_RAWPATH, OFF(avae_weights), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"audio.vae.weight_norm_removed", REEL_F_BOOL, OFF(avae_wn_removed), 0, 0, 0, NULL, 0, 0},
    {"audio.vae.data_dim", REEL_F_INT, OFF(avae_data_dim), 1, 4096, 0, NULL, 0, 0},
    {"audio.vae.embed_dim", REEL_F_INT, OFF(avae_embed_dim), 1, 4096, 0, NULL, 0, 0},
    {"audio.vae.hidden_dim", REEL_F_INT, OFF(avae_hidden_dim), 1, 65536, 0, NULL, 0, 0},
    {"audio.vae.ch_mult", REEL_F_INTS, OFF(avae_ch_mult), 1, 64, VAR, NULL, REEL_MMVAE_MAX_LEVELS, OFF(n_avae_ch_mult)},
    {"audio.vae.num_res_blocks", REEL_F_INT, OFF(avae_res_blocks), 1, 64, 0, NULL, 0, 0},
    {"audio.vae.attn_layers", REEL_F_INTS, OFF(avae_attn), 0, 64, VAR, NULL, REEL_MMVAE_MAX_LEVELS, OFF(n_avae_attn)},
    {"audio.vae.down_layers", REEL_F_INTS, OFF(avae_down), 0, 64, VAR, NULL, REEL_MMVAE_MAX_LEVELS, OFF(n_avae_down)},
    {"audio.vae.kernel_size", REEL_F_INT, OFF(avae_kernel), 1, 63, 0, NULL, 0, 0},
    {"audio.vae.clip_act", REEL_F_NUM, OFF(avae_clip), 0, INF, REEL_FF_MIN_EXCL, NULL, 0, 0},
    {"audio.vae.encoder", REEL_F_BOOL, OFF(avae_encoder), 0, 0, 0, NULL, 0, 0},
    {"audio.vocoder", REEL_F_SECTION, 0, 0, 0, 0, NULL, 0, 0},
    {"audio.vocoder.weights", REEL_F_RAWPATH, OFF(voc_weights), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"audio.vocoder.num_mels", REEL_F_INT, OFF(voc_mels), 1, 4096, 0, NULL, 0, 0},
    {"audio.vocoder.upsample_initial_channel", REEL_F_INT, OFF(voc_channels), 1, 65536, 0, NULL, 0, 0},
    {"audio.vocoder.upsample_rates", REEL_F_INTS, OFF(voc_rates), 1, 64, VAR, NULL, REEL_BIGVGAN_MAX, OFF(n_voc_rates)},
    {"audio.vocoder.upsample_kernel_sizes", REEL_F_INTS, OFF(voc_kernels), 1, 64, VAR, NULL, REEL_BIGVGAN_MAX, OFF(n_voc_kernels)},
    {"audio.vocoder.resblock_kernel_sizes", REEL_F_INTS, OFF(voc_rb_kernels), 1, 63, VAR, NULL, REEL_BIGVGAN_MAX, OFF(n_voc_rb_kernels)},
    {"audio.vocoder.resblock_dilations", REEL_F_INTS, OFF(voc_dilations), 1, 64, VAR, NULL, REEL_BIGVGAN_MAX, OFF(n_voc_dilations)},
    {"audio.vocoder.snake_beta", REEL_F_BOOL, OFF(voc_snake_beta), 0, 0, 0, NULL, 0, 0},
    {"audio.vocoder.snake_logscale", REEL_F_BOOL, OFF(voc_logscale), 0, 0, 0, NULL, 0, 0},
};
#undef OFF
#undef INF
#undef REQ
#undef VAR
#define N_CFG_FIELDS ((int)(sizeof cfg_fields / sizeof cfg_fields[0]))

/* ------------------------------------------------------------ locating */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int reel_model_configs_dir(char *buf, size_t n, struct reel_err *err)
{
    const char *env = getenv("REEL_CONFIGS");
    if (env && *env) {
        if (!is_dir(env))
            return reel_errf(err, REEL_E_MODEL, "REEL_CONFIGS=%s is not a directory", env);
        snprintf(buf, n, "%s", env);
        return REEL_OK;
    }
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        /* <repo>/build/reel, <repo>/build/tests/test_x, <repo>/build-asan/...:
         * the first ancestor with configs/reel-default.yaml is the checkout. */
        char dir[4096], probe[4200];
        snprintf(dir, sizeof dir, "%s", exe);
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(dir, '/');
            if (!slash || slash == dir)
                break;
            *slash = 0;
            snprintf(probe, sizeof probe, "%s/configs/reel-default.yaml", dir);
            if (is_file(probe)) {
                snprintf(buf, n, "%s/configs", dir);
                return REEL_OK;
            }
        }
        /* installed: <prefix>/bin/reel -> <prefix>/share/reel/configs */
        snprintf(dir, sizeof dir, "%s", exe);
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(dir, '/');
            if (slash)
                *slash = 0;
        }
        snprintf(probe, sizeof probe, "%s/share/reel/configs", dir);
        if (is_dir(probe)) {
            snprintf(buf, n, "%s", probe);
            return REEL_OK;
        }
    }
    return reel_errf(err, REEL_E_MODEL,
                     "no model configs directory found beside the reel binary (set REEL_CONFIGS)");
}

int reel_model_is_path(const char *model)
{
    size_t n = strlen(model);
    return strchr(model, '/') || (n > 5 && !strcmp(model + n - 5, ".yaml")) ||
           (n > 4 && !strcmp(model + n - 4, ".yml"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void reel_model_config_names(const char *dir, char *buf, size_t n)
{
    buf[0] = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    char *names[256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < 256) {
        size_t len = strlen(e->d_name);
        if (len > 5 && e->d_name[0] != '.' && !strcmp(e->d_name + len - 5, ".yaml")) {
            names[count] = strndup(e->d_name, len - 5);
            if (names[count])
                count++;
        }
    }
    closedir(d);
    qsort(names, (size_t)count, sizeof *names, cmp_str);
    size_t used = 0;
    for (int i = 0; i < count; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < n - used)
            used += (size_t)w;
        free(names[i]);
    }
}

int reel_model_config_find(const char *model, const char *base_dir, const char *configs_dir,
                           char **path_out, struct reel_err *err)
{
    *path_out = NULL;
    char why[256];
    if (reel_model_is_path(model)) {
        char *p = reel_path_resolve(model, base_dir, why, sizeof why);
        if (!p)
            return reel_errf(err, REEL_E_SPEC, "model config '%s': %s", model, why);
        if (!is_file(p)) {
            reel_errf(err, REEL_E_SPEC, "model config file %s not found", p);
            free(p);
            return REEL_E_SPEC;
        }
        *path_out = p;
        return REEL_OK;
    }
    char dir[4096];
    if (configs_dir) {
        snprintf(dir, sizeof dir, "%s", configs_dir);
    } else {
        struct reel_err e2 = {0};
        if (reel_model_configs_dir(dir, sizeof dir, &e2))
            return reel_errf(err, REEL_E_SPEC, "unknown model '%s': %s", model, e2.msg);
    }
    if (model[0] != '.') {
        static const char *ext[] = {".yaml", ".yml"};
        for (int i = 0; i < 2; i++) {
            char probe[4400];
            snprintf(probe, sizeof probe, "%s/%s%s", dir, model, ext[i]);
            if (is_file(probe)) {
                *path_out = reel_path_resolve(probe, NULL, why, sizeof why);
                return *path_out ? REEL_OK : reel_errf(err, REEL_E_OTHER, "%s", why);
            }
        }
    }
    char names[1024];
    reel_model_config_names(dir, names, sizeof names);
    return reel_errf(err, REEL_E_SPEC,
                     "unknown model '%s' (models in %s: %s; or give the path of a config file)",
                     model, dir, *names ? names : "none");
}

/* --------------------------------------------------------------- loading */

struct cfg_ctx {
    const char *file;
    struct reel_field_loc *loc;
    struct reel_diag *diag;
};

static int cidx(const char *path)
{
    return reel_schema_index(cfg_fields, N_CFG_FIELDS, path);
}

static int cgiven(const struct cfg_ctx *c, const char *path)
{
    int i = cidx(path);
    return i >= 0 && c->loc[i].given;
}

static void cfg_error(struct cfg_ctx *c, const char *key_path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cfg_error(struct cfg_ctx *c, const char *key_path, const char *fmt, ...)
{
    char where[512], msg[1024];
    int i = cidx(key_path);
    if (i >= 0 && c->loc[i].given) {
        struct reel_ynode at = {.line = c->loc[i].line, .col = c->loc[i].col};
        reel_ynode_where(&at, c->file, key_path, where, sizeof where);
    } else {
        reel_ynode_where(NULL, c->file, key_path, where, sizeof where);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reel_diag_add(c->diag, REEL_DIAG_ERROR, REEL_E_MODEL, "%s%s", where, msg);
}

/* WanModel's and umT5-XXL's constructor defaults for what a config leaves out. */
static void raw_defaults(struct cfg_raw *r)
{
    struct reel_wan_dit_config d;
    struct reel_err err = {0};
    reel_wan_dit_config_from_json(NULL, &d, &err);
    r->trained = 1;
    r->model_type = (int)d.model_type;
    memcpy(r->patch, d.patch, sizeof r->patch);
    r->text_len = d.text_len;
    r->in_dim = d.in_dim;
    r->dim = d.dim;
    r->ffn_dim = d.ffn_dim;
    r->freq_dim = d.freq_dim;
    r->text_dim = d.text_dim;
    r->out_dim = d.out_dim;
    r->num_heads = d.num_heads;
    r->num_layers = d.num_layers;
    r->qk_norm = d.qk_norm;
    r->cross_attn_norm = d.cross_attn_norm;
    r->eps = d.eps;
    r->te_kind = 0;
    r->te_text_len = 512;
    r->te_vocab = 256384;
    r->te_dim = 4096;
    r->te_dim_attn = 4096;
    r->te_dim_ffn = 10240;
    r->te_heads = 64;
    r->te_layers = 24;
    r->te_buckets = 32;
    r->te_shared_pos = 0;
    r->solver = 1; /* unipc, as the Wan reference scripts */
    r->steps = 50;
    r->shift = 5.0;
    r->guidance = 5.0;
    /* Ovi's defaults (ovi/configs/inference): audio guidance 3.0, skip layer 11 */
    r->audio_guidance = 3.0;
    r->slg_layer = 11;
    /* Ovi's audio.json, MMAudio's 16k VAE and bigvgan_vocoder.yml */
    r->a_in_dim = r->a_out_dim = 20;
    r->a_dim = 3072;
    r->a_ffn_dim = 14336;
    r->a_freq_dim = 256;
    r->a_heads = 24;
    r->a_layers = 30;
    r->a_qk_norm = r->a_cross_attn_norm = 1;
    r->a_eps = 1e-6;
    r->a_rope_scale = 0.19676;
    r->sample_rate = 16000;
}

static char *resolve_weight(struct cfg_ctx *c, const char *key, const char *raw, const char *base)
{
    char why[256];
    char *p = reel_path_resolve(raw, base, why, sizeof why);
    if (!p)
        cfg_error(c, key, "%s", why);
    return p;
}

static int set_dup(struct reel_diag *d, char **dst, const char *src)
{
    *dst = strdup(src ? src : "");
    if (!*dst)
        d->oom = 1;
    return *dst ? 0 : -1;
}

/* Keys of the audio branch a family without one must not carry. */
static const char *const audio_only_keys[] = {
    "audio", "defaults.sampler.audio_guidance", "defaults.sampler.slg_layer",
    "defaults.audio_negative_prompt",
};

/* The audio branch (family ovi): tower, MMAudio VAE, vocoder, and how they
 * fit together (latent channels, mel bins, PCM samples per latent). */
static void fill_audio(struct cfg_ctx *c, struct cfg_raw *r, struct reel_model_config *m)
{
    if (m->family != REEL_FAMILY_OVI) {
        for (size_t i = 0; i < sizeof audio_only_keys / sizeof *audio_only_keys; i++)
            if (cgiven(c, audio_only_keys[i]))
                cfg_error(c, audio_only_keys[i], "only a model with an audio branch (family ovi) "
                                                 "takes this key");
        set_dup(c->diag, &m->defaults.audio_negative_prompt, "");
        m->defaults.audio_guidance = 1.0;
        m->defaults.slg_layer = -1;
        return;
    }
    m->audio.enabled = 1;
    set_dup(c->diag, &m->defaults.audio_negative_prompt, r->audio_negative_prompt);
    m->defaults.audio_guidance = r->audio_guidance;
    m->defaults.slg_layer = r->slg_layer;
    if (!cgiven(c, "audio")) {
        cfg_error(c, "audio", "a model of family ovi needs the audio section (dit, vae, vocoder)");
        return;
    }
    if (m->dit.cfg.model_type != REEL_WAN_TI2V && m->dit.cfg.model_type != REEL_WAN_T2V)
        cfg_error(c, "dit.model_type", "Ovi's video tower is a t2v / ti2v WanModel");

    /* audio tower: text widths shared with the video tower */
    struct reel_ovi_audio_config *a = &m->audio.tower;
    a->in_dim = r->a_in_dim;
    a->out_dim = r->a_out_dim;
    a->dim = r->a_dim;
    a->ffn_dim = r->a_ffn_dim;
    a->freq_dim = r->a_freq_dim;
    a->text_dim = m->dit.cfg.text_dim;
    a->text_len = m->dit.cfg.text_len;
    a->num_heads = r->a_heads;
    a->num_layers = r->a_layers;
    a->qk_norm = r->a_qk_norm;
    a->cross_attn_norm = r->a_cross_attn_norm;
    a->eps = r->a_eps;
    a->rope_scale = r->a_rope_scale;
    if (a->dim != m->dit.cfg.dim || a->num_heads != m->dit.cfg.num_heads ||
        a->num_layers != m->dit.cfg.num_layers)
        cfg_error(c, "audio.dit", "the towers must agree on dim, num_heads and num_layers "
                                  "(video %d, %d, %d; audio %d, %d, %d)",
                  m->dit.cfg.dim, m->dit.cfg.num_heads, m->dit.cfg.num_layers, a->dim,
                  a->num_heads, a->num_layers);
    if (a->freq_dim % 2)
        cfg_error(c, "audio.dit.freq_dim", "must be even, got %d", a->freq_dim);
    if (m->defaults.slg_layer >= m->dit.cfg.num_layers)
        cfg_error(c, "defaults.sampler.slg_layer", "the model has %d layers (0 .. %d), got %d",
                  m->dit.cfg.num_layers, m->dit.cfg.num_layers - 1, m->defaults.slg_layer);

    /* MMAudio VAE: 16k unless the file says otherwise */
    struct reel_mmaudio_vae_config *v = &m->audio.vae.cfg;
    reel_mmaudio_vae_config_16k(v);
    if (cgiven(c, "audio.vae.data_dim"))
        v->data_dim = r->avae_data_dim;
    if (cgiven(c, "audio.vae.embed_dim"))
        v->embed_dim = r->avae_embed_dim;
    if (cgiven(c, "audio.vae.hidden_dim"))
        v->hidden_dim = r->avae_hidden_dim;
    if (cgiven(c, "audio.vae.num_res_blocks"))
        v->num_res_blocks = r->avae_res_blocks;
    if (cgiven(c, "audio.vae.kernel_size"))
        v->kernel_size = r->avae_kernel;
    if (cgiven(c, "audio.vae.clip_act"))
        v->clip_act = r->avae_clip;
    if (cgiven(c, "audio.vae.encoder"))
        v->encoder = r->avae_encoder;
    if (cgiven(c, "audio.vae.ch_mult")) {
        if (r->n_avae_ch_mult < 1)
            cfg_error(c, "audio.vae.ch_mult", "must not be empty");
        memcpy(v->ch_mult, r->avae_ch_mult, sizeof v->ch_mult);
        v->n_mult = r->n_avae_ch_mult;
    }
    if (cgiven(c, "audio.vae.attn_layers")) {
        memcpy(v->attn_layers, r->avae_attn, sizeof v->attn_layers);
        v->n_attn = r->n_avae_attn;
    }
    if (cgiven(c, "audio.vae.down_layers")) {
        memcpy(v->down_layers, r->avae_down, sizeof v->down_layers);
        v->n_down = r->n_avae_down;
    }
    for (int i = 0; i < v->n_down; i++)
        if (v->down_layers[i] >= v->n_mult)
            cfg_error(c, "audio.vae.down_layers", "level %d is past ch_mult's %d levels",
                      v->down_layers[i], v->n_mult);
    m->audio.vae.weight_norm_removed = r->avae_wn_removed;
    m->audio.mel_per_latent = 1 << (v->n_down < 16 ? v->n_down : 16);

    /* BigVGAN: bigvgan_vocoder.yml unless the file says otherwise; every
     * resblock kernel takes the same dilations */
    struct reel_bigvgan_config *b = &m->audio.vocoder.cfg;
    reel_bigvgan_config_16k(b);
    if (cgiven(c, "audio.vocoder.num_mels"))
        b->num_mels = r->voc_mels;
    if (cgiven(c, "audio.vocoder.upsample_initial_channel"))
        b->upsample_initial_channel = r->voc_channels;
    if (cgiven(c, "audio.vocoder.snake_beta"))
        b->snake_beta = r->voc_snake_beta;
    if (cgiven(c, "audio.vocoder.snake_logscale"))
        b->snake_logscale = r->voc_logscale;
    if (cgiven(c, "audio.vocoder.upsample_rates")) {
        memcpy(b->upsample_rates, r->voc_rates, sizeof b->upsample_rates);
        b->n_ups = r->n_voc_rates;
    }
    if (cgiven(c, "audio.vocoder.upsample_kernel_sizes")) {
        memcpy(b->upsample_kernel_sizes, r->voc_kernels, sizeof b->upsample_kernel_sizes);
        if (r->n_voc_kernels != b->n_ups)
            cfg_error(c, "audio.vocoder.upsample_kernel_sizes",
                      "needs one kernel per upsample rate (%d), got %d", b->n_ups,
                      r->n_voc_kernels);
    } else if (cgiven(c, "audio.vocoder.upsample_rates") && b->n_ups != 6) {
        cfg_error(c, "audio.vocoder.upsample_kernel_sizes",
                  "must be given with upsample_rates of another length than 6");
    }
    if (b->n_ups < 1)
        cfg_error(c, "audio.vocoder.upsample_rates", "must not be empty");
    if (cgiven(c, "audio.vocoder.resblock_kernel_sizes")) {
        if (r->n_voc_rb_kernels < 1)
            cfg_error(c, "audio.vocoder.resblock_kernel_sizes", "must not be empty");
        memcpy(b->resblock_kernel_sizes, r->voc_rb_kernels, sizeof b->resblock_kernel_sizes);
        b->n_kernels = r->n_voc_rb_kernels;
    }
    if (cgiven(c, "audio.vocoder.resblock_dilations")) {
        if (r->n_voc_dilations < 1)
            cfg_error(c, "audio.vocoder.resblock_dilations", "must not be empty");
        b->n_dilations = r->n_voc_dilations;
    }
    for (int k = 0; k < b->n_kernels; k++)
        for (int d = 0; d < b->n_dilations; d++)
            b->resblock_dilation_sizes[k][d] = cgiven(c, "audio.vocoder.resblock_dilations")
                                                   ? r->voc_dilations[d]
                                                   : (d == 0 ? 1 : d == 1 ? 3 : 5);
    int64_t hop = 1;
    for (int i = 0; i < b->n_ups; i++)
        hop *= b->upsample_rates[i];
    m->audio.hop = hop > 1 << 20 ? 1 << 20 : (int)hop;
    m->audio.sample_rate = r->sample_rate;
    m->audio.latents_per_second =
        (double)m->audio.sample_rate / ((double)m->audio.hop * m->audio.mel_per_latent);

    /* how the three fit */
    if (a->in_dim != v->embed_dim || a->out_dim != v->embed_dim)
        cfg_error(c, "audio.dit.in_dim", "in_dim and out_dim must equal audio.vae.embed_dim "
                                         "(%d), got %d and %d",
                  v->embed_dim, a->in_dim, a->out_dim);
    if (b->num_mels != v->data_dim)
        cfg_error(c, "audio.vocoder.num_mels", "must equal audio.vae.data_dim (%d), got %d",
                  v->data_dim, b->num_mels);

    /* weight files */
    if (!r->avae_weights)
        cfg_error(c, "audio.vae.weights", "required for family ovi");
    if (!r->voc_weights)
        cfg_error(c, "audio.vocoder.weights", "required for family ovi");
    if (m->weights_dir && r->avae_weights)
        m->audio.vae.weights =
            resolve_weight(c, "audio.vae.weights", r->avae_weights, m->weights_dir);
    if (m->weights_dir && r->voc_weights)
        m->audio.vocoder.weights =
            resolve_weight(c, "audio.vocoder.weights", r->voc_weights, m->weights_dir);
}

void reel_model_config_ovi(const struct reel_model_config *c, struct reel_ovi_config *out)
{
    memset(out, 0, sizeof *out);
    out->video = c->dit.cfg;
    out->audio = c->audio.tower;
}

int64_t reel_model_audio_latents(const struct reel_model_config *c, double seconds)
{
    if (!c->audio.enabled || !(seconds > 0))
        return 0;
    /* the small epsilon keeps exact products (5 s -> 156.25) from rounding down a step */
    int64_t n = (int64_t)floor(seconds * c->audio.latents_per_second + 1e-9);
    return n < 1 ? 1 : n;
}

static void check_and_fill(struct cfg_ctx *c, struct cfg_raw *r, struct reel_model_config *m)
{
    /* --- identity and paths */
    set_dup(c->diag, &m->name, r->name);
    set_dup(c->diag, &m->description, r->description);
    m->family = (enum reel_model_family)r->family;
    m->trained = r->trained;
    if (r->weights_dir) {
        m->weights_dir = resolve_weight(c, "weights_dir", r->weights_dir, m->dir);
    } else if (set_dup(c->diag, &m->weights_dir, m->dir)) {
        return;
    }
    if (m->weights_dir) {
        if (r->dit_weights)
            m->dit.weights = resolve_weight(c, "dit.weights", r->dit_weights, m->weights_dir);
        if (r->vae_weights)
            m->vae.weights = resolve_weight(c, "vae.weights", r->vae_weights, m->weights_dir);
        if (r->te_weights)
            m->text_encoder.weights =
                resolve_weight(c, "text_encoder.weights", r->te_weights, m->weights_dir);
        if (r->te_tokenizer)
            m->text_encoder.tokenizer =
                resolve_weight(c, "text_encoder.tokenizer", r->te_tokenizer, m->weights_dir);
    }

    /* --- DiT */
    struct reel_wan_dit_config *d = &m->dit.cfg;
    d->model_type = (enum reel_wan_model_type)r->model_type;
    memcpy(d->patch, r->patch, sizeof d->patch);
    d->text_len = r->text_len;
    d->in_dim = r->in_dim;
    d->dim = r->dim;
    d->ffn_dim = r->ffn_dim;
    d->freq_dim = r->freq_dim;
    d->text_dim = r->text_dim;
    d->out_dim = r->out_dim;
    d->num_heads = r->num_heads;
    d->num_layers = r->num_layers;
    d->qk_norm = r->qk_norm;
    d->cross_attn_norm = r->cross_attn_norm;
    d->eps = r->eps;
    if (d->dim % d->num_heads != 0 || (d->dim / d->num_heads) % 2 != 0)
        cfg_error(c, cgiven(c, "dit.num_heads") ? "dit.num_heads" : "dit.dim",
                  "dim %d must split into %d heads of even size", d->dim, d->num_heads);
    if (d->freq_dim % 2 != 0)
        cfg_error(c, "dit.freq_dim", "must be even, got %d", d->freq_dim);

    /* --- VAE */
    struct reel_err err = {0};
    int version = r->vae_version == 22 ? 22 : 21;
    reel_wan_vae_config_from_json(NULL, version, &m->vae.cfg, &err);
    struct reel_wan_vae_config *v = &m->vae.cfg;
    if (cgiven(c, "vae.dim"))
        v->dim = r->vae_dim;
    v->dec_dim = version == 21 ? v->dim : v->dec_dim;
    if (cgiven(c, "vae.dec_dim")) {
        if (version == 21)
            cfg_error(c, "vae.dec_dim", "only the 2.2 VAE (version 22) has a separate decoder width");
        else
            v->dec_dim = r->vae_dec_dim;
    }
    if (cgiven(c, "vae.z_dim"))
        v->z_dim = r->z_dim;
    if (cgiven(c, "vae.num_res_blocks"))
        v->num_res_blocks = r->num_res_blocks;
    if (cgiven(c, "vae.dim_mult")) {
        if (r->n_dim_mult < 1)
            cfg_error(c, "vae.dim_mult", "must not be empty");
        else {
            memcpy(v->dim_mult, r->dim_mult, sizeof r->dim_mult);
            v->n_mult = r->n_dim_mult;
        }
    }
    if (cgiven(c, "vae.attn_scales")) {
        memcpy(v->attn_scales, r->attn_scales, sizeof r->attn_scales);
        v->n_attn_scales = r->n_attn_scales;
    }
    if (cgiven(c, "vae.temporal_downsample")) {
        memcpy(v->temporal_downsample, r->temporal, sizeof r->temporal);
        v->n_temporal = r->n_temporal;
    }
    if (v->n_temporal != v->n_mult - 1)
        cfg_error(c, "vae.temporal_downsample",
                  "must have one entry per stage transition (%d for %d dim_mult entries), got %d",
                  v->n_mult - 1, v->n_mult, v->n_temporal);
    m->vae.spatial_stride = (1 << (v->n_mult - 1)) * (version == 22 ? 2 : 1);
    m->vae.temporal_stride = 1;
    for (int i = 0; i < v->n_temporal; i++)
        if (v->temporal_downsample[i])
            m->vae.temporal_stride *= 2;
    if (cgiven(c, "vae.latent_mean") && r->n_mean != v->z_dim)
        cfg_error(c, "vae.latent_mean", "must have z_dim = %d values, got %d", v->z_dim, r->n_mean);
    if (cgiven(c, "vae.latent_std") && r->n_std != v->z_dim)
        cfg_error(c, "vae.latent_std", "must have z_dim = %d values, got %d", v->z_dim, r->n_std);
    for (int i = 0; i < v->z_dim && i < REEL_MODEL_MAX_Z; i++) {
        m->vae.latent_mean[i] = (float)r->mean[i];
        m->vae.latent_std[i] = (float)r->std[i];
        m->vae.latent_inv_std[i] = r->std[i] > 0 ? 1.0f / (float)r->std[i] : 0.0f;
    }

    /* --- text encoder */
    set_dup(c->diag, &m->text_encoder.kind, te_kind_names[r->te_kind]);
    m->text_encoder.text_len = r->te_text_len;
    m->text_encoder.vocab = r->te_vocab;
    m->text_encoder.dim = r->te_dim;
    m->text_encoder.dim_attn = r->te_dim_attn;
    m->text_encoder.dim_ffn = r->te_dim_ffn;
    m->text_encoder.num_heads = r->te_heads;
    m->text_encoder.num_layers = r->te_layers;
    m->text_encoder.num_buckets = r->te_buckets;
    m->text_encoder.shared_pos = r->te_shared_pos;
    if (r->te_dim_attn % r->te_heads != 0)
        cfg_error(c, "text_encoder.num_heads", "dim_attn %d must split into %d heads",
                  r->te_dim_attn, r->te_heads);

    /* --- how the networks fit together */
    if (d->out_dim != v->z_dim)
        cfg_error(c, "dit.out_dim", "must equal vae.z_dim (%d), got %d", v->z_dim, d->out_dim);
    m->dit.frame_cond = r->frame_cond;
    if (m->dit.frame_cond && m->family != REEL_FAMILY_OVI)
        cfg_error(c, "dit.frame_cond", "frame conditioning is implemented for family ovi only");
    m->dit.pin_first_latent = r->pin_first_latent;
    if (m->dit.pin_first_latent && !m->dit.frame_cond)
        cfg_error(c, "dit.pin_first_latent", "needs dit.frame_cond: true (it holds the first "
                  "latent frame to the condition latent of a given frame 0)");
    /* frame_cond: x_t, one mask channel per video frame of a latent frame
     * (the VAE's temporal stride), the condition latent */
    int want_in = d->model_type == REEL_WAN_I2V ? 2 * v->z_dim + 4
                  : m->dit.frame_cond ? 2 * v->z_dim + m->vae.temporal_stride : v->z_dim;
    if (m->dit.frame_cond && d->in_dim != want_in)
        cfg_error(c, "dit.in_dim", "must be 2 * out_dim + %d = %d with dit.frame_cond (x_t, %d mask "
                  "channels - the VAE's temporal stride - and the condition latent), got %d",
                  m->vae.temporal_stride, want_in, m->vae.temporal_stride, d->in_dim);
    else if (d->in_dim != want_in)
        cfg_error(c, "dit.in_dim", "must be %d for a %s model with vae.z_dim %d, got %d", want_in,
                  model_type_names[r->model_type], v->z_dim, d->in_dim);
    if (d->text_dim != r->te_dim)
        cfg_error(c, "dit.text_dim", "must equal text_encoder.dim (%d), got %d", r->te_dim,
                  d->text_dim);
    if (d->text_len != r->te_text_len)
        cfg_error(c, "dit.text_len", "must equal text_encoder.text_len (%d), got %d",
                  r->te_text_len, d->text_len);

    /* --- size / frame rules, and the defaults against them */
    m->size_multiple_w = m->vae.spatial_stride * d->patch[2];
    m->size_multiple_h = m->vae.spatial_stride * d->patch[1];
    m->frame_step = m->vae.temporal_stride * d->patch[0];
    m->max_frames = (REEL_WAN_ROPE_POSITIONS - 1) * m->frame_step + 1;
    /* the encoder reads the condition video in chunks: a frame-conditioned
     * model with a 2x VAE still takes 1 + 4k frames */
    if (m->dit.frame_cond) {
        while (m->frame_step % REEL_WAN_VAE_CHUNK_FRAMES)
            m->frame_step *= 2;
        m->max_frames -= (m->max_frames - 1) % m->frame_step;
    }

    m->defaults.width = r->size[0];
    m->defaults.height = r->size[1];
    m->defaults.fps = r->fps;
    m->defaults.frames = r->frames;
    set_dup(c->diag, &m->defaults.negative_prompt, r->negative_prompt);
    reel_flow_solver_from_name(solver_names[r->solver], &m->defaults.solver, &err);
    m->defaults.steps = r->steps;
    m->defaults.shift = r->shift;
    m->defaults.guidance = r->guidance;
    if (cgiven(c, "defaults.size") &&
        (r->size[0] % m->size_multiple_w || r->size[1] % m->size_multiple_h))
        cfg_error(c, "defaults.size", "%dx%d is not a multiple of %dx%d (VAE stride x patch)",
                  r->size[0], r->size[1], m->size_multiple_w, m->size_multiple_h);
    if (cgiven(c, "defaults.frames") && ((r->frames - 1) % m->frame_step || r->frames > m->max_frames))
        cfg_error(c, "defaults.frames", "must be 1 + %dk and at most %d, got %d", m->frame_step,
                  m->max_frames, r->frames);

    fill_audio(c, r, m);
}

void reel_model_config_free(struct reel_model_config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->dir);
    free(c->name);
    free(c->description);
    free(c->weights_dir);
    free(c->dit.weights);
    free(c->vae.weights);
    free(c->text_encoder.kind);
    free(c->text_encoder.weights);
    free(c->text_encoder.tokenizer);
    free(c->defaults.negative_prompt);
    free(c->defaults.audio_negative_prompt);
    free(c->audio.vae.weights);
    free(c->audio.vocoder.weights);
    memset(c, 0, sizeof *c);
}

int reel_model_config_load(const char *path, const char *display, struct reel_model_config *out,
                           struct reel_diag *diag)
{
    memset(out, 0, sizeof *out);
    if (!display)
        display = path;
    int errors_before = diag->errors, oom_before = diag->oom;
    struct reel_ydoc doc;
    struct cfg_raw raw;
    memset(&raw, 0, sizeof raw);
    struct reel_field_loc loc[N_CFG_FIELDS];
    memset(loc, 0, sizeof loc);
    struct cfg_ctx c = {.file = display, .loc = loc, .diag = diag};

    char why[256];
    out->path = reel_path_resolve(path, NULL, why, sizeof why);
    out->dir = reel_path_dirname_abs(path);
    if (!out->path || !out->dir) {
        reel_diag_add(diag, REEL_DIAG_ERROR, REEL_E_MODEL, "%s: %s", display, why);
        reel_model_config_free(out);
        return REEL_E_MODEL;
    }
    if (reel_ydoc_load_file(path, display, &doc, diag, REEL_E_MODEL) != REEL_OK) {
        reel_ydoc_free(&doc);
        reel_model_config_free(out);
        return diag->oom ? REEL_E_OTHER : REEL_E_MODEL;
    }
    if (!doc.root || doc.root->kind != REEL_Y_MAP) {
        reel_diag_add(diag, REEL_DIAG_ERROR, REEL_E_MODEL,
                      "%s:%d:%d: a model config is a map of keys (name, family, dit, vae, "
                      "text_encoder, defaults)",
                      display, doc.root ? doc.root->line : 1, doc.root ? doc.root->col : 1);
        reel_ydoc_free(&doc);
        reel_model_config_free(out);
        return REEL_E_MODEL;
    }
    raw_defaults(&raw);
    struct reel_schema schema = {
        .fields = cfg_fields, .n_fields = N_CFG_FIELDS, .out = &raw, .loc = loc,
        .file = display, .base_dir = out->dir, .diag = diag, .code = REEL_E_MODEL,
    };
    reel_schema_walk(&schema, doc.root);
    reel_ydoc_free(&doc);
    if (diag->errors == errors_before)
        check_and_fill(&c, &raw, out);
    reel_schema_free_strings(cfg_fields, N_CFG_FIELDS, &raw);
    if (diag->oom && !oom_before) {
        reel_model_config_free(out);
        return REEL_E_OTHER;
    }
    if (diag->errors != errors_before) {
        reel_model_config_free(out);
        return REEL_E_MODEL;
    }
    return REEL_OK;
}

/* ------------------------------------------------------------ parameters */

struct counter {
    int tensors;
    int64_t params;
};

static void count_tensor(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    (void)name;
    struct counter *k = ctx;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    k->tensors++;
    k->params += n;
}

void reel_model_config_params(const struct reel_model_config *c, struct reel_model_params *p)
{
    memset(p, 0, sizeof *p);
    struct counter k = {0};
    if (c->audio.enabled) {
        struct reel_ovi_config oc;
        reel_model_config_ovi(c, &oc);
        reel_ovi_tensor_table(&oc, count_tensor, &k);
    } else {
        reel_wan_dit_tensor_table(&c->dit.cfg, count_tensor, &k);
    }
    p->dit_tensors = k.tensors;
    p->dit = k.params;
    if (c->audio.enabled) {
        k = (struct counter){0};
        reel_mmaudio_vae_tensor_table(&c->audio.vae.cfg, count_tensor, &k);
        p->audio_vae_tensors = k.tensors;
        p->audio_vae = k.params;
        k = (struct counter){0};
        reel_bigvgan_tensor_table(&c->audio.vocoder.cfg, REEL_BIGVGAN_PLAIN, count_tensor, &k);
        p->vocoder_tensors = k.tensors;
        p->vocoder = k.params;
    }
    k = (struct counter){0};
    reel_wan_vae_tensor_table(&c->vae.cfg, count_tensor, &k);
    p->vae_tensors = k.tensors;
    p->vae = k.params;

    /* umT5 encoder (wan/modules/t5.py T5Encoder): token embedding; per block
     * norm1, attn q/k/v/o, norm2, ffn gate/fc1/fc2 and (unless shared) a
     * relative position table; a final norm. */
    const struct {
        int64_t vocab, dim, dim_attn, dim_ffn, heads, layers, buckets;
    } t = {c->text_encoder.vocab,     c->text_encoder.dim,       c->text_encoder.dim_attn,
           c->text_encoder.dim_ffn,   c->text_encoder.num_heads, c->text_encoder.num_layers,
           c->text_encoder.num_buckets};
    int64_t block = 2 * t.dim + 4 * t.dim * t.dim_attn + 3 * t.dim * t.dim_ffn;
    int64_t pos = t.buckets * t.heads;
    p->text = t.vocab * t.dim + t.layers * block + t.dim;
    p->text_tensors = (int)(1 + 9 * t.layers + 1);
    if (c->text_encoder.shared_pos) {
        p->text += pos;
        p->text_tensors += 1;
    } else {
        p->text += t.layers * pos;
        p->text_tensors += (int)t.layers;
    }
}
