/* Still images through libavformat (the image2 pipe demuxers) and
 * libavcodec, scaled with libswscale. */
#include "stages/image_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

void reel_image_cover(int src_w, int src_h, int width, int height, int *sw, int *sh, int *x0,
                      int *y0)
{
    /* the side that needs the larger scale decides; the other overhangs */
    if ((int64_t)src_w * height >= (int64_t)src_h * width) {
        *sh = height;
        *sw = (int)(((int64_t)src_w * height + src_h / 2) / src_h);
        if (*sw < width)
            *sw = width;
    } else {
        *sw = width;
        *sh = (int)(((int64_t)src_h * width + src_w / 2) / src_w);
        if (*sh < height)
            *sh = height;
    }
    *x0 = (*sw - width) / 2;
    *y0 = (*sh - height) / 2;
}

static const char *av_err(int code, char *buf, size_t n)
{
    av_strerror(code, buf, n);
    return buf;
}

/* The first decoded frame of the file's first video stream. */
static int decode_first(const char *path, AVFrame *frame, struct reel_err *err)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = NULL;
    char why[128];
    if (access(path, R_OK) != 0)
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot read the image: %s", path,
                         strerror(errno));
    if (av_log_get_level() == AV_LOG_INFO)
        av_log_set_level(AV_LOG_QUIET);
    int ret = avformat_open_input(&fmt, path, NULL, NULL);
    if (ret < 0)
        return reel_errf(err, REEL_E_MEDIA, "%s: not a readable image (%s)", path,
                         av_err(ret, why, sizeof why));
    int rc = REEL_OK;
    if ((ret = avformat_find_stream_info(fmt, NULL)) < 0) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: not a readable image (%s)", path,
                       av_err(ret, why, sizeof why));
        goto done;
    }
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    const AVCodec *codec = si >= 0 ? avcodec_find_decoder(fmt->streams[si]->codecpar->codec_id)
                                   : NULL;
    if (!codec) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: not an image libavcodec can decode", path);
        goto done;
    }
    dec = avcodec_alloc_context3(codec);
    pkt = av_packet_alloc();
    if (!dec || !pkt) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    dec->thread_count = 1;
    if (avcodec_parameters_to_context(dec, fmt->streams[si]->codecpar) < 0 ||
        (ret = avcodec_open2(dec, codec, NULL)) < 0) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: cannot open the image decoder", path);
        goto done;
    }
    int got = 0, eof = 0;
    while (!got) {
        if (!eof) {
            ret = av_read_frame(fmt, pkt);
            if (ret == AVERROR_EOF) {
                eof = 1;
                ret = avcodec_send_packet(dec, NULL);
            } else if (ret < 0) {
                break;
            } else {
                ret = pkt->stream_index == si ? avcodec_send_packet(dec, pkt) : 0;
                av_packet_unref(pkt);
            }
            if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
                break;
        }
        ret = avcodec_receive_frame(dec, frame);
        if (ret == 0)
            got = 1;
        else if (ret == AVERROR_EOF || (eof && ret == AVERROR(EAGAIN)))
            break;
        else if (ret != AVERROR(EAGAIN))
            break;
    }
    if (!got || frame->width < 1 || frame->height < 1)
        rc = reel_errf(err, REEL_E_MEDIA, "%s: no picture could be decoded (%s)", path,
                       ret < 0 ? av_err(ret, why, sizeof why) : "empty");
done:
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return rc;
}

int reel_image_read(const char *path, int width, int height, float *out, struct reel_err *err)
{
    if (width < 1 || height < 1)
        return reel_errf(err, REEL_E_OTHER, "image size %dx%d", width, height);
    AVFrame *frame = av_frame_alloc();
    if (!frame)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    int rc = decode_first(path, frame, err);
    struct SwsContext *sws = NULL;
    uint8_t *rgb = NULL;
    if (rc)
        goto done;
    int sw, sh, x0, y0;
    reel_image_cover(frame->width, frame->height, width, height, &sw, &sh, &x0, &y0);
    sws = sws_getContext(frame->width, frame->height, (enum AVPixelFormat)frame->format, sw, sh,
                         AV_PIX_FMT_RGB24,
                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT,
                         NULL, NULL, NULL);
    size_t stride = (size_t)sw * 3;
    rgb = calloc(stride * (size_t)sh + 64, 1); /* padded: swscale's SIMD may touch past the end */
    if (!sws || !rgb) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: cannot convert the image (%s, %dx%d) to RGB",
                       path, av_get_pix_fmt_name((enum AVPixelFormat)frame->format),
                       frame->width, frame->height);
        goto done;
    }
    uint8_t *dst[4] = {rgb, NULL, NULL, NULL};
    int dst_stride[4] = {(int)stride, 0, 0, 0};
    if (sws_scale(sws, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height,
                  dst, dst_stride) != sh) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: scaling the image failed", path);
        goto done;
    }
    size_t plane = (size_t)width * (size_t)height;
    for (int y = 0; y < height; y++) {
        const uint8_t *row = rgb + (size_t)(y + y0) * stride + (size_t)x0 * 3;
        for (int x = 0; x < width; x++)
            for (int c = 0; c < 3; c++)
                out[(size_t)c * plane + (size_t)y * (size_t)width + (size_t)x] =
                    (float)row[3 * x + c] / 127.5f - 1.0f;
    }
done:
    free(rgb);
    sws_freeContext(sws);
    av_frame_free(&frame);
    return rc;
}
