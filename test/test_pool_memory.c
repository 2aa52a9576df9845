/*
 * test_pool_memory.c: what the pool gives back. A thread that exits without
 * ASYNC_cleanup_thread frees its stacks (counted through counting_stacks.h) and leaves
 * /proc/self/maps as it was; ASYNC_cleanup_thread unmaps the stacks made ahead.
 */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_pool_memory,
                   "it counts memory with glibc's malloc statistics and posix_memalign")
#else

#include <asyncjob.h>

#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_suite.h"
#include "counting_stacks.h"
#include "job_bodies.h"
#include "sanitizers.h"
#include "tap_skip.h"

/* A thread that uses asyncjob (idle pooled jobs and finished ones) and exits without
 * ASYNC_cleanup_thread. */
static void *use_and_exit(void *p)
{
    (void)p;
    if (ASYNC_init_thread(0, 3) != 1)
        return (void *)1;
    ASYNC_JOB *j[5] = { NULL };
    for (int i = 0; i < 5; i++)
        if (ASYNC_start_job(&j[i], NULL, NULL, pause_once, NULL, 0) != ASYNC_PAUSE)
            return (void *)1;
    for (int i = 0; i < 5; i++)
        if (ASYNC_start_job(&j[i], NULL, NULL, NULL, NULL, 0) != ASYNC_FINISH)
            return (void *)1;
    return NULL;
}

/* Thread stacks of our own, reused batch after batch, so that the C library's thread
 * stack cache cannot add or remove mappings while the maps are compared. */
#define BATCH 8
#define THREAD_STACK (2 * 1024 * 1024) /* ThreadSanitizer wants at least 900 KiB */
static void *thread_stacks[BATCH];

/* Runs `total` threads, BATCH at a time, on our own stacks if `own_stacks`, else on the
 * C library's; 0 when every thread succeeded. */
static int run_threads(int total, int own_stacks)
{
    pthread_t th[BATCH];
    pthread_attr_t attr[BATCH];
    int bad = 0;
    for (int i = 0; i < BATCH; i++) {
        pthread_attr_init(&attr[i]);
        if (!own_stacks)
            continue;
        if (thread_stacks[i] == NULL &&
            posix_memalign(&thread_stacks[i], 4096, THREAD_STACK) != 0)
            return -1;
        pthread_attr_setstack(&attr[i], thread_stacks[i], THREAD_STACK);
    }
    for (int done = 0; done < total; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            if (pthread_create(&th[i], &attr[i], use_and_exit, NULL) != 0)
                return -1;
        for (int i = 0; i < BATCH; i++) {
            void *r;
            pthread_join(th[i], &r);
            bad += r != NULL;
        }
    }
    for (int i = 0; i < BATCH; i++)
        pthread_attr_destroy(&attr[i]);
    return bad;
}

/* Lines of /proc/self/maps, and the bytes they map. `skip_rwx` leaves out rwx mappings:
 * under valgrind those are valgrind's own (translations, thread-slot stacks, more of them
 * on a loaded machine), and nothing this test maps is rwx. */
static void read_maps(int skip_rwx, long *lines, unsigned long long *bytes)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    char buf[512];
    *lines = 0;
    *bytes = 0;
    while (fgets(buf, sizeof(buf), f) != NULL) {
        unsigned long long lo, hi;
        char perms[5];
        if (sscanf(buf, "%llx-%llx %4s", &lo, &hi, perms) != 3)
            continue;
        if (skip_rwx && strncmp(perms, "rwx", 3) == 0)
            continue;
        (*lines)++;
        *bytes += hi - lo;
    }
    fclose(f);
}

START_TEST(thread_exit_frees_mappings)
{
    /* One malloc arena, so that per-thread arenas do not come and go; then a warm-up
     * round, so that everything the C library keeps for good exists before counting.
     * (glibc's knob; musl's allocator has no per-thread arenas.) */
#ifdef M_ARENA_MAX
    mallopt(M_ARENA_MAX, 1);
#endif
    /* Valgrind cannot tell a switch to a job stack from a big stack frame when the thread
     * runs on a stack it does not know (one from malloc), so there the threads get the C
     * library's stacks, and the stack cache's coming and going needs slack. */
    int under_valgrind = RUNNING_ON_VALGRIND;
    ck_assert_int_eq(run_threads(64, !under_valgrind), 0);
    long lines0, lines1;
    unsigned long long bytes0, bytes1;
    read_maps(under_valgrind, &lines0, &bytes0);
    ck_assert_int_eq(run_threads(400, !under_valgrind), 0);
    read_maps(under_valgrind, &lines1, &bytes1);
    /* Leaked, 400 threads' 5 stacks each would leave 2,000 mappings and 70 MiB. The maps
     * come back exactly, but for ASan's allocator (4 MiB), valgrind's thread slots and a
     * libc without M_ARENA_MAX (musl: 256 KiB, less than seven leaked stacks). */
#ifdef M_ARENA_MAX
    const int other_libc = 0;
#else
    const int other_libc = 1;
#endif
    const long slack_lines = under_valgrind ? 64 : TEST_ASAN ? 16 : other_libc ? 4 : 0;
    const unsigned long long slack_bytes =
        under_valgrind || other_libc ? 256u << 10 : TEST_ASAN ? 4u << 20 : 0;
    ck_assert_int_le(lines1, lines0 + slack_lines);
    ck_assert_uint_le(bytes1, bytes0 + slack_bytes);
}
END_TEST

/* asyncjob(7): what a thread's slab has not handed out is unmapped by
 * ASYNC_cleanup_thread(). So one job and a cleanup leave the maps as they were but for the
 * heap (at most 132 KiB), far below the 15 stacks made ahead (about 540 KiB). */
START_TEST(cleanup_unmaps_stacks_made_ahead)
{
    if (TEST_SANITIZED)
        tap_skip("the sanitizer maps memory of its own while the test runs");
    if (RUNNING_ON_VALGRIND)
        tap_skip("valgrind maps memory of its own while the test runs");
    long lines0, lines1;
    unsigned long long bytes0, bytes1;
    read_maps(0, &lines0, &bytes0);
    ASYNC_JOB *job = NULL;
    expect_start(ASYNC_PAUSE, &job, NULL, NULL, pause_once, NULL, 0);
    expect_start(ASYNC_FINISH, &job, NULL, NULL, pause_once, NULL, 0);
    ASYNC_cleanup_thread();
    read_maps(0, &lines1, &bytes1);
    ck_assert_uint_le(bytes1, bytes0 + (256u << 10));
}
END_TEST

START_TEST(thread_exit_frees_stacks)
{
    ck_assert_int_eq(use_counting_stacks(), 1);
    /* The main thread keeps some stacks of its own across the whole test. */
    ck_assert_int_eq(ASYNC_init_thread(0, 2), 1);
    long base = stacks();
    ck_assert_int_eq(base, 2);
    ck_assert_int_eq(run_threads(400, 0), 0);
    ck_assert_int_eq(counted.allocs, 2 + 400 * 5);
    ck_assert_int_eq(stacks(), base);
}
END_TEST

static Suite *suite(void)
{
    const TTest *tests[] = {
#if !TEST_TSAN
        /* ThreadSanitizer maps per-thread state of its own (tens of lines at random), so
         * the maps say nothing there; thread_exit_frees_stacks still checks the stacks. */
        thread_exit_frees_mappings,
#endif
        thread_exit_frees_stacks, cleanup_unmaps_stacks_made_ahead, NULL
    };
#if TEST_TSAN
    (void)thread_exit_frees_mappings;
#endif
    return suite_of("pool_memory", 300, NULL, tests);
}

#endif /* _WIN32 */
#include "tap_main.h"
