/* CPU softmax attention. Work is split into (head, block of query rows)
 * tasks over the pool; each task computes its score block S = scale Q K^T
 * (only over the k_len live keys: masked keys would get exp -> 0 exactly),
 * exponentiates it in place, multiplies by V and divides each output row by
 * its sum. Memory is one score block per worker, never lq x lk x heads. */
#include <math.h>

#include "kernels/cpu_internal.h"

/* Query rows per task: 128 rows x ~3500 keys of scores is ~1.8 MB, which
 * stays close to the core while the two GEMMs reuse it (measured at
 * lq = lk = 3510: 64 rows ~8% slower, 256 and 512 within noise). */
#define ATTN_BLOCK_Q 128

struct attn_ctx {
    struct reel_backend *be;
    float *out;
    const float *q, *k, *v, *bias;
    int64_t lq, lk, k_len, q_stride, kv_stride, out_stride, nqb;
    int heads, hd;
    float scale;
};

/* Replaces row s[0..n) (+ bias) by exp(s - max) and returns the sum. */
static double exp_row(float *s, const float *bias, int64_t n)
{
    cpu_vf vmax = cpu_vsplat(-INFINITY);
    int64_t j = 0;
    for (; j + CPU_VL <= n; j += CPU_VL) {
        cpu_vf v = cpu_vload(s + j);
        if (bias) {
            v += cpu_vload(bias + j);
            cpu_vstore(s + j, v);
        }
        vmax = cpu_vmax(vmax, v);
    }
    float mx = cpu_vhmax(vmax);
    for (; j < n; j++) {
        if (bias)
            s[j] += bias[j];
        mx = s[j] > mx ? s[j] : mx;
    }
    if (mx == -INFINITY) /* every key biased away: keep the row finite */
        mx = 0;
    cpu_vf vsum = {0};
    for (j = 0; j + CPU_VL <= n; j += CPU_VL) {
        cpu_vf e = cpu_vexp(cpu_vload(s + j) - mx);
        cpu_vstore(s + j, e);
        vsum += e;
    }
    double sum = cpu_vsum(vsum);
    if (j < n) {
        float t[CPU_VL];
        int64_t r = n - j;
        for (int i = 0; i < CPU_VL; i++)
            t[i] = i < r ? s[j + i] - mx : 0.0f;
        cpu_vf e = cpu_vexp(cpu_vload(t));
        for (int i = 0; i < r; i++) {
            s[j + i] = e[i];
            sum += e[i];
        }
    }
    return sum;
}

static void attn_tasks(void *vctx, int64_t t0, int64_t t1, int worker)
{
    const struct attn_ctx *c = vctx;
    struct cpu_impl *im = c->be->impl;
    float *s = im->work[worker].p;
    int64_t kl = c->k_len;
    for (int64_t t = t0; t < t1; t++) {
        int h = (int)(t / c->nqb);
        int64_t i0 = (t % c->nqb) * ATTN_BLOCK_Q;
        int64_t rows = c->lq - i0 < ATTN_BLOCK_Q ? c->lq - i0 : ATTN_BLOCK_Q;
        const float *q = c->q + i0 * c->q_stride + (int64_t)h * c->hd;
        const float *k = c->k + (int64_t)h * c->hd;
        const float *v = c->v + (int64_t)h * c->hd;
        float *out = c->out + i0 * c->out_stride + (int64_t)h * c->hd;

        cpu_sgemm_serial(0, 1, rows, kl, c->hd, c->scale, q, c->q_stride, k, c->kv_stride, 0.0f,
                         s, kl);
        float inv[ATTN_BLOCK_Q];
        for (int64_t r = 0; r < rows; r++) {
            const float *b = c->bias ? c->bias + ((int64_t)h * c->lq + i0 + r) * c->lk : NULL;
            inv[r] = (float)(1.0 / exp_row(s + r * kl, b, kl));
        }
        cpu_sgemm_serial(0, 0, rows, c->hd, kl, 1.0f, s, kl, v, c->kv_stride, 0.0f, out,
                         c->out_stride);
        for (int64_t r = 0; r < rows; r++) {
            float *o = out + r * c->out_stride;
            for (int d = 0; d < c->hd; d++)
                o[d] *= inv[r];
        }
    }
}

int cpu_attention(struct reel_backend *be, float *out, const float *q, const float *k,
                  const float *v, int64_t lq, int64_t lk, int64_t k_len, int heads, int head_dim,
                  int64_t q_stride, int64_t kv_stride, int64_t out_stride, float scale,
                  const float *bias, struct reel_err *err)
{
    if (lq <= 0 || heads <= 0 || head_dim <= 0)
        return REEL_OK;
    if (k_len > lk)
        k_len = lk;
    if (k_len <= 0) {
        /* No live key: torch gives NaN; a zero output is the useful answer. */
        for (int64_t i = 0; i < lq; i++)
            memset(out + i * out_stride, 0, (size_t)heads * (size_t)head_dim * sizeof(float));
        return REEL_OK;
    }
    if (cpu_reserve_scratch(be, (size_t)(ATTN_BLOCK_Q * k_len)) != 0)
        return reel_errf(err, REEL_E_OTHER,
                             "attention: out of memory for a %d x %lld score block",
                             ATTN_BLOCK_Q, (long long)k_len);
    struct attn_ctx c = {be,       out,       q,         k,          v,   bias,
                         lq,       lk,        k_len,     q_stride,   kv_stride,
                         out_stride, (lq + ATTN_BLOCK_Q - 1) / ATTN_BLOCK_Q, heads, head_dim, scale};
    reel_pool_for(be->pool, (int64_t)heads * c.nqb, 1, attn_tasks, &c);
    return REEL_OK;
}
