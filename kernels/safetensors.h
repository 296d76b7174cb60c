/* safetensors files: mmap, strict header validation, tensor lookup; and
 * weight sets (one file, a shard index, or a directory) looked up by the
 * checkpoint's own tensor names with an optional prefix. */
#ifndef REEL_SAFETENSORS_H
#define REEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"
#include "kernels/json.h"
#include "kernels/tensor.h"

struct reel_st_file {
    char *path;
    const uint8_t *map; /* whole file, read-only */
    size_t size;
    size_t data_start;  /* 8 + header length */
    int count;
    struct reel_tensor *tensors; /* name points into names storage, data into the map */
    struct reel_json *header;    /* parsed header; metadata under "__metadata__" */
};

/* Opens and validates: header length within the file, JSON syntax, only known
 * dtypes, shape x dtype size == byte range, every range inside the data area,
 * ranges not overlapping, no duplicate names, metadata values strings.
 * Errors are REEL_E_MODEL and name the file and the tensor. */
int reel_st_open(const char *path, struct reel_st_file **out, struct reel_err *err);
void reel_st_close(struct reel_st_file *f);
const struct reel_tensor *reel_st_find(const struct reel_st_file *f, const char *name);
/* __metadata__ value or NULL */
const char *reel_st_meta(const struct reel_st_file *f, const char *key);

/* Writes tensors (name, dtype, shape, data) and string metadata
 * (meta_kv = key0, value0, key1, value1, ...) to path: temp file, fsync,
 * rename, so the file appears complete or not at all (kernels/safetensors_write.c). */
int reel_st_write(const char *path, const struct reel_tensor *tensors, int count,
                  const char *const *meta_kv, int meta_count, struct reel_err *err);
/* The same, with each tensor's bytes produced on demand (tensors[i].data
 * unused): fill writes numel x dtype-size bytes of tensor i into buf, so a
 * generated file never has to be in memory whole. fill NULL writes each
 * tensor's own data (that is reel_st_write). */
typedef int (*reel_st_fill_fn)(void *ctx, int index, const struct reel_tensor *t, void *buf,
                               struct reel_err *err);
int reel_st_write_stream(const char *path, const struct reel_tensor *tensors, int count,
                         const char *const *meta_kv, int meta_count, reel_st_fill_fn fill,
                         void *ctx, struct reel_err *err);

/* A set of weight files seen as one name space. Lookups try `prefix + name`
 * for each registered prefix in order ("" is always tried first), so a
 * checkpoint repackaged with "model.diffusion_model." loads by the same names. */
struct reel_weights;

/* path: a .safetensors file, a *.safetensors.index.json shard index, or a
 * directory holding one of those (diffusion_pytorch_model*.safetensors or
 * model*.safetensors). */
int reel_weights_open(const char *path, struct reel_weights **out, struct reel_err *err);
/* Wraps an already-open file (not owned) - used by `reel check` with prefix "weights.". */
int reel_weights_from_file(struct reel_st_file *f, const char *prefix, struct reel_weights **out,
                           struct reel_err *err);
void reel_weights_close(struct reel_weights *w);
int reel_weights_add_prefix(struct reel_weights *w, const char *prefix);

/* Looks up `name`; NULL if absent. */
const struct reel_tensor *reel_weights_find(const struct reel_weights *w, const char *name);
/* Looks up a required float tensor and checks its shape (ndim entries of
 * shape; a -1 entry matches anything). Errors name the tensor, the expected
 * and the actual shape. */
int reel_weights_get(const struct reel_weights *w, const char *name, int ndim,
                     const int64_t *shape, const struct reel_tensor **out, struct reel_err *err);
/* Same, but converts to a malloc'd f32 copy (for small vectors: biases,
 * gammas, modulation tables). Caller frees. */
int reel_weights_get_f32(const struct reel_weights *w, const char *name, int ndim,
                         const int64_t *shape, float **out, struct reel_err *err);
/* Number of distinct tensors and a name iterator (for "unused tensor" checks). */
int reel_weights_count(const struct reel_weights *w);
const struct reel_tensor *reel_weights_at(const struct reel_weights *w, int i);

#endif
