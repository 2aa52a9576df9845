/*
 * test_guard_limits.c: guards when mappings run out (asyncjob_set_guard_size(3)). With
 * mprotect guards forced (as on Linux before 6.13), past the budget or at the real
 * vm.max_map_count, jobs keep starting on counted unguarded stacks, or are refused with
 * ASYNCJOB_ENOGUARD under strict guards; a stack the kernel will not unmap (ENOMEM at the
 * limit) is kept and unmapped later. Absurd sizes fail cleanly. Each case runs in a child,
 * since guard settings are process-wide; the child's exit status says what went wrong.
 */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_guard_limits,
                   "it runs each case in a fork()ed child and counts mmap/mprotect mappings (Windows stacks are VirtualAlloc reservations)")
#else
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../lib/alloc.h"
#include "../lib/pool.h"
#include "../lib/stack.h"
#include "check_suite.h"
#include "child.h"
#include "job_bodies.h"
#include "sanitizers.h"
#include "tap_skip.h"

#define NJOBS 600

/* A body's exit status when this system cannot set up what it tests (its stderr says why). */
#define CHILD_SKIP 77

/* Run `body` in a child; its exit status must be 0 (nonzero: the step that failed, with
 * the child's stderr in the log; CHILD_SKIP: a skip, its stderr the reason). */
static void run_in_child(int (*body)(void))
{
    int fd;
    pid_t pid = fork_piped(1, &fd);
    if (pid == 0)
        _exit(body());
    char out[4096];
    out[read_to_end(fd, out, sizeof(out) - 1)] = '\0';
    int status = wait_child(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP)
        tap_skip("%s", out);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "--- child output ---\n%s--- end ---\n", out);
    ck_assert_msg(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
    ck_assert_msg(WEXITSTATUS(status) == 0, "the child failed at step %d",
                  WEXITSTATUS(status));
}

/* Lines of /proc/self/maps. */
static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    long n = 0;
    int c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static ASYNC_JOB *jobs[NJOBS];

/* Start n paused jobs; 0 if all paused. */
static int start_many(int n)
{
    for (int i = 0; i < n; i++)
        if (ASYNC_start_job(&jobs[i], NULL, NULL, pause_once, NULL, 0) != ASYNC_PAUSE) {
            dprintf(2, "job %d: %s\n", i, asyncjob_strerror(asyncjob_last_error()));
            return -1;
        }
    return 0;
}

static int finish_all(int n)
{
    for (int i = 0; i < n; i++)
        if (jobs[i] != NULL && ASYNC_start_job(&jobs[i], NULL, NULL, NULL, NULL, 0) != ASYNC_FINISH)
            return -1;
    return 0;
}

/* Pretend vm.max_map_count is 512: 224 mprotect guards (7/8 of it, two mappings each),
 * then unguarded stacks, counted, which cost next to no mappings. */
static int budget_body(void)
{
    if (!stack_set_guard_mode(STACK_GUARD_MPROTECT))
        return 1;
    stack_set_map_limit(512);
    long maps0 = count_maps();
    if (ASYNC_init_thread(0, 0) != 1 || start_many(NJOBS) != 0)
        return 2;
    size_t unguarded = asyncjob_unguarded_stacks();
    long added = count_maps() - maps0;
    dprintf(2, "unguarded %zu, mappings added %ld\n", unguarded, added);
    if (unguarded != NJOBS - 224)
        return 3;
    if (!stack_guard_contains(&jobs[0]->fiber.stack, (char *)jobs[0]->fiber.stack.lo - 1) ||
        stack_guard_contains(&jobs[NJOBS - 1]->fiber.stack,
                             (char *)jobs[NJOBS - 1]->fiber.stack.lo - 1))
        return 4;
    /* 448 for the guards, one per slab of 16, the heap's growth (not under a tool: TSan
     * added 3,002 mappings of its own shadow for these stacks). */
    if (!TEST_SANITIZED && !RUNNING_ON_VALGRIND && added > 2 * 224 + NJOBS / 16 + 16)
        return 5;
    if (finish_all(NJOBS) != 0)
        return 6;
    ASYNC_cleanup_thread();
    return asyncjob_unguarded_stacks() == 0 ? 0 : 7;
}

START_TEST(mprotect_budget_then_unguarded)
{
    run_in_child(budget_body);
}
END_TEST

/* Strict guards ignore the budget: every stack guarded. */
static int strict_budget_body(void)
{
    if (!stack_set_guard_mode(STACK_GUARD_MPROTECT))
        return 1;
    stack_set_map_limit(512);
    if (asyncjob_set_strict_guards(1) != 0 || asyncjob_set_strict_guards(1) != 1)
        return 2;
    if (ASYNC_init_thread(0, 0) != 1 || start_many(NJOBS) != 0)
        return 3;
    if (asyncjob_unguarded_stacks() != 0)
        return 4;
    return finish_all(NJOBS) == 0 ? 0 : 5;
}

START_TEST(strict_guards_ignore_budget)
{
    run_in_child(strict_budget_body);
}
END_TEST

/* Fill the process's map count: alternate protections in a large reservation until the
 * kernel refuses a split. *len gets its length; NULL if that did not happen. */
static void *exhaust_maps(size_t *len)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long limit = 0;
    if (f == NULL || fscanf(f, "%ld", &limit) != 1)
        limit = 0;
    if (f != NULL)
        fclose(f);
    if (limit <= 0 || limit > 1 << 22)
        return NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (size_t)limit + 64;
    char *m = mmap(NULL, n * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    for (size_t i = 1; i < n; i += 2)
        if (mprotect(m + i * page, page, PROT_NONE) != 0) {
            if (errno != ENOMEM)
                break;
            *len = n * page;
            return m;
        }
    munmap(m, n * page);
    return NULL;
}

/* Where the tools need mappings of their own the test cannot run: they would die first. */
static void skip_under_tools(void)
{
    if (TEST_SANITIZED || RUNNING_ON_VALGRIND)
        tap_skip("a sanitizer or valgrind maps memory of its own, which the exhausted map "
                 "count would refuse");
}

/* At the real vm.max_map_count, with mprotect guards: new jobs start on the slab's
 * remaining stacks without guards (counted); strict guards refuse them with
 * ASYNCJOB_ENOGUARD, and accept them again once mappings are free. */
static int limit_body(void)
{
    if (!stack_set_guard_mode(STACK_GUARD_MPROTECT))
        return 1;
    if (ASYNC_init_thread(0, 0) != 1 || start_many(1) != 0)
        return 2; /* the thread's slab now has 15 stacks left */
    size_t len;
    void *fill = exhaust_maps(&len);
    if (fill == NULL)
        return 3;
    ASYNC_JOB *strict = NULL;
    asyncjob_set_strict_guards(1);
    int r = ASYNC_start_job(&strict, NULL, NULL, pause_once, NULL, 0);
    int err = asyncjob_last_error();
    asyncjob_set_strict_guards(0);
    if (r != ASYNC_NO_JOBS || err != ASYNCJOB_ENOGUARD || strict != NULL) {
        munmap(fill, len);
        dprintf(2, "strict start: %d, %s\n", r, asyncjob_strerror(err));
        return 4;
    }
    for (int i = 1; i <= 10; i++)
        if (ASYNC_start_job(&jobs[i], NULL, NULL, pause_once, NULL, 0) != ASYNC_PAUSE) {
            int why = asyncjob_last_error();
            munmap(fill, len);
#ifndef __GLIBC__
            /* glibc's malloc grows its heap in place; musl's maps memory for new blocks,
             * so at the map limit the job's own structure cannot be allocated. */
            if (why == ASYNCJOB_ENOMEM) {
                dprintf(2, "job %d: %s (this C library's malloc maps memory, which the map "
                        "limit refuses)", i, asyncjob_strerror(why));
                return CHILD_SKIP;
            }
#endif
            dprintf(2, "job %d: %s\n", i, asyncjob_strerror(why));
            return 5;
        }
    size_t unguarded = asyncjob_unguarded_stacks();
    munmap(fill, len);
    if (unguarded != 10)
        return 6;
    asyncjob_set_strict_guards(1);
    if (ASYNC_start_job(&jobs[11], NULL, NULL, pause_once, NULL, 0) != ASYNC_PAUSE)
        return 7;
    if (!stack_guard_contains(&jobs[11]->fiber.stack, (char *)jobs[11]->fiber.stack.lo - 1))
        return 8;
    if (finish_all(12) != 0)
        return 9;
    ASYNC_cleanup_thread();
    return asyncjob_unguarded_stacks() == 0 ? 0 : 10;
}

START_TEST(jobs_start_past_max_map_count)
{
    skip_under_tools();
    run_in_child(limit_body);
}
END_TEST

static int mapped(const void *p)
{
    unsigned char v;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return mincore((void *)((uintptr_t)p & ~(uintptr_t)(page - 1)), page, &v) == 0;
}

/* A stack freed from the middle of a mapping at the map limit: munmap fails with ENOMEM.
 * The stack is kept: the next job gets it back, and once mappings are free it is
 * unmapped (before, it stayed mapped for good). Unguarded stacks (a budget of 0) make
 * the slab one mapping, so the free must split it. */
static int munmap_body(void)
{
    if (!stack_set_guard_mode(STACK_GUARD_MPROTECT))
        return 1;
    stack_set_map_limit(1);
    if (ASYNC_init_thread(0, 0) != 1 || start_many(3) != 0)
        return 2;
    void *middle = jobs[1]->fiber.stack.lo;
    if (ASYNC_start_job(&jobs[1], NULL, NULL, NULL, NULL, 0) != ASYNC_FINISH)
        return 3; /* idle in the pool now */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *probe = mmap(NULL, 3 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED)
        return 4;
    size_t len;
    void *fill = exhaust_maps(&len);
    if (fill == NULL)
        return 4;
    /* Splitting a mapping must fail now; an emulator that keeps its own map of the guest's
     * memory (qemu-user for a 32-bit guest) splits it anyway. */
    if (munmap(probe + page, page) == 0) {
        munmap(fill, len);
        dprintf(2, "munmap splits a mapping at the map limit here (an emulator?)");
        return CHILD_SKIP;
    }
    long freed = (long)asyncjob_trim_thread(0);
    int still = mapped(middle);
    /* The kept stack serves the next job, at the limit still. */
    int r = ASYNC_start_job(&jobs[1], NULL, NULL, pause_once, NULL, 0);
    void *again = r == ASYNC_PAUSE ? jobs[1]->fiber.stack.lo : NULL;
    if (r == ASYNC_PAUSE && ASYNC_start_job(&jobs[1], NULL, NULL, NULL, NULL, 0) != ASYNC_FINISH)
        r = -1;
    freed += (long)asyncjob_trim_thread(0);
    munmap(fill, len);
    dprintf(2, "freed %ld, mapped after the failed free %d, reused %d\n", freed, still,
            again == middle);
    if (freed != 2 || !still || r != ASYNC_PAUSE || again != middle)
        return 5;
    /* Mappings are free again: the next unmapping takes the kept stack along. */
    if (finish_all(3) != 0)
        return 6;
    ASYNC_cleanup_thread();
    if (mapped(middle))
        return 7;
    return asyncjob_unguarded_stacks() == 0 ? 0 : 8;
}

START_TEST(failed_munmap_keeps_stack)
{
    skip_under_tools();
    run_in_child(munmap_body);
}
END_TEST

/* Absurd sizes fail with an error before any allocation (a sanitizer would abort on an
 * allocation-size-too-big): the start arguments' copy, the public default allocator, the
 * stack and guard sizes. */
START_TEST(absurd_sizes_refused)
{
    /* ALLOC_MAX + 1: the smallest refused (1 GiB + 1 on 32-bit targets, where a quarter of
     * the address space could be allocated and the copy would read past `arg`). */
    static const size_t sizes[] = { SIZE_MAX, SIZE_MAX / 2, ALLOC_MAX + 1 };
    int arg = 5;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        ASYNC_JOB *job = NULL;
        int ret = 0;
        expect_start(ASYNC_NO_JOBS, &job, NULL, &ret, return_arg, &arg, sizes[i]);
        expect_error(ASYNCJOB_ENOMEM);
        ck_assert_ptr_null(job);
        ASYNC_stack_alloc_fn a;
        ASYNC_get_mem_functions(&a, NULL);
        size_t num = sizes[i];
        ck_assert_ptr_null(a(&num));
        ck_assert_int_eq(asyncjob_set_stack_size(sizes[i]), 0);
        expect_error(ASYNCJOB_ESTACKSIZE);
        ck_assert_int_eq(asyncjob_set_guard_size(sizes[i]), 0);
        expect_error(ASYNCJOB_EGUARDSIZE);
    }
    ck_assert_int_eq(asyncjob_set_guard_size(0), 0);
    expect_error(ASYNCJOB_EGUARDSIZE);
    /* The library still works. */
    ASYNC_JOB *job = NULL;
    int ret = 0;
    expect_start(ASYNC_FINISH, &job, NULL, &ret, return_arg, &arg, sizeof(arg));
    ck_assert_int_eq(ret, 5);
}
END_TEST

/* The guard width: 64 KiB by default, set in pages, used by the stacks made after. */
static int guard_size_body(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t want = page > 65536 ? page : 65536;
    if (asyncjob_get_guard_size() != want)
        return 1;
    if (asyncjob_set_guard_size(200 * 1024 + 1) != 1)
        return 2;
    size_t wide = (200 * 1024 + 1 + page - 1) / page * page;
    if (asyncjob_get_guard_size() != wide)
        return 3;
    ASYNC_JOB *job = NULL;
    if (ASYNC_init_thread(0, 0) != 1 ||
        ASYNC_start_job(&job, NULL, NULL, pause_once, NULL, 0) != ASYNC_PAUSE)
        return 4;
    const struct stack *s = &job->fiber.stack;
    const char *lo = s->lo;
    if (s->guard != wide || !stack_guard_contains(s, lo - 1) ||
        !stack_guard_contains(s, lo - wide) || stack_guard_contains(s, lo - wide - 1) ||
        stack_guard_contains(s, lo))
        return 5;
    if (ASYNC_start_job(&job, NULL, NULL, NULL, NULL, 0) != ASYNC_FINISH)
        return 6;
    ASYNC_cleanup_thread();
    return 0;
}

START_TEST(guard_size_set_and_used)
{
    run_in_child(guard_size_body);
}
END_TEST

SUITE("guard_limits", 300, NULL, mprotect_budget_then_unguarded, strict_guards_ignore_budget,
      jobs_start_past_max_map_count, failed_munmap_keeps_stack, absurd_sizes_refused,
      guard_size_set_and_used)

#endif /* _WIN32 */
#include "tap_main.h"
