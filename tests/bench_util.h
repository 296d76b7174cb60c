/* Shared by the tests/bench_*.c programs: timing, seeded random numbers,
 * and generated weight/input files in build/bench/ that carry a format tag
 * and their config in the metadata, so a stale file is regenerated instead
 * of silently reused. Files are written one tensor at a time
 * (reel_st_write_stream): multi-GB weight files never sit in memory. */
#ifndef REEL_BENCH_UTIL_H
#define REEL_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/safetensors.h"

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

__attribute__((noreturn)) static inline void bench_die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static inline uint64_t bench_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float bench_urand(uint64_t *s)
{
    return (float)((double)(bench_splitmix(s) >> 40) * (2.0 / 16777216.0) - 1.0);
}

/* Standard normal (Box-Muller). */
static inline float bench_nrand(uint64_t *s)
{
    double u1 = ((double)(bench_splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(bench_splitmix(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* The options every bench takes: --dir DIR --threads N --runs N. Returns 1
 * (advancing *i past the value) when argv[*i] is one of them. */
struct bench_opts {
    const char *dir;
    int threads, runs;
};

static inline int bench_common_arg(int argc, char **argv, int *i, struct bench_opts *o)
{
    if (*i + 1 >= argc)
        return 0;
    if (!strcmp(argv[*i], "--dir"))
        o->dir = argv[++*i];
    else if (!strcmp(argv[*i], "--threads"))
        o->threads = atoi(argv[++*i]);
    else if (!strcmp(argv[*i], "--runs"))
        o->runs = atoi(argv[++*i]);
    else
        return 0;
    return 1;
}

/* Each tensor's stream depends only on its name, not on table order. */
static inline uint64_t bench_name_seed(const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return h;
}

/* A file to generate: tensor descriptors (names owned here). */
struct bench_entry {
    char name[160];
    enum reel_dtype dtype; /* F32, BF16 or I64 */
    int ndim;
    int64_t shape[REEL_MAX_DIMS];
    int64_t numel;
};

struct bench_list {
    struct bench_entry *e;
    int n, cap;
};

static inline void bench_list_add(struct bench_list *l, const char *name, enum reel_dtype dtype,
                                  int ndim, const int64_t *shape)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->e = realloc(l->e, sizeof *l->e * (size_t)l->cap);
        if (!l->e)
            bench_die("%s", "out of memory");
    }
    struct bench_entry *e = &l->e[l->n++];
    if (strlen(name) >= sizeof e->name)
        bench_die("tensor name too long: %s", name);
    strcpy(e->name, name);
    e->dtype = dtype;
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        e->numel *= shape[i];
    }
}

/* A reel_tensor_emit_fn adding BF16 entries (weights as the real files store them). */
static inline void bench_emit_bf16(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    bench_list_add(ctx, name, REEL_BF16, ndim, shape);
}

/* Fills one tensor's values as floats; the writer stores them in its dtype. */
typedef void (*bench_fill_fn)(void *ctx, const struct bench_entry *e, float *v);

struct bench_write_ctx {
    const struct bench_list *l;
    bench_fill_fn fill;
    void *ctx;
    float *vals;
};

static inline int bench_fill_raw(void *vctx, int index, const struct reel_tensor *t, void *buf,
                                 struct reel_err *err)
{
    (void)t;
    (void)err;
    struct bench_write_ctx *w = vctx;
    const struct bench_entry *e = &w->l->e[index];
    w->fill(w->ctx, e, w->vals);
    for (int64_t i = 0; i < e->numel; i++) {
        if (e->dtype == REEL_BF16) {
            uint16_t h = reel_f32_to_bf16(w->vals[i]);
            memcpy((char *)buf + 2 * i, &h, 2);
        } else if (e->dtype == REEL_I64) {
            int64_t v = (int64_t)w->vals[i];
            memcpy((char *)buf + 8 * i, &v, 8);
        } else {
            memcpy((char *)buf + 4 * i, &w->vals[i], 4);
        }
    }
    return REEL_OK;
}

/* Writes the list as path with metadata {format, config}; exits on error. */
static inline void bench_write(const char *path, const struct bench_list *l, const char *format,
                               const char *config, bench_fill_fn fill, void *ctx)
{
    struct reel_tensor *t = calloc((size_t)l->n + 1, sizeof *t);
    int64_t maxn = 1;
    for (int i = 0; t && i < l->n; i++) {
        t[i].name = l->e[i].name;
        t[i].dtype = l->e[i].dtype;
        t[i].ndim = l->e[i].ndim;
        memcpy(t[i].shape, l->e[i].shape, sizeof t[i].shape);
        if (l->e[i].numel > maxn)
            maxn = l->e[i].numel;
    }
    struct bench_write_ctx w = {l, fill, ctx, malloc(sizeof(float) * (size_t)maxn)};
    if (!t || !w.vals)
        bench_die("%s", "out of memory");
    const char *meta[] = {"format", format, "config", config};
    struct reel_err err = {0};
    if (reel_st_write_stream(path, t, l->n, meta, 2, bench_fill_raw, &w, &err))
        bench_die("%s", err.msg);
    free(w.vals);
    free(t);
}

/* A generated file is reused only if it opens and carries this format tag and config. */
static inline int bench_file_is_current(const char *path, const char *format, const char *config)
{
    struct reel_st_file *f = NULL;
    struct reel_err err = {0};
    if (reel_st_open(path, &f, &err) != REEL_OK)
        return 0;
    const char *fmt = reel_st_meta(f, "format"), *cfg = reel_st_meta(f, "config");
    int ok = fmt && cfg && !strcmp(fmt, format) && !strcmp(cfg, config);
    reel_st_close(f);
    return ok;
}

#endif
