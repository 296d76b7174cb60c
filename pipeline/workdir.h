/* A job's work directory: the artifacts each stage writes and a record per
 * completed stage, so a render killed at any point resumes where it stopped.
 * A directory belongs to one job: its key (a hash of everything that shapes
 * the output) is stored on first use, and another job is refused. */
#ifndef REEL_WORKDIR_H
#define REEL_WORKDIR_H

#include <stddef.h>

#include "kernels/err.h"

struct reel_workdir;

/* Creates dir (and parents) if needed. job_key: any string identifying the
 * job; a directory holding another key is an error (REEL_E_SPEC) rather than
 * a silent mix of two jobs' artifacts. */
int reel_workdir_open(const char *dir, const char *job_key, struct reel_workdir **out,
                      struct reel_err *err);
void reel_workdir_close(struct reel_workdir *wd);
const char *reel_workdir_dir(const struct reel_workdir *wd);

/* "<dir>/<name>" into buf; returns buf. */
const char *reel_workdir_path(const struct reel_workdir *wd, const char *name, char *buf,
                              size_t n);

/* 1 when the stage's completion record exists. */
int reel_workdir_stage_done(const struct reel_workdir *wd, const char *stage);
/* Writes the stage's record (a JSON object text) atomically; after this the
 * stage counts as done. */
int reel_workdir_mark_done(struct reel_workdir *wd, const char *stage, const char *record_json,
                           struct reel_err *err);
/* The record text (malloc'd) or NULL when the stage is not done. */
char *reel_workdir_read_record(const struct reel_workdir *wd, const char *stage);

#endif
