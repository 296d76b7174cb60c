/* Tests of the compute runtime's CPU side: dtype helpers and conversions,
 * the arena, the thread pool, and every op of the CPU backend against naive
 * double-precision loops written here, at odd sizes, with f32/bf16/f16
 * weights, on 1 and 3 threads (3 > cores on purpose: uneven splits). */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/tensor.h"
#include "kernels/threadpool.h"
#include "tests/test.h"

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_vec(int64_t n, float scale)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        v[i] = frand() * scale;
    return v;
}

/* max |got - ref| / max |ref|: the error relative to the output's scale. */
static double rel_err(const float *got, const double *ref, int64_t n)
{
    double emax = 0, rmax = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= emax)) /* also catches NaN */
            emax = isnan(e) ? INFINITY : e;
        if (fabs(ref[i]) > rmax)
            rmax = fabs(ref[i]);
    }
    return emax / (rmax > 1e-30 ? rmax : 1e-30);
}

/* A weight tensor in dtype dt holding vals (rounded to dt); vals are
 * overwritten with the rounded values so the reference sees what the kernel sees. */
struct wt {
    struct reel_tensor t;
    void *buf;
};

static void make_weight(struct wt *w, enum reel_dtype dt, float *vals, int ndim,
                        const int64_t *shape, const char *name)
{
    memset(w, 0, sizeof *w);
    w->t.dtype = dt;
    w->t.ndim = ndim;
    memcpy(w->t.shape, shape, (size_t)ndim * sizeof(int64_t));
    w->t.name = name;
    int64_t n = reel_tensor_numel(&w->t);
    w->buf = malloc((size_t)n * reel_dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        if (dt == REEL_F32) {
            ((float *)w->buf)[i] = vals[i];
        } else if (dt == REEL_BF16) {
            uint16_t h = reel_f32_to_bf16(vals[i]);
            ((uint16_t *)w->buf)[i] = h;
            vals[i] = reel_bf16_to_f32(h);
        } else {
            uint16_t h = reel_f32_to_f16(vals[i]);
            ((uint16_t *)w->buf)[i] = h;
            vals[i] = reel_f16_to_f32(h);
        }
    }
    w->t.data = w->buf;
}

static const enum reel_dtype float_dtypes[3] = {REEL_F32, REEL_BF16, REEL_F16};

#define TOL 1e-5

/* ------------------------------------------------------ tensor / dtypes */

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_dtypes(void)
{
    static const char *names[] = {"F32", "BF16", "F16",  "I64",     "F64",    "I32",
                                  "I16", "I8",   "U8",   "BOOL",    "F8_E4M3", "F8_E5M2"};
    static const size_t sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1, 1, 1};
    int ok = 1;
    for (int i = 0; i < REEL_DTYPE_COUNT; i++) {
        enum reel_dtype dt;
        ok &= strcmp(reel_dtype_name((enum reel_dtype)i), names[i]) == 0;
        ok &= reel_dtype_size((enum reel_dtype)i) == sizes[i];
        ok &= reel_dtype_from_name(names[i], strlen(names[i]), &dt) == 0 && dt == (enum reel_dtype)i;
    }
    CHECK(ok, "dtype names, sizes and parsing round-trip", "mismatch in the dtype table");
    enum reel_dtype dt;
    CHECK(reel_dtype_from_name("F3", 2, &dt) == -1 && reel_dtype_from_name("F32X", 4, &dt) == -1 &&
              reel_dtype_from_name("F32X", 3, &dt) == 0 && dt == REEL_F32,
          "dtype parsing uses the given length", "prefix/suffix handling wrong");

    struct reel_tensor t = {.dtype = REEL_F32, .ndim = 4, .shape = {16, 3, 8, 8}};
    char buf[64];
    CHECK(reel_tensor_numel(&t) == 3072, "numel", "got %lld", (long long)reel_tensor_numel(&t));
    reel_shape_str(buf, sizeof buf, t.ndim, t.shape);
    CHECK(strcmp(buf, "[16, 3, 8, 8]") == 0, "shape string", "got %s", buf);
    reel_shape_str(buf, sizeof buf, 0, t.shape);
    CHECK(strcmp(buf, "[]") == 0, "shape string of a scalar", "got %s", buf);
    reel_shape_str(buf, 6, t.ndim, t.shape);
    CHECK(strlen(buf) == 5, "shape string truncates safely", "got %s", buf);
}

static void test_bf16(void)
{
    struct {
        float in;
        uint16_t out;
    } cases[] = {
        {1.0f, 0x3f80},
        {-2.0f, 0xc000},
        {from_bits(0x3f808000), 0x3f80}, /* halfway, even below: stays */
        {from_bits(0x3f818000), 0x3f82}, /* halfway, odd below: up to even */
        {from_bits(0x3f808001), 0x3f81}, /* just above halfway: up */
        {from_bits(0x3f807fff), 0x3f80}, /* just below halfway: down */
        {3.14159265f, 0x4049},
        {INFINITY, 0x7f80},
        {-INFINITY, 0xff80},
        {-0.0f, 0x8000},
        {from_bits(0x7f7fffff), 0x7f80}, /* FLT_MAX rounds to inf, as torch */
        {from_bits(0x00000001), 0x0000}, /* smallest subnormal rounds to 0 */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = reel_f32_to_bf16(cases[i].in);
        if (h != cases[i].out) {
            ok = 0;
            printf("# bf16(%08x) = %04x, want %04x\n", bits(cases[i].in), h, cases[i].out);
        }
    }
    CHECK(ok, "f32 -> bf16 rounds to nearest even", "see # lines");
    uint16_t n1 = reel_f32_to_bf16(NAN), n2 = reel_f32_to_bf16(from_bits(0x7f800001));
    CHECK((n1 & 0x7f80) == 0x7f80 && (n1 & 0x7f) && (n2 & 0x7f80) == 0x7f80 && (n2 & 0x7f),
          "f32 -> bf16 keeps NaN a NaN", "got %04x %04x", n1, n2);
    CHECK(reel_bf16_to_f32(0x4049) == from_bits(0x40490000), "bf16 -> f32", "wrong");
}

static void test_f16(void)
{
    struct {
        float in;
        uint16_t out;
    } cases[] = {
        {1.0f, 0x3c00},          {-2.0f, 0xc000},           {65504.0f, 0x7bff},
        {65519.0f, 0x7bff},      {65520.0f, 0x7c00},        {1e6f, 0x7c00},
        {0x1p-24f, 0x0001},      {3 * 0x1p-25f, 0x0002},    {0x1p-25f, 0x0000},
        {0x1p-14f, 0x0400},      {0.1f, 0x2e66},            {1.0f + 0x1p-11f, 0x3c00},
        {1.0f + 3 * 0x1p-11f, 0x3c02}, {-0.0f, 0x8000},     {INFINITY, 0x7c00},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = reel_f32_to_f16(cases[i].in);
        if (h != cases[i].out) {
            ok = 0;
            printf("# f16(%g) = %04x, want %04x\n", (double)cases[i].in, h, cases[i].out);
        }
    }
    CHECK(ok, "f32 -> f16 rounds to nearest even, saturates to inf", "see # lines");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = reel_f16_to_f32((uint16_t)h);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            bad += !isnan(f) || !isnan(reel_f16_to_f32(reel_f32_to_f16(f)));
            continue;
        }
        bad += reel_f32_to_f16(f) != h;
    }
    CHECK(bad == 0, "every f16 value round-trips through f32", "%d mismatches", bad);
    CHECK(reel_f16_to_f32(0x0001) == 0x1p-24f && reel_f16_to_f32(0x7bff) == 65504.0f &&
              reel_f16_to_f32(0xfc00) == -INFINITY,
          "f16 -> f32 subnormal, max, -inf", "wrong");
}

static void test_tensor_to_f32(void)
{
    float vals[37];
    for (int i = 0; i < 37; i++)
        vals[i] = frand() * 10;
    int ok = 1;
    for (int d = 0; d < 3; d++) {
        struct wt w;
        int64_t shape[1] = {37};
        float v[37], out[37];
        memcpy(v, vals, sizeof v);
        make_weight(&w, float_dtypes[d], v, 1, shape, "w");
        reel_tensor_to_f32(&w.t, 3, 33, out);
        ok &= memcmp(out, v + 3, 33 * sizeof(float)) == 0;
        free(w.buf);
    }
    int32_t iv[4] = {-3, 0, 7, 100000};
    struct reel_tensor ti = {.dtype = REEL_I32, .ndim = 1, .shape = {4}, .data = iv};
    float out[4];
    reel_tensor_to_f32(&ti, 0, 4, out);
    ok &= out[0] == -3 && out[1] == 0 && out[2] == 7 && out[3] == 100000;
    uint8_t f8[2] = {0x38, 0xbc}; /* e4m3: 1.0, -1.5 */
    struct reel_tensor t8 = {.dtype = REEL_F8_E4M3, .ndim = 1, .shape = {2}, .data = f8};
    reel_tensor_to_f32(&t8, 0, 2, out);
    ok &= out[0] == 1.0f && out[1] == -1.5f;
    CHECK(ok, "tensor_to_f32 for f32/bf16/f16 (offset), i32, f8", "mismatch");
}

static void test_arena(void)
{
    struct reel_arena *a = reel_arena_create(1024);
    int ok = a != NULL;
    char *p1 = reel_arena_alloc(a, 10);
    float *p2 = reel_arena_f32(a, 3);
    ok &= p1 && p2 && ((uintptr_t)p1 % 64) == 0 && ((uintptr_t)p2 % 64) == 0 && (char *)p2 >= p1 + 10;
    size_t mark = reel_arena_mark(a);
    float *big = reel_arena_f32(a, 5000); /* larger than a block: chained */
    ok &= big && ((uintptr_t)big % 64) == 0;
    for (int i = 0; i < 5000; i++)
        big[i] = (float)i;
    char *small = reel_arena_alloc(a, 700);
    ok &= small != NULL;
    memset(small, 1, 700);
    size_t peak = reel_arena_peak(a);
    ok &= peak >= 20000 + 700;
    reel_arena_release(a, mark);
    ok &= reel_arena_mark(a) == mark;
    float *again = reel_arena_f32(a, 5000);
    ok &= again == big; /* the released block is reused */
    ok &= reel_arena_peak(a) == peak;
    reel_arena_release(a, 0);
    ok &= reel_arena_mark(a) == 0 && reel_arena_alloc(a, 10) == p1;
    /* many allocations, then release: positions stay consistent */
    size_t m2 = reel_arena_mark(a);
    for (int i = 0; i < 100; i++) {
        char *q = reel_arena_alloc(a, (size_t)(i * 37 + 1));
        ok &= q != NULL && ((uintptr_t)q % 64) == 0;
        if (q)
            memset(q, 0xab, (size_t)(i * 37 + 1));
    }
    reel_arena_release(a, m2);
    ok &= reel_arena_mark(a) == m2;
    reel_arena_destroy(a);
    CHECK(ok, "arena: 64-byte aligned, chained blocks, mark/release reuses, peak", "mismatch");
}

/* ------------------------------------------------------------- threadpool */

struct sum_ctx {
    const float *v;
    double partial[64];
    atomic_int calls;
    int bad_worker, nthreads;
    struct reel_pool *pool;
    atomic_int nested_sum;
};

static void sum_fn(void *vctx, int64_t b, int64_t e, int worker)
{
    struct sum_ctx *c = vctx;
    if (worker < 0 || worker >= c->nthreads)
        c->bad_worker = 1;
    double s = 0;
    for (int64_t i = b; i < e; i++)
        s += c->v[i];
    c->partial[worker] += s;
    atomic_fetch_add(&c->calls, 1);
}

static void nested_inner(void *vctx, int64_t b, int64_t e, int worker)
{
    (void)worker;
    struct sum_ctx *c = vctx;
    atomic_fetch_add(&c->nested_sum, (int)(e - b));
}

static void nested_outer(void *vctx, int64_t b, int64_t e, int worker)
{
    (void)worker;
    struct sum_ctx *c = vctx;
    for (int64_t i = b; i < e; i++)
        reel_pool_for(c->pool, 100, 1, nested_inner, c);
}

static void test_pool(void)
{
    const int64_t n = 1000000;
    float *v = malloc((size_t)n * sizeof(float));
    double ref = 0;
    for (int64_t i = 0; i < n; i++) {
        v[i] = (float)(i % 1000) * 0.5f;
        ref += v[i];
    }
    int threads[] = {1, 2};
    for (int t = 0; t < 2; t++) {
        struct reel_pool *p = reel_pool_create(threads[t]);
        struct sum_ctx c = {.v = v, .nthreads = reel_pool_threads(p), .pool = p};
        atomic_init(&c.calls, 0);
        atomic_init(&c.nested_sum, 0);
        reel_pool_for(p, n, 1000, sum_fn, &c);
        double s = 0;
        for (int i = 0; i < 64; i++)
            s += c.partial[i];
        char name[80];
        snprintf(name, sizeof name, "pool of %d: sum over 1e6 items", threads[t]);
        CHECK(p && reel_pool_threads(p) == threads[t] && s == ref && !c.bad_worker, name,
              "sum %.1f want %.1f, threads %d", s, ref, reel_pool_threads(p));
        /* repeated jobs, each smaller than a grain, and empty ones */
        for (int rep = 0; rep < 200; rep++)
            reel_pool_for(p, rep % 5 == 0 ? 0 : 3000, 64, sum_fn, &c);
        snprintf(name, sizeof name, "pool of %d: nested parallel-for runs inline", threads[t]);
        reel_pool_for(p, 10, 1, nested_outer, &c);
        CHECK(atomic_load(&c.nested_sum) == 1000, name, "got %d", atomic_load(&c.nested_sum));
        reel_pool_destroy(p);
    }
    free(v);
}

/* ------------------------------------------------------------------ sgemm */

static void ref_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, double beta, const float *c0,
                     int64_t ldc, double *out)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            out[i * n + j] = alpha * s + beta * c0[i * ldc + j];
        }
}

static void test_sgemm(struct reel_backend *be, const char *tag)
{
    int64_t sizes[2][3] = {{37, 19, 23}, {211, 150, 97}};
    for (int sz = 0; sz < 2; sz++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t m = sizes[sz][0], n = sizes[sz][1], k = sizes[sz][2];
                int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
                float *a = rand_vec((ta ? k : m) * lda, 1), *b = rand_vec((tb ? n : k) * ldb, 1);
                float *c = rand_vec(m * ldc, 1);
                double *ref = malloc((size_t)(m * n) * sizeof(double));
                ref_gemm(ta, tb, m, n, k, 0.7, a, lda, b, ldb, -0.3, c, ldc, ref);
                be->sgemm(be, ta, tb, m, n, k, 0.7f, a, lda, b, ldb, -0.3f, c, ldc);
                float *packed = malloc((size_t)(m * n) * sizeof(float));
                for (int64_t i = 0; i < m; i++)
                    memcpy(packed + i * n, c + i * ldc, (size_t)n * sizeof(float));
                double e = rel_err(packed, ref, m * n);
                char name[96];
                snprintf(name, sizeof name, "%s sgemm %lldx%lldx%lld ta=%d tb=%d", tag,
                         (long long)m, (long long)n, (long long)k, ta, tb);
                CHECK(e < TOL, name, "rel err %.3g", e);
                free(a), free(b), free(c), free(ref), free(packed);
            }
}

/* ----------------------------------------------------------------- linear */

static void test_linear(struct reel_backend *be, const char *tag)
{
    /* small (whole-weight path) and wide (row-block path, partial last block) */
    int64_t sizes[3][3] = {{37, 19, 23}, {45, 300, 70}, {1, 530, 33}};
    for (int sz = 0; sz < 3; sz++)
        for (int d = 0; d < 3; d++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                int64_t m = sizes[sz][0], n = sizes[sz][1], k = sizes[sz][2];
                float *x = rand_vec(m * k, 1), *wv = rand_vec(n * k, 1), *bias = rand_vec(n, 1);
                struct wt w;
                int64_t shape[5] = {n, k, 1, 1, 1}; /* a pointwise conv weight works too */
                make_weight(&w, float_dtypes[d], wv, sz == 1 ? 5 : 2, shape, "lin.weight");
                double *ref = malloc((size_t)(m * n) * sizeof(double));
                float *y = malloc((size_t)(m * n) * sizeof(float));
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < n; j++) {
                        double s = with_bias ? bias[j] : 0;
                        for (int64_t p = 0; p < k; p++)
                            s += (double)x[i * k + p] * wv[j * k + p];
                        ref[i * n + j] = s;
                    }
                struct reel_err err = {0};
                int rc = be->linear(be, y, x, m, k, &w.t, with_bias ? bias : NULL, &err);
                double e = rel_err(y, ref, m * n);
                char name[96];
                snprintf(name, sizeof name, "%s linear %s m=%lld n=%lld k=%lld%s", tag,
                         reel_dtype_name(float_dtypes[d]), (long long)m, (long long)n,
                         (long long)k, with_bias ? " +bias" : "");
                CHECK(rc == 0 && e < TOL, name, "rc %d rel err %.3g %s", rc, e, err.msg);
                free(x), free(wv), free(bias), free(w.buf), free(ref), free(y);
            }
    int8_t q[6] = {0};
    struct reel_tensor wi = {.dtype = REEL_I8, .ndim = 2, .shape = {2, 3}, .data = q,
                             .name = "blocks.0.ffn.0.weight"};
    float x[3] = {0}, y[2];
    struct reel_err err = {0};
    int rc = be->linear(be, y, x, 1, 3, &wi, NULL, &err);
    char name[96];
    snprintf(name, sizeof name, "%s linear rejects an I8 weight by name", tag);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "blocks.0.ffn.0.weight"), name, "rc %d msg %s", rc,
          err.msg);
}

/* ------------------------------------------------------------------ norms */

static void test_norms(struct reel_backend *be, const char *tag)
{
    char name[96];
    int64_t rows = 13, dim = 77;
    float *x = rand_vec(rows * dim, 2), *g = rand_vec(dim, 1), *b = rand_vec(dim, 1);
    for (int64_t i = 0; i < rows * dim; i++)
        x[i] += 0.5f; /* a non-zero mean */
    float *y = malloc((size_t)(rows * dim) * sizeof(float));
    double *ref = malloc((size_t)(rows * dim) * sizeof(double));
    for (int affine = 0; affine < 2; affine++) {
        for (int64_t r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int64_t i = 0; i < dim; i++)
                mean += x[r * dim + i];
            mean /= dim;
            for (int64_t i = 0; i < dim; i++)
                var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
            var /= dim;
            for (int64_t i = 0; i < dim; i++) {
                double t = (x[r * dim + i] - mean) / sqrt(var + 1e-6);
                ref[r * dim + i] = affine ? t * g[i] + b[i] : t;
            }
        }
        be->layernorm(be, y, x, rows, dim, affine ? g : NULL, affine ? b : NULL, 1e-6f);
        double e = rel_err(y, ref, rows * dim);
        snprintf(name, sizeof name, "%s layernorm%s", tag, affine ? " affine" : "");
        CHECK(e < TOL, name, "rel err %.3g", e);

        for (int64_t r = 0; r < rows; r++) {
            double ms = 0;
            for (int64_t i = 0; i < dim; i++)
                ms += (double)x[r * dim + i] * x[r * dim + i];
            ms /= dim;
            for (int64_t i = 0; i < dim; i++) {
                double t = x[r * dim + i] / sqrt(ms + 1e-5);
                ref[r * dim + i] = affine ? t * g[i] : t;
            }
        }
        be->rmsnorm(be, y, x, rows, dim, affine ? g : NULL, 1e-5f);
        e = rel_err(y, ref, rows * dim);
        snprintf(name, sizeof name, "%s rmsnorm%s", tag, affine ? " gamma" : "");
        CHECK(e < TOL, name, "rel err %.3g", e);
    }
    free(x), free(g), free(b), free(y), free(ref);

    /* channel-first: 7 channels x 300 positions (crosses a column block) */
    int64_t c = 7, s = 300;
    x = rand_vec(c * s, 3);
    for (int64_t j = 0; j < c; j++)
        x[j * s + 5] = 0; /* an all-zero column: the 1e-12 clamp */
    g = rand_vec(c, 1), b = rand_vec(c, 1);
    y = malloc((size_t)(c * s) * sizeof(float));
    ref = malloc((size_t)(c * s) * sizeof(double));
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        for (int64_t j = 0; j < s; j++) {
            double ss = 0;
            for (int64_t i = 0; i < c; i++)
                ss += (double)x[i * s + j] * x[i * s + j];
            double nrm = fmax(sqrt(ss), 1e-12);
            for (int64_t i = 0; i < c; i++)
                ref[i * s + j] = x[i * s + j] / nrm * sqrt((double)c) * g[i] + (with_bias ? b[i] : 0);
        }
        be->channel_rmsnorm(be, y, x, c, s, g, with_bias ? b : NULL);
        double e = rel_err(y, ref, c * s);
        snprintf(name, sizeof name, "%s channel_rmsnorm c=7 s=300%s", tag, with_bias ? " +bias" : "");
        CHECK(e < TOL, name, "rel err %.3g", e);
    }
    free(x), free(g), free(b), free(y), free(ref);
}

/* ------------------------------------------------------------ elementwise */

static void test_elementwise(struct reel_backend *be, const char *tag)
{
    char name[96];
    int64_t n = 100003;
    float *x = rand_vec(n, 12), *x2 = rand_vec(n, 3), *y = malloc((size_t)n * sizeof(float));
    x[0] = -100, x[1] = 100, x[2] = 0, x[3] = -30;
    double *ref = malloc((size_t)n * sizeof(double));

    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        ref[i] = 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    }
    be->gelu_tanh(be, y, x, n);
    double e = rel_err(y, ref, n);
    snprintf(name, sizeof name, "%s gelu_tanh", tag);
    CHECK(e < TOL, name, "rel err %.3g", e);
    /* per-element relative check away from zero */
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += fabs(ref[i]) > 1e-3 && fabs(y[i] - ref[i]) > 1e-5 * fabs(ref[i]);
    snprintf(name, sizeof name, "%s gelu_tanh elementwise relative", tag);
    CHECK(bad == 0, name, "%d elements off", bad);

    for (int64_t i = 0; i < n; i++)
        ref[i] = x[i] / (1 + exp(-(double)x[i]));
    be->silu(be, y, x, n);
    bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += fabs(y[i] - ref[i]) > 1e-6 * fabs(ref[i]) + 1e-30;
    snprintf(name, sizeof name, "%s silu elementwise relative 1e-6", tag);
    CHECK(bad == 0, name, "%d elements off", bad);

    for (int64_t i = 0; i < n; i++)
        ref[i] = (double)x[i] + x2[i];
    memcpy(y, x, (size_t)n * sizeof(float));
    be->add(be, y, y, x2, n); /* aliasing y = a */
    snprintf(name, sizeof name, "%s add (aliased)", tag);
    CHECK(rel_err(y, ref, n) < 1e-7, name, "wrong");
    for (int64_t i = 0; i < n; i++)
        ref[i] = (double)x[i] * x2[i];
    be->mul(be, y, x, x2, n);
    snprintf(name, sizeof name, "%s mul", tag);
    CHECK(rel_err(y, ref, n) < 1e-7, name, "wrong");
    for (int64_t i = 0; i < n; i++)
        ref[i] = 0.25 * x[i] - 1.5 * x2[i];
    be->axpby(be, y, 0.25f, x, -1.5f, x2, n);
    snprintf(name, sizeof name, "%s axpby", tag);
    CHECK(rel_err(y, ref, n) < 1e-6, name, "wrong");
    free(x), free(x2), free(y), free(ref);

    /* softmax over 37 columns, including large logits */
    int64_t rows = 11, cols = 37;
    x = rand_vec(rows * cols, 30);
    y = malloc((size_t)(rows * cols) * sizeof(float));
    ref = malloc((size_t)(rows * cols) * sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        double mx = -INFINITY, s = 0;
        for (int64_t j = 0; j < cols; j++)
            mx = fmax(mx, x[r * cols + j]);
        for (int64_t j = 0; j < cols; j++)
            s += exp(x[r * cols + j] - mx);
        for (int64_t j = 0; j < cols; j++)
            ref[r * cols + j] = exp(x[r * cols + j] - mx) / s;
    }
    be->softmax(be, y, x, rows, cols);
    bad = 0;
    for (int64_t i = 0; i < rows * cols; i++)
        bad += fabs(y[i] - ref[i]) > 1e-6 * ref[i] + 1e-12;
    snprintf(name, sizeof name, "%s softmax rows", tag);
    CHECK(bad == 0, name, "%d elements off", bad);
    free(x), free(y), free(ref);

    /* modulate / gated_add, broadcast and per-row */
    rows = 9, cols = 45;
    x = rand_vec(rows * cols, 1);
    float *sh = rand_vec(rows * cols, 1), *sc = rand_vec(rows * cols, 1);
    y = malloc((size_t)(rows * cols) * sizeof(float));
    ref = malloc((size_t)(rows * cols) * sizeof(double));
    for (int per_row = 0; per_row < 2; per_row++) {
        int64_t st = per_row ? cols : 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < cols; i++)
                ref[r * cols + i] =
                    x[r * cols + i] * (1.0 + sc[r * st + i]) + sh[r * st + i];
        memcpy(y, x, (size_t)(rows * cols) * sizeof(float));
        be->modulate(be, y, y, rows, cols, sh, sc, st);
        snprintf(name, sizeof name, "%s modulate stride %lld", tag, (long long)st);
        CHECK(rel_err(y, ref, rows * cols) < 1e-6, name, "wrong");
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < cols; i++)
                ref[r * cols + i] = x[r * cols + i] + (double)sh[r * cols + i] * sc[r * st + i];
        memcpy(y, x, (size_t)(rows * cols) * sizeof(float));
        be->gated_add(be, y, sh, rows, cols, sc, st);
        snprintf(name, sizeof name, "%s gated_add stride %lld", tag, (long long)st);
        CHECK(rel_err(y, ref, rows * cols) < 1e-6, name, "wrong");
    }
    free(x), free(sh), free(sc), free(y), free(ref);
}

/* -------------------------------------------------------------- attention */

static void test_attention_case(struct reel_backend *be, const char *tag, int64_t lq, int64_t lk,
                                int64_t k_len, int heads, int hd, int with_bias)
{
    int64_t dim = (int64_t)heads * hd;
    int64_t qs = dim + 3, kvs = dim + 5, os = dim + 1; /* padded row strides */
    float *q = rand_vec(lq * qs, 2), *k = rand_vec(lk * kvs, 2), *v = rand_vec(lk * kvs, 1);
    float *bias = with_bias ? rand_vec((int64_t)heads * lq * lk, 3) : NULL;
    float *out = malloc((size_t)(lq * os) * sizeof(float));
    for (int64_t i = 0; i < lq * os; i++)
        out[i] = 777; /* the padding must stay untouched */
    double *ref = malloc((size_t)(lq * dim) * sizeof(double));
    double *sc = malloc((size_t)lk * sizeof(double));
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < heads; h++)
        for (int64_t i = 0; i < lq; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < k_len; j++) {
                double s = 0;
                for (int d = 0; d < hd; d++)
                    s += (double)q[i * qs + h * hd + d] * k[j * kvs + h * hd + d];
                s *= scale;
                if (bias)
                    s += bias[((int64_t)h * lq + i) * lk + j];
                sc[j] = s;
                mx = fmax(mx, s);
            }
            for (int64_t j = 0; j < k_len; j++) {
                sc[j] = exp(sc[j] - mx);
                sum += sc[j];
            }
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int64_t j = 0; j < k_len; j++)
                    o += sc[j] * v[j * kvs + h * hd + d];
                ref[i * dim + h * hd + d] = o / sum;
            }
        }
    struct reel_err err = {0};
    int rc = be->attention(be, out, q, k, v, lq, lk, k_len, heads, hd, qs, kvs, os, scale, bias,
                           &err);
    float *packed = malloc((size_t)(lq * dim) * sizeof(float));
    int pad_ok = 1;
    for (int64_t i = 0; i < lq; i++) {
        memcpy(packed + i * dim, out + i * os, (size_t)dim * sizeof(float));
        pad_ok &= out[i * os + dim] == 777;
    }
    double e = rel_err(packed, ref, lq * dim);
    char name[128];
    snprintf(name, sizeof name, "%s attention lq=%lld lk=%lld k_len=%lld heads=%d hd=%d%s", tag,
             (long long)lq, (long long)lk, (long long)k_len, heads, hd, with_bias ? " +bias" : "");
    CHECK(rc == 0 && e < TOL && pad_ok, name, "rc %d rel err %.3g pad %d", rc, e, pad_ok);
    free(q), free(k), free(v), free(bias), free(out), free(ref), free(sc), free(packed);
}

static void test_attention(struct reel_backend *be, const char *tag)
{
    test_attention_case(be, tag, 37, 29, 29, 3, 16, 0);
    test_attention_case(be, tag, 37, 29, 23, 3, 16, 0);
    test_attention_case(be, tag, 37, 29, 23, 3, 16, 1);
    test_attention_case(be, tag, 300, 41, 40, 2, 8, 1); /* several query blocks */
    test_attention_case(be, tag, 5, 200, 131, 1, 24, 0);
}

/* ------------------------------------------------------------------- rope */

static void test_rope(struct reel_backend *be, const char *tag)
{
    int64_t l = 23;
    int heads = 3, hd = 10, half = 5;
    int64_t stride = heads * hd + 4;
    float *x = rand_vec(l * stride, 1), *cs = malloc((size_t)(l * half) * sizeof(float)),
          *sn = malloc((size_t)(l * half) * sizeof(float));
    for (int64_t i = 0; i < l * half; i++) {
        double ang = frand() * 10;
        cs[i] = (float)cos(ang);
        sn[i] = (float)sin(ang);
    }
    double *ref = malloc((size_t)(l * stride) * sizeof(double));
    for (int64_t i = 0; i < l * stride; i++)
        ref[i] = x[i];
    for (int64_t t = 0; t < l; t++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++) {
                double a = x[t * stride + h * hd + 2 * i], b = x[t * stride + h * hd + 2 * i + 1];
                double c = cs[t * half + i], s = sn[t * half + i];
                ref[t * stride + h * hd + 2 * i] = a * c - b * s;
                ref[t * stride + h * hd + 2 * i + 1] = a * s + b * c;
            }
    be->rope(be, x, l, heads, hd, stride, cs, sn);
    char name[64];
    snprintf(name, sizeof name, "%s rope adjacent pairs", tag);
    CHECK(rel_err(x, ref, l * stride) < 1e-7, name, "rel err %.3g", rel_err(x, ref, l * stride));
    free(x), free(cs), free(sn), free(ref);
}

/* ------------------------------------------------------------------- conv */

static void ref_conv3d(const struct reel_conv3d_geom *g, const float *x, const float *w,
                       const float *bias, double *y)
{
    int64_t to = (g->t + g->pt0 + g->pt1 - g->kt) / g->st + 1;
    int64_t ho = (g->h + g->ph0 + g->ph1 - g->kh) / g->sh + 1;
    int64_t wo = (g->w + g->pw0 + g->pw1 - g->kw) / g->sw + 1;
    for (int64_t co = 0; co < g->cout; co++)
        for (int64_t ot = 0; ot < to; ot++)
            for (int64_t oh = 0; oh < ho; oh++)
                for (int64_t ow = 0; ow < wo; ow++) {
                    double s = bias ? bias[co] : 0;
                    for (int64_t ci = 0; ci < g->cin; ci++)
                        for (int dt = 0; dt < g->kt; dt++)
                            for (int dh = 0; dh < g->kh; dh++)
                                for (int dw = 0; dw < g->kw; dw++) {
                                    int64_t it = ot * g->st - g->pt0 + dt;
                                    int64_t ih = oh * g->sh - g->ph0 + dh;
                                    int64_t iw = ow * g->sw - g->pw0 + dw;
                                    if (it < 0 || it >= g->t || ih < 0 || ih >= g->h || iw < 0 ||
                                        iw >= g->w)
                                        continue;
                                    double xv = x[((ci * g->t + it) * g->h + ih) * g->w + iw];
                                    double wv = w[(((co * g->cin + ci) * g->kt + dt) * g->kh + dh) *
                                                      g->kw + dw];
                                    s += xv * wv;
                                }
                    y[((co * to + ot) * ho + oh) * wo + ow] = s;
                }
}

static void test_conv_case(struct reel_backend *be, const char *tag, const char *what,
                           struct reel_conv3d_geom g, enum reel_dtype dt, int with_bias)
{
    int64_t to = (g.t + g.pt0 + g.pt1 - g.kt) / g.st + 1;
    int64_t ho = (g.h + g.ph0 + g.ph1 - g.kh) / g.sh + 1;
    int64_t wo = (g.w + g.pw0 + g.pw1 - g.kw) / g.sw + 1;
    int64_t ny = g.cout * to * ho * wo, K = g.cin * g.kt * g.kh * g.kw;
    float *x = rand_vec(g.cin * g.t * g.h * g.w, 1), *wv = rand_vec(g.cout * K, 1);
    float *bias = with_bias ? rand_vec(g.cout, 1) : NULL;
    struct wt w;
    int64_t shape[5] = {g.cout, g.cin, g.kt, g.kh, g.kw};
    make_weight(&w, dt, wv, 5, shape, "conv.weight");
    double *ref = malloc((size_t)ny * sizeof(double));
    float *y = malloc((size_t)ny * sizeof(float));
    ref_conv3d(&g, x, wv, bias, ref);
    struct reel_err err = {0};
    int rc = be->conv3d(be, y, x, &g, &w.t, bias, &err);
    double e = rel_err(y, ref, ny);
    char name[160];
    snprintf(name, sizeof name, "%s conv3d %s %s%s", tag, what, reel_dtype_name(dt),
             with_bias ? " +bias" : "");
    CHECK(rc == 0 && e < TOL, name, "rc %d rel err %.3g %s", rc, e, err.msg);
    free(x), free(wv), free(bias), free(w.buf), free(ref), free(y);
}

static void test_conv(struct reel_backend *be, const char *tag)
{
    /* cin t h w cout kt kh kw st sh sw pt0 pt1 ph0 ph1 pw0 pw1 */
    struct reel_conv3d_geom same = {5, 3, 9, 11, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    struct reel_conv3d_geom causal = {4, 4, 7, 6, 3, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 1, 1};
    struct reel_conv3d_geom down = {6, 2, 9, 10, 5, 1, 3, 3, 1, 2, 2, 0, 0, 0, 1, 0, 1};
    struct reel_conv3d_geom tdown = {3, 5, 4, 5, 4, 3, 1, 1, 2, 1, 1, 0, 0, 0, 0, 0, 0};
    struct reel_conv3d_geom point = {9, 3, 5, 7, 6, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    struct reel_conv3d_geom conv1d = {3, 1, 1, 50, 4, 1, 1, 7, 1, 1, 3, 0, 0, 0, 0, 3, 2};
    struct reel_conv3d_geom slices = {40, 3, 20, 26, 8, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int d = 0; d < 3; d++) {
        test_conv_case(be, tag, "3x3x3 pad 1", same, float_dtypes[d], d != 1);
        test_conv_case(be, tag, "causal (2,0) time pad", causal, float_dtypes[d], 1);
        test_conv_case(be, tag, "1x3x3 stride 2 pad (0,1,0,1)", down, float_dtypes[d], d == 0);
        test_conv_case(be, tag, "3x1x1 time stride 2", tdown, float_dtypes[d], 1);
        test_conv_case(be, tag, "1x1x1 pointwise", point, float_dtypes[d], 1);
    }
    test_conv_case(be, tag, "1d k=7 stride 3 pad (3,2)", conv1d, REEL_F32, 1);
    test_conv_case(be, tag, "cin 40 (several K slices)", slices, REEL_BF16, 1);

    struct reel_err err = {0};
    uint8_t q[4] = {0};
    struct reel_tensor wi = {.dtype = REEL_U8, .ndim = 5, .shape = {1, 1, 1, 2, 2}, .data = q,
                             .name = "decoder.head.2.weight"};
    struct reel_conv3d_geom g = {1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    float x[4] = {0}, y[1];
    int rc = be->conv3d(be, y, x, &g, &wi, NULL, &err);
    char name[96];
    snprintf(name, sizeof name, "%s conv3d rejects a U8 weight by name", tag);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "decoder.head.2.weight"), name, "rc %d %s", rc,
          err.msg);
    float wf[4] = {0};
    struct reel_tensor w3 = {.dtype = REEL_F32, .ndim = 5, .shape = {1, 1, 1, 1, 3}, .data = wf,
                             .name = "bad.weight"};
    memset(&err, 0, sizeof err);
    rc = be->conv3d(be, y, x, &g, &w3, NULL, &err);
    snprintf(name, sizeof name, "%s conv3d rejects a mis-sized weight", tag);
    CHECK(rc == REEL_E_MODEL, name, "rc %d", rc);
}

/* A bf16 weight too big to convert whole (> 8M floats): converted in blocks
 * of output channels. One output pixel keeps the reference cheap. */
static void test_conv_weight_blocks(struct reel_backend *be)
{
    struct reel_conv3d_geom g = {37449, 3, 3, 3, 9, 3, 3, 3, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    test_conv_case(be, "t2", "huge bf16 weight in channel blocks", g, REEL_BF16, 1);
}

/* ------------------------------------------------------------- upsampling */

static void test_upsample(struct reel_backend *be, const char *tag)
{
    int64_t planes = 3, h = 5, w = 7;
    float *x = rand_vec(planes * h * w, 1), *y = malloc((size_t)(planes * h * w * 4) * sizeof(float));
    be->upsample_nearest2x(be, y, x, planes, h, w);
    int ok = 1;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < 2 * h; i++)
            for (int64_t j = 0; j < 2 * w; j++)
                ok &= y[(p * 2 * h + i) * 2 * w + j] == x[(p * h + i / 2) * w + j / 2];
    char name[64];
    snprintf(name, sizeof name, "%s upsample_nearest2x", tag);
    CHECK(ok, name, "mismatch");
    free(y);
    y = malloc((size_t)(planes * h * w * 3) * sizeof(float));
    be->upsample_zero_insert(be, y, x, planes, h * w, 3);
    ok = 1;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < h * w * 3; i++)
            ok &= y[p * h * w * 3 + i] == (i % 3 ? 0.0f : x[p * h * w + i / 3]);
    snprintf(name, sizeof name, "%s upsample_zero_insert x3", tag);
    CHECK(ok, name, "mismatch");
    free(x), free(y);
}

int main(void)
{
    test_dtypes();
    test_bf16();
    test_f16();
    test_tensor_to_f32();
    test_arena();
    test_pool();
    int threads[2] = {1, 3};
    for (int t = 0; t < 2; t++) {
        struct reel_backend *be = reel_backend_cpu_create(threads[t]);
        char tag[16];
        snprintf(tag, sizeof tag, "t%d", threads[t]);
        CHECK(be != NULL, "cpu backend created", "NULL");
        if (!be)
            continue;
        test_sgemm(be, tag);
        test_linear(be, tag);
        test_norms(be, tag);
        test_elementwise(be, tag);
        test_attention(be, tag);
        test_rope(be, tag);
        test_conv(be, tag);
        test_upsample(be, tag);
        reel_backend_destroy(be);
    }
    struct reel_backend *be = reel_backend_cpu_create(2);
    if (be) {
        test_conv_weight_blocks(be);
        reel_backend_destroy(be);
    }
    TEST_EXIT();
}
