/* Job spec v1: libyaml events -> a small node tree (keeping every node's
 * line:col) -> a table-driven walk that fills a raw struct and records where
 * each key was -> resolution against the model config (defaults, snapping,
 * output checks). Errors never stop the walk, so one run reports all of a
 * file's problems. The tree, walker and diagnostics are shared with
 * pipeline/model_config.c. */
#include "pipeline/spec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "kernels/sha256.h"
#include "stages/image_read.h"

/* Spec and config files are small; a bigger one is a mistake, not a spec. */
#define MAX_YAML_BYTES (16u << 20)

/* ============================================================ diagnostics */

void reel_diag_add(struct reel_diag *d, enum reel_diag_level level, int code, const char *fmt, ...)
{
    if (!d)
        return;
    if (level == REEL_DIAG_ERROR) {
        d->errors++;
        if (code == REEL_E_SPEC)
            d->spec_errors++;
        else if (code == REEL_E_MEDIA)
            d->media_errors++;
    } else {
        d->warnings++;
    }
    if (d->count >= REEL_DIAG_MAX)
        return;
    if (d->count == d->cap) {
        int cap = d->cap ? 2 * d->cap : 16;
        struct reel_diag_item *items = realloc(d->items, sizeof *items * (size_t)cap);
        if (!items) {
            d->oom = 1;
            return;
        }
        d->items = items;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (!text) {
        d->oom = 1;
        return;
    }
    d->items[d->count].level = level;
    d->items[d->count].code = code;
    d->items[d->count].text = text;
    d->count++;
}

void reel_diag_free(struct reel_diag *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->count; i++)
        free(d->items[i].text);
    free(d->items);
    memset(d, 0, sizeof *d);
}

int reel_diag_status(const struct reel_diag *d)
{
    if (d->oom)
        return REEL_E_OTHER;
    if (!d->errors)
        return REEL_OK;
    if (d->spec_errors)
        return REEL_E_SPEC;
    return d->errors > d->media_errors ? REEL_E_MODEL : REEL_E_MEDIA;
}

/* ============================================================= YAML tree */

static struct reel_ynode *ynode_new(struct reel_ydoc *doc, enum reel_ynode_kind kind, int line,
                                    int col)
{
    if (doc->n_all == doc->cap_all) {
        size_t cap = doc->cap_all ? 2 * doc->cap_all : 32;
        struct reel_ynode **all = realloc(doc->all, sizeof *all * cap);
        if (!all)
            return NULL;
        doc->all = all;
        doc->cap_all = cap;
    }
    struct reel_ynode *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->line = line;
    n->col = col;
    doc->all[doc->n_all++] = n;
    return n;
}

/* Appends to a SEQ (key NULL) or a MAP (key + value). */
static int ynode_append(struct reel_ynode *parent, struct reel_ynode *key, struct reel_ynode *value)
{
    size_t n = parent->count + 1;
    struct reel_ynode **items = realloc(parent->items, sizeof *items * n);
    if (!items)
        return -1;
    parent->items = items;
    if (parent->kind == REEL_Y_MAP) {
        struct reel_ynode **keys = realloc(parent->keys, sizeof *keys * n);
        if (!keys)
            return -1;
        parent->keys = keys;
        keys[n - 1] = key;
    }
    items[n - 1] = value;
    parent->count = n;
    return 0;
}

void reel_ydoc_free(struct reel_ydoc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->n_all; i++) {
        struct reel_ynode *n = doc->all[i];
        free(n->value);
        free(n->tag);
        free(n->items);
        free(n->keys);
        free(n);
    }
    free(doc->all);
    for (size_t i = 0; i < doc->n_strings; i++)
        free(doc->strings[i]);
    free(doc->strings);
    free(doc->file);
    memset(doc, 0, sizeof *doc);
}

static const char *ydoc_keep_string(struct reel_ydoc *doc, const char *s)
{
    char **strings = realloc(doc->strings, sizeof *strings * (doc->n_strings + 1));
    if (!strings)
        return NULL;
    doc->strings = strings;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    strings[doc->n_strings++] = copy;
    return copy;
}

/* Line and column (1-based) of a byte offset, for libyaml reader errors,
 * which carry an offset but no mark. */
static void offset_to_mark(const char *text, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

struct frame {
    struct reel_ynode *node;
    struct reel_ynode *pending_key; /* MAP: a key waiting for its value */
    char *anchor;
};

struct anchor {
    char *name;
    struct reel_ynode *node;
};

struct builder {
    struct reel_ydoc *doc;
    struct frame *stack;
    size_t depth, cap;
    struct anchor *anchors;
    size_t n_anchors;
};

static int builder_attach(struct builder *b, struct reel_ynode *n)
{
    if (b->depth == 0) {
        b->doc->root = n;
        return 0;
    }
    struct frame *top = &b->stack[b->depth - 1];
    if (top->node->kind == REEL_Y_SEQ)
        return ynode_append(top->node, NULL, n);
    if (!top->pending_key) {
        top->pending_key = n;
        return 0;
    }
    int rc = ynode_append(top->node, top->pending_key, n);
    top->pending_key = NULL;
    return rc;
}

/* Anchors are registered when their node is complete, so an alias can never
 * refer to a node that contains it (no cycles in the tree). */
static int builder_anchor(struct builder *b, const unsigned char *name, struct reel_ynode *n)
{
    if (!name)
        return 0;
    struct anchor *a = realloc(b->anchors, sizeof *a * (b->n_anchors + 1));
    if (!a)
        return -1;
    b->anchors = a;
    a[b->n_anchors].name = strdup((const char *)name);
    if (!a[b->n_anchors].name)
        return -1;
    a[b->n_anchors].node = n;
    b->n_anchors++;
    return 0;
}

static struct reel_ynode *builder_find_anchor(struct builder *b, const char *name)
{
    for (size_t i = b->n_anchors; i-- > 0;)
        if (!strcmp(b->anchors[i].name, name))
            return b->anchors[i].node;
    return NULL;
}

static int tag_is_core_scalar(const char *tag)
{
    static const char *core[] = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                                 "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"};
    for (size_t i = 0; i < sizeof core / sizeof *core; i++)
        if (!strcmp(tag, core[i]))
            return 1;
    return 0;
}

int reel_ydoc_load_string(const char *text, size_t len, const char *display,
                          struct reel_ydoc *doc, struct reel_diag *diag, int code)
{
    memset(doc, 0, sizeof *doc);
    doc->file = strdup(display);
    if (!doc->file) {
        diag->oom = 1;
        return REEL_E_OTHER;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        diag->oom = 1;
        return REEL_E_OTHER;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    struct builder b = {.doc = doc};
    int documents = 0, rc = REEL_OK, done = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            int line, col;
            if (parser.error == YAML_READER_ERROR) {
                offset_to_mark(text, len, parser.problem_offset, &line, &col);
            } else {
                line = (int)parser.problem_mark.line + 1;
                col = (int)parser.problem_mark.column + 1;
            }
            const char *problem = parser.problem ? parser.problem : "invalid YAML";
            if (parser.error == YAML_MEMORY_ERROR) {
                diag->oom = 1;
                rc = REEL_E_OTHER;
            } else if (parser.context) {
                reel_diag_add(diag, REEL_DIAG_ERROR, code, "%s:%d:%d: syntax error: %s (%s at %d:%d)",
                              display, line, col, problem, parser.context,
                              (int)parser.context_mark.line + 1, (int)parser.context_mark.column + 1);
                rc = code;
            } else {
                reel_diag_add(diag, REEL_DIAG_ERROR, code, "%s:%d:%d: syntax error: %s", display,
                              line, col, problem);
                rc = code;
            }
            break;
        }
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        struct reel_ynode *n = NULL;
        int fail = 0; /* -1: out of memory */
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                reel_diag_add(diag, REEL_DIAG_ERROR, code,
                              "%s:%d:%d: a second YAML document: one file holds one document",
                              display, line, col);
                rc = code;
                done = 1;
            }
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_SCALAR_EVENT: {
            n = ynode_new(doc, REEL_Y_SCALAR, line, col);
            if (!n) {
                fail = -1;
                break;
            }
            n->len = ev.data.scalar.length;
            n->value = malloc(n->len + 1);
            if (!n->value) {
                fail = -1;
                break;
            }
            memcpy(n->value, ev.data.scalar.value, n->len);
            n->value[n->len] = 0;
            const char *tag = (const char *)ev.data.scalar.tag;
            if (tag && !(n->tag = strdup(tag))) {
                fail = -1;
                break;
            }
            n->plain = (ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag) ||
                       (tag && tag_is_core_scalar(tag));
            if (builder_attach(&b, n) || builder_anchor(&b, ev.data.scalar.anchor, n))
                fail = -1;
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            int is_map = ev.type == YAML_MAPPING_START_EVENT;
            n = ynode_new(doc, is_map ? REEL_Y_MAP : REEL_Y_SEQ, line, col);
            if (!n || builder_attach(&b, n)) {
                fail = -1;
                break;
            }
            const unsigned char *anchor =
                is_map ? ev.data.mapping_start.anchor : ev.data.sequence_start.anchor;
            const unsigned char *tag = is_map ? ev.data.mapping_start.tag : ev.data.sequence_start.tag;
            if (tag && !(n->tag = strdup((const char *)tag))) {
                fail = -1;
                break;
            }
            if (b.depth == b.cap) {
                size_t cap = b.cap ? 2 * b.cap : 16;
                struct frame *st = realloc(b.stack, sizeof *st * cap);
                if (!st) {
                    fail = -1;
                    break;
                }
                b.stack = st;
                b.cap = cap;
            }
            b.stack[b.depth].node = n;
            b.stack[b.depth].pending_key = NULL;
            b.stack[b.depth].anchor = anchor ? strdup((const char *)anchor) : NULL;
            if (anchor && !b.stack[b.depth].anchor) {
                fail = -1;
                break;
            }
            b.depth++;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b.depth > 0) {
                struct frame *top = &b.stack[--b.depth];
                if (top->anchor && builder_anchor(&b, (const unsigned char *)top->anchor, top->node))
                    fail = -1;
                free(top->anchor);
                top->anchor = NULL;
            }
            break;
        case YAML_ALIAS_EVENT: {
            struct reel_ynode *target = builder_find_anchor(&b, (const char *)ev.data.alias.anchor);
            if (!target) {
                reel_diag_add(diag, REEL_DIAG_ERROR, code,
                              "%s:%d:%d: alias *%s refers to no complete anchored node before it",
                              display, line, col, (const char *)ev.data.alias.anchor);
                rc = code;
                done = 1;
            } else if (builder_attach(&b, target)) {
                fail = -1;
            }
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (fail) {
            diag->oom = 1;
            rc = REEL_E_OTHER;
            break;
        }
    }
    for (size_t i = 0; i < b.depth; i++)
        free(b.stack[i].anchor);
    free(b.stack);
    for (size_t i = 0; i < b.n_anchors; i++)
        free(b.anchors[i].name);
    free(b.anchors);
    yaml_parser_delete(&parser);
    if (rc != REEL_OK)
        doc->root = NULL;
    return rc;
}

int reel_ydoc_load_file(const char *path, const char *display, struct reel_ydoc *doc,
                        struct reel_diag *diag, int code)
{
    memset(doc, 0, sizeof *doc);
    if (!display)
        display = path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        reel_diag_add(diag, REEL_DIAG_ERROR, code, "%s: cannot read: %s", display, strerror(errno));
        return code;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    int too_big = 0;
    for (;;) {
        if (len + 4096 > cap) {
            size_t ncap = cap ? 2 * cap : 8192;
            char *t = realloc(text, ncap);
            if (!t) {
                free(text);
                fclose(f);
                diag->oom = 1;
                return REEL_E_OTHER;
            }
            text = t;
            cap = ncap;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (len > MAX_YAML_BYTES) {
            too_big = 1;
            break;
        }
        if (got == 0)
            break;
    }
    int read_error = ferror(f);
    fclose(f);
    if (too_big || read_error) {
        free(text);
        if (too_big)
            reel_diag_add(diag, REEL_DIAG_ERROR, code, "%s: larger than %u MiB: not a spec",
                          display, MAX_YAML_BYTES >> 20);
        else
            reel_diag_add(diag, REEL_DIAG_ERROR, code, "%s: read error", display);
        return code;
    }
    int rc = reel_ydoc_load_string(text ? text : "", len, display, doc, diag, code);
    free(text);
    return rc;
}

void reel_ynode_where(const struct reel_ynode *n, const char *file, const char *key_path,
                      char *buf, size_t size)
{
    const char *kp = key_path ? key_path : "";
    if (n && n->origin && !strcmp(n->origin, "-o"))
        snprintf(buf, size, "-o: %s%s", kp, *kp ? ": " : "");
    else if (n && n->origin && strcmp(n->origin, kp))
        snprintf(buf, size, "--set %s: %s%s", n->origin, kp, *kp ? ": " : "");
    else if (n && n->origin)
        snprintf(buf, size, "--set %s: ", n->origin);
    else if (n)
        snprintf(buf, size, "%s:%d:%d: %s%s", file, n->line, n->col, kp, *kp ? ": " : "");
    else
        snprintf(buf, size, "%s: %s%s", file, kp, *kp ? ": " : "");
}

/* ======================================================= scalar typing */

static int is_scalar(const struct reel_ynode *n)
{
    return n && n->kind == REEL_Y_SCALAR;
}

static int scalar_is_null(const struct reel_ynode *n)
{
    if (!is_scalar(n) || !n->plain)
        return 0;
    const char *v = n->value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static int scalar_bool(const struct reel_ynode *n, int *out)
{
    if (!is_scalar(n) || !n->plain)
        return 0;
    static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(n->value, yes[i])) {
            *out = 1;
            return 1;
        }
        if (!strcasecmp(n->value, no[i])) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

/* Decimal integer syntax; *neg and the digits' start. */
static int int_syntax(const char *s, int *neg, const char **digits)
{
    *neg = 0;
    if (*s == '+' || *s == '-') {
        *neg = *s == '-';
        s++;
    }
    if (!isdigit((unsigned char)*s))
        return 0;
    *digits = s;
    while (isdigit((unsigned char)*s))
        s++;
    return *s == 0;
}

/* 1: integer that fits *out; 2: integer out of int64 range; 0: not an integer. */
static int scalar_int(const struct reel_ynode *n, long long *out)
{
    int neg;
    const char *digits;
    if (!is_scalar(n) || !n->plain || !int_syntax(n->value, &neg, &digits))
        return 0;
    errno = 0;
    long long v = strtoll(n->value, NULL, 10);
    if (errno == ERANGE)
        return 2;
    *out = v;
    return 1;
}

static int num_syntax(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    int digits = 0;
    while (isdigit((unsigned char)*s)) {
        s++;
        digits++;
    }
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s)) {
            s++;
            digits++;
        }
    }
    if (!digits)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == 0;
}

static int scalar_num(const struct reel_ynode *n, double *out)
{
    if (!is_scalar(n) || !n->plain || !num_syntax(n->value))
        return 0;
    double v = strtod(n->value, NULL);
    if (!isfinite(v))
        return 0;
    *out = v;
    return 1;
}

/* "a map", "a string (\"24\")", ... for type errors. */
static void describe(const struct reel_ynode *n, char *buf, size_t size)
{
    if (!n) {
        snprintf(buf, size, "nothing");
        return;
    }
    if (n->kind == REEL_Y_MAP) {
        snprintf(buf, size, "a map");
        return;
    }
    if (n->kind == REEL_Y_SEQ) {
        snprintf(buf, size, "a list");
        return;
    }
    long long i;
    double d;
    int b;
    const char *what;
    if (scalar_is_null(n)) {
        snprintf(buf, size, "nothing (null)");
        return;
    }
    if (scalar_int(n, &i))
        what = "an integer";
    else if (scalar_num(n, &d))
        what = "a number";
    else if (scalar_bool(n, &b))
        what = "true/false";
    else
        what = "a string";
    if (n->len > 40)
        snprintf(buf, size, "%s (\"%.37s...\")", what, n->value);
    else if (*what == 'a' && what[2] == 's') /* a string: quote it */
        snprintf(buf, size, "%s (\"%s\")", what, n->value);
    else
        snprintf(buf, size, "%s (%s)", what, n->value);
}

/* ========================================================== paths */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Lexical normalisation of an absolute path: no "", "." or ".." parts. */
static void normalize_abs(char *p)
{
    char *out = p;
    const char *s = p;
    *out = '/';
    size_t len = 1;
    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t n = (size_t)(e - s);
        if (n == 1 && s[0] == '.') {
            /* skip */
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (len > 1 && out[len - 1] != '/')
                len--;
            if (len > 1)
                len--; /* the slash before the removed part */
        } else {
            if (len > 1)
                out[len++] = '/';
            memmove(out + len, s, n);
            len += n;
        }
        s = e;
    }
    out[len] = 0;
}

char *reel_path_resolve(const char *raw, const char *base, char *why, size_t why_len)
{
    size_t cap = strlen(raw) + 256, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
#define PUT(str, n)                                                                              \
    do {                                                                                         \
        size_t n_ = (n);                                                                         \
        if (len + n_ + 1 > cap) {                                                                \
            cap = 2 * (len + n_ + 1);                                                            \
            char *nb_ = realloc(buf, cap);                                                       \
            if (!nb_) {                                                                          \
                free(buf);                                                                       \
                snprintf(why, why_len, "out of memory");                                         \
                return NULL;                                                                     \
            }                                                                                    \
            buf = nb_;                                                                           \
        }                                                                                        \
        memcpy(buf + len, (str), n_);                                                            \
        len += n_;                                                                               \
    } while (0)
    const char *s = raw;
    if (s[0] == '~' && (s[1] == '/' || s[1] == 0)) {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            free(buf);
            snprintf(why, why_len, "'~' used but $HOME is not set");
            return NULL;
        }
        PUT(home, strlen(home));
        s++;
    }
    while (*s) {
        if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            if (!end) {
                free(buf);
                snprintf(why, why_len, "unclosed '${' in \"%s\"", raw);
                return NULL;
            }
            const char *name = s + 2, *dflt = NULL;
            const char *sep = strstr(name, ":-");
            size_t nlen = (size_t)(end - name);
            if (sep && sep < end) {
                nlen = (size_t)(sep - name);
                dflt = sep + 2;
            }
            char var[128];
            if (nlen == 0 || nlen >= sizeof var) {
                free(buf);
                snprintf(why, why_len, "bad variable name in \"%s\"", raw);
                return NULL;
            }
            memcpy(var, name, nlen);
            var[nlen] = 0;
            const char *val = getenv(var);
            if (val && *val) {
                PUT(val, strlen(val));
            } else if (dflt) {
                /* the default may itself start with ~ */
                if (dflt[0] == '~' && (dflt[1] == '/' || dflt + 1 == end) && len == 0) {
                    const char *home = getenv("HOME");
                    if (!home || !*home) {
                        free(buf);
                        snprintf(why, why_len, "'~' used but $HOME is not set");
                        return NULL;
                    }
                    PUT(home, strlen(home));
                    dflt++;
                }
                PUT(dflt, (size_t)(end - dflt));
            } else {
                free(buf);
                snprintf(why, why_len, "environment variable %s is not set", var);
                return NULL;
            }
            s = end + 1;
        } else {
            PUT(s, 1);
            s++;
        }
    }
    buf[len] = 0;
    if (!len) {
        free(buf);
        snprintf(why, why_len, "empty path");
        return NULL;
    }
    if (buf[0] != '/') {
        char cwd[4096];
        const char *b = base;
        if (!b) {
            if (!getcwd(cwd, sizeof cwd)) {
                free(buf);
                snprintf(why, why_len, "cannot get the current directory: %s", strerror(errno));
                return NULL;
            }
            b = cwd;
        }
        size_t blen = strlen(b);
        char *joined = malloc(blen + len + 2);
        if (!joined) {
            free(buf);
            snprintf(why, why_len, "out of memory");
            return NULL;
        }
        memcpy(joined, b, blen);
        joined[blen] = '/';
        memcpy(joined + blen + 1, buf, len + 1);
        free(buf);
        buf = joined;
        if (buf[0] != '/') { /* a relative base: anchor it at the cwd */
            char *abs = reel_path_resolve(buf, NULL, why, why_len);
            free(buf);
            return abs;
        }
    }
#undef PUT
    normalize_abs(buf);
    return buf;
}

char *reel_path_dirname_abs(const char *path)
{
    char why[64];
    char *abs = reel_path_resolve(path, NULL, why, sizeof why);
    if (!abs)
        return NULL;
    char *slash = strrchr(abs, '/');
    if (slash == abs)
        abs[1] = 0;
    else if (slash)
        *slash = 0;
    return abs;
}

/* ======================================================== schema walker */

int reel_schema_index(const struct reel_field *fields, int n, const char *path)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(fields[i].path, path))
            return i;
    return -1;
}

void reel_schema_free_strings(const struct reel_field *fields, int n, void *out)
{
    for (int i = 0; i < n; i++) {
        if (fields[i].kind == REEL_F_STR || fields[i].kind == REEL_F_PATH ||
            fields[i].kind == REEL_F_RAWPATH) {
            char **p = (char **)((char *)out + fields[i].offset);
            free(*p);
            *p = NULL;
        }
    }
}

static void schema_error(struct reel_schema *s, const struct reel_ynode *n, const char *key_path,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void schema_error(struct reel_schema *s, const struct reel_ynode *n, const char *key_path,
                         const char *fmt, ...)
{
    char where[512], msg[1024];
    reel_ynode_where(n, s->file, key_path, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reel_diag_add(s->diag, REEL_DIAG_ERROR, s->code, "%s%s", where, msg);
}

static void range_text(const struct reel_field *f, int integer, char *buf, size_t size)
{
    const char *fmt_lo = integer ? "%.0f" : "%g";
    char lo[40], hi[40];
    snprintf(lo, sizeof lo, fmt_lo, f->min);
    snprintf(hi, sizeof hi, fmt_lo, f->max);
    if (f->flags & REEL_FF_MIN_EXCL) {
        if (isinf(f->max))
            snprintf(buf, size, "greater than %s", lo);
        else
            snprintf(buf, size, "greater than %s and at most %s", lo, hi);
    } else if (isinf(f->max)) {
        snprintf(buf, size, "at least %s", lo);
    } else {
        snprintf(buf, size, "between %s and %s", lo, hi);
    }
}

static int in_range(const struct reel_field *f, double v)
{
    if (f->flags & REEL_FF_MIN_EXCL ? !(v > f->min) : !(v >= f->min))
        return 0;
    return v <= f->max;
}

/* One integer element (INT or INTS) into *out; 0 on error (reported). */
static int take_int(struct reel_schema *s, const struct reel_field *f, const struct reel_ynode *v,
                    const char *kp, int *out)
{
    long long i;
    int r = scalar_int(v, &i);
    char what[128], range[128];
    range_text(f, 1, range, sizeof range);
    if (r == 0) {
        double d;
        describe(v, what, sizeof what);
        if (scalar_num(v, &d))
            schema_error(s, v, kp, "must be a whole number, got %s", what);
        else
            schema_error(s, v, kp, "must be an integer, got %s", what);
        return 0;
    }
    if (r == 2 || !in_range(f, (double)i)) {
        schema_error(s, v, kp, "must be %s, got %s", range, v->value);
        return 0;
    }
    *out = (int)i;
    return 1;
}

static int take_num(struct reel_schema *s, const struct reel_field *f, const struct reel_ynode *v,
                    const char *kp, double *out)
{
    double d;
    char what[128], range[128];
    if (!scalar_num(v, &d)) {
        describe(v, what, sizeof what);
        schema_error(s, v, kp, "must be a number, got %s", what);
        return 0;
    }
    if (!in_range(f, d)) {
        range_text(f, 0, range, sizeof range);
        schema_error(s, v, kp, "must be %s, got %s", range, v->value);
        return 0;
    }
    *out = d;
    return 1;
}

static int take_bool(struct reel_schema *s, const struct reel_ynode *v, const char *kp, int *out)
{
    char what[128];
    if (!scalar_bool(v, out)) {
        describe(v, what, sizeof what);
        schema_error(s, v, kp, "must be true or false, got %s", what);
        return 0;
    }
    return 1;
}

static int take_string(struct reel_schema *s, const struct reel_field *f,
                       const struct reel_ynode *v, const char *kp)
{
    char what[128];
    if (!is_scalar(v) || scalar_is_null(v)) {
        describe(v, what, sizeof what);
        schema_error(s, v, kp, "must be a string, got %s", what);
        return 0;
    }
    if ((f->flags & REEL_FF_NONEMPTY) && !v->len) {
        schema_error(s, v, kp, "must not be empty");
        return 0;
    }
    if (memchr(v->value, 0, v->len)) {
        schema_error(s, v, kp, "must not contain NUL characters");
        return 0;
    }
    return 1;
}

/* Levenshtein distance, for "did you mean". */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

static void unknown_key(struct reel_schema *s, const struct reel_ynode *key, const char *prefix,
                        const char *kp)
{
    char known[768] = "", best[96] = "", part[96] = "";
    size_t plen = strlen(prefix), used = 0, klen = strlen(key->value);
    int best_d = 99;
    for (int i = 0; i < s->n_fields; i++) {
        const char *p = s->fields[i].path;
        if (strncmp(p, prefix, plen) || strchr(p + plen, '.'))
            continue;
        const char *name = p + plen;
        int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", name);
        if (w > 0 && (size_t)w < sizeof known - used)
            used += (size_t)w;
        int dist = edit_distance(key->value, name);
        if (dist < best_d && dist <= 2 && dist < (int)strlen(name)) {
            best_d = dist;
            snprintf(best, sizeof best, "%s", name);
        }
        /* "codec" for "video_codec": a known key that contains the unknown one */
        if (!*part && klen >= 3 && strstr(name, key->value))
            snprintf(part, sizeof part, "%s", name);
    }
    const char *hint = *best ? best : part;
    char section[300];
    if (plen)
        snprintf(section, sizeof section, "keys in %.*s", (int)plen - 1, prefix);
    else
        snprintf(section, sizeof section, "top-level keys");
    if (*hint)
        schema_error(s, key, kp, "unknown key (did you mean '%s'? %s: %s)", hint, section, known);
    else
        schema_error(s, key, kp, "unknown key (%s: %s)", section, known);
}

static void walk_map(struct reel_schema *s, const struct reel_ynode *map, const char *prefix);

static void record(struct reel_schema *s, int fi, const struct reel_ynode *v)
{
    struct reel_field_loc *l = &s->loc[fi];
    l->given = 1;
    l->line = v->line;
    l->col = v->col;
    snprintf(l->origin, sizeof l->origin, "%s", v->origin ? v->origin : "");
}

static void apply_field(struct reel_schema *s, int fi, const struct reel_ynode *v, const char *kp)
{
    const struct reel_field *f = &s->fields[fi];
    char *base = (char *)s->out + f->offset;
    char what[128];
    switch (f->kind) {
    case REEL_F_SECTION: {
        int b;
        if (v->kind == REEL_Y_MAP) {
            if (f->flags & REEL_FF_BOOL_SECTION)
                *(int *)base = 1;
            record(s, fi, v);
            char prefix[256];
            snprintf(prefix, sizeof prefix, "%s.", f->path);
            walk_map(s, v, prefix);
        } else if ((f->flags & REEL_FF_BOOL_SECTION) && scalar_bool(v, &b)) {
            *(int *)base = b;
            record(s, fi, v);
        } else {
            describe(v, what, sizeof what);
            schema_error(s, v, kp, "must be a map%s, got %s",
                         f->flags & REEL_FF_BOOL_SECTION ? " (or true/false)" : "", what);
        }
        return;
    }
    case REEL_F_BOOL:
        if (take_bool(s, v, kp, (int *)base))
            record(s, fi, v);
        return;
    case REEL_F_INT:
        if (take_int(s, f, v, kp, (int *)base))
            record(s, fi, v);
        return;
    case REEL_F_U64: {
        int neg;
        const char *digits;
        if (!is_scalar(v) || !v->plain || !int_syntax(v->value, &neg, &digits)) {
            describe(v, what, sizeof what);
            schema_error(s, v, kp, "must be an integer, got %s", what);
            return;
        }
        errno = 0;
        unsigned long long u = strtoull(digits, NULL, 10);
        if ((neg && u != 0) || errno == ERANGE || u > UINT64_MAX) {
            schema_error(s, v, kp, "must be between 0 and 18446744073709551615, got %s", v->value);
            return;
        }
        *(uint64_t *)base = (uint64_t)u;
        record(s, fi, v);
        return;
    }
    case REEL_F_NUM:
        if (take_num(s, f, v, kp, (double *)base))
            record(s, fi, v);
        return;
    case REEL_F_STR:
    case REEL_F_PATH:
    case REEL_F_RAWPATH: {
        if (!take_string(s, f, v, kp))
            return;
        char *value;
        if (f->kind == REEL_F_PATH) {
            char why[256];
            /* command-line values are relative to where the command runs */
            value = reel_path_resolve(v->value, v->origin ? NULL : s->base_dir, why, sizeof why);
            if (!value) {
                schema_error(s, v, kp, "%s", why);
                return;
            }
        } else {
            value = strdup(v->value);
            if (!value) {
                s->diag->oom = 1;
                return;
            }
        }
        free(*(char **)base);
        *(char **)base = value;
        record(s, fi, v);
        return;
    }
    case REEL_F_ENUM: {
        if (is_scalar(v) && !scalar_is_null(v)) {
            for (int i = 0; f->choices[i]; i++) {
                if (!strcasecmp(v->value, f->choices[i])) {
                    *(int *)base = i;
                    record(s, fi, v);
                    return;
                }
            }
        }
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; f->choices[i]; i++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", f->choices[i]);
            if (w > 0 && (size_t)w < sizeof list - used)
                used += (size_t)w;
        }
        describe(v, what, sizeof what);
        schema_error(s, v, kp, "must be one of %s, got %s", list, what);
        return;
    }
    case REEL_F_NODE:
        *(const struct reel_ynode **)base = v;
        record(s, fi, v);
        return;
    case REEL_F_INTS:
    case REEL_F_NUMS:
    case REEL_F_BOOLS: {
        const char *elem = f->kind == REEL_F_INTS ? "integers" : f->kind == REEL_F_NUMS ? "numbers"
                                                                                      : "true/false values";
        int varlen = f->flags & REEL_FF_VARLEN;
        if (v->kind != REEL_Y_SEQ || (varlen ? v->count > (size_t)f->count : v->count != (size_t)f->count)) {
            describe(v, what, sizeof what);
            if (v->kind == REEL_Y_SEQ)
                snprintf(what, sizeof what, "a list of %zu", v->count);
            if (varlen)
                schema_error(s, v, kp, "must be a list of at most %d %s, got %s", f->count, elem, what);
            else
                schema_error(s, v, kp, "must be a list of %d %s, got %s", f->count, elem, what);
            return;
        }
        int ok = 1;
        for (size_t i = 0; i < v->count; i++) {
            char ekp[300];
            snprintf(ekp, sizeof ekp, "%s[%zu]", kp, i);
            if (f->kind == REEL_F_INTS)
                ok &= take_int(s, f, v->items[i], ekp, (int *)base + i);
            else if (f->kind == REEL_F_NUMS)
                ok &= take_num(s, f, v->items[i], ekp, (double *)base + i);
            else
                ok &= take_bool(s, v->items[i], ekp, (int *)base + i);
        }
        if (ok) {
            if (varlen)
                *(int *)((char *)s->out + f->count_offset) = (int)v->count;
            record(s, fi, v);
        }
        return;
    }
    }
}

static void walk_map(struct reel_schema *s, const struct reel_ynode *map, const char *prefix)
{
    for (size_t i = 0; i < map->count; i++) {
        const struct reel_ynode *key = map->keys[i], *val = map->items[i];
        char kp[256];
        if (!is_scalar(key) || scalar_is_null(key)) {
            char what[128];
            describe(key, what, sizeof what);
            snprintf(kp, sizeof kp, "%.*s", prefix[0] ? (int)strlen(prefix) - 1 : 0, prefix);
            schema_error(s, key, kp, "keys must be names, got %s", what);
            continue;
        }
        snprintf(kp, sizeof kp, "%s%.200s", prefix, key->value);
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++) {
            if (is_scalar(map->keys[j]) && !strcmp(map->keys[j]->value, key->value)) {
                if (map->keys[j]->origin)
                    schema_error(s, key, kp, "duplicate key (also set by --set %s)", map->keys[j]->origin);
                else
                    schema_error(s, key, kp, "duplicate key (first at line %d)", map->keys[j]->line);
                dup = 1;
            }
        }
        if (dup)
            continue;
        int fi = reel_schema_index(s->fields, s->n_fields, kp);
        if (fi < 0) {
            unknown_key(s, key, prefix, kp);
            continue;
        }
        apply_field(s, fi, val, kp);
    }
}

void reel_schema_walk(struct reel_schema *s, const struct reel_ynode *root)
{
    walk_map(s, root, "");
    /* required keys whose section is present */
    for (int i = 0; i < s->n_fields; i++) {
        const struct reel_field *f = &s->fields[i];
        if (!(f->flags & REEL_FF_REQUIRED) || s->loc[i].given)
            continue;
        const char *dot = strrchr(f->path, '.');
        struct reel_ynode at = {.line = root->line, .col = root->col};
        if (dot) {
            char parent[256];
            snprintf(parent, sizeof parent, "%.*s", (int)(dot - f->path), f->path);
            int pi = reel_schema_index(s->fields, s->n_fields, parent);
            if (pi < 0 || !s->loc[pi].given)
                continue;
            at.line = s->loc[pi].line;
            at.col = s->loc[pi].col;
            at.origin = s->loc[pi].origin[0] ? s->loc[pi].origin : NULL;
        }
        schema_error(s, &at, f->path, "missing (required)");
    }
}

/* ============================================================ the spec */

static const char *const sampler_names[] = {"euler", "unipc", "dpm++", "dpmpp", "dpm-solver++", NULL};
static const char *const vcodec_names[] = {"h264", "hevc", "prores", NULL};
static const char *const acodec_names[] = {"aac", "pcm", "none", NULL};
static const char *const image_names[] = {"png", "exr", NULL};
static const char *const container_names[] = {"mp4", "mov", "mkv", NULL};

const char *reel_container_name(enum reel_container c)
{
    return (unsigned)c < 3 ? container_names[c] : "?";
}
const char *reel_video_codec_name(enum reel_spec_video_codec c)
{
    return (unsigned)c < 3 ? vcodec_names[c] : "?";
}
const char *reel_audio_codec_name(enum reel_spec_audio_codec c)
{
    return (unsigned)c < 3 ? acodec_names[c] : "?";
}

/* The spec as written, before defaults and snapping. */
struct spec_raw {
    int version;
    char *model;
    uint64_t seed;
    char *prompt, *negative_prompt;
    int size[2];
    double fps, duration;
    int frames;
    int sampler_name, steps;
    double shift, guidance;
    double audio_guidance;
    int slg_layer;
    char *audio_negative_prompt;
    char *out_path;
    int vcodec, crf, acodec, audio_rate, silent_audio;
    int seq_enabled, seq_format, seq_start, seq_depth;
    char *seq_path;
    int wav_enabled;
    char *wav_path;
    int sheet_enabled, sheet_columns, sheet_count;
    char *sheet_path;
    char *image, *last_image;
    const struct reel_ynode *keyframes;
};

#define OFF(f) offsetof(struct spec_raw, f)
#define INF HUGE_VAL
/* The job spec schema: one row per key. A new key is one row here plus its
 * resolution in resolve_spec() and a line in docs/job-spec.md. */
static const struct reel_field spec_fields[] = {
    {"version", REEL_F_INT, OFF(version), 0, INT_MAX, REEL_FF_REQUIRED, NULL, 0, 0},
    {"model", REEL_F_STR, OFF(model), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"seed", REEL_F_U64, OFF(seed), 0, 0, 0, NULL, 0, 0},
    {"prompt", REEL_F_STR, OFF(prompt), 0, 0, REEL_FF_REQUIRED | REEL_FF_NONEMPTY, NULL, 0, 0},
    {"negative_prompt", REEL_F_STR, OFF(negative_prompt), 0, 0, 0, NULL, 0, 0},
    {"audio_negative_prompt", REEL_F_STR, OFF(audio_negative_prompt), 0, 0, 0, NULL, 0, 0},
    {"size", REEL_F_INTS, OFF(size), 16, 8192, 0, NULL, 2, 0},
    {"fps", REEL_F_NUM, OFF(fps), 1, 120, 0, NULL, 0, 0},
    {"duration", REEL_F_NUM, OFF(duration), 0, 3600, REEL_FF_MIN_EXCL, NULL, 0, 0},
    {"frames", REEL_F_INT, OFF(frames), 1, 3600 * 120, 0, NULL, 0, 0},
    {"sampler", REEL_F_SECTION, 0, 0, 0, 0, NULL, 0, 0},
    {"sampler.name", REEL_F_ENUM, OFF(sampler_name), 0, 0, 0, sampler_names, 0, 0},
    {"sampler.steps", REEL_F_INT, OFF(steps), 1, 1000, 0, NULL, 0, 0},
    {"sampler.shift", REEL_F_NUM, OFF(shift), 0, INF, REEL_FF_MIN_EXCL, NULL, 0, 0},
    {"sampler.guidance", REEL_F_NUM, OFF(guidance), 0, INF, 0, NULL, 0, 0},
    {"sampler.audio_guidance", REEL_F_NUM, OFF(audio_guidance), 0, INF, 0, NULL, 0, 0},
    {"sampler.slg_layer", REEL_F_INT, OFF(slg_layer), -1, 1024, 0, NULL, 0, 0},
    {"image", REEL_F_PATH, OFF(image), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"last_image", REEL_F_PATH, OFF(last_image), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"keyframes", REEL_F_NODE, OFF(keyframes), 0, 0, 0, NULL, 0, 0},
    {"output", REEL_F_SECTION, 0, 0, 0, 0, NULL, 0, 0},
    {"output.path", REEL_F_PATH, OFF(out_path), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"output.video_codec", REEL_F_ENUM, OFF(vcodec), 0, 0, 0, vcodec_names, 0, 0},
    {"output.crf", REEL_F_INT, OFF(crf), 0, 51, 0, NULL, 0, 0},
    {"output.audio_codec", REEL_F_ENUM, OFF(acodec), 0, 0, 0, acodec_names, 0, 0},
    {"output.audio_rate", REEL_F_INT, OFF(audio_rate), 8000, 192000, 0, NULL, 0, 0},
    {"output.silent_audio", REEL_F_BOOL, OFF(silent_audio), 0, 0, 0, NULL, 0, 0},
    {"output.image_sequence", REEL_F_SECTION, OFF(seq_enabled), 0, 0, REEL_FF_BOOL_SECTION, NULL, 0, 0},
    {"output.image_sequence.format", REEL_F_ENUM, OFF(seq_format), 0, 0, 0, image_names, 0, 0},
    {"output.image_sequence.path", REEL_F_PATH, OFF(seq_path), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"output.image_sequence.start_number", REEL_F_INT, OFF(seq_start), 0, 999999999, 0, NULL, 0, 0},
    {"output.image_sequence.bit_depth", REEL_F_INT, OFF(seq_depth), 8, 32, 0, NULL, 0, 0},
    {"output.wav", REEL_F_SECTION, OFF(wav_enabled), 0, 0, REEL_FF_BOOL_SECTION, NULL, 0, 0},
    {"output.wav.path", REEL_F_PATH, OFF(wav_path), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"output.contact_sheet", REEL_F_SECTION, OFF(sheet_enabled), 0, 0, REEL_FF_BOOL_SECTION, NULL, 0, 0},
    {"output.contact_sheet.path", REEL_F_PATH, OFF(sheet_path), 0, 0, REEL_FF_NONEMPTY, NULL, 0, 0},
    {"output.contact_sheet.columns", REEL_F_INT, OFF(sheet_columns), 1, 64, 0, NULL, 0, 0},
    {"output.contact_sheet.count", REEL_F_INT, OFF(sheet_count), 1, 1024, 0, NULL, 0, 0},
};
#undef OFF
#undef INF
#define N_SPEC_FIELDS ((int)(sizeof spec_fields / sizeof spec_fields[0]))

struct reel_spec_loc {
    struct reel_field_loc f[N_SPEC_FIELDS];
};

/* ------------------------------------------------------------- helpers */

int reel_snap_multiple(int v, int m)
{
    if (m <= 1)
        return v;
    int q = (v + m / 2) / m;
    return (q < 1 ? 1 : q) * m;
}

int reel_snap_frames(int64_t frames, int step)
{
    if (frames <= 1)
        return 1;
    if (step <= 1)
        return (int)frames;
    int64_t k = (frames - 1 + step / 2) / step;
    return (int)(1 + k * step);
}

/* fps as a rational: integers exactly, the NTSC family (23.976, 29.97,
 * 59.94, ...) as N*1000/1001, anything else to the nearest 1/1000. */
static void fps_rational(double fps, int *num, int *den)
{
    double r = round(fps);
    if (fabs(fps - r) < 1e-9) {
        *num = (int)r;
        *den = 1;
        return;
    }
    double ntsc = round(fps * 1.001);
    if (fabs(fps * 1.001 - ntsc) < 2e-3) {
        *num = (int)ntsc * 1000;
        *den = 1001;
        return;
    }
    int n = (int)round(fps * 1000), d = 1000;
    int a = n, b = d;
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    *num = n / a;
    *den = d / a;
}

/* Lower-cased extension after the last '.' of the last path part ("" if none). */
static void path_ext(const char *path, char *ext, size_t n)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    ext[0] = 0;
    if (!dot || dot == base)
        return;
    size_t i = 0;
    for (dot++; *dot && i + 1 < n; dot++)
        ext[i++] = (char)tolower((unsigned char)*dot);
    ext[i] = 0;
}

/* path without its extension: "/a/b/clip.mp4" -> "/a/b/clip". malloc'd. */
static char *path_stem(const char *path)
{
    char *s = strdup(path);
    if (!s)
        return NULL;
    char *slash = strrchr(s, '/');
    char *dot = strrchr(slash ? slash + 1 : s, '.');
    if (dot && dot != (slash ? slash + 1 : s))
        *dot = 0;
    return s;
}

/* Exactly one %d conversion (optionally %0Nd); %% allowed. */
static int pattern_ok(const char *p)
{
    int conversions = 0;
    for (; *p; p++) {
        if (*p != '%')
            continue;
        p++;
        if (*p == '%')
            continue;
        if (*p == '0')
            p++;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p != 'd')
            return 0;
        conversions++;
    }
    return conversions == 1;
}

struct spec_ctx {
    struct reel_spec *spec;
    struct reel_diag *diag;
    struct spec_raw raw;
    struct reel_spec_loc *loc;
    int have_model;
};

static int fidx(const char *path)
{
    return reel_schema_index(spec_fields, N_SPEC_FIELDS, path);
}

static int given(const struct spec_ctx *c, const char *path)
{
    int i = fidx(path);
    return i >= 0 && c->loc->f[i].given;
}

/* "file:line:col: key: " for a key's recorded position (or "file: key: "). */
static void where_key(const struct reel_spec *s, const struct reel_spec_loc *loc,
                      const char *key_path, char *buf, size_t n)
{
    int i = fidx(key_path);
    if (i < 0 || !loc->f[i].given) {
        snprintf(buf, n, "%s: %s: ", s->file, key_path);
        return;
    }
    const struct reel_field_loc *l = &loc->f[i];
    struct reel_ynode at = {.line = l->line, .col = l->col, .origin = l->origin[0] ? l->origin : NULL};
    reel_ynode_where(&at, s->file, key_path, buf, n);
}

static void spec_msg(struct spec_ctx *c, enum reel_diag_level level, const char *key_path,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void spec_msg(struct spec_ctx *c, enum reel_diag_level level, const char *key_path,
                     const char *fmt, ...)
{
    char where[512], msg[1024];
    where_key(c->spec, c->loc, key_path, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reel_diag_add(c->diag, level, REEL_E_SPEC, "%s%s", where, msg);
}

/* ------------------------------------------------------ --set overrides */

static int key_segment_ok(const char *s, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static void mark_origin(struct reel_ydoc *doc, size_t first, const char *origin)
{
    for (size_t i = first; i < doc->n_all; i++)
        doc->all[i]->origin = origin;
}

static int map_find(const struct reel_ynode *map, const char *key, size_t n)
{
    for (size_t i = 0; i < map->count; i++)
        if (is_scalar(map->keys[i]) && map->keys[i]->len == n && !memcmp(map->keys[i]->value, key, n))
            return (int)i;
    return -1;
}

/* Splices one --set KEY.PATH=VALUE into the document's root map. */
static int apply_set(struct reel_ydoc *doc, const char *arg, struct reel_diag *diag)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        reel_diag_add(diag, REEL_DIAG_ERROR, REEL_E_SPEC,
                      "--set %s: expected KEY.PATH=VALUE (for example --set sampler.steps=30)", arg);
        return 0;
    }
    char key[256];
    if ((size_t)(eq - arg) >= sizeof key) {
        reel_diag_add(diag, REEL_DIAG_ERROR, REEL_E_SPEC, "--set: key path too long");
        return 0;
    }
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = 0;
    for (const char *s = key;;) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (!key_segment_ok(s, n)) {
            reel_diag_add(diag, REEL_DIAG_ERROR, REEL_E_SPEC,
                          "--set %s: bad key path (names joined by '.', e.g. output.crf)", key);
            return 0;
        }
        if (!dot)
            break;
        s = dot + 1;
    }
    const char *origin = ydoc_keep_string(doc, key);
    if (!origin) {
        diag->oom = 1;
        return -1;
    }

    /* the value, parsed as YAML; its nodes join this document */
    char display[300];
    snprintf(display, sizeof display, "--set %s", key);
    struct reel_ydoc vdoc;
    int errors_before = diag->errors;
    int rc = reel_ydoc_load_string(eq + 1, strlen(eq + 1), display, &vdoc, diag, REEL_E_SPEC);
    if (rc != REEL_OK) {
        reel_ydoc_free(&vdoc);
        return diag->errors > errors_before ? 0 : -1;
    }
    size_t first = doc->n_all;
    size_t need = doc->n_all + vdoc.n_all;
    if (need > doc->cap_all) {
        struct reel_ynode **all = realloc(doc->all, sizeof *all * need);
        if (!all) {
            reel_ydoc_free(&vdoc);
            diag->oom = 1;
            return -1;
        }
        doc->all = all;
        doc->cap_all = need;
    }
    if (vdoc.n_all)
        memcpy(doc->all + doc->n_all, vdoc.all, sizeof *vdoc.all * vdoc.n_all);
    doc->n_all += vdoc.n_all;
    struct reel_ynode *value = vdoc.root;
    vdoc.n_all = 0;
    reel_ydoc_free(&vdoc);
    if (!value) { /* "--set key=" : an explicit null */
        value = ynode_new(doc, REEL_Y_SCALAR, 1, 1);
        if (!value || !(value->value = strdup(""))) {
            diag->oom = 1;
            return -1;
        }
        value->plain = 1;
    }

    struct reel_ynode *cur = doc->root;
    const char *s = key;
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        int i = map_find(cur, s, n);
        struct reel_ynode *child = dot ? NULL : value;
        if (dot && i >= 0 && cur->items[i]->kind == REEL_Y_MAP) {
            cur = cur->items[i];
            s = dot + 1;
            continue;
        }
        if (dot) { /* a new (or replacing) section map */
            child = ynode_new(doc, REEL_Y_MAP, 1, 1);
            if (!child) {
                diag->oom = 1;
                return -1;
            }
        }
        if (i >= 0) {
            cur->items[i] = child;
        } else {
            struct reel_ynode *k = ynode_new(doc, REEL_Y_SCALAR, 1, 1);
            if (!k || !(k->value = strndup(s, n)) || ynode_append(cur, k, child)) {
                diag->oom = 1;
                return -1;
            }
            k->len = n;
            k->plain = 1;
        }
        if (!dot)
            break;
        cur = child;
        s = dot + 1;
    }
    mark_origin(doc, first, origin);
    return 0;
}

/* ------------------------------------------------------------ resolution */

static int set_str(struct spec_ctx *c, char **dst, const char *src)
{
    free(*dst);
    *dst = xstrdup(src);
    if (src && !*dst) {
        c->diag->oom = 1;
        return -1;
    }
    return 0;
}

static void resolve_model(struct spec_ctx *c, const char *configs_dir)
{
    struct reel_spec *s = c->spec;
    const char *model = c->raw.model ? c->raw.model : "reel-default";
    if (set_str(c, &s->model, model))
        return;
    char *cfg_path = NULL;
    struct reel_err err = {0};
    int i = fidx("model");
    const char *base = c->loc->f[i].origin[0] ? NULL : s->dir;
    if (reel_model_config_find(model, base, configs_dir, &cfg_path, &err)) {
        spec_msg(c, REEL_DIAG_ERROR, "model", "%s", err.msg);
        return;
    }
    int rc = reel_model_config_load(cfg_path, NULL, &s->model_config, c->diag);
    free(cfg_path);
    if (rc == REEL_OK)
        c->have_model = 1;
}

static void resolve_video(struct spec_ctx *c)
{
    struct reel_spec *s = c->spec;
    const struct reel_model_config *m = &s->model_config;
    struct spec_raw *r = &c->raw;
    const char *mname = c->have_model ? m->name : "the model";

    /* fps */
    s->fps = given(c, "fps") ? r->fps : c->have_model ? m->defaults.fps : 16;
    fps_rational(s->fps, &s->fps_num, &s->fps_den);

    /* size */
    if (given(c, "size")) {
        s->width = r->size[0];
        s->height = r->size[1];
        if (c->have_model) {
            int w = reel_snap_multiple(s->width, m->size_multiple_w);
            int h = reel_snap_multiple(s->height, m->size_multiple_h);
            if (w != s->width || h != s->height) {
                if (m->size_multiple_w == m->size_multiple_h)
                    spec_msg(c, REEL_DIAG_WARNING, "size",
                             "%dx%d snapped to %dx%d (multiples of %d for %s)", s->width,
                             s->height, w, h, m->size_multiple_w, mname);
                else
                    spec_msg(c, REEL_DIAG_WARNING, "size",
                             "%dx%d snapped to %dx%d (multiples of %dx%d for %s)", s->width,
                             s->height, w, h, m->size_multiple_w, m->size_multiple_h, mname);
                s->width = w;
                s->height = h;
            }
        }
    } else if (c->have_model) {
        s->width = m->defaults.width;
        s->height = m->defaults.height;
    }

    /* frames */
    int step = c->have_model ? m->frame_step : 1;
    if (given(c, "duration") && given(c, "frames")) {
        int di = fidx("duration");
        spec_msg(c, REEL_DIAG_ERROR, "frames",
                 "give either duration or frames, not both (duration is at line %d)",
                 c->loc->f[di].line);
    } else if (given(c, "frames")) {
        s->frames = reel_snap_frames(r->frames, step);
        if (s->frames != r->frames)
            spec_msg(c, REEL_DIAG_WARNING, "frames",
                     "%d snapped to %d (1 + %dk frames for %s)", r->frames, s->frames, step,
                     mname);
    } else if (given(c, "duration")) {
        int64_t f = llround(r->duration * s->fps);
        if (f < 1)
            f = 1;
        s->frames = reel_snap_frames(f, step);
        if (s->frames != f || fabs((double)f - r->duration * s->fps) > 1e-6)
            spec_msg(c, REEL_DIAG_WARNING, "duration",
                     "%g s at %g fps is %g frames, snapped to %d (1 + %dk frames for %s): the "
                     "clip lasts %.4g s",
                     r->duration, s->fps, r->duration * s->fps, s->frames, step,
                     mname, s->frames / s->fps);
    } else if (c->have_model) {
        s->frames = m->defaults.frames;
    }
    if (c->have_model && s->frames > m->max_frames)
        spec_msg(c, REEL_DIAG_ERROR, given(c, "frames") ? "frames" : "duration",
                 "%d frames is more than %s makes in one clip (at most %d)", s->frames, mname,
                 m->max_frames);
    s->duration = s->frames / s->fps;

    /* sampler */
    if (given(c, "sampler.name")) {
        struct reel_err err = {0};
        reel_flow_solver_from_name(sampler_names[r->sampler_name], &s->sampler.solver, &err);
    } else {
        s->sampler.solver = c->have_model ? m->defaults.solver : REEL_FLOW_UNIPC;
    }
    s->sampler.steps = given(c, "sampler.steps") ? r->steps : c->have_model ? m->defaults.steps : 50;
    s->sampler.shift = given(c, "sampler.shift") ? r->shift : c->have_model ? m->defaults.shift : 5.0;
    s->sampler.guidance =
        given(c, "sampler.guidance") ? r->guidance : c->have_model ? m->defaults.guidance : 5.0;

    s->seed = r->seed;
    set_str(c, &s->prompt, r->prompt);
    if (given(c, "negative_prompt"))
        set_str(c, &s->negative_prompt, r->negative_prompt);
    else
        set_str(c, &s->negative_prompt, c->have_model ? m->defaults.negative_prompt : "");

    /* joint audio: only a model with an audio branch uses these */
    int has_audio = c->have_model && m->audio.enabled;
    static const char *const audio_keys[] = {"sampler.audio_guidance", "sampler.slg_layer",
                                             "audio_negative_prompt"};
    for (int i = 0; i < 3 && c->have_model && !has_audio; i++)
        if (given(c, audio_keys[i]))
            spec_msg(c, REEL_DIAG_WARNING, audio_keys[i], "ignored: %s makes no audio", mname);
    s->sampler.audio_guidance = given(c, "sampler.audio_guidance") ? r->audio_guidance
                                : has_audio ? m->defaults.audio_guidance
                                            : 1.0;
    s->sampler.slg_layer = given(c, "sampler.slg_layer") ? r->slg_layer
                           : has_audio ? m->defaults.slg_layer
                                       : -1;
    if (has_audio && s->sampler.slg_layer >= m->dit.cfg.num_layers)
        spec_msg(c, REEL_DIAG_ERROR, "sampler.slg_layer", "%s has %d layers (0 .. %d), got %d",
                 mname, m->dit.cfg.num_layers, m->dit.cfg.num_layers - 1, s->sampler.slg_layer);
    if (given(c, "audio_negative_prompt"))
        set_str(c, &s->audio_negative_prompt, r->audio_negative_prompt);
    else
        set_str(c, &s->audio_negative_prompt,
                has_audio ? m->defaults.audio_negative_prompt : "");
}

static const int aac_rates[] = {7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000,
                                64000, 88200, 96000};

/* A side file's path: the given one, or stem + suffix beside the output. */
static char *side_path(struct spec_ctx *c, char *given_path, const char *stem, const char *suffix)
{
    if (given_path)
        return strdup(given_path);
    char *p = malloc(strlen(stem) + strlen(suffix) + 1);
    if (!p) {
        c->diag->oom = 1;
        return NULL;
    }
    strcpy(p, stem);
    strcat(p, suffix);
    return p;
}

static void resolve_output(struct spec_ctx *c, const char *cli_output)
{
    struct reel_spec *s = c->spec;
    struct reel_spec_output *o = &s->output;
    struct spec_raw *r = &c->raw;
    char ext[16];

    /* path: -o, output.path, or the spec's name with .mp4 beside it */
    if (cli_output) {
        char why[256];
        o->path = reel_path_resolve(cli_output, NULL, why, sizeof why);
        int i = fidx("output.path");
        c->loc->f[i].given = 1;
        c->loc->f[i].line = c->loc->f[i].col = 0;
        snprintf(c->loc->f[i].origin, sizeof c->loc->f[i].origin, "-o");
        if (!o->path) {
            spec_msg(c, REEL_DIAG_ERROR, "output.path", "%s", why);
            return;
        }
    } else if (r->out_path) {
        o->path = strdup(r->out_path);
    } else {
        char *stem = path_stem(s->path);
        if (stem && (o->path = malloc(strlen(stem) + 5)))
            sprintf(o->path, "%s.mp4", stem);
        free(stem);
    }
    if (!o->path) {
        c->diag->oom = 1;
        return;
    }

    path_ext(o->path, ext, sizeof ext);
    int container = -1;
    for (int i = 0; container_names[i]; i++)
        if (!strcmp(ext, container_names[i]))
            container = i;
    if (container < 0) {
        if (*ext)
            spec_msg(c, REEL_DIAG_ERROR, "output.path",
                     "unknown container '.%s': the extension picks it (.mp4, .mov or .mkv)", ext);
        else
            spec_msg(c, REEL_DIAG_ERROR, "output.path",
                     "no extension: the extension picks the container (.mp4, .mov or .mkv)");
    } else {
        o->container = (enum reel_container)container;
    }

    o->video_codec = given(c, "output.video_codec") ? (enum reel_spec_video_codec)r->vcodec
                                                    : REEL_VCODEC_H264;
    o->crf = given(c, "output.crf") ? r->crf : 18;
    o->audio_codec = given(c, "output.audio_codec") ? (enum reel_spec_audio_codec)r->acodec
                                                    : REEL_ACODEC_AAC;
    o->audio_rate = given(c, "output.audio_rate") ? r->audio_rate : 48000;
    o->silent_audio = given(c, "output.silent_audio") ? r->silent_audio : 0;

    if (container >= 0) {
        if (o->video_codec == REEL_VCODEC_PRORES && container != REEL_CONTAINER_MOV)
            spec_msg(c, REEL_DIAG_ERROR, "output.video_codec",
                     "prores needs a .mov output (output.path is .%s)", ext);
        if (o->audio_codec == REEL_ACODEC_PCM && container == REEL_CONTAINER_MP4)
            spec_msg(c, REEL_DIAG_ERROR, "output.audio_codec",
                     "pcm audio needs a .mov or .mkv output (mp4 cannot hold PCM; use aac)");
    }
    if (o->video_codec == REEL_VCODEC_PRORES && given(c, "output.crf"))
        spec_msg(c, REEL_DIAG_WARNING, "output.crf", "prores does not use crf; ignored");
    if (o->audio_codec == REEL_ACODEC_AAC) {
        int ok = 0;
        for (size_t i = 0; i < sizeof aac_rates / sizeof *aac_rates; i++)
            ok |= aac_rates[i] == o->audio_rate;
        if (!ok)
            spec_msg(c, REEL_DIAG_ERROR, "output.audio_rate",
                     "aac cannot encode %d Hz (8000, 11025, 12000, 16000, 22050, 24000, 32000, "
                     "44100, 48000, 64000, 88200 or 96000; or use pcm)",
                     o->audio_rate);
    }

    char *stem = path_stem(o->path);
    if (!stem) {
        c->diag->oom = 1;
        return;
    }

    /* image sequence */
    o->image_sequence.enabled = r->seq_enabled;
    if (o->image_sequence.enabled) {
        int fmt = REEL_SPEC_IMAGE_PNG;
        if (given(c, "output.image_sequence.path")) {
            path_ext(r->seq_path, ext, sizeof ext);
            int from_ext = !strcmp(ext, "png") ? REEL_SPEC_IMAGE_PNG : !strcmp(ext, "exr") ? REEL_SPEC_IMAGE_EXR : -1;
            if (from_ext < 0)
                spec_msg(c, REEL_DIAG_ERROR, "output.image_sequence.path",
                         "must end in .png or .exr, got '%s'", *ext ? ext : "(no extension)");
            else if (given(c, "output.image_sequence.format") && from_ext != r->seq_format)
                spec_msg(c, REEL_DIAG_ERROR, "output.image_sequence.path",
                         "extension .%s does not match format %s", ext, image_names[r->seq_format]);
            else
                fmt = from_ext;
            if (!pattern_ok(r->seq_path))
                spec_msg(c, REEL_DIAG_ERROR, "output.image_sequence.path",
                         "must hold one frame-number field such as %%04d, got '%s'", r->seq_path);
        }
        if (given(c, "output.image_sequence.format"))
            fmt = r->seq_format;
        o->image_sequence.format = (enum reel_spec_image_format)fmt;
        o->image_sequence.path = side_path(c, r->seq_path, stem,
                                           fmt == REEL_SPEC_IMAGE_PNG ? ".%04d.png" : ".%04d.exr");
        o->image_sequence.start_number =
            given(c, "output.image_sequence.start_number") ? r->seq_start : 1;
        int depth = given(c, "output.image_sequence.bit_depth") ? r->seq_depth
                                                                : fmt == REEL_SPEC_IMAGE_PNG ? 8 : 16;
        if (fmt == REEL_SPEC_IMAGE_PNG && depth != 8 && depth != 16)
            spec_msg(c, REEL_DIAG_ERROR, "output.image_sequence.bit_depth",
                     "png bit depth must be 8 or 16, got %d", depth);
        if (fmt == REEL_SPEC_IMAGE_EXR && depth != 16 && depth != 32)
            spec_msg(c, REEL_DIAG_ERROR, "output.image_sequence.bit_depth",
                     "exr bit depth must be 16 (half) or 32 (float), got %d", depth);
        o->image_sequence.bit_depth = depth;
    }

    /* wav */
    o->wav.enabled = r->wav_enabled;
    if (o->wav.enabled) {
        o->wav.path = side_path(c, r->wav_path, stem, ".wav");
        if (o->wav.path) {
            path_ext(o->wav.path, ext, sizeof ext);
            if (strcmp(ext, "wav"))
                spec_msg(c, REEL_DIAG_ERROR, "output.wav.path", "must end in .wav");
        }
        /* A WAV holds the audio track; a model without audio has none unless
         * a silent one is asked for, so the request cannot be met silently. */
        if (c->have_model && !c->spec->model_config.audio.enabled && !o->silent_audio)
            spec_msg(c, REEL_DIAG_ERROR, "output.wav",
                     "%s makes no audio; set output.silent_audio: true for a silent WAV",
                     c->spec->model_config.name);
    }

    /* contact sheet */
    o->contact_sheet.enabled = r->sheet_enabled;
    if (o->contact_sheet.enabled) {
        o->contact_sheet.path = side_path(c, r->sheet_path, stem, ".sheet.png");
        if (o->contact_sheet.path) {
            path_ext(o->contact_sheet.path, ext, sizeof ext);
            if (strcmp(ext, "png") && strcmp(ext, "jpg") && strcmp(ext, "jpeg"))
                spec_msg(c, REEL_DIAG_ERROR, "output.contact_sheet.path",
                         "must end in .png or .jpg");
        }
        o->contact_sheet.columns = given(c, "output.contact_sheet.columns") ? r->sheet_columns : 4;
        o->contact_sheet.count = given(c, "output.contact_sheet.count") ? r->sheet_count : 16;
        if (s->frames > 0 && o->contact_sheet.count > s->frames) {
            if (given(c, "output.contact_sheet.count"))
                spec_msg(c, REEL_DIAG_WARNING, "output.contact_sheet.count",
                         "%d is more than the clip's %d frames; using %d",
                         o->contact_sheet.count, s->frames, s->frames);
            o->contact_sheet.count = s->frames;
        }
    }
    free(stem);

    /* two outputs must not overwrite each other */
    const char *paths[3] = {o->wav.enabled ? o->wav.path : NULL,
                            o->contact_sheet.enabled ? o->contact_sheet.path : NULL,
                            o->image_sequence.enabled ? o->image_sequence.path : NULL};
    const char *keys[3] = {"output.wav.path", "output.contact_sheet.path",
                           "output.image_sequence.path"};
    for (int i = 0; i < 3; i++)
        if (paths[i] && !strcmp(paths[i], o->path))
            spec_msg(c, REEL_DIAG_ERROR, keys[i], "is the same file as output.path");
    if (paths[0] && paths[1] && !strcmp(paths[0], paths[1]))
        spec_msg(c, REEL_DIAG_ERROR, keys[1], "is the same file as output.wav.path");
}

/* Sort key of a message about `file`: its line and column; messages about
 * other files or the command line go after, in the order they came. */
static long msg_order(const char *text, const char *file)
{
    size_t n = strlen(file);
    if (strncmp(text, file, n) || text[n] != ':')
        return LONG_MAX;
    char *end;
    long line = strtol(text + n + 1, &end, 10);
    if (end == text + n + 1 || *end != ':')
        return LONG_MAX;
    long col = strtol(end + 1, &end, 10);
    return *end == ':' ? line * 100000 + (col < 100000 ? col : 99999) : LONG_MAX;
}

/* Messages of one load in file order (the checks run phase by phase). */
static void sort_messages(struct reel_diag *d, int first, const char *file)
{
    for (int i = first + 1; i < d->count; i++) {
        struct reel_diag_item item = d->items[i];
        long key = msg_order(item.text, file);
        int j = i;
        while (j > first && msg_order(d->items[j - 1].text, file) > key) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = item;
    }
}


/* ------------------------------------------------- frame conditioning */

static void node_msg(struct spec_ctx *c, int code, const struct reel_ynode *n, const char *kp,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void node_msg(struct spec_ctx *c, int code, const struct reel_ynode *n, const char *kp,
                     const char *fmt, ...)
{
    char where[512], msg[1024];
    reel_ynode_where(n, c->spec->file, kp, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reel_diag_add(c->diag, REEL_DIAG_ERROR, code, "%s%s", where, msg);
}

/* One entry before frame resolution: the frame as written and where. */
struct cond_entry {
    long long frame;
    char *image;
    char where[256];       /* of the frame: "file:line:col: key" (no trailing ": ") */
    char where_image[256]; /* of the image path */
    char key[64];
};

static void where_trim(char *buf)
{
    size_t len = strlen(buf);
    if (len >= 2 && !strcmp(buf + len - 2, ": "))
        buf[len - 2] = 0;
}

static int cond_push(struct spec_ctx *c, struct cond_entry **list, int *n, long long frame,
                     char *image, const char *where, const char *where_image, const char *key)
{
    struct cond_entry *l = realloc(*list, sizeof *l * (size_t)(*n + 1));
    if (!l) {
        free(image);
        c->diag->oom = 1;
        return -1;
    }
    *list = l;
    l[*n].frame = frame;
    l[*n].image = image;
    snprintf(l[*n].where, sizeof l[*n].where, "%s", where);
    where_trim(l[*n].where);
    snprintf(l[*n].where_image, sizeof l[*n].where_image, "%s", where_image);
    where_trim(l[*n].where_image);
    snprintf(l[*n].key, sizeof l[*n].key, "%s", key);
    (*n)++;
    return 0;
}

/* keyframes: a list of {frame: N, image: PATH}. */
static void parse_keyframes(struct spec_ctx *c, const struct reel_ynode *seq,
                            struct cond_entry **list, int *n)
{
    char what[128];
    if (seq->kind != REEL_Y_SEQ) {
        describe(seq, what, sizeof what);
        node_msg(c, REEL_E_SPEC, seq, "keyframes",
                 "must be a list of {frame: N, image: PATH}, got %s", what);
        return;
    }
    for (size_t i = 0; i < seq->count; i++) {
        const struct reel_ynode *e = seq->items[i];
        char kp[64];
        snprintf(kp, sizeof kp, "keyframes[%zu]", i);
        if (e->kind != REEL_Y_MAP) {
            describe(e, what, sizeof what);
            node_msg(c, REEL_E_SPEC, e, kp, "must be a map {frame: N, image: PATH}, got %s", what);
            continue;
        }
        const struct reel_ynode *fr = NULL, *im = NULL;
        int bad = 0;
        for (size_t k = 0; k < e->count; k++) {
            const struct reel_ynode *key = e->keys[k];
            char ekp[96];
            const char *name = is_scalar(key) ? key->value : "?";
            snprintf(ekp, sizeof ekp, "%s.%.20s", kp, name);
            const struct reel_ynode **slot = !strcmp(name, "frame")   ? &fr
                                             : !strcmp(name, "image") ? &im
                                                                      : NULL;
            if (!is_scalar(key) || !slot) {
                node_msg(c, REEL_E_SPEC, key, ekp, "unknown key (a keyframe has frame and image)");
                bad = 1;
            } else if (*slot) {
                node_msg(c, REEL_E_SPEC, key, ekp, "duplicate key (first at line %d)",
                         (*slot)->line);
                bad = 1;
            } else {
                *slot = e->items[k];
            }
        }
        if (!fr || !im) {
            node_msg(c, REEL_E_SPEC, e, kp, "missing %s (a keyframe is {frame: N, image: PATH})",
                     !fr ? "frame" : "image");
            bad = 1;
        }
        long long frame = 0;
        char ekp[96];
        snprintf(ekp, sizeof ekp, "%s.frame", kp);
        if (fr && (!is_scalar(fr) || !fr->plain || !scalar_int(fr, &frame))) {
            describe(fr, what, sizeof what);
            node_msg(c, REEL_E_SPEC, fr, ekp, "must be an integer (negative counts from the end), "
                     "got %s", what);
            bad = 1;
        }
        snprintf(ekp, sizeof ekp, "%s.image", kp);
        char *path = NULL;
        if (im && (!is_scalar(im) || scalar_is_null(im) || !im->value[0])) {
            describe(im, what, sizeof what);
            node_msg(c, REEL_E_SPEC, im, ekp, "must be an image path, got %s", what);
            bad = 1;
        } else if (im) {
            char why[256];
            path = reel_path_resolve(im->value, im->origin ? NULL : c->spec->dir, why, sizeof why);
            if (!path) {
                node_msg(c, REEL_E_SPEC, im, ekp, "%s", why);
                bad = 1;
            }
        }
        if (bad) {
            free(path);
            continue;
        }
        char where[256], where_image[256];
        snprintf(ekp, sizeof ekp, "%s.frame", kp);
        reel_ynode_where(fr, c->spec->file, ekp, where, sizeof where);
        snprintf(ekp, sizeof ekp, "%s.image", kp);
        reel_ynode_where(im, c->spec->file, ekp, where_image, sizeof where_image);
        if (cond_push(c, list, n, frame, path, where, where_image, kp))
            return;
    }
}

static int keyframe_cmp(const void *a, const void *b)
{
    const struct reel_spec_keyframe *x = a, *y = b;
    return (x->frame > y->frame) - (x->frame < y->frame);
}

/* image / last_image / keyframes -> s->keyframes: frames resolved against
 * the (snapped) clip length, checked for range and duplicates, sorted, each
 * file hashed (the hash goes into the canonical spec, so a changed image is
 * another job) and decoded once at the clip size to catch a bad file before
 * the render starts. */
static void resolve_cond(struct spec_ctx *c)
{
    struct reel_spec *s = c->spec;
    const struct reel_model_config *m = &s->model_config;
    static const char *const keys[] = {"image", "last_image", "keyframes"};
    if (!c->have_model)
        return;
    if (!m->dit.frame_cond) {
        for (int i = 0; i < 3; i++)
            if (given(c, keys[i]))
                spec_msg(c, REEL_DIAG_ERROR, keys[i],
                         "%s has no frame conditioning (dit.frame_cond in its config): image, "
                         "last_image and keyframes need a model that has it",
                         m->name);
        return;
    }
    struct cond_entry *list = NULL;
    int n = 0;
    char where[512];
    const int F = s->frames;
    if (given(c, "image")) {
        where_key(s, c->loc, "image", where, sizeof where);
        char *p = strdup(c->raw.image);
        if (!p || cond_push(c, &list, &n, 0, p, where, where, "image")) {
            if (!p)
                c->diag->oom = 1;
            goto done;
        }
    }
    if (given(c, "last_image")) {
        where_key(s, c->loc, "last_image", where, sizeof where);
        char *p = strdup(c->raw.last_image);
        if (!p || cond_push(c, &list, &n, -1, p, where, where, "last_image")) {
            if (!p)
                c->diag->oom = 1;
            goto done;
        }
    }
    if (given(c, "keyframes"))
        parse_keyframes(c, c->raw.keyframes, &list, &n);
    if (F < 1)
        goto done;

    int bad = 0;
    for (int i = 0; i < n; i++) {
        struct cond_entry *e = &list[i];
        if (e->frame < -(long long)F || e->frame >= F) {
            reel_diag_add(c->diag, REEL_DIAG_ERROR, REEL_E_SPEC,
                          "%s: frame %lld is outside the clip's %d frames (0 .. %d, or -%d .. -1 "
                          "from the end)",
                          e->where, e->frame, F, F - 1, F);
            bad = 1;
            e->frame = LLONG_MIN;
            continue;
        }
        if (e->frame < 0)
            e->frame += F;
        for (int j = 0; j < i; j++) {
            if (list[j].frame == e->frame) {
                reel_diag_add(c->diag, REEL_DIAG_ERROR, REEL_E_SPEC,
                              "%s: frame %lld already has an image (%s); one image per frame",
                              e->where, e->frame, list[j].key);
                bad = 1;
                break;
            }
        }
    }
    if (bad || n == 0)
        goto done;
    s->keyframes = calloc((size_t)n, sizeof *s->keyframes);
    float *pix = malloc(sizeof(float) * 3 * (size_t)s->width * (size_t)s->height);
    if (!s->keyframes || !pix) {
        free(pix);
        c->diag->oom = 1;
        goto done;
    }
    s->n_keyframes = n;
    for (int i = 0; i < n; i++) {
        struct reel_spec_keyframe *k = &s->keyframes[i];
        k->frame = (int)list[i].frame;
        k->image = list[i].image;
        list[i].image = NULL;
        snprintf(k->where, sizeof k->where, "%s", list[i].where_image);
        struct reel_err err = {0};
        if (reel_sha256_file(k->image, k->sha256, &err) != REEL_OK) {
            reel_diag_add(c->diag, REEL_DIAG_ERROR, REEL_E_MEDIA, "%s: %s", k->where, err.msg);
            continue;
        }
        if (reel_image_read(k->image, s->width, s->height, pix, &err) != REEL_OK)
            reel_diag_add(c->diag, REEL_DIAG_ERROR, REEL_E_MEDIA, "%s: %s", k->where, err.msg);
    }
    free(pix);
    qsort(s->keyframes, (size_t)n, sizeof *s->keyframes, keyframe_cmp);
done:
    for (int i = 0; i < n; i++)
        free(list[i].image);
    free(list);
}

/* ---------------------------------------------------------- the load */

void reel_spec_free(struct reel_spec *s)
{
    if (!s)
        return;
    free(s->file);
    free(s->path);
    free(s->dir);
    free(s->model);
    reel_model_config_free(&s->model_config);
    free(s->prompt);
    free(s->negative_prompt);
    free(s->audio_negative_prompt);
    free(s->output.path);
    free(s->output.image_sequence.path);
    free(s->output.wav.path);
    free(s->output.contact_sheet.path);
    for (int i = 0; i < s->n_keyframes; i++)
        free(s->keyframes[i].image);
    free(s->keyframes);
    free(s->loc);
    memset(s, 0, sizeof *s);
}

int reel_spec_load(const char *path, const struct reel_spec_overrides *ov, struct reel_spec *out,
                   struct reel_diag *diag)
{
    memset(out, 0, sizeof *out);
    struct reel_diag_counts {
        int errors, spec_errors, media_errors, oom;
    } before = {diag->errors, diag->spec_errors, diag->media_errors, diag->oom};
    int first_item = diag->count;
    struct spec_ctx c = {.spec = out, .diag = diag};
    struct reel_ydoc doc = {0};

    out->file = strdup(path);
    out->path = reel_path_resolve(path, NULL, (char[64]){0}, 64);
    out->dir = reel_path_dirname_abs(path);
    out->loc = calloc(1, sizeof *out->loc);
    c.loc = out->loc;
    if (!out->file || !out->path || !out->dir || !out->loc) {
        diag->oom = 1;
        goto done;
    }

    if (reel_ydoc_load_file(path, path, &doc, diag, REEL_E_SPEC) != REEL_OK)
        goto done;
    if (!doc.root || scalar_is_null(doc.root)) {
        reel_diag_add(diag, REEL_DIAG_ERROR, REEL_E_SPEC,
                      "%s:1:1: empty spec: expected a map of keys (at least version and prompt)",
                      path);
        goto done;
    }
    if (doc.root->kind != REEL_Y_MAP) {
        char what[128];
        describe(doc.root, what, sizeof what);
        reel_diag_add(diag, REEL_DIAG_ERROR, REEL_E_SPEC,
                      "%s:%d:%d: the top level must be a map of keys, got %s", path,
                      doc.root->line, doc.root->col, what);
        goto done;
    }
    for (int i = 0; ov && i < ov->n_sets; i++)
        if (apply_set(&doc, ov->sets[i], diag) < 0)
            goto done;

    struct reel_schema schema = {
        .fields = spec_fields, .n_fields = N_SPEC_FIELDS, .out = &c.raw, .loc = c.loc->f,
        .file = path, .base_dir = out->dir, .diag = diag, .code = REEL_E_SPEC,
    };
    reel_schema_walk(&schema, doc.root);

    out->version = c.raw.version;
    if (given(&c, "version") && c.raw.version != 1)
        spec_msg(&c, REEL_DIAG_ERROR, "version",
                 "unsupported spec version %d (this reel reads version 1)", c.raw.version);
    resolve_model(&c, ov ? ov->configs_dir : NULL);
    resolve_video(&c);
    resolve_cond(&c);
    resolve_output(&c, ov ? ov->output_path : NULL);

done:
    sort_messages(diag, first_item, path);
    reel_schema_free_strings(spec_fields, N_SPEC_FIELDS, &c.raw);
    reel_ydoc_free(&doc);
    struct reel_diag delta = {.errors = diag->errors - before.errors,
                              .spec_errors = diag->spec_errors - before.spec_errors,
                              .media_errors = diag->media_errors - before.media_errors,
                              .oom = diag->oom && !before.oom};
    int rc = reel_diag_status(&delta);
    if (rc != REEL_OK)
        reel_spec_free(out);
    return rc;
}

/* --------------------------------------------------------- where / given */

const char *reel_spec_where(const struct reel_spec *s, const char *key_path, char *buf, size_t n)
{
    if (!s->loc) {
        snprintf(buf, n, "%s: %s", s->file ? s->file : "?", key_path);
        return buf;
    }
    where_key(s, s->loc, key_path, buf, n);
    size_t len = strlen(buf);
    if (len >= 2 && !strcmp(buf + len - 2, ": "))
        buf[len - 2] = 0; /* the message follows the caller's own ": " */
    return buf;
}

int reel_spec_given(const struct reel_spec *s, const char *key_path)
{
    int i = fidx(key_path);
    return s->loc && i >= 0 && s->loc->f[i].given;
}

/* ------------------------------------------------------------ canonical */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = 2 * (b->len + (size_t)n + 1);
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A YAML double-quoted string. */
static void sb_quoted(struct sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sb_printf(b, "\\n");
        else if (*p == '\t')
            sb_printf(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            sb_printf(b, "\\x%02x", *p);
        else
            sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

char *reel_spec_canonical(const struct reel_spec *s)
{
    struct sbuf b = {0};
    const struct reel_spec_output *o = &s->output;
    sb_printf(&b, "version: %d\nmodel: ", s->version);
    sb_quoted(&b, s->model_config.path ? s->model_config.path : s->model);
    sb_printf(&b, "\nseed: %llu\nprompt: ", (unsigned long long)s->seed);
    sb_quoted(&b, s->prompt);
    sb_printf(&b, "\nnegative_prompt: ");
    sb_quoted(&b, s->negative_prompt);
    sb_printf(&b, "\nsize: [%d, %d]\nfps: %.17g\nframes: %d\n", s->width, s->height, s->fps,
              s->frames);
    sb_printf(&b, "sampler:\n  name: %s\n  steps: %d\n  shift: %.17g\n  guidance: %.17g\n",
              reel_flow_solver_name(s->sampler.solver), s->sampler.steps, s->sampler.shift,
              s->sampler.guidance);
    /* only for models with audio, so other models' canonical text is unchanged */
    if (s->model_config.audio.enabled) {
        sb_printf(&b, "  audio_guidance: %.17g\n  slg_layer: %d\naudio_negative_prompt: ",
                  s->sampler.audio_guidance, s->sampler.slg_layer);
        sb_quoted(&b, s->audio_negative_prompt);
        sb_printf(&b, "\n");
    }
    /* only for frame_cond models, so other models' canonical text is unchanged */
    if (s->model_config.dit.frame_cond) {
        sb_printf(&b, "keyframes:%s\n", s->n_keyframes ? "" : " []");
        for (int i = 0; i < s->n_keyframes; i++) {
            sb_printf(&b, "  - frame: %d\n    image: ", s->keyframes[i].frame);
            sb_quoted(&b, s->keyframes[i].image);
            sb_printf(&b, "\n    sha256: \"%s\"\n", s->keyframes[i].sha256);
        }
    }
    sb_printf(&b, "output:\n  path: ");
    sb_quoted(&b, o->path);
    sb_printf(&b, "\n  silent_audio: %s", o->silent_audio ? "true" : "false");
    sb_printf(&b, "\n  video_codec: %s\n  crf: %d\n  audio_codec: %s\n  audio_rate: %d\n",
              reel_video_codec_name(o->video_codec), o->crf, reel_audio_codec_name(o->audio_codec),
              o->audio_rate);
    if (o->image_sequence.enabled) {
        sb_printf(&b, "  image_sequence:\n    format: %s\n    path: ",
                  image_names[o->image_sequence.format]);
        sb_quoted(&b, o->image_sequence.path);
        sb_printf(&b, "\n    start_number: %d\n    bit_depth: %d\n", o->image_sequence.start_number,
                  o->image_sequence.bit_depth);
    } else {
        sb_printf(&b, "  image_sequence: false\n");
    }
    if (o->wav.enabled) {
        sb_printf(&b, "  wav:\n    path: ");
        sb_quoted(&b, o->wav.path);
        sb_printf(&b, "\n");
    } else {
        sb_printf(&b, "  wav: false\n");
    }
    if (o->contact_sheet.enabled) {
        sb_printf(&b, "  contact_sheet:\n    path: ");
        sb_quoted(&b, o->contact_sheet.path);
        sb_printf(&b, "\n    columns: %d\n    count: %d\n", o->contact_sheet.columns,
                  o->contact_sheet.count);
    } else {
        sb_printf(&b, "  contact_sheet: false\n");
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
