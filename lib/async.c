/* async.c: the ASYNC_* job API (the API layer): argument and ownership checks, then the
 * pool and fiber layers. The hot path (resume, pause, pooled start and finish) keeps the
 * rules of doc/DESIGN.md, "The hot path": no lock, syscall or allocation, one TLS lookup. */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "async.h"
#include "compiler.h"
#include "error.h"
#include "orphan.h"
#include "pool.h"
#include "stack.h"
#include "wait_ctx.h"

/* Return helpers, one per return after a switch: doc/DESIGN.md, "Hot-path tricks". */
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
    if (max_size > POOL_MAX_SIZE || init_size > POOL_MAX_SIZE) {
        error_set(ASYNCJOB_EPOOLSIZE);
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

STATIC_ASSERT(POOL_INLINE_ARGS <= 64, "async_copy_small() moves at most 64 bytes");

/* Copy 1..POOL_INLINE_ARGS bytes: the small argument copy, doc/DESIGN.md, "Hot-path tricks". */
static ALWAYS_INLINE void async_copy_small(unsigned char *d, const unsigned char *s, size_t n)
{
    if (n >= 8) {
        /* The middle words, for 17..64 bytes; first and last word follow. */
        if (n > 16) {
            switch ((n - 9) >> 3) {
            case 6: memcpy(d + 48, s + 48, 8); FALLTHROUGH;
            case 5: memcpy(d + 40, s + 40, 8); FALLTHROUGH;
            case 4: memcpy(d + 32, s + 32, 8); FALLTHROUGH;
            case 3: memcpy(d + 24, s + 24, 8); FALLTHROUGH;
            case 2: memcpy(d + 16, s + 16, 8); FALLTHROUGH;
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
static ALWAYS_INLINE int async_copy_args(ASYNC_JOB *job, const void *args, size_t size)
{
    if (args == NULL) {
        job->args = NULL;
        return 0;
    }
    if (likely(size <= POOL_INLINE_ARGS)) {
        job->args = job->inline_args;
        async_copy_small(job->inline_args, args, size);
        return 0;
    }
    job->args = job->heap_args = alloc_heap(size);
    if (job->args == NULL)
        return ASYNCJOB_ENOMEM;
    memcpy(job->args, args, size);
    return 0;
}

/* A finished job: hand its result to the call that ran it (resume_handle, resume_ret),
 * detach it, give it back to the pool. */
static ALWAYS_INLINE int async_job_done(struct pool_thread *pt, ASYNC_JOB *job)
{
    if (job->resume_ret != NULL)
        *job->resume_ret = job->ret;
    *job->resume_handle = NULL;
    if (unlikely(job->heap_args != NULL)) {
        alloc_heap_free(job->heap_args);
        job->heap_args = NULL;
    }
    wait_ctx_detach(job);
    pool_release(pt, job);
    return ASYNC_FINISH;
}

/* The same, out of line, where finishing is the rare case. */
static NOINLINE int async_job_done_cold(ASYNC_JOB *job)
{
    return async_job_done(pool_self(), job);
}

/* Switch into `job` (which may run here now, and holds what a finish needs) until it pauses
 * or finishes; return it as carried through the switch. Nothing across the switch and,
 * with `balanced` (a constant), the balanced switch: doc/DESIGN.md, "Hot-path tricks". */
static ALWAYS_INLINE ASYNC_JOB *async_enter(struct pool_thread *pt, ASYNC_JOB *job,
                                            int balanced)
{
    assert(pt->current == NULL && job->active_tid == pt->thread_id);
    pt->current = job; /* the job clears it as it leaves */
    struct fiber *f = balanced ? fiber_enter_balanced(&job->fiber) : fiber_enter(&job->fiber);
    return container_of(f, ASYNC_JOB, fiber);
}

/* After async_enter(): whether the job paused rather than finished (pool_job_main()
 * marks a finished job inactive before it leaves). */
static ALWAYS_INLINE int async_job_paused(const ASYNC_JOB *job)
{
    return job->active_tid != POOL_NOT_ACTIVE;
}

static COLD int async_refuse(int err)
{
    error_set((enum asyncjob_error)err);
    return ASYNC_ERR;
}

/* A resume or cancel that async_may_resume() refused: set the code of the broken rule. */
static COLD int async_resume_refused(const ASYNC_JOB *job)
{
    const struct pool_thread *pt = pool_self();
    if (job->thread_id != pt->thread_id)
        return async_refuse(ASYNCJOB_EWRONGTHREAD);
    if (pt->current != NULL)
        return async_refuse(ASYNCJOB_ENESTED);
    return async_refuse(ASYNCJOB_ENOTPAUSED);
}

/* Prepare `j`, a job just taken from the pool, for a start; 0 or an error code (then `j`
 * is back in the pool). The caller's handle and ret pointer wait in the job. */
static ALWAYS_INLINE int async_prepare(struct pool_thread *pt, ASYNC_JOB *j, ASYNC_JOB **job,
                                       ASYNC_WAIT_CTX *ctx, int *ret, int (*func)(void *),
                                       const void *args, size_t size)
{
    j->func = func;
    j->nopause = 0;
    j->resume_handle = job;
    j->resume_ret = ret;
    j->active_tid = pt->thread_id;
    wait_ctx_attach(ctx, j);
    /* Last, so that only `j` must survive the rare malloc for big arguments. */
    int err = async_copy_args(j, args, size);
    if (unlikely(err != 0)) {
        wait_ctx_detach(j);
        j->active_tid = POOL_NOT_ACTIVE;
        pool_release(pool_self(), j);
    }
    return err;
}

/* Run `j`, prepared, until it pauses or finishes: ASYNC_start_job's result. */
static ALWAYS_INLINE int async_run_new(struct pool_thread *pt, ASYNC_JOB *j)
{
    j = async_enter(pt, j, 1);
    if (likely(async_job_paused(j))) {
        *j->resume_handle = j;
        return async_ret_start_paused();
    }
    return async_job_done(pool_self(), j);
}

/* The pool had no idle job: make one (a slow path with system calls), then start it. */
static NOINLINE int async_start_created(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
                                        int (*func)(void *), const void *args, size_t size)
{
    struct pool_thread *pt = pool_self();
    orphan_drain_due(pt);
    ASYNC_JOB *j = pool_acquire(pt);
    if (j == NULL)
        return ASYNC_NO_JOBS;
    int err = async_prepare(pt, j, job, ctx, ret, func, args, size);
    if (err != 0) {
        error_set((enum asyncjob_error)err);
        return ASYNC_NO_JOBS;
    }
    return async_run_new(pt, j);
}

/* ASYNC_start_job with *job == NULL (or job NULL): take a job from the pool and run it.
 * Reached by a tail jump (hot and cold split, doc/DESIGN.md, "Hot-path tricks"). */
static HOT NOINLINE int async_start(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
                                    int (*func)(void *), const void *args, size_t size)
{
    if (unlikely(job == NULL))
        return async_refuse(ASYNCJOB_EINVAL);
    struct pool_thread *pt = pool_self();
    if (unlikely(pt->current != NULL))
        return async_refuse(ASYNCJOB_ENESTED);
    if (unlikely(func == NULL || (args != NULL && size == 0)))
        return async_refuse(ASYNCJOB_EINVAL);
    ASYNC_JOB *j = pool_take_idle(pt);
    if (unlikely(j == NULL))
        return async_start_created(job, ctx, ret, func, args, size);
    int err = async_prepare(pt, j, job, ctx, ret, func, args, size);
    if (unlikely(err != 0)) {
        error_set((enum asyncjob_error)err);
        return ASYNC_NO_JOBS;
    }
    return async_run_new(pt, j);
}

/* ASYNC_start_job with a paused job: resume it. */
static ALWAYS_INLINE int async_resume(ASYNC_JOB **job, ASYNC_JOB *j, int *ret)
{
    struct pool_thread *pt = pool_self();
    if (unlikely(!async_may_resume(pt, j)))
        return async_resume_refused(j);
    j->resume_handle = job;
    j->resume_ret = ret;
    j = async_enter(pt, j, 0);
    if (likely(async_job_paused(j)))
        return async_ret_resume_paused(); /* *job already names it */
    return async_ret_resume_finished(async_job_done_cold(j));
}

/* The resume path is inlined here; a start leaves by a tail jump to async_start(). */
ASYNCJOB_API HOT int ASYNC_start_job(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
                                     int (*func)(void *), void *args, size_t size)
{
    /* Register hint load, not for threads: doc/DESIGN.md, "Hot-path tricks". */
    if (unlikely(job == NULL || __atomic_load_n(job, __ATOMIC_RELAXED) == NULL))
        return async_start(job, ctx, ret, func, args, size);
    return async_resume(job, *job, ret);
}

/* Pausing is refused once a job is cancelled: 1, or 0 with the error set. */
static int async_check_cancel(const ASYNC_JOB *job)
{
    if (job->cancelled) {
        error_set(ASYNCJOB_ECANCELED);
        return 0;
    }
    return 1;
}

/* After a paused job is resumed, the rare work: a cancel, wait ctx changes. */
static NOINLINE int async_pause_resumed_slow(ASYNC_JOB *job)
{
    wait_ctx_end_cancel(job);
    wait_ctx_reset(job->waitctx);
    return async_check_cancel(job);
}

/* ASYNC_pause_job() off its fast path: blocked (a no-op that succeeds), cancelled, or a job
 * with its own C++ exception state, swapped with its dispatcher's around the switch. */
static COLD int async_pause_slow(ASYNC_JOB *job)
{
    if (job->blocked != 0 || job->cancelled != 0)
        return async_check_cancel(job);
    cxx_eh_swap(&job->eh);
    pool_self()->current = NULL;
    job = container_of(fiber_leave(&job->fiber), ASYNC_JOB, fiber);
    cxx_eh_swap(&job->eh);
    if (job->waitctx->changed != 0)
        return async_pause_resumed_slow(job);
    return 1;
}

ASYNCJOB_API HOT int ASYNC_pause_job(void)
{
    ASYNC_JOB *job = pool_self()->current;
    if (job == NULL)
        return 1;
    if (unlikely(job->nopause != 0))
        return async_pause_slow(job);
    pool_self()->current = NULL;
    job = container_of(fiber_leave(&job->fiber), ASYNC_JOB, fiber);
    /* Resumed, on the same thread (jobs never migrate). Cancel sentinel: one test for a
     * cancel and wait ctx changes, doc/DESIGN.md, "Hot-path tricks". */
    if (unlikely(job->waitctx->changed != 0))
        return async_ret_pause_slow(async_pause_resumed_slow(job));
    return async_ret_pause();
}

ASYNCJOB_API int asyncjob_cancel_job(ASYNC_JOB **job, int *ret)
{
    if (job == NULL || *job == NULL)
        return async_refuse(ASYNCJOB_EINVAL);
    struct pool_thread *pt = pool_self();
    ASYNC_JOB *j = *job;
    if (!async_may_resume(pt, j))
        return async_resume_refused(j);
    j->cancelled = 1;
    wait_ctx_begin_cancel(j); /* the cancel sentinel: doc/DESIGN.md, "Hot-path tricks" */
    j->resume_handle = job;
    j->resume_ret = ret;
    /* With pausing refused the job can only run to its end. */
    j = async_enter(pt, j, 0);
    assert(!async_job_paused(j));
    return async_job_done(pool_self(), j);
}

void async_job_forget(ASYNC_JOB *job)
{
    if (job->heap_args != NULL) {
        alloc_heap_free(job->heap_args);
        job->heap_args = NULL;
    }
    wait_ctx_end_cancel(job);
    wait_ctx_detach(job);
}

ASYNCJOB_API int asyncjob_abandon_job(void)
{
    struct pool_thread *pt = pool_self();
    ASYNC_JOB *job = pt->current;
    if (job == NULL) {
        error_set(ASYNCJOB_ENOJOB);
        return 0;
    }
    if (pool_stack_holds(job, __builtin_frame_address(0))) {
        error_set(ASYNCJOB_EINJOB); /* the job is running: this is its own call */
        return 0;
    }
    pool_abandon_current(pt);
    return 1;
}

ASYNCJOB_API int asyncjob_isolate_exceptions(void)
{
    ASYNC_JOB *job = pool_self()->current;
    if (job == NULL) {
        error_set(ASYNCJOB_ENOJOB);
        return 0;
    }
    if (cxx_eh_globals() == NULL) {
        error_set(ASYNCJOB_ENOTSUP);
        return 0;
    }
    if (!job->own_eh) {
        /* The job starts empty; its dispatcher's state waits in the job until the next
         * pause, and goes back as the job finishes (pool_release_slow()). */
        memset(&job->eh, 0, sizeof(job->eh));
        cxx_eh_swap(&job->eh);
        job->own_eh = 1;
        job->pool_gen = ~pool_self()->pool_gen;
    }
    return 1;
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
