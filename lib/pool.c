/* pool.c: per-thread job pools: jobs made on the fiber layer, idle ones in a LIFO list (the
 * last finished is reused first, its stack warm), freed at ASYNC_cleanup_thread() or thread
 * exit. Touches fiber.h, stack.h, alloc.h and debug_registry.h only. */
#include "config.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>
#ifdef _WIN32
# include <windows.h>
# define gettid() GetCurrentThreadId()
#endif

#include "alloc.h"
#include "debug_registry.h"
#include "error.h"
#include "overflow.h"
#include "pool.h"

__thread struct pool_thread pool_tls TLS_INITIAL_EXEC;

static pthread_once_t pool_exit_key_once = PTHREAD_ONCE_INIT;
static int pool_exit_key_ok; /* the thread-exit hook exists (pool_make_exit_key()) */
static uint64_t pool_next_thread_id = 1;
static pthread_once_t pool_env_once = PTHREAD_ONCE_INIT;

/* A job finished with its stack's mark not intact (stack.h): renew the stack (stack_renew())
 * and return the mark to check next time. A stack now too small leaves the pool as an orphan
 * would (a stale pool_gen). noinline: the pages below this very frame, on the job's stack,
 * may be given back. */
static COLD const uint32_t *pool_job_renew_stack(ASYNC_JOB *job)
{
    if (!stack_renew(&job->fiber.stack, __builtin_frame_address(0))) {
        struct pool_thread *pt = pool_self();
        if (!job->orphan) {
            pt->count--;
            job->orphan = 1;
        }
        job->pool_gen = ~pt->pool_gen;
    }
    return job->fiber.stack.mark;
}

/* The body of every job fiber: run the job, report "finished", wait in the pool for the
 * next start; pool_destroy_job() ends it with pool_job_quit(). Deep jobs and a size change
 * are caught by one check of the stack's mark (stack_mark_ok()). */
static NORETURN void *pool_job_main(struct fiber *f, void *msg)
{
    ASYNC_JOB *job = container_of(f, ASYNC_JOB, fiber);
    const uint32_t *mark = job->fiber.stack.mark;
    for (;;) {
        job->ret = job->func(job->args);
        if (!stack_mark_ok(mark))
            mark = pool_job_renew_stack(job);
        pool_self()->current = NULL;
        job->active_tid = POOL_NOT_ACTIVE; /* what the dispatcher takes for "finished" */
        /* Balanced: when the start that ran this job sees it end without a pause, that
         * start's return to its caller is predicted (see fiber_enter_balanced()). */
        fiber_leave_balanced(f);
    }
}

/* The last function an idle job runs: its fiber ends, so the stack is left for good. */
static int pool_job_quit(void *fiber)
{
    fiber_exit(fiber, NULL);
}

static ASYNC_JOB *pool_job_create(struct pool_thread *pt)
{
    ASYNC_JOB *job = alloc_heap_zero(sizeof(*job));
    if (job == NULL) {
        error_set(ASYNCJOB_ENOMEM);
        return NULL;
    }
    int err = fiber_create(&job->fiber, pool_job_main);
    if (err != 0) {
        alloc_heap_free(job);
        error_set((enum asyncjob_error)err);
        return NULL;
    }
    job->active_tid = POOL_NOT_ACTIVE;
    job->thread_id = pt->thread_id;
    job->pool_gen = pt->pool_gen;
    job->dbg_owner = pt;
    job->dbg_lwp = pt->lwp;
    debug_registry_add(&job->dbg_link, &job->dbg_serial);
    job->thread_next = pt->jobs;
    job->thread_prev = &pt->jobs;
    if (pt->jobs != NULL)
        pt->jobs->thread_prev = &job->thread_next;
    pt->jobs = job;
    return job;
}

/* Out of every list, stack freed, memory freed: the end of every job. */
static void pool_free_job(ASYNC_JOB *job)
{
    debug_registry_remove(&job->dbg_link);
    *job->thread_prev = job->thread_next;
    if (job->thread_next != NULL)
        job->thread_next->thread_prev = job->thread_prev;
    fiber_destroy(&job->fiber);
    alloc_heap_free(job);
}

void pool_destroy_job(ASYNC_JOB *job)
{
    assert(job->active_tid == POOL_NOT_ACTIVE);
    /* An idle job waits inside pool_job_main(); let it return so its stack is left for good. */
    if (!fiber_finished(&job->fiber)) {
        job->func = pool_job_quit;
        job->args = &job->fiber;
        fiber_enter(&job->fiber);
    }
    pool_free_job(job);
}

/* A job that will never run again (paused, or abandoned) and is not idle: freed without a
 * switch into it, since nothing on its stack may run. */
static void pool_discard_job(struct pool_thread *pt, ASYNC_JOB *job)
{
    async_job_forget(job);
    if (!job->orphan)
        pt->count--;
    job->active_tid = POOL_NOT_ACTIVE;
    pool_free_job(job);
}

/* Not instrumented by ASan: until fiber_abandon() ASan takes the thread for the job, so a
 * frame of this function on its fake stack would be in the job's one, which the switch frees. */
NO_ASAN
void pool_abandon_current(struct pool_thread *pt)
{
    ASYNC_JOB *job = pt->current;
    pt->current = NULL;
    fiber_abandon(&job->fiber);
    /* The thread still has the job's exception state; its dispatcher's is in the job. */
    if (job->own_eh)
        cxx_eh_swap(&job->eh);
    pool_discard_job(pt, job);
}

void pool_release_slow(struct pool_thread *pt, ASYNC_JOB *job)
{
    /* Its dispatcher's exception state back on the thread (the job's own is over). */
    if (job->own_eh) {
        cxx_eh_swap(&job->eh);
        job->own_eh = 0;
    }
    if (job->orphan) {
        pool_destroy_job(job);
        return;
    }
    /* A max_size lowered while jobs were in use takes effect as they come back. */
    if (pt->max_size != 0 && pt->count > pt->max_size) {
        pt->count--;
        pool_destroy_job(job);
        return;
    }
    job->pool_gen = pt->pool_gen;
    pool_release(pt, job);
}

size_t pool_trim(struct pool_thread *pt, size_t keep)
{
    size_t n = 0;
    while (pt->idle_count > keep) {
        ASYNC_JOB *job = pool_take_idle(pt);
        assert(job != NULL); /* idle_count counts the idle list */
        pt->count--;
        pool_destroy_job(job);
        n++;
    }
    return n;
}

void pool_drop_small(struct pool_thread *pt)
{
    ASYNC_JOB **link = &pt->idle;
    while (*link != NULL) {
        ASYNC_JOB *job = *link;
        if (!stack_too_small(&job->fiber.stack)) {
            link = &job->next_idle;
            continue;
        }
        *link = job->next_idle;
        pt->idle_count--;
        pt->count--;
        pool_destroy_job(job);
    }
}

/* Thread exit (the hook: a pthread key's destructor, on Windows a TLS callback): free every
 * job of the thread. A job still current was left without a switch back (pthread_exit
 * inside it, or a longjmp out of it): glibc runs this on the thread's own stack, after
 * pthread_exit's unwinding left the job's, so that job is freed too; where the C library
 * runs it on the job's stack (musl), that one stack must stay. Paused jobs can never run
 * again (only their own thread may resume them): their stacks go without anything on them
 * running. */
static void pool_thread_exit(void *arg)
{
    struct pool_thread *pt = arg;
    if (pt->current != NULL) {
        if (pool_stack_holds(pt->current, __builtin_frame_address(0))) {
            ASYNC_JOB *job = pt->current;
            *job->thread_prev = job->thread_next; /* kept, never freed: see above */
            if (job->thread_next != NULL)
                job->thread_next->thread_prev = job->thread_prev;
            job->thread_next = NULL;
            job->thread_prev = &job->thread_next;
            pt->current = NULL; /* switches into idle jobs come back here, on its stack */
        } else {
            pool_abandon_current(pt);
        }
    }
    pool_cleanup(pt);
    while (pt->jobs != NULL)
        pool_discard_job(pt, pt->jobs);
}

#ifndef _WIN32
/* The thread-exit hook: one pthread key, whose value is the thread's pool_tls. */
static pthread_key_t pool_exit_key;

static void pool_make_exit_key(void)
{
    pool_exit_key_ok = pthread_key_create(&pool_exit_key, pool_thread_exit) == 0;
}

/* Arm the calling thread's exit hook with `pt`, or disarm it with NULL; 0 on success. */
static int pool_exit_hook(struct pool_thread *pt)
{
    return pthread_setspecific(pool_exit_key, pt);
}
#else
/* Windows: not a winpthreads key, whose destructor runs too late. `__thread` is mingw's
 * emulated TLS: each variable a malloc()ed block, all freed at DLL_THREAD_DETACH by this
 * module's own CRT (its key destructors, TLS callback .CRT$XLD), and winpthreads runs
 * the destructors of a thread it did not create in its own DLL's DLL_THREAD_DETACH, which
 * comes after this module's (the loader detaches in the reverse of the order it
 * initialised, dependencies first): the pool was freed memory by then. So the hook is a
 * TLS callback of this module in .CRT$XLB, which the loader calls at every thread's exit
 * (CreateThread, _beginthreadex or winpthreads) on the thread's own stack before .CRT$XLD,
 * while every `__thread` variable is still there; a Win32 TLS slot holds the thread's
 * pool_tls while it is armed, as the key's value does elsewhere (doc/DESIGN.md, "Windows"). */
static DWORD pool_exit_slot = TLS_OUT_OF_INDEXES;

static void pool_make_exit_key(void)
{
    pool_exit_slot = TlsAlloc();
    __atomic_store_n(&pool_exit_key_ok, pool_exit_slot != TLS_OUT_OF_INDEXES, __ATOMIC_RELEASE);
}

static int pool_exit_hook(struct pool_thread *pt)
{
    return TlsSetValue(pool_exit_slot, pt) ? 0 : -1;
}

/* Every thread's exit, also of threads that never used asyncjob: one TlsGetValue(). */
static void NTAPI pool_exit_tls_callback(void *module, DWORD reason, void *reserved)
{
    (void)module;
    (void)reserved;
    if (reason != DLL_THREAD_DETACH || !__atomic_load_n(&pool_exit_key_ok, __ATOMIC_ACQUIRE))
        return;
    struct pool_thread *pt = TlsGetValue(pool_exit_slot);
    if (pt == NULL)
        return;
    TlsSetValue(pool_exit_slot, NULL);
    pool_thread_exit(pt);
}

/* The CRT's TLS directory calls every pointer between .CRT$XLA and .CRT$XLZ, in the order
 * of the sections' names. */
__attribute__((section(".CRT$XLB"), used))
static PIMAGE_TLS_CALLBACK pool_exit_tls_entry = pool_exit_tls_callback;
#endif

int pool_init(struct pool_thread *pt, size_t max_size, size_t init_size)
{
    if (!pt->initialised) {
        pthread_once(&pool_exit_key_once, pool_make_exit_key);
        if (!pool_exit_key_ok || pool_exit_hook(pt) != 0) {
            error_set(ASYNCJOB_ENOMEM);
            return 0;
        }
        if (pt->thread_id == 0)
            pt->thread_id = __atomic_fetch_add(&pool_next_thread_id, 1, __ATOMIC_RELAXED);
        pt->lwp = (int32_t)gettid();
        pt->initialised = 1;
        pthread_once(&pool_env_once, overflow_read_env);
    }
    overflow_thread_ready();
    pt->max_size = max_size;
    /* A lower limit takes effect at once for idle jobs, and for jobs in use as they
     * finish: a new pool_gen sends each through pool_release_slow(). */
    if (max_size != 0 && pt->count > max_size) {
        size_t excess = pt->count - max_size;
        pool_trim(pt, excess < pt->idle_count ? pt->idle_count - excess : 0);
        if (pt->count > max_size)
            pt->pool_gen++;
    }
    /* Top up: stop quietly at the first job that cannot be created. */
    while (pt->idle_count < init_size && (max_size == 0 || pt->count < max_size)) {
        ASYNC_JOB *job = pool_job_create(pt);
        if (job == NULL)
            break;
        pt->count++;
        pool_release(pt, job);
    }
    return 1;
}

void (*pool_quarantine_flush)(struct pool_thread *pt);

void pool_cleanup(struct pool_thread *pt)
{
    if (!pt->initialised)
        return;
    if (pt->quarantine != NULL)
        pool_quarantine_flush(pt);
    pool_trim(pt, 0);
    fiber_release_thread();
    /* Jobs still paused are orphans now: they may finish later and are then freed. */
    for (ASYNC_JOB *job = pt->jobs; job != NULL; job = job->thread_next)
        job->orphan = 1;
    pt->pool_gen++;
    pt->count = 0;
    pt->max_size = 0;
    pt->initialised = 0;
    /* Paused jobs keep the exit hook: thread exit frees them. */
    if (pool_exit_key_ok && pt->jobs == NULL)
        pool_exit_hook(NULL);
}

ASYNC_JOB *pool_acquire(struct pool_thread *pt)
{
    ASYNC_JOB *job = pool_take_idle(pt);
    if (job != NULL)
        return job;
    if (!pt->initialised && !pool_init(pt, 0, 0))
        return NULL;
    if (pt->max_size != 0 && pt->count >= pt->max_size) {
        error_set(ASYNCJOB_EPOOLFULL);
        return NULL;
    }
    overflow_thread_ready();
    job = pool_job_create(pt);
    if (job != NULL)
        pt->count++;
    return job;
}
