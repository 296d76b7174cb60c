/* WAV writer (pcm_s16le through libavformat's wav muxer), used for the
 * audio sidecar beside a rendered clip. Written under a temporary name and
 * renamed into place by reel_wav_commit. */
#ifndef REEL_WAV_H
#define REEL_WAV_H

#include <stdint.h>

#include "kernels/err.h"

struct reel_wav;

/* Creates the temporary file and writes the header; errors (REEL_E_MEDIA)
 * name path. */
int reel_wav_open(const char *path, int rate, int channels, struct reel_wav **out,
                  struct reel_err *err);
/* Appends `samples` interleaved frames. */
int reel_wav_write(struct reel_wav *w, const int16_t *pcm, int64_t samples, struct reel_err *err);
int64_t reel_wav_samples(const struct reel_wav *w);
/* Writes the trailer (sizes) and closes the file, still under its temporary name. */
int reel_wav_close(struct reel_wav *w, struct reel_err *err);
/* Renames the closed file into place. */
int reel_wav_commit(struct reel_wav *w, struct reel_err *err);
/* Deletes the temporary file unless committed, frees; NULL-safe. */
void reel_wav_free(struct reel_wav *w);

#endif
