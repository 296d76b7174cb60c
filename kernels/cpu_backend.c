/* The CPU backend: creation of the op table, scratch management, sgemm and
 * linear (weights converted a block of rows at a time), the norms, the
 * activations, the elementwise ops, rope and the upsamplers. Attention and
 * conv3d live in cpu_attention.c and cpu_conv.c. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu_internal.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

/* Below this many elements an op runs on the calling thread: waking the
 * pool costs more than the work. */
#define EW_GRAIN 16384

/* Largest converted weight block per worker in linear: 16 MB. */
#define LINEAR_BLOCK_FLOATS (4 * 1024 * 1024)

/* ---------------------------------------------------------------- scratch */

float *cpu_scratch(struct reel_backend *be, int worker, size_t n)
{
    struct cpu_impl *im = be->impl;
    struct cpu_buf *b = worker < 0 ? &im->shared : &im->work[worker];
    if (b->cap >= n && b->p)
        return b->p;
    free(b->p);
    size_t bytes = (n ? n : 1) * sizeof(float);
    b->p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    b->cap = b->p ? n : 0;
    return b->p;
}

int cpu_reserve_scratch(struct reel_backend *be, size_t n)
{
    struct cpu_impl *im = be->impl;
    for (int i = 0; i < im->threads; i++)
        if (!cpu_scratch(be, i, n))
            return -1;
    return 0;
}

int cpu_is_float_dtype(enum reel_dtype dt)
{
    return dt == REEL_F32 || dt == REEL_BF16 || dt == REEL_F16;
}

static void bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n)
{
    typedef uint16_t v16u16 __attribute__((vector_size(32)));
    typedef uint32_t v16u32 __attribute__((vector_size(64)));
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16u16 h;
        memcpy(&h, src + i, sizeof h);
        v16u32 wide = __builtin_convertvector(h, v16u32) << 16;
        memcpy(dst + i, &wide, sizeof wide);
    }
    for (; i < n; i++)
        dst[i] = reel_bf16_to_f32(src[i]);
}

static void f16_to_f32_row(const uint16_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < n; i++)
        dst[i] = reel_f16_to_f32(src[i]);
}

const float *cpu_weight_rows(const struct reel_tensor *w, int64_t k, int64_t row0, int64_t rows,
                             float *buf)
{
    int64_t first = row0 * k, n = rows * k;
    switch (w->dtype) {
    case REEL_F32:
        return (const float *)w->data + first;
    case REEL_BF16:
        bf16_to_f32_row((const uint16_t *)w->data + first, buf, n);
        return buf;
    case REEL_F16:
        f16_to_f32_row((const uint16_t *)w->data + first, buf, n);
        return buf;
    default:
        reel_tensor_to_f32(w, first, n, buf);
        return buf;
    }
}

/* ------------------------------------------------------------------ sgemm */

void cpu_sgemm_serial(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) { /* BLAS would do this too, but some builds skip beta on k == 0 */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

struct sgemm_ctx {
    int trans_a, trans_b, by_rows;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
};

static void sgemm_piece(void *vctx, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const struct sgemm_ctx *s = vctx;
    if (s->by_rows) {
        const float *a = s->trans_a ? s->a + begin : s->a + begin * s->lda;
        cpu_sgemm_serial(s->trans_a, s->trans_b, end - begin, s->n, s->k, s->alpha, a, s->lda,
                         s->b, s->ldb, s->beta, s->c + begin * s->ldc, s->ldc);
    } else {
        const float *b = s->trans_b ? s->b + begin * s->ldb : s->b + begin;
        cpu_sgemm_serial(s->trans_a, s->trans_b, s->m, end - begin, s->k, s->alpha, s->a,
                         s->lda, b, s->ldb, s->beta, s->c + begin, s->ldc);
    }
}

void cpu_sgemm_parallel(struct reel_backend *be, int trans_a, int trans_b, int64_t m, int64_t n,
                        int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float beta, float *c, int64_t ldc)
{
    int threads = reel_pool_threads(be->pool);
    struct sgemm_ctx s = {trans_a, trans_b, m >= n, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c};
    int64_t dim = s.by_rows ? m : n;
    /* Below ~4 MFLOP a split does not pay for the wake-up. */
    if (threads == 1 || (double)m * n * k < 2e6 || dim < 32) {
        cpu_sgemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* One contiguous piece per thread, a multiple of 16 so the BLAS
     * micro-kernels see whole panels. */
    int64_t piece = (dim + threads - 1) / threads;
    piece = (piece + 15) / 16 * 16;
    reel_pool_for(be->pool, dim, piece, sgemm_piece, &s);
}

static void op_sgemm(struct reel_backend *be, int trans_a, int trans_b, int64_t m, int64_t n,
                     int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                     int64_t ldb, float beta, float *c, int64_t ldc)
{
    cpu_sgemm_parallel(be, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ----------------------------------------------------------------- linear */

/* The bias is written into y first and the GEMM accumulates onto it
 * (beta = 1): OpenBLAS would otherwise spend a pass zeroing y for beta = 0
 * and we another one adding the bias. */
static void fill_bias_cols(float *y, int64_t m, int64_t ldy, const float *bias, int64_t cols)
{
    for (int64_t i = 0; i < m; i++)
        memcpy(y + i * ldy, bias, (size_t)cols * sizeof(float));
}

struct linear_ctx {
    struct reel_backend *be;
    float *y;
    const float *x, *bias;
    int64_t m, k, n, rows_per_block;
    const struct reel_tensor *w;
};

/* One block of output columns = one block of weight rows: convert it into
 * the worker's scratch (cache-warm for the GEMM that follows) and multiply. */
static void linear_blocks(void *vctx, int64_t b0, int64_t b1, int worker)
{
    const struct linear_ctx *l = vctx;
    struct cpu_impl *im = l->be->impl;
    for (int64_t blk = b0; blk < b1; blk++) {
        int64_t n0 = blk * l->rows_per_block;
        int64_t rows = l->n - n0 < l->rows_per_block ? l->n - n0 : l->rows_per_block;
        const float *wr = cpu_weight_rows(l->w, l->k, n0, rows, im->work[worker].p);
        if (l->bias)
            fill_bias_cols(l->y + n0, l->m, l->n, l->bias + n0, rows);
        cpu_sgemm_serial(0, 1, l->m, rows, l->k, 1.0f, l->x, l->k, wr, l->k,
                         l->bias ? 1.0f : 0.0f, l->y + n0, l->n);
    }
}

struct bias_ctx {
    float *y;
    const float *bias;
    int64_t n;
};

static void bias_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct bias_ctx *b = vctx;
    fill_bias_cols(b->y + r0 * b->n, r1 - r0, b->n, b->bias, b->n);
}

static int op_linear(struct reel_backend *be, float *y, const float *x, int64_t m, int64_t k,
                     const struct reel_tensor *w, const float *bias, struct reel_err *err)
{
    const char *wname = w->name ? w->name : "(weight)";
    if (!cpu_is_float_dtype(w->dtype))
        return reel_errf(err, REEL_E_MODEL, "%s: linear weight has dtype %s, expected F32/BF16/F16",
                         wname, reel_dtype_name(w->dtype));
    if (w->ndim < 1 || w->shape[0] <= 0)
        return reel_errf(err, REEL_E_MODEL, "%s: linear weight has no rows", wname);
    int64_t n = w->shape[0];
    if (reel_tensor_numel(w) != n * k)
        return reel_errf(err, REEL_E_MODEL, "%s: linear weight has %lld elements, expected %lld x %lld",
                         wname, (long long)reel_tensor_numel(w), (long long)n, (long long)k);
    if (m <= 0)
        return REEL_OK;
    int threads = reel_pool_threads(be->pool);

    /* f32 weights need no conversion: one GEMM split over the pool. A weight
     * narrower than a few blocks per thread (an output head, a patch
     * embedding) is small: convert it whole and do the same. */
    if (w->dtype == REEL_F32 || n < 64 * (int64_t)threads || (double)m * n * k < 2e6) {
        const float *wf = w->data;
        if (w->dtype != REEL_F32) {
            float *buf = cpu_scratch(be, -1, (size_t)(n * k));
            if (!buf)
                return reel_errf(err, REEL_E_OTHER, "%s: out of memory converting weight", wname);
            wf = cpu_weight_rows(w, k, 0, n, buf);
        }
        if (bias) {
            struct bias_ctx b = {y, bias, n};
            reel_pool_for(be->pool, m, EW_GRAIN / n + 1, bias_rows, &b);
        }
        cpu_sgemm_parallel(be, 0, 1, m, n, k, 1.0f, x, k, wf, k, bias ? 1.0f : 0.0f, y, n);
        return REEL_OK;
    }

    /* Wide blocks: every GEMM call repacks all of x, so at m ~ 3500 a call
     * with 256 columns runs ~7% slower than one with 768. A converted block
     * is capped at LINEAR_BLOCK_FLOATS per worker, and the blocks are made
     * equal and a multiple of the thread count so no worker idles at the end. */
    int64_t max_rows = LINEAR_BLOCK_FLOATS / k;
    if (max_rows < 64)
        max_rows = 64;
    int64_t per_thread = (n + threads - 1) / threads;
    int64_t blocks = threads * ((per_thread + max_rows - 1) / max_rows);
    int64_t rows = (n + blocks - 1) / blocks;
    rows = (rows + 15) / 16 * 16;
    if (cpu_reserve_scratch(be, (size_t)(rows * k)) != 0)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory converting weight", wname);
    struct linear_ctx l = {be, y, x, bias, m, k, n, rows, w};
    reel_pool_for(be->pool, (n + rows - 1) / rows, 1, linear_blocks, &l);
    return REEL_OK;
}

/* ------------------------------------------------------------------ norms */

struct norm_ctx {
    float *y;
    const float *x, *gamma, *beta, *bias;
    int64_t dim; /* layernorm / rmsnorm: row length; channel norm: channels */
    int64_t s;   /* channel norm: positions */
    float eps;
};

/* Row reductions in double, CPU_VL independent lanes at a time (a plain
 * double loop is one long dependency chain: ~4x slower). */
typedef double cpu_vd __attribute__((vector_size(CPU_VL * 8)));

static double row_sum(const float *x, int64_t n)
{
    cpu_vd acc = {0};
    int64_t i = 0;
    for (; i + CPU_VL <= n; i += CPU_VL)
        acc += __builtin_convertvector(cpu_vload(x + i), cpu_vd);
    double s = 0;
    for (int l = 0; l < CPU_VL; l++)
        s += acc[l];
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* sum of (x - shift)^2 */
static double row_sumsq(const float *x, int64_t n, double shift)
{
    cpu_vd acc = {0};
    int64_t i = 0;
    for (; i + CPU_VL <= n; i += CPU_VL) {
        cpu_vd t = __builtin_convertvector(cpu_vload(x + i), cpu_vd) - shift;
        acc += t * t;
    }
    double s = 0;
    for (int l = 0; l < CPU_VL; l++)
        s += acc[l];
    for (; i < n; i++)
        s += (x[i] - shift) * (x[i] - shift);
    return s;
}

static void layernorm_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct norm_ctx *c = vctx;
    int64_t d = c->dim;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * d;
        float *y = c->y + r * d;
        /* two passes in double: as accurate as torch's Welford, and stable */
        double mean = row_sum(x, d) / (double)d;
        double var = row_sumsq(x, d, mean) / (double)d;
        float rstd = (float)(1.0 / sqrt(var + (double)c->eps));
        float meanf = (float)mean;
        for (int64_t i = 0; i < d; i++) {
            float t = (x[i] - meanf) * rstd;
            if (c->gamma)
                t *= c->gamma[i];
            if (c->beta)
                t += c->beta[i];
            y[i] = t;
        }
    }
}

static void rmsnorm_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct norm_ctx *c = vctx;
    int64_t d = c->dim;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * d;
        float *y = c->y + r * d;
        double ss = row_sumsq(x, d, 0.0);
        /* torch: mean in f32, + eps in f32, rsqrt in f32 */
        float ms = (float)(ss / (double)d);
        float inv = (float)(1.0 / sqrt((double)(ms + c->eps)));
        for (int64_t i = 0; i < d; i++) {
            float t = x[i] * inv;
            y[i] = c->gamma ? t * c->gamma[i] : t;
        }
    }
}

static void op_layernorm(struct reel_backend *be, float *y, const float *x, int64_t rows,
                         int64_t dim, const float *gamma, const float *beta, float eps)
{
    if (dim <= 0)
        return;
    struct norm_ctx c = {y, x, gamma, beta, NULL, dim, 0, eps};
    reel_pool_for(be->pool, rows, EW_GRAIN / dim + 1, layernorm_rows, &c);
}

static void op_rmsnorm(struct reel_backend *be, float *y, const float *x, int64_t rows,
                       int64_t dim, const float *gamma, float eps)
{
    if (dim <= 0)
        return;
    struct norm_ctx c = {y, x, gamma, NULL, NULL, dim, 0, eps};
    reel_pool_for(be->pool, rows, EW_GRAIN / dim + 1, rmsnorm_rows, &c);
}

/* Channel-first data: the reduction runs down a column of x[c, s], so each
 * job takes a block of COLS columns and sweeps the channels row by row,
 * reading contiguous runs instead of striding through memory. */
#define CHNORM_COLS 256

static void channel_rmsnorm_cols(void *vctx, int64_t b0, int64_t b1, int worker)
{
    (void)worker;
    const struct norm_ctx *c = vctx;
    int64_t ch = c->dim, s = c->s;
    float scale = (float)sqrt((double)ch);
    for (int64_t blk = b0; blk < b1; blk++) {
        int64_t j0 = blk * CHNORM_COLS;
        int64_t nj = s - j0 < CHNORM_COLS ? s - j0 : CHNORM_COLS;
        double ss[CHNORM_COLS] = {0};
        float denom[CHNORM_COLS];
        int64_t nv = nj / CPU_VL * CPU_VL; /* vector part of the block */
        for (int64_t i = 0; i < ch; i++) {
            const float *x = c->x + i * s + j0;
            for (int64_t j = 0; j < nv; j += CPU_VL) {
                cpu_vd acc, t = __builtin_convertvector(cpu_vload(x + j), cpu_vd);
                memcpy(&acc, ss + j, sizeof acc);
                acc += t * t;
                memcpy(ss + j, &acc, sizeof acc);
            }
            for (int64_t j = nv; j < nj; j++)
                ss[j] += (double)x[j] * x[j];
        }
        for (int64_t j = 0; j < nj; j++) {
            float norm = (float)sqrt(ss[j]);
            denom[j] = norm > 1e-12f ? norm : 1e-12f;
        }
        for (int64_t i = 0; i < ch; i++) {
            const float *x = c->x + i * s + j0;
            float *y = c->y + i * s + j0;
            float g = c->gamma ? c->gamma[i] : 1.0f, b = c->bias ? c->bias[i] : 0.0f;
            /* torch order: normalize (divide), * scale, * gamma, + bias */
            for (int64_t j = 0; j < nv; j += CPU_VL)
                cpu_vstore(y + j, cpu_vload(x + j) / cpu_vload(denom + j) * scale * g + b);
            for (int64_t j = nv; j < nj; j++)
                y[j] = x[j] / denom[j] * scale * g + b;
        }
    }
}

static void op_channel_rmsnorm(struct reel_backend *be, float *y, const float *x, int64_t c,
                               int64_t s, const float *gamma, const float *bias)
{
    if (c <= 0 || s <= 0)
        return;
    struct norm_ctx ctx = {y, x, gamma, NULL, bias, c, s, 0};
    int64_t blocks = (s + CHNORM_COLS - 1) / CHNORM_COLS;
    reel_pool_for(be->pool, blocks, EW_GRAIN / (c * CHNORM_COLS) + 1, channel_rmsnorm_cols, &ctx);
}

/* ------------------------------------------------------------ elementwise */

enum ew_kind { EW_GELU_TANH, EW_SILU, EW_ADD, EW_MUL, EW_AXPBY };

struct ew_ctx {
    enum ew_kind kind;
    float *y;
    const float *a, *b;
    float alpha, beta;
};

/* gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u): the sigmoid form
 * needs one exp and has no cancellation for negative x. */
static inline cpu_vf v_gelu_tanh(cpu_vf x)
{
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    cpu_vf u = k0 * (x + k1 * x * x * x);
    return x / (1.0f + cpu_vexp(-2.0f * u));
}

static inline cpu_vf v_silu(cpu_vf x)
{
    return x / (1.0f + cpu_vexp(-x));
}

static inline cpu_vf ew_apply(const struct ew_ctx *c, cpu_vf a, cpu_vf b)
{
    switch (c->kind) {
    case EW_GELU_TANH: return v_gelu_tanh(a);
    case EW_SILU: return v_silu(a);
    case EW_ADD: return a + b;
    case EW_MUL: return a * b;
    case EW_AXPBY: return c->alpha * a + c->beta * b;
    }
    return a;
}

static void ew_range(void *vctx, int64_t i0, int64_t i1, int worker)
{
    (void)worker;
    const struct ew_ctx *c = vctx;
    int binary = c->kind == EW_ADD || c->kind == EW_MUL || c->kind == EW_AXPBY;
    cpu_vf zero = {0};
    int64_t i = i0;
    for (; i + CPU_VL <= i1; i += CPU_VL) {
        cpu_vf a = cpu_vload(c->a + i);
        cpu_vf b = binary ? cpu_vload(c->b + i) : zero;
        cpu_vstore(c->y + i, ew_apply(c, a, b));
    }
    if (i < i1) { /* tail through a padded vector */
        float ta[CPU_VL] = {0}, tb[CPU_VL] = {0}, ty[CPU_VL];
        int64_t r = i1 - i;
        memcpy(ta, c->a + i, (size_t)r * sizeof(float));
        if (binary)
            memcpy(tb, c->b + i, (size_t)r * sizeof(float));
        cpu_vstore(ty, ew_apply(c, cpu_vload(ta), cpu_vload(tb)));
        memcpy(c->y + i, ty, (size_t)r * sizeof(float));
    }
}

static void ew_run(struct reel_backend *be, struct ew_ctx *c, int64_t n)
{
    reel_pool_for(be->pool, n, EW_GRAIN, ew_range, c);
}

static void op_gelu_tanh(struct reel_backend *be, float *y, const float *x, int64_t n)
{
    struct ew_ctx c = {EW_GELU_TANH, y, x, NULL, 0, 0};
    ew_run(be, &c, n);
}

static void op_silu(struct reel_backend *be, float *y, const float *x, int64_t n)
{
    struct ew_ctx c = {EW_SILU, y, x, NULL, 0, 0};
    ew_run(be, &c, n);
}

static void op_add(struct reel_backend *be, float *y, const float *a, const float *b, int64_t n)
{
    struct ew_ctx c = {EW_ADD, y, a, b, 0, 0};
    ew_run(be, &c, n);
}

static void op_mul(struct reel_backend *be, float *y, const float *a, const float *b, int64_t n)
{
    struct ew_ctx c = {EW_MUL, y, a, b, 0, 0};
    ew_run(be, &c, n);
}

static void op_axpby(struct reel_backend *be, float *y, float alpha, const float *a, float beta,
                     const float *b, int64_t n)
{
    struct ew_ctx c = {EW_AXPBY, y, a, b, alpha, beta};
    ew_run(be, &c, n);
}

/* Row-wise softmax; exp through the vector kernel. */
static void softmax_row(float *y, const float *x, int64_t n)
{
    cpu_vf vmax = cpu_vsplat(-INFINITY);
    int64_t i = 0;
    for (; i + CPU_VL <= n; i += CPU_VL)
        vmax = cpu_vmax(vmax, cpu_vload(x + i));
    float mx = cpu_vhmax(vmax);
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    cpu_vf vsum = {0};
    for (i = 0; i + CPU_VL <= n; i += CPU_VL) {
        cpu_vf e = cpu_vexp(cpu_vload(x + i) - mx);
        cpu_vstore(y + i, e);
        vsum += e;
    }
    double sum = cpu_vsum(vsum);
    if (i < n) {
        float t[CPU_VL];
        for (int j = 0; j < CPU_VL; j++)
            t[j] = i + j < n ? x[i + j] - mx : -INFINITY;
        cpu_vf e = cpu_vexp(cpu_vload(t));
        for (int j = 0; i + j < n; j++) {
            y[i + j] = e[j];
            sum += e[j];
        }
    }
    float inv = (float)(1.0 / sum);
    for (i = 0; i < n; i++)
        y[i] *= inv;
}

struct softmax_ctx {
    float *y;
    const float *x;
    int64_t n;
};

static void softmax_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct softmax_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++)
        softmax_row(c->y + r * c->n, c->x + r * c->n, c->n);
}

static void op_softmax(struct reel_backend *be, float *y, const float *x, int64_t rows, int64_t n)
{
    if (n <= 0)
        return;
    struct softmax_ctx c = {y, x, n};
    reel_pool_for(be->pool, rows, EW_GRAIN / n + 1, softmax_rows, &c);
}

struct mod_ctx {
    float *y;
    const float *x, *shift, *scale;
    int64_t dim, stride;
};

static void modulate_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct mod_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * c->dim;
        float *y = c->y + r * c->dim;
        const float *sh = c->shift + r * c->stride, *sc = c->scale + r * c->stride;
        for (int64_t i = 0; i < c->dim; i++)
            y[i] = x[i] * (1.0f + sc[i]) + sh[i];
    }
}

static void op_modulate(struct reel_backend *be, float *y, const float *x, int64_t rows,
                        int64_t dim, const float *shift, const float *scale, int64_t mod_stride)
{
    if (dim <= 0)
        return;
    struct mod_ctx c = {y, x, shift, scale, dim, mod_stride};
    reel_pool_for(be->pool, rows, EW_GRAIN / dim + 1, modulate_rows, &c);
}

static void gated_add_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct mod_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++) {
        float *x = c->y + r * c->dim;
        const float *y = c->x + r * c->dim, *g = c->scale + r * c->stride;
        for (int64_t i = 0; i < c->dim; i++)
            x[i] += y[i] * g[i];
    }
}

static void op_gated_add(struct reel_backend *be, float *x, const float *y, int64_t rows,
                         int64_t dim, const float *gate, int64_t gate_stride)
{
    if (dim <= 0)
        return;
    struct mod_ctx c = {x, y, NULL, gate, dim, gate_stride};
    reel_pool_for(be->pool, rows, EW_GRAIN / dim + 1, gated_add_rows, &c);
}

/* ------------------------------------------------------------------- rope */

struct rope_ctx {
    float *x;
    const float *cos_t, *sin_t;
    int heads, half;
    int64_t hd, stride;
};

static void rope_rows(void *vctx, int64_t l0, int64_t l1, int worker)
{
    (void)worker;
    const struct rope_ctx *c = vctx;
    for (int64_t l = l0; l < l1; l++) {
        const float *cs = c->cos_t + l * c->half, *sn = c->sin_t + l * c->half;
        for (int h = 0; h < c->heads; h++) {
            float *x = c->x + l * c->stride + h * c->hd;
            /* in double, as the reference does its complex product in f64 */
            for (int i = 0; i < c->half; i++) {
                double a = x[2 * i], b = x[2 * i + 1], co = cs[i], si = sn[i];
                x[2 * i] = (float)(a * co - b * si);
                x[2 * i + 1] = (float)(a * si + b * co);
            }
        }
    }
}

static void op_rope(struct reel_backend *be, float *x, int64_t l, int heads, int head_dim,
                    int64_t stride, const float *cos_t, const float *sin_t)
{
    if (heads <= 0 || head_dim < 2)
        return;
    struct rope_ctx c = {x, cos_t, sin_t, heads, head_dim / 2, head_dim, stride};
    reel_pool_for(be->pool, l, EW_GRAIN / ((int64_t)heads * head_dim) + 1, rope_rows, &c);
}

/* -------------------------------------------------------------- upsampling */

struct up_ctx {
    float *y;
    const float *x;
    int64_t h, w, len;
    int factor;
};

static void nearest2x_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct up_ctx *c = vctx;
    /* r indexes input rows across all planes; plane p row i maps to output
     * rows 2i, 2i+1 of plane p, i.e. output row 2r and 2r+1 overall. */
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * c->w;
        float *y0 = c->y + 2 * r * 2 * c->w, *y1 = y0 + 2 * c->w;
        for (int64_t j = 0; j < c->w; j++)
            y0[2 * j] = y0[2 * j + 1] = x[j];
        memcpy(y1, y0, (size_t)(2 * c->w) * sizeof(float));
    }
}

static void op_upsample_nearest2x(struct reel_backend *be, float *y, const float *x,
                                  int64_t planes, int64_t h, int64_t w)
{
    if (w <= 0)
        return;
    struct up_ctx c = {y, x, h, w, 0, 0};
    reel_pool_for(be->pool, planes * h, EW_GRAIN / (4 * w) + 1, nearest2x_rows, &c);
}

static void zero_insert_planes(void *vctx, int64_t p0, int64_t p1, int worker)
{
    (void)worker;
    const struct up_ctx *c = vctx;
    for (int64_t p = p0; p < p1; p++) {
        const float *x = c->x + p * c->len;
        float *y = c->y + p * c->len * c->factor;
        memset(y, 0, (size_t)(c->len * c->factor) * sizeof(float));
        for (int64_t i = 0; i < c->len; i++)
            y[i * c->factor] = x[i];
    }
}

static void op_upsample_zero_insert(struct reel_backend *be, float *y, const float *x,
                                    int64_t planes, int64_t len, int factor)
{
    if (len <= 0 || factor <= 0)
        return;
    struct up_ctx c = {y, x, 0, 0, len, factor};
    reel_pool_for(be->pool, planes, EW_GRAIN / (len * factor) + 1, zero_insert_planes, &c);
}

/* ---------------------------------------------------------------- create */

static void cpu_destroy(struct reel_backend *be)
{
    struct cpu_impl *im = be->impl;
    if (im) {
        if (im->work)
            for (int i = 0; i < im->threads; i++)
                free(im->work[i].p);
        free(im->work);
        free(im->shared.p);
        free(im);
    }
    reel_pool_destroy(be->pool);
    free(be);
}

struct reel_backend *reel_backend_cpu_create(int threads)
{
    struct reel_backend *be = calloc(1, sizeof *be);
    struct cpu_impl *im = calloc(1, sizeof *im);
    if (!be || !im) {
        free(be);
        free(im);
        return NULL;
    }
    be->impl = im;
    be->name = "cpu";
    be->destroy = cpu_destroy;
    be->pool = reel_pool_create(threads);
    if (!be->pool) {
        cpu_destroy(be);
        return NULL;
    }
    im->threads = reel_pool_threads(be->pool);
    im->work = calloc((size_t)im->threads, sizeof *im->work);
    if (!im->work) {
        cpu_destroy(be);
        return NULL;
    }
    /* Every GEMM runs single-threaded inside a pool worker; OpenBLAS's own
     * threads would only compete with ours for the same cores. */
    openblas_set_num_threads(1);

    be->sgemm = op_sgemm;
    be->linear = op_linear;
    be->layernorm = op_layernorm;
    be->rmsnorm = op_rmsnorm;
    be->channel_rmsnorm = op_channel_rmsnorm;
    be->gelu_tanh = op_gelu_tanh;
    be->silu = op_silu;
    be->softmax = op_softmax;
    be->add = op_add;
    be->mul = op_mul;
    be->axpby = op_axpby;
    be->modulate = op_modulate;
    be->gated_add = op_gated_add;
    be->attention = cpu_attention;
    be->rope = op_rope;
    be->conv3d = cpu_conv3d;
    be->upsample_nearest2x = op_upsample_nearest2x;
    be->upsample_zero_insert = op_upsample_zero_insert;
    cpu_audio_fill_ops(be);
    return be;
}
