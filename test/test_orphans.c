/*
 * test_orphans.c: reclaiming orphaned jobs (asyncjob_reclaim_orphans(3)). Off: a paused job
 * whose wait ctx is freed keeps its pool slot and can still be resumed. On: freeing the ctx
 * frees the slot, the stale handle is refused, ASYNC_get_wait_ctx() answers NULL (also from
 * another thread, as a late engine wake-up would ask), a late write to the job's stack
 * lands on a page given back, and after the quarantine the job serves a new start.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <unistd.h>

#include "check_suite.h"
#include "sanitizers.h"

/* Where the paused job keeps a word on its own stack, as an engine's request would be. */
static volatile int *stack_word;

static int pause_with_word(void *arg)
{
    volatile int word = 1234;
    (void)arg;
    stack_word = &word;
    if (ASYNC_pause_job() != 1)
        return -1;
    return word;
}

/* The job that ran return_7 last. */
static ASYNC_JOB *ran_7;

static int return_7(void *arg)
{
    (void)arg;
    ran_7 = ASYNC_get_current_job();
    return 7;
}

/* A pool of one job, paused with a fresh ctx; the ctx is freed. */
static ASYNC_JOB *orphan_one(void)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    ck_assert_int_eq(ASYNC_init_thread(1, 0), 1);
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, pause_with_word, NULL, 0);
    ck_assert_ptr_eq(ASYNC_get_wait_ctx(job), ctx);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_ptr_null(ASYNC_get_wait_ctx(job));
    return job;
}

START_TEST(off_by_default)
{
    ASYNC_JOB *job = orphan_one(), *other = NULL;
    int ret = 0;
    /* The slot stays taken, and the job can still finish. */
    expect_start(ASYNC_NO_JOBS, &other, NULL, &ret, return_7, NULL, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, NULL, NULL, 0);
    ck_assert_int_eq(ret, 1234);
}
END_TEST

static void *ask_wait_ctx(void *job)
{
    return ASYNC_get_wait_ctx(job);
}

START_TEST(reclaimed_when_on)
{
    ck_assert_int_eq(asyncjob_reclaim_orphans(1), 0);
    ASYNC_JOB *job = orphan_one(), *stale = job, *other = NULL;
    int ret = 0;
    /* The slot is free again: a new job can start though the pool holds one. */
    expect_start(ASYNC_FINISH, &other, NULL, &ret, return_7, NULL, 0);
    ck_assert_int_eq(ret, 7);
    /* The stale handle is refused, and nothing on the stack runs again. */
    expect_start(ASYNC_ERR, &stale, NULL, &ret, NULL, NULL, 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_ENOTPAUSED);
    /* A late wake-up from another thread finds no ctx. */
    pthread_t t;
    void *seen = (void *)1;
    ck_assert_int_eq(pthread_create(&t, NULL, ask_wait_ctx, job), 0);
    ck_assert_int_eq(pthread_join(t, &seen), 0);
    ck_assert_ptr_null(seen);
    /* The stack's pages were given back: the word reads 0, and a late write is harmless.
     * (Under ASan the word lives on its fake stack, on the heap.) */
    if (!TEST_ASAN)
        ck_assert_int_eq(*stack_word, 0);
    *stack_word = 99;
    ck_assert_int_eq(asyncjob_reclaim_orphans(0), 1);
}
END_TEST

START_TEST(quarantine_then_reuse)
{
    asyncjob_reclaim_orphans(1);
    ASYNC_JOB *job = orphan_one(), *first = NULL, *again = NULL;
    int ret = 0;
    /* Within the quarantine a new start gets a new job (the pool may hold one). */
    expect_start(ASYNC_PAUSE, &first, NULL, &ret, pause_with_word, NULL, 0);
    ck_assert_ptr_ne(first, job);
    expect_start(ASYNC_FINISH, &first, NULL, &ret, NULL, NULL, 0);
    /* After it, the reclaimed job serves a start with a fresh stack. */
    usleep(1100 * 1000);
    ck_assert_int_eq(ASYNC_init_thread(2, 0), 1);
    expect_start(ASYNC_PAUSE, &again, NULL, &ret, pause_with_word, NULL, 0);
    ASYNC_JOB *second = NULL;
    expect_start(ASYNC_FINISH, &second, NULL, &ret, return_7, NULL, 0);
    ck_assert_msg(again == job || ran_7 == job, "the reclaimed job was not used again");
    expect_start(ASYNC_FINISH, &again, NULL, &ret, NULL, NULL, 0);
    ck_assert_int_eq(ret, 1234);
    asyncjob_reclaim_orphans(0);
}
END_TEST

SUITE("orphans", 10, NULL, off_by_default, reclaimed_when_on, quarantine_then_reuse)

#include "tap_main.h"
