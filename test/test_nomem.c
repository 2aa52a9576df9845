/*
 * test_nomem.c: the API's allocation-failure paths. Linked statically against the
 * library's internal objects only for the alloc_fail_after() hook: it makes every single
 * allocation of a scenario fail in turn, and each failure must be reported as the spec
 * says (NULL / 0 / ASYNC_NO_JOBS with a specific error code) and leak nothing.
 */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_nomem,
                   "it counts stack mappings in /proc/self/maps")
#else

#include <asyncjob.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/alloc.h"
#include "check_suite.h"
#include "sanitizers.h"

/* The library's live heap blocks, through -Wl,--wrap for malloc, calloc and free (glibc's
 * tcache makes mallinfo() count freed chunks). Blocks are known by address, so that frees
 * of the C library's own blocks do not count. Tests run single-threaded. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void __wrap_free(void *p);

#define TRACK 4096
static void *tracked[TRACK];
static long live_blocks;

static void track(void *p)
{
    if (p == NULL)
        return;
    for (size_t i = ((uintptr_t)p >> 4) % TRACK, k = 0; k < TRACK; k++, i = (i + 1) % TRACK)
        if (tracked[i] == NULL) {
            tracked[i] = p;
            live_blocks++;
            return;
        }
    abort(); /* the table is far larger than any test needs */
}

static void untrack(void *p)
{
    if (p == NULL)
        return;
    /* Linear probing without tombstones would break chains: scan the whole table. */
    for (size_t i = 0; i < TRACK; i++)
        if (tracked[i] == p) {
            tracked[i] = NULL;
            live_blocks--;
            return;
        }
}

void *__wrap_malloc(size_t size)
{
    void *p = __real_malloc(size);
    track(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = __real_calloc(n, size);
    track(p);
    return p;
}

void __wrap_free(void *p)
{
    untrack(p);
    __real_free(p);
}

static long heap_in_use(void)
{
    return live_blocks;
}

/* Lines of /proc/self/maps: the stack mappings must come back too. ThreadSanitizer maps
 * shadow memory for every new mapping and keeps it, so there only the heap is compared. */
#define MAPS_COMPARABLE (!TEST_TSAN)

static long map_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

START_TEST(wait_ctx_new_nomem)
{
    long heap0 = heap_in_use();
    alloc_fail_after(1);
    ck_assert_ptr_null(ASYNC_WAIT_CTX_new());
    expect_error(ASYNCJOB_ENOMEM);
    ck_assert_int_eq(heap_in_use(), heap0);
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ASYNC_WAIT_CTX_free(ctx);
}
END_TEST

static int cleanups;

static void count_cleanup(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd, void *d)
{
    (void)ctx;
    (void)key;
    (void)fd;
    (void)d;
    cleanups++;
}

START_TEST(set_wait_fd_nomem)
{
    static const char k1 = 0, k2 = 0;
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_wait_fd(ctx, &k1, 3, NULL, count_cleanup), 1);
    long heap0 = heap_in_use();
    alloc_fail_after(1);
    ck_assert_int_eq(ASYNC_WAIT_CTX_set_wait_fd(ctx, &k2, 4, NULL, count_cleanup), 0);
    expect_error(ASYNCJOB_ENOMEM);
    ck_assert_int_eq(heap_in_use(), heap0);
    /* The ctx is unchanged: one entry, one change. */
    size_t n = 0, na = 0, nd = 0;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_all_fds(ctx, NULL, &n), 1);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_changed_fds(ctx, NULL, &na, NULL, &nd), 1);
    ck_assert_uint_eq(na, 1);
    OSSL_ASYNC_FD fd = -1;
    void *data;
    ck_assert_int_eq(ASYNC_WAIT_CTX_get_fd(ctx, &k2, &fd, &data), 0);
    ASYNC_WAIT_CTX_free(ctx);
    ck_assert_int_eq(cleanups, 1);
}
END_TEST

static int pause_once(void *arg)
{
    ASYNC_pause_job();
    return arg == NULL ? 1 : ((unsigned char *)arg)[0];
}

/* Every allocation a first start makes (job, stack, argument copy) fails in turn. */
START_TEST(start_job_nomem_sweep)
{
    static unsigned char big[10 * 1024];
    memset(big, 0x5a, sizeof(big));
    int failures = 0;
    /* A first start and cleanup, for the same reason as in init_thread_nomem_stops. */
    ASYNC_JOB *warm = NULL;
    expect_start(ASYNC_PAUSE, &warm, NULL, NULL, pause_once, big, sizeof(big));
    expect_resume(ASYNC_FINISH, &warm, NULL);
    for (long n = 1; n < 20; n++) {
        ASYNC_cleanup_thread();
        long heap0 = heap_in_use();
        long maps0 = map_lines();
        alloc_fail_after(n);
        ASYNC_JOB *job = NULL;
        int ret = -1;
        int r = ASYNC_start_job(&job, NULL, &ret, pause_once, big, sizeof(big));
        long attempts = alloc_count();
        alloc_fail_after(0);
        if (r == ASYNC_PAUSE) {
            /* n is past the last allocation: every failure point has been tried. */
            ck_assert_int_lt(attempts, n);
            expect_resume(ASYNC_FINISH, &job, &ret);
            ck_assert_int_eq(ret, 0x5a);
            break;
        }
        failures++;
        ck_assert_int_eq(r, ASYNC_NO_JOBS);
        ck_assert_ptr_null(job);
        ck_assert_int_eq(ret, -1);
        int e = asyncjob_last_error();
        ck_assert_msg(e == ASYNCJOB_ENOMEM || e == ASYNCJOB_ESTACK,
                      "allocation %ld failed with error %d", n, e);
        /* Nothing leaked once the (possibly half-made) pool is gone. */
        ASYNC_cleanup_thread();
        ck_assert_int_eq(heap_in_use(), heap0);
        if (MAPS_COMPARABLE)
            ck_assert_int_eq(map_lines(), maps0);
        /* And the thread recovers at once. */
        expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_once, big, sizeof(big));
        expect_resume(ASYNC_FINISH, &job, &ret);
    }
    /* At least the job, its stack and the big argument copy. */
    ck_assert_int_ge(failures, 3);
}
END_TEST

START_TEST(init_thread_nomem_stops)
{
    /* One full round first, so that whatever the C library (or a sanitizer's allocator)
     * maps on first use is there before counting. */
    ck_assert_int_eq(ASYNC_init_thread(0, 3), 1);
    ASYNC_cleanup_thread();
    for (long n = 1; n <= 6; n++) {
        long heap0 = heap_in_use();
        long maps0 = map_lines();
        alloc_fail_after(n);
        ck_assert_int_eq(ASYNC_init_thread(0, 3), 1);
        alloc_fail_after(0);
        ASYNC_cleanup_thread();
        ck_assert_int_eq(heap_in_use(), heap0);
        if (MAPS_COMPARABLE)
            ck_assert_int_eq(map_lines(), maps0);
    }
}
END_TEST

SUITE("nomem", 60, NULL, wait_ctx_new_nomem, set_wait_fd_nomem, start_job_nomem_sweep,
      init_thread_nomem_stops)

#endif /* _WIN32 */
#include "tap_main.h"
