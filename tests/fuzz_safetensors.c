/* libFuzzer entry point for the weight-file readers: the input is used both
 * as a whole safetensors file (through reel_st_open, then every accessor
 * and a read of every tensor's bytes, so a range escaping the map shows up
 * under ASan) and as raw JSON text. Not part of the normal build (the
 * Makefile only builds tests/test_*.c); everything is behind REEL_FUZZ.
 *
 *   clang -std=c11 -D_GNU_SOURCE -DREEL_FUZZ -g -O1 -I. \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz_safetensors.c \
 *     kernels/json.c kernels/safetensors.c kernels/err.c kernels/tensor.c -lm -o fuzz_st
 *   ./fuzz_st -max_len=4096 corpus/
 *
 * With -DREEL_FUZZ_MAIN instead of -fsanitize=fuzzer (any compiler) it
 * builds a replay driver: ./fuzz_st FILE... runs each file once. */
#if defined(REEL_FUZZ) || defined(REEL_FUZZ_MAIN)

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise_file(struct reel_st_file *f)
{
    volatile unsigned sink = 0;
    for (int i = 0; i < f->count; i++) {
        const struct reel_tensor *t = &f->tensors[i];
        if (reel_st_find(f, t->name) != t)
            abort(); /* names are unique, so lookup must round-trip */
        size_t bytes = (size_t)reel_tensor_numel(t) * reel_dtype_size(t->dtype);
        const unsigned char *p = t->data;
        if (p < f->map + f->data_start || p + bytes > f->map + f->size)
            abort();
        for (size_t b = 0; b < bytes; b++)
            sink += p[b];
        if ((t->dtype == REEL_F32 || t->dtype == REEL_BF16 || t->dtype == REEL_F16) && bytes) {
            float v[4];
            int64_t n = reel_tensor_numel(t);
            reel_tensor_to_f32(t, 0, n < 4 ? n : 4, v);
        }
    }
    (void)sink;
    (void)reel_st_meta(f, "reference");
    (void)reel_st_find(f, "");

    struct reel_err err = {0};
    struct reel_weights *w = NULL;
    if (reel_weights_from_file(f, "", &w, &err) == REEL_OK) {
        if (reel_weights_count(w) != f->count)
            abort();
        for (int i = 0; i < reel_weights_count(w); i++) {
            const struct reel_tensor *t = reel_weights_at(w, i), *got = NULL;
            memset(&err, 0, sizeof err);
            if (reel_weights_get(w, t->name, t->ndim, t->shape, &got, &err) == REEL_OK) {
                float *v = NULL;
                if (reel_tensor_numel(t) <= 4096 &&
                    reel_weights_get_f32(w, t->name, -1, NULL, &v, &err) == REEL_OK)
                    free(v);
            }
        }
        reel_weights_close(w);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[256];
    struct reel_json *j = reel_json_parse((const char *)data, size, msg, sizeof msg);
    reel_json_free(j);

    /* reel_st_open takes a path: hand it an anonymous in-memory file. */
    int fd = memfd_create("fuzz.safetensors", 0);
    if (fd < 0)
        return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct reel_err err = {0};
    struct reel_st_file *f = NULL;
    if (done == size && reel_st_open(path, &f, &err) == REEL_OK) {
        exercise_file(f);
        reel_st_close(f);
    } else if (!err.code && done == size) {
        abort(); /* a failure must fill the error */
    }
    close(fd);
    return 0;
}

#ifdef REEL_FUZZ_MAIN
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *fp = fopen(argv[i], "rb");
        if (!fp) {
            perror(argv[i]);
            return 1;
        }
        size_t cap = 1 << 16, n = 0;
        unsigned char *buf = malloc(cap);
        size_t got;
        while (buf && (got = fread(buf + n, 1, cap - n, fp)) > 0) {
            n += got;
            if (n == cap) {
                unsigned char *nb = realloc(buf, cap * 2);
                if (!nb)
                    break;
                buf = nb;
                cap *= 2;
            }
        }
        fclose(fp);
        if (!buf)
            return 1;
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        printf("ran %s (%zu bytes)\n", argv[i], n);
    }
    return 0;
}
#endif

#endif
