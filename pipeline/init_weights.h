/* `reel init-weights`: deterministic random weights for a model config that
 * has no trained weights yet (the default model until training lands), so
 * the whole pipeline runs with the real code paths. Implemented in
 * pipeline/init_weights_cmd.c. */
#ifndef REEL_INIT_WEIGHTS_H
#define REEL_INIT_WEIGHTS_H

#include <stdint.h>

#include "kernels/err.h"
#include "pipeline/model_config.h"

/* The seed `make` uses for the default model (and the command's default). */
#define REEL_INIT_WEIGHTS_SEED 1

/* Files one model may need: dit, vae, text_encoder, and for models with an
 * audio tower audio_vae and vocoder. */
#define REEL_INIT_WEIGHTS_MAX_FILES 5

/* What one written file holds. */
struct reel_init_weights_file {
    const char *network; /* "dit", "vae", "text_encoder", "audio_vae", "vocoder" */
    const char *path;    /* points into the config */
    int tensors;
    int64_t params;
    int64_t bytes;       /* file size */
};

/* Writes the DiT, VAE and umT5 (Wan naming) files of m (for family ovi: the
 * fusion model's video_model./audio_model. table as the DiT, plus the
 * MMAudio VAE and the BigVGAN vocoder in plain naming), every tensor of each
 * network's tensor table, as F32 drawn from reel_rng_normal(seed, stream =
 * hash of network and tensor name), so each tensor is a pure function of
 * (seed, network, name, shape). Refuses (REEL_E_MODEL) a config with
 * `trained: true`, and (REEL_E_MEDIA) to replace an existing file unless
 * force; both are checked before anything is written. files receives what
 * was written (unused entries have network NULL). */
int reel_init_weights_write(const struct reel_model_config *m, uint64_t seed, int force,
                            struct reel_init_weights_file files[REEL_INIT_WEIGHTS_MAX_FILES],
                            struct reel_err *err);

/* `reel init-weights MODEL [--seed N] [--force]`. */
int reel_init_weights_main(int argc, char **argv);

#endif
