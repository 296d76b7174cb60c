/* Tensors (shape + dtype + contiguous row-major storage), dtype conversion
 * helpers and the activation arena. */
#ifndef REEL_TENSOR_H
#define REEL_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/err.h"

enum reel_dtype {
    REEL_F32 = 0,
    REEL_BF16,
    REEL_F16,
    REEL_I64,
    REEL_F64,
    REEL_I32,
    REEL_I16,
    REEL_I8,
    REEL_U8,
    REEL_BOOL,
    REEL_F8_E4M3,
    REEL_F8_E5M2,
    REEL_DTYPE_COUNT
};

#define REEL_MAX_DIMS 8

struct reel_tensor {
    enum reel_dtype dtype;
    int ndim;
    int64_t shape[REEL_MAX_DIMS];
    void *data;       /* contiguous, row-major; not owned */
    const char *name; /* for error messages; may be NULL */
};

size_t reel_dtype_size(enum reel_dtype dt);
const char *reel_dtype_name(enum reel_dtype dt); /* safetensors spelling: "F32", "BF16", ... */
int reel_dtype_from_name(const char *s, size_t len, enum reel_dtype *out); /* 0 ok, -1 unknown */

int64_t reel_tensor_numel(const struct reel_tensor *t);
/* "[16, 3, 8, 8]" into buf */
const char *reel_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

static inline float reel_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
float reel_f16_to_f32(uint16_t h);
uint16_t reel_f32_to_bf16(float f); /* round to nearest even */
uint16_t reel_f32_to_f16(float f);

/* Converts n elements starting at element `first` of a float tensor of any
 * float dtype (f32/bf16/f16) to f32. */
void reel_tensor_to_f32(const struct reel_tensor *t, int64_t first, int64_t n, float *out);

/* Activation arena: a bump allocator with mark/release, so a forward pass
 * allocates its scratch without malloc churn and frees it in one step.
 * Grows by chaining blocks; allocations are 64-byte aligned. */
struct reel_arena;
struct reel_arena *reel_arena_create(size_t block_bytes);
void reel_arena_destroy(struct reel_arena *a);
void *reel_arena_alloc(struct reel_arena *a, size_t bytes); /* NULL on OOM */
float *reel_arena_f32(struct reel_arena *a, int64_t n);    /* uninitialised */
size_t reel_arena_mark(const struct reel_arena *a);
void reel_arena_release(struct reel_arena *a, size_t mark); /* frees everything after mark */
size_t reel_arena_peak(const struct reel_arena *a);

#endif
