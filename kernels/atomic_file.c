/* Atomic file writes (temp name, fsync, rename) and whole-file reads. */
#include "kernels/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int reel_output_temp_path(const char *path, long pid, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    int n = snprintf(buf, size, "%.*s.%s.tmp-%ld", dir_len, path, base, pid);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int reel_output_commit(const char *tmp, const char *path, struct reel_err *err)
{
    /* Data on disk before the name: a crash after the rename must not leave
     * a complete-looking name over missing blocks. */
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return reel_errf(err, REEL_E_MEDIA, "cannot move %s into place as %s: %s", tmp, path,
                         strerror(e));
    }
    return REEL_OK;
}

struct reel_atomic_file {
    int fd;
    char *path;
    char *tmp;
};

int reel_atomic_open(const char *path, struct reel_atomic_file **out, struct reel_err *err)
{
    *out = NULL;
    struct reel_atomic_file *f = calloc(1, sizeof *f);
    size_t tl = strlen(path) + 32;
    if (!f || !(f->path = strdup(path)) || !(f->tmp = malloc(tl)) ||
        reel_output_temp_path(path, (long)getpid(), f->tmp, tl)) {
        reel_atomic_abort(f);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    }
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        reel_atomic_abort(f);
        return reel_errf(err, REEL_E_MEDIA, "%s: cannot create: %s", path, strerror(e));
    }
    *out = f;
    return REEL_OK;
}

int reel_atomic_write(struct reel_atomic_file *f, const void *data, size_t n,
                      struct reel_err *err)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return reel_errf(err, REEL_E_MEDIA, "%s: cannot write: %s", f->path,
                             w < 0 ? strerror(errno) : "short write");
        p += w;
        n -= (size_t)w;
    }
    return REEL_OK;
}

int reel_atomic_commit(struct reel_atomic_file *f, struct reel_err *err)
{
    int bad = fsync(f->fd) != 0;
    int e = errno;
    if (close(f->fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    f->fd = -1;
    if (!bad && rename(f->tmp, f->path) != 0) {
        bad = 1;
        e = errno;
    }
    int rc = bad ? reel_errf(err, REEL_E_MEDIA, "%s: cannot write: %s", f->path, strerror(e))
                 : REEL_OK;
    if (!bad) {
        free(f->tmp);
        f->tmp = NULL; /* renamed: nothing for abort to remove */
    }
    reel_atomic_abort(f);
    return rc;
}

void reel_atomic_abort(struct reel_atomic_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0 && f->tmp)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f);
}

int reel_write_file_atomic(const char *path, const void *data, size_t n, struct reel_err *err)
{
    struct reel_atomic_file *f;
    int rc = reel_atomic_open(path, &f, err);
    if (rc)
        return rc;
    if ((rc = reel_atomic_write(f, data, n, err))) {
        reel_atomic_abort(f);
        return rc;
    }
    return reel_atomic_commit(f, err);
}

char *reel_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap + 1);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}
