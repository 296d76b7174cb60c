/* Flow samplers: schedules against the golden file, Euler on ODEs with a
 * known answer, UniPC / DPM++ on a Gaussian flow whose exact transport map is
 * known, checkpoint/resume of the solver state, argument errors; and the
 * denoise loop's TI2V path (mask blend, per-token timesteps, resume) on the
 * tiny golden TI2V DiT. The golden trajectories themselves are checked by
 * `reel check` (tests/t_golden.sh). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/denoise.h"
#include "stages/flow_sampler.h"
#include "stages/wan_dit.h"
#include "tests/test.h"

static const char *golden_dir(void)
{
    const char *d = getenv("REEL_GOLDEN_DIR");
    return d && *d ? d : "../shared/golden";
}

/* One schedule against out.<name>.{timesteps,sigmas}: exact integers, and
 * sigmas bit for bit (the tolerance of `reel check` is 1e-7). */
static void schedule_vs_golden(const struct reel_st_file *f, enum reel_flow_solver kind,
                               int steps, double shift, const char *name)
{
    char label[160], tname[160];
    int64_t *ts = malloc(sizeof(int64_t) * (size_t)steps);
    float *sig = malloc(sizeof(float) * (size_t)(steps + 1));
    struct reel_err err = {0};
    int rc = reel_flow_schedule(kind, steps, shift, NULL, ts, sig, &err);
    snprintf(label, sizeof label, "schedule %s computes", name);
    CHECK(rc == 0, label, "%s", err.msg);

    snprintf(tname, sizeof tname, "out.%s.timesteps", name);
    const struct reel_tensor *t = reel_st_find(f, tname);
    snprintf(label, sizeof label, "schedule %s timesteps exact", name);
    if (!t || t->dtype != REEL_I64 || reel_tensor_numel(t) != steps) {
        CHECK(0, label, "tensor %s missing or of the wrong size", tname);
    } else {
        int bad = -1;
        for (int i = 0; i < steps && bad < 0; i++) {
            int64_t v;
            memcpy(&v, (const char *)t->data + 8 * i, 8);
            if (v != ts[i])
                bad = i;
        }
        int64_t want = 0;
        if (bad >= 0)
            memcpy(&want, (const char *)t->data + 8 * bad, 8);
        CHECK(bad < 0, label, "index %d: got %lld, want %lld", bad,
              bad >= 0 ? (long long)ts[bad] : 0LL, (long long)want);
    }

    snprintf(tname, sizeof tname, "out.%s.sigmas", name);
    t = reel_st_find(f, tname);
    snprintf(label, sizeof label, "schedule %s sigmas bit-exact", name);
    if (!t || t->dtype != REEL_F32 || reel_tensor_numel(t) != steps + 1) {
        CHECK(0, label, "tensor %s missing or of the wrong size", tname);
    } else {
        double worst = 0;
        int bad = -1;
        for (int i = 0; i <= steps; i++) {
            float v;
            memcpy(&v, (const char *)t->data + 4 * i, 4);
            if (memcmp(&v, &sig[i], 4)) {
                if (bad < 0)
                    bad = i;
                worst = fmax(worst, fabs((double)v - sig[i]));
            }
        }
        CHECK(bad < 0, label, "first difference at %d, max abs %.3g", bad, worst);
    }
    free(ts);
    free(sig);
}

static void test_golden_schedules(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/flow_unipc_schedule.safetensors", golden_dir());
    struct reel_st_file *f = NULL;
    struct reel_err err = {0};
    if (!CHECK(reel_st_open(path, &f, &err) == 0, "golden schedule file opens", "%s", err.msg))
        return;
    schedule_vs_golden(f, REEL_FLOW_UNIPC, 50, 5.0, "unipc_steps50_shift5");
    schedule_vs_golden(f, REEL_FLOW_UNIPC, 20, 3.0, "unipc_steps20_shift3");
    schedule_vs_golden(f, REEL_FLOW_DPMPP, 50, 5.0, "dpmpp_steps50_shift5");
    schedule_vs_golden(f, REEL_FLOW_DPMPP, 20, 3.0, "dpmpp_steps20_shift3");
    schedule_vs_golden(f, REEL_FLOW_UNIPC, 8, 5.0, "unipc_traj");
    schedule_vs_golden(f, REEL_FLOW_DPMPP, 8, 5.0, "dpmpp_traj");
    reel_st_close(f);
}

static void test_schedule_shape(void)
{
    int64_t ts[10];
    float sig[11];
    struct reel_err err = {0};
    reel_flow_schedule(REEL_FLOW_UNIPC, 10, 1.0, NULL, ts, sig, &err);
    CHECK(ts[0] == 999 && sig[10] == 0.0f, "unipc starts at 999, ends at sigma 0",
          "t0=%lld sigma_end=%g", (long long)ts[0], sig[10]);
    reel_flow_schedule(REEL_FLOW_DPMPP, 10, 1.0, NULL, ts, sig, &err);
    CHECK(ts[0] == 1000 && sig[0] == 1.0f && sig[10] == 0.0f, "dpm++ starts at 1000 (sigma 1)",
          "t0=%lld sigma0=%g", (long long)ts[0], sig[0]);
    int mono = 1;
    for (int i = 0; i < 10; i++)
        mono &= sig[i + 1] < sig[i];
    CHECK(mono, "sigmas strictly decrease", "not monotone");
    /* shift 1 and 10 steps: sigma_i = 1 - i/10, timesteps truncated. */
    CHECK(ts[3] == 700 || ts[3] == 699, "dpm++ shift 1 timesteps are sigma*1000", "t3=%lld",
          (long long)ts[3]);
}

/* Euler: constant velocity (a straight flow path) lands on x0, and
 * dx/dsigma = x gives x_N = x_0 * prod(1 + dsigma_i). */
static void test_euler(void)
{
    struct reel_flow_sampler *s = NULL;
    struct reel_err err = {0};
    const int steps = 12;
    int rc = reel_flow_sampler_create(REEL_FLOW_EULER, steps, 3.0, NULL, &s, &err);
    if (!CHECK(rc == 0, "euler creates", "%s", err.msg))
        return;
    const float *sig = reel_flow_sampler_sigmas(s);
    float x0[4] = {0.25f, -1.5f, 3.0f, 0.0f}, eps[4] = {1.0f, 0.5f, -2.0f, 0.75f};
    float x[4], v[4];
    for (int i = 0; i < 4; i++) {
        x[i] = (1.0f - sig[0]) * x0[i] + sig[0] * eps[i];
        v[i] = eps[i] - x0[i];
    }
    for (int k = 0; k < steps && rc == 0; k++)
        rc = reel_flow_sampler_step(s, k, v, x, 4, &err);
    double worst = 0;
    for (int i = 0; i < 4; i++)
        worst = fmax(worst, fabs((double)x[i] - x0[i]));
    CHECK(rc == 0 && worst < 1e-6, "euler straight path reaches x0", "rc=%d max err %.3g", rc,
          worst);

    reel_flow_sampler_reset(s);
    float y[3] = {1.0f, -2.0f, 0.5f};
    double want[3] = {1.0, -2.0, 0.5};
    rc = 0;
    for (int k = 0; k < steps && rc == 0; k++) {
        double d = (double)sig[k + 1] - (double)sig[k];
        for (int i = 0; i < 3; i++)
            want[i] *= 1.0 + d;
        float vv[3] = {y[0], y[1], y[2]};
        rc = reel_flow_sampler_step(s, k, vv, y, 3, &err);
    }
    worst = 0;
    for (int i = 0; i < 3; i++)
        worst = fmax(worst, fabs(y[i] - want[i]) / fabs(want[i]));
    CHECK(rc == 0 && worst < 1e-5, "euler linear ODE equals the Euler product",
          "rc=%d max rel err %.3g", rc, worst);
    reel_flow_sampler_destroy(s);
}

/* Data x0 ~ N(m, sd^2): the flow's exact velocity is linear in x, and the
 * ODE maps the noise quantile z to x0 = m + sd * z. */
struct gauss {
    double m, sd;
};

static void gauss_velocity(const struct gauss *g, double sigma, const float *x, float *v,
                           int n)
{
    double a = 1.0 - sigma;
    double var = a * a * g->sd * g->sd + sigma * sigma;
    double cov = sigma - a * g->sd * g->sd;
    for (int i = 0; i < n; i++)
        v[i] = (float)(-g->m + cov / var * ((double)x[i] - a * g->m));
}

static double gauss_run(enum reel_flow_solver kind, int steps, double shift, const float *z,
                        int n, const struct gauss *g, int *ok)
{
    struct reel_flow_sampler *s = NULL;
    struct reel_err err = {0};
    *ok = reel_flow_sampler_create(kind, steps, shift, NULL, &s, &err) == 0;
    if (!*ok)
        return INFINITY;
    const float *sig = reel_flow_sampler_sigmas(s);
    float *x = malloc(sizeof(float) * (size_t)n), *v = malloc(sizeof(float) * (size_t)n);
    double a = 1.0 - sig[0];
    double std = sqrt(a * a * g->sd * g->sd + (double)sig[0] * sig[0]);
    for (int i = 0; i < n; i++)
        x[i] = (float)(a * g->m + std * z[i]);
    for (int k = 0; k < steps && *ok; k++) {
        gauss_velocity(g, sig[k], x, v, n);
        *ok = reel_flow_sampler_step(s, k, v, x, n, &err) == 0;
    }
    double worst = 0;
    for (int i = 0; i < n; i++)
        worst = fmax(worst, fabs(x[i] - (g->m + g->sd * z[i])));
    free(x);
    free(v);
    reel_flow_sampler_destroy(s);
    return worst;
}

static void test_gauss_flow(void)
{
    const struct gauss g = {0.7, 0.3};
    float z[5] = {-2.0f, -0.5f, 0.0f, 1.0f, 2.5f};
    int ok1, ok2, ok3;
    /* The last step lands on the x0 prediction at sigma[N-1] (the posterior
     * mean, not the ODE end point), an O(sigma[N-1]) bias the reference has
     * too; 40 steps keep it well below the bound. */
    double e_euler = gauss_run(REEL_FLOW_EULER, 40, 3.0, z, 5, &g, &ok1);
    double e_unipc = gauss_run(REEL_FLOW_UNIPC, 40, 3.0, z, 5, &g, &ok2);
    double e_dpm = gauss_run(REEL_FLOW_DPMPP, 40, 3.0, z, 5, &g, &ok3);
    CHECK(ok1 && ok2 && ok3, "gaussian flow runs", "a solver failed");
    CHECK(e_unipc < 0.02, "unipc transports noise to the data quantile", "err=%.3g", e_unipc);
    CHECK(e_dpm < 0.02, "dpm++ transports noise to the data quantile", "err=%.3g", e_dpm);
    CHECK(e_unipc * 4 < e_euler && e_dpm * 4 < e_euler, "2nd-order solvers beat euler",
          "euler %.3g unipc %.3g dpm++ %.3g", e_euler, e_unipc, e_dpm);
    /* A straight path: the x0 prediction is exact, so every solver lands on x0. */
    const struct gauss point = {0.4, 0.0};
    double e_point = fmax(gauss_run(REEL_FLOW_UNIPC, 8, 5.0, z, 5, &point, &ok1),
                          gauss_run(REEL_FLOW_DPMPP, 8, 5.0, z, 5, &point, &ok2));
    CHECK(ok1 && ok2 && e_point < 1e-5, "multistep solvers follow a straight path exactly",
          "err=%.3g", e_point);
}

/* Runs 10 UniPC steps straight, and 4 steps + save + load into a fresh
 * sampler + 6 steps: the results must be identical bit for bit. */
static void test_resume(void)
{
    static const enum reel_flow_solver kinds[] = {REEL_FLOW_UNIPC, REEL_FLOW_DPMPP,
                                                  REEL_FLOW_EULER};
    const struct gauss g = {0.2, 0.5};
    for (size_t kk = 0; kk < 3; kk++) {
        enum reel_flow_solver kind = kinds[kk];
        struct reel_err err = {0};
        struct reel_flow_sampler *a = NULL, *b = NULL, *c = NULL;
        float xa[6] = {-1, -0.3f, 0, 0.4f, 1.1f, 2}, xb[6], v[6];
        memcpy(xb, xa, sizeof xa);
        int rc = reel_flow_sampler_create(kind, 10, 5.0, NULL, &a, &err);
        rc |= reel_flow_sampler_create(kind, 10, 5.0, NULL, &b, &err);
        rc |= reel_flow_sampler_create(kind, 10, 4.0, NULL, &c, &err);
        const float *sig = rc ? NULL : reel_flow_sampler_sigmas(a);
        for (int k = 0; k < 10 && !rc; k++) {
            gauss_velocity(&g, sig[k], xa, v, 6);
            rc = reel_flow_sampler_step(a, k, v, xa, 6, &err);
        }
        for (int k = 0; k < 4 && !rc; k++) {
            gauss_velocity(&g, sig[k], xb, v, 6);
            rc = reel_flow_sampler_step(b, k, v, xb, 6, &err);
        }
        size_t bytes = rc ? 0 : reel_flow_sampler_state_bytes(b);
        void *blob = malloc(bytes ? bytes : 1);
        if (!rc) {
            reel_flow_sampler_state_save(b, blob);
            reel_flow_sampler_destroy(b);
            b = NULL;
            rc = reel_flow_sampler_create(kind, 10, 5.0, NULL, &b, &err);
        }
        if (!rc)
            rc = reel_flow_sampler_state_load(b, blob, bytes, &err);
        char label[96];
        snprintf(label, sizeof label, "%s state loads", reel_flow_solver_name(kind));
        CHECK(rc == 0 && reel_flow_sampler_next_step(b) == 4, label, "rc=%d %s", rc, err.msg);
        for (int k = 4; k < 10 && !rc; k++) {
            gauss_velocity(&g, sig[k], xb, v, 6);
            rc = reel_flow_sampler_step(b, k, v, xb, 6, &err);
        }
        snprintf(label, sizeof label, "%s resume is bit-identical", reel_flow_solver_name(kind));
        CHECK(rc == 0 && !memcmp(xa, xb, sizeof xa), label, "rc=%d", rc);

        struct reel_err e2 = {0};
        snprintf(label, sizeof label, "%s state of another schedule is refused",
                 reel_flow_solver_name(kind));
        CHECK(c && reel_flow_sampler_state_load(c, blob, bytes, &e2) == REEL_E_MEDIA, label,
              "loaded");
        struct reel_err e3 = {0};
        snprintf(label, sizeof label, "%s truncated state is refused",
                 reel_flow_solver_name(kind));
        CHECK(bytes > 8 && reel_flow_sampler_state_load(b, blob, bytes - 4, &e3) == REEL_E_MEDIA,
              label, "loaded");
        free(blob);
        reel_flow_sampler_destroy(a);
        reel_flow_sampler_destroy(b);
        reel_flow_sampler_destroy(c);
    }
}

static void test_errors(void)
{
    struct reel_flow_sampler *s = NULL;
    struct reel_err err = {0};
    int rc = reel_flow_sampler_create(REEL_FLOW_UNIPC, 0, 5.0, NULL, &s, &err);
    CHECK(rc == REEL_E_SPEC && !s && strstr(err.msg, "steps"), "0 steps is an error",
          "rc=%d msg=%s", rc, err.msg);

    memset(&err, 0, sizeof err);
    rc = reel_flow_sampler_create(REEL_FLOW_DPMPP, 20, -1.0, NULL, &s, &err);
    CHECK(rc == REEL_E_SPEC && !s && strstr(err.msg, "shift"), "negative shift is an error",
          "rc=%d msg=%s", rc, err.msg);

    memset(&err, 0, sizeof err);
    rc = reel_flow_sampler_create(REEL_FLOW_EULER, 20, NAN, NULL, &s, &err);
    CHECK(rc == REEL_E_SPEC && !s, "NaN shift is an error", "rc=%d", rc);

    memset(&err, 0, sizeof err);
    enum reel_flow_solver kind = REEL_FLOW_EULER;
    rc = reel_flow_solver_from_name("heun3", &kind, &err);
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "heun3"), "unknown sampler name is an error",
          "rc=%d msg=%s", rc, err.msg);
    memset(&err, 0, sizeof err);
    rc = reel_flow_solver_from_name("DPM++", &kind, &err);
    CHECK(rc == 0 && kind == REEL_FLOW_DPMPP, "sampler names parse", "rc=%d", rc);

    struct reel_flow_sampler_opts o;
    reel_flow_sampler_default_opts(&o);
    o.solver_order = 4;
    memset(&err, 0, sizeof err);
    rc = reel_flow_sampler_create(REEL_FLOW_UNIPC, 20, 5.0, &o, &s, &err);
    CHECK(rc == REEL_E_SPEC && !s, "solver_order 4 is an error", "rc=%d", rc);

    memset(&err, 0, sizeof err);
    rc = reel_flow_sampler_create(REEL_FLOW_UNIPC, 4, 5.0, NULL, &s, &err);
    if (!CHECK(rc == 0, "unipc creates", "%s", err.msg))
        return;
    float x[2] = {1, 2}, v[2] = {0.5f, 0.5f};
    rc = reel_flow_sampler_step(s, 1, v, x, 2, &err);
    CHECK(rc != 0, "out-of-order step is an error", "rc=%d", rc);
    memset(&err, 0, sizeof err);
    rc = reel_flow_sampler_step(s, 0, v, x, 2, &err);
    CHECK(rc == 0, "step 0 runs", "%s", err.msg);
    rc = reel_flow_sampler_step(s, 1, v, x, 3, &err);
    CHECK(rc != 0, "changing the sample size is an error", "rc=%d", rc);
    memset(&err, 0, sizeof err);
    rc = 0;
    for (int k = 1; k < 4 && rc == 0; k++)
        rc = reel_flow_sampler_step(s, k, v, x, 2, &err);
    rc = reel_flow_sampler_step(s, 4, v, x, 2, &err);
    CHECK(rc != 0, "a step past the schedule is an error", "rc=%d", rc);
    reel_flow_sampler_destroy(s);
}


/* The tiny TI2V DiT of the golden files, for exercising the denoise loop. */
struct ti2v {
    struct reel_st_file *f;
    struct reel_json *cfg_json;
    struct reel_weights *w;
    struct reel_backend *be;
    struct reel_wan_dit_config cfg;
    struct reel_wan_dit *dit;
    const struct reel_tensor *x, *ctx;
    float *noise, *context, *z, *mask;
    int64_t n, seq_len;
};

static void ti2v_close(struct ti2v *m)
{
    reel_wan_dit_destroy(m->dit);
    reel_backend_destroy(m->be);
    reel_weights_close(m->w);
    reel_json_free(m->cfg_json);
    reel_st_close(m->f);
    free(m->noise);
    free(m->context);
    free(m->z);
    free(m->mask);
}

static int ti2v_open(struct ti2v *m)
{
    char path[1024];
    struct reel_err err = {0};
    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/wan22_dit_ti2v.safetensors", golden_dir());
    if (!CHECK(reel_st_open(path, &m->f, &err) == 0, "ti2v golden file opens", "%s", err.msg))
        return -1;
    const char *meta = reel_st_meta(m->f, "config");
    char msg[128];
    m->cfg_json = meta ? reel_json_parse(meta, strlen(meta), msg, sizeof msg) : NULL;
    m->x = reel_st_find(m->f, "in.x");
    m->ctx = reel_st_find(m->f, "in.context");
    const struct reel_tensor *sl = reel_st_find(m->f, "in.seq_len");
    m->be = reel_backend_cpu_create(1);
    int ok = m->cfg_json && m->x && m->x->ndim == 4 && m->ctx && sl && m->be &&
             reel_wan_dit_config_from_json(m->cfg_json, &m->cfg, &err) == 0 &&
             reel_weights_from_file(m->f, "weights.", &m->w, &err) == 0 &&
             reel_wan_dit_create(&m->cfg, m->w, m->be, &m->dit, &err) == 0;
    if (!CHECK(ok, "ti2v DiT builds", "%s", err.msg))
        return -1;
    memcpy(&m->seq_len, sl->data, 8);
    m->n = reel_tensor_numel(m->x);
    int64_t nc = reel_tensor_numel(m->ctx);
    m->noise = malloc(sizeof(float) * (size_t)m->n);
    m->z = malloc(sizeof(float) * (size_t)m->n);
    m->mask = malloc(sizeof(float) * (size_t)m->n);
    m->context = malloc(sizeof(float) * (size_t)nc);
    reel_tensor_to_f32(m->x, 0, m->n, m->noise);
    reel_tensor_to_f32(m->ctx, 0, nc, m->context);
    /* masks_like(zero=True): frame 0 comes from the image latent z. */
    int64_t plane = m->x->shape[2] * m->x->shape[3], fr = m->x->shape[1];
    for (int64_t i = 0; i < m->n; i++) {
        m->z[i] = 0.5f * sinf(0.37f * (float)i);
        m->mask[i] = (i / plane) % fr == 0 ? 0.0f : 1.0f;
    }
    return 0;
}

static struct reel_denoise_params ti2v_params(struct ti2v *m, struct reel_flow_sampler *s,
                                              double guide)
{
    struct reel_denoise_params p = {
        .dit = m->dit,
        .dit_cfg = &m->cfg,
        .sampler = s,
        .channels = m->x->shape[0],
        .frames = m->x->shape[1],
        .height = m->x->shape[2],
        .width = m->x->shape[3],
        .context = m->context,
        .context_len = m->ctx->shape[0],
        .context_null = m->context + 2 * m->ctx->shape[1], /* a shorter "negative prompt" */
        .context_null_len = m->ctx->shape[0] - 2,
        .seq_len = m->seq_len,
        .guide_scale = guide,
        .mask = m->mask,
        .cond_latent = m->z,
    };
    return p;
}

struct ti2v_watch {
    struct ti2v *m;
    int frame0_kept, finite, cond_matches, guided_differs, steps_seen;
};

/* Checks every step: frame 0 equals z, and the conditional prediction equals
 * a DiT call with per-token timesteps built here from the reference formula
 * (mask2[0][0][:, ::2, ::2] * t, flattened, padded with t). */
static int ti2v_watch_step(void *ctx, const struct reel_denoise_step_info *info,
                           struct reel_err *err)
{
    struct ti2v_watch *wch = ctx;
    struct ti2v *m = wch->m;
    int64_t F = m->x->shape[1], H = m->x->shape[2], W = m->x->shape[3];
    wch->steps_seen++;
    for (int64_t i = 0; i < info->n; i++) {
        if (m->mask[i] == 0.0f && info->latent[i] != m->z[i])
            wch->frame0_kept = 0;
        if (!isfinite(info->latent[i]) || !isfinite(info->noise_pred[i]))
            wch->finite = 0;
        if (info->noise_pred[i] != info->noise_pred_cond[i])
            wch->guided_differs = 1;
    }
    if (info->step == 0) {
        float *t = malloc(sizeof(float) * (size_t)m->seq_len);
        float *out = malloc(sizeof(float) * (size_t)info->n);
        int64_t k = 0;
        for (int64_t f = 0; f < F; f++)
            for (int64_t h = 0; h < H; h += 2)
                for (int64_t w = 0; w < W; w += 2)
                    t[k++] = m->mask[(f * H + h) * W + w] * (float)info->timestep;
        for (; k < m->seq_len; k++)
            t[k] = (float)info->timestep;
        struct reel_wan_dit_input in = {
            .frames = F, .height = H, .width = W,
            .t = t, .t_per_token = 1,
            .context = m->context, .context_len = m->ctx->shape[0],
            .seq_len = m->seq_len,
        };
        float *x = malloc(sizeof(float) * (size_t)info->n); /* step 0 input: noise, frame 0 = z */
        for (int64_t i = 0; i < info->n; i++)
            x[i] = m->mask[i] == 0.0f ? m->z[i] : m->noise[i];
        in.x = x;
        int rc = reel_wan_dit_forward(m->dit, &in, out, err);
        wch->cond_matches = rc == 0 && !memcmp(out, info->noise_pred_cond,
                                               sizeof(float) * (size_t)info->n);
        free(x);
        free(t);
        free(out);
    }
    return 0;
}

static void test_denoise_ti2v(void)
{
    struct ti2v m;
    if (ti2v_open(&m)) {
        ti2v_close(&m);
        return;
    }
    struct reel_err err = {0};
    struct reel_flow_sampler *s = NULL;
    float *lat = malloc(sizeof(float) * (size_t)m.n);
    float *lat2 = malloc(sizeof(float) * (size_t)m.n);
    memcpy(lat, m.noise, sizeof(float) * (size_t)m.n);
    int rc = reel_flow_sampler_create(REEL_FLOW_UNIPC, 3, 5.0, NULL, &s, &err);
    struct ti2v_watch wch = {&m, 1, 1, 0, 0, 0};
    struct reel_denoise_params p = ti2v_params(&m, s, 4.0);
    p.on_step = ti2v_watch_step;
    p.on_step_ctx = &wch;
    if (!rc)
        rc = reel_denoise(&p, lat, &err);
    CHECK(rc == 0 && wch.steps_seen == 3, "ti2v denoise runs 3 steps", "rc=%d %s", rc, err.msg);
    CHECK(wch.frame0_kept, "ti2v keeps the conditioned frame", "frame 0 changed");
    CHECK(wch.finite, "ti2v latents are finite", "non-finite value");
    CHECK(wch.cond_matches, "ti2v per-token timesteps follow mask * t",
          "conditional prediction differs from a direct DiT call");
    CHECK(wch.guided_differs, "guidance changes the prediction", "noise_pred == cond");

    /* Resume: step 0 only (end_step), checkpoint (latent + sampler state),
     * a fresh sampler loads it and runs the rest: bit-identical to one run. */
    struct reel_flow_sampler *a = NULL, *b = NULL;
    memcpy(lat2, m.noise, sizeof(float) * (size_t)m.n);
    memset(&err, 0, sizeof err);
    rc = reel_flow_sampler_create(REEL_FLOW_UNIPC, 3, 5.0, NULL, &a, &err);
    if (!rc)
        rc = reel_flow_sampler_create(REEL_FLOW_UNIPC, 3, 5.0, NULL, &b, &err);
    struct reel_denoise_params q = ti2v_params(&m, a, 4.0);
    q.end_step = 1;
    if (!rc)
        rc = reel_denoise(&q, lat2, &err);
    size_t bytes = a ? reel_flow_sampler_state_bytes(a) : 0;
    void *blob = malloc(bytes ? bytes : 1);
    if (!rc) {
        reel_flow_sampler_state_save(a, blob);
        rc = reel_flow_sampler_state_load(b, blob, bytes, &err);
    }
    q = ti2v_params(&m, b, 4.0);
    q.start_step = 1;
    if (!rc)
        rc = reel_denoise(&q, lat2, &err);
    CHECK(rc == 0 && !memcmp(lat, lat2, sizeof(float) * (size_t)m.n),
          "denoise resumed from a checkpoint is bit-identical", "rc=%d %s", rc, err.msg);
    free(blob);
    reel_flow_sampler_destroy(a);
    reel_flow_sampler_destroy(b);

    /* Argument errors. */
    struct reel_flow_sampler *e = NULL;
    reel_flow_sampler_create(REEL_FLOW_EULER, 2, 5.0, NULL, &e, &err);
    struct reel_denoise_params bad = ti2v_params(&m, e, 4.0);
    bad.channels = 16;
    memset(&err, 0, sizeof err);
    CHECK(reel_denoise(&bad, lat, &err) == REEL_E_SPEC, "denoise rejects a channel mismatch",
          "%s", err.msg);
    bad = ti2v_params(&m, e, 4.0);
    bad.context_null = NULL;
    memset(&err, 0, sizeof err);
    CHECK(reel_denoise(&bad, lat, &err) == REEL_E_SPEC, "guidance needs a negative context",
          "%s", err.msg);
    bad = ti2v_params(&m, e, 4.0);
    bad.start_step = 1;
    memset(&err, 0, sizeof err);
    CHECK(reel_denoise(&bad, lat, &err) != 0, "resume step must match the sampler", "%s",
          err.msg);
    reel_flow_sampler_destroy(e);
    reel_flow_sampler_destroy(s);
    free(lat);
    free(lat2);
    ti2v_close(&m);
}

int main(void)
{
    test_golden_schedules();
    test_schedule_shape();
    test_euler();
    test_gauss_flow();
    test_resume();
    test_errors();
    test_denoise_ti2v();
    TEST_EXIT();
}
