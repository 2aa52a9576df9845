/*
 * test_windows.c: what only Windows has, run under Wine by .ci/windows.sh: the TIB's stack
 * fields follow every switch, an overflow faults in the reserved guard (in a child process),
 * wait ctxs hold event HANDLEs, jobs on two threads, a resume from the wrong thread, a
 * thread's exit without ASYNC_cleanup_thread() gives its stacks (idle and paused jobs') back
 * and leaves the heap sound, the stack size knob and asyncjob_stack_peak().
 */
#include <windows.h>

#include <asyncjob.h>

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_suite.h"

/* The TIB's DeallocationStack, which NT_TIB does not name (x64 TEB offset 0x1478). */
#define TEB_DEALLOCATION_STACK 0x1478

struct tib_view {
    char *base, *limit, *dealloc;
};

/* The TEB, read from gs as NtCurrentTeb() does (whose inline form gcc 12 warns about). */
static char *teb(void)
{
    char *t;
    __asm__ volatile("movq %%gs:0x30, %0" : "=r"(t));
    return t;
}

static struct tib_view tib_now(void)
{
    NT_TIB *tib = (NT_TIB *)(void *)teb();
    struct tib_view v = { (char *)tib->StackBase, (char *)tib->StackLimit,
                          *(char **)(void *)(teb() + TEB_DEALLOCATION_STACK) };
    return v;
}

/* ---- the TIB inside and outside a job ---- */

struct tib_probe {
    struct tib_view first, second;
    uintptr_t local_first, local_second;
};

static int tib_body(void *arg)
{
    struct tib_probe *p = *(struct tib_probe **)arg;
    char here = 0;
    p->first = tib_now();
    p->local_first = (uintptr_t)&here;
    ASYNC_pause_job();
    p->second = tib_now();
    p->local_second = (uintptr_t)&here;
    return 1;
}

START_TEST(tib_follows_every_switch)
{
    struct tib_probe p, *pp = &p;
    struct tib_view outside = tib_now();
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, tib_body, &pp, sizeof(pp));
    /* Back on the thread's own stack: its fields exactly as they were. */
    struct tib_view paused = tib_now();
    ck_assert_ptr_eq(paused.base, outside.base);
    ck_assert_ptr_eq(paused.limit, outside.limit);
    ck_assert_ptr_eq(paused.dealloc, outside.dealloc);
    /* In the job: the job's stack, which holds its locals, of the size in force. */
    ck_assert_ptr_ne(p.first.base, outside.base);
    ck_assert(p.local_first < (uintptr_t)p.first.base &&
              p.local_first >= (uintptr_t)p.first.limit);
    ck_assert_ptr_eq(p.first.dealloc, p.first.limit);
    size_t size = (size_t)(p.first.base - p.first.limit);
    ck_assert_uint_le(size, asyncjob_get_stack_size());
    ck_assert_uint_ge(size, asyncjob_get_stack_size() - 4096);
    expect_resume(ASYNC_FINISH, &job, &ret);
    ck_assert_ptr_eq(p.second.base, p.first.base);
    ck_assert_ptr_eq(p.second.limit, p.first.limit);
    ck_assert_uint_eq(p.local_second, p.local_first);
    struct tib_view after = tib_now();
    ck_assert_ptr_eq(after.base, outside.base);
    ck_assert_ptr_eq(after.limit, outside.limit);
}
END_TEST

/* ---- an overflow faults in the guard (child process) ---- */

#define OVERFLOW_IN_GUARD 0x47
#define OVERFLOW_ELSEWHERE 0x48
static char *volatile child_job_lo;

static LONG WINAPI child_on_fault(EXCEPTION_POINTERS *ep)
{
    const EXCEPTION_RECORD *r = ep->ExceptionRecord;
    if (r->ExceptionCode != EXCEPTION_ACCESS_VIOLATION)
        return EXCEPTION_CONTINUE_SEARCH;
    char *at = (char *)r->ExceptionInformation[1];
    char *lo = child_job_lo;
    /* The guard is the 64 KiB of reserved address space right below the usable stack. */
    int in_guard = lo != NULL && at < lo && at >= lo - 64 * 1024;
    TerminateProcess(GetCurrentProcess(), in_guard ? OVERFLOW_IN_GUARD : OVERFLOW_ELSEWHERE);
    return EXCEPTION_CONTINUE_SEARCH;
}

static volatile char child_sink;

/* A frame larger than the stack: __chkstk probes it page by page from the top down. */
static __attribute__((noinline)) void child_big_frame(void)
{
    volatile char big[256 * 1024];
    big[0] = 1;
    child_sink = big[0];
}

static int child_overflow_body(void *arg)
{
    child_job_lo = tib_now().limit;
    child_big_frame();
    return 0;
}

static int child_overflow(void)
{
    AddVectoredExceptionHandler(1, child_on_fault);
    ASYNC_JOB *job = NULL;
    int ret = 0;
    ASYNC_start_job(&job, NULL, &ret, child_overflow_body, NULL, 0);
    return 1; /* the job came back: nothing faulted */
}

/* Run this program again with `arg`; its exit code, or -1. */
static long run_child(const char *arg)
{
    char self[MAX_PATH], cmd[MAX_PATH + 64];
    DWORD n = GetModuleFileNameA(NULL, self, sizeof(self));
    if (n == 0 || n >= sizeof(self))
        return -1;
    snprintf(cmd, sizeof(cmd), "\"%s\" %s", self, arg);
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    if (!CreateProcessA(self, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
        return -1;
    DWORD code = (DWORD)-1;
    if (WaitForSingleObject(pi.hProcess, 60000) != WAIT_OBJECT_0 ||
        !GetExitCodeProcess(pi.hProcess, &code))
        TerminateProcess(pi.hProcess, 1);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return (long)code;
}

START_TEST(overflow_faults_in_guard)
{
    ck_assert_int_eq(run_child("overflow-child"), OVERFLOW_IN_GUARD);
}
END_TEST

/* ---- wait ctxs with event HANDLEs ---- */

static const char event_key;
static int cleanups;

static void close_event(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD h, void *data)
{
    (void)ctx;
    (void)key;
    (void)data;
    cleanups += CloseHandle(h) ? 1 : 100;
}

static int event_body(void *arg)
{
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (ev == NULL || !ASYNC_WAIT_CTX_set_wait_fd(ctx, &event_key, ev, NULL, close_event))
        return 0;
    SetEvent(ev);
    ASYNC_pause_job();
    return 5; /* the entry stays: ASYNC_WAIT_CTX_free() runs its cleanup */
}

START_TEST(wait_ctx_holds_event_handles)
{
    ck_assert(OSSL_BAD_ASYNC_FD == INVALID_HANDLE_VALUE);
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ASYNC_JOB *job = NULL;
    int ret = 0;
    cleanups = 0;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, event_body, NULL, 0);
    OSSL_ASYNC_FD fds[2] = { OSSL_BAD_ASYNC_FD, OSSL_BAD_ASYNC_FD };
    size_t n = 0;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(ctx, NULL, &n), 1);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(ctx, fds, &n), 1);
    ck_assert_ptr_ne(fds[0], OSSL_BAD_ASYNC_FD);
    /* The job signalled it: a waiter wakes at once. */
    ck_assert_uint_eq(WaitForSingleObject(fds[0], 5000), WAIT_OBJECT_0);
    OSSL_ASYNC_FD got = OSSL_BAD_ASYNC_FD;
    void *data = &got;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(ctx, &event_key, &got, &data), 1);
    ck_assert_ptr_eq(got, fds[0]);
    expect_resume(ASYNC_FINISH, &job, &ret);
    ck_assert_int_eq(ret, 5);
    ck_assert_int_eq(cleanups, 0);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(cleanups, 1); /* the handle was closed by the cleanup, once */
}
END_TEST

/* ---- threads ---- */

static int pause_once(void *arg)
{
    ASYNC_pause_job();
    return *(int *)arg;
}

struct worker {
    int value, result, status;
};

/* On its own thread: a job starts, pauses, resumes and finishes. */
static DWORD WINAPI worker_main(void *arg)
{
    struct worker *w = arg;
    ASYNC_JOB *job = NULL;
    int ret = 0;
    w->status = 1;
    if (ASYNC_start_job(&job, NULL, &ret, pause_once, &w->value, sizeof(w->value)) != ASYNC_PAUSE)
        return 0;
    w->status = 2;
    if (ASYNC_start_job(&job, NULL, &ret, pause_once, NULL, 0) != ASYNC_FINISH)
        return 0;
    w->result = ret;
    w->status = 3;
    ASYNC_cleanup_thread();
    return 0;
}

START_TEST(jobs_on_two_threads)
{
    struct worker w[2] = { { 11, 0, 0 }, { 22, 0, 0 } };
    HANDLE t[2];
    for (int i = 0; i < 2; i++) {
        t[i] = CreateThread(NULL, 0, worker_main, &w[i], 0, NULL);
        ck_assert_ptr_nonnull(t[i]);
    }
    ck_assert_uint_eq(WaitForMultipleObjects(2, t, TRUE, 30000), WAIT_OBJECT_0);
    for (int i = 0; i < 2; i++) {
        CloseHandle(t[i]);
        ck_assert_int_eq(w[i].status, 3);
        ck_assert_int_eq(w[i].result, w[i].value);
    }
}
END_TEST

struct foreign {
    ASYNC_JOB *job;
    int rc, err;
};

static DWORD WINAPI resume_from_here(void *arg)
{
    struct foreign *f = arg;
    int ret = 0;
    f->rc = ASYNC_start_job(&f->job, NULL, &ret, pause_once, NULL, 0);
    f->err = asyncjob_last_error();
    return 0;
}

START_TEST(resume_from_wrong_thread_refused)
{
    int v = 9, ret = 0;
    ASYNC_JOB *job = NULL;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_once, &v, sizeof(v));
    struct foreign f = { job, -1, 0 };
    HANDLE t = CreateThread(NULL, 0, resume_from_here, &f, 0, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(WaitForSingleObject(t, 30000), WAIT_OBJECT_0);
    CloseHandle(t);
    ck_assert_int_eq(f.rc, ASYNC_ERR);
    ck_assert_int_eq(f.err, ASYNCJOB_EWRONGTHREAD);
    ck_assert_ptr_eq(f.job, job); /* untouched */
    expect_resume(ASYNC_FINISH, &job, &ret);
    ck_assert_int_eq(ret, 9);
}
END_TEST

/* ---- thread exit without ASYNC_cleanup_thread() ---- */

/* A thread that fills its pool and exits without ASYNC_cleanup_thread(): the stacks'
 * reservations must be released by the thread-exit cleanup, and the heap stay sound (the
 * cleanup once ran on the thread's emulated TLS after mingw's CRT had freed it). */
static int note_stack(void *arg)
{
    **(char ***)arg = tib_now().limit; /* arg: the copy of the caller's `where` */
    return 1;
}

static int note_stack_and_pause(void *arg)
{
    note_stack(arg);
    ASYNC_pause_job();
    return 2; /* never: its thread exits with it paused */
}

struct exiting {
    char *stack_lo;   /* the low end of a job's stack, seen from inside the job */
    char *paused_lo;  /* the same, of the job left paused */
    int ok;
};

static DWORD WINAPI fill_pool_and_exit(void *arg)
{
    struct exiting *e = arg;
    ASYNC_JOB *job = NULL;
    int ret = 0;
    char **where = &e->stack_lo;
    e->ok = ASYNC_init_thread(0, 4) &&
            ASYNC_start_job(&job, NULL, &ret, note_stack, &where, sizeof(where)) == ASYNC_FINISH;
    return 0;
}

/* Two jobs: one finished (idle in the pool), one paused with a wait ctx, at exit. */
static DWORD WINAPI pause_a_job_and_exit(void *arg)
{
    struct exiting *e = arg;
    ASYNC_JOB *done = NULL, *paused = NULL;
    int ret = 0;
    char **where = &e->stack_lo, **where_paused = &e->paused_lo;
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    e->ok = ctx != NULL &&
            ASYNC_start_job(&paused, ctx, &ret, note_stack_and_pause, &where_paused,
                            sizeof(where_paused)) == ASYNC_PAUSE &&
            ASYNC_start_job(&done, NULL, &ret, note_stack, &where, sizeof(where)) == ASYNC_FINISH;
    ASYNC_WAIT_CTX_free(ctx); /* the paused job keeps it until the thread's exit frees both */
    return 0;
}

static int reserved(const void *p)
{
    MEMORY_BASIC_INFORMATION mbi;
    return VirtualQuery(p, &mbi, sizeof(mbi)) == sizeof(mbi) && mbi.State != MEM_FREE;
}

/* Every heap of the process is sound, and busy malloc()/free() goes on working in it. */
static void heap_healthy(void)
{
    HANDLE heaps[64];
    DWORD n = GetProcessHeaps(64, heaps);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, 64);
    for (DWORD i = 0; i < n; i++)
        ck_assert_msg(HeapValidate(heaps[i], 0, NULL), "heap %lu of %lu is corrupt", i, n);
    static void *blocks[4096];
    for (int round = 0; round < 8; round++) {
        for (size_t k = 0; k < 4096; k++) {
            blocks[k] = malloc(16 + (k * 37 + (size_t)round * 11) % 2000);
            ck_assert_ptr_nonnull(blocks[k]);
            memset(blocks[k], 0xa5, 16);
        }
        for (size_t k = 0; k < 4096; k += 2)
            free(blocks[k]);
        for (size_t k = 1; k < 4096; k += 2)
            free(blocks[k]);
    }
    for (DWORD i = 0; i < n; i++)
        ck_assert(HeapValidate(heaps[i], 0, NULL));
}

/* Run `body` on a thread of CreateThread's and wait for the thread to end. */
static void run_thread(LPTHREAD_START_ROUTINE body, struct exiting *e)
{
    HANDLE t = CreateThread(NULL, 0, body, e, 0, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(WaitForSingleObject(t, 30000), WAIT_OBJECT_0);
    CloseHandle(t);
}

static void *fill_pool_and_exit_pthread(void *arg)
{
    fill_pool_and_exit(arg);
    return NULL;
}

START_TEST(thread_exit_releases_stacks)
{
    for (int i = 0; i < 4; i++) {
        struct exiting e = { NULL, NULL, 0 };
        if (i % 2 == 0) {
            run_thread(fill_pool_and_exit, &e);
        } else { /* winpthreads' threads end through the same hook */
            pthread_t t;
            ck_assert_int_eq(pthread_create(&t, NULL, fill_pool_and_exit_pthread, &e), 0);
            ck_assert_int_eq(pthread_join(t, NULL), 0);
        }
        ck_assert_int_eq(e.ok, 1);
        ck_assert_ptr_nonnull(e.stack_lo);
        ck_assert_int_eq(reserved(e.stack_lo), 0);
        heap_healthy();
    }
}
END_TEST

START_TEST(thread_exit_frees_paused_job)
{
    for (int i = 0; i < 3; i++) {
        struct exiting e = { NULL, NULL, 0 };
        run_thread(pause_a_job_and_exit, &e);
        ck_assert_int_eq(e.ok, 1);
        ck_assert_ptr_nonnull(e.stack_lo);
        ck_assert_ptr_nonnull(e.paused_lo);
        ck_assert_ptr_ne(e.stack_lo, e.paused_lo);
        ck_assert_int_eq(reserved(e.stack_lo), 0);
        ck_assert_int_eq(reserved(e.paused_lo), 0);
        heap_healthy();
    }
    /* This thread's own jobs are unharmed. */
    int v = 4, ret = 0;
    ASYNC_JOB *job = NULL;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_once, &v, sizeof(v));
    expect_resume(ASYNC_FINISH, &job, &ret);
    ck_assert_int_eq(ret, 4);
}
END_TEST

/* ---- stack size and measured use ---- */

static int deep_body(void *arg)
{
    volatile char buf[100 * 1024];
    memset((char *)buf, 1, sizeof(buf));
    **(char ***)arg = tib_now().limit; /* arg: the copy of the caller's `where` */
    ASYNC_pause_job();
    return buf[5];
}

START_TEST(stack_size_and_peak)
{
    ck_assert_int_eq(asyncjob_set_stack_size(256 * 1024), 1);
    ck_assert_uint_eq(asyncjob_get_stack_size(), 256 * 1024);
    char *lo = NULL, **where = &lo;
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, deep_body, &where, sizeof(where));
    ck_assert(reserved(lo) && reserved(lo + 256 * 1024 - 1));
    size_t peak = asyncjob_stack_peak(job);
    ck_assert_uint_ge(peak, 100 * 1024);
    ck_assert_uint_le(peak, 256 * 1024);
    expect_resume(ASYNC_FINISH, &job, &ret);
    ck_assert_int_eq(ret, 1);
    ck_assert_int_eq(asyncjob_set_stack_size(32768), 1);
    ASYNC_cleanup_thread();
}
END_TEST

/* No SIGSEGV handler on Windows: the overflow report is refused (asyncjob(7), WINDOWS), and
 * no address is in a job's guard. */
static const int test_windows_anchor = 1;

START_TEST(overflow_report_refused)
{
    ck_assert_int_eq(asyncjob_overflow_report(1), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_ENOTSUP);
    ck_assert_int_eq(asyncjob_overflow_report(0), 1);
    ck_assert_ptr_null(asyncjob_guard_job(&test_windows_anchor));
}
END_TEST

SUITE("windows", 120, NULL, tib_follows_every_switch, overflow_faults_in_guard,
      wait_ctx_holds_event_handles, jobs_on_two_threads, resume_from_wrong_thread_refused,
      thread_exit_releases_stacks, thread_exit_frees_paused_job, stack_size_and_peak,
      overflow_report_refused)

/* The overflow test runs this program again as a child, which must die in the guard. */
int tap_main(void);
#define main tap_main
#include "tap_main.h"
#undef main

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "overflow-child") == 0)
        return child_overflow();
    return tap_main();
}
