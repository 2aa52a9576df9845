/*
 * async.c: the ASYNC_* job API. Checks arguments and ownership, then drives the pool and
 * fiber layers. The hot path (resume, pause, pooled start and finish) takes no lock, makes
 * no system call and allocates nothing. It looks up thread-local state once per call, and
 * once more after a switch where a finished job goes back to the pool: a thread-local
 * address is never kept across a switch.
 */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pool.h"
#include "stack.h"
#include "wait_ctx.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/*
 * The hot path's out-of-line functions go to .text.hot, which the linker keeps together
 * ahead of the rest of the code. Elsewhere their addresses move whenever code placed
 * before them changes size, and the round trip's speed moved with them: slab-carved
 * stacks, which touch nothing on this path, cost 0.3-0.5 ns per round trip that way, and
 * nothing with the hot path apart (interleaved medians of 30 rounds: one benchmark
 * binary, each library build in random order).
 */
#define HOT_PATH __attribute__((hot))

/* Returns after a switch, one helper per site (FIBER_RETURN_HELPER in fiber.h). */
FIBER_RETURN_HELPER(async_ret_start_paused, ASYNC_PAUSE);
FIBER_RETURN_HELPER(async_ret_resume_paused, ASYNC_PAUSE);
FIBER_RETURN_HELPER_ARG(async_ret_resume_finished);
FIBER_RETURN_HELPER(async_ret_pause, 1);
FIBER_RETURN_HELPER_ARG(async_ret_pause_slow);

ASYNCJOB_API int ASYNC_init_thread(size_t max_size, size_t init_size)
{
    struct pool_thread *pt = pool_self();
    if (pt->current != NULL) {
        error_set(ASYNCJOB_EINJOB);
        return 0;
    }
    if (max_size != 0 && init_size > max_size) {
        error_set(ASYNCJOB_ERANGE);
        return 0;
    }
    return pool_init(pt, max_size, init_size);
}

ASYNCJOB_API void ASYNC_cleanup_thread(void)
{
    struct pool_thread *pt = pool_self();
    if (pt->current != NULL) {
        error_set(ASYNCJOB_EINJOB);
        return;
    }
    pool_cleanup(pt);
}

/*
 * Copy 1..POOL_INLINE_ARGS bytes with fixed-size moves: a call to memcpy through the PLT
 * costs more than the whole copy for the usual few bytes. Written without a loop so the
 * compiler cannot turn it back into a memcpy call.
 */
static inline __attribute__((always_inline)) void copy_small(unsigned char *d,
                                                            const unsigned char *s, size_t n)
{
    if (n >= 8) {
        /* The middle words, for 17..64 bytes; first and last word follow. */
        if (n > 16) {
            switch ((n - 9) >> 3) {
            case 6: memcpy(d + 48, s + 48, 8); __attribute__((fallthrough));
            case 5: memcpy(d + 40, s + 40, 8); __attribute__((fallthrough));
            case 4: memcpy(d + 32, s + 32, 8); __attribute__((fallthrough));
            case 3: memcpy(d + 24, s + 24, 8); __attribute__((fallthrough));
            case 2: memcpy(d + 16, s + 16, 8); __attribute__((fallthrough));
            default: memcpy(d + 8, s + 8, 8);
            }
        }
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8); /* the tail, overlapping what came before */
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        d[0] = s[0];
        d[n - 1] = s[n - 1];
        d[n / 2] = s[n / 2];
    }
}

/* Copy the start arguments into the job; 0 or an error code. */
static inline __attribute__((always_inline)) int copy_args(ASYNC_JOB *job, const void *args,
                                                          size_t size)
{
    if (args == NULL) {
        job->args = NULL;
        return 0;
    }
    if (likely(size <= POOL_INLINE_ARGS)) {
        job->args = job->inline_args;
        copy_small(job->inline_args, args, size);
        return 0;
    }
    job->args = job->heap_args = alloc_heap(size);
    if (job->args == NULL)
        return ASYNCJOB_ENOMEM;
    memcpy(job->args, args, size);
    return 0;
}

/* A finished job: hand over its result, detach it, give it back to the pool. */
static inline __attribute__((always_inline)) int job_done(struct pool_thread *pt,
                                                         ASYNC_JOB **jobp, ASYNC_JOB *job,
                                                         int *ret)
{
    if (ret != NULL)
        *ret = job->ret;
    *jobp = NULL;
    if (unlikely(job->heap_args != NULL)) {
        alloc_heap_free(job->heap_args);
        job->heap_args = NULL;
    }
    wait_ctx_detach(job);
    pool_release(pt, job);
    return ASYNC_FINISH;
}

/* The same, out of line, for the resume path where finishing is the rare case. */
static __attribute__((noinline)) int job_done_cold(ASYNC_JOB *job)
{
    return job_done(pool_self(), job->resume_handle, job, job->resume_ret);
}

/*
 * Switch into `job` and return it once it stops (paused or finished: its message tells
 * which). The caller has checked that the job may run on this thread now. The pointer
 * returned is `job` itself, carried through the switch: callers use it rather than
 * `job`, so that nothing has to live in a saved register across the switch. The job
 * learns why it runs from its own state (`cancelled`), not from a message.
 */
static inline __attribute__((always_inline)) ASYNC_JOB *enter_job(struct pool_thread *pt,
                                                                 ASYNC_JOB *job)
{
    pt->current = job; /* the job clears it as it leaves */
    /* The fiber is the job's first member. */
    return (ASYNC_JOB *)(void *)fiber_enter(&job->fiber);
}

/* enter_job() for a start. Most started jobs run to their end without pausing; this
 * switch and the job's final one leave the return-stack predictor as they found it, so
 * that ASYNC_start_job's own return is predicted (see fiber_enter_balanced()). */
static inline __attribute__((always_inline)) ASYNC_JOB *enter_new_job(struct pool_thread *pt,
                                                                     ASYNC_JOB *job)
{
    pt->current = job;
    return (ASYNC_JOB *)(void *)fiber_enter_balanced(&job->fiber);
}

/* After a switch into `job`: whether it paused rather than finished (job_main() marks a
 * finished job inactive before it leaves; no message travels either way). */
static inline int job_paused(const ASYNC_JOB *job)
{
    return job->active_tid != POOL_NOT_ACTIVE;
}

/* Why `job` cannot be resumed by this thread now, or 0 if it can. */
static int resume_error(const struct pool_thread *pt, const ASYNC_JOB *job)
{
    if (job->thread_id != pt->thread_id)
        return ASYNCJOB_EWRONGTHREAD;
    if (pt->current != NULL)
        return ASYNCJOB_ENESTED;
    if (job->active_tid != job->thread_id) /* active and not current: paused */
        return ASYNCJOB_ENOTPAUSED;
    return 0;
}

static __attribute__((noinline, cold)) int resume_refused(const ASYNC_JOB *job)
{
    error_set((enum asyncjob_error)resume_error(pool_self(), job));
    return ASYNC_ERR;
}

/*
 * Start `j`, a job just taken from the pool, and run it until it pauses or finishes.
 * The caller's handle and ret pointer wait in the job across the switch rather than in
 * saved registers.
 */
static inline __attribute__((always_inline)) int start_taken_job(
    struct pool_thread *pt, ASYNC_JOB *j, ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
    int (*func)(void *), void *args, size_t size)
{
    j->func = func;
    j->nopause = 0;
    j->resume_handle = job;
    j->resume_ret = ret;
    j->active_tid = pt->thread_id;
    wait_ctx_attach(ctx, j);
    /* Last, so that only `j` must survive the rare malloc for big arguments. */
    int err = copy_args(j, args, size);
    if (unlikely(err != 0)) {
        wait_ctx_detach(j);
        j->active_tid = POOL_NOT_ACTIVE;
        pool_release(pool_self(), j);
        error_set((enum asyncjob_error)err);
        return ASYNC_NO_JOBS;
    }
    j = enter_new_job(pt, j);
    if (likely(job_paused(j))) {
        *j->resume_handle = j;
        return async_ret_start_paused();
    }
    return job_done(pool_self(), j->resume_handle, j, j->resume_ret);
}

/* The pool had no idle job: make one (a slow path with system calls), then start it. */
static __attribute__((noinline)) int start_created_job(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx,
                                                       int *ret, int (*func)(void *),
                                                       void *args, size_t size)
{
    struct pool_thread *pt = pool_self();
    ASYNC_JOB *j = pool_acquire(pt);
    if (j == NULL)
        return ASYNC_NO_JOBS;
    return start_taken_job(pt, j, job, ctx, ret, func, args, size);
}

/* ASYNC_start_job with *job == NULL (or job NULL): take a job from the pool and run it.
 * Reached by a tail jump from ASYNC_start_job, which costs no return. */
static HOT_PATH __attribute__((noinline)) int start_new_job(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx,
                                                   int *ret, int (*func)(void *), void *args,
                                                   size_t size)
{
    if (unlikely(job == NULL)) {
        error_set(ASYNCJOB_EINVAL);
        return ASYNC_ERR;
    }
    struct pool_thread *pt = pool_self();
    if (unlikely(pt->current != NULL)) {
        error_set(ASYNCJOB_ENESTED);
        return ASYNC_ERR;
    }
    if (unlikely(func == NULL || (args != NULL && size == 0))) {
        error_set(ASYNCJOB_EINVAL);
        return ASYNC_ERR;
    }
    ASYNC_JOB *j = pool_take_idle(pt);
    if (unlikely(j == NULL))
        return start_created_job(job, ctx, ret, func, args, size);
    return start_taken_job(pt, j, job, ctx, ret, func, args, size);
}

/* ASYNC_start_job with a paused job: resume it. */
static inline __attribute__((always_inline)) int resume_job(ASYNC_JOB **job, ASYNC_JOB *j,
                                                            int *ret)
{
    struct pool_thread *pt = pool_self();
    /* active_tid matches only on the owner thread and only while the job is started;
     * being started and not current on its thread, it is paused. */
    if (unlikely(j->active_tid != pt->thread_id || pt->current != NULL))
        return resume_refused(j);
    j->resume_handle = job;
    j->resume_ret = ret;
    j = enter_job(pt, j);
    if (likely(job_paused(j)))
        return async_ret_resume_paused(); /* *job already names it */
    return async_ret_resume_finished(job_done_cold(j));
}

/*
 * The resume path is inlined here; a start leaves by a tail jump to start_new_job(),
 * which costs no return. (A frameless dispatcher jumping to an out-of-line resume_job()
 * saved 8 instructions per pooled start but measured ~0.8 ns slower on both paths.)
 */
ASYNCJOB_API HOT_PATH int ASYNC_start_job(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
                                          int (*func)(void *), void *args, size_t size)
{
    /* A separate (relaxed atomic) load of *job keeps GCC 12 from shuffling registers
     * here for both paths; the resume path loads *job once more instead. */
    if (unlikely(job == NULL || __atomic_load_n(job, __ATOMIC_RELAXED) == NULL))
        return start_new_job(job, ctx, ret, func, args, size);
    return resume_job(job, *job, ret);
}

/* After a paused job is resumed: the rare work (wait ctx changes, cancellation). */
static __attribute__((noinline)) int pause_resumed_slow(ASYNC_JOB *job)
{
    wait_ctx_end_cancel(job);
    wait_ctx_reset(job->waitctx);
    if (job->cancelled) {
        error_set(ASYNCJOB_ECANCELED);
        return 0;
    }
    return 1;
}

static __attribute__((noinline, cold)) int pause_refused(const ASYNC_JOB *job)
{
    if (job->cancelled) {
        error_set(ASYNCJOB_ECANCELED);
        return 0;
    }
    return 1; /* blocked: ASYNC_pause_job() is a no-op that succeeds */
}

ASYNCJOB_API HOT_PATH int ASYNC_pause_job(void)
{
    ASYNC_JOB *job = pool_self()->current;
    if (job == NULL)
        return 1;
    if (unlikely(job->nopause != 0))
        return pause_refused(job);
    pool_self()->current = NULL;
    job = (ASYNC_JOB *)(void *)fiber_leave(&job->fiber);
    /* Resumed, on the same thread (jobs never migrate). A cancel shows as a change of
     * the wait ctx (wait_ctx_begin_cancel()). */
    if (unlikely(job->waitctx->changed != 0))
        return async_ret_pause_slow(pause_resumed_slow(job));
    return async_ret_pause();
}

ASYNCJOB_API int asyncjob_cancel_job(ASYNC_JOB **job, int *ret)
{
    if (job == NULL || *job == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return ASYNC_ERR;
    }
    struct pool_thread *pt = pool_self();
    ASYNC_JOB *j = *job;
    int err = resume_error(pt, j);
    if (err != 0) {
        error_set((enum asyncjob_error)err);
        return ASYNC_ERR;
    }
    j->cancelled = 1;
    wait_ctx_begin_cancel(j);
    /* With pausing refused the job can only run to its end. */
    j = enter_job(pt, j);
    if (job_paused(j))
        return ASYNC_PAUSE; /* cannot happen: pausing fails once cancelled */
    return job_done(pool_self(), job, j, ret);
}

ASYNCJOB_API ASYNC_JOB *ASYNC_get_current_job(void)
{
    return pool_self()->current;
}

ASYNCJOB_API ASYNC_WAIT_CTX *ASYNC_get_wait_ctx(ASYNC_JOB *job)
{
    if (job == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return NULL;
    }
    return wait_ctx_of(job);
}

ASYNCJOB_API void ASYNC_block_pause(void)
{
    ASYNC_JOB *job = pool_self()->current;
    if (job != NULL)
        job->blocked++;
}

ASYNCJOB_API void ASYNC_unblock_pause(void)
{
    ASYNC_JOB *job = pool_self()->current;
    if (job != NULL && job->blocked != 0)
        job->blocked--;
}

ASYNCJOB_API int ASYNC_is_capable(void)
{
    return 1;
}

ASYNCJOB_API int ASYNC_set_mem_functions(ASYNC_stack_alloc_fn alloc_fn,
                                         ASYNC_stack_free_fn free_fn)
{
    return stack_set_functions(alloc_fn, free_fn);
}

ASYNCJOB_API void ASYNC_get_mem_functions(ASYNC_stack_alloc_fn *alloc_fn,
                                          ASYNC_stack_free_fn *free_fn)
{
    stack_get_functions(alloc_fn, free_fn);
}
