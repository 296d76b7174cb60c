/* Test tool: rewrites a safetensors file with one change, so tests can prove
 * that `reel check` catches a wrong value or refuses an unknown computation.
 *   tool_golden_edit IN OUT --nudge TENSOR DELTA   add DELTA to TENSOR's first float
 *   tool_golden_edit IN OUT --meta KEY VALUE       set a __metadata__ value */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/safetensors.h"

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[3], "--nudge") && strcmp(argv[3], "--meta"))) {
        fprintf(stderr, "usage: %s IN OUT --nudge TENSOR DELTA | --meta KEY VALUE\n", argv[0]);
        return 2;
    }
    struct reel_err err = {0};
    struct reel_st_file *f = NULL;
    if (reel_st_open(argv[1], &f, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int nudge = !strcmp(argv[3], "--nudge");
    struct reel_tensor *ts = calloc((size_t)f->count, sizeof *ts);
    void *copy = NULL;
    for (int i = 0; i < f->count; i++) {
        ts[i] = f->tensors[i];
        if (nudge && !strcmp(ts[i].name, argv[4]) && ts[i].dtype == REEL_F32 &&
            reel_tensor_numel(&ts[i]) > 0) {
            size_t bytes = (size_t)reel_tensor_numel(&ts[i]) * 4;
            copy = malloc(bytes);
            memcpy(copy, ts[i].data, bytes);
            ((float *)copy)[0] += (float)atof(argv[5]);
            ts[i].data = copy;
        }
    }
    /* Metadata: every existing key, with the edited one replaced or added. */
    const struct reel_json *md = reel_json_get(f->header, "__metadata__");
    int nmeta = md ? (int)md->count : 0;
    const char **kv = calloc((size_t)(2 * nmeta + 2), sizeof *kv);
    int m = 0, replaced = 0;
    for (int i = 0; i < nmeta; i++) {
        kv[2 * m] = md->keys[i];
        kv[2 * m + 1] = md->items[i]->string;
        if (!nudge && !strcmp(md->keys[i], argv[4])) {
            kv[2 * m + 1] = argv[5];
            replaced = 1;
        }
        m++;
    }
    if (!nudge && !replaced) {
        kv[2 * m] = argv[4];
        kv[2 * m + 1] = argv[5];
        m++;
    }
    int rc = (nudge && !copy) ? 1 : reel_st_write(argv[2], ts, f->count, kv, m, &err);
    if (rc)
        fprintf(stderr, "%s\n", nudge && !copy ? "no such F32 tensor" : err.msg);
    free(kv);
    free(copy);
    free(ts);
    reel_st_close(f);
    return rc ? 1 : 0;
}
