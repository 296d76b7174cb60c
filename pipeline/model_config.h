/* Model configs (configs/NAME.yaml): the architecture of each network
 * (Wan DiT, Wan VAE, umT5 text encoder; for the ovi family also the audio
 * tower, MMAudio VAE and BigVGAN vocoder), where its weight files are, and the
 * render defaults (size, fps, frames, sampler, negative prompt). Parsed with
 * the spec's YAML walker, so errors read "file:line:col: key.path: message".
 * docs/model-config.md is the reference. */
#ifndef REEL_MODEL_CONFIG_H
#define REEL_MODEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"
#include "audio/bigvgan.h"
#include "audio/mmaudio_vae.h"
#include "stages/flow_sampler.h"
#include "stages/ovi_fusion.h"
#include "stages/wan_dit.h"
#include "stages/wan_vae.h"

struct reel_diag; /* pipeline/spec.h */

/* Latent channels a config may declare mean / std for. */
#define REEL_MODEL_MAX_Z 64
/* The DiT's rotary tables cover this many positions per axis
 * (WanModel.freqs), which bounds latent frames per clip. */
#define REEL_WAN_ROPE_POSITIONS 1024

enum reel_model_family {
    REEL_FAMILY_WAN21,
    REEL_FAMILY_WAN22,
    REEL_FAMILY_REEL_DEFAULT,
    REEL_FAMILY_OVI, /* Ovi: video + audio towers in one fusion checkpoint, joint audio */
};
const char *reel_model_family_name(enum reel_model_family f); /* "wan2.1", ... */

struct reel_model_config {
    char *path;                  /* the config file (absolute) */
    char *dir;                   /* its directory */
    char *name;
    enum reel_model_family family;
    char *description;           /* may be "" */
    int trained;                 /* 0: placeholder weights (the default model before training) */
    char *weights_dir;           /* absolute; weight paths below are resolved against it */
    struct {
        struct reel_wan_dit_config cfg;
        char *weights;           /* file, shard index or directory (reel_weights_open) */
        /* Frame conditioning by channel concat (Wan2.1 i2v / FLF2V style; family
         * ovi): the video tower's input is [x_t | mask (S) | cond latent], S the
         * VAE's temporal stride, so cfg.in_dim = 2 * out_dim + S. Enables image /
         * last_image / keyframes. */
        int frame_cond;
        /* With frame 0 given, the first latent frame is held at every step to
         * the condition latent noised to that step's sigma (Wan2.2 TI2V's
         * first-frame replacement): a causal VAE encodes frame 0 alone into
         * it, so the clip starts on the given image's VAE round trip. */
        int pin_first_latent;
    } dit;
    struct {
        struct reel_wan_vae_config cfg;
        char *weights;
        int spatial_stride;      /* pixels per latent cell: 8 (2.1), 16 (2.2) */
        int temporal_stride;     /* video frames per latent frame: 4 (Wan), 2 (reel-default) */
        float latent_mean[REEL_MODEL_MAX_Z];    /* [cfg.z_dim] */
        float latent_std[REEL_MODEL_MAX_Z];
        float latent_inv_std[REEL_MODEL_MAX_Z]; /* 1.0f / std, as the reference's scale[1] */
    } vae;
    struct {
        char *kind;              /* "umt5" */
        char *weights;
        char *tokenizer;         /* SentencePiece model file */
        int text_len;
        int vocab, dim, dim_attn, dim_ffn, num_heads, num_layers, num_buckets;
        int shared_pos;
    } text_encoder;
    struct {
        int width, height;
        double fps;
        int frames;
        char *negative_prompt;
        enum reel_flow_solver solver;
        int steps;
        double shift, guidance;
        /* Joint-audio models (audio.enabled) only. */
        double audio_guidance;
        char *audio_negative_prompt; /* "" for other models */
        int slg_layer;               /* skip-layer guidance on the unconditional pass; <= 0 off */
    } defaults;
    /* The audio branch (family ovi). For the other families enabled is 0 and
     * the rest is zero. dit.cfg is then the video tower, and dit.weights the
     * fusion checkpoint holding both towers (video_model.* / audio_model.*). */
    struct {
        int enabled;
        struct reel_ovi_audio_config tower; /* the audio WanModel's kwargs */
        struct {
            struct reel_mmaudio_vae_config cfg;
            char *weights;
            int weight_norm_removed; /* 0: a released checkpoint (v1-16), normalised at load */
        } vae;
        struct {
            struct reel_bigvgan_config cfg;
            char *weights;
        } vocoder;
        int sample_rate;          /* of the vocoder's PCM: 16000 */
        int hop;                  /* PCM samples per mel frame (product of upsample_rates) */
        int mel_per_latent;       /* 2^downsamples of the VAE */
        double latents_per_second; /* sample_rate / (hop * mel_per_latent): 31.25 */
    } audio;
    /* Derived: sizes must be multiples of these (VAE stride x DiT patch), frame
     * counts 1 + k * frame_step, at most max_frames. */
    int size_multiple_w, size_multiple_h;
    int frame_step;
    int max_frames;
};

/* The configs directory: $REEL_CONFIGS, else the configs/ folder of the
 * checkout the running binary was built in (<repo>/build/reel ->
 * <repo>/configs, found by walking up from /proc/self/exe), else
 * <prefix>/share/reel/configs. REEL_E_MODEL when none exists. */
int reel_model_configs_dir(char *buf, size_t n, struct reel_err *err);

/* Whether `model` is a path (contains '/' or ends in .yaml / .yml) rather
 * than a name in the configs directory. */
int reel_model_is_path(const char *model);

/* Resolves a name (configs_dir/NAME.yaml) or a path (against base_dir) to
 * an absolute config file that exists. REEL_E_SPEC when there is none; the
 * message lists the known names. configs_dir NULL: reel_model_configs_dir. */
int reel_model_config_find(const char *model, const char *base_dir, const char *configs_dir,
                           char **path_out, struct reel_err *err);

/* Comma-separated names of the configs in dir ("" if none). */
void reel_model_config_names(const char *dir, char *buf, size_t n);

/* Loads and checks one config file. Every problem goes to diag as an error
 * with code REEL_E_MODEL; returns REEL_OK or REEL_E_MODEL (REEL_E_OTHER when
 * out of memory). On failure *out is left empty. display: the name used in
 * messages (NULL: path). */
int reel_model_config_load(const char *path, const char *display, struct reel_model_config *out,
                           struct reel_diag *diag);
void reel_model_config_free(struct reel_model_config *c);

/* The fusion model's config of an audio model (video tower = dit.cfg). */
void reel_model_config_ovi(const struct reel_model_config *c, struct reel_ovi_config *out);

/* Audio latents for a clip of `seconds` (the clip's duration, never a
 * frame count): floor(seconds * latents_per_second), at least 1 - 157 for
 * Ovi's 121 frames at 24 fps, as the reference. The mux pads the few ms
 * left to the video's length with silence. */
int64_t reel_model_audio_latents(const struct reel_model_config *c, double seconds);

/* Tensor and parameter counts of each network, from the same tensor tables
 * the loaders bind (the text encoder from umT5's layer formula). */
struct reel_model_params {
    int dit_tensors, vae_tensors, text_tensors;
    int64_t dit, vae, text;
    /* audio models: dit counts the whole fusion model (both towers) */
    int audio_vae_tensors, vocoder_tensors;
    int64_t audio_vae, vocoder;
};
void reel_model_config_params(const struct reel_model_config *c, struct reel_model_params *p);

#endif
