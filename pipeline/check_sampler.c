/* `reel check` runner for flow_unipc_schedule-style files: the UniPC and
 * DPM++ schedules listed in the config, and the CFG trajectories through the
 * file's DiT. Everything (step counts, shifts, guidance, shapes, solver
 * settings) comes from the file, so other configurations check too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/check.h"
#include "stages/denoise.h"
#include "stages/flow_sampler.h"
#include "stages/wan_dit.h"

#define TOL_SIGMA 1e-7
#define TOL_TRAJ 5e-5

#define MAX_DISABLE 64

/* Solver settings from the config; the keys mirror the reference
 * constructors' kwargs, with their defaults. */
struct sampler_cfg {
    struct reel_flow_sampler_opts unipc, dpmpp, euler;
    int disable[MAX_DISABLE];
};

static int bad_cfg(struct reel_check *c, struct reel_err *err, const char *what)
{
    return reel_errf(err, REEL_E_MODEL, "%s: config: %s", c->file->path, what);
}

static int read_final_sigmas(struct reel_check *c, const struct reel_json *obj,
                             struct reel_err *err)
{
    const char *f = reel_json_str(obj, "final_sigmas_type", "zero");
    if (strcmp(f, "zero"))
        return bad_cfg(c, err, "only final_sigmas_type \"zero\" is supported");
    return REEL_OK;
}

static int read_sampler_cfg(struct reel_check *c, struct sampler_cfg *sc, struct reel_err *err)
{
    const struct reel_json *cfg = c->config;
    struct reel_flow_sampler_opts base;
    reel_flow_sampler_default_opts(&base);
    base.num_train_timesteps = (int)reel_json_int(cfg, "num_train_timesteps", 1000);
    base.init_shift = reel_json_num(cfg, "scheduler_init_shift", 1.0);
    base.solver_order = (int)reel_json_int(cfg, "solver_order", 2);
    if (reel_json_bool(cfg, "use_dynamic_shifting", 0))
        return bad_cfg(c, err, "use_dynamic_shifting is not supported");
    sc->unipc = sc->dpmpp = sc->euler = base;

    const struct reel_json *u = reel_json_get(cfg, "unipc");
    const char *st = reel_json_str(u, "solver_type", "bh2");
    if (!strcmp(st, "bh1"))
        sc->unipc.unipc_bh1 = 1;
    else if (strcmp(st, "bh2") && strcmp(st, "midpoint") && strcmp(st, "heun") &&
             strcmp(st, "logrho")) /* the reference maps these three to bh2 */
        return bad_cfg(c, err, "unknown unipc solver_type");
    sc->unipc.unipc_predict_x0 = reel_json_bool(u, "predict_x0", 1);
    sc->unipc.lower_order_final = reel_json_bool(u, "lower_order_final", 1);
    if (reel_json_get(u, "solver_order"))
        sc->unipc.solver_order = (int)reel_json_int(u, "solver_order", 2);
    if (read_final_sigmas(c, u, err))
        return err->code;
    const struct reel_json *dc = reel_json_get(u, "disable_corrector");
    if (dc) {
        if (dc->type != REEL_JSON_ARRAY || dc->count > MAX_DISABLE)
            return bad_cfg(c, err, "unipc disable_corrector must be a list of step indices");
        for (size_t i = 0; i < dc->count; i++) {
            if (dc->items[i]->type != REEL_JSON_NUMBER || !dc->items[i]->is_integer)
                return bad_cfg(c, err, "unipc disable_corrector must be a list of integers");
            sc->disable[i] = (int)dc->items[i]->integer;
        }
        sc->unipc.disable_corrector = sc->disable;
        sc->unipc.n_disable_corrector = (int)dc->count;
    }

    const struct reel_json *d = reel_json_get(cfg, "dpmpp");
    const char *alg = reel_json_str(d, "algorithm_type", "dpmsolver++");
    if (strcmp(alg, "dpmsolver++") && strcmp(alg, "deis"))
        return bad_cfg(c, err, "only dpmpp algorithm_type \"dpmsolver++\" is supported");
    st = reel_json_str(d, "solver_type", "midpoint");
    if (!strcmp(st, "heun"))
        sc->dpmpp.dpm_heun = 1;
    else if (strcmp(st, "midpoint") && strcmp(st, "logrho") && strcmp(st, "bh1") &&
             strcmp(st, "bh2"))
        return bad_cfg(c, err, "unknown dpmpp solver_type");
    sc->dpmpp.lower_order_final = reel_json_bool(d, "lower_order_final", 1);
    if (reel_json_get(d, "solver_order"))
        sc->dpmpp.solver_order = (int)reel_json_int(d, "solver_order", 2);
    if (read_final_sigmas(c, d, err))
        return err->code;
    return REEL_OK;
}

static const struct reel_flow_sampler_opts *opts_for(const struct sampler_cfg *sc,
                                                     enum reel_flow_solver kind)
{
    return kind == REEL_FLOW_UNIPC ? &sc->unipc : kind == REEL_FLOW_DPMPP ? &sc->dpmpp
                                                                          : &sc->euler;
}

/* File-name spelling of a solver. */
static const char *file_kind(enum reel_flow_solver kind)
{
    return kind == REEL_FLOW_UNIPC ? "unipc" : kind == REEL_FLOW_DPMPP ? "dpmpp" : "euler";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* Parses a shift as a file name spells it ("5", "5.0", "3.5", "3p5", "3_5"). */
static int parse_shift(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    for (size_t i = 0; i < len; i++)
        buf[i] = (s[i] == 'p' || s[i] == '_') ? '.' : s[i];
    buf[len] = 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0 && isfinite(*out) ? 0 : -1;
}

/* Finds "out.<kind>_steps<N>_shift<S>" in the file, whatever spelling of S
 * it uses; falls back to the %g spelling (then reported missing). */
static void schedule_prefix(struct reel_check *c, enum reel_flow_solver kind, int steps,
                            double shift, char *buf, size_t len)
{
    char head[96];
    snprintf(head, sizeof head, "out.%s_steps%d_shift", file_kind(kind), steps);
    size_t hl = strlen(head);
    for (int i = 0; i < c->file->count; i++) {
        const char *name = c->file->tensors[i].name;
        if (strncmp(name, head, hl) || !ends_with(name, ".timesteps"))
            continue;
        double v;
        size_t mid = strlen(name) - hl - strlen(".timesteps");
        if (parse_shift(name + hl, mid, &v) == 0 && fabs(v - shift) <= 1e-9 * fmax(1, shift)) {
            snprintf(buf, len, "%.*s", (int)(hl + mid), name);
            return;
        }
    }
    snprintf(buf, len, "%s%g", head, shift);
}

static int check_schedule(struct reel_check *c, const struct sampler_cfg *sc,
                          enum reel_flow_solver kind, int steps, double shift,
                          struct reel_err *err)
{
    int64_t *ts = malloc(sizeof(int64_t) * (size_t)(steps > 0 ? steps : 1));
    float *sig = malloc(sizeof(float) * (size_t)(steps + 1 > 1 ? steps + 1 : 2));
    int rc = REEL_OK;
    if (!ts || !sig) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }
    rc = reel_flow_schedule(kind, steps, shift, opts_for(sc, kind), ts, sig, err);
    if (rc) {
        reel_err_prefix(err, "%s: schedule %s steps=%d shift=%g: ", c->file->path,
                        file_kind(kind), steps, shift);
        goto done;
    }
    char prefix[256], name[300];
    schedule_prefix(c, kind, steps, shift, prefix, sizeof prefix);
    snprintf(name, sizeof name, "%s.timesteps", prefix);
    reel_check_compare_i64(c, name, ts, steps);
    snprintf(name, sizeof name, "%s.sigmas", prefix);
    reel_check_compare(c, name, sig, steps + 1, TOL_SIGMA);
done:
    free(ts);
    free(sig);
    return rc;
}

/* Without a "schedules" list, the file's own tensor names say what to check. */
static int schedules_from_names(struct reel_check *c, const struct sampler_cfg *sc,
                                struct reel_err *err)
{
    static const enum reel_flow_solver kinds[] = {REEL_FLOW_UNIPC, REEL_FLOW_DPMPP,
                                                  REEL_FLOW_EULER};
    for (int i = 0; i < c->file->count; i++) {
        const char *name = c->file->tensors[i].name;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            char head[32];
            snprintf(head, sizeof head, "out.%s_steps", file_kind(kinds[k]));
            size_t hl = strlen(head);
            if (strncmp(name, head, hl) || !ends_with(name, ".timesteps"))
                continue;
            char *end;
            long steps = strtol(name + hl, &end, 10);
            if (end == name + hl || strncmp(end, "_shift", 6) || steps < 1 || steps > 100000)
                continue;
            const char *s = end + 6;
            double shift;
            if (parse_shift(s, strlen(s) - strlen(".timesteps"), &shift))
                continue;
            int rc = check_schedule(c, sc, kinds[k], (int)steps, shift, err);
            if (rc)
                return rc;
        }
    }
    return REEL_OK;
}

struct traj_ctx {
    struct reel_check *c;
    const char *prefix;
};

static int traj_step(void *ctx, const struct reel_denoise_step_info *info, struct reel_err *err)
{
    (void)err;
    struct traj_ctx *t = ctx;
    char name[256];
    snprintf(name, sizeof name, "mid.%s.noise_pred_cond_%d", t->prefix, info->step);
    reel_check_compare(t->c, name, info->noise_pred_cond, info->n, TOL_TRAJ);
    snprintf(name, sizeof name, "mid.%s.noise_pred_%d", t->prefix, info->step);
    reel_check_compare(t->c, name, info->noise_pred, info->n, TOL_TRAJ);
    snprintf(name, sizeof name, "out.%s.latent_%d", t->prefix, info->step);
    reel_check_compare(t->c, name, info->latent, info->n, TOL_TRAJ);
    return 0;
}

static int has_prefix_tensor(struct reel_check *c, const char *prefix)
{
    char head[128];
    snprintf(head, sizeof head, "out.%s.", prefix);
    size_t hl = strlen(head);
    for (int i = 0; i < c->file->count; i++)
        if (!strncmp(c->file->tensors[i].name, head, hl))
            return 1;
    return 0;
}

/* A required float input with the given number of dimensions. */
static int input_tensor(struct reel_check *c, const char *name, int ndim, float **data,
                        const struct reel_tensor **t, struct reel_err *err)
{
    *t = reel_check_tensor(c, name);
    if (!*t)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' is missing", c->file->path, name);
    if ((*t)->ndim != ndim)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' has %d dims, expected %d",
                         c->file->path, name, (*t)->ndim, ndim);
    return reel_check_input_f32(c, name, data, NULL, err);
}

static int check_trajectories(struct reel_check *c, const struct sampler_cfg *sc,
                              struct reel_err *err)
{
    static const enum reel_flow_solver kinds[] = {REEL_FLOW_UNIPC, REEL_FLOW_DPMPP,
                                                  REEL_FLOW_EULER};
    int any = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s_traj", file_kind(kinds[k]));
        any |= has_prefix_tensor(c, prefix);
    }
    if (!any)
        return REEL_OK;

    const struct reel_json *tj = reel_json_get(c->config, "trajectory");
    if (!tj || tj->type != REEL_JSON_OBJECT)
        return bad_cfg(c, err, "trajectory tensors without a \"trajectory\" object");
    const struct reel_json *st = reel_json_get(tj, "steps"), *sh = reel_json_get(tj, "shift");
    if (!st || st->type != REEL_JSON_NUMBER || !st->is_integer || !sh ||
        sh->type != REEL_JSON_NUMBER)
        return bad_cfg(c, err, "trajectory needs integer \"steps\" and a number \"shift\"");
    int steps = (int)st->integer;
    double shift = sh->number;
    double guide = reel_json_num(tj, "guide_scale", 1.0);
    int64_t seq_len = reel_json_int(tj, "seq_len", 0);

    struct reel_wan_dit_config dcfg;
    struct reel_wan_dit *dit = NULL;
    float *noise = NULL, *ctx = NULL, *ctx_null = NULL, *latent = NULL, *v = NULL;
    const struct reel_tensor *tn, *tc, *tcn = NULL;
    struct reel_flow_sampler *sampler = NULL;
    int rc;

    /* The input tensors are what the reference ran with; they win over the config. */
    const struct reel_tensor *tg = reel_check_tensor(c, "in.guide_scale");
    if (tg) {
        if ((rc = reel_check_input_f32(c, "in.guide_scale", &v, NULL, err)))
            goto done;
        guide = v[0];
        free(v);
        v = NULL;
    }
    const struct reel_tensor *tsl = reel_check_tensor(c, "in.seq_len");
    if (tsl) {
        if ((rc = reel_check_input_f32(c, "in.seq_len", &v, NULL, err)))
            goto done;
        seq_len = (int64_t)v[0];
        free(v);
        v = NULL;
    }

    if ((rc = input_tensor(c, "in.noise", 4, &noise, &tn, err)) ||
        (rc = input_tensor(c, "in.context", 2, &ctx, &tc, err)))
        goto done;
    if (guide != 1.0 && (rc = input_tensor(c, "in.context_null", 2, &ctx_null, &tcn, err)))
        goto done;
    if ((rc = reel_wan_dit_config_from_json(reel_json_get(c->config, "dit"), &dcfg, err))) {
        reel_err_prefix(err, "%s: config \"dit\": ", c->file->path);
        goto done;
    }
    if ((rc = reel_wan_dit_create(&dcfg, c->weights, c->be, &dit, err))) {
        reel_err_prefix(err, "%s: ", c->file->path);
        goto done;
    }
    const int64_t n = reel_tensor_numel(tn);
    latent = malloc(sizeof(float) * (size_t)n);
    if (!latent) {
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
        goto done;
    }

    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char prefix[64], name[128];
        snprintf(prefix, sizeof prefix, "%s_traj", file_kind(kinds[k]));
        if (!has_prefix_tensor(c, prefix))
            continue;
        if ((rc = reel_flow_sampler_create(kinds[k], steps, shift, opts_for(sc, kinds[k]),
                                           &sampler, err))) {
            reel_err_prefix(err, "%s: trajectory %s: ", c->file->path, prefix);
            goto done;
        }
        fprintf(c->out, "  %s: %s, %d steps, shift %g, guide_scale %g, seq_len %lld\n", prefix,
                reel_flow_solver_name(kinds[k]), steps, shift, guide, (long long)seq_len);
        memcpy(latent, noise, sizeof(float) * (size_t)n);
        struct traj_ctx tctx = {c, prefix};
        struct reel_denoise_params p = {
            .dit = dit,
            .dit_cfg = &dcfg,
            .sampler = sampler,
            .channels = tn->shape[0],
            .frames = tn->shape[1],
            .height = tn->shape[2],
            .width = tn->shape[3],
            .context = ctx,
            .context_len = tc->shape[0],
            .context_null = ctx_null,
            .context_null_len = tcn ? tcn->shape[0] : 0,
            .seq_len = seq_len,
            .guide_scale = guide,
            .on_step = traj_step,
            .on_step_ctx = &tctx,
        };
        if ((rc = reel_denoise(&p, latent, err))) {
            reel_err_prefix(err, "%s: trajectory %s: ", c->file->path, prefix);
            goto done;
        }
        snprintf(name, sizeof name, "out.%s.final", prefix);
        reel_check_compare(c, name, latent, n, TOL_TRAJ);
        snprintf(name, sizeof name, "out.%s.timesteps", prefix);
        reel_check_compare_i64(c, name, reel_flow_sampler_timesteps(sampler), steps);
        snprintf(name, sizeof name, "out.%s.sigmas", prefix);
        reel_check_compare(c, name, reel_flow_sampler_sigmas(sampler), steps + 1, TOL_SIGMA);
        reel_flow_sampler_destroy(sampler);
        sampler = NULL;
    }
    rc = REEL_OK;
done:
    reel_flow_sampler_destroy(sampler);
    reel_wan_dit_destroy(dit);
    free(noise);
    free(ctx);
    free(ctx_null);
    free(latent);
    free(v);
    return rc;
}

int reel_check_flow_sampler(struct reel_check *c, struct reel_err *err)
{
    struct sampler_cfg sc;
    int rc = read_sampler_cfg(c, &sc, err);
    if (rc)
        return rc;

    const struct reel_json *list = reel_json_get(c->config, "schedules");
    if (list) {
        if (list->type != REEL_JSON_ARRAY)
            return bad_cfg(c, err, "\"schedules\" must be a list of [steps, shift]");
        for (size_t i = 0; i < list->count; i++) {
            const struct reel_json *e = list->items[i];
            if (e->type != REEL_JSON_ARRAY || e->count != 2 ||
                e->items[0]->type != REEL_JSON_NUMBER || !e->items[0]->is_integer ||
                e->items[1]->type != REEL_JSON_NUMBER)
                return bad_cfg(c, err, "\"schedules\" entries must be [steps, shift]");
            int64_t steps = e->items[0]->integer;
            if (steps < 1 || steps > 100000)
                return bad_cfg(c, err, "\"schedules\" steps out of range");
            double shift = e->items[1]->number;
            if ((rc = check_schedule(c, &sc, REEL_FLOW_UNIPC, (int)steps, shift, err)) ||
                (rc = check_schedule(c, &sc, REEL_FLOW_DPMPP, (int)steps, shift, err)))
                return rc;
        }
    } else if ((rc = schedules_from_names(c, &sc, err))) {
        return rc;
    }
    return check_trajectories(c, &sc, err);
}
