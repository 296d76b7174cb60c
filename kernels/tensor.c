/* Tensor helpers: dtype table, shape strings, scalar float conversions
 * (f16, bf16, f8) and the activation arena. */
#include "kernels/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[REEL_DTYPE_COUNT] = {
    [REEL_F32] = {"F32", 4},         [REEL_BF16] = {"BF16", 2},
    [REEL_F16] = {"F16", 2},         [REEL_I64] = {"I64", 8},
    [REEL_F64] = {"F64", 8},         [REEL_I32] = {"I32", 4},
    [REEL_I16] = {"I16", 2},         [REEL_I8] = {"I8", 1},
    [REEL_U8] = {"U8", 1},           [REEL_BOOL] = {"BOOL", 1},
    [REEL_F8_E4M3] = {"F8_E4M3", 1}, [REEL_F8_E5M2] = {"F8_E5M2", 1},
};

size_t reel_dtype_size(enum reel_dtype dt)
{
    return (unsigned)dt < REEL_DTYPE_COUNT ? dtype_info[dt].size : 0;
}

const char *reel_dtype_name(enum reel_dtype dt)
{
    return (unsigned)dt < REEL_DTYPE_COUNT ? dtype_info[dt].name : "?";
}

int reel_dtype_from_name(const char *s, size_t len, enum reel_dtype *out)
{
    for (int i = 0; i < REEL_DTYPE_COUNT; i++) {
        const char *n = dtype_info[i].name;
        if (strlen(n) == len && memcmp(n, s, len) == 0) {
            *out = (enum reel_dtype)i;
            return 0;
        }
    }
    return -1;
}

int64_t reel_tensor_numel(const struct reel_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

const char *reel_shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    if (n == 0)
        return buf;
    size_t used = 0;
    buf[0] = '\0';
    for (int i = -1; i <= ndim && used < n; i++) {
        int w;
        if (i < 0)
            w = snprintf(buf + used, n - used, "[");
        else if (i == ndim)
            w = snprintf(buf + used, n - used, "]");
        else
            w = snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float reel_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf / nan: keep the payload */
        return f32_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp == 0) { /* zero or subnormal: exact in f32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t reel_f32_to_bf16(float f)
{
    uint32_t u = bits_from_f32(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: truncating could make it inf */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

uint16_t reel_f32_to_f16(float f)
{
    uint32_t u = bits_from_f32(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN stays NaN (quiet) */
        return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    if (a >= 0x477ff000u) /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) {
        /* f16 subnormal range (< 2^-14): scale to units of 2^-24 and let the
         * FPU round to nearest even. */
        float v = f32_from_bits(a) * 0x1p24f;
        return (uint16_t)(sign | (uint16_t)nearbyintf(v));
    }
    /* normal: rebias the exponent, round the 13 dropped bits to nearest even;
     * a carry out of the mantissa correctly bumps the exponent. */
    uint32_t r = a - 0x38000000u;
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

static float f8_e4m3_to_f32(uint8_t b)
{
    /* The "fn" variant: no infinities; S.1111.111 is NaN. */
    int sign = b & 0x80, exp = (b >> 3) & 0xf, man = b & 7;
    float v;
    if (exp == 0xf && man == 7)
        v = NAN;
    else if (exp == 0)
        v = (float)man * 0x1p-9f;
    else
        v = ldexpf(1.0f + (float)man / 8.0f, exp - 7);
    return sign ? -v : v;
}

static float f64_or_int_to_f32(const struct reel_tensor *t, int64_t i)
{
    const unsigned char *p = (const unsigned char *)t->data + (size_t)i * reel_dtype_size(t->dtype);
    switch (t->dtype) {
    case REEL_F64: { double v; memcpy(&v, p, 8); return (float)v; }
    case REEL_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
    case REEL_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    case REEL_I16: { int16_t v; memcpy(&v, p, 2); return (float)v; }
    case REEL_I8: return (float)(int8_t)p[0];
    case REEL_U8: return (float)p[0];
    case REEL_BOOL: return p[0] ? 1.0f : 0.0f;
    case REEL_F8_E4M3: return f8_e4m3_to_f32(p[0]);
    case REEL_F8_E5M2: return reel_f16_to_f32((uint16_t)(p[0] << 8));
    default: return 0.0f;
    }
}

void reel_tensor_to_f32(const struct reel_tensor *t, int64_t first, int64_t n, float *out)
{
    if (n <= 0)
        return;
    switch (t->dtype) {
    case REEL_F32:
        memcpy(out, (const unsigned char *)t->data + 4 * first, (size_t)n * sizeof(float));
        return;
    /* memcpy loads: file data may sit at any offset (the format does not
     * promise alignment); compilers turn these into plain vector loads. */
    case REEL_BF16: {
        const unsigned char *src = (const unsigned char *)t->data + 2 * first;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = reel_bf16_to_f32(h);
        }
        return;
    }
    case REEL_F16: {
        const unsigned char *src = (const unsigned char *)t->data + 2 * first;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = reel_f16_to_f32(h);
        }
        return;
    }
    default:
        for (int64_t i = 0; i < n; i++)
            out[i] = f64_or_int_to_f32(t, first + i);
        return;
    }
}

/* ---- arena ----
 * Positions (marks) are offsets in the concatenation of the chained blocks:
 * block->base + block->used. Blocks at or before the current one never
 * change, so any mark taken earlier stays meaningful. Released blocks are kept
 * and reused by later allocations. */

#define ARENA_ALIGN 64

struct arena_block {
    struct arena_block *next;
    unsigned char *data;
    size_t cap, used, base;
};

struct reel_arena {
    size_t block_bytes;
    struct arena_block *first, *cur;
    size_t peak;
};

static struct arena_block *arena_block_new(size_t cap, size_t base)
{
    struct arena_block *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    b->data = aligned_alloc(ARENA_ALIGN, cap);
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    b->base = base;
    return b;
}

static size_t round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

struct reel_arena *reel_arena_create(size_t block_bytes)
{
    struct reel_arena *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->block_bytes = round_up(block_bytes ? block_bytes : ((size_t)1 << 20), ARENA_ALIGN);
    return a;
}

static void free_chain(struct arena_block *b)
{
    while (b) {
        struct arena_block *next = b->next;
        free(b->data);
        free(b);
        b = next;
    }
}

void reel_arena_destroy(struct reel_arena *a)
{
    if (!a)
        return;
    free_chain(a->first);
    free(a);
}

void *reel_arena_alloc(struct reel_arena *a, size_t bytes)
{
    if (bytes > SIZE_MAX / 2)
        return NULL;
    size_t need = round_up(bytes ? bytes : 1, ARENA_ALIGN);
    struct arena_block *b = a->cur;
    if (!b || b->cap - b->used < need) {
        /* Move on to the next kept block if it fits; otherwise drop the
         * kept tail (too small) and chain a fresh block. */
        struct arena_block *next = b ? b->next : a->first;
        if (next && next->cap >= need) {
            next->used = 0;
            b = next;
        } else {
            size_t base = b ? b->base + b->cap : 0;
            size_t cap = need > a->block_bytes ? need : a->block_bytes;
            struct arena_block *nb = arena_block_new(cap, base);
            if (!nb)
                return NULL;
            free_chain(next);
            if (b)
                b->next = nb;
            else
                a->first = nb;
            b = nb;
        }
        a->cur = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    if (b->base + b->used > a->peak)
        a->peak = b->base + b->used;
    return p;
}

float *reel_arena_f32(struct reel_arena *a, int64_t n)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / 8)
        return NULL;
    return reel_arena_alloc(a, (size_t)n * sizeof(float));
}

size_t reel_arena_mark(const struct reel_arena *a)
{
    return a->cur ? a->cur->base + a->cur->used : 0;
}

void reel_arena_release(struct reel_arena *a, size_t mark)
{
    for (struct arena_block *b = a->first; b; b = b->next) {
        if (mark <= b->base + b->cap) {
            b->used = mark > b->base ? mark - b->base : 0;
            a->cur = b;
            return;
        }
        if (b == a->cur)
            break; /* a mark past the current position: nothing to free */
    }
}

size_t reel_arena_peak(const struct reel_arena *a)
{
    return a->peak;
}
