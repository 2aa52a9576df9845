/*
 * test_overflow.c: a job that recurses without bound must die in the guard below its
 * stack (default allocator), never run on into other memory, also when its frames are
 * large (8, 16, 60 KiB, lowest byte written first: this program is built without
 * stack-clash probes). Each case runs the job in a child process and reads what the child
 * reports about the fault, and about the neighbouring job's stack, on a pipe.
 */
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
#include "recurse.h"
#include "sanitizers.h"
#include "segv_altstack.h"

/* Memcheck holds a paused job's dead stack bytes undefined: the copy and the comparison of
 * the neighbour's stack must not count as uses of them. */
#if defined(__has_include)
# if __has_include(<valgrind/memcheck.h>)
#  include <valgrind/memcheck.h>
# endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
# define VALGRIND_MAKE_MEM_DEFINED(addr, len) ((void)0)
#endif

#if TEST_ASAN
# define NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
#else
# define NO_SANITIZE_ADDRESS
#endif


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

/* The neighbour's stack as it was before the overflow: its mapping above its guard. */
static const char *neighbour_lo;
static size_t neighbour_len;
static char neighbour_copy[1 << 20];

/* Byte by byte, uninstrumented: a paused job's stack holds ASan's poisoned redzones. */
NO_SANITIZE_ADDRESS static size_t first_difference(const char *a, const char *b, size_t n)
{
    size_t i = 0;
    while (i < n && ((const volatile char *)a)[i] == b[i])
        i++;
    return i;
}

NO_SANITIZE_ADDRESS static void copy_bytes(char *to, const char *from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        to[i] = ((const volatile char *)from)[i];
}

/* The child catches the fault itself (on an alternate stack, since its own stack is the
 * one that overflowed), reports the address and whether the neighbour's stack is as it
 * was, restores the default action and returns: the faulting write runs again and kills
 * the child with SIGSEGV. */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    report("fault", (uintptr_t)si->si_addr, 0);
    if (neighbour_lo != NULL) {
        size_t at = first_difference(neighbour_lo, neighbour_copy, neighbour_len);
        report(at == neighbour_len ? "neighbour intact" : "neighbour changed",
               (uintptr_t)neighbour_lo, (uintptr_t)at);
    }
    signal(sig, SIG_DFL);
}

/* Report the guard below the running job: "guard <lowest byte> <stack's lowest byte>". */
static void report_guard(void)
{
    ASYNC_JOB *self = ASYNC_get_current_job();
    /* The job is a fiber; its stack's lowest usable byte sits right above the guard. */
    uintptr_t lo = (uintptr_t)self->fiber.stack.lo;
    report("guard", lo - self->fiber.stack.guard, lo);
}

static int overflow_job(void *arg)
{
    if (ASYNC_get_current_job() == NULL)
        return -1;
    if (stop_depth == 0)
        report_guard();
    return recurse(NULL, 0);
}

/* Frames of about `kib` KiB that write their lowest byte first, then their highest; not
 * instrumented by ASan, whose fake stacks would move the arrays off the job's stack. */
#define LARGE_FRAME(kib)                                                                   \
    NO_SANITIZE_ADDRESS __attribute__((noinline)) static int frame_##kib(int depth)        \
    {                                                                                      \
        volatile char frame[(kib) * 1024 - 64];                                            \
        frame[0] = (char)depth;                                                            \
        frame[sizeof(frame) - 1] = (char)depth;                                            \
        if (stop_depth != 0 && depth >= stop_depth)                                        \
            return frame[0];                                                               \
        return frame_##kib(depth + 1) + frame[sizeof(frame) - 1];                          \
    }
LARGE_FRAME(8)
LARGE_FRAME(16)
LARGE_FRAME(60)

static int large_frames_job(void *arg)
{
    int kib = *(const int *)arg;
    if (stop_depth == 0)
        report_guard();
    return kib == 8 ? frame_8(0) : kib == 16 ? frame_16(0) : frame_60(0);
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

/* Stacks made in a row lie next to each other in one slab, each above the one before.
 * Two paused jobs take the first two, so the overflowing job runs right above the second's
 * stack: only the guard between them stops the recursion. That stack is copied, for the
 * SIGSEGV handler to compare. */
static int pause_two_neighbours(void)
{
    ASYNC_JOB *paused[2] = { NULL, NULL };
    if (ASYNC_init_thread(0, 4) != 1)
        return -1;
    for (int i = 0; i < 2; i++)
        if (ASYNC_start_job(&paused[i], NULL, NULL, pause_once, NULL, 0) != ASYNC_PAUSE)
            return -1;
    const struct stack *below = &paused[1]->fiber.stack;
    neighbour_len = below->size + 2 * sizeof(void *); /* its tail too */
    if (neighbour_len > sizeof(neighbour_copy))
        return -1;
    (void)VALGRIND_MAKE_MEM_DEFINED(below->lo, neighbour_len);
    copy_bytes(neighbour_copy, below->lo, neighbour_len);
    neighbour_lo = below->lo;
    return 0;
}

/* Run `job` (overflow_job unless given) in a child with guard `mode` (after
 * pause_two_neighbours() if `neighbours`); collect its stderr and status. */
static int (*child_job)(void *) = overflow_job;
static int child_frame_kib;

static void run_child(enum stack_guard mode, int neighbours, struct child_result *res)
{
    int fd;
    pid_t pid = fork_piped(1, &fd);
    if (pid == 0) {
        if (!stack_set_guard_mode(mode))
            _exit(71);
        /* Under a sanitizer, its handler stays unless the neighbour is to be compared. */
        if ((!TEST_SANITIZED || neighbours) && catch_segv_on_altstack(on_segv) != 0)
            _exit(72);
        if (neighbours && pause_two_neighbours() != 0)
            _exit(73);
        /* A sanitizer keeps its own SIGSEGV handler: it reports the overflow and exits. */
        ASYNC_JOB *job = NULL;
        int ret = 0;
        int r = ASYNC_start_job(&job, NULL, &ret, child_job, &child_frame_kib,
                                sizeof(child_frame_kib));
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
           "fault at %#lx, outside the guard [%#lx, %#lx)",
           (unsigned long)fault, guard_lo, guard_hi);
    /* Where the child's own handler ran, it compared the neighbour's stack. */
    EXPECT(!neighbours || strstr(res.out, "fault ") == NULL ||
               strstr(res.out, "neighbour intact") != NULL,
           "the overflow wrote into the neighbouring job's stack");
    EXPECT(guard_hi - guard_lo >= STACK_GUARD_DEFAULT,
           "the guard is %lu bytes, less than 64 KiB", guard_hi - guard_lo);
}

/* A job of frames of `kib` KiB each overflows its stack right above a paused job's. */
static void check_large_frames(enum stack_guard mode, int kib)
{
    child_job = large_frames_job;
    child_frame_kib = kib;
    check_overflow(mode, 1);
}

START_TEST(frames_8k_die_in_guard)
{
    check_large_frames(STACK_GUARD_AUTO, 8);
}
END_TEST

START_TEST(frames_8k_die_in_guard_mprotect)
{
    check_large_frames(STACK_GUARD_MPROTECT, 8);
}
END_TEST

START_TEST(frames_16k_die_in_guard)
{
    check_large_frames(STACK_GUARD_AUTO, 16);
}
END_TEST

START_TEST(frames_16k_die_in_guard_mprotect)
{
    check_large_frames(STACK_GUARD_MPROTECT, 16);
}
END_TEST

START_TEST(frames_60k_die_in_guard)
{
    check_large_frames(STACK_GUARD_AUTO, 60);
}
END_TEST

START_TEST(frames_60k_die_in_guard_mprotect)
{
    check_large_frames(STACK_GUARD_MPROTECT, 60);
}
END_TEST

/* Bounded at depth 2, the 8 KiB frames return normally inside a job: 2 (the deepest
 * frame's depth) plus 1 and 0 (what the frames above it wrote last). */
START_TEST(large_frames_bounded_return)
{
    stop_depth = 2;
    int kib = 8, ret = -1;
    ASYNC_JOB *job = NULL;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, large_frames_job, &kib, sizeof(kib));
    ck_assert_int_eq(ret, 2 + 1 + 0);
}
END_TEST

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
      overflow_dies_at_guard_madvise, bounded_recursion_returns, frames_8k_die_in_guard,
      frames_16k_die_in_guard, frames_60k_die_in_guard, frames_8k_die_in_guard_mprotect,
      frames_16k_die_in_guard_mprotect, frames_60k_die_in_guard_mprotect,
      large_frames_bounded_return)

#include "tap_main.h"
