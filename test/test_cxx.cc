/*
 * test_cxx.cc: C++ code in jobs. Exceptions thrown and caught inside jobs across pauses,
 * with the destructors of what they leave behind; two jobs paused inside catch blocks with
 * asyncjob_isolate_exceptions(), each seeing its own exception, and a dispatcher in a catch
 * block of its own; an exception escaping a job ends the process (std::terminate).
 */
#include <asyncjob.h>

#include <check.h>
#include <csignal>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "check_suite.h"
#include "child.h"
#include "sanitizers.h"
#include "tap_skip.h"

static int alive; /* objects of Counted not destroyed yet */

struct Counted {
    Counted() { alive++; }
    Counted(const Counted &) = delete;
    ~Counted() { alive--; }
};

/* The message of the exception being handled, or "" outside a catch block. */
static std::string current_what()
{
    std::exception_ptr p = std::current_exception();
    if (!p)
        return "";
    try {
        std::rethrow_exception(p);
    } catch (const std::exception &e) {
        return e.what();
    }
    return "?";
}

/* The exception being handled must be the one with this message. */
#define expect_what(want)                                                                  \
    do {                                                                                   \
        std::string what_ = current_what();                                                \
        ck_assert_msg(what_ == (want), "handling \"%s\", not \"%s\"", what_.c_str(), want); \
    } while (0)

/* Pauses deep inside the try block, then throws through frames holding objects. */
static void deep_throw(int depth, int id)
{
    Counted c;
    if (depth == 0) {
        if (ASYNC_pause_job() != 1)
            throw std::logic_error("pause failed");
        throw std::runtime_error("job " + std::to_string(id));
    }
    deep_throw(depth - 1, id);
}

static int throw_and_catch(void *arg)
{
    int id = *static_cast<int *>(arg);
    int ok = 0;
    try {
        Counted outer;
        deep_throw(5, id);
    } catch (const std::runtime_error &e) {
        ok += std::string(e.what()) == "job " + std::to_string(id);
        ok += std::uncaught_exceptions() == 0;
        ok += current_what() == "job " + std::to_string(id);
    }
    ok += std::uncaught_exceptions() == 0;
    ok += current_what().empty();
    return ok; /* 5 */
}

/* Many jobs pause with objects on their stacks, then throw and catch, interleaved; every
 * object made is destroyed. (No job pauses inside a catch block: see the next test.) */
START_TEST(exceptions_and_destructors_in_jobs)
{
    enum { N = 50 };
    ASYNC_JOB *jobs[N] = {};
    int rets[N] = {};
    for (int i = 0; i < N; i++)
        expect_start(ASYNC_PAUSE, &jobs[i], NULL, &rets[i], throw_and_catch, &i, sizeof(i));
    ck_assert_int_eq(alive, 7 * N); /* outer + 6 in deep_throw, each job */
    for (int i = N - 1; i >= 0; i--) {
        expect_resume(ASYNC_FINISH, &jobs[i], &rets[i]);
        ck_assert_int_eq(rets[i], 5);
        ck_assert_int_eq(alive, 7 * i);
    }
    ASYNC_cleanup_thread();
}
END_TEST

/* Isolated: pause inside a catch block, check the exception being handled is this job's,
 * rethrow it and catch it again. */
static int pause_in_catch(void *arg)
{
    int id = *static_cast<int *>(arg);
    if (asyncjob_isolate_exceptions() != 1)
        return -1;
    std::string mine = "job " + std::to_string(id);
    int ok = 0;
    ok += current_what().empty(); /* the dispatcher's exception is not ours */
    try {
        throw std::runtime_error(mine);
    } catch (const std::exception &e) {
        for (int round = 0; round < 2; round++) {
            if (ASYNC_pause_job() != 1)
                return -2;
            ok += current_what() == mine;
        }
        try {
            throw;
        } catch (const std::exception &again) {
            ok += std::string(again.what()) == mine;
            ok += ASYNC_pause_job() == 1 && current_what() == mine;
        }
        ok += std::string(e.what()) == mine;
    }
    ok += current_what().empty() && std::uncaught_exceptions() == 0;
    return ok; /* 7 */
}

/* Drive three jobs that pause inside catch blocks, interleaved, from inside a catch block
 * of the dispatcher's own. */
static void drive_three_in_catch()
{
    ASYNC_JOB *jobs[3] = {};
    int rets[3] = {};
    try {
        throw std::runtime_error("dispatcher");
    } catch (const std::exception &) {
        for (int i = 0; i < 3; i++) {
            expect_start(ASYNC_PAUSE, &jobs[i], NULL, &rets[i], pause_in_catch, &i, sizeof(i));
            expect_what("dispatcher");
        }
        for (int round = 0; round < 3; round++) {
            for (int k = 0; k < 3; k++) {
                int i = round % 2 ? 2 - k : k;
                expect_resume(round < 2 ? ASYNC_PAUSE : ASYNC_FINISH, &jobs[i], &rets[i]);
                expect_what("dispatcher");
            }
        }
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rets[i], 7);
    ck_assert(current_what().empty());
    ck_assert_int_eq(std::uncaught_exceptions(), 0);
}

START_TEST(jobs_paused_in_catch_blocks_keep_their_exceptions)
{
    drive_three_in_catch();
    /* Again, on pooled jobs. */
    drive_three_in_catch();
    ASYNC_cleanup_thread();
}
END_TEST

static int isolate_twice_then_cancelled(void *arg)
{
    (void)arg;
    if (asyncjob_isolate_exceptions() != 1 || asyncjob_isolate_exceptions() != 1)
        return -1;
    try {
        throw std::runtime_error("cancelled job");
    } catch (const std::exception &) {
        if (ASYNC_pause_job() != 1)
            return -2;
        if (ASYNC_pause_job() != 0) /* cancelled */
            return -3;
    }
    return 9;
}

/* Outside a job: ENOJOB. A cancelled isolated job gives the dispatcher its state back. */
START_TEST(isolation_errors_and_cancel)
{
    ck_assert_int_eq(asyncjob_isolate_exceptions(), 0);
    expect_error(ASYNCJOB_ENOJOB);
    ASYNC_JOB *job = NULL;
    int ret = 0;
    try {
        throw std::runtime_error("dispatcher");
    } catch (const std::exception &) {
        expect_start(ASYNC_PAUSE, &job, NULL, &ret, isolate_twice_then_cancelled, NULL, 0);
        expect_resume(ASYNC_PAUSE, &job, &ret);
        ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
        ck_assert_int_eq(ret, 9);
        expect_what("dispatcher");
    }
    ck_assert(current_what().empty());
    ASYNC_cleanup_thread();
}
END_TEST

static int throw_out(void *arg)
{
    (void)arg;
    throw std::runtime_error("escapes the job");
}

static void escape_body()
{
    ASYNC_JOB *job = NULL;
    int ret;
    ASYNC_start_job(&job, NULL, &ret, throw_out, NULL, 0);
    _exit(0); /* not reached: std::terminate */
}

/* An exception escaping the job function calls std::terminate: the process aborts. */
START_TEST(escaping_exception_terminates)
{
    if (RUNNING_ON_VALGRIND)
        tap_skip("the child's abort would be reported in valgrind's log as an error");
    char out[4096];
    int status = run_body_in_child(escape_body, out, sizeof(out));
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "status %#x, output: %s", status, out);
    ck_assert_msg(std::strstr(out, "terminate") != NULL, "output: %s", out);
}
END_TEST

SUITE("cxx", 60, NULL, exceptions_and_destructors_in_jobs,
      jobs_paused_in_catch_blocks_keep_their_exceptions, isolation_errors_and_cancel,
      escaping_exception_terminates)

#include "tap_main.h"
