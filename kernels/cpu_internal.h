/* Private to the CPU backend (kernels/cpu_*.c): the backend's state, its
 * scratch buffers, float conversion of weight rows, and the vector math
 * (exp) that the activation and softmax kernels share. */
#ifndef REEL_CPU_INTERNAL_H
#define REEL_CPU_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/tensor.h"
#include "kernels/threadpool.h"

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

/* A growable buffer; contents are not kept across growth. */
struct cpu_buf {
    float *p;
    size_t cap; /* floats */
};

/* The backend state. A backend is driven by one thread at a time; its
 * kernels fan out over the pool. OpenBLAS runs single-threaded inside each
 * worker, so the only threads are the pool's and nothing oversubscribes. */
struct cpu_impl {
    int threads;
    struct cpu_buf *work; /* one per pool worker */
    struct cpu_buf shared;
};

/* The worker's scratch (or the shared one for worker < 0) with room for n
 * floats; NULL on OOM. */
float *cpu_scratch(struct reel_backend *be, int worker, size_t n);
/* Grows every worker's scratch to n floats before a job, so an OOM is
 * reported by the caller rather than met inside a worker. 0 or -1. */
int cpu_reserve_scratch(struct reel_backend *be, size_t n);

/* Rows [row0, row0 + rows) of a float weight tensor viewed as [n, k], as f32.
 * f32 weights are returned in place; others are converted into buf. */
const float *cpu_weight_rows(const struct reel_tensor *w, int64_t k, int64_t row0, int64_t rows,
                             float *buf);
int cpu_is_float_dtype(enum reel_dtype dt);

/* Splits C = op(A) op(B) over the pool (by rows of C when it is tall,
 * otherwise by columns), each piece a single-threaded OpenBLAS call. */
void cpu_sgemm_parallel(struct reel_backend *be, int trans_a, int trans_b, int64_t m, int64_t n,
                        int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float beta, float *c, int64_t ldc);
/* One single-threaded call; safe from inside a pool job. */
void cpu_sgemm_serial(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc);

int cpu_attention(struct reel_backend *be, float *out, const float *q, const float *k,
                  const float *v, int64_t lq, int64_t lk, int64_t k_len, int heads, int head_dim,
                  int64_t q_stride, int64_t kv_stride, int64_t out_stride, float scale,
                  const float *bias, struct reel_err *err);
int cpu_conv3d(struct reel_backend *be, float *y, const float *x, const struct reel_conv3d_geom *g,
               const struct reel_tensor *w, const float *bias, struct reel_err *err);

/* ---- Vectors as wide as the target's registers (GCC/Clang vector
 * extensions): 16 lanes with AVX-512, 8 with AVX, 4 otherwise. Never wider
 * than the hardware, so passing them between inline helpers is ABI-clean. */
#if defined(__AVX512F__)
#define CPU_VL 16
#elif defined(__AVX__)
#define CPU_VL 8
#else
#define CPU_VL 4
#endif

typedef float cpu_vf __attribute__((vector_size(CPU_VL * 4)));
typedef int32_t cpu_vi __attribute__((vector_size(CPU_VL * 4)));

static inline cpu_vf cpu_vload(const float *p)
{
    cpu_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void cpu_vstore(float *p, cpu_vf v)
{
    memcpy(p, &v, sizeof v);
}

static inline cpu_vf cpu_vsplat(float s)
{
    cpu_vf v = {0};
    return v + s;
}

static inline cpu_vf cpu_vselect(cpu_vi mask, cpu_vf a, cpu_vf b)
{
    return (cpu_vf)(((cpu_vi)a & mask) | ((cpu_vi)b & ~mask));
}

/* With AVX-512 / AVX(+FMA) these map to single instructions (ISO C mode
 * never fuses a * b + c on its own); elsewhere the generic forms. */
static inline cpu_vf cpu_vmax(cpu_vf a, cpu_vf b)
{
#if defined(__AVX512F__)
    return (cpu_vf)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(__AVX__)
    return (cpu_vf)_mm256_max_ps((__m256)a, (__m256)b);
#else
    return cpu_vselect(a > b, a, b);
#endif
}

static inline cpu_vf cpu_vmin(cpu_vf a, cpu_vf b)
{
#if defined(__AVX512F__)
    return (cpu_vf)_mm512_min_ps((__m512)a, (__m512)b);
#elif defined(__AVX__)
    return (cpu_vf)_mm256_min_ps((__m256)a, (__m256)b);
#else
    return cpu_vselect(a < b, a, b);
#endif
}

static inline cpu_vf cpu_vfma(cpu_vf a, cpu_vf b, cpu_vf c)
{
#if defined(__AVX512F__)
    return (cpu_vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__AVX__) && defined(__FMA__)
    return (cpu_vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

/* exp(x) to ~2 ulp: x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor
 * series to r^6 (truncation < 1.2e-7 relative), times 2^n built in the
 * exponent bits. Inputs are clamped to [-87, 88] so 2^n stays a normal
 * float: far-negative inputs give ~1e-38 instead of 0, which no sum notices. */
static inline cpu_vf cpu_vexp(cpu_vf x)
{
    const cpu_vf round_magic = cpu_vsplat(12582912.0f); /* 1.5 * 2^23: adding it rounds */
    x = cpu_vmin(x, cpu_vsplat(88.0f));
    x = cpu_vmax(x, cpu_vsplat(-87.0f));
    cpu_vf t = cpu_vfma(x, cpu_vsplat(1.44269504088896341f), round_magic);
    cpu_vf n = t - round_magic;
    cpu_vi ni = (cpu_vi)t - (cpu_vi)round_magic;
    /* ln2 split so n * ln2_hi is exact for |n| < 2^8 */
    cpu_vf r = cpu_vfma(n, cpu_vsplat(-0.693145751953125f), x);
    r = cpu_vfma(n, cpu_vsplat(-1.428606765330187e-06f), r);
    cpu_vf p = cpu_vfma(r, cpu_vsplat(1.0f / 720.0f), cpu_vsplat(1.0f / 120.0f));
    p = cpu_vfma(p, r, cpu_vsplat(1.0f / 24.0f));
    p = cpu_vfma(p, r, cpu_vsplat(1.0f / 6.0f));
    p = cpu_vfma(p, r, cpu_vsplat(0.5f));
    p = cpu_vfma(p, r, cpu_vsplat(1.0f));
    p = cpu_vfma(p, r, cpu_vsplat(1.0f));
    cpu_vf scale = (cpu_vf)((ni + 127) << 23);
    return p * scale;
}

static inline float cpu_vsum(cpu_vf v)
{
    double s = 0;
    for (int i = 0; i < CPU_VL; i++)
        s += v[i];
    return (float)s;
}

static inline float cpu_vhmax(cpu_vf v)
{
    float m = v[0];
    for (int i = 1; i < CPU_VL; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

#endif
