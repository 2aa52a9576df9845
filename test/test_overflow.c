/*
 * test_overflow.c: a job that recurses without bound must die at the guard page below its
 * stack (default allocator), never run on into other memory. Each case runs the job in a
 * child process and reads what the child reports about the fault on a pipe.
 */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_overflow,
                   "it catches SIGSEGV in fork()ed children (test_windows checks the guard)")
#else

#include "config.h"

#include <check.h>
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
#include "guard_probe.h"
#include "sanitizers.h"
#include "segv_altstack.h"


/* Nonzero stops the recursion; it stays 0, but the compiler cannot know that. */
static volatile int stop_depth;

/* Each frame keeps a small array alive across the call, so frames cannot be merged and
 * the call is not a tail call; the array stays far below a page, so a frame cannot step
 * over the guard page. */
__attribute__((noinline)) static int recurse(volatile char *up, int depth)
{
    volatile char frame[200];
    frame[0] = (char)depth;
    frame[sizeof(frame) - 1] = up != NULL ? up[0] : 0;
    if (stop_depth != 0 && depth >= stop_depth)
        return frame[0];
    return recurse(frame, depth + 1) + frame[sizeof(frame) - 1];
}

/* Hex of `v` into buf (async-signal-safe); returns the length. */
static size_t fmt_hex(char *buf, uintptr_t v)
{
    char tmp[2 * sizeof(v)];
    size_t n = 0, len = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    buf[len++] = '0';
    buf[len++] = 'x';
    while (n > 0)
        buf[len++] = tmp[--n];
    return len;
}

/* Write "<tag> 0x<a> 0x<b>\n" to stderr with write() only. */
static void report(const char *tag, uintptr_t a, uintptr_t b)
{
    char line[80];
    size_t len = strlen(tag);
    memcpy(line, tag, len);
    line[len++] = ' ';
    len += fmt_hex(line + len, a);
    line[len++] = ' ';
    len += fmt_hex(line + len, b);
    line[len++] = '\n';
    ssize_t r = write(2, line, len);
    (void)r;
}

/* Without a sanitizer, the child catches the fault itself (on an alternate stack, since
 * its own stack is the one that overflowed), reports the address, restores the default
 * action and returns: the faulting write runs again and kills the child with SIGSEGV. */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    report("fault", (uintptr_t)si->si_addr, 0);
    signal(sig, SIG_DFL);
}

static int overflow_job(void *arg)
{
    ASYNC_JOB *self = ASYNC_get_current_job();
    if (self == NULL)
        return -1;
    /* The job is a fiber; its stack's lowest usable byte sits right above the guard. */
    uintptr_t lo = (uintptr_t)self->fiber.stack.lo;
    if (stop_depth == 0)
        report("guard", lo - (uintptr_t)sysconf(_SC_PAGESIZE), lo);
    return recurse(NULL, 0);
}

struct child_result {
    int status;
    char out[8192]; /* the child's stderr */
};

static int pause_once(void *arg)
{
    (void)arg;
    ASYNC_pause_job();
    return 0;
}

/* Four stacks made in a row lie next to each other in one slab. Two paused jobs take the
 * two newest (LIFO), so the overflowing job runs right above another job's stack: only
 * the guard between them stops the recursion. */
static int pause_two_neighbours(void)
{
    ASYNC_JOB *paused[2] = { NULL, NULL };
    if (ASYNC_init_thread(0, 4) != 1)
        return -1;
    for (int i = 0; i < 2; i++)
        if (ASYNC_start_job(&paused[i], NULL, NULL, pause_once, NULL, 0) != ASYNC_PAUSE)
            return -1;
    return 0;
}

/* Run an overflowing job in a child with guard `mode` (after pause_two_neighbours() if
 * `neighbours`); collect its stderr and status. */
static void run_child(enum stack_guard mode, int neighbours, struct child_result *res)
{
    int fd;
    pid_t pid = fork_piped(1, &fd);
    if (pid == 0) {
        if (!stack_set_guard_mode(mode))
            _exit(71);
        if (!TEST_SANITIZED && catch_segv_on_altstack(on_segv) != 0)
            _exit(72);
        if (neighbours && pause_two_neighbours() != 0)
            _exit(73);
        /* A sanitizer keeps its own SIGSEGV handler: it reports the overflow and exits. */
        ASYNC_JOB *job = NULL;
        int ret = 0;
        int r = ASYNC_start_job(&job, NULL, &ret, overflow_job, NULL, 0);
        dprintf(2, "survived: ASYNC_start_job returned %d, job returned %d\n", r, ret);
        _exit(0);
    }
    /* Past the buffer (a sanitizer's long stack trace) the output is dropped. */
    res->out[read_to_end(fd, res->out, sizeof(res->out) - 1)] = '\0';
    res->status = wait_child(pid);
}

/* The first "0x..." after `key` in `s`, or 0. */
static uintptr_t address_after(const char *s, const char *key)
{
    const char *p = strstr(s, key);
    if (p == NULL)
        return 0;
    p = strstr(p + strlen(key), "0x");
    return p != NULL ? (uintptr_t)strtoull(p, NULL, 16) : 0;
}

/* Like ck_assert_msg, but first copies the child's output into the test log (it is too
 * long for a Check message). */
#define EXPECT(cond, ...)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "--- child output ---\n%s--- end ---\n", res.out);           \
            ck_abort_msg(__VA_ARGS__);                                                     \
        }                                                                                  \
    } while (0)

static void check_overflow(enum stack_guard mode, int neighbours)
{
    struct child_result res;
    run_child(mode, neighbours, &res);

    /* The child must not have carried on after the overflow. */
    EXPECT(!(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0),
           "the overflowing job did not kill its process");
    const char *g = strstr(res.out, "guard ");
    unsigned long guard_lo = 0, guard_hi = 0;
    EXPECT(g != NULL && sscanf(g, "guard %lx %lx", &guard_lo, &guard_hi) == 2,
           "no guard line from the child (status %#x)", res.status);

    uintptr_t fault;
    if (TEST_SANITIZED && WIFEXITED(res.status)) {
        /* The sanitizer's handler reported and exited (ASan names it a stack-overflow,
         * TSan a SEGV); either way its report carries the faulting address. */
        EXPECT(strstr(res.out, "Sanitizer") != NULL,
           "child exited with %d without a sanitizer report",
           WEXITSTATUS(res.status));
        fault = address_after(res.out, "on address");
        if (fault == 0)
            fault = address_after(res.out, "on unknown address");
    } else {
        EXPECT(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGSEGV,
           "child status %#x, wanted death by SIGSEGV", res.status);
        fault = address_after(res.out, "fault");
        if (TEST_SANITIZED && fault == 0) /* a sanitizer may have re-raised without a report */
            fault = address_after(res.out, "address");
    }
    EXPECT(fault >= guard_lo && fault < guard_hi,
           "fault at %#lx, outside the guard page [%#lx, %#lx)",
           (unsigned long)fault, guard_lo, guard_hi);
}

START_TEST(overflow_dies_at_guard_default_mode)
{
    check_overflow(STACK_GUARD_AUTO, 0);
}
END_TEST

/* With another job's stack right below, the fault is still in the guard page. */
START_TEST(overflow_dies_at_guard_between_stacks)
{
    check_overflow(STACK_GUARD_AUTO, 1);
}
END_TEST

START_TEST(overflow_dies_at_guard_mprotect)
{
    check_overflow(STACK_GUARD_MPROTECT, 0);
}
END_TEST

START_TEST(overflow_dies_at_guard_madvise)
{
    /* Not skipped silently: a kernel older than 6.13 fails here, by design. */
    if (!stack_set_guard_mode(STACK_GUARD_MADVISE)) {
        skip_if_guard_regions_faked();
        ck_abort_msg("this kernel lacks MADV_GUARD_INSTALL; cannot test guard regions");
    }
    check_overflow(STACK_GUARD_MADVISE, 0);
}
END_TEST

/* The recursion itself is sound: bounded at depth 50, it returns normally inside a job,
 * with 50 (the deepest frame's depth) plus the sum of 0..48 (what each frame below the
 * top copied from its caller). */
START_TEST(bounded_recursion_returns)
{
    stop_depth = 50;
    ASYNC_JOB *job = NULL;
    int ret = -1;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, overflow_job, NULL, 0);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(ret, 50 + 48 * 49 / 2);
}
END_TEST

SUITE("overflow", 120, NULL, overflow_dies_at_guard_default_mode,
      overflow_dies_at_guard_between_stacks, overflow_dies_at_guard_mprotect,
      overflow_dies_at_guard_madvise, bounded_recursion_returns)

#endif /* _WIN32 */
#include "tap_main.h"
