/* Image sequences (PNG 8/16-bit, EXR half/float) through libavcodec's
 * intra encoders, one packet = one complete file. Each frame goes to a
 * temporary name; the whole sequence is renamed into place at commit, so
 * the final names appear only for a finished render. */
#include "stages/image_seq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>

struct reel_image_seq {
    enum reel_image_format format;
    char *pattern;
    int64_t start, written;
    int width, height, depth;
    int committed;
    AVCodecContext *enc;
    AVFrame *frame;
    AVPacket *pkt;
};

/* A parsed "prefix%0Wdsuffix" pattern ("%%" already unescaped). */
struct seq_pattern {
    char prefix[4096], suffix[256];
    int width, zero;
};

static int parse_pattern(enum reel_image_format format, const char *pattern,
                         struct seq_pattern *p, struct reel_err *err)
{
    const char *ext = format == REEL_IMAGE_EXR ? ".exr" : ".png";
    memset(p, 0, sizeof *p);
    size_t plen = strlen(pattern);
    if (plen == 0 || plen >= sizeof p->prefix - 8)
        return reel_errf(err, REEL_E_SPEC, "image sequence pattern '%s': empty or too long",
                         pattern);
    if (!strchr(pattern, '%')) {
        snprintf(p->prefix, sizeof p->prefix, "%s.", pattern);
        snprintf(p->suffix, sizeof p->suffix, "%s", ext);
        p->width = 4;
        p->zero = 1;
        return REEL_OK;
    }
    int conversions = 0;
    char *dst = p->prefix, *end = p->prefix + sizeof p->prefix - 1;
    for (const char *s = pattern; *s; s++) {
        if (*s != '%') {
            if (dst >= end)
                goto too_long;
            *dst++ = *s;
            continue;
        }
        if (s[1] == '%') {
            if (dst >= end)
                goto too_long;
            *dst++ = '%';
            s++;
            continue;
        }
        const char *q = s + 1;
        int zero = 0, width = 0;
        if (*q == '0') {
            zero = 1;
            q++;
        }
        while (*q >= '0' && *q <= '9' && width < 100)
            width = width * 10 + (*q++ - '0');
        if (*q != 'd' || width > 18 || ++conversions > 1)
            return reel_errf(err, REEL_E_SPEC,
                             "image sequence pattern '%s': needs exactly one %%d "
                             "(like name.%%04d.png)", pattern);
        *dst = 0;
        p->zero = zero;
        p->width = width;
        /* The rest goes to the suffix. */
        dst = p->suffix;
        end = p->suffix + sizeof p->suffix - 1;
        s = q;
    }
    *dst = 0;
    if (conversions != 1)
        return reel_errf(err, REEL_E_SPEC, "image sequence pattern '%s': needs one %%d", pattern);
    return REEL_OK;
too_long:
    return reel_errf(err, REEL_E_SPEC, "image sequence pattern '%s': too long", pattern);
}

int reel_image_seq_path(enum reel_image_format format, const char *pattern, int64_t number,
                        char *buf, size_t size, struct reel_err *err)
{
    struct seq_pattern p;
    int rc = parse_pattern(format, pattern, &p, err);
    if (rc)
        return rc;
    int n = p.zero ? snprintf(buf, size, "%s%0*lld%s", p.prefix, p.width, (long long)number,
                              p.suffix)
                   : snprintf(buf, size, "%s%*lld%s", p.prefix, p.width, (long long)number,
                              p.suffix);
    if (n < 0 || (size_t)n >= size)
        return reel_errf(err, REEL_E_SPEC, "image sequence pattern '%s': name too long", pattern);
    return REEL_OK;
}

int reel_image_seq_match(enum reel_image_format format, const char *pattern, const char *path,
                         int64_t first, int64_t last)
{
    struct seq_pattern p;
    if (parse_pattern(format, pattern, &p, NULL))
        return 0;
    size_t pl = strlen(p.prefix), sl = strlen(p.suffix), n = strlen(path);
    if (n < pl + sl + 1 || strncmp(path, p.prefix, pl) || strcmp(path + n - sl, p.suffix))
        return 0;
    int64_t number = 0;
    for (size_t i = pl; i < n - sl; i++) {
        if (path[i] < '0' || path[i] > '9' || number > INT64_MAX / 100)
            return 0;
        number = number * 10 + (path[i] - '0');
    }
    return number >= first && number <= last;
}

/* Final and temporary names of sequence frame i (0-based). */
static int frame_paths(const struct reel_image_seq *s, int64_t i, char *final, char *tmp,
                       size_t size, struct reel_err *err)
{
    int rc = reel_image_seq_path(s->format, s->pattern, s->start + i, final, size, err);
    if (rc)
        return rc;
    if (reel_output_temp_path(final, (long)getpid(), tmp, size))
        return reel_errf(err, REEL_E_SPEC, "%s: path too long", final);
    return REEL_OK;
}

static int write_whole_file(const char *dest, const char *name, const uint8_t *data, size_t size,
                            struct reel_err *err)
{
    FILE *f = fopen(dest, "wb");
    if (!f)
        return reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", name, strerror(errno));
    size_t put = fwrite(data, 1, size, f);
    int e = errno;
    int closed = fclose(f);
    if (put != size || closed != 0) {
        unlink(dest);
        return reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", name,
                         strerror(put != size ? e : errno));
    }
    return REEL_OK;
}

/* One frame through an intra encoder, its single packet into `dest`. */
static int encode_to_file(AVCodecContext *enc, AVFrame *frame, AVPacket *pkt, const char *dest,
                          const char *name, struct reel_err *err)
{
    char eb[128];
    int ret = avcodec_send_frame(enc, frame);
    if (ret >= 0)
        ret = avcodec_receive_packet(enc, pkt);
    if (ret < 0) {
        av_strerror(ret, eb, sizeof eb);
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot encode the image: %s", name, eb);
    }
    int rc = write_whole_file(dest, name, pkt->data, (size_t)pkt->size, err);
    av_packet_unref(pkt);
    return rc;
}

static int open_image_encoder(enum AVCodecID id, enum AVPixelFormat pix, int width, int height,
                              const char *exr_format, AVCodecContext **out, const char *name,
                              struct reel_err *err)
{
    *out = NULL;
    const AVCodec *codec = avcodec_find_encoder(id);
    if (!codec)
        return reel_errf(err, REEL_E_MEDIA, "%s: this FFmpeg build has no %s encoder", name,
                         id == AV_CODEC_ID_EXR ? "EXR" : "PNG");
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", name);
    c->width = width;
    c->height = height;
    c->pix_fmt = pix;
    c->time_base = (AVRational){1, 25}; /* unused by intra image encoders, but required */
    c->thread_count = 1;                /* one complete file per packet, same bytes every run */
    c->flags |= AV_CODEC_FLAG_BITEXACT;
    if (id == AV_CODEC_ID_EXR) {
        av_opt_set(c->priv_data, "compression", "zip16", 0);
        av_opt_set(c->priv_data, "format", exr_format, 0);
    }
    int ret = avcodec_open2(c, codec, NULL);
    if (ret < 0) {
        char eb[128];
        av_strerror(ret, eb, sizeof eb);
        avcodec_free_context(&c);
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot open the %s encoder: %s", name,
                         codec->name, eb);
    }
    *out = c;
    return REEL_OK;
}

int reel_image_seq_open(enum reel_image_format format, const char *pattern, int64_t start_number,
                        int bit_depth, int width, int height, struct reel_image_seq **out,
                        struct reel_err *err)
{
    *out = NULL;
    if (format != REEL_IMAGE_PNG && format != REEL_IMAGE_EXR)
        return reel_errf(err, REEL_E_SPEC, "image sequence: unknown format %d", (int)format);
    if (!pattern)
        return reel_errf(err, REEL_E_SPEC, "image sequence: no file pattern");
    if (start_number < 0)
        return reel_errf(err, REEL_E_SPEC, "image sequence '%s': negative start number",
                         pattern);
    int depth = bit_depth ? bit_depth : (format == REEL_IMAGE_PNG ? 8 : 16);
    if ((format == REEL_IMAGE_PNG && depth != 8 && depth != 16) ||
        (format == REEL_IMAGE_EXR && depth != 16 && depth != 32))
        return reel_errf(err, REEL_E_SPEC, "image sequence '%s': %d-bit %s is not offered "
                         "(PNG: 8 or 16, EXR: 16 or 32)", pattern, depth,
                         format == REEL_IMAGE_PNG ? "PNG" : "EXR");
    struct reel_image_seq *s = calloc(1, sizeof *s);
    if (!s)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    s->format = format;
    s->start = start_number;
    s->width = width;
    s->height = height;
    s->depth = depth;
    s->pattern = strdup(pattern);
    s->frame = av_frame_alloc();
    s->pkt = av_packet_alloc();
    char final[4096], tmp[4096];
    int rc = REEL_E_OTHER;
    if (!s->pattern || !s->frame || !s->pkt) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto fail;
    }
    rc = frame_paths(s, 0, final, tmp, sizeof final, err);
    if (rc)
        goto fail;
    enum AVPixelFormat pix = format == REEL_IMAGE_EXR ? AV_PIX_FMT_GBRPF32LE
                             : depth == 16           ? AV_PIX_FMT_RGB48BE
                                                     : AV_PIX_FMT_RGB24;
    rc = open_image_encoder(format == REEL_IMAGE_EXR ? AV_CODEC_ID_EXR : AV_CODEC_ID_PNG, pix,
                            width, height, depth == 32 ? "float" : "half", &s->enc, final, err);
    if (rc)
        goto fail;
    s->frame->format = pix;
    s->frame->width = width;
    s->frame->height = height;
    if (av_frame_get_buffer(s->frame, 0) < 0) {
        rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", final);
        goto fail;
    }
    /* Fail now, naming the file, rather than after the first decoded frame. */
    FILE *probe = fopen(tmp, "wb");
    if (!probe) {
        rc = reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", final, strerror(errno));
        goto fail;
    }
    fclose(probe);
    unlink(tmp);
    *out = s;
    return REEL_OK;
fail:
    reel_image_seq_free(s);
    return rc;
}

int reel_image_seq_needs(const struct reel_image_seq *s)
{
    if (s->format == REEL_IMAGE_EXR)
        return REEL_NEED_FLOAT;
    return s->depth == 16 ? REEL_NEED_RGB48 : REEL_NEED_RGB24;
}

int reel_image_seq_write(struct reel_image_seq *s, const struct reel_pixels *px,
                         struct reel_err *err)
{
    char final[4096], tmp[4096];
    int rc = frame_paths(s, s->written, final, tmp, sizeof final, err);
    if (rc)
        return rc;
    if (av_frame_make_writable(s->frame) < 0)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", final);
    AVFrame *f = s->frame;
    int w = s->width, h = s->height;
    if (s->format == REEL_IMAGE_EXR) {
        for (int p = 0; p < 3; p++)
            for (int y = 0; y < h; y++)
                memcpy(f->data[p] + (ptrdiff_t)y * f->linesize[p], px->gbr[p] + (size_t)y * w,
                       (size_t)w * sizeof(float));
    } else if (s->depth == 16) {
        /* rgb48be: the PNG encoder takes 16-bit samples big-endian, as PNG stores them. */
        for (int y = 0; y < h; y++) {
            uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0];
            const uint16_t *src = px->rgb48 + (size_t)y * w * 3;
            for (int i = 0; i < w * 3; i++) {
                row[2 * i] = (uint8_t)(src[i] >> 8);
                row[2 * i + 1] = (uint8_t)(src[i] & 0xff);
            }
        }
    } else {
        for (int y = 0; y < h; y++)
            memcpy(f->data[0] + (ptrdiff_t)y * f->linesize[0], px->rgb24 + (size_t)y * w * 3,
                   (size_t)w * 3);
    }
    f->pts = s->written;
    rc = encode_to_file(s->enc, f, s->pkt, tmp, final, err);
    if (rc)
        return rc;
    s->written++;
    return REEL_OK;
}

int reel_image_seq_commit(struct reel_image_seq *s, struct reel_err *err)
{
    char final[4096], tmp[4096];
    for (int64_t i = 0; i < s->written; i++) {
        int rc = frame_paths(s, i, final, tmp, sizeof final, err);
        if (rc == REEL_OK)
            rc = reel_output_commit(tmp, final, err);
        if (rc) {
            /* All or nothing: take back the frames already renamed. */
            for (int64_t j = 0; j < i; j++)
                if (frame_paths(s, j, final, tmp, sizeof final, NULL) == REEL_OK)
                    unlink(final);
            s->written = s->written - i - 1; /* the rest are still temporaries */
            s->start += i + 1;
            return rc;
        }
    }
    s->committed = 1;
    return REEL_OK;
}

void reel_image_seq_free(struct reel_image_seq *s)
{
    if (!s)
        return;
    if (!s->committed) {
        char final[4096], tmp[4096];
        for (int64_t i = 0; i < s->written; i++)
            if (frame_paths(s, i, final, tmp, sizeof final, NULL) == REEL_OK)
                unlink(tmp);
    }
    avcodec_free_context(&s->enc);
    av_frame_free(&s->frame);
    av_packet_free(&s->pkt);
    free(s->pattern);
    free(s);
}

int reel_png_write_rgb24(const char *dest, const char *name, const uint8_t *rgb,
                         ptrdiff_t stride, int width, int height, struct reel_err *err)
{
    AVCodecContext *enc = NULL;
    AVFrame *f = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    int rc = REEL_OK;
    if (!f || !pkt) {
        rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", name);
        goto done;
    }
    rc = open_image_encoder(AV_CODEC_ID_PNG, AV_PIX_FMT_RGB24, width, height, NULL, &enc, name,
                            err);
    if (rc)
        goto done;
    f->format = AV_PIX_FMT_RGB24;
    f->width = width;
    f->height = height;
    if (av_frame_get_buffer(f, 0) < 0) {
        rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", name);
        goto done;
    }
    for (int y = 0; y < height; y++)
        memcpy(f->data[0] + (ptrdiff_t)y * f->linesize[0], rgb + (ptrdiff_t)y * stride,
               (size_t)width * 3);
    f->pts = 0;
    rc = encode_to_file(enc, f, pkt, dest, name, err);
done:
    avcodec_free_context(&enc);
    av_frame_free(&f);
    av_packet_free(&pkt);
    return rc;
}
