/* Contact sheet: the grid canvas is allocated up front and each picked
 * frame is downscaled straight into its cell as it streams by, labelled
 * with its timecode in a built-in 5x7 font (digits and ':' are all a
 * timecode needs). The PNG is encoded once at the end. */
#include "stages/contact_sheet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/mem.h>
#include <libswscale/swscale.h>

#include "stages/image_seq.h"
#include "stages/mux.h"

#define SHEET_GAP 4
#define LABEL_CHARS 11 /* HH:MM:SS:FF */
#define GLYPH_W 5
#define GLYPH_H 7
#define BACKGROUND 32
#define INK 235

/* Rows top to bottom, bit 4 = leftmost column. */
static const uint8_t glyph_digits[10][GLYPH_H] = {
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, /* 0 */
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* 1 */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, /* 2 */
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}, /* 3 */
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, /* 4 */
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}, /* 5 */
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, /* 6 */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, /* 8 */
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}, /* 9 */
};
static const uint8_t glyph_colon[GLYPH_H] = {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00};

struct reel_contact_sheet {
    struct reel_contact_sheet_layout lay;
    int src_width, src_height, fps_num, fps_den;
    int64_t total_frames;
    int next_slot;
    uint8_t *canvas; /* rgb24, lay.width * 3 per row */
    uint8_t *thumb;  /* av_malloc'd: swscale may use SIMD stores */
    int thumb_stride;
    struct SwsContext *sws;
    char *path, *tmp;
    int closed, committed;
};

int reel_contact_sheet_layout(int width, int height, int64_t total_frames, int count,
                              int columns, int thumb_width,
                              struct reel_contact_sheet_layout *out, struct reel_err *err)
{
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || total_frames <= 0)
        return reel_errf(err, REEL_E_SPEC, "contact sheet: bad clip size %dx%d, %lld frames",
                         width, height, (long long)total_frames);
    if (count < 0 || columns < 0 || thumb_width < 0 || count > 1000 || thumb_width > 4096)
        return reel_errf(err, REEL_E_SPEC, "contact sheet: bad count %d / columns %d / thumb "
                         "width %d", count, columns, thumb_width);
    int n = count ? count : 12;
    if (n > total_frames)
        n = (int)total_frames;
    int cols = columns ? columns : 4;
    if (cols > n)
        cols = n;
    int tw = thumb_width ? thumb_width : (width < 192 ? width : 192);
    int th = (int)(((int64_t)height * tw + width / 2) / width);
    if (th < 1)
        th = 1;
    int scale = tw >= 160 ? 2 : 1;
    int label_w = (LABEL_CHARS * (GLYPH_W + 1) - 1) * scale;
    out->count = n;
    out->columns = cols;
    out->rows = (n + cols - 1) / cols;
    out->thumb_width = tw;
    out->thumb_height = th;
    out->font_scale = scale;
    out->cell_width = tw > label_w + 4 ? tw : label_w + 4;
    out->label_height = GLYPH_H * scale + 6;
    out->gap = SHEET_GAP;
    out->width = cols * out->cell_width + (cols + 1) * SHEET_GAP;
    out->height = out->rows * (th + out->label_height) + (out->rows + 1) * SHEET_GAP;
    return REEL_OK;
}

int64_t reel_contact_sheet_pick(int64_t total_frames, int count, int slot)
{
    if (count <= 1)
        return 0;
    return ((int64_t)slot * (total_frames - 1) * 2 + (count - 1)) / (2 * (int64_t)(count - 1));
}

void reel_timecode(int64_t frame, int fps_num, int fps_den, char *buf, size_t size)
{
    if (fps_den <= 0)
        fps_den = 1;
    int64_t rate = ((int64_t)fps_num + fps_den / 2) / fps_den;
    if (rate < 1)
        rate = 1;
    if (frame < 0)
        frame = 0;
    int64_t ff = frame % rate, secs = frame / rate;
    char tc[96]; /* roomy enough for any int64 hours, so no truncation warning */
    snprintf(tc, sizeof tc, "%02lld:%02lld:%02lld:%02lld", (long long)(secs / 3600),
             (long long)(secs / 60 % 60), (long long)(secs % 60), (long long)ff);
    snprintf(buf, size, "%s", tc);
}

static void draw_text(uint8_t *canvas, int canvas_w, int canvas_h, int x0, int y0, int scale,
                      const char *text)
{
    for (int i = 0; text[i]; i++) {
        const uint8_t *g = text[i] == ':'                       ? glyph_colon
                           : (text[i] >= '0' && text[i] <= '9') ? glyph_digits[text[i] - '0']
                                                                : NULL;
        int cx = x0 + i * (GLYPH_W + 1) * scale;
        if (!g)
            continue;
        for (int row = 0; row < GLYPH_H * scale; row++)
            for (int col = 0; col < GLYPH_W * scale; col++) {
                if (!(g[row / scale] & (0x10 >> (col / scale))))
                    continue;
                int x = cx + col, y = y0 + row;
                if (x < 0 || y < 0 || x >= canvas_w || y >= canvas_h)
                    continue;
                uint8_t *p = canvas + ((size_t)y * canvas_w + x) * 3;
                p[0] = p[1] = p[2] = INK;
            }
    }
}

int reel_contact_sheet_open(const char *path, int width, int height, int fps_num, int fps_den,
                            int64_t total_frames, int count, int columns, int thumb_width,
                            struct reel_contact_sheet **out, struct reel_err *err)
{
    *out = NULL;
    struct reel_contact_sheet_layout lay;
    int rc = reel_contact_sheet_layout(width, height, total_frames, count, columns, thumb_width,
                                       &lay, err);
    if (rc)
        return rc;
    char tmp[4096];
    if (reel_output_temp_path(path, (long)getpid(), tmp, sizeof tmp))
        return reel_errf(err, REEL_E_SPEC, "%s: path too long", path);
    struct reel_contact_sheet *cs = calloc(1, sizeof *cs);
    if (!cs)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    cs->lay = lay;
    cs->src_width = width;
    cs->src_height = height;
    cs->fps_num = fps_num;
    cs->fps_den = fps_den;
    cs->total_frames = total_frames;
    cs->path = strdup(path);
    cs->canvas = malloc((size_t)lay.width * lay.height * 3);
    cs->thumb_stride = (lay.thumb_width * 3 + 63) & ~63;
    cs->thumb = av_malloc((size_t)cs->thumb_stride * (lay.thumb_height + 1));
    cs->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, lay.thumb_width, lay.thumb_height,
                             AV_PIX_FMT_RGB24, SWS_AREA | SWS_ACCURATE_RND | SWS_BITEXACT, NULL,
                             NULL, NULL);
    if (!cs->path || !cs->canvas || !cs->thumb || !cs->sws) {
        reel_contact_sheet_free(cs);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    }
    memset(cs->canvas, BACKGROUND, (size_t)lay.width * lay.height * 3);
    /* Create the temporary now so an unwritable directory fails before rendering. */
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", path, strerror(errno));
        reel_contact_sheet_free(cs);
        return rc;
    }
    fclose(f);
    cs->tmp = strdup(tmp);
    if (!cs->tmp) {
        unlink(tmp);
        reel_contact_sheet_free(cs);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    }
    *out = cs;
    return REEL_OK;
}

int reel_contact_sheet_add(struct reel_contact_sheet *cs, const uint8_t *rgb24, ptrdiff_t stride,
                           int64_t index, struct reel_err *err)
{
    const struct reel_contact_sheet_layout *L = &cs->lay;
    if (cs->next_slot >= L->count ||
        index != reel_contact_sheet_pick(cs->total_frames, L->count, cs->next_slot))
        return REEL_OK;
    int slot = cs->next_slot++;
    const uint8_t *src[4] = {rgb24, NULL, NULL, NULL};
    int src_stride[4] = {(int)stride, 0, 0, 0};
    uint8_t *dst[4] = {cs->thumb, NULL, NULL, NULL};
    int dst_stride[4] = {cs->thumb_stride, 0, 0, 0};
    if (sws_scale(cs->sws, src, src_stride, 0, cs->src_height, dst, dst_stride) !=
        L->thumb_height)
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot scale frame %lld", cs->path,
                         (long long)index);
    int col = slot % L->columns, row = slot / L->columns;
    int x0 = L->gap + col * (L->cell_width + L->gap);
    int y0 = L->gap + row * (L->thumb_height + L->label_height + L->gap);
    int tx = x0 + (L->cell_width - L->thumb_width) / 2;
    for (int y = 0; y < L->thumb_height; y++)
        memcpy(cs->canvas + ((size_t)(y0 + y) * L->width + tx) * 3,
               cs->thumb + (size_t)y * cs->thumb_stride, (size_t)L->thumb_width * 3);
    char tc[32];
    reel_timecode(index, cs->fps_num, cs->fps_den, tc, sizeof tc);
    int label_w = ((int)strlen(tc) * (GLYPH_W + 1) - 1) * L->font_scale;
    draw_text(cs->canvas, L->width, L->height, x0 + (L->cell_width - label_w) / 2,
              y0 + L->thumb_height + 3, L->font_scale, tc);
    return REEL_OK;
}

int reel_contact_sheet_close(struct reel_contact_sheet *cs, struct reel_err *err)
{
    if (cs->closed)
        return REEL_OK;
    cs->closed = 1;
    return reel_png_write_rgb24(cs->tmp, cs->path, cs->canvas, (ptrdiff_t)cs->lay.width * 3,
                                cs->lay.width, cs->lay.height, err);
}

int reel_contact_sheet_commit(struct reel_contact_sheet *cs, struct reel_err *err)
{
    if (!cs->closed)
        return reel_errf(err, REEL_E_OTHER, "%s: commit before close", cs->path);
    int rc = reel_output_commit(cs->tmp, cs->path, err);
    cs->committed = 1;
    return rc;
}

void reel_contact_sheet_free(struct reel_contact_sheet *cs)
{
    if (!cs)
        return;
    if (cs->tmp && !cs->committed)
        unlink(cs->tmp);
    sws_freeContext(cs->sws);
    av_free(cs->thumb);
    free(cs->canvas);
    free(cs->path);
    free(cs->tmp);
    free(cs);
}
