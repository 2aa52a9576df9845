/*
 * note_self.h: job bodies that tell the test which handle the running job has. Each gets,
 * as its argument copy, a pointer to the caller's ASYNC_JOB * variable, and writes
 * ASYNC_get_current_job() there. Shared by test_job and test_pool.
 */
#ifndef ASYNCJOB_NOTE_SELF_H
#define ASYNCJOB_NOTE_SELF_H

#include <asyncjob.h>

/* Note the handle and return at once. */
static int note_self(void *arg)
{
    ASYNC_JOB **dst = *(ASYNC_JOB ***)arg;
    *dst = ASYNC_get_current_job();
    return 0;
}

/* Note the handle, pause once, then return. */
static int note_self_and_pause(void *arg)
{
    ASYNC_JOB **dst = *(ASYNC_JOB ***)arg;
    *dst = ASYNC_get_current_job();
    ASYNC_pause_job();
    return 0;
}

#endif /* ASYNCJOB_NOTE_SELF_H */
