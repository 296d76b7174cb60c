/* Work directories: job key guard, stage records, atomic writes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/atomic_file.h"
#include "pipeline/workdir.h"
#include "tests/test.h"

int main(void)
{
    char base[] = "/tmp/reel-wd-XXXXXX";
    if (!mkdtemp(base))
        return 1;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/a/b", base);
    struct reel_err err = {0};
    struct reel_workdir *wd = NULL;
    int rc = reel_workdir_open(dir, "job-1", &wd, &err);
    CHECK(rc == REEL_OK && wd, "creates nested work directory", "%s", err.msg);
    if (!wd)
        TEST_EXIT();
    CHECK(!reel_workdir_stage_done(wd, "text"), "fresh directory has no stage done", "done");
    rc = reel_workdir_mark_done(wd, "text", "{\"wall_s\":1.5}", &err);
    CHECK(rc == REEL_OK && reel_workdir_stage_done(wd, "text"), "mark done", "%s", err.msg);
    char *rec = reel_workdir_read_record(wd, "text");
    CHECK(rec && !strcmp(rec, "{\"wall_s\":1.5}"), "record reads back", "%s", rec ? rec : "-");
    free(rec);
    reel_workdir_close(wd);

    rc = reel_workdir_open(dir, "job-1", &wd, &err);
    CHECK(rc == REEL_OK && reel_workdir_stage_done(wd, "text"), "reopen same job keeps records",
          "%s", err.msg);
    reel_workdir_close(wd);

    struct reel_err e2 = {0};
    wd = NULL;
    rc = reel_workdir_open(dir, "job-2", &wd, &e2);
    CHECK(rc == REEL_E_SPEC && !wd && strstr(e2.msg, "another job"),
          "another job's directory is refused", "rc %d %s", rc, e2.msg);

    /* Aborted atomic write leaves nothing; committed one has the content. */
    char p[400];
    snprintf(p, sizeof p, "%s/x.txt", base);
    struct reel_atomic_file *af = NULL;
    rc = reel_atomic_open(p, &af, &err);
    if (af) {
        reel_atomic_write(af, "abc", 3, &err);
        reel_atomic_abort(af);
    }
    CHECK(access(p, F_OK) != 0, "aborted write leaves no file", "exists");
    rc = reel_write_file_atomic(p, "hello", 5, &err);
    size_t n = 0;
    char *txt = reel_read_file(p, &n);
    CHECK(rc == REEL_OK && txt && n == 5 && !strcmp(txt, "hello"), "atomic write content",
          "%s", err.msg);
    free(txt);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    CHECK(system(cmd) == 0, "cleanup", "rm failed");
    TEST_EXIT();
}
