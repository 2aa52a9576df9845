/*
 * test_job.c: the job side of the ASYNC_* API (start, pause, resume, finish, arguments,
 * current job, block/unblock, misuse cases, error reporting), checked against
 * ASYNC_start_job(3) and asyncjob_strerror(3) through the installed library's public header
 * only.
 */
#include <asyncjob.h>

#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_suite.h"
#include "job_bodies.h"

/* A value *ret must keep when the spec says it is untouched. */
#define UNTOUCHED (-12345)

/* ---- start, pause, resume, finish ---- */

static int calls;

static int return_42(void *arg)
{
    (void)arg;
    calls++;
    return 42;
}

START_TEST(start_finish_at_once)
{
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, return_42, NULL, 0);
    ck_assert_int_eq(ret, 42);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(calls, 1);
    ck_assert_ptr_null(ASYNC_get_current_job());
}
END_TEST

/* Pauses twice; `steps` shows how far it got, `pause_results` what each pause returned. */
static int steps;
static int pause_results[2];

static int pause_twice(void *arg)
{
    (void)arg;
    steps = 1;
    pause_results[0] = ASYNC_pause_job();
    steps = 2;
    pause_results[1] = ASYNC_pause_job();
    steps = 3;
    return 7;
}

/* Resume a pause_twice job that is at its first pause, through its second, to its end. */
static void finish_from_first_pause(ASYNC_JOB **job, int *ret)
{
    expect_start(ASYNC_PAUSE, job, NULL, ret, pause_twice, NULL, 0);
    ck_assert_int_eq(steps, 2);
    expect_start(ASYNC_FINISH, job, NULL, ret, pause_twice, NULL, 0);
}

START_TEST(start_pause_resume_finish)
{
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    ck_assert_ptr_nonnull(job);
    ck_assert_int_eq(ret, UNTOUCHED);
    ck_assert_int_eq(steps, 1);
    ASYNC_JOB *first = job;

    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    ck_assert_ptr_eq(job, first);
    ck_assert_int_eq(ret, UNTOUCHED);
    ck_assert_int_eq(steps, 2);

    expect_start(ASYNC_FINISH, &job, NULL, &ret, pause_twice, NULL, 0);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(ret, 7);
    ck_assert_int_eq(steps, 3);
}
END_TEST

START_TEST(pause_returns_one_after_resume)
{
    ASYNC_JOB *job = NULL;
    int ret;
    pause_results[0] = pause_results[1] = -1;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, pause_twice, NULL, 0);
    ck_assert_int_eq(pause_results[0], 1);
    ck_assert_int_eq(pause_results[1], 1);
}
END_TEST

/* On a resume, func/args/size are ignored: the job continues where it paused. */
static int other_func_called;

static int other_func(void *arg)
{
    (void)arg;
    other_func_called = 1;
    return -1;
}

START_TEST(resume_ignores_func_and_args)
{
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    char junk[4] = "abc";
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, other_func, junk, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, NULL, junk, sizeof(junk));
    ck_assert_int_eq(ret, 7);
    ck_assert_int_eq(other_func_called, 0);
}
END_TEST

START_TEST(ret_null_allowed)
{
    ASYNC_JOB *job = NULL;
    expect_start(ASYNC_PAUSE, &job, NULL, NULL, pause_twice, NULL, 0);
    expect_start(ASYNC_PAUSE, &job, NULL, NULL, pause_twice, NULL, 0);
    expect_start(ASYNC_FINISH, &job, NULL, NULL, pause_twice, NULL, 0);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(steps, 3);
    /* A job that finishes at once, too. */
    expect_start(ASYNC_FINISH, &job, NULL, NULL, return_42, NULL, 0);
    ck_assert_int_eq(calls, 1);
}
END_TEST

/* Records what the job sees of itself before and after a pause. */
static ASYNC_JOB *seen_job[2];
static ASYNC_WAIT_CTX *seen_ctx[2];

static int look_around(void *arg)
{
    (void)arg;
    seen_job[0] = ASYNC_get_current_job();
    seen_ctx[0] = ASYNC_get_wait_ctx(seen_job[0]);
    ASYNC_pause_job();
    seen_job[1] = ASYNC_get_current_job();
    seen_ctx[1] = ASYNC_get_wait_ctx(seen_job[1]);
    return 5;
}

START_TEST(wctx_null_allowed)
{
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    seen_ctx[0] = seen_ctx[1] = (ASYNC_WAIT_CTX *)&ret; /* not NULL: must be overwritten */
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, look_around, NULL, 0);
    ck_assert_ptr_null(seen_ctx[0]);
    ck_assert_ptr_null(ASYNC_get_wait_ctx(job));
    expect_start(ASYNC_FINISH, &job, NULL, &ret, look_around, NULL, 0);
    ck_assert_ptr_null(seen_ctx[1]);
    ck_assert_int_eq(ret, 5);
}
END_TEST

START_TEST(current_job_identity)
{
    ASYNC_JOB *job = NULL;
    int ret;
    ck_assert_ptr_null(ASYNC_get_current_job());
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, look_around, NULL, 0);
    ck_assert_ptr_nonnull(seen_job[0]);
    ck_assert_ptr_eq(seen_job[0], job);
    /* Outside the job again, nothing runs. */
    ck_assert_ptr_null(ASYNC_get_current_job());
    ASYNC_JOB *handle = job;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, look_around, NULL, 0);
    ck_assert_ptr_eq(seen_job[1], handle);
    ck_assert_ptr_null(ASYNC_get_current_job());
}
END_TEST

START_TEST(wait_ctx_of_job)
{
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, look_around, NULL, 0);
    ck_assert_ptr_eq(seen_ctx[0], ctx);
    /* Asked from outside through the paused handle. */
    ck_assert_ptr_eq(ASYNC_get_wait_ctx(job), ctx);
    expect_start(ASYNC_FINISH, &job, ctx, &ret, look_around, NULL, 0);
    ck_assert_ptr_eq(seen_ctx[1], ctx);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(wait_ctx_of_null_job)
{
    ck_assert_ptr_null(ASYNC_get_wait_ctx(NULL));
}
END_TEST

/* ---- block / unblock ---- */

static int block_steps;

/* Two blocks need two unblocks: the first two pauses are no-ops, the third pauses. */
static int block_nested(void *arg)
{
    (void)arg;
    ASYNC_block_pause();
    ASYNC_block_pause();
    pause_results[0] = ASYNC_pause_job();
    block_steps = 1;
    ASYNC_unblock_pause();
    pause_results[1] = ASYNC_pause_job();
    block_steps = 2;
    ASYNC_unblock_pause();
    ASYNC_pause_job();
    block_steps = 3;
    return 9;
}

START_TEST(block_pause_nesting)
{
    ASYNC_JOB *job = NULL;
    int ret;
    pause_results[0] = pause_results[1] = -1;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, block_nested, NULL, 0);
    ck_assert_int_eq(block_steps, 2);
    /* A blocked pause is a no-op that still counts as success. */
    ck_assert_int_eq(pause_results[0], 1);
    ck_assert_int_eq(pause_results[1], 1);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, block_nested, NULL, 0);
    ck_assert_int_eq(block_steps, 3);
    ck_assert_int_eq(ret, 9);
}
END_TEST

/* Unblocking an unblocked job must not drive the count below zero. */
static int unblock_too_often(void *arg)
{
    (void)arg;
    ASYNC_unblock_pause();
    ASYNC_unblock_pause();
    ASYNC_block_pause();
    ASYNC_unblock_pause();
    block_steps = 1;
    ASYNC_pause_job(); /* count is 0 again: this pauses */
    block_steps = 2;
    return 0;
}

START_TEST(unblock_never_below_zero)
{
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, unblock_too_often, NULL, 0);
    ck_assert_int_eq(block_steps, 1);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, unblock_too_often, NULL, 0);
    ck_assert_int_eq(block_steps, 2);
}
END_TEST

START_TEST(block_outside_job_no_effect)
{
    ASYNC_block_pause();
    ASYNC_block_pause();
    ASYNC_unblock_pause();
    ASYNC_JOB *job = NULL;
    int ret;
    /* Had the block outside a job counted, this job could not pause. */
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    ck_assert_int_eq(steps, 1);
    ASYNC_unblock_pause();
    ASYNC_unblock_pause();
    ASYNC_unblock_pause();
    ASYNC_block_pause();
    finish_from_first_pause(&job, &ret);
}
END_TEST

static int finish_blocked(void *arg)
{
    (void)arg;
    ASYNC_block_pause();
    ASYNC_block_pause();
    return 1;
}

START_TEST(block_belongs_to_job)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, finish_blocked, NULL, 0);
    ck_assert_int_eq(ret, 1);
    /* The next job (the same pooled job, LIFO) starts unblocked and can pause. */
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    ck_assert_int_eq(steps, 1);
    /* And a second job, started while the first one is paused, can pause too. */
    ASYNC_JOB *job2 = NULL;
    expect_start(ASYNC_FINISH, &job2, NULL, &ret, finish_blocked, NULL, 0);
    finish_from_first_pause(&job, &ret);
}
END_TEST

/* ---- arguments ---- */

struct small_args {
    int a;
    char text[12];
    double d;
};

static struct small_args seen_args[2];
static const void *seen_ptr;

static int copy_and_pause(void *arg)
{
    seen_ptr = arg;
    memcpy(&seen_args[0], arg, sizeof(seen_args[0]));
    ASYNC_pause_job();
    memcpy(&seen_args[1], arg, sizeof(seen_args[1]));
    return ((struct small_args *)arg)->a;
}

START_TEST(args_copied)
{
    struct small_args in;
    memset(&in, 0, sizeof(in));
    in.a = 31337;
    strcpy(in.text, "copy me");
    in.d = 2.5;
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, copy_and_pause, &in, sizeof(in));
    ck_assert_ptr_nonnull(seen_ptr);
    ck_assert_ptr_ne(seen_ptr, &in);
    ck_assert_int_eq(seen_args[0].a, 31337);
    ck_assert_str_eq(seen_args[0].text, "copy me");
    ck_assert(seen_args[0].d == 2.5);
    /* Changes to the caller's struct after the start must not reach the job. */
    in.a = -1;
    strcpy(in.text, "changed");
    in.d = 0;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, copy_and_pause, &in, sizeof(in));
    ck_assert_int_eq(seen_args[1].a, 31337);
    ck_assert_str_eq(seen_args[1].text, "copy me");
    ck_assert(seen_args[1].d == 2.5);
    ck_assert_int_eq(ret, 31337);
}
END_TEST

static int got_null_arg;

static int expect_null(void *arg)
{
    got_null_arg = (arg == NULL) ? 1 : 2;
    return 3;
}

START_TEST(args_null_size_ignored)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, expect_null, NULL, 100);
    ck_assert_int_eq(got_null_arg, 1);
    ck_assert_int_eq(ret, 3);
    got_null_arg = 0;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, expect_null, NULL, 0);
    ck_assert_int_eq(got_null_arg, 1);
}
END_TEST

#define BIG (10 * 1024)

static size_t big_mismatches[2];

static size_t count_mismatches(const unsigned char *p)
{
    size_t bad = 0;
    for (size_t i = 0; i < BIG; i++)
        if (p[i] != (unsigned char)(i * 7 + 3))
            bad++;
    return bad;
}

static int check_big(void *arg)
{
    seen_ptr = arg;
    big_mismatches[0] = count_mismatches(arg);
    ASYNC_pause_job();
    big_mismatches[1] = count_mismatches(arg);
    return 0;
}

START_TEST(args_big_copied)
{
    unsigned char *in = malloc(BIG);
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < BIG; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    big_mismatches[0] = big_mismatches[1] = (size_t)-1;
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, check_big, in, BIG);
    ck_assert_ptr_ne(seen_ptr, in);
    ck_assert_uint_eq(big_mismatches[0], 0);
    memset(in, 0, BIG);
    free(in);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, check_big, NULL, 0);
    ck_assert_uint_eq(big_mismatches[1], 0);
}
END_TEST

/* Every size from 1 to 200 bytes, across the boundary between argument copies kept inside
 * the job and copies on the heap: each byte arrives, and nothing past the end is read. */
static size_t sized_len;

static int check_sized(void *arg)
{
    const unsigned char *p = arg;
    for (size_t i = 0; i < sized_len; i++)
        if (p[i] != (unsigned char)(sized_len * 31 + i))
            return (int)i + 1;
    return 0;
}

START_TEST(args_every_size_copied)
{
    for (size_t n = 1; n <= 200; n++) {
        /* The source sits at the very end of its own allocation (ASan and valgrind see an
         * over-read) and the bytes around it differ (a short copy is seen). */
        unsigned char *block = malloc(n + 16);
        ck_assert_ptr_nonnull(block);
        memset(block, 0xEE, n + 16);
        unsigned char *src = block + 16;
        for (size_t i = 0; i < n; i++)
            src[i] = (unsigned char)(n * 31 + i);
        sized_len = n;
        ASYNC_JOB *job = NULL;
        int ret = -1;
        expect_start(ASYNC_FINISH, &job, NULL, &ret, check_sized, src, n);
        if (ret != 0)
            ck_abort_msg("size %zu: byte %d arrived wrong", n, ret - 1);
        free(block);
    }
}
END_TEST

START_TEST(args_size_zero_invalid)
{
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    int x = 1;
    expect_start(ASYNC_ERR, &job, NULL, &ret, return_42, &x, 0);
    expect_error(ASYNCJOB_EINVAL);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(ret, UNTOUCHED);
    ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(job_null_invalid)
{
    int ret = UNTOUCHED;
    expect_start(ASYNC_ERR, NULL, NULL, &ret, return_42, NULL, 0);
    expect_error(ASYNCJOB_EINVAL);
    ck_assert_int_eq(calls, 0);
    ck_assert_int_eq(ret, UNTOUCHED);
}
END_TEST

START_TEST(func_null_invalid)
{
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    expect_resume(ASYNC_ERR, &job, &ret);
    expect_error(ASYNCJOB_EINVAL);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(ret, UNTOUCHED);
    /* The thread is fine afterwards. */
    expect_start(ASYNC_FINISH, &job, NULL, &ret, return_42, NULL, 0);
}
END_TEST

/* ---- misuse: nested start, stale handle, wrong thread ---- */

static int nested_result, nested_error, inner_ran;
static ASYNC_JOB *nested_inner_handle;

static int inner(void *arg)
{
    (void)arg;
    inner_ran = 1;
    return 0;
}

static int start_from_inside(void *arg)
{
    (void)arg;
    ASYNC_JOB *self = ASYNC_get_current_job();
    nested_inner_handle = NULL;
    int r = 0;
    nested_result = ASYNC_start_job(&nested_inner_handle, NULL, &r, inner, NULL, 0);
    nested_error = asyncjob_last_error();
    /* Still the same running job, and it can still pause and resume. */
    if (ASYNC_get_current_job() != self)
        return -1;
    if (ASYNC_pause_job() != 1)
        return -2;
    return ASYNC_get_current_job() == self ? 77 : -3;
}

START_TEST(nested_start_refused)
{
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    nested_result = -1;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, start_from_inside, NULL, 0);
    ck_assert_int_eq(nested_result, ASYNC_ERR);
    ck_assert_int_eq(nested_error, ASYNCJOB_ENESTED);
    ck_assert_ptr_null(nested_inner_handle);
    ck_assert_int_eq(inner_ran, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, start_from_inside, NULL, 0);
    ck_assert_int_eq(ret, 77);
}
END_TEST

/* From inside a job, resuming another paused job (or itself) is refused too. */
static ASYNC_JOB *victim;
static int resume_results[2], resume_errors[2];

static int resume_from_inside(void *arg)
{
    (void)arg;
    ASYNC_JOB *other = victim;
    ASYNC_JOB *self = ASYNC_get_current_job();
    resume_results[0] = ASYNC_start_job(&other, NULL, NULL, inner, NULL, 0);
    resume_errors[0] = asyncjob_last_error();
    resume_results[1] = ASYNC_start_job(&self, NULL, NULL, inner, NULL, 0);
    resume_errors[1] = asyncjob_last_error();
    return other == victim && self == ASYNC_get_current_job() ? 1 : 0;
}

START_TEST(nested_resume_refused)
{
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    victim = job;
    ASYNC_JOB *job2 = NULL;
    ret = 0;
    expect_start(ASYNC_FINISH, &job2, NULL, &ret, resume_from_inside, NULL, 0);
    ck_assert_int_eq(ret, 1);
    ck_assert_int_eq(resume_results[0], ASYNC_ERR);
    ck_assert_int_eq(resume_errors[0], ASYNCJOB_ENESTED);
    ck_assert_int_eq(resume_results[1], ASYNC_ERR);
    ck_assert_int_eq(resume_errors[1], ASYNCJOB_ENESTED);
    ck_assert_int_eq(inner_ran, 0);
    /* The victim was not touched: it is still at its first pause. */
    ck_assert_int_eq(steps, 1);
    finish_from_first_pause(&job, &ret);
    ck_assert_int_eq(ret, 7);
}
END_TEST

START_TEST(stale_handle_refused)
{
    /* One job at most, so "pool unaffected" is visible as: exactly one usable job. */
    ck_assert_int_eq(ASYNC_init_thread(1, 0), 1);
    ASYNC_JOB *stale = NULL;
    ASYNC_JOB **slot = &stale;
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, note_self, &slot, sizeof(slot));
    ck_assert_ptr_nonnull(stale);

    /* The finished job sits idle in the pool; its old pointer is not a paused job. */
    job = stale;
    ret = UNTOUCHED;
    expect_start(ASYNC_ERR, &job, NULL, &ret, return_42, NULL, 0);
    expect_error(ASYNCJOB_ENOTPAUSED);
    ck_assert_int_eq(ret, UNTOUCHED);
    ck_assert_int_eq(calls, 0);

    /* The pool still holds exactly that one idle job: the next start gets it, and a second
     * start at the same time finds the limit reached. */
    ASYNC_JOB *again = NULL;
    ASYNC_JOB **slot2 = &again;
    job = NULL;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, note_self_and_pause, &slot2, sizeof(slot2));
    ck_assert_ptr_eq(again, stale);
    ASYNC_JOB *job2 = NULL;
    expect_start(ASYNC_NO_JOBS, &job2, NULL, &ret, return_42, NULL, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, note_self_and_pause, NULL, 0);
    expect_start(ASYNC_FINISH, &job2, NULL, &ret, return_42, NULL, 0);
    ck_assert_int_eq(ret, 42);
}
END_TEST

struct foreign_try {
    ASYNC_JOB *job;
    int result[2];
    int error[2];
    int ret;
    ASYNC_JOB *current;
};

static void *resume_from_other_thread(void *p)
{
    struct foreign_try *t = p;
    /* Once on a thread that never used asyncjob, once after it made a pool of its own. */
    ASYNC_JOB *j = t->job;
    t->result[0] = ASYNC_start_job(&j, NULL, &t->ret, inner, NULL, 0);
    t->error[0] = asyncjob_last_error();
    ASYNC_init_thread(0, 0);
    j = t->job;
    t->result[1] = ASYNC_start_job(&j, NULL, &t->ret, inner, NULL, 0);
    t->error[1] = asyncjob_last_error();
    t->current = ASYNC_get_current_job();
    ASYNC_cleanup_thread();
    return NULL;
}

START_TEST(wrong_thread_resume_refused)
{
    ASYNC_JOB *job = NULL;
    int ret = UNTOUCHED;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_twice, NULL, 0);
    struct foreign_try t = { .job = job, .result = { -1, -1 }, .ret = UNTOUCHED,
                             .current = job };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, resume_from_other_thread, &t), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(t.result[0], ASYNC_ERR);
    ck_assert_int_eq(t.error[0], ASYNCJOB_EWRONGTHREAD);
    ck_assert_int_eq(t.result[1], ASYNC_ERR);
    ck_assert_int_eq(t.error[1], ASYNCJOB_EWRONGTHREAD);
    ck_assert_int_eq(t.ret, UNTOUCHED);
    ck_assert_ptr_null(t.current);
    ck_assert_int_eq(inner_ran, 0);
    /* The error belongs to the other thread; the job is untouched and still ours. */
    expect_error(0);
    ck_assert_int_eq(steps, 1);
    finish_from_first_pause(&job, &ret);
    ck_assert_int_eq(ret, 7);
}
END_TEST

START_TEST(pause_outside_job_returns_one)
{
    ck_assert_int_eq(ASYNC_pause_job(), 1);
    ck_assert_ptr_null(ASYNC_get_current_job());
    /* Also after the thread has a pool and has run a job. */
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, return_42, NULL, 0);
    ck_assert_int_eq(ASYNC_pause_job(), 1);
}
END_TEST

START_TEST(is_capable)
{
    ck_assert_int_eq(ASYNC_is_capable(), 1);
}
END_TEST

START_TEST(constants_match_openssl)
{
    ck_assert_int_eq(ASYNC_ERR, 0);
    ck_assert_int_eq(ASYNC_NO_JOBS, 1);
    ck_assert_int_eq(ASYNC_PAUSE, 2);
    ck_assert_int_eq(ASYNC_FINISH, 3);
    ck_assert_int_eq(ASYNC_STATUS_UNSUPPORTED, 0);
    ck_assert_int_eq(ASYNC_STATUS_ERR, 1);
    ck_assert_int_eq(ASYNC_STATUS_OK, 2);
    ck_assert_int_eq(ASYNC_STATUS_EAGAIN, 3);
#ifdef _WIN32
    ck_assert(OSSL_BAD_ASYNC_FD == INVALID_HANDLE_VALUE);
    ck_assert_uint_eq(sizeof(OSSL_ASYNC_FD), sizeof(HANDLE));
#else
    ck_assert_int_eq(OSSL_BAD_ASYNC_FD, -1);
    ck_assert_uint_eq(sizeof(OSSL_ASYNC_FD), sizeof(int));
#endif
}
END_TEST

/* Every prototype is exactly OpenSSL 3.x's: each function initialises a pointer of the
 * type OpenSSL's <openssl/async.h> declares, which fails to compile (-Werror) on any
 * difference in parameters or result. */
START_TEST(prototypes_match_openssl)
{
    int (*init)(size_t, size_t) = ASYNC_init_thread;
    void (*cleanup)(void) = ASYNC_cleanup_thread;
    int (*start)(ASYNC_JOB **, ASYNC_WAIT_CTX *, int *, int (*)(void *), void *, size_t) =
        ASYNC_start_job;
    int (*pause)(void) = ASYNC_pause_job;
    ASYNC_JOB *(*current)(void) = ASYNC_get_current_job;
    ASYNC_WAIT_CTX *(*get_wctx)(ASYNC_JOB *) = ASYNC_get_wait_ctx;
    void (*block)(void) = ASYNC_block_pause;
    void (*unblock)(void) = ASYNC_unblock_pause;
    int (*capable)(void) = ASYNC_is_capable;
    int (*set_mem)(ASYNC_stack_alloc_fn, ASYNC_stack_free_fn) = ASYNC_set_mem_functions;
    void (*get_mem)(ASYNC_stack_alloc_fn *, ASYNC_stack_free_fn *) = ASYNC_get_mem_functions;
    ASYNC_WAIT_CTX *(*wnew)(void) = ASYNC_WAIT_CTX_new;
    void (*wfree)(ASYNC_WAIT_CTX *) = ASYNC_WAIT_CTX_free;
    int (*set_fd)(ASYNC_WAIT_CTX *, const void *, OSSL_ASYNC_FD, void *,
                  void (*)(ASYNC_WAIT_CTX *, const void *, OSSL_ASYNC_FD, void *)) =
        ASYNC_WAIT_CTX_set_wait_fd;
    int (*get_fd)(ASYNC_WAIT_CTX *, const void *, OSSL_ASYNC_FD *, void **) =
        ASYNC_WAIT_CTX_get_fd;
    int (*all_fds)(ASYNC_WAIT_CTX *, OSSL_ASYNC_FD *, size_t *) = ASYNC_WAIT_CTX_get_all_fds;
    int (*changed)(ASYNC_WAIT_CTX *, OSSL_ASYNC_FD *, size_t *, OSSL_ASYNC_FD *, size_t *) =
        ASYNC_WAIT_CTX_get_changed_fds;
    int (*clear)(ASYNC_WAIT_CTX *, const void *) = ASYNC_WAIT_CTX_clear_fd;
    int (*set_cb)(ASYNC_WAIT_CTX *, ASYNC_callback_fn, void *) = ASYNC_WAIT_CTX_set_callback;
    int (*get_cb)(ASYNC_WAIT_CTX *, ASYNC_callback_fn *, void **) =
        ASYNC_WAIT_CTX_get_callback;
    int (*set_st)(ASYNC_WAIT_CTX *, int) = ASYNC_WAIT_CTX_set_status;
    int (*get_st)(ASYNC_WAIT_CTX *) = ASYNC_WAIT_CTX_get_status;
    int (*last)(void) = asyncjob_last_error;
    const char *(*str)(int) = asyncjob_strerror;
    void (*const fns[])(void) = {
        (void (*)(void))init, (void (*)(void))cleanup, (void (*)(void))start,
        (void (*)(void))pause, (void (*)(void))current, (void (*)(void))get_wctx,
        (void (*)(void))block, (void (*)(void))unblock, (void (*)(void))capable,
        (void (*)(void))set_mem, (void (*)(void))get_mem, (void (*)(void))wnew,
        (void (*)(void))wfree, (void (*)(void))set_fd, (void (*)(void))get_fd,
        (void (*)(void))all_fds, (void (*)(void))changed, (void (*)(void))clear,
        (void (*)(void))set_cb, (void (*)(void))get_cb, (void (*)(void))set_st,
        (void (*)(void))get_st, (void (*)(void))last, (void (*)(void))str,
    };
    /* 22 ASYNC_* functions and the two asyncjob_* additions, all distinct and exported. */
    ck_assert_uint_eq(sizeof(fns) / sizeof(fns[0]), 24);
    for (size_t i = 0; i < 24; i++) {
        ck_assert_ptr_nonnull((void *)fns[i]);
        for (size_t k = 0; k < i; k++)
            ck_assert_ptr_ne((void *)fns[i], (void *)fns[k]);
    }
}
END_TEST

/* ---- errors ---- */

START_TEST(strerror_never_null)
{
    static const int unknown[] = { -1, -1000, INT_MIN, INT_MAX, 4096, 100000 };
    const char *generic = asyncjob_strerror(unknown[0]);
    ck_assert_ptr_nonnull(generic);
    ck_assert_uint_gt(strlen(generic), 0);
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        const char *m = asyncjob_strerror(unknown[i]);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m, generic);
    }
    /* Every defined code has a sentence of its own, not the generic one. */
    for (int code = ASYNCJOB_EINVAL; code <= ASYNCJOB_ERANGE; code++) {
        const char *m = asyncjob_strerror(code);
        ck_assert_ptr_nonnull(m);
        ck_assert_uint_gt(strlen(m), 0);
        ck_assert_str_ne(m, generic);
    }
    ck_assert_ptr_nonnull(asyncjob_strerror(ASYNCJOB_OK));
}
END_TEST

START_TEST(last_error_sticky)
{
    expect_error(0);
    ASYNC_JOB *job = NULL;
    int ret;
    int x = 0;
    expect_start(ASYNC_ERR, &job, NULL, &ret, return_42, &x, 0);
    expect_error(ASYNCJOB_EINVAL);
    /* Successes do not clear it. */
    expect_start(ASYNC_FINISH, &job, NULL, &ret, return_42, NULL, 0);
    ck_assert_int_eq(ASYNC_init_thread(0, 1), 1);
    ck_assert_ptr_nonnull(asyncjob_strerror(1));
    expect_error(ASYNCJOB_EINVAL);
    /* A new failure replaces it. */
    ck_assert_int_eq(ASYNC_init_thread(1, 2), 0);
    expect_error(ASYNCJOB_ERANGE);
}
END_TEST

static void *fail_in_thread(void *p)
{
    ASYNC_JOB *job = NULL;
    int x = 0;
    ASYNC_start_job(&job, NULL, NULL, return_42, &x, 0);
    *(int *)p = asyncjob_last_error();
    return NULL;
}

START_TEST(last_error_per_thread)
{
    int theirs = -1;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fail_in_thread, &theirs), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(theirs, ASYNCJOB_EINVAL);
    expect_error(0);
}
END_TEST

SUITE("job", 30, NULL, start_finish_at_once, start_pause_resume_finish,
      pause_returns_one_after_resume, resume_ignores_func_and_args, ret_null_allowed,
      wctx_null_allowed, current_job_identity, wait_ctx_of_job, wait_ctx_of_null_job,
      block_pause_nesting, unblock_never_below_zero, block_outside_job_no_effect,
      block_belongs_to_job, args_copied, args_null_size_ignored, args_big_copied,
      args_every_size_copied, args_size_zero_invalid, job_null_invalid, func_null_invalid,
      nested_start_refused, nested_resume_refused, stale_handle_refused,
      wrong_thread_resume_refused, pause_outside_job_returns_one, is_capable,
      constants_match_openssl, prototypes_match_openssl, strerror_never_null, last_error_sticky,
      last_error_per_thread)

#include "tap_main.h"
