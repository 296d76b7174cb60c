/* A small strict JSON parser (RFC 8259) into an immutable tree. Used for
 * safetensors headers, index files and config metadata. Objects keep their
 * key order and duplicate keys, so callers can reject duplicates. */
#ifndef REEL_JSON_H
#define REEL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"

enum reel_json_type { REEL_JSON_NULL, REEL_JSON_BOOL, REEL_JSON_NUMBER, REEL_JSON_STRING,
                      REEL_JSON_ARRAY, REEL_JSON_OBJECT };

struct reel_json {
    enum reel_json_type type;
    int boolean;
    double number;
    int is_integer;     /* number written without fraction/exponent */
    int64_t integer;    /* valid when is_integer and it fits */
    int integer_ok;     /* 0 when an integer literal overflowed int64 */
    char *string;       /* NUL-terminated, decoded UTF-8 (STRING) */
    size_t string_len;
    size_t count;       /* ARRAY / OBJECT element count */
    char **keys;        /* OBJECT keys, decoded */
    struct reel_json **items;
};

/* Parses text[0..len). On failure returns NULL and writes "offset N: why" to
 * msg. Nesting deeper than 64 levels is an error (no stack exhaustion). */
struct reel_json *reel_json_parse(const char *text, size_t len, char *msg, size_t msg_len);
void reel_json_free(struct reel_json *j);

/* Object member by key (first match), or NULL. NULL-safe. */
const struct reel_json *reel_json_get(const struct reel_json *obj, const char *key);
/* Convenience getters with defaults; NULL-safe. */
double reel_json_num(const struct reel_json *obj, const char *key, double dflt);
int64_t reel_json_int(const struct reel_json *obj, const char *key, int64_t dflt);
int reel_json_bool(const struct reel_json *obj, const char *key, int dflt);
const char *reel_json_str(const struct reel_json *obj, const char *key, const char *dflt);
/* Element i of an array as a number (dflt if absent). */
double reel_json_at_num(const struct reel_json *arr, size_t i, double dflt);

/* Typed reads of a network config's constructor kwargs. An absent or null key
 * gives *out = dflt (arrays: *out untouched); a wrong type or range is
 * REEL_E_MODEL "<what> config: '<key>' must be ...". */
int reel_json_cfg_int(const struct reel_json *j, const char *what, const char *key, int dflt,
                      int minv, int *out, struct reel_err *err);
int reel_json_cfg_bool(const struct reel_json *j, const char *what, const char *key, int dflt,
                       int *out, struct reel_err *err);
/* A finite number > 0. */
int reel_json_cfg_pos(const struct reel_json *j, const char *what, const char *key, double dflt,
                      double *out, struct reel_err *err);
/* An array of exactly n integers. */
int reel_json_cfg_ints(const struct reel_json *j, const char *what, const char *key, int n,
                       int *out, struct reel_err *err);

#endif
