/* The output stage: container writing after FFmpeg's doc/examples/mux.c
 * pattern (output context, one encoder per stream, send/receive, rescaled
 * timestamps, av_interleaved_write_frame, flush, trailer), plus the
 * side outputs (image sequence, WAV, contact sheet) fed from the same
 * converted frames and samples. Every file lives under a temporary name
 * until reel_mux_finish has completed all of them; only then are they
 * renamed, so a failure leaves no final name behind. */
#include "stages/mux.h"

#include "kernels/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/cpu.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "audio/wav.h"
#include "stages/contact_sheet.h"
#include "stages/image_seq.h"

/* Packet size for PCM, which has no frame size of its own; AAC uses 1024 too. */
#define PCM_FRAME_SAMPLES 1024
/* Input PCM is resampled in pieces of this many samples so the scratch
 * buffers stay small whatever block the caller hands over. */
#define RESAMPLE_CHUNK 8192

struct reel_mux {
    struct reel_mux_options o;
    char *path, *tmp; /* the container; NULL without one */
    int64_t frames;   /* video frames accepted */
    int failed, closed;

    /* Container. */
    AVFormatContext *fmt;
    AVStream *vst, *ast;
    AVCodecContext *venc, *aenc;
    struct SwsContext *sws;
    AVFrame *vframe, *aframe;
    AVPacket *pkt;

    /* One frame in the representations the outputs need (REEL_NEED_*). */
    int needs;
    uint8_t *rgb24;
    uint16_t *rgb48;
    float *gbr;

    /* Audio track: present, rate, channels, exact length in samples. */
    int audio_on, rate, channels, frame_size;
    int64_t audio_target, audio_queued, audio_sent;
    struct SwrContext *swr;
    int in_rate, in_channels;
    float *resampled, *mixed, *chunk; /* scratch, grown on demand */
    int64_t resampled_cap, mixed_cap;
    int16_t *s16;
    AVAudioFifo *fifo; /* resampled interleaved float, out channels */
    struct reel_wav *wav;

    struct reel_image_seq *images;
    struct reel_contact_sheet *sheet;
};

static const char *averr(int code, char *buf, size_t size)
{
    av_strerror(code, buf, size);
    return buf;
}

/* Library code never prints: FFmpeg (and libx264 through it) logs to stderr
 * by default, so quiet it unless the program chose a level itself. */
static void quiet_ffmpeg_log(void)
{
    if (av_log_get_level() == AV_LOG_INFO)
        av_log_set_level(AV_LOG_QUIET);
}

/* ----------------------------------------------------------------- setup */

enum container { CONTAINER_MP4, CONTAINER_MOV, CONTAINER_MKV };

static int container_of(const char *path, enum container *c, const char **fmt_name,
                        struct reel_err *err)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot && !strcasecmp(dot, ".mp4")) {
        *c = CONTAINER_MP4;
        *fmt_name = "mp4";
    } else if (dot && !strcasecmp(dot, ".mov")) {
        *c = CONTAINER_MOV;
        *fmt_name = "mov";
    } else if (dot && !strcasecmp(dot, ".mkv")) {
        *c = CONTAINER_MKV;
        *fmt_name = "matroska";
    } else {
        return reel_errf(err, REEL_E_SPEC, "%s: unknown container (use .mp4, .mov or .mkv)",
                         path);
    }
    return REEL_OK;
}

static int check_options(const struct reel_mux_options *o, struct reel_err *err)
{
    const char *name = o->path ? o->path : o->images.pattern ? o->images.pattern : "output";
    if (!o->path && o->images.format == REEL_IMAGE_NONE && !o->wav_path &&
        !o->contact_sheet.path)
        return reel_errf(err, REEL_E_SPEC, "output: nothing to write");
    if (o->width <= 0 || o->height <= 0 || o->width > 16384 || o->height > 16384)
        return reel_errf(err, REEL_E_SPEC, "%s: bad frame size %dx%d", name, o->width,
                         o->height);
    if (o->fps_num <= 0 || o->fps_den < 0)
        return reel_errf(err, REEL_E_SPEC, "%s: bad frame rate %d/%d", name, o->fps_num,
                         o->fps_den);
    if (o->total_frames <= 0)
        return reel_errf(err, REEL_E_SPEC, "%s: the frame count must be known (got %lld)", name,
                         (long long)o->total_frames);
    if (o->crf < 0 || o->crf > 51)
        return reel_errf(err, REEL_E_SPEC, "%s: CRF %d out of range (1..51)", name, o->crf);
    static const char *const presets[] = {"ultrafast", "superfast", "veryfast", "faster",
                                          "fast", "medium", "slow", "slower", "veryslow",
                                          "placebo"};
    static const char *const profiles[] = {"proxy", "lt", "standard", "hq", "4444", "4444xq"};
    /* Checked here: x264 reports an unknown preset on stderr, and library code never prints. */
    int known = !o->preset;
    for (size_t i = 0; !known && i < sizeof presets / sizeof presets[0]; i++)
        known = !strcmp(o->preset, presets[i]);
    if (!known)
        return reel_errf(err, REEL_E_SPEC, "%s: unknown encoder preset '%s' (ultrafast .. "
                         "veryslow, placebo)", name, o->preset);
    known = !o->prores_profile;
    for (size_t i = 0; !known && i < sizeof profiles / sizeof profiles[0]; i++)
        known = !strcmp(o->prores_profile, profiles[i]);
    if (!known)
        return reel_errf(err, REEL_E_SPEC, "%s: unknown ProRes profile '%s' (proxy, lt, "
                         "standard, hq, 4444, 4444xq)", name, o->prores_profile);
    if (o->audio_rate < 0 || o->audio_rate > 384000 || o->audio_bitrate < 0)
        return reel_errf(err, REEL_E_SPEC, "%s: bad audio rate %d / bitrate %d", name,
                         o->audio_rate, o->audio_bitrate);
    if (o->audio_channels < 0 || o->audio_channels > 2)
        return reel_errf(err, REEL_E_SPEC, "%s: %d audio channels (mono or stereo only)", name,
                         o->audio_channels);
    if (o->wav_path && !o->has_audio && !o->silence_if_no_audio)
        return reel_errf(err, REEL_E_SPEC,
                         "%s: a WAV sidecar was asked for but the clip has no audio", o->wav_path);
    if (!o->path)
        return REEL_OK;
    enum container c;
    const char *fmt_name;
    int rc = container_of(o->path, &c, &fmt_name, err);
    if (rc)
        return rc;
    if (o->video_codec == REEL_VIDEO_PRORES && c != CONTAINER_MOV)
        return reel_errf(err, REEL_E_SPEC, "%s: ProRes is written only to .mov", o->path);
    if (o->audio_codec == REEL_AUDIO_PCM && c == CONTAINER_MP4 &&
        (o->has_audio || o->silence_if_no_audio))
        return reel_errf(err, REEL_E_SPEC,
                         "%s: PCM audio is not a standard MP4 codec; use AAC, or .mov / .mkv",
                         o->path);
    if (o->video_codec != REEL_VIDEO_PRORES && (o->width % 2 || o->height % 2))
        return reel_errf(err, REEL_E_SPEC, "%s: 4:2:0 video needs an even size, got %dx%d",
                         o->path, o->width, o->height);
    if (o->video_codec == REEL_VIDEO_PRORES && o->width % 2)
        return reel_errf(err, REEL_E_SPEC, "%s: 4:2:2 video needs an even width, got %d",
                         o->path, o->width);
    return REEL_OK;
}

static int open_video_stream(struct reel_mux *m, enum container c, struct reel_err *err)
{
    const struct reel_mux_options *o = &m->o;
    static const char *const encoder_names[] = {"libx264", "libx265", "prores_ks"};
    const char *enc_name = encoder_names[o->video_codec];
    char eb[128];
    const AVCodec *codec = avcodec_find_encoder_by_name(enc_name);
    if (!codec)
        return reel_errf(err, REEL_E_MEDIA, "%s: this FFmpeg build has no %s encoder", m->path,
                         enc_name);
    m->vst = avformat_new_stream(m->fmt, NULL);
    m->venc = avcodec_alloc_context3(codec);
    m->vframe = av_frame_alloc();
    if (!m->vst || !m->venc || !m->vframe)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", m->path);
    AVCodecContext *cc = m->venc;
    cc->width = o->width;
    cc->height = o->height;
    /* Time base 1/fps: pts = frame index, every frame exactly one tick. */
    cc->time_base = (AVRational){o->fps_den, o->fps_num};
    cc->framerate = (AVRational){o->fps_num, o->fps_den};
    cc->sample_aspect_ratio = (AVRational){1, 1};
    cc->pix_fmt = o->video_codec == REEL_VIDEO_PRORES ? AV_PIX_FMT_YUV422P10LE : AV_PIX_FMT_YUV420P;
    cc->color_primaries = AVCOL_PRI_BT709;
    cc->color_trc = AVCOL_TRC_BT709;
    cc->colorspace = AVCOL_SPC_BT709;
    cc->color_range = AVCOL_RANGE_MPEG;
    cc->thread_count = 1; /* threaded encoders are not bit-reproducible */
    cc->flags |= AV_CODEC_FLAG_BITEXACT;
    if (m->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

    AVDictionary *opts = NULL;
    char crf[16] = "";
    if (o->video_codec == REEL_VIDEO_PRORES) {
        av_dict_set(&opts, "profile", o->prores_profile ? o->prores_profile : "hq", 0);
    } else {
        int default_crf = o->video_codec == REEL_VIDEO_H264 ? 18 : 22;
        snprintf(crf, sizeof crf, "%d", o->crf ? o->crf : default_crf);
        av_dict_set(&opts, "crf", crf, 0);
        av_dict_set(&opts, "preset", o->preset ? o->preset : "medium", 0);
        if (o->video_codec == REEL_VIDEO_HEVC)
            /* No thread pool, one frame thread: deterministic; x265 logs on its own. */
            av_dict_set(&opts, "x265-params", "log-level=none:pools=none:frame-threads=1", 0);
        /* x264 (Debian 12's r3095) reads uninitialised memory in its AVX-512
         * code: the same frames encode to different bytes depending on what
         * the heap held (MALLOC_PERTURB_ shows it, with the ffmpeg CLI too),
         * so a resumed render could differ from an uninterrupted one. On
         * AVX-512 machines cap x264 at AVX2 (every AVX-512 CPU has these). */
        if (o->video_codec == REEL_VIDEO_H264 && (av_get_cpu_flags() & AV_CPU_FLAG_AVX512))
            av_dict_set(&opts, "x264-params", "asm=avx2,fma3,bmi2", 0);
    }
    int ret = avcodec_open2(cc, codec, &opts);
    int unknown = av_dict_count(opts);
    av_dict_free(&opts);
    if (ret < 0)
        /* EINVAL here is nearly always a preset / profile name the encoder does not know. */
        return reel_errf(err, ret == AVERROR(EINVAL) ? REEL_E_SPEC : REEL_E_MEDIA,
                         "%s: cannot open the %s encoder (preset '%s', profile '%s', crf %s): %s",
                         m->path, enc_name, o->preset ? o->preset : "medium",
                         o->prores_profile ? o->prores_profile : "hq",
                         o->video_codec == REEL_VIDEO_PRORES ? "-" : crf,
                         averr(ret, eb, sizeof eb));
    if (unknown)
        return reel_errf(err, REEL_E_SPEC, "%s: the %s encoder rejected an option", m->path,
                         enc_name);
    ret = avcodec_parameters_from_context(m->vst->codecpar, cc);
    if (ret < 0)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", m->path);
    if (o->video_codec == REEL_VIDEO_HEVC && c != CONTAINER_MKV)
        /* hvc1 (parameter sets in the sample entry) is what Apple players accept. */
        m->vst->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
    m->vst->time_base = cc->time_base;
    m->vst->avg_frame_rate = cc->framerate;

    m->vframe->format = cc->pix_fmt;
    m->vframe->width = cc->width;
    m->vframe->height = cc->height;
    /* Some encoders (prores_ks) write the frame's tags, not the context's. */
    m->vframe->color_primaries = cc->color_primaries;
    m->vframe->color_trc = cc->color_trc;
    m->vframe->colorspace = cc->colorspace;
    m->vframe->color_range = cc->color_range;
    if (av_frame_get_buffer(m->vframe, 0) < 0)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", m->path);
    /* 8-bit codecs take the Wan 8-bit values; ProRes the 16-bit ones. */
    enum AVPixelFormat src = o->video_codec == REEL_VIDEO_PRORES ? AV_PIX_FMT_RGB48
                                                                 : AV_PIX_FMT_RGB24;
    m->needs |= src == AV_PIX_FMT_RGB48 ? REEL_NEED_RGB48 : REEL_NEED_RGB24;
    m->sws = sws_getContext(o->width, o->height, src, o->width, o->height, cc->pix_fmt,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
    if (!m->sws)
        return reel_errf(err, REEL_E_MEDIA, "%s: no RGB to %s conversion", m->path,
                         av_get_pix_fmt_name(cc->pix_fmt));
    /* Full-range RGB in, BT.709 limited range out, matching the stream's tags. */
    const int *bt709 = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(m->sws, bt709, 1, bt709, 0, 0, 1 << 16, 1 << 16);
    return REEL_OK;
}

static int open_audio_stream(struct reel_mux *m, struct reel_err *err)
{
    const struct reel_mux_options *o = &m->o;
    int pcm = o->audio_codec == REEL_AUDIO_PCM;
    char eb[128];
    const AVCodec *codec = avcodec_find_encoder(pcm ? AV_CODEC_ID_PCM_S16LE : AV_CODEC_ID_AAC);
    if (!codec)
        return reel_errf(err, REEL_E_MEDIA, "%s: this FFmpeg build has no %s encoder", m->path,
                         pcm ? "pcm_s16le" : "AAC");
    if (codec->supported_samplerates) {
        int ok = 0;
        for (const int *r = codec->supported_samplerates; *r; r++)
            ok |= *r == m->rate;
        if (!ok)
            return reel_errf(err, REEL_E_SPEC, "%s: %s does not support %d Hz", m->path,
                             codec->name, m->rate);
    }
    m->ast = avformat_new_stream(m->fmt, NULL);
    m->aenc = avcodec_alloc_context3(codec);
    m->aframe = av_frame_alloc();
    if (!m->ast || !m->aenc || !m->aframe)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", m->path);
    AVCodecContext *cc = m->aenc;
    cc->sample_fmt = pcm ? AV_SAMPLE_FMT_S16 : AV_SAMPLE_FMT_FLTP;
    cc->sample_rate = m->rate;
    av_channel_layout_default(&cc->ch_layout, m->channels);
    cc->time_base = (AVRational){1, m->rate};
    if (!pcm)
        cc->bit_rate = o->audio_bitrate ? o->audio_bitrate : 192000;
    cc->thread_count = 1;
    cc->flags |= AV_CODEC_FLAG_BITEXACT;
    if (m->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int ret = avcodec_open2(cc, codec, NULL);
    if (ret < 0)
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot open the %s encoder: %s", m->path,
                         codec->name, averr(ret, eb, sizeof eb));
    if (avcodec_parameters_from_context(m->ast->codecpar, cc) < 0)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", m->path);
    m->ast->time_base = cc->time_base;
    if (cc->frame_size > 0)
        m->frame_size = cc->frame_size;
    return REEL_OK;
}

static int open_container(struct reel_mux *m, struct reel_err *err)
{
    const struct reel_mux_options *o = &m->o;
    enum container c;
    const char *fmt_name;
    char eb[128], tmp[4096];
    int rc = container_of(o->path, &c, &fmt_name, err);
    if (rc)
        return rc;
    if (reel_output_temp_path(o->path, (long)getpid(), tmp, sizeof tmp))
        return reel_errf(err, REEL_E_SPEC, "%s: path too long", o->path);
    m->tmp = strdup(tmp);
    m->pkt = av_packet_alloc();
    if (!m->tmp || !m->pkt)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", o->path);
    /* The format is named: the temporary name's extension says nothing. */
    int ret = avformat_alloc_output_context2(&m->fmt, NULL, fmt_name, tmp);
    if (ret < 0 || !m->fmt)
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot set up the %s muxer: %s", o->path,
                         fmt_name, averr(ret, eb, sizeof eb));
    /* No creation times, library versions or random UIDs in the file. */
    m->fmt->flags |= AVFMT_FLAG_BITEXACT;
    rc = open_video_stream(m, c, err);
    if (rc == REEL_OK && m->audio_on && o->audio_codec != REEL_AUDIO_NONE)
        rc = open_audio_stream(m, err);
    if (rc)
        return rc;
    ret = avio_open(&m->fmt->pb, tmp, AVIO_FLAG_WRITE);
    if (ret < 0)
        return reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", o->path,
                         averr(ret, eb, sizeof eb));
    AVDictionary *mopts = NULL;
    if (c != CONTAINER_MKV) {
        av_dict_set(&mopts, "movflags", "+faststart", 0);
        /* Edit lists count in the movie time scale (1000 by default), which
         * would cut an AAC track to whole milliseconds; the audio rate keeps
         * it to the sample. */
        if (m->ast)
            av_dict_set_int(&mopts, "movie_timescale", m->rate, 0);
    }
    ret = avformat_write_header(m->fmt, &mopts);
    av_dict_free(&mopts);
    if (ret < 0)
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot write the header: %s", o->path,
                         averr(ret, eb, sizeof eb));
    return REEL_OK;
}

/* Deletes every temporary and releases everything (the shared cleanup of
 * abort, finish and errors). */
static void release(struct reel_mux *m)
{
    if (m->fmt) {
        if (m->fmt->pb)
            avio_closep(&m->fmt->pb);
        avformat_free_context(m->fmt);
        m->fmt = NULL;
    }
    if (m->tmp && !m->closed)
        unlink(m->tmp);
    avcodec_free_context(&m->venc);
    avcodec_free_context(&m->aenc);
    av_frame_free(&m->vframe);
    av_frame_free(&m->aframe);
    av_packet_free(&m->pkt);
    sws_freeContext(m->sws);
    m->sws = NULL;
    swr_free(&m->swr);
    if (m->fifo)
        av_audio_fifo_free(m->fifo);
    m->fifo = NULL;
    reel_wav_free(m->wav);
    m->wav = NULL;
    reel_image_seq_free(m->images);
    m->images = NULL;
    reel_contact_sheet_free(m->sheet);
    m->sheet = NULL;
}

static void free_mux(struct reel_mux *m)
{
    release(m);
    free(m->rgb24);
    free(m->rgb48);
    free(m->gbr);
    free(m->resampled);
    free(m->mixed);
    free(m->chunk);
    free(m->s16);
    free(m->path);
    free(m->tmp);
    free(m);
}

/* Any error: temporaries go at once, so nothing partial stays on disk even
 * if the caller forgets reel_mux_abort. */
static int fail(struct reel_mux *m, int rc)
{
    m->failed = 1;
    release(m);
    return rc;
}

/* A source buffer for sws_scale: its SIMD loads read up to 16 bytes past the
 * last pixel of a row, so the tail is padded and zeroed; otherwise whatever
 * the heap holds there can reach the encoded bytes (seen under valgrind). */
static void *sws_source_alloc(size_t bytes)
{
    return calloc(bytes + 64, 1);
}

int reel_mux_open(const struct reel_mux_options *opts, struct reel_mux **out,
                  struct reel_err *err)
{
    *out = NULL;
    quiet_ffmpeg_log();
    int rc = check_options(opts, err);
    if (rc)
        return rc;
    struct reel_mux *m = calloc(1, sizeof *m);
    if (!m)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    const struct reel_mux_options *o = opts;
    m->o = *opts;
    if (!m->o.fps_den)
        m->o.fps_den = 1;
    /* The caller's strings need only live through open: the side outputs
     * keep their own copies, the encoders read preset / profile here. */
    m->o.wav_path = m->o.images.pattern = m->o.contact_sheet.path = NULL;
    if (o->path && !(m->o.path = m->path = strdup(o->path))) {
        free(m);
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    }

    m->audio_on = o->has_audio || o->silence_if_no_audio;
    m->rate = o->audio_rate ? o->audio_rate : 48000;
    m->channels = o->audio_channels ? o->audio_channels : 1;
    m->frame_size = PCM_FRAME_SAMPLES;
    /* round(frames / fps * rate), exactly, in integers. */
    m->audio_target = av_rescale_rnd(o->total_frames, (int64_t)m->o.fps_den * m->rate,
                                     o->fps_num, AV_ROUND_NEAR_INF);

    if (o->path && (rc = open_container(m, err)))
        goto fail;
    m->o.preset = m->o.prores_profile = NULL;
    if (o->images.format != REEL_IMAGE_NONE) {
        rc = reel_image_seq_open(o->images.format, o->images.pattern, o->images.start_number,
                                 o->images.bit_depth, o->width, o->height, &m->images, err);
        if (rc)
            goto fail;
        m->needs |= reel_image_seq_needs(m->images);
    }
    if (o->contact_sheet.path) {
        rc = reel_contact_sheet_open(o->contact_sheet.path, o->width, o->height, o->fps_num,
                                     m->o.fps_den, o->total_frames, o->contact_sheet.count,
                                     o->contact_sheet.columns, o->contact_sheet.thumb_width,
                                     &m->sheet, err);
        if (rc)
            goto fail;
        m->needs |= REEL_NEED_RGB24;
    }
    if (m->audio_on && o->wav_path && (rc = reel_wav_open(o->wav_path, m->rate, m->channels,
                                                          &m->wav, err)))
        goto fail;
    size_t px = (size_t)o->width * o->height;
    if (((m->needs & REEL_NEED_RGB24) && !(m->rgb24 = sws_source_alloc(px * 3))) ||
        ((m->needs & REEL_NEED_RGB48) &&
         !(m->rgb48 = sws_source_alloc(px * 3 * sizeof(uint16_t)))) ||
        ((m->needs & REEL_NEED_FLOAT) && !(m->gbr = sws_source_alloc(px * 3 * sizeof(float))))) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto fail;
    }
    if (m->audio_on) {
        m->fifo = av_audio_fifo_alloc(AV_SAMPLE_FMT_FLT, m->channels, m->frame_size * 2);
        m->chunk = malloc((size_t)m->frame_size * m->channels * sizeof(float));
        m->s16 = malloc((size_t)m->frame_size * m->channels * sizeof(int16_t));
        if (!m->fifo || !m->chunk || !m->s16) {
            rc = reel_errf(err, REEL_E_OTHER, "out of memory");
            goto fail;
        }
    }
    *out = m;
    return REEL_OK;
fail:
    free_mux(m);
    return rc;
}

/* ----------------------------------------------------------------- video */

/* Encoded packets of one encoder into the interleaver. */
static int drain(struct reel_mux *m, AVCodecContext *cc, AVStream *st, struct reel_err *err)
{
    char eb[128];
    for (;;) {
        int ret = avcodec_receive_packet(cc, m->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return REEL_OK;
        if (ret < 0)
            return reel_errf(err, REEL_E_MEDIA, "%s: encoding failed: %s", m->path,
                             averr(ret, eb, sizeof eb));
        if (cc == m->venc && m->pkt->duration == 0)
            m->pkt->duration = 1; /* one tick of 1/fps */
        av_packet_rescale_ts(m->pkt, cc->time_base, st->time_base);
        m->pkt->stream_index = st->index;
        ret = av_interleaved_write_frame(m->fmt, m->pkt);
        if (ret < 0)
            return reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", m->path,
                             averr(ret, eb, sizeof eb));
    }
}

static int encode_video(struct reel_mux *m, const AVFrame *frame, struct reel_err *err)
{
    char eb[128];
    int ret = avcodec_send_frame(m->venc, frame);
    if (ret < 0)
        return reel_errf(err, REEL_E_MEDIA, "%s: encoding failed: %s", m->path,
                         averr(ret, eb, sizeof eb));
    return drain(m, m->venc, m->vst, err);
}

/* The staged frame (m->rgb24 / rgb48 / gbr) to every output. */
static int emit_frame(struct reel_mux *m, struct reel_err *err)
{
    const struct reel_mux_options *o = &m->o;
    int rc;
    if (m->venc) {
        if (av_frame_make_writable(m->vframe) < 0)
            return reel_errf(err, REEL_E_OTHER, "out of memory");
        int rgb16 = o->video_codec == REEL_VIDEO_PRORES;
        const uint8_t *src[4] = {rgb16 ? (const uint8_t *)m->rgb48 : m->rgb24, NULL, NULL, NULL};
        int stride[4] = {o->width * 3 * (rgb16 ? 2 : 1), 0, 0, 0};
        sws_scale(m->sws, src, stride, 0, o->height, m->vframe->data, m->vframe->linesize);
        m->vframe->pts = m->frames;
        if ((rc = encode_video(m, m->vframe, err)))
            return rc;
    }
    if (m->images) {
        struct reel_pixels px = {.width = o->width, .height = o->height, .rgb24 = m->rgb24,
                                 .rgb48 = m->rgb48};
        size_t plane = (size_t)o->width * o->height;
        if (m->gbr)
            for (int p = 0; p < 3; p++)
                px.gbr[p] = m->gbr + p * plane;
        if ((rc = reel_image_seq_write(m->images, &px, err)))
            return rc;
    }
    if (m->sheet &&
        (rc = reel_contact_sheet_add(m->sheet, m->rgb24, (ptrdiff_t)o->width * 3, m->frames, err)))
        return rc;
    m->frames++;
    return REEL_OK;
}

static int check_writable(struct reel_mux *m, struct reel_err *err)
{
    if (m->failed || m->closed)
        return reel_errf(err, REEL_E_OTHER, "%s: output already %s",
                         m->path ? m->path : "output", m->failed ? "failed" : "finished");
    return REEL_OK;
}

static int check_frame_room(struct reel_mux *m, struct reel_err *err)
{
    int rc = check_writable(m, err);
    if (rc == REEL_OK && m->frames >= m->o.total_frames)
        rc = reel_errf(err, REEL_E_OTHER, "%s: more than the %lld frames announced",
                       m->path ? m->path : "output", (long long)m->o.total_frames);
    return rc;
}

/* Planes R, G, B, each plane_stride floats apart in memory. */
static int write_planes(struct reel_mux *m, const float *r, const float *g, const float *b,
                        struct reel_err *err)
{
    int rc = check_frame_room(m, err);
    if (rc)
        return rc;
    size_t n = (size_t)m->o.width * m->o.height;
    if (m->rgb24)
        for (size_t i = 0; i < n; i++) {
            m->rgb24[3 * i] = reel_pixel_u8(r[i]);
            m->rgb24[3 * i + 1] = reel_pixel_u8(g[i]);
            m->rgb24[3 * i + 2] = reel_pixel_u8(b[i]);
        }
    if (m->rgb48)
        for (size_t i = 0; i < n; i++) {
            m->rgb48[3 * i] = reel_pixel_u16(r[i]);
            m->rgb48[3 * i + 1] = reel_pixel_u16(g[i]);
            m->rgb48[3 * i + 2] = reel_pixel_u16(b[i]);
        }
    if (m->gbr) {
        const float *src[3] = {g, b, r};
        for (int p = 0; p < 3; p++)
            for (size_t i = 0; i < n; i++) {
                float x = src[p][i];
                x = x > -1.0f ? (x < 1.0f ? x : 1.0f) : -1.0f;
                m->gbr[p * n + i] = (x + 1.0f) * 0.5f;
            }
    }
    rc = emit_frame(m, err);
    return rc ? fail(m, rc) : REEL_OK;
}

int reel_mux_write_video(struct reel_mux *m, const float *rgb, struct reel_err *err)
{
    size_t plane = (size_t)m->o.width * m->o.height;
    return write_planes(m, rgb, rgb + plane, rgb + 2 * plane, err);
}

int reel_mux_write_video_frames(struct reel_mux *m, const float *frames, int64_t n,
                                struct reel_err *err)
{
    size_t plane = (size_t)m->o.width * m->o.height;
    for (int64_t i = 0; i < n; i++) {
        const float *r = frames + (size_t)i * plane;
        int rc = write_planes(m, r, r + (size_t)n * plane, r + 2 * (size_t)n * plane, err);
        if (rc)
            return rc;
    }
    return REEL_OK;
}

int reel_mux_write_video_rgb24(struct reel_mux *m, const uint8_t *rgb, ptrdiff_t stride,
                               struct reel_err *err)
{
    int rc = check_frame_room(m, err);
    if (rc)
        return rc;
    int w = m->o.width, h = m->o.height;
    size_t n = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = rgb + (ptrdiff_t)y * stride;
        if (m->rgb24)
            memcpy(m->rgb24 + (size_t)y * w * 3, row, (size_t)w * 3);
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < 3; ch++) {
                size_t i = (size_t)y * w + x;
                if (m->rgb48)
                    m->rgb48[3 * i + ch] = (uint16_t)(row[3 * x + ch] * 257);
                if (m->gbr)
                    m->gbr[((ch + 2) % 3) * n + i] = row[3 * x + ch] / 255.0f;
            }
    }
    rc = emit_frame(m, err);
    return rc ? fail(m, rc) : REEL_OK;
}

/* ----------------------------------------------------------------- audio */

static int16_t s16_of(float x)
{
    float v = x * 32768.0f;
    if (!(v > -32768.0f)) /* NaN too */
        return -32768;
    if (v >= 32767.0f)
        return 32767;
    return (int16_t)lrintf(v);
}

/* One encoder frame of n samples from m->chunk to the WAV and the encoder. */
static int encode_audio_chunk(struct reel_mux *m, int n, struct reel_err *err)
{
    int ch = m->channels, rc;
    char eb[128];
    int pcm = m->aenc && m->aenc->sample_fmt == AV_SAMPLE_FMT_S16;
    if (m->wav || pcm)
        for (int i = 0; i < n * ch; i++)
            m->s16[i] = s16_of(m->chunk[i]);
    if (m->wav && (rc = reel_wav_write(m->wav, m->s16, n, err)))
        return rc;
    if (m->aenc) {
        AVFrame *f = m->aframe;
        av_frame_unref(f);
        f->format = m->aenc->sample_fmt;
        f->sample_rate = m->rate;
        f->nb_samples = n;
        if (av_channel_layout_copy(&f->ch_layout, &m->aenc->ch_layout) < 0 ||
            av_frame_get_buffer(f, 0) < 0)
            return reel_errf(err, REEL_E_OTHER, "out of memory");
        if (pcm) {
            memcpy(f->data[0], m->s16, (size_t)n * ch * sizeof(int16_t));
        } else {
            for (int c = 0; c < ch; c++) {
                float *dst = (float *)f->data[c];
                for (int i = 0; i < n; i++)
                    dst[i] = m->chunk[i * ch + c];
            }
        }
        f->pts = m->audio_sent;
        int ret = avcodec_send_frame(m->aenc, f);
        if (ret < 0)
            return reel_errf(err, REEL_E_MEDIA, "%s: audio encoding failed: %s", m->path,
                             averr(ret, eb, sizeof eb));
        if ((rc = drain(m, m->aenc, m->ast, err)))
            return rc;
    }
    m->audio_sent += n;
    return REEL_OK;
}

/* Encodes whole frames from the FIFO; at the end the partial last one too. */
static int encode_queued_audio(struct reel_mux *m, int final, struct reel_err *err)
{
    for (;;) {
        int avail = av_audio_fifo_size(m->fifo);
        int n = avail < m->frame_size ? avail : m->frame_size;
        if (n == 0 || (!final && n < m->frame_size))
            return REEL_OK;
        void *dst[1] = {m->chunk};
        if (av_audio_fifo_read(m->fifo, dst, n) != n)
            return reel_errf(err, REEL_E_OTHER, "audio FIFO read failed");
        int rc = encode_audio_chunk(m, n, err);
        if (rc)
            return rc;
    }
}

/* Appends resampled samples (output channel count), dropping what lies past the clip's end. */
static int queue_samples(struct reel_mux *m, const float *pcm, int64_t n, struct reel_err *err)
{
    int64_t room = m->audio_target - m->audio_queued;
    if (n > room)
        n = room;
    if (n <= 0)
        return REEL_OK;
    void *src[1] = {(void *)pcm};
    if (av_audio_fifo_write(m->fifo, src, (int)n) != n)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    m->audio_queued += n;
    return encode_queued_audio(m, 0, err);
}

static int grow(float **buf, int64_t *cap, int64_t need)
{
    if (need <= *cap)
        return 0;
    float *p = realloc(*buf, (size_t)need * sizeof(float));
    if (!p)
        return -1;
    *buf = p;
    *cap = need;
    return 0;
}

/* Resampler output (input channel count) to the output channel count:
 * mono is duplicated to stereo, stereo averaged to mono. */
static int queue_resampled(struct reel_mux *m, int64_t got, struct reel_err *err)
{
    if (m->in_channels == m->channels)
        return queue_samples(m, m->resampled, got, err);
    if (grow(&m->mixed, &m->mixed_cap, got * m->channels))
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    for (int64_t i = 0; i < got; i++) {
        if (m->channels == 2) {
            m->mixed[2 * i] = m->mixed[2 * i + 1] = m->resampled[i];
        } else {
            m->mixed[i] = 0.5f * (m->resampled[2 * i] + m->resampled[2 * i + 1]);
        }
    }
    return queue_samples(m, m->mixed, got, err);
}

/* n input samples (pcm NULL: flush the filter's tail); *produced gets the output count. */
static int resample(struct reel_mux *m, const float *pcm, int n, int *produced,
                    struct reel_err *err)
{
    int out_max = swr_get_out_samples(m->swr, n);
    if (out_max < 0 ||
        grow(&m->resampled, &m->resampled_cap, (int64_t)(out_max + 1) * m->in_channels))
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    const uint8_t *in[1] = {(const uint8_t *)pcm};
    uint8_t *out[1] = {(uint8_t *)m->resampled};
    int got = swr_convert(m->swr, out, out_max, pcm ? in : NULL, n);
    if (got < 0)
        return reel_errf(err, REEL_E_MEDIA, "%s: resampling failed", m->path ? m->path : "audio");
    *produced = got;
    return queue_resampled(m, got, err);
}

static int audio_setup(struct reel_mux *m, int in_rate, int in_channels, struct reel_err *err)
{
    AVChannelLayout layout;
    av_channel_layout_default(&layout, in_channels);
    /* Same layout in and out: swr only resamples; the channel mapping is ours
     * (a plain duplicate, where swr's default matrix would attenuate). */
    int ret = swr_alloc_set_opts2(&m->swr, &layout, AV_SAMPLE_FMT_FLT, m->rate, &layout,
                                  AV_SAMPLE_FMT_FLT, in_rate, 0, NULL);
    av_channel_layout_uninit(&layout);
    if (ret < 0 || swr_init(m->swr) < 0)
        return reel_errf(err, REEL_E_MEDIA, "cannot resample %d Hz to %d Hz", in_rate, m->rate);
    m->in_rate = in_rate;
    m->in_channels = in_channels;
    return REEL_OK;
}

int reel_mux_write_audio(struct reel_mux *m, const float *pcm, int64_t samples, int in_rate,
                         int in_channels, struct reel_err *err)
{
    int rc = check_writable(m, err);
    if (rc)
        return rc;
    if (!m->o.has_audio)
        return reel_errf(err, REEL_E_OTHER, "%s: audio pushed to an output opened without audio",
                         m->path ? m->path : "output");
    if (in_rate <= 0 || in_rate > 1000000 || in_channels < 1 || in_channels > 2 || samples < 0)
        return reel_errf(err, REEL_E_OTHER, "%s: bad audio block (%d Hz, %d channels)",
                         m->path ? m->path : "output", in_rate, in_channels);
    if (!m->swr) {
        if ((rc = audio_setup(m, in_rate, in_channels, err)))
            return fail(m, rc);
    } else if (in_rate != m->in_rate || in_channels != m->in_channels) {
        return reel_errf(err, REEL_E_OTHER,
                         "%s: audio format changed from %d Hz x %d to %d Hz x %d",
                         m->path ? m->path : "output", m->in_rate, m->in_channels, in_rate,
                         in_channels);
    }
    for (int64_t done = 0; done < samples; done += RESAMPLE_CHUNK) {
        int n = samples - done < RESAMPLE_CHUNK ? (int)(samples - done) : RESAMPLE_CHUNK;
        int got;
        if ((rc = resample(m, pcm + done * in_channels, n, &got, err)))
            return fail(m, rc);
    }
    return REEL_OK;
}

/* ---------------------------------------------------------------- finish */

static int finish_audio(struct reel_mux *m, struct reel_err *err)
{
    int rc;
    /* The resampler's tail, then silence up to the exact length. */
    for (int got = 1; m->swr && got > 0;)
        if ((rc = resample(m, NULL, 0, &got, err)))
            return rc;
    if (m->audio_queued < m->audio_target) {
        int64_t pad = m->audio_target - m->audio_queued;
        float zeros[1024] = {0};
        int per = (int)(sizeof zeros / sizeof zeros[0]) / m->channels;
        while (pad > 0) {
            int n = pad < per ? (int)pad : per;
            if ((rc = queue_samples(m, zeros, n, err)))
                return rc;
            pad -= n;
        }
    }
    if ((rc = encode_queued_audio(m, 1, err)))
        return rc;
    if (m->aenc) {
        char eb[128];
        int ret = avcodec_send_frame(m->aenc, NULL);
        if (ret < 0)
            return reel_errf(err, REEL_E_MEDIA, "%s: audio encoding failed: %s", m->path,
                             averr(ret, eb, sizeof eb));
        if ((rc = drain(m, m->aenc, m->ast, err)))
            return rc;
    }
    return REEL_OK;
}

/* Completes every output under its temporary name. */
static int close_outputs(struct reel_mux *m, struct reel_err *err)
{
    int rc;
    char eb[128];
    if (m->frames != m->o.total_frames)
        return reel_errf(err, REEL_E_OTHER, "%s: only %lld of the %lld frames announced came",
                         m->path ? m->path : "output", (long long)m->frames,
                         (long long)m->o.total_frames);
    if (m->audio_on && (rc = finish_audio(m, err)))
        return rc;
    if (m->venc && (rc = encode_video(m, NULL, err)))
        return rc;
    if (m->fmt) {
        int ret = av_write_trailer(m->fmt);
        int ret2 = avio_closep(&m->fmt->pb);
        if (ret < 0 || ret2 < 0)
            return reel_errf(err, REEL_E_MEDIA, "cannot write %s: %s", m->path,
                             averr(ret < 0 ? ret : ret2, eb, sizeof eb));
    }
    if (m->wav && (rc = reel_wav_close(m->wav, err)))
        return rc;
    if (m->sheet && (rc = reel_contact_sheet_close(m->sheet, err)))
        return rc;
    return REEL_OK;
}

int reel_mux_finish(struct reel_mux *m, struct reel_err *err)
{
    int rc = check_writable(m, err);
    if (rc == REEL_OK)
        rc = close_outputs(m, err);
    /* Renames last, once every file is complete. */
    if (rc == REEL_OK && m->tmp) {
        rc = reel_output_commit(m->tmp, m->path, err);
        m->closed = 1; /* renamed, or deleted by the failed rename */
    }
    if (rc == REEL_OK && m->wav)
        rc = reel_wav_commit(m->wav, err);
    if (rc == REEL_OK && m->images)
        rc = reel_image_seq_commit(m->images, err);
    if (rc == REEL_OK && m->sheet)
        rc = reel_contact_sheet_commit(m->sheet, err);
    free_mux(m);
    return rc;
}

void reel_mux_abort(struct reel_mux *m)
{
    if (m)
        free_mux(m);
}

/* ------------------------------------------------------------ stale files */

struct stale_scan {
    const struct reel_mux_options *o;
    const char *dir; /* with trailing '/', or "" */
};

static int pid_alive(long pid)
{
    if (pid <= 0)
        return 0;
    if (pid == (long)getpid())
        return 1;
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Whether `name` (a final basename in scan->dir) is one of the outputs. */
static int is_output_name(const struct stale_scan *s, const char *name)
{
    const struct reel_mux_options *o = s->o;
    const char *finals[3] = {o->path, o->wav_path, o->contact_sheet.path};
    char full[4096];
    if (snprintf(full, sizeof full, "%s%s", s->dir, name) >= (int)sizeof full)
        return 0;
    for (int i = 0; i < 3; i++)
        if (finals[i] && !strcmp(finals[i], full))
            return 1;
    return o->images.format != REEL_IMAGE_NONE && o->images.pattern &&
           reel_image_seq_match(o->images.format, o->images.pattern, full,
                                o->images.start_number,
                                o->images.start_number + o->total_frames - 1);
}

static int scan_dir(const struct stale_scan *s, struct reel_err *err)
{
    DIR *d = opendir(*s->dir ? s->dir : ".");
    if (!d)
        return errno == ENOENT ? REEL_OK
                               : reel_errf(err, REEL_E_MEDIA, "cannot list %s: %s",
                                           *s->dir ? s->dir : ".", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        const char *mark = strstr(n, ".tmp-");
        if (n[0] != '.' || !mark)
            continue;
        for (const char *q; (q = strstr(mark + 1, ".tmp-"));)
            mark = q;
        char *endp;
        long pid = strtol(mark + 5, &endp, 10);
        if (*endp || endp == mark + 5)
            continue;
        char final[1024];
        size_t len = (size_t)(mark - n - 1);
        if (len == 0 || len >= sizeof final)
            continue;
        memcpy(final, n + 1, len);
        final[len] = 0;
        if (pid_alive(pid) || !is_output_name(s, final))
            continue;
        char victim[4096];
        if (snprintf(victim, sizeof victim, "%s%s", s->dir, n) < (int)sizeof victim &&
            unlink(victim) != 0 && errno != ENOENT) {
            int e2 = errno;
            closedir(d);
            return reel_errf(err, REEL_E_MEDIA, "cannot remove %s: %s", victim, strerror(e2));
        }
    }
    closedir(d);
    return REEL_OK;
}

int reel_mux_remove_stale(const struct reel_mux_options *opts, struct reel_err *err)
{
    char first_image[4096] = "";
    if (opts->images.format != REEL_IMAGE_NONE && opts->images.pattern &&
        reel_image_seq_path(opts->images.format, opts->images.pattern, opts->images.start_number,
                            first_image, sizeof first_image, err))
        return REEL_E_SPEC;
    const char *paths[4] = {opts->path, opts->wav_path, opts->contact_sheet.path,
                            *first_image ? first_image : NULL};
    char dirs[4][4096];
    int ndirs = 0;
    for (int i = 0; i < 4; i++) {
        if (!paths[i])
            continue;
        const char *slash = strrchr(paths[i], '/');
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - paths[i] + 1) : 0, paths[i]);
        int seen = 0;
        for (int k = 0; k < ndirs; k++)
            seen |= !strcmp(dirs[k], dir);
        if (!seen)
            memcpy(dirs[ndirs++], dir, sizeof dir);
    }
    for (int k = 0; k < ndirs; k++) {
        struct stale_scan s = {opts, dirs[k]};
        int rc = scan_dir(&s, err);
        if (rc)
            return rc;
    }
    return REEL_OK;
}
