/*
 * test_pool_threads.c: many jobs paused at once, on one thread and on several threads at
 * the same time, each thread with a pool of its own.
 */
#include <asyncjob.h>

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check_suite.h"

static int count_three_times(void *arg)
{
    int id = *(int *)arg;
    volatile int local = id;
    for (int r = 0; r < 3; r++) {
        if (ASYNC_pause_job() != 1)
            return -1;
        local += 2;
    }
    return local;
}

/* Starts n jobs (all paused at once), resumes them round-robin, reverse order every other
 * round, and returns how many finished with the right value. */
static int run_many(int n)
{
    ASYNC_JOB **jobs = calloc((size_t)n, sizeof(*jobs));
    int *rets = calloc((size_t)n, sizeof(*rets));
    if (jobs == NULL || rets == NULL)
        return -1;
    int ok = 0;
    for (int i = 0; i < n; i++)
        if (ASYNC_start_job(&jobs[i], NULL, &rets[i], count_three_times, &i, sizeof(i)) !=
            ASYNC_PAUSE)
            goto out;
    for (int r = 0; r < 3; r++) {
        for (int k = 0; k < n; k++) {
            int i = (r % 2) ? n - 1 - k : k;
            int want = r < 2 ? ASYNC_PAUSE : ASYNC_FINISH;
            if (ASYNC_start_job(&jobs[i], NULL, &rets[i], NULL, NULL, 0) != want)
                goto out;
        }
    }
    for (int i = 0; i < n; i++)
        if (jobs[i] == NULL && rets[i] == i + 6)
            ok++;
out:
    free(jobs);
    free(rets);
    return ok;
}

START_TEST(thousands_paused_at_once)
{
    ck_assert_int_eq(run_many(5000), 5000);
}
END_TEST

struct worker {
    int ok;
    int current_null;
    int error;
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    ASYNC_init_thread(0, 8);
    w->ok = run_many(300);
    w->current_null = ASYNC_get_current_job() == NULL;
    w->error = asyncjob_last_error();
    ASYNC_cleanup_thread();
    return NULL;
}

START_TEST(threads_at_once)
{
    enum { T = 8 };
    pthread_t th[T];
    struct worker w[T];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    /* The main thread works too, at the same time. */
    int mine = run_many(300);
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_eq(mine, 300);
    for (int i = 0; i < T; i++) {
        ck_assert_int_eq(w[i].ok, 300);
        ck_assert_int_eq(w[i].current_null, 1);
        ck_assert_int_eq(w[i].error, 0);
    }
}
END_TEST

SUITE("pool_threads", 300, NULL, thousands_paused_at_once, threads_at_once)

#include "tap_main.h"
