/* CPU 3D convolution as im2col + GEMM with bounded scratch. The output of
 * one frame is [cout, ho*wo]; it is cut into tasks of up to CONV_COLS output
 * pixels, and each task walks the reduction axis (cin*kt*kh*kw) in slices:
 * unfold a slice of input patches into a small column buffer, then
 * accumulate W[:, slice] . col into the output. Scratch per worker is one
 * slice (~2 MB) whatever the resolution. A pointwise conv (1x1x1, stride 1,
 * no padding) is a plain GEMM on the input. Non-f32 weights are converted
 * once per call, in blocks of output channels when they are very large. */
#include <stdlib.h>

#include "kernels/cpu_internal.h"

#define CONV_COLS 512                       /* output pixels per task */
#define CONV_SLICE_FLOATS (512 * 1024)      /* per-worker column buffer: 2 MB */
#define CONV_WEIGHT_FLOATS (8 * 1024 * 1024) /* converted weight block: 32 MB */

struct conv_ctx {
    struct reel_backend *be;
    const struct reel_conv3d_geom *g;
    float *y;
    const float *x, *bias;
    const float *wf;       /* f32 weight rows [co0, co0 + cos) x K */
    int64_t co0, cos;      /* output-channel block */
    int64_t to, ho, wo, P; /* output frame size, P = ho * wo */
    int64_t K, taps;       /* K = cin * taps, taps = kt * kh * kw */
    int64_t cols, slice;   /* pixels per task, K rows per slice */
    int64_t tasks_per_frame;
    int pointwise;
};

/* Fills col[r - k0][0..np) for reduction rows r in [k0, k1) and output
 * pixels [p0, p0 + np) of output frame ot. */
static void im2col(const struct conv_ctx *c, int64_t ot, int64_t p0, int64_t np, int64_t k0,
                   int64_t k1, float *col)
{
    const struct reel_conv3d_geom *g = c->g;
    int64_t plane = g->h * g->w, vol = g->t * plane;
    for (int64_t r = k0; r < k1; r++) {
        float *dst = col + (r - k0) * np;
        int64_t ci = r / c->taps, tap = r % c->taps;
        int dt = (int)(tap / (g->kh * g->kw)), dh = (int)(tap / g->kw % g->kh), dw = (int)(tap % g->kw);
        int64_t it = ot * g->st - g->pt0 + dt;
        if (it < 0 || it >= g->t) {
            memset(dst, 0, (size_t)np * sizeof(float));
            continue;
        }
        const float *src = c->x + ci * vol + it * plane;
        int64_t p = p0, end = p0 + np;
        while (p < end) {
            int64_t oh = p / c->wo, ow = p % c->wo;
            int64_t run = c->wo - ow < end - p ? c->wo - ow : end - p; /* rest of this output row */
            int64_t ih = oh * g->sh - g->ph0 + dh;
            if (ih < 0 || ih >= g->h) {
                memset(dst, 0, (size_t)run * sizeof(float));
            } else {
                const float *srow = src + ih * g->w;
                if (g->sw == 1) {
                    /* contiguous source: zero the padded ends, copy the middle */
                    int64_t iw0 = ow - g->pw0 + dw;
                    int64_t lo = iw0 < 0 ? -iw0 : 0;
                    if (lo > run)
                        lo = run;
                    int64_t hi = g->w - iw0 < run ? g->w - iw0 : run;
                    if (hi < lo)
                        hi = lo;
                    memset(dst, 0, (size_t)lo * sizeof(float));
                    memcpy(dst + lo, srow + iw0 + lo, (size_t)(hi - lo) * sizeof(float));
                    memset(dst + hi, 0, (size_t)(run - hi) * sizeof(float));
                } else {
                    for (int64_t j = 0; j < run; j++) {
                        int64_t iw = (ow + j) * g->sw - g->pw0 + dw;
                        dst[j] = iw >= 0 && iw < g->w ? srow[iw] : 0.0f;
                    }
                }
            }
            dst += run;
            p += run;
        }
    }
}

static void conv_tasks(void *vctx, int64_t t0, int64_t t1, int worker)
{
    const struct conv_ctx *c = vctx;
    struct cpu_impl *im = c->be->impl;
    float *col = im->work[worker].p;
    int64_t ldc = c->to * c->P;
    for (int64_t t = t0; t < t1; t++) {
        int64_t ot = t / c->tasks_per_frame;
        int64_t p0 = (t % c->tasks_per_frame) * c->cols;
        int64_t np = c->P - p0 < c->cols ? c->P - p0 : c->cols;
        float *y = c->y + c->co0 * ldc + ot * c->P + p0;
        if (c->pointwise) {
            /* x is [cin, P]: same row length as y */
            cpu_sgemm_serial(0, 0, c->cos, np, c->K, 1.0f, c->wf, c->K, c->x + p0, c->P,
                             0.0f, y, ldc);
        } else {
            for (int64_t k0 = 0; k0 < c->K; k0 += c->slice) {
                int64_t k1 = k0 + c->slice < c->K ? k0 + c->slice : c->K;
                im2col(c, ot, p0, np, k0, k1, col);
                cpu_sgemm_serial(0, 0, c->cos, np, k1 - k0, 1.0f, c->wf + k0, c->K, col, np,
                                 k0 ? 1.0f : 0.0f, y, ldc);
            }
        }
        if (c->bias)
            for (int64_t co = 0; co < c->cos; co++) {
                float b = c->bias[c->co0 + co], *row = y + co * ldc;
                for (int64_t j = 0; j < np; j++)
                    row[j] += b;
            }
    }
}

struct wconv_ctx {
    const struct reel_tensor *w;
    int64_t K, row0;
    float *dst;
};

static void convert_weight_rows(void *vctx, int64_t r0, int64_t r1, int worker)
{
    (void)worker;
    const struct wconv_ctx *c = vctx;
    float *dst = c->dst + r0 * c->K;
    const float *src = cpu_weight_rows(c->w, c->K, c->row0 + r0, r1 - r0, dst);
    if (src != dst)
        memcpy(dst, src, (size_t)((r1 - r0) * c->K) * sizeof(float));
}

int cpu_conv3d(struct reel_backend *be, float *y, const float *x, const struct reel_conv3d_geom *g,
               const struct reel_tensor *w, const float *bias, struct reel_err *err)
{
    const char *wname = w->name ? w->name : "(conv weight)";
    if (!cpu_is_float_dtype(w->dtype))
        return reel_errf(err, REEL_E_MODEL, "%s: conv weight has dtype %s, expected F32/BF16/F16",
                         wname, reel_dtype_name(w->dtype));
    if (g->cin <= 0 || g->t <= 0 || g->h <= 0 || g->w <= 0 || g->cout <= 0 || g->kt <= 0 ||
        g->kh <= 0 || g->kw <= 0 || g->st <= 0 || g->sh <= 0 || g->sw <= 0 || g->pt0 < 0 ||
        g->pt1 < 0 || g->ph0 < 0 || g->ph1 < 0 || g->pw0 < 0 || g->pw1 < 0)
        return reel_errf(err, REEL_E_MODEL, "%s: invalid conv3d geometry", wname);
    int64_t to = (g->t + g->pt0 + g->pt1 - g->kt) / g->st + 1;
    int64_t ho = (g->h + g->ph0 + g->ph1 - g->kh) / g->sh + 1;
    int64_t wo = (g->w + g->pw0 + g->pw1 - g->kw) / g->sw + 1;
    if (g->t + g->pt0 + g->pt1 < g->kt || g->h + g->ph0 + g->ph1 < g->kh ||
        g->w + g->pw0 + g->pw1 < g->kw)
        return reel_errf(err, REEL_E_MODEL, "%s: conv3d kernel larger than the padded input",
                         wname);
    int64_t taps = (int64_t)g->kt * g->kh * g->kw, K = g->cin * taps;
    if (reel_tensor_numel(w) != g->cout * K)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: conv weight has %lld elements, expected %lld x %lld x %d x %d x %d",
                         wname, (long long)reel_tensor_numel(w), (long long)g->cout,
                         (long long)g->cin, g->kt, g->kh, g->kw);

    struct conv_ctx c = {0};
    c.be = be;
    c.g = g;
    c.y = y;
    c.x = x;
    c.bias = bias;
    c.to = to;
    c.ho = ho;
    c.wo = wo;
    c.P = ho * wo;
    c.K = K;
    c.taps = taps;
    c.pointwise = taps == 1 && g->st == 1 && g->sh == 1 && g->sw == 1 && g->pt0 == 0 &&
                  g->pt1 == 0 && g->ph0 == 0 && g->ph1 == 0 && g->pw0 == 0 && g->pw1 == 0;
    int threads = reel_pool_threads(be->pool);
    if (c.pointwise) { /* frames are contiguous: one long pixel axis */
        c.P = to * ho * wo;
        c.to = 1;
    }
    /* Enough tasks for every thread to get a couple, but never narrow ones. */
    c.cols = c.P < CONV_COLS ? c.P : CONV_COLS;
    while (c.cols > 64 && c.to * ((c.P + c.cols - 1) / c.cols) < 2 * threads)
        c.cols = (c.cols / 2 + 15) / 16 * 16;
    c.tasks_per_frame = (c.P + c.cols - 1) / c.cols;
    c.slice = CONV_SLICE_FLOATS / c.cols;
    if (c.slice < 16)
        c.slice = 16;
    if (c.slice > K)
        c.slice = K;
    if (!c.pointwise && cpu_reserve_scratch(be, (size_t)(c.slice * c.cols)) != 0)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory for conv3d columns", wname);

    int64_t block = g->cout;
    if (w->dtype != REEL_F32 && block * K > CONV_WEIGHT_FLOATS) {
        block = CONV_WEIGHT_FLOATS / K;
        if (block < 1)
            block = 1;
    }
    float *wbuf = NULL;
    if (w->dtype != REEL_F32 && !(wbuf = cpu_scratch(be, -1, (size_t)(block * K))))
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory converting conv weight", wname);

    for (int64_t co0 = 0; co0 < g->cout; co0 += block) {
        c.co0 = co0;
        c.cos = g->cout - co0 < block ? g->cout - co0 : block;
        if (wbuf) {
            struct wconv_ctx wc = {w, K, co0, wbuf};
            reel_pool_for(be->pool, c.cos, 16384 / K + 1, convert_weight_rows, &wc);
            c.wf = wbuf;
        } else {
            c.wf = (const float *)w->data + co0 * K;
        }
        reel_pool_for(be->pool, c.to * c.tasks_per_frame, 1, conv_tasks, &c);
    }
    return REEL_OK;
}
