/* Pieces of the output stage behind stages/mux.h: one frame in the several
 * pixel representations the outputs need, and the image-sequence writer
 * (PNG / EXR, one file per frame through libavcodec). Sequence files stay
 * under temporary names until reel_image_seq_commit, so a failed or aborted
 * render never leaves a partial sequence under the final names. */
#ifndef REEL_IMAGE_SEQ_H
#define REEL_IMAGE_SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"
#include "stages/mux.h"

/* One frame; only the representations some output asked for are set. */
struct reel_pixels {
    int width, height;
    const uint8_t *rgb24;  /* packed, rows width * 3 bytes apart */
    const uint16_t *rgb48; /* packed, native-endian, rows width * 3 values apart */
    const float *gbr[3];   /* planes G, B, R in [0, 1] (FFmpeg's gbrpf32 order) */
};

enum reel_pixel_need { REEL_NEED_RGB24 = 1, REEL_NEED_RGB48 = 2, REEL_NEED_FLOAT = 4 };

struct reel_image_seq;

/* Checks that the encoder exists ("this FFmpeg build has no EXR encoder"),
 * the pattern and bit depth (REEL_E_SPEC), and that the first file's
 * directory is writable (REEL_E_MEDIA naming the file). */
int reel_image_seq_open(enum reel_image_format format, const char *pattern, int64_t start_number,
                        int bit_depth, int width, int height, struct reel_image_seq **out,
                        struct reel_err *err);
/* REEL_NEED_* bits the writer reads from struct reel_pixels. */
int reel_image_seq_needs(const struct reel_image_seq *s);
/* Encodes the next frame into its temporary file. */
int reel_image_seq_write(struct reel_image_seq *s, const struct reel_pixels *px,
                         struct reel_err *err);
/* Renames every written frame into place (on failure removes them all). */
int reel_image_seq_commit(struct reel_image_seq *s, struct reel_err *err);
/* Deletes uncommitted temporaries; NULL-safe. */
void reel_image_seq_free(struct reel_image_seq *s);

/* Final file name of frame `number` (the start number included). Returns 0,
 * or REEL_E_SPEC for a bad pattern / a name that does not fit. */
int reel_image_seq_path(enum reel_image_format format, const char *pattern, int64_t number,
                        char *buf, size_t size, struct reel_err *err);

/* Whether `path` is the name of a frame numbered in [first, last] under
 * this pattern (for finding a killed render's leftovers). */
int reel_image_seq_match(enum reel_image_format format, const char *pattern, const char *path,
                         int64_t first, int64_t last);

/* Encodes rgb24 as a PNG into the file `dest` (created or truncated).
 * `name` is the file errors mention. */
int reel_png_write_rgb24(const char *dest, const char *name, const uint8_t *rgb,
                         ptrdiff_t stride, int width, int height, struct reel_err *err);

#endif
