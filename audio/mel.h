/* MMAudio's MelConverter (mmaudio/ext/mel_converter.py): clamp to [-1, 1],
 * reflect-pad (n_fft - hop) / 2 per side, STFT magnitude (center=False,
 * periodic Hann window), slaney mel filterbank, log10 with a 1e-5 floor.
 * The filterbank and window come from the checkpoint's buffers when given,
 * else they are computed here (librosa.filters.mel, torch.hann_window). */
#ifndef REEL_MEL_H
#define REEL_MEL_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"

struct reel_mel_config {
    int sampling_rate, n_fft, hop_size, win_size, num_mels;
    double fmin, fmax;
    float log_clip, mag_eps; /* 1e-5, 1e-9 */
};

/* The 16 kHz converter of get_mel_converter('16k'). */
void reel_mel_config_16k(struct reel_mel_config *cfg);
/* From the golden file's config JSON (keys as get_mel_converter's; missing
 * keys keep the 16k values). Refuses win_size != n_fft and non-log10 norms. */
int reel_mel_config_from_json(const struct reel_json *j, struct reel_mel_config *cfg,
                              struct reel_err *err);

/* librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with htk=False and
 * norm='slaney' in float32: out[n_mels, n_fft/2 + 1]. */
void reel_mel_filterbank(int sr, int n_fft, int n_mels, double fmin, double fmax, float *out);
/* torch.hann_window(n) (periodic), float32. */
void reel_hann_window(int n, float *out);

struct reel_mel;

/* w may be NULL (filterbank and window computed), else `mel_basis`
 * [num_mels, n_fft/2+1] and `hann_window` [win_size] are read from it. */
int reel_mel_create(const struct reel_mel_config *cfg, const struct reel_weights *w,
                    struct reel_backend *be, struct reel_mel **out, struct reel_err *err);
void reel_mel_destroy(struct reel_mel *m);

/* Frames for n samples: 1 + (n + 2 * pad - n_fft) / hop, pad = (n_fft - hop) / 2;
 * 0 when n is too short (n must exceed the reflect pad). */
int64_t reel_mel_frames(const struct reel_mel *m, int64_t n);

/* Optional intermediates: "padded_wave", "stft_mag", "mel_linear". */
typedef void (*reel_mel_probe_fn)(void *ctx, const char *name, const float *data, int64_t n);
void reel_mel_set_probe(struct reel_mel *m, reel_mel_probe_fn fn, void *ctx);

/* wave[n] -> mel[num_mels, frames(n)] (log10). */
int reel_mel_forward(struct reel_mel *m, const float *wave, int64_t n, float *mel,
                     struct reel_err *err);

#endif
