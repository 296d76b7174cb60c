/* Minimal test protocol shared by every tests/test_*.c binary: each check
 * prints "ok - NAME" or "FAIL - NAME: detail"; the binary exits 1 if any
 * check failed. tests/run_tests.sh counts these lines. */
#ifndef REEL_TEST_H
#define REEL_TEST_H

#include <stdarg.h>
#include <stdio.h>

static int reel_test_fails;

__attribute__((format(printf, 3, 4), unused)) static int reel_test_report(int ok,
                                                                          const char *name,
                                                                          const char *fmt, ...)
{
    if (ok) {
        printf("ok - %s\n", name);
    } else {
        reel_test_fails++;
        printf("FAIL - %s: ", name);
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    fflush(stdout);
    return ok;
}

/* CHECK(cond, name, fmt, ...): one reported check; the detail is printed on failure. */
#define CHECK(cond, name, ...) reel_test_report(!!(cond), name, __VA_ARGS__)
#define TEST_EXIT() return reel_test_fails ? 1 : 0

#endif
