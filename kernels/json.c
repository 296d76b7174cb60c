/* Strict RFC 8259 JSON parser into an immutable tree (kernels/json.h).
 * Owns: the parser, the tree and its getters. Input comes from untrusted
 * weight files, so everything is bounded: nesting depth, no recursion past
 * the depth limit, every byte checked (UTF-8, control characters, NUL). */
#include "kernels/json.h"

#include <limits.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

struct parser {
    const unsigned char *start, *p, *end;
    char *msg;
    size_t msg_len;
    int failed;
};

__attribute__((format(printf, 3, 4))) static struct reel_json *fail_at(struct parser *ps,
                                                                        const unsigned char *at,
                                                                        const char *fmt, ...)
{
    if (ps->failed)
        return NULL;
    ps->failed = 1;
    if (ps->msg && ps->msg_len) {
        char why[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        snprintf(ps->msg, ps->msg_len, "offset %zu: %s", (size_t)(at - ps->start), why);
    }
    return NULL;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Describes the byte at p for error messages. */
static const char *byte_desc(char *buf, size_t n, const unsigned char *p, const unsigned char *end)
{
    if (p >= end)
        snprintf(buf, n, "end of input");
    else if (*p == 0)
        snprintf(buf, n, "NUL byte");
    else if (*p >= 0x20 && *p < 0x7f)
        snprintf(buf, n, "'%c'", *p);
    else
        snprintf(buf, n, "byte 0x%02x", *p);
    return buf;
}

static struct reel_json *new_node(struct parser *ps, enum reel_json_type type)
{
    struct reel_json *j = calloc(1, sizeof *j);
    if (!j)
        return fail_at(ps, ps->p, "out of memory");
    j->type = type;
    return j;
}

void reel_json_free(struct reel_json *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->count; i++) {
        if (j->items)
            reel_json_free(j->items[i]);
        if (j->keys)
            free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->string);
    free(j);
}

/* Growable byte buffer for decoded strings. */
struct sbuf {
    char *data;
    size_t len, cap;
};

static int sbuf_put(struct sbuf *b, const void *src, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

static int sbuf_put_cp(struct sbuf *b, unsigned cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return sbuf_put(b, u, n);
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no
 * encoded surrogates, nothing past U+10FFFF), or 0 if it is malformed. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* Parses a string at ps->p (which is at the opening quote). On success the
 * decoded bytes are in b (always NUL-terminated, possibly with inner NULs
 * from \u0000). */
static int parse_string_raw(struct parser *ps, struct sbuf *b)
{
    const unsigned char *open = ps->p;
    ps->p++; /* opening quote */
    if (sbuf_put(b, "", 0)) {
        fail_at(ps, open, "out of memory");
        return -1;
    }
    for (;;) {
        if (ps->p >= ps->end) {
            fail_at(ps, open, "unterminated string");
            return -1;
        }
        /* Copy the run of plain characters in one go. */
        const unsigned char *run = ps->p;
        while (ps->p < ps->end && *ps->p >= 0x20 && *ps->p < 0x80 && *ps->p != '"' &&
               *ps->p != '\\')
            ps->p++;
        if (ps->p > run && sbuf_put(b, run, (size_t)(ps->p - run))) {
            fail_at(ps, run, "out of memory");
            return -1;
        }
        if (ps->p >= ps->end)
            continue;
        unsigned c = *ps->p;
        if (c == '"') {
            ps->p++;
            return 0;
        }
        if (c == 0) {
            fail_at(ps, ps->p, "NUL byte inside a string");
            return -1;
        }
        if (c < 0x20) {
            fail_at(ps, ps->p, "unescaped control character 0x%02x in a string", c);
            return -1;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(ps->p, ps->end);
            if (!n) {
                fail_at(ps, ps->p, "invalid UTF-8 in a string");
                return -1;
            }
            if (sbuf_put(b, ps->p, n)) {
                fail_at(ps, ps->p, "out of memory");
                return -1;
            }
            ps->p += n;
            continue;
        }
        /* backslash escape */
        const unsigned char *esc = ps->p;
        if (ps->end - ps->p < 2) {
            fail_at(ps, open, "unterminated string");
            return -1;
        }
        unsigned e = ps->p[1];
        ps->p += 2;
        char ch;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(ps->p, ps->end, &cp)) {
                fail_at(ps, esc, "bad \\u escape (needs 4 hex digits)");
                return -1;
            }
            ps->p += 4;
            /* A lone surrogate has no UTF-8 encoding; rejecting it keeps every
             * decoded string valid UTF-8. */
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                fail_at(ps, esc, "lone low surrogate \\u%04x", cp);
                return -1;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
                    hex4(ps->p + 2, ps->end, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                    fail_at(ps, esc, "high surrogate \\u%04x not followed by a low surrogate",
                            cp);
                    return -1;
                }
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (sbuf_put_cp(b, cp)) {
                fail_at(ps, esc, "out of memory");
                return -1;
            }
            continue;
        }
        default: {
            char d[32];
            fail_at(ps, esc, "bad escape \\%s", byte_desc(d, sizeof d, esc + 1, ps->end));
            return -1;
        }
        }
        if (sbuf_put(b, &ch, 1)) {
            fail_at(ps, esc, "out of memory");
            return -1;
        }
    }
}

static int is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static struct reel_json *parse_number(struct parser *ps)
{
    const unsigned char *s = ps->p, *p = ps->p;
    int neg = 0, is_int = 1;
    if (p < ps->end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= ps->end || !is_digit(*p))
        return fail_at(ps, s, "bad number: expected a digit");
    if (*p == '0') {
        p++;
        if (p < ps->end && is_digit(*p))
            return fail_at(ps, s, "bad number: leading zero");
    } else {
        while (p < ps->end && is_digit(*p))
            p++;
    }
    const unsigned char *int_end = p;
    if (p < ps->end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= ps->end || !is_digit(*p))
            return fail_at(ps, s, "bad number: expected a digit after '.'");
        while (p < ps->end && is_digit(*p))
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= ps->end || !is_digit(*p))
            return fail_at(ps, s, "bad number: expected a digit in the exponent");
        while (p < ps->end && is_digit(*p))
            p++;
    }

    /* strtod needs a NUL-terminated copy; the grammar above already fixed
     * the extent, so strtod cannot read further than we validated. */
    size_t n = (size_t)(p - s);
    char small[64], *buf = small;
    if (n + 1 > sizeof small) {
        buf = malloc(n + 1);
        if (!buf)
            return fail_at(ps, s, "out of memory");
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    double v = strtod(buf, NULL);
    int range_err = errno == ERANGE;
    if (buf != small)
        free(buf);
    if (!isfinite(v) || (range_err && fabs(v) > 1.0))
        return fail_at(ps, s, "number out of range");

    struct reel_json *j = new_node(ps, REEL_JSON_NUMBER);
    if (!j)
        return NULL;
    j->number = v;
    j->is_integer = is_int;
    if (is_int) {
        /* Exact int64 from the digits; the limit differs by sign so that
         * INT64_MIN parses. */
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
        int ok = 1;
        for (const unsigned char *q = s + neg; q < int_end; q++) {
            unsigned d = *q - '0';
            if (acc > (limit - d) / 10) {
                ok = 0;
                break;
            }
            acc = acc * 10 + d;
        }
        j->integer_ok = ok;
        if (ok)
            j->integer = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc)
                             : (int64_t)acc;
    }
    ps->p = p;
    return j;
}

static int match_word(struct parser *ps, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

/* Appends (key, item) to a container, doubling its arrays. */
static int push_item(struct reel_json *j, size_t *cap, char *key, struct reel_json *item)
{
    if (j->count == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        struct reel_json **items = realloc(j->items, nc * sizeof *items);
        if (!items)
            return -1;
        j->items = items;
        if (j->type == REEL_JSON_OBJECT) {
            char **keys = realloc(j->keys, nc * sizeof *keys);
            if (!keys)
                return -1;
            j->keys = keys;
        }
        *cap = nc;
    }
    j->items[j->count] = item;
    if (j->type == REEL_JSON_OBJECT)
        j->keys[j->count] = key;
    j->count++;
    return 0;
}

static struct reel_json *parse_value(struct parser *ps, int depth);

static struct reel_json *parse_container(struct parser *ps, int depth)
{
    const unsigned char *open = ps->p;
    int is_obj = *ps->p == '{';
    char close = is_obj ? '}' : ']';
    if (depth >= JSON_MAX_DEPTH)
        return fail_at(ps, open, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    struct reel_json *j = new_node(ps, is_obj ? REEL_JSON_OBJECT : REEL_JSON_ARRAY);
    if (!j)
        return NULL;
    size_t cap = 0;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return j;
    }
    for (;;) {
        char d[32];
        char *key = NULL;
        skip_ws(ps);
        if (is_obj) {
            if (ps->p >= ps->end || *ps->p != '"') {
                fail_at(ps, ps->p, "expected a string key, found %s",
                        byte_desc(d, sizeof d, ps->p, ps->end));
                goto fail;
            }
            const unsigned char *kstart = ps->p;
            struct sbuf b = {0};
            if (parse_string_raw(ps, &b)) {
                free(b.data);
                goto fail;
            }
            /* keys are plain C strings in the API, so an inner NUL would
             * silently truncate a name: refuse it. */
            if (strlen(b.data) != b.len) {
                free(b.data);
                fail_at(ps, kstart, "object key contains \\u0000");
                goto fail;
            }
            key = b.data;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                fail_at(ps, ps->p, "expected ':' after an object key, found %s",
                        byte_desc(d, sizeof d, ps->p, ps->end));
                goto fail;
            }
            ps->p++;
        }
        struct reel_json *item = parse_value(ps, depth + 1);
        if (!item) {
            free(key);
            goto fail;
        }
        if (push_item(j, &cap, key, item)) {
            free(key);
            reel_json_free(item);
            fail_at(ps, ps->p, "out of memory");
            goto fail;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == close) {
                fail_at(ps, ps->p, "trailing comma");
                goto fail;
            }
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return j;
        }
        fail_at(ps, ps->p, "expected ',' or '%c', found %s", close,
                byte_desc(d, sizeof d, ps->p, ps->end));
        goto fail;
    }
fail:
    reel_json_free(j);
    return NULL;
}

static struct reel_json *parse_value(struct parser *ps, int depth)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail_at(ps, ps->p, "unexpected end of input, expected a value");
    unsigned c = *ps->p;
    struct reel_json *j;
    switch (c) {
    case '{':
    case '[':
        return parse_container(ps, depth);
    case '"': {
        struct sbuf b = {0};
        if (parse_string_raw(ps, &b)) {
            free(b.data);
            return NULL;
        }
        j = new_node(ps, REEL_JSON_STRING);
        if (!j) {
            free(b.data);
            return NULL;
        }
        j->string = b.data;
        j->string_len = b.len;
        return j;
    }
    case 't':
    case 'f':
    case 'n':
        if (match_word(ps, "true") || match_word(ps, "false")) {
            j = new_node(ps, REEL_JSON_BOOL);
            if (j)
                j->boolean = c == 't';
            return j;
        }
        if (match_word(ps, "null"))
            return new_node(ps, REEL_JSON_NULL);
        break;
    default:
        if (c == '-' || is_digit(c))
            return parse_number(ps);
        break;
    }
    char d[32];
    return fail_at(ps, ps->p, "unexpected %s, expected a value", byte_desc(d, sizeof d, ps->p, ps->end));
}

struct reel_json *reel_json_parse(const char *text, size_t len, char *msg, size_t msg_len)
{
    if (!text) {
        len = 0; /* NULL is empty input, not a crash */
        text = "";
    }
    struct parser ps = {(const unsigned char *)text, (const unsigned char *)text,
                        (const unsigned char *)text + len, msg, msg_len, 0};
    if (msg && msg_len)
        msg[0] = 0;
    struct reel_json *j = parse_value(&ps, 0);
    if (!j)
        return NULL;
    skip_ws(&ps);
    if (ps.p < ps.end) {
        char d[32];
        fail_at(&ps, ps.p, "trailing %s after the JSON value", byte_desc(d, sizeof d, ps.p, ps.end));
        reel_json_free(j);
        return NULL;
    }
    return j;
}

const struct reel_json *reel_json_get(const struct reel_json *obj, const char *key)
{
    if (!obj || !key || obj->type != REEL_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    return NULL;
}

double reel_json_num(const struct reel_json *obj, const char *key, double dflt)
{
    const struct reel_json *v = reel_json_get(obj, key);
    return v && v->type == REEL_JSON_NUMBER ? v->number : dflt;
}

/* An integer literal gives its exact value; an integral float such as 2.0 or
 * 1e3 (configs written by other tools) is accepted when it fits. */
int64_t reel_json_int(const struct reel_json *obj, const char *key, int64_t dflt)
{
    const struct reel_json *v = reel_json_get(obj, key);
    if (!v || v->type != REEL_JSON_NUMBER)
        return dflt;
    if (v->is_integer)
        return v->integer_ok ? v->integer : dflt;
    if (v->number == floor(v->number) && v->number >= -9223372036854775808.0 &&
        v->number < 9223372036854775808.0)
        return (int64_t)v->number;
    return dflt;
}

int reel_json_bool(const struct reel_json *obj, const char *key, int dflt)
{
    const struct reel_json *v = reel_json_get(obj, key);
    return v && v->type == REEL_JSON_BOOL ? v->boolean : dflt;
}

const char *reel_json_str(const struct reel_json *obj, const char *key, const char *dflt)
{
    const struct reel_json *v = reel_json_get(obj, key);
    return v && v->type == REEL_JSON_STRING ? v->string : dflt;
}

double reel_json_at_num(const struct reel_json *arr, size_t i, double dflt)
{
    if (!arr || arr->type != REEL_JSON_ARRAY || i >= arr->count)
        return dflt;
    const struct reel_json *v = arr->items[i];
    return v->type == REEL_JSON_NUMBER ? v->number : dflt;
}

/* ------------------------------------------------------- config kwargs */

int reel_json_cfg_int(const struct reel_json *j, const char *what, const char *key, int dflt,
                      int minv, int *out, struct reel_err *err)
{
    const struct reel_json *v = reel_json_get(j, key);
    if (!v || v->type == REEL_JSON_NULL) {
        *out = dflt;
        return REEL_OK;
    }
    if (v->type != REEL_JSON_NUMBER || !v->is_integer || !v->integer_ok || v->integer < minv ||
        v->integer > INT_MAX)
        return reel_errf(err, REEL_E_MODEL, "%s config: '%s' must be an integer >= %d", what,
                         key, minv);
    *out = (int)v->integer;
    return REEL_OK;
}

int reel_json_cfg_bool(const struct reel_json *j, const char *what, const char *key, int dflt,
                       int *out, struct reel_err *err)
{
    const struct reel_json *v = reel_json_get(j, key);
    if (!v || v->type == REEL_JSON_NULL) {
        *out = dflt;
        return REEL_OK;
    }
    if (v->type != REEL_JSON_BOOL)
        return reel_errf(err, REEL_E_MODEL, "%s config: '%s' must be true or false", what, key);
    *out = v->boolean;
    return REEL_OK;
}

int reel_json_cfg_pos(const struct reel_json *j, const char *what, const char *key, double dflt,
                      double *out, struct reel_err *err)
{
    const struct reel_json *v = reel_json_get(j, key);
    if (!v || v->type == REEL_JSON_NULL) {
        *out = dflt;
        return REEL_OK;
    }
    if (v->type != REEL_JSON_NUMBER || !(v->number > 0) || !isfinite(v->number))
        return reel_errf(err, REEL_E_MODEL, "%s config: '%s' must be a positive number", what,
                         key);
    *out = v->number;
    return REEL_OK;
}

int reel_json_cfg_ints(const struct reel_json *j, const char *what, const char *key, int n,
                       int *out, struct reel_err *err)
{
    const struct reel_json *v = reel_json_get(j, key);
    if (!v || v->type == REEL_JSON_NULL)
        return REEL_OK;
    int ok = v->type == REEL_JSON_ARRAY && (int)v->count == n;
    for (int i = 0; ok && i < n; i++) {
        const struct reel_json *e = v->items[i];
        ok = e->type == REEL_JSON_NUMBER && e->is_integer && e->integer_ok &&
             e->integer >= INT_MIN && e->integer <= INT_MAX;
    }
    if (!ok)
        return reel_errf(err, REEL_E_MODEL, "%s config: '%s' must be an array of %d integers",
                         what, key, n);
    for (int i = 0; i < n; i++)
        out[i] = (int)v->items[i]->integer;
    return REEL_OK;
}
