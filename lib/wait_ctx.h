/* wait_ctx.h: what the API layer's job code needs to know of a wait ctx: how many jobs
 * use it (so that freeing it cannot leave them pointing at freed memory) and its change
 * tracking (reset on every resume). */
#ifndef ASYNCJOB_WAIT_CTX_H
#define ASYNCJOB_WAIT_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "asyncjob.h"
#include "pool.h"

struct wait_ctx_fd;

struct async_wait_ctx_st {
    struct wait_ctx_fd *fds;   /* newest first; includes entries marked deleted */
    /* Changes since the last reset; `changed` tests both at once on the resume path. */
    union {
        struct {
            uint32_t numadd; /* entries added */
            uint32_t numdel; /* entries cleared (still listed) */
        };
        uint64_t changed;
    };
    ASYNC_callback_fn callback;
    void *callback_arg;
    int status;
    /* The user's reference (from ASYNC_WAIT_CTX_new() to _free(), which empties the ctx and
     * sets `freed`) and one per started, unfinished job: the memory goes with the last one,
     * so a paused job never holds a dangling pointer. */
    size_t refs;
    int freed;
};

STATIC_ASSERT(sizeof(((ASYNC_WAIT_CTX *)0)->changed) ==
                  sizeof(((ASYNC_WAIT_CTX *)0)->numadd) + sizeof(((ASYNC_WAIT_CTX *)0)->numdel),
              "changed must overlay numadd and numdel exactly");

/* Free a ctx whose last reference is gone. */
void wait_ctx_destroy(ASYNC_WAIT_CTX *ctx);

/* The no-ctx sentinel (doc/DESIGN.md, "Hot-path tricks"): what a job without a wait ctx
 * points at (once started, a job's waitctx is never NULL); empty, marked freed so that
 * ASYNC_get_wait_ctx() answers NULL, never written, so all threads share it. */
extern ASYNC_WAIT_CTX wait_ctx_none;

/* The cancel sentinel (doc/DESIGN.md, "Hot-path tricks"): what a cancelled job points at
 * while it is resumed, with `changed` non-zero; the job puts its own ctx back before
 * anything else (wait_ctx_end_cancel). Never written. */
extern ASYNC_WAIT_CTX wait_ctx_cancel;

static inline void wait_ctx_begin_cancel(ASYNC_JOB *job)
{
    job->cancel_waitctx = job->waitctx;
    job->waitctx = &wait_ctx_cancel;
}

static inline void wait_ctx_end_cancel(ASYNC_JOB *job)
{
    if (job->waitctx == &wait_ctx_cancel)
        job->waitctx = job->cancel_waitctx;
}

/* Attach a job to `ctx` (or to none, if NULL) as it starts; detach it as it finishes. */
static inline void wait_ctx_attach(ASYNC_WAIT_CTX *ctx, ASYNC_JOB *job)
{
    if (ctx != NULL) {
        ctx->refs++;
        job->waitctx = ctx;
    } else {
        job->waitctx = &wait_ctx_none;
    }
}

static inline void wait_ctx_detach(ASYNC_JOB *job)
{
    ASYNC_WAIT_CTX *ctx = job->waitctx;
    assert(ctx == &wait_ctx_none || ctx->refs > 0);
    job->waitctx = &wait_ctx_none;
    if (ctx != &wait_ctx_none && unlikely(--ctx->refs == 0))
        wait_ctx_destroy(ctx);
}

/* The ctx a job was started with, or NULL if there was none or it has been freed.
 * (A job that has never been started still has a NULL waitctx.) */
static inline ASYNC_WAIT_CTX *wait_ctx_of(const ASYNC_JOB *job)
{
    ASYNC_WAIT_CTX *ctx = job->waitctx;
    return ctx != NULL && !ctx->freed ? ctx : NULL;
}

void wait_ctx_reset_slow(ASYNC_WAIT_CTX *ctx);

/* The reset rule: called when a paused job using ctx is resumed. */
static inline void wait_ctx_reset(ASYNC_WAIT_CTX *ctx)
{
    if (ctx->changed != 0)
        wait_ctx_reset_slow(ctx);
}

#endif /* ASYNCJOB_WAIT_CTX_H */
