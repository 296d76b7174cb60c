/* MMAudio MelConverter: see mel.h. The filterbank port follows librosa's
 * mel() operation order (float64 math, float32 storage) so the computed
 * bank matches the checkpoint buffer to float32 rounding. */
#include "audio/mel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct reel_mel {
    struct reel_mel_config cfg;
    struct reel_backend *be;
    float *basis;  /* [num_mels, n_fft/2 + 1] */
    float *window; /* [n_fft] */
    reel_mel_probe_fn probe;
    void *probe_ctx;
};

void reel_mel_config_16k(struct reel_mel_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sampling_rate = 16000;
    cfg->n_fft = 1024;
    cfg->hop_size = 256;
    cfg->win_size = 1024;
    cfg->num_mels = 80;
    cfg->fmin = 0;
    cfg->fmax = 8000;
    cfg->log_clip = 1e-5f;
    cfg->mag_eps = 1e-9f;
}

static int json_num_key(const struct reel_json *j, const char *key, double *out,
                        struct reel_err *err)
{
    const struct reel_json *v = reel_json_get(j, key);
    if (!v)
        return 0;
    if (v->type != REEL_JSON_NUMBER || !(v->number >= 0))
        return reel_errf(err, REEL_E_MODEL, "mel config: '%s' must be a number >= 0", key);
    *out = v->number;
    return 0;
}

int reel_mel_config_from_json(const struct reel_json *j, struct reel_mel_config *cfg,
                              struct reel_err *err)
{
    reel_mel_config_16k(cfg);
    if (!j)
        return 0;
    if (j->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "mel config: not a JSON object");
    double clip = cfg->log_clip, eps = cfg->mag_eps;
    int rc;
    if ((rc = reel_json_cfg_int(j, "mel", "sampling_rate", cfg->sampling_rate, 1, &cfg->sampling_rate, err)) ||
        (rc = reel_json_cfg_int(j, "mel", "n_fft", cfg->n_fft, 1, &cfg->n_fft, err)) ||
        (rc = reel_json_cfg_int(j, "mel", "hop_size", cfg->hop_size, 1, &cfg->hop_size, err)) ||
        (rc = reel_json_cfg_int(j, "mel", "win_size", cfg->win_size, 1, &cfg->win_size, err)) ||
        (rc = reel_json_cfg_int(j, "mel", "num_mels", cfg->num_mels, 1, &cfg->num_mels, err)) ||
        (rc = json_num_key(j, "fmin", &cfg->fmin, err)) ||
        (rc = json_num_key(j, "fmax", &cfg->fmax, err)) ||
        (rc = json_num_key(j, "log_clip", &clip, err)) ||
        (rc = json_num_key(j, "mag_eps", &eps, err)))
        return rc;
    cfg->log_clip = (float)clip;
    cfg->mag_eps = (float)eps;
    const char *norm = reel_json_str(j, "norm_fn", "log10");
    if (strcmp(norm, "log10"))
        return reel_errf(err, REEL_E_MODEL, "mel config: norm_fn '%s' is not supported (log10)",
                         norm);
    if (reel_json_bool(j, "center", 0))
        return reel_errf(err, REEL_E_MODEL, "mel config: center=true is not supported");
    if (cfg->win_size != cfg->n_fft)
        return reel_errf(err, REEL_E_MODEL, "mel config: win_size %d != n_fft %d",
                         cfg->win_size, cfg->n_fft);
    if (cfg->hop_size > cfg->n_fft || (cfg->n_fft - cfg->hop_size) % 2)
        return reel_errf(err, REEL_E_MODEL,
                         "mel config: n_fft - hop_size must be even and >= 0 (%d, %d)",
                         cfg->n_fft, cfg->hop_size);
    const struct reel_json *rp = reel_json_get(j, "reflect_pad");
    if (rp && (rp->type != REEL_JSON_NUMBER ||
               rp->number != (double)((cfg->n_fft - cfg->hop_size) / 2)))
        return reel_errf(err, REEL_E_MODEL, "mel config: reflect_pad must be (n_fft - hop) / 2");
    if (cfg->fmax <= cfg->fmin)
        return reel_errf(err, REEL_E_MODEL, "mel config: fmax must exceed fmin");
    return 0;
}

/* librosa hz_to_mel / mel_to_hz, Slaney scale (htk=False). */
static double hz_to_mel(double f)
{
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (f >= min_log_hz)
        return min_log_mel + log(f / min_log_hz) / logstep;
    return f / f_sp;
}

static double mel_to_hz(double m)
{
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (m >= min_log_mel)
        return min_log_hz * exp(logstep * (m - min_log_mel));
    return f_sp * m;
}

void reel_mel_filterbank(int sr, int n_fft, int n_mels, double fmin, double fmax, float *out)
{
    int nb = n_fft / 2 + 1, nm = n_mels + 2;
    double *mel_f = malloc(sizeof(double) * (size_t)nm);
    double *fft_f = malloc(sizeof(double) * (size_t)nb);
    if (!mel_f || !fft_f) {
        free(mel_f);
        free(fft_f);
        memset(out, 0, sizeof(float) * (size_t)n_mels * (size_t)nb);
        return;
    }
    /* np.fft.rfftfreq: k * (1 / (n * d)) with d = 1 / sr */
    double val = 1.0 / ((double)n_fft * (1.0 / (double)sr));
    for (int k = 0; k < nb; k++)
        fft_f[k] = (double)k * val;
    /* mel_frequencies: linspace over the mel scale, back to Hz */
    double lo = hz_to_mel(fmin), hi = hz_to_mel(fmax), step = (hi - lo) / (double)(nm - 1);
    for (int i = 0; i < nm; i++)
        mel_f[i] = mel_to_hz(i == nm - 1 ? hi : (double)i * step + lo);
    for (int i = 0; i < n_mels; i++) {
        double fd0 = mel_f[i + 1] - mel_f[i], fd1 = mel_f[i + 2] - mel_f[i + 1];
        double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (int k = 0; k < nb; k++) {
            double lower = -(mel_f[i] - fft_f[k]) / fd0;
            double upper = (mel_f[i + 2] - fft_f[k]) / fd1;
            double v = lower < upper ? lower : upper;
            float w = (float)(v > 0 ? v : 0.0); /* stored in a float32 array */
            out[(size_t)i * nb + k] = (float)((double)w * enorm);
        }
    }
    free(mel_f);
    free(fft_f);
}

void reel_hann_window(int n, float *out)
{
    /* torch: periodic -> length n + 1, arange * (2 pi / n), cos, * -0.5, + 0.5, in float32 */
    float step = (float)(2.0 * M_PI / (double)n);
    for (int i = 0; i < n; i++)
        out[i] = cosf((float)i * step) * -0.5f + 0.5f;
}

int reel_mel_create(const struct reel_mel_config *cfg, const struct reel_weights *w,
                    struct reel_backend *be, struct reel_mel **out, struct reel_err *err)
{
    *out = NULL;
    if (cfg->n_fft <= 0 || cfg->hop_size <= 0 || cfg->num_mels <= 0 || cfg->win_size != cfg->n_fft)
        return reel_errf(err, REEL_E_MODEL, "mel: invalid configuration");
    struct reel_mel *m = calloc(1, sizeof *m);
    if (!m)
        return reel_errf(err, REEL_E_OTHER, "mel: out of memory");
    m->cfg = *cfg;
    m->be = be;
    int64_t nb = cfg->n_fft / 2 + 1;
    int rc = 0;
    if (w) {
        int64_t bs[2] = {cfg->num_mels, nb}, ws[1] = {cfg->win_size};
        if ((rc = reel_weights_get_f32(w, "mel_basis", 2, bs, &m->basis, err)) ||
            (rc = reel_weights_get_f32(w, "hann_window", 1, ws, &m->window, err))) {
            reel_mel_destroy(m);
            return rc;
        }
    } else {
        m->basis = malloc(sizeof(float) * (size_t)(cfg->num_mels * nb));
        m->window = malloc(sizeof(float) * (size_t)cfg->n_fft);
        if (!m->basis || !m->window) {
            reel_mel_destroy(m);
            return reel_errf(err, REEL_E_OTHER, "mel: out of memory");
        }
        reel_mel_filterbank(cfg->sampling_rate, cfg->n_fft, cfg->num_mels, cfg->fmin, cfg->fmax,
                            m->basis);
        reel_hann_window(cfg->n_fft, m->window);
    }
    *out = m;
    return 0;
}

void reel_mel_destroy(struct reel_mel *m)
{
    if (!m)
        return;
    free(m->basis);
    free(m->window);
    free(m);
}

void reel_mel_set_probe(struct reel_mel *m, reel_mel_probe_fn fn, void *ctx)
{
    m->probe = fn;
    m->probe_ctx = ctx;
}

int64_t reel_mel_frames(const struct reel_mel *m, int64_t n)
{
    int64_t pad = (m->cfg.n_fft - m->cfg.hop_size) / 2;
    if (n <= pad || n + 2 * pad < m->cfg.n_fft)
        return 0;
    return 1 + (n + 2 * pad - m->cfg.n_fft) / m->cfg.hop_size;
}

int reel_mel_forward(struct reel_mel *m, const float *wave, int64_t n, float *mel,
                     struct reel_err *err)
{
    struct reel_backend *be = m->be;
    const struct reel_mel_config *c = &m->cfg;
    int64_t pad = (c->n_fft - c->hop_size) / 2, T = reel_mel_frames(m, n);
    if (T <= 0)
        return reel_errf(err, REEL_E_MEDIA,
                         "mel: %lld samples are too few (reflect padding needs more than %lld)",
                         (long long)n, (long long)pad);
    int64_t np = n + 2 * pad, nb = c->n_fft / 2 + 1;
    float *padded = malloc(sizeof(float) * (size_t)np);
    float *mag = malloc(sizeof(float) * (size_t)(nb * T));
    if (!padded || !mag) {
        free(padded);
        free(mag);
        return reel_errf(err, REEL_E_OTHER, "mel: out of memory");
    }
    be->clamp(be, padded + pad, wave, n, -1.0f, 1.0f);
    /* reflect padding (edge sample not repeated), as F.pad(mode='reflect') */
    for (int64_t i = 0; i < pad; i++) {
        padded[pad - 1 - i] = padded[pad + 1 + i];
        padded[pad + n + i] = padded[pad + n - 2 - i];
    }
    if (m->probe)
        m->probe(m->probe_ctx, "padded_wave", padded, np);
    int rc = be->stft_mag(be, mag, padded, np, c->n_fft, c->hop_size, m->window, c->mag_eps, err);
    if (!rc) {
        if (m->probe)
            m->probe(m->probe_ctx, "stft_mag", mag, nb * T);
        be->sgemm(be, 0, 0, c->num_mels, T, nb, 1.0f, m->basis, nb, mag, T, 0.0f, mel, T);
        if (m->probe)
            m->probe(m->probe_ctx, "mel_linear", mel, c->num_mels * T);
        be->log10_clamp(be, mel, mel, c->num_mels * T, c->log_clip);
    }
    free(padded);
    free(mag);
    return rc;
}
