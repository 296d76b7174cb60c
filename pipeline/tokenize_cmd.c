/* `reel tokenize --model FILE [--eos]`: stdin lines to token ids, one output
 * line per input line, byte for byte what `spm_encode --model FILE
 * --output_format=id` prints (the test compares the two on a large corpus).
 * Lines end at '\n' only, as std::getline splits them; an empty line
 * encodes to nothing and prints an empty line (or the lone eos id with
 * --eos, as spm_encode --extra_options=eos does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/tokenizer.h"

static void tokenize_usage(FILE *out)
{
    fprintf(out,
            "usage: reel tokenize --model FILE [--eos] < TEXT\n"
            "\n"
            "Encodes each line of standard input with the SentencePiece model FILE and\n"
            "prints its token ids separated by spaces, one line per input line (the\n"
            "output of spm_encode --output_format=id).\n"
            "\n"
            "  --model FILE   SentencePiece model (for umT5: spiece.model)\n"
            "  --eos          append the end-of-sentence id to every line\n");
}

int reel_tokenize_main(int argc, char **argv)
{
    const char *model = NULL;
    int eos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            tokenize_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--eos")) {
            eos = 1;
        } else {
            fprintf(stderr, "reel tokenize: unknown argument '%s'\n", argv[i]);
            tokenize_usage(stderr);
            return REEL_E_SPEC;
        }
    }
    if (!model) {
        fprintf(stderr, "reel tokenize: --model FILE is required\n");
        tokenize_usage(stderr);
        return REEL_E_SPEC;
    }
    struct reel_err err = {0};
    struct reel_tokenizer *tok = NULL;
    if (reel_tokenizer_open(model, &tok, &err)) {
        fprintf(stderr, "reel tokenize: %s\n", err.msg);
        return err.code;
    }
    int32_t eos_id = reel_tokenizer_eos_id(tok);
    if (eos && eos_id < 0) {
        fprintf(stderr, "reel tokenize: %s defines no end-of-sentence id\n", model);
        reel_tokenizer_close(tok);
        return REEL_E_MODEL;
    }

    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        int32_t *ids = NULL;
        size_t n = 0;
        if (reel_tokenizer_encode(tok, line, len, &ids, &n, &err)) {
            fprintf(stderr, "reel tokenize: %s\n", err.msg);
            rc = err.code;
            break;
        }
        for (size_t i = 0; i < n; i++)
            printf(i ? " %d" : "%d", (int)ids[i]);
        if (eos)
            printf(n ? " %d" : "%d", (int)eos_id);
        putchar('\n');
        free(ids);
    }
    free(line);
    reel_tokenizer_close(tok);
    if (!rc && (ferror(stdin) || fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "reel tokenize: read or write error\n");
        rc = REEL_E_MEDIA;
    }
    return rc;
}
