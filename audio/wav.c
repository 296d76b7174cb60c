/* WAV sidecar writer: s16 packets straight into libavformat's wav muxer (no
 * encoder needed for PCM), bitexact so reruns give the same bytes. */
#include "audio/wav.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>

#include "stages/mux.h"

struct reel_wav {
    AVFormatContext *fmt;
    AVPacket *pkt;
    char *path, *tmp;
    int channels, closed, committed;
    int64_t samples;
};

static const char *av_err_text(int code, char *buf, size_t size)
{
    av_strerror(code, buf, size);
    return buf;
}

int reel_wav_open(const char *path, int rate, int channels, struct reel_wav **out,
                  struct reel_err *err)
{
    *out = NULL;
    if (rate <= 0 || channels < 1 || channels > 8)
        return reel_errf(err, REEL_E_SPEC, "%s: bad WAV format (%d Hz, %d channels)", path, rate,
                         channels);
    struct reel_wav *w = calloc(1, sizeof *w);
    char tmp[4096], eb[128];
    int rc = REEL_E_MEDIA;
    if (!w)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    w->channels = channels;
    if (reel_output_temp_path(path, (long)getpid(), tmp, sizeof tmp)) {
        rc = reel_errf(err, REEL_E_SPEC, "%s: path too long", path);
        goto fail;
    }
    w->path = strdup(path);
    w->tmp = strdup(tmp);
    w->pkt = av_packet_alloc();
    if (!w->path || !w->tmp || !w->pkt) {
        rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
        goto fail;
    }
    /* The format is named: the temporary name's extension is not ".wav". */
    int ret = avformat_alloc_output_context2(&w->fmt, NULL, "wav", tmp);
    if (ret < 0 || !w->fmt) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: cannot set up the wav muxer: %s", path,
                       av_err_text(ret, eb, sizeof eb));
        goto fail;
    }
    w->fmt->flags |= AVFMT_FLAG_BITEXACT;
    AVStream *st = avformat_new_stream(w->fmt, NULL);
    if (!st) {
        rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
        goto fail;
    }
    AVCodecParameters *par = st->codecpar;
    par->codec_type = AVMEDIA_TYPE_AUDIO;
    par->codec_id = AV_CODEC_ID_PCM_S16LE;
    par->sample_rate = rate;
    av_channel_layout_default(&par->ch_layout, channels);
    par->bits_per_coded_sample = 16;
    par->block_align = 2 * channels;
    par->bit_rate = (int64_t)rate * channels * 16;
    st->time_base = (AVRational){1, rate};
    ret = avio_open(&w->fmt->pb, tmp, AVIO_FLAG_WRITE);
    if (ret < 0) {
        rc = reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", path,
                       av_err_text(ret, eb, sizeof eb));
        goto fail;
    }
    ret = avformat_write_header(w->fmt, NULL);
    if (ret < 0) {
        rc = reel_errf(err, REEL_E_MEDIA, "%s: cannot write the WAV header: %s", path,
                       av_err_text(ret, eb, sizeof eb));
        goto fail;
    }
    *out = w;
    return REEL_OK;
fail:
    reel_wav_free(w);
    return rc;
}

int reel_wav_write(struct reel_wav *w, const int16_t *pcm, int64_t samples, struct reel_err *err)
{
    if (w->closed)
        return reel_errf(err, REEL_E_OTHER, "%s: write after close", w->path);
    if (samples <= 0)
        return REEL_OK;
    char eb[128];
    int64_t bytes = samples * w->channels * 2;
    if (bytes > INT32_MAX / 2)
        return reel_errf(err, REEL_E_OTHER, "%s: audio block too large", w->path);
    int ret = av_new_packet(w->pkt, (int)bytes);
    if (ret < 0)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", w->path);
    memcpy(w->pkt->data, pcm, (size_t)bytes);
    w->pkt->pts = w->pkt->dts = w->samples;
    w->pkt->duration = samples;
    w->pkt->stream_index = 0;
    ret = av_write_frame(w->fmt, w->pkt);
    av_packet_unref(w->pkt);
    if (ret < 0)
        return reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", w->path,
                         av_err_text(ret, eb, sizeof eb));
    w->samples += samples;
    return REEL_OK;
}

int64_t reel_wav_samples(const struct reel_wav *w)
{
    return w->samples;
}

int reel_wav_close(struct reel_wav *w, struct reel_err *err)
{
    if (w->closed)
        return REEL_OK;
    char eb[128];
    w->closed = 1;
    int ret = av_write_trailer(w->fmt);
    int ret2 = avio_closep(&w->fmt->pb);
    if (ret < 0 || ret2 < 0)
        return reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", w->path,
                         av_err_text(ret < 0 ? ret : ret2, eb, sizeof eb));
    return REEL_OK;
}

int reel_wav_commit(struct reel_wav *w, struct reel_err *err)
{
    if (!w->closed)
        return reel_errf(err, REEL_E_OTHER, "%s: commit before close", w->path);
    int rc = reel_output_commit(w->tmp, w->path, err);
    w->committed = 1; /* either renamed or already deleted */
    return rc;
}

void reel_wav_free(struct reel_wav *w)
{
    if (!w)
        return;
    if (w->fmt) {
        if (w->fmt->pb)
            avio_closep(&w->fmt->pb);
        avformat_free_context(w->fmt);
    }
    if (w->tmp && !w->committed)
        unlink(w->tmp);
    av_packet_free(&w->pkt);
    free(w->path);
    free(w->tmp);
    free(w);
}
