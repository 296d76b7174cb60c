/* reel_st_write: round trip through the validating reader, metadata, and
 * no file (or temp file) left behind when the write fails. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/safetensors.h"
#include "tests/test.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/reel-stw-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);

    float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    uint16_t b[3] = {reel_f32_to_bf16(1.5f), reel_f32_to_bf16(-2.0f), reel_f32_to_bf16(0.25f)};
    int64_t c[2] = {999, -5};
    struct reel_tensor ts[3] = {
        {.dtype = REEL_F32, .ndim = 2, .shape = {2, 3}, .data = a, .name = "latent"},
        {.dtype = REEL_BF16, .ndim = 1, .shape = {3}, .data = b, .name = "w\"q"},
        {.dtype = REEL_I64, .ndim = 1, .shape = {2}, .data = c, .name = "steps"},
    };
    const char *meta[] = {"stage", "denoise", "note", "line\nbreak \"quoted\""};
    struct reel_err err = {0};
    int rc = reel_st_write(path, ts, 3, meta, 2, &err);
    CHECK(rc == REEL_OK, "write succeeds", "%s", err.msg);

    struct reel_st_file *f = NULL;
    rc = reel_st_open(path, &f, &err);
    CHECK(rc == REEL_OK, "written file validates", "%s", err.msg);
    if (f) {
        const struct reel_tensor *t = reel_st_find(f, "latent");
        CHECK(t && t->ndim == 2 && t->shape[1] == 3 && !memcmp(t->data, a, sizeof a),
              "f32 tensor round trip", "mismatch");
        t = reel_st_find(f, "w\"q");
        float v[3];
        if (t)
            reel_tensor_to_f32(t, 0, 3, v);
        CHECK(t && v[0] == 1.5f && v[1] == -2.0f && v[2] == 0.25f, "bf16 tensor round trip",
              "mismatch");
        t = reel_st_find(f, "steps");
        CHECK(t && t->dtype == REEL_I64 && !memcmp(t->data, c, sizeof c), "i64 tensor round trip",
              "mismatch");
        const char *m = reel_st_meta(f, "note");
        CHECK(m && !strcmp(m, "line\nbreak \"quoted\""), "metadata with escapes round trip",
              "got '%s'", m ? m : "(null)");
        CHECK((f->data_start % 8) == 0, "data starts 8-byte aligned", "data_start %zu",
              f->data_start);
        reel_st_close(f);
    }
    CHECK(count_entries(dir) == 1, "no temp file left after a write", "%d entries",
          count_entries(dir));

    /* A directory that does not exist: an error naming the file, nothing left. */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing/b.safetensors", dir);
    struct reel_err err2 = {0};
    rc = reel_st_write(bad, ts, 3, NULL, 0, &err2);
    CHECK(rc == REEL_E_MEDIA && strstr(err2.msg, "b.safetensors"),
          "unwritable path is a media error naming the file", "rc %d: %s", rc, err2.msg);
    CHECK(count_entries(dir) == 1, "failed write leaves nothing", "%d entries",
          count_entries(dir));

    unlink(path);
    rmdir(dir);
    TEST_EXIT();
}
