/*
 * test_stack_alloc.c: job stacks from the default allocator (32 KiB usable) and from custom
 * ones (ASYNC_set_mem_functions / ASYNC_get_mem_functions): the size asked and the size
 * given, one free per stack, the lock after the first stack, failures and stacks too small.
 */
#include <asyncjob.h>

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counting_stacks.h"
#include "check_suite.h"
#include "job_bodies.h"
#include "sanitizers.h"

/* ---- custom stack allocators ---- */

/* ASYNC_get_mem_functions must give want_a and want_f. */
#define expect_mem_functions(want_a, want_f)                                               \
    do {                                                                                   \
        ASYNC_stack_alloc_fn a_ = NULL;                                                    \
        ASYNC_stack_free_fn f_ = NULL;                                                     \
        ASYNC_get_mem_functions(&a_, &f_);                                                 \
        ck_assert_ptr_eq((void *)a_, (void *)(want_a));                                    \
        ck_assert_ptr_eq((void *)f_, (void *)(want_f));                                    \
    } while (0)

START_TEST(mem_functions_default_non_null)
{
    ASYNC_stack_alloc_fn a = NULL;
    ASYNC_stack_free_fn f = NULL;
    ASYNC_get_mem_functions(&a, &f);
    ck_assert_ptr_nonnull((void *)a);
    ck_assert_ptr_nonnull((void *)f);
    /* The defaults are what the library uses: still the same after a job ran. */
    ASYNC_JOB *j = start_paused();
    finish(j);
    expect_mem_functions(a, f);
}
END_TEST

START_TEST(mem_functions_set_then_get)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    expect_mem_functions(counting_alloc, counting_free);
}
END_TEST

START_TEST(mem_functions_null_keeps_current)
{
    ASYNC_stack_alloc_fn def_a = NULL;
    ASYNC_stack_free_fn def_f = NULL;
    ASYNC_get_mem_functions(&def_a, &def_f);
    ck_assert_int_eq(ASYNC_set_mem_functions(counting_alloc, NULL), 1);
    expect_mem_functions(counting_alloc, def_f);
    ck_assert_int_eq(ASYNC_set_mem_functions(NULL, counting_free), 1);
    expect_mem_functions(counting_alloc, counting_free);
    ck_assert_int_eq(ASYNC_set_mem_functions(NULL, NULL), 1);
    expect_mem_functions(counting_alloc, counting_free);
}
END_TEST

START_TEST(mem_alloc_asked_for_32k)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ASYNC_JOB *j = start_paused();
    ck_assert_int_eq(counted.calls, 1);
    ck_assert_uint_eq(counted.first_request, 32768);
    finish(j);
}
END_TEST

static uintptr_t local_addr;

static int where_is_my_stack(void *arg)
{
    (void)arg;
    /* The frame address, not a local's: with ASan's detect_stack_use_after_return, locals
     * live on a fake stack on the heap. */
    local_addr = (uintptr_t)__builtin_frame_address(0);
    ASYNC_pause_job();
    return 0;
}

START_TEST(mem_alloc_larger_size_used)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    counted.give_size = 256 * 1024;
    ASYNC_JOB *j = NULL;
    expect_start(ASYNC_PAUSE, &j, NULL, NULL, where_is_my_stack, NULL, 0);
    uintptr_t lo = (uintptr_t)counted.last_stack;
    /* The stack grows down from lo + size: a local of the job's first frame lies in the top
     * part of the 256 KiB block, above the 32 KiB that were asked for. */
    ck_assert_uint_gt(local_addr, lo + 32768);
    ck_assert_uint_lt(local_addr, lo + 256 * 1024);
    expect_resume(ASYNC_FINISH, &j, NULL);
}
END_TEST

START_TEST(mem_free_once_per_stack)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 3), 1);
    ASYNC_JOB *a = start_paused();
    ASYNC_JOB *b = start_paused();
    finish(a);
    finish(b);
    ASYNC_JOB *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = start_paused();
    for (int i = 0; i < 4; i++)
        finish(c[i]);
    ck_assert_int_eq(counted.allocs, 4);
    ck_assert_int_eq(counted.frees, 0);
    ASYNC_cleanup_thread();
    ck_assert_int_eq(counted.frees, 4);
    /* Each handed-out block freed exactly once. */
    for (int i = 0; i < 4; i++) {
        int times = 0;
        for (int k = 0; k < 4; k++)
            times += counted.freed[k] == counted.handed_out[i];
        ck_assert_int_eq(times, 1);
    }
}
END_TEST

START_TEST(mem_set_after_stack_locked)
{
    ASYNC_JOB *j = start_paused();
    finish(j);
    ASYNC_stack_alloc_fn a0 = NULL;
    ASYNC_stack_free_fn f0 = NULL;
    ASYNC_get_mem_functions(&a0, &f0);
    ck_assert_int_eq(ASYNC_set_mem_functions(counting_alloc, counting_free), 0);
    expect_error(ASYNCJOB_ELOCKED);
    expect_mem_functions(a0, f0);
    /* For good: not even after every stack is gone again. */
    ASYNC_cleanup_thread();
    ck_assert_int_eq(ASYNC_set_mem_functions(counting_alloc, counting_free), 0);
    ck_assert_int_eq(counted.calls, 0);
}
END_TEST

static void *make_stack_in_thread(void *p)
{
    (void)p;
    ASYNC_init_thread(0, 1);
    ASYNC_cleanup_thread();
    return NULL;
}

START_TEST(mem_set_locked_by_other_thread)
{
    /* Process-wide: a stack made on another thread locks the functions here too. */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, make_stack_in_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(ASYNC_set_mem_functions(counting_alloc, counting_free), 0);
    expect_error(ASYNCJOB_ELOCKED);
}
END_TEST

/* A start whose stack allocation fails: ASYNC_NO_JOBS with ASYNCJOB_ESTACK, *job left NULL
 * and *ret untouched. */
static void expect_start_without_stack(void)
{
    ASYNC_JOB *j = NULL;
    int ret = -3;
    expect_start(ASYNC_NO_JOBS, &j, NULL, &ret, return_arg, NULL, 0);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(ret, -3);
    expect_error(ASYNCJOB_ESTACK);
}

/* A stack too small to switch onto is refused cleanly and handed back at once. */
START_TEST(mem_alloc_too_small_refused)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    counted.give_size = 512;
    expect_start_without_stack();
    ck_assert_int_eq(counted.allocs, 1);
    ck_assert_int_eq(counted.frees, 1);
    /* A larger stack from the same allocator works (16 KiB: enough under ASan too). */
    counted.give_size = 16384;
    ASYNC_JOB *j = NULL;
    int ret = -3;
    expect_start(ASYNC_FINISH, &j, NULL, &ret, return_arg, NULL, 0);
    ck_assert_int_eq(ret, 0);
}
END_TEST

START_TEST(mem_alloc_null_no_jobs)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    counted.fail_after = 0;
    expect_start_without_stack();
    ck_assert_int_eq(counted.calls, 1);
    /* Once the allocator works again, so do jobs. */
    counted.fail_after = -1;
    ASYNC_JOB *j = NULL;
    int ret = -3;
    expect_start(ASYNC_FINISH, &j, NULL, &ret, return_arg, NULL, 0);
    ck_assert_int_eq(ret, 0);
}
END_TEST

/* The smallest custom stack the library accepts (ASYNC_set_mem_functions(3)), handed out
 * above a canary of 8 KiB: a job that pauses, resumes and calls into the C library
 * (through the lazy binder, which saves the vector registers on the stack) stays above
 * it. Under ASan the minimum is 16 KiB, and 4,096 bytes are refused: they were accepted,
 * and the canary's top 635 bytes went. */
#define CANARY 8192
#define SMALLEST (TEST_ASAN ? 16384 : 4096)
static unsigned char *canary_block;
static size_t canary_give;

static void *canary_alloc(size_t *num)
{
    unsigned char *b = malloc(CANARY + canary_give);
    if (b == NULL)
        return NULL;
    memset(b, 0xa5, CANARY);
    canary_block = b;
    *num = canary_give;
    return b + CANARY;
}

static void canary_free(void *p)
{
    free((unsigned char *)p - CANARY);
}

static int pause_and_format(void *arg)
{
    char buf[64];
    ASYNC_pause_job();
#ifdef __GLIBC__
    snprintf(buf, sizeof(buf), "%d %s %f", *(int *)arg, "x", 1.5);
#else
    /* musl's printf takes over 7 KiB of stack for a double by itself (its digit buffer):
     * more than this stack has, whoever runs it. The same string, by other C calls. */
    buf[0] = (char)('0' + *(int *)arg % 10);
    strcpy(buf + 1, " x 1.500000");
#endif
    return (int)strlen(buf);
}

START_TEST(smallest_custom_stack_holds_a_job)
{
    ck_assert_int_eq(ASYNC_set_mem_functions(canary_alloc, canary_free), 1);
    static const size_t sizes[] = { 4096, SMALLEST };
    for (size_t i = 0; i < 2; i++) {
        canary_give = sizes[i];
        ASYNC_JOB *job = NULL;
        int ret = 0, arg = 7;
        if (sizes[i] < SMALLEST) {
            expect_start(ASYNC_NO_JOBS, &job, NULL, &ret, pause_and_format, &arg, sizeof(arg));
            expect_error(ASYNCJOB_ESTACK);
            continue;
        }
        expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_and_format, &arg, sizeof(arg));
        expect_resume(ASYNC_FINISH, &job, &ret);
        ck_assert_int_eq(ret, (int)strlen("7 x 1.500000"));
        size_t intact = 0;
        while (intact < CANARY && canary_block[CANARY - 1 - intact] == 0xa5)
            intact++;
        ck_assert_msg(intact == CANARY, "a job on %zu bytes wrote %zu bytes below its stack",
                      sizes[i], CANARY - intact);
        ASYNC_cleanup_thread();
    }
}
END_TEST

/* ---- the default stacks ---- */

/* Uses 24 KiB of locals: fits in the 32 KiB a default stack gives. */
static int use_24k(void *arg)
{
    (void)arg;
    volatile unsigned char big[24 * 1024];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)i;
    ASYNC_pause_job();
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof(big); i++)
        sum += big[i];
    return (int)sum;
}

START_TEST(default_stack_usable_32k)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, use_24k, NULL, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, use_24k, NULL, 0);
    /* 96 times the sum 0 + 1 + ... + 255. */
    ck_assert_int_eq(ret, 96 * 255 * 256 / 2);
}
END_TEST

SUITE("stack_alloc", 60, NULL, mem_functions_default_non_null, mem_functions_set_then_get,
      mem_functions_null_keeps_current, mem_alloc_asked_for_32k, mem_alloc_larger_size_used,
      mem_free_once_per_stack, mem_set_after_stack_locked, mem_set_locked_by_other_thread,
      mem_alloc_too_small_refused, mem_alloc_null_no_jobs, smallest_custom_stack_holds_a_job,
      default_stack_usable_32k)

#include "tap_main.h"
