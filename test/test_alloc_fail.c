/*
 * test_alloc_fail.c: every allocation the library makes can fail cleanly. Each test walks
 * N = 1, 2, 3, ... making the Nth allocation of one operation fail (lib/alloc.h's internal
 * hook, hence the static link against the core library) until the operation no longer
 * reaches an injected failure. Every failure must give a clean error code, leak nothing,
 * and leave the library working normally for the next call.
 *
 * Leaks are counted two ways here: job stacks through a counting wrapper around the
 * default stack allocator (so stack injection still happens inside it), and heap bytes
 * through glibc's mallinfo2() where it reflects the real heap. Under ASan (LeakSanitizer)
 * and valgrind, which replace malloc, those tools do the heap accounting instead; the
 * tests free everything they own so that any report is the library's.
 */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_alloc_fail,
                   "each case runs in a fork()ed child, with prctl and glibc's malloc hooks")
#else

#include "config.h"

#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
/* musl's compiler wrapper may not see the kernel's headers; the mode's value is kernel ABI. */
#if __has_include(<linux/seccomp.h>)
# include <linux/seccomp.h>
#endif
#ifndef SECCOMP_MODE_STRICT
# define SECCOMP_MODE_STRICT 1
#endif
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asyncjob.h"
#include "../lib/alloc.h"
#include "check_suite.h"
#include "child.h"
#include "counting_stacks.h"
#include "sanitizers.h"
#include "tap_skip.h"

/* ---- accounting ---- */

/* Bytes in use on glibc's heap, or -1 when malloc is not glibc's (sanitizers, valgrind). */
static long heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    static int usable = -1;
    if (usable < 0) {
        size_t before = mallinfo2().uordblks;
        void *volatile probe = malloc(1 << 16);
        size_t during = mallinfo2().uordblks;
        free(probe);
        usable = probe != NULL && during >= before + (1 << 16);
    }
    return usable ? (long)mallinfo2().uordblks : -1;
#else
    return -1;
#endif
}

/* Run a walk repeatedly and compare the heap across the last two runs: glibc's tcache
 * counts up to seven freed chunks per size as in use until its bins fill, after which a
 * deterministic walk leaves the heap as it found it, so any growth is a leak. */
#define WARM_RUNS 10
static void repeated(void (*walk)(void), const char *what)
{
    for (int i = 0; i < WARM_RUNS; i++)
        walk();
    long base = heap_in_use();
    walk();
    walk();
    long after = heap_in_use();
    if (base >= 0 && after >= 0 && after != base)
        ck_abort_msg("%s: %ld heap bytes leaked by two walks", what, after - base);
}

static void setup(void)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    alloc_fail_after(0);
}

/* Arm failure number n. */
static void arm(long n)
{
    alloc_fail_after(n);
}

/* After the operation: did it reach the injected failure? Disarms either way. */
static int was_hit(long n)
{
    int hit = alloc_count() >= n;
    alloc_fail_after(0);
    return hit;
}

/* The code a failure of allocation n of a job creation gives: the job struct comes
 * first, then its stack. */
static int creation_error(long k)
{
    return k % 2 == 1 ? ASYNCJOB_ENOMEM : ASYNCJOB_ESTACK;
}

/* ---- job bodies ---- */

static int runs;

struct big {
    unsigned char bytes[200]; /* more than the 64 bytes kept inside the job */
};

static void fill_big(struct big *b, unsigned seed)
{
    for (size_t i = 0; i < sizeof(b->bytes); i++)
        b->bytes[i] = (unsigned char)(seed + i * 7);
}

/* Pause once, then check the argument copy survived and return its checksum. */
static int pausing_job(void *arg)
{
    runs++;
    const struct big *b = arg;
    unsigned sum = 0;
    if (b != NULL)
        for (size_t i = 0; i < sizeof(b->bytes); i++)
            sum += b->bytes[i];
    if (ASYNC_pause_job() != 1)
        return -1;
    unsigned again = 0;
    if (b != NULL)
        for (size_t i = 0; i < sizeof(b->bytes); i++)
            again += b->bytes[i];
    return again == sum ? (int)sum : -2;
}

static int big_sum(unsigned seed)
{
    struct big b;
    fill_big(&b, seed);
    int sum = 0;
    for (size_t i = 0; i < sizeof(b.bytes); i++)
        sum += b.bytes[i];
    return sum;
}

/* The library works normally: start `n` jobs at once (with big args), pause, finish. */
static void works_normally(int n)
{
    ASYNC_JOB *jobs[8] = { 0 };
    ck_assert_int_le(n, 8);
    for (int i = 0; i < n; i++) {
        struct big b;
        fill_big(&b, (unsigned)i);
        expect_start(ASYNC_PAUSE, &jobs[i], NULL, NULL, pausing_job, &b, sizeof(b));
    }
    for (int i = n - 1; i >= 0; i--) {
        int ret = -1;
        expect_start(ASYNC_FINISH, &jobs[i], NULL, &ret, pausing_job, NULL, 0);
        ck_assert_int_eq(ret, big_sum((unsigned)i));
    }
}

/* ---- ASYNC_init_thread pre-creating jobs ---- */

static void walk_init_thread_precreate(void)
{
    enum { K = 4 };
    long n, hits = 0;
    for (n = 1;; n++) {
        arm(n);
        int rc = ASYNC_init_thread(0, K);
        if (!was_hit(n)) {
            ck_assert_int_eq(rc, 1);
            ck_assert_int_eq(stacks(), K);
            break;
        }
        hits++;
        /* Pre-creation stops at the failed job and still succeeds (spec). */
        ck_assert_int_eq(rc, 1);
        ck_assert_int_eq(stacks(), (n - 1) / 2);
        expect_error(creation_error(n));
        /* Next call works: the pool tops up, and K jobs run at once from it without a
         * single further allocation for job or stack. */
        ck_assert_int_eq(ASYNC_init_thread(0, K), 1);
        ck_assert_int_eq(stacks(), K);
        ASYNC_JOB *jobs[K] = { 0 };
        arm(1000);
        for (int i = 0; i < K; i++)
            expect_start(ASYNC_PAUSE, &jobs[i], NULL, NULL, pausing_job, NULL, 0);
        ck_assert_int_eq(alloc_count(), 0);
        alloc_fail_after(0);
        for (int i = 0; i < K; i++)
            expect_start(ASYNC_FINISH, &jobs[i], NULL, NULL, pausing_job, NULL, 0);
        ASYNC_cleanup_thread();
        ck_assert_int_eq(stacks(), 0);
    }
    ck_assert_int_ge(hits, 2 * K); /* a job struct and a stack per job, at least */
    ASYNC_cleanup_thread();
    ck_assert_int_eq(stacks(), 0);
}

START_TEST(alloc_fail_init_thread_precreate)
{
    repeated(walk_init_thread_precreate, "init_thread_precreate");
}
END_TEST

static void walk_init_thread_reconfigure(void)
{
    /* A pool with one idle job is topped up to three under a new limit of five. */
    long n, hits = 0;
    for (n = 1;; n++) {
        ck_assert_int_eq(ASYNC_init_thread(2, 1), 1);
        ck_assert_int_eq(stacks(), 1);
        arm(n);
        int rc = ASYNC_init_thread(5, 3);
        int hit = was_hit(n);
        ck_assert_int_eq(rc, 1);
        if (!hit) {
            ck_assert_int_eq(stacks(), 3);
            ASYNC_cleanup_thread();
            break;
        }
        hits++;
        ck_assert_int_eq(stacks(), 1 + (n - 1) / 2);
        expect_error(creation_error(n));
        /* The new limit holds even though the top-up stopped early. */
        ASYNC_JOB *jobs[6] = { 0 };
        for (int i = 0; i < 5; i++)
            expect_start(ASYNC_PAUSE, &jobs[i], NULL, NULL, pausing_job, NULL, 0);
        expect_start(ASYNC_NO_JOBS, &jobs[5], NULL, NULL, pausing_job, NULL, 0);
        expect_error(ASYNCJOB_EPOOLFULL);
        for (int i = 0; i < 5; i++)
            expect_start(ASYNC_FINISH, &jobs[i], NULL, NULL, pausing_job, NULL, 0);
        ASYNC_cleanup_thread();
        ck_assert_int_eq(stacks(), 0);
    }
    ck_assert_int_ge(hits, 4);
    ck_assert_int_eq(stacks(), 0);
}

START_TEST(alloc_fail_init_thread_reconfigure)
{
    repeated(walk_init_thread_reconfigure, "init_thread_reconfigure");
}
END_TEST

/* ---- ASYNC_start_job creating a job ---- */

/* Walk the allocations of one start that has to create its job; `big` selects args larger
 * than the inline storage, `with_ctx` a wait ctx (which must not stay attached). */
static void start_new_job_walk(int big, int with_ctx)
{
    long n, hits = 0;
    for (n = 1;; n++) {
        ASYNC_WAIT_CTX *ctx = NULL;
        if (with_ctx) {
            ctx = ASYNC_WAIT_CTX_new();
            ck_assert_ptr_nonnull(ctx);
        }
        struct big b;
        fill_big(&b, 3);
        ASYNC_JOB *job = NULL;
        int ret = -7;
        runs = 0;
        arm(n);
        int rc = ASYNC_start_job(&job, ctx, &ret, pausing_job, big ? &b : NULL,
                                 big ? sizeof(b) : 0);
        int hit = was_hit(n);
        if (!hit) {
            ck_assert_int_eq(rc, ASYNC_PAUSE);
            ck_assert_ptr_eq(ASYNC_get_wait_ctx(job), ctx);
            expect_start(ASYNC_FINISH, &job, NULL, &ret, pausing_job, NULL, 0);
            ck_assert_int_eq(ret, big ? big_sum(3) : 0);
            ASYNC_WAIT_CTX_free(ctx);
            ASYNC_cleanup_thread();
            break;
        }
        hits++;
        ck_assert_int_eq(rc, ASYNC_NO_JOBS);
        ck_assert_ptr_null(job);
        ck_assert_int_eq(ret, -7);
        ck_assert_int_eq(runs, 0);
        if (n <= 2) {
            expect_error(creation_error(n));
            ck_assert_int_eq(stacks(), 0);
        } else {
            /* The argument copy failed: the new job went to the pool, not astray. */
            expect_error(ASYNCJOB_ENOMEM);
            ck_assert_int_eq(stacks(), 1);
        }
        /* The failed start did not attach the job to the ctx: freeing it is safe, and a
         * job started with it now sees it. */
        if (ctx != NULL) {
            ASYNC_JOB *j2 = NULL;
            expect_start(ASYNC_PAUSE, &j2, ctx, NULL, pausing_job, NULL, 0);
            ck_assert_ptr_eq(ASYNC_get_wait_ctx(j2), ctx);
            expect_start(ASYNC_FINISH, &j2, NULL, NULL, pausing_job, NULL, 0);
            ASYNC_WAIT_CTX_free(ctx);
        }
        works_normally(3);
        ASYNC_cleanup_thread();
        ck_assert_int_eq(stacks(), 0);
    }
    ck_assert_int_eq(hits, big ? 3 : 2);
    ck_assert_int_eq(stacks(), 0);
}

static void walk_new(void) { start_new_job_walk(0, 0); }
static void walk_new_ctx(void) { start_new_job_walk(0, 1); }
static void walk_new_big(void) { start_new_job_walk(1, 0); }

START_TEST(alloc_fail_start_new_job)
{
    repeated(walk_new, "start_new_job");
}
END_TEST

START_TEST(alloc_fail_start_new_job_with_ctx)
{
    repeated(walk_new_ctx, "start_new_job_with_ctx");
}
END_TEST

START_TEST(alloc_fail_start_new_job_big_args)
{
    repeated(walk_new_big, "start_new_job_big_args");
}
END_TEST

static void walk_start_pooled_job_big_args(void)
{
    /* A warm pool: the argument copy is the only allocation. */
    ck_assert_int_eq(ASYNC_init_thread(1, 1), 1);
    long n, hits = 0;
    for (n = 1;; n++) {
        struct big b;
        fill_big(&b, 9);
        ASYNC_JOB *job = NULL;
        int ret = -7;
        runs = 0;
        arm(n);
        int rc = ASYNC_start_job(&job, NULL, &ret, pausing_job, &b, sizeof(b));
        if (!was_hit(n)) {
            ck_assert_int_eq(rc, ASYNC_PAUSE);
            expect_start(ASYNC_FINISH, &job, NULL, &ret, pausing_job, NULL, 0);
            ck_assert_int_eq(ret, big_sum(9));
            break;
        }
        hits++;
        ck_assert_int_eq(rc, ASYNC_NO_JOBS);
        expect_error(ASYNCJOB_ENOMEM);
        ck_assert_ptr_null(job);
        ck_assert_int_eq(runs, 0);
        /* The pool of one still has its job: the next start gets it. */
        works_normally(1);
        ck_assert_int_eq(stacks(), 1);
    }
    ck_assert_int_eq(hits, 1);
    ASYNC_cleanup_thread();
    ck_assert_int_eq(stacks(), 0);
}

START_TEST(alloc_fail_start_pooled_job_big_args)
{
    repeated(walk_start_pooled_job_big_args, "start_pooled_job_big_args");
}
END_TEST

/* ---- wait ctx operations ---- */

static void walk_wait_ctx_new(void)
{
    long n, hits = 0;
    for (n = 1;; n++) {
        arm(n);
        ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
        if (!was_hit(n)) {
            ck_assert_ptr_nonnull(ctx);
            ASYNC_WAIT_CTX_free(ctx);
            break;
        }
        hits++;
        ck_assert_ptr_null(ctx);
        expect_error(ASYNCJOB_ENOMEM);
        ctx = ASYNC_WAIT_CTX_new();
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(ASYNC_WAIT_CTX_get_status(ctx), ASYNC_STATUS_UNSUPPORTED);
        ASYNC_WAIT_CTX_free(ctx);
    }
    ck_assert_int_eq(hits, 1);
}

START_TEST(alloc_fail_wait_ctx_new)
{
    repeated(walk_wait_ctx_new, "wait_ctx_new");
}
END_TEST

static int keys[4];
static int cleanups;

static void count_cleanup(ASYNC_WAIT_CTX *c, const void *k, OSSL_ASYNC_FD fd, void *d)
{
    (void)c; (void)k; (void)d; (void)fd;
    cleanups++;
}

/* The ctx holds exactly fds {fds[0..n-1]} (newest first) and `na` additions. */
static void ctx_holds(ASYNC_WAIT_CTX *ctx, const OSSL_ASYNC_FD *fds, size_t n, size_t na)
{
    OSSL_ASYNC_FD got[8];
    size_t m = 99, a = 99, d = 99;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(ctx, got, &m), 1);
    ck_assert_uint_eq(m, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(got[i], fds[i]);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_changed_fds(ctx, NULL, &a, NULL, &d), 1);
    ck_assert_uint_eq(a, na);
    ck_assert_uint_eq(d, 0);
}

static void walk_set_wait_fd(void)
{
    long n, hits = 0;
    for (n = 1;; n++) {
        ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(ASYNC_WAIT_CTX_set_wait_fd(ctx, &keys[0], 10, NULL, count_cleanup), 1);
        cleanups = 0;
        arm(n);
        int rc = ASYNC_WAIT_CTX_set_wait_fd(ctx, &keys[1], 11, NULL, count_cleanup);
        if (!was_hit(n)) {
            ck_assert_int_eq(rc, 1);
            ASYNC_WAIT_CTX_free(ctx);
            ck_assert_int_eq(cleanups, 2);
            break;
        }
        hits++;
        ck_assert_int_eq(rc, 0);
        expect_error(ASYNCJOB_ENOMEM);
        /* Nothing half-added: one entry, one addition, and key 1 is unknown. */
        static const OSSL_ASYNC_FD one[] = { 10 };
        ctx_holds(ctx, one, 1, 1);
        OSSL_ASYNC_FD fd = -5;
        void *data = NULL;
        ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(ctx, &keys[1], &fd, &data), 0);
        ck_assert_int_eq(fd, -5);
        /* The next call works. */
        ck_assert_int_eq(ASYNC_WAIT_CTX_set_wait_fd(ctx, &keys[1], 11, NULL, count_cleanup), 1);
        static const OSSL_ASYNC_FD two[] = { 11, 10 };
        ctx_holds(ctx, two, 2, 2);
        ASYNC_WAIT_CTX_free(ctx);
        ck_assert_int_eq(cleanups, 2);
    }
    ck_assert_int_eq(hits, 1);
}

START_TEST(alloc_fail_set_wait_fd)
{
    repeated(walk_set_wait_fd, "set_wait_fd");
}
END_TEST

/* set_wait_fd failing inside a job, where engines call it: the job sees 0 and can still
 * pause, and the reset on resume is unaffected. */
static long inner_n;
static int inner_rc, inner_hit;

static int fd_setting_job(void *arg)
{
    (void)arg;
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    if (ctx == NULL || !ASYNC_WAIT_CTX_set_wait_fd(ctx, &keys[0], 20, NULL, count_cleanup))
        return -1;
    arm(inner_n);
    inner_rc = ASYNC_WAIT_CTX_set_wait_fd(ctx, &keys[1], 21, NULL, count_cleanup);
    inner_hit = was_hit(inner_n);
    if (ASYNC_pause_job() != 1)
        return -2;
    return inner_rc;
}

static void walk_set_wait_fd_inside_job(void)
{
    long n, hits = 0;
    for (n = 1;; n++) {
        ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
        ck_assert_ptr_nonnull(ctx);
        ASYNC_JOB *job = NULL;
        int ret = -1;
        inner_n = n;
        cleanups = 0;
        expect_start(ASYNC_PAUSE, &job, ctx, &ret, fd_setting_job, NULL, 0);
        if (inner_hit) {
            hits++;
            ck_assert_int_eq(inner_rc, 0);
            expect_error(ASYNCJOB_ENOMEM);
            static const OSSL_ASYNC_FD one[] = { 20 };
            ctx_holds(ctx, one, 1, 1);
        } else {
            ck_assert_int_eq(inner_rc, 1);
            static const OSSL_ASYNC_FD two[] = { 21, 20 };
            ctx_holds(ctx, two, 2, 2);
        }
        expect_start(ASYNC_FINISH, &job, NULL, &ret, fd_setting_job, NULL, 0);
        ck_assert_int_eq(ret, inner_hit ? 0 : 1);
        ASYNC_WAIT_CTX_free(ctx);
        ck_assert_int_eq(cleanups, inner_hit ? 1 : 2);
        ASYNC_cleanup_thread();
        ck_assert_int_eq(stacks(), 0);
        if (!inner_hit)
            break;
    }
    ck_assert_int_eq(hits, 1);
}

START_TEST(alloc_fail_set_wait_fd_inside_job)
{
    repeated(walk_set_wait_fd_inside_job, "set_wait_fd_inside_job");
}
END_TEST

/* ---- thread state creation: the first call on a brand-new thread ---- */

struct first_call {
    long n;
    int use_init;   /* first call is ASYNC_init_thread(0, 2), else ASYNC_start_job */
    int cleanup;    /* call ASYNC_cleanup_thread, else rely on thread exit */
    int hit, rc, err, after_ok;
};

static void *first_call_thread(void *p)
{
    struct first_call *fc = p;
    ASYNC_JOB *job = NULL;
    arm(fc->n);
    if (fc->use_init)
        fc->rc = ASYNC_init_thread(0, 2);
    else
        fc->rc = ASYNC_start_job(&job, NULL, NULL, pausing_job, NULL, 0);
    fc->hit = was_hit(fc->n);
    fc->err = asyncjob_last_error();
    /* Whatever happened, the thread's state must be usable now: run two jobs at once
     * and leave one of them idle in the pool for the cleanup to free. */
    ASYNC_JOB *a = job, *b = NULL;
    int ok = 1;
    if (a == NULL)
        ok &= ASYNC_start_job(&a, NULL, NULL, pausing_job, NULL, 0) == ASYNC_PAUSE;
    ok &= ASYNC_start_job(&b, NULL, NULL, pausing_job, NULL, 0) == ASYNC_PAUSE;
    ok &= ASYNC_start_job(&a, NULL, NULL, pausing_job, NULL, 0) == ASYNC_FINISH;
    ok &= ASYNC_start_job(&b, NULL, NULL, pausing_job, NULL, 0) == ASYNC_FINISH;
    fc->after_ok = ok;
    if (fc->cleanup)
        ASYNC_cleanup_thread();
    return NULL;
}

static void first_call_walk(int use_init, int cleanup)
{
    long n, hits = 0;
    for (n = 1;; n++) {
        struct first_call fc = { .n = n, .use_init = use_init, .cleanup = cleanup };
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, first_call_thread, &fc), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(fc.after_ok, 1);
        /* Cleanup, explicit or at thread exit, freed every stack of the thread. */
        ck_assert_int_eq(stacks(), 0);
        if (!fc.hit) {
            ck_assert_int_eq(fc.rc, use_init ? 1 : ASYNC_PAUSE);
            break;
        }
        hits++;
        ck_assert_int_eq(fc.rc, use_init ? 1 : ASYNC_NO_JOBS);
        ck_assert_int_eq(fc.err, creation_error(n));
    }
    /* The thread state itself lives in TLS and allocates nothing from the library's
     * allocator; every allocation walked here is a job struct or a stack. */
    ck_assert_int_eq(hits, use_init ? 4 : 2);
}

START_TEST(alloc_fail_first_start_on_new_thread)
{
    first_call_walk(0, 1);
}
END_TEST

START_TEST(alloc_fail_first_start_on_new_thread_exit_cleanup)
{
    first_call_walk(0, 0);
}
END_TEST

START_TEST(alloc_fail_first_init_on_new_thread)
{
    first_call_walk(1, 1);
}
END_TEST

START_TEST(alloc_fail_first_init_on_new_thread_exit_cleanup)
{
    first_call_walk(1, 0);
}
END_TEST

/* ---- the hook itself ---- */

START_TEST(alloc_fail_hook_counts_and_disarms)
{
    /* Armed for the 3rd: two wait ctxs succeed, the third fails, the fourth succeeds. */
    arm(3);
    ASYNC_WAIT_CTX *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(c[0]);
    ck_assert_ptr_nonnull(c[1]);
    ck_assert_ptr_null(c[2]);
    ck_assert_ptr_nonnull(c[3]);
    ck_assert_int_eq(alloc_count(), 3);
    for (int i = 0; i < 4; i++)
        ASYNC_WAIT_CTX_free(c[i]);
}
END_TEST

/* ---- the hot path ---- */

#define HOT_ARGS 64 /* the largest argument copy kept inside the job (POOL_INLINE_ARGS) */

/* Pauses three times; returns the sum of its first and last argument bytes. */
static int pause_three_times(void *arg)
{
    const unsigned char *a = arg;
    for (int i = 0; i < 3; i++)
        if (ASYNC_pause_job() != 1)
            return -1;
    return a[0] + a[HOT_ARGS - 1];
}

/* Run one job of pause_three_times to its end: start, three resumes. */
static void run_hot_job(ASYNC_WAIT_CTX *ctx, const unsigned char *args)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, pause_three_times, (void *)args, HOT_ARGS);
    for (int i = 0; i < 2; i++)
        expect_start(ASYNC_PAUSE, &job, ctx, &ret, pause_three_times, NULL, 0);
    expect_start(ASYNC_FINISH, &job, ctx, &ret, pause_three_times, NULL, 0);
    ck_assert_int_eq(ret, args[0] + args[HOT_ARGS - 1]);
}

START_TEST(hot_path_allocates_nothing)
{
    /* With a warm pool, a wait ctx and arguments of the largest size kept inside the job,
     * starting, pausing, resuming and finishing attempt no allocation at all. */
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    unsigned char args[HOT_ARGS];
    memset(args, 0x21, sizeof(args));
    run_hot_job(ctx, args); /* creates the job and its stack */
    arm(1000000);
    for (int round = 0; round < 3; round++)
        run_hot_job(ctx, args);
    ck_assert_int_eq(alloc_count(), 0);
    alloc_fail_after(0);
    ASYNC_WAIT_CTX_free(ctx);
    ASYNC_cleanup_thread();
}
END_TEST

/*
 * Run `body` in a child process under seccomp's strict mode, where any system call but
 * read, write, exit and sigreturn kills the process (SIGKILL). The child leaves through
 * the raw exit system call with body's result. Returns the child's wait status.
 */
static int run_strict(int (*body)(void))
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0)
            _exit(3);
        syscall(SYS_exit, body());
    }
    return wait_child(pid);
}

static int nothing(void)
{
    return 0;
}

static ASYNC_WAIT_CTX *hot_ctx;
static unsigned char hot_args[HOT_ARGS];

/* Three pooled jobs, each started, resumed three times and finished, without a single
 * check that could itself make a system call: 0 if every result is right. */
static int hot_jobs(void)
{
    for (int round = 0; round < 3; round++) {
        ASYNC_JOB *job = NULL;
        int ret = 0;
        if (ASYNC_start_job(&job, hot_ctx, &ret, pause_three_times, hot_args, HOT_ARGS) !=
            ASYNC_PAUSE)
            return 10;
        for (int i = 0; i < 2; i++)
            if (ASYNC_start_job(&job, hot_ctx, &ret, pause_three_times, NULL, 0) !=
                ASYNC_PAUSE)
                return 11;
        if (ASYNC_start_job(&job, hot_ctx, &ret, pause_three_times, NULL, 0) != ASYNC_FINISH)
            return 12;
        if (ret != hot_args[0] + hot_args[HOT_ARGS - 1])
            return 13;
    }
    return 0;
}

START_TEST(hot_path_makes_no_system_call)
{
    if (TEST_SANITIZED)
        tap_skip("a sanitizer's runtime makes system calls of its own around a switch");
    /* Where even an empty child dies, something else in the process (valgrind, an
     * emulator such as qemu-user) makes system calls: nothing can be learnt here. */
    int probe = run_strict(nothing);
    if (!WIFEXITED(probe) || WEXITSTATUS(probe) != 0)
        tap_skip("seccomp strict mode is not usable here (valgrind or an emulator?)");
    hot_ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(hot_ctx);
    memset(hot_args, 0x21, sizeof(hot_args));
    run_hot_job(hot_ctx, hot_args); /* creates the job and its stack */
    int status = run_strict(hot_jobs);
    ck_assert_msg(WIFEXITED(status), "the hot path made a system call (killed by signal %d)",
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ASYNC_WAIT_CTX_free(hot_ctx);
    ASYNC_cleanup_thread();
}
END_TEST

SUITE("alloc_fail", 120, setup, alloc_fail_hook_counts_and_disarms,
      alloc_fail_init_thread_precreate, alloc_fail_init_thread_reconfigure,
      alloc_fail_start_new_job, alloc_fail_start_new_job_with_ctx,
      alloc_fail_start_new_job_big_args, alloc_fail_start_pooled_job_big_args,
      alloc_fail_wait_ctx_new, alloc_fail_set_wait_fd, alloc_fail_set_wait_fd_inside_job,
      alloc_fail_first_start_on_new_thread, alloc_fail_first_start_on_new_thread_exit_cleanup,
      alloc_fail_first_init_on_new_thread, alloc_fail_first_init_on_new_thread_exit_cleanup,
      hot_path_allocates_nothing, hot_path_makes_no_system_call)

#endif /* _WIN32 */
#include "tap_main.h"
