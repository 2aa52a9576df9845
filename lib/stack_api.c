/* stack_api.c: the job stack functions of the asyncjob API (size, measured use, trimming
 * the pool, guards). Argument and ownership checks, then the stack and pool layers; nothing here
 * is on the hot path. */
#include "config.h"

#include "error.h"
#include "pool.h"
#include "stack.h"

ASYNCJOB_API int asyncjob_set_stack_size(size_t bytes)
{
    if (!stack_set_size(bytes))
        return 0;
    /* This thread's idle jobs can go at once; other threads' go as they finish, when the
     * new size epoch sends them through stack_renew(). From inside a job nothing can be
     * freed (it takes a switch), so the epoch does it there too. */
    struct pool_thread *pt = pool_self();
    if (pt->current == NULL)
        pool_drop_small(pt);
    return 1;
}

ASYNCJOB_API size_t asyncjob_get_stack_size(void)
{
    return stack_get_size();
}

ASYNCJOB_API size_t asyncjob_stack_peak(const ASYNC_JOB *job)
{
    if (job == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    if (job->thread_id != pool_self()->thread_id) {
        error_set(ASYNCJOB_EWRONGTHREAD);
        return 0;
    }
    if (job->active_tid == POOL_NOT_ACTIVE) {
        error_set(ASYNCJOB_ENOTPAUSED);
        return 0;
    }
    size_t n = stack_peak(&job->fiber.stack);
    if (n == 0)
        error_set(ASYNCJOB_ENOTSUP);
    return n;
}

ASYNCJOB_API size_t asyncjob_trim_thread(size_t keep)
{
    struct pool_thread *pt = pool_self();
    if (pt->current != NULL) {
        error_set(ASYNCJOB_EINJOB);
        return 0;
    }
    return pool_trim(pt, keep);
}

ASYNCJOB_API int asyncjob_set_guard_size(size_t bytes)
{
    return stack_set_guard_size(bytes);
}

ASYNCJOB_API size_t asyncjob_get_guard_size(void)
{
    return stack_guard_size();
}

ASYNCJOB_API int asyncjob_set_strict_guards(int on)
{
    return stack_set_strict_guards(on);
}

ASYNCJOB_API size_t asyncjob_unguarded_stacks(void)
{
    return stack_unguarded_count();
}
