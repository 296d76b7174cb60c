/* Flow-matching samplers of the Wan pipelines: the sigma / timestep
 * schedules and the Euler, UniPC (FlowUniPCMultistepScheduler) and
 * DPM-Solver++ (FlowDPMSolverMultistepScheduler) update steps, reproducing the
 * reference's float32 / float64 arithmetic so golden trajectories match.
 *
 * The model is a flow (velocity) predictor v = noise - x0; a sample at sigma
 * is x = (1 - sigma) * x0 + sigma * noise, and sigma runs from ~1 down to 0. */
#ifndef REEL_FLOW_SAMPLER_H
#define REEL_FLOW_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"

enum reel_flow_solver {
    REEL_FLOW_EULER,  /* x += (sigma_next - sigma) * v, on the DPM++ sigma schedule */
    REEL_FLOW_UNIPC,  /* FlowUniPCMultistepScheduler.set_timesteps(N, shift) */
    REEL_FLOW_DPMPP,  /* FlowDPMSolverMultistepScheduler + get_sampling_sigmas(N, shift) */
};

/* Scheduler constructor settings; reel_flow_sampler_default_opts gives the
 * values the Wan pipelines use. */
struct reel_flow_sampler_opts {
    int num_train_timesteps;     /* 1000 */
    double init_shift;           /* the scheduler's constructor `shift` (Wan passes 1) */
    int solver_order;            /* 1..3; 2 */
    int lower_order_final;       /* 1 */
    int unipc_bh1;               /* UniPC solver_type: 0 = bh2 (default), 1 = bh1 */
    int unipc_predict_x0;        /* 1 */
    const int *disable_corrector;/* UniPC: step indices whose following corrector is off; copied */
    int n_disable_corrector;
    int dpm_heun;                /* DPM++ solver_type: 0 = midpoint (default), 1 = heun */
};

void reel_flow_sampler_default_opts(struct reel_flow_sampler_opts *o);

/* "euler", "unipc", "dpm++" (also "dpmpp", "dpm-solver++"); REEL_E_SPEC when unknown. */
int reel_flow_solver_from_name(const char *name, enum reel_flow_solver *out, struct reel_err *err);
const char *reel_flow_solver_name(enum reel_flow_solver kind);

/* The schedule alone: timesteps[steps] (int64, truncated sigma * T) and
 * sigmas[steps + 1] (float32, final 0). REEL_E_SPEC for steps < 1, a shift
 * that is not finite and > 0, or bad opts (opts NULL = defaults). */
int reel_flow_schedule(enum reel_flow_solver kind, int steps, double shift,
                       const struct reel_flow_sampler_opts *opts, int64_t *timesteps,
                       float *sigmas, struct reel_err *err);

struct reel_flow_sampler;

int reel_flow_sampler_create(enum reel_flow_solver kind, int steps, double shift,
                             const struct reel_flow_sampler_opts *opts,
                             struct reel_flow_sampler **out, struct reel_err *err);
void reel_flow_sampler_destroy(struct reel_flow_sampler *s);

enum reel_flow_solver reel_flow_sampler_kind(const struct reel_flow_sampler *s);
int reel_flow_sampler_steps(const struct reel_flow_sampler *s);
const int64_t *reel_flow_sampler_timesteps(const struct reel_flow_sampler *s); /* [steps] */
const float *reel_flow_sampler_sigmas(const struct reel_flow_sampler *s);      /* [steps + 1] */
/* Index of the step the next reel_flow_sampler_step call must be (0 after create/reset). */
int reel_flow_sampler_next_step(const struct reel_flow_sampler *s);

/* One solver step: model_output is the flow prediction at timesteps[step]
 * for `sample`; sample (n floats) is replaced by the sample at
 * sigmas[step + 1]. Steps must come in order 0, 1, ..., steps-1 (the
 * multistep solvers keep a history); n must stay the same. */
int reel_flow_sampler_step(struct reel_flow_sampler *s, int step, const float *model_output,
                           float *sample, int64_t n, struct reel_err *err);

/* Forgets the history so the schedule can be run again from step 0. */
void reel_flow_sampler_reset(struct reel_flow_sampler *s);

/* Resumable state (solver history and counters) as an opaque byte blob, so a
 * run checkpointed after step k continues bit-identically. Before the first
 * step the blob is just a header. save writes exactly state_bytes bytes;
 * load checks that the blob belongs to a sampler of the same kind, steps,
 * shift and options (REEL_E_MEDIA otherwise). */
size_t reel_flow_sampler_state_bytes(const struct reel_flow_sampler *s);
void reel_flow_sampler_state_save(const struct reel_flow_sampler *s, void *buf);
int reel_flow_sampler_state_load(struct reel_flow_sampler *s, const void *buf, size_t bytes,
                                 struct reel_err *err);

#endif
