/* One render job as the stages see it: the resolved spec, the work
 * directory, the backend and progress, and the per-stage wall times that
 * go into the manifest. */
#ifndef REEL_JOB_H
#define REEL_JOB_H

#include "kernels/backend.h"
#include "pipeline/progress.h"
#include "pipeline/spec.h"
#include "pipeline/workdir.h"

struct reel_job {
    const struct reel_spec *spec;
    struct reel_workdir *wd;
    struct reel_backend *be;
    struct reel_progress *progress;
};

/* Test hook for the kill-and-resume tests: when $REEL_KILL_AT equals
 * "<point>:<n>" the process sends itself SIGKILL here, exactly as an
 * operator's `kill -9` would land at that moment. Points: text, denoise
 * (after step n's checkpoint), decode (after n decoded latent frames),
 * mux (all frames encoded, before the outputs are finalised). */
void reel_job_kill_point(const char *point, long n);

/* The stages, one file each (stages/stage_*.c). Each reads its inputs from
 * the work directory, writes its artifacts there, and returns an error code. */
int reel_stage_text(struct reel_job *job, struct reel_err *err);
int reel_stage_denoise(struct reel_job *job, struct reel_err *err);
/* The joint video + audio loop of models with an audio tower (Ovi);
 * reel_stage_denoise hands such models to it. */
int reel_stage_denoise_av(struct reel_job *job, struct reel_err *err);
int reel_stage_decode(struct reel_job *job, struct reel_err *err);

/* `reel render` (pipeline/render_cmd.c). */
int reel_render_main(int argc, char **argv);

#endif
