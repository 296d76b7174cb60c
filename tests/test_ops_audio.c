/* The audio ops of the CPU backend (kernels/cpu_audio.c) against naive
 * double-precision loops written here: dilated/strided conv1d (f32 and bf16
 * weights), ConvTranspose1d, SnakeBeta, the alias-free resamplers (written
 * as the reference does them: pad, transposed conv / conv, crop), pixel
 * norm, the elementwise helpers and the STFT magnitude, on 1 and 3 threads. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/tensor.h"
#include "tests/test.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

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

static double max_err(const float *got, const double *ref, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= e))
            e = isnan(d) ? INFINITY : d;
    }
    return e;
}

static struct reel_tensor f32_tensor(float *d, int64_t a, int64_t b, int64_t c)
{
    struct reel_tensor t = {REEL_F32, 3, {a, b, c}, d, "w"};
    return t;
}

static void test_conv1d(struct reel_backend *be, int threads)
{
    static const struct {
        int cin, len, cout, k, stride, dil, p0, p1;
    } cases[] = {
        {5, 37, 7, 3, 1, 1, 1, 1},   {3, 50, 4, 7, 1, 5, 15, 15}, {6, 29, 5, 4, 2, 1, 0, 2},
        {4, 700, 9, 11, 1, 3, 15, 15}, {8, 33, 6, 1, 1, 1, 0, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int bf = 0; bf < 2; bf++) {
            struct reel_conv1d_geom g = {cases[ci].cin, cases[ci].len, cases[ci].cout,
                                         cases[ci].k,   cases[ci].stride, cases[ci].dil,
                                         cases[ci].p0,  cases[ci].p1};
            int64_t nw = g.cout * g.cin * g.k;
            int64_t lo = (g.len + g.pad0 + g.pad1 - (int64_t)g.dilation * (g.k - 1) - 1) / g.stride + 1;
            float *x = rand_vec(g.cin * g.len, 1), *w = rand_vec(nw, 0.5f), *b = rand_vec(g.cout, 1);
            uint16_t *wb = malloc(sizeof(uint16_t) * (size_t)nw);
            for (int64_t i = 0; i < nw; i++) {
                wb[i] = reel_f32_to_bf16(w[i]);
                if (bf)
                    w[i] = reel_bf16_to_f32(wb[i]);
            }
            struct reel_tensor wt = f32_tensor(w, g.cout, g.cin, g.k);
            if (bf) {
                wt.dtype = REEL_BF16;
                wt.data = wb;
            }
            double *ref = calloc((size_t)(g.cout * lo), sizeof(double));
            for (int64_t o = 0; o < g.cout; o++)
                for (int64_t t = 0; t < lo; t++) {
                    double s = b[o];
                    for (int64_t c = 0; c < g.cin; c++)
                        for (int k = 0; k < g.k; k++) {
                            int64_t i = t * g.stride - g.pad0 + (int64_t)k * g.dilation;
                            if (i >= 0 && i < g.len)
                                s += (double)w[(o * g.cin + c) * g.k + k] * x[c * g.len + i];
                        }
                    ref[o * lo + t] = s;
                }
            float *y = malloc(sizeof(float) * (size_t)(g.cout * lo));
            struct reel_err err = {0};
            int rc = be->conv1d(be, y, x, &g, &wt, b, &err);
            char name[96];
            snprintf(name, sizeof name, "conv1d case %zu %s, %d threads", ci, bf ? "bf16" : "f32",
                     threads);
            double e = rc ? INFINITY : max_err(y, ref, g.cout * lo);
            CHECK(e < 1e-5, name, "rc %d (%s), max err %.3g", rc, err.msg, e);
            free(x), free(w), free(b), free(wb), free(ref), free(y);
        }
    /* bad geometry and dtype are refused */
    float w[6] = {0}, x[4] = {0}, y[8];
    struct reel_tensor wt = f32_tensor(w, 2, 1, 3);
    struct reel_conv1d_geom g = {1, 4, 2, 3, 1, 0, 1, 1};
    struct reel_err err = {0};
    CHECK(be->conv1d(be, y, x, &g, &wt, NULL, &err) == REEL_E_MODEL, "conv1d refuses dilation 0",
          "%s", err.msg);
    g.dilation = 1;
    g.k = 4;
    memset(&err, 0, sizeof err);
    CHECK(be->conv1d(be, y, x, &g, &wt, NULL, &err) == REEL_E_MODEL,
          "conv1d refuses a weight of the wrong size", "%s", err.msg);
    g.k = 3;
    wt.dtype = REEL_I64;
    memset(&err, 0, sizeof err);
    CHECK(be->conv1d(be, y, x, &g, &wt, NULL, &err) == REEL_E_MODEL, "conv1d refuses I64 weights",
          "%s", err.msg);
}

static void test_conv_transpose1d(struct reel_backend *be, int threads)
{
    static const struct {
        int cin, len, cout, k, stride, pad;
    } cases[] = {{6, 20, 3, 8, 4, 2}, {4, 33, 2, 4, 2, 1}, {3, 7, 5, 3, 1, 1}, {2, 9, 1, 5, 3, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        struct reel_conv1d_geom g = {cases[ci].cin, cases[ci].len, cases[ci].cout, cases[ci].k,
                                     cases[ci].stride, 1, cases[ci].pad, cases[ci].pad};
        int64_t lo = (g.len - 1) * g.stride + g.k - 2 * g.pad0;
        float *x = rand_vec(g.cin * g.len, 1), *w = rand_vec(g.cin * g.cout * g.k, 0.5f);
        float *b = rand_vec(g.cout, 1);
        double *ref = calloc((size_t)(g.cout * lo), sizeof(double));
        for (int64_t o = 0; o < g.cout; o++)
            for (int64_t t = 0; t < lo; t++)
                ref[o * lo + t] = b[o];
        for (int64_t c = 0; c < g.cin; c++)
            for (int64_t i = 0; i < g.len; i++)
                for (int64_t o = 0; o < g.cout; o++)
                    for (int k = 0; k < g.k; k++) {
                        int64_t pos = i * g.stride + k - g.pad0;
                        if (pos >= 0 && pos < lo)
                            ref[o * lo + pos] +=
                                (double)x[c * g.len + i] * w[(c * g.cout + o) * g.k + k];
                    }
        struct reel_tensor wt = f32_tensor(w, g.cin, g.cout, g.k);
        float *y = malloc(sizeof(float) * (size_t)(g.cout * lo));
        struct reel_err err = {0};
        int rc = be->conv_transpose1d(be, y, x, &g, &wt, b, &err);
        char name[96];
        snprintf(name, sizeof name, "conv_transpose1d case %zu, %d threads", ci, threads);
        double e = rc ? INFINITY : max_err(y, ref, g.cout * lo);
        CHECK(e < 1e-5, name, "rc %d (%s), max err %.3g", rc, err.msg, e);
        free(x), free(w), free(b), free(ref), free(y);
    }
}

/* alias_free_torch, literally: pad, transposed conv / conv, crop. */
static void ref_aa_up(const float *x, int64_t len, int r, const float *f, int T, double *y)
{
    int64_t pad = T / r - 1, pl = pad * r + (T - r) / 2;
    int64_t plen = len + 2 * pad, full = (plen - 1) * r + T;
    double *o = calloc((size_t)full, sizeof(double));
    for (int64_t i = 0; i < plen; i++) {
        int64_t src = i - pad < 0 ? 0 : i - pad >= len ? len - 1 : i - pad;
        for (int k = 0; k < T; k++)
            o[i * r + k] += (double)x[src] * f[k];
    }
    for (int64_t n = 0; n < len * r; n++)
        y[n] = r * o[n + pl];
    free(o);
}

static void test_resample_snake(struct reel_backend *be, int threads)
{
    const int T = 12, r = 2;
    int64_t planes = 5, len = 41;
    float *f = rand_vec(T, 0.5f), *x = rand_vec(planes * len, 2);
    double *ref = malloc(sizeof(double) * (size_t)(planes * len * r));
    for (int64_t p = 0; p < planes; p++)
        ref_aa_up(x + p * len, len, r, f, T, ref + p * len * r);
    float *y = malloc(sizeof(float) * (size_t)(planes * len * r));
    be->aa_upsample(be, y, x, planes, len, r, f, T);
    char name[96];
    snprintf(name, sizeof name, "aa_upsample, %d threads", threads);
    double e = max_err(y, ref, planes * len * r);
    CHECK(e < 1e-5, name, "max err %.3g", e);

    /* down: replicate pad 5 left, 6 right, stride-2 conv */
    int64_t L2 = len * r, lo = (L2 + 11 - T) / r + 1;
    double *rd = malloc(sizeof(double) * (size_t)(planes * lo));
    for (int64_t p = 0; p < planes; p++)
        for (int64_t o = 0; o < lo; o++) {
            double s = 0;
            for (int k = 0; k < T; k++) {
                int64_t i = o * r + k - 5;
                i = i < 0 ? 0 : i >= L2 ? L2 - 1 : i;
                s += (double)f[k] * y[p * L2 + i];
            }
            rd[p * lo + o] = s;
        }
    float *z = malloc(sizeof(float) * (size_t)(planes * lo));
    be->aa_downsample(be, z, y, planes, L2, r, f, T);
    snprintf(name, sizeof name, "aa_downsample (%lld -> %lld), %d threads", (long long)L2,
             (long long)lo, threads);
    e = max_err(z, rd, planes * lo);
    CHECK(lo == len && e < 1e-5, name, "out %lld, max err %.3g", (long long)lo, e);

    float *alpha = rand_vec(planes, 1), *beta = rand_vec(planes, 1);
    for (int64_t p = 0; p < planes; p++) {
        alpha[p] = expf(alpha[p]);
        beta[p] = expf(beta[p]);
    }
    double *rs = malloc(sizeof(double) * (size_t)(planes * len));
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < len; i++) {
            double v = x[p * len + i], s = sin(v * alpha[p]);
            rs[p * len + i] = v + s * s / (beta[p] + 1e-9);
        }
    be->snake_beta(be, z, x, planes, len, alpha, beta);
    snprintf(name, sizeof name, "snake_beta, %d threads", threads);
    e = max_err(z, rs, planes * len);
    CHECK(e < 2e-5, name, "max err %.3g", e);
    free(f), free(x), free(ref), free(y), free(rd), free(z), free(alpha), free(beta), free(rs);
}

static void test_small_ops(struct reel_backend *be, int threads)
{
    char name[96];
    int64_t c = 13, s = 70;
    float *x = rand_vec(c * s, 3), *y = malloc(sizeof(float) * (size_t)(c * s * 2));
    double *ref = malloc(sizeof(double) * (size_t)(c * s * 2));
    /* pixel norm */
    for (int64_t j = 0; j < s; j++) {
        double n2 = 0;
        for (int64_t i = 0; i < c; i++)
            n2 += (double)x[i * s + j] * x[i * s + j];
        double d = 1e-4 + sqrt(n2) / sqrt((double)c);
        for (int64_t i = 0; i < c; i++)
            ref[i * s + j] = x[i * s + j] / d;
    }
    be->pixel_norm(be, y, x, c, s, 1e-4f);
    snprintf(name, sizeof name, "pixel_norm, %d threads", threads);
    double e = max_err(y, ref, c * s);
    CHECK(e < 1e-5, name, "max err %.3g", e);
    /* channel affine */
    float *sc = rand_vec(c, 2), *sh = rand_vec(c, 2);
    for (int64_t i = 0; i < c * s; i++)
        ref[i] = (double)x[i] * sc[i / s] + sh[i / s];
    be->channel_affine(be, y, x, c, s, sc, sh);
    snprintf(name, sizeof name, "channel_affine, %d threads", threads);
    e = max_err(y, ref, c * s);
    CHECK(e < 1e-5, name, "max err %.3g", e);
    /* clamp, tanh, log10 */
    for (int64_t i = 0; i < c * s; i++)
        ref[i] = x[i] < -1 ? -1 : x[i] > 2 ? 2 : x[i];
    be->clamp(be, y, x, c * s, -1, 2);
    snprintf(name, sizeof name, "clamp, %d threads", threads);
    CHECK(max_err(y, ref, c * s) == 0, name, "differs");
    for (int64_t i = 0; i < c * s; i++)
        ref[i] = tanh(x[i]);
    be->tanh_act(be, y, x, c * s);
    e = max_err(y, ref, c * s);
    snprintf(name, sizeof name, "tanh_act, %d threads", threads);
    CHECK(e < 1e-6, name, "max err %.3g", e);
    for (int64_t i = 0; i < c * s; i++)
        ref[i] = log10(fabs(x[i]) < 1e-2 ? 1e-2 : fabs(x[i]));
    float *ax = malloc(sizeof(float) * (size_t)(c * s));
    for (int64_t i = 0; i < c * s; i++)
        ax[i] = fabsf(x[i]);
    be->log10_clamp(be, y, ax, c * s, 1e-2f);
    e = max_err(y, ref, c * s);
    snprintf(name, sizeof name, "log10_clamp, %d threads", threads);
    CHECK(e < 1e-6, name, "max err %.3g", e);
    /* avg pool (odd length drops the last sample) and nearest upsampling */
    int64_t len = 9;
    for (int64_t p = 0; p < c; p++)
        for (int64_t o = 0; o < len / 2; o++)
            ref[p * (len / 2) + o] = ((double)x[p * len + 2 * o] + x[p * len + 2 * o + 1]) / 2;
    be->avg_pool1d(be, y, x, c, len, 2);
    e = max_err(y, ref, c * (len / 2));
    snprintf(name, sizeof name, "avg_pool1d, %d threads", threads);
    CHECK(e < 1e-6, name, "max err %.3g", e);
    for (int64_t p = 0; p < c; p++)
        for (int64_t i = 0; i < 2 * len; i++)
            ref[p * 2 * len + i] = x[p * len + i / 2];
    be->upsample_nearest1d(be, y, x, c, len, 2);
    snprintf(name, sizeof name, "upsample_nearest1d, %d threads", threads);
    CHECK(max_err(y, ref, c * 2 * len) == 0, name, "differs");
    free(x), free(y), free(ref), free(sc), free(sh), free(ax);
}

static void test_stft(struct reel_backend *be, int threads)
{
    const int N = 64, hop = 16;
    int64_t len = 300, T = 1 + (len - N) / hop, nb = N / 2 + 1;
    float *x = rand_vec(len, 1), *win = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++)
        win[i] = (float)(0.5 - 0.5 * cos(2 * M_PI * i / N));
    double *ref = malloc(sizeof(double) * (size_t)(nb * T));
    for (int64_t f = 0; f < nb; f++)
        for (int64_t t = 0; t < T; t++) {
            double re = 0, im = 0;
            for (int n = 0; n < N; n++) {
                double v = (double)x[t * hop + n] * win[n], a = 2 * M_PI * (double)(f * n) / N;
                re += v * cos(a);
                im -= v * sin(a);
            }
            ref[f * T + t] = sqrt(re * re + im * im + 1e-9);
        }
    float *y = malloc(sizeof(float) * (size_t)(nb * T));
    struct reel_err err = {0};
    int rc = be->stft_mag(be, y, x, len, N, hop, win, 1e-9f, &err);
    char name[64];
    snprintf(name, sizeof name, "stft_mag, %d threads", threads);
    double e = rc ? INFINITY : max_err(y, ref, nb * T);
    CHECK(e < 1e-5, name, "rc %d (%s), max err %.3g", rc, err.msg, e);
    memset(&err, 0, sizeof err);
    CHECK(be->stft_mag(be, y, x, N - 1, N, hop, win, 1e-9f, &err) == REEL_E_MODEL,
          "stft_mag refuses fewer samples than n_fft", "%s", err.msg);
    free(x), free(win), free(ref), free(y);
}

int main(void)
{
    int counts[2] = {1, 3};
    for (int i = 0; i < 2; i++) {
        struct reel_backend *be = reel_backend_cpu_create(counts[i]);
        if (!CHECK(be != NULL, "cpu backend", "create failed"))
            TEST_EXIT();
        test_conv1d(be, counts[i]);
        test_conv_transpose1d(be, counts[i]);
        test_resample_snake(be, counts[i]);
        test_small_ops(be, counts[i]);
        test_stft(be, counts[i]);
        reel_backend_destroy(be);
    }
    TEST_EXIT();
}
