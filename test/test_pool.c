/*
 * test_pool.c: the per-thread job pool through the public API: ASYNC_init_thread's limits
 * and pre-creation, re-init, cleanup (twice, inside a job, with jobs still paused) and LIFO
 * reuse. Stacks are counted through ASYNC_set_mem_functions (counting_stacks.h).
 */
#include <asyncjob.h>

#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "counting_stacks.h"
#include "check_suite.h"
#include "job_bodies.h"

/* The pool hands out `limit` jobs at once and refuses one more with ASYNC_NO_JOBS; the
 * jobs are finished again. */
static void expect_limit(int limit)
{
    ASYNC_JOB *jobs[8], *extra = NULL;
    ck_assert_int_le(limit, 8);
    for (int i = 0; i < limit; i++)
        jobs[i] = start_paused();
    expect_start(ASYNC_NO_JOBS, &extra, NULL, NULL, pause_once, NULL, 0);
    expect_error(ASYNCJOB_EPOOLFULL);
    for (int i = 0; i < limit; i++)
        finish(jobs[i]);
}

/* ---- init / cleanup ---- */

START_TEST(init_cleanup_reinit)
{
    ck_assert_int_eq(ASYNC_init_thread(4, 2), 1);
    ASYNC_JOB *a = start_paused();
    finish(a);
    ASYNC_cleanup_thread();
    /* After cleanup the thread starts over with a new limit. */
    ck_assert_int_eq(ASYNC_init_thread(2, 1), 1);
    expect_limit(2);
    ASYNC_cleanup_thread();
    /* And with no ASYNC_init_thread at all, the first start makes an unlimited pool. */
    ASYNC_JOB *many[20];
    for (int i = 0; i < 20; i++)
        many[i] = start_paused();
    for (int i = 0; i < 20; i++)
        finish(many[i]);
}
END_TEST

START_TEST(first_start_without_init_unlimited)
{
    enum { N = 300 };
    ASYNC_JOB **jobs = calloc(N, sizeof(*jobs));
    ck_assert_ptr_nonnull(jobs);
    for (int i = 0; i < N; i++)
        jobs[i] = start_paused();
    for (int i = 0; i < N; i++)
        finish(jobs[i]);
    free(jobs);
}
END_TEST

START_TEST(max_size_limits_no_jobs)
{
    ck_assert_int_eq(ASYNC_init_thread(3, 0), 1);
    ASYNC_JOB *j[3];
    for (int i = 0; i < 3; i++)
        j[i] = start_paused();
    ASYNC_JOB *extra = NULL;
    int ret = -5;
    int arg = 9;
    expect_start(ASYNC_NO_JOBS, &extra, NULL, &ret, return_arg, &arg, sizeof(arg));
    ck_assert_ptr_null(extra);
    ck_assert_int_eq(ret, -5);
    /* Retry later: once a job finished, a start works again. */
    finish(j[1]);
    expect_start(ASYNC_FINISH, &extra, NULL, &ret, return_arg, &arg, sizeof(arg));
    ck_assert_int_eq(ret, 9);
    finish(j[0]);
    finish(j[2]);
}
END_TEST

START_TEST(pool_full_error_code)
{
    ck_assert_int_eq(ASYNC_init_thread(1, 1), 1);
    ASYNC_JOB *j = start_paused();
    ASYNC_JOB *extra = NULL;
    expect_error(0);
    expect_start(ASYNC_NO_JOBS, &extra, NULL, NULL, return_arg, NULL, 0);
    expect_error(ASYNCJOB_EPOOLFULL);
    finish(j);
}
END_TEST

START_TEST(init_size_above_max_refused)
{
    ck_assert_int_eq(ASYNC_init_thread(2, 3), 0);
    expect_error(ASYNCJOB_ERANGE);
    /* Equal is fine. */
    ck_assert_int_eq(ASYNC_init_thread(3, 3), 1);
}
END_TEST

/* Sizes above INT_MAX are refused before anything is made (OpenSSL's bound): without it,
 * (SIZE_MAX, SIZE_MAX) makes jobs until memory runs out. */
START_TEST(pool_sizes_bounded)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ck_assert_int_eq(ASYNC_init_thread((size_t)INT_MAX + 1, 0), 0);
    expect_error(ASYNCJOB_EPOOLSIZE);
    ck_assert_int_eq(ASYNC_init_thread(0, (size_t)INT_MAX + 1), 0);
    expect_error(ASYNCJOB_EPOOLSIZE);
    ck_assert_int_eq(ASYNC_init_thread(SIZE_MAX, SIZE_MAX), 0);
    expect_error(ASYNCJOB_EPOOLSIZE);
    ck_assert_int_eq(counted.calls, 0);
    /* INT_MAX itself is a valid limit. */
    ck_assert_int_eq(ASYNC_init_thread(INT_MAX, 1), 1);
    ck_assert_int_eq(counted.allocs, 1);
}
END_TEST

/* A limit lowered while more jobs than it are in use takes effect as they come back: each
 * finished job beyond it is freed, not pooled, and starts are refused until fewer than
 * the limit are in use. */
START_TEST(lowered_max_size_enforced_as_jobs_finish)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 0), 1);
    ASYNC_JOB *j[10];
    for (int i = 0; i < 10; i++)
        j[i] = start_paused();
    ck_assert_int_eq(ASYNC_init_thread(2, 0), 1);
    ASYNC_JOB *extra = NULL;
    expect_start(ASYNC_NO_JOBS, &extra, NULL, NULL, pause_once, NULL, 0);
    expect_error(ASYNCJOB_EPOOLFULL);
    /* 8 finish: each is freed, 2 stay in use. */
    for (int i = 0; i < 8; i++) {
        finish(j[i]);
        ck_assert_int_eq(counted.frees, i + 1);
    }
    expect_start(ASYNC_NO_JOBS, &extra, NULL, NULL, pause_once, NULL, 0);
    /* The last two go back to the pool; the limit is 2 from now on. */
    finish(j[8]);
    finish(j[9]);
    ck_assert_int_eq(stacks(), 2);
    expect_limit(2);
    ck_assert_int_eq(counted.allocs, 10);
    ck_assert_int_eq(stacks(), 2);
}
END_TEST

START_TEST(max_zero_any_init_size)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 1), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 50), 1);
    ck_assert_int_eq(counted.allocs, 50);
}
END_TEST

START_TEST(init_size_precreates)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 5), 1);
    /* Five stacks exist before any job starts. */
    ck_assert_int_eq(counted.allocs, 5);
    ASYNC_JOB *j[6];
    for (int i = 0; i < 5; i++)
        j[i] = start_paused();
    ck_assert_int_eq(counted.allocs, 5);
    /* The sixth is created on demand. */
    j[5] = start_paused();
    ck_assert_int_eq(counted.allocs, 6);
    for (int i = 0; i < 6; i++)
        finish(j[i]);
    ck_assert_int_eq(counted.frees, 0);
}
END_TEST

START_TEST(init_stops_at_failed_creation)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    counted.fail_after = 2;
    ck_assert_int_eq(ASYNC_init_thread(0, 5), 1);
    /* Two made, the third failed, and no further attempt. */
    ck_assert_int_eq(counted.allocs, 2);
    ck_assert_int_eq(counted.calls, 3);
    ASYNC_JOB *a = start_paused();
    ASYNC_JOB *b = start_paused();
    finish(a);
    finish(b);
}
END_TEST

START_TEST(reinit_reconfigures_without_leak)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 4), 1);
    ck_assert_int_eq(counted.allocs, 4);
    /* A lower limit: never more than 2 jobs from now on. */
    ck_assert_int_eq(ASYNC_init_thread(2, 1), 1);
    ck_assert_int_le(stacks(), 2);
    expect_limit(2);
    /* Unlimited again, topped up to 6 idle jobs. */
    ck_assert_int_eq(ASYNC_init_thread(0, 6), 1);
    ck_assert_int_eq(stacks(), 6);
    ASYNC_JOB *j[7];
    for (int i = 0; i < 7; i++)
        j[i] = start_paused();
    for (int i = 0; i < 7; i++)
        finish(j[i]);
    ASYNC_cleanup_thread();
    ck_assert_int_gt(counted.allocs, 0);
    ck_assert_int_eq(counted.frees, counted.allocs);
}
END_TEST

START_TEST(lifo_reuse)
{
    ASYNC_JOB *seen_a = NULL, *seen_b = NULL, *next = NULL;
    ASYNC_JOB **pa = &seen_a, **pb = &seen_b, **pn = &next;
    ASYNC_JOB *a = NULL, *b = NULL, *n = NULL;
    expect_start(ASYNC_PAUSE, &a, NULL, NULL, note_self_and_pause, &pa, sizeof(pa));
    expect_start(ASYNC_PAUSE, &b, NULL, NULL, note_self_and_pause, &pb, sizeof(pb));
    ck_assert_ptr_ne(seen_a, seen_b);
    /* a finishes first, b last: b is handed out next. */
    expect_resume(ASYNC_FINISH, &a, NULL);
    expect_resume(ASYNC_FINISH, &b, NULL);
    expect_start(ASYNC_FINISH, &n, NULL, NULL, note_self, &pn, sizeof(pn));
    ck_assert_ptr_eq(next, seen_b);
    /* Now the other order: b finishes first, a last: a comes next. */
    expect_start(ASYNC_PAUSE, &a, NULL, NULL, note_self_and_pause, &pa, sizeof(pa));
    expect_start(ASYNC_PAUSE, &b, NULL, NULL, note_self_and_pause, &pb, sizeof(pb));
    expect_resume(ASYNC_FINISH, &b, NULL);
    expect_resume(ASYNC_FINISH, &a, NULL);
    n = NULL;
    expect_start(ASYNC_FINISH, &n, NULL, NULL, note_self, &pn, sizeof(pn));
    ck_assert_ptr_eq(next, seen_a);
}
END_TEST

START_TEST(cleanup_twice_harmless)
{
    /* Before anything was initialised. */
    ASYNC_cleanup_thread();
    ASYNC_cleanup_thread();
    ck_assert_int_eq(ASYNC_init_thread(2, 2), 1);
    ASYNC_JOB *a = start_paused();
    finish(a);
    ASYNC_cleanup_thread();
    ASYNC_cleanup_thread();
    ck_assert_int_eq(ASYNC_init_thread(1, 0), 1);
    expect_limit(1);
}
END_TEST

static int cleanup_error;
static ASYNC_JOB *cleanup_job_before, *cleanup_job_after;

static int cleanup_inside(void *arg)
{
    (void)arg;
    cleanup_job_before = ASYNC_get_current_job();
    ASYNC_cleanup_thread();
    cleanup_error = asyncjob_last_error();
    cleanup_job_after = ASYNC_get_current_job();
    ASYNC_pause_job();
    return 11;
}

START_TEST(cleanup_inside_job_refused)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 3), 1);
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, cleanup_inside, NULL, 0);
    ck_assert_int_eq(cleanup_error, ASYNCJOB_EINJOB);
    ck_assert_ptr_eq(cleanup_job_after, cleanup_job_before);
    /* Nothing was freed: the two idle jobs are still there. */
    ck_assert_int_eq(counted.frees, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, cleanup_inside, NULL, 0);
    ck_assert_int_eq(ret, 11);
    ASYNC_JOB *j[3];
    for (int i = 0; i < 3; i++)
        j[i] = start_paused();
    ck_assert_int_eq(counted.allocs, 3);
    for (int i = 0; i < 3; i++)
        finish(j[i]);
}
END_TEST

START_TEST(paused_job_survives_cleanup)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 2), 1);
    ck_assert_int_eq(counted.allocs, 2);
    int v = 1234;
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_once, &v, sizeof(v));
    void *paused_stack = counted.handed_out[1]; /* LIFO: the last one created is handed out first */
    ASYNC_cleanup_thread();
    /* Only the idle job was freed. */
    ck_assert_int_eq(counted.frees, 1);
    ck_assert_ptr_eq(counted.freed[0], counted.handed_out[0]);
    /* The paused job still resumes and finishes, and is then freed, not pooled. */
    expect_start(ASYNC_FINISH, &job, NULL, &ret, pause_once, NULL, 0);
    ck_assert_int_eq(ret, 1234);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(counted.frees, 2);
    ck_assert_ptr_eq(counted.freed[1], paused_stack);
    /* So the next start needs a new stack. */
    ASYNC_JOB *next = start_paused();
    ck_assert_int_eq(counted.allocs, 3);
    finish(next);
}
END_TEST

START_TEST(orphan_not_counted_in_new_pool)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ASYNC_JOB *orphan = start_paused();
    ASYNC_cleanup_thread();
    /* A new pool of one job: the orphan paused from the old pool does not count. */
    ck_assert_int_eq(ASYNC_init_thread(1, 0), 1);
    ASYNC_JOB *j = start_paused();
    ck_assert_int_eq(counted.allocs, 2);
    ASYNC_JOB *extra = NULL;
    expect_start(ASYNC_NO_JOBS, &extra, NULL, NULL, pause_once, NULL, 0);
    /* Finishing the orphan frees it instead of adding it to the new pool. */
    finish(orphan);
    ck_assert_int_eq(counted.frees, 1);
    ck_assert_ptr_eq(counted.freed[0], counted.handed_out[0]);
    expect_start(ASYNC_NO_JOBS, &extra, NULL, NULL, pause_once, NULL, 0);
    finish(j);
    /* The new pool's own job is pooled: the next start reuses it. */
    j = start_paused();
    ck_assert_int_eq(counted.allocs, 2);
    finish(j);
}
END_TEST

SUITE("pool", 60, NULL, init_cleanup_reinit, first_start_without_init_unlimited,
      max_size_limits_no_jobs, pool_full_error_code, init_size_above_max_refused,
      pool_sizes_bounded, lowered_max_size_enforced_as_jobs_finish,
      max_zero_any_init_size, init_size_precreates, init_stops_at_failed_creation,
      reinit_reconfigures_without_leak, lifo_reuse, cleanup_twice_harmless,
      cleanup_inside_job_refused, paused_job_survives_cleanup, orphan_not_counted_in_new_pool)

#include "tap_main.h"
