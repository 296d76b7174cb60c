/* The worker pool behind every parallel kernel: n-1 pthreads plus the
 * calling thread (worker 0), handing out chunks of a parallel-for through an
 * atomic counter. Workers sleep on a condition variable between jobs rather
 * than spin, because the cores are shared with OpenBLAS and other processes. */
#include "kernels/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct reel_pool {
    int nthreads;
    pthread_t *workers; /* nthreads - 1 */

    pthread_mutex_t run_lock; /* one job at a time when several threads share a pool */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    uint64_t generation; /* bumped per job; workers wait for a change */
    int unfinished;      /* workers that have not yet checked out of the job */
    int shutdown;

    reel_pool_fn fn;
    void *ctx;
    int64_t n, chunk;
    atomic_int_fast64_t next;
};

/* Which pool (if any) this thread is working for, so a nested parallel-for
 * from inside a job runs inline instead of waiting on itself. */
static _Thread_local struct reel_pool *tl_pool;
static _Thread_local int tl_worker;

static void run_chunks(struct reel_pool *p, int worker)
{
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed);
        if (b >= p->n)
            break;
        int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
        p->fn(p->ctx, b, e, worker);
    }
}

struct worker_arg {
    struct reel_pool *pool;
    int id;
};

static void *worker_main(void *argp)
{
    struct worker_arg arg = *(struct worker_arg *)argp;
    free(argp);
    struct reel_pool *p = arg.pool;
    tl_pool = p;
    tl_worker = arg.id;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->shutdown && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->shutdown)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        run_chunks(p, arg.id);
        pthread_mutex_lock(&p->lock);
        if (--p->unfinished == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int online_cpus(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

struct reel_pool *reel_pool_create(int nthreads)
{
    if (nthreads <= 0)
        nthreads = online_cpus();
    if (nthreads > 256)
        nthreads = 256;
    struct reel_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nthreads = 1;
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (nthreads > 1) {
        p->workers = calloc((size_t)nthreads - 1, sizeof *p->workers);
        if (!p->workers) {
            reel_pool_destroy(p);
            return NULL;
        }
        /* If the system refuses threads, run with what we got. */
        for (int i = 1; i < nthreads; i++) {
            struct worker_arg *arg = malloc(sizeof *arg);
            if (!arg)
                break;
            arg->pool = p;
            arg->id = i;
            if (pthread_create(&p->workers[i - 1], NULL, worker_main, arg) != 0) {
                free(arg);
                break;
            }
            p->nthreads++;
        }
    }
    return p;
}

void reel_pool_destroy(struct reel_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads - 1; i++)
        pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->run_lock);
    free(p);
}

int reel_pool_threads(const struct reel_pool *p)
{
    return p ? p->nthreads : 1;
}

void reel_pool_for(struct reel_pool *p, int64_t n, int64_t grain, reel_pool_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (!p || tl_pool == p) {
        /* No pool, or nested inside one of this pool's jobs: the workers are
         * busy (possibly waiting on us), so do it here. */
        fn(ctx, 0, n, p ? tl_worker : 0);
        return;
    }
    if (p->nthreads == 1 || n <= grain) {
        pthread_mutex_lock(&p->run_lock); /* worker 0's scratch may be in use by another caller */
        struct reel_pool *saved = tl_pool;
        int saved_worker = tl_worker;
        tl_pool = p;
        tl_worker = 0;
        fn(ctx, 0, n, 0);
        tl_pool = saved;
        tl_worker = saved_worker;
        pthread_mutex_unlock(&p->run_lock);
        return;
    }

    /* About 4 chunks per thread evens out uneven items and busy cores. */
    int64_t chunk = (n + 4 * (int64_t)p->nthreads - 1) / (4 * (int64_t)p->nthreads);
    if (chunk < grain)
        chunk = grain;

    pthread_mutex_lock(&p->run_lock);
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = chunk;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->unfinished = p->nthreads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    struct reel_pool *saved = tl_pool;
    int saved_worker = tl_worker;
    tl_pool = p;
    tl_worker = 0;
    run_chunks(p, 0);
    tl_pool = saved;
    tl_worker = saved_worker;

    pthread_mutex_lock(&p->lock);
    while (p->unfinished > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->run_lock);
}
