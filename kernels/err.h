/* Error values: every fallible function returns one of these codes and fills a
 * struct reel_err once; the CLI prints the message once and maps the code to
 * the exit status. */
#ifndef REEL_ERR_H
#define REEL_ERR_H

enum reel_status {
    REEL_OK = 0,
    REEL_E_OTHER = 1,  /* anything else (internal, out of memory) */
    REEL_E_SPEC = 2,   /* bad job spec or command-line arguments */
    REEL_E_MODEL = 3,  /* model / weights problem */
    REEL_E_MEDIA = 4,  /* media or file I/O problem */
};

struct reel_err {
    int code;
    char msg[1024];
};

/* Fills err (if not already filled) and returns code, so callers can write
 * `return reel_errf(err, REEL_E_MODEL, "...")`. The first message wins:
 * the innermost failure is the one that names the real cause. */
int reel_errf(struct reel_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an already-filled message with context ("file.safetensors: ..."). */
void reel_err_prefix(struct reel_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
