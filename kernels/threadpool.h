/* A fixed pool of worker threads with a blocking parallel-for. */
#ifndef REEL_THREADPOOL_H
#define REEL_THREADPOOL_H

#include <stdint.h>

struct reel_pool;

/* nthreads <= 0 means one per online CPU. A pool of 1 runs work inline. */
struct reel_pool *reel_pool_create(int nthreads);
void reel_pool_destroy(struct reel_pool *p);
int reel_pool_threads(const struct reel_pool *p);

/* Calls fn(ctx, begin, end, worker) over [0, n) split into chunks of at least
 * `grain` items, and returns when all are done. worker is in [0, threads). */
typedef void (*reel_pool_fn)(void *ctx, int64_t begin, int64_t end, int worker);
void reel_pool_for(struct reel_pool *p, int64_t n, int64_t grain, reel_pool_fn fn, void *ctx);

#endif
