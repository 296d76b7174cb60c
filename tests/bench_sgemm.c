/* Benchmark: the CPU backend's sgemm at DiT shapes beside the machine's own
 * measured fp32 FMA peak. The peak comes from our own register-only FMA loop
 * (no memory traffic), so "ratio" is the fraction of the silicon the GEMM
 * actually gets, independent of any vendor's claims.
 *
 *   bench_sgemm [--threads N] [--quick]
 *
 * Prints "bench: sgemm ours=GFLOP/s ref=PEAK ratio=ours/peak unit=GFLOP/s"
 * and '#' lines for the other shapes. */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/backend.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- peak */

/* 12 independent accumulator chains: FMA latency (4-5 cycles) times the
 * FMA issue width (up to 2 per cycle) needs ~10 in flight; 12 leaves margin
 * and still fits the register file on both AVX2 (16) and AVX-512 (32).
 * FMA_CHAINS below spells out exactly CHAINS chains. */
#define CHAINS 12

struct peak_job {
    int64_t iters;
    int avx512;
    float sink;
    pthread_barrier_t *start;
    double seconds;
};

/* The chains are named variables, not an array: GCC keeps an indexed
 * array on the stack and the loop then measures store forwarding instead
 * of the FMA units. */
#define FMA_CHAINS(T, SET1, FMA)                                                              \
    T a0 = SET1(0.000f), a1 = SET1(0.001f), a2 = SET1(0.002f), a3 = SET1(0.003f);            \
    T a4 = SET1(0.004f), a5 = SET1(0.005f), a6 = SET1(0.006f), a7 = SET1(0.007f);            \
    T a8 = SET1(0.008f), a9 = SET1(0.009f), a10 = SET1(0.010f), a11 = SET1(0.011f);          \
    /* Multiplier just below 1 and a tiny addend: the chains neither          \
     * overflow nor go denormal however long the loop runs. */               \
    const T mul = SET1(0.999999f), add = SET1(1e-7f);                                         \
    for (int64_t i = 0; i < iters; i++) {                                                     \
        a0 = FMA(a0, mul, add);                                                               \
        a1 = FMA(a1, mul, add);                                                               \
        a2 = FMA(a2, mul, add);                                                               \
        a3 = FMA(a3, mul, add);                                                               \
        a4 = FMA(a4, mul, add);                                                               \
        a5 = FMA(a5, mul, add);                                                               \
        a6 = FMA(a6, mul, add);                                                               \
        a7 = FMA(a7, mul, add);                                                               \
        a8 = FMA(a8, mul, add);                                                               \
        a9 = FMA(a9, mul, add);                                                               \
        a10 = FMA(a10, mul, add);                                                             \
        a11 = FMA(a11, mul, add);                                                             \
    }                                                                                         \
    T s = a0;                                                                                 \
    s = s + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11

__attribute__((target("avx512f"))) static float fma_loop_avx512(int64_t iters)
{
    FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_loop_avx2(int64_t iters)
{
    FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps);
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    float r = 0;
    for (int i = 0; i < 8; i++)
        r += lanes[i];
    return r;
}

static void *peak_thread(void *arg)
{
    struct peak_job *j = arg;
    pthread_barrier_wait(j->start);
    double t0 = now_s();
    j->sink = j->avx512 ? fma_loop_avx512(j->iters) : fma_loop_avx2(j->iters);
    j->seconds = now_s() - t0;
    return NULL;
}

/* GFLOP/s of `threads` threads running the FMA loop at once. The slowest
 * thread sets the time: that is what a parallel GEMM would see. */
static double peak_gflops(int threads, int avx512, int64_t iters)
{
    pthread_t tid[64];
    struct peak_job jobs[64];
    pthread_barrier_t start;
    if (threads > 64)
        threads = 64;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct peak_job){.iters = iters, .avx512 = avx512, .start = &start};
        if (pthread_create(&tid[i], NULL, peak_thread, &jobs[i]) != 0) {
            fprintf(stderr, "bench_sgemm: pthread_create failed\n");
            exit(1);
        }
    }
    double worst = 0;
    float sink = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        if (jobs[i].seconds > worst)
            worst = jobs[i].seconds;
        sink += jobs[i].sink;
    }
    pthread_barrier_destroy(&start);
    if (sink == 12345.0f) /* keeps the result live */
        fprintf(stderr, "#\n");
    double lanes = avx512 ? 16 : 8;
    return 2.0 * lanes * CHAINS * (double)iters * threads / worst * 1e-9;
}

/* ---------------------------------------------------------------- sgemm */

static float *rand_matrix(int64_t n, uint64_t seed)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    if (!p) {
        fprintf(stderr, "bench_sgemm: out of memory\n");
        exit(1);
    }
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(s >> 40) / (double)(1 << 24) - 0.5);
    }
    return p;
}

/* Best-of-`runs` GFLOP/s of y[m,n] = x[m,k] . w[n,k]^T, the layout every
 * Linear of the DiT uses. One untimed call first faults in the pages. */
static double sgemm_gflops(struct reel_backend *be, int64_t m, int64_t n, int64_t k, int runs)
{
    float *a = rand_matrix(m * k, 1), *b = rand_matrix(n * k, 2), *c = rand_matrix(m * n, 3);
    be->sgemm(be, 0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        be->sgemm(be, 0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)m * (double)n * (double)k / best * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = 2, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1)
        threads = 1;

    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f");
    if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        fprintf(stderr, "bench_sgemm: neither AVX-512F nor AVX2+FMA on this CPU\n");
        return 1;
    }
    /* ~0.1-0.2 s per try at a few GHz: long enough to ramp the clock; the
     * best of 5 shrugs off a neighbour's burst on a shared machine. */
    int64_t iters = quick ? 2000000 : 40000000;
    double peak = 0;
    for (int r = 0; r < 5; r++) {
        double g = peak_gflops(threads, avx512, iters);
        if (g > peak)
            peak = g;
    }
    double peak1 = peak_gflops(1, avx512, iters);
    printf("# fp32 FMA peak (%s, %d chains): %.1f GFLOP/s on %d threads, %.1f on 1\n",
           avx512 ? "AVX-512" : "AVX2", CHAINS, peak, threads, peak1);

    struct reel_backend *be = reel_backend_cpu_create(threads);
    if (!be) {
        fprintf(stderr, "bench_sgemm: cannot create the CPU backend\n");
        return 1;
    }
    /* Main figure: a 1.3B self-attention projection (3510 tokens x 1536 ->
     * 1536); the FFN shapes go on comment lines. */
    int runs = quick ? 1 : 3;
    int64_t m = quick ? 512 : 3510;
    double g = sgemm_gflops(be, m, 1536, 1536, runs);
    if (!quick) {
        printf("# sgemm %lldx8960x1536 (ffn up): %.1f GFLOP/s\n", (long long)m,
               sgemm_gflops(be, m, 8960, 1536, 2));
        printf("# sgemm %lldx1536x8960 (ffn down): %.1f GFLOP/s\n", (long long)m,
               sgemm_gflops(be, m, 1536, 8960, 2));
    }
    printf("# sgemm shape: m=%lld n=1536 k=1536 (x . w^T), %d threads, best of %d\n",
           (long long)m, threads, runs);
    printf("bench: sgemm ours=%.1f ref=%.1f ratio=%.3f unit=GFLOP/s\n", g, peak, g / peak);
    reel_backend_destroy(be);
    return 0;
}
