/* `reel check`: runs the computation a golden safetensors file records
 * (chosen by its `reference` metadata) with the file's weights and inputs,
 * and compares the out.* tensors (and mid.* with --verbose). */
#ifndef REEL_CHECK_H
#define REEL_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"

struct reel_check {
    struct reel_st_file *file;
    struct reel_weights *weights;      /* the file's weights.* (prefix stripped) */
    const struct reel_json *config;    /* parsed `config` metadata */
    struct reel_backend *be;
    int verbose;                       /* compare mid.* too */
    int compared;                      /* tensors compared */
    int failed;                        /* tensors over tolerance */
    FILE *out;
    unsigned char *seen;               /* internal: file tensors already compared */
};

/* Compares n computed floats with file tensor `name` (F32 or I64), prints one
 * line "  name  max_abs=...  tol=...  ok|FAIL" and counts a failure when the
 * max abs error exceeds tol, the tensor is missing, or sizes differ.
 * mid.* tensors are skipped unless verbose. */
void reel_check_compare(struct reel_check *c, const char *name, const float *got, int64_t n,
                        double tol);
/* Same for integer results (exact match required). */
void reel_check_compare_i64(struct reel_check *c, const char *name, const int64_t *got,
                            int64_t n);
/* Fetches input tensor `name` as f32 (malloc'd copy; F32 or I64 converted).
 * Errors name the file and tensor. */
int reel_check_input_f32(struct reel_check *c, const char *name, float **out, int64_t *n,
                         struct reel_err *err);
/* The tensor of that name in the file, or NULL. */
const struct reel_tensor *reel_check_tensor(struct reel_check *c, const char *name);

/* Runners, one per computation kind. Each returns an error code only when it
 * could not run (bad file); tolerance failures are counted in c->failed. */
int reel_check_wan_dit(struct reel_check *c, struct reel_err *err);      /* pipeline/check_dit.c */
int reel_check_wan_vae(struct reel_check *c, struct reel_err *err);      /* pipeline/check_vae.c */
int reel_check_flow_sampler(struct reel_check *c, struct reel_err *err); /* pipeline/check_sampler.c */
int reel_check_mel(struct reel_check *c, struct reel_err *err);          /* pipeline/check_audio.c */
int reel_check_mmaudio_vae(struct reel_check *c, struct reel_err *err);  /* pipeline/check_audio.c */
int reel_check_bigvgan(struct reel_check *c, struct reel_err *err);      /* pipeline/check_audio.c */
int reel_check_umt5(struct reel_check *c, struct reel_err *err);         /* pipeline/check_umt5.c */
int reel_check_ovi_fusion(struct reel_check *c, struct reel_err *err);   /* pipeline/check_ovi.c */

/* Runs every file; prints PASS/FAIL per file; returns 0 only if all pass. */
int reel_check_main(int argc, char **argv);

#endif
