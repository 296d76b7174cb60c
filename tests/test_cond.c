/* Frame conditioning (stages/stage_cond.c, stages/image_read.c).
 *
 * Without arguments: unit checks - the Wan i2v mask layout for hand-worked
 * cases, and the scale-to-cover / centre-crop geometry of image_read.
 *
 * With arguments, a checker for tests/t_cond.sh on a render's
 * cond.safetensors:
 *   test_cond check COND.safetensors FRAMES CONFIG.yaml [IMAGE | zeros]
 * FRAMES: comma-separated video frames that hold an image ("" for none);
 * the mask must be exactly the 0/1 pattern for them. IMAGE: the latent of
 * latent frame 0 must equal the config's VAE encoder run here on that image
 * alone (one frame) - the encoder is causal, so latent frame 0 sees video
 * frame 0 only - and differ from the encoding of a mid-grey frame. zeros:
 * the whole latent must equal the encoding of an all-zero (mid-grey) video
 * of the clip's length.
 *   test_cond pin COND.safetensors DENOISE.safetensors pinned|free
 * pinned (dit.pin_first_latent, frame 0 given): the denoised latent's first
 * latent frame is bit for bit the condition latent's, and some later frame
 * is not (the rest was still generated); free: the first latent frame
 * differs from the condition latent's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/safetensors.h"
#include "pipeline/spec.h"
#include "stages/image_read.h"
#include "stages/stage_cond.h"
#include "stages/wan_vae.h"
#include "tests/test.h"

/* ------------------------------------------------------------ unit checks */

/* One latent-frame/channel cell set to 1 in an otherwise zero [S, Fl] mask. */
struct cell {
    int c, j;
};

static void mask_case(const char *name, int S, int F, const int *frames, int n_frames,
                      const struct cell *ones, int n_ones)
{
    int Fl = (F - 1) / S + 1;
    unsigned char *has = calloc((size_t)F, 1);
    float *m = malloc(sizeof(float) * (size_t)S * (size_t)Fl * 2);
    for (int i = 0; i < n_frames; i++)
        has[frames[i]] = 1;
    reel_cond_mask(has, S, Fl, 2, m);
    int bad = 0, bc = -1, bj = -1;
    for (int c = 0; c < S; c++) {
        for (int j = 0; j < Fl; j++) {
            float want = 0;
            for (int k = 0; k < n_ones; k++)
                if (ones[k].c == c && ones[k].j == j)
                    want = 1;
            for (int x = 0; x < 2; x++)
                if (m[(c * Fl + j) * 2 + x] != want && !bad) {
                    bad = 1;
                    bc = c;
                    bj = j;
                }
        }
    }
    CHECK(!bad, name, "channel %d latent frame %d differs", bc, bj);
    free(has);
    free(m);
}

static void test_mask(void)
{
    /* F = 17 video frames, 5 latent frames. Sequence: m0 x4, m1 .. m16;
     * channel c of latent frame j is element 4j + c, i.e. frame 4j + c - 3
     * for j >= 1. */
    const int f0[] = {0};
    const struct cell c0[] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}};
    mask_case("mask: image at frame 0 fills all 4 channels of latent frame 0", 4, 17, f0, 1, c0, 4);
    const int f16[] = {16};
    const struct cell c16[] = {{3, 4}};
    mask_case("mask: last frame (16) is channel 3 of latent frame 4", 4, 17, f16, 1, c16, 1);
    const int f8[] = {8};
    const struct cell c8[] = {{3, 2}};
    mask_case("mask: frame 8 is channel 3 of latent frame 2", 4, 17, f8, 1, c8, 1);
    const int f1[] = {1, 5, 6};
    const struct cell c1[] = {{0, 1}, {0, 2}, {1, 2}};
    mask_case("mask: frames 1, 5, 6 are (c0, j1), (c0, j2), (c1, j2)", 4, 17, f1, 3, c1, 3);
    mask_case("mask: no images, all zero", 4, 17, NULL, 0, NULL, 0);
    const int fone[] = {0};
    mask_case("mask: a 1-frame clip", 4, 1, fone, 1, c0, 4);
    /* stride 2 (a VAE that halves time), F = 17, 9 latent frames: sequence
     * m0 m0 m1 .. m16; channel c of latent frame j is frame 2j + c - 1 */
    mask_case("mask stride 2: image at frame 0 fills both channels of latent frame 0", 2, 17, f0, 1,
              c0, 2);
    const struct cell s16[] = {{1, 8}};
    mask_case("mask stride 2: last frame (16) is channel 1 of latent frame 8", 2, 17, f16, 1, s16, 1);
    const struct cell s1[] = {{0, 1}, {0, 3}, {1, 3}};
    mask_case("mask stride 2: frames 1, 5, 6 are (c0, j1), (c0, j3), (c1, j3)", 2, 17, f1, 3, s1, 3);
}

static void cover_case(int sw0, int sh0, int W, int H, int esw, int esh, int ex, int ey)
{
    int sw, sh, x0, y0;
    reel_image_cover(sw0, sh0, W, H, &sw, &sh, &x0, &y0);
    char name[128];
    snprintf(name, sizeof name, "cover: %dx%d onto %dx%d scales to %dx%d, crop at (%d, %d)", sw0,
             sh0, W, H, esw, esh, ex, ey);
    CHECK(sw == esw && sh == esh && x0 == ex && y0 == ey, name, "got %dx%d at (%d, %d)", sw, sh,
          x0, y0);
}

static void test_cover(void)
{
    cover_case(96, 48, 64, 64, 128, 64, 32, 0);
    cover_case(48, 96, 64, 64, 64, 128, 0, 32);
    cover_case(100, 100, 64, 64, 64, 64, 0, 0);
    cover_case(1920, 1080, 64, 32, 64, 36, 0, 2);
    cover_case(3, 2, 64, 64, 96, 64, 16, 0);
    cover_case(640, 480, 1280, 704, 1280, 960, 0, 128);
}

/* ------------------------------------------------------- the t_cond checker */

static int parse_frames(const char *s, int F, unsigned char *has)
{
    while (s && *s) {
        char *end;
        long f = strtol(s, &end, 10);
        if (end == s || f < 0 || f >= F)
            return -1;
        has[f] = 1;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return 0;
}

static int load_f32(const struct reel_st_file *f, const char *name, int64_t shape[4], float **out)
{
    const struct reel_tensor *t = reel_st_find(f, name);
    if (!t || t->dtype != REEL_F32 || t->ndim != 4)
        return -1;
    memcpy(shape, t->shape, 4 * sizeof(int64_t));
    int64_t n = reel_tensor_numel(t);
    *out = malloc(sizeof(float) * (size_t)n);
    if (!*out)
        return -1;
    reel_tensor_to_f32(t, 0, n, *out);
    return 0;
}

static int checker(int argc, char **argv)
{
    const char *cond_path = argv[2], *frames = argv[3], *cfg_path = argv[4];
    const char *what = argc > 5 ? argv[5] : NULL;
    struct reel_err err = {0};
    struct reel_st_file *f = NULL;
    if (reel_st_open(cond_path, &f, &err)) {
        CHECK(0, "cond.safetensors opens", "%s", err.msg);
        TEST_EXIT();
    }
    int64_t ms[4], ls[4];
    float *mask = NULL, *lat = NULL;
    int okm = load_f32(f, "mask", ms, &mask) == 0, okl = load_f32(f, "latent", ls, &lat) == 0;
    reel_st_close(f);
    /* S mask channels: the config's VAE temporal stride */
    int64_t S = 0;
    {
        struct reel_model_config mc = {0};
        struct reel_diag diag = {0};
        if (reel_model_config_load(cfg_path, NULL, &mc, &diag) == 0)
            S = mc.vae.temporal_stride;
        reel_diag_print(&diag, cfg_path);
        reel_diag_free(&diag);
        reel_model_config_free(&mc);
    }
    if (!CHECK(okm && okl && S > 0 && ms[0] == S && ls[1] == ms[1] && ls[2] == ms[2] &&
                   ls[3] == ms[3],
               "cond.safetensors holds mask [S, F, h, w] (S the VAE's temporal stride) and latent "
               "[z, F, h, w]", "mask %s (%lld channels, S %lld), latent %s", okm ? "ok" : "missing",
               okm ? (long long)ms[0] : 0LL, (long long)S, okl ? "ok" : "missing")) {
        free(mask);
        free(lat);
        TEST_EXIT();
    }
    const int64_t Fl = ms[1], hw = ms[2] * ms[3], F = S * (Fl - 1) + 1, z = ls[0];
    unsigned char *has = calloc((size_t)F, 1);
    char name[256];
    snprintf(name, sizeof name, "mask is exactly the pattern of frames {%s} (%lld frames)", frames,
             (long long)F);
    if (parse_frames(frames, (int)F, has)) {
        CHECK(0, name, "bad frame list '%s'", frames);
    } else {
        int64_t bad = -1;
        for (int64_t c = 0; c < S && bad < 0; c++)
            for (int64_t j = 0; j < Fl && bad < 0; j++) {
                int64_t k = S * j + c;
                float want = has[k < S ? 0 : k - (S - 1)] ? 1.0f : 0.0f;
                for (int64_t i = 0; i < hw; i++)
                    if (mask[(c * Fl + j) * hw + i] != want) {
                        bad = (c * Fl + j) * hw + i;
                        break;
                    }
            }
        CHECK(bad < 0, name, "element %lld differs", (long long)bad);
    }
    if (what) {
        struct reel_model_config m = {0};
        struct reel_diag diag = {0};
        struct reel_weights *w = NULL;
        struct reel_wan_vae *vae = NULL;
        struct reel_backend *be = reel_backend_cpu_create(1);
        int rc = reel_model_config_load(cfg_path, NULL, &m, &diag);
        reel_diag_print(&diag, cfg_path);
        reel_diag_free(&diag);
        if (!rc)
            rc = reel_weights_open(m.vae.weights, &w, &err);
        if (!rc)
            rc = reel_wan_vae_create(&m.vae.cfg, w, be, &vae, &err);
        int64_t H = ms[2] * m.vae.spatial_stride, W = ms[3] * m.vae.spatial_stride;
        int zeros = !strcmp(what, "zeros");
        int64_t T = zeros ? F : 1;
        float *video = calloc((size_t)(3 * T * H * W), sizeof(float));
        float *ref = malloc(sizeof(float) * (size_t)(z * (zeros ? Fl : 1) * hw));
        float *grey = malloc(sizeof(float) * (size_t)(z * hw));
        if (!rc && !zeros)
            rc = reel_image_read(what, (int)W, (int)H, video, &err);
        if (!rc)
            rc = reel_wan_vae_encode(vae, video, T, H, W, m.vae.latent_mean,
                                     m.vae.latent_inv_std, ref, &err);
        if (!rc && !zeros) {
            memset(video, 0, sizeof(float) * (size_t)(3 * H * W));
            rc = reel_wan_vae_encode(vae, video, 1, H, W, m.vae.latent_mean,
                                     m.vae.latent_inv_std, grey, &err);
        }
        if (rc) {
            CHECK(0, "reference encoding", "%s", err.msg[0] ? err.msg : "model config errors");
        } else {
            /* latent frame 0 of channel k sits at lat[(k * Fl + 0) * hw] */
            double maxd = 0, maxg = 0;
            int64_t frames_cmp = zeros ? Fl : 1;
            for (int64_t k = 0; k < z; k++)
                for (int64_t j = 0; j < frames_cmp; j++)
                    for (int64_t i = 0; i < hw; i++) {
                        double a = lat[(k * Fl + j) * hw + i];
                        double b = ref[(k * frames_cmp + j) * hw + i];
                        if (fabs(a - b) > maxd)
                            maxd = fabs(a - b);
                        if (!zeros && fabs(a - grey[k * hw + i]) > maxg)
                            maxg = fabs(a - grey[k * hw + i]);
                    }
            if (zeros) {
                CHECK(maxd <= 1e-5, "cond latent with no images equals the encoding of a zero "
                      "video", "max |diff| %g", maxd);
            } else {
                snprintf(name, sizeof name,
                         "cond latent frame 0 equals the VAE encoding of %s alone", what);
                CHECK(maxd <= 1e-5, name, "max |diff| %g", maxd);
                CHECK(maxg > 1e-3, "cond latent frame 0 differs from a mid-grey frame's",
                      "max |diff| %g", maxg);
            }
        }
        free(video);
        free(ref);
        free(grey);
        reel_wan_vae_destroy(vae);
        reel_weights_close(w);
        reel_backend_destroy(be);
        reel_model_config_free(&m);
    }
    free(has);
    free(mask);
    free(lat);
    TEST_EXIT();
}

/* Largest |a - b| over latent frames [f0, f1) of two [z, F, h, w] latents. */
static float latent_frames_diff(const float *a, const float *b, const int64_t *shape, int64_t f0,
                                int64_t f1)
{
    const int64_t F = shape[1], hw = shape[2] * shape[3];
    float d = 0.0f;
    for (int64_t c = 0; c < shape[0]; c++)
        for (int64_t i = f0 * hw; i < f1 * hw; i++) {
            float e = fabsf(a[c * F * hw + i] - b[c * F * hw + i]);
            d = e > d ? e : d;
        }
    return d;
}

static int pin_checker(char **argv)
{
    const char *want = argv[4];
    struct reel_err err = {0};
    struct reel_st_file *fc = NULL, *fd = NULL;
    int64_t sc[4] = {0}, sd[4] = {0};
    float *cond = NULL, *den = NULL;
    int ok = !reel_st_open(argv[2], &fc, &err) && !reel_st_open(argv[3], &fd, &err) &&
             load_f32(fc, "latent", sc, &cond) == 0 && load_f32(fd, "latent", sd, &den) == 0 &&
             !memcmp(sc, sd, sizeof sc) && sc[1] > 1;
    reel_st_close(fc);
    reel_st_close(fd);
    if (CHECK(ok, "cond and denoise latents open, of one shape [z, F > 1, h, w]", "%s",
              err.msg[0] ? err.msg : "missing or of other shapes")) {
        float d0 = latent_frames_diff(cond, den, sc, 0, 1);
        float drest = latent_frames_diff(cond, den, sc, 1, sc[1]);
        if (!strcmp(want, "pinned")) {
            CHECK(d0 == 0.0f, "pinned: the first latent frame is the condition latent's",
                  "max |diff| %g", d0);
            CHECK(drest > 0.1f, "pinned: the later latent frames are generated",
                  "max |diff| to the condition latent %g", drest);
        } else {
            CHECK(d0 > 0.1f, "free: the first latent frame is generated, not the condition's",
                  "max |diff| %g", d0);
        }
    }
    free(cond);
    free(den);
    TEST_EXIT();
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "check"))
        return checker(argc, argv);
    if (argc == 5 && !strcmp(argv[1], "pin") &&
        (!strcmp(argv[4], "pinned") || !strcmp(argv[4], "free")))
        return pin_checker(argv);
    if (argc > 1) {
        fprintf(stderr, "usage: test_cond [check COND.safetensors FRAMES CONFIG [IMAGE|zeros]]\n"
                        "       test_cond pin COND.safetensors DENOISE.safetensors pinned|free\n");
        return 2;
    }
    test_mask();
    test_cover();
    TEST_EXIT();
}
