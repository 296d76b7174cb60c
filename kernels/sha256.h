/* SHA-256 (FIPS 180-4), for the weight-file hashes in render manifests and
 * work-directory keys. */
#ifndef REEL_SHA256_H
#define REEL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"

struct reel_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    unsigned char buf[64];
    size_t fill;
};

void reel_sha256_init(struct reel_sha256 *s);
void reel_sha256_update(struct reel_sha256 *s, const void *data, size_t n);
/* 64 lowercase hex digits + NUL into hex[65]. */
void reel_sha256_final_hex(struct reel_sha256 *s, char hex[65]);
/* Hash of a whole file (read in blocks, never whole into memory). */
int reel_sha256_file(const char *path, char hex[65], struct reel_err *err);

#endif
