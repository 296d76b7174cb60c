/* The default model (configs/reel-default.yaml, weights in
 * configs/reel-default/) through the real networks at its default render
 * sizes: every weight file holds exactly the tensor table its loader binds
 * (names and shapes), the text encoder encodes prompts with the shipped
 * tokenizer, the Ovi fusion model (video + audio towers, frame-conditioned
 * video input) runs one step on the default 128x128 x 49-frame latent
 * (16x16 x 25: the VAE halves time) with the clip's 95 audio latents, the Wan VAE decodes latent
 * frames to 128x128 pictures, and the audio VAE + vocoder turn the audio
 * latents into PCM of the clip's length.
 *
 * Untrained (placeholder) weights give noise, so the checks are shapes,
 * finite outputs of sane magnitude, bit-for-bit determinism, and that each
 * input reaches what it must (the prompt both towers, each tower the other,
 * the conditioning channels the video). They hold for trained weights too;
 * whether the files are placeholders must match the config's `trained`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/bigvgan.h"
#include "audio/mmaudio_vae.h"
#include "kernels/backend.h"
#include "kernels/rng.h"
#include "kernels/safetensors.h"
#include "pipeline/model_config.h"
#include "pipeline/spec.h"
#include "stages/ovi_fusion.h"
#include "stages/text_encode.h"
#include "stages/tokenizer.h"
#include "stages/wan_vae.h"
#include "tests/test.h"

struct stats {
    int finite;
    double rms, max_abs, spread; /* spread: max - min */
};

static struct stats stats_of(const float *x, int64_t n)
{
    struct stats s = {1, 0, 0, 0};
    double sum2 = 0, lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            s.finite = 0;
            continue;
        }
        sum2 += (double)x[i] * x[i];
        if (fabs(x[i]) > s.max_abs)
            s.max_abs = fabs(x[i]);
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    s.rms = n > 0 ? sqrt(sum2 / (double)n) : 0;
    s.spread = n > 0 && hi >= lo ? hi - lo : 0;
    return s;
}

static void check_output(const char *what, const float *x, int64_t n, double rms_lo,
                         double rms_hi)
{
    struct stats s = stats_of(x, n);
    printf("# %s: rms %.4g, max |x| %.4g\n", what, s.rms, s.max_abs);
    char name[160];
    snprintf(name, sizeof name, "%s: finite, not constant, rms in [%g, %g]", what, rms_lo, rms_hi);
    CHECK(s.finite && s.spread > 0 && s.rms >= rms_lo && s.rms <= rms_hi, name,
          "finite %d, rms %g, max |x| %g, spread %g over %lld values", s.finite, s.rms,
          s.max_abs, s.spread, (long long)n);
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* ------------------------------------------------------- tensor tables */

/* Walks a network's tensor table against an open weight set: every table
 * tensor must be there with its shape; counts what was seen. */
struct table_check {
    const struct reel_weights *w;
    int tensors, missing, wrong_shape;
    int64_t params;
    char first_bad[192];
    int video, audio; /* fusion: tensors under video_model. / audio_model. */
};

static void check_tensor(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    struct table_check *k = ctx;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    k->tensors++;
    k->params += n;
    k->video += !strncmp(name, "video_model.", 12);
    k->audio += !strncmp(name, "audio_model.", 12);
    const struct reel_tensor *t = reel_weights_find(k->w, name);
    int ok = t && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->shape[d] == shape[d];
    if (!t)
        k->missing++;
    else if (!ok)
        k->wrong_shape++;
    if ((!t || !ok) && !k->first_bad[0])
        snprintf(k->first_bad, sizeof k->first_bad, "%s %s", name,
                 t ? "has another shape" : "is missing");
}

static void check_table(const char *label, const struct table_check *k, int want_tensors,
                        int64_t want_params, const struct reel_weights *w)
{
    char name[192];
    snprintf(name, sizeof name,
             "%s: the file holds exactly the %d table tensors (%lld parameters), shapes equal",
             label, want_tensors, (long long)want_params);
    CHECK(k->tensors == want_tensors && k->params == want_params && !k->missing &&
              !k->wrong_shape && reel_weights_count(w) == want_tensors,
          name, "table %d tensors / %lld params, file %d tensors, %d missing, %d of another "
          "shape (first: %s)", k->tensors, (long long)k->params, reel_weights_count(w),
          k->missing, k->wrong_shape, k->first_bad);
}

/* `reel init-weights` marks its files; trained weights must not be marked. */
static void check_placeholder_mark(const char *label, const char *path, int trained,
                                   const char *network)
{
    struct reel_st_file *f = NULL;
    struct reel_err err = {0};
    char name[192];
    snprintf(name, sizeof name, "%s: %s", label,
             trained ? "no placeholder mark (trained: true)"
                     : "marked as init-weights placeholder for reel-default");
    if (reel_st_open(path, &f, &err)) {
        CHECK(0, name, "%s", err.msg);
        return;
    }
    const char *mark = reel_st_meta(f, "reel.placeholder");
    const char *model = reel_st_meta(f, "reel.model");
    const char *net = reel_st_meta(f, "reel.network");
    if (trained)
        CHECK(!mark, name, "the file says '%s'", mark);
    else
        CHECK(mark && model && !strcmp(model, "reel-default") && net && !strcmp(net, network),
              name, "reel.placeholder %s, reel.model %s, reel.network %s (want %s)",
              mark ? "set" : "absent", model ? model : "absent", net ? net : "absent", network);
    reel_st_close(f);
}

/* ------------------------------------------------------------ VAE frames */

struct frames {
    float *data; /* every decoded frame, [3, n, H, W] blocks appended */
    int64_t frame_size, total, calls, max_frames;
    int64_t first[8], n[8];
};

static int frame_cb(void *ctx, const float *frames, int64_t first, int64_t n,
                    struct reel_err *err)
{
    struct frames *f = ctx;
    if (f->calls < 8) {
        f->first[f->calls] = first;
        f->n[f->calls] = n;
    }
    f->calls++;
    if (f->total + n > f->max_frames)
        return reel_errf(err, REEL_E_OTHER, "more frames than expected");
    /* [3, n, H, W] -> frame-major copy of each frame's 3 planes */
    const int64_t plane = f->frame_size / 3;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            memcpy(f->data + (f->total + i) * f->frame_size + c * plane,
                   frames + ((int64_t)c * n + i) * plane, sizeof(float) * (size_t)plane);
    f->total += n;
    return REEL_OK;
}

/* ------------------------------------------------------------ the fusion */

struct fusion_run {
    struct reel_ovi_fusion *model;
    struct reel_text_encoder *te;
    int64_t F, H, W, L;     /* latent frames, height, width; audio latents */
    int64_t vtokens;
    int64_t nv_in, nv_out, na;
};

/* One forward: vid_in [in_dim, F, H, W], aud [L, in_dim] at t = 700 with the
 * context of prompt for both towers. */
static int fusion_step(const struct fusion_run *r, const char *prompt, const float *vid_in,
                       const float *aud, float *vid_out, float *aud_out, struct reel_err *err)
{
    float *ctx = NULL;
    int64_t len = 0;
    int rc = reel_text_encode(r->te, prompt, &ctx, &len, err);
    if (rc)
        return rc;
    const float t = 700.0f;
    struct reel_ovi_input in = {
        .vid = vid_in, .frames = r->F, .height = r->H, .width = r->W,
        .audio = aud, .audio_len = r->L,
        .vid_t = &t, .audio_t = &t,
        .vid_context = ctx, .audio_context = ctx,
        .vid_context_len = len, .audio_context_len = len,
        .vid_seq_len = r->vtokens, .audio_seq_len = r->L,
    };
    rc = reel_ovi_fusion_forward(r->model, &in, vid_out, aud_out, err);
    free(ctx);
    return rc;
}

static void fusion_checks(const struct reel_model_config *m, const struct reel_weights *w,
                          struct reel_backend *be, struct reel_text_encoder *te)
{
    const struct reel_wan_dit_config *vc = &m->dit.cfg;
    struct reel_ovi_config oc;
    reel_model_config_ovi(m, &oc);
    struct reel_err err = {0};
    struct fusion_run r = {.te = te};
    if (!CHECK(!reel_ovi_fusion_create(&oc, w, be, &r.model, &err),
               "Ovi fusion model builds from fusion.safetensors", "%s", err.msg))
        return;
    r.F = (m->defaults.frames - 1) / m->vae.temporal_stride + 1;
    r.H = m->defaults.height / m->vae.spatial_stride;
    r.W = m->defaults.width / m->vae.spatial_stride;
    r.L = reel_model_audio_latents(m, m->defaults.frames / m->defaults.fps);
    r.vtokens = r.F * (r.H / vc->patch[1]) * (r.W / vc->patch[2]);
    const int64_t cells = r.F * r.H * r.W;
    r.nv_in = vc->in_dim * cells;
    r.nv_out = vc->out_dim * cells;
    r.na = r.L * m->audio.tower.in_dim;
    CHECK(r.F == 25 && r.H == 16 && r.W == 16 && r.L == 95 && r.vtokens == 400,
          "default clip: 16x16 latents x 25 frames (400 video tokens of 4x4), 95 audio latents",
          "%lldx%lld x %lld frames, %lld tokens, %lld audio latents", (long long)r.H,
          (long long)r.W, (long long)r.F, (long long)r.vtokens, (long long)r.L);

    float *vin = malloc(sizeof(float) * (size_t)r.nv_in);
    float *vin2 = malloc(sizeof(float) * (size_t)r.nv_in);
    float *aud = malloc(sizeof(float) * (size_t)r.na);
    float *aud2 = malloc(sizeof(float) * (size_t)r.na);
    float *v1 = calloc((size_t)r.nv_out, sizeof(float));
    float *v2 = calloc((size_t)r.nv_out, sizeof(float));
    float *a1 = calloc((size_t)r.na, sizeof(float)), *a2 = calloc((size_t)r.na, sizeof(float));
    if (!CHECK(vin && vin2 && aud && aud2 && v1 && v2 && a1 && a2, "fusion buffers", "no memory"))
        goto done;
    /* [x_t (noise) | mask | cond latent]: first frame given, as an i2v job */
    const int64_t oc_n = (int64_t)vc->out_dim * cells, mc = vc->in_dim - 2 * vc->out_dim;
    reel_rng_normal(11, 0, 0, oc_n, vin);
    memset(vin + oc_n, 0, sizeof(float) * (size_t)(mc * cells));
    for (int64_t c = 0; c < mc; c++)
        for (int64_t i = 0; i < r.H * r.W; i++)
            vin[oc_n + c * cells + i] = 1.0f; /* latent frame 0 of each mask channel */
    memset(vin + oc_n + mc * cells, 0, sizeof(float) * (size_t)oc_n);
    reel_rng_normal(12, 0, 0, (int64_t)vc->out_dim * r.H * r.W, vin + oc_n + mc * cells);
    reel_rng_normal(11, 1, 0, r.na, aud);

    const char *p1 = "a red circle bounces off the walls, a low hum";
    memset(&err, 0, sizeof err);
    if (!CHECK(!fusion_step(&r, p1, vin, aud, v1, a1, &err),
               "fusion forward at the default sizes ([34,25,16,16] video, [95,8] audio)", "%s",
               err.msg))
        goto done;
    check_output("fusion video output [16,25,16,16]", v1, r.nv_out, 0.01, 100);
    check_output("fusion audio output [95,8]", a1, r.na, 0.01, 100);

    /* the same inputs again: the same bits */
    memset(&err, 0, sizeof err);
    if (CHECK(!fusion_step(&r, p1, vin, aud, v2, a2, &err), "fusion forward, second run", "%s",
              err.msg))
        CHECK(!memcmp(v1, v2, sizeof(float) * (size_t)r.nv_out) &&
                  !memcmp(a1, a2, sizeof(float) * (size_t)r.na),
              "fusion forward is deterministic (both outputs bit-identical on a second run)",
              "max differences video %g, audio %g", max_diff(v1, v2, r.nv_out),
              max_diff(a1, a2, r.na));

    /* another prompt reaches both towers */
    memset(&err, 0, sizeof err);
    if (CHECK(!fusion_step(&r, "a blue square spins in silence", vin, aud, v2, a2, &err),
              "fusion forward with a second prompt", "%s", err.msg)) {
        double dv = max_diff(v1, v2, r.nv_out), da = max_diff(a1, a2, r.na);
        printf("# second prompt: max differences video %.4g, audio %.4g\n", dv, da);
        CHECK(dv > 1e-6 && da > 1e-6, "the prompt reaches both towers",
              "max differences video %g, audio %g", dv, da);
    }

    /* the towers are fused: other audio changes the video and vice versa */
    reel_rng_normal(13, 1, 0, r.na, aud2);
    memset(&err, 0, sizeof err);
    if (CHECK(!fusion_step(&r, p1, vin, aud2, v2, a2, &err), "fusion forward with other audio",
              "%s", err.msg)) {
        double dv = max_diff(v1, v2, r.nv_out);
        printf("# other audio: max video difference %.4g\n", dv);
        CHECK(dv > 1e-6, "the audio latent reaches the video output (fused blocks)",
              "max video difference %g", dv);
    }
    memcpy(vin2, vin, sizeof(float) * (size_t)r.nv_in);
    reel_rng_normal(14, 0, 0, oc_n, vin2);
    memset(&err, 0, sizeof err);
    if (CHECK(!fusion_step(&r, p1, vin2, aud, v2, a2, &err), "fusion forward with other video",
              "%s", err.msg)) {
        double da = max_diff(a1, a2, r.na);
        printf("# other video: max audio difference %.4g\n", da);
        CHECK(da > 1e-6, "the video latent reaches the audio output (fused blocks)",
              "max audio difference %g", da);
    }

    /* frame conditioning: the cond latent channels (4 mask + 4 latent) are input */
    memcpy(vin2, vin, sizeof(float) * (size_t)r.nv_in);
    reel_rng_normal(15, 0, 0, (int64_t)vc->out_dim * r.H * r.W, vin2 + oc_n + mc * cells);
    memset(&err, 0, sizeof err);
    if (CHECK(!fusion_step(&r, p1, vin2, aud, v2, a2, &err),
              "fusion forward with another conditioning frame", "%s", err.msg)) {
        double dv = max_diff(v1, v2, r.nv_out);
        printf("# other conditioning frame: max video difference %.4g\n", dv);
        CHECK(dv > 1e-6, "the conditioning latent channels reach the video output",
              "max video difference %g", dv);
    }
done:
    free(vin);
    free(vin2);
    free(aud);
    free(aud2);
    free(v1);
    free(v2);
    free(a1);
    free(a2);
    reel_ovi_fusion_destroy(r.model);
}

/* ------------------------------------------------------------- Wan VAE */

static void vae_checks(const struct reel_model_config *m, const struct reel_weights *w,
                       struct reel_backend *be)
{
    struct reel_wan_vae *vae = NULL;
    struct reel_err err = {0};
    if (!CHECK(!reel_wan_vae_create(&m->vae.cfg, w, be, &vae, &err), "VAE builds", "%s",
               err.msg))
        return;
    const int s = reel_wan_vae_spatial_factor(vae), tf = reel_wan_vae_temporal_factor(vae);
    CHECK(s == m->vae.spatial_stride && tf == m->vae.temporal_stride && s == 8 && tf == 2,
          "VAE strides 8x8 spatial, 2 temporal (as the config)", "%d / %d", s, tf);
    /* the default latent size, two latent frames -> 1 + 2 pictures */
    const int64_t z = m->vae.cfg.z_dim, h = m->defaults.height / s, wd = m->defaults.width / s;
    const int64_t F = 2, n = z * F * h * wd;
    float *lat = malloc(sizeof(float) * (size_t)n);
    struct frames f1 = {.frame_size = 3 * h * s * wd * s, .max_frames = 1 + tf};
    struct frames f2 = f1;
    f1.data = malloc(sizeof(float) * (size_t)(f1.frame_size * f1.max_frames));
    f2.data = malloc(sizeof(float) * (size_t)(f2.frame_size * f2.max_frames));
    if (!CHECK(lat && f1.data && f2.data, "VAE buffers", "no memory"))
        goto done;
    reel_rng_normal(8, 0, 0, n, lat);
    memset(&err, 0, sizeof err);
    if (!CHECK(!reel_wan_vae_decode(vae, lat, F, h, wd, m->vae.latent_mean, m->vae.latent_inv_std,
                                    frame_cb, &f1, &err),
               "VAE decode of 2 latent frames at 16x16", "%s", err.msg))
        goto done;
    CHECK(f1.calls == 2 && f1.first[0] == 0 && f1.n[0] == 1 && f1.first[1] == 1 &&
              f1.n[1] == tf && f1.total == 1 + tf,
          "VAE decode: latent frame 0 -> 1 picture, frame 1 -> 2 (3 in all)",
          "%lld calls, %lld frames", (long long)f1.calls, (long long)f1.total);
    CHECK(f1.frame_size == 3 * 128 * 128, "VAE pictures are 128x128 RGB (the default size)",
          "%lld values a frame", (long long)f1.frame_size);
    check_output("VAE pictures", f1.data, f1.total * f1.frame_size, 0.01, 100);
    /* decoding the same latents again gives the same bits */
    memset(&err, 0, sizeof err);
    if (CHECK(!reel_wan_vae_decode(vae, lat, F, h, wd, m->vae.latent_mean, m->vae.latent_inv_std,
                                   frame_cb, &f2, &err),
              "VAE decode, second run", "%s", err.msg))
        CHECK(f2.total == f1.total &&
                  !memcmp(f1.data, f2.data, sizeof(float) * (size_t)(f1.total * f1.frame_size)),
              "VAE decode is deterministic (bit-identical pictures)", "max difference %g",
              max_diff(f1.data, f2.data, f1.total * f1.frame_size));
    /* the second latent frame's pictures are its own, not a copy of frame 0 */
    CHECK(max_diff(f1.data, f1.data + f1.frame_size, f1.frame_size) > 1e-6,
          "VAE pictures 0 and 1 differ", "identical");
done:
    free(lat);
    free(f1.data);
    free(f2.data);
    reel_wan_vae_destroy(vae);
}

/* ------------------------------------------------------ audio VAE, vocoder */

static void audio_checks(const struct reel_model_config *m, const struct reel_weights *wv,
                         const struct reel_weights *wg, struct reel_backend *be)
{
    struct reel_mmaudio_vae *vae = NULL;
    struct reel_bigvgan *voc = NULL;
    struct reel_err err = {0};
    float *z = NULL, *mel = NULL, *mel2 = NULL, *moments = NULL, *wave = NULL, *wave2 = NULL;
    const int64_t L = reel_model_audio_latents(m, m->defaults.frames / m->defaults.fps);
    const int64_t C = m->audio.vae.cfg.embed_dim, D = m->audio.vae.cfg.data_dim;
    if (!CHECK(!reel_mmaudio_vae_create(&m->audio.vae.cfg, wv, m->audio.vae.weight_norm_removed,
                                        be, &vae, &err),
               "audio VAE builds from audio_vae.safetensors", "%s", err.msg))
        return;
    const int64_t T = reel_mmaudio_vae_mel_len(vae, L);
    CHECK(L == 95 && T == 190 && T == m->audio.mel_per_latent * L &&
              reel_mmaudio_vae_latent_len(vae, T) == L,
          "audio VAE: 95 latents <-> 190 mel frames", "%lld latents -> %lld mel frames",
          (long long)L, (long long)T);
    z = malloc(sizeof(float) * (size_t)(C * L));
    mel = malloc(sizeof(float) * (size_t)(D * T));
    mel2 = malloc(sizeof(float) * (size_t)(D * T));
    moments = malloc(sizeof(float) * (size_t)(2 * C * L));
    if (!CHECK(z && mel && mel2 && moments, "audio buffers", "no memory"))
        goto done;
    reel_rng_normal(21, 0, 0, C * L, z);
    memset(&err, 0, sizeof err);
    if (!CHECK(!reel_mmaudio_vae_decode(vae, z, L, mel, &err),
               "audio VAE decode [8,95] -> [80,190]", "%s", err.msg))
        goto done;
    check_output("log10 mel", mel, D * T, 0.01, 100);
    memset(&err, 0, sizeof err);
    if (CHECK(!reel_mmaudio_vae_decode(vae, z, L, mel2, &err), "audio VAE decode, second run",
              "%s", err.msg))
        CHECK(!memcmp(mel, mel2, sizeof(float) * (size_t)(D * T)),
              "audio VAE decode is deterministic (bit-identical mel)", "max difference %g",
              max_diff(mel, mel2, D * T));
    /* the encoder ships too (audio.vae.encoder: true): mel back to moments */
    memset(&err, 0, sizeof err);
    if (CHECK(m->audio.vae.cfg.encoder, "audio VAE config has the encoder", "encoder: false") &&
        CHECK(!reel_mmaudio_vae_encode(vae, mel, T, moments, &err),
              "audio VAE encode [80,190] -> moments [16,95]", "%s", err.msg))
        check_output("audio VAE moments", moments, 2 * C * L, 1e-3, 1e3);

    memset(&err, 0, sizeof err);
    if (!CHECK(!reel_bigvgan_create(&m->audio.vocoder.cfg, wg, be, &voc, &err),
               "vocoder builds from vocoder.safetensors", "%s", err.msg))
        goto done;
    const int64_t hop = reel_bigvgan_hop(voc), n = T * hop;
    CHECK(hop == m->audio.hop && hop == 256, "vocoder hop 256 samples (4*4*4*4)", "%lld",
          (long long)hop);
    /* the clip's PCM: at most the video's length, short of it by less than one latent */
    const double secs = (double)n / m->audio.sample_rate;
    const double clip = m->defaults.frames / m->defaults.fps;
    CHECK(n == 48640 && m->audio.sample_rate == 16000 && secs <= clip &&
              clip - secs < 1.0 / m->audio.latents_per_second,
          "audio of the default clip: 48640 samples at 16 kHz, within one latent of 49 frames "
          "at 16 fps",
          "%lld samples = %g s for a %g s clip", (long long)n, secs, clip);
    wave = malloc(sizeof(float) * (size_t)n);
    wave2 = malloc(sizeof(float) * (size_t)n);
    if (!CHECK(wave && wave2, "wave buffers", "no memory"))
        goto done;
    memset(&err, 0, sizeof err);
    if (!CHECK(!reel_bigvgan_forward(voc, mel, T, wave, &err), "vocoder [80,190] -> 48640 samples",
               "%s", err.msg))
        goto done;
    struct stats s = stats_of(wave, n);
    printf("# vocoder PCM: rms %.4g, max |x| %.4g\n", s.rms, s.max_abs);
    CHECK(s.finite && s.max_abs <= 1.0 && s.spread > 0 && s.rms > 1e-6,
          "vocoder PCM: finite, in [-1, 1], not silent",
          "finite %d, max |x| %g, rms %g", s.finite, s.max_abs, s.rms);
    memset(&err, 0, sizeof err);
    if (CHECK(!reel_bigvgan_forward(voc, mel, T, wave2, &err), "vocoder, second run", "%s",
              err.msg))
        CHECK(!memcmp(wave, wave2, sizeof(float) * (size_t)n),
              "vocoder is deterministic (bit-identical PCM)", "max difference %g",
              max_diff(wave, wave2, n));
done:
    free(z);
    free(mel);
    free(mel2);
    free(moments);
    free(wave);
    free(wave2);
    reel_bigvgan_destroy(voc);
    reel_mmaudio_vae_destroy(vae);
}

/* ----------------------------------------------------------------- main */

enum { W_FUSION, W_VAE, W_TEXT, W_AUDIO_VAE, W_VOCODER, W_N };

int main(void)
{
    struct reel_err err = {0};
    char *path = NULL;
    if (!CHECK(!reel_model_config_find("configs/reel-default.yaml", NULL, NULL, &path, &err),
               "find configs/reel-default.yaml", "%s", err.msg))
        TEST_EXIT();
    struct reel_model_config m;
    struct reel_diag diag = {0};
    int rc = reel_model_config_load(path, NULL, &m, &diag);
    CHECK(rc == REEL_OK, "reel-default config loads",
          "%s", diag.count ? diag.items[0].text : "error");
    reel_diag_free(&diag);
    free(path);
    if (rc)
        TEST_EXIT();

    /* The architecture the rest relies on. */
    const struct reel_wan_dit_config *vc = &m.dit.cfg;
    CHECK(m.family == REEL_FAMILY_OVI && m.audio.enabled, "reel-default is an ovi model with audio",
          "family %s, audio %d", reel_model_family_name(m.family), m.audio.enabled);
    CHECK(m.vae.temporal_stride == 2, "reel-default's VAE halves time (temporal stride 2)",
          "stride %d", m.vae.temporal_stride);
    CHECK(m.dit.frame_cond && vc->in_dim == 2 * vc->out_dim + m.vae.temporal_stride &&
              vc->in_dim == 34 && vc->out_dim == m.vae.cfg.z_dim,
          "video tower is frame-conditioned: in_dim 34 = 16 noise + 2 mask + 16 cond, "
          "out_dim = VAE z",
          "frame_cond %d, in %d, out %d, z %d", m.dit.frame_cond, vc->in_dim, vc->out_dim,
          m.vae.cfg.z_dim);
    CHECK(m.audio.tower.in_dim == m.audio.vae.cfg.embed_dim &&
              m.audio.tower.out_dim == m.audio.vae.cfg.embed_dim &&
              m.audio.vae.cfg.data_dim == m.audio.vocoder.cfg.num_mels,
          "audio tower in/out = audio VAE latent channels, VAE mels = vocoder mels",
          "tower %d/%d, VAE embed %d, VAE mels %d, vocoder mels %d", m.audio.tower.in_dim,
          m.audio.tower.out_dim, m.audio.vae.cfg.embed_dim, m.audio.vae.cfg.data_dim,
          m.audio.vocoder.cfg.num_mels);
    CHECK(vc->text_dim == m.text_encoder.dim && m.audio.tower.text_dim == m.text_encoder.dim &&
              vc->dim == m.audio.tower.dim && vc->num_layers == m.audio.tower.num_layers,
          "both towers take the umT5 width and pair block by block",
          "text_dim %d / %d vs umT5 %d; dim %d / %d; layers %d / %d", vc->text_dim,
          m.audio.tower.text_dim, m.text_encoder.dim, vc->dim, m.audio.tower.dim,
          vc->num_layers, m.audio.tower.num_layers);
    printf("# reel-default: trained: %s\n", m.trained ? "true" : "false");

    /* Every file holds exactly its network's table. */
    const char *labels[W_N] = {"fusion", "vae", "text_encoder", "audio_vae", "vocoder"};
    const char *networks[W_N] = {"dit", "vae", "text_encoder", "audio_vae", "vocoder"};
    const char *paths[W_N] = {m.dit.weights, m.vae.weights, m.text_encoder.weights,
                              m.audio.vae.weights, m.audio.vocoder.weights};
    struct reel_weights *w[W_N] = {NULL};
    struct reel_model_params p;
    reel_model_config_params(&m, &p);
    int opened = 1;
    for (int i = 0; i < W_N; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s weights open (run make if missing)", labels[i]);
        memset(&err, 0, sizeof err);
        if (!CHECK(!reel_weights_open(paths[i], &w[i], &err), name, "%s", err.msg))
            opened = 0;
        else
            check_placeholder_mark(labels[i], paths[i], m.trained, networks[i]);
    }
    if (w[W_FUSION]) {
        struct reel_ovi_config oc;
        reel_model_config_ovi(&m, &oc);
        struct table_check k = {.w = w[W_FUSION]};
        reel_ovi_tensor_table(&oc, check_tensor, &k);
        check_table("fusion", &k, p.dit_tensors, p.dit, w[W_FUSION]);
        CHECK(k.video > 0 && k.audio > 0 && k.video + k.audio == k.tensors,
              "fusion: every tensor belongs to video_model. or audio_model.",
              "%d video, %d audio of %d", k.video, k.audio, k.tensors);
        const struct reel_tensor *pe =
            reel_weights_find(w[W_FUSION], "video_model.patch_embedding.weight");
        CHECK(pe && pe->ndim == 5 && pe->shape[0] == vc->dim && pe->shape[1] == vc->in_dim && vc->in_dim == 34,
              "fusion: video patch embedding takes 34 channels (16 noise + 2 mask + 16 cond)", "%s",
              pe ? "another shape" : "missing");
    }
    if (w[W_VAE]) {
        struct table_check k = {.w = w[W_VAE]};
        reel_wan_vae_tensor_table(&m.vae.cfg, check_tensor, &k);
        check_table("vae", &k, p.vae_tensors, p.vae, w[W_VAE]);
    }
    if (w[W_TEXT]) {
        /* umT5 has no emitted table: count, and the embedding's shape */
        const struct reel_tensor *emb = reel_weights_find(w[W_TEXT], "token_embedding.weight");
        int64_t params = 0;
        for (int i = 0; i < reel_weights_count(w[W_TEXT]); i++) {
            const struct reel_tensor *t = reel_weights_at(w[W_TEXT], i);
            int64_t n = 1;
            for (int d = 0; d < t->ndim; d++)
                n *= t->shape[d];
            params += n;
        }
        CHECK(reel_weights_count(w[W_TEXT]) == p.text_tensors && params == p.text,
              "text_encoder: the file holds the config's tensor and parameter counts",
              "%d tensors / %lld params, want %d / %lld", reel_weights_count(w[W_TEXT]),
              (long long)params, p.text_tensors, (long long)p.text);
        CHECK(emb && emb->ndim == 2 && emb->shape[0] == m.text_encoder.vocab &&
                  emb->shape[1] == m.text_encoder.dim,
              "text_encoder: token embedding [512, 64]", "%s", emb ? "another shape" : "missing");
    }
    if (w[W_AUDIO_VAE]) {
        struct table_check k = {.w = w[W_AUDIO_VAE]};
        reel_mmaudio_vae_tensor_table(&m.audio.vae.cfg, check_tensor, &k);
        check_table("audio_vae", &k, p.audio_vae_tensors, p.audio_vae, w[W_AUDIO_VAE]);
    }
    if (w[W_VOCODER]) {
        struct table_check k = {.w = w[W_VOCODER]};
        reel_bigvgan_tensor_table(&m.audio.vocoder.cfg, REEL_BIGVGAN_PLAIN, check_tensor, &k);
        check_table("vocoder", &k, p.vocoder_tensors, p.vocoder, w[W_VOCODER]);
    }

    /* The tokenizer's ids must fit the encoder's embedding. */
    struct reel_tokenizer *tok = NULL;
    memset(&err, 0, sizeof err);
    if (CHECK(!reel_tokenizer_open(m.text_encoder.tokenizer, &tok, &err),
              "default tokenizer opens", "%s", err.msg)) {
        int32_t v = reel_tokenizer_vocab_size(tok);
        CHECK(v > 0 && v <= m.text_encoder.vocab, "tokenizer vocabulary fits text_encoder.vocab",
              "tokenizer %d pieces, config vocab %d", (int)v, m.text_encoder.vocab);
        CHECK(reel_tokenizer_eos_id(tok) >= 0, "tokenizer defines an end-of-sentence id", "none");
        reel_tokenizer_close(tok);
    }
    if (!opened)
        goto out;

    struct reel_backend *be = reel_backend_cpu_create(2);
    struct reel_text_encoder *te = NULL;
    if (!CHECK(be != NULL, "CPU backend", "cannot create"))
        goto out;

    /* Text encoder: the loaded weight set, the shipped tokenizer. */
    struct reel_text_encoder_opts o = {
        .weights = w[W_TEXT], .weights_id = "reel-default",
        .tokenizer_path = m.text_encoder.tokenizer, .text_len = m.text_encoder.text_len, .be = be,
    };
    memset(&err, 0, sizeof err);
    if (CHECK(!reel_text_encoder_create(&o, &te, &err), "text encoder builds", "%s", err.msg)) {
        CHECK(reel_text_encoder_dim(te) == m.text_encoder.dim, "text encoder width 64", "%d",
              reel_text_encoder_dim(te));
        float *e1 = NULL, *e2 = NULL, *e3 = NULL;
        int64_t l1 = 0, l2 = 0, l3 = 0;
        const int64_t dim = m.text_encoder.dim;
        memset(&err, 0, sizeof err);
        if (CHECK(!reel_text_encode(te, "a red circle", &e1, &l1, &err),
                  "text encode 'a red circle'", "%s", err.msg)) {
            CHECK(l1 >= 2 && l1 <= m.text_encoder.text_len, "embedding length (tokens + eos)",
                  "%lld", (long long)l1);
            check_output("text embedding", e1, l1 * dim, 0.1, 10);
            if (!reel_text_encode(te, "a red circle", &e2, &l2, &err) &&
                !reel_text_encode(te, "a blue square", &e3, &l3, &err)) {
                CHECK(l2 == l1 && !memcmp(e1, e2, sizeof(float) * (size_t)(l1 * dim)),
                      "text encode is deterministic (bit-identical)", "lengths %lld / %lld",
                      (long long)l1, (long long)l2);
                int64_t k = l1 < l3 ? l1 : l3;
                CHECK(max_diff(e1, e3, k * dim) > 1e-6,
                      "text embeddings of different prompts differ", "identical rows");
            } else {
                CHECK(0, "text encode twice more", "%s", err.msg);
            }
            /* longer than text_len: cut to text_len, eos included */
            char long_prompt[2048] = "";
            for (int i = 0; i < 40; i++)
                strcat(long_prompt, "a red circle ");
            free(e2);
            e2 = NULL;
            memset(&err, 0, sizeof err);
            if (CHECK(!reel_text_encode(te, long_prompt, &e2, &l2, &err),
                      "text encode of a 120-word prompt", "%s", err.msg))
                CHECK(l2 == m.text_encoder.text_len, "a long prompt is cut to text_len (32)",
                      "%lld", (long long)l2);
        }
        free(e1);
        free(e2);
        free(e3);
        fusion_checks(&m, w[W_FUSION], be, te);
    }
    vae_checks(&m, w[W_VAE], be);
    audio_checks(&m, w[W_AUDIO_VAE], w[W_VOCODER], be);

    reel_text_encoder_destroy(te);
    reel_backend_destroy(be);
out:
    for (int i = 0; i < W_N; i++)
        reel_weights_close(w[i]);
    reel_model_config_free(&m);
    TEST_EXIT();
}
