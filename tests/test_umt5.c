/* Tests for the umT5 encoder (stages/umt5.c) and the text stage
 * (stages/text_encode.c, stages/tokenizer_spm.cc):
 *  - the golden umt5_encoder case through the API (out.hidden and every
 *    block output within 2e-5; the measured error is printed);
 *  - the bucket function against mid.rel_bucket, and hand-worked values;
 *  - masking: padding keys do not change the real rows, whatever the padded
 *    ids are; the real rows equal a run without the padding; a hole in the
 *    mask; an all-padding mask stays finite;
 *  - config and input errors;
 *  - the text stage on a SentencePiece model trained here with spm_train:
 *    whitespace cleaning, EOS and truncation, embeddings equal to the padded
 *    encoder run cut to the real length, the cache, the negative prompt. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/json.h"
#include "kernels/safetensors.h"
#include "stages/text_encode.h"
#include "stages/tokenizer.h"
#include "stages/umt5.h"
#include "tests/test.h"

static char tmpdir[256];

static const char *golden_dir(void)
{
    const char *g = getenv("REEL_GOLDEN_DIR");
    return g && *g ? g : "../shared/golden";
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d))
            d = e;
    }
    return d;
}

/* Max abs difference between n computed floats and file tensor `name`
 * (INFINITY if absent or of another size). */
static double diff_tensor(const struct reel_st_file *f, const char *name, const float *got,
                          int64_t n)
{
    const struct reel_tensor *t = reel_st_find(f, name);
    if (!t || reel_tensor_numel(t) != n)
        return INFINITY;
    float *ref = malloc(sizeof(float) * (size_t)n);
    if (!ref)
        return INFINITY;
    reel_tensor_to_f32(t, 0, n, ref);
    double d = max_diff(got, ref, n);
    free(ref);
    return d;
}

struct ctx {
    struct reel_st_file *f;
    struct reel_weights *w;
    struct reel_backend *be;
    struct reel_umt5_config cfg;
    struct reel_umt5 *m;
    int32_t ids[64];
    uint8_t mask[64];
    int64_t L, n_real;
};

static float *forward(struct ctx *c, const int32_t *ids, const uint8_t *mask, int64_t L,
                      struct reel_err *err)
{
    float *out = malloc(sizeof(float) * (size_t)(L * c->cfg.dim + 1));
    struct reel_umt5_input in = {.ids = ids, .len = L, .mask = mask};
    if (out && reel_umt5_forward(c->m, &in, out, err)) {
        free(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------- golden */

struct probe_acc {
    const struct reel_st_file *f;
    double worst;
    int seen;
};

static void probe_fn(void *vctx, const char *name, const float *data, int64_t n)
{
    struct probe_acc *p = vctx;
    char full[64];
    snprintf(full, sizeof full, "mid.%s", name);
    double d = diff_tensor(p->f, full, data, n);
    p->seen++;
    if (!(d <= p->worst))
        p->worst = d;
}

static void test_golden(struct ctx *c)
{
    struct reel_err err = {0};
    struct probe_acc acc = {c->f, 0, 0};
    float *out = malloc(sizeof(float) * (size_t)(c->L * c->cfg.dim));
    struct reel_umt5_input in = {.ids = c->ids, .len = c->L, .mask = c->mask,
                                 .probe = probe_fn, .probe_ctx = &acc};
    int rc = out ? reel_umt5_forward(c->m, &in, out, &err) : -1;
    if (CHECK(rc == 0, "golden forward runs", "%s", err.msg)) {
        double d = diff_tensor(c->f, "out.hidden", out, c->L * c->cfg.dim);
        printf("# umt5_encoder out.hidden max_abs=%.3g, intermediates max_abs=%.3g\n", d,
               acc.worst);
        CHECK(d <= 2e-5, "golden out.hidden within 2e-5", "max abs %.3g", d);
        CHECK(acc.seen == 2 * c->cfg.num_layers && acc.worst <= 2e-5,
              "golden block pos_bias/out within 2e-5", "%d probes, max abs %.3g", acc.seen,
              acc.worst);
    }
    free(out);
}

static void test_buckets(struct ctx *c)
{
    const struct reel_tensor *tp = reel_st_find(c->f, "mid.rel_bucket_pos");
    const struct reel_tensor *tb = reel_st_find(c->f, "mid.rel_bucket");
    if (!CHECK(tp && tb && reel_tensor_numel(tp) == reel_tensor_numel(tb),
               "golden rel_bucket tensors present", "missing"))
        return;
    int64_t n = reel_tensor_numel(tp), bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t pos, want;
        memcpy(&pos, (const char *)tp->data + 8 * i, 8);
        memcpy(&want, (const char *)tb->data + 8 * i, 8);
        if (reel_umt5_bucket(pos, c->cfg.num_buckets, 1, REEL_UMT5_MAX_DIST) != want) {
            bad++;
            if (first < 0)
                first = pos;
        }
    }
    CHECK(bad == 0, "bucket function equals mid.rel_bucket on [-600, 600]",
          "%lld differ, first at %lld", (long long)bad, (long long)first);
    /* by hand, 32 buckets: bidirectional halves of 16 with max_exact 8;
     * unidirectional (decoder) looks at past keys only, max_exact 16 */
    struct { int64_t rel; int bidir; int64_t want; } v[] = {
        {0, 1, 0}, {-7, 1, 7}, {7, 1, 23}, {-16, 1, 10}, {16, 1, 26}, {-127, 1, 15},
        {5000, 1, 31}, {-5, 0, 5}, {3, 0, 0}, {-200, 0, 31}, {-20, 0, 17},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (reel_umt5_bucket(v[i].rel, 32, v[i].bidir, 128) != v[i].want) {
            printf("# bucket(%lld, bidir %d) = %lld, want %lld\n", (long long)v[i].rel,
                   v[i].bidir, (long long)reel_umt5_bucket(v[i].rel, 32, v[i].bidir, 128),
                   (long long)v[i].want);
            ok = 0;
        }
    CHECK(ok, "bucket function on hand-worked values", "see above");
}

/* ---------------------------------------------------------------- mask */

static void test_mask(struct ctx *c)
{
    struct reel_err err = {0};
    const int64_t D = c->cfg.dim, L = c->L, R = c->n_real;
    float *padded = forward(c, c->ids, c->mask, L, &err);
    float *bare = forward(c, c->ids, NULL, R, &err);
    int32_t ids2[64];
    memcpy(ids2, c->ids, sizeof ids2);
    for (int64_t i = R; i < L; i++)
        ids2[i] = (int32_t)((37 * i + 11) % c->cfg.vocab);
    float *other = forward(c, ids2, c->mask, L, &err);
    if (CHECK(padded && bare && other, "mask runs", "%s", err.msg)) {
        double d = max_diff(padded, bare, R * D);
        /* not bitwise: the GEMMs see a different row count */
        CHECK(d <= 1e-5, "real rows equal a run without the padding", "max abs %.3g", d);
        d = max_diff(padded, other, R * D);
        CHECK(d <= 1e-6, "padded ids do not change the real rows", "max abs %.3g", d);
        CHECK(max_diff(padded + R * D, other + R * D, (L - R) * D) > 1e-3,
              "padded rows themselves follow their ids", "no change");
    }
    free(padded);
    free(bare);
    free(other);

    /* a hole: position 2 masked among real tokens */
    uint8_t hole[64];
    memcpy(hole, c->mask, sizeof hole);
    hole[2] = 0;
    memcpy(ids2, c->ids, sizeof ids2);
    float *h1 = forward(c, c->ids, hole, L, &err);
    ids2[2] = (c->ids[2] + 1) % c->cfg.vocab;
    float *h2 = forward(c, ids2, hole, L, &err);
    float *full = forward(c, c->ids, c->mask, L, &err);
    if (CHECK(h1 && h2 && full, "hole mask runs", "%s", err.msg)) {
        double d = 0;
        for (int64_t i = 0; i < R; i++)
            if (i != 2) {
                double e = max_diff(h1 + i * D, h2 + i * D, D);
                d = e > d ? e : d;
            }
        CHECK(d <= 1e-6, "a masked token in the middle is not attended to", "max abs %.3g", d);
        CHECK(max_diff(h1, full, D) > 1e-4, "masking a middle token changes the others",
              "no change");
    }
    free(h1);
    free(h2);
    free(full);

    uint8_t none[64] = {0};
    float *z = forward(c, c->ids, none, L, &err);
    int finite = z != NULL;
    for (int64_t i = 0; z && i < L * D; i++)
        finite &= isfinite(z[i]) != 0;
    CHECK(finite, "an all-padding mask gives finite output (uniform weights)", "%s", err.msg);
    free(z);
}

/* ------------------------------------------------------------- errors */

static int json_config_rc(const char *json, struct reel_err *err)
{
    char msg[256];
    struct reel_json *j = reel_json_parse(json, strlen(json), msg, sizeof msg);
    struct reel_umt5_config cfg;
    int rc = j ? reel_umt5_config_from_json(j, &cfg, err) : -1;
    reel_json_free(j);
    return rc;
}

static void test_errors(struct ctx *c)
{
    static const struct { const char *json, *needle, *label; } bad[] = {
        {"{\"dim\":64,\"dim_attn\":64,\"dim_ffn\":128,\"num_heads\":2,\"num_layers\":2,"
         "\"num_buckets\":32}", "vocab", "config without vocab refused"},
        {"{\"vocab\":256,\"dim\":64,\"dim_attn\":64,\"dim_ffn\":128,\"num_heads\":3,"
         "\"num_layers\":2,\"num_buckets\":32}", "heads", "dim_attn not divisible by heads"},
        {"{\"vocab\":256,\"dim\":64,\"dim_attn\":64,\"dim_ffn\":128,\"num_heads\":2,"
         "\"num_layers\":2,\"num_buckets\":2}", "num_buckets", "too few buckets refused"},
        {"{\"vocab\":256,\"dim\":64,\"dim_attn\":64,\"dim_ffn\":128,\"num_heads\":2,"
         "\"num_layers\":2,\"num_buckets\":32,\"shared_pos\":1}", "shared_pos",
         "non-boolean shared_pos refused"},
        {"{\"vocab\":256.5,\"dim\":64,\"dim_attn\":64,\"dim_ffn\":128,\"num_heads\":2,"
         "\"num_layers\":2,\"num_buckets\":32}", "vocab", "fractional vocab refused"},
        {"[1]", "object", "non-object config refused"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct reel_err err = {0};
        int rc = json_config_rc(bad[i].json, &err);
        CHECK(rc == REEL_E_MODEL && strstr(err.msg, bad[i].needle), bad[i].label,
              "rc %d: %s", rc, err.msg);
    }

    /* a config that does not match the weights: the tensor is named */
    struct reel_umt5_config wrong = c->cfg;
    wrong.dim_ffn = 96;
    struct reel_umt5 *m = NULL;
    struct reel_err err = {0};
    int rc = reel_umt5_create(&wrong, c->w, c->be, &m, &err);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "blocks.0.ffn.gate.0.weight"),
          "mismatched dim_ffn names the tensor", "rc %d: %s", rc, err.msg);
    reel_umt5_destroy(m);
    wrong = c->cfg;
    wrong.num_layers = 3;
    memset(&err, 0, sizeof err);
    rc = reel_umt5_create(&wrong, c->w, c->be, &m, &err);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "blocks.2."), "a missing layer names it",
          "rc %d: %s", rc, err.msg);
    reel_umt5_destroy(m);

    int32_t ids[2] = {5, c->cfg.vocab};
    memset(&err, 0, sizeof err);
    float out[2 * 64];
    struct reel_umt5_input in = {.ids = ids, .len = 2};
    rc = c->cfg.dim <= 64 ? reel_umt5_forward(c->m, &in, out, &err) : -1;
    CHECK(rc == REEL_E_SPEC && strstr(err.msg, "vocabulary"), "an id outside the vocabulary",
          "rc %d: %s", rc, err.msg);

    /* a weight set that is no T5 at all */
    const struct reel_tensor one = {.dtype = REEL_F32, .ndim = 1, .shape = {1},
                                    .data = (void *)&c->cfg.eps, .name = "something.else"};
    char path[512];
    snprintf(path, sizeof path, "%s/not_t5.safetensors", tmpdir);
    struct reel_weights *w = NULL;
    struct reel_umt5_config cfg;
    memset(&err, 0, sizeof err);
    rc = reel_st_write(path, &one, 1, NULL, 0, &err);
    if (!rc)
        rc = reel_weights_open(path, &w, &err);
    if (!rc)
        rc = reel_umt5_config_from_weights(w, &cfg, &err);
    CHECK(rc == REEL_E_MODEL && strstr(err.msg, "token_embedding.weight") &&
              strstr(err.msg, "shared.weight"),
          "weights of neither layout refused, naming both", "rc %d: %s", rc, err.msg);
    reel_weights_close(w);
    unlink(path);
}

/* ---------------------------------------------------------- text stage */

static void test_clean(void)
{
    static const struct { const char *in, *out; } v[] = {
        {"  a \t b\n\nc  ", "a b c"},
        {"", ""},
        {" \t\r\n ", ""},
        {"x\xc2\xa0\xc2\xa0y", "x y"},           /* NBSP run */
        {"\xe3\x80\x80猫\xe3\x80\x80 犬", "猫 犬"}, /* U+3000 */
        {"a\x1f", "a"},                           /* stripped by str.strip only */
        {"a\x1f b", "a\x1f b"},                   /* not \s inside */
        {"bad\xff  utf8", "bad\xff utf8"},
        {"\xe2\x80\x83lead and trail\xe2\x80\xa8", "lead and trail"},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *s = reel_text_clean_whitespace(v[i].in, strlen(v[i].in));
        if (!s || strcmp(s, v[i].out)) {
            printf("# clean(\"%s\") = \"%s\", want \"%s\"\n", v[i].in, s ? s : "(null)",
                   v[i].out);
            ok = 0;
        }
        free(s);
    }
    CHECK(ok, "whitespace cleaning as whitespace_clean(basic_clean(...))", "see above");
}

/* Trains a small unigram model on ASCII prompts with spm_train; returns 0
 * and the model path, or -1. */
static int train_tokenizer(char *model, size_t n)
{
    char corpus[512], cmd[2048];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", tmpdir);
    FILE *f = fopen(corpus, "w");
    if (!f)
        return -1;
    static const char *const w[] = {"a", "cat", "walks", "in", "the", "rain", "at", "night",
                                    "neon", "city", "camera", "pans", "slowly", "over", "sea",
                                    "golden", "light", "forest", "mist", "robot", "dances"};
    unsigned s = 12345;
    for (int l = 0; l < 400; l++) {
        int k = 3 + (int)(s % 12);
        for (int i = 0; i < k; i++) {
            s = s * 1103515245u + 12345u;
            fprintf(f, "%s%s", i ? " " : "", w[(s >> 16) % (sizeof w / sizeof w[0])]);
        }
        fputc('\n', f);
    }
    fclose(f);
    snprintf(model, n, "%s/tok.model", tmpdir);
    snprintf(cmd, sizeof cmd,
             "spm_train --input=%s --model_prefix=%s/tok --vocab_size=60 --model_type=unigram "
             "--hard_vocab_limit=false --minloglevel=2 >/dev/null 2>&1",
             corpus, tmpdir);
    return system(cmd) == 0 && access(model, R_OK) == 0 ? 0 : -1;
}

static void test_text_stage(struct ctx *c)
{
    char model[512];
    if (!CHECK(train_tokenizer(model, sizeof model) == 0, "spm_train makes a test tokenizer",
               "spm_train failed (package sentencepiece)"))
        return;
    struct reel_err err = {0};
    struct reel_tokenizer *tok = NULL;
    int rc = reel_tokenizer_open(model, &tok, &err);
    if (!CHECK(rc == 0, "tokenizer opens", "%s", err.msg))
        return;
    struct reel_tokenizer *bad = NULL;
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.model", tmpdir);
    rc = reel_tokenizer_open(missing, &bad, &err);
    CHECK(rc == REEL_E_MODEL && bad == NULL && strstr(err.msg, "missing.model"),
          "a missing tokenizer model is refused, named", "rc %d: %s", rc, err.msg);

    struct reel_text_cache *cache = reel_text_cache_create(1 << 20);
    const int text_len = 12;
    struct reel_text_encoder_opts o = {.weights = c->w, .weights_id = "golden-umt5",
                                       .tokenizer_path = model, .text_len = text_len,
                                       .be = c->be, .cache = cache};
    struct reel_text_encoder *enc = NULL;
    memset(&err, 0, sizeof err);
    rc = reel_text_encoder_create(&o, &enc, &err);
    if (!CHECK(rc == 0, "text encoder creates", "%s", err.msg)) {
        reel_tokenizer_close(tok);
        reel_text_cache_destroy(cache);
        return;
    }
    CHECK(reel_text_encoder_dim(enc) == c->cfg.dim, "text encoder dim", "%d",
          reel_text_encoder_dim(enc));

    /* tokens: cleaned pieces + EOS */
    const char *prompt = "  a cat\twalks in the\n\n rain  ";
    int32_t *ids = NULL, *want = NULL;
    int64_t n = 0;
    size_t wn = 0;
    const char *clean = "a cat walks in the rain";
    rc = reel_text_tokenize(enc, prompt, &ids, &n, &err);
    if (!rc)
        rc = reel_tokenizer_encode(tok, clean, strlen(clean), &want, &wn, &err);
    int32_t eos = reel_tokenizer_eos_id(tok);
    int same = rc == 0 && n == (int64_t)wn + 1 && ids[n - 1] == eos &&
               !memcmp(ids, want, sizeof *ids * wn);
    CHECK(same, "prompt ids = pieces of the cleaned prompt + EOS", "rc %d, %lld ids vs %zu",
          rc, (long long)n, wn);
    free(want);

    /* the embeddings: the padded, masked encoder run cut to the real length */
    float *emb = NULL;
    int64_t len = 0;
    rc = reel_text_encode(enc, prompt, &emb, &len, &err);
    if (CHECK(rc == 0 && len == n, "prompt encodes", "rc %d len %lld: %s", rc, (long long)len,
              err.msg)) {
        int32_t pad_ids[64] = {0};
        uint8_t pad_mask[64] = {0};
        for (int64_t i = 0; i < n; i++) {
            pad_ids[i] = ids[i];
            pad_mask[i] = 1;
        }
        float *full = forward(c, pad_ids, pad_mask, text_len, &err);
        double d = full ? max_diff(emb, full, n * c->cfg.dim) : INFINITY;
        CHECK(d <= 1e-5, "embeddings = padded masked run, first real rows", "max abs %.3g", d);
        free(full);
    }
    free(ids);

    /* the cache: same prompt, same ids after cleaning, then a new prompt */
    float *again = NULL, *again2 = NULL, *other = NULL;
    int64_t l2 = 0, l3 = 0, l4 = 0;
    reel_text_encode(enc, prompt, &again, &l2, &err);
    reel_text_encode(enc, "a cat walks in the rain", &again2, &l3, &err);
    reel_text_encode(enc, "a robot dances", &other, &l4, &err);
    size_t entries = 0;
    uint64_t hits = 0, misses = 0;
    reel_text_cache_stats(cache, &entries, &hits, &misses);
    CHECK(again && again2 && emb && l2 == len && l3 == len &&
              !memcmp(again, emb, sizeof(float) * (size_t)(len * c->cfg.dim)) &&
              !memcmp(again2, emb, sizeof(float) * (size_t)(len * c->cfg.dim)),
          "cache returns the same rows for the same (cleaned) prompt", "lens %lld %lld",
          (long long)l2, (long long)l3);
    CHECK(hits == 2 && misses == 2 && entries == 2, "cache counts hits and misses",
          "hits %llu misses %llu entries %zu", (unsigned long long)hits,
          (unsigned long long)misses, entries);
    free(emb);
    free(again);
    free(again2);
    free(other);

    /* truncation: text_len ids at most, ending with EOS */
    char longp[2048] = "";
    for (int i = 0; i < 60; i++)
        strcat(longp, "golden light over the sea "); /* 26 bytes each */
    rc = reel_text_tokenize(enc, longp, &ids, &n, &err);
    CHECK(rc == 0 && n == text_len && ids[n - 1] == eos, "long prompt truncated to text_len",
          "%lld ids", (long long)n);
    free(ids);
    rc = reel_text_tokenize(enc, " \t ", &ids, &n, &err);
    CHECK(rc == 0 && n == 1 && ids[0] == eos, "blank prompt is EOS alone", "%lld ids",
          (long long)n);
    free(ids);
    rc = reel_text_encode(enc, "", &emb, &len, &err);
    CHECK(rc == 0 && len == 1, "empty prompt encodes to one row", "rc %d len %lld", rc,
          (long long)len);
    free(emb);

    /* Wan's negative prompt: the bytes of shared_config.py (403 bytes of
     * UTF-8, 137 code points) */
    const char *neg = reel_wan_negative_prompt;
    size_t cps = 0;
    for (const char *p = neg; *p; p++)
        cps += ((unsigned char)*p & 0xC0) != 0x80;
    CHECK(strlen(neg) == 403 && cps == 137 && !strncmp(neg, "色调艳丽，过曝，静态", strlen("色调艳丽，过曝，静态")) &&
              strstr(neg, "背景人很多，倒着走") && neg[strlen(neg) - 1] != ' ',
          "default negative prompt constant", "%zu bytes", strlen(neg));
    rc = reel_text_encode(enc, neg, &emb, &len, &err);
    CHECK(rc == 0 && len >= 1 && len <= text_len, "negative prompt encodes", "rc %d: %s", rc,
          err.msg);
    free(emb);
    reel_text_encoder_destroy(enc);

    /* a cache with room for one of the two prompts keeps the most recent */
    const char *ps[3] = {"a cat", "a robot", "a cat"};
    int64_t most = 0;
    o.cache = NULL;
    enc = NULL;
    if (reel_text_encoder_create(&o, &enc, &err) == 0)
        for (int i = 0; i < 2; i++) {
            rc = reel_text_tokenize(enc, ps[i], &ids, &n, &err);
            most = rc == 0 && n > most ? n : most;
            free(ids);
        }
    reel_text_encoder_destroy(enc);
    /* one entry: its rows plus a key of the id string and the ids */
    struct reel_text_cache *small =
        reel_text_cache_create(sizeof(float) * (size_t)(most * c->cfg.dim) + 64);
    o.cache = small;
    enc = NULL;
    if (reel_text_encoder_create(&o, &enc, &err) == 0) {
        for (int i = 0; i < 3; i++) {
            reel_text_encode(enc, ps[i], &emb, &len, &err);
            free(emb);
        }
        reel_text_cache_stats(small, &entries, &hits, &misses);
        CHECK(entries == 1 && hits == 0 && misses == 3, "cache evicts the least recent",
              "entries %zu hits %llu", entries, (unsigned long long)hits);
    }
    reel_text_encoder_destroy(enc);
    reel_text_cache_destroy(small);

    /* a cache with a weight set needs an identity */
    o.cache = cache;
    o.weights_id = NULL;
    enc = NULL;
    memset(&err, 0, sizeof err);
    rc = reel_text_encoder_create(&o, &enc, &err);
    CHECK(rc == REEL_E_SPEC && !enc, "a cache without a weights identity is refused",
          "rc %d", rc);
    reel_text_encoder_destroy(enc);
    reel_text_cache_destroy(cache);
    reel_tokenizer_close(tok);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/reel_umt5t_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "temp dir", "mkdtemp failed");
        TEST_EXIT();
    }
    struct ctx c = {0};
    struct reel_err err = {0};
    char path[512], msg[256];
    snprintf(path, sizeof path, "%s/umt5_encoder.safetensors", golden_dir());
    int rc = reel_st_open(path, &c.f, &err);
    if (!rc)
        rc = reel_weights_from_file(c.f, "weights.", &c.w, &err);
    const char *cj = c.f ? reel_st_meta(c.f, "config") : NULL;
    struct reel_json *j = cj ? reel_json_parse(cj, strlen(cj), msg, sizeof msg) : NULL;
    if (!rc)
        rc = j ? reel_umt5_config_from_json(j, &c.cfg, &err) : -1;
    reel_json_free(j);
    c.be = reel_backend_cpu_create(2);
    if (!rc && c.be)
        rc = reel_umt5_create(&c.cfg, c.w, c.be, &c.m, &err);
    const struct reel_tensor *ti = c.f ? reel_st_find(c.f, "in.ids") : NULL;
    const struct reel_tensor *tm = c.f ? reel_st_find(c.f, "in.mask") : NULL;
    if (CHECK(rc == 0 && c.be && ti && tm && reel_tensor_numel(ti) <= 64,
              "golden umt5_encoder loads", "%s", err.msg)) {
        c.L = reel_tensor_numel(ti);
        for (int64_t i = 0; i < c.L; i++) {
            int64_t a, b;
            memcpy(&a, (const char *)ti->data + 8 * i, 8);
            memcpy(&b, (const char *)tm->data + 8 * i, 8);
            c.ids[i] = (int32_t)a;
            c.mask[i] = b != 0;
            c.n_real += b != 0;
        }
        test_golden(&c);
        test_buckets(&c);
        test_mask(&c);
        test_errors(&c);
        test_clean();
        test_text_stage(&c);
    }
    reel_umt5_destroy(c.m);
    reel_weights_close(c.w);
    reel_st_close(c.f);
    reel_backend_destroy(c.be);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmpdir);
    TEST_EXIT();
}
