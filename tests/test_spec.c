/* Job spec v1 and model configs (pipeline/spec.c, pipeline/model_config.c):
 *  - malformed specs, each reporting the exact "file:line:col: key.path"
 *    (or "--set key.path") and a message; all errors of a file in one run;
 *  - valid specs: model defaults, snapping with warnings, fps rationals,
 *    relative paths, -o and --set, canonical text;
 *  - the shipped model configs load, and their DiT / VAE / text-encoder
 *    tensor tables match the real checkpoints' manifests (REEL_GOLDEN_DIR);
 *    the default model (reel-default, joint audio-video) and the video-only
 *    test model tests/configs/tiny-wan.yaml carry their defaults;
 *  - broken model configs; every example spec validates cleanly. */
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/json.h"
#include "pipeline/spec.h"
#include "tests/test.h"

static char tmpdir[256];
static char configs_dir[4096];
static char tiny_wan[4200]; /* tests/configs/tiny-wan.yaml: Wan2.1 t2v, no audio */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n > 0 ? n : 0] = 0;
    return buf;
}

static void dump_diag(const struct reel_diag *d)
{
    for (int i = 0; i < d->count; i++)
        printf("#   %s%s\n", d->items[i].level == REEL_DIAG_WARNING ? "warning: " : "",
               d->items[i].text);
}

/* The diag item of that level starting with prefix and containing substr. */
static const char *find_item(const struct reel_diag *d, enum reel_diag_level level,
                             const char *prefix, const char *substr)
{
    for (int i = 0; i < d->count; i++)
        if (d->items[i].level == level && !strncmp(d->items[i].text, prefix, strlen(prefix)) &&
            strstr(d->items[i].text, substr))
            return d->items[i].text;
    return NULL;
}

static int load_spec(const char *name, const char *yaml, const char *const *sets, int n_sets,
                     const char *out_path, struct reel_spec *s, struct reel_diag *d, char *path,
                     size_t path_len)
{
    snprintf(path, path_len, "%s/%s", tmpdir, name);
    write_file(path, yaml);
    struct reel_spec_overrides ov = {.sets = sets, .n_sets = n_sets, .output_path = out_path};
    return reel_spec_load(path, &ov, s, d);
}

/* One malformed spec: fails with REEL_E_SPEC and reports an error at
 * `where` ("L:C: key.path", prefixed with the file; or "--set ..." / "-o")
 * whose text contains msg. */
static void expect_error_set(const char *label, const char *yaml, const char *const *sets,
                             int n_sets, const char *where, const char *msg)
{
    char path[512], prefix[700], name[128];
    snprintf(name, sizeof name, "bad_%s.yaml", label);
    for (char *p = name; *p; p++)
        if (*p == ' ' || *p == '/')
            *p = '_';
    struct reel_spec s;
    struct reel_diag d = {0};
    int rc = load_spec(name, yaml, sets, n_sets, NULL, &s, &d, path, sizeof path);
    if (!strncmp(where, "--set", 5) || !strncmp(where, "-o", 2))
        snprintf(prefix, sizeof prefix, "%s", where);
    else
        snprintf(prefix, sizeof prefix, "%s:%s", path, where);
    char tname[200];
    snprintf(tname, sizeof tname, "bad spec: %s", label);
    const char *hit = find_item(&d, REEL_DIAG_ERROR, prefix, msg);
    if (!CHECK(rc == REEL_E_SPEC && hit, tname, "rc %d, wanted an error \"%s ... %s\"", rc, prefix,
               msg))
        dump_diag(&d);
    reel_spec_free(&s);
    reel_diag_free(&d);
}

static void expect_error(const char *label, const char *yaml, const char *where, const char *msg)
{
    expect_error_set(label, yaml, NULL, 0, where, msg);
}

/* ------------------------------------------------------------ bad specs */

static void test_bad_specs(void)
{
    expect_error("unknown top-level key", "version: 1\nprompt: hi\ncolour: red\n", "3:1: colour: ",
                 "unknown key");
    expect_error("unknown nested key", "version: 1\nprompt: hi\noutput:\n  path: a.mp4\n  codec: h264\n",
                 "5:3: output.codec: ", "unknown key");
    expect_error("typo suggestion", "version: 1\npromt: hi\n", "2:1: promt: ", "did you mean 'prompt'");
    expect_error("missing prompt", "version: 1\n", "1:1: prompt: ", "missing (required)");
    expect_error("missing version", "prompt: hi\n", "1:1: version: ", "missing (required)");
    expect_error("unsupported version", "version: 2\nprompt: hi\n", "1:10: version: ",
                 "unsupported spec version 2");
    expect_error("string for fps", "version: 1\nprompt: hi\nfps: \"24\"\n", "3:6: fps: ",
                 "must be a number, got a string (\"24\")");
    expect_error("list for seed", "version: 1\nprompt: hi\nseed: [1, 2]\n", "3:7: seed: ",
                 "must be an integer, got a list");
    expect_error("map for prompt", "version: 1\nprompt:\n  text: hi\n", "3:3: prompt: ",
                 "must be a string, got a map");
    expect_error("null fps", "version: 1\nprompt: hi\nfps:\n", "3:5: fps: ", "got nothing (null)");
    expect_error("fps 0", "version: 1\nprompt: hi\nfps: 0\n", "3:6: fps: ",
                 "must be between 1 and 120, got 0");
    expect_error("fps not finite", "version: 1\nprompt: hi\nfps: .inf\n", "3:6: fps: ",
                 "must be a number");
    expect_error("steps 0", "version: 1\nprompt: hi\nsampler:\n  steps: 0\n", "4:10: sampler.steps: ",
                 "must be between 1 and 1000, got 0");
    expect_error("shift 0", "version: 1\nprompt: hi\nsampler:\n  shift: 0\n", "4:10: sampler.shift: ",
                 "must be greater than 0");
    expect_error("negative guidance", "version: 1\nprompt: hi\nsampler:\n  guidance: -1\n",
                 "4:13: sampler.guidance: ", "must be at least 0");
    expect_error("unknown sampler", "version: 1\nprompt: hi\nsampler:\n  name: ddim\n",
                 "4:9: sampler.name: ", "must be one of euler, unipc, dpm++");
    expect_error("crf 60", "version: 1\nprompt: hi\noutput:\n  crf: 60\n", "4:8: output.crf: ",
                 "must be between 0 and 51, got 60");
    expect_error("negative duration", "version: 1\nprompt: hi\nduration: -2\n", "3:11: duration: ",
                 "must be greater than 0");
    expect_error("duration over an hour", "version: 1\nprompt: hi\nduration: 3601\n",
                 "3:11: duration: ", "at most 3600");
    expect_error("size too small", "version: 1\nprompt: hi\nsize: [8, 480]\n", "3:8: size[0]: ",
                 "must be between 16 and 8192, got 8");
    expect_error("size arity", "version: 1\nprompt: hi\nsize: [832]\n", "3:7: size: ",
                 "must be a list of 2 integers, got a list of 1");
    expect_error("size as string", "version: 1\nprompt: hi\nsize: 832x480\n", "3:7: size: ",
                 "must be a list of 2 integers");
    expect_error("audio rate 1000", "version: 1\nprompt: hi\noutput:\n  audio_rate: 1000\n",
                 "4:15: output.audio_rate: ", "must be between 8000 and 192000");
    expect_error("aac odd rate", "version: 1\nprompt: hi\noutput:\n  audio_rate: 44000\n",
                 "4:15: output.audio_rate: ", "aac cannot encode 44000 Hz");
    expect_error("duration and frames", "version: 1\nprompt: hi\nduration: 2\nframes: 33\n",
                 "4:9: frames: ", "either duration or frames, not both (duration is at line 3)");
    expect_error("non-integer frames", "version: 1\nprompt: hi\nframes: 20.5\n", "3:9: frames: ",
                 "must be a whole number");
    /* the default model: 1024 latent frames (the DiT's rotary tables) of 2
     * video frames, in 1 + 4k steps (frame conditioning) */
    expect_error("too many frames", "version: 1\nprompt: hi\nframes: 5001\n", "3:9: frames: ",
                 "at most 2045");
    expect_error("bad container", "version: 1\nprompt: hi\noutput:\n  path: clip.avi\n",
                 "4:9: output.path: ", "unknown container '.avi'");
    expect_error("no extension", "version: 1\nprompt: hi\noutput:\n  path: clip\n",
                 "4:9: output.path: ", "no extension");
    expect_error("prores in mp4",
                 "version: 1\nprompt: hi\noutput:\n  path: a.mp4\n  video_codec: prores\n",
                 "5:16: output.video_codec: ", "prores needs a .mov output");
    expect_error("pcm in mp4", "version: 1\nprompt: hi\noutput:\n  path: a.mp4\n  audio_codec: pcm\n",
                 "5:16: output.audio_codec: ", "mp4 cannot hold PCM");
    expect_error("unknown model", "version: 1\nprompt: hi\nmodel: nosuch\n", "3:8: model: ",
                 "unknown model 'nosuch'");
    expect_error("missing model file", "version: 1\nprompt: hi\nmodel: ./nope.yaml\n",
                 "3:8: model: ", "not found");
    expect_error("bad yaml syntax", "version: 1\nprompt: [a, b\nfps: 3\n", "3:4: ",
                 "syntax error: did not find expected ',' or ']' (while parsing a flow sequence at 2:9)");
    expect_error("tab indentation", "version: 1\nprompt: hi\noutput:\n\tpath: a.mp4\n", "4:1: ",
                 "syntax error");
    expect_error("duplicate key", "version: 1\nprompt: a\nprompt: b\n", "3:1: prompt: ",
                 "duplicate key (first at line 2)");
    expect_error("empty file", "", "1:1: ", "empty spec");
    expect_error("comments only", "# nothing here\n", "1:1: ", "empty spec");
    expect_error("top level a list", "- version: 1\n- prompt: hi\n", "1:1: ",
                 "top level must be a map of keys, got a list");
    expect_error("top level a string", "hello\n", "1:1: ", "top level must be a map of keys");
    expect_error("two documents", "version: 1\nprompt: hi\n---\nfps: 3\n", "3:1: ",
                 "second YAML document");
    expect_error("unknown alias", "version: 1\nprompt: *nothing\n", "2:9: ", "alias *nothing");
    expect_error("non-name key", "version: 1\nprompt: hi\n[a, b]: c\n", "3:1: ",
                 "keys must be names, got a list");
    expect_error("empty prompt", "version: 1\nprompt: \"\"\n", "2:9: prompt: ", "must not be empty");
    expect_error("png bit depth 12",
                 "version: 1\nprompt: hi\noutput:\n  path: a.mp4\n  image_sequence:\n    bit_depth: 12\n",
                 "6:16: output.image_sequence.bit_depth: ", "png bit depth must be 8 or 16, got 12");
    expect_error("exr bit depth 8",
                 "version: 1\nprompt: hi\noutput:\n  image_sequence:\n    format: exr\n    bit_depth: 8\n",
                 "6:16: output.image_sequence.bit_depth: ", "exr bit depth must be 16 (half) or 32");
    expect_error("sequence without %d",
                 "version: 1\nprompt: hi\noutput:\n  image_sequence:\n    path: frames.png\n",
                 "5:11: output.image_sequence.path: ", "one frame-number field");
    expect_error("sequence format mismatch",
                 "version: 1\nprompt: hi\noutput:\n  image_sequence:\n    format: png\n    path: f.%04d.exr\n",
                 "6:11: output.image_sequence.path: ", "does not match format png");
    expect_error("sequence wrong type", "version: 1\nprompt: hi\noutput:\n  image_sequence: 5\n",
                 "4:19: output.image_sequence: ", "must be a map (or true/false)");
    expect_error("output a list", "version: 1\nprompt: hi\noutput: [a.mp4]\n", "3:9: output: ",
                 "must be a map, got a list");
    expect_error("wav not .wav", "version: 1\nprompt: hi\noutput:\n  wav:\n    path: a.mp3\n",
                 "5:11: output.wav.path: ", "must end in .wav");
    {
        char yaml[4400];
        snprintf(yaml, sizeof yaml, "version: 1\nprompt: hi\nmodel: %s\noutput:\n  wav: true\n",
                 tiny_wan);
        expect_error("wav from a model without audio", yaml, "5:8: output.wav: ",
                     "tiny-wan makes no audio; set output.silent_audio: true");
    }
    {
        /* the default model has audio: the same request is fine */
        char path[512];
        struct reel_spec s;
        struct reel_diag d = {0};
        int rc = load_spec("wav_default.yaml", "version: 1\nprompt: hi\noutput:\n  wav: true\n", NULL,
                           0, NULL, &s, &d, path, sizeof path);
        CHECK(rc == REEL_OK && d.errors == 0 && d.warnings == 0 && s.output.wav.enabled &&
                  !s.output.silent_audio,
              "wav from the default model (it has audio) is fine", "rc %d, %d errors", rc, d.errors);
        if (rc != REEL_OK)
            dump_diag(&d);
        reel_spec_free(&s);
        reel_diag_free(&d);
    }
    expect_error("contact sheet columns 0",
                 "version: 1\nprompt: hi\noutput:\n  contact_sheet:\n    columns: 0\n",
                 "5:14: output.contact_sheet.columns: ", "must be between 1 and 64");
    expect_error("contact sheet as jpeg2000",
                 "version: 1\nprompt: hi\noutput:\n  contact_sheet:\n    path: s.jp2\n",
                 "5:11: output.contact_sheet.path: ", "must end in .png or .jpg");
    expect_error("wav onto the output", "version: 1\nprompt: hi\noutput:\n  path: a.mov\n  wav:\n    path: a.mov\n",
                 "6:11: output.wav.path: ", "same file as output.path");
    expect_error("negative seed", "version: 1\nprompt: hi\nseed: -1\n", "3:7: seed: ",
                 "must be between 0 and 18446744073709551615");
    expect_error("seed over 2^64", "version: 1\nprompt: hi\nseed: 18446744073709551616\n",
                 "3:7: seed: ", "must be between 0 and");
    expect_error("seed random", "version: 1\nprompt: hi\nseed: random\n", "3:7: seed: ",
                 "must be an integer, got a string");
    expect_error("shots not yet", "version: 1\nprompt: hi\nshots: []\n", "3:1: shots: ", "unknown key");

    /* command-line overrides */
    const char *base = "version: 1\nprompt: hi\n";
    const char *bad_path[] = {"output..crf=3"};
    expect_error_set("--set bad path", base, bad_path, 1, "--set output..crf: ", "bad key path");
    const char *no_eq[] = {"fps"};
    expect_error_set("--set without =", base, no_eq, 1, "--set fps: ", "expected KEY.PATH=VALUE");
    const char *unknown[] = {"output.colour=red"};
    expect_error_set("--set unknown key", base, unknown, 1, "--set output.colour: ", "unknown key");
    const char *unknown2[] = {"look.colour=red"};
    expect_error_set("--set unknown section", base, unknown2, 1, "--set look.colour: look: ",
                     "unknown key");
    const char *bad_type[] = {"fps=fast"};
    expect_error_set("--set bad value type", base, bad_type, 1, "--set fps: ",
                     "must be a number, got a string (\"fast\")");
    const char *bad_range[] = {"output.crf=99"};
    expect_error_set("--set out of range", base, bad_range, 1, "--set output.crf: ",
                     "must be between 0 and 51, got 99");
    const char *bad_yaml[] = {"size=[1,"};
    expect_error_set("--set bad yaml", base, bad_yaml, 1, "--set size:", "syntax error");
    const char *nested[] = {"output={crf: 77}"};
    expect_error_set("--set nested map", base, nested, 1, "--set output: output.crf: ",
                     "got 77");
    const char *empty[] = {"prompt="};
    expect_error_set("--set empty value", base, empty, 1, "--set prompt: ", "must be a string");

    /* -o */
    {
        char path[512];
        struct reel_spec s;
        struct reel_diag d = {0};
        int rc = load_spec("o_bad.yaml", base, NULL, 0, "clip.gif", &s, &d, path, sizeof path);
        CHECK(rc == REEL_E_SPEC && find_item(&d, REEL_DIAG_ERROR, "-o: output.path: ", "'.gif'"),
              "bad spec: -o with an unknown container", "rc %d", rc);
        reel_spec_free(&s);
        reel_diag_free(&d);
    }
}

static void test_all_errors_in_one_run(void)
{
    char path[512], prefix[600];
    struct reel_spec s;
    struct reel_diag d = {0};
    int rc = load_spec("three.yaml",
                       "version: 1\nprompt: hi\nfps: 0\nlook: noir\noutput:\n  crf: 60\n", NULL, 0,
                       NULL, &s, &d, path, sizeof path);
    int found = 0;
    snprintf(prefix, sizeof prefix, "%s:3:6: fps: ", path);
    found += find_item(&d, REEL_DIAG_ERROR, prefix, "between 1 and 120") != NULL;
    snprintf(prefix, sizeof prefix, "%s:4:1: look: ", path);
    found += find_item(&d, REEL_DIAG_ERROR, prefix, "unknown key") != NULL;
    snprintf(prefix, sizeof prefix, "%s:6:8: output.crf: ", path);
    found += find_item(&d, REEL_DIAG_ERROR, prefix, "between 0 and 51") != NULL;
    if (!CHECK(rc == REEL_E_SPEC && d.errors == 3 && found == 3, "three errors reported in one run",
               "rc %d, %d errors, %d of 3 found", rc, d.errors, found))
        dump_diag(&d);
    reel_spec_free(&s);
    reel_diag_free(&d);

    /* past REEL_DIAG_MAX the count goes on */
    char big[20000] = "version: 1\nprompt: hi\n";
    for (int i = 0; i < 150; i++) {
        char line[64];
        snprintf(line, sizeof line, "unknown_%d: 1\n", i);
        strcat(big, line);
    }
    rc = load_spec("many.yaml", big, NULL, 0, NULL, &s, &d, path, sizeof path);
    CHECK(rc == REEL_E_SPEC && d.errors == 150 && d.count == REEL_DIAG_MAX,
          "150 errors counted, 100 kept", "rc %d errors %d kept %d", rc, d.errors, d.count);
    reel_spec_free(&s);
    reel_diag_free(&d);
}

/* ----------------------------------------------------------- good specs */

static void test_defaults(void)
{
    char path[512], want[700];
    struct reel_spec s;
    struct reel_diag d = {0};
    int rc = load_spec("minimal.yaml", "version: 1\nprompt: a boat\n", NULL, 0, NULL, &s, &d, path,
                       sizeof path);
    if (!CHECK(rc == REEL_OK && d.errors == 0 && d.warnings == 0, "minimal spec loads cleanly",
               "rc %d", rc)) {
        dump_diag(&d);
        reel_diag_free(&d);
        return;
    }
    snprintf(want, sizeof want, "%s/minimal.mp4", tmpdir);
    CHECK(!strcmp(s.model, "reel-default") && !strcmp(s.model_config.name, "reel-default") &&
              !s.model_config.trained && s.model_config.audio.enabled,
          "default model is reel-default (untrained, with audio)", "%s", s.model);
    CHECK(s.width == 128 && s.height == 128 && s.fps == 16 && s.fps_num == 16 && s.fps_den == 1 &&
              s.frames == 49 && fabs(s.duration - 49.0 / 16) < 1e-12,
          "size, fps, frames from the model's defaults", "%dx%d %g fps %d frames", s.width, s.height,
          s.fps, s.frames);
    CHECK(s.sampler.solver == REEL_FLOW_UNIPC && s.sampler.steps == 20 && s.sampler.shift == 5.0 &&
              s.sampler.guidance == 2.0 && s.sampler.audio_guidance == 3.0 &&
              s.sampler.slg_layer == 0 && s.seed == 0,
          "sampler and seed defaults", "steps %d guidance %g audio_guidance %g slg %d",
          s.sampler.steps, s.sampler.guidance, s.sampler.audio_guidance, s.sampler.slg_layer);
    CHECK(!strcmp(s.output.path, want) && s.output.container == REEL_CONTAINER_MP4 &&
              s.output.video_codec == REEL_VCODEC_H264 && s.output.crf == 18 &&
              s.output.audio_codec == REEL_ACODEC_AAC && s.output.audio_rate == 48000 &&
              !s.output.image_sequence.enabled && !s.output.wav.enabled &&
              !s.output.contact_sheet.enabled,
          "output defaults: spec name .mp4 beside the spec, h264 crf 18, aac 48 kHz", "%s",
          s.output.path);
    CHECK(!strcmp(s.negative_prompt, "") && !strcmp(s.prompt, "a boat"), "prompts", "'%s'",
          s.prompt);
    char where[600];
    snprintf(want, sizeof want, "%s:2:9: prompt", path);
    CHECK(!strcmp(reel_spec_where(&s, "prompt", where, sizeof where), want), "where: a given key",
          "%s", where);
    snprintf(want, sizeof want, "%s: fps", path);
    CHECK(!strcmp(reel_spec_where(&s, "fps", where, sizeof where), want) &&
              reel_spec_given(&s, "prompt") && !reel_spec_given(&s, "fps"),
          "where: a defaulted key", "%s", where);
    reel_spec_free(&s);
    reel_diag_free(&d);
}

/* The video-only path's defaults come from tests/configs/tiny-wan.yaml when
 * the spec names it. */
static void test_defaults_tiny_wan(void)
{
    char path[512], yaml[4400];
    struct reel_spec s;
    struct reel_diag d = {0};
    snprintf(yaml, sizeof yaml, "version: 1\nprompt: a boat\nmodel: %s\n", tiny_wan);
    int rc = load_spec("tiny_wan.yaml", yaml, NULL, 0, NULL, &s, &d, path, sizeof path);
    if (!CHECK(rc == REEL_OK && d.errors == 0 && d.warnings == 0, "tiny-wan spec loads cleanly",
               "rc %d", rc)) {
        dump_diag(&d);
        reel_diag_free(&d);
        return;
    }
    CHECK(!strcmp(s.model_config.name, "tiny-wan") && s.model_config.family == REEL_FAMILY_WAN21 &&
              !s.model_config.audio.enabled && !s.model_config.dit.frame_cond,
          "tiny-wan: a wan2.1 model without audio", "%s", s.model_config.name);
    CHECK(s.width == 256 && s.height == 160 && s.fps == 16 && s.frames == 17 &&
              fabs(s.duration - 17.0 / 16) < 1e-12 && s.sampler.steps == 20 &&
              s.sampler.audio_guidance == 1.0,
          "tiny-wan: 256x160, 17 frames at 16 fps, 20 steps", "%dx%d %g fps %d frames %d steps %g",
          s.width, s.height, s.fps, s.frames, s.sampler.steps, s.sampler.audio_guidance);
    reel_spec_free(&s);
    reel_diag_free(&d);
}

static void expect_warning(const char *label, const char *yaml, const char *where, const char *msg,
                           struct reel_spec *s)
{
    char path[512], prefix[700], name[128];
    snprintf(name, sizeof name, "warn_%d.yaml", (int)strlen(label));
    struct reel_diag d = {0};
    int rc = load_spec(name, yaml, NULL, 0, NULL, s, &d, path, sizeof path);
    snprintf(prefix, sizeof prefix, "%s:%s", path, where);
    char tname[200];
    snprintf(tname, sizeof tname, "warning: %s", label);
    if (!CHECK(rc == REEL_OK && find_item(&d, REEL_DIAG_WARNING, prefix, msg), tname,
               "rc %d, wanted \"%s ... %s\"", rc, prefix, msg))
        dump_diag(&d);
    reel_diag_free(&d);
}

static void test_snapping(void)
{
    struct reel_spec s;
    expect_warning("wan2.2 size to multiples of 32",
                   "version: 1\nprompt: hi\nmodel: wan2.2-ti2v-5b\nsize: [500, 300]\n",
                   "4:7: size: ", "500x300 snapped to 512x288 (multiples of 32 for wan2.2-ti2v-5b)", &s);
    CHECK(s.width == 512 && s.height == 288 && s.frames == 121 && s.fps == 24,
          "wan2.2 snapped size, model frames and fps", "%dx%d %d", s.width, s.height, s.frames);
    reel_spec_free(&s);
    expect_warning("wan2.1 size to multiples of 16",
                   "version: 1\nprompt: hi\nmodel: wan2.1-t2v-1.3b\nsize: [500, 300]\n", "4:7: size: ",
                   "500x300 snapped to 496x304 (multiples of 16", &s);
    CHECK(!strncmp(s.negative_prompt, "色调艳丽", strlen("色调艳丽")) && s.frames == 81 &&
              s.sampler.steps == 50,
          "wan2.1 standard negative prompt and defaults", "%d", s.frames);
    reel_spec_free(&s);
    expect_warning("frames to 4k+1", "version: 1\nprompt: hi\nframes: 80\n", "3:9: frames: ",
                   "80 snapped to 81 (1 + 4k", &s);
    CHECK(s.frames == 81, "80 frames -> 81", "%d", s.frames);
    reel_spec_free(&s);
    expect_warning("frames tie goes up", "version: 1\nprompt: hi\nframes: 83\n", "3:9: frames: ",
                   "83 snapped to 85", &s);
    reel_spec_free(&s);
    expect_warning("duration to frames", "version: 1\nprompt: hi\nduration: 5\n",
                   "3:11: duration: ", "5 s at 16 fps is 80 frames, snapped to 81", &s);
    CHECK(s.frames == 81 && fabs(s.duration - 81.0 / 16) < 1e-12, "duration 5 s -> 81 frames",
          "%d %g", s.frames, s.duration);
    reel_spec_free(&s);
    expect_warning("prores ignores crf",
                   "version: 1\nprompt: hi\noutput:\n  path: a.mov\n  video_codec: prores\n  crf: 10\n",
                   "6:8: output.crf: ", "prores does not use crf", &s);
    reel_spec_free(&s);
    expect_warning("contact sheet count clamped",
                   "version: 1\nprompt: hi\noutput:\n  contact_sheet:\n    count: 60\n",
                   "5:12: output.contact_sheet.count: ", "more than the clip's 49 frames", &s);
    CHECK(s.output.contact_sheet.count == 49, "contact sheet count = frames", "%d",
          s.output.contact_sheet.count);
    reel_spec_free(&s);

    CHECK(reel_snap_multiple(500, 32) == 512 && reel_snap_multiple(300, 32) == 288 &&
              reel_snap_multiple(8, 16) == 16 && reel_snap_multiple(24, 16) == 32 &&
              reel_snap_multiple(832, 16) == 832,
          "snap to multiples (nearest, ties up, at least one)", "%d", reel_snap_multiple(500, 32));
    CHECK(reel_snap_frames(80, 4) == 81 && reel_snap_frames(82, 4) == 81 &&
              reel_snap_frames(83, 4) == 85 && reel_snap_frames(1, 4) == 1 &&
              reel_snap_frames(0, 4) == 1 && reel_snap_frames(2, 4) == 1 &&
              reel_snap_frames(3, 4) == 5,
          "snap frames to 1 + 4k", "%d", reel_snap_frames(83, 4));
}

static void test_fps_and_duration(void)
{
    static const struct {
        const char *fps;
        int num, den;
    } cases[] = {{"24", 24, 1}, {"23.976", 24000, 1001}, {"29.97", 30000, 1001},
                 {"59.94", 60000, 1001}, {"12.5", 25, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char yaml[128], path[512], name[64];
        snprintf(yaml, sizeof yaml, "version: 1\nprompt: hi\nfps: %s\nframes: 9\n", cases[i].fps);
        snprintf(name, sizeof name, "fps_%zu.yaml", i);
        struct reel_spec s;
        struct reel_diag d = {0};
        int rc = load_spec(name, yaml, NULL, 0, NULL, &s, &d, path, sizeof path);
        char label[64];
        snprintf(label, sizeof label, "fps %s as %d/%d", cases[i].fps, cases[i].num, cases[i].den);
        CHECK(rc == REEL_OK && s.fps_num == cases[i].num && s.fps_den == cases[i].den, label,
              "rc %d -> %d/%d", rc, s.fps_num, s.fps_den);
        reel_spec_free(&s);
        reel_diag_free(&d);
    }
    char path[512];
    struct reel_spec s;
    struct reel_diag d = {0};
    int rc = load_spec("short.yaml", "version: 1\nprompt: hi\nduration: 0.01\n", NULL, 0, NULL, &s,
                       &d, path, sizeof path);
    CHECK(rc == REEL_OK && s.frames == 1, "a tiny duration gives one frame", "%d", s.frames);
    reel_spec_free(&s);
    reel_diag_free(&d);
}

static void test_paths_and_overrides(void)
{
    char dir[512], path[600], want[4400], cwd[4096];
    snprintf(dir, sizeof dir, "%s/sub", tmpdir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/job.yaml", dir);
    write_file(path, "version: 1\nprompt: hi\noutput:\n  path: ../out/clip.mov\n"
                     "  image_sequence: true\n  wav: true\n  silent_audio: true\n"
                     "  contact_sheet:\n    columns: 3\n");
    struct reel_spec s;
    struct reel_diag d = {0};
    int rc = reel_spec_load(path, NULL, &s, &d);
    if (!CHECK(rc == REEL_OK, "relative paths: loads", "rc %d", rc)) {
        dump_diag(&d);
    } else {
        snprintf(want, sizeof want, "%s/out/clip.mov", tmpdir);
        CHECK(!strcmp(s.output.path, want) && s.output.container == REEL_CONTAINER_MOV,
              "output.path resolves against the spec's folder", "%s", s.output.path);
        snprintf(want, sizeof want, "%s/out/clip.%%04d.png", tmpdir);
        CHECK(s.output.image_sequence.enabled && !strcmp(s.output.image_sequence.path, want) &&
                  s.output.image_sequence.format == REEL_SPEC_IMAGE_PNG &&
                  s.output.image_sequence.bit_depth == 8 && s.output.image_sequence.start_number == 1,
              "image sequence defaults beside the output", "%s", s.output.image_sequence.path);
        snprintf(want, sizeof want, "%s/out/clip.wav", tmpdir);
        CHECK(s.output.wav.enabled && !strcmp(s.output.wav.path, want), "wav default path", "%s",
              s.output.wav.path);
        snprintf(want, sizeof want, "%s/out/clip.sheet.png", tmpdir);
        CHECK(s.output.contact_sheet.enabled && !strcmp(s.output.contact_sheet.path, want) &&
                  s.output.contact_sheet.columns == 3 && s.output.contact_sheet.count == 16,
              "contact sheet defaults", "%s", s.output.contact_sheet.path);
    }
    reel_spec_free(&s);
    reel_diag_free(&d);

    /* -o replaces output.path, relative to the cwd */
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = 0;
    struct reel_spec_overrides ov = {.output_path = "renders/take2.mkv"};
    rc = reel_spec_load(path, &ov, &s, &d);
    snprintf(want, sizeof want, "%s/renders/take2.mkv", cwd);
    char where[600];
    CHECK(rc == REEL_OK && !strcmp(s.output.path, want) && s.output.container == REEL_CONTAINER_MKV &&
              !strcmp(reel_spec_where(&s, "output.path", where, sizeof where), "-o: output.path"),
          "-o overrides output.path (relative to the cwd)", "rc %d %s", rc,
          rc == REEL_OK ? s.output.path : "");
    if (rc == REEL_OK) {
        snprintf(want, sizeof want, "%s/renders/take2.wav", cwd);
        CHECK(!strcmp(s.output.wav.path, want), "side files follow -o", "%s", s.output.wav.path);
    }
    reel_spec_free(&s);
    reel_diag_free(&d);

    /* --set */
    const char *sets[] = {"sampler.steps=7", "size=[320, 192]", "prompt=\"a b: c\"",
                          "output.contact_sheet=false", "output.image_sequence.format=exr",
                          "seed=18446744073709551615", "output.path=here.mp4"};
    ov = (struct reel_spec_overrides){.sets = sets, .n_sets = 7};
    rc = reel_spec_load(path, &ov, &s, &d);
    if (!CHECK(rc == REEL_OK, "--set: loads", "rc %d", rc)) {
        dump_diag(&d);
    } else {
        snprintf(want, sizeof want, "%s/here.mp4", cwd);
        CHECK(s.sampler.steps == 7 && s.width == 320 && s.height == 192 &&
                  !strcmp(s.prompt, "a b: c") && !s.output.contact_sheet.enabled &&
                  s.output.image_sequence.format == REEL_SPEC_IMAGE_EXR &&
                  s.output.image_sequence.bit_depth == 16 && s.seed == UINT64_MAX &&
                  !strcmp(s.output.path, want),
              "--set values replace and add keys", "steps %d %dx%d '%s' %s", s.sampler.steps,
              s.width, s.height, s.prompt, s.output.path);
        CHECK(!strcmp(reel_spec_where(&s, "sampler.steps", where, sizeof where),
                      "--set sampler.steps") &&
                  reel_spec_given(&s, "sampler.steps"),
              "where: a --set key", "%s", where);
    }
    reel_spec_free(&s);
    reel_diag_free(&d);

    /* model as a path relative to the spec */
    char cfg_src[4200], cfg_dst[700];
    snprintf(cfg_src, sizeof cfg_src, "%s/reel-default.yaml", configs_dir);
    snprintf(cfg_dst, sizeof cfg_dst, "%s/mymodel.yaml", dir);
    char *text = read_text(cfg_src);
    if (text) {
        write_file(cfg_dst, text);
        free(text);
    }
    char mpath[600];
    snprintf(mpath, sizeof mpath, "%s/withmodel.yaml", dir);
    write_file(mpath, "version: 1\nprompt: hi\nmodel: mymodel.yaml\n");
    rc = reel_spec_load(mpath, NULL, &s, &d);
    snprintf(want, sizeof want, "%s/reel-default/fusion.safetensors", dir);
    CHECK(rc == REEL_OK && !strcmp(s.model_config.path, cfg_dst) &&
              !strcmp(s.model_config.dit.weights, want),
          "model path resolves against the spec; weights against the config", "rc %d %s", rc,
          rc == REEL_OK ? s.model_config.dit.weights : "");
    reel_spec_free(&s);
    reel_diag_free(&d);
}

static void test_canonical(void)
{
    char p1[512], p2[512];
    struct reel_spec a, b;
    struct reel_diag d = {0};
    int r1 = load_spec("canon_a.yaml",
                       "# one\nversion: 1\nprompt: hi \"there\"\nfps: 16\noutput: {path: c.mp4}\n",
                       NULL, 0, NULL, &a, &d, p1, sizeof p1);
    int r2 = load_spec("canon_b.yaml",
                       "output:\n  path: c.mp4\nprompt: 'hi \"there\"'\nversion: 1\n", NULL, 0,
                       NULL, &b, &d, p2, sizeof p2);
    char *ta = r1 == REEL_OK ? reel_spec_canonical(&a) : NULL;
    char *tb = r2 == REEL_OK ? reel_spec_canonical(&b) : NULL;
    CHECK(ta && tb && !strcmp(ta, tb) && strstr(ta, "prompt: \"hi \\\"there\\\"\"\n") &&
              strstr(ta, "frames: 49\n"),
          "canonical text ignores order, comments and quoting", "%s", ta ? ta : "(null)");
    /* and it parses back as YAML */
    struct reel_ydoc doc;
    struct reel_diag d2 = {0};
    int rc = ta ? reel_ydoc_load_string(ta, strlen(ta), "canonical", &doc, &d2, REEL_E_SPEC) : -1;
    CHECK(rc == REEL_OK && doc.root && doc.root->kind == REEL_Y_MAP, "canonical text is YAML", "rc %d",
          rc);
    if (ta)
        reel_ydoc_free(&doc);
    reel_diag_free(&d2);
    free(ta);
    free(tb);
    reel_spec_free(&a);
    reel_spec_free(&b);
    reel_diag_free(&d);
}

static void test_path_resolve(void)
{
    char why[128];
    char *p = reel_path_resolve("a/../b/./c//d/", "/base", why, sizeof why);
    CHECK(p && !strcmp(p, "/base/b/c/d"), "path: lexical normalisation", "%s", p ? p : why);
    free(p);
    p = reel_path_resolve("../../../x", "/a", why, sizeof why);
    CHECK(p && !strcmp(p, "/x"), "path: .. stops at /", "%s", p ? p : why);
    free(p);
    setenv("REEL_TEST_VAR", "/env/dir", 1);
    p = reel_path_resolve("${REEL_TEST_VAR}/w", "/base", why, sizeof why);
    CHECK(p && !strcmp(p, "/env/dir/w"), "path: ${VAR}", "%s", p ? p : why);
    free(p);
    unsetenv("REEL_TEST_VAR");
    p = reel_path_resolve("${REEL_TEST_VAR:-/fallback}/w", "/base", why, sizeof why);
    CHECK(p && !strcmp(p, "/fallback/w"), "path: ${VAR:-default}", "%s", p ? p : why);
    free(p);
    p = reel_path_resolve("${REEL_TEST_VAR}/w", "/base", why, sizeof why);
    CHECK(!p && strstr(why, "REEL_TEST_VAR is not set"), "path: unset variable is an error", "%s",
          p ? p : why);
    free(p);
    const char *home = getenv("HOME");
    if (home && *home == '/') {
        char want[600];
        p = reel_path_resolve("~/models", "/base", why, sizeof why);
        snprintf(want, sizeof want, "%s/models", home);
        CHECK(p && !strcmp(p, want), "path: ~", "%s", p ? p : why);
        free(p);
    }
}

/* ------------------------------------------------------ model configs */

static const char *golden_dir(void)
{
    const char *g = getenv("REEL_GOLDEN_DIR");
    return g && *g ? g : "../shared/golden";
}

static struct reel_json *load_manifest(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/real/%s", golden_dir(), file);
    char *text = read_text(path);
    if (!text)
        return NULL;
    char msg[128];
    struct reel_json *j = reel_json_parse(text, strlen(text), msg, sizeof msg);
    free(text);
    return j;
}

static void check_against_manifest(const char *label, int tensors, int64_t params,
                                   const char *manifest)
{
    struct reel_json *j = load_manifest(manifest);
    char name[160];
    snprintf(name, sizeof name, "%s matches %s", label, manifest);
    if (!CHECK(j != NULL, name, "cannot read %s/real/%s", golden_dir(), manifest))
        return;
    int64_t want_t = reel_json_int(j, "num_tensors", -1), want_p = reel_json_int(j, "total_params", -1);
    CHECK(tensors == want_t && params == want_p, name, "%d tensors / %lld params, manifest %lld / %lld",
          tensors, (long long)params, (long long)want_t, (long long)want_p);
    reel_json_free(j);
}

static int load_config(const char *name, struct reel_model_config *m)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.yaml", configs_dir, name);
    struct reel_diag d = {0};
    int rc = reel_model_config_load(path, NULL, m, &d);
    char label[160];
    snprintf(label, sizeof label, "config %s loads", name);
    if (!CHECK(rc == REEL_OK && d.warnings == 0, label, "rc %d", rc))
        dump_diag(&d);
    reel_diag_free(&d);
    return rc;
}

static void test_model_configs(void)
{
    struct reel_model_config m;
    struct reel_model_params p;
    char want[4400];
    if (load_config("wan2.1-t2v-1.3b", &m) == REEL_OK) {
        reel_model_config_params(&m, &p);
        CHECK(p.dit_tensors == 825, "wan2.1-t2v-1.3b: 825 DiT tensors", "%d", p.dit_tensors);
        check_against_manifest("wan2.1-t2v-1.3b DiT", p.dit_tensors, p.dit, "wan21_t2v_1.3b.json");
        check_against_manifest("wan2.1-t2v-1.3b VAE", p.vae_tensors, p.vae, "wan21_vae.json");
        check_against_manifest("wan2.1-t2v-1.3b umT5", p.text_tensors, p.text, "umt5_xxl_encoder.json");
        snprintf(want, sizeof want, "%s/models/Wan2.1-T2V-1.3B/diffusion_pytorch_model.safetensors",
                 tmpdir);
        CHECK(!strcmp(m.dit.weights, want), "wan2.1: weights under $REEL_MODELS_DIR", "%s",
              m.dit.weights);
        CHECK(m.size_multiple_w == 16 && m.size_multiple_h == 16 && m.frame_step == 4 &&
                  m.max_frames == 4093 && m.vae.spatial_stride == 8 && m.vae.temporal_stride == 4,
              "wan2.1: multiples of 16, 1 + 4k frames", "%d %d", m.size_multiple_w, m.frame_step);
        CHECK(m.vae.cfg.z_dim == 16 && m.vae.latent_mean[0] == -0.7571f &&
                  m.vae.latent_std[15] == 1.9160f && m.vae.latent_inv_std[15] == 1.0f / 1.9160f &&
                  m.defaults.width == 832 && m.defaults.height == 480 && m.defaults.frames == 81 &&
                  m.defaults.fps == 16 && m.defaults.solver == REEL_FLOW_UNIPC &&
                  m.defaults.steps == 50 && m.defaults.shift == 5.0 && m.defaults.guidance == 5.0,
              "wan2.1: VAE statistics and defaults", "%g", m.vae.latent_mean[0]);
        reel_model_config_free(&m);
    }
    if (load_config("wan2.2-ti2v-5b", &m) == REEL_OK) {
        reel_model_config_params(&m, &p);
        CHECK(p.dit_tensors == 825, "wan2.2-ti2v-5b: 825 DiT tensors", "%d", p.dit_tensors);
        check_against_manifest("wan2.2-ti2v-5b DiT", p.dit_tensors, p.dit, "wan22_ti2v_5b.json");
        check_against_manifest("wan2.2-ti2v-5b VAE", p.vae_tensors, p.vae, "wan22_vae.json");
        check_against_manifest("wan2.2-ti2v-5b umT5", p.text_tensors, p.text, "umt5_xxl_encoder.json");
        CHECK(m.size_multiple_w == 32 && m.frame_step == 4 && m.vae.spatial_stride == 16 &&
                  m.dit.cfg.model_type == REEL_WAN_TI2V && m.vae.cfg.z_dim == 48 &&
                  m.vae.latent_std[47] == 0.7744f && m.defaults.width == 1280 &&
                  m.defaults.height == 704 && m.defaults.frames == 121 && m.defaults.fps == 24,
              "wan2.2: multiples of 32, ti2v, VAE z 48, 720p/24 defaults", "%d", m.size_multiple_w);
        reel_model_config_free(&m);
    }
    if (load_config("reel-default", &m) == REEL_OK) {
        reel_model_config_params(&m, &p);
        snprintf(want, sizeof want, "%s/reel-default/vae.safetensors", configs_dir);
        CHECK(!m.trained && m.family == REEL_FAMILY_OVI && m.audio.enabled && m.dit.frame_cond &&
                  m.size_multiple_w == 32 && p.dit > 0 && p.dit < 20 * 1000 * 1000 &&
                  !strcmp(m.vae.weights, want),
              "reel-default: small ovi model with audio, untrained, weights in configs/reel-default",
              "family %s, %lld %s", reel_model_family_name(m.family), (long long)p.dit,
              m.vae.weights);
        CHECK(m.defaults.width == 128 && m.defaults.height == 128 && m.defaults.frames == 49 &&
                  m.defaults.fps == 16,
              "reel-default: defaults 128x128, 49 frames at 16 fps", "%dx%d %d %g",
              m.defaults.width, m.defaults.height, m.defaults.frames, m.defaults.fps);
        reel_model_config_free(&m);
    }
    {
        struct reel_diag d = {0};
        setenv("REEL_TINY_WAN_WEIGHTS", "/nonexistent/tw", 1);
        int rc = reel_model_config_load(tiny_wan, NULL, &m, &d);
        unsetenv("REEL_TINY_WAN_WEIGHTS");
        if (CHECK(rc == REEL_OK && d.warnings == 0, "config tests/configs/tiny-wan.yaml loads", "rc %d",
                  rc)) {
            reel_model_config_params(&m, &p);
            CHECK(m.family == REEL_FAMILY_WAN21 && !m.audio.enabled && m.size_multiple_w == 16 &&
                      m.frame_step == 4 && p.dit > 0 && p.dit < 1000 * 1000 &&
                      !strcmp(m.dit.weights, "/nonexistent/tw/dit.safetensors"),
                  "tiny-wan: toy wan2.1, weights under $REEL_TINY_WAN_WEIGHTS", "%lld %s",
                  (long long)p.dit, m.dit.weights);
            reel_model_config_free(&m);
        } else {
            dump_diag(&d);
        }
        reel_diag_free(&d);
    }
}

static void expect_config_error(const char *label, const char *edit_from, const char *edit_to,
                                const char *where_suffix, const char *msg)
{
    char src[4200], path[600];
    snprintf(src, sizeof src, "%s/wan2.1-t2v-1.3b.yaml", configs_dir);
    char *text = read_text(src);
    if (!text) {
        CHECK(0, label, "cannot read %s", src);
        return;
    }
    char *at = strstr(text, edit_from);
    if (!at) {
        CHECK(0, label, "'%s' not in the config", edit_from);
        free(text);
        return;
    }
    size_t n = strlen(text) + strlen(edit_to) + 1;
    char *edited = malloc(n);
    snprintf(edited, n, "%.*s%s%s", (int)(at - text), text, edit_to, at + strlen(edit_from));
    snprintf(path, sizeof path, "%s/broken_%zu.yaml", tmpdir, strlen(label));
    write_file(path, edited);
    free(text);
    free(edited);

    /* through a spec, so the code says "model problem" */
    char spec_path[700], spec[900], prefix[1000], tname[200];
    snprintf(spec_path, sizeof spec_path, "%s/uses_broken.yaml", tmpdir);
    snprintf(spec, sizeof spec, "version: 1\nprompt: hi\nmodel: %s\n", path);
    write_file(spec_path, spec);
    struct reel_spec s;
    struct reel_diag d = {0};
    int rc = reel_spec_load(spec_path, NULL, &s, &d);
    snprintf(prefix, sizeof prefix, "%s%s", path, where_suffix);
    snprintf(tname, sizeof tname, "bad config: %s", label);
    const char *hit = find_item(&d, REEL_DIAG_ERROR, prefix, msg);
    if (!CHECK(rc == REEL_E_MODEL && hit && d.items[0].code == REEL_E_MODEL, tname,
               "rc %d, wanted \"%s ... %s\"", rc, prefix, msg))
        dump_diag(&d);
    reel_spec_free(&s);
    reel_diag_free(&d);
}

static void test_bad_configs(void)
{
    expect_config_error("heads do not divide dim", "num_heads: 12", "num_heads: 7", ":23:14: dit.num_heads: ",
                        "must split into 7 heads");
    expect_config_error("out_dim against z_dim", "out_dim: 16", "out_dim: 48", ":26:12: dit.out_dim: ",
                        "must equal vae.z_dim (16)");
    expect_config_error("latent mean count", "latent_mean: [-0.7571, ", "latent_mean: [",
                        ":43:16: vae.latent_mean: ", "must have z_dim = 16 values, got 15");
    expect_config_error("unknown key", "  eps: 1.0e-6\n", "  eps: 1.0e-6\n  window_size: [-1, -1]\n",
                        ":32:3: dit.window_size: ", "unknown key");
    expect_config_error("dec_dim on a 2.1 VAE", "  dim: 96\n", "  dim: 96\n  dec_dim: 96\n",
                        ":37:12: vae.dec_dim: ", "only the 2.2 VAE");
    expect_config_error("missing dit weights", "  weights: diffusion_pytorch_model.safetensors\n", "",
                        ":17:3: dit.weights: ", "missing (required)");
    expect_config_error("unset variable", "${REEL_MODELS_DIR:-~/models}", "${REEL_TEST_UNSET_VAR}",
                        ":14:14: weights_dir: ", "REEL_TEST_UNSET_VAR is not set");
    expect_config_error("default size off the grid", "size: [832, 480]", "size: [830, 480]",
                        ":63:9: defaults.size: ", "830x480 is not a multiple of 16x16");
    expect_config_error("bad family", "family: wan2.1", "family: sora", ":9:9: family: ",
                        "must be one of wan2.1, wan2.2, reel-default");
}

static void test_configs_dir(void)
{
    char dir[4096];
    struct reel_err err = {0};
    int rc = reel_model_configs_dir(dir, sizeof dir, &err);
    CHECK(rc == REEL_OK && !strcmp(dir, configs_dir), "configs dir from the binary's checkout",
          "%s / %s", rc == REEL_OK ? dir : err.msg, configs_dir);
    char *path = NULL;
    err = (struct reel_err){0};
    rc = reel_model_config_find("nosuch", NULL, NULL, &path, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "wan2.1-t2v-1.3b") && strstr(err.msg, "reel-default"),
          "unknown model lists the known ones", "%s", err.msg);
    free(path);
}

static void test_examples(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/../examples", configs_dir);
    DIR *dp = opendir(dir);
    if (!CHECK(dp != NULL, "examples folder", "cannot open %s", dir))
        return;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dp))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
            continue;
        char path[4500], label[300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct reel_spec s;
        struct reel_diag d = {0};
        int rc = reel_spec_load(path, NULL, &s, &d);
        snprintf(label, sizeof label, "example %s validates without warnings", e->d_name);
        if (!CHECK(rc == REEL_OK && d.warnings == 0, label, "rc %d", rc))
            dump_diag(&d);
        reel_spec_free(&s);
        reel_diag_free(&d);
        n++;
    }
    closedir(dp);
    CHECK(n >= 3, "at least 3 examples", "%d", n);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/reel_test_spec_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* weight paths of the real models resolve under here, whatever $HOME is */
    char models[300];
    snprintf(models, sizeof models, "%s/models", tmpdir);
    setenv("REEL_MODELS_DIR", models, 1);
    unsetenv("REEL_CONFIGS");
    struct reel_err err = {0};
    if (reel_model_configs_dir(configs_dir, sizeof configs_dir, &err)) {
        printf("FAIL - configs dir: %s\n", err.msg);
        return 1;
    }
    snprintf(tiny_wan, sizeof tiny_wan, "%s/../tests/configs/tiny-wan.yaml", configs_dir);

    test_bad_specs();
    test_all_errors_in_one_run();
    test_defaults();
    test_defaults_tiny_wan();
    test_snapping();
    test_fps_and_duration();
    test_paths_and_overrides();
    test_canonical();
    test_path_resolve();
    test_model_configs();
    test_bad_configs();
    test_configs_dir();
    test_examples();

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmpdir);
    TEST_EXIT();
}
