/* The text stage: prompt -> tokens -> umT5 -> context rows, with an
 * in-memory embeddings cache.
 *
 * The cache key is the weights' identity plus the prompt's token ids (the
 * text as the model sees it): two prompts that clean and tokenize alike share
 * an entry, and a different tokenizer or text_len cannot return a stale one. */
#include "stages/text_encode.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stages/tokenizer.h"
#include "stages/umt5.h"

const char reel_wan_negative_prompt[] =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容"
    "的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

/* ------------------------------------------------------------ cleaning */

/* One UTF-8 code point at s[0..n): its value and byte length; an invalid
 * sequence is one byte of value -1 (never whitespace). */
static int32_t utf8_next(const unsigned char *s, size_t n, size_t *k)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                              : (c & 0xF8) == 0xF0 ? 4 : 0;
    *k = 1;
    if (len == 1)
        return (int32_t)c;
    if (len == 0 || len > n)
        return -1;
    uint32_t cp = c & (0x7Fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *k = len;
    return (int32_t)cp;
}

/* \s of the `regex` module on str: the Unicode White_Space characters. */
static int is_ws(int32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* str.strip() also removes the information separators U+001C..U+001F. */
static int is_py_space(int32_t c)
{
    return is_ws(c) || (c >= 0x1C && c <= 0x1F);
}

char *reel_text_clean_whitespace(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    if (!text)
        len = 0;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    /* re.sub(r'\s+', ' ', text) */
    size_t o = 0;
    int in_run = 0;
    for (size_t i = 0; i < len;) {
        size_t k;
        int32_t c = utf8_next(s + i, len - i, &k);
        if (is_ws(c)) {
            if (!in_run)
                out[o++] = ' ';
            in_run = 1;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            in_run = 0;
        }
        i += k;
    }
    /* .strip(): keep [first, last] non-space code points */
    size_t first = o, end = 0;
    for (size_t i = 0; i < o;) {
        size_t k;
        int32_t c = utf8_next((const unsigned char *)out + i, o - i, &k);
        if (!is_py_space(c)) {
            if (first == o)
                first = i;
            end = i + k;
        }
        i += k;
    }
    if (first == o)
        first = end = 0;
    memmove(out, out + first, end - first);
    out[end - first] = 0;
    return out;
}

/* ---------------------------------------------------------------- cache */

struct cache_entry {
    unsigned char *key;
    size_t key_len;
    uint64_t hash;
    float *emb;
    int64_t rows, dim;
    size_t bytes;
    uint64_t last_use;
};

struct reel_text_cache {
    struct cache_entry *e;
    size_t n, cap;
    size_t bytes, max_bytes;
    uint64_t tick, hits, misses;
};

struct reel_text_cache *reel_text_cache_create(size_t max_bytes)
{
    struct reel_text_cache *c = calloc(1, sizeof *c);
    if (c)
        c->max_bytes = max_bytes;
    return c;
}

static void entry_free(struct cache_entry *e)
{
    free(e->key);
    free(e->emb);
}

void reel_text_cache_destroy(struct reel_text_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->e[i]);
    free(c->e);
    free(c);
}

void reel_text_cache_stats(const struct reel_text_cache *c, size_t *entries, uint64_t *hits,
                           uint64_t *misses)
{
    if (entries)
        *entries = c ? c->n : 0;
    if (hits)
        *hits = c ? c->hits : 0;
    if (misses)
        *misses = c ? c->misses : 0;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* A copy of the cached rows, or NULL (miss or out of memory). */
static float *cache_get(struct reel_text_cache *c, const unsigned char *key, size_t key_len,
                        int64_t *rows)
{
    uint64_t h = fnv1a(key, key_len);
    for (size_t i = 0; i < c->n; i++) {
        struct cache_entry *e = &c->e[i];
        if (e->hash != h || e->key_len != key_len || memcmp(e->key, key, key_len))
            continue;
        float *copy = malloc(e->bytes ? e->bytes : 1);
        if (!copy)
            return NULL;
        memcpy(copy, e->emb, e->bytes);
        e->last_use = ++c->tick;
        c->hits++;
        *rows = e->rows;
        return copy;
    }
    c->misses++;
    return NULL;
}

/* Stores a copy; drops least recently used entries to stay under
 * max_bytes. Failing to cache is not an error. */
static void cache_put(struct reel_text_cache *c, const unsigned char *key, size_t key_len,
                      const float *emb, int64_t rows, int64_t dim)
{
    size_t bytes = sizeof(float) * (size_t)rows * (size_t)dim;
    if (bytes + key_len > c->max_bytes)
        return;
    while (c->n > 0 && c->bytes + bytes + key_len > c->max_bytes) {
        size_t lru = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].last_use < c->e[lru].last_use)
                lru = i;
        c->bytes -= c->e[lru].bytes + c->e[lru].key_len;
        entry_free(&c->e[lru]);
        c->e[lru] = c->e[--c->n];
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        struct cache_entry *ne = realloc(c->e, sizeof *ne * cap);
        if (!ne)
            return;
        c->e = ne;
        c->cap = cap;
    }
    struct cache_entry e = {0};
    e.key = malloc(key_len ? key_len : 1);
    e.emb = malloc(bytes ? bytes : 1);
    if (!e.key || !e.emb) {
        entry_free(&e);
        return;
    }
    memcpy(e.key, key, key_len);
    memcpy(e.emb, emb, bytes);
    e.key_len = key_len;
    e.hash = fnv1a(key, key_len);
    e.rows = rows;
    e.dim = dim;
    e.bytes = bytes;
    e.last_use = ++c->tick;
    c->e[c->n++] = e;
    c->bytes += bytes + key_len;
}

/* -------------------------------------------------------------- encoder */

struct reel_text_encoder {
    struct reel_weights *own_weights;
    const struct reel_weights *weights;
    struct reel_backend *own_be, *be;
    struct reel_tokenizer *tok;
    struct reel_umt5 *model;
    int text_len;
    int32_t eos;
    char *id; /* weights identity, NUL-terminated; part of the cache key */
    struct reel_text_cache *cache;
};

void reel_text_encoder_destroy(struct reel_text_encoder *enc)
{
    if (!enc)
        return;
    reel_umt5_destroy(enc->model);
    reel_tokenizer_close(enc->tok);
    reel_weights_close(enc->own_weights);
    reel_backend_destroy(enc->own_be);
    free(enc->id);
    free(enc);
}

/* "path|size|mtime" of a file or directory, from its real path. */
static char *path_identity(const char *path)
{
    struct stat st;
    char *real = realpath(path, NULL);
    if (!real || stat(real, &st) != 0) {
        free(real);
        return NULL;
    }
    size_t n = strlen(real) + 64;
    char *id = malloc(n);
    if (id)
        snprintf(id, n, "%s|%lld|%lld.%09ld", real, (long long)st.st_size,
                 (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    free(real);
    return id;
}

int reel_text_encoder_create(const struct reel_text_encoder_opts *o,
                             struct reel_text_encoder **out, struct reel_err *err)
{
    *out = NULL;
    if (!o->weights_path == !o->weights)
        return reel_errf(err, REEL_E_SPEC,
                         "text encoder: give either a weights path or a weight set");
    if (!o->tokenizer_path)
        return reel_errf(err, REEL_E_SPEC, "text encoder: no tokenizer model given");
    if (o->text_len < 1)
        return reel_errf(err, REEL_E_SPEC, "text encoder: text_len %d must be positive",
                         o->text_len);
    if (o->cache && o->weights && !o->weights_id)
        return reel_errf(err, REEL_E_SPEC,
                         "text encoder: a cache needs weights_id when the weights come as a set");
    struct reel_text_encoder *enc = calloc(1, sizeof *enc);
    if (!enc)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    enc->text_len = o->text_len;
    enc->cache = o->cache;
    int rc = REEL_OK;
    struct reel_umt5_config cfg;

    if (o->weights_path) {
        if ((rc = reel_weights_open(o->weights_path, &enc->own_weights, err)))
            goto fail;
        enc->weights = enc->own_weights;
    } else {
        enc->weights = o->weights;
    }
    enc->id = o->weights_id ? strdup(o->weights_id) : path_identity(o->weights_path);
    if (!enc->id) {
        rc = reel_errf(err, REEL_E_MEDIA, "text encoder: cannot identify %s", o->weights_path);
        goto fail;
    }
    enc->be = o->be;
    if (!enc->be) {
        enc->be = enc->own_be = reel_backend_cpu_create(o->threads);
        if (!enc->be) {
            rc = reel_errf(err, REEL_E_OTHER, "text encoder: cannot create the CPU backend");
            goto fail;
        }
    }
    if ((rc = reel_tokenizer_open(o->tokenizer_path, &enc->tok, err)))
        goto fail;
    enc->eos = reel_tokenizer_eos_id(enc->tok);
    if (enc->eos < 0) {
        rc = reel_errf(err, REEL_E_MODEL, "%s: the tokenizer defines no end-of-sentence id",
                       o->tokenizer_path);
        goto fail;
    }
    if ((rc = reel_umt5_config_from_weights(enc->weights, &cfg, err)) ||
        (rc = reel_umt5_create(&cfg, enc->weights, enc->be, &enc->model, err))) {
        if (o->weights_path)
            reel_err_prefix(err, "%s: ", o->weights_path);
        goto fail;
    }
    if (enc->eos >= cfg.vocab) {
        rc = reel_errf(err, REEL_E_MODEL,
                       "%s: end-of-sentence id %d is outside the encoder's vocabulary of %d",
                       o->tokenizer_path, (int)enc->eos, cfg.vocab);
        goto fail;
    }
    *out = enc;
    return REEL_OK;

fail:
    reel_text_encoder_destroy(enc);
    return rc;
}

int reel_text_encoder_dim(const struct reel_text_encoder *enc)
{
    return reel_umt5_get_config(enc->model)->dim;
}

int reel_text_tokenize(const struct reel_text_encoder *enc, const char *prompt, int32_t **ids,
                       int64_t *n, struct reel_err *err)
{
    *ids = NULL;
    *n = 0;
    char *clean = reel_text_clean_whitespace(prompt, prompt ? strlen(prompt) : 0);
    if (!clean)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    int32_t *v = NULL;
    size_t cnt = 0;
    int rc = reel_tokenizer_encode(enc->tok, clean, strlen(clean), &v, &cnt, err);
    free(clean);
    if (rc)
        return rc;
    /* truncation=True, max_length=text_len with add_special_tokens keeps
     * room for the EOS the T5 tokenizer appends */
    if (cnt > (size_t)enc->text_len - 1)
        cnt = (size_t)enc->text_len - 1;
    int32_t *r = realloc(v, sizeof *r * (cnt + 1));
    if (!r) {
        free(v);
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    }
    r[cnt] = enc->eos;
    *ids = r;
    *n = (int64_t)cnt + 1;
    return REEL_OK;
}

int reel_text_encode(struct reel_text_encoder *enc, const char *prompt, float **emb,
                     int64_t *len, struct reel_err *err)
{
    *emb = NULL;
    *len = 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = reel_text_tokenize(enc, prompt, &ids, &n, err);
    if (rc)
        return rc;
    const int64_t dim = reel_text_encoder_dim(enc);

    unsigned char *key = NULL;
    size_t id_len = strlen(enc->id) + 1, key_len = id_len + sizeof *ids * (size_t)n;
    if (enc->cache) {
        key = malloc(key_len);
        if (!key) {
            free(ids);
            return reel_errf(err, REEL_E_OTHER, "out of memory");
        }
        memcpy(key, enc->id, id_len);
        memcpy(key + id_len, ids, sizeof *ids * (size_t)n);
        int64_t rows = 0;
        float *hit = cache_get(enc->cache, key, key_len, &rows);
        if (hit) {
            free(key);
            free(ids);
            *emb = hit;
            *len = rows;
            return REEL_OK;
        }
    }

    float *out = malloc(sizeof *out * (size_t)(n * dim));
    if (!out) {
        free(key);
        free(ids);
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    }
    struct reel_umt5_input in = {.ids = ids, .len = n};
    if ((rc = reel_umt5_forward(enc->model, &in, out, err))) {
        free(out);
    } else {
        if (enc->cache)
            cache_put(enc->cache, key, key_len, out, n, dim);
        *emb = out;
        *len = n;
    }
    free(key);
    free(ids);
    return rc;
}
