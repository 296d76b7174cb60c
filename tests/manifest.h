/* Shared by the tests/test_manifest_*.c binaries: compares the tensor table a
 * network expects with a manifest of a released checkpoint in
 * $REEL_GOLDEN_DIR/real/ (name for name, shape for shape, state_dict order,
 * total parameter count). */
#ifndef REEL_TEST_MANIFEST_H
#define REEL_TEST_MANIFEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/atomic_file.h"
#include "kernels/json.h"
#include "kernels/tensor.h"
#include "tests/test.h"

struct manifest_entry {
    char name[128];
    int ndim;
    int64_t shape[8];
};

struct manifest_list {
    struct manifest_entry *e;
    int n, cap, oom;
};

/* An emit callback (reel_tensor_emit_fn) that appends to a manifest_list. */
static inline void manifest_list_add(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    struct manifest_list *l = ctx;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        struct manifest_entry *e = realloc(l->e, sizeof *e * (size_t)cap);
        if (!e) {
            l->oom = 1;
            return;
        }
        l->e = e;
        l->cap = cap;
    }
    struct manifest_entry *e = &l->e[l->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ndim = ndim;
    for (int i = 0; i < ndim && i < 8; i++)
        e->shape[i] = shape[i];
}

static inline const char *manifest_golden_dir(void)
{
    const char *g = getenv("REEL_GOLDEN_DIR");
    return g && *g ? g : "../shared/golden";
}

static int manifest_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct manifest_entry *)a)->name,
                  ((const struct manifest_entry *)b)->name);
}

/* Builds the network's table from the manifest's "config": fills `got` via
 * manifest_list_add; returns 0 or an error code with err filled. */
typedef int (*manifest_table_fn)(const struct reel_json *config, struct manifest_list *got,
                                 struct reel_err *err);

/* Reads the manifest at $REEL_GOLDEN_DIR/real/<file>, runs table(), and
 * reports: readable, parses, config accepted, state_dict order, the same
 * (name, shape) set, and the total parameter count (total_key, normally
 * "total_params"; buffers are counted when the manifest's own total does). */
static inline void manifest_check(const char *file, manifest_table_fn table, const char *total_key)
{
    char path[512], label[256];
    snprintf(path, sizeof path, "%s/real/%s", manifest_golden_dir(), file);
    size_t len = 0;
    char *text = reel_read_file(path, &len);
    snprintf(label, sizeof label, "manifest %s readable", file);
    if (!CHECK(text != NULL, label, "cannot read %s", path))
        return;
    char msg[256];
    struct reel_json *j = reel_json_parse(text, len, msg, sizeof msg);
    free(text);
    snprintf(label, sizeof label, "manifest %s parses", file);
    if (!CHECK(j != NULL, label, "%s", msg))
        return;

    struct manifest_list want = {0}, got = {0};
    struct reel_err err = {0};
    int rc = table(reel_json_get(j, "config"), &got, &err);
    snprintf(label, sizeof label, "%s: config accepted", file);
    if (!CHECK(rc == 0 && !got.oom, label, "%s", err.msg))
        goto done;

    const struct reel_json *tensors = reel_json_get(j, "tensors");
    int bad = !tensors || tensors->type != REEL_JSON_ARRAY;
    for (size_t i = 0; !bad && i < tensors->count; i++) {
        const struct reel_json *t = tensors->items[i];
        if (t->type != REEL_JSON_ARRAY || t->count != 2 || t->items[0]->type != REEL_JSON_STRING ||
            t->items[1]->type != REEL_JSON_ARRAY || t->items[1]->count > 8) {
            bad = 1;
            break;
        }
        int64_t shape[8];
        for (size_t d = 0; d < t->items[1]->count; d++)
            shape[d] = (int64_t)reel_json_at_num(t->items[1], d, -1);
        manifest_list_add(&want, t->items[0]->string, (int)t->items[1]->count, shape);
    }
    snprintf(label, sizeof label, "%s: tensor list well formed", file);
    CHECK(!bad && !want.oom, label, "unexpected 'tensors' layout");

    /* The loader binds by name, so order only cross-checks that the table
     * walks the modules the way the reference builds them. */
    int first_diff = -1;
    for (int i = 0; first_diff < 0 && i < want.n && i < got.n; i++)
        if (strcmp(want.e[i].name, got.e[i].name))
            first_diff = i;
    snprintf(label, sizeof label, "%s: table in state_dict order", file);
    CHECK(want.n == got.n && first_diff < 0, label, "count %d vs %d, first difference at %d",
          got.n, want.n, first_diff);

    int64_t total = 0;
    for (int i = 0; i < got.n; i++) {
        int64_t n = 1;
        for (int d = 0; d < got.e[i].ndim; d++)
            n *= got.e[i].shape[d];
        total += n;
    }

    qsort(want.e, (size_t)want.n, sizeof *want.e, manifest_entry_cmp);
    qsort(got.e, (size_t)got.n, sizeof *got.e, manifest_entry_cmp);
    char why[512] = "";
    int a = 0, b = 0;
    while (!why[0] && (a < got.n || b < want.n)) {
        int c = a >= got.n ? 1 : b >= want.n ? -1 : strcmp(got.e[a].name, want.e[b].name);
        if (c < 0) {
            snprintf(why, sizeof why, "extra tensor '%s' not in the manifest", got.e[a].name);
        } else if (c > 0) {
            snprintf(why, sizeof why, "manifest tensor '%s' missing from the table",
                     want.e[b].name);
        } else {
            int same = got.e[a].ndim == want.e[b].ndim;
            for (int d = 0; same && d < got.e[a].ndim; d++)
                same = got.e[a].shape[d] == want.e[b].shape[d];
            if (!same) {
                char s1[96], s2[96];
                reel_shape_str(s1, sizeof s1, got.e[a].ndim, got.e[a].shape);
                reel_shape_str(s2, sizeof s2, want.e[b].ndim, want.e[b].shape);
                snprintf(why, sizeof why, "'%s': table %s, manifest %s", got.e[a].name, s1, s2);
            } else if (a + 1 < got.n && !strcmp(got.e[a].name, got.e[a + 1].name)) {
                snprintf(why, sizeof why, "'%s' listed twice", got.e[a].name);
            }
            a++;
            b++;
        }
    }
    snprintf(label, sizeof label, "%s: table equals the manifest (%d tensors)", file, want.n);
    CHECK(!why[0], label, "%s", why);

    const struct reel_json *tp = reel_json_get(j, total_key);
    int64_t want_total = tp && tp->is_integer && tp->integer_ok ? tp->integer : -1;
    snprintf(label, sizeof label, "%s: %s %lld", file, total_key, (long long)want_total);
    CHECK(total == want_total, label, "table sums to %lld", (long long)total);
done:
    free(want.e);
    free(got.e);
    reel_json_free(j);
}

#endif
