/*
 * job_bodies.h: job functions and start/finish steps shared by the pool and job suites.
 * The note_self bodies get, as their argument copy, a pointer to the caller's ASYNC_JOB *
 * variable and write ASYNC_get_current_job() there.
 */
#ifndef ASYNCJOB_TEST_JOB_BODIES_H
#define ASYNCJOB_TEST_JOB_BODIES_H

#include <asyncjob.h>
#include <check.h>

/* Note the handle and return at once. */
static inline int note_self(void *arg)
{
    ASYNC_JOB **dst = *(ASYNC_JOB ***)arg;
    *dst = ASYNC_get_current_job();
    return 0;
}

/* Note the handle, pause once, then return. */
static inline int note_self_and_pause(void *arg)
{
    ASYNC_JOB **dst = *(ASYNC_JOB ***)arg;
    *dst = ASYNC_get_current_job();
    ASYNC_pause_job();
    return 0;
}

/* Return the int argument, 0 without one. */
static inline int return_arg(void *arg)
{
    return arg == NULL ? 0 : *(int *)arg;
}

/* Pause once, then return the int argument, 1 without one. */
static inline int pause_once(void *arg)
{
    ASYNC_pause_job();
    return arg == NULL ? 1 : *(int *)arg;
}

/* Start a pause_once job; the test fails unless it pauses. */
static inline ASYNC_JOB *start_paused(void)
{
    ASYNC_JOB *job = NULL;
    int ret;
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, pause_once, NULL, 0), ASYNC_PAUSE);
    ck_assert_ptr_nonnull(job);
    return job;
}

/* Resume a job from start_paused() to its end. */
static inline void finish(ASYNC_JOB *job)
{
    int ret = 0;
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, pause_once, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ret, 1);
    ck_assert_ptr_null(job);
}

#endif /* ASYNCJOB_TEST_JOB_BODIES_H */
