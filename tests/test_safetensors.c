/* Tests for kernels/safetensors.c: a valid file loads with the right names,
 * shapes, values and metadata; malformed files are each rejected with a
 * message naming the file, the tensor and the problem; weight sets (prefix
 * lookup, shard indexes, directories, golden-file wrapping); and every
 * shipped golden file validates. Files are written at run time into a
 * mkdtemp directory. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/safetensors.h"
#include "tests/test.h"

static char tmpdir[256];

/* Full path of a file in the temp directory (a few rotating buffers). */
static const char *tp(const char *name)
{
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *name, const void *p, size_t n)
{
    FILE *f = fopen(tp(name), "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) {
        fprintf(stderr, "cannot write %s\n", tp(name));
        exit(2);
    }
    fclose(f);
}

/* A file with an explicit header length field, header bytes and data bytes. */
static void write_st_raw(const char *name, uint64_t hlen, const void *header, size_t header_bytes,
                         const void *data, size_t data_bytes)
{
    size_t n = 8 + header_bytes + data_bytes;
    unsigned char *buf = calloc(1, n);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hlen >> (8 * i));
    if (header_bytes)
        memcpy(buf + 8, header, header_bytes);
    if (data_bytes) {
        if (data)
            memcpy(buf + 8 + header_bytes, data, data_bytes);
        else
            memset(buf + 8 + header_bytes, 0x3c, data_bytes);
    }
    write_bytes(name, buf, n);
    free(buf);
}

/* A file with a correct header length; data_bytes of filler data. */
static void write_st(const char *name, const char *header, size_t data_bytes)
{
    write_st_raw(name, strlen(header), header, strlen(header), NULL, data_bytes);
}

/* ---- a small writer for valid files ---- */

struct wt {
    const char *name, *dtype;
    int ndim;
    int64_t shape[8];
    const void *data;
    size_t bytes;
};

/* Writes tensors in the given order, offsets back to back, header padded
 * with spaces to a multiple of 8 like the reference writer. */
static void write_valid(const char *name, const char *meta_json, const struct wt *ts, int n)
{
    char *h = malloc(1 << 16);
    size_t k = 0, off = 0;
    k += (size_t)sprintf(h + k, "{");
    if (meta_json)
        k += (size_t)sprintf(h + k, "\"__metadata__\":%s", meta_json);
    for (int i = 0; i < n; i++) {
        k += (size_t)sprintf(h + k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", (i || meta_json) ? "," : "",
                             ts[i].name, ts[i].dtype);
        for (int d = 0; d < ts[i].ndim; d++)
            k += (size_t)sprintf(h + k, "%s%" PRId64, d ? "," : "", ts[i].shape[d]);
        k += (size_t)sprintf(h + k, "],\"data_offsets\":[%zu,%zu]}", off, off + ts[i].bytes);
        off += ts[i].bytes;
    }
    k += (size_t)sprintf(h + k, "}");
    while (k % 8)
        h[k++] = ' ';
    unsigned char *data = malloc(off ? off : 1);
    off = 0;
    for (int i = 0; i < n; i++) {
        if (ts[i].bytes)
            memcpy(data + off, ts[i].data, ts[i].bytes);
        off += ts[i].bytes;
    }
    write_st_raw(name, k, h, k, data, off);
    free(data);
    free(h);
}

/* ---- checks ---- */

static int contains(const char *s, const char *sub)
{
    return !sub || strstr(s, sub) != NULL;
}

/* Expects rc to be a REEL_E_MODEL failure whose message holds every given
 * substring (NULL entries are skipped). */
static void expect_error(const char *label, int rc, const struct reel_err *e, const char *a,
                         const char *b, const char *c)
{
    char name[160];
    snprintf(name, sizeof name, "rejects %s", label);
    if (getenv("REEL_TEST_VERBOSE"))
        printf("# %s\n", e->msg);
    CHECK(rc == REEL_E_MODEL && e->code == REEL_E_MODEL && contains(e->msg, a) &&
              contains(e->msg, b) && contains(e->msg, c),
          name, "rc=%d msg='%s' (wanted '%s', '%s', '%s')", rc, e->msg, a ? a : "", b ? b : "",
          c ? c : "");
}

/* Opens tmpdir/file expecting failure; the message must name the file, the
 * problem and (if given) the tensor. */
static void bad_file(const char *label, const char *file, const char *why, const char *tensor)
{
    struct reel_err e = {0};
    struct reel_st_file *f = (struct reel_st_file *)1;
    int rc = reel_st_open(tp(file), &f, &e);
    char tq[128];
    if (tensor)
        snprintf(tq, sizeof tq, "'%s'", tensor);
    expect_error(label, rc, &e, file, why, tensor ? tq : NULL);
    if (f) {
        CHECK(0, label, "out not NULL on failure");
        if (rc == REEL_OK)
            reel_st_close(f);
    }
}

static void bad_header(const char *label, const char *file, const char *header, size_t data,
                       const char *why, const char *tensor)
{
    write_st(file, header, data);
    bad_file(label, file, why, tensor);
}

static void test_malformed(void)
{
    write_bytes("empty.safetensors", "", 0);
    bad_file("empty file", "empty.safetensors", "empty file", NULL);

    write_bytes("seven.safetensors", "\x10\0\0\0\0\0\0", 7);
    bad_file("7-byte file", "seven.safetensors", "too short", NULL);

    write_st_raw("hlen_eof.safetensors", 1000, "{}      ", 8, NULL, 16);
    bad_file("header length past EOF", "hlen_eof.safetensors", "runs past the end of the file",
             NULL);

    write_st_raw("hlen0.safetensors", 0, "{}      ", 8, NULL, 0);
    bad_file("header length 0", "hlen0.safetensors", "header length is 0", NULL);

    write_st_raw("hlen_huge.safetensors", (uint64_t)1 << 63, "{}      ", 8, NULL, 0);
    bad_file("header length 2^63", "hlen_huge.safetensors", "9223372036854775808", NULL);

    /* Over the header limit but inside the file: a sparse file, cheap. */
    {
        const char *p = tp("hlen_limit.safetensors");
        write_st_raw("hlen_limit.safetensors", 100000001, "{", 1, NULL, 0);
        if (truncate(p, 8 + 100000001 + 8) != 0)
            CHECK(0, "rejects header over 100 MB", "truncate failed");
        else
            bad_file("header over 100 MB", "hlen_limit.safetensors", "limit", NULL);
        unlink(p);
    }

    write_st("trunc.safetensors",
             "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]}}", 32);
    bad_file("truncated data", "trunc.safetensors", "run past the end of the data", "t.w");

    bad_header("bad JSON syntax", "syntax.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],}}", 4,
               "not valid JSON: offset", NULL);
    bad_header("trailing garbage", "trailing.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "trailing",
               NULL);
    bad_header("header not an object", "array.safetensors", "[1, 2, 3]", 0, "not a JSON object",
               NULL);
    bad_header("entry not an object", "entry.safetensors", "{\"blocks.0.x\": 5}", 0,
               "not an object", "blocks.0.x");
    bad_header("unknown dtype", "dtype.safetensors",
               "{\"emb\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "unknown dtype 'F33'", "emb");
    bad_header("dtype not a string", "dtype_num.safetensors",
               "{\"emb\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "dtype is not a string", "emb");
    bad_header("shape/size mismatch", "mismatch.safetensors",
               "{\"blocks.0.q.weight\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,60]}}",
               64, "shape [4, 4] x F32 = 64 bytes but data_offsets span 60 bytes",
               "blocks.0.q.weight");
    bad_header("negative shape entry", "neg.safetensors",
               "{\"n\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,0]}}", 0,
               "shape entry 1 is negative", "n");
    bad_header("non-integer shape entry", "float_shape.safetensors",
               "{\"fs\":{\"dtype\":\"F32\",\"shape\":[4.5],\"data_offsets\":[0,16]}}", 16,
               "shape entry 0 is not an integer", "fs");
    bad_header("string shape entry", "str_shape.safetensors",
               "{\"fs\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}", 16,
               "shape entry 0 is not an integer", "fs");
    bad_header("shape entry past int64", "big_shape.safetensors",
               "{\"fs\":{\"dtype\":\"F32\",\"shape\":[100000000000000000000],\"data_offsets\":[0,16]}}",
               16, "shape entry 0 is too large for int64", "fs");
    bad_header("shape not an array", "shape_obj.safetensors",
               "{\"so\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16,
               "shape is not an array", "so");
    bad_header("data_offsets out of range", "range.safetensors",
               "{\"far\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1000,1008]}}", 8,
               "data_offsets [1000, 1008] run past the end", "far");
    bad_header("begin > end", "order.safetensors",
               "{\"rev\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
               "begin 8 > end 4", "rev");
    bad_header("data_offsets with 3 entries", "offs3.safetensors",
               "{\"o3\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
               "data_offsets is not an array of two", "o3");
    bad_header("negative data_offsets", "offsneg.safetensors",
               "{\"on\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8,
               "data_offsets is not an array of two non-negative", "on");
    bad_header("overlapping ranges", "overlap.safetensors",
               "{\"first\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"second\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
               24, "overlap", "second");
    bad_header("range inside another", "overlap2.safetensors",
               "{\"big\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
               "\"mid\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[32,36]},"
               "\"inner\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               36, "overlap", "inner");
    bad_header("duplicate names", "dup.safetensors",
               "{\"twin\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"twin\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "appears twice", "twin");
    bad_header("metadata value not a string", "meta.safetensors",
               "{\"__metadata__\":{\"steps\":4},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               4, "__metadata__ value 'steps' is not a string", NULL);
    bad_header("metadata not an object", "meta2.safetensors",
               "{\"__metadata__\":[\"x\"],"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               4, "__metadata__ is not an object", NULL);
    bad_header("missing data_offsets", "nooffs.safetensors",
               "{\"lonely\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
               "missing field 'data_offsets'", "lonely");
    bad_header("missing dtype", "nodtype.safetensors",
               "{\"lonely\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "missing field 'dtype'", "lonely");
    bad_header("extra unknown key", "extra.safetensors",
               "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"stride\":[1]}}", 4,
               "unknown field 'stride'", "x");
    bad_header("repeated field", "twice.safetensors",
               "{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               4, "field 'dtype' appears twice", "x");
    bad_header("too many dims", "dims.safetensors",
               "{\"deep\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
               4, "9 dims", "deep");
    bad_header("numel x size overflow", "overflow.safetensors",
               "{\"huge\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
               "\"data_offsets\":[0,0]}}",
               0, "overflows", "huge");
    bad_header("overflow hidden by a zero dim", "overflow0.safetensors",
               "{\"huge0\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296],"
               "\"data_offsets\":[0,0]}}",
               0, "overflows", "huge0");
    {
        static const char h[] = "{\"a\":{\"dtype\":\"F32\",\"sh\0pe\":[1],\"data_offsets\":[0,4]}}";
        write_st_raw("nul.safetensors", sizeof h - 1, h, sizeof h - 1, NULL, 4);
        bad_file("NUL inside header", "nul.safetensors", "NUL byte", NULL);
    }
    {
        static const char h[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}\0\0\0";
        write_st_raw("nulpad.safetensors", sizeof h - 1, h, sizeof h - 1, NULL, 4);
        bad_file("NUL padding after header", "nulpad.safetensors", "NUL byte", NULL);
    }
    {
        struct reel_err e = {0};
        struct reel_st_file *f = NULL;
        int rc = reel_st_open(tmpdir, &f, &e);
        expect_error("a directory", rc, &e, tmpdir, "not a regular file", NULL);
        memset(&e, 0, sizeof e);
        rc = reel_st_open(tp("no_such.safetensors"), &f, &e);
        expect_error("a missing file", rc, &e, "no_such.safetensors", "cannot open", NULL);
    }
}

static int near(float a, float b)
{
    return a == b || (a - b < 1e-6f && b - a < 1e-6f);
}

static void test_valid(void)
{
    float w[6] = {0, 1, 2, 3, 4.5f, -5};
    uint16_t bf[3] = {0x3f80, 0xc000, 0x4040}; /* 1, -2, 3 */
    uint16_t hf[2] = {0x3c00, 0xc400};         /* 1, -4 */
    int64_t ids[2] = {7, -1};
    float s = 2.5f, u[2] = {1.25f, -8};
    unsigned char odd = 9;
    struct wt ts[] = {
        {"blocks.0.w", "F32", 2, {2, 3}, w, sizeof w},
        {"bias.bf", "BF16", 1, {3}, bf, sizeof bf},
        {"gamma.f16", "F16", 1, {2}, hf, sizeof hf},
        {"in.ids", "I64", 1, {2}, ids, sizeof ids},
        {"empty", "F32", 2, {0, 4}, NULL, 0},
        {"scalar", "F32", 0, {0}, &s, sizeof s},
        {"flag", "U8", 1, {1}, &odd, 1},
        {"unaligned", "F32", 1, {2}, u, sizeof u}, /* lands at an odd offset */
    };
    int n = (int)(sizeof ts / sizeof ts[0]);
    write_valid("valid.safetensors",
                "{\"reference\":\"Wan-Video/Wan2.1@x model.py\",\"config\":\"{\\\"dim\\\": 4}\"}",
                ts, n);
    struct reel_err e = {0};
    struct reel_st_file *f = NULL;
    int rc = reel_st_open(tp("valid.safetensors"), &f, &e);
    if (!CHECK(rc == REEL_OK && f, "valid file opens", "rc=%d %s", rc, e.msg))
        return;
    CHECK(f->count == n, "valid file tensor count", "count=%d", f->count);
    CHECK(f->data_start % 8 == 0, "header padded to 8", "data_start=%zu", f->data_start);
    int names_ok = 1;
    for (int i = 0; i < n && i < f->count; i++)
        names_ok &= strcmp(f->tensors[i].name, ts[i].name) == 0 &&
                    reel_st_find(f, ts[i].name) == &f->tensors[i];
    CHECK(names_ok, "names in header order, found by name", "mismatch");
    CHECK(reel_st_find(f, "nope") == NULL && reel_st_find(f, "blocks.0") == NULL,
          "absent name not found", "found");
    const struct reel_tensor *t = reel_st_find(f, "blocks.0.w");
    CHECK(t && t->dtype == REEL_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3,
          "F32 shape and dtype", "bad");
    if (t) {
        float got[6];
        reel_tensor_to_f32(t, 0, 6, got);
        CHECK(memcmp(got, w, sizeof w) == 0, "F32 values", "got %g %g", got[0], got[5]);
    }
    t = reel_st_find(f, "bias.bf");
    if (t) {
        float got[3];
        reel_tensor_to_f32(t, 0, 3, got);
        CHECK(t->dtype == REEL_BF16 && near(got[0], 1) && near(got[1], -2) && near(got[2], 3),
              "BF16 values", "got %g %g %g", got[0], got[1], got[2]);
    }
    t = reel_st_find(f, "gamma.f16");
    if (t) {
        float got[2];
        reel_tensor_to_f32(t, 0, 2, got);
        CHECK(t->dtype == REEL_F16 && near(got[0], 1) && near(got[1], -4), "F16 values",
              "got %g %g", got[0], got[1]);
    }
    t = reel_st_find(f, "in.ids");
    if (t) {
        int64_t v[2];
        memcpy(v, t->data, sizeof v);
        CHECK(t->dtype == REEL_I64 && v[0] == 7 && v[1] == -1, "I64 values", "bad");
    }
    t = reel_st_find(f, "empty");
    CHECK(t && reel_tensor_numel(t) == 0 && t->shape[1] == 4, "numel-0 tensor allowed", "bad");
    t = reel_st_find(f, "scalar");
    if (t) {
        float v;
        memcpy(&v, t->data, 4);
        CHECK(t->ndim == 0 && reel_tensor_numel(t) == 1 && v == 2.5f, "scalar tensor", "bad");
    }
    t = reel_st_find(f, "unaligned");
    if (t) {
        float got[2];
        reel_tensor_to_f32(t, 0, 2, got);
        CHECK(((uintptr_t)t->data & 3) != 0 && got[0] == 1.25f && got[1] == -8,
              "unaligned F32 tensor reads", "got %g %g", got[0], got[1]);
    }
    CHECK(reel_st_meta(f, "reference") && strcmp(reel_st_meta(f, "reference"),
                                                 "Wan-Video/Wan2.1@x model.py") == 0,
          "metadata string", "bad");
    CHECK(reel_st_meta(f, "config") && strcmp(reel_st_meta(f, "config"), "{\"dim\": 4}") == 0,
          "metadata with escapes", "got '%s'", reel_st_meta(f, "config"));
    CHECK(reel_st_meta(f, "missing") == NULL, "absent metadata is NULL", "bad");
    reel_st_close(f);

    /* No metadata and no tensors at all is a valid (empty) file. */
    write_st("emptyobj.safetensors", "{}      ", 0);
    memset(&e, 0, sizeof e);
    rc = reel_st_open(tp("emptyobj.safetensors"), &f, &e);
    CHECK(rc == REEL_OK && f && f->count == 0 && reel_st_meta(f, "x") == NULL,
          "empty header object opens", "rc=%d %s", rc, e.msg);
    reel_st_close(f);
}

static void test_weights(void)
{
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, c[3] = {7, 8, 9};
    int64_t ids[1] = {3};
    uint16_t bf[2] = {0x3f80, 0x4000};
    struct reel_err e = {0};
    struct reel_weights *w = NULL;
    const struct reel_tensor *t = NULL;

    /* ComfyUI-style prefix. */
    {
        struct wt ts[] = {
            {"model.diffusion_model.x", "F32", 2, {2, 2}, a, sizeof a},
            {"y", "F32", 1, {2}, b, sizeof b},
            {"ids", "I64", 1, {1}, ids, sizeof ids},
            {"bfv", "BF16", 1, {2}, bf, sizeof bf},
        };
        write_valid("comfy.safetensors", NULL, ts, 4);
        int rc = reel_weights_open(tp("comfy.safetensors"), &w, &e);
        if (CHECK(rc == REEL_OK && w, "weights open single file", "%s", e.msg)) {
            t = reel_weights_find(w, "x");
            CHECK(t && strcmp(t->name, "model.diffusion_model.x") == 0,
                  "prefix lookup finds model.diffusion_model.x as x", "t=%p", (void *)t);
            CHECK(reel_weights_find(w, "y") && reel_weights_find(w, "model.diffusion_model.x"),
                  "plain names still found", "bad");
            CHECK(reel_weights_find(w, "z") == NULL, "absent weight is NULL", "bad");
            CHECK(reel_weights_count(w) == 4 && reel_weights_at(w, 3) &&
                      reel_weights_at(w, 4) == NULL,
                  "weights count/at", "count=%d", reel_weights_count(w));
            int64_t ok_shape[2] = {2, -1}, bad_shape[2] = {3, 2};
            memset(&e, 0, sizeof e);
            rc = reel_weights_get(w, "x", 2, ok_shape, &t, &e);
            CHECK(rc == REEL_OK && t, "get with wildcard", "%s", e.msg);
            memset(&e, 0, sizeof e);
            rc = reel_weights_get(w, "x", 2, bad_shape, &t, &e);
            CHECK(rc == REEL_E_MODEL && t == NULL && contains(e.msg, "'model.diffusion_model.x'") &&
                      contains(e.msg, "[3, 2]") && contains(e.msg, "[2, 2]") &&
                      contains(e.msg, "comfy.safetensors"),
                  "get shape mismatch names tensor, expected and actual", "%s", e.msg);
            memset(&e, 0, sizeof e);
            rc = reel_weights_get(w, "x", 1, bad_shape, &t, &e);
            CHECK(rc == REEL_E_MODEL && contains(e.msg, "[3]") && contains(e.msg, "[2, 2]"),
                  "get ndim mismatch", "%s", e.msg);
            memset(&e, 0, sizeof e);
            rc = reel_weights_get(w, "ids", 1, (int64_t[]){1}, &t, &e);
            CHECK(rc == REEL_E_MODEL && contains(e.msg, "'ids'") && contains(e.msg, "I64"),
                  "get refuses a non-float tensor", "%s", e.msg);
            memset(&e, 0, sizeof e);
            rc = reel_weights_get(w, "blocks.9.q", 1, (int64_t[]){1}, &t, &e);
            CHECK(rc == REEL_E_MODEL && contains(e.msg, "'blocks.9.q' not found") &&
                      contains(e.msg, "model.diffusion_model.blocks.9.q"),
                  "get of a missing tensor names it", "%s", e.msg);
            float *v = NULL;
            memset(&e, 0, sizeof e);
            rc = reel_weights_get_f32(w, "x", 2, (int64_t[]){2, 2}, &v, &e);
            CHECK(rc == REEL_OK && v && v[0] == 1 && v[3] == 4, "get_f32 F32", "%s", e.msg);
            free(v);
            memset(&e, 0, sizeof e);
            rc = reel_weights_get_f32(w, "bfv", -1, NULL, &v, &e);
            CHECK(rc == REEL_OK && v && v[0] == 1 && v[1] == 2, "get_f32 converts BF16", "%s",
                  e.msg);
            free(v);
        }
        reel_weights_close(w);
        w = NULL;
    }

    /* A two-shard index in a directory. */
    {
        mkdir(tp("sharded"), 0755);
        struct wt s1[] = {{"blocks.0.a", "F32", 1, {4}, a, sizeof a},
                          {"blocks.0.b", "F32", 1, {2}, b, sizeof b}};
        struct wt s2[] = {{"head.c", "F32", 1, {3}, c, sizeof c}};
        write_valid("sharded/diffusion_pytorch_model-00001-of-00002.safetensors", NULL, s1, 2);
        write_valid("sharded/diffusion_pytorch_model-00002-of-00002.safetensors", NULL, s2, 1);
        const char *idx =
            "{\"metadata\": {\"total_size\": 36}, \"weight_map\": {"
            "\"blocks.0.a\": \"diffusion_pytorch_model-00001-of-00002.safetensors\","
            "\"head.c\": \"diffusion_pytorch_model-00002-of-00002.safetensors\","
            "\"blocks.0.b\": \"diffusion_pytorch_model-00001-of-00002.safetensors\"}}";
        write_bytes("sharded/diffusion_pytorch_model.safetensors.index.json", idx, strlen(idx));
        memset(&e, 0, sizeof e);
        int rc = reel_weights_open(tp("sharded"), &w, &e);
        if (CHECK(rc == REEL_OK && w, "2-shard index via directory", "%s", e.msg)) {
            CHECK(reel_weights_count(w) == 3, "2-shard count", "count=%d", reel_weights_count(w));
            float *v = NULL;
            rc = reel_weights_get_f32(w, "head.c", 1, (int64_t[]){3}, &v, &e);
            CHECK(rc == REEL_OK && v && v[2] == 9, "tensor from the second shard", "%s", e.msg);
            free(v);
            CHECK(reel_weights_find(w, "blocks.0.b") != NULL, "tensor from the first shard",
                  "bad");
        }
        reel_weights_close(w);
        w = NULL;
        memset(&e, 0, sizeof e);
        rc = reel_weights_open(tp("sharded/diffusion_pytorch_model.safetensors.index.json"), &w,
                               &e);
        CHECK(rc == REEL_OK && w && reel_weights_count(w) == 3, "2-shard index via json path",
              "%s", e.msg);
        reel_weights_close(w);
        w = NULL;

        /* Index naming a shard that does not exist. */
        const char *idx2 = "{\"weight_map\": {\"blocks.0.a\": "
                           "\"diffusion_pytorch_model-00001-of-00002.safetensors\", \"head.c\": "
                           "\"missing-00009.safetensors\"}}";
        write_bytes("sharded/missing.index.json", idx2, strlen(idx2));
        memset(&e, 0, sizeof e);
        rc = reel_weights_open(tp("sharded/missing.index.json"), &w, &e);
        expect_error("index with a missing shard", rc, &e, "missing-00009.safetensors",
                     "missing.index.json", NULL);
        reel_weights_close(w);
        w = NULL;

        /* Index listing a tensor its shard lacks. */
        const char *idx3 = "{\"weight_map\": {\"blocks.0.zz\": "
                           "\"diffusion_pytorch_model-00001-of-00002.safetensors\"}}";
        write_bytes("sharded/lacks.index.json", idx3, strlen(idx3));
        memset(&e, 0, sizeof e);
        rc = reel_weights_open(tp("sharded/lacks.index.json"), &w, &e);
        expect_error("index tensor missing from its shard", rc, &e, "'blocks.0.zz'",
                     "does not contain it", "lacks.index.json");

        /* Shard names may not leave the directory. */
        const char *idx4 = "{\"weight_map\": {\"a\": \"../comfy.safetensors\"}}";
        write_bytes("sharded/escape.index.json", idx4, strlen(idx4));
        memset(&e, 0, sizeof e);
        rc = reel_weights_open(tp("sharded/escape.index.json"), &w, &e);
        expect_error("index shard outside its directory", rc, &e, "not a relative file name",
                     "'a'", NULL);

        /* The same name in two shards (each map entry found in its shard). */
        struct wt d1[] = {{"head.c", "F32", 1, {3}, c, sizeof c},
                          {"zz", "F32", 1, {2}, b, sizeof b}};
        struct wt d2[] = {{"head.c", "F32", 1, {3}, c, sizeof c}};
        write_valid("sharded/dup-1.safetensors", NULL, d1, 2);
        write_valid("sharded/dup-2.safetensors", NULL, d2, 1);
        const char *idx5 = "{\"weight_map\": {\"head.c\": \"dup-2.safetensors\", "
                           "\"zz\": \"dup-1.safetensors\"}}";
        write_bytes("sharded/dup.index.json", idx5, strlen(idx5));
        memset(&e, 0, sizeof e);
        rc = reel_weights_open(tp("sharded/dup.index.json"), &w, &e);
        expect_error("a name in two shards", rc, &e, "'head.c' is in both", "dup-1.safetensors",
                     "dup-2.safetensors");

        /* A name twice in weight_map. */
        const char *idx6 = "{\"weight_map\": {\"zz\": \"dup-1.safetensors\", "
                           "\"zz\": \"dup-1.safetensors\"}}";
        write_bytes("sharded/dup2.index.json", idx6, strlen(idx6));
        memset(&e, 0, sizeof e);
        rc = reel_weights_open(tp("sharded/dup2.index.json"), &w, &e);
        expect_error("a name twice in weight_map", rc, &e, "'zz' appears twice", "dup2.index.json",
                     NULL);
    }

    /* Directories: none of the known names, and model.safetensors. */
    {
        mkdir(tp("emptydir"), 0755);
        memset(&e, 0, sizeof e);
        int rc = reel_weights_open(tp("emptydir"), &w, &e);
        expect_error("directory without weights", rc, &e, "emptydir", "holds none", NULL);
        mkdir(tp("plain"), 0755);
        struct wt ts[] = {{"w", "F32", 1, {2}, b, sizeof b}};
        write_valid("plain/model.safetensors", NULL, ts, 1);
        memset(&e, 0, sizeof e);
        rc = reel_weights_open(tp("plain"), &w, &e);
        CHECK(rc == REEL_OK && w && reel_weights_find(w, "w"), "directory with model.safetensors",
              "%s", e.msg);
        reel_weights_close(w);
        w = NULL;
        memset(&e, 0, sizeof e);
        rc = reel_weights_open(tp("nothing-here"), &w, &e);
        expect_error("missing weight path", rc, &e, "nothing-here", NULL, NULL);
    }

    /* Golden-file style: weights.* only, no fallback to bare names. */
    {
        struct wt ts[] = {{"weights.blocks.0.w", "F32", 1, {4}, a, sizeof a},
                          {"in.x", "F32", 1, {2}, b, sizeof b},
                          {"out.x", "F32", 1, {3}, c, sizeof c}};
        write_valid("golden_like.safetensors", NULL, ts, 3);
        struct reel_st_file *f = NULL;
        memset(&e, 0, sizeof e);
        int rc = reel_st_open(tp("golden_like.safetensors"), &f, &e);
        if (CHECK(rc == REEL_OK, "golden-like file opens", "%s", e.msg)) {
            rc = reel_weights_from_file(f, "weights.", &w, &e);
            CHECK(rc == REEL_OK && w && reel_weights_find(w, "blocks.0.w") &&
                      !reel_weights_find(w, "in.x") && !reel_weights_find(w, "out.x") &&
                      reel_weights_count(w) == 1 &&
                      strcmp(reel_weights_at(w, 0)->name, "weights.blocks.0.w") == 0,
                  "weights_from_file with prefix", "%s", e.msg);
            memset(&e, 0, sizeof e);
            rc = reel_weights_get(w, "in.x", 1, (int64_t[]){2}, &t, &e);
            CHECK(rc == REEL_E_MODEL && contains(e.msg, "'weights.in.x'"),
                  "from_file missing names the prefixed name", "%s", e.msg);
            reel_weights_close(w);
            w = NULL;
            CHECK(reel_st_find(f, "in.x") != NULL, "file still usable after weights close",
                  "bad");
            reel_st_close(f);
        }
    }
}

/* Every shipped golden file must validate. */
static void test_golden(void)
{
    const char *dir = getenv("REEL_GOLDEN_DIR");
    if (!dir || !dir[0])
        dir = "../shared/golden";
    DIR *d = opendir(dir);
    if (!CHECK(d != NULL, "golden directory readable", "cannot open %s", dir))
        return;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 12 || strcmp(de->d_name + len - 12, ".safetensors") != 0)
            continue;
        char path[1024], label[300];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(label, sizeof label, "golden %s validates", de->d_name);
        struct reel_err e = {0};
        struct reel_st_file *f = NULL;
        int rc = reel_st_open(path, &f, &e);
        CHECK(rc == REEL_OK && f && f->count > 0 && reel_st_meta(f, "reference"), label, "%s",
              e.msg);
        reel_st_close(f);
        n++;
    }
    closedir(d);
    CHECK(n > 0, "golden files found", "no *.safetensors in %s", dir);
}

/* Removes the temp tree (two levels are enough for what we write). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/reel_st_XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL - mkdtemp: cannot create %s\n", tmpdir);
        return 1;
    }
    test_malformed();
    test_valid();
    test_weights();
    test_golden();
    rm_tree(tmpdir);
    TEST_EXIT();
}
