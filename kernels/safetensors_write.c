/* Writing safetensors files (work-directory artifacts: text embeddings,
 * latents, sampler state). Written under a temporary name, flushed to disk
 * and renamed into place, so a reader never sees a partial file even when
 * the process is killed mid-write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/atomic_file.h"
#include "kernels/safetensors.h"

/* Appends JSON-escaped s to buf (no quotes). */
static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

int reel_st_write_stream(const char *path, const struct reel_tensor *tensors, int count,
                         const char *const *meta_kv, int meta_count, reel_st_fill_fn fill,
                         void *ctx, struct reel_err *err)
{
    /* Header first (into memory), so the data offsets are known. */
    char *hdr = NULL;
    size_t hdr_len = 0;
    FILE *h = open_memstream(&hdr, &hdr_len);
    if (!h)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    fputc('{', h);
    int first = 1;
    if (meta_count > 0) {
        fputs("\"__metadata__\":{", h);
        for (int i = 0; i < meta_count; i++) {
            fprintf(h, "%s\"", i ? "," : "");
            json_escape(h, meta_kv[2 * i]);
            fputs("\":\"", h);
            json_escape(h, meta_kv[2 * i + 1]);
            fputc('"', h);
        }
        fputc('}', h);
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < count; i++) {
        const struct reel_tensor *t = &tensors[i];
        uint64_t bytes = (uint64_t)reel_tensor_numel(t) * reel_dtype_size(t->dtype);
        fprintf(h, "%s\"", first ? "" : ",");
        json_escape(h, t->name ? t->name : "");
        fprintf(h, "\":{\"dtype\":\"%s\",\"shape\":[", reel_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            fprintf(h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        fprintf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                (unsigned long long)(off + bytes));
        off += bytes;
        first = 0;
    }
    fputc('}', h);
    /* Pad with spaces so the data starts 8-byte aligned. */
    while ((ftell(h) % 8) != 0)
        fputc(' ', h);
    if (fclose(h) != 0) {
        free(hdr);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    }

    struct reel_atomic_file *af = NULL;
    int rc = reel_atomic_open(path, &af, err);
    if (rc)
        goto out;
    uint64_t n = hdr_len;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(n >> (8 * i));
    rc = reel_atomic_write(af, len8, 8, err);
    if (!rc)
        rc = reel_atomic_write(af, hdr, hdr_len, err);
    /* One tensor in memory at a time: a generated multi-GB file needs only
     * its largest tensor's bytes. */
    size_t maxb = 1;
    for (int i = 0; i < count; i++) {
        size_t bytes = (size_t)reel_tensor_numel(&tensors[i]) * reel_dtype_size(tensors[i].dtype);
        if (bytes > maxb)
            maxb = bytes;
    }
    void *buf = rc || !fill ? NULL : malloc(maxb);
    if (!rc && fill && !buf)
        rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    for (int i = 0; !rc && i < count; i++) {
        size_t bytes = (size_t)reel_tensor_numel(&tensors[i]) * reel_dtype_size(tensors[i].dtype);
        if (fill)
            rc = fill(ctx, i, &tensors[i], buf, err);
        if (!rc && bytes)
            rc = reel_atomic_write(af, fill ? buf : tensors[i].data, bytes, err);
    }
    free(buf);
    if (rc)
        reel_atomic_abort(af);
    else
        rc = reel_atomic_commit(af, err);
out:
    free(hdr);
    return rc;
}

int reel_st_write(const char *path, const struct reel_tensor *tensors, int count,
                  const char *const *meta_kv, int meta_count, struct reel_err *err)
{
    return reel_st_write_stream(path, tensors, count, meta_kv, meta_count, NULL, NULL, err);
}
