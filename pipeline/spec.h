/* Job spec v1: a YAML file (read with libyaml) resolved into struct
 * reel_spec with every value filled (model defaults for what the spec leaves
 * out, sizes and frame counts snapped to what the model can take, paths
 * absolute). Every problem in a file is collected, not only the first, as
 * "file:line:col: key.path: message" (docs/job-spec.md is the reference).
 *
 * The same YAML tree, schema walker and diagnostics list serve the model
 * configs (pipeline/model_config.c); they are declared at the end. */
#ifndef REEL_SPEC_H
#define REEL_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"
#include "pipeline/model_config.h"
#include "stages/flow_sampler.h"

/* ------------------------------------------------------------ diagnostics */

/* At most this many messages are kept; the counts keep going. */
#define REEL_DIAG_MAX 100

enum reel_diag_level { REEL_DIAG_ERROR, REEL_DIAG_WARNING };

struct reel_diag_item {
    enum reel_diag_level level;
    int code;   /* errors: REEL_E_SPEC (the job spec) or REEL_E_MODEL (the model config) */
    char *text; /* "file:line:col: key.path: message" */
};

/* Zero-initialised is empty. */
struct reel_diag {
    struct reel_diag_item *items;
    int count, cap;
    int errors, warnings; /* totals, including messages dropped past REEL_DIAG_MAX */
    int spec_errors;      /* errors with code REEL_E_SPEC */
    int media_errors;     /* errors with code REEL_E_MEDIA (an input file of the spec) */
    int oom;              /* an allocation failed somewhere */
};

void reel_diag_add(struct reel_diag *d, enum reel_diag_level level, int code, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
void reel_diag_free(struct reel_diag *d);
/* Prints every message to stderr ("warning: " before warnings), and how many
 * were dropped past REEL_DIAG_MAX (pipeline/validate_cmd.c). */
void reel_diag_print(const struct reel_diag *d, const char *file);
/* REEL_OK without errors; else REEL_E_SPEC if any spec error, REEL_E_MODEL if
 * model-config errors (and no spec error), REEL_E_MEDIA if only input-file
 * errors (an image the spec names is missing or undecodable), REEL_E_OTHER
 * after an allocation failure. */
int reel_diag_status(const struct reel_diag *d);

/* --------------------------------------------------------------- the spec */

enum reel_container { REEL_CONTAINER_MP4, REEL_CONTAINER_MOV, REEL_CONTAINER_MKV };
/* The spec's own enums are indices into its name lists; stages/stage_decode.c
 * maps them to the mux's (stages/mux.h). */
enum reel_spec_video_codec { REEL_VCODEC_H264, REEL_VCODEC_HEVC, REEL_VCODEC_PRORES };
enum reel_spec_audio_codec { REEL_ACODEC_AAC, REEL_ACODEC_PCM, REEL_ACODEC_NONE };
enum reel_spec_image_format { REEL_SPEC_IMAGE_PNG, REEL_SPEC_IMAGE_EXR };

const char *reel_container_name(enum reel_container c);     /* "mp4", ... */
const char *reel_video_codec_name(enum reel_spec_video_codec c); /* "h264", ... */
const char *reel_audio_codec_name(enum reel_spec_audio_codec c); /* "aac", ... */

struct reel_spec_output {
    char *path;                     /* absolute; -o replaces it */
    enum reel_container container;  /* from the extension of path */
    enum reel_spec_video_codec video_codec;
    int crf;                        /* h264 / hevc quality, 0..51 (unused by prores) */
    enum reel_spec_audio_codec audio_codec;
    int audio_rate;                 /* Hz */
    int silent_audio;               /* a silent track when the model makes no audio */
    struct {
        int enabled;
        enum reel_spec_image_format format;
        char *path;                 /* absolute printf pattern with one %d, e.g. /x/clip.%04d.png */
        int start_number;
        int bit_depth;              /* png: 8 or 16; exr: 16 (half) or 32 (float) */
    } image_sequence;
    struct {
        int enabled;
        char *path;                 /* absolute .wav */
    } wav;
    struct {
        int enabled;
        char *path;                 /* absolute .png / .jpg */
        int columns;
        int count;                  /* frames on the sheet, evenly spaced; <= frames */
    } contact_sheet;
};

struct reel_spec_loc; /* where each key came from (private) */

/* One conditioning image of a frame_cond model (image, last_image,
 * keyframes), resolved: the spec's list is sorted by frame. */
struct reel_spec_keyframe {
    int frame;                      /* video frame, 0 .. frames-1 (negatives resolved) */
    char *image;                    /* absolute path */
    char sha256[65];                /* of the file's bytes, hex */
    char where[256];                /* "file:line:col: keyframes[1].image" (the path's
                                       place) for messages */
};

struct reel_spec {
    char *file;                     /* the spec path as given (for messages) */
    char *path;                     /* absolute */
    char *dir;                      /* absolute directory of the spec: relative paths resolve here */
    int version;                    /* 1 */
    char *model;                    /* as written: a name in configs/ or a path */
    struct reel_model_config model_config;
    uint64_t seed;
    char *prompt;
    char *negative_prompt;          /* the model's default when the spec leaves it out */
    char *audio_negative_prompt;    /* the audio tower's (models with audio; else "") */
    int width, height;              /* snapped */
    double fps;
    int fps_num, fps_den;           /* fps as a rational (23.976 -> 24000/1001) */
    int frames;                     /* snapped to 1 + k * model_config.frame_step */
    double duration;                /* frames / fps: the clip's real length in seconds */
    struct {
        enum reel_flow_solver solver;
        int steps;
        double shift;
        double guidance;            /* 1 = no classifier-free guidance (video, for joint models) */
        double audio_guidance;      /* the audio tower's scale (models with audio; else 1) */
        int slg_layer;              /* block skipped on the unconditional pass; <= 0 off */
    } sampler;
    struct reel_spec_output output;
    /* Frame conditioning (models with dit.frame_cond): image (frame 0),
     * last_image (frame -1) and keyframes merged, sorted by frame, no two
     * on one frame. Empty for other models (giving any is an error). */
    struct reel_spec_keyframe *keyframes;
    int n_keyframes;
    struct reel_spec_loc *loc;
};

/* Command-line changes applied on top of the file. */
struct reel_spec_overrides {
    const char *output_path;        /* -o: replaces output.path; relative to the cwd */
    const char *const *sets;        /* --set KEY.PATH=VALUE; VALUE is a YAML flow value */
    int n_sets;
    const char *configs_dir;        /* where model names resolve; NULL: reel_model_configs_dir() */
};

/* Reads, validates and resolves one spec. Every error and warning goes to
 * diag. Returns reel_diag_status(diag) for this load: REEL_OK (warnings may
 * be present), REEL_E_SPEC, REEL_E_MODEL (the model config is broken) or
 * REEL_E_OTHER. On failure *out is left empty (reel_spec_free is harmless). */
int reel_spec_load(const char *path, const struct reel_spec_overrides *ov, struct reel_spec *out,
                   struct reel_diag *diag);
void reel_spec_free(struct reel_spec *s);

/* Where a key's value came from, for messages about it later (render time):
 * "file:line:col: key.path", "--set key.path", "-o" or, for a value filled by
 * default, "file: key.path". Unknown key paths give "file: key.path". */
const char *reel_spec_where(const struct reel_spec *s, const char *key_path, char *buf, size_t n);
/* Whether the spec (or --set / -o) gave the key, or a default filled it. */
int reel_spec_given(const struct reel_spec *s, const char *key_path);

/* The resolved spec as canonical YAML (every key, schema order, no
 * comments): the same text for any two specs that render the same clip, so
 * work directories can key on it. malloc'd; NULL when out of memory. */
char *reel_spec_canonical(const struct reel_spec *s);

/* Snapping rules, exposed for the planner and the tests: the nearest
 * multiple of m (ties up, at least m), and the nearest 1 + k * step
 * (ties up, at least 1). */
int reel_snap_multiple(int v, int m);
int reel_snap_frames(int64_t frames, int step);

/* `reel validate` and `reel info` (pipeline/validate_cmd.c). */
int reel_validate_main(int argc, char **argv);
int reel_info_main(int argc, char **argv);

/* ------------------------------------------ YAML tree (spec, model config) */

enum reel_ynode_kind { REEL_Y_SCALAR, REEL_Y_SEQ, REEL_Y_MAP };

struct reel_ynode {
    enum reel_ynode_kind kind;
    char *value;            /* SCALAR: the text, NUL-terminated */
    size_t len;
    int plain;              /* plain (unquoted) scalar without a tag: may be null/bool/number */
    char *tag;              /* explicit tag, or NULL */
    int line, col;          /* 1-based start of the node */
    const char *origin;     /* NULL: from the file; else the --set key path it came from,
                               or "-o" */
    size_t count;
    struct reel_ynode **items; /* SEQ elements, MAP values */
    struct reel_ynode **keys;  /* MAP keys */
};

struct reel_ydoc {
    char *file;             /* for messages */
    struct reel_ynode *root; /* NULL for an empty document */
    struct reel_ynode **all; /* every node, for freeing (aliases share nodes) */
    size_t n_all, cap_all;
    char **strings;         /* origin strings owned by the document */
    size_t n_strings;
};

/* Parses one YAML document. Syntax errors (with libyaml's mark), several
 * documents, and unknown aliases go to diag with `code`. */
int reel_ydoc_load_file(const char *path, const char *display, struct reel_ydoc *doc,
                        struct reel_diag *diag, int code);
int reel_ydoc_load_string(const char *text, size_t len, const char *display,
                          struct reel_ydoc *doc, struct reel_diag *diag, int code);
void reel_ydoc_free(struct reel_ydoc *doc);

/* "file:line:col: key.path: " (or "--set key: key.path: ") for a node. */
void reel_ynode_where(const struct reel_ynode *n, const char *file, const char *key_path,
                      char *buf, size_t size);

/* ------------------------------------------------ schema-driven key walker */

enum reel_field_kind {
    REEL_F_SECTION, /* a map of further keys */
    REEL_F_BOOL,    /* int */
    REEL_F_INT,     /* int, in [min, max] */
    REEL_F_U64,     /* uint64_t */
    REEL_F_NUM,     /* double, finite, in [min, max] */
    REEL_F_STR,     /* char * (malloc'd): any scalar but null */
    REEL_F_PATH,    /* char * (malloc'd): resolved against the base dir, ${VAR} and ~ expanded */
    REEL_F_RAWPATH, /* char * (malloc'd): as written; the caller resolves it */
    REEL_F_ENUM,    /* int: index into choices (matched case-insensitively) */
    REEL_F_INTS,    /* int[count] (or up to count with REEL_FF_VARLEN) */
    REEL_F_NUMS,    /* double[count] */
    REEL_F_BOOLS,   /* int[count] */
    REEL_F_NODE,    /* const struct reel_ynode *: any value, kept for the caller to walk
                       (valid while the document lives) */
};

#define REEL_FF_REQUIRED 1     /* an error when absent (and its section is present) */
#define REEL_FF_MIN_EXCL 2     /* value must be > min */
#define REEL_FF_BOOL_SECTION 4 /* SECTION that also takes true/false; int enabled at offset */
#define REEL_FF_NONEMPTY 8     /* STR / PATH: not "" */
#define REEL_FF_VARLEN 16      /* INTS / NUMS / BOOLS: 0..count entries; int n at count_offset */

struct reel_field {
    const char *path;       /* dotted key path, "output.image_sequence.bit_depth" */
    enum reel_field_kind kind;
    size_t offset;          /* into the target struct */
    double min, max;
    int flags;
    const char *const *choices; /* ENUM: NULL-terminated */
    int count;
    size_t count_offset;
};

/* Where one key was given (line 0: not in the file). */
struct reel_field_loc {
    int given;
    int line, col;
    char origin[64];        /* "" from the file; else as reel_ynode.origin */
};

struct reel_schema {
    const struct reel_field *fields;
    int n_fields;
    void *out;              /* the target struct */
    struct reel_field_loc *loc; /* [n_fields] */
    const char *file;       /* for messages */
    const char *base_dir;   /* REEL_F_PATH base for nodes from the file */
    struct reel_diag *diag;
    int code;               /* error code of every message */
};

/* Walks a document's root map into s->out, recording where each key was.
 * Unknown keys, duplicates, wrong types and out-of-range values are errors;
 * the walk goes on after each one. */
void reel_schema_walk(struct reel_schema *s, const struct reel_ynode *root);
int reel_schema_index(const struct reel_field *fields, int n, const char *path);
/* Frees the strings REEL_F_STR / PATH / RAWPATH fields hold in out. */
void reel_schema_free_strings(const struct reel_field *fields, int n, void *out);

/* Expands ${VAR}, ${VAR:-default} and a leading ~ and makes the path absolute
 * against base (lexically normalised). NULL with a reason in why on error. */
char *reel_path_resolve(const char *raw, const char *base, char *why, size_t why_len);
/* The absolute directory holding path (malloc'd). */
char *reel_path_dirname_abs(const char *path);

#endif
