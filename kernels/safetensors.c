/* safetensors files and weight sets (kernels/safetensors.h).
 * Owns: mmap + strict header validation of one file, name lookup by hash,
 * and weight sets over one file, a shard index or a checkpoint directory.
 * Weight files come from the internet, so nothing in a header is trusted:
 * every size is checked for overflow before it is used, and every error
 * names the file and the tensor so a user can tell which download is bad.
 * Tensor data points straight into the read-only map; offsets are not
 * required to be aligned, so readers must use memcpy-style loads
 * (reel_tensor_to_f32 does). */
#include "kernels/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define INDEX_MAX_BYTES ((size_t)100 * 1000 * 1000)

/* ---- name table: open addressing over tensor pointers, keyed by name ---- */

struct name_table {
    const struct reel_tensor **slots;
    size_t mask;
};

static uint64_t fnv_add(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

#define FNV_INIT 14695981039346656037ull

static int nt_init(struct name_table *nt, size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    nt->slots = calloc(size, sizeof *nt->slots);
    nt->mask = size - 1;
    return nt->slots ? 0 : -1;
}

/* Finds prefix+name without building the concatenation. */
static const struct reel_tensor *nt_find(const struct name_table *nt, const char *prefix,
                                         const char *name)
{
    if (!nt->slots)
        return NULL;
    size_t plen = strlen(prefix);
    size_t i = (size_t)fnv_add(fnv_add(FNV_INIT, prefix), name) & nt->mask;
    for (;; i = (i + 1) & nt->mask) {
        const struct reel_tensor *t = nt->slots[i];
        if (!t)
            return NULL;
        if (strncmp(t->name, prefix, plen) == 0 && strcmp(t->name + plen, name) == 0)
            return t;
    }
}

/* Inserts t; returns the tensor already holding that name, or NULL. */
static const struct reel_tensor *nt_insert(struct name_table *nt, const struct reel_tensor *t)
{
    size_t i = (size_t)fnv_add(FNV_INIT, t->name) & nt->mask;
    for (;; i = (i + 1) & nt->mask) {
        if (!nt->slots[i]) {
            nt->slots[i] = t;
            return NULL;
        }
        if (strcmp(nt->slots[i]->name, t->name) == 0)
            return nt->slots[i];
    }
}

/* "[4, 4]"; a negative entry (a wildcard in an expected shape) prints "*". */
static const char *shape_fmt(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < ndim && k < n; i++) {
        if (shape[i] < 0)
            k += (size_t)snprintf(buf + k, n - k, "%s*", i ? ", " : "");
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}

/* ---- one file ---- */

/* The public struct plus what only this file needs. */
struct st_priv {
    struct reel_st_file pub;
    struct name_table names;
};

struct range {
    uint64_t begin, end;
    int idx;
};

static int range_cmp(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* A JSON integer usable as a size: literal integer, fits int64, >= 0. */
static int json_uint(const struct reel_json *v, uint64_t *out)
{
    if (!v || v->type != REEL_JSON_NUMBER || !v->is_integer || !v->integer_ok || v->integer < 0)
        return -1;
    *out = (uint64_t)v->integer;
    return 0;
}

/* Validates one header entry into t and its byte range. */
static int parse_entry(const struct reel_st_file *f, const char *name, const struct reel_json *v,
                       uint64_t data_size, struct reel_tensor *t, struct range *r,
                       struct reel_err *err)
{
    const char *path = f->path;
    if (v->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s': header entry is not an object",
                         path, name);
    const struct reel_json *dtype = NULL, *shape = NULL, *offs = NULL;
    for (size_t i = 0; i < v->count; i++) {
        const struct reel_json **slot;
        if (strcmp(v->keys[i], "dtype") == 0)
            slot = &dtype;
        else if (strcmp(v->keys[i], "shape") == 0)
            slot = &shape;
        else if (strcmp(v->keys[i], "data_offsets") == 0)
            slot = &offs;
        else
            return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s': unknown field '%s'", path,
                             name, v->keys[i]);
        if (*slot)
            return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s': field '%s' appears twice",
                             path, name, v->keys[i]);
        *slot = v->items[i];
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offs ? "data_offsets" : NULL;
    if (missing)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s': missing field '%s'", path, name,
                         missing);

    if (dtype->type != REEL_JSON_STRING)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s': dtype is not a string", path, name);
    enum reel_dtype dt;
    if (reel_dtype_from_name(dtype->string, dtype->string_len, &dt) != 0)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s': unknown dtype '%.64s'", path, name,
                         dtype->string);

    if (shape->type != REEL_JSON_ARRAY)
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s': shape is not an array", path, name);
    if (shape->count > REEL_MAX_DIMS)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: tensor '%s': shape has %zu dims, at most %d are supported", path,
                         name, shape->count, REEL_MAX_DIMS);
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = (int)shape->count;
    t->name = name;
    for (size_t i = 0; i < shape->count; i++) {
        const struct reel_json *d = shape->items[i];
        uint64_t u;
        if (d->type == REEL_JSON_NUMBER && d->is_integer && d->integer_ok && d->integer < 0)
            return reel_errf(err, REEL_E_MODEL,
                             "%s: tensor '%s': shape entry %zu is negative (%lld)", path, name, i,
                             (long long)d->integer);
        if (d->type == REEL_JSON_NUMBER && d->is_integer && !d->integer_ok)
            return reel_errf(err, REEL_E_MODEL,
                             "%s: tensor '%s': shape entry %zu is too large for int64", path,
                             name, i);
        if (json_uint(d, &u))
            return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s': shape entry %zu is not an integer",
                             path, name, i);
        t->shape[i] = (int64_t)u;
    }

    uint64_t begin, end;
    if (offs->type != REEL_JSON_ARRAY || offs->count != 2 || json_uint(offs->items[0], &begin) ||
        json_uint(offs->items[1], &end))
        return reel_errf(err, REEL_E_MODEL,
                         "%s: tensor '%s': data_offsets is not an array of two non-negative "
                         "integers",
                         path, name);
    if (begin > end)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: tensor '%s': data_offsets begin %llu > end %llu", path, name,
                         (unsigned long long)begin, (unsigned long long)end);

    /* The element count, and the product of the non-zero dims times the
     * element size, must fit int64: consumers multiply dims freely, even of
     * an empty tensor. */
    char sbuf[160];
    uint64_t esize = reel_dtype_size(dt), numel = 1, span = esize;
    int zero = 0;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        if (d == 0) {
            zero = 1;
            continue;
        }
        if (__builtin_mul_overflow(span, d, &span) || span > (uint64_t)INT64_MAX)
            return reel_errf(err, REEL_E_MODEL,
                             "%s: tensor '%s': shape %s x %s overflows the byte size", path, name,
                             shape_fmt(sbuf, sizeof sbuf, t->ndim, t->shape),
                             reel_dtype_name(dt));
        numel *= d;
    }
    uint64_t bytes = zero ? 0 : numel * esize;
    if (zero)
        numel = 0;
    if (bytes != end - begin)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: tensor '%s': shape %s x %s = %llu bytes but data_offsets span %llu "
                         "bytes",
                         path, name, shape_fmt(sbuf, sizeof sbuf, t->ndim, t->shape),
                         reel_dtype_name(dt), (unsigned long long)bytes,
                         (unsigned long long)(end - begin));
    if (end > data_size)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                         "(%llu bytes after the header; file truncated?)",
                         path, name, (unsigned long long)begin, (unsigned long long)end,
                         (unsigned long long)data_size);
    /* The map is read-only; the struct's pointer is not const only because
     * reel_tensor also describes writable activations. */
    t->data = (void *)(f->map + f->data_start + begin);
    r->begin = begin;
    r->end = end;
    return REEL_OK;
}

static int validate_metadata(const struct reel_st_file *f, const struct reel_json *m,
                             struct reel_err *err)
{
    if (m->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "%s: __metadata__ is not an object", f->path);
    for (size_t i = 0; i < m->count; i++)
        if (m->items[i]->type != REEL_JSON_STRING)
            return reel_errf(err, REEL_E_MODEL, "%s: __metadata__ value '%s' is not a string",
                             f->path, m->keys[i]);
    return REEL_OK;
}

static int validate(struct st_priv *pv, struct reel_err *err)
{
    struct reel_st_file *f = &pv->pub;
    const char *path = f->path;
    if (f->size == 0)
        return reel_errf(err, REEL_E_MODEL, "%s: empty file (0 bytes)", path);
    if (f->size < 8)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: file is %zu bytes, too short for the 8-byte header length", path,
                         f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | f->map[i];
    if (n == 0)
        return reel_errf(err, REEL_E_MODEL, "%s: header length is 0", path);
    if (n > (uint64_t)f->size - 8)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                         (unsigned long long)n, f->size);
    if (n > ST_MAX_HEADER)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: header length %llu is over the %llu-byte limit", path,
                         (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);
    f->data_start = 8 + (size_t)n;
    uint64_t data_size = f->size - f->data_start;

    char msg[256];
    f->header = reel_json_parse((const char *)f->map + 8, (size_t)n, msg, sizeof msg);
    if (!f->header)
        return reel_errf(err, REEL_E_MODEL, "%s: header is not valid JSON: %s", path, msg);
    const struct reel_json *h = f->header;
    if (h->type != REEL_JSON_OBJECT)
        return reel_errf(err, REEL_E_MODEL, "%s: header is not a JSON object", path);

    size_t count = 0;
    int have_meta = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (strcmp(h->keys[i], "__metadata__") != 0) {
            count++;
            continue;
        }
        if (have_meta)
            return reel_errf(err, REEL_E_MODEL, "%s: __metadata__ appears twice", path);
        have_meta = 1;
        int rc = validate_metadata(f, h->items[i], err);
        if (rc)
            return rc;
    }
    if (count > (size_t)INT32_MAX)
        return reel_errf(err, REEL_E_MODEL, "%s: too many tensors", path);

    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    struct range *ranges = calloc(count ? count : 1, sizeof *ranges);
    if (!f->tensors || !ranges || nt_init(&pv->names, count)) {
        free(ranges);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    }
    int rc = REEL_OK;
    int k = 0;
    for (size_t i = 0; i < h->count && !rc; i++) {
        if (strcmp(h->keys[i], "__metadata__") == 0)
            continue;
        rc = parse_entry(f, h->keys[i], h->items[i], data_size, &f->tensors[k], &ranges[k], err);
        if (rc)
            break;
        ranges[k].idx = k;
        const struct reel_tensor *dup = nt_insert(&pv->names, &f->tensors[k]);
        if (dup)
            rc = reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' appears twice in the header",
                           path, h->keys[i]);
        k++;
    }
    f->count = k;
    if (!rc) {
        /* Sorted by begin, a range overlaps an earlier one exactly when it
         * starts before the furthest end seen so far. Empty ranges hold no
         * bytes and overlap nothing. */
        qsort(ranges, (size_t)k, sizeof *ranges, range_cmp);
        int far = -1;
        for (int i = 0; i < k; i++) {
            const struct range *r = &ranges[i];
            if (r->begin == r->end)
                continue;
            if (far >= 0 && r->begin < ranges[far].end) {
                const struct range *o = &ranges[far];
                rc = reel_errf(err, REEL_E_MODEL,
                               "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                               path, f->tensors[o->idx].name, (unsigned long long)o->begin,
                               (unsigned long long)o->end, f->tensors[r->idx].name,
                               (unsigned long long)r->begin, (unsigned long long)r->end);
                break;
            }
            if (far < 0 || r->end > ranges[far].end)
                far = i;
        }
    }
    free(ranges);
    return rc;
}

int reel_st_open(const char *path, struct reel_st_file **out, struct reel_err *err)
{
    *out = NULL;
    struct st_priv *pv = calloc(1, sizeof *pv);
    if (!pv || !(pv->pub.path = strdup(path))) {
        free(pv);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    }
    struct reel_st_file *f = &pv->pub;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        reel_st_close(f);
        return reel_errf(err, REEL_E_MODEL, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        reel_st_close(f);
        return reel_errf(err, REEL_E_MODEL, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        reel_st_close(f);
        return reel_errf(err, REEL_E_MODEL, "%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            f->size = 0;
            reel_st_close(f);
            return reel_errf(err, REEL_E_MODEL, "%s: cannot map: %s", path, strerror(e));
        }
        f->map = m;
    }
    close(fd); /* the map keeps the file alive */
    int rc = validate(pv, err);
    if (rc) {
        reel_st_close(f);
        return rc;
    }
    *out = f;
    return REEL_OK;
}

void reel_st_close(struct reel_st_file *f)
{
    if (!f)
        return;
    struct st_priv *pv = (struct st_priv *)f; /* pub is the first member */
    if (f->map)
        munmap((void *)f->map, f->size);
    reel_json_free(f->header);
    free(f->tensors);
    free(f->path);
    free(pv->names.slots);
    free(pv);
}

const struct reel_tensor *reel_st_find(const struct reel_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    const struct st_priv *pv = (const struct st_priv *)f;
    return nt_find(&pv->names, "", name);
}

const char *reel_st_meta(const struct reel_st_file *f, const char *key)
{
    if (!f)
        return NULL;
    return reel_json_str(reel_json_get(f->header, "__metadata__"), key, NULL);
}

/* ---- weight sets ---- */

struct reel_weights {
    char *source; /* what was opened, for error messages */
    struct reel_st_file **files;
    int nfiles;
    int owns_files;
    int try_plain; /* "" is tried before the prefixes */
    char **prefixes;
    int nprefixes;
    struct name_table table;          /* every tensor of every file */
    const struct reel_tensor **list; /* the set's tensors, for iteration */
    int count;
};

static int add_file(struct reel_weights *w, struct reel_st_file *f)
{
    struct reel_st_file **nf = realloc(w->files, (size_t)(w->nfiles + 1) * sizeof *nf);
    if (!nf)
        return -1;
    w->files = nf;
    w->files[w->nfiles++] = f;
    return 0;
}

static const char *file_of(const struct reel_weights *w, const struct reel_tensor *t)
{
    for (int i = 0; i < w->nfiles; i++) {
        const struct reel_st_file *f = w->files[i];
        if (t >= f->tensors && t < f->tensors + f->count)
            return f->path;
    }
    return "?";
}

/* Builds the name table over all files; `only` restricts the iteration list
 * to names starting with it (NULL: all). */
static int build_table(struct reel_weights *w, const char *only, struct reel_err *err)
{
    size_t total = 0;
    for (int i = 0; i < w->nfiles; i++)
        total += (size_t)w->files[i]->count;
    if (total > (size_t)INT32_MAX)
        return reel_errf(err, REEL_E_MODEL, "%s: too many tensors", w->source);
    w->list = calloc(total ? total : 1, sizeof *w->list);
    if (!w->list || nt_init(&w->table, total))
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", w->source);
    size_t olen = only ? strlen(only) : 0;
    for (int i = 0; i < w->nfiles; i++) {
        const struct reel_st_file *f = w->files[i];
        for (int j = 0; j < f->count; j++) {
            const struct reel_tensor *t = &f->tensors[j];
            const struct reel_tensor *dup = nt_insert(&w->table, t);
            if (dup)
                return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' is in both %s and %s",
                                 w->source, t->name, file_of(w, dup), f->path);
            if (!only || strncmp(t->name, only, olen) == 0)
                w->list[w->count++] = t;
        }
    }
    return REEL_OK;
}

static struct reel_weights *weights_new(const char *source)
{
    struct reel_weights *w = calloc(1, sizeof *w);
    if (w && !(w->source = strdup(source))) {
        free(w);
        return NULL;
    }
    return w;
}

void reel_weights_close(struct reel_weights *w)
{
    if (!w)
        return;
    if (w->owns_files)
        for (int i = 0; i < w->nfiles; i++)
            reel_st_close(w->files[i]);
    free(w->files);
    for (int i = 0; i < w->nprefixes; i++)
        free(w->prefixes[i]);
    free(w->prefixes);
    free(w->table.slots);
    free(w->list);
    free(w->source);
    free(w);
}

int reel_weights_add_prefix(struct reel_weights *w, const char *prefix)
{
    if (!w || !prefix)
        return REEL_E_OTHER;
    if (!prefix[0]) {
        w->try_plain = 1;
        return REEL_OK;
    }
    for (int i = 0; i < w->nprefixes; i++)
        if (strcmp(w->prefixes[i], prefix) == 0)
            return REEL_OK;
    char **np = realloc(w->prefixes, (size_t)(w->nprefixes + 1) * sizeof *np);
    if (!np)
        return REEL_E_OTHER;
    w->prefixes = np;
    if (!(w->prefixes[w->nprefixes] = strdup(prefix)))
        return REEL_E_OTHER;
    w->nprefixes++;
    return REEL_OK;
}

/* Reads a whole small file (a shard index) into a malloc'd buffer. */
static int read_small_file(const char *path, char **out, size_t *len, struct reel_err *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return reel_errf(err, REEL_E_MODEL, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= INDEX_MAX_BYTES) {
                free(buf);
                fclose(fp);
                return reel_errf(err, REEL_E_MODEL, "%s: larger than %zu bytes", path,
                                 INDEX_MAX_BYTES);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (!buf)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return reel_errf(err, REEL_E_MODEL, "%s: read error", path);
    }
    *out = buf;
    *len = n;
    return REEL_OK;
}

/* Shard names come from a downloaded file: keep them inside the index's
 * directory. */
static int shard_name_ok(const char *s)
{
    if (!s[0] || s[0] == '/')
        return 0;
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += n + (q ? 1 : 0);
    }
    return 1;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int open_index(struct reel_weights *w, const char *path, struct reel_err *err)
{
    char *text = NULL, **names = NULL;
    size_t len = 0;
    struct reel_json *j = NULL;
    const char **shards = NULL;
    int nshards = 0, rc = read_small_file(path, &text, &len, err);
    if (rc)
        return rc;
    char msg[256];
    j = reel_json_parse(text, len, msg, sizeof msg);
    free(text);
    if (!j)
        return reel_errf(err, REEL_E_MODEL, "%s: not valid JSON: %s", path, msg);
    const struct reel_json *map = reel_json_get(j, "weight_map");
    if (j->type != REEL_JSON_OBJECT || !map || map->type != REEL_JSON_OBJECT) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: no \"weight_map\" object (not a shard index)",
                       path);
        goto done;
    }
    if (map->count == 0) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: weight_map is empty", path);
        goto done;
    }
    names = malloc(map->count * sizeof *names);
    shards = malloc(map->count * sizeof *shards);
    if (!names || !shards) {
        rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < map->count; i++) {
        const struct reel_json *v = map->items[i];
        if (v->type != REEL_JSON_STRING || strlen(v->string) != v->string_len ||
            !shard_name_ok(v->string)) {
            rc = reel_errf(err, REEL_E_MODEL,
                           "%s: tensor '%s': weight_map value is not a relative file name", path,
                           map->keys[i]);
            goto done;
        }
        names[i] = map->keys[i];
        int s = 0;
        while (s < nshards && strcmp(shards[s], v->string) != 0)
            s++;
        if (s == nshards)
            shards[nshards++] = v->string;
    }
    qsort(names, map->count, sizeof *names, cmp_str_ptr);
    for (size_t i = 1; i < map->count; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            rc = reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' appears twice in weight_map", path,
                           names[i]);
            goto done;
        }

    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    for (int s = 0; s < nshards; s++) {
        size_t n = dlen + strlen(shards[s]) + 1;
        char *sp = malloc(n);
        if (!sp) {
            rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
            goto done;
        }
        memcpy(sp, path, dlen);
        strcpy(sp + dlen, shards[s]);
        struct reel_st_file *f = NULL;
        rc = reel_st_open(sp, &f, err);
        free(sp);
        if (rc) {
            reel_err_prefix(err, "%s: shard '%s': ", path, shards[s]);
            goto done;
        }
        if (add_file(w, f)) {
            reel_st_close(f);
            rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
            goto done;
        }
    }
    for (size_t i = 0; i < map->count; i++) {
        const char *shard = map->items[i]->string;
        int s = 0;
        while (strcmp(shards[s], shard) != 0)
            s++;
        if (!reel_st_find(w->files[s], map->keys[i])) {
            rc = reel_errf(err, REEL_E_MODEL,
                           "%s: tensor '%s' is listed in shard '%s' but that file does not "
                           "contain it",
                           path, map->keys[i], shard);
            goto done;
        }
    }
done:
    free(names);
    free(shards);
    reel_json_free(j);
    return rc;
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int open_path(struct reel_weights *w, const char *path, struct reel_err *err)
{
    if (ends_with(path, ".json"))
        return open_index(w, path, err);
    struct reel_st_file *f = NULL;
    int rc = reel_st_open(path, &f, err);
    if (rc)
        return rc;
    if (add_file(w, f)) {
        reel_st_close(f);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    }
    return REEL_OK;
}

int reel_weights_open(const char *path, struct reel_weights **out, struct reel_err *err)
{
    static const char *const candidates[] = {
        "diffusion_pytorch_model.safetensors.index.json",
        "diffusion_pytorch_model.safetensors",
        "model.safetensors.index.json",
        "model.safetensors",
    };
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return reel_errf(err, REEL_E_MODEL, "%s: %s", path, strerror(errno));
    struct reel_weights *w = weights_new(path);
    if (!w)
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
    w->owns_files = 1;
    w->try_plain = 1;
    int rc;
    if (S_ISDIR(st.st_mode)) {
        const char *found = NULL;
        char *cand = NULL;
        for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && !found; i++) {
            free(cand);
            size_t n = strlen(path) + strlen(candidates[i]) + 2;
            cand = malloc(n);
            if (!cand)
                break;
            snprintf(cand, n, "%s%s%s", path, ends_with(path, "/") ? "" : "/", candidates[i]);
            if (is_regular(cand))
                found = cand;
        }
        if (!cand)
            rc = reel_errf(err, REEL_E_OTHER, "%s: out of memory", path);
        else if (!found)
            rc = reel_errf(err, REEL_E_MODEL,
                           "%s: directory holds none of diffusion_pytorch_model.safetensors"
                           "[.index.json] or model.safetensors[.index.json]",
                           path);
        else
            rc = open_path(w, found, err);
        free(cand);
    } else {
        rc = open_path(w, path, err);
    }
    if (!rc)
        rc = build_table(w, NULL, err);
    /* ComfyUI-style single files repackage the DiT under this prefix. */
    if (!rc && reel_weights_add_prefix(w, "model.diffusion_model."))
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
    if (rc) {
        reel_weights_close(w);
        return rc;
    }
    *out = w;
    return REEL_OK;
}

/* Golden files keep weights next to in./out. tensors, so the set is only the
 * prefixed names and lookups never fall back to the bare name. */
int reel_weights_from_file(struct reel_st_file *f, const char *prefix, struct reel_weights **out,
                           struct reel_err *err)
{
    *out = NULL;
    if (!f)
        return reel_errf(err, REEL_E_OTHER, "reel_weights_from_file: no file");
    struct reel_weights *w = weights_new(f->path);
    if (!w || add_file(w, f)) {
        reel_weights_close(w);
        return reel_errf(err, REEL_E_OTHER, "%s: out of memory", f->path);
    }
    const char *p = prefix ? prefix : "";
    int rc = build_table(w, p[0] ? p : NULL, err);
    if (!rc && reel_weights_add_prefix(w, p))
        rc = reel_errf(err, REEL_E_OTHER, "out of memory");
    if (rc) {
        reel_weights_close(w);
        return rc;
    }
    *out = w;
    return REEL_OK;
}

const struct reel_tensor *reel_weights_find(const struct reel_weights *w, const char *name)
{
    if (!w || !name)
        return NULL;
    const struct reel_tensor *t = NULL;
    if (w->try_plain)
        t = nt_find(&w->table, "", name);
    for (int i = 0; !t && i < w->nprefixes; i++)
        t = nt_find(&w->table, w->prefixes[i], name);
    return t;
}

static int is_float_dtype(enum reel_dtype dt)
{
    return dt == REEL_F32 || dt == REEL_BF16 || dt == REEL_F16;
}

/* ndim < 0 skips the shape check; shape may be NULL when ndim is 0. */
int reel_weights_get(const struct reel_weights *w, const char *name, int ndim,
                     const int64_t *shape, const struct reel_tensor **out, struct reel_err *err)
{
    *out = NULL;
    if (!w || !name)
        return reel_errf(err, REEL_E_OTHER, "reel_weights_get: no weight set or name");
    const struct reel_tensor *t = reel_weights_find(w, name);
    if (!t) {
        char tried[512];
        size_t k = 0;
        tried[0] = 0;
        for (int i = 0; i < w->nprefixes && k < sizeof tried; i++)
            k += (size_t)snprintf(tried + k, sizeof tried - k, "%s'%s%s'",
                                  i ? ", " : " (also tried ", w->prefixes[i], name);
        if (w->nprefixes && k < sizeof tried)
            snprintf(tried + k, sizeof tried - k, ")");
        if (!w->try_plain && w->nprefixes == 1)
            snprintf(tried, sizeof tried, " (as '%s%s')", w->prefixes[0], name);
        return reel_errf(err, REEL_E_MODEL, "%s: tensor '%s' not found%s", w->source, name,
                         tried);
    }
    if (!is_float_dtype(t->dtype))
        return reel_errf(err, REEL_E_MODEL,
                         "%s: tensor '%s' has dtype %s, expected a float tensor (F32, BF16 or "
                         "F16)",
                         file_of(w, t), t->name, reel_dtype_name(t->dtype));
    if (ndim >= 0) {
        int ok = ndim == t->ndim && ndim <= REEL_MAX_DIMS;
        for (int i = 0; ok && i < ndim; i++)
            ok = shape[i] < 0 || shape[i] == t->shape[i];
        if (!ok) {
            char want[160], have[160];
            return reel_errf(err, REEL_E_MODEL,
                             "%s: tensor '%s': expected shape %s but the file has %s",
                             file_of(w, t), t->name,
                             shape_fmt(want, sizeof want, ndim > REEL_MAX_DIMS ? REEL_MAX_DIMS : ndim, shape),
                             shape_fmt(have, sizeof have, t->ndim, t->shape));
        }
    }
    /* The kernels read weights in place with element-sized loads, so a
     * tensor whose data is not aligned to its element size is refused here
     * rather than read through a misaligned pointer. Writers that follow the
     * format (and scripts/convert_pth.py) always align. */
    if ((uintptr_t)t->data % reel_dtype_size(t->dtype) != 0)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: tensor '%s': data is not aligned to its %zu-byte dtype %s; "
                         "re-save the file with an aligning writer (scripts/convert_pth.py)",
                         file_of(w, t), t->name, reel_dtype_size(t->dtype),
                         reel_dtype_name(t->dtype));
    *out = t;
    return REEL_OK;
}

int reel_weights_get_f32(const struct reel_weights *w, const char *name, int ndim,
                         const int64_t *shape, float **out, struct reel_err *err)
{
    *out = NULL;
    const struct reel_tensor *t;
    int rc = reel_weights_get(w, name, ndim, shape, &t, err);
    if (rc)
        return rc;
    int64_t n = reel_tensor_numel(t);
    float *buf = malloc((size_t)(n ? n : 1) * sizeof *buf);
    if (!buf)
        return reel_errf(err, REEL_E_OTHER, "tensor '%s': out of memory for %lld floats",
                         t->name, (long long)n);
    if (n)
        reel_tensor_to_f32(t, 0, n, buf);
    *out = buf;
    return REEL_OK;
}

int reel_weights_count(const struct reel_weights *w)
{
    return w ? w->count : 0;
}

const struct reel_tensor *reel_weights_at(const struct reel_weights *w, int i)
{
    if (!w || i < 0 || i >= w->count)
        return NULL;
    return w->list[i];
}
