/*
 * wait_ctx.h: what the API layer's job code needs to know of a wait ctx: the jobs using
 * it (so that freeing it detaches them) and its change tracking (reset on every resume).
 */
#ifndef ASYNCJOB_WAIT_CTX_H
#define ASYNCJOB_WAIT_CTX_H

#include <stddef.h>

#include "asyncjob.h"
#include "pool.h"

struct wait_fd;

struct async_wait_ctx_st {
    struct wait_fd *fds;   /* newest first; includes entries marked deleted */
    size_t numadd;         /* entries added since the last reset */
    size_t numdel;         /* entries cleared since the last reset (still listed) */
    ASYNC_callback_fn callback;
    void *callback_arg;
    int status;
    ASYNC_JOB *jobs;       /* jobs started with this ctx and not finished */
};

/* Attach / detach a job (start / finish). */
static inline void wait_ctx_attach(ASYNC_WAIT_CTX *ctx, ASYNC_JOB *job)
{
    job->waitctx = ctx;
    job->wctx_prev = NULL;
    job->wctx_next = ctx->jobs;
    if (ctx->jobs != NULL)
        ctx->jobs->wctx_prev = job;
    ctx->jobs = job;
}

static inline void wait_ctx_detach(ASYNC_JOB *job)
{
    ASYNC_WAIT_CTX *ctx = job->waitctx;
    if (job->wctx_prev != NULL)
        job->wctx_prev->wctx_next = job->wctx_next;
    else
        ctx->jobs = job->wctx_next;
    if (job->wctx_next != NULL)
        job->wctx_next->wctx_prev = job->wctx_prev;
    job->waitctx = NULL;
}

void wait_ctx_reset_slow(ASYNC_WAIT_CTX *ctx);

/* The reset rule: called when a paused job using ctx is resumed. */
static inline void wait_ctx_reset(ASYNC_WAIT_CTX *ctx)
{
    if ((ctx->numadd | ctx->numdel) != 0)
        wait_ctx_reset_slow(ctx);
}

#endif /* ASYNCJOB_WAIT_CTX_H */
