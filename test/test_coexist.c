/*
 * test_coexist.c: asyncjob and OpenSSL's libcrypto in one process. Both export the same
 * ASYNC_* names; symbol versions (ASYNCJOB_1.0 and OPENSSL_3.0.0) must keep this program's
 * calls on libasyncjob and libossl_side.so's calls on libcrypto, interleaved and nested.
 */
#define _GNU_SOURCE /* dladdr */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_coexist,
                   "it loads OpenSSL's libcrypto beside the library with dlopen")
#else

#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <string.h>

#include "asyncjob.h"
#include "check_suite.h"
#include "sanitizers.h"
#include "tap_skip.h"

#if HAVE_OSSL_SIDE
# include "ossl_side.h"
#endif

/* Tests that need libcrypto end here when configure did not find it, or when
 * ThreadSanitizer is on (libcrypto switches stacks with longjmp, which TSan cannot follow). */
static void need_libcrypto(void)
{
#if !HAVE_OSSL_SIDE
    tap_skip("libcrypto (libssl-dev) was not found by configure");
#elif TEST_TSAN
    tap_skip("libcrypto's longjmp-based ASYNC switch cannot run under ThreadSanitizer");
#elif TEST_ASAN
    /* libcrypto switches to its job stacks without telling ASan (no fiber annotations), so
     * ASan warns about every such switch: a report about OpenSSL, not about asyncjob. */
    tap_skip("libcrypto's unannotated stack switch makes AddressSanitizer report on it");
#else
    /* Likewise valgrind: libcrypto never registers its job stacks. */
    if (RUNNING_ON_VALGRIND)
        tap_skip("libcrypto's unregistered job stacks make valgrind warn about stack switches");
#endif
}

#if HAVE_OSSL_SIDE

/* A job that pauses once and then returns 40 + its argument. */
static int pause_once(void *arg)
{
    int v = *(const int *)arg;
    if (ASYNC_get_current_job() == NULL || ASYNC_pause_job() != 1)
        return -1;
    return 40 + v;
}

/* Start an asyncjob job, drive it to the end, and return its result (or a negative
 * number); used from inside a libcrypto job too. */
static int run_asyncjob_job(void)
{
    ASYNC_JOB *job = NULL;
    int ret = 0, arg = 2;
    if (ASYNC_start_job(&job, NULL, &ret, pause_once, &arg, sizeof arg) != ASYNC_PAUSE)
        return -100;
    if (ASYNC_get_current_job() != NULL)
        return -101;
    if (ASYNC_start_job(&job, NULL, &ret, NULL, NULL, 0) != ASYNC_FINISH || job != NULL)
        return -102;
    return ret;
}

START_TEST(each_library_binds_its_own_calls)
{
    need_libcrypto();
    Dl_info info;
    ck_assert_int_ne(dladdr((void *)&ASYNC_start_job, &info), 0);
    ck_assert_msg(strstr(info.dli_fname, "libasyncjob") != NULL,
                  "this program's ASYNC_start_job comes from %s", info.dli_fname);
    const char *theirs = ossl_side_binding();
    ck_assert_msg(strstr(theirs, "libcrypto") != NULL,
                  "libossl_side's ASYNC_start_job comes from '%s'", theirs);
}
END_TEST

/* An asyncjob job stays paused while libcrypto runs a whole job of its own. */
START_TEST(interleaved_jobs)
{
    need_libcrypto();
    ASYNC_JOB *job = NULL;
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    int ret = 0, arg = 1;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, pause_once, &arg, sizeof arg);
    ck_assert_int_eq(ossl_side_run(3, NULL), 1003);
    /* libcrypto knows nothing of asyncjob's paused job, and the reverse. */
    ck_assert_int_eq(ossl_side_outside_job(), 1);
    ck_assert_ptr_null(ASYNC_get_current_job());
    ck_assert_ptr_eq(ASYNC_get_wait_ctx(job), ctx);
    expect_start(ASYNC_FINISH, &job, ctx, &ret, pause_once, &arg, sizeof arg);
    ck_assert_int_eq(ret, 41);
    ck_assert_ptr_null(job);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

/* Inside an asyncjob job: run a libcrypto job to the end, pause, and do it again. */
static int job_runs_openssl(void *arg)
{
    int total = 0;
    for (int i = 0; i < 2; i++) {
        int r = ossl_side_run(2, NULL);
        if (r != 1002)
            return r;
        total += r;
        if (ASYNC_pause_job() != 1)
            return -1;
    }
    return total;
}

START_TEST(openssl_job_inside_asyncjob_job)
{
    need_libcrypto();
    ASYNC_JOB *job = NULL;
    int ret = 0, pauses = 0, rc;
    while ((rc = ASYNC_start_job(&job, NULL, &ret, job_runs_openssl, NULL, 0)) ==
           ASYNC_PAUSE)
        pauses++;
    ck_assert_int_eq(rc, ASYNC_FINISH);
    ck_assert_int_eq(pauses, 2);
    ck_assert_int_eq(ret, 2004);
}
END_TEST

/* Inside a libcrypto job: run asyncjob jobs (with a pause each) between its pauses. */
START_TEST(asyncjob_job_inside_openssl_job)
{
    need_libcrypto();
    ck_assert_int_eq(ossl_side_run(3, run_asyncjob_job), 1003 + 3 * 42);
    ck_assert_ptr_null(ASYNC_get_current_job());
}
END_TEST

#else /* !HAVE_OSSL_SIDE */

START_TEST(each_library_binds_its_own_calls) { need_libcrypto(); }
END_TEST
START_TEST(interleaved_jobs) { need_libcrypto(); }
END_TEST
START_TEST(openssl_job_inside_asyncjob_job) { need_libcrypto(); }
END_TEST
START_TEST(asyncjob_job_inside_openssl_job) { need_libcrypto(); }
END_TEST

#endif

SUITE("coexist", 60, NULL, each_library_binds_its_own_calls, interleaved_jobs,
      openssl_job_inside_asyncjob_job, asyncjob_job_inside_openssl_job)

#endif /* _WIN32 */
#include "tap_main.h"
