/*
 * test_wait_ctx.c: every ASYNC_WAIT_CTX_* function through the public API, the cleanup
 * rules, NULL-ctx safety, and the reset rule of the change tracking across a job's
 * pause, resume and finish, as ASYNC_WAIT_CTX_new(3) states them (its "Change tracking").
 */
#include <asyncjob.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_suite.h"
#include "wait_fd.h"

/* Adding an entry (`fd` a number: wait_fd.h) must succeed. */
#define add_fd(ctx, key, fd, data, cleanup)                                                \
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_wait_fd((ctx), (key), FD(fd), (data), (cleanup)), 1)

/* `key` must be found with `want_fd` and `want_data` (a NULL data is written, too). */
#define expect_fd(ctx, key, want_fd, want_data)                                            \
    do {                                                                                   \
        OSSL_ASYNC_FD fd_ = FD(-1);                                                        \
        void *data_ = &fd_;                                                                \
        ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd((ctx), (key), &fd_, &data_), 1);            \
        ck_assert_fd_eq(fd_, FD(want_fd));                                                 \
        ck_assert_ptr_eq(data_, (want_data));                                              \
    } while (0)

/* Distinct keys: only their addresses matter. */
static const char key_a[] = "key", key_b[] = "key", key_c[] = "c", key_d[] = "d";

/* Sort a small fd array so that order-free results compare exactly. */
static void sort_fds(OSSL_ASYNC_FD *fds, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && FD_NUM(fds[k - 1]) > FD_NUM(fds[k]); k--) {
            OSSL_ASYNC_FD t = fds[k];
            fds[k] = fds[k - 1];
            fds[k - 1] = t;
        }
}

/* ---- recording cleanup callback ---- */

#define MAX_CLEANUPS 16
static struct cleanup_call {
    ASYNC_WAIT_CTX *ctx;
    const void *key;
    OSSL_ASYNC_FD fd;
    void *data;
} cleanups[MAX_CLEANUPS];
static int n_cleanups;

static void record_cleanup(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd, void *data)
{
    if (n_cleanups < MAX_CLEANUPS)
        cleanups[n_cleanups] = (struct cleanup_call){ ctx, key, fd, data };
    n_cleanups++;
}

/* How often the cleanup ran for the fd numbered `fd`. */
static int cleanups_of(int fd)
{
    int n = 0;
    for (int i = 0; i < n_cleanups && i < MAX_CLEANUPS; i++)
        n += FD_NUM(cleanups[i].fd) == fd;
    return n;
}

static ASYNC_WAIT_CTX *new_ctx(void)
{
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

/* The changes must be the fds numbered want_add and want_del, in ascending order. */
static void expect_changes(ASYNC_WAIT_CTX *ctx, size_t want_na, const int *want_add,
                           size_t want_nd, const int *want_del)
{
    size_t na = 99, nd = 99;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_changed_fds(ctx, NULL, &na, NULL, &nd), 1);
    ck_assert_uint_eq(na, want_na);
    ck_assert_uint_eq(nd, want_nd);
    OSSL_ASYNC_FD add[8], del[8];
    for (int i = 0; i < 8; i++)
        add[i] = del[i] = FD(-77);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_changed_fds(ctx, add, &na, del, &nd), 1);
    ck_assert_uint_eq(na, want_na);
    ck_assert_uint_eq(nd, want_nd);
    sort_fds(add, na);
    sort_fds(del, nd);
    for (size_t i = 0; i < want_na; i++)
        ck_assert_fd_eq(add[i], FD(want_add[i]));
    for (size_t i = 0; i < want_nd; i++)
        ck_assert_fd_eq(del[i], FD(want_del[i]));
    /* Nothing written beyond the counts. */
    ck_assert_fd_eq(add[want_na], FD(-77));
    ck_assert_fd_eq(del[want_nd], FD(-77));
}

static size_t count_fds(ASYNC_WAIT_CTX *ctx)
{
    size_t n = 99;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(ctx, NULL, &n), 1);
    return n;
}

/* ---- plain functions ---- */

START_TEST(new_defaults)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_status(ctx), ASYNC_STATUS_UNSUPPORTED);
    ck_assert_uint_eq(count_fds(ctx), 0);
    expect_changes(ctx, 0, NULL, 0, NULL);
    ASYNC_callback_fn cb = (ASYNC_callback_fn)1;
    void *arg = &cb;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_callback(ctx, &cb, &arg), 0);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(status_values)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    static const int values[] = { ASYNC_STATUS_ERR, ASYNC_STATUS_OK, ASYNC_STATUS_EAGAIN,
                                  ASYNC_STATUS_UNSUPPORTED, -7, 123456 };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        ck_assert_int_eq(ASYNC_WAIT_CTX_set_status(ctx, values[i]), 1);
        ck_assert_int_eq(ASYNC_WAIT_CTX_get_status(ctx), values[i]);
    }
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(set_and_get_fd)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    int data_a, data_c;
    add_fd(ctx, key_a, 5, &data_a, record_cleanup);
    add_fd(ctx, key_c, 6, &data_c, NULL);
    /* data and cleanup may be NULL. */
    add_fd(ctx, key_d, 8, NULL, NULL);
    expect_fd(ctx, key_a, 5, &data_a);
    expect_fd(ctx, key_c, 6, &data_c);
    expect_fd(ctx, key_d, 8, NULL);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(get_fd_missing_untouched)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    OSSL_ASYNC_FD fd = FD(4242);
    void *data = &fd;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(ctx, key_a, &fd, &data), 0);
    ck_assert_fd_eq(fd, FD(4242));
    ck_assert_ptr_eq(data, &fd);
    /* Keys are compared as pointers: key_b has key_a's contents but is another key. */
    add_fd(ctx, key_a, 3, NULL, NULL);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(ctx, key_b, &fd, &data), 0);
    ck_assert_fd_eq(fd, FD(4242));
    ck_assert_ptr_eq(data, &fd);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(duplicate_keys_newest_wins)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    int d1, d2;
    add_fd(ctx, key_a, 3, &d1, record_cleanup);
    add_fd(ctx, key_a, 4, &d2, record_cleanup);
    ck_assert_uint_eq(count_fds(ctx), 2);
    expect_fd(ctx, key_a, 4, &d2);
    /* Clearing the key removes the newest entry; the older one shows through. */
    ck_assert_int_eq(ASYNC_WAIT_CTX_clear_fd(ctx, key_a), 1);
    ck_assert_uint_eq(count_fds(ctx), 1);
    expect_fd(ctx, key_a, 3, &d1);
    ASYNC_WAIT_CTX_free(ctx);
    /* Both entries were real: the remaining one is cleaned up on free. */
    ck_assert_int_eq(n_cleanups, 1);
    ck_assert_int_eq(cleanups_of(3), 1);
}
END_TEST

START_TEST(get_all_fds_newest_first)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    add_fd(ctx, key_a, 10, NULL, NULL);
    add_fd(ctx, key_b, 11, NULL, NULL);
    add_fd(ctx, key_c, 12, NULL, NULL);
    /* Count-only mode. */
    ck_assert_uint_eq(count_fds(ctx), 3);
    OSSL_ASYNC_FD fds[5] = { FD(-1), FD(-1), FD(-1), FD(-1), FD(-1) };
    size_t n = 0;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(ctx, fds, &n), 1);
    ck_assert_uint_eq(n, 3);
    ck_assert_fd_eq(fds[0], FD(12));
    ck_assert_fd_eq(fds[1], FD(11));
    ck_assert_fd_eq(fds[2], FD(10));
    ck_assert_fd_eq(fds[3], FD(-1));
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(get_changed_fds_counts_adds)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    add_fd(ctx, key_a, 21, NULL, NULL);
    add_fd(ctx, key_b, 20, NULL, NULL);
    static const int want[] = { 20, 21 };
    expect_changes(ctx, 2, want, 0, NULL);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(clear_fd_cancels_add_in_segment)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    int d;
    add_fd(ctx, key_a, 7, &d, record_cleanup);
    add_fd(ctx, key_c, 8, NULL, NULL);
    ck_assert_int_eq(ASYNC_WAIT_CTX_clear_fd(ctx, key_a), 1);
    ck_assert_int_eq(n_cleanups, 0);
    /* Added and cleared since the last reset: as if never added. */
    static const int want[] = { 8 };
    expect_changes(ctx, 1, want, 0, NULL);
    ck_assert_uint_eq(count_fds(ctx), 1);
    OSSL_ASYNC_FD fd = FD(55);
    void *data = NULL;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(ctx, key_a, &fd, &data), 0);
    ck_assert_fd_eq(fd, FD(55));
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(n_cleanups, 0);
}
END_TEST

START_TEST(clear_fd_missing_key)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    ck_assert_int_eq(ASYNC_WAIT_CTX_clear_fd(ctx, key_a), 0);
    add_fd(ctx, key_a, 1, NULL, NULL);
    ck_assert_int_eq(ASYNC_WAIT_CTX_clear_fd(ctx, key_b), 0);
    ck_assert_int_eq(ASYNC_WAIT_CTX_clear_fd(ctx, key_a), 1);
    ck_assert_int_eq(ASYNC_WAIT_CTX_clear_fd(ctx, key_a), 0);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(free_calls_cleanup_per_entry)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    int d1, d2;
    add_fd(ctx, key_a, 31, &d1, record_cleanup);
    add_fd(ctx, key_c, 32, &d2, record_cleanup);
    add_fd(ctx, key_d, 33, NULL, NULL);
    ck_assert_int_eq(n_cleanups, 0);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(n_cleanups, 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_ptr_eq(cleanups[i].ctx, ctx);
        if (FD_NUM(cleanups[i].fd) == 31) {
            ck_assert_ptr_eq(cleanups[i].key, key_a);
            ck_assert_ptr_eq(cleanups[i].data, &d1);
        } else {
            ck_assert_fd_eq(cleanups[i].fd, FD(32));
            ck_assert_ptr_eq(cleanups[i].key, key_c);
            ck_assert_ptr_eq(cleanups[i].data, &d2);
        }
    }
    ck_assert_int_eq(cleanups_of(31), 1);
    ck_assert_int_eq(cleanups_of(32), 1);
    /* Freeing NULL is a no-op. */
    ASYNC_WAIT_CTX_free(NULL);
}
END_TEST

static int callback_calls;

static int my_callback(void *arg)
{
    (void)arg;
    callback_calls++;
    return 1;
}

START_TEST(callback_set_get)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    ASYNC_callback_fn cb = (ASYNC_callback_fn)1;
    void *arg = &cb;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_callback(ctx, &cb, &arg), 0);
    ck_assert_ptr_eq((void *)cb, (void *)1);
    ck_assert_ptr_eq(arg, &cb);
    int a;
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_callback(ctx, my_callback, &a), 1);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_callback(ctx, &cb, &arg), 1);
    ck_assert_ptr_eq((void *)cb, (void *)my_callback);
    ck_assert_ptr_eq(arg, &a);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(callback_calls, 0);
}
END_TEST

START_TEST(null_ctx_safe)
{
    OSSL_ASYNC_FD fd = FD(9), fds[2] = { FD(9), FD(9) };
    void *data = &fd;
    size_t n = 7, n2 = 7;
    ASYNC_callback_fn cb = my_callback;
    void *arg = &fd;

    ASYNC_WAIT_CTX_free(NULL);
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_wait_fd(NULL, key_a, FD(1), NULL, record_cleanup), 0);
    expect_error(ASYNCJOB_EINVAL);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(NULL, key_a, &fd, &data), 0);
    ck_assert_fd_eq(fd, FD(9));
    ck_assert_ptr_eq(data, &fd);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(NULL, fds, &n), 0);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_changed_fds(NULL, fds, &n, fds, &n2), 0);
    ck_assert_fd_eq(fds[0], FD(9));
    ck_assert_int_eq(ASYNC_WAIT_CTX_clear_fd(NULL, key_a), 0);
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_callback(NULL, my_callback, NULL), 0);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_callback(NULL, &cb, &arg), 0);
    ck_assert_ptr_eq((void *)cb, (void *)my_callback);
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_status(NULL, ASYNC_STATUS_OK), 0);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_status(NULL), 0);
    expect_error(ASYNCJOB_EINVAL);
    ck_assert_int_eq(n_cleanups, 0);
    ck_assert_int_eq(callback_calls, 0);
}
END_TEST

/* ---- the reset rule, across a job's life ---- */

/* A job body driven by a script of steps: each segment (between pauses) applies the
 * changes of one step, and records what get_changed_fds says at its start. */
struct seg_seen {
    size_t na, nd;
    size_t all;
};
static struct seg_seen seen_at_start[4];
static int segment;

static void seen_now(ASYNC_WAIT_CTX *ctx, int s)
{
    seen_at_start[s].na = seen_at_start[s].nd = seen_at_start[s].all = 99;
    ASYNC_WAIT_CTX_get_changed_fds(ctx, NULL, &seen_at_start[s].na, NULL,
                                   &seen_at_start[s].nd);
    ASYNC_WAIT_CTX_get_all_fds(ctx, NULL, &seen_at_start[s].all);
}

/* Segment 0 adds A(40) and C(41) and pauses. Segment 1 adds D(42), clears A, pauses.
 * Segment 2 clears C, adds B(43), finishes. */
static int three_segments(void *arg)
{
    (void)arg;
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    segment = 0;
    seen_now(ctx, 0);
    ASYNC_WAIT_CTX_set_wait_fd(ctx, key_a, FD(40), NULL, record_cleanup);
    ASYNC_WAIT_CTX_set_wait_fd(ctx, key_c, FD(41), NULL, record_cleanup);
    ASYNC_pause_job();
    segment = 1;
    seen_now(ctx, 1);
    ASYNC_WAIT_CTX_set_wait_fd(ctx, key_d, FD(42), NULL, record_cleanup);
    ASYNC_WAIT_CTX_clear_fd(ctx, key_a);
    ASYNC_pause_job();
    segment = 2;
    seen_now(ctx, 2);
    ASYNC_WAIT_CTX_clear_fd(ctx, key_c);
    ASYNC_WAIT_CTX_set_wait_fd(ctx, key_b, FD(43), NULL, record_cleanup);
    return 1;
}

START_TEST(reset_after_pause_shows_last_segment)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, three_segments, NULL, 0);
    static const int seg0[] = { 40, 41 };
    expect_changes(ctx, 2, seg0, 0, NULL);
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, three_segments, NULL, 0);
    /* Only segment 1: D added, A cleared (it was added in an earlier segment). */
    static const int seg1_add[] = { 42 }, seg1_del[] = { 40 };
    expect_changes(ctx, 1, seg1_add, 1, seg1_del);
    /* A cleared entry is no longer listed. */
    ck_assert_uint_eq(count_fds(ctx), 2);
    expect_start(ASYNC_FINISH, &job, ctx, &ret, three_segments, NULL, 0);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(reset_on_resume)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    ASYNC_JOB *job = NULL;
    int ret;
    /* Changes made before the start count as the first segment's. */
    add_fd(ctx, key_d, 50, NULL, NULL);
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, three_segments, NULL, 0);
    ck_assert_uint_eq(seen_at_start[0].na, 1);
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, three_segments, NULL, 0);
    /* Right after the resume, inside the job: counts are 0, all 3 entries still live. */
    ck_assert_uint_eq(seen_at_start[1].na, 0);
    ck_assert_uint_eq(seen_at_start[1].nd, 0);
    ck_assert_uint_eq(seen_at_start[1].all, 3);
    expect_start(ASYNC_FINISH, &job, ctx, &ret, three_segments, NULL, 0);
    /* After the second resume the cleared A was dropped: C, D(42) and D(50) remain. */
    ck_assert_uint_eq(seen_at_start[2].na, 0);
    ck_assert_uint_eq(seen_at_start[2].nd, 0);
    ck_assert_uint_eq(seen_at_start[2].all, 3);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(final_segment_visible_after_finish)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, three_segments, NULL, 0);
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, three_segments, NULL, 0);
    expect_start(ASYNC_FINISH, &job, ctx, &ret, three_segments, NULL, 0);
    ck_assert_int_eq(ret, 1);
    /* Segment 2: B added, C cleared. */
    static const int add[] = { 43 }, del[] = { 41 };
    expect_changes(ctx, 1, add, 1, del);
    /* Live: B(43), D(42). */
    OSSL_ASYNC_FD fds[4] = { FD(-1), FD(-1), FD(-1), FD(-1) };
    size_t n = 0;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(ctx, fds, &n), 1);
    ck_assert_uint_eq(n, 2);
    ck_assert_fd_eq(fds[0], FD(43));
    ck_assert_fd_eq(fds[1], FD(42));
    /* Free cleans up the live entries only: never A or C, which were cleared. */
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(n_cleanups, 2);
    ck_assert_int_eq(cleanups_of(42), 1);
    ck_assert_int_eq(cleanups_of(43), 1);
    ck_assert_int_eq(cleanups_of(40), 0);
    ck_assert_int_eq(cleanups_of(41), 0);
}
END_TEST

/* Clears the entry it was given at the start, after a pause, then pauses again. */
static int clear_after_pause(void *arg)
{
    (void)arg;
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    ASYNC_pause_job();
    ASYNC_WAIT_CTX_clear_fd(ctx, key_a);
    ASYNC_pause_job();
    return 0;
}

START_TEST(clear_fd_marks_cleared_never_cleans_up)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    int d;
    add_fd(ctx, key_a, 60, &d, record_cleanup);
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, clear_after_pause, NULL, 0);
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, clear_after_pause, NULL, 0);
    /* The entry predates the last reset: clearing marks it, reported as deleted. */
    static const int del[] = { 60 };
    expect_changes(ctx, 0, NULL, 1, del);
    ck_assert_uint_eq(count_fds(ctx), 0);
    OSSL_ASYNC_FD fd = FD(-1);
    void *data = NULL;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(ctx, key_a, &fd, &data), 0);
    ck_assert_int_eq(n_cleanups, 0);
    /* The next resume drops it, still without cleanup. */
    expect_start(ASYNC_FINISH, &job, ctx, &ret, clear_after_pause, NULL, 0);
    expect_changes(ctx, 0, NULL, 0, NULL);
    ck_assert_int_eq(n_cleanups, 0);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(n_cleanups, 0);
}
END_TEST

START_TEST(free_skips_marked_cleared_entry)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    add_fd(ctx, key_a, 61, NULL, record_cleanup);
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, clear_after_pause, NULL, 0);
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, clear_after_pause, NULL, 0);
    /* The entry is marked cleared but not yet dropped (the job is still paused): free
     * must not clean it up. */
    static const int del[] = { 61 };
    expect_changes(ctx, 0, NULL, 1, del);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(n_cleanups, 0);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, clear_after_pause, NULL, 0);
    ck_assert_int_eq(n_cleanups, 0);
}
END_TEST

static int pause_twice(void *arg)
{
    (void)arg;
    ASYNC_pause_job();
    ASYNC_pause_job();
    return 0;
}

START_TEST(reset_only_for_own_ctx)
{
    ASYNC_WAIT_CTX *ctx1 = new_ctx(), *ctx2 = new_ctx();
    ASYNC_JOB *j1 = NULL, *j2 = NULL;
    expect_start(ASYNC_PAUSE, &j1, ctx1, NULL, pause_twice, NULL, 0);
    add_fd(ctx1, key_a, 70, NULL, NULL);
    /* Resuming a job of another ctx, or a job without one, leaves ctx1's tracking alone. */
    expect_start(ASYNC_PAUSE, &j2, ctx2, NULL, pause_twice, NULL, 0);
    expect_start(ASYNC_PAUSE, &j2, ctx2, NULL, pause_twice, NULL, 0);
    expect_start(ASYNC_FINISH, &j2, ctx2, NULL, pause_twice, NULL, 0);
    ASYNC_JOB *j3 = NULL;
    expect_start(ASYNC_PAUSE, &j3, NULL, NULL, pause_twice, NULL, 0);
    expect_start(ASYNC_PAUSE, &j3, NULL, NULL, pause_twice, NULL, 0);
    static const int add[] = { 70 };
    expect_changes(ctx1, 1, add, 0, NULL);
    /* Resuming ctx1's own job resets it. */
    expect_start(ASYNC_PAUSE, &j1, ctx1, NULL, pause_twice, NULL, 0);
    expect_changes(ctx1, 0, NULL, 0, NULL);
    ck_assert_uint_eq(count_fds(ctx1), 1);
    expect_start(ASYNC_FINISH, &j1, ctx1, NULL, pause_twice, NULL, 0);
    expect_start(ASYNC_FINISH, &j3, NULL, NULL, pause_twice, NULL, 0);
    ASYNC_WAIT_CTX_free(ctx1);
    ASYNC_WAIT_CTX_free(ctx2);
}
END_TEST

START_TEST(start_does_not_reset)
{
    /* The reset happens on a resume only: changes made before a start (by the caller, or
     * a previous job's final segment) still count at the new job's first pause. */
    ASYNC_WAIT_CTX *ctx = new_ctx();
    add_fd(ctx, key_a, 80, NULL, NULL);
    ASYNC_JOB *job = NULL;
    expect_start(ASYNC_PAUSE, &job, ctx, NULL, pause_twice, NULL, 0);
    static const int add[] = { 80 };
    expect_changes(ctx, 1, add, 0, NULL);
    expect_start(ASYNC_PAUSE, &job, ctx, NULL, pause_twice, NULL, 0);
    expect_changes(ctx, 0, NULL, 0, NULL);
    expect_start(ASYNC_FINISH, &job, ctx, NULL, pause_twice, NULL, 0);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

/* ---- a ctx freed while its job is paused ---- */

static ASYNC_WAIT_CTX *ctx_after_resume[2];

static int look_after_free(void *arg)
{
    (void)arg;
    ASYNC_pause_job();
    ctx_after_resume[0] = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    ASYNC_pause_job();
    ctx_after_resume[1] = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    return 17;
}

START_TEST(freed_ctx_detached_from_paused_job)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    add_fd(ctx, key_a, 90, NULL, record_cleanup);
    ASYNC_JOB *job = NULL, *other = NULL;
    int ret = 0, ret2 = 0;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, look_after_free, NULL, 0);
    expect_start(ASYNC_PAUSE, &other, ctx, &ret2, look_after_free, NULL, 0);
    ck_assert_ptr_eq(ASYNC_get_wait_ctx(job), ctx);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(cleanups_of(90), 1);
    /* Both paused jobs forgot the ctx. */
    ck_assert_ptr_null(ASYNC_get_wait_ctx(job));
    ck_assert_ptr_null(ASYNC_get_wait_ctx(other));
    ctx_after_resume[0] = ctx_after_resume[1] = (ASYNC_WAIT_CTX *)&ret;
    /* Resuming (which would reset the ctx's tracking) must not touch the freed ctx. */
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, look_after_free, NULL, 0);
    ck_assert_ptr_null(ctx_after_resume[0]);
    expect_start(ASYNC_FINISH, &job, NULL, &ret, look_after_free, NULL, 0);
    ck_assert_ptr_null(ctx_after_resume[1]);
    ck_assert_int_eq(ret, 17);
    expect_start(ASYNC_PAUSE, &other, NULL, &ret2, look_after_free, NULL, 0);
    expect_start(ASYNC_FINISH, &other, NULL, &ret2, look_after_free, NULL, 0);
    ck_assert_int_eq(ret2, 17);
    /* A new ctx (likely at the freed one's address) is not affected by those jobs. */
    ASYNC_WAIT_CTX *ctx2 = new_ctx();
    add_fd(ctx2, key_b, 91, NULL, NULL);
    static const int add[] = { 91 };
    expect_changes(ctx2, 1, add, 0, NULL);
    ASYNC_WAIT_CTX_free(ctx2);
    ck_assert_int_eq(n_cleanups, 1);
}
END_TEST

START_TEST(callback_never_called_by_library)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_callback(ctx, my_callback, NULL), 1);
    ASYNC_JOB *job = NULL;
    expect_start(ASYNC_PAUSE, &job, ctx, NULL, pause_twice, NULL, 0);
    expect_start(ASYNC_PAUSE, &job, ctx, NULL, pause_twice, NULL, 0);
    expect_start(ASYNC_FINISH, &job, ctx, NULL, pause_twice, NULL, 0);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(callback_calls, 0);
}
END_TEST

/* ---- asyncjob_wait_ctx_sync() and _forget(): what a poller is told, in which order ---- */

static struct report {
    OSSL_ASYNC_FD fd;
    int add;
} reports[16];
static int n_reports, refuse_at = -1;

/* The poller: records each call; refuses the call numbered refuse_at (from 0). */
static int poller(OSSL_ASYNC_FD fd, int add, void *arg)
{
    ck_assert_ptr_eq(arg, reports);
    if (n_reports == refuse_at) {
        refuse_at = -1;
        return 0;
    }
    ck_assert_int_lt(n_reports, 16);
    reports[n_reports].fd = fd;
    reports[n_reports].add = add;
    n_reports++;
    return 1;
}

/* The calls since the last check must be exactly `want` (n pairs fd, add), in order. */
static void expect_reports(int n, const int *want)
{
    ck_assert_int_eq(n_reports, n);
    for (int i = 0; i < n; i++) {
        ck_assert_fd_eq(reports[i].fd, FD(want[2 * i]));
        ck_assert_int_eq(reports[i].add, want[2 * i + 1]);
    }
    n_reports = 0;
}

/* Segment 0 adds A(60). Segment 1 clears A and adds B with the same number 60, then
 * C(61). Segment 2 clears C and finishes, leaving B. */
static int reuse_fd_number(void *arg)
{
    (void)arg;
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    ASYNC_WAIT_CTX_set_wait_fd(ctx, key_a, FD(60), NULL, NULL);
    ASYNC_pause_job();
    ASYNC_WAIT_CTX_clear_fd(ctx, key_a);
    ASYNC_WAIT_CTX_set_wait_fd(ctx, key_b, FD(60), NULL, NULL);
    ASYNC_WAIT_CTX_set_wait_fd(ctx, key_c, FD(61), NULL, NULL);
    ASYNC_pause_job();
    ASYNC_WAIT_CTX_clear_fd(ctx, key_c);
    return 1;
}

START_TEST(sync_removes_before_it_adds)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    ASYNC_JOB *job = NULL;
    int ret;
    n_reports = 0;
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, reuse_fd_number, NULL, 0);
    ck_assert_int_eq(asyncjob_wait_ctx_sync(ctx, poller, reports), 1);
    static const int seg0[] = { 60, 1 };
    expect_reports(1, seg0);
    expect_start(ASYNC_PAUSE, &job, ctx, &ret, reuse_fd_number, NULL, 0);
    ck_assert_int_eq(asyncjob_wait_ctx_sync(ctx, poller, reports), 1);
    /* 60 out first, then 60 (B) and 61 back in, newest first: the poller watches 60. */
    static const int seg1[] = { 60, 0, 61, 1, 60, 1 };
    expect_reports(3, seg1);
    /* Nothing new to report until the job runs again. */
    ck_assert_int_eq(asyncjob_wait_ctx_sync(ctx, poller, reports), 1);
    expect_reports(0, NULL);
    expect_start(ASYNC_FINISH, &job, ctx, &ret, reuse_fd_number, NULL, 0);
    /* Finished: the poller still watches B(60) and C(61), cleared in the last segment. */
    ck_assert_int_eq(asyncjob_wait_ctx_forget(ctx, poller, reports), 1);
    static const int fin[] = { 61, 0, 60, 0 };
    expect_reports(2, fin);
    ck_assert_int_eq(asyncjob_wait_ctx_forget(ctx, poller, reports), 1);
    expect_reports(0, NULL);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(sync_stops_at_refusal_and_resumes)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    n_reports = 0;
    add_fd(ctx, key_a, 70, NULL, NULL);
    add_fd(ctx, key_c, 71, NULL, NULL);
    add_fd(ctx, key_d, 72, NULL, NULL);
    refuse_at = 1; /* the second fd */
    ck_assert_int_eq(asyncjob_wait_ctx_sync(ctx, poller, reports), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_ESTOPPED);
    static const int first[] = { 72, 1 };
    expect_reports(1, first);
    /* The next call reports what the poller has not accepted yet, once. */
    ck_assert_int_eq(asyncjob_wait_ctx_sync(ctx, poller, reports), 1);
    static const int rest[] = { 71, 1, 70, 1 };
    expect_reports(2, rest);
    refuse_at = 0;
    ck_assert_int_eq(asyncjob_wait_ctx_forget(ctx, poller, reports), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_ESTOPPED);
    ck_assert_int_eq(asyncjob_wait_ctx_forget(ctx, poller, reports), 1);
    static const int forgot[] = { 72, 0, 71, 0, 70, 0 };
    expect_reports(3, forgot);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

START_TEST(sync_forget_refuse_null)
{
    ASYNC_WAIT_CTX *ctx = new_ctx();
    n_reports = 0;
    add_fd(ctx, key_a, 80, NULL, NULL);
    ck_assert_int_eq(asyncjob_wait_ctx_sync(NULL, poller, reports), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_EINVAL);
    ck_assert_int_eq(asyncjob_wait_ctx_sync(ctx, NULL, reports), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_EINVAL);
    ck_assert_int_eq(asyncjob_wait_ctx_forget(NULL, poller, reports), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_EINVAL);
    ck_assert_int_eq(asyncjob_wait_ctx_forget(ctx, NULL, reports), 0);
    ck_assert_int_eq(asyncjob_last_error(), ASYNCJOB_EINVAL);
    /* Nothing was reported, so there is nothing to forget. */
    ck_assert_int_eq(asyncjob_wait_ctx_forget(ctx, poller, reports), 1);
    expect_reports(0, NULL);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

SUITE("wait_ctx", 30, NULL, new_defaults, status_values, set_and_get_fd,
      get_fd_missing_untouched, duplicate_keys_newest_wins, get_all_fds_newest_first,
      get_changed_fds_counts_adds, clear_fd_cancels_add_in_segment, clear_fd_missing_key,
      free_calls_cleanup_per_entry, callback_set_get, null_ctx_safe,
      reset_after_pause_shows_last_segment, reset_on_resume, final_segment_visible_after_finish,
      clear_fd_marks_cleared_never_cleans_up, free_skips_marked_cleared_entry,
      reset_only_for_own_ctx, start_does_not_reset, freed_ctx_detached_from_paused_job,
      callback_never_called_by_library, sync_removes_before_it_adds,
      sync_stops_at_refusal_and_resumes, sync_forget_refuse_null)

#include "tap_main.h"
