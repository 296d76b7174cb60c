/* Files that appear complete or not at all: written under a temporary name
 * beside the final one, flushed to disk, renamed into place on commit, and
 * removed on abort - the rule for every file reel writes. */
#ifndef REEL_ATOMIC_FILE_H
#define REEL_ATOMIC_FILE_H

#include <stddef.h>

#include "kernels/err.h"

/* ".name.ext.tmp-PID" beside path: where every output is written before the
 * rename. Returns 0, or -1 if it does not fit in `size`. */
int reel_output_temp_path(const char *path, long pid, char *buf, size_t size);

/* Renames tmp to path; on failure deletes tmp and fills err (REEL_E_MEDIA). */
int reel_output_commit(const char *tmp, const char *path, struct reel_err *err);

struct reel_atomic_file;

int reel_atomic_open(const char *path, struct reel_atomic_file **out, struct reel_err *err);
int reel_atomic_write(struct reel_atomic_file *f, const void *data, size_t n,
                      struct reel_err *err);
/* fsync + rename; frees f in every case (on failure the temp file is removed). */
int reel_atomic_commit(struct reel_atomic_file *f, struct reel_err *err);
/* Removes the temp file and frees f. NULL-safe. */
void reel_atomic_abort(struct reel_atomic_file *f);

/* The whole file in one call. */
int reel_write_file_atomic(const char *path, const void *data, size_t n, struct reel_err *err);
/* Reads a whole file (malloc'd, NUL-terminated); NULL if unreadable. */
char *reel_read_file(const char *path, size_t *len);

#endif
