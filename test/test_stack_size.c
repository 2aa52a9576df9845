/*
 * test_stack_size.c: job stacks sized at run time (asyncjob_set_stack_size,
 * ASYNCJOB_STACK_SIZE), their use measured (asyncjob_stack_peak), deep jobs' pages given
 * back when they finish, and the pool trimmed (asyncjob_trim_thread). Cases that depend on
 * the process's first stack run in a child process of their own, since the environment
 * variable is read once and the stack functions lock with the first stack.
 */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_stack_size,
                   "it runs its cases in fork()ed children")
#else

#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/pool.h"
#include "../lib/stack.h"
#include "check_suite.h"
#include "child.h"
#include "counting_stacks.h"
#include "sanitizers.h"
#include "segv_altstack.h"
#include "tap_skip.h"

/* The library makes default stacks this many times larger under ASan. */
#if TEST_ASAN
# define SCALE 8
#else
# define SCALE 1
#endif

/* For the functions that use stack on purpose: ASan would move their arrays to its fake
 * stacks (detect_stack_use_after_return) or leave redzones in them unwritten. */
#if TEST_ASAN
# define REAL_STACK __attribute__((no_sanitize_address))
#else
# define REAL_STACK
#endif

#define KIB 1024u
#define DEEP (200 * KIB)

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- helpers: a child process that reports one number, or dies ------------------ */

/* Fork a child with ASYNCJOB_STACK_SIZE set to `env` (unset if NULL) that runs
 * body(fd) and exits 0; what it writes to fd (up to len bytes) lands in buf. Returns the
 * number of bytes read; the child's wait status goes to *status. */
static size_t spawn(const char *env, void (*body)(int fd), void *buf, size_t len, int *status)
{
    int fd;
    pid_t pid = fork_piped(0, &fd);
    if (pid == 0) {
        if (env != NULL)
            setenv("ASYNCJOB_STACK_SIZE", env, 1);
        else
            unsetenv("ASYNCJOB_STACK_SIZE");
        body(fd);
        _exit(0);
    }
    size_t got = read_to_end(fd, buf, len);
    *status = wait_child(pid);
    return got;
}

static size_t (*child_fn)(void);

static void write_value(int fd)
{
    size_t v = child_fn();
    if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
        _exit(70);
}

/* Run fn() in a child (see spawn()); the value it returns. */
static size_t in_child(const char *env, size_t (*fn)(void), int *status)
{
    size_t v = 0;
    child_fn = fn;
    return spawn(env, write_value, &v, sizeof(v), status) == sizeof(v) ? v : 0;
}

static size_t get_size(void)
{
    return asyncjob_get_stack_size();
}

static size_t env_size(const char *env)
{
    int status;
    size_t v = in_child(env, get_size, &status);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
    return v;
}

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

/* ---- the size and its environment variable ------------------------------------- */

START_TEST(default_size_is_32k)
{
    ck_assert_uint_eq(env_size(NULL), 32768 * SCALE);
}
END_TEST

START_TEST(environment_sets_the_first_size)
{
    ck_assert_uint_eq(env_size("256K"), 256 * KIB * SCALE);
    ck_assert_uint_eq(env_size("256k"), 256 * KIB * SCALE);
    ck_assert_uint_eq(env_size("1M"), 1024 * KIB * SCALE);
    ck_assert_uint_eq(env_size("65536"), 64 * KIB * SCALE);
    ck_assert_uint_eq(env_size("16K"), 16 * KIB * SCALE);
    /* Rounded up to whole pages. */
    ck_assert_uint_eq(env_size("40000"), ((40000 + page() - 1) / page()) * page() * SCALE);
}
END_TEST

START_TEST(invalid_environment_is_ignored)
{
    static const char *const bad[] = {
        "", "abc", "12Q", "-5", "0", "+64K", " 64K", "64K ", "64KK", "64KB", "1G",
        "8K" /* below the minimum */, "2048M" /* above the maximum */,
        "99999999999999999999999", "18014398509481984K" /* overflows with the unit */,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(env_size(bad[i]) == 32768 * SCALE, "ASYNCJOB_STACK_SIZE=\"%s\" not ignored",
                      bad[i]);
}
END_TEST

/* The environment is read before the first stack, not at each call: a later change of
 * the variable does nothing. */
static size_t env_read_once(void)
{
    size_t first = asyncjob_get_stack_size();
    setenv("ASYNCJOB_STACK_SIZE", "512K", 1);
    ASYNC_JOB *job = NULL;
    int ret;
    if (ASYNC_start_job(&job, NULL, &ret, nothing,
                        NULL, 0) != ASYNC_FINISH)
        return 0;
    return asyncjob_get_stack_size() == first ? first : 1;
}

START_TEST(environment_is_read_once)
{
    int status;
    ck_assert_uint_eq(in_child("128K", env_read_once, &status), 128 * KIB * SCALE);
}
END_TEST

START_TEST(set_rejects_out_of_range)
{
    size_t before = asyncjob_get_stack_size();
    static const size_t bad[] = { 0, 1, 4096, STACK_SIZE_SETTING_MIN - 1, STACK_SIZE_MAX + 1,
                                  SIZE_MAX / 2, SIZE_MAX };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(asyncjob_set_stack_size(bad[i]), 0);
        expect_error(ASYNCJOB_ESTACKSIZE);
        ck_assert_uint_eq(asyncjob_get_stack_size(), before);
    }
    ck_assert_str_ne(asyncjob_strerror(ASYNCJOB_ESTACKSIZE), "Unknown error code.");
    ck_assert_str_ne(asyncjob_strerror(ASYNCJOB_ENOTSUP), "Unknown error code.");
}
END_TEST

START_TEST(set_accepts_range_and_rounds_to_pages)
{
    ck_assert_int_eq(asyncjob_set_stack_size(STACK_SIZE_SETTING_MIN), 1);
    ck_assert_uint_eq(asyncjob_get_stack_size(), STACK_SIZE_SETTING_MIN * SCALE);
    ck_assert_int_eq(asyncjob_set_stack_size(40000), 1);
    ck_assert_uint_eq(asyncjob_get_stack_size(), ((40000 + page() - 1) / page()) * page() * SCALE);
    ck_assert_int_eq(asyncjob_set_stack_size(STACK_SIZE_MAX), 1);
    ck_assert_uint_eq(asyncjob_get_stack_size(), STACK_SIZE_MAX * SCALE);
    ck_assert_int_eq(asyncjob_set_stack_size(32768), 1);
    ck_assert_uint_eq(asyncjob_get_stack_size(), 32768 * SCALE);
}
END_TEST

/* ---- stacks made after a change ------------------------------------------------ */

static int record_stack_size(void *arg)
{
    *(size_t *)arg = ASYNC_get_current_job()->fiber.stack.size;
    return 0;
}

static int record_via_pointer(void *arg)
{
    return record_stack_size(*(size_t **)arg);
}

START_TEST(new_stacks_have_the_new_size)
{
    ck_assert_int_eq(ASYNC_init_thread(0, 4), 1);
    ck_assert_uint_eq(pool_tls.idle_count, 4);
    ck_assert_int_eq(asyncjob_set_stack_size(128 * KIB), 1);
    /* This thread's idle jobs had smaller stacks: gone at once. */
    ck_assert_uint_eq(pool_tls.idle_count, 0);
    ASYNC_JOB *job = NULL;
    int ret;
    size_t size = 0, *p = &size;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, record_via_pointer, &p, sizeof(p));
    ck_assert_uint_ge(size, 128 * KIB * SCALE);
    ck_assert_uint_lt(size, 128 * KIB * SCALE + page());
    /* A smaller size keeps the bigger stacks: they are large enough. */
    ck_assert_int_eq(asyncjob_set_stack_size(64 * KIB), 1);
    ck_assert_uint_eq(pool_tls.idle_count, 1);
    ASYNC_cleanup_thread();
}
END_TEST

/* Another thread's idle job made before a size change: the library cannot touch that
 * pool, so it runs once more and is freed as it comes back, instead of being pooled. */
static pthread_barrier_t barrier;

static void *other_thread(void *arg)
{
    size_t *sizes = arg;
    ASYNC_JOB *job = NULL;
    int ret;
    size_t *p = &sizes[0];
    if (ASYNC_start_job(&job, NULL, &ret, record_via_pointer, &p, sizeof(p)) != ASYNC_FINISH)
        return NULL;
    sizes[3] = pool_tls.idle_count;
    pthread_barrier_wait(&barrier); /* the main thread sets a larger size */
    pthread_barrier_wait(&barrier);
    p = &sizes[1];
    if (ASYNC_start_job(&job, NULL, &ret, record_via_pointer, &p, sizeof(p)) != ASYNC_FINISH)
        return NULL;
    sizes[4] = pool_tls.idle_count;
    p = &sizes[2];
    if (ASYNC_start_job(&job, NULL, &ret, record_via_pointer, &p, sizeof(p)) != ASYNC_FINISH)
        return NULL;
    ASYNC_cleanup_thread();
    return NULL;
}

START_TEST(other_threads_replace_small_stacks)
{
    size_t sizes[5] = { 0, 0, 0, 99, 99 };
    pthread_t th;
    ck_assert_int_eq(asyncjob_set_stack_size(32 * KIB), 1);
    ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, 2), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, other_thread, sizes), 0);
    pthread_barrier_wait(&barrier);
    ck_assert_int_eq(asyncjob_set_stack_size(256 * KIB), 1);
    pthread_barrier_wait(&barrier);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    pthread_barrier_destroy(&barrier);
    ck_assert_uint_lt(sizes[0], 256 * KIB * SCALE);
    ck_assert_uint_eq(sizes[3], 1);               /* pooled after the first start */
    ck_assert_uint_eq(sizes[1], sizes[0]);        /* the pooled job ran once more */
    ck_assert_uint_eq(sizes[4], 0);               /* ... and was freed, not pooled */
    ck_assert_uint_ge(sizes[2], 256 * KIB * SCALE); /* its replacement has the new size */
}
END_TEST

/* Custom allocators are asked for the size in force (before the ASan scaling). */
static size_t custom_allocator_size(void)
{
    if (!use_counting_stacks() || !asyncjob_set_stack_size(64 * KIB))
        return 0;
    ASYNC_JOB *job = NULL;
    int ret;
    if (ASYNC_start_job(&job, NULL, &ret, nothing, NULL, 0) != ASYNC_FINISH)
        return 1;
    return counted.first_request;
}

START_TEST(custom_allocator_gets_the_size)
{
    int status;
    ck_assert_uint_eq(in_child("128K", custom_allocator_size, &status), 64 * KIB);
}
END_TEST

/* A custom allocator that gives less than it is asked for, every time: its jobs are made
 * for the size in force, so they are pooled as usual, not replaced at each finish. */
static size_t stingy_reuse(void)
{
    counted.give_size = 32 * KIB;
    if (!use_counting_stacks() || !asyncjob_set_stack_size(64 * KIB))
        return 99;
    for (int i = 0; i < 5; i++) {
        ASYNC_JOB *job = NULL;
        int ret;
        if (ASYNC_start_job(&job, NULL, &ret, nothing, NULL, 0) != ASYNC_FINISH)
            return 98;
    }
    return (size_t)counted.calls;
}

START_TEST(custom_allocator_giving_less_is_pooled)
{
    int status;
    ck_assert_uint_eq(in_child(NULL, stingy_reuse, &status), 1);
}
END_TEST

/* ---- a job 200 KiB deep ------------------------------------------------------ */

static char *dig_top;

/* Recurse until this frame lies `depth` bytes below dig_top, writing all of each frame's
 * 256-byte array, which stays alive across the call (well below a page: no frame can step
 * over the guard). */
REAL_STACK __attribute__((noinline)) static int dig(size_t depth)
{
    volatile char frame[256];
    for (size_t i = 0; i < sizeof(frame); i++)
        frame[i] = 2;
    frame[0] = 1;
    if ((size_t)(dig_top - (char *)__builtin_frame_address(0)) >= depth)
        return frame[0];
    return dig(depth) + frame[sizeof(frame) - 1];
}

REAL_STACK static int dig_job(void *arg)
{
    dig_top = __builtin_frame_address(0);
    return dig(*(const size_t *)arg) > 0 ? 0 : 1;
}

static int report_fd = -1;

static void put_word(uintptr_t w)
{
    ssize_t r = write(report_fd, &w, sizeof(w));
    (void)r;
}

/* The fault's address goes to the parent; the default action then kills the child when
 * the faulting write runs again. */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    put_word((uintptr_t)si->si_addr);
    signal(sig, SIG_DFL);
}

static int dig_job_reporting(void *arg)
{
    put_word((uintptr_t)ASYNC_get_current_job()->fiber.stack.lo);
    return dig_job(arg);
}

/* A job 200 KiB deep, in a child: it writes the stack's lowest byte, then either the
 * faulting address (from the handler) or 1 if the job finished. */
static void deep_child(int fd)
{
    report_fd = fd;
    /* A sanitizer keeps its own handler, which reports and exits. */
    if (!TEST_SANITIZED && catch_segv_on_altstack(on_segv) != 0)
        _exit(72);
    /* The overflow is the point here: keep the tools' reports of it (a sanitizer's
     * on stderr, memcheck's of the store into the guard page) out of the test log, where
     * they would read as findings. */
    if (getenv("ASYNCJOB_STACK_SIZE") == NULL) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, 2) < 0)
            _exit(73);
#ifdef VALGRIND_DISABLE_ERROR_REPORTING
        VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    }
    ASYNC_JOB *job = NULL;
    int ret = -1;
    size_t depth = DEEP;
    if (ASYNC_start_job(&job, NULL, &ret, dig_job_reporting, &depth, sizeof(depth)) ==
            ASYNC_FINISH && ret == 0)
        put_word(1);
}

static void run_deep_child(const char *env, int *status, uintptr_t words[2])
{
    words[0] = words[1] = 0;
    spawn(env, deep_child, words, 2 * sizeof(uintptr_t), status);
}

START_TEST(deep_job_finishes_with_256k)
{
    int status;
    uintptr_t w[2];
    run_deep_child("256K", &status, w);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
    ck_assert_msg(w[1] == 1, "the 200 KiB job did not finish");
}
END_TEST

START_TEST(deep_job_dies_at_guard_by_default)
{
    if (32768 * SCALE > DEEP)
        tap_skip("default stacks are %u bytes in this build (ASan scaling): 200 KiB fits",
                 32768 * SCALE);
    int status;
    uintptr_t w[2];
    run_deep_child(NULL, &status, w);
    ck_assert_msg(w[1] != 1, "the 200 KiB job finished on a 32 KiB stack");
    ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "the overflowing job did not kill its process");
    if (!TEST_SANITIZED) {
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                      "child status %#x, wanted death by SIGSEGV", status);
        ck_assert_msg(w[0] != 0 && w[1] >= w[0] - page() && w[1] < w[0],
                      "fault at %#lx, outside the guard page below %#lx",
                      (unsigned long)w[1], (unsigned long)w[0]);
    }
}
END_TEST

/* ---- asyncjob_stack_peak ------------------------------------------------------ */

#define PEAK_BUF (20 * KIB)

/* Touch PEAK_BUF bytes of stack, note the peak from inside, pause there. */
REAL_STACK static int touch_and_pause(void *arg)
{
    size_t *inside = *(size_t **)arg;
    volatile char buf[PEAK_BUF];
    for (size_t i = 0; i < sizeof(buf); i += 64)
        buf[i] = 1;
    *inside = asyncjob_stack_peak(ASYNC_get_current_job());
    ASYNC_pause_job();
    return buf[0];
}

static int pause_at_once(void *arg)
{
    (void)arg;
    ASYNC_pause_job();
    return 0;
}

/* Slack above the bytes a job's own frames use: the library's frames at the top of the
 * stack, a page of rounding, and ASan's larger frames. */
static size_t slack(void)
{
    return 3 * page() + (SCALE > 1 ? 16 * KIB : 0);
}

START_TEST(peak_of_a_job_paused_20k_deep)
{
    ck_assert_int_eq(asyncjob_set_stack_size(64 * KIB), 1);
    ASYNC_JOB *job = NULL;
    int ret;
    size_t inside = 0, *p = &inside;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, touch_and_pause, &p, sizeof(p));
    size_t peak = asyncjob_stack_peak(job);
    ck_assert_uint_ge(peak, PEAK_BUF);
    ck_assert_uint_le(peak, PEAK_BUF + slack());
    ck_assert_uint_ge(inside, PEAK_BUF);
    ck_assert_uint_le(inside, peak);
    /* Whole pages, from the top of the stack (which ends where its top page does, less
     * the library's tail). */
    ck_assert_uint_eq(peak % page(), job->fiber.stack.size % page());
    expect_start(ASYNC_FINISH, &job, NULL, &ret, touch_and_pause, &p, sizeof(p));
    ASYNC_cleanup_thread();
}
END_TEST

START_TEST(peak_of_a_fresh_job_is_small)
{
    ck_assert_int_eq(asyncjob_set_stack_size(256 * KIB), 1);
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_at_once, NULL, 0);
    size_t peak = asyncjob_stack_peak(job);
    ck_assert_uint_gt(peak, 0);
    ck_assert_uint_le(peak, slack());
    expect_start(ASYNC_FINISH, &job, NULL, &ret, pause_at_once, NULL, 0);
    ASYNC_cleanup_thread();
}
END_TEST

static void *thread_holds_paused_job(void *arg)
{
    ASYNC_JOB **job = arg;
    int ret;
    if (ASYNC_start_job(job, NULL, &ret, pause_at_once, NULL, 0) != ASYNC_PAUSE)
        *job = NULL;
    pthread_barrier_wait(&barrier); /* the main thread tries the job */
    pthread_barrier_wait(&barrier);
    if (*job != NULL)
        ASYNC_start_job(job, NULL, &ret, pause_at_once, NULL, 0);
    ASYNC_cleanup_thread();
    return NULL;
}

START_TEST(peak_errors)
{
    ck_assert_uint_eq(asyncjob_stack_peak(NULL), 0);
    expect_error(ASYNCJOB_EINVAL);

    /* An idle job: the handle of a job that finished, now back in the pool. */
    ASYNC_JOB *job = NULL, *copy;
    int ret;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_at_once, NULL, 0);
    copy = job;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, pause_at_once, NULL, 0);
    ck_assert_uint_eq(asyncjob_stack_peak(copy), 0);
    expect_error(ASYNCJOB_ENOTPAUSED);

    /* Another thread's paused job. */
    ASYNC_JOB *foreign = NULL;
    pthread_t th;
    ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, 2), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, thread_holds_paused_job, &foreign), 0);
    pthread_barrier_wait(&barrier);
    ck_assert_ptr_nonnull(foreign);
    ck_assert_uint_eq(asyncjob_stack_peak(foreign), 0);
    expect_error(ASYNCJOB_EWRONGTHREAD);
    pthread_barrier_wait(&barrier);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    pthread_barrier_destroy(&barrier);
    ASYNC_cleanup_thread();
}
END_TEST

/* A job on a custom allocator's stack cannot be measured: 0 and ASYNCJOB_ENOTSUP. */
static int peak_of_self(void *arg)
{
    **(size_t **)arg = asyncjob_stack_peak(ASYNC_get_current_job());
    return asyncjob_last_error();
}

static size_t custom_peak(void)
{
    if (!use_counting_stacks())
        return 1;
    ASYNC_JOB *job = NULL;
    int ret = 0;
    size_t peak = 99, *p = &peak;
    if (ASYNC_start_job(&job, NULL, &ret, peak_of_self, &p, sizeof(p)) !=
            ASYNC_FINISH)
        return 2;
    return peak == 0 && ret == ASYNCJOB_ENOTSUP ? 0 : 3;
}

START_TEST(peak_of_custom_stack_is_0)
{
    int status;
    ck_assert_uint_eq(in_child(NULL, custom_peak, &status), 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
END_TEST

/* ---- deep jobs give their pages back ----------------------------------------- */

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    unsigned long size, resident;
    ck_assert_int_eq(fscanf(f, "%lu %lu", &size, &resident), 2);
    fclose(f);
    return resident * page();
}

static void skip_under_valgrind(void)
{
    if (RUNNING_ON_VALGRIND)
        tap_skip("under valgrind deep stacks are not given back (the check would read "
                 "memory that memcheck marks inaccessible)");
#if defined(__s390x__)
    /* The s390x ABI gives every frame a register save area with slots a callee leaves
     * unwritten; with this test's frames the one deep mark word falls in such a slot. */
    tap_skip("s390x: the deep mark falls in an unwritten register-save slot of this "
             "test's frames, so the one-word check does not see the job as deep "
             "(a documented limit, asyncjob_set_stack_size(3))");
#endif
}

/* Go DEEP bytes down, then pause: every job keeps its pages until it finishes. */
static int dig_and_pause(void *arg)
{
    int r = dig_job(arg);
    ASYNC_pause_job();
    return r;
}

#define POOL 32

START_TEST(deep_pool_falls_back_to_fresh_rss)
{
    skip_under_valgrind();
    ck_assert_int_eq(asyncjob_set_stack_size(256 * KIB), 1);
    ck_assert_int_eq(ASYNC_init_thread(POOL, POOL), 1);
    size_t fresh = rss_bytes();
    ASYNC_JOB *jobs[POOL] = { 0 };
    int ret;
    size_t depth = DEEP;
    for (int i = 0; i < POOL; i++)
        expect_start(ASYNC_PAUSE, &jobs[i], NULL, &ret, dig_and_pause, &depth, sizeof(depth));
    size_t deep = rss_bytes();
    /* The jobs really hold their pages (else this test could not fail). */
    ck_assert_uint_ge(deep, fresh + POOL * DEEP * 3 / 4);
    for (int i = 0; i < POOL; i++) {
        expect_start(ASYNC_FINISH, &jobs[i], NULL, &ret, dig_and_pause, &depth, sizeof(depth));
        ck_assert_int_eq(ret, 0);
    }
    ck_assert_uint_eq(pool_tls.idle_count, POOL);
    size_t after = rss_bytes();
#if TEST_TSAN
    /* TSan's shadow of the stacks (several times their size) is TSan's and stays
     * resident: what must go is the stacks' own pages. */
    ck_assert_msg(after + POOL * DEEP * 3 / 4 <= deep,
                  "RSS 32 deep jobs %zu KiB, after they finished %zu KiB (TSan)",
                  deep / KIB, after / KIB);
#else
    /* ASan's shadow of the stacks (a byte per eight) is ASan's, and stays resident. */
    ck_assert_msg(after < fresh + (deep - fresh) / (SCALE > 1 ? 4 : 8),
                  "RSS fresh %zu KiB, 32 deep jobs %zu KiB, after they finished %zu KiB",
                  fresh / KIB, deep / KIB, after / KIB);
#endif
    ASYNC_cleanup_thread();
}
END_TEST

/* The peak counts since the stack was made or last given back: a deep job's pages are
 * gone when the next job runs on the stack; a shallower one's are not. */
START_TEST(peak_after_deep_and_shallow_jobs)
{
    skip_under_valgrind();
    ck_assert_int_eq(asyncjob_set_stack_size(256 * KIB), 1);
    ck_assert_int_eq(ASYNC_init_thread(1, 1), 1);
    ASYNC_JOB *job = NULL;
    int ret;
    size_t depth = DEEP;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, dig_job, &depth, sizeof(depth));
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_at_once, NULL, 0);
    ck_assert_uint_le(asyncjob_stack_peak(job), slack());
    expect_start(ASYNC_FINISH, &job, NULL, &ret, pause_at_once, NULL, 0);

    depth = 40 * KIB; /* below the depth that gives pages back */
    expect_start(ASYNC_FINISH, &job, NULL, &ret, dig_job, &depth, sizeof(depth));
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_at_once, NULL, 0);
    ck_assert_uint_ge(asyncjob_stack_peak(job), 40 * KIB);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, pause_at_once, NULL, 0);
    ASYNC_cleanup_thread();
}
END_TEST

/* ---- asyncjob_trim_thread ----------------------------------------------------- */

/* In a child (the counting stacks lock the process's stack functions): trimming frees
 * idle jobs and unmaps their stacks. 0 if every step held, else the failing step. */
static size_t trim_steps(void)
{
    if (!use_counting_stacks())
        return 1;
    if (asyncjob_trim_thread(0) != 0) /* nothing to trim yet */
        return 2;
    if (ASYNC_init_thread(0, 8) != 1 || stacks() != 8)
        return 3;
    if (asyncjob_trim_thread(3) != 5 || stacks() != 3)
        return 4;
    if (asyncjob_trim_thread(3) != 0 || asyncjob_trim_thread(5) != 0 || stacks() != 3)
        return 5;
    ASYNC_JOB *job = NULL;
    int ret;
    if (ASYNC_start_job(&job, NULL, &ret, pause_at_once, NULL, 0) != ASYNC_PAUSE)
        return 6;
    /* A paused job is not idle: it stays. */
    if (asyncjob_trim_thread(0) != 2 || stacks() != 1)
        return 7;
    if (ASYNC_start_job(&job, NULL, &ret, pause_at_once, NULL, 0) != ASYNC_FINISH)
        return 8;
    if (asyncjob_trim_thread(0) != 1 || stacks() != 0)
        return 9;
    /* The pool still works afterwards. */
    if (ASYNC_start_job(&job, NULL, &ret, nothing, NULL, 0) != ASYNC_FINISH || stacks() != 1)
        return 10;
    ASYNC_cleanup_thread();
    return stacks() == 0 ? 0 : 11;
}

START_TEST(trim_frees_idle_jobs)
{
    int status;
    ck_assert_uint_eq(in_child(NULL, trim_steps, &status), 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
END_TEST

static int trim_inside(void *arg)
{
    size_t *out = *(size_t **)arg;
    out[0] = asyncjob_trim_thread(0);
    out[1] = (size_t)asyncjob_last_error();
    return 0;
}

START_TEST(trim_refused_inside_a_job)
{
    ck_assert_int_eq(ASYNC_init_thread(0, 4), 1);
    ASYNC_JOB *job = NULL;
    int ret;
    size_t out[2] = { 99, 0 }, *p = out;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, trim_inside, &p, sizeof(p));
    ck_assert_uint_eq(out[0], 0);
    ck_assert_uint_eq(out[1], ASYNCJOB_EINJOB);
    ck_assert_uint_eq(asyncjob_trim_thread(0), 4); /* nothing was freed from inside */
    ASYNC_cleanup_thread();
}
END_TEST

SUITE("stack_size", 120, NULL, default_size_is_32k, environment_sets_the_first_size,
      invalid_environment_is_ignored, environment_is_read_once, set_rejects_out_of_range,
      set_accepts_range_and_rounds_to_pages, new_stacks_have_the_new_size,
      other_threads_replace_small_stacks, custom_allocator_gets_the_size,
      custom_allocator_giving_less_is_pooled, deep_job_finishes_with_256k,
      deep_job_dies_at_guard_by_default, peak_of_a_job_paused_20k_deep,
      peak_of_a_fresh_job_is_small, peak_errors, peak_of_custom_stack_is_0,
      deep_pool_falls_back_to_fresh_rss, peak_after_deep_and_shallow_jobs, trim_frees_idle_jobs,
      trim_refused_inside_a_job)

#endif /* _WIN32 */
#include "tap_main.h"
