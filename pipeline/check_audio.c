/* `reel check` runners for MMAudio's 16 kHz audio stack: the mel converter,
 * the mel VAE (encoder and decoder) and the BigVGAN vocoder. Every size
 * comes from the file's config and tensor shapes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/bigvgan.h"
#include "audio/mel.h"
#include "audio/mmaudio_vae.h"
#include "pipeline/check.h"

/* README-audio.md's suggested float32 tolerances */
#define MEL_LINEAR_TOL 1e-5
#define MEL_LOG_TOL 5e-4
#define STFT_TOL 1e-4 /* mid only: magnitudes up to ~1e2 */
#define VAE_MOMENT_TOL 5e-5
#define VAE_DEC_TOL 1e-4
#define VAE_MID_TOL 5e-5
#define BIGVGAN_TOL 2e-5

struct probe_ctx {
    struct reel_check *c;
    double tol;
};

static void probe_cmp(void *vctx, const char *name, const float *data, int64_t n)
{
    struct probe_ctx *p = vctx;
    char full[96];
    snprintf(full, sizeof full, "mid.%s", name);
    double tol = p->tol;
    if (!strcmp(name, "stft_mag"))
        tol = STFT_TOL;
    else if (!strcmp(name, "mel_linear"))
        tol = MEL_LINEAR_TOL;
    reel_check_compare(p->c, full, data, n, tol);
}

/* The last two dims of a tensor whose leading dims are all 1: [rows, cols]. */
static int dims2(const struct reel_tensor *t, int64_t *rows, int64_t *cols)
{
    if (!t || t->ndim < 1)
        return -1;
    for (int i = 0; i + 2 < t->ndim; i++)
        if (t->shape[i] != 1)
            return -1;
    *cols = t->shape[t->ndim - 1];
    *rows = t->ndim >= 2 ? t->shape[t->ndim - 2] : 1;
    return 0;
}

int reel_check_mel(struct reel_check *c, struct reel_err *err)
{
    const char *path = c->file->path;
    struct reel_mel_config cfg;
    struct reel_mel *m = NULL;
    float *wave = NULL, *mel = NULL;
    int rc;
    if ((rc = reel_mel_config_from_json(c->config, &cfg, err))) {
        reel_err_prefix(err, "%s: ", path);
        return rc;
    }
    int64_t rows, n;
    if (dims2(reel_check_tensor(c, "in.wave"), &rows, &n) || rows != 1)
        return reel_errf(err, REEL_E_MODEL, "%s: in.wave must be [1, N]", path);
    if ((rc = reel_mel_create(&cfg, c->weights, c->be, &m, err)))
        goto done;
    int64_t T = reel_mel_frames(m, n);
    if (T <= 0) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: in.wave is too short", path);
        goto done;
    }
    if ((rc = reel_check_input_f32(c, "in.wave", &wave, NULL, err)))
        goto done;
    mel = malloc(sizeof(float) * (size_t)(cfg.num_mels * T));
    if (!mel) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    struct probe_ctx pc = {c, MEL_LINEAR_TOL};
    reel_mel_set_probe(m, probe_cmp, &pc);
    if ((rc = reel_mel_forward(m, wave, n, mel, err)))
        goto done;
    reel_check_compare(c, "out.mel", mel, cfg.num_mels * T, MEL_LOG_TOL);
done:
    free(wave);
    free(mel);
    reel_mel_destroy(m);
    return rc;
}

int reel_check_mmaudio_vae(struct reel_check *c, struct reel_err *err)
{
    const char *path = c->file->path;
    struct reel_mmaudio_vae_config cfg;
    struct reel_mmaudio_vae *vae = NULL;
    float *mel = NULL, *z = NULL, *mom = NULL, *dec = NULL;
    int rc;
    if ((rc = reel_mmaudio_vae_config_from_json(c->config, &cfg, err))) {
        reel_err_prefix(err, "%s: ", path);
        return rc;
    }
    int has_mel = reel_check_tensor(c, "in.mel") != NULL;
    if (!has_mel)
        cfg.encoder = 0;
    /* the golden files hold weights after remove_weight_norm(); released checkpoints do not */
    const char *wn = reel_st_meta(c->file, "weight_norm_removed");
    int removed = wn && !strncmp(wn, "true", 4);
    if ((rc = reel_mmaudio_vae_create(&cfg, c->weights, removed, c->be, &vae, err)))
        goto done;
    struct probe_ctx pc = {c, VAE_MID_TOL};
    reel_mmaudio_vae_set_probe(vae, probe_cmp, &pc);
    int64_t rows, T, E = cfg.embed_dim;
    if (has_mel) {
        if (dims2(reel_check_tensor(c, "in.mel"), &rows, &T) || rows != cfg.data_dim) {
            rc = reel_errf(err, REEL_E_MODEL, "%s: in.mel must be [1, %d, T]", path, cfg.data_dim);
            goto done;
        }
        int64_t L = reel_mmaudio_vae_latent_len(vae, T);
        if ((rc = reel_check_input_f32(c, "in.mel", &mel, NULL, err)))
            goto done;
        mom = malloc(sizeof(float) * (size_t)(2 * E * (L > 0 ? L : 1)));
        if (!mom) {
            rc = reel_errf(err, REEL_E_OTHER, "out of memory");
            goto done;
        }
        if ((rc = reel_mmaudio_vae_encode(vae, mel, T, mom, err)))
            goto done;
        reel_check_compare(c, "out.enc_moments", mom, 2 * E * L, VAE_MOMENT_TOL);
        reel_check_compare(c, "out.mean", mom, E * L, VAE_MOMENT_TOL);
        c->be->clamp(c->be, mom + E * L, mom + E * L, E * L, -30.0f, 20.0f);
        reel_check_compare(c, "out.logvar", mom + E * L, E * L, VAE_MOMENT_TOL);
    }
    if (reel_check_tensor(c, "in.z")) {
        int64_t L;
        if (dims2(reel_check_tensor(c, "in.z"), &rows, &L) || rows != E) {
            rc = reel_errf(err, REEL_E_MODEL, "%s: in.z must be [1, %lld, L]", path, (long long)E);
            goto done;
        }
        int64_t Tm = reel_mmaudio_vae_mel_len(vae, L);
        if ((rc = reel_check_input_f32(c, "in.z", &z, NULL, err)))
            goto done;
        dec = malloc(sizeof(float) * (size_t)(cfg.data_dim * Tm));
        if (!dec) {
            rc = reel_errf(err, REEL_E_OTHER, "out of memory");
            goto done;
        }
        if ((rc = reel_mmaudio_vae_decode(vae, z, L, dec, err)))
            goto done;
        reel_check_compare(c, "out.dec", dec, cfg.data_dim * Tm, VAE_DEC_TOL);
    }
done:
    free(mel);
    free(z);
    free(mom);
    free(dec);
    reel_mmaudio_vae_destroy(vae);
    return rc;
}

int reel_check_bigvgan(struct reel_check *c, struct reel_err *err)
{
    const char *path = c->file->path;
    struct reel_bigvgan_config cfg;
    struct reel_bigvgan *v = NULL;
    float *mel = NULL, *wave = NULL;
    int rc;
    if ((rc = reel_bigvgan_config_from_json(c->config, &cfg, err))) {
        reel_err_prefix(err, "%s: ", path);
        return rc;
    }
    int64_t rows, T;
    if (dims2(reel_check_tensor(c, "in.mel"), &rows, &T) || rows != cfg.num_mels)
        return reel_errf(err, REEL_E_MODEL, "%s: in.mel must be [1, %d, T]", path, cfg.num_mels);
    if ((rc = reel_bigvgan_create(&cfg, c->weights, c->be, &v, err)))
        goto done;
    int64_t n = T * reel_bigvgan_hop(v);
    if ((rc = reel_check_input_f32(c, "in.mel", &mel, NULL, err)))
        goto done;
    wave = malloc(sizeof(float) * (size_t)n);
    if (!wave) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    struct probe_ctx pc = {c, BIGVGAN_TOL};
    reel_bigvgan_set_probe(v, probe_cmp, &pc);
    if ((rc = reel_bigvgan_forward(v, mel, T, wave, err)))
        goto done;
    reel_check_compare(c, "out.wave", wave, n, BIGVGAN_TOL);
done:
    free(mel);
    free(wave);
    reel_bigvgan_destroy(v);
    return rc;
}
