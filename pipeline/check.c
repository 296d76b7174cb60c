/* `reel check`: golden-file parity. Opens each file, picks the computation
 * from its `reference` metadata, hands it to the matching runner, and makes
 * sure every out.* tensor in the file was compared within tolerance. */
#include "pipeline/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int tensor_index(const struct reel_st_file *f, const struct reel_tensor *t)
{
    return (int)(t - f->tensors);
}

const struct reel_tensor *reel_check_tensor(struct reel_check *c, const char *name)
{
    return reel_st_find(c->file, name);
}

static int is_mid(const char *name)
{
    return strncmp(name, "mid.", 4) == 0;
}

/* Remembers which file tensors a runner compared, so an out.* tensor that
 * no runner looked at fails the file instead of passing silently. */
static void mark_compared(struct reel_check *c, const struct reel_tensor *t)
{
    if (c->seen)
        c->seen[tensor_index(c->file, t)] = 1;
}

/* Prints the result line and counts it. */
static void report(struct reel_check *c, const char *name, int ok, double max_abs, double tol,
                   const char *why)
{
    c->compared++;
    if (!ok)
        c->failed++;
    if (why)
        fprintf(c->out, "  %-40s %s  FAIL\n", name, why);
    else
        fprintf(c->out, "  %-40s max_abs=%.3g  tol=%.1g  %s\n", name, max_abs, tol,
                ok ? "ok" : "FAIL");
}

void reel_check_compare(struct reel_check *c, const char *name, const float *got, int64_t n,
                        double tol)
{
    if (is_mid(name) && !c->verbose)
        return;
    const struct reel_tensor *t = reel_st_find(c->file, name);
    if (!t) {
        if (is_mid(name))
            return; /* intermediates are optional in a file */
        report(c, name, 0, 0, tol, "missing from the file");
        return;
    }
    mark_compared(c, t);
    int64_t tn = reel_tensor_numel(t);
    if (tn != n) {
        char why[128];
        snprintf(why, sizeof why, "size %lld, computed %lld", (long long)tn, (long long)n);
        report(c, name, 0, 0, tol, why);
        return;
    }
    double max_abs = 0;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        double ref;
        if (t->dtype == REEL_I64) {
            int64_t v;
            memcpy(&v, (const char *)t->data + 8 * i, 8);
            ref = (double)v;
        } else {
            float v;
            reel_tensor_to_f32(t, i, 1, &v);
            ref = v;
        }
        double d = fabs((double)got[i] - ref);
        if (!isfinite(got[i]) || isnan(d))
            finite = 0;
        else if (d > max_abs)
            max_abs = d;
    }
    if (!finite)
        report(c, name, 0, max_abs, tol, "non-finite value computed");
    else
        report(c, name, max_abs <= tol, max_abs, tol, NULL);
}

void reel_check_compare_i64(struct reel_check *c, const char *name, const int64_t *got,
                            int64_t n)
{
    if (is_mid(name) && !c->verbose)
        return;
    const struct reel_tensor *t = reel_st_find(c->file, name);
    if (!t) {
        if (!is_mid(name))
            report(c, name, 0, 0, 0, "missing from the file");
        return;
    }
    mark_compared(c, t);
    if (t->dtype != REEL_I64 || reel_tensor_numel(t) != n) {
        report(c, name, 0, 0, 0, "not an I64 tensor of the computed size");
        return;
    }
    int64_t mismatches = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + 8 * i, 8);
        if (v != got[i]) {
            if (first < 0)
                first = i;
            mismatches++;
        }
    }
    if (mismatches) {
        char why[160];
        int64_t v;
        memcpy(&v, (const char *)t->data + 8 * first, 8);
        snprintf(why, sizeof why, "%lld of %lld differ (first at %lld: got %lld, want %lld)",
                 (long long)mismatches, (long long)n, (long long)first,
                 (long long)got[first], (long long)v);
        report(c, name, 0, 0, 0, why);
    } else {
        c->compared++;
        fprintf(c->out, "  %-40s exact  ok\n", name);
    }
}

int reel_check_input_f32(struct reel_check *c, const char *name, float **out, int64_t *n,
                         struct reel_err *err)
{
    const struct reel_tensor *t = reel_st_find(c->file, name);
    if (!t)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' is missing", c->file->path, name);
    int64_t cnt = reel_tensor_numel(t);
    float *buf = malloc(sizeof(float) * (size_t)(cnt > 0 ? cnt : 1));
    if (!buf)
        return reel_errf(err, REEL_E_OTHER, "out of memory reading '%s'", name);
    if (t->dtype == REEL_I64) {
        for (int64_t i = 0; i < cnt; i++) {
            int64_t v;
            memcpy(&v, (const char *)t->data + 8 * i, 8);
            buf[i] = (float)v;
        }
    } else if (t->dtype == REEL_F32 || t->dtype == REEL_BF16 || t->dtype == REEL_F16) {
        reel_tensor_to_f32(t, 0, cnt, buf);
    } else {
        free(buf);
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' has dtype %s, expected F32 or I64",
                         c->file->path, name, reel_dtype_name(t->dtype));
    }
    *out = buf;
    if (n)
        *n = cnt;
    return REEL_OK;
}

typedef int (*check_runner)(struct reel_check *c, struct reel_err *err);

/* Chooses the runner from the `reference` metadata ("owner/repo@commit path Class.method"). */
static check_runner pick_runner(const char *ref)
{
    if (strstr(ref, "fm_solvers"))
        return reel_check_flow_sampler;
    if (strstr(ref, "mmaudio/ext/mel_converter.py"))
        return reel_check_mel;
    if (strstr(ref, "mmaudio/ext/autoencoder"))
        return reel_check_mmaudio_vae;
    if (strstr(ref, "mmaudio/ext/bigvgan"))
        return reel_check_bigvgan;
    if (strstr(ref, "Wan-Video/") && strstr(ref, "WanVAE_"))
        return reel_check_wan_vae;
    if (strstr(ref, "Wan-Video/") && strstr(ref, "wan/modules/model.py WanModel"))
        return reel_check_wan_dit;
    if (strstr(ref, "wan/modules/t5.py T5Encoder"))
        return reel_check_umt5;
    if (strstr(ref, "character-ai/Ovi"))
        return reel_check_ovi_fusion;
    return NULL;
}

/* Checks one file; returns 1 if it passes. */
static int check_file(const char *path, struct reel_backend *be, int verbose, FILE *out)
{
    struct reel_err err = {0};
    struct reel_st_file *f = NULL;
    struct reel_json *config = NULL;
    struct reel_weights *w = NULL;
    struct reel_check c = {0};
    int pass = 0;

    fprintf(out, "%s\n", path);
    if (reel_st_open(path, &f, &err))
        goto done;
    const char *ref = reel_st_meta(f, "reference");
    if (!ref) {
        reel_errf(&err, REEL_E_MODEL, "%s: no 'reference' in __metadata__", path);
        goto done;
    }
    check_runner run = pick_runner(ref);
    if (!run) {
        reel_errf(&err, REEL_E_MODEL, "%s: no computation of reel matches reference '%s'", path,
                  ref);
        goto done;
    }
    const char *cfg_text = reel_st_meta(f, "config");
    if (cfg_text) {
        char msg[256];
        config = reel_json_parse(cfg_text, strlen(cfg_text), msg, sizeof msg);
        if (!config) {
            reel_errf(&err, REEL_E_MODEL, "%s: metadata 'config' is not valid JSON: %s", path,
                      msg);
            goto done;
        }
    }
    if (reel_weights_from_file(f, "weights.", &w, &err))
        goto done;

    c.seen = calloc((size_t)f->count + 1, 1);
    if (!c.seen) {
        reel_errf(&err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    c.file = f;
    c.weights = w;
    c.config = config;
    c.be = be;
    c.verbose = verbose;
    c.out = out;
    if (run(&c, &err))
        goto done;
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, "out.", 4) == 0 && !c.seen[i]) {
            fprintf(out, "  %-40s not computed by reel  FAIL\n", name);
            c.failed++;
        }
    }
    pass = c.failed == 0 && c.compared > 0;

done:
    if (err.code)
        fprintf(out, "  error: %s\n", err.msg);
    fprintf(out, "%s %s\n", pass ? "PASS" : "FAIL", path);
    free(c.seen);
    reel_weights_close(w);
    reel_json_free(config);
    reel_st_close(f);
    return pass;
}

static void check_usage(FILE *out)
{
    fprintf(out,
            "usage: reel check [--verbose] [--threads N] FILE.safetensors...\n"
            "\n"
            "Runs the computation each golden file records (chosen by its 'reference'\n"
            "metadata) with the file's weights and inputs, and compares every out.*\n"
            "tensor: one line per tensor with the max abs error and the tolerance, then\n"
            "PASS or FAIL per file. Exit status 0 only if every file passes.\n"
            "\n"
            "  --verbose     compare the mid.* intermediates too (to locate an error)\n"
            "  --threads N   CPU threads (default: all)\n");
}

int reel_check_main(int argc, char **argv)
{
    int verbose = 0, threads = 0, nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            check_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
            verbose = 1;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "reel check: unknown option '%s'\n", argv[i]);
            check_usage(stderr);
            return REEL_E_SPEC;
        } else {
            nfiles++;
        }
    }
    if (nfiles == 0) {
        fprintf(stderr, "reel check: no files given\n");
        check_usage(stderr);
        return REEL_E_SPEC;
    }
    struct reel_backend *be = reel_backend_cpu_create(threads);
    if (!be) {
        fprintf(stderr, "reel check: cannot create the CPU backend\n");
        return REEL_E_OTHER;
    }
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads")) {
            i++;
            continue;
        }
        if (argv[i][0] == '-')
            continue;
        if (!check_file(argv[i], be, verbose, stdout))
            failed++;
    }
    reel_backend_destroy(be);
    printf("%d of %d files passed\n", nfiles - failed, nfiles);
    return failed ? 1 : 0;
}
