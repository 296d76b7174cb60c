/* SentencePiece tokenizer (the umT5 spiece.model, or any .model file) behind
 * a C API; implemented in stages/tokenizer_spm.cc over libsentencepiece, so
 * the ids are exactly those of `spm_encode --output_format=id`. */
#ifndef REEL_TOKENIZER_H
#define REEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct reel_tokenizer;

/* Loads a SentencePiece model file. Errors (REEL_E_MODEL) name the file. */
int reel_tokenizer_open(const char *path, struct reel_tokenizer **out, struct reel_err *err);
void reel_tokenizer_close(struct reel_tokenizer *tok);

/* Encodes text[0..len) (UTF-8; need not be NUL-terminated) into a malloc'd
 * array of *n ids (the caller frees it; an empty result still allocates).
 * No special token is added. */
int reel_tokenizer_encode(const struct reel_tokenizer *tok, const char *text, size_t len,
                          int32_t **ids, size_t *n, struct reel_err *err);

/* Special ids of the model; -1 where the model defines none (spm_train's
 * default pad). umT5: pad 0, eos 1, unk 2. */
int32_t reel_tokenizer_eos_id(const struct reel_tokenizer *tok);
int32_t reel_tokenizer_pad_id(const struct reel_tokenizer *tok);
int32_t reel_tokenizer_unk_id(const struct reel_tokenizer *tok);
/* Number of pieces in the vocabulary. */
int32_t reel_tokenizer_vocab_size(const struct reel_tokenizer *tok);

/* `reel tokenize --model FILE [--eos]` (pipeline/tokenize_cmd.c). */
int reel_tokenize_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
