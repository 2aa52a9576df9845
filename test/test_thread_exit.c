/*
 * test_thread_exit.c: what a thread leaves behind when it ends or loses a job: its jobs at
 * thread exit (idle, paused, paused after ASYNC_cleanup_thread, and the running one when
 * the thread calls pthread_exit inside a job), and a job left by a longjmp, recovered with
 * asyncjob_abandon_job(). Stacks are counted (counting_stacks.h); each case runs in a
 * child whose stderr is read, so that a sanitizer's word fails it (child.h).
 */
#include <asyncjob.h>

#include <check.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suite.h"
#include "child.h"
#include "counting_stacks.h"
#include "sanitizers.h"
#include "tap_skip.h"

/* Child exit codes: which check failed. */
enum { BAD_SETUP = 60, BAD_START, BAD_LEFT, BAD_ERROR, BAD_AFTER };

static int pause_forever(void *arg)
{
    (void)arg;
    for (;;)
        if (ASYNC_pause_job() != 1)
            return -1;
}

static int exit_thread(void *arg)
{
    (void)arg;
    pthread_exit(NULL);
}

struct big_args {
    char bytes[256]; /* above the inline copy: a heap copy the job holds */
};

/* Start a job that stays paused, `n` times; the even ones with a wait ctx that is freed at
 * once (the job keeps it alive) and a heap copy of their arguments. */
static void start_paused_jobs(int n)
{
    for (int i = 0; i < n; i++) {
        ASYNC_JOB *job = NULL;
        int ret;
        ASYNC_WAIT_CTX *ctx = i % 2 == 0 ? ASYNC_WAIT_CTX_new() : NULL;
        struct big_args big = { { 0 } };
        if (ASYNC_start_job(&job, ctx, &ret, pause_forever, i % 2 == 0 ? &big : NULL,
                            i % 2 == 0 ? sizeof(big) : 0) != ASYNC_PAUSE)
            _exit(BAD_START);
        ASYNC_WAIT_CTX_free(ctx);
    }
}

/* The thread's pool: 8 jobs made ahead, 5 of them paused, then `how` it ends. */
enum thread_end { END_RETURN, END_CLEANUP_THEN_RETURN, END_EXIT_IN_JOB };

static void *jobs_then_end(void *arg)
{
    enum thread_end how = *(enum thread_end *)arg;
    if (ASYNC_init_thread(0, 8) != 1)
        _exit(BAD_SETUP);
    start_paused_jobs(5);
    if (how == END_CLEANUP_THEN_RETURN)
        ASYNC_cleanup_thread();
    if (how == END_EXIT_IN_JOB) {
        ASYNC_JOB *job = NULL;
        int ret;
        ASYNC_start_job(&job, NULL, &ret, exit_thread, NULL, 0);
        _exit(BAD_START); /* pthread_exit does not come back */
    }
    return NULL;
}

/* A thread ends as told; afterwards every stack it had is freed. */
static void thread_ends(enum thread_end how)
{
    if (use_counting_stacks() != 1)
        _exit(BAD_SETUP);
    pthread_t t;
    if (pthread_create(&t, NULL, jobs_then_end, &how) != 0 || pthread_join(t, NULL) != 0)
        _exit(BAD_SETUP);
    if (counted.allocs != 8)
        _exit(BAD_SETUP);
    if (stacks() != 0)
        _exit(BAD_LEFT);
}

static void paused_jobs_freed_at_exit_body(void)
{
    thread_ends(END_RETURN);
}

/* Paused jobs of an exiting thread can never run again: their stacks, argument copies and
 * wait ctx references go with the thread (valgrind's leak check covers the latter two). */
START_TEST(paused_jobs_freed_at_exit)
{
    run_quietly(paused_jobs_freed_at_exit_body);
}
END_TEST

static void orphans_freed_at_exit_body(void)
{
    thread_ends(END_CLEANUP_THEN_RETURN);
}

/* ASYNC_cleanup_thread() leaves paused jobs to be resumed; if the thread ends first, they
 * go with it. */
START_TEST(orphans_freed_at_exit)
{
    run_quietly(orphans_freed_at_exit_body);
}
END_TEST

static void pthread_exit_in_job_body(void)
{
    thread_ends(END_EXIT_IN_JOB);
}

/* pthread_exit inside a job frees what a normal exit frees: idle jobs, paused ones, and
 * the job that called it. */
START_TEST(pthread_exit_in_job_frees_all)
{
#if TEST_TSAN
    tap_skip("ThreadSanitizer's pthread_exit interceptor stops the process when called on a "
             "fiber other than the thread's own (CHECK thr == &cur_thread_placeholder), "
             "before asyncjob runs");
#endif
#if !defined(__GLIBC__)
    tap_skip("this C library runs a thread's exit on the stack pthread_exit was called on, "
             "so the job's stack stays mapped (asyncjob(7), What thread exit frees)");
#endif
    run_quietly(pthread_exit_in_job_body);
}
END_TEST

/* ---- longjmp out of a job, and asyncjob_abandon_job() ---- */

static jmp_buf outside;

static int jump_out(void *arg)
{
    (void)arg;
    longjmp(outside, 1);
}

static int abandon_inside(void *arg)
{
    (void)arg;
    /* The job is running normally: abandoning itself is refused, and it goes on. */
    if (asyncjob_abandon_job() != 0 || asyncjob_last_error() != ASYNCJOB_EINJOB)
        return -1;
    return ASYNC_pause_job() == 1 ? 7 : -2;
}

static void longjmp_then_abandon_body(void)
{
    if (use_counting_stacks() != 1)
        _exit(BAD_SETUP);
    if (asyncjob_abandon_job() != 0 || asyncjob_last_error() != ASYNCJOB_ENOJOB)
        _exit(BAD_ERROR);
    ASYNC_JOB *paused = NULL;
    int ret;
    if (ASYNC_start_job(&paused, NULL, &ret, pause_forever, NULL, 0) != ASYNC_PAUSE)
        _exit(BAD_START);
    for (int round = 0; round < 3; round++) {
        ASYNC_JOB *job = NULL;
        if (setjmp(outside) == 0) {
            ASYNC_start_job(&job, NULL, &ret, jump_out, NULL, 0);
            _exit(BAD_START); /* the job never returns */
        }
        /* The thread is wedged in the job it left: */
        ASYNC_JOB *other = NULL;
        if (ASYNC_start_job(&other, NULL, &ret, pause_forever, NULL, 0) != ASYNC_ERR ||
            asyncjob_last_error() != ASYNCJOB_ENESTED)
            _exit(BAD_ERROR);
        if (ASYNC_init_thread(0, 0) != 0 || asyncjob_last_error() != ASYNCJOB_EINJOB)
            _exit(BAD_ERROR);
        /* until the job is abandoned: its stack goes, the thread works again. */
        long before = stacks();
        if (asyncjob_abandon_job() != 1 || stacks() != before - 1)
            _exit(BAD_LEFT);
        if (ASYNC_get_current_job() != NULL)
            _exit(BAD_LEFT);
    }
    /* Everything works again: a paused job from before resumes, new ones run. */
    if (ASYNC_start_job(&paused, NULL, &ret, NULL, NULL, 0) != ASYNC_PAUSE)
        _exit(BAD_AFTER);
    ASYNC_JOB *job = NULL;
    if (ASYNC_start_job(&job, NULL, &ret, abandon_inside, NULL, 0) != ASYNC_PAUSE ||
        ASYNC_start_job(&job, NULL, &ret, NULL, NULL, 0) != ASYNC_FINISH || ret != 7)
        _exit(BAD_AFTER);
    if (asyncjob_cancel_job(&paused, &ret) != ASYNC_FINISH || ret != -1)
        _exit(BAD_AFTER);
    ASYNC_cleanup_thread();
    if (stacks() != 0)
        _exit(BAD_LEFT);
}

/* A longjmp out of a running job wedges the thread (ENESTED, EINJOB) until
 * asyncjob_abandon_job() frees that job; refused (EINJOB) from the job's own stack, and
 * ENOJOB with no job. */
START_TEST(longjmp_out_then_abandon)
{
#if TEST_TSAN
    tap_skip("ThreadSanitizer's longjmp interceptor stops the process: it looks for the "
             "setjmp among the job fiber's, and it was made on the dispatcher's");
#endif
    run_quietly(longjmp_then_abandon_body);
}
END_TEST

SUITE("thread_exit", 60, NULL, paused_jobs_freed_at_exit, orphans_freed_at_exit,
      pthread_exit_in_job_frees_all, longjmp_out_then_abandon)

#include "tap_main.h"
