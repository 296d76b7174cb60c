/* One still image (PNG, JPEG, anything libavformat + libavcodec decode as a
 * video frame) as RGB at a given size: scaled to cover width x height with
 * its aspect ratio kept, then centre-cropped (the overhang split evenly,
 * the odd pixel going to the right / bottom). The first frame of the file is
 * used. */
#ifndef REEL_IMAGE_READ_H
#define REEL_IMAGE_READ_H

#include <stdint.h>

#include "kernels/err.h"

/* The size of the crop of the scaled image: the scale-to-cover size
 * (sw, sh) for a src_w x src_h image and a width x height clip, and the
 * top-left corner of the centre crop. Exposed for the tests. */
void reel_image_cover(int src_w, int src_h, int width, int height, int *sw, int *sh, int *x0,
                      int *y0);

/* Reads path into out: [3, height, width] floats, channel-first (R, G, B),
 * 8-bit values mapped to [-1, 1] as v / 127.5 - 1. Errors are REEL_E_MEDIA
 * naming the file (missing, unreadable, not an image). */
int reel_image_read(const char *path, int width, int height, float *out, struct reel_err *err);

#endif
