/*
 * test_overflow_report.c: the overflow report (asyncjob_overflow_report(3)). In child
 * processes: the line a guard fault writes and the signal the child still dies of, the
 * report turned on by ASYNCJOB_OVERFLOW_REPORT=1 and in a thread started afterwards, a
 * previous handler that still gets both the guard fault (after the line) and other faults,
 * a fault elsewhere left alone; and asyncjob_guard_job() on a paused job's guard.
 */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_overflow_report,
                   "it catches SIGSEGV (refused on Windows: ASYNCJOB_ENOTSUP)")
#else

#include "config.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/pool.h"
#include "../lib/stack.h"
#include "check_suite.h"
#include "child.h"
#include "recurse.h"
#include "sanitizers.h"
#include "tap_skip.h"

/* The report is a signal handler: a sanitizer's own SIGSEGV handling or valgrind's
 * signal emulation would be what is tested instead. */
static void need_plain_build(void)
{
#if TEST_SANITIZED
    tap_skip("a sanitizer handles SIGSEGV itself");
#else
    if (RUNNING_ON_VALGRIND)
        tap_skip("valgrind delivers faults itself");
#endif
}

/* The start function the line must name: global, and the program is linked with
 * -export-dynamic, so its dynamic symbol table has it (as dladdr() would need). */
int overflow_report_deep_job(void *arg);
int overflow_report_deep_job(void *arg)
{
    (void)arg;
    return recurse(NULL, 0);
}

/* Start a job that overflows; returns only if it did not fault. */
static void overflow_now(void)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    ASYNC_start_job(&job, NULL, &ret, overflow_report_deep_job, NULL, 0);
}

struct child_result {
    int status;
    char err[4096]; /* the child's stderr */
};

/* Run body() in a child whose stderr is collected. */
static void run_child(void (*body)(void), struct child_result *res)
{
    int fd;
    pid_t pid = fork_piped(1, &fd);
    if (pid == 0) {
        body();
        _exit(0);
    }
    size_t n = read_to_end(fd, res->err, sizeof(res->err) - 1);
    res->err[n] = '\0';
    res->status = wait_child(pid);
}

static void expect_killed_by(const struct child_result *res, int sig)
{
    ck_assert_msg(WIFSIGNALED(res->status) && WTERMSIG(res->status) == sig,
                  "the child ended with status 0x%x, not by signal %d; stderr: %s",
                  (unsigned)res->status, sig, res->err);
}

/* How the line names the start function: by name with glibc, by address elsewhere
 * (asyncjob_overflow_report(3)). */

/* The line for a default 32 KiB stack: job, start function, size, the knob. */
static void expect_report_line(const struct child_result *res)
{
    char named[96];
#ifdef __GLIBC__
    snprintf(named, sizeof(named), "start function overflow_report_deep_job in ");
#else
    snprintf(named, sizeof(named), "start function 0x%lx)",
             (unsigned long)(uintptr_t)overflow_report_deep_job);
#endif
    const char *line = strstr(res->err, "asyncjob: job ");
    ck_assert_msg(line != NULL, "no report line; stderr: %s", res->err);
    ck_assert_msg(strstr(line, " overflowed its stack of 32768 bytes (fault at 0x") != NULL &&
                      strstr(line, named) != NULL &&
                      strstr(line, "ASYNCJOB_STACK_SIZE=64K or asyncjob_set_stack_size()\n") != NULL,
                  "unexpected line: %s", line);
    ck_assert_msg(strchr(line, '\n') == line + strlen(line) - 1 ||
                      strstr(strchr(line, '\n') + 1, "asyncjob:") == NULL,
                  "more than one line: %s", res->err);
}

static void body_call(void)
{
    if (asyncjob_overflow_report(1) != 1)
        _exit(71);
    overflow_now();
    _exit(3);
}

START_TEST(report_line_then_sigsegv)
{
    need_plain_build();
    struct child_result res;
    run_child(body_call, &res);
    expect_report_line(&res);
    expect_killed_by(&res, SIGSEGV);
}
END_TEST

/* Without the call or the variable nothing is installed: a bare SIGSEGV. */
static void body_off(void)
{
    overflow_now();
    _exit(3);
}

START_TEST(off_unless_asked)
{
    need_plain_build();
    struct child_result res;
    run_child(body_off, &res);
    expect_killed_by(&res, SIGSEGV);
    ck_assert_msg(strstr(res.err, "asyncjob") == NULL, "unasked report: %s", res.err);
}
END_TEST

static void body_env(void)
{
    if (setenv("ASYNCJOB_OVERFLOW_REPORT", "1", 1) != 0)
        _exit(71);
    overflow_now();
    _exit(3);
}

START_TEST(environment_variable_turns_it_on)
{
    need_plain_build();
    struct child_result res;
    run_child(body_env, &res);
    expect_report_line(&res);
    expect_killed_by(&res, SIGSEGV);
}
END_TEST

static void *thread_overflow(void *arg)
{
    (void)arg;
    overflow_now();
    return NULL;
}

/* A thread started after the call gets its alternate stack with its pool. */
static void body_thread(void)
{
    pthread_t t;
    if (asyncjob_overflow_report(1) != 1 || pthread_create(&t, NULL, thread_overflow, NULL) != 0)
        _exit(71);
    pthread_join(t, NULL);
    _exit(3);
}

START_TEST(report_in_another_thread)
{
    need_plain_build();
    struct child_result res;
    run_child(body_thread, &res);
    expect_report_line(&res);
    expect_killed_by(&res, SIGSEGV);
}
END_TEST

/* A handler of the program's, installed before the report: it says what it got and exits
 * with 42. (On an alternate stack: the report's, which the thread still has.) */
static void program_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char line[64];
    int n = snprintf(line, sizeof line, "program handler: signal %d code %d\n", sig, si->si_code);
    if (write(2, line, (size_t)n) < 0)
        _exit(44);
    _exit(42);
}

static void install_program_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = program_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || asyncjob_overflow_report(1) != 1)
        _exit(71);
}

static void body_chain_guard(void)
{
    install_program_handler();
    overflow_now();
    _exit(3);
}

START_TEST(previous_handler_gets_the_guard_fault_after_the_line)
{
    need_plain_build();
    struct child_result res;
    run_child(body_chain_guard, &res);
    expect_report_line(&res);
    ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 42,
                  "status 0x%x; stderr: %s", (unsigned)res.status, res.err);
    ck_assert_msg(strstr(strstr(res.err, "asyncjob: job "), "program handler: signal 11") != NULL,
                  "the program's handler did not run after the line: %s", res.err);
}
END_TEST

/* A fault outside any guard: a page of the program's own, made inaccessible. */
static void fault_elsewhere(void)
{
    long page = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(72);
    p[0] = 1;
}

static void body_chain_other(void)
{
    install_program_handler();
    fault_elsewhere();
    _exit(3);
}

START_TEST(previous_handler_gets_other_faults)
{
    need_plain_build();
    struct child_result res;
    run_child(body_chain_other, &res);
    ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 42,
                  "status 0x%x; stderr: %s", (unsigned)res.status, res.err);
    ck_assert_msg(strstr(res.err, "asyncjob") == NULL, "reported a fault outside a guard: %s",
                  res.err);
}
END_TEST

static void body_other_default(void)
{
    if (asyncjob_overflow_report(1) != 1)
        _exit(71);
    fault_elsewhere();
    _exit(3);
}

START_TEST(other_fault_left_alone)
{
    need_plain_build();
    struct child_result res;
    run_child(body_other_default, &res);
    expect_killed_by(&res, SIGSEGV);
    ck_assert_msg(strstr(res.err, "asyncjob") == NULL, "reported a fault outside a guard: %s",
                  res.err);
}
END_TEST

/* Turned off again, the previous disposition is back: the program's handler. */
static void body_turned_off(void)
{
    install_program_handler();
    if (asyncjob_overflow_report(0) != 1)
        _exit(73);
    struct sigaction cur;
    if (sigaction(SIGSEGV, NULL, &cur) != 0 || cur.sa_sigaction != program_handler)
        _exit(74);
    _exit(0);
}

START_TEST(turning_it_off_restores_the_handler)
{
    struct child_result res;
    run_child(body_turned_off, &res);
    ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0,
                  "status 0x%x; stderr: %s", (unsigned)res.status, res.err);
}
END_TEST

static int pause_once(void *arg)
{
    (void)arg;
    ASYNC_pause_job();
    return 0;
}

START_TEST(guard_query)
{
    ASYNC_JOB *a = NULL, *b = NULL;
    ck_assert_int_eq(ASYNC_start_job(&a, NULL, NULL, pause_once, NULL, 0), ASYNC_PAUSE);
    ck_assert_int_eq(ASYNC_start_job(&b, NULL, NULL, pause_once, NULL, 0), ASYNC_PAUSE);
    for (int i = 0; i < 2; i++) {
        ASYNC_JOB *j = i == 0 ? a : b;
        const char *lo = j->fiber.stack.lo;
        ck_assert_ptr_eq(asyncjob_guard_job(lo - 1), j);
        ck_assert_ptr_eq(asyncjob_guard_job(lo - asyncjob_get_guard_size()), j);
        ck_assert_ptr_null(asyncjob_guard_job(lo - asyncjob_get_guard_size() - 1));
        ck_assert_ptr_null(asyncjob_guard_job(lo));
        ck_assert_ptr_null(asyncjob_guard_job(lo + j->fiber.stack.size));
    }
    ck_assert_ptr_null(asyncjob_guard_job(NULL));
    ck_assert_ptr_null(asyncjob_guard_job(&a));
    ck_assert_int_eq(ASYNC_start_job(&a, NULL, NULL, NULL, NULL, 0), ASYNC_FINISH);
    ck_assert_int_eq(ASYNC_start_job(&b, NULL, NULL, NULL, NULL, 0), ASYNC_FINISH);
}
END_TEST

SUITE("overflow_report", 0, NULL, report_line_then_sigsegv, off_unless_asked,
      environment_variable_turns_it_on, report_in_another_thread,
      previous_handler_gets_the_guard_fault_after_the_line, previous_handler_gets_other_faults,
      other_fault_left_alone, turning_it_off_restores_the_handler, guard_query)

#endif /* _WIN32 */
#include "tap_main.h"
