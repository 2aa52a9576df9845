/*
 * test_misuse.c: every misuse that asyncjob(7) lists under DIFFERENCES FROM OPENSSL must fail
 * with its own error code (asyncjob_strerror(3), ERRORS) and leave every job and the pool
 * intact. Each test commits the misuse, checks the code, then proves that the jobs involved
 * still resume and finish and that the pool still hands out jobs. Linked against the
 * installed library (lib/libasyncjob.la), so only the ABI is used.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "asyncjob.h"
#include "check_suite.h"
#include "wait_fd.h"

/* ---- helpers ---- */

/* Shared with the job bodies: what they observed and what they should do. */
static struct {
    int pauses;          /* how many times the plain job body pauses */
    int pause_results;   /* sum of ASYNC_pause_job() results seen inside jobs */
    int inner_rc;        /* result of the misuse a job commits from inside */
    int inner_err;       /* asyncjob_last_error() right after it */
    ASYNC_JOB *inner_job;
    ASYNC_JOB *self;     /* ASYNC_get_current_job() inside the last job to run */
    ASYNC_JOB *victim;   /* a paused job a running job tries to touch */
    ASYNC_WAIT_CTX *ctx_seen;
} g;

/* Pause g.pauses times, then return 100 + the argument (an int, copied by the library). */
static int plain_job(void *arg)
{
    g.self = ASYNC_get_current_job();
    for (int i = 0; i < g.pauses; i++)
        g.pause_results += ASYNC_pause_job();
    return 100 + (arg != NULL ? *(int *)arg : 0);
}

/* Record a known, unrelated code (ERANGE, from a rejected ASYNC_init_thread that changes
 * nothing) so that a test can tell a fresh code from a stale one even when Check does not
 * fork. Only called outside jobs. */
static void preset_error(void)
{
    ck_assert_int_eq(ASYNC_init_thread(1, 2), 0);
    expect_error(ASYNCJOB_ERANGE);
}

/* Start plain_job with argument v and expect it to pause; returns the handle. */
static ASYNC_JOB *start_plain_paused(int v, ASYNC_WAIT_CTX *ctx)
{
    ASYNC_JOB *job = NULL;
    int ret = -1;
    g.pauses = 1;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, plain_job, &v, sizeof(v));
    ck_assert_ptr_nonnull(job);
    ck_assert_ptr_eq(job, g.self);
    ck_assert_int_eq(ret, -1);
    return job;
}

/* Resume a paused plain_job started with argument v and expect it to finish. */
static void finish_plain(ASYNC_JOB *job, int v)
{
    int ret = -1;
    ASYNC_JOB *h = job;
    expect_start(ASYNC_FINISH, &h, NULL, &ret, plain_job, NULL, 0);
    ck_assert_ptr_null(h);
    ck_assert_int_eq(ret, 100 + v);
}

/* The pool still works: a job that does not pause runs and finishes; returns its handle. */
static ASYNC_JOB *pool_hands_out(void)
{
    ASYNC_JOB *job = NULL;
    int ret = -1, v = 7;
    g.pauses = 0;
    g.self = NULL;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, plain_job, &v, sizeof(v));
    ck_assert_ptr_null(job);
    ck_assert_int_eq(ret, 107);
    ck_assert_ptr_nonnull(g.self);
    return g.self;
}

/* ---- wrong thread ---- */

struct foreign {
    ASYNC_JOB *job;     /* the handle to misuse */
    int use_cancel;
    int own_pool;       /* give the foreign thread a pool of its own first */
    int rc, err;
    ASYNC_JOB *after;   /* the handle variable after the call */
};

static void *foreign_thread(void *p)
{
    struct foreign *f = p;
    if (f->own_pool) {
        ASYNC_init_thread(2, 2);
        pool_hands_out();
    }
    ASYNC_JOB *h = f->job;
    int ret = -5;
    if (f->use_cancel)
        f->rc = asyncjob_cancel_job(&h, &ret);
    else
        f->rc = ASYNC_start_job(&h, NULL, &ret, plain_job, NULL, 0);
    f->err = asyncjob_last_error();
    f->after = h;
    if (ret != -5)
        f->rc = -1000; /* *ret must be untouched */
    if (f->own_pool)
        ASYNC_cleanup_thread();
    return NULL;
}

static void wrong_thread_case(int use_cancel, int own_pool)
{
    ASYNC_JOB *job = start_plain_paused(3, NULL);
    struct foreign f = { .job = job, .use_cancel = use_cancel, .own_pool = own_pool };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, foreign_thread, &f), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(f.rc, ASYNC_ERR);
    ck_assert_int_eq(f.err, ASYNCJOB_EWRONGTHREAD);
    ck_assert_ptr_eq(f.after, job);
    /* The owner can still finish it, and the pool reuses it next (LIFO). */
    finish_plain(job, 3);
    ck_assert_int_eq(g.pause_results, 1);
    ck_assert_ptr_eq(pool_hands_out(), job);
    ASYNC_cleanup_thread();
}

START_TEST(misuse_wrong_thread_resume)
{
    wrong_thread_case(0, 0);
}
END_TEST

START_TEST(misuse_wrong_thread_resume_thread_with_pool)
{
    wrong_thread_case(0, 1);
}
END_TEST

START_TEST(misuse_wrong_thread_cancel)
{
    wrong_thread_case(1, 0);
}
END_TEST

/* ---- nested start, resume and cancel from inside a job ---- */

enum inner_kind { INNER_START, INNER_RESUME_OTHER, INNER_RESUME_SELF, INNER_CANCEL_OTHER,
                  INNER_CANCEL_SELF, INNER_CLEANUP, INNER_INIT };
static enum inner_kind inner_kind;

/* Commit the chosen misuse, then pause once and return 55. */
static int misusing_job(void *arg)
{
    (void)arg;
    g.self = ASYNC_get_current_job();
    int ret = -9;
    g.inner_job = NULL;
    switch (inner_kind) {
    case INNER_START:
        g.inner_rc = ASYNC_start_job(&g.inner_job, NULL, &ret, plain_job, NULL, 0);
        break;
    case INNER_RESUME_OTHER:
        g.inner_job = g.victim;
        g.inner_rc = ASYNC_start_job(&g.inner_job, NULL, &ret, plain_job, NULL, 0);
        break;
    case INNER_RESUME_SELF:
        g.inner_job = g.self;
        g.inner_rc = ASYNC_start_job(&g.inner_job, NULL, &ret, plain_job, NULL, 0);
        break;
    case INNER_CANCEL_OTHER:
        g.inner_job = g.victim;
        g.inner_rc = asyncjob_cancel_job(&g.inner_job, &ret);
        break;
    case INNER_CANCEL_SELF:
        g.inner_job = g.self;
        g.inner_rc = asyncjob_cancel_job(&g.inner_job, &ret);
        break;
    case INNER_CLEANUP:
        ASYNC_cleanup_thread();
        g.inner_rc = 0;
        break;
    case INNER_INIT:
        g.inner_rc = ASYNC_init_thread(4, 1);
        break;
    }
    g.inner_err = asyncjob_last_error();
    if (ret != -9)
        g.inner_err = -1; /* the failed call must leave *ret alone */
    /* The running job is unaffected: it still is the current job and can pause. */
    if (ASYNC_get_current_job() != g.self)
        return -1;
    g.pause_results += ASYNC_pause_job();
    return 55;
}

/* Run misusing_job with a paused victim beside it in a pool limited to two jobs; check
 * the code; finish both; then prove the pool kept its jobs and its limit. */
static void inner_case(enum inner_kind kind, int rc, int err, int expect_same_handle)
{
    ck_assert_int_eq(ASYNC_init_thread(2, 2), 1);
    g.victim = start_plain_paused(9, NULL);
    preset_error();
    inner_kind = kind;
    ASYNC_JOB *job = NULL;
    int ret = -1;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, misusing_job, NULL, 0);
    ASYNC_JOB *misuser = job;
    ck_assert_ptr_ne(misuser, g.victim);
    ck_assert_int_eq(g.inner_rc, rc);
    ck_assert_int_eq(g.inner_err, err);
    if (expect_same_handle == 1)
        ck_assert_ptr_eq(g.inner_job, g.victim);
    else if (expect_same_handle == 2)
        ck_assert_ptr_eq(g.inner_job, misuser);
    else
        ck_assert_ptr_null(g.inner_job);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, misusing_job, NULL, 0);
    ck_assert_int_eq(ret, 55);
    /* The victim was not run by the misuse: it is still paused at its first pause. */
    ck_assert_int_eq(g.pause_results, 1);
    finish_plain(g.victim, 9);
    ck_assert_int_eq(g.pause_results, 2);
    /* Both jobs are back in the same pool with the same limit: two can be out at once,
     * they are the two jobs from before, and a third start finds the pool full. */
    ASYNC_JOB *a = start_plain_paused(1, NULL);
    ASYNC_JOB *b = start_plain_paused(2, NULL);
    ck_assert_ptr_eq(a, g.victim);
    ck_assert_ptr_eq(b, misuser);
    ASYNC_JOB *c = NULL;
    expect_start(ASYNC_NO_JOBS, &c, NULL, &ret, plain_job, NULL, 0);
    expect_error(ASYNCJOB_EPOOLFULL);
    ck_assert_ptr_null(c);
    finish_plain(a, 1);
    finish_plain(b, 2);
    ASYNC_cleanup_thread();
}

/* One test per misuse: its name, the misuse, what the call returns, its error code, and the
 * handle the call leaves in its *job (0: NULL, 1: the victim, 2: the misusing job). */
#define INNER_CASE(name, kind, rc, err, handle)                                            \
    START_TEST(name)                                                                       \
    {                                                                                      \
        inner_case(kind, rc, err, handle);                                                 \
    }                                                                                      \
    END_TEST

INNER_CASE(misuse_nested_start, INNER_START, ASYNC_ERR, ASYNCJOB_ENESTED, 0)
INNER_CASE(misuse_resume_other_from_inside_job, INNER_RESUME_OTHER, ASYNC_ERR, ASYNCJOB_ENESTED, 1)
/* The running job's own handle is not a paused job. */
INNER_CASE(misuse_non_paused_handle_running_job, INNER_RESUME_SELF, ASYNC_ERR, ASYNCJOB_ENESTED, 2)
INNER_CASE(misuse_cancel_other_from_inside_job, INNER_CANCEL_OTHER, ASYNC_ERR, ASYNCJOB_ENESTED, 1)
INNER_CASE(misuse_cancel_self_from_inside_job, INNER_CANCEL_SELF, ASYNC_ERR, ASYNCJOB_ENESTED, 2)
/* The pool must survive: a cleaned-up pool would lose its limit of two jobs. */
INNER_CASE(misuse_cleanup_thread_inside_job, INNER_CLEANUP, 0, ASYNCJOB_EINJOB, 0)
INNER_CASE(misuse_init_thread_inside_job, INNER_INIT, 0, ASYNCJOB_EINJOB, 0)

/* ---- stale and non-paused handles from outside ---- */

START_TEST(misuse_stale_handle_resume)
{
    ck_assert_int_eq(ASYNC_init_thread(1, 1), 1);
    ASYNC_JOB *stale = pool_hands_out(); /* finished: idle in the pool now */
    ASYNC_JOB *h = stale;
    int ret = -1;
    preset_error();
    expect_start(ASYNC_ERR, &h, NULL, &ret, plain_job, NULL, 0);
    expect_error(ASYNCJOB_ENOTPAUSED);
    ck_assert_ptr_eq(h, stale);
    ck_assert_int_eq(ret, -1);
    /* The pool of one still hands out that very job, and it pauses and finishes. */
    ck_assert_ptr_eq(start_plain_paused(4, NULL), stale);
    finish_plain(stale, 4);
    ck_assert_int_eq(g.pause_results, 1);
    ASYNC_cleanup_thread();
}
END_TEST

START_TEST(misuse_stale_handle_cancel)
{
    ck_assert_int_eq(ASYNC_init_thread(1, 1), 1);
    ASYNC_JOB *stale = pool_hands_out();
    ASYNC_JOB *h = stale;
    int ret = -1;
    preset_error();
    ck_assert_int_eq(asyncjob_cancel_job(&h, &ret), ASYNC_ERR);
    expect_error(ASYNCJOB_ENOTPAUSED);
    ck_assert_ptr_eq(h, stale);
    ck_assert_int_eq(ret, -1);
    ck_assert_ptr_eq(pool_hands_out(), stale);
    ASYNC_cleanup_thread();
}
END_TEST

START_TEST(misuse_stale_handle_while_another_paused)
{
    /* A stale handle beside a paused job: the paused one is not disturbed either. */
    ck_assert_int_eq(ASYNC_init_thread(2, 0), 1);
    ASYNC_JOB *stale = pool_hands_out();
    ASYNC_JOB *paused = start_plain_paused(6, NULL);
    ck_assert_ptr_eq(paused, stale); /* LIFO: the same job again */
    ASYNC_JOB *stale2 = pool_hands_out(); /* a second job, now idle */
    ck_assert_ptr_ne(stale2, paused);
    ASYNC_JOB *h = stale2;
    int ret = -1;
    expect_start(ASYNC_ERR, &h, NULL, &ret, plain_job, NULL, 0);
    expect_error(ASYNCJOB_ENOTPAUSED);
    finish_plain(paused, 6);
    /* Limit 2 and both jobs idle: two starts at once still both succeed. */
    ASYNC_JOB *a = start_plain_paused(1, NULL);
    ASYNC_JOB *b = start_plain_paused(2, NULL);
    ck_assert_ptr_ne(a, b);
    finish_plain(b, 2);
    finish_plain(a, 1);
    ASYNC_cleanup_thread();
}
END_TEST

/* ---- NULL and invalid arguments to ASYNC_start_job / cancel ---- */

/* With a pool of exactly one job and a paused job elsewhere... the misuse must neither
 * consume the pool's job nor touch the paused one. */
static void start_arg_case(ASYNC_JOB **jobp, int (*func)(void *), void *args, size_t size)
{
    ck_assert_int_eq(ASYNC_init_thread(2, 2), 1);
    ASYNC_JOB *paused = start_plain_paused(8, NULL);
    preset_error();
    int ret = -1;
    expect_start(ASYNC_ERR, jobp, NULL, &ret, func, args, size);
    expect_error(ASYNCJOB_EINVAL);
    ck_assert_int_eq(ret, -1);
    if (jobp != NULL)
        ck_assert_ptr_null(*jobp);
    /* The one remaining job of the limit-2 pool is still available. */
    ASYNC_JOB *other = start_plain_paused(5, NULL);
    ck_assert_ptr_ne(other, paused);
    finish_plain(paused, 8);
    finish_plain(other, 5);
    ck_assert_int_eq(g.pause_results, 2);
    ASYNC_cleanup_thread();
}

START_TEST(misuse_null_job_pointer)
{
    int v = 1;
    start_arg_case(NULL, plain_job, &v, sizeof(v));
}
END_TEST

START_TEST(misuse_null_func)
{
    ASYNC_JOB *job = NULL;
    int v = 1;
    start_arg_case(&job, NULL, &v, sizeof(v));
}
END_TEST

START_TEST(misuse_args_size_zero)
{
    ASYNC_JOB *job = NULL;
    int v = 1;
    start_arg_case(&job, plain_job, &v, 0);
}
END_TEST

START_TEST(misuse_cancel_null_pointers)
{
    ck_assert_int_eq(ASYNC_init_thread(2, 2), 1);
    ASYNC_JOB *paused = start_plain_paused(2, NULL);
    int ret = -1;
    preset_error();
    ck_assert_int_eq(asyncjob_cancel_job(NULL, &ret), ASYNC_ERR);
    expect_error(ASYNCJOB_EINVAL);
    preset_error();
    ASYNC_JOB *none = NULL;
    ck_assert_int_eq(asyncjob_cancel_job(&none, &ret), ASYNC_ERR);
    expect_error(ASYNCJOB_EINVAL);
    ck_assert_ptr_null(none);
    ck_assert_int_eq(ret, -1);
    /* Neither the paused job nor the pool noticed. */
    ASYNC_JOB *other = start_plain_paused(3, NULL);
    finish_plain(other, 3);
    finish_plain(paused, 2);
    ASYNC_cleanup_thread();
}
END_TEST

/* ---- NULL wait ctx to each WAIT_CTX function ---- */

/* A job holding a real ctx with one fd stays paused while the NULL calls are made. */
static ASYNC_WAIT_CTX *real_ctx;
static ASYNC_JOB *ctx_job;
static int ctx_key;

static int fd_job(void *arg)
{
    (void)arg;
    ASYNC_WAIT_CTX *c = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    if (c == NULL || !ASYNC_WAIT_CTX_set_wait_fd(c, &ctx_key, FD(42), NULL, NULL))
        return -1;
    g.pause_results += ASYNC_pause_job();
    size_t n = 9;
    if (!ASYNC_WAIT_CTX_get_all_fds(c, NULL, &n) || n != 1)
        return -2;
    return 77;
}

static void null_ctx_setup(void)
{
    real_ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(real_ctx);
    ctx_job = NULL;
    int ret = -1;
    expect_start(ASYNC_PAUSE, &ctx_job, real_ctx, &ret, fd_job, NULL, 0);
    preset_error();
}

static void null_ctx_check(void)
{
    expect_error(ASYNCJOB_EINVAL);
    /* The real ctx and its job are intact. */
    OSSL_ASYNC_FD fd = FD(-1);
    void *data = (void *)1;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(real_ctx, &ctx_key, &fd, &data), 1);
    ck_assert_fd_eq(fd, FD(42));
    int ret = -1;
    expect_start(ASYNC_FINISH, &ctx_job, real_ctx, &ret, fd_job, NULL, 0);
    ck_assert_int_eq(ret, 77);
    ck_assert_int_eq(g.pause_results, 1);
    ASYNC_WAIT_CTX_free(real_ctx);
    pool_hands_out();
    ASYNC_cleanup_thread();
}

static void never_called_cleanup(ASYNC_WAIT_CTX *c, const void *k, OSSL_ASYNC_FD fd, void *d)
{
    (void)c; (void)k; (void)fd; (void)d;
    ck_abort_msg("cleanup called for an entry of a NULL ctx");
}

START_TEST(misuse_null_ctx_set_wait_fd)
{
    null_ctx_setup();
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_wait_fd(NULL, &ctx_key, FD(3), NULL, never_called_cleanup), 0);
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_get_fd)
{
    null_ctx_setup();
    OSSL_ASYNC_FD fd = FD(1234);
    void *data = (void *)&fd;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(NULL, &ctx_key, &fd, &data), 0);
    ck_assert_fd_eq(fd, FD(1234));
    ck_assert_ptr_eq(data, &fd);
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_get_all_fds)
{
    null_ctx_setup();
    OSSL_ASYNC_FD fds[4] = { FD(5), FD(5), FD(5), FD(5) };
    size_t n = 99;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(NULL, fds, &n), 0);
    ck_assert_fd_eq(fds[0], FD(5));
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_get_changed_fds)
{
    null_ctx_setup();
    OSSL_ASYNC_FD add[4] = { FD(5) }, del[4] = { FD(5) };
    size_t na = 99, nd = 99;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_changed_fds(NULL, add, &na, del, &nd), 0);
    ck_assert_fd_eq(add[0], FD(5));
    ck_assert_fd_eq(del[0], FD(5));
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_clear_fd)
{
    null_ctx_setup();
    ck_assert_int_eq(ASYNC_WAIT_CTX_clear_fd(NULL, &ctx_key), 0);
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_set_callback)
{
    null_ctx_setup();
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_callback(NULL, NULL, NULL), 0);
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_get_callback)
{
    null_ctx_setup();
    ASYNC_callback_fn cb = (ASYNC_callback_fn)plain_job;
    void *arg = &cb;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_callback(NULL, &cb, &arg), 0);
    ck_assert_ptr_eq(arg, &cb);
    ck_assert(cb == (ASYNC_callback_fn)plain_job);
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_set_status)
{
    null_ctx_setup();
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_status(NULL, ASYNC_STATUS_OK), 0);
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_get_status)
{
    null_ctx_setup();
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_status(NULL), ASYNC_STATUS_UNSUPPORTED);
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_ctx_free)
{
    /* A no-op by the spec: it records nothing and touches nothing. */
    null_ctx_setup();
    ASYNC_WAIT_CTX_free(NULL);
    expect_error(ASYNCJOB_ERANGE);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_status(NULL), ASYNC_STATUS_UNSUPPORTED);
    null_ctx_check();
}
END_TEST

START_TEST(misuse_null_job_get_wait_ctx)
{
    null_ctx_setup();
    ck_assert_ptr_null(ASYNC_get_wait_ctx(NULL));
    null_ctx_check();
}
END_TEST

/* ---- a wait ctx freed while its job is paused ---- */

static int cleanups;
static void count_cleanup(ASYNC_WAIT_CTX *c, const void *k, OSSL_ASYNC_FD fd, void *d)
{
    (void)c; (void)k; (void)d;
    if (FD_NUM(fd) == 42)
        cleanups++;
}

/* Pause twice; record the ctx seen after each resume. */
static int ctx_watching_job(void *arg)
{
    ASYNC_JOB *self = ASYNC_get_current_job();
    ASYNC_WAIT_CTX *c = ASYNC_get_wait_ctx(self);
    if (c == NULL || !ASYNC_WAIT_CTX_set_wait_fd(c, &ctx_key, FD(42), NULL, count_cleanup))
        return -1;
    g.pause_results += ASYNC_pause_job();
    g.ctx_seen = ASYNC_get_wait_ctx(self);
    g.pause_results += ASYNC_pause_job();
    return 200 + *(int *)arg;
}

START_TEST(misuse_wait_ctx_freed_while_paused)
{
    ASYNC_WAIT_CTX *shared = ASYNC_WAIT_CTX_new();
    ASYNC_WAIT_CTX *kept = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(shared);
    ck_assert_ptr_nonnull(kept);
    ASYNC_JOB *a = NULL, *b = NULL, *c = NULL;
    int ret = -1, va = 1, vb = 2, vc = 3;
    /* a and b share the ctx that will be freed; c keeps its own. */
    expect_start(ASYNC_PAUSE, &a, shared, &ret, ctx_watching_job, &va, sizeof(va));
    expect_start(ASYNC_PAUSE, &b, shared, &ret, ctx_watching_job, &vb, sizeof(vb));
    expect_start(ASYNC_PAUSE, &c, kept, &ret, ctx_watching_job, &vc, sizeof(vc));
    ASYNC_WAIT_CTX_free(shared);
    ck_assert_int_eq(cleanups, 2); /* each job's entry, once */
    ck_assert_ptr_null(ASYNC_get_wait_ctx(a));
    ck_assert_ptr_null(ASYNC_get_wait_ctx(b));
    ck_assert_ptr_eq(ASYNC_get_wait_ctx(c), kept);
    /* Resuming them must not touch the freed ctx (ASan/valgrind would see it). */
    g.ctx_seen = (ASYNC_WAIT_CTX *)1;
    expect_start(ASYNC_PAUSE, &a, NULL, &ret, ctx_watching_job, NULL, 0);
    ck_assert_ptr_null(g.ctx_seen);
    expect_start(ASYNC_PAUSE, &b, NULL, &ret, ctx_watching_job, NULL, 0);
    ck_assert_ptr_null(g.ctx_seen);
    expect_start(ASYNC_PAUSE, &c, NULL, &ret, ctx_watching_job, NULL, 0);
    ck_assert_ptr_eq(g.ctx_seen, kept);
    expect_start(ASYNC_FINISH, &a, NULL, &ret, ctx_watching_job, NULL, 0);
    ck_assert_int_eq(ret, 201);
    expect_start(ASYNC_FINISH, &b, NULL, &ret, ctx_watching_job, NULL, 0);
    ck_assert_int_eq(ret, 202);
    expect_start(ASYNC_FINISH, &c, NULL, &ret, ctx_watching_job, NULL, 0);
    ck_assert_int_eq(ret, 203);
    ck_assert_int_eq(g.pause_results, 6);
    /* The kept ctx still works and its entry is still there. */
    size_t n = 0;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(kept, NULL, &n), 1);
    ck_assert_uint_eq(n, 1);
    ASYNC_WAIT_CTX_free(kept);
    ck_assert_int_eq(cleanups, 3);
    /* A new job with a new ctx (maybe at the freed address) sees only that ctx. */
    ASYNC_WAIT_CTX *fresh = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(fresh);
    ASYNC_JOB *d = NULL;
    expect_start(ASYNC_PAUSE, &d, fresh, &ret, ctx_watching_job, &va, sizeof(va));
    expect_start(ASYNC_PAUSE, &d, NULL, &ret, ctx_watching_job, NULL, 0);
    ck_assert_ptr_eq(g.ctx_seen, fresh);
    expect_start(ASYNC_FINISH, &d, NULL, &ret, ctx_watching_job, NULL, 0);
    ASYNC_WAIT_CTX_free(fresh);
    ASYNC_cleanup_thread();
}
END_TEST

START_TEST(misuse_wait_ctx_freed_by_its_own_job)
{
    /* Freeing the ctx from inside the job that uses it is the same case, seen from within. */
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ASYNC_JOB *a = NULL;
    int ret = -1, va = 4;
    expect_start(ASYNC_PAUSE, &a, ctx, &ret, ctx_watching_job, &va, sizeof(va));
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(cleanups, 1);
    expect_start(ASYNC_PAUSE, &a, NULL, &ret, ctx_watching_job, NULL, 0);
    expect_start(ASYNC_FINISH, &a, NULL, &ret, ctx_watching_job, NULL, 0);
    ck_assert_int_eq(ret, 204);
    pool_hands_out();
    ASYNC_cleanup_thread();
}
END_TEST

SUITE("misuse", 60, NULL, misuse_wrong_thread_resume,
      misuse_wrong_thread_resume_thread_with_pool, misuse_wrong_thread_cancel,
      misuse_nested_start, misuse_resume_other_from_inside_job,
      misuse_non_paused_handle_running_job, misuse_cancel_other_from_inside_job,
      misuse_cancel_self_from_inside_job, misuse_cleanup_thread_inside_job,
      misuse_init_thread_inside_job, misuse_stale_handle_resume, misuse_stale_handle_cancel,
      misuse_stale_handle_while_another_paused, misuse_null_job_pointer, misuse_null_func,
      misuse_args_size_zero, misuse_cancel_null_pointers, misuse_null_ctx_set_wait_fd,
      misuse_null_ctx_get_fd, misuse_null_ctx_get_all_fds, misuse_null_ctx_get_changed_fds,
      misuse_null_ctx_clear_fd, misuse_null_ctx_set_callback, misuse_null_ctx_get_callback,
      misuse_null_ctx_set_status, misuse_null_ctx_get_status, misuse_null_ctx_free,
      misuse_null_job_get_wait_ctx, misuse_wait_ctx_freed_while_paused,
      misuse_wait_ctx_freed_by_its_own_job)

#include "tap_main.h"
