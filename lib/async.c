/*
 * async.c: the ASYNC_* job API. Checks arguments and ownership, then drives the pool and
 * fiber layers. The hot path (resume, pause, pooled start and finish) takes no lock, makes
 * no system call and allocates nothing; it reads thread-local state once per call.
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

/* Copy the start arguments into the job; 0 or an error code. */
static int copy_args(ASYNC_JOB *job, const void *args, size_t size)
{
    if (args == NULL) {
        job->args = NULL;
        return 0;
    }
    if (likely(size <= POOL_INLINE_ARGS)) {
        job->args = job->inline_args;
    } else {
        job->args = alloc_heap(size);
        if (job->args == NULL)
            return ASYNCJOB_ENOMEM;
    }
    memcpy(job->args, args, size);
    return 0;
}

/*
 * Run `job` until it pauses or finishes, and report which. The caller has checked that
 * the job may run on this thread now. `pt` is this thread's state: the job cannot move
 * to another thread, so it is still valid when the switch comes back.
 */
static int run_job(struct pool_thread *pt, ASYNC_JOB **jobp, ASYNC_JOB *job, int *ret)
{
    pt->current = job;
    job->state = JOB_RUNNING;
    void *msg = fiber_resume(&job->fiber, NULL);
    pt->current = NULL;
    if (likely(msg == POOL_MSG_PAUSED)) {
        job->state = JOB_PAUSED;
        *jobp = job;
        return ASYNC_PAUSE;
    }
    /* Finished. */
    if (ret != NULL)
        *ret = job->ret;
    *jobp = NULL;
    if (unlikely(job->args != job->inline_args && job->args != NULL))
        alloc_heap_free(job->args);
    if (job->waitctx != NULL)
        wait_ctx_detach(job);
    pool_release(pt, job);
    return ASYNC_FINISH;
}

/* Why `job` cannot be resumed by this thread now, or 0 if it can. */
static int resume_error(const struct pool_thread *pt, const ASYNC_JOB *job)
{
    if (job->thread_id != pt->thread_id)
        return ASYNCJOB_EWRONGTHREAD;
    if (pt->current != NULL)
        return ASYNCJOB_ENESTED;
    if (job->state != JOB_PAUSED)
        return ASYNCJOB_ENOTPAUSED;
    return 0;
}

ASYNCJOB_API int ASYNC_start_job(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
                                 int (*func)(void *), void *args, size_t size)
{
    if (unlikely(job == NULL)) {
        error_set(ASYNCJOB_EINVAL);
        return ASYNC_ERR;
    }
    struct pool_thread *pt = pool_self();
    ASYNC_JOB *j = *job;

    if (j != NULL) {
        /* Resume. One combined test keeps the common case to a single branch. */
        if (unlikely(j->thread_id != pt->thread_id || pt->current != NULL ||
                     j->state != JOB_PAUSED)) {
            error_set((enum asyncjob_error)resume_error(pt, j));
            return ASYNC_ERR;
        }
        return run_job(pt, job, j, ret);
    }

    /* Start. */
    if (unlikely(pt->current != NULL)) {
        error_set(ASYNCJOB_ENESTED);
        return ASYNC_ERR;
    }
    if (unlikely(func == NULL || (args != NULL && size == 0))) {
        error_set(ASYNCJOB_EINVAL);
        return ASYNC_ERR;
    }
    j = pool_acquire(pt);
    if (unlikely(j == NULL))
        return ASYNC_NO_JOBS;
    int err = copy_args(j, args, size);
    if (unlikely(err != 0)) {
        pool_release(pt, j);
        error_set((enum asyncjob_error)err);
        return ASYNC_NO_JOBS;
    }
    j->func = func;
    j->blocked = 0;
    j->cancelled = 0;
    if (ctx != NULL)
        wait_ctx_attach(ctx, j);
    return run_job(pt, job, j, ret);
}

ASYNCJOB_API int ASYNC_pause_job(void)
{
    ASYNC_JOB *job = pool_self()->current;
    if (job == NULL)
        return 1;
    if (unlikely(job->cancelled | job->blocked)) {
        if (job->cancelled) {
            error_set(ASYNCJOB_ECANCELED);
            return 0;
        }
        return 1;
    }
    fiber_suspend(&job->fiber, POOL_MSG_PAUSED);
    /* Resumed, on the same thread (jobs never migrate). */
    if (job->waitctx != NULL)
        wait_ctx_reset(job->waitctx);
    if (unlikely(job->cancelled)) {
        error_set(ASYNCJOB_ECANCELED);
        return 0;
    }
    return 1;
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
    /* With pausing refused the job can only run to its end. */
    return run_job(pt, job, j, ret);
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
    return job->waitctx;
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
