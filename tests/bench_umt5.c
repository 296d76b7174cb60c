/* Benchmark: encoding one 128-token prompt with umT5-XXL shapes (vocab
 * 256384, dim 4096, 64 heads, dim_ffn 10240, 32 buckets) and a reduced layer
 * count (the 24-layer model is 11 GB of bf16, and its f32 copy on the
 * PyTorch side would not fit beside it), on random bf16 weights.
 *
 *   bench_umt5 [--layers N] [--tokens N] [--dir DIR] [--threads N] [--runs N]
 *
 * The weights (Wan names, from reel_umt5_tensor_table, the full embedding
 * table included) and the ids are generated deterministically into DIR once
 * and reused; scripts/bench_umt5_torch.py reads the same files. Our output
 * goes to DIR/umt5_out_ours.safetensors for the comparison. Prints '#'
 * lines and, last, "seconds=X": the best forward time over --runs (the first
 * run also pulls the weights into the page cache). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kernels/backend.h"
#include "kernels/safetensors.h"
#include "stages/umt5.h"
#include "tests/bench_util.h"

/* Bumped whenever what the generator writes changes, so stale files in
 * build/bench are regenerated rather than silently reused. */
#define BENCH_FORMAT "reel-bench-umt5-v1"

/* Scales that keep activations O(1) through the layers: embedding rows of
 * unit variance (T5's own init), torch's default Linear range for the
 * matrices, gammas near 1, small position biases. */
static void fill_weight(void *ctx, const struct bench_entry *e, float *out)
{
    (void)ctx;
    uint64_t s = bench_name_seed(e->name);
    float lo = 0, amp;
    if (strstr(e->name, "token_embedding"))
        amp = 1.7320508f;
    else if (strstr(e->name, "pos_embedding"))
        amp = 0.5f;
    else if (e->ndim == 1) {
        lo = 1.0f;
        amp = 0.1f;
    } else
        amp = 1.0f / sqrtf((float)e->shape[1]);
    for (int64_t i = 0; i < e->numel; i++)
        out[i] = lo + amp * bench_urand(&s);
}

struct ids_ctx {
    int64_t vocab;
};

/* Ids below 2^24 are exact as floats; the writer stores them as I64. */
static void fill_ids(void *ctx, const struct bench_entry *e, float *out)
{
    const struct ids_ctx *c = ctx;
    uint64_t s = bench_name_seed("ids");
    for (int64_t i = 0; i < e->numel; i++)
        out[i] = (float)(bench_splitmix(&s) % (uint64_t)c->vocab);
}

static void fill_copy(void *ctx, const struct bench_entry *e, float *out)
{
    memcpy(out, ctx, sizeof(float) * (size_t)e->numel);
}

int main(int argc, char **argv)
{
    int layers = 4, tokens = 128;
    struct bench_opts opt = {"build/bench", 2, 2};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
            tokens = atoi(argv[++i]);
        else if (bench_common_arg(argc, argv, &i, &opt))
            continue;
        else {
            fprintf(stderr,
                    "usage: %s [--layers N] [--tokens N] [--dir DIR] [--threads N] [--runs N]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *dir = opt.dir;
    int threads = opt.threads, runs = opt.runs;
    if (layers < 1 || layers > 24 || tokens < 1 || threads < 1 || runs < 1)
        bench_die("%s", "--layers in 1..24; --tokens, --threads and --runs >= 1");

    struct reel_umt5_config cfg;
    reel_umt5_config_xxl(&cfg);
    cfg.num_layers = layers;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        bench_die("cannot create %s", dir);
    char config[512], wpath[4096], ipath[4096], opath[4096];
    snprintf(config, sizeof config,
             "{\"vocab\": %d, \"dim\": %d, \"dim_attn\": %d, \"dim_ffn\": %d, \"num_heads\": %d, "
             "\"num_layers\": %d, \"num_buckets\": %d, \"shared_pos\": false}",
             cfg.vocab, cfg.dim, cfg.dim_attn, cfg.dim_ffn, cfg.num_heads, cfg.num_layers,
             cfg.num_buckets);
    snprintf(wpath, sizeof wpath, "%s/umt5_xxl_%dl_random.safetensors", dir, layers);
    snprintf(ipath, sizeof ipath, "%s/umt5_ids_%d.safetensors", dir, tokens);
    snprintf(opath, sizeof opath, "%s/umt5_out_ours.safetensors", dir);

    if (!bench_file_is_current(wpath, BENCH_FORMAT, config)) {
        double t0 = bench_now();
        struct bench_list l = {0};
        reel_umt5_tensor_table(&cfg, REEL_UMT5_WAN, bench_emit_bf16, &l);
        bench_write(wpath, &l, BENCH_FORMAT, config, fill_weight, NULL);
        free(l.e);
        printf("# generated %s in %.1f s\n", wpath, bench_now() - t0);
    }
    char itag[64];
    snprintf(itag, sizeof itag, "ids=%d vocab=%d", tokens, cfg.vocab);
    if (!bench_file_is_current(ipath, BENCH_FORMAT, itag)) {
        struct bench_list l = {0};
        struct ids_ctx ic = {cfg.vocab};
        bench_list_add(&l, "ids", REEL_I64, 1, (const int64_t[]){tokens});
        bench_write(ipath, &l, BENCH_FORMAT, itag, fill_ids, &ic);
        free(l.e);
    }

    struct reel_err err = {0};
    struct reel_weights *w = NULL;
    struct reel_st_file *inf = NULL;
    struct reel_backend *be = reel_backend_cpu_create(threads);
    struct reel_umt5 *m = NULL;
    if (!be)
        bench_die("%s", "cannot create the CPU backend");
    if (reel_weights_open(wpath, &w, &err) != REEL_OK ||
        reel_st_open(ipath, &inf, &err) != REEL_OK ||
        reel_umt5_create(&cfg, w, be, &m, &err) != REEL_OK)
        bench_die("%s", err.msg);
    const struct reel_tensor *ti = reel_st_find(inf, "ids");
    if (!ti || reel_tensor_numel(ti) != tokens)
        bench_die("%s: missing ids", ipath);
    int32_t *ids = malloc(sizeof *ids * (size_t)tokens);
    float *out = malloc(sizeof *out * (size_t)tokens * (size_t)cfg.dim);
    if (!ids || !out)
        bench_die("%s", "out of memory");
    for (int i = 0; i < tokens; i++) {
        int64_t v;
        memcpy(&v, (const char *)ti->data + 8 * i, 8);
        ids[i] = (int32_t)v;
    }

    struct reel_umt5_input in = {.ids = ids, .len = tokens};
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double t0 = bench_now();
        if (reel_umt5_forward(m, &in, out, &err) != REEL_OK)
            bench_die("%s", err.msg);
        double dt = bench_now() - t0;
        printf("# ours run %d: %.3f s\n", r + 1, dt);
        fflush(stdout);
        if (dt < best)
            best = dt;
    }
    double amax = 0;
    for (int64_t i = 0; i < (int64_t)tokens * cfg.dim; i++)
        if (!(fabs(out[i]) <= amax))
            amax = fabs(out[i]);
    if (!isfinite(amax))
        bench_die("%s", "non-finite output");

    struct bench_list ol = {0};
    bench_list_add(&ol, "hidden", REEL_F32, 2, (const int64_t[]){tokens, cfg.dim});
    bench_write(opath, &ol, BENCH_FORMAT, "output", fill_copy, out);
    free(ol.e);

    printf("# ours: umT5-XXL shapes, %d of 24 layers, %d tokens, %d threads, best of %d, "
           "max |out| %.4g\n",
           layers, tokens, threads, runs, amax);
    printf("seconds=%.4f\n", best);
    free(ids);
    free(out);
    reel_umt5_destroy(m);
    reel_st_close(inf);
    reel_weights_close(w);
    reel_backend_destroy(be);
    return 0;
}
