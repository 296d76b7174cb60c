/* The default model's generated weights (configs/reel-default/, written by
 * `make`) through the real networks: every file opens and holds exactly its
 * tensor table, the text encoder encodes a prompt with the generated
 * tokenizer, the DiT runs on a tiny latent with that context, and the VAE
 * decodes one latent frame. Untrained weights give noise, so the checks are
 * that outputs are finite, not zero, of sane magnitude (the init keeps
 * activations O(1)), and that the prompt reaches the DiT. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/rng.h"
#include "kernels/safetensors.h"
#include "pipeline/model_config.h"
#include "pipeline/spec.h"
#include "stages/text_encode.h"
#include "stages/tokenizer.h"
#include "stages/wan_dit.h"
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
    char name[128];
    snprintf(name, sizeof name, "%s: finite, not constant, rms in [%g, %g]", what, rms_lo, rms_hi);
    CHECK(s.finite && s.spread > 0 && s.rms >= rms_lo && s.rms <= rms_hi, name,
          "finite %d, rms %g, max |x| %g, spread %g over %lld values", s.finite, s.rms,
          s.max_abs, s.spread, (long long)n);
}

static void count_tensor(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    (void)name;
    (void)ndim;
    (void)shape;
    ++*(int *)ctx;
}

struct frames {
    float *data;
    int64_t n, calls, size;
};

static int frame_cb(void *ctx, const float *frames, int64_t first, int64_t n,
                    struct reel_err *err)
{
    (void)err;
    struct frames *f = ctx;
    f->calls++;
    if (first == 0 && n == 1 && !f->data) {
        f->data = malloc(sizeof(float) * (size_t)f->size);
        if (f->data) {
            memcpy(f->data, frames, sizeof(float) * (size_t)f->size);
            f->n = n;
        }
    }
    return REEL_OK;
}

/* DiT forward on latent x with the context of prompt; out: [out_dim, F, H, W]. */
static int dit_run(struct reel_wan_dit *dit, struct reel_text_encoder *te, const char *prompt,
                   const float *x, int64_t F, int64_t H, int64_t W, const float *t, float *out,
                   struct reel_err *err)
{
    float *ctx = NULL;
    int64_t len = 0;
    int rc = reel_text_encode(te, prompt, &ctx, &len, err);
    if (rc)
        return rc;
    struct reel_wan_dit_input in = {
        .x = x, .frames = F, .height = H, .width = W, .t = t,
        .context = ctx, .context_len = len, .seq_len = F * (H / 2) * (W / 2),
    };
    rc = reel_wan_dit_forward(dit, &in, out, err);
    free(ctx);
    return rc;
}

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
    CHECK(!m.trained, "reel-default is marked untrained (trained: false)", "trained is %d",
          m.trained);

    /* Every file holds exactly its network's table. */
    const char *labels[3] = {"dit", "vae", "text_encoder"};
    const char *paths[3] = {m.dit.weights, m.vae.weights, m.text_encoder.weights};
    struct reel_weights *w[3] = {NULL, NULL, NULL};
    struct reel_model_params p;
    reel_model_config_params(&m, &p);
    int want[3] = {p.dit_tensors, p.vae_tensors, p.text_tensors};
    int dit_table = 0;
    reel_wan_dit_tensor_table(&m.dit.cfg, count_tensor, &dit_table);
    CHECK(dit_table == p.dit_tensors, "DiT table size matches reel_model_config_params",
          "%d vs %d", dit_table, p.dit_tensors);
    int opened = 1;
    for (int i = 0; i < 3; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s weights open (run make if missing)", labels[i]);
        memset(&err, 0, sizeof err);
        if (!CHECK(!reel_weights_open(paths[i], &w[i], &err), name, "%s", err.msg)) {
            opened = 0;
            continue;
        }
        snprintf(name, sizeof name, "%s weights hold exactly the %d table tensors", labels[i],
                 want[i]);
        CHECK(reel_weights_count(w[i]) == want[i], name, "%d tensors", reel_weights_count(w[i]));
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
    struct reel_wan_dit *dit = NULL;
    struct reel_wan_vae *vae = NULL;
    if (!CHECK(be != NULL, "CPU backend", "cannot create"))
        goto out;

    /* Text encoder: the loaded weight set, the generated tokenizer. */
    struct reel_text_encoder_opts o = {
        .weights = w[2], .weights_id = "reel-default", .tokenizer_path = m.text_encoder.tokenizer,
        .text_len = m.text_encoder.text_len, .be = be,
    };
    memset(&err, 0, sizeof err);
    if (CHECK(!reel_text_encoder_create(&o, &te, &err), "text encoder builds", "%s", err.msg)) {
        CHECK(reel_text_encoder_dim(te) == m.text_encoder.dim, "text encoder width", "%d",
              reel_text_encoder_dim(te));
        float *emb = NULL;
        int64_t len = 0;
        memset(&err, 0, sizeof err);
        if (CHECK(!reel_text_encode(te, "a red circle", &emb, &len, &err),
                  "text encode 'a red circle'", "%s", err.msg)) {
            CHECK(len >= 2 && len <= m.text_encoder.text_len, "embedding length (tokens + eos)",
                  "%lld", (long long)len);
            check_output("text embedding", emb, len * m.text_encoder.dim, 0.1, 10);
        }
        free(emb);
    }

    /* DiT on a tiny latent (2 x 4 x 6 -> 12 tokens), one timestep. */
    memset(&err, 0, sizeof err);
    if (CHECK(!reel_wan_dit_create(&m.dit.cfg, w[0], be, &dit, &err), "DiT builds", "%s",
              err.msg) && te) {
        const int64_t C = m.dit.cfg.in_dim, F = 2, H = 4, W = 6, n = C * F * H * W;
        const int64_t on = (int64_t)m.dit.cfg.out_dim * F * H * W;
        float *x = malloc(sizeof(float) * (size_t)n);
        float *y1 = calloc((size_t)on, sizeof(float));
        float *y2 = calloc((size_t)on, sizeof(float));
        const float t = 700.0f;
        if (x && y1 && y2) {
            reel_rng_normal(7, 0, 0, n, x);
            memset(&err, 0, sizeof err);
            if (CHECK(!dit_run(dit, te, "a red circle", x, F, H, W, &t, y1, &err),
                      "DiT forward on a 4x2x4x6 latent", "%s", err.msg)) {
                check_output("DiT output", y1, on, 0.01, 100);
                memset(&err, 0, sizeof err);
                if (!dit_run(dit, te, "a blue square spins", x, F, H, W, &t, y2, &err)) {
                    double d = 0;
                    for (int64_t i = 0; i < on; i++)
                        d = fmax(d, fabs((double)y1[i] - y2[i]));
                    CHECK(d > 1e-6, "DiT output depends on the prompt",
                          "max difference %g between two prompts", d);
                } else {
                    CHECK(0, "DiT forward with a second prompt", "%s", err.msg);
                }
            }
        }
        free(x);
        free(y1);
        free(y2);
    }

    /* VAE: one latent frame -> one video frame. */
    memset(&err, 0, sizeof err);
    if (CHECK(!reel_wan_vae_create(&m.vae.cfg, w[1], be, &vae, &err), "VAE builds", "%s",
              err.msg)) {
        const int64_t z = m.vae.cfg.z_dim, h = 5, wd = 7, n = z * h * wd;
        const int s = reel_wan_vae_spatial_factor(vae);
        float *lat = malloc(sizeof(float) * (size_t)n);
        struct frames fr = {.size = 3 * h * s * wd * s};
        if (lat) {
            reel_rng_normal(8, 0, 0, n, lat);
            memset(&err, 0, sizeof err);
            if (CHECK(!reel_wan_vae_decode(vae, lat, 1, h, wd, m.vae.latent_mean,
                                           m.vae.latent_inv_std, frame_cb, &fr, &err),
                      "VAE decode of 1 latent frame", "%s", err.msg) &&
                CHECK(fr.calls == 1 && fr.data && fr.n == 1, "VAE decode gives one frame",
                      "%lld calls", (long long)fr.calls))
                check_output("VAE frame", fr.data, fr.size, 0.01, 100);
        }
        free(lat);
        free(fr.data);
    }

    reel_wan_vae_destroy(vae);
    reel_wan_dit_destroy(dit);
    reel_text_encoder_destroy(te);
    reel_backend_destroy(be);
out:
    for (int i = 0; i < 3; i++)
        reel_weights_close(w[i]);
    reel_model_config_free(&m);
    TEST_EXIT();
}
