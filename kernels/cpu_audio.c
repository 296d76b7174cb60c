/* CPU kernels of the audio ops (mel converter, MMAudio VAE, BigVGAN):
 * dilated conv1d and ConvTranspose1d as GEMMs, the alias-free resamplers,
 * SnakeBeta, pixel norm, the STFT magnitude (a GEMM against a DFT matrix,
 * since n_fft is fixed per model and a GEMM is exact enough and fast), and
 * small elementwise helpers. cpu_audio_fill_ops() wires them into the table. */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu_internal.h"

#define EW_GRAIN 16384
#define C1_COLS 512                    /* output positions per conv1d task */
#define C1_SLICE_FLOATS (512 * 1024)   /* per-worker column buffer: 2 MB */
#define CT_COLS_FLOATS (4 * 1024 * 1024) /* transposed-conv column block: 16 MB */

/* A float weight tensor as f32: in place for F32, else a malloc'd copy in *own. */
static const float *weight_f32(const struct reel_tensor *w, float **own)
{
    *own = NULL;
    if (w->dtype == REEL_F32)
        return w->data;
    int64_t n = reel_tensor_numel(w);
    float *buf = malloc((size_t)(n ? n : 1) * sizeof *buf);
    if (!buf)
        return NULL;
    reel_tensor_to_f32(w, 0, n, buf);
    *own = buf;
    return buf;
}

/* ---------------------------------------------------------------- conv1d */

struct c1_ctx {
    struct reel_backend *be;
    const struct reel_conv1d_geom *g;
    float *y;
    const float *x, *w, *bias;
    int64_t lo, K, cols, slice;
    int pointwise;
};

static void c1_tasks(void *vctx, int64_t t0, int64_t t1, int worker)
{
    const struct c1_ctx *c = vctx;
    const struct reel_conv1d_geom *g = c->g;
    struct cpu_impl *im = c->be->impl;
    float *col = im->work[worker].p;
    for (int64_t t = t0; t < t1; t++) {
        int64_t p0 = t * c->cols, np = c->lo - p0 < c->cols ? c->lo - p0 : c->cols;
        float *y = c->y + p0;
        if (c->pointwise) {
            cpu_sgemm_serial(0, 0, g->cout, np, c->K, 1.0f, c->w, c->K, c->x + p0, g->len, 0.0f,
                             y, c->lo);
        } else {
            for (int64_t k0 = 0; k0 < c->K; k0 += c->slice) {
                int64_t k1 = k0 + c->slice < c->K ? k0 + c->slice : c->K;
                for (int64_t r = k0; r < k1; r++) {
                    int64_t ci = r / g->k, tap = r % g->k;
                    const float *src = c->x + ci * g->len;
                    float *dst = col + (r - k0) * np;
                    int64_t base = p0 * g->stride - g->pad0 + tap * g->dilation;
                    for (int64_t j = 0; j < np; j++) {
                        int64_t i = base + j * g->stride;
                        dst[j] = i >= 0 && i < g->len ? src[i] : 0.0f;
                    }
                }
                cpu_sgemm_serial(0, 0, g->cout, np, k1 - k0, 1.0f, c->w + k0, c->K, col, np,
                                 k0 ? 1.0f : 0.0f, y, c->lo);
            }
        }
        if (c->bias)
            for (int64_t o = 0; o < g->cout; o++) {
                float b = c->bias[o], *row = y + o * c->lo;
                for (int64_t j = 0; j < np; j++)
                    row[j] += b;
            }
    }
}

static int geom_ok(const struct reel_conv1d_geom *g)
{
    return g->cin > 0 && g->len > 0 && g->cout > 0 && g->k > 0 && g->stride > 0 &&
           g->dilation > 0 && g->pad0 >= 0 && g->pad1 >= 0;
}

static int op_conv1d(struct reel_backend *be, float *y, const float *x,
                     const struct reel_conv1d_geom *g, const struct reel_tensor *w,
                     const float *bias, struct reel_err *err)
{
    const char *wname = w->name ? w->name : "(conv1d weight)";
    if (!cpu_is_float_dtype(w->dtype))
        return reel_errf(err, REEL_E_MODEL, "%s: conv weight has dtype %s, expected F32/BF16/F16",
                         wname, reel_dtype_name(w->dtype));
    if (!geom_ok(g))
        return reel_errf(err, REEL_E_MODEL, "%s: invalid conv1d geometry", wname);
    int64_t span = (int64_t)g->dilation * (g->k - 1) + 1;
    if (g->len + g->pad0 + g->pad1 < span)
        return reel_errf(err, REEL_E_MODEL, "%s: conv1d kernel longer than the padded input",
                         wname);
    int64_t K = g->cin * g->k;
    if (reel_tensor_numel(w) != g->cout * K)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: conv weight has %lld elements, expected %lld x %lld x %d", wname,
                         (long long)reel_tensor_numel(w), (long long)g->cout, (long long)g->cin,
                         g->k);
    struct c1_ctx c = {0};
    c.be = be;
    c.g = g;
    c.y = y;
    c.x = x;
    c.bias = bias;
    c.K = K;
    c.lo = (g->len + g->pad0 + g->pad1 - span) / g->stride + 1;
    c.pointwise = g->k == 1 && g->stride == 1 && g->pad0 == 0 && g->pad1 == 0;
    int threads = reel_pool_threads(be->pool);
    c.cols = c.lo < C1_COLS ? c.lo : C1_COLS;
    while (c.cols > 64 && (c.lo + c.cols - 1) / c.cols < 2 * threads)
        c.cols = (c.cols / 2 + 15) / 16 * 16;
    c.slice = C1_SLICE_FLOATS / c.cols;
    if (c.slice < 16)
        c.slice = 16;
    if (c.slice > K)
        c.slice = K;
    if (!c.pointwise && cpu_reserve_scratch(be, (size_t)(c.slice * c.cols)) != 0)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory for conv1d columns", wname);
    float *own;
    c.w = weight_f32(w, &own);
    if (!c.w)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory converting the weight", wname);
    reel_pool_for(be->pool, (c.lo + c.cols - 1) / c.cols, 1, c1_tasks, &c);
    free(own);
    return REEL_OK;
}

/* ------------------------------------------------------ ConvTranspose1d */

struct ct_ctx {
    const struct reel_conv1d_geom *g;
    float *y;
    const float *cols, *bias;
    int64_t lo, i0, ni;
};

static void ct_init_rows(void *vctx, int64_t o0, int64_t o1, int worker)
{
    (void)worker;
    const struct ct_ctx *c = vctx;
    for (int64_t o = o0; o < o1; o++) {
        float b = c->bias ? c->bias[o] : 0.0f, *row = c->y + o * c->lo;
        for (int64_t j = 0; j < c->lo; j++)
            row[j] = b;
    }
}

/* Scatters the column block of input positions [i0, i0 + ni) into the
 * outputs; each task owns whole output rows, so no two workers collide. */
static void ct_col2im(void *vctx, int64_t o0, int64_t o1, int worker)
{
    (void)worker;
    const struct ct_ctx *c = vctx;
    const struct reel_conv1d_geom *g = c->g;
    for (int64_t o = o0; o < o1; o++) {
        float *row = c->y + o * c->lo;
        for (int t = 0; t < g->k; t++) {
            const float *src = c->cols + (o * g->k + t) * c->ni;
            int64_t off = (int64_t)t * g->dilation - g->pad0;
            for (int64_t j = 0; j < c->ni; j++) {
                int64_t pos = (c->i0 + j) * g->stride + off;
                if (pos >= 0 && pos < c->lo)
                    row[pos] += src[j];
            }
        }
    }
}

static int op_conv_transpose1d(struct reel_backend *be, float *y, const float *x,
                               const struct reel_conv1d_geom *g, const struct reel_tensor *w,
                               const float *bias, struct reel_err *err)
{
    const char *wname = w->name ? w->name : "(conv_transpose1d weight)";
    if (!cpu_is_float_dtype(w->dtype))
        return reel_errf(err, REEL_E_MODEL, "%s: conv weight has dtype %s, expected F32/BF16/F16",
                         wname, reel_dtype_name(w->dtype));
    if (!geom_ok(g))
        return reel_errf(err, REEL_E_MODEL, "%s: invalid conv_transpose1d geometry", wname);
    int64_t lo = (g->len - 1) * g->stride + (int64_t)g->dilation * (g->k - 1) + 1 - g->pad0 -
                 g->pad1;
    if (lo <= 0)
        return reel_errf(err, REEL_E_MODEL, "%s: conv_transpose1d output would be empty", wname);
    int64_t N = g->cout * g->k;
    if (reel_tensor_numel(w) != g->cin * N)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: weight has %lld elements, expected %lld x %lld x %d", wname,
                         (long long)reel_tensor_numel(w), (long long)g->cin, (long long)g->cout,
                         g->k);
    int64_t block = CT_COLS_FLOATS / N;
    if (block < 1)
        block = 1;
    if (block > g->len)
        block = g->len;
    float *own, *cols = malloc((size_t)(N * block) * sizeof *cols);
    const float *wf = weight_f32(w, &own);
    if (!cols || !wf) {
        free(cols);
        free(own);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory for conv_transpose1d", wname);
    }
    struct ct_ctx c = {g, y, cols, bias, lo, 0, 0};
    int64_t grain = EW_GRAIN / lo + 1;
    reel_pool_for(be->pool, g->cout, grain, ct_init_rows, &c);
    for (int64_t i0 = 0; i0 < g->len; i0 += block) {
        c.i0 = i0;
        c.ni = g->len - i0 < block ? g->len - i0 : block;
        /* cols[o*k + t, j] = sum_c w[c, o, t] x[c, i0 + j] */
        cpu_sgemm_parallel(be, 1, 0, N, c.ni, g->cin, 1.0f, wf, N, x + i0, g->len, 0.0f, cols,
                           c.ni);
        reel_pool_for(be->pool, g->cout, EW_GRAIN / (c.ni * g->k) + 1, ct_col2im, &c);
    }
    free(cols);
    free(own);
    return REEL_OK;
}

/* ------------------------------------------------------------- SnakeBeta */

struct plane_ctx {
    float *y;
    const float *x;
    const float *a, *b, *f;
    int64_t len, out_len;
    int ratio, taps;
    float eps;
};

static void snake_planes(void *vctx, int64_t p0, int64_t p1, int worker)
{
    (void)worker;
    const struct plane_ctx *c = vctx;
    for (int64_t p = p0; p < p1; p++) {
        float alpha = c->a[p];
        float inv = 1.0f / (c->b[p] + 1e-9f);
        const float *x = c->x + p * c->len;
        float *y = c->y + p * c->len;
        for (int64_t i = 0; i < c->len; i++) {
            float s = sinf(x[i] * alpha);
            y[i] = x[i] + inv * (s * s);
        }
    }
}

static void op_snake_beta(struct reel_backend *be, float *y, const float *x, int64_t c,
                          int64_t len, const float *alpha, const float *beta)
{
    if (len <= 0)
        return;
    struct plane_ctx ctx = {.y = y, .x = x, .a = alpha, .b = beta, .len = len};
    reel_pool_for(be->pool, c, EW_GRAIN / len + 1, snake_planes, &ctx);
}

/* ------------------------------------------------ alias-free resampling */

static inline int64_t clampi(int64_t i, int64_t n)
{
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

static void aa_up_planes(void *vctx, int64_t p0, int64_t p1, int worker)
{
    (void)worker;
    const struct plane_ctx *c = vctx;
    int r = c->ratio, T = c->taps;
    int64_t pad = T / r - 1, pad_left = pad * r + (T - r) / 2;
    int64_t plen = c->len + 2 * pad; /* replicate-padded input length */
    for (int64_t p = p0; p < p1; p++) {
        const float *x = c->x + p * c->len;
        float *y = c->y + p * c->out_len;
        for (int64_t n = 0; n < c->out_len; n++) {
            int64_t m = n + pad_left; /* index in the uncropped transposed-conv output */
            float acc = 0.0f;
            for (int k = (int)(m % r); k < T; k += r) {
                int64_t i = (m - k) / r;
                if (i >= 0 && i < plen)
                    acc += x[clampi(i - pad, c->len)] * c->f[k];
            }
            y[n] = (float)r * acc;
        }
    }
}

static void op_aa_upsample(struct reel_backend *be, float *y, const float *x, int64_t planes,
                           int64_t len, int ratio, const float *filter, int taps)
{
    if (len <= 0 || ratio <= 0 || taps <= 0)
        return;
    struct plane_ctx c = {.y = y, .x = x, .f = filter, .len = len, .out_len = len * ratio,
                          .ratio = ratio, .taps = taps};
    reel_pool_for(be->pool, planes, EW_GRAIN / (len * ratio * taps / ratio + 1) + 1,
                  aa_up_planes, &c);
}

static void aa_down_planes(void *vctx, int64_t p0, int64_t p1, int worker)
{
    (void)worker;
    const struct plane_ctx *c = vctx;
    int r = c->ratio, T = c->taps;
    int64_t pl = T / 2 - (T % 2 == 0);
    for (int64_t p = p0; p < p1; p++) {
        const float *x = c->x + p * c->len;
        float *y = c->y + p * c->out_len;
        for (int64_t o = 0; o < c->out_len; o++) {
            int64_t base = o * r - pl;
            float acc = 0.0f;
            for (int k = 0; k < T; k++)
                acc += c->f[k] * x[clampi(base + k, c->len)];
            y[o] = acc;
        }
    }
}

static void op_aa_downsample(struct reel_backend *be, float *y, const float *x, int64_t planes,
                             int64_t len, int ratio, const float *filter, int taps)
{
    if (len <= 0 || ratio <= 0 || taps <= 0)
        return;
    int64_t pl = taps / 2 - (taps % 2 == 0), pr = taps / 2;
    int64_t out = (len + pl + pr - taps) / ratio + 1;
    struct plane_ctx c = {.y = y, .x = x, .f = filter, .len = len, .out_len = out,
                          .ratio = ratio, .taps = taps};
    reel_pool_for(be->pool, planes, EW_GRAIN / (out * taps) + 1, aa_down_planes, &c);
}

/* ------------------------------------------------------------ pixel norm */

#define PN_COLS 64

struct pn_ctx {
    float *y;
    const float *x, *scale, *shift;
    int64_t c, s;
    float eps;
};

static void pixel_norm_cols(void *vctx, int64_t b0, int64_t b1, int worker)
{
    (void)worker;
    const struct pn_ctx *c = vctx;
    float a = (float)sqrt(1.0 / (double)c->c);
    for (int64_t b = b0; b < b1; b++) {
        int64_t j0 = b * PN_COLS, nj = c->s - j0 < PN_COLS ? c->s - j0 : PN_COLS;
        double acc[PN_COLS] = {0};
        for (int64_t i = 0; i < c->c; i++) {
            const float *row = c->x + i * c->s + j0;
            for (int64_t j = 0; j < nj; j++)
                acc[j] += (double)row[j] * row[j];
        }
        float d[PN_COLS];
        for (int64_t j = 0; j < nj; j++)
            d[j] = c->eps + a * (float)sqrt(acc[j]);
        for (int64_t i = 0; i < c->c; i++) {
            const float *row = c->x + i * c->s + j0;
            float *out = c->y + i * c->s + j0;
            for (int64_t j = 0; j < nj; j++)
                out[j] = row[j] / d[j];
        }
    }
}

static void op_pixel_norm(struct reel_backend *be, float *y, const float *x, int64_t c,
                          int64_t s, float eps)
{
    if (c <= 0 || s <= 0)
        return;
    struct pn_ctx ctx = {y, x, NULL, NULL, c, s, eps};
    int64_t blocks = (s + PN_COLS - 1) / PN_COLS;
    reel_pool_for(be->pool, blocks, EW_GRAIN / (c * PN_COLS) + 1, pixel_norm_cols, &ctx);
}

static void affine_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct pn_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = c->x + r * c->s;
        float *y = c->y + r * c->s, sc = c->scale[r], sh = c->shift[r];
        for (int64_t j = 0; j < c->s; j++)
            y[j] = x[j] * sc + sh;
    }
}

static void op_channel_affine(struct reel_backend *be, float *y, const float *x, int64_t c,
                              int64_t s, const float *scale, const float *shift)
{
    if (c <= 0 || s <= 0)
        return;
    struct pn_ctx ctx = {y, x, scale, shift, c, s, 0};
    reel_pool_for(be->pool, c, EW_GRAIN / s + 1, affine_rows, &ctx);
}

/* ----------------------------------------------------------- elementwise */

enum ew_kind { EW_CLAMP, EW_TANH, EW_LOG10 };

struct ew_ctx {
    float *y;
    const float *x;
    float lo, hi;
    enum ew_kind kind;
};

static void ew_range(void *vctx, int64_t i0, int64_t i1, int worker)
{
    (void)worker;
    const struct ew_ctx *c = vctx;
    switch (c->kind) {
    case EW_CLAMP:
        for (int64_t i = i0; i < i1; i++) {
            float v = c->x[i];
            c->y[i] = v < c->lo ? c->lo : v > c->hi ? c->hi : v;
        }
        break;
    case EW_TANH:
        for (int64_t i = i0; i < i1; i++)
            c->y[i] = tanhf(c->x[i]);
        break;
    case EW_LOG10:
        for (int64_t i = i0; i < i1; i++) {
            float v = c->x[i];
            c->y[i] = log10f(v < c->lo ? c->lo : v);
        }
        break;
    }
}

static void op_clamp(struct reel_backend *be, float *y, const float *x, int64_t n, float lo,
                     float hi)
{
    struct ew_ctx c = {y, x, lo, hi, EW_CLAMP};
    reel_pool_for(be->pool, n, EW_GRAIN, ew_range, &c);
}

static void op_tanh(struct reel_backend *be, float *y, const float *x, int64_t n)
{
    struct ew_ctx c = {y, x, 0, 0, EW_TANH};
    reel_pool_for(be->pool, n, EW_GRAIN, ew_range, &c);
}

static void op_log10_clamp(struct reel_backend *be, float *y, const float *x, int64_t n,
                           float floor_v)
{
    struct ew_ctx c = {y, x, floor_v, 0, EW_LOG10};
    reel_pool_for(be->pool, n, EW_GRAIN, ew_range, &c);
}

static void avg_planes(void *vctx, int64_t p0, int64_t p1, int worker)
{
    (void)worker;
    const struct plane_ctx *c = vctx;
    for (int64_t p = p0; p < p1; p++) {
        const float *x = c->x + p * c->len;
        float *y = c->y + p * c->out_len;
        for (int64_t o = 0; o < c->out_len; o++) {
            float s = 0.0f;
            for (int k = 0; k < c->ratio; k++)
                s += x[o * c->ratio + k];
            y[o] = s / (float)c->ratio;
        }
    }
}

static void op_avg_pool1d(struct reel_backend *be, float *y, const float *x, int64_t planes,
                          int64_t len, int k)
{
    if (k <= 0 || len / k <= 0)
        return;
    struct plane_ctx c = {.y = y, .x = x, .len = len, .out_len = len / k, .ratio = k};
    reel_pool_for(be->pool, planes, EW_GRAIN / len + 1, avg_planes, &c);
}

static void nearest_planes(void *vctx, int64_t p0, int64_t p1, int worker)
{
    (void)worker;
    const struct plane_ctx *c = vctx;
    for (int64_t p = p0; p < p1; p++) {
        const float *x = c->x + p * c->len;
        float *y = c->y + p * c->out_len;
        for (int64_t i = 0; i < c->len; i++)
            for (int r = 0; r < c->ratio; r++)
                y[i * c->ratio + r] = x[i];
    }
}

static void op_upsample_nearest1d(struct reel_backend *be, float *y, const float *x,
                                  int64_t planes, int64_t len, int factor)
{
    if (len <= 0 || factor <= 0)
        return;
    struct plane_ctx c = {.y = y, .x = x, .len = len, .out_len = len * factor, .ratio = factor};
    reel_pool_for(be->pool, planes, EW_GRAIN / (len * factor) + 1, nearest_planes, &c);
}

/* ------------------------------------------------------------------ STFT */

struct mag_ctx {
    float *y;
    const float *re, *im;
    float eps;
};

static void mag_range(void *vctx, int64_t i0, int64_t i1, int worker)
{
    (void)worker;
    const struct mag_ctx *c = vctx;
    for (int64_t i = i0; i < i1; i++)
        c->y[i] = sqrtf(c->re[i] * c->re[i] + c->im[i] * c->im[i] + c->eps);
}

static int op_stft_mag(struct reel_backend *be, float *y, const float *x, int64_t len, int n_fft,
                       int hop, const float *window, float eps, struct reel_err *err)
{
    if (n_fft <= 0 || hop <= 0 || len < n_fft)
        return reel_errf(err, REEL_E_MODEL,
                         "stft: %lld samples, n_fft %d, hop %d: need n_fft <= samples",
                         (long long)len, n_fft, hop);
    int64_t nb = n_fft / 2 + 1, T = 1 + (len - n_fft) / hop, N = n_fft;
    float *basis = malloc(sizeof(float) * (size_t)(2 * nb * N));
    float *frames = malloc(sizeof(float) * (size_t)(N * T));
    float *spec = malloc(sizeof(float) * (size_t)(2 * nb * T));
    double *tab = malloc(sizeof(double) * (size_t)(2 * N));
    if (!basis || !frames || !spec || !tab) {
        free(basis);
        free(frames);
        free(spec);
        free(tab);
        return reel_errf(err, REEL_E_OTHER, "stft: out of memory");
    }
    /* angles reduced mod n_fft so every entry is as exact as one cos/sin */
    for (int64_t m = 0; m < N; m++) {
        double a = 2.0 * M_PI * (double)m / (double)N;
        tab[m] = cos(a);
        tab[N + m] = sin(a);
    }
    for (int64_t f = 0; f < nb; f++)
        for (int64_t n = 0; n < N; n++) {
            int64_t m = (f * n) % N;
            basis[f * N + n] = (float)tab[m];
            basis[(nb + f) * N + n] = (float)-tab[N + m];
        }
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < T; t++)
            frames[n * T + t] = x[t * hop + n] * window[n];
    cpu_sgemm_parallel(be, 0, 0, 2 * nb, T, N, 1.0f, basis, N, frames, T, 0.0f, spec, T);
    struct mag_ctx c = {y, spec, spec + nb * T, eps};
    reel_pool_for(be->pool, nb * T, EW_GRAIN, mag_range, &c);
    free(basis);
    free(frames);
    free(spec);
    free(tab);
    return REEL_OK;
}

void cpu_audio_fill_ops(struct reel_backend *be)
{
    be->conv1d = op_conv1d;
    be->conv_transpose1d = op_conv_transpose1d;
    be->snake_beta = op_snake_beta;
    be->aa_upsample = op_aa_upsample;
    be->aa_downsample = op_aa_downsample;
    be->pixel_norm = op_pixel_norm;
    be->channel_affine = op_channel_affine;
    be->clamp = op_clamp;
    be->tanh_act = op_tanh;
    be->log10_clamp = op_log10_clamp;
    be->avg_pool1d = op_avg_pool1d;
    be->upsample_nearest1d = op_upsample_nearest1d;
    be->stft_mag = op_stft_mag;
}
