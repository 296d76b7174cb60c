/* MMAudio's 1D mel VAE (mmaudio/ext/autoencoder/vae.py, 16 kHz: 80 mels,
 * 20 latent channels, 2x time downsampling): magnitude-preserving convs
 * (EDM2 style, no biases), pixel norm, mp_silu, one middle attention block,
 * data_mean/data_std (de)normalisation. Encode gives the Gaussian moments,
 * decode a log10 mel. Every size comes from the config and is checked
 * against the checkpoint's tensors. */
#ifndef REEL_MMAUDIO_VAE_H
#define REEL_MMAUDIO_VAE_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/wan_dit.h" /* reel_tensor_emit_fn */

#define REEL_MMVAE_MAX_LEVELS 8

struct reel_mmaudio_vae_config {
    int data_dim, embed_dim, hidden_dim;
    int ch_mult[REEL_MMVAE_MAX_LEVELS], n_mult;
    int num_res_blocks;
    int attn_layers[REEL_MMVAE_MAX_LEVELS], n_attn; /* levels with attention (3 = none in 3 levels) */
    int down_layers[REEL_MMVAE_MAX_LEVELS], n_down;
    int kernel_size; /* encoder convs and the decoder's conv_in/conv_out; decoder blocks use 3 */
    double clip_act;
    int encoder;     /* 0: decoder-only checkpoint (MMAudio's need_vae_encoder=False) */
};

/* get_my_vae('16k'): data 80, embed 20, hidden 384, ch_mult (1,2,4), 2 res
 * blocks, attn_layers [3], down_layers [0], k 3, clip 256, with encoder. */
void reel_mmaudio_vae_config_16k(struct reel_mmaudio_vae_config *cfg);
/* From a JSON object: VAE kwargs (data_dim, embed_dim, hidden_dim) plus the
 * optional Encoder1D arguments at top level or under "encoder" (ch_mult,
 * num_res_blocks, attn_layers, down_layers, kernel_size, clip_act) and
 * "encoder_included". Missing keys keep the 16k values. */
int reel_mmaudio_vae_config_from_json(const struct reel_json *j,
                                      struct reel_mmaudio_vae_config *cfg, struct reel_err *err);

/* Every tensor of VAE.state_dict() in order, buffers included (names and
 * shapes do not change with weight-norm removal). */
void reel_mmaudio_vae_tensor_table(const struct reel_mmaudio_vae_config *cfg,
                                   reel_tensor_emit_fn emit, void *ctx);

/* MPConv1D.remove_weight_norm on w[cout, fan_in] (f32): each output
 * channel o becomes w_o / (1e-4 + ||w_o|| / sqrt(fan_in)) / sqrt(fan_in). */
void reel_mpconv_remove_weight_norm(const float *w, int64_t cout, int64_t fan_in, float *out);

struct reel_mmaudio_vae;

/* weight_norm_removed: 1 when the file holds the weights after
 * VAE.remove_weight_norm() (the golden files), 0 for a released checkpoint
 * (v1-16.pth), whose raw weights are normalised here at load. */
int reel_mmaudio_vae_create(const struct reel_mmaudio_vae_config *cfg,
                            const struct reel_weights *w, int weight_norm_removed,
                            struct reel_backend *be, struct reel_mmaudio_vae **out,
                            struct reel_err *err);
void reel_mmaudio_vae_destroy(struct reel_mmaudio_vae *vae);

/* Latent length for T mel frames (T / 2^downsamples) and back. */
int64_t reel_mmaudio_vae_latent_len(const struct reel_mmaudio_vae *vae, int64_t T);
int64_t reel_mmaudio_vae_mel_len(const struct reel_mmaudio_vae *vae, int64_t latent_len);

/* Intermediates: "enc.normalized_input", "enc.conv_in", "enc.down.i.block.j",
 * "enc.down.i.downsample", "enc.mid.block_1|attn_1|block_2", "dec.conv_in",
 * "dec.mid.*", "dec.up.i.block.j", "dec.up.i.upsample", "dec.raw" (block
 * outputs before the clamp). */
typedef void (*reel_mmaudio_vae_probe_fn)(void *ctx, const char *name, const float *data,
                                          int64_t n);
void reel_mmaudio_vae_set_probe(struct reel_mmaudio_vae *vae, reel_mmaudio_vae_probe_fn fn,
                                void *ctx);

/* mel: raw log10 mel [data_dim, T] (normalised inside). moments:
 * [2 * embed_dim, latent_len(T)], unclamped: mean = rows 0..embed_dim-1,
 * logvar = the rest (DiagonalGaussianDistribution clamps it to [-30, 20]). */
int reel_mmaudio_vae_encode(struct reel_mmaudio_vae *vae, const float *mel, int64_t T,
                            float *moments, struct reel_err *err);
/* z: [embed_dim, L] -> mel [data_dim, mel_len(L)] (log10, de-normalised). */
int reel_mmaudio_vae_decode(struct reel_mmaudio_vae *vae, const float *z, int64_t L, float *mel,
                            struct reel_err *err);

#endif
