/* The op table: the only door from networks to a compute backend. Networks
 * call be->op(be, ...); the CPU backend (kernels/cpu_backend.c) is the
 * reference every other backend is tested against.
 *
 * Conventions: activations are f32, row-major, contiguous unless a stride is
 * given. Weight matrices are struct reel_tensor in their stored dtype
 * (f32/bf16/f16) and are converted inside the kernel, never copied whole.
 * Small parameter vectors (biases, norm gammas) are passed as f32.
 * Every op whose output has the shape of its input (norms, activations,
 * softmax, elementwise, modulate) may be called in place (y == x). */
#ifndef REEL_BACKEND_H
#define REEL_BACKEND_H

#include <stdint.h>

#include "kernels/err.h"
#include "kernels/tensor.h"

struct reel_pool;

/* Geometry of a 3D convolution on channel-first x[cin, t, h, w] with zero
 * padding given per side (front/back in time, top/bottom, left/right).
 * Output: y[cout, to, ho, wo] with to = (t + pt0 + pt1 - kt) / st + 1, etc. */
struct reel_conv3d_geom {
    int64_t cin, t, h, w;
    int64_t cout;
    int kt, kh, kw;
    int st, sh, sw;
    int pt0, pt1, ph0, ph1, pw0, pw1;
};

/* Geometry of a 1D convolution on x[cin, len] (audio): kernel k with
 * dilation, zero padding pad0/pad1 (conv1d), or the cropping pad0/pad1 of a
 * transposed conv (ConvTranspose1d padding p is pad0 = pad1 = p). */
struct reel_conv1d_geom {
    int64_t cin, len, cout;
    int k, stride, dilation;
    int pad0, pad1;
};

struct reel_backend {
    const char *name;
    struct reel_pool *pool;
    void *impl;
    void (*destroy)(struct reel_backend *be);

    /* C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C, row-major f32. */
    void (*sgemm)(struct reel_backend *be, int trans_a, int trans_b, int64_t m, int64_t n,
                  int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                  int64_t ldb, float beta, float *c, int64_t ldc);

    /* torch Linear: y[m, n] = x[m, k] . w[n, k]^T + bias[n]. n = w->shape[0],
     * k = numel(w) / n (so a [out, in, 1, 1, 1] conv weight works too).
     * bias may be NULL. Fails (naming the tensor) on a non-float dtype. */
    int (*linear)(struct reel_backend *be, float *y, const float *x, int64_t m, int64_t k,
                  const struct reel_tensor *w, const float *bias, struct reel_err *err);

    /* LayerNorm over the last dim; gamma/beta may be NULL (no affine). */
    void (*layernorm)(struct reel_backend *be, float *y, const float *x, int64_t rows,
                      int64_t dim, const float *gamma, const float *beta, float eps);
    /* RMSNorm over the last dim: y = x * rsqrt(mean(x^2) + eps) * gamma (gamma may be NULL). */
    void (*rmsnorm)(struct reel_backend *be, float *y, const float *x, int64_t rows,
                    int64_t dim, const float *gamma, float eps);
    /* Channel-first L2 norm (Wan VAE RMS_norm, F.normalize semantics):
     * x[c, s]; y[:, j] = x[:, j] / max(||x[:, j]||_2, 1e-12) * sqrt(c) * gamma + bias.
     * bias may be NULL. */
    void (*channel_rmsnorm)(struct reel_backend *be, float *y, const float *x, int64_t c,
                            int64_t s, const float *gamma, const float *bias);

    void (*gelu_tanh)(struct reel_backend *be, float *y, const float *x, int64_t n);
    void (*silu)(struct reel_backend *be, float *y, const float *x, int64_t n);
    /* Row-wise softmax over n columns. */
    void (*softmax)(struct reel_backend *be, float *y, const float *x, int64_t rows, int64_t n);

    /* Elementwise; y may alias an input. */
    void (*add)(struct reel_backend *be, float *y, const float *a, const float *b, int64_t n);
    void (*mul)(struct reel_backend *be, float *y, const float *a, const float *b, int64_t n);
    /* y = alpha * a + beta * b */
    void (*axpby)(struct reel_backend *be, float *y, float alpha, const float *a, float beta,
                  const float *b, int64_t n);
    /* adaLN: y[r, d] = x[r, d] * (1 + scale[r * mod_stride + d]) + shift[r * mod_stride + d].
     * mod_stride 0 broadcasts one vector over all rows. y may alias x. */
    void (*modulate)(struct reel_backend *be, float *y, const float *x, int64_t rows,
                     int64_t dim, const float *shift, const float *scale, int64_t mod_stride);
    /* Gated residual: x[r, d] += y[r, d] * gate[r * gate_stride + d] (gate_stride 0 = broadcast). */
    void (*gated_add)(struct reel_backend *be, float *x, const float *y, int64_t rows,
                      int64_t dim, const float *gate, int64_t gate_stride);

    /* Softmax attention, heads interleaved in the row: q[lq, heads*hd] with
     * row stride q_stride, k and v [lk, heads*hd] with row stride kv_stride,
     * out[lq, heads*hd] with row stride out_stride.
     * scores = scale * q.k^T (+ bias[h, i, j] if bias != NULL); keys j >= k_len
     * are masked out (k_len = lk for none). Must not allocate O(lq*lk*heads). */
    int (*attention)(struct reel_backend *be, float *out, const float *q, const float *k,
                     const float *v, int64_t lq, int64_t lk, int64_t k_len, int heads,
                     int head_dim, int64_t q_stride, int64_t kv_stride, int64_t out_stride,
                     float scale, const float *bias, struct reel_err *err);

    /* Rotary embedding on adjacent pairs (x[2i], x[2i+1]) in place:
     * x[l, heads, hd] with row stride `stride`; cos/sin tables [l, hd/2]
     * (per token, shared by heads). */
    void (*rope)(struct reel_backend *be, float *x, int64_t l, int heads, int head_dim,
                 int64_t stride, const float *cos_t, const float *sin_t);

    /* 3D convolution (see struct reel_conv3d_geom); w is [cout, cin, kt, kh, kw]
     * in any float dtype; bias f32 or NULL. 2D and 1D convs are the kt=1 /
     * kh=1 cases. */
    int (*conv3d)(struct reel_backend *be, float *y, const float *x,
                  const struct reel_conv3d_geom *g, const struct reel_tensor *w,
                  const float *bias, struct reel_err *err);

    /* Nearest 2x upsampling of `planes` planes of h x w -> 2h x 2w. */
    void (*upsample_nearest2x)(struct reel_backend *be, float *y, const float *x,
                               int64_t planes, int64_t h, int64_t w);
    /* Zero-insert upsampling along the last axis: y[p, i*factor] = x[p, i],
     * other entries 0; y is [planes, len*factor]. */
    void (*upsample_zero_insert)(struct reel_backend *be, float *y, const float *x,
                                 int64_t planes, int64_t len, int factor);

    /* ---- Audio ops (kernels/cpu_audio.c): mel, MMAudio VAE, BigVGAN. ---- */

    /* conv1d: w [cout, cin, k] any float dtype, bias f32 or NULL; y[cout, lo] with
     * lo = (len + pad0 + pad1 - dilation * (k - 1) - 1) / stride + 1. */
    int (*conv1d)(struct reel_backend *be, float *y, const float *x,
                  const struct reel_conv1d_geom *g, const struct reel_tensor *w,
                  const float *bias, struct reel_err *err);
    /* ConvTranspose1d: w [cin, cout, k] (PyTorch layout); y[cout, lo] with
     * lo = (len - 1) * stride + dilation * (k - 1) + 1 - pad0 - pad1. */
    int (*conv_transpose1d)(struct reel_backend *be, float *y, const float *x,
                            const struct reel_conv1d_geom *g, const struct reel_tensor *w,
                            const float *bias, struct reel_err *err);
    /* SnakeBeta on x[c, len] with linear-scale alpha[c], beta[c]:
     * y = x + (1 / (beta + 1e-9)) * sin(alpha * x)^2 (Snake: beta = alpha). */
    void (*snake_beta)(struct reel_backend *be, float *y, const float *x, int64_t c,
                       int64_t len, const float *alpha, const float *beta);
    /* alias_free_torch UpSample1d: replicate-pad taps/ratio - 1 per side, depthwise
     * transposed conv (stride ratio) with filter[taps], times ratio, cropped to
     * y[planes, len * ratio]. */
    void (*aa_upsample)(struct reel_backend *be, float *y, const float *x, int64_t planes,
                        int64_t len, int ratio, const float *filter, int taps);
    /* alias_free_torch DownSample1d (LowPassFilter1d): replicate-pad
     * taps/2 - (taps even) left and taps/2 right, depthwise conv with stride
     * ratio: y[planes, (len + taps - (taps even) - taps) / ratio + 1]. */
    void (*aa_downsample)(struct reel_backend *be, float *y, const float *x, int64_t planes,
                          int64_t len, int ratio, const float *filter, int taps);
    /* EDM2 pixel norm over channels of x[c, s]:
     * y[:, j] = x[:, j] / (eps + ||x[:, j]||_2 / sqrt(c)). */
    void (*pixel_norm)(struct reel_backend *be, float *y, const float *x, int64_t c, int64_t s,
                       float eps);
    /* Per-channel affine of x[c, s]: y[i, j] = x[i, j] * scale[i] + shift[i]. */
    void (*channel_affine)(struct reel_backend *be, float *y, const float *x, int64_t c,
                           int64_t s, const float *scale, const float *shift);
    /* y = min(max(x, lo), hi) */
    void (*clamp)(struct reel_backend *be, float *y, const float *x, int64_t n, float lo,
                  float hi);
    void (*tanh_act)(struct reel_backend *be, float *y, const float *x, int64_t n);
    /* y = log10(max(x, floor)) */
    void (*log10_clamp)(struct reel_backend *be, float *y, const float *x, int64_t n,
                        float floor);
    /* avg_pool1d with kernel = stride = k: y[planes, len / k]. */
    void (*avg_pool1d)(struct reel_backend *be, float *y, const float *x, int64_t planes,
                       int64_t len, int k);
    /* Nearest upsampling along the last axis: y[p, i * factor + r] = x[p, i]. */
    void (*upsample_nearest1d)(struct reel_backend *be, float *y, const float *x,
                               int64_t planes, int64_t len, int factor);
    /* STFT magnitude (center=False, onesided): frames t = 0 .. 1 + (len - n_fft) / hop - 1
     * of x[t * hop .. + n_fft) times window[n_fft]; y[n_fft / 2 + 1, frames] =
     * sqrt(re^2 + im^2 + eps). */
    int (*stft_mag)(struct reel_backend *be, float *y, const float *x, int64_t len, int n_fft,
                    int hop, const float *window, float eps, struct reel_err *err);
};

/* The CPU backend: OpenBLAS sgemm + our own kernels on a thread pool.
 * threads <= 0: one per CPU. Returns NULL on OOM. */
struct reel_backend *reel_backend_cpu_create(int threads);
/* Fills the audio ops of a CPU backend (kernels/cpu_audio.c). */
void cpu_audio_fill_ops(struct reel_backend *be);
static inline void reel_backend_destroy(struct reel_backend *be)
{
    if (be)
        be->destroy(be);
}

#endif
