/* The text stage: prompt -> umT5 context [L, dim], as Wan's T5EncoderModel
 * does it (HuggingfaceTokenizer(seq_len=text_len, clean='whitespace') with
 * add_special_tokens, the encoder, then `u[:v]` to the real length), plus an
 * in-memory cache of embeddings keyed by (model identity, prompt). */
#ifndef REEL_TEXT_ENCODE_H
#define REEL_TEXT_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/err.h"
#include "kernels/safetensors.h"

/* Wan's standard negative prompt (wan/configs/shared_config.py
 * sample_neg_prompt, identical in Wan2.1 and Wan2.2): what a job's
 * `negative_prompt: default` stands for. UTF-8. */
extern const char reel_wan_negative_prompt[];

/* Wan's clean='whitespace' (tokenizers.py whitespace_clean(basic_clean)):
 * runs of Unicode whitespace become one space, then both ends are stripped.
 * basic_clean's ftfy.fix_text and double html.unescape are NOT reproduced:
 * a prompt with mojibake or HTML entities ("&amp;") tokenizes as written.
 * Returns a malloc'd NUL-terminated string (NULL on out of memory). */
char *reel_text_clean_whitespace(const char *text, size_t len);

/* ---------------------------------------------------------------- cache */

/* Embeddings of recent prompts, least recently used dropped first once the
 * total exceeds max_bytes. Not thread-safe: one per pipeline thread, or a
 * lock around it. */
struct reel_text_cache;
struct reel_text_cache *reel_text_cache_create(size_t max_bytes);
void reel_text_cache_destroy(struct reel_text_cache *c);
/* Entries held, and the lookups that hit / missed so far. */
void reel_text_cache_stats(const struct reel_text_cache *c, size_t *entries, uint64_t *hits,
                           uint64_t *misses);

/* -------------------------------------------------------------- encoder */

struct reel_text_encoder_opts {
    /* the umT5 weights: a path (file, shard index or directory; Wan or HF
     * T5 naming), or an open weight set that outlives the encoder */
    const char *weights_path;
    const struct reel_weights *weights;
    /* identity of the weights for the cache; NULL with weights_path: the
     * path's real path, size and modification time. Required when the
     * weights come as a set and a cache is given. */
    const char *weights_id;
    const char *tokenizer_path; /* SentencePiece model (umT5: spiece.model) */
    int text_len;               /* tokens kept, EOS included (Wan: 512) */
    struct reel_backend *be;    /* NULL: a CPU backend of `threads` threads is made */
    int threads;
    struct reel_text_cache *cache; /* optional, not owned */
};

struct reel_text_encoder;

int reel_text_encoder_create(const struct reel_text_encoder_opts *o,
                             struct reel_text_encoder **out, struct reel_err *err);
void reel_text_encoder_destroy(struct reel_text_encoder *enc);
/* Width of one embedding row (umT5-XXL: 4096). */
int reel_text_encoder_dim(const struct reel_text_encoder *enc);

/* The ids Wan feeds the encoder, before padding: the whitespace-cleaned
 * prompt's pieces cut to text_len - 1, then EOS (so never more than
 * text_len and never empty). *ids is malloc'd. */
int reel_text_tokenize(const struct reel_text_encoder *enc, const char *prompt, int32_t **ids,
                       int64_t *n, struct reel_err *err);

/* *emb: malloc'd [*len, dim] f32, the context of the prompt cut to its real
 * length (the rows of T5EncoderModel's `u[:v]`). The encoder runs on the
 * real tokens only: the reference's padding keys are masked to zero weight,
 * so the padding cannot change these rows. */
int reel_text_encode(struct reel_text_encoder *enc, const char *prompt, float **emb,
                     int64_t *len, struct reel_err *err);

#endif
