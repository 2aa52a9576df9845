/* orphan.c: reclaiming orphaned jobs (asyncjob_reclaim_orphans(3)), part of the API layer.
 * A paused job whose wait ctx is freed will never be resumed by libssl (SSL_free() frees
 * the ctx and forgets the job): when reclaiming is on, ASYNC_WAIT_CTX_free() takes such a
 * job of the calling thread out of its pool's count, gives its stack's pages back, and
 * quarantines it; after ORPHAN_QUARANTINE_NS it gets a fresh context on the same stack and
 * joins the idle jobs. Its frames never run again (doc/DESIGN.md, "Orphaned jobs"). */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "debug_registry.h"
#include "orphan.h"
#include "pool.h"
#include "wait_ctx.h"

/* How long a reclaimed job's stack and handle stay out of use: a late completion may still
 * write to the stack (a page given back reads as zeros and takes the write), and a late
 * wake-up may still call ASYNC_get_wait_ctx() on the handle (it answers NULL). */
#define ORPHAN_QUARANTINE_NS 1000000000ull

int orphan_reclaim;
static pthread_once_t orphan_env_once = PTHREAD_ONCE_INIT;

/* ASYNCJOB_RECLAIM_ORPHANS=1 or 0 overrides the library's default (on under the drop-in). */
static void orphan_read_env(void)
{
    const char *v = getenv("ASYNCJOB_RECLAIM_ORPHANS");
    if (v != NULL && (strcmp(v, "0") == 0 || strcmp(v, "1") == 0))
        __atomic_store_n(&orphan_reclaim, *v == '1', __ATOMIC_RELAXED);
}

static uint64_t orphan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A quarantined job leaves: its ctx reference goes (perhaps the ctx with it), and it is
 * made fresh for the pool, or destroyed if the pool is gone or full. */
static void orphan_release(struct pool_thread *pt, ASYNC_JOB *job, int reuse)
{
    wait_ctx_detach(job);
    /* The quarantine is flushed when the pool is cleaned up: a job here is of this pool. */
    if (reuse && (pt->max_size == 0 || pt->count < pt->max_size)) {
        fiber_reset(&job->fiber);
        pt->count++;
        job->orphan = 0;
        job->pool_gen = pt->pool_gen;
        pool_release(pt, job);
    } else {
        /* A fresh context ends cleanly through pool_job_quit, as an idle job does. */
        fiber_reset(&job->fiber);
        pool_destroy_job(job);
    }
}

/* Release the jobs that have been in quarantine long enough (all of them if `all`). */
static void orphan_drain(struct pool_thread *pt, int all)
{
    uint64_t now = all ? 0 : orphan_now();
    while (pt->quarantine != NULL &&
           (all || now - pt->quarantine->orphaned_ns >= ORPHAN_QUARANTINE_NS)) {
        ASYNC_JOB *job = pt->quarantine;
        pt->quarantine = job->next_idle;
        if (pt->quarantine == NULL)
            pt->quarantine_tail = NULL;
        orphan_release(pt, job, !all);
    }
}

static void orphan_flush(struct pool_thread *pt)
{
    orphan_drain(pt, 1);
}

void orphan_drain_due(struct pool_thread *pt)
{
    if (pt->quarantine != NULL && pt->current == NULL)
        orphan_drain(pt, 0);
}

/* A paused job of the calling thread's pool that waits with `ctx`. */
struct orphan_match {
    const ASYNC_WAIT_CTX *ctx;
    const struct pool_thread *pt;
};

static int orphan_matches(const struct debug_link *l, const void *arg)
{
    const struct orphan_match *m = arg;
    const ASYNC_JOB *job = container_of(l, ASYNC_JOB, dbg_link);
    return job->waitctx == m->ctx && job->active_tid == m->pt->thread_id &&
           job != m->pt->current;
}

/* Take `job`, paused and forgotten, out of use: never resumed, its stack's pages given
 * back, its slot in the pool free, in quarantine with its ctx reference. */
static void orphan_quarantine(struct pool_thread *pt, ASYNC_JOB *job)
{
    job->active_tid = POOL_NOT_ACTIVE; /* a resume with the stale handle is refused */
    if (job->heap_args != NULL) {
        alloc_heap_free(job->heap_args);
        job->heap_args = NULL;
    }
    stack_discard(&job->fiber.stack);
    if (!job->orphan)
        pt->count--;
    job->orphan = 1;  /* out of the count (pool.h) */
    job->own_eh = 0;  /* its exception state goes with its frames; the thread has the
                       * dispatcher's */
    job->orphaned_ns = orphan_now();
    job->next_idle = NULL;
    if (pt->quarantine_tail != NULL)
        pt->quarantine_tail->next_idle = job;
    else
        pt->quarantine = job;
    pt->quarantine_tail = job;
    pool_quarantine_flush = orphan_flush;
}

void orphan_reclaim_ctx(ASYNC_WAIT_CTX *ctx)
{
    pthread_once(&orphan_env_once, orphan_read_env);
    if (!__atomic_load_n(&orphan_reclaim, __ATOMIC_RELAXED))
        return;
    struct pool_thread *pt = pool_self();
    if (!pt->initialised)
        return;
    struct orphan_match m = {ctx, pt};
    struct debug_link *l;
    while (ctx->refs > 1 && (l = debug_registry_find_wait(orphan_matches, &m)) != NULL)
        orphan_quarantine(pt, container_of(l, ASYNC_JOB, dbg_link));
    orphan_drain_due(pt);
}

ASYNCJOB_API int asyncjob_reclaim_orphans(int on)
{
    pthread_once(&orphan_env_once, orphan_read_env);
    return __atomic_exchange_n(&orphan_reclaim, on != 0, __ATOMIC_RELAXED);
}
