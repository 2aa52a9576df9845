/*
 * test_tools.c: job code that only runs clean under ASan, TSan and valgrind when the
 * switching layer tells them about every stack switch: longjmp inside a job, deep frames
 * kept across pauses, pooled stacks reused by the next job. Each case runs in a child
 * whose stderr the parent reads, so a tool's warning fails the test, not just the log.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asyncjob.h"
#include "check_suite.h"
#include "child.h"
#include "sanitizers.h"

#if TEST_SANITIZED
static char child_out[16384];

/* Run `body` in a child; fail unless it dies (not exit 0) with all of `words` in its
 * output: a tool must catch the bug planted in `body`, and say where it is. */
static void run_expecting_report(void (*body)(void), const char *const *words, size_t n)
{
    int status = run_body_in_child(body, child_out, sizeof(child_out));
    int ok = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *missing = NULL;
    for (size_t i = 0; i < n; i++)
        if (strstr(child_out, words[i]) == NULL)
            missing = words[i];
    if (!ok || missing != NULL) {
        fprintf(stderr, "--- child output ---\n%s--- end ---\n", child_out);
        ck_abort_msg("child status %#x; report lacks \"%s\"", status,
                     missing != NULL ? missing : "(nothing)");
    }
}
#endif

/* Fill a large local and check it; a tool that has stale poison on this part of the
 * stack reports here. */
__attribute__((noinline)) static int touch_frame(int seed)
{
    volatile char buf[2048];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)(seed + (int)i);
    int sum = 0;
    for (size_t i = 0; i < sizeof(buf); i += 64)
        sum += buf[i];
    return sum;
}

/* Pause deep inside frames with locals, then longjmp over all of them. */
__attribute__((noinline)) static void pause_then_jump(jmp_buf *env, int depth)
{
    volatile char pad[512];
    memset((char *)pad, depth, sizeof(pad));
    if (depth > 0) {
        pause_then_jump(env, depth - 1);
        return;
    }
    if (!ASYNC_pause_job())
        return;
    longjmp(*env, 1);
}

static int longjmp_job(void *arg)
{
    jmp_buf env;
    volatile int jumped = 0;
    if (setjmp(env) == 0)
        pause_then_jump(&env, 8);
    else
        jumped = 1;
    /* The frames jumped over lie below us: use that stack again. */
    return jumped ? touch_frame(*(int *)arg) : -1;
}

static void longjmp_body(void)
{
    for (int i = 0; i < 200; i++) {
        ASYNC_JOB *job = NULL;
        int ret = 0;
        if (ASYNC_start_job(&job, NULL, &ret, longjmp_job, &i, sizeof(i)) != ASYNC_PAUSE)
            _exit(80);
        if (ASYNC_start_job(&job, NULL, &ret, NULL, NULL, 0) != ASYNC_FINISH)
            _exit(81);
        if (ret != touch_frame(i))
            _exit(82);
    }
    ASYNC_cleanup_thread();
}

START_TEST(longjmp_inside_job_is_clean)
{
    run_quietly(longjmp_body);
}
END_TEST

/* Many jobs paused at once, deep in frames, resumed in a scrambled order, then the same
 * pooled stacks run new jobs that use those addresses again. */
#define DEEP_JOBS 64

__attribute__((noinline)) static int deep(int depth, int seed)
{
    volatile char pad[256];
    memset((char *)pad, seed, sizeof(pad));
    if (depth == 0) {
        if (!ASYNC_pause_job())
            return -1000;
        return touch_frame(seed) + pad[7];
    }
    int r = deep(depth - 1, seed);
    return r + (pad[depth] == (char)seed ? 0 : 1);
}

static int deep_job(void *arg)
{
    int seed = *(int *)arg;
    return deep(6 + seed % 5, seed);
}

static void deep_body(void)
{
    ASYNC_JOB *jobs[DEEP_JOBS];
    int rets[DEEP_JOBS];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < DEEP_JOBS; i++) {
            int seed = round * DEEP_JOBS + i;
            jobs[i] = NULL;
            if (ASYNC_start_job(&jobs[i], NULL, &rets[i], deep_job, &seed, sizeof(seed)) !=
                ASYNC_PAUSE)
                _exit(83);
        }
        for (int k = 0; k < DEEP_JOBS; k++) {
            int i = (k * 37 + round) % DEEP_JOBS; /* 37 is prime to 64: each once */
            int seed = round * DEEP_JOBS + i;
            if (ASYNC_start_job(&jobs[i], NULL, &rets[i], NULL, NULL, 0) != ASYNC_FINISH)
                _exit(84);
            if (rets[i] != touch_frame(seed) + (char)seed)
                _exit(85);
        }
    }
    ASYNC_cleanup_thread();
}

START_TEST(deep_frames_across_pauses_are_clean)
{
    run_quietly(deep_body);
}
END_TEST

/* ---- the tools still catch real bugs inside jobs (only built for that tool) ---- */

#if TEST_ASAN
/* Use-after-return detection is what breaks first when fake stacks are mishandled across
 * switches, so these tests always run with it, whatever ASAN_OPTIONS says. */
const char *__asan_default_options(void);
__attribute__((visibility("default"), used)) const char *__asan_default_options(void)
{
    return "detect_stack_use_after_return=1";
}

static volatile int planted_index = 16;

/* Reads one past a local array, after a pause: ASan must know this fiber's frame. (UBSan
 * is kept out of this one function: it would catch the read first, by other means.) */
__attribute__((noinline, no_sanitize("undefined"))) static int read_past_local(void)
{
    volatile char local[16];
    memset((char *)local, 1, sizeof(local));
    if (!ASYNC_pause_job())
        return -1;
    return local[planted_index];
}

static int overflowing_job(void *arg)
{
    return read_past_local();
}

static void stack_overflow_read_body(void)
{
    ASYNC_JOB *job = NULL;
    int ret;
    if (ASYNC_start_job(&job, NULL, &ret, overflowing_job, NULL, 0) != ASYNC_PAUSE)
        _exit(86);
    ASYNC_start_job(&job, NULL, &ret, NULL, NULL, 0);
}

START_TEST(asan_catches_stack_buffer_overflow_in_job)
{
    static const char *const words[] = { "stack-buffer-overflow", "read_past_local" };
    run_expecting_report(stack_overflow_read_body, words, 2);
}
END_TEST

/* Keeps the address of a local after its function returned; read after a pause. */
static volatile char *volatile stale;

__attribute__((noinline)) static void leak_local_address(void)
{
    volatile char local[64];
    memset((char *)local, 2, sizeof(local));
    stale = local;
}

static int use_after_return_job(void *arg)
{
    leak_local_address();
    if (!ASYNC_pause_job())
        return -1;
    return stale[3];
}

static void use_after_return_body(void)
{
    ASYNC_JOB *job = NULL;
    int ret;
    if (ASYNC_start_job(&job, NULL, &ret, use_after_return_job, NULL, 0) != ASYNC_PAUSE)
        _exit(87);
    ASYNC_start_job(&job, NULL, &ret, NULL, NULL, 0);
}

START_TEST(asan_catches_use_after_return_in_job)
{
    static const char *const words[] = { "stack-use-after-return", "use_after_return_job" };
    run_expecting_report(use_after_return_body, words, 2);
}
END_TEST
#endif /* TEST_ASAN */

#if TEST_TSAN
/* Two threads, each inside a job that paused once, write one plain variable with no
 * synchronisation between them: TSan must see the race and name the job function. */
static int racy_variable;
static pthread_barrier_t race_barrier;

static int racy_job(void *arg)
{
    if (!ASYNC_pause_job())
        return -1;
    racy_variable++;
    return 0;
}

static void *racy_thread(void *arg)
{
    ASYNC_JOB *job = NULL;
    int ret;
    if (ASYNC_start_job(&job, NULL, &ret, racy_job, NULL, 0) != ASYNC_PAUSE)
        _exit(88);
    pthread_barrier_wait(&race_barrier);
    ASYNC_start_job(&job, NULL, &ret, NULL, NULL, 0);
    ASYNC_cleanup_thread();
    return NULL;
}

static void race_body(void)
{
    pthread_t t[2];
    pthread_barrier_init(&race_barrier, NULL, 2);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, racy_thread, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

START_TEST(tsan_catches_race_between_jobs)
{
    static const char *const words[] = { "ThreadSanitizer: data race", "racy_job" };
    run_expecting_report(race_body, words, 2);
}
END_TEST
#endif /* TEST_TSAN */

static Suite *suite(void)
{
    const TTest *tests[] = {
        longjmp_inside_job_is_clean, deep_frames_across_pauses_are_clean,
#if TEST_ASAN
        asan_catches_stack_buffer_overflow_in_job, asan_catches_use_after_return_in_job,
#endif
#if TEST_TSAN
        tsan_catches_race_between_jobs,
#endif
        NULL
    };
    return suite_of("tools", 120, NULL, tests);
}

#include "tap_main.h"
