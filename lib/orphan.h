/* orphan.h: reclaiming orphaned jobs (lib/orphan.c), for the API layer's wait ctx and start
 * paths and the drop-in, which turns it on by default. */
#ifndef ASYNCJOB_ORPHAN_H
#define ASYNCJOB_ORPHAN_H

#include "asyncjob.h"
#include "pool.h"

/* Nonzero: ASYNC_WAIT_CTX_free() reclaims the paused jobs of the calling thread that wait
 * with the ctx. Off in libasyncjob unless asked; the drop-in sets it at load. */
extern int orphan_reclaim;

/* From ASYNC_WAIT_CTX_free(), while ctx still has job references besides the user's. */
void orphan_reclaim_ctx(ASYNC_WAIT_CTX *ctx);

/* Put the quarantined jobs whose time is up back into the pool (outside a job only). */
void orphan_drain_due(struct pool_thread *pt);

#endif /* ASYNCJOB_ORPHAN_H */
