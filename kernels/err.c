/* Error message filling for struct reel_err. */
#include "kernels/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int reel_errf(struct reel_err *err, int code, const char *fmt, ...)
{
    if (err && err->code == REEL_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void reel_err_prefix(struct reel_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char head[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation of an over-long message is acceptable; keep the head. */
    size_t hl = strnlen(head, sizeof err->msg - 1);
    memcpy(err->msg, head, hl);
    size_t room = sizeof err->msg - 1 - hl;
    size_t ol = strnlen(old, room);
    memcpy(err->msg + hl, old, ol);
    err->msg[hl + ol] = 0;
}
