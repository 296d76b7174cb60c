/* The reel command line: dispatches a subcommand to its module. Exit status:
 * 0 done, 2 bad job spec or arguments, 3 model/weights problem,
 * 4 media/IO problem, 1 anything else. */
#include <stdio.h>
#include <string.h>

#include "pipeline/check.h"
#include "pipeline/job.h"
#include "pipeline/init_weights.h"
#include "pipeline/spec.h"
#include "pipeline/version.h"
#include "stages/tokenizer.h"

struct reel_command {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
};

static const struct reel_command commands[] = {
    {"render", "render a job spec to a clip (resumable through its work directory)", reel_render_main},
    {"check", "run golden reference files and compare every output tensor", reel_check_main},
    {"validate", "check job specs: every error as file:line:col: key.path: message", reel_validate_main},
    {"info", "describe a model: architecture, parameters, defaults, weight files", reel_info_main},
    {"tokenize", "print the SentencePiece token ids of each line of stdin", reel_tokenize_main},
    {"init-weights", "write seeded placeholder weights for an untrained model config", reel_init_weights_main},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: reel COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n  reel --version   print the version\n"
            "  reel COMMAND --help   help on one command\n"
            "\nexit status: 0 done, 2 bad job spec or arguments, 3 model/weights problem,\n"
            "4 media/IO problem, 1 anything else\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("reel %s\n", REEL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "reel: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
