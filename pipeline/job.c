/* The kill-point test hook (see pipeline/job.h). */
#include "pipeline/job.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reel_job_kill_point(const char *point, long n)
{
    const char *at = getenv("REEL_KILL_AT");
    if (!at || !*at)
        return;
    char want[64];
    snprintf(want, sizeof want, "%s:%ld", point, n);
    if (!strcmp(at, want))
        raise(SIGKILL);
}
