/*
 * test_pool.c: the per-thread job pool through the public API: ASYNC_init_thread limits and
 * pre-creation, re-init, cleanup, LIFO reuse, many jobs and many threads, thread exit
 * without cleanup, and custom stack allocators (ASYNC_set/get_mem_functions).
 */
#include <asyncjob.h>

#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "note_self.h"
#include "tap_skip.h"

#if defined(__has_include)
# if __has_include(<valgrind/valgrind.h>)
#  include <valgrind/valgrind.h>
# endif
#endif
#ifndef RUNNING_ON_VALGRIND
# define RUNNING_ON_VALGRIND 0
#endif

/* Which sanitizer the tests are built with (GCC and Clang spell it differently). */
#if defined(__has_feature)
# if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#  define __SANITIZE_ADDRESS__ 1
# endif
# if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#  define __SANITIZE_THREAD__ 1
# endif
#endif

/* ---- a counting stack allocator ---- */

/* Process-wide counters: Check runs every test in a fresh child process, so each test
 * that installs this allocator starts from zero. */
static long n_alloc, n_free, n_alloc_calls;
static size_t first_request;     /* *num as the library passed it on the first call */
static size_t give_size;         /* if non-zero: allocate this much and write it back */
static long fail_after = -1;     /* if >= 0: this many allocations succeed, then NULL */
static void *last_stack;         /* the block last handed out */
#define MAX_TRACKED 64
static void *handed_out[MAX_TRACKED];
static void *freed[MAX_TRACKED];

static void *count_alloc(size_t *num)
{
    long call = __atomic_fetch_add(&n_alloc_calls, 1, __ATOMIC_RELAXED);
    if (call == 0)
        first_request = *num;
    if (fail_after >= 0 && call >= fail_after)
        return NULL;
    if (give_size != 0)
        *num = give_size;
    void *p = malloc(*num);
    if (p != NULL) {
        long i = __atomic_fetch_add(&n_alloc, 1, __ATOMIC_RELAXED);
        if (i < MAX_TRACKED)
            handed_out[i] = p;
        __atomic_store_n(&last_stack, p, __ATOMIC_RELAXED);
    }
    return p;
}

static void count_free(void *p)
{
    long i = __atomic_fetch_add(&n_free, 1, __ATOMIC_RELAXED);
    if (i < MAX_TRACKED)
        freed[i] = p;
    free(p);
}

static long live_stacks(void)
{
    return __atomic_load_n(&n_alloc, __ATOMIC_RELAXED) -
           __atomic_load_n(&n_free, __ATOMIC_RELAXED);
}

static void use_counting_allocator(void)
{
    ck_assert_int_eq(ASYNC_set_mem_functions(count_alloc, count_free), 1);
}

/* ---- job bodies ---- */

static int return_arg(void *arg)
{
    return arg == NULL ? 0 : *(int *)arg;
}

static int pause_once(void *arg)
{
    ASYNC_pause_job();
    return arg == NULL ? 1 : *(int *)arg;
}

/* Start a job that pauses once; the test fails unless it pauses. */
static ASYNC_JOB *start_paused(void)
{
    ASYNC_JOB *job = NULL;
    int ret;
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, pause_once, NULL, 0), ASYNC_PAUSE);
    ck_assert_ptr_nonnull(job);
    return job;
}

static void finish(ASYNC_JOB *job)
{
    int ret = 0;
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, pause_once, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ret, 1);
    ck_assert_ptr_null(job);
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
    ASYNC_JOB *j1 = start_paused();
    ASYNC_JOB *j2 = start_paused();
    ASYNC_JOB *j3 = NULL;
    ck_assert_int_eq(ASYNC_start_job(&j3, NULL, NULL, pause_once, NULL, 0), ASYNC_NO_JOBS);
    finish(j1);
    finish(j2);
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
    ck_assert_int_eq(ASYNC_start_job(&extra, NULL, &ret, return_arg, &arg, sizeof(arg)),
                     ASYNC_NO_JOBS);
    ck_assert_ptr_null(extra);
    ck_assert_int_eq(ret, -5);
    /* Retry later: once a job finished, a start works again. */
    finish(j[1]);
    ck_assert_int_eq(ASYNC_start_job(&extra, NULL, &ret, return_arg, &arg, sizeof(arg)),
                     ASYNC_FINISH);
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
    ck_assert_int_eq(asyncjob_last_error(), 0);
    ck_assert_int_eq(ASYNC_start_job(&extra, NULL, NULL, return_arg, NULL, 0), ASYNC_NO_JOBS);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_EPOOLFULL);
    finish(j);
}
END_TEST

START_TEST(init_size_above_max_refused)
{
    ck_assert_int_eq(ASYNC_init_thread(2, 3), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_ERANGE);
    /* Equal is fine. */
    ck_assert_int_eq(ASYNC_init_thread(3, 3), 1);
}
END_TEST

START_TEST(max_zero_any_init_size)
{
    use_counting_allocator();
    ck_assert_int_eq(ASYNC_init_thread(0, 1), 1);
    ck_assert_int_eq(ASYNC_init_thread(0, 50), 1);
    ck_assert_int_eq(n_alloc, 50);
}
END_TEST

START_TEST(init_size_precreates)
{
    use_counting_allocator();
    ck_assert_int_eq(ASYNC_init_thread(0, 5), 1);
    /* Five stacks exist before any job starts. */
    ck_assert_int_eq(n_alloc, 5);
    ASYNC_JOB *j[6];
    for (int i = 0; i < 5; i++)
        j[i] = start_paused();
    ck_assert_int_eq(n_alloc, 5);
    /* The sixth is created on demand. */
    j[5] = start_paused();
    ck_assert_int_eq(n_alloc, 6);
    for (int i = 0; i < 6; i++)
        finish(j[i]);
    ck_assert_int_eq(n_free, 0);
}
END_TEST

START_TEST(init_stops_at_failed_creation)
{
    use_counting_allocator();
    fail_after = 2;
    ck_assert_int_eq(ASYNC_init_thread(0, 5), 1);
    /* Two made, the third failed, and no further attempt. */
    ck_assert_int_eq(n_alloc, 2);
    ck_assert_int_eq(n_alloc_calls, 3);
    ASYNC_JOB *a = start_paused();
    ASYNC_JOB *b = start_paused();
    finish(a);
    finish(b);
}
END_TEST

START_TEST(reinit_reconfigures_without_leak)
{
    use_counting_allocator();
    ck_assert_int_eq(ASYNC_init_thread(0, 4), 1);
    ck_assert_int_eq(n_alloc, 4);
    /* A lower limit: never more than 2 jobs from now on. */
    ck_assert_int_eq(ASYNC_init_thread(2, 1), 1);
    ck_assert_int_le(live_stacks(), 2);
    ASYNC_JOB *a = start_paused();
    ASYNC_JOB *b = start_paused();
    ASYNC_JOB *c = NULL;
    ck_assert_int_eq(ASYNC_start_job(&c, NULL, NULL, pause_once, NULL, 0), ASYNC_NO_JOBS);
    finish(a);
    finish(b);
    /* Unlimited again, topped up to 6 idle jobs. */
    ck_assert_int_eq(ASYNC_init_thread(0, 6), 1);
    ck_assert_int_eq(live_stacks(), 6);
    ASYNC_JOB *j[7];
    for (int i = 0; i < 7; i++)
        j[i] = start_paused();
    for (int i = 0; i < 7; i++)
        finish(j[i]);
    ASYNC_cleanup_thread();
    ck_assert_int_gt(n_alloc, 0);
    ck_assert_int_eq(n_free, n_alloc);
}
END_TEST

START_TEST(lifo_reuse)
{
    ASYNC_JOB *seen_a = NULL, *seen_b = NULL, *next = NULL;
    ASYNC_JOB **pa = &seen_a, **pb = &seen_b, **pn = &next;
    ASYNC_JOB *a = NULL, *b = NULL, *n = NULL;
    ck_assert_int_eq(ASYNC_start_job(&a, NULL, NULL, note_self_and_pause, &pa, sizeof(pa)),
                     ASYNC_PAUSE);
    ck_assert_int_eq(ASYNC_start_job(&b, NULL, NULL, note_self_and_pause, &pb, sizeof(pb)),
                     ASYNC_PAUSE);
    ck_assert_ptr_ne(seen_a, seen_b);
    /* a finishes first, b last: b is handed out next. */
    ck_assert_int_eq(ASYNC_start_job(&a, NULL, NULL, NULL, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ASYNC_start_job(&b, NULL, NULL, NULL, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ASYNC_start_job(&n, NULL, NULL, note_self, &pn, sizeof(pn)),
                     ASYNC_FINISH);
    ck_assert_ptr_eq(next, seen_b);
    /* Now the other order: b finishes first, a last: a comes next. */
    ck_assert_int_eq(ASYNC_start_job(&a, NULL, NULL, note_self_and_pause, &pa, sizeof(pa)),
                     ASYNC_PAUSE);
    ck_assert_int_eq(ASYNC_start_job(&b, NULL, NULL, note_self_and_pause, &pb, sizeof(pb)),
                     ASYNC_PAUSE);
    ck_assert_int_eq(ASYNC_start_job(&b, NULL, NULL, NULL, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ASYNC_start_job(&a, NULL, NULL, NULL, NULL, 0), ASYNC_FINISH);
    n = NULL;
    ck_assert_int_eq(ASYNC_start_job(&n, NULL, NULL, note_self, &pn, sizeof(pn)),
                     ASYNC_FINISH);
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
    a = start_paused();
    ASYNC_JOB *b = NULL;
    ck_assert_int_eq(ASYNC_start_job(&b, NULL, NULL, pause_once, NULL, 0), ASYNC_NO_JOBS);
    finish(a);
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
    use_counting_allocator();
    ck_assert_int_eq(ASYNC_init_thread(0, 3), 1);
    ASYNC_JOB *job = NULL;
    int ret = 0;
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, cleanup_inside, NULL, 0), ASYNC_PAUSE);
    ck_assert_int_eq(cleanup_error, ASYNCJOB_EINJOB);
    ck_assert_ptr_eq(cleanup_job_after, cleanup_job_before);
    /* Nothing was freed: the two idle jobs are still there. */
    ck_assert_int_eq(n_free, 0);
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, cleanup_inside, NULL, 0),
                     ASYNC_FINISH);
    ck_assert_int_eq(ret, 11);
    ASYNC_JOB *j[3];
    for (int i = 0; i < 3; i++)
        j[i] = start_paused();
    ck_assert_int_eq(n_alloc, 3);
    for (int i = 0; i < 3; i++)
        finish(j[i]);
}
END_TEST

START_TEST(paused_job_survives_cleanup)
{
    use_counting_allocator();
    ck_assert_int_eq(ASYNC_init_thread(0, 2), 1);
    ck_assert_int_eq(n_alloc, 2);
    int v = 1234;
    ASYNC_JOB *job = NULL;
    int ret = 0;
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, pause_once, &v, sizeof(v)),
                     ASYNC_PAUSE);
    void *paused_stack = handed_out[1]; /* LIFO: the last one created is handed out first */
    ASYNC_cleanup_thread();
    /* Only the idle job was freed. */
    ck_assert_int_eq(n_free, 1);
    ck_assert_ptr_eq(freed[0], handed_out[0]);
    /* The paused job still resumes and finishes, and is then freed, not pooled. */
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, pause_once, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ret, 1234);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(n_free, 2);
    ck_assert_ptr_eq(freed[1], paused_stack);
    /* So the next start needs a new stack. */
    ASYNC_JOB *next = start_paused();
    ck_assert_int_eq(n_alloc, 3);
    finish(next);
}
END_TEST

START_TEST(orphan_not_counted_in_new_pool)
{
    use_counting_allocator();
    ASYNC_JOB *orphan = start_paused();
    ASYNC_cleanup_thread();
    /* A new pool of one job: the orphan paused from the old pool does not count. */
    ck_assert_int_eq(ASYNC_init_thread(1, 0), 1);
    ASYNC_JOB *j = start_paused();
    ck_assert_int_eq(n_alloc, 2);
    ASYNC_JOB *extra = NULL;
    ck_assert_int_eq(ASYNC_start_job(&extra, NULL, NULL, pause_once, NULL, 0), ASYNC_NO_JOBS);
    /* Finishing the orphan frees it instead of adding it to the new pool. */
    finish(orphan);
    ck_assert_int_eq(n_free, 1);
    ck_assert_ptr_eq(freed[0], handed_out[0]);
    ck_assert_int_eq(ASYNC_start_job(&extra, NULL, NULL, pause_once, NULL, 0), ASYNC_NO_JOBS);
    finish(j);
    /* The new pool's own job is pooled: the next start reuses it. */
    j = start_paused();
    ck_assert_int_eq(n_alloc, 2);
    finish(j);
}
END_TEST

/* ---- many jobs, many threads ---- */

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

/* A thread that uses asyncjob (idle pooled jobs and finished ones) and exits without
 * ASYNC_cleanup_thread. */
static void *use_and_exit(void *p)
{
    (void)p;
    if (ASYNC_init_thread(0, 3) != 1)
        return (void *)1;
    ASYNC_JOB *j[5] = { NULL };
    for (int i = 0; i < 5; i++)
        if (ASYNC_start_job(&j[i], NULL, NULL, pause_once, NULL, 0) != ASYNC_PAUSE)
            return (void *)1;
    for (int i = 0; i < 5; i++)
        if (ASYNC_start_job(&j[i], NULL, NULL, NULL, NULL, 0) != ASYNC_FINISH)
            return (void *)1;
    return NULL;
}

/* Thread stacks of our own, reused batch after batch, so that the C library's thread
 * stack cache cannot add or remove mappings while the maps are compared. */
#define BATCH 8
#define THREAD_STACK (2 * 1024 * 1024) /* ThreadSanitizer wants at least 900 KiB */
static void *thread_stacks[BATCH];

/* Runs `total` threads, BATCH at a time, on our own stacks if `own_stacks`, else on the
 * C library's; 0 when every thread succeeded. */
static int run_threads(int total, int own_stacks)
{
    pthread_t th[BATCH];
    pthread_attr_t attr[BATCH];
    int bad = 0;
    for (int i = 0; i < BATCH; i++) {
        pthread_attr_init(&attr[i]);
        if (!own_stacks)
            continue;
        if (thread_stacks[i] == NULL &&
            posix_memalign(&thread_stacks[i], 4096, THREAD_STACK) != 0)
            return -1;
        pthread_attr_setstack(&attr[i], thread_stacks[i], THREAD_STACK);
    }
    for (int done = 0; done < total; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            if (pthread_create(&th[i], &attr[i], use_and_exit, NULL) != 0)
                return -1;
        for (int i = 0; i < BATCH; i++) {
            void *r;
            pthread_join(th[i], &r);
            bad += r != NULL;
        }
    }
    for (int i = 0; i < BATCH; i++)
        pthread_attr_destroy(&attr[i]);
    return bad;
}

/* Lines of /proc/self/maps, and the bytes they map. With `skip_rwx`, mappings that are
 * readable, writable and executable at once are left out: under valgrind those are
 * valgrind's own memory (its translations, and a 1 MiB stack for each thread slot it
 * opens, which a loaded machine makes it open more of), while nothing in this test maps
 * memory rwx. */
static void read_maps(int skip_rwx, long *lines, unsigned long long *bytes)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    char buf[512];
    *lines = 0;
    *bytes = 0;
    while (fgets(buf, sizeof(buf), f) != NULL) {
        unsigned long long lo, hi;
        char perms[5];
        if (sscanf(buf, "%llx-%llx %4s", &lo, &hi, perms) != 3)
            continue;
        if (skip_rwx && strncmp(perms, "rwx", 3) == 0)
            continue;
        (*lines)++;
        *bytes += hi - lo;
    }
    fclose(f);
}

START_TEST(thread_exit_frees_mappings)
{
    /* One malloc arena, so that per-thread arenas do not come and go; then a warm-up
     * round, so that everything the C library keeps for good exists before counting.
     * (glibc's knob; musl's allocator has no per-thread arenas.) */
#ifdef M_ARENA_MAX
    mallopt(M_ARENA_MAX, 1);
#endif
    /* Valgrind cannot tell a switch to a job stack from a big stack frame when the thread
     * runs on a stack it does not know (one from malloc), so there the threads get the C
     * library's stacks, and the stack cache's coming and going needs slack. */
    int under_valgrind = RUNNING_ON_VALGRIND;
    ck_assert_int_eq(run_threads(64, !under_valgrind), 0);
    long lines0, lines1;
    unsigned long long bytes0, bytes1;
    read_maps(under_valgrind, &lines0, &bytes0);
    ck_assert_int_eq(run_threads(400, !under_valgrind), 0);
    read_maps(under_valgrind, &lines1, &bytes1);
    /* 400 threads with 5 default stacks each (40 KiB per stack) would have left up to
     * 2,000 mappings and at least 70 MiB behind had the stacks leaked. Without sanitizers
     * or valgrind the maps come back exactly. AddressSanitizer's allocator maps a few more
     * regions of its own as it goes, so there a little slack is allowed, far below any
     * real leak. Under valgrind, its rwx memory is not counted (see read_maps); what is
     * left still moves a little (the guard pages around valgrind's thread-slot stacks,
     * 16 KiB a slot, and the C library's stack cache), so 256 KiB of slack is allowed:
     * seven leaked stacks (40 KiB each, guard page included) out of 2,000 exceed it. */
#if defined(__SANITIZE_ADDRESS__)
    const int sanitized = 1;
#else
    const int sanitized = 0;
#endif
    /* A C library without glibc's arena knob (musl) may keep a page or a mapping more
     * of its own heap after more threads: a little slack, the same as valgrind's. */
#ifdef M_ARENA_MAX
    const int other_libc = 0;
#else
    const int other_libc = 1;
#endif
    const long slack_lines = under_valgrind ? 64 : sanitized ? 16 : other_libc ? 4 : 0;
    const unsigned long long slack_bytes =
        under_valgrind || other_libc ? 256u << 10 : sanitized ? 4u << 20 : 0;
    ck_assert_int_le(lines1, lines0 + slack_lines);
    ck_assert_uint_le(bytes1, bytes0 + slack_bytes);
}
END_TEST

/* asyncjob(7): each thread maps room for several default stacks at a time, and what it
 * has not handed out is unmapped by ASYNC_cleanup_thread(). One job started, finished and
 * cleaned up must leave the maps as they were, but for the C library's heap growing (at
 * most 132 KiB by default); the 15 stacks made ahead take about 540 KiB. */
START_TEST(cleanup_unmaps_stacks_made_ahead)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    tap_skip("the sanitizer maps memory of its own while the test runs");
#endif
    if (RUNNING_ON_VALGRIND)
        tap_skip("valgrind maps memory of its own while the test runs");
    long lines0, lines1;
    unsigned long long bytes0, bytes1;
    read_maps(0, &lines0, &bytes0);
    ASYNC_JOB *job = NULL;
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, NULL, pause_once, NULL, 0), ASYNC_PAUSE);
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, NULL, pause_once, NULL, 0), ASYNC_FINISH);
    ASYNC_cleanup_thread();
    read_maps(0, &lines1, &bytes1);
    ck_assert_uint_le(bytes1, bytes0 + (256u << 10));
}
END_TEST

START_TEST(thread_exit_frees_stacks)
{
    use_counting_allocator();
    /* The main thread keeps some stacks of its own across the whole test. */
    ck_assert_int_eq(ASYNC_init_thread(0, 2), 1);
    long base = live_stacks();
    ck_assert_int_eq(base, 2);
    ck_assert_int_eq(run_threads(400, 0), 0);
    ck_assert_int_eq(n_alloc, 2 + 400 * 5);
    ck_assert_int_eq(live_stacks(), base);
}
END_TEST

/* ---- custom stack allocators ---- */

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
    ASYNC_stack_alloc_fn a2 = NULL;
    ASYNC_stack_free_fn f2 = NULL;
    ASYNC_get_mem_functions(&a2, &f2);
    ck_assert_ptr_eq((void *)a2, (void *)a);
    ck_assert_ptr_eq((void *)f2, (void *)f);
}
END_TEST

START_TEST(mem_functions_set_then_get)
{
    use_counting_allocator();
    ASYNC_stack_alloc_fn a = NULL;
    ASYNC_stack_free_fn f = NULL;
    ASYNC_get_mem_functions(&a, &f);
    ck_assert_ptr_eq((void *)a, (void *)count_alloc);
    ck_assert_ptr_eq((void *)f, (void *)count_free);
}
END_TEST

START_TEST(mem_functions_null_keeps_current)
{
    ASYNC_stack_alloc_fn def_a = NULL;
    ASYNC_stack_free_fn def_f = NULL;
    ASYNC_get_mem_functions(&def_a, &def_f);
    ck_assert_int_eq(ASYNC_set_mem_functions(count_alloc, NULL), 1);
    ASYNC_stack_alloc_fn a = NULL;
    ASYNC_stack_free_fn f = NULL;
    ASYNC_get_mem_functions(&a, &f);
    ck_assert_ptr_eq((void *)a, (void *)count_alloc);
    ck_assert_ptr_eq((void *)f, (void *)def_f);
    ck_assert_int_eq(ASYNC_set_mem_functions(NULL, count_free), 1);
    ASYNC_get_mem_functions(&a, &f);
    ck_assert_ptr_eq((void *)a, (void *)count_alloc);
    ck_assert_ptr_eq((void *)f, (void *)count_free);
    ck_assert_int_eq(ASYNC_set_mem_functions(NULL, NULL), 1);
    ASYNC_get_mem_functions(&a, &f);
    ck_assert_ptr_eq((void *)a, (void *)count_alloc);
    ck_assert_ptr_eq((void *)f, (void *)count_free);
}
END_TEST

START_TEST(mem_alloc_asked_for_32k)
{
    use_counting_allocator();
    ASYNC_JOB *j = start_paused();
    ck_assert_int_eq(n_alloc_calls, 1);
    ck_assert_uint_eq(first_request, 32768);
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
    use_counting_allocator();
    give_size = 256 * 1024;
    ASYNC_JOB *j = NULL;
    ck_assert_int_eq(ASYNC_start_job(&j, NULL, NULL, where_is_my_stack, NULL, 0),
                     ASYNC_PAUSE);
    uintptr_t lo = (uintptr_t)last_stack;
    /* The stack grows down from lo + size: a local of the job's first frame lies in the top
     * part of the 256 KiB block, above the 32 KiB that were asked for. */
    ck_assert_uint_gt(local_addr, lo + 32768);
    ck_assert_uint_lt(local_addr, lo + 256 * 1024);
    ck_assert_int_eq(ASYNC_start_job(&j, NULL, NULL, NULL, NULL, 0), ASYNC_FINISH);
}
END_TEST

START_TEST(mem_free_once_per_stack)
{
    use_counting_allocator();
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
    ck_assert_int_eq(n_alloc, 4);
    ck_assert_int_eq(n_free, 0);
    ASYNC_cleanup_thread();
    ck_assert_int_eq(n_free, 4);
    /* Each handed-out block freed exactly once. */
    for (int i = 0; i < 4; i++) {
        int times = 0;
        for (int k = 0; k < 4; k++)
            times += freed[k] == handed_out[i];
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
    ck_assert_int_eq(ASYNC_set_mem_functions(count_alloc, count_free), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_ELOCKED);
    ASYNC_stack_alloc_fn a = NULL;
    ASYNC_stack_free_fn f = NULL;
    ASYNC_get_mem_functions(&a, &f);
    ck_assert_ptr_eq((void *)a, (void *)a0);
    ck_assert_ptr_eq((void *)f, (void *)f0);
    /* For good: not even after every stack is gone again. */
    ASYNC_cleanup_thread();
    ck_assert_int_eq(ASYNC_set_mem_functions(count_alloc, count_free), 0);
    ck_assert_int_eq(n_alloc_calls, 0);
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
    ck_assert_int_eq(ASYNC_set_mem_functions(count_alloc, count_free), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_ELOCKED);
}
END_TEST

/* A start whose stack allocation fails: ASYNC_NO_JOBS with ASYNCJOB_ESTACK, *job left NULL
 * and *ret untouched. */
static void expect_start_without_stack(void)
{
    ASYNC_JOB *j = NULL;
    int ret = -3;
    ck_assert_int_eq(ASYNC_start_job(&j, NULL, &ret, return_arg, NULL, 0), ASYNC_NO_JOBS);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(ret, -3);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_ESTACK);
}

/* A stack too small to switch onto is refused cleanly and handed back at once. */
START_TEST(mem_alloc_too_small_refused)
{
    use_counting_allocator();
    give_size = 512;
    expect_start_without_stack();
    ck_assert_int_eq(n_alloc, 1);
    ck_assert_int_eq(n_free, 1);
    /* A larger stack from the same allocator works (16 KiB: enough under ASan too). */
    give_size = 16384;
    ASYNC_JOB *j = NULL;
    int ret = -3;
    ck_assert_int_eq(ASYNC_start_job(&j, NULL, &ret, return_arg, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ret, 0);
}
END_TEST

START_TEST(mem_alloc_null_no_jobs)
{
    use_counting_allocator();
    fail_after = 0;
    expect_start_without_stack();
    ck_assert_int_eq(n_alloc_calls, 1);
    /* Once the allocator works again, so do jobs. */
    fail_after = -1;
    ASYNC_JOB *j = NULL;
    int ret = -3;
    ck_assert_int_eq(ASYNC_start_job(&j, NULL, &ret, return_arg, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ret, 0);
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
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, use_24k, NULL, 0), ASYNC_PAUSE);
    ck_assert_int_eq(ASYNC_start_job(&job, NULL, &ret, use_24k, NULL, 0), ASYNC_FINISH);
    /* 96 times the sum 0 + 1 + ... + 255. */
    ck_assert_int_eq(ret, 96 * 255 * 256 / 2);
}
END_TEST

/* Recurses with 1 KiB frames until the stack runs out (the limit, 64 MiB deep, is there
 * only so that the compiler sees an end). */
static volatile long depth_limit = 65536;

static int recurse(volatile unsigned char *up, long depth)
{
    /* alloca, not an array: ASan may move arrays to a fake stack on the heap (with
     * detect_stack_use_after_return), but dynamic allocations stay on the real stack. */
    volatile unsigned char *frame = __builtin_alloca(1024);
    if (depth >= depth_limit)
        return 0;
    frame[0] = up != NULL ? (unsigned char)(up[0] + 1) : 0;
    frame[1023] = frame[0];
    return recurse(frame, depth + 1) + frame[1023];
}

/* Where the overflowing job's stack starts (near its top), and how far below that the
 * fault may happen: 32 KiB of usable stack (scaled under ASan, like the library does),
 * plus slack for rounding to whole pages, the first frames and the guard page itself.
 * Without a guard the fault would come only after the two stacks below (70+ KiB more). */
static volatile uintptr_t overflow_top;
#if defined(__has_feature)
# if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#  define __SANITIZE_ADDRESS__ 1 /* clang's spelling of GCC's macro */
# endif
#endif
#if defined(__SANITIZE_ADDRESS__)
# define STACK_REACH (8 * 32768 + 16384)
#else
# define STACK_REACH (32768 + 16384)
#endif

static int overflow(void *arg)
{
    (void)arg;
    /* The frame address, not a local's: under ASan locals may live on a fake stack. */
    overflow_top = (uintptr_t)__builtin_frame_address(0);
    return recurse(NULL, 0);
}

/* Runs on its own stack: exit 42 if the fault hit just below the job's stack (its guard
 * page), 43 if the recursion got further (no guard: it ran into other memory). */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    uintptr_t a = (uintptr_t)si->si_addr;
    _exit(a < overflow_top && overflow_top - a <= STACK_REACH ? 42 : 43);
}

START_TEST(default_stack_overflow_faults)
{
    stack_t alt = { .ss_sp = malloc(65536), .ss_size = 65536 };
    ck_assert_ptr_nonnull(alt.ss_sp);
    ck_assert_int_eq(sigaltstack(&alt, NULL), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
    ck_assert_int_eq(sigaction(SIGBUS, &sa, NULL), 0);
    /* Four stacks made one after the other lie next to each other: the library carves
     * them upwards from one mapping (a kernel asked for separate mappings places each
     * below the previous one). Two paused jobs take the two newest (LIFO) and the
     * overflowing job runs on the one made just before them, so another job's stack lies
     * right below its guard page: without the guard the recursion would run on through
     * it, past STACK_REACH. */
    ck_assert_int_eq(ASYNC_init_thread(0, 4), 1);
    ASYNC_JOB *paused[2] = { NULL, NULL };
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(ASYNC_start_job(&paused[i], NULL, NULL, pause_once, NULL, 0),
                         ASYNC_PAUSE);
    ASYNC_JOB *job = NULL;
    ASYNC_start_job(&job, NULL, NULL, overflow, NULL, 0);
    ck_abort_msg("the stack overflow did not fault");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, init_cleanup_reinit);
    tcase_add_test(tc, first_start_without_init_unlimited);
    tcase_add_test(tc, max_size_limits_no_jobs);
    tcase_add_test(tc, pool_full_error_code);
    tcase_add_test(tc, init_size_above_max_refused);
    tcase_add_test(tc, max_zero_any_init_size);
    tcase_add_test(tc, init_size_precreates);
    tcase_add_test(tc, init_stops_at_failed_creation);
    tcase_add_test(tc, reinit_reconfigures_without_leak);
    tcase_add_test(tc, lifo_reuse);
    tcase_add_test(tc, cleanup_twice_harmless);
    tcase_add_test(tc, cleanup_inside_job_refused);
    tcase_add_test(tc, paused_job_survives_cleanup);
    tcase_add_test(tc, orphan_not_counted_in_new_pool);
    tcase_add_test(tc, thousands_paused_at_once);
    tcase_add_test(tc, threads_at_once);
#if !defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer maps per-thread state of its own (tens of lines at random), so the
     * maps say nothing there; thread_exit_frees_stacks still checks the stacks. */
    tcase_add_test(tc, thread_exit_frees_mappings);
#else
    (void)thread_exit_frees_mappings;
#endif
    tcase_add_test(tc, thread_exit_frees_stacks);
    tcase_add_test(tc, cleanup_unmaps_stacks_made_ahead);
    tcase_add_test(tc, mem_functions_default_non_null);
    tcase_add_test(tc, mem_functions_set_then_get);
    tcase_add_test(tc, mem_functions_null_keeps_current);
    tcase_add_test(tc, mem_alloc_asked_for_32k);
    tcase_add_test(tc, mem_alloc_larger_size_used);
    tcase_add_test(tc, mem_free_once_per_stack);
    tcase_add_test(tc, mem_set_after_stack_locked);
    tcase_add_test(tc, mem_set_locked_by_other_thread);
    tcase_add_test(tc, mem_alloc_too_small_refused);
    tcase_add_test(tc, mem_alloc_null_no_jobs);
    tcase_add_test(tc, default_stack_usable_32k);
    tcase_add_exit_test(tc, default_stack_overflow_faults, 42);
    suite_add_tcase(s, tc);
    return s;
}

#include "tap_main.h"
