/* Contact sheet: a PNG grid of N evenly spaced frames of a clip, each with
 * its timecode HH:MM:SS:FF underneath. Frames are picked and downscaled as
 * they stream by, so memory is the sheet itself, whatever the clip length. */
#ifndef REEL_CONTACT_SHEET_H
#define REEL_CONTACT_SHEET_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"

struct reel_contact_sheet_layout {
    int count, columns, rows;  /* after defaults and clamping to the clip */
    int thumb_width, thumb_height;
    int cell_width;            /* max(thumb, label) */
    int label_height, font_scale, gap;
    int width, height;         /* of the PNG */
};

/* count 0 = 12, columns 0 = 4, thumb_width 0 = min(width, 192); count and
 * columns are clamped to the frame count. Returns REEL_E_SPEC for bad sizes. */
int reel_contact_sheet_layout(int width, int height, int64_t total_frames, int count,
                              int columns, int thumb_width,
                              struct reel_contact_sheet_layout *out, struct reel_err *err);

/* Frame index shown in slot i: round(i * (total - 1) / (count - 1)). */
int64_t reel_contact_sheet_pick(int64_t total_frames, int count, int slot);

/* Non-drop-frame timecode of a frame index at fps_num / fps_den, frames
 * counted at the rounded integer rate: "HH:MM:SS:FF" (buf >= 16 bytes). */
void reel_timecode(int64_t frame, int fps_num, int fps_den, char *buf, size_t size);

struct reel_contact_sheet;

/* Creates the sheet's temporary file beside path (so an unwritable
 * directory fails now, naming the file). */
int reel_contact_sheet_open(const char *path, int width, int height, int fps_num, int fps_den,
                            int64_t total_frames, int count, int columns, int thumb_width,
                            struct reel_contact_sheet **out, struct reel_err *err);
/* Offers frame `index` (in order); keeps a thumbnail if it is one of the picks. */
int reel_contact_sheet_add(struct reel_contact_sheet *cs, const uint8_t *rgb24, ptrdiff_t stride,
                           int64_t index, struct reel_err *err);
/* Encodes the PNG into the temporary file (complete, not yet renamed). */
int reel_contact_sheet_close(struct reel_contact_sheet *cs, struct reel_err *err);
/* Renames it into place. */
int reel_contact_sheet_commit(struct reel_contact_sheet *cs, struct reel_err *err);
/* Deletes the temporary file unless committed; NULL-safe. */
void reel_contact_sheet_free(struct reel_contact_sheet *cs);

#endif
