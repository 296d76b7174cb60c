/* Flow-matching samplers: schedules and solver steps of Wan's
 * FlowUniPCMultistepScheduler and FlowDPMSolverMultistepScheduler, plus Euler.
 *
 * Precision follows the reference on purpose: the schedules are built in
 * float64 (numpy) and rounded to float32 at the end; the step coefficients
 * are computed on 0-dim float32 tensors (so logf/expf/expm1f here); the
 * elementwise updates are float32 in the reference's operation order, one
 * rounding per statement (no contraction into fma). */
#include "stages/flow_sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ORDER 3

struct reel_flow_sampler {
    enum reel_flow_solver kind;
    struct reel_flow_sampler_opts o; /* o.disable_corrector points at `disable` */
    int *disable;
    int steps;
    double shift;
    int64_t *timesteps;
    float *sigmas;

    int next;             /* index of the next step */
    int lower_order_nums; /* warm-up counter of the multistep solvers */
    int this_order;       /* UniPC: order of the last predictor (the next corrector's) */
    int have_last;        /* UniPC: last_sample holds the sample before the last predictor */
    int64_t n;            /* sample size, fixed by the first step (0 before) */
    float *mo[MAX_ORDER]; /* converted model outputs, mo[order-1] newest */
    float *scratch;       /* next converted output, rotated into mo */
    float *last_sample;   /* UniPC */
};

void reel_flow_sampler_default_opts(struct reel_flow_sampler_opts *o)
{
    memset(o, 0, sizeof *o);
    o->num_train_timesteps = 1000;
    o->init_shift = 1.0;
    o->solver_order = 2;
    o->lower_order_final = 1;
    o->unipc_bh1 = 0;
    o->unipc_predict_x0 = 1;
    o->dpm_heun = 0;
}

int reel_flow_solver_from_name(const char *name, enum reel_flow_solver *out, struct reel_err *err)
{
    static const struct {
        const char *name;
        enum reel_flow_solver kind;
    } names[] = {
        {"euler", REEL_FLOW_EULER},   {"unipc", REEL_FLOW_UNIPC},
        {"dpm++", REEL_FLOW_DPMPP},   {"dpmpp", REEL_FLOW_DPMPP},
        {"dpm-solver++", REEL_FLOW_DPMPP},
    };
    if (name)
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcasecmp(name, names[i].name)) {
                *out = names[i].kind;
                return REEL_OK;
            }
    return reel_errf(err, REEL_E_SPEC, "unknown sampler '%s' (expected euler, unipc or dpm++)",
                     name ? name : "(null)");
}

const char *reel_flow_solver_name(enum reel_flow_solver kind)
{
    switch (kind) {
    case REEL_FLOW_EULER: return "euler";
    case REEL_FLOW_UNIPC: return "unipc";
    case REEL_FLOW_DPMPP: return "dpm++";
    }
    return "?";
}

static int check_args(enum reel_flow_solver kind, int steps, double shift,
                      const struct reel_flow_sampler_opts *o, struct reel_err *err)
{
    if (kind != REEL_FLOW_EULER && kind != REEL_FLOW_UNIPC && kind != REEL_FLOW_DPMPP)
        return reel_errf(err, REEL_E_SPEC, "unknown sampler kind %d", (int)kind);
    if (steps < 1 || steps > 100000)
        return reel_errf(err, REEL_E_SPEC, "sampler steps must be 1..100000, got %d", steps);
    if (!isfinite(shift) || shift <= 0)
        return reel_errf(err, REEL_E_SPEC, "sampler shift must be a positive number, got %g",
                         shift);
    if (o->num_train_timesteps < 2 || o->num_train_timesteps > 10000000)
        return reel_errf(err, REEL_E_SPEC, "num_train_timesteps must be 2..1e7, got %d",
                         o->num_train_timesteps);
    if (!isfinite(o->init_shift) || o->init_shift <= 0)
        return reel_errf(err, REEL_E_SPEC, "scheduler shift must be a positive number, got %g",
                         o->init_shift);
    if (o->solver_order < 1 || o->solver_order > MAX_ORDER)
        return reel_errf(err, REEL_E_SPEC, "solver_order must be 1..%d, got %d", MAX_ORDER,
                         o->solver_order);
    if (o->n_disable_corrector < 0 || (o->n_disable_corrector > 0 && !o->disable_corrector))
        return reel_errf(err, REEL_E_SPEC, "bad disable_corrector list");
    return REEL_OK;
}

/* x -> shift*x / (1 + (shift-1)*x) in float64, as numpy evaluates it. */
static double shift_f64(double shift, double x)
{
    double num = shift * x;
    double t = (shift - 1.0) * x; /* separate statements: no fma contraction */
    double den = 1.0 + t;
    return num / den;
}

/* The same on a float32 tensor with a Python scalar (the scalar is rounded
 * to float32 first, every operation rounds to float32). */
static float shift_f32(double shift, float x)
{
    float s = (float)shift, sm1 = (float)(shift - 1.0);
    float num = s * x;
    float t = sm1 * x;
    float den = 1.0f + t;
    return num / den;
}

/* numpy.linspace(start, stop, num)[i] for i < num - 1 (the last element is
 * `stop` exactly, which the schedules never keep). */
static double linspace_at(double start, double stop, int num, int i)
{
    double step = (stop - start) / (double)(num - 1);
    double y = (double)i * step;
    return y + start;
}

int reel_flow_schedule(enum reel_flow_solver kind, int steps, double shift,
                       const struct reel_flow_sampler_opts *opts, int64_t *timesteps,
                       float *sigmas, struct reel_err *err)
{
    struct reel_flow_sampler_opts def;
    if (!opts) {
        reel_flow_sampler_default_opts(&def);
        opts = &def;
    }
    int rc = check_args(kind, steps, shift, opts, err);
    if (rc)
        return rc;
    const int T = opts->num_train_timesteps;
    for (int i = 0; i < steps; i++) {
        double s;
        if (kind == REEL_FLOW_UNIPC) {
            /* Constructor: sigmas = float32(1 - linspace(1, 1/T, T)[::-1]),
             * shifted by the constructor shift in float32; set_timesteps then
             * spans [sigma_max, sigma_min] = [sigmas[0], sigmas[-1]] in float64
             * (so the schedule starts at 0.999 for T = 1000, timestep 999). */
            float smax32 = (float)(1.0 - 1.0 / T);
            float smin32 = (float)(1.0 - linspace_at(1.0, 1.0 / T, T, 0));
            double smax = shift_f32(opts->init_shift, smax32);
            double smin = shift_f32(opts->init_shift, smin32);
            s = linspace_at(smax, smin, steps + 1, i);
            s = shift_f64(shift, s);
        } else {
            /* get_sampling_sigmas(N, shift), then set_timesteps(sigmas=...)
             * applies the constructor shift once more (identity for 1). */
            s = linspace_at(1.0, 0.0, steps + 1, i);
            s = shift_f64(shift, s);
            s = shift_f64(opts->init_shift, s);
        }
        double t = s * (double)T;
        timesteps[i] = (int64_t)t; /* torch .to(int64) truncates */
        sigmas[i] = (float)s;
    }
    sigmas[steps] = 0.0f; /* final_sigmas_type "zero" */
    return REEL_OK;
}

int reel_flow_sampler_create(enum reel_flow_solver kind, int steps, double shift,
                             const struct reel_flow_sampler_opts *opts,
                             struct reel_flow_sampler **out, struct reel_err *err)
{
    struct reel_flow_sampler_opts def;
    if (!opts) {
        reel_flow_sampler_default_opts(&def);
        opts = &def;
    }
    *out = NULL;
    int rc = check_args(kind, steps, shift, opts, err);
    if (rc)
        return rc;
    struct reel_flow_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return reel_errf(err, REEL_E_OTHER, "out of memory creating the sampler");
    s->kind = kind;
    s->o = *opts;
    s->steps = steps;
    s->shift = shift;
    s->timesteps = malloc(sizeof(int64_t) * (size_t)steps);
    s->sigmas = malloc(sizeof(float) * (size_t)(steps + 1));
    if (opts->n_disable_corrector > 0) {
        s->disable = malloc(sizeof(int) * (size_t)opts->n_disable_corrector);
        if (s->disable)
            memcpy(s->disable, opts->disable_corrector,
                   sizeof(int) * (size_t)opts->n_disable_corrector);
    }
    s->o.disable_corrector = s->disable;
    if (!s->timesteps || !s->sigmas || (opts->n_disable_corrector > 0 && !s->disable)) {
        reel_flow_sampler_destroy(s);
        return reel_errf(err, REEL_E_OTHER, "out of memory creating the sampler");
    }
    rc = reel_flow_schedule(kind, steps, shift, &s->o, s->timesteps, s->sigmas, err);
    if (rc) {
        reel_flow_sampler_destroy(s);
        return rc;
    }
    *out = s;
    return REEL_OK;
}

static void free_buffers(struct reel_flow_sampler *s)
{
    for (int i = 0; i < MAX_ORDER; i++) {
        free(s->mo[i]);
        s->mo[i] = NULL;
    }
    free(s->scratch);
    free(s->last_sample);
    s->scratch = s->last_sample = NULL;
    s->n = 0;
}

void reel_flow_sampler_destroy(struct reel_flow_sampler *s)
{
    if (!s)
        return;
    free_buffers(s);
    free(s->timesteps);
    free(s->sigmas);
    free(s->disable);
    free(s);
}

enum reel_flow_solver reel_flow_sampler_kind(const struct reel_flow_sampler *s)
{
    return s->kind;
}
int reel_flow_sampler_steps(const struct reel_flow_sampler *s)
{
    return s->steps;
}
const int64_t *reel_flow_sampler_timesteps(const struct reel_flow_sampler *s)
{
    return s->timesteps;
}
const float *reel_flow_sampler_sigmas(const struct reel_flow_sampler *s)
{
    return s->sigmas;
}
int reel_flow_sampler_next_step(const struct reel_flow_sampler *s)
{
    return s->next;
}

void reel_flow_sampler_reset(struct reel_flow_sampler *s)
{
    s->next = 0;
    s->lower_order_nums = 0;
    s->this_order = 0;
    s->have_last = 0;
    free_buffers(s); /* the next run may use another sample size */
}

/* Number of history buffers the solver keeps. */
static int hist_count(const struct reel_flow_sampler *s)
{
    return s->kind == REEL_FLOW_EULER ? 0 : s->o.solver_order;
}

static int alloc_buffers(struct reel_flow_sampler *s, int64_t n, struct reel_err *err)
{
    if (n <= 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return reel_errf(err, REEL_E_OTHER, "sampler: bad sample size %lld", (long long)n);
    size_t bytes = sizeof(float) * (size_t)n;
    int nh = hist_count(s);
    for (int i = 0; i < nh; i++)
        if (!(s->mo[i] = calloc(1, bytes)))
            goto oom;
    if (nh > 0 && !(s->scratch = calloc(1, bytes)))
        goto oom;
    if (s->kind == REEL_FLOW_UNIPC && !(s->last_sample = calloc(1, bytes)))
        goto oom;
    s->n = n;
    return REEL_OK;
oom:
    free_buffers(s);
    return reel_errf(err, REEL_E_OTHER, "out of memory for the sampler history (%lld floats)",
                     (long long)n);
}

/* lambda = log(alpha) - log(sigma) with alpha = 1 - sigma, on float32. */
static float lambda_of(float sigma)
{
    float alpha = 1.0f - sigma;
    float la = logf(alpha);
    float ls = logf(sigma);
    return la - ls;
}

/* Solves A x = b (n <= 3) by Gaussian elimination with partial pivoting in
 * float32, as LAPACK sgesv does for torch.linalg.solve: multipliers via the
 * pivot's reciprocal, back substitution by division. */
static void solve_small(int n, float a[MAX_ORDER][MAX_ORDER], float *b, float *x)
{
    for (int j = 0; j < n; j++) {
        int p = j;
        for (int i = j + 1; i < n; i++)
            if (fabsf(a[i][j]) > fabsf(a[p][j]))
                p = i;
        if (p != j) {
            for (int k = 0; k < n; k++) {
                float t = a[j][k];
                a[j][k] = a[p][k];
                a[p][k] = t;
            }
            float t = b[j];
            b[j] = b[p];
            b[p] = t;
        }
        float r = 1.0f / a[j][j];
        for (int i = j + 1; i < n; i++) {
            float l = a[i][j] * r;
            for (int k = j + 1; k < n; k++) {
                float t = l * a[j][k];
                a[i][k] = a[i][k] - t;
            }
            float t = l * b[j];
            b[i] = b[i] - t;
        }
    }
    for (int j = n - 1; j >= 0; j--) {
        float v = b[j];
        for (int k = j + 1; k < n; k++) {
            float t = a[j][k] * x[k];
            v = v - t;
        }
        x[j] = v / a[j][j];
    }
}

/* The UniPC B(h) coefficients shared by the predictor and the corrector. */
struct unipc_coef {
    float c_x;   /* sigma_t / sigma_s0 (x0 form) or alpha_t / alpha_s0 */
    float c_m0;  /* alpha_t * h_phi_1 (x0 form) or sigma_t * h_phi_1 */
    float c_b;   /* alpha_t * B_h or sigma_t * B_h */
    float rk[MAX_ORDER];     /* rks, rk[order-1] = 1 */
    float b[MAX_ORDER];      /* right-hand side of the rho system */
};

/* sigma_t is the target, s0 the current point; prev[i-1] is the sigma index
 * of the (i+1)-th newest history entry, for i = 1..order-1. */
static void unipc_coefs(const struct reel_flow_sampler *s, int t_idx, int s0_idx,
                        const int *prev, int order, struct unipc_coef *c)
{
    float sigma_t = s->sigmas[t_idx], sigma_s0 = s->sigmas[s0_idx];
    float alpha_t = 1.0f - sigma_t, alpha_s0 = 1.0f - sigma_s0;
    float lambda_t = lambda_of(sigma_t), lambda_s0 = lambda_of(sigma_s0);
    float h = lambda_t - lambda_s0;
    for (int i = 1; i < order; i++) {
        float lambda_si = lambda_of(s->sigmas[prev[i - 1]]);
        float d = lambda_si - lambda_s0;
        c->rk[i - 1] = d / h;
    }
    c->rk[order - 1] = 1.0f;

    int x0 = s->o.unipc_predict_x0;
    float hh = x0 ? -h : h;
    float h_phi_1 = expm1f(hh);
    float h_phi_k = h_phi_1 / hh;
    h_phi_k = h_phi_k - 1.0f;
    float B_h = s->o.unipc_bh1 ? hh : expm1f(hh);
    int64_t factorial_i = 1;
    for (int i = 1; i <= order; i++) {
        float t = h_phi_k * (float)factorial_i;
        c->b[i - 1] = t / B_h;
        factorial_i *= i + 1;
        float q = h_phi_k / hh;
        h_phi_k = q - (float)(1.0 / (double)factorial_i);
    }
    if (x0) {
        c->c_x = sigma_t / sigma_s0;
        c->c_m0 = alpha_t * h_phi_1;
        c->c_b = alpha_t * B_h;
    } else {
        c->c_x = alpha_t / alpha_s0;
        c->c_m0 = sigma_t * h_phi_1;
        c->c_b = sigma_t * B_h;
    }
}

/* R[i][k] = rks[k]^i (torch.pow with an integer exponent). */
static void unipc_matrix(const struct unipc_coef *c, int n, float r[MAX_ORDER][MAX_ORDER])
{
    for (int k = 0; k < n; k++) {
        float p = 1.0f;
        for (int i = 0; i < n; i++) {
            r[i][k] = p;
            p = p * c->rk[k];
        }
    }
}

/* x_t = c_x*x - c_m0*m0 - c_b*(sum_k rho[k]*(m_k - m0)/rk[k] + rho_t*(model_t - m0)),
 * with the model_t term only for the corrector (model_t != NULL). hist[k]
 * is the (k+2)-th newest history entry, m0 the newest. */
static void unipc_update(const struct unipc_coef *c, int nd, const float *rho, float rho_t,
                         const float *const *hist, const float *m0, const float *model_t,
                         const float *x, float *out, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        float a = c->c_x * x[j];
        float b = c->c_m0 * m0[j];
        float xt = a - b;
        int any = 0;
        float res = 0.0f;
        for (int k = 0; k < nd; k++) {
            float diff = hist[k][j] - m0[j];
            float d1 = diff / c->rk[k];
            float term = rho[k] * d1;
            res = any ? res + term : term;
            any = 1;
        }
        if (model_t) {
            float d1t = model_t[j] - m0[j];
            float term = rho_t * d1t;
            res = any ? res + term : term;
            any = 1;
        }
        if (any) {
            float corr = c->c_b * res;
            xt = xt - corr;
        }
        out[j] = xt;
    }
}

static int corrector_disabled(const struct reel_flow_sampler *s, int idx)
{
    for (int i = 0; i < s->o.n_disable_corrector; i++)
        if (s->o.disable_corrector[i] == idx)
            return 1;
    return 0;
}

static void unipc_step(struct reel_flow_sampler *s, int k, const float *v, float *sample)
{
    const int order_cfg = s->o.solver_order;
    const int64_t n = s->n;
    const float sigma = s->sigmas[k];
    int use_corrector = k > 0 && !corrector_disabled(s, k - 1) && s->have_last;

    /* convert_model_output on the uncorrected sample. */
    float *conv = s->scratch;
    if (s->o.unipc_predict_x0) {
        for (int64_t j = 0; j < n; j++) {
            float t = sigma * v[j];
            conv[j] = sample[j] - t;
        }
    } else {
        float one_minus = 1.0f - sigma;
        for (int64_t j = 0; j < n; j++) {
            float t = one_minus * v[j];
            conv[j] = sample[j] + t;
        }
    }

    if (use_corrector) {
        /* UniC with the previous predictor's order: from sigma[k-1] (where
         * last_sample was) to sigma[k], using the new output as model_t. */
        int order = s->this_order;
        int prev[MAX_ORDER] = {0};
        const float *hist[MAX_ORDER] = {0};
        for (int i = 1; i < order; i++) {
            prev[i - 1] = k - (i + 1);
            hist[i - 1] = s->mo[order_cfg - 1 - i];
        }
        struct unipc_coef c;
        unipc_coefs(s, k, k - 1, prev, order, &c);
        float rhos[MAX_ORDER];
        if (order == 1) {
            rhos[0] = 0.5f;
        } else {
            float r[MAX_ORDER][MAX_ORDER];
            unipc_matrix(&c, order, r);
            solve_small(order, r, c.b, rhos);
        }
        unipc_update(&c, order - 1, rhos, rhos[order - 1], hist, s->mo[order_cfg - 1], conv,
                     s->last_sample, sample, n);
    }

    /* Push the new output into the history. */
    float *oldest = s->mo[0];
    for (int i = 0; i < order_cfg - 1; i++)
        s->mo[i] = s->mo[i + 1];
    s->mo[order_cfg - 1] = conv;
    s->scratch = oldest;

    int this_order = order_cfg;
    if (s->o.lower_order_final && s->steps - k < this_order)
        this_order = s->steps - k;
    if (this_order > s->lower_order_nums + 1)
        this_order = s->lower_order_nums + 1;
    s->this_order = this_order;

    memcpy(s->last_sample, sample, sizeof(float) * (size_t)n);
    s->have_last = 1;

    /* UniP from sigma[k] to sigma[k+1]. */
    int prev[MAX_ORDER] = {0};
    const float *hist[MAX_ORDER] = {0};
    for (int i = 1; i < this_order; i++) {
        prev[i - 1] = k - i;
        hist[i - 1] = s->mo[order_cfg - 1 - i];
    }
    struct unipc_coef c;
    unipc_coefs(s, k + 1, k, prev, this_order, &c);
    float rhos[MAX_ORDER] = {0};
    if (this_order == 2) {
        rhos[0] = 0.5f; /* the reference's simplified order-2 predictor */
    } else if (this_order > 2) {
        float r[MAX_ORDER][MAX_ORDER];
        unipc_matrix(&c, this_order - 1, r);
        solve_small(this_order - 1, r, c.b, rhos);
    }
    unipc_update(&c, this_order - 1, rhos, 0.0f, hist, s->mo[order_cfg - 1], NULL,
                 s->last_sample, sample, n);

    if (s->lower_order_nums < order_cfg)
        s->lower_order_nums++;
}

static void dpmpp_step(struct reel_flow_sampler *s, int k, const float *v, float *sample)
{
    const int order_cfg = s->o.solver_order;
    const int64_t n = s->n;
    const int N = s->steps;
    /* final_sigmas_type "zero" always ends with a first-order step. */
    int lower_final = k == N - 1;
    int lower_second = k == N - 2 && s->o.lower_order_final && N < 15;

    const float sigma = s->sigmas[k];
    float *conv = s->scratch;
    for (int64_t j = 0; j < n; j++) {
        float t = sigma * v[j];
        conv[j] = sample[j] - t;
    }
    float *oldest = s->mo[0];
    for (int i = 0; i < order_cfg - 1; i++)
        s->mo[i] = s->mo[i + 1];
    s->mo[order_cfg - 1] = conv;
    s->scratch = oldest;

    float sigma_t = s->sigmas[k + 1], sigma_s0 = sigma;
    float alpha_t = 1.0f - sigma_t;
    float lambda_t = lambda_of(sigma_t), lambda_s0 = lambda_of(sigma_s0);
    float h = lambda_t - lambda_s0;
    float e = expf(-h);
    float em1 = e - 1.0f;
    float c_x = sigma_t / sigma_s0;
    float c_d0 = alpha_t * em1;
    const float *m0 = s->mo[order_cfg - 1];

    if (order_cfg == 1 || s->lower_order_nums < 1 || lower_final) {
        for (int64_t j = 0; j < n; j++) {
            float a = c_x * sample[j];
            float b = c_d0 * m0[j];
            sample[j] = a - b;
        }
    } else if (order_cfg == 2 || s->lower_order_nums < 2 || lower_second) {
        const float *m1 = s->mo[order_cfg - 2];
        float lambda_s1 = lambda_of(s->sigmas[k - 1]);
        float h_0 = lambda_s0 - lambda_s1;
        float r0 = h_0 / h;
        float inv_r0 = 1.0f / r0;
        float c_d1;
        if (!s->o.dpm_heun) {
            c_d1 = 0.5f * c_d0; /* subtracted */
        } else {
            float q = em1 / h;
            q = q + 1.0f;
            c_d1 = alpha_t * q; /* added */
        }
        for (int64_t j = 0; j < n; j++) {
            float diff = m0[j] - m1[j];
            float d1 = inv_r0 * diff;
            float a = c_x * sample[j];
            float b = c_d0 * m0[j];
            float x = a - b;
            float t = c_d1 * d1;
            sample[j] = s->o.dpm_heun ? x + t : x - t;
        }
    } else {
        const float *m1 = s->mo[order_cfg - 2], *m2 = s->mo[order_cfg - 3];
        float lambda_s1 = lambda_of(s->sigmas[k - 1]);
        float lambda_s2 = lambda_of(s->sigmas[k - 2]);
        float h_0 = lambda_s0 - lambda_s1, h_1 = lambda_s1 - lambda_s2;
        float r0 = h_0 / h, r1 = h_1 / h;
        float inv_r0 = 1.0f / r0, inv_r1 = 1.0f / r1;
        float r01 = r0 + r1;
        float w = r0 / r01;
        float inv_r01 = 1.0f / r01;
        float q1 = em1 / h;
        q1 = q1 + 1.0f;
        float c_d1 = alpha_t * q1;
        float q2 = em1 + h;
        float hsq = h * h;
        q2 = q2 / hsq;
        q2 = q2 - 0.5f;
        float c_d2 = alpha_t * q2;
        for (int64_t j = 0; j < n; j++) {
            float d01 = m0[j] - m1[j];
            float d1_0 = inv_r0 * d01;
            float d12 = m1[j] - m2[j];
            float d1_1 = inv_r1 * d12;
            float dd = d1_0 - d1_1;
            float wd = w * dd;
            float d1 = d1_0 + wd;
            float d2 = inv_r01 * dd;
            float a = c_x * sample[j];
            float b = c_d0 * m0[j];
            float x = a - b;
            float t1 = c_d1 * d1;
            x = x + t1;
            float t2 = c_d2 * d2;
            sample[j] = x - t2;
        }
    }
    if (s->lower_order_nums < order_cfg)
        s->lower_order_nums++;
}

int reel_flow_sampler_step(struct reel_flow_sampler *s, int step, const float *model_output,
                           float *sample, int64_t n, struct reel_err *err)
{
    if (step != s->next)
        return reel_errf(err, REEL_E_OTHER,
                         "sampler: step %d called, expected step %d (steps run in order)", step,
                         s->next);
    if (step >= s->steps)
        return reel_errf(err, REEL_E_OTHER, "sampler: step %d past the last step %d", step,
                         s->steps - 1);
    if (s->n == 0) {
        int rc = alloc_buffers(s, n, err);
        if (rc)
            return rc;
    } else if (n != s->n) {
        return reel_errf(err, REEL_E_OTHER, "sampler: sample size changed from %lld to %lld",
                         (long long)s->n, (long long)n);
    }
    switch (s->kind) {
    case REEL_FLOW_EULER: {
        float dt = s->sigmas[step + 1] - s->sigmas[step];
        for (int64_t j = 0; j < n; j++) {
            float t = dt * model_output[j];
            sample[j] = sample[j] + t;
        }
        break;
    }
    case REEL_FLOW_UNIPC:
        unipc_step(s, step, model_output, sample);
        break;
    case REEL_FLOW_DPMPP:
        dpmpp_step(s, step, model_output, sample);
        break;
    }
    s->next++;
    return REEL_OK;
}

/* State blob: a fixed header, then the history buffers and last_sample. */
#define STATE_MAGIC 0x4c46534c /* "LSFL" */
struct state_header {
    uint32_t magic, version;
    int32_t kind, steps, order, num_train, lower_order_final, flags;
    double shift, init_shift;
    int32_t next, lower_order_nums, this_order, have_last;
    int64_t n;
    int32_t nbuf, pad;
};

static int buffer_list(const struct reel_flow_sampler *s, float **bufs)
{
    int nb = 0;
    if (s->n == 0)
        return 0;
    for (int i = 0; i < hist_count(s); i++)
        bufs[nb++] = s->mo[i];
    if (s->last_sample)
        bufs[nb++] = s->last_sample;
    return nb;
}

static void fill_header(const struct reel_flow_sampler *s, struct state_header *h)
{
    memset(h, 0, sizeof *h);
    h->magic = STATE_MAGIC;
    h->version = 1;
    h->kind = (int32_t)s->kind;
    h->steps = s->steps;
    h->order = s->o.solver_order;
    h->num_train = s->o.num_train_timesteps;
    h->lower_order_final = s->o.lower_order_final;
    h->flags = (s->o.unipc_bh1 ? 1 : 0) | (s->o.unipc_predict_x0 ? 2 : 0) |
               (s->o.dpm_heun ? 4 : 0);
    h->shift = s->shift;
    h->init_shift = s->o.init_shift;
    h->next = s->next;
    h->lower_order_nums = s->lower_order_nums;
    h->this_order = s->this_order;
    h->have_last = s->have_last;
    h->n = s->n;
}

size_t reel_flow_sampler_state_bytes(const struct reel_flow_sampler *s)
{
    float *bufs[MAX_ORDER + 1];
    int nb = buffer_list(s, bufs);
    return sizeof(struct state_header) + (size_t)nb * sizeof(float) * (size_t)s->n;
}

void reel_flow_sampler_state_save(const struct reel_flow_sampler *s, void *buf)
{
    struct state_header h;
    fill_header(s, &h);
    float *bufs[MAX_ORDER + 1];
    h.nbuf = buffer_list(s, bufs);
    char *p = buf;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    for (int i = 0; i < h.nbuf; i++) {
        memcpy(p, bufs[i], sizeof(float) * (size_t)s->n);
        p += sizeof(float) * (size_t)s->n;
    }
}

int reel_flow_sampler_state_load(struct reel_flow_sampler *s, const void *buf, size_t bytes,
                                 struct reel_err *err)
{
    struct state_header h, mine;
    if (bytes < sizeof h)
        return reel_errf(err, REEL_E_MEDIA, "sampler state: %zu bytes, too short", bytes);
    memcpy(&h, buf, sizeof h);
    fill_header(s, &mine);
    if (h.magic != STATE_MAGIC || h.version != 1)
        return reel_errf(err, REEL_E_MEDIA, "sampler state: not a reel sampler state");
    if (h.kind != mine.kind || h.steps != mine.steps || h.order != mine.order ||
        h.num_train != mine.num_train || h.lower_order_final != mine.lower_order_final ||
        h.flags != mine.flags || h.shift != mine.shift || h.init_shift != mine.init_shift)
        return reel_errf(err, REEL_E_MEDIA,
                         "sampler state: saved by a different sampler (%s, %d steps, shift %g)",
                         reel_flow_solver_name((enum reel_flow_solver)h.kind), h.steps, h.shift);
    if (h.next < 0 || h.next > h.steps || h.lower_order_nums < 0 ||
        h.lower_order_nums > h.order || h.this_order < 0 || h.this_order > h.order ||
        (h.have_last != 0 && h.have_last != 1) || h.n < 0 || (h.n == 0 && h.next != 0) ||
        (uint64_t)h.n > SIZE_MAX / sizeof(float) / (MAX_ORDER + 1))
        return reel_errf(err, REEL_E_MEDIA, "sampler state: inconsistent counters");
    if (s->n != 0 && h.n != s->n)
        free_buffers(s); /* a different size, or a state from before the first step */
    if (h.n != 0 && s->n == 0) {
        int rc = alloc_buffers(s, h.n, err);
        if (rc)
            return rc;
    }
    float *bufs[MAX_ORDER + 1];
    int nb = h.n ? buffer_list(s, bufs) : 0;
    if (h.nbuf != nb || bytes != sizeof h + (size_t)nb * sizeof(float) * (size_t)h.n)
        return reel_errf(err, REEL_E_MEDIA, "sampler state: %zu bytes, size does not match",
                         bytes);
    const char *p = (const char *)buf + sizeof h;
    for (int i = 0; i < nb; i++) {
        memcpy(bufs[i], p, sizeof(float) * (size_t)h.n);
        p += sizeof(float) * (size_t)h.n;
    }
    s->next = h.next;
    s->lower_order_nums = h.lower_order_nums;
    s->this_order = h.this_order;
    s->have_last = h.have_last;
    return REEL_OK;
}
