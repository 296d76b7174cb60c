/* Work directories: job key check, stage completion records, atomic writes. */
#include "pipeline/workdir.h"

#include "kernels/atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct reel_workdir {
    char *dir;
};

static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *s = '/';
        }
    }
    int rc = (mkdir(p, 0755) != 0 && errno != EEXIST) ? -1 : 0;
    free(p);
    return rc;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int reel_workdir_open(const char *dir, const char *job_key, struct reel_workdir **out,
                      struct reel_err *err)
{
    *out = NULL;
    if (mkdir_p(dir) != 0)
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot create the work directory: %s", dir,
                         strerror(errno));
    struct reel_workdir *wd = calloc(1, sizeof *wd);
    if (!wd || !(wd->dir = strdup(dir))) {
        free(wd);
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    }
    char *keyfile = join(dir, "job.key");
    if (!keyfile) {
        reel_workdir_close(wd);
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    }
    char *have = reel_read_file(keyfile, NULL);
    int rc = REEL_OK;
    if (have) {
        if (strcmp(have, job_key) != 0)
            rc = reel_errf(err, REEL_E_SPEC,
                           "%s: the work directory holds another job (its job.key differs); "
                           "use another --workdir or delete it",
                           dir);
        free(have);
    } else {
        rc = reel_write_file_atomic(keyfile, job_key, strlen(job_key), err);
    }
    free(keyfile);
    if (rc) {
        reel_workdir_close(wd);
        return rc;
    }
    *out = wd;
    return REEL_OK;
}

void reel_workdir_close(struct reel_workdir *wd)
{
    if (!wd)
        return;
    free(wd->dir);
    free(wd);
}

const char *reel_workdir_dir(const struct reel_workdir *wd)
{
    return wd->dir;
}

const char *reel_workdir_path(const struct reel_workdir *wd, const char *name, char *buf,
                              size_t n)
{
    snprintf(buf, n, "%s/%s", wd->dir, name);
    return buf;
}

static void record_path(const struct reel_workdir *wd, const char *stage, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s.done", wd->dir, stage);
}

int reel_workdir_stage_done(const struct reel_workdir *wd, const char *stage)
{
    char p[4096];
    record_path(wd, stage, p, sizeof p);
    return access(p, F_OK) == 0;
}

int reel_workdir_mark_done(struct reel_workdir *wd, const char *stage, const char *record_json,
                           struct reel_err *err)
{
    char p[4096];
    record_path(wd, stage, p, sizeof p);
    return reel_write_file_atomic(p, record_json, strlen(record_json), err);
}

char *reel_workdir_read_record(const struct reel_workdir *wd, const char *stage)
{
    char p[4096];
    record_path(wd, stage, p, sizeof p);
    return reel_read_file(p, NULL);
}
