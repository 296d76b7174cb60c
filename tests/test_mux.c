/* The output stage end to end on tiny clips (64x48, 13 frames at 16 fps, a
 * moving square and a 440 Hz tone at 16 kHz), read back with ffprobe:
 *  - mp4/H.264/AAC, mov/ProRes/PCM, mkv/HEVC/PCM, mp4/HEVC (hvc1): streams,
 *    codecs, pixel formats, frame counts, rates, durations, BT.709 tags;
 *    audio pushed before, after and between the frames;
 *  - the audio track is exactly round(frames / fps * rate) samples;
 *  - PNG 8/16-bit and EXR sequences, the WAV sidecar, the contact sheet;
 *  - no audio stream without audio, a silent one when asked;
 *  - errors: unwritable directory, ProRes / PCM in mp4, too few / too many
 *    frames, abort: nothing left behind; stale temporaries of dead processes;
 *  - the same input twice gives byte-identical files. */
#include <dirent.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>

#include "kernels/json.h"
#include "stages/contact_sheet.h"
#include "stages/mux.h"
#include "tests/test.h"

#define W 64
#define H 48
#define FRAMES 13
#define FPS 16
#define IN_RATE 16000
#define OUT_RATE 48000
/* round(13 / 16 * 48000) */
#define TRACK_SAMPLES 39000

static char root[256];

/* LeakSanitizer's hook for built-in suppressions: libx265 (3.5) keeps a few
 * allocations past x265_encoder_close. Unused outside sanitizer builds. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libx265.so\n";
}
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "print_suppressions=0";
}

/* Frame t: a horizontal gradient with a white square moving right. */
static void make_frame(int t, float *rgb)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int in_square = x >= 4 + 3 * t && x < 16 + 3 * t && y >= 12 && y < 24;
            float base = -1.0f + 2.0f * x / (W - 1);
            rgb[0 * W * H + y * W + x] = in_square ? 1.0f : base;
            rgb[1 * W * H + y * W + x] = in_square ? 1.0f : -base * 0.5f;
            rgb[2 * W * H + y * W + x] = in_square ? 1.2f : -0.8f; /* out of range: clamped */
        }
}

/* [3, n, H, W] frames first..first+n-1, as the VAE hands them over. */
static void make_chunk(int first, int n, float *out)
{
    float frame[3 * W * H];
    for (int i = 0; i < n; i++) {
        make_frame(first + i, frame);
        for (int c = 0; c < 3; c++)
            memcpy(out + ((size_t)c * n + i) * W * H, frame + (size_t)c * W * H,
                   sizeof(float) * W * H);
    }
}

static float *make_tone(int64_t n)
{
    float *pcm = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        pcm[i] = 0.5f * (float)sin(2 * M_PI * 440.0 * (double)i / IN_RATE);
    return pcm;
}

static struct reel_mux_options base_options(const char *path)
{
    struct reel_mux_options o = {0};
    o.path = path;
    o.width = W;
    o.height = H;
    o.fps_num = FPS;
    o.fps_den = 1;
    o.total_frames = FRAMES;
    o.preset = "ultrafast"; /* the test runs on two shared cores */
    return o;
}

enum audio_order { AUDIO_NONE, AUDIO_BEFORE, AUDIO_AFTER, AUDIO_BETWEEN };

/* Writes the clip; returns the status of the first failing call. */
static int write_clip(const struct reel_mux_options *o, enum audio_order order,
                      struct reel_err *err)
{
    struct reel_mux *m;
    int rc = reel_mux_open(o, &m, err);
    if (rc)
        return rc;
    int64_t tone_n = IN_RATE; /* one second: longer than the clip, so it is trimmed */
    float *tone = make_tone(tone_n);
    float *chunk = malloc(sizeof(float) * 3 * 4 * W * H);
    if (order == AUDIO_BEFORE)
        rc = reel_mux_write_audio(m, tone, tone_n, IN_RATE, 1, err);
    /* Chunks of 1, 4, 4, 4 frames like the Wan VAE decoder. */
    for (int first = 0; rc == REEL_OK && first < FRAMES;) {
        int n = first == 0 ? 1 : 4;
        make_chunk(first, n, chunk);
        rc = reel_mux_write_video_frames(m, chunk, n, err);
        if (rc == REEL_OK && order == AUDIO_BETWEEN)
            rc = reel_mux_write_audio(m, tone + (int64_t)first * IN_RATE / FPS,
                                      (int64_t)n * IN_RATE / FPS, IN_RATE, 1, err);
        first += n;
    }
    if (rc == REEL_OK && order == AUDIO_AFTER)
        rc = reel_mux_write_audio(m, tone, tone_n, IN_RATE, 1, err);
    free(chunk);
    free(tone);
    if (rc) {
        reel_mux_abort(m);
        return rc;
    }
    return reel_mux_finish(m, err);
}

/* ------------------------------------------------------------- ffprobe */

static struct reel_json *probe(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -show_streams -show_format -count_frames -of json '%s' 2>/dev/null",
             path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, p)) > 0) {
        len += got;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    int status = pclose(p);
    char msg[128];
    struct reel_json *j = status == 0 ? reel_json_parse(buf, len, msg, sizeof msg) : NULL;
    free(buf);
    return j;
}

static const struct reel_json *stream_of(const struct reel_json *j, const char *type)
{
    const struct reel_json *streams = reel_json_get(j, "streams");
    for (size_t i = 0; streams && i < streams->count; i++)
        if (!strcmp(reel_json_str(streams->items[i], "codec_type", ""), type))
            return streams->items[i];
    return NULL;
}

static size_t stream_count(const struct reel_json *j)
{
    const struct reel_json *streams = reel_json_get(j, "streams");
    return streams ? streams->count : 0;
}

/* ffprobe writes many numbers as strings. */
static double num(const struct reel_json *o, const char *key)
{
    const struct reel_json *v = reel_json_get(o, key);
    if (!v)
        return NAN;
    if (v->type == REEL_JSON_NUMBER)
        return v->number;
    if (v->type == REEL_JSON_STRING)
        return strtod(v->string, NULL);
    return NAN;
}

static const char *str(const struct reel_json *o, const char *key)
{
    return reel_json_str(o, key, "(none)");
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Number of entries in dir whose name contains `part` (NULL: all but . and ..). */
static int count_entries(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            (!part || strstr(e->d_name, part)))
            n++;
    if (d)
        closedir(d);
    return n;
}

static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            same = 0;
        if (ca == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* Decodes an image to raw bytes with the ffmpeg CLI; returns the byte count. */
static size_t decode_raw(const char *path, const char *pix_fmt, uint8_t *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ffmpeg -v error -i '%s' -f rawvideo -pix_fmt %s - 2>/dev/null",
             path, pix_fmt);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    size_t n = fread(out, 1, cap, p);
    pclose(p);
    return n;
}

/* snprintf that treats truncation as a test bug (and keeps -Wformat-truncation quiet). */
__attribute__((format(printf, 3, 4))) static void sfmt(char *buf, size_t size, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        abort();
}

static void pathf(char *buf, size_t size, const char *dir, const char *name)
{
    sfmt(buf, size, "%s/%s", dir, name);
}

/* Checks shared by every container: one video stream of the clip. */
static void check_video(const char *label, const struct reel_json *j, const char *codec,
                        const char *pix_fmt)
{
    char name[128];
    const struct reel_json *v = stream_of(j, "video");
    sfmt(name, sizeof name, "%s video stream", label);
    if (!CHECK(v, name, "no video stream"))
        return;
    sfmt(name, sizeof name, "%s codec/pix_fmt/size", label);
    CHECK(!strcmp(str(v, "codec_name"), codec) && !strcmp(str(v, "pix_fmt"), pix_fmt) &&
              num(v, "width") == W && num(v, "height") == H,
          name, "%s %s %gx%g", str(v, "codec_name"), str(v, "pix_fmt"), num(v, "width"),
          num(v, "height"));
    sfmt(name, sizeof name, "%s frames and rate", label);
    CHECK(num(v, "nb_read_frames") == FRAMES && !strcmp(str(v, "r_frame_rate"), "16/1"), name,
          "%g frames, rate %s", num(v, "nb_read_frames"), str(v, "r_frame_rate"));
    double vdur = num(v, "duration");
    if (isnan(vdur)) /* matroska keeps durations in tags */
        vdur = num(reel_json_get(j, "format"), "duration");
    sfmt(name, sizeof name, "%s video duration = frames/fps", label);
    CHECK(fabs(vdur - (double)FRAMES / FPS) <= 0.0015, name, "%.6f", vdur);
    sfmt(name, sizeof name, "%s BT.709 tv-range tags", label);
    CHECK(!strcmp(str(v, "color_space"), "bt709") && !strcmp(str(v, "color_transfer"), "bt709") &&
              !strcmp(str(v, "color_primaries"), "bt709") && !strcmp(str(v, "color_range"), "tv"),
          name, "%s %s %s %s", str(v, "color_space"), str(v, "color_transfer"),
          str(v, "color_primaries"), str(v, "color_range"));
}

static void check_audio(const char *label, const struct reel_json *j, const char *codec,
                        int channels)
{
    char name[128];
    const struct reel_json *a = stream_of(j, "audio");
    sfmt(name, sizeof name, "%s audio stream", label);
    if (!CHECK(a, name, "no audio stream"))
        return;
    sfmt(name, sizeof name, "%s audio codec/rate/channels", label);
    CHECK(!strcmp(str(a, "codec_name"), codec) && num(a, "sample_rate") == OUT_RATE &&
              num(a, "channels") == channels,
          name, "%s %g Hz %g ch", str(a, "codec_name"), num(a, "sample_rate"),
          num(a, "channels"));
    double adur = num(a, "duration");
    if (isnan(adur))
        adur = num(reel_json_get(j, "format"), "duration");
    sfmt(name, sizeof name, "%s |audio - video duration| <= one audio frame", label);
    CHECK(fabs(adur - (double)FRAMES / FPS) <= 1024.0 / OUT_RATE + 1e-6, name, "audio %.6f s",
          adur);
}

/* ------------------------------------------------------------- cases */

static void test_pixel_mapping(void)
{
    CHECK(reel_pixel_u8(-1.0f) == 0 && reel_pixel_u8(1.0f) == 255 && reel_pixel_u8(0.0f) == 128 &&
              reel_pixel_u8(3.0f) == 255 && reel_pixel_u8(-7.0f) == 0 &&
              reel_pixel_u8(NAN) == 0 && reel_pixel_u8(-0.5f) == 64,
          "pixel u8: clamp, (x+1)/2*255, round", "%d %d %d %d", reel_pixel_u8(-1.0f),
          reel_pixel_u8(1.0f), reel_pixel_u8(0.0f), reel_pixel_u8(-0.5f));
    CHECK(reel_pixel_u16(-1.0f) == 0 && reel_pixel_u16(1.0f) == 65535 &&
              reel_pixel_u16(0.0f) == 32768 && reel_pixel_u16(2.0f) == 65535,
          "pixel u16", "%d %d %d", reel_pixel_u16(-1.0f), reel_pixel_u16(1.0f),
          reel_pixel_u16(0.0f));
    char tc[32], tc2[32], tc3[32];
    reel_timecode(0, 16, 1, tc, sizeof tc);
    reel_timecode(17, 16, 1, tc2, sizeof tc2);
    reel_timecode(30 * 3661 + 7, 30000, 1001, tc3, sizeof tc3);
    CHECK(!strcmp(tc, "00:00:00:00") && !strcmp(tc2, "00:00:01:01") &&
              !strcmp(tc3, "01:01:01:07"),
          "timecode HH:MM:SS:FF", "%s %s %s", tc, tc2, tc3);
    int64_t picks[6];
    for (int i = 0; i < 6; i++)
        picks[i] = reel_contact_sheet_pick(13, 6, i);
    CHECK(picks[0] == 0 && picks[1] == 2 && picks[2] == 5 && picks[3] == 7 && picks[4] == 10 &&
              picks[5] == 12,
          "contact sheet picks evenly spaced", "%lld %lld %lld %lld %lld %lld",
          (long long)picks[0], (long long)picks[1], (long long)picks[2], (long long)picks[3],
          (long long)picks[4], (long long)picks[5]);
}

/* mp4 / H.264 / AAC with every side output; audio pushed first. */
static void write_mp4_h264(const char *dir, struct reel_err *err, int *rc)
{
    char path[512], wav[512], pattern[512], sheet[512];
    pathf(path, sizeof path, dir, "clip.mp4");
    pathf(wav, sizeof wav, dir, "clip.wav");
    pathf(pattern, sizeof pattern, dir, "frames");
    pathf(sheet, sizeof sheet, dir, "sheet.png");
    struct reel_mux_options o = base_options(path);
    o.has_audio = 1;
    o.audio_codec = REEL_AUDIO_AAC;
    o.wav_path = wav;
    o.images.format = REEL_IMAGE_PNG;
    o.images.pattern = pattern; /* plain prefix: frames.0001.png ... */
    o.images.start_number = 1;
    o.contact_sheet.path = sheet;
    o.contact_sheet.count = 6;
    o.contact_sheet.columns = 3;
    *rc = write_clip(&o, AUDIO_BEFORE, err);
}

static void test_mp4_h264(const char *dir)
{
    struct reel_err err = {0};
    int rc;
    write_mp4_h264(dir, &err, &rc);
    if (!CHECK(rc == REEL_OK, "mp4/h264/aac written", "%d %s", rc, err.msg))
        return;
    char path[512], name[512];
    pathf(path, sizeof path, dir, "clip.mp4");
    struct reel_json *j = probe(path);
    if (CHECK(j, "mp4 ffprobe", "cannot probe %s", path)) {
        check_video("mp4/h264", j, "h264", "yuv420p");
        check_audio("mp4/aac", j, "aac", 1);
        /* The edit list trims the encoder's padding to the sample. */
        const struct reel_json *a = stream_of(j, "audio");
        CHECK(a && num(a, "duration_ts") == TRACK_SAMPLES, "mp4 aac track exactly 39000 samples",
              "%g", a ? num(a, "duration_ts") : -1);
        CHECK(stream_count(j) == 2, "mp4 has two streams", "%zu", stream_count(j));
    }
    reel_json_free(j);

    /* PNG sequence: frames.0001.png .. frames.0013.png, rgb24. */
    int all = 1;
    for (int i = 1; i <= FRAMES; i++) {
        sfmt(name, sizeof name, "%s/frames.%04d.png", dir, i);
        all &= file_exists(name);
    }
    sfmt(name, sizeof name, "%s/frames.%04d.png", dir, 0);
    int none_before = !file_exists(name);
    sfmt(name, sizeof name, "%s/frames.%04d.png", dir, FRAMES + 1);
    CHECK(all && none_before && !file_exists(name), "png sequence names from the start number",
          "all %d", all);
    sfmt(name, sizeof name, "%s/frames.0005.png", dir);
    j = probe(name);
    const struct reel_json *v = stream_of(j, "video");
    CHECK(v && !strcmp(str(v, "codec_name"), "png") && !strcmp(str(v, "pix_fmt"), "rgb24") &&
              num(v, "width") == W && num(v, "height") == H,
          "png 8-bit: rgb24 64x48", "%s %s", v ? str(v, "codec_name") : "-",
          v ? str(v, "pix_fmt") : "-");
    reel_json_free(j);
    /* Lossless: the PNG holds exactly the Wan mapping of frame 4. */
    static uint8_t raw[3 * W * H * 2];
    float frame[3 * W * H];
    make_frame(4, frame);
    size_t got = decode_raw(name, "rgb24", raw, sizeof raw);
    int exact = got == (size_t)3 * W * H;
    for (int i = 0; exact && i < W * H; i++)
        for (int c = 0; c < 3; c++)
            exact &= raw[3 * i + c] == reel_pixel_u8(frame[c * W * H + i]);
    CHECK(exact, "png pixels = clamp((x+1)/2*255) rounded", "decoded %zu bytes", got);

    /* WAV sidecar: the audio track's samples. */
    pathf(name, sizeof name, dir, "clip.wav");
    j = probe(name);
    const struct reel_json *a = stream_of(j, "audio");
    CHECK(a && !strcmp(str(a, "codec_name"), "pcm_s16le") && num(a, "sample_rate") == OUT_RATE &&
              num(a, "duration_ts") == TRACK_SAMPLES,
          "wav sidecar: pcm_s16le 48 kHz, round(frames/fps*rate) samples", "%s %g samples",
          a ? str(a, "codec_name") : "-", a ? num(a, "duration_ts") : -1);
    reel_json_free(j);

    /* Contact sheet: 6 thumbnails in 3 columns. 64-px thumbs, label
     * 65 px wide -> cells 69 px; 3*69 + 4*4 = 223; 2*(48 + 13) + 3*4 = 134. */
    pathf(name, sizeof name, dir, "sheet.png");
    struct reel_contact_sheet_layout lay;
    reel_contact_sheet_layout(W, H, FRAMES, 6, 3, 0, &lay, NULL);
    j = probe(name);
    v = stream_of(j, "video");
    CHECK(v && num(v, "width") == 223 && num(v, "height") == 134 && lay.width == 223 &&
              lay.height == 134 && !strcmp(str(v, "pix_fmt"), "rgb24"),
          "contact sheet 3x2 grid size", "%gx%g (layout %dx%d)", v ? num(v, "width") : -1,
          v ? num(v, "height") : -1, lay.width, lay.height);
    reel_json_free(j);
    static uint8_t sheet[223 * 134 * 3 + 16];
    got = decode_raw(name, "rgb24", sheet, sizeof sheet);
    /* Label strip of the first cell: y in [4+48, 4+48+13). */
    int ink = 0;
    for (int y = 52; got == sizeof sheet - 16 && y < 65; y++)
        for (int x = 4; x < 73; x++)
            ink += sheet[(y * 223 + x) * 3] > 200;
    CHECK(ink > 40, "contact sheet timecode label drawn", "%d lit pixels", ink);
    /* The first thumbnail is frame 0: its square is white at (10, 18) + cell origin. */
    int px = (size_t)got == sizeof sheet - 16 ? sheet[((4 + 18) * 223 + (4 + 2 + 10)) * 3 + 2] : 0;
    CHECK(px > 200, "contact sheet thumbnail placed", "blue %d", px);
    CHECK(count_entries(dir, ".tmp-") == 0, "mp4: no temporary left", "%d",
          count_entries(dir, ".tmp-"));
}

/* mov / ProRes / PCM stereo, 16-bit PNGs; audio in one block after the video. */
static void write_mov_prores(const char *dir, struct reel_err *err, int *rc)
{
    char path[512], pattern[512];
    pathf(path, sizeof path, dir, "clip.mov");
    pathf(pattern, sizeof pattern, dir, "deep_%03d.png");
    struct reel_mux_options o = base_options(path);
    o.video_codec = REEL_VIDEO_PRORES;
    o.has_audio = 1;
    o.audio_codec = REEL_AUDIO_PCM;
    o.audio_channels = 2;
    o.images.format = REEL_IMAGE_PNG;
    o.images.pattern = pattern;
    o.images.bit_depth = 16;
    *rc = write_clip(&o, AUDIO_AFTER, err);
}

static void test_mov_prores(const char *dir)
{
    struct reel_err err = {0};
    int rc;
    write_mov_prores(dir, &err, &rc);
    if (!CHECK(rc == REEL_OK, "mov/prores/pcm written", "%d %s", rc, err.msg))
        return;
    char path[512];
    pathf(path, sizeof path, dir, "clip.mov");
    struct reel_json *j = probe(path);
    if (CHECK(j, "mov ffprobe", "cannot probe")) {
        check_video("mov/prores", j, "prores", "yuv422p10le");
        const struct reel_json *v = stream_of(j, "video");
        CHECK(v && !strcmp(str(v, "profile"), "HQ"), "prores profile HQ", "%s",
              v ? str(v, "profile") : "-");
        check_audio("mov/pcm", j, "pcm_s16le", 2);
        const struct reel_json *a = stream_of(j, "audio");
        CHECK(a && num(a, "duration_ts") == TRACK_SAMPLES, "mov pcm track exactly 39000 samples",
              "%g", a ? num(a, "duration_ts") : -1);
    }
    reel_json_free(j);
    pathf(path, sizeof path, dir, "deep_012.png");
    j = probe(path);
    const struct reel_json *v = stream_of(j, "video");
    char first[512];
    pathf(first, sizeof first, dir, "deep_000.png");
    CHECK(v && !strcmp(str(v, "pix_fmt"), "rgb48be") && file_exists(first),
          "png 16-bit: rgb48be, %03d pattern from 0", "%s", v ? str(v, "pix_fmt") : "-");
    reel_json_free(j);
    static uint8_t raw[6 * W * H + 16];
    float frame[3 * W * H];
    make_frame(12, frame);
    size_t got = decode_raw(path, "rgb48le", raw, sizeof raw);
    int exact = got == (size_t)6 * W * H;
    for (int i = 0; exact && i < W * H; i++)
        for (int c = 0; c < 3; c++) {
            int val = raw[6 * i + 2 * c] | raw[6 * i + 2 * c + 1] << 8;
            exact &= val == reel_pixel_u16(frame[c * W * H + i]);
        }
    CHECK(exact, "png 16-bit pixels = (x+1)/2*65535 rounded", "decoded %zu bytes", got);
}

/* mkv / HEVC / PCM; audio in pieces between the frames. */
static void write_mkv_hevc(const char *dir, struct reel_err *err, int *rc)
{
    char path[512];
    pathf(path, sizeof path, dir, "clip.mkv");
    struct reel_mux_options o = base_options(path);
    o.video_codec = REEL_VIDEO_HEVC;
    o.crf = 30;
    o.has_audio = 1;
    o.audio_codec = REEL_AUDIO_PCM;
    *rc = write_clip(&o, AUDIO_BETWEEN, err);
}

static void test_mkv_hevc(const char *dir)
{
    struct reel_err err = {0};
    int rc;
    write_mkv_hevc(dir, &err, &rc);
    if (!CHECK(rc == REEL_OK, "mkv/hevc/pcm written", "%d %s", rc, err.msg))
        return;
    char path[512];
    pathf(path, sizeof path, dir, "clip.mkv");
    struct reel_json *j = probe(path);
    if (CHECK(j, "mkv ffprobe", "cannot probe")) {
        check_video("mkv/hevc", j, "hevc", "yuv420p");
        check_audio("mkv/pcm", j, "pcm_s16le", 1);
    }
    reel_json_free(j);
}

static void test_mp4_variants(const char *dir)
{
    char path[512];
    struct reel_err err = {0};

    pathf(path, sizeof path, dir, "hevc.mp4");
    struct reel_mux_options o = base_options(path);
    o.video_codec = REEL_VIDEO_HEVC;
    int rc = write_clip(&o, AUDIO_NONE, &err);
    struct reel_json *j = rc ? NULL : probe(path);
    const struct reel_json *v = stream_of(j, "video");
    CHECK(v && !strcmp(str(v, "codec_name"), "hevc") &&
              !strcmp(str(v, "codec_tag_string"), "hvc1"),
          "hevc in mp4 tagged hvc1", "rc %d %s tag %s", rc, err.msg,
          v ? str(v, "codec_tag_string") : "-");
    CHECK(j && stream_count(j) == 1, "no audio branch: no audio stream", "%zu streams",
          stream_count(j));
    reel_json_free(j);

    pathf(path, sizeof path, dir, "silent.mp4");
    o = base_options(path);
    o.silence_if_no_audio = 1;
    rc = write_clip(&o, AUDIO_NONE, &err);
    j = rc ? NULL : probe(path);
    if (CHECK(j, "silence_if_no_audio written", "rc %d %s", rc, err.msg))
        check_audio("silent mp4", j, "aac", 1);
    reel_json_free(j);
}

/* No container: 8-bit RGB frames to PNGs, stereo 22.05 kHz PCM in odd-sized
 * pieces to a 44.1 kHz stereo WAV of exactly round(13 / 16 * 44100) samples. */
static void test_rgb24_and_wav_only(const char *dir)
{
    char wav[512], pattern[512], name[512];
    pathf(wav, sizeof wav, dir, "only.wav");
    pathf(pattern, sizeof pattern, dir, "rgb.%d.png");
    struct reel_mux_options o = base_options(NULL);
    o.has_audio = 1;
    o.audio_rate = 44100;
    o.audio_channels = 2;
    o.wav_path = wav;
    o.images.format = REEL_IMAGE_PNG;
    o.images.pattern = pattern;
    struct reel_err err = {0};
    struct reel_mux *m;
    int rc = reel_mux_open(&o, &m, &err);
    static uint8_t rgb[H][W * 3 + 5]; /* rows padded: stride != width * 3 */
    for (int t = 0; rc == REEL_OK && t < FRAMES; t++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W * 3; x++)
                rgb[y][x] = (uint8_t)(x * 7 + y * 3 + t * 11);
        rc = reel_mux_write_video_rgb24(m, &rgb[0][0], W * 3 + 5, &err);
    }
    float *pcm = malloc(sizeof(float) * 2 * 22050);
    for (int i = 0; i < 22050; i++) {
        pcm[2 * i] = 0.25f * (float)sin(2 * M_PI * 440.0 * i / 22050);
        pcm[2 * i + 1] = -pcm[2 * i];
    }
    for (int done = 0; rc == REEL_OK && done < 22050; done += 777)
        rc = reel_mux_write_audio(m, pcm + 2 * done, done + 777 <= 22050 ? 777 : 22050 - done,
                                  22050, 2, &err);
    free(pcm);
    if (rc == REEL_OK)
        rc = reel_mux_finish(m, &err);
    else
        reel_mux_abort(m);
    if (!CHECK(rc == REEL_OK, "png + wav without a container written", "%d %s", rc, err.msg))
        return;
    struct reel_json *j = probe(wav);
    const struct reel_json *a = stream_of(j, "audio");
    CHECK(a && num(a, "sample_rate") == 44100 && num(a, "channels") == 2 &&
              num(a, "duration_ts") == 35831,
          "wav at any rate: exactly round(frames/fps*rate) samples", "%g Hz %g ch %g samples",
          a ? num(a, "sample_rate") : -1, a ? num(a, "channels") : -1,
          a ? num(a, "duration_ts") : -1);
    reel_json_free(j);
    pathf(name, sizeof name, dir, "rgb.12.png");
    static uint8_t raw[3 * W * H + 16];
    size_t got = decode_raw(name, "rgb24", raw, sizeof raw);
    int exact = got == (size_t)3 * W * H;
    for (int y = 0; exact && y < H; y++)
        exact &= !memcmp(raw + y * W * 3, rgb[y], W * 3);
    pathf(name, sizeof name, dir, "rgb.0.png");
    CHECK(exact && file_exists(name), "8-bit RGB input passes through unchanged (%d pattern)",
          "decoded %zu bytes", got);
}

static void test_exr(const char *dir)
{
    char pattern[512], first[512];
    pathf(pattern, sizeof pattern, dir, "linear.%04d.exr");
    struct reel_mux_options o = base_options(NULL);
    o.images.format = REEL_IMAGE_EXR;
    o.images.pattern = pattern;
    struct reel_err err = {0};
    int rc = write_clip(&o, AUDIO_NONE, &err);
    if (!avcodec_find_encoder(AV_CODEC_ID_EXR)) {
        CHECK(rc == REEL_E_MEDIA && strstr(err.msg, "this FFmpeg build has no EXR encoder"),
              "exr without encoder: clear error", "%d %s", rc, err.msg);
        return;
    }
    pathf(first, sizeof first, dir, "linear.0000.exr");
    struct reel_json *j = rc ? NULL : probe(first);
    const struct reel_json *v = stream_of(j, "video");
    CHECK(v && !strcmp(str(v, "codec_name"), "exr") && num(v, "width") == W,
          "exr sequence (images only, no container)", "rc %d %s codec %s", rc, err.msg,
          v ? str(v, "codec_name") : "-");
    CHECK(count_entries(dir, "linear.") == FRAMES, "exr sequence has every frame", "%d",
          count_entries(dir, "linear."));
    reel_json_free(j);
}

static void test_errors(const char *dir)
{
    char path[512], missing[512];
    struct reel_mux *m = NULL;

    /* Unwritable: the directory does not exist (root ignores permission bits). */
    pathf(missing, sizeof missing, dir, "no_such_dir");
    sfmt(path, sizeof path, "%s/out.mp4", missing);
    struct reel_mux_options o = base_options(path);
    struct reel_err err = {0};
    int rc = reel_mux_open(&o, &m, &err);
    CHECK(rc == REEL_E_MEDIA && strstr(err.msg, path) && !m,
          "unwritable directory: REEL_E_MEDIA naming the file", "%d %s", rc, err.msg);
    CHECK(count_entries(dir, ".tmp-") == 0, "unwritable: no temporary", "%d",
          count_entries(dir, ".tmp-"));

    /* The container is fine but the sidecar's directory is not: nothing stays. */
    char sub[512], wav[512];
    pathf(sub, sizeof sub, dir, "err1");
    mkdir(sub, 0755);
    pathf(path, sizeof path, sub, "ok.mp4");
    sfmt(wav, sizeof wav, "%s/nope/x.wav", sub);
    o = base_options(path);
    o.has_audio = 1;
    o.wav_path = wav;
    memset(&err, 0, sizeof err);
    rc = reel_mux_open(&o, &m, &err);
    CHECK(rc == REEL_E_MEDIA && strstr(err.msg, wav) && count_entries(sub, NULL) == 0,
          "unwritable sidecar: error names it, container temp removed", "%d %s, %d entries", rc,
          err.msg, count_entries(sub, NULL));

    pathf(path, sizeof path, dir, "p.mp4");
    o = base_options(path);
    o.video_codec = REEL_VIDEO_PRORES;
    memset(&err, 0, sizeof err);
    rc = reel_mux_open(&o, &m, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "ProRes") && strstr(err.msg, path),
          "prores in mp4 refused", "%d %s", rc, err.msg);

    o = base_options(path);
    o.has_audio = 1;
    o.audio_codec = REEL_AUDIO_PCM;
    memset(&err, 0, sizeof err);
    rc = reel_mux_open(&o, &m, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "PCM"), "pcm in mp4 refused", "%d %s", rc,
          err.msg);

    o = base_options(path);
    o.preset = "warp-speed";
    memset(&err, 0, sizeof err);
    rc = reel_mux_open(&o, &m, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "warp-speed") && count_entries(dir, ".tmp-") == 0,
          "unknown x264 preset refused", "%d %s", rc, err.msg);

    pathf(path, sizeof path, dir, "clip.avi");
    o = base_options(path);
    memset(&err, 0, sizeof err);
    rc = reel_mux_open(&o, &m, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "clip.avi"), "unknown extension refused",
          "%d %s", rc, err.msg);

    /* Abort midway with every output: the directory stays empty. */
    char sub2[512], pattern[512], sheet[512];
    pathf(sub2, sizeof sub2, dir, "abort");
    mkdir(sub2, 0755);
    pathf(path, sizeof path, sub2, "a.mov");
    pathf(wav, sizeof wav, sub2, "a.wav");
    pathf(pattern, sizeof pattern, sub2, "a");
    pathf(sheet, sizeof sheet, sub2, "a_sheet.png");
    o = base_options(path);
    o.video_codec = REEL_VIDEO_PRORES;
    o.has_audio = 1;
    o.wav_path = wav;
    o.images.format = REEL_IMAGE_PNG;
    o.images.pattern = pattern;
    o.contact_sheet.path = sheet;
    memset(&err, 0, sizeof err);
    rc = reel_mux_open(&o, &m, &err);
    float frame[3 * W * H];
    float *tone = make_tone(4000);
    for (int t = 0; rc == REEL_OK && t < 5; t++) {
        make_frame(t, frame);
        rc = reel_mux_write_video(m, frame, &err);
    }
    if (rc == REEL_OK)
        rc = reel_mux_write_audio(m, tone, 4000, IN_RATE, 1, &err);
    int during = count_entries(sub2, ".tmp-");
    if (rc == REEL_OK)
        reel_mux_abort(m);
    CHECK(rc == REEL_OK && during >= 4 && count_entries(sub2, NULL) == 0,
          "abort leaves nothing", "rc %d %s; %d temporaries while writing, %d entries after", rc,
          err.msg, during, count_entries(sub2, NULL));

    /* Finish with too few frames: an error, and nothing under any name. */
    memset(&err, 0, sizeof err);
    rc = reel_mux_open(&o, &m, &err);
    for (int t = 0; rc == REEL_OK && t < 3; t++) {
        make_frame(t, frame);
        rc = reel_mux_write_video(m, frame, &err);
    }
    if (rc == REEL_OK)
        rc = reel_mux_finish(m, &err);
    CHECK(rc != REEL_OK && strstr(err.msg, "3 of the 13") && count_entries(sub2, NULL) == 0,
          "finish with missing frames fails, leaves nothing", "%d %s; %d entries", rc, err.msg,
          count_entries(sub2, NULL));

    /* One frame too many: refused, the output discarded at once. */
    o = base_options(path);
    o.video_codec = REEL_VIDEO_PRORES;
    o.total_frames = 2;
    memset(&err, 0, sizeof err);
    rc = reel_mux_open(&o, &m, &err);
    for (int t = 0; rc == REEL_OK && t < 3; t++) {
        make_frame(t, frame);
        rc = reel_mux_write_video(m, frame, &err);
    }
    CHECK(rc != REEL_OK && strstr(err.msg, "more than the 2 frames"), "extra frame refused",
          "%d %s", rc, err.msg);
    reel_mux_abort(m);
    free(tone);

    /* Leftovers of a killed render: dead PIDs' temporaries go, others stay. */
    char dead[512], live[512], other[512], frame_tmp[512];
    pathf(dead, sizeof dead, sub2, ".a.mov.tmp-2147480000");
    sfmt(live, sizeof live, "%s/.a.mov.tmp-%ld", sub2, (long)getppid());
    pathf(other, sizeof other, sub2, ".unrelated.mov.tmp-2147480000");
    pathf(frame_tmp, sizeof frame_tmp, sub2, ".a.0007.png.tmp-2147480000");
    const char *made[] = {dead, live, other, frame_tmp};
    for (int i = 0; i < 4; i++)
        fclose(fopen(made[i], "wb"));
    o = base_options(path);
    o.images.format = REEL_IMAGE_PNG;
    o.images.pattern = pattern;
    memset(&err, 0, sizeof err);
    rc = reel_mux_remove_stale(&o, &err);
    CHECK(rc == REEL_OK && !file_exists(dead) && !file_exists(frame_tmp) && file_exists(live) &&
              file_exists(other),
          "remove_stale: dead temporaries of these outputs only", "%d %s", rc, err.msg);
}

/* Every file two runs produce is byte-identical. */
static void test_determinism(const char *dir_a, const char *dir_b)
{
    struct reel_err err = {0};
    int rc1, rc2, rc3;
    write_mp4_h264(dir_b, &err, &rc1);
    write_mov_prores(dir_b, &err, &rc2);
    write_mkv_hevc(dir_b, &err, &rc3);
    if (!CHECK(!rc1 && !rc2 && !rc3, "second run written", "%s", err.msg))
        return;
    static const char *const names[] = {"clip.mp4", "clip.mov", "clip.mkv", "clip.wav",
                                        "sheet.png", "frames.0007.png", "deep_003.png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char a[512], b[512], label[128];
        pathf(a, sizeof a, dir_a, names[i]);
        pathf(b, sizeof b, dir_b, names[i]);
        sfmt(label, sizeof label, "deterministic: %s byte-identical", names[i]);
        CHECK(file_exists(a) && files_equal(a, b), label, "%s differs", names[i]);
    }
}

int main(void)
{
    sfmt(root, sizeof root, "/tmp/reel_test_mux_XXXXXX");
    if (!mkdtemp(root)) {
        CHECK(0, "temp dir", "mkdtemp failed");
        TEST_EXIT();
    }
    char a[300], b[300], e[300];
    pathf(a, sizeof a, root, "a");
    pathf(b, sizeof b, root, "b");
    pathf(e, sizeof e, root, "e");
    mkdir(a, 0755);
    mkdir(b, 0755);
    mkdir(e, 0755);

    test_pixel_mapping();
    test_mp4_h264(a);
    test_mov_prores(a);
    test_mkv_hevc(a);
    test_mp4_variants(a);
    test_rgb24_and_wav_only(a);
    test_exr(a);
    test_errors(e);
    test_determinism(a, b);

    if (!getenv("REEL_KEEP_TEST_FILES")) {
        char cmd[400];
        sfmt(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    } else {
        printf("# files kept in %s\n", root);
    }
    TEST_EXIT();
}
