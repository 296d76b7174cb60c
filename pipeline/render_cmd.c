/* `reel render JOB.yaml`: loads the spec, opens the job's work directory,
 * runs the stages text -> [cond] -> denoise -> decode (streaming into the
 * mux; cond only for models with frame conditioning), skipping
 * those a previous run finished, and writes the manifest JSON beside the
 * output. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/atomic_file.h"
#include "kernels/sha256.h"
#include "pipeline/job.h"
#include "pipeline/version.h"
#include "stages/stage_cond.h"

struct stage_entry {
    const char *name;
    int (*run)(struct reel_job *job, struct reel_err *err);
    /* NULL: every job; else whether this job has the stage */
    int (*applies)(const struct reel_spec *s);
};

static int has_frame_cond(const struct reel_spec *s)
{
    return s->model_config.dit.frame_cond;
}

static const struct stage_entry stages[] = {
    {"text", reel_stage_text, NULL},
    {"cond", reel_stage_cond, has_frame_cond},
    {"denoise", reel_stage_denoise, NULL},
    {"decode", reel_stage_decode, NULL},
};

static int stage_applies(const struct stage_entry *e, const struct reel_spec *s)
{
    return !e->applies || e->applies(s);
}
enum { N_STAGES = sizeof stages / sizeof stages[0] };

static void render_usage(FILE *out)
{
    fprintf(out,
            "usage: reel render JOB.yaml [-o OUT] [--set KEY.PATH=VALUE]... [--workdir DIR]\n"
            "                   [--json] [--threads N]\n"
            "\n"
            "Renders a job spec to a clip. Every stage writes its artifacts to the work\n"
            "directory; rendering again over it skips what is done, so a killed render\n"
            "resumes and produces the same bytes. Beside the output, OUT.json records the\n"
            "resolved spec, model, weight hashes, seed, sampler and stage times.\n"
            "\n"
            "  -o OUT                output path (replaces output.path)\n"
            "  --set KEY.PATH=VALUE  change a key of the spec (VALUE is YAML)\n"
            "  --workdir DIR         work directory (default: .NAME.reel beside the output)\n"
            "  --json                progress as JSON lines on stderr even on a terminal\n"
            "  --threads N           CPU threads (default: all)\n"
            "  -h, --help            this help\n"
            "\n"
            "exit status: 0 done, 2 bad job spec or arguments, 3 model/weights problem,\n"
            "4 media/IO problem, 1 anything else\n");
}

/* ".NAME.reel" beside the output file. */
static void default_workdir(const char *output, char *buf, size_t n)
{
    const char *slash = strrchr(output, '/');
    int dir_len = slash ? (int)(slash - output + 1) : 0;
    snprintf(buf, n, "%.*s.%s.reel", dir_len, output, slash ? slash + 1 : output);
}

/* Appends a JSON string literal. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* "label": {"path": ..., "sha256": ...} for one weight file. A shard index
 * or a directory is named but not hashed (null): hashing every shard of a
 * multi-GB checkpoint per render is left to a cache keyed by size and mtime. */
static void json_weight_hash(FILE *f, const char *label, const char *path)
{
    char hex[65];
    fprintf(f, "    ");
    json_str(f, label);
    fprintf(f, ": {\"path\": ");
    json_str(f, path);
    if (path && reel_sha256_file(path, hex, NULL) == REEL_OK)
        fprintf(f, ", \"sha256\": \"%s\"}", hex);
    else
        fprintf(f, ", \"sha256\": null}");
}

static int write_manifest(const struct reel_spec *s, const struct reel_workdir *wd,
                          struct reel_err *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    const struct reel_model_config *m = &s->model_config;
    char *canon = reel_spec_canonical(s);
    fprintf(f, "{\n  \"reel_version\": \"%s\",\n  \"spec_file\": ", REEL_VERSION);
    json_str(f, s->path);
    fprintf(f, ",\n  \"spec\": ");
    json_str(f, canon ? canon : "");
    fprintf(f, ",\n  \"model\": {\"name\": ");
    json_str(f, m->name);
    fprintf(f, ", \"config\": ");
    json_str(f, m->path);
    char hex[65];
    if (reel_sha256_file(m->path, hex, NULL) == REEL_OK)
        fprintf(f, ", \"config_sha256\": \"%s\"", hex);
    fprintf(f, ", \"trained\": %s},\n  \"weights\": {\n", m->trained ? "true" : "false");
    json_weight_hash(f, "dit", m->dit.weights);
    fprintf(f, ",\n");
    json_weight_hash(f, "vae", m->vae.weights);
    fprintf(f, ",\n");
    json_weight_hash(f, "text_encoder", m->text_encoder.weights);
    if (m->audio.enabled) {
        fprintf(f, ",\n");
        json_weight_hash(f, "audio_vae", m->audio.vae.weights);
        fprintf(f, ",\n");
        json_weight_hash(f, "vocoder", m->audio.vocoder.weights);
    }
    fprintf(f, ",\n");
    json_weight_hash(f, "tokenizer", m->text_encoder.tokenizer);
    fprintf(f, "\n  },\n  \"seed\": %llu,\n  \"sampler\": {\"name\": \"%s\", \"steps\": %d, "
               "\"shift\": %.17g, \"guidance\": %.17g},\n",
            (unsigned long long)s->seed, reel_flow_solver_name(s->sampler.solver),
            s->sampler.steps, s->sampler.shift, s->sampler.guidance);
    fprintf(f, "  \"size\": [%d, %d], \"fps\": %.17g, \"frames\": %d,\n", s->width,
            s->height, s->fps, s->frames);
    if (m->dit.frame_cond) {
        fprintf(f, "  \"keyframes\": [");
        for (int i = 0; i < s->n_keyframes; i++) {
            fprintf(f, "%s\n    {\"frame\": %d, \"image\": ", i ? "," : "", s->keyframes[i].frame);
            json_str(f, s->keyframes[i].image);
            fprintf(f, ", \"sha256\": \"%s\"}", s->keyframes[i].sha256);
        }
        fprintf(f, "%s],\n", s->n_keyframes ? "\n  " : "");
    }
    fprintf(f, "  \"stages\": {");
    for (int i = 0, n = 0; i < N_STAGES; i++) {
        if (!stage_applies(&stages[i], s))
            continue;
        char *rec = reel_workdir_read_record(wd, stages[i].name);
        fprintf(f, "%s\n    \"%s\": %s", n++ ? "," : "", stages[i].name, rec ? rec : "null");
        free(rec);
    }
    fprintf(f, "\n  }\n}\n");
    fclose(f);
    free(canon);
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s.json", s->output.path);
    int rc = reel_write_file_atomic(path, text, len, err);
    free(text);
    return rc;
}

int reel_render_main(int argc, char **argv)
{
    const char *spec_path = NULL, *workdir = NULL;
    struct reel_spec_overrides ov = {0};
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int json = 0, threads = 0;
    if (!sets)
        return REEL_E_OTHER;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            render_usage(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            ov.output_path = argv[++i];
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[ov.n_sets++] = argv[++i];
        } else if (!strcmp(a, "--workdir") && i + 1 < argc) {
            workdir = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (a[0] == '-' || spec_path) {
            fprintf(stderr, "reel render: unexpected argument '%s' (see reel render --help)\n",
                    a);
            free(sets);
            return REEL_E_SPEC;
        } else {
            spec_path = a;
        }
    }
    if (!spec_path) {
        render_usage(stderr);
        free(sets);
        return REEL_E_SPEC;
    }
    ov.sets = sets;

    struct reel_spec spec = {0};
    struct reel_diag diag = {0};
    int rc = reel_spec_load(spec_path, &ov, &spec, &diag);
    reel_diag_print(&diag, spec_path);
    reel_diag_free(&diag);
    free(sets);
    if (rc) {
        reel_spec_free(&spec);
        return rc;
    }

    struct reel_err err = {0};
    struct reel_workdir *wd = NULL;
    struct reel_backend *be = NULL;
    struct reel_progress progress;
    reel_progress_init(&progress, stderr, json);
    char wdbuf[PATH_MAX];
    if (!workdir) {
        default_workdir(spec.output.path, wdbuf, sizeof wdbuf);
        workdir = wdbuf;
    }
    char *key = reel_spec_canonical(&spec);
    if (!key)
        rc = reel_errf(&err, REEL_E_OTHER, "out of memory");
    if (!rc)
        rc = reel_workdir_open(workdir, key, &wd, &err);
    free(key);
    if (!rc && !(be = reel_backend_cpu_create(threads)))
        rc = reel_errf(&err, REEL_E_OTHER, "cannot create the CPU backend");

    struct reel_job job = {.spec = &spec, .wd = wd, .be = be, .progress = &progress};
    for (int i = 0; !rc && i < N_STAGES; i++) {
        if (!stage_applies(&stages[i], &spec))
            continue;
        if (reel_workdir_stage_done(wd, stages[i].name)) {
            reel_progress_stage(&progress, stages[i].name, 0);
            reel_progress_done(&progress, 1);
            continue;
        }
        double t0 = reel_now();
        rc = stages[i].run(&job, &err);
        if (rc)
            break;
        reel_progress_done(&progress, 0);
        char rec[128];
        snprintf(rec, sizeof rec, "{\"wall_s\": %.3f}", reel_now() - t0);
        rc = reel_workdir_mark_done(wd, stages[i].name, rec, &err);
    }
    if (!rc)
        rc = write_manifest(&spec, wd, &err);
    if (rc)
        fprintf(stderr, "reel render: %s\n", err.msg);
    else
        fprintf(stderr, "wrote %s\n", spec.output.path);
    reel_backend_destroy(be);
    reel_workdir_close(wd);
    reel_spec_free(&spec);
    return rc;
}
