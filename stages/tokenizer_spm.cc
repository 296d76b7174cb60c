// The C API of stages/tokenizer.h over sentencepiece::SentencePieceProcessor.
// C++ only because SentencePiece has no C API; no exception or C++ type
// crosses the header, and every failure comes back as a reel error.

// err.h has no C++ guard of its own: give its functions C linkage here.
extern "C" {
#include "kernels/err.h"
}
#include "stages/tokenizer.h"

#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

extern "C" {

struct reel_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
};

int reel_tokenizer_open(const char *path, struct reel_tokenizer **out, struct reel_err *err)
{
    *out = nullptr;
    reel_tokenizer *tok = new (std::nothrow) reel_tokenizer;
    if (!tok)
        return reel_errf(err, REEL_E_OTHER, "out of memory");
    try {
        const auto st = tok->sp.Load(std::string_view(path));
        if (!st.ok()) {
            int rc = reel_errf(err, REEL_E_MODEL, "%s: not a SentencePiece model: %s", path,
                               st.ToString().c_str());
            delete tok;
            return rc;
        }
    } catch (const std::exception &e) {
        delete tok;
        return reel_errf(err, REEL_E_MODEL, "%s: cannot load the SentencePiece model: %s", path,
                         e.what());
    }
    *out = tok;
    return REEL_OK;
}

void reel_tokenizer_close(struct reel_tokenizer *tok)
{
    delete tok;
}

int reel_tokenizer_encode(const struct reel_tokenizer *tok, const char *text, size_t len,
                          int32_t **ids, size_t *n, struct reel_err *err)
{
    *ids = nullptr;
    *n = 0;
    std::vector<int> v;
    try {
        const auto st = tok->sp.Encode(std::string_view(text ? text : "", text ? len : 0), &v);
        if (!st.ok())
            return reel_errf(err, REEL_E_SPEC, "tokenizer: %s", st.ToString().c_str());
    } catch (const std::bad_alloc &) {
        return reel_errf(err, REEL_E_OTHER, "tokenizer: out of memory");
    } catch (const std::exception &e) {
        return reel_errf(err, REEL_E_OTHER, "tokenizer: %s", e.what());
    }
    int32_t *p = static_cast<int32_t *>(std::malloc(sizeof(int32_t) * (v.size() ? v.size() : 1)));
    if (!p)
        return reel_errf(err, REEL_E_OTHER, "tokenizer: out of memory");
    for (size_t i = 0; i < v.size(); i++)
        p[i] = static_cast<int32_t>(v[i]);
    *ids = p;
    *n = v.size();
    return REEL_OK;
}

int32_t reel_tokenizer_eos_id(const struct reel_tokenizer *tok)
{
    return tok->sp.eos_id();
}

int32_t reel_tokenizer_pad_id(const struct reel_tokenizer *tok)
{
    return tok->sp.pad_id();
}

int32_t reel_tokenizer_unk_id(const struct reel_tokenizer *tok)
{
    return tok->sp.unk_id();
}

int32_t reel_tokenizer_vocab_size(const struct reel_tokenizer *tok)
{
    return tok->sp.GetPieceSize();
}

} // extern "C"
