/* async.h: the API layer's rules that the OpenSSL drop-in applies too (lib/async.c,
 * lib/openssl_dropin.c), so that each is written once. */
#ifndef ASYNCJOB_ASYNC_H
#define ASYNCJOB_ASYNC_H

#include "compiler.h"
#include "pool.h"

/* The rule for resuming: the job's own thread, outside any job, a paused job. active_tid is
 * the owner's id exactly while the job is started and not finished, and with no job
 * current a started job is paused: two compares say it all. On the resume path. */
static ALWAYS_INLINE int async_may_resume(const struct pool_thread *pt, const ASYNC_JOB *job)
{
    return job->active_tid == pt->thread_id && pt->current == NULL;
}

#endif /* ASYNCJOB_ASYNC_H */
