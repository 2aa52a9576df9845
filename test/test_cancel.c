/*
 * test_cancel.c: asyncjob_cancel_job(), the extension that ends a paused job early. The job
 * is resumed once more in cancel mode, sees every pause fail with ASYNCJOB_ECANCELED, unwinds
 * and returns; the call reports ASYNC_FINISH and the job goes back to the pool. Linked
 * against the installed library. Stacks are counted through ASYNC_set_mem_functions.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <string.h>

#include "asyncjob.h"
#include "check_suite.h"
#include "counting_stacks.h"
#include "wait_fd.h"

/* ---- job bodies ---- */

static struct {
    int pause_rc[256];    /* results of the job's pauses, in order */
    int pause_err[256];   /* asyncjob_last_error() after each */
    int npauses;
    int resumes_seen;     /* pauses that returned 1 */
    ASYNC_JOB *self;
    ASYNC_JOB *victim;
    int inner_rc, inner_err;
} g;

/* Record one pause result (the arrays are large enough for every test here). */
static void note_pause(int rc)
{
    if (g.npauses < 256) {
        g.pause_rc[g.npauses] = rc;
        g.pause_err[g.npauses] = asyncjob_last_error();
    }
    g.npauses++;
}

static void setup(void)
{
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(use_counting_stacks(), 1);
}

/* Pause up to `limit` times (argument); stop at the first failed pause, like real code that
 * checks ASYNC_pause_job() and unwinds; then try two more pauses to show they fail at once.
 * Returns 1000 + the number of pauses that failed. */
static int careful_job(void *arg)
{
    int limit = *(int *)arg;
    g.self = ASYNC_get_current_job();
    int failed = 0;
    for (int i = 0; i < limit; i++) {
        int rc = ASYNC_pause_job();
        note_pause(rc);
        if (rc == 0) {
            failed++;
            break;
        }
        g.resumes_seen++;
    }
    if (failed) {
        for (int k = 0; k < 2; k++) {
            int rc = ASYNC_pause_job();
            note_pause(rc);
            failed += rc == 0;
        }
    }
    return 1000 + failed;
}

static ASYNC_JOB *start_careful(int limit, ASYNC_WAIT_CTX *ctx)
{
    ASYNC_JOB *job = NULL;
    int ret = -1;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, careful_job, &limit, sizeof(limit));
    ck_assert_ptr_nonnull(job);
    ck_assert_int_eq(ret, -1);
    return job;
}

/* ---- the main behaviour ---- */

START_TEST(cancel_paused_job_finishes)
{
    ASYNC_JOB *job = start_careful(5, NULL);
    ASYNC_JOB *handle = job;
    int ret = -1;
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
    ck_assert_ptr_null(job);
    /* The interrupted pause and both later ones failed; none of them switched back (the
     * cancel call returned once, with the job's final value). */
    ck_assert_int_eq(ret, 1003);
    ck_assert_int_eq(g.npauses, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(g.pause_rc[i], 0);
        ck_assert_int_eq(g.pause_err[i], ASYNCJOB_ECANCELED);
    }
    ck_assert_int_eq(g.resumes_seen, 0);
    ck_assert_ptr_eq(g.self, handle);
    /* Like errno, the code stays visible on the thread after the call. */
    expect_error(ASYNCJOB_ECANCELED);
    ck_assert_ptr_null(ASYNC_get_current_job());
    ASYNC_cleanup_thread();
    ck_assert_int_eq(stacks(), 0);
}
END_TEST

START_TEST(cancel_after_some_resumes)
{
    ASYNC_JOB *job = start_careful(5, NULL);
    int ret = -1;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, careful_job, NULL, 0);
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, careful_job, NULL, 0);
    ck_assert_int_eq(g.resumes_seen, 2);
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
    ck_assert_int_eq(ret, 1003);
    ck_assert_int_eq(g.npauses, 5);
    ck_assert_int_eq(g.pause_rc[0], 1);
    ck_assert_int_eq(g.pause_rc[1], 1);
    ck_assert_int_eq(g.pause_rc[2], 0);
    ck_assert_int_eq(g.pause_err[2], ASYNCJOB_ECANCELED);
    ASYNC_cleanup_thread();
}
END_TEST

START_TEST(cancel_ret_may_be_null)
{
    ASYNC_JOB *job = start_careful(1, NULL);
    ck_assert_int_eq(asyncjob_cancel_job(&job, NULL), ASYNC_FINISH);
    ck_assert_ptr_null(job);
    ck_assert_int_eq(g.npauses, 3);
    ASYNC_cleanup_thread();
}
END_TEST

/* Blocking does not let a cancelled job pause: the cancellation wins. */
static int blocking_job(void *arg)
{
    (void)arg;
    int r1 = ASYNC_pause_job();           /* the interrupted pause */
    ASYNC_block_pause();
    int r2 = ASYNC_pause_job();           /* blocked and cancelled */
    ASYNC_unblock_pause();
    return r1 * 10 + r2 + (asyncjob_last_error() == ASYNCJOB_ECANCELED ? 500 : 0);
}

START_TEST(cancel_wins_over_block)
{
    ASYNC_JOB *job = NULL;
    int ret = -1;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, blocking_job, NULL, 0);
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
    ck_assert_int_eq(ret, 500);
    ASYNC_cleanup_thread();
}
END_TEST

/* ---- the job goes back to the pool ---- */

START_TEST(cancel_returns_job_to_pool)
{
    ck_assert_int_eq(ASYNC_init_thread(1, 1), 1);
    ck_assert_int_eq(stacks(), 1);
    ASYNC_JOB *job = start_careful(3, NULL);
    ASYNC_JOB *handle = job;
    int ret = -1;
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
    ck_assert_int_eq(stacks(), 1);
    /* The pool of one hands the same job out next, and it is not in cancel mode any
     * more: it pauses and resumes normally. */
    memset(&g, 0, sizeof(g));
    job = start_careful(2, NULL);
    ck_assert_ptr_eq(job, handle);
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, careful_job, NULL, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, careful_job, NULL, 0);
    ck_assert_int_eq(ret, 1000);
    ck_assert_int_eq(g.resumes_seen, 2);
    ck_assert_int_eq(stacks(), 1);
    /* Its handle is stale now: a second cancel is refused. */
    job = handle;
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_ERR);
    expect_error(ASYNCJOB_ENOTPAUSED);
    ASYNC_cleanup_thread();
    ck_assert_int_eq(stacks(), 0);
}
END_TEST

START_TEST(cancel_orphan_after_cleanup_is_freed)
{
    ASYNC_JOB *job = start_careful(3, NULL);
    ck_assert_int_eq(stacks(), 1);
    /* The paused job survives cleanup as an orphan... */
    ASYNC_cleanup_thread();
    ck_assert_int_eq(stacks(), 1);
    int ret = -1;
    /* ...can still be cancelled, and is then freed, not pooled. */
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
    ck_assert_int_eq(ret, 1003);
    ck_assert_int_eq(stacks(), 0);
}
END_TEST

START_TEST(cancel_many_paused_jobs_in_any_order)
{
    enum { N = 16 };
    ASYNC_JOB *jobs[N];
    ck_assert_int_eq(ASYNC_init_thread(N, 0), 1);
    for (int i = 0; i < N; i++)
        jobs[i] = start_careful(4, NULL);
    ck_assert_int_eq(stacks(), N);
    for (int i = 0; i < N; i += 2) {
        int ret = -1;
        ck_assert_int_eq(asyncjob_cancel_job(&jobs[i], &ret), ASYNC_FINISH);
        ck_assert_int_eq(ret, 1003);
    }
    for (int i = 1; i < N; i += 2) {
        int ret = -1;
        for (int k = 0; k < 4; k++)
            expect_start(k < 3 ? ASYNC_PAUSE : ASYNC_FINISH, &jobs[i], NULL, &ret,
                         careful_job, NULL, 0);
        ck_assert_int_eq(ret, 1000);
    }
    /* All sixteen are idle in the pool: sixteen can be out again, a seventeenth cannot. */
    ck_assert_int_eq(stacks(), N);
    for (int i = 0; i < N; i++)
        jobs[i] = start_careful(1, NULL);
    ASYNC_JOB *extra = NULL;
    int one = 1;
    expect_start(ASYNC_NO_JOBS, &extra, NULL, NULL, careful_job, &one, sizeof(one));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(asyncjob_cancel_job(&jobs[i], NULL), ASYNC_FINISH);
    ck_assert_int_eq(stacks(), N);
    ASYNC_cleanup_thread();
    ck_assert_int_eq(stacks(), 0);
}
END_TEST

/* ---- with a wait ctx ---- */

static int ctx_key_a, ctx_key_b;
static int cleanup_calls;

static void note_cleanup(ASYNC_WAIT_CTX *c, const void *k, OSSL_ASYNC_FD fd, void *d)
{
    (void)c; (void)d;
    if (k == &ctx_key_a && FD_NUM(fd) == 11)
        cleanup_calls++;
}

/* Sets two fds, pauses; when that pause fails, clears one (as a real engine would undo its
 * submission) and reports what its ctx showed. */
static int ctx_job(void *arg)
{
    (void)arg;
    ASYNC_WAIT_CTX *c = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    if (c == NULL)
        return -1;
    if (!ASYNC_WAIT_CTX_set_wait_fd(c, &ctx_key_a, FD(11), NULL, note_cleanup) ||
        !ASYNC_WAIT_CTX_set_wait_fd(c, &ctx_key_b, FD(12), NULL, NULL))
        return -2;
    if (ASYNC_pause_job() != 0)
        return -3;
    /* The resume (cancel mode included) reset the change tracking. */
    size_t na = 9, nd = 9;
    if (!ASYNC_WAIT_CTX_get_changed_fds(c, NULL, &na, NULL, &nd) || na != 0 || nd != 0)
        return -4;
    if (!ASYNC_WAIT_CTX_clear_fd(c, &ctx_key_b))
        return -5;
    if (ASYNC_pause_job() != 0) /* fails at once: no reset, the clear stays visible */
        return -6;
    return 0;
}

START_TEST(cancel_with_wait_ctx)
{
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ASYNC_JOB *job = NULL;
    int ret = -1;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, ctx_job, NULL, 0);
    size_t na = 0, nd = 0;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_changed_fds(ctx, NULL, &na, NULL, &nd), 1);
    ck_assert_uint_eq(na, 2);
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
    ck_assert_int_eq(ret, 0);
    /* The final segment's change (fd 12 cleared) stays visible after the finish. */
    OSSL_ASYNC_FD del[4] = { 0 };
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_changed_fds(ctx, NULL, &na, del, &nd), 1);
    ck_assert_uint_eq(na, 0);
    ck_assert_uint_eq(nd, 1);
    ck_assert_fd_eq(del[0], FD(12));
    OSSL_ASYNC_FD all[4] = { 0 };
    size_t n = 0;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(ctx, all, &n), 1);
    ck_assert_uint_eq(n, 1);
    ck_assert_fd_eq(all[0], FD(11));
    /* The job let go of the ctx: a new job can use it, and freeing it runs the one
     * remaining cleanup without touching the pooled job. */
    ASYNC_JOB *again = NULL;
    expect_start(ASYNC_PAUSE, &again, ctx, &ret, ctx_job, NULL, 0);
    ck_assert_int_eq(asyncjob_cancel_job(&again, &ret), ASYNC_FINISH);
    ck_assert_int_eq(ret, 0);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(cleanup_calls, 2);
    ASYNC_cleanup_thread();
    ck_assert_int_eq(stacks(), 0);
}
END_TEST

START_TEST(cancel_after_wait_ctx_freed)
{
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ASYNC_JOB *job = start_careful(2, ctx);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_ptr_null(ASYNC_get_wait_ctx(job));
    int ret = -1;
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
    ck_assert_int_eq(ret, 1003);
    ASYNC_cleanup_thread();
}
END_TEST

/* ---- errors: the same codes as a resume ---- */

/* Cancel and resume a handle; both must fail with `code` and leave it alone. */
static void same_error_as_resume(ASYNC_JOB *handle, int code)
{
    ASYNC_JOB *h = handle;
    int ret = -1;
    expect_start(ASYNC_ERR, &h, NULL, &ret, careful_job, NULL, 0);
    ck_assert_int_eq(asyncjob_last_error(), code);
    ck_assert_ptr_eq(h, handle);
    ck_assert_int_eq(asyncjob_cancel_job(&h, &ret), ASYNC_ERR);
    ck_assert_int_eq(asyncjob_last_error(), code);
    ck_assert_ptr_eq(h, handle);
    ck_assert_int_eq(ret, -1);
}

START_TEST(cancel_error_null)
{
    int ret = -1;
    ck_assert_int_eq(asyncjob_cancel_job(NULL, &ret), ASYNC_ERR);
    expect_error(ASYNCJOB_EINVAL);
    ASYNC_JOB *none = NULL;
    ck_assert_int_eq(asyncjob_cancel_job(&none, &ret), ASYNC_ERR);
    expect_error(ASYNCJOB_EINVAL);
    ck_assert_int_eq(ret, -1);
}
END_TEST

START_TEST(cancel_error_stale)
{
    int one = 1;
    ASYNC_JOB *job = NULL;
    expect_start(ASYNC_PAUSE, &job, NULL, NULL, careful_job, &one, sizeof(one));
    ASYNC_JOB *handle = job;
    expect_start(ASYNC_FINISH, &job, NULL, NULL, careful_job, NULL, 0);
    same_error_as_resume(handle, ASYNCJOB_ENOTPAUSED);
    ASYNC_cleanup_thread();
}
END_TEST

struct foreign {
    ASYNC_JOB *job;
    int ok;
};

static void *foreign_thread(void *p)
{
    struct foreign *f = p;
    same_error_as_resume(f->job, ASYNCJOB_EWRONGTHREAD);
    f->ok = 1;
    return NULL;
}

START_TEST(cancel_error_wrong_thread)
{
    ASYNC_JOB *job = start_careful(2, NULL);
    struct foreign f = { .job = job };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, foreign_thread, &f), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(f.ok, 1);
    /* Untouched: its owner can still cancel it. */
    int ret = -1;
    ck_assert_int_eq(asyncjob_cancel_job(&job, &ret), ASYNC_FINISH);
    ck_assert_int_eq(ret, 1003);
    ASYNC_cleanup_thread();
}
END_TEST

static int canceller_job(void *arg)
{
    (void)arg;
    g.self = ASYNC_get_current_job();
    ASYNC_JOB *h = g.victim;
    int ret = -1;
    g.inner_rc = asyncjob_cancel_job(&h, &ret);
    g.inner_err = asyncjob_last_error();
    if (h != g.victim || ret != -1)
        return -1;
    h = g.self;
    if (asyncjob_cancel_job(&h, &ret) != ASYNC_ERR ||
        asyncjob_last_error() != ASYNCJOB_ENESTED)
        return -2;
    /* This job is not in cancel mode: it pauses normally. */
    return ASYNC_pause_job() == 1 ? 7 : -3;
}

START_TEST(cancel_error_from_inside_job)
{
    g.victim = start_careful(2, NULL);
    ASYNC_JOB *job = NULL;
    int ret = -1;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, canceller_job, NULL, 0);
    ck_assert_int_eq(g.inner_rc, ASYNC_ERR);
    ck_assert_int_eq(g.inner_err, ASYNCJOB_ENESTED);
    ck_assert_int_eq(g.npauses, 0); /* the victim did not run */
    expect_start(ASYNC_FINISH, &job, NULL, &ret, canceller_job, NULL, 0);
    ck_assert_int_eq(ret, 7);
    /* The victim is still paused and resumes normally. */
    expect_start(ASYNC_PAUSE, &g.victim, NULL, &ret, careful_job, NULL, 0);
    ck_assert_int_eq(g.resumes_seen, 1);
    expect_start(ASYNC_FINISH, &g.victim, NULL, &ret, careful_job, NULL, 0);
    ck_assert_int_eq(ret, 1000);
    ASYNC_cleanup_thread();
}
END_TEST

SUITE("cancel", 60, setup, cancel_paused_job_finishes, cancel_after_some_resumes,
      cancel_ret_may_be_null, cancel_wins_over_block, cancel_returns_job_to_pool,
      cancel_orphan_after_cleanup_is_freed, cancel_many_paused_jobs_in_any_order,
      cancel_with_wait_ctx, cancel_after_wait_ctx_freed, cancel_error_null, cancel_error_stale,
      cancel_error_wrong_thread, cancel_error_from_inside_job)

#include "tap_main.h"
