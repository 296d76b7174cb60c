/* `reel init-weights MODEL [--seed N] [--force]`: writes seeded random
 * weights for every network of a model config whose weights are not trained
 * yet, so `make` can give the default model real files to load before its
 * training exists. Clips rendered with them are structured noise; what
 * matters is that every tensor the loaders bind exists with its real name
 * and shape and that activations stay O(1) through the real forward passes.
 *
 * Determinism: each tensor is drawn from its own counter-based stream
 * (kernels/rng.h), keyed by a hash of network + tensor name, so the bytes
 * depend only on (seed, config) - not on tensor order, threads or machine -
 * and `make` on any checkout produces identical files. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/rng.h"
#include "kernels/safetensors.h"
#include "pipeline/init_weights.h"
#include "pipeline/spec.h"
#include "audio/bigvgan.h"
#include "audio/mmaudio_vae.h"
#include "stages/ovi_fusion.h"
#include "stages/umt5.h"
#include "stages/wan_dit.h"
#include "stages/wan_vae.h"

/* ------------------------------------------------------- tensor tables */

struct tdesc {
    char *name;
    int ndim;
    int64_t shape[REEL_MAX_DIMS];
};

struct tlist {
    struct tdesc *v;
    int n, cap;
    int oom;
};

static void collect(void *ctx, const char *name, int ndim, const int64_t *shape)
{
    struct tlist *l = ctx;
    if (l->oom)
        return;
    if (ndim < 0 || ndim > REEL_MAX_DIMS) {
        l->oom = 1; /* cannot happen with the shipped tables; fail loudly anyway */
        return;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        struct tdesc *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    struct tdesc *t = &l->v[l->n];
    t->name = strdup(name);
    if (!t->name) {
        l->oom = 1;
        return;
    }
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    l->n++;
}

static void tlist_free(struct tlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* FNV-1a over "network:name": the noise stream of one tensor. */
static uint64_t tensor_stream(const char *network, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {network, ":", name};
    for (int p = 0; p < 3; p++)
        for (const unsigned char *s = (const unsigned char *)parts[p]; *s; s++) {
            h ^= *s;
            h *= 1099511628211ull;
        }
    return h;
}

/* The distribution of one tensor: value = mean + std * N(0, 1). */
static void tensor_scale(const char *network, const struct tdesc *t, int umt5_head_dim,
                         double *mean, double *std)
{
    *mean = 0.0;
    if (!strcmp(network, "audio_vae") && !strcmp(t->name, "data_std")) {
        /* mel de-normalisation scale: must stay positive */
        *mean = 1.0;
        *std = 0.01;
    } else if (!strcmp(network, "audio_vae") && !strcmp(t->name, "data_mean")) {
        /* a log10 mel around -5 .. 0, as the real statistics */
        *mean = -2.0;
        *std = 0.1;
    } else if (!strcmp(network, "vocoder") && ends_with(t->name, ".filter")) {
        /* anti-aliasing taps: a near-averaging low-pass keeps the gain ~1 */
        *mean = 1.0 / (double)t->shape[t->ndim - 1];
        *std = 0.001;
    } else if (!strcmp(network, "text_encoder") && !strcmp(t->name, "token_embedding.weight")) {
        /* T5 feeds the embedding straight into an RMS norm: scale is free,
         * unit variance is the natural choice */
        *std = 1.0;
    } else if (ends_with(t->name, ".modulation")) {
        /* Wan's adaLN tables are added to the time projection; small keeps
         * the modulation near identity (scale 1 + e, shift e) */
        *std = 0.02;
    } else if (ends_with(t->name, ".bias")) {
        *std = 0.01;
    } else if (ends_with(t->name, ".gamma") || (t->ndim == 1 && ends_with(t->name, ".weight"))) {
        /* norm gains (RMS / layer norm, qk-norm): near 1 so norms pass unit
         * RMS through */
        *mean = 1.0;
        *std = 0.01;
    } else if (strstr(t->name, "pos_embedding")) {
        /* T5 relative-position bias, added to attention logits: a small
         * bias leaves attention content-driven */
        *std = 0.1;
    } else if (t->ndim >= 2) {
        /* Linear [out, in] and conv [out, in, k...]: variance 1 / fan_in
         * keeps each layer's output O(1) for O(1) inputs */
        double fan_in = 1.0;
        for (int d = 1; d < t->ndim; d++)
            fan_in *= (double)t->shape[d];
        *std = 1.0 / sqrt(fan_in > 0 ? fan_in : 1.0);
        /* T5 attention has no 1/sqrt(head_dim) on the logits (its training
         * init folds it into q), so fold it in here too */
        if (!strcmp(network, "text_encoder") && ends_with(t->name, ".attn.q.weight") &&
            umt5_head_dim > 0)
            *std /= sqrt((double)umt5_head_dim);
    } else {
        *std = 0.01;
    }
}

/* ---------------------------------------------------------------- files */

static int mkdir_parents(const char *path, struct reel_err *err)
{
    char *p = strdup(path);
    if (!p)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    char *slash = strrchr(p, '/');
    if (slash && slash != p) {
        *slash = '\0';
        for (char *s = p + 1; *s; s++) {
            if (*s != '/')
                continue;
            *s = '\0';
            if (mkdir(p, 0777) && errno != EEXIST) {
                int e = errno;
                free(p);
                return reel_errf(err, REEL_E_MEDIA, "cannot create %s: %s", path, strerror(e));
            }
            *s = '/';
        }
        if (mkdir(p, 0777) && errno != EEXIST) {
            int e = errno;
            reel_errf(err, REEL_E_MEDIA, "cannot create the directory %s: %s", p, strerror(e));
            free(p);
            return REEL_E_MEDIA;
        }
    }
    free(p);
    return REEL_OK;
}

static int write_network(const char *network, const char *path, const struct tlist *l,
                         const char *model_name, uint64_t seed, int umt5_head_dim,
                         struct reel_init_weights_file *info, struct reel_err *err)
{
    struct reel_tensor *ts = calloc((size_t)(l->n > 0 ? l->n : 1), sizeof *ts);
    if (!ts)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    int rc = REEL_OK;
    int64_t params = 0;
    for (int i = 0; i < l->n; i++) {
        const struct tdesc *t = &l->v[i];
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++)
            n *= t->shape[d];
        float *data = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        if (!data) {
            rc = reel_errf(err, REEL_E_OTHER, "out of memory for %s %s", network, t->name);
            goto done;
        }
        double mean, std;
        tensor_scale(network, t, umt5_head_dim, &mean, &std);
        reel_rng_normal(seed, tensor_stream(network, t->name), 0, n, data);
        for (int64_t k = 0; k < n; k++)
            data[k] = (float)(mean + std * (double)data[k]);
        ts[i].dtype = REEL_F32;
        ts[i].ndim = t->ndim;
        memcpy(ts[i].shape, t->shape, sizeof t->shape);
        ts[i].data = data;
        ts[i].name = t->name;
        params += n;
    }
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    const char *meta[] = {
        "format", "pt",
        "reel.placeholder", "untrained: seeded random weights from reel init-weights",
        "reel.model", model_name,
        "reel.network", network,
        "reel.seed", seed_s,
    };
    if ((rc = mkdir_parents(path, err)) ||
        (rc = reel_st_write(path, ts, l->n, meta, (int)(sizeof meta / sizeof meta[0] / 2), err)))
        goto done;
    struct stat st;
    info->network = network;
    info->path = path;
    info->tensors = l->n;
    info->params = params;
    info->bytes = stat(path, &st) ? -1 : (int64_t)st.st_size;
done:
    for (int i = 0; i < l->n; i++)
        free(ts[i].data);
    free(ts);
    return rc;
}

int reel_init_weights_write(const struct reel_model_config *m, uint64_t seed, int force,
                            struct reel_init_weights_file files[REEL_INIT_WEIGHTS_MAX_FILES],
                            struct reel_err *err)
{
    memset(files, 0, REEL_INIT_WEIGHTS_MAX_FILES * sizeof *files);
    if (m->trained)
        return reel_errf(err, REEL_E_MODEL,
                         "%s: the config says `trained: true`; init-weights only writes "
                         "placeholder weights and never replaces trained ones",
                         m->path);
    const char *networks[REEL_INIT_WEIGHTS_MAX_FILES] = {"dit", "vae", "text_encoder",
                                                         "audio_vae", "vocoder"};
    const char *keys[REEL_INIT_WEIGHTS_MAX_FILES] = {"dit", "vae", "text_encoder", "audio.vae",
                                                     "audio.vocoder"};
    const char *paths[REEL_INIT_WEIGHTS_MAX_FILES] = {
        m->dit.weights, m->vae.weights, m->text_encoder.weights, m->audio.vae.weights,
        m->audio.vocoder.weights};
    int n_files = m->audio.enabled ? 5 : 3;
    /* Every refusal before the first write, so a refused run changes nothing. */
    for (int i = 0; i < n_files; i++) {
        if (!paths[i] || !ends_with(paths[i], ".safetensors"))
            return reel_errf(err, REEL_E_MODEL,
                             "%s: %s.weights must name one .safetensors file for init-weights, "
                             "got %s",
                             m->path, keys[i], paths[i] ? paths[i] : "(none)");
        struct stat st;
        if (!force && !stat(paths[i], &st))
            return reel_errf(err, REEL_E_MEDIA, "%s exists; --force replaces it", paths[i]);
    }

    struct reel_umt5_config tc = {
        .vocab = m->text_encoder.vocab,
        .dim = m->text_encoder.dim,
        .dim_attn = m->text_encoder.dim_attn,
        .dim_ffn = m->text_encoder.dim_ffn,
        .num_heads = m->text_encoder.num_heads,
        .num_layers = m->text_encoder.num_layers,
        .num_buckets = m->text_encoder.num_buckets,
        .shared_pos = m->text_encoder.shared_pos,
        .eps = 1e-6,
    };
    int head_dim = tc.num_heads > 0 ? tc.dim_attn / tc.num_heads : 0;
    int rc = REEL_OK;
    for (int i = 0; i < n_files && !rc; i++) {
        struct tlist l = {0};
        struct reel_ovi_config oc;
        if (i == 0 && m->audio.enabled) {
            reel_model_config_ovi(m, &oc);
            reel_ovi_tensor_table(&oc, collect, &l);
        } else if (i == 0)
            reel_wan_dit_tensor_table(&m->dit.cfg, collect, &l);
        else if (i == 3)
            reel_mmaudio_vae_tensor_table(&m->audio.vae.cfg, collect, &l);
        else if (i == 4)
            reel_bigvgan_tensor_table(&m->audio.vocoder.cfg, REEL_BIGVGAN_PLAIN, collect, &l);
        else if (i == 1)
            reel_wan_vae_tensor_table(&m->vae.cfg, collect, &l);
        else
            reel_umt5_tensor_table(&tc, REEL_UMT5_WAN, collect, &l);
        if (l.oom)
            rc = reel_errf(err, REEL_E_OTHER, "out of memory listing the %s tensors",
                           networks[i]);
        else
            rc = write_network(networks[i], paths[i], &l, m->name, seed, head_dim, &files[i],
                               err);
        tlist_free(&l);
    }
    return rc;
}

/* ------------------------------------------------------------- command */

static void init_usage(FILE *out)
{
    fprintf(out,
            "usage: reel init-weights MODEL [--seed N] [--force]\n"
            "\n"
            "Writes seeded random (untrained placeholder) weights for every network of the\n"
            "model config MODEL (a name in configs/ or a path to a .yaml): the files named\n"
            "by dit.weights, vae.weights and text_encoder.weights (and audio.vae.weights and\n"
            "audio.vocoder.weights for a model with audio), in F32, with every tensor\n"
            "the loaders expect. The same seed and config give the same bytes everywhere.\n"
            "Renders with them are noise; `make` runs this for reel-default until its\n"
            "trained weights exist. Configs with `trained: true` are always refused.\n"
            "\n"
            "  --seed N    the seed (default %d)\n"
            "  --force     replace weight files that exist\n"
            "  -h, --help  this help\n"
            "\n"
            "exit status: 0 written, 2 bad arguments, 3 bad or trained config,\n"
            "4 a file exists (without --force) or cannot be written, 1 anything else\n",
            REEL_INIT_WEIGHTS_SEED);
}

static const char *with_commas(int64_t v, char *buf, size_t n)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)v);
    size_t len = strlen(raw), j = 0;
    for (size_t i = 0; i < len && j + 1 < n; i++) {
        if (i && (len - i) % 3 == 0 && raw[0] != '-' && j + 2 < n)
            buf[j++] = ',';
        buf[j++] = raw[i];
    }
    buf[j] = '\0';
    return buf;
}

int reel_init_weights_main(int argc, char **argv)
{
    const char *model = NULL;
    uint64_t seed = REEL_INIT_WEIGHTS_SEED;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            init_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--seed") || !strncmp(a, "--seed=", 7)) {
            const char *v = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
            char *end = NULL;
            errno = 0;
            unsigned long long s = v ? strtoull(v, &end, 10) : 0;
            if (!v || !*v || *end || errno || v[0] == '-') {
                fprintf(stderr, "reel init-weights: --seed needs an integer 0 .. 2^64-1\n");
                return REEL_E_SPEC;
            }
            seed = (uint64_t)s;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "reel init-weights: unknown option '%s' (see reel init-weights --help)\n",
                    a);
            return REEL_E_SPEC;
        } else if (model) {
            fprintf(stderr, "reel init-weights: one MODEL at a time\n");
            return REEL_E_SPEC;
        } else {
            model = a;
        }
    }
    if (!model) {
        init_usage(stderr);
        return REEL_E_SPEC;
    }

    char *path = NULL;
    struct reel_err err = {0};
    if (reel_model_config_find(model, NULL, NULL, &path, &err)) {
        fprintf(stderr, "reel init-weights: %s\n", err.msg);
        return err.code == REEL_E_OTHER ? REEL_E_OTHER : REEL_E_SPEC;
    }
    struct reel_model_config m;
    struct reel_diag diag = {0};
    int rc = reel_model_config_load(path, NULL, &m, &diag);
    for (int i = 0; i < diag.count; i++)
        fprintf(stderr, "%s%s\n", diag.items[i].level == REEL_DIAG_WARNING ? "warning: " : "",
                diag.items[i].text);
    reel_diag_free(&diag);
    free(path);
    if (rc != REEL_OK)
        return rc == REEL_E_MODEL ? REEL_E_MODEL : REEL_E_OTHER;

    struct reel_init_weights_file files[REEL_INIT_WEIGHTS_MAX_FILES];
    rc = reel_init_weights_write(&m, seed, force, files, &err);
    if (rc) {
        fprintf(stderr, "reel init-weights: %s\n", err.msg);
    } else {
        printf("%s: wrote untrained placeholder weights (seed %llu)\n", m.name,
               (unsigned long long)seed);
        for (int i = 0; i < REEL_INIT_WEIGHTS_MAX_FILES && files[i].network; i++) {
            char p[40];
            printf("  %-13s %s\n                %d tensors, %s parameters, F32, %.1f MB\n",
                   files[i].network, files[i].path, files[i].tensors,
                   with_commas(files[i].params, p, sizeof p), (double)files[i].bytes / 1e6);
        }
    }
    reel_model_config_free(&m);
    return rc;
}
