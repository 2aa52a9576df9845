/*
 * check_suite.h: what every Check suite shares besides main() (tap_main.h): building the
 * suite from a table of tests, and the start-and-expect assertions. The assertions are
 * macros, not functions, so that a failure names the caller's line.
 */
#ifndef ASYNCJOB_TEST_CHECK_SUITE_H
#define ASYNCJOB_TEST_CHECK_SUITE_H

#include <asyncjob.h>
#include <check.h>
#include <stdlib.h>

/* A suite of one test case, both called `name`: the NULL-terminated `tests` in order, each
 * given `timeout` seconds (0: Check's default), with `setup` (or NULL) run before each in
 * the test's process. */
/* With ASYNCJOB_TEST_ONE=k in the environment, only the k-th test (1-based) is in the
 * suite: test/windows_run.sh runs each test in a process of its own that way, since Check
 * cannot fork on Windows. suite_test_count is the number of tests listed. */
static int suite_test_count;

static inline Suite *suite_of(const char *name, double timeout, SFun setup,
                              const TTest *const *tests)
{
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(name);
    if (timeout > 0)
        tcase_set_timeout(tc, timeout);
    if (setup != NULL)
        tcase_add_checked_fixture(tc, setup, NULL);
    const char *one = getenv("ASYNCJOB_TEST_ONE");
    int only = one != NULL ? atoi(one) : 0;
    suite_test_count = 0;
    for (; *tests != NULL; tests++)
        if (++suite_test_count == only || only <= 0)
            tcase_add_test(tc, *tests);
    suite_add_tcase(s, tc);
    return s;
}

/* Defines the suite() that tap_main.h runs: suite_of(name, timeout, setup, the tests listed). */
#define SUITE(name, timeout, setup, ...)                                                   \
    static Suite *suite(void)                                                              \
    {                                                                                      \
        const TTest *tests[] = { __VA_ARGS__, NULL };                                      \
        return suite_of(name, timeout, setup, tests);                                      \
    }

/* ASYNC_start_job with these arguments must return `want` (ASYNC_PAUSE, ASYNC_FINISH...). */
#define expect_start(want, job, ctx, ret, func, args, size)                                \
    ck_assert_int_eq(ASYNC_start_job((job), (ctx), (ret), (func), (args), (size)), (want))

/* Resuming the paused job *job (no wait ctx, no function: both are ignored on a resume). */
#define expect_resume(want, job, ret) expect_start(want, job, NULL, ret, NULL, NULL, 0)

/* The calling thread's last asyncjob error must be `code`. */
#define expect_error(code) ck_assert_int_eq(asyncjob_last_error(), (code))

#endif /* ASYNCJOB_TEST_CHECK_SUITE_H */
