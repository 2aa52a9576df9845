/* pool.h: the job-pool layer. Per-thread state (running job, LIFO pool of idle jobs) in
 * thread-local storage, job creation and destruction on top of the fiber layer, and
 * cleanup at thread exit. Used by the API layer (async.c, wait_ctx.c). */
#ifndef ASYNCJOB_POOL_H
#define ASYNCJOB_POOL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "asyncjob.h"
#include "compiler.h"
#include "cxx_eh.h"
#include "debug_link.h"
#include "fiber.h"

/* Argument copies up to this size live inside the job: no allocation per start. */
#define POOL_INLINE_ARGS 64

/* A job's active_tid while it is idle: no thread has this id (they count from 1, and a
 * thread that has not used asyncjob yet has 0). */
#define POOL_NOT_ACTIVE UINT64_MAX


struct async_job_st {
    struct fiber fiber;
    /* The work: set by each start. */
    int (*func)(void *);
    void *args;          /* the argument copy: inline_args or heap_args, or NULL */
    void *heap_args;     /* a copy too big for inline_args, freed when the job finishes */
    int ret;
    /* Any one sends ASYNC_pause_job() off its fast path (one-compare words, DESIGN.md). */
    union {
        struct {
            unsigned blocked;   /* ASYNC_block_pause() nesting of this job */
            uint16_t cancelled; /* asyncjob_cancel_job(): pausing now fails */
            uint16_t own_eh;    /* asyncjob_isolate_exceptions(): swap `eh` at each pause */
        };
        uint64_t nopause;
    };
    ASYNC_WAIT_CTX *waitctx; /* holds a reference, see wait_ctx.h */
    ASYNC_WAIT_CTX *cancel_waitctx; /* waitctx while a cancel resumes the job */
    /* Ownership. */
    uint64_t thread_id;  /* the thread that owns the job for its whole life */
    /* thread_id while the job is started and not finished (paused, or running as its
     * thread's current job), POOL_NOT_ACTIVE while idle (one-compare words, DESIGN.md). */
    uint64_t active_tid;
    /* Equal to its thread's pool_gen when the job may go back to the idle list as it
     * finishes with nothing else to do; anything else sends it through pool_release_slow()
     * (an orphan, a lowered max_size, C++ exception state to give back). */
    uint64_t pool_gen;
    ASYNC_JOB *next_idle;
    /* Where the resume that is running the job wants the result, if it finishes: kept
     * here rather than in registers across the switch (fewer saves on the hot path). */
    ASYNC_JOB **resume_handle;
    int *resume_ret;
    _Alignas(16) unsigned char inline_args[POOL_INLINE_ARGS];
    /* Free for a layer on top of the core: the OpenSSL drop-in keeps a paused job's
     * default library context here. The core never reads or writes it. */
    void *adapter_data;
    /* Reclaimed orphans (lib/orphan.c): when it was orphaned, on the CLOCK_MONOTONIC. */
    uint64_t orphaned_ns;
    /* For debuggers only (debug_registry.h): set when the job is created, never read by
     * the library. Last, so that the fields above keep their offsets. */
    struct debug_link dbg_link;
    uint64_t dbg_serial;
    struct pool_thread *dbg_owner;
    int32_t dbg_lwp;
    /* Off the hot path: every job of a thread not yet destroyed is in its thread's list
     * (pool_thread.jobs), so that thread exit can free the paused ones. */
    ASYNC_JOB *thread_next;
    ASYNC_JOB **thread_prev;
    unsigned char orphan; /* not counted in its pool (ASYNC_cleanup_thread(), stack too small) */
    /* With own_eh: the C++ exception state that is not on the thread now (the job's while
     * it is paused, its dispatcher's while it runs); cxx_eh.h. */
    struct cxx_eh_state eh;
};

/* One load tests both pause refusals; the API layer recovers a job from its fiber. */
STATIC_ASSERT(sizeof(((ASYNC_JOB *)0)->nopause) ==
                  sizeof(((ASYNC_JOB *)0)->blocked) + sizeof(((ASYNC_JOB *)0)->cancelled) +
                      sizeof(((ASYNC_JOB *)0)->own_eh),
              "nopause must overlay blocked, cancelled and own_eh exactly");
STATIC_ASSERT(POOL_INLINE_ARGS % 8 == 0, "inline argument copies move whole words");
STATIC_ASSERT(offsetof(struct async_job_st, fiber) == 0,
              "the fiber opens the job: container_of() from it costs the hot path nothing");

/* The calling thread's state. It lives in TLS itself (no pointer to chase). */
struct pool_thread {
    ASYNC_JOB *current;  /* the running job, or NULL on the dispatcher. Set by the resume
                          * that enters a job, cleared by the job itself as it leaves (pause
                          * or finish), so the resumer keeps nothing across the switch. */
    ASYNC_JOB *idle;     /* LIFO list of idle jobs */
    size_t idle_count;
    size_t count;        /* jobs of this pool: idle + started and not finished */
    size_t max_size;     /* 0: unlimited; else at most POOL_MAX_SIZE */
    uint64_t thread_id;  /* 0 until the thread first uses asyncjob */
    uint64_t pool_gen;
    int initialised;
    int32_t lwp;         /* the kernel's id of the thread, for debuggers */
    /* Reclaimed orphans in quarantine, oldest first, linked by next_idle (lib/orphan.c):
     * out of the pool's count, their stacks' pages given back, not yet reusable. */
    ASYNC_JOB *quarantine;
    ASYNC_JOB *quarantine_tail;
    ASYNC_JOB *jobs;     /* every job of this thread not destroyed yet (thread_next) */
};

/* The largest max_size and init_size ASYNC_init_thread() accepts (OpenSSL's bound). */
#define POOL_MAX_SIZE ((size_t)INT_MAX)

/* Set by lib/orphan.c when it first quarantines a job: frees the calling thread's
 * quarantine as its pool is cleaned up. */
extern void (*pool_quarantine_flush)(struct pool_thread *pt);

extern __thread struct pool_thread pool_tls TLS_INITIAL_EXEC;

/* The calling thread's state, never cached across a switch (initial-exec TLS: doc/DESIGN.md,
 * "Hot-path tricks"). */
static inline struct pool_thread *pool_self(void)
{
    return &pool_tls;
}

/* ASYNC_init_thread / ASYNC_cleanup_thread bodies (argument checks done by the caller). */
int pool_init(struct pool_thread *pt, size_t max_size, size_t init_size);
void pool_cleanup(struct pool_thread *pt);

/* Take an idle job or create one. NULL with the error set when none can be had. */
ASYNC_JOB *pool_acquire(struct pool_thread *pt);

/* The most recently finished idle job, or NULL: the inline fast path of pool_acquire(). */
static inline ASYNC_JOB *pool_take_idle(struct pool_thread *pt)
{
    ASYNC_JOB *job = pt->idle;
    if (likely(job != NULL)) {
        pt->idle = job->next_idle;
        pt->idle_count--;
    }
    return job;
}

/* Free idle jobs (newest first) until at most `keep` remain; how many were freed. Only
 * outside a job (the caller checks): freeing one switches into its fiber. */
size_t pool_trim(struct pool_thread *pt, size_t keep);

/* Free the idle jobs whose stacks were made for a smaller size than the one in force
 * (stack_too_small()); outside a job. */
void pool_drop_small(struct pool_thread *pt);

/* Free a job that is idle or finished, and its stack. */
void pool_destroy_job(ASYNC_JOB *job);

/* Whether `addr` lies in `job`'s stack (pass __builtin_frame_address(0): is the caller
 * running on it?). */
static inline int pool_stack_holds(const ASYNC_JOB *job, const void *addr)
{
    const char *lo = job->fiber.stack.lo;
    return (const char *)addr >= lo && (const char *)addr < lo + fiber_stack_size(&job->fiber);
}

/* The calling thread's running job left its stack without switching back (longjmp out of
 * it, or pthread_exit's unwinding): free it without running anything on its stack. The
 * caller checked that it does not run on that stack. */
void pool_abandon_current(struct pool_thread *pt);

/* Defined by the API layer (async.c), called by the pool just before it frees a job that
 * never finished (abandoned, or paused at thread exit): let go of what the API layer
 * attached to it (its wait ctx reference, a heap copy of its arguments). */
void async_job_forget(ASYNC_JOB *job);

/* pool_release() for a job whose pool_gen is not its thread's. */
void pool_release_slow(struct pool_thread *pt, ASYNC_JOB *job);

/* A job finished (its active_tid is POOL_NOT_ACTIVE again): back to the pool, unless it is
 * marked for the slow path (pool_gen). */
static inline void pool_release(struct pool_thread *pt, ASYNC_JOB *job)
{
    assert(job->active_tid == POOL_NOT_ACTIVE);
    if (unlikely(job->pool_gen != pt->pool_gen)) {
        pool_release_slow(pt, job);
        return;
    }
    job->next_idle = pt->idle;
    pt->idle = job;
    pt->idle_count++;
}

#endif /* ASYNCJOB_POOL_H */
