/* Progress of a render: on a TTY, one bar per stage with step count, it/s
 * and ETA; otherwise (or with --json) one JSON line per update on stderr:
 * {"stage":"denoise","step":3,"total":20,"elapsed":4.21}. */
#ifndef REEL_PROGRESS_H
#define REEL_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

struct reel_progress {
    FILE *out;
    int tty;          /* draw bars (else JSON lines) */
    const char *stage;
    int64_t total;
    double start;     /* monotonic seconds */
};

double reel_now(void); /* monotonic seconds */

/* json: force JSON lines even on a TTY. */
void reel_progress_init(struct reel_progress *p, FILE *out, int json);
void reel_progress_stage(struct reel_progress *p, const char *stage, int64_t total);
void reel_progress_step(struct reel_progress *p, int64_t step);
/* Ends the stage's line; skipped = the stage was already done in the work dir. */
void reel_progress_done(struct reel_progress *p, int skipped);

#endif
