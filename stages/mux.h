/* The output stage: decoded frames and PCM go in one at a time as they are
 * produced, and come out as a video file (H.264 / HEVC / ProRes with AAC or
 * PCM audio in MP4 / MOV / MKV), and on request an image sequence (PNG or
 * EXR), a WAV sidecar and a contact sheet. Memory does not grow with clip
 * length; every file is written under a temporary name in its own directory
 * and renamed into place only when complete, so a final name never holds a
 * partial file. The same input gives byte-identical files.
 *
 * Choices (see the option comments for defaults):
 *  - Pixel values map as Wan's: clamp to [-1, 1], (x + 1) / 2 * 255, rounded
 *    half up. Formats deeper than 8 bits (ProRes 10-bit, 16-bit PNG, EXR)
 *    get the same mapping at 16-bit / float precision instead of the 8-bit
 *    result, since those formats exist to keep the extra bits.
 *  - Audio keeps the channel count of the audio branch (mono) unless
 *    audio_channels asks for 2; a mono source is then duplicated to both
 *    channels. Any input rate is resampled to audio_rate (48 kHz).
 *  - The audio track is trimmed or padded with silence to exactly
 *    round(total_frames / fps * rate) samples.
 *  - PCM in MP4 is refused (not a standard MP4 audio codec; FFmpeg's mp4
 *    muxer has no tag for it): use AAC, or .mov / .mkv. ProRes is only
 *    written to .mov.
 *  - Audio pushed before the video interleaves best; pushed after the last
 *    frame (one block, as our pipeline does) it is still correct, with the
 *    audio packets after the video ones in the file.
 *  - FFmpeg's own log (process-wide) is silenced on first use when it is
 *    still at its default level, because library code never prints; a
 *    caller that set a level keeps it. */
#ifndef REEL_MUX_H
#define REEL_MUX_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/atomic_file.h" /* reel_output_temp_path, reel_output_commit */
#include "kernels/err.h"

/* Zero is the default of each enum. */
enum reel_video_codec {
    REEL_VIDEO_H264 = 0, /* libx264, yuv420p */
    REEL_VIDEO_HEVC,     /* libx265, yuv420p, tagged hvc1 in mp4 / mov */
    REEL_VIDEO_PRORES,   /* prores_ks, yuv422p10le; .mov only */
};

enum reel_audio_codec {
    REEL_AUDIO_DEFAULT = 0, /* AAC */
    REEL_AUDIO_AAC,
    REEL_AUDIO_PCM,  /* pcm_s16le; .mov / .mkv only */
    REEL_AUDIO_NONE, /* no audio stream in the container (a WAV may still be written) */
};

enum reel_image_format {
    REEL_IMAGE_NONE = 0,
    REEL_IMAGE_PNG, /* 8-bit rgb24 or 16-bit rgb48be */
    REEL_IMAGE_EXR, /* half (16) or float (32), zip16-compressed; needs FFmpeg's exr encoder */
};

/* A zero-initialised struct plus path, size, fps and total_frames is a
 * valid H.264 + AAC job. */
struct reel_mux_options {
    const char *path; /* .mp4 / .mov / .mkv, the container from the extension;
                         NULL = no video file (image sequence / WAV only) */
    int width, height; /* even for H.264 / HEVC (4:2:0) and ProRes (4:2:2) */
    int fps_num, fps_den; /* fps_den 0 = 1 */
    int64_t total_frames; /* known up front: audio length and contact-sheet picks depend on it */

    enum reel_video_codec video_codec;
    int crf;              /* 1..51; 0 = 18 (H.264) / 22 (HEVC); ignored by ProRes */
    const char *preset;   /* x264 / x265 preset; NULL = "medium" */
    const char *prores_profile; /* proxy, lt, standard, hq, 4444, 4444xq; NULL = "hq" */

    /* The audio track exists when has_audio (the caller will push PCM) or
     * silence_if_no_audio (a silent track of the clip's length). Without
     * either the file has no audio stream. */
    enum reel_audio_codec audio_codec;
    int has_audio;
    int silence_if_no_audio;
    int audio_rate;     /* output sample rate; 0 = 48000 */
    int audio_channels; /* 1 or 2; 0 = 1, the audio branch's mono */
    int audio_bitrate;  /* AAC bits/s; 0 = 192000 */

    struct {
        enum reel_image_format format;
        /* "dir/name.%04d.png": one %d conversion (flag 0 and a width
         * allowed, "%%" for a literal %), or a plain prefix to which
         * ".%04d.png" / ".%04d.exr" is appended. */
        const char *pattern;
        int64_t start_number; /* number of the first frame's file */
        int bit_depth;        /* PNG: 8 (0) or 16; EXR: 16 (0, half) or 32 */
    } images;

    const char *wav_path; /* pcm_s16le sidecar holding exactly the audio track's samples */

    struct {
        const char *path; /* PNG; NULL = none */
        int count;        /* frames shown, evenly spaced, first and last included; 0 = 12 */
        int columns;      /* 0 = 4 */
        int thumb_width;  /* 0 = min(width, 192); height keeps the aspect */
    } contact_sheet;
};

struct reel_mux;

/* Validates the options, creates every output's temporary file and writes
 * the container header. Errors: REEL_E_SPEC for bad options (codec not
 * allowed in that container, odd size, ...), REEL_E_MEDIA for I/O and
 * encoder problems; messages name the file. Nothing is left on disk. */
int reel_mux_open(const struct reel_mux_options *opts, struct reel_mux **out,
                  struct reel_err *err);

/* One frame, [3, H, W] planar float in [-1, 1] (clamped here). */
int reel_mux_write_video(struct reel_mux *m, const float *rgb, struct reel_err *err);
/* n frames laid out [3, n, H, W], as the Wan VAE's decode callback delivers them. */
int reel_mux_write_video_frames(struct reel_mux *m, const float *frames, int64_t n,
                                struct reel_err *err);
/* One frame of 8-bit packed RGB, rows `stride` bytes apart. */
int reel_mux_write_video_rgb24(struct reel_mux *m, const uint8_t *rgb, ptrdiff_t stride,
                               struct reel_err *err);

/* Interleaved float PCM, `samples` per channel, at any rate; may be called
 * before, between or after the video frames, in pieces or in one block.
 * Rate and channel count must stay the same across calls. Samples beyond
 * the clip's length are dropped. Needs has_audio. */
int reel_mux_write_audio(struct reel_mux *m, const float *pcm, int64_t samples, int in_rate,
                         int in_channels, struct reel_err *err);

/* Pads the audio, flushes the encoders, writes the trailers and renames
 * every file into place. Fails if fewer than total_frames frames came.
 * Frees m whatever happens; on failure no final file was created. */
int reel_mux_finish(struct reel_mux *m, struct reel_err *err);

/* Deletes every temporary file and frees m (NULL-safe). After any error
 * from a write call the temporaries are already gone; abort still frees. */
void reel_mux_abort(struct reel_mux *m);

/* Redo from scratch after a kill: removes the temporary files a dead
 * process left for the outputs these options name (temporaries of live
 * processes are kept). Finished outputs are simply overwritten by the next
 * reel_mux_finish. */
int reel_mux_remove_stale(const struct reel_mux_options *opts, struct reel_err *err);

/* The Wan pixel mapping: clamp to [-1, 1] (NaN gives -1), scale to
 * [0, 255] / [0, 65535], round half up. */
static inline uint8_t reel_pixel_u8(float x)
{
    x = x > -1.0f ? (x < 1.0f ? x : 1.0f) : -1.0f;
    return (uint8_t)((x + 1.0f) * 127.5f + 0.5f);
}
static inline uint16_t reel_pixel_u16(float x)
{
    x = x > -1.0f ? (x < 1.0f ? x : 1.0f) : -1.0f;
    return (uint16_t)((x + 1.0f) * 32767.5f + 0.5f);
}

#endif
