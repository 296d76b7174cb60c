/* Progress bars and JSON progress lines. */
#include "pipeline/progress.h"

#include <time.h>
#include <unistd.h>

double reel_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void reel_progress_init(struct reel_progress *p, FILE *out, int json)
{
    p->out = out;
    p->tty = !json && isatty(fileno(out));
    p->stage = NULL;
    p->total = 0;
    p->start = reel_now();
}

void reel_progress_stage(struct reel_progress *p, const char *stage, int64_t total)
{
    p->stage = stage;
    p->total = total;
    p->start = reel_now();
    reel_progress_step(p, 0);
}

void reel_progress_step(struct reel_progress *p, int64_t step)
{
    double el = reel_now() - p->start;
    if (!p->tty) {
        fprintf(p->out, "{\"stage\":\"%s\",\"step\":%lld,\"total\":%lld,\"elapsed\":%.3f}\n",
                p->stage, (long long)step, (long long)p->total, el);
        fflush(p->out);
        return;
    }
    const int width = 30;
    int fill = p->total > 0 ? (int)(width * step / p->total) : 0;
    double rate = el > 0 ? (double)step / el : 0;
    double eta = rate > 0 ? (double)(p->total - step) / rate : 0;
    fprintf(p->out, "\r%-8s [", p->stage);
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '#' : '.', p->out);
    fprintf(p->out, "] %lld/%lld  %.2f it/s  ETA %.0fs   ", (long long)step,
            (long long)p->total, rate, eta);
    fflush(p->out);
}

void reel_progress_done(struct reel_progress *p, int skipped)
{
    double el = reel_now() - p->start;
    if (!p->tty) {
        fprintf(p->out, "{\"stage\":\"%s\",\"done\":true,\"skipped\":%s,\"elapsed\":%.3f}\n",
                p->stage, skipped ? "true" : "false", el);
    } else if (skipped) {
        fprintf(p->out, "\r%-8s done earlier (work directory)\n", p->stage);
    } else {
        fprintf(p->out, "\n");
    }
    fflush(p->out);
}
