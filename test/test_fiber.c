/*
 * test_fiber.c: the stack and fiber layers, tested directly (linked statically against
 * the library's internal objects).
 */
#ifdef _WIN32
#include "windows_skip.h"
WINDOWS_SKIP_SUITE(test_fiber,
                   "it forks children and checks the layers with mmap, rlimits and POSIX signals")
#else

#include "config.h"

#include <check.h>
#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/alloc.h"
#include "../lib/fiber.h"
#include "../lib/stack.h"
#include "check_suite.h"
#include "child.h"
#include "guard_probe.h"
#include "sanitizers.h"
#include "tap_skip.h"

/* ---- 1,000,000 switches there and back, values intact ---- */

static void *echo_plus_one(struct fiber *f, void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    for (;;) {
        if (v == UINTPTR_MAX)
            return (void *)(uintptr_t)0xD0DE;
        v = (uintptr_t)fiber_suspend(f, (void *)(v + 1));
    }
}

START_TEST(switch_million_round_trips)
{
    struct fiber f;
    ck_assert_int_eq(fiber_create(&f, echo_plus_one), 0);
    for (uintptr_t i = 0; i < 1000000; i++) {
        uintptr_t got = (uintptr_t)fiber_resume(&f, (void *)(i * 3));
        if (got != i * 3 + 1)
            ck_abort_msg("round trip %lu: sent %lu, got %lu", (unsigned long)i,
                         (unsigned long)(i * 3), (unsigned long)got);
    }
    ck_assert(!fiber_finished(&f));
    ck_assert_ptr_eq(fiber_resume(&f, (void *)UINTPTR_MAX), (void *)(uintptr_t)0xD0DE);
    ck_assert(fiber_finished(&f));
    fiber_destroy(&f);
}
END_TEST

/* ---- the balanced switches interoperate with the plain ones, every pairing ---- */

static void *echo_mixed(struct fiber *f, void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    for (uintptr_t k = 0;; k++) {
        if (v == UINTPTR_MAX)
            return (void *)(uintptr_t)0xBA1;
        /* Bit 1 here and bit 0 on the caller's side: all four pairings, over and over. */
        fiber_post(f, (void *)(v ^ k));
        struct fiber *back = (k & 2) ? fiber_leave_balanced(f) : fiber_leave(f);
        ck_assert_ptr_eq(back, f);
        v = (uintptr_t)fiber_message(back);
    }
}

START_TEST(switch_balanced_and_plain_interoperate)
{
    struct fiber f;
    ck_assert_int_eq(fiber_create(&f, echo_mixed), 0);
    for (uintptr_t i = 0; i < 100000; i++) {
        uintptr_t sent = i * 7 + 1;
        fiber_post(&f, (void *)sent);
        struct fiber *back = (i & 1) ? fiber_enter_balanced(&f) : fiber_enter(&f);
        ck_assert_ptr_eq(back, &f);
        uintptr_t got = (uintptr_t)fiber_message(back);
        if (got != (sent ^ i))
            ck_abort_msg("switch %lu: sent %lu, got %lu", (unsigned long)i,
                         (unsigned long)sent, (unsigned long)got);
    }
    fiber_post(&f, (void *)UINTPTR_MAX);
    ck_assert_ptr_eq(fiber_enter_balanced(&f), &f);
    ck_assert(fiber_finished(&f));
    ck_assert_ptr_eq(fiber_message(&f), (void *)(uintptr_t)0xBA1);
    fiber_destroy(&f);
}
END_TEST

/* ---- the predicted-return helpers: the right value to the right place, whether they are
 * reached by a tail jump (as in the API's hot path) or by a plain call ---- */

FIBER_RETURN_HELPER(test_return_seven, 7);
FIBER_RETURN_HELPER_ARG(test_return_arg);

/* Each helper in tail position, so that it returns for this function (at -O1 and up);
 * the switch before it is what the API's pause does. */
static __attribute__((noinline)) int leave_then_return(struct fiber *f, int v)
{
    fiber_post(f, (void *)(uintptr_t)v);
    fiber_leave(f);
    if (v % 3 == 0)
        return test_return_seven();
    return test_return_arg(v * 2);
}

static void *returns_in_fiber(struct fiber *f, void *arg)
{
    for (int i = 1; i <= 3000; i++) {
        volatile int canary = i ^ 0x5a5a; /* the frame must survive the return */
        int got = leave_then_return(f, i);
        if (got != (i % 3 == 0 ? 7 : i * 2) || canary != (i ^ 0x5a5a))
            return (void *)(uintptr_t)i; /* the first bad round */
    }
    return NULL;
}

START_TEST(return_helpers_jump_and_call)
{
    /* Plain calls: the helper returns to its own caller. */
    volatile int in = 20;
    ck_assert_int_eq(test_return_seven() + 1, 8);
    ck_assert_int_eq(test_return_arg(in) + 1, 21);
    /* Tail positions after switches, 3000 times each way. */
    struct fiber f;
    ck_assert_int_eq(fiber_create(&f, returns_in_fiber), 0);
    for (uintptr_t i = 1; i <= 3000; i++)
        ck_assert_ptr_eq(fiber_resume(&f, NULL), (void *)i);
    ck_assert_ptr_eq(fiber_resume(&f, NULL), NULL);
    ck_assert(fiber_finished(&f));
    fiber_destroy(&f);
}
END_TEST

/* ---- 10,000 fibers alive at once, each keeping its own locals ---- */

#if TEST_TSAN
/* ThreadSanitizer gives every fiber a thread slot of its own and dies beyond 8128 of
 * them: keep well below that limit there, and the full count everywhere else. */
# define MANY 4000
#else
# define MANY 10000
#endif
#define ROUNDS 5

static void *count_locally(struct fiber *f, void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    volatile uintptr_t local[8];
    for (int k = 0; k < 8; k++)
        local[k] = id * 8 + (uintptr_t)k;
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < 8; k++)
            if (local[k] != id * 8 + (uintptr_t)k + (uintptr_t)r)
                return (void *)0;
        for (int k = 0; k < 8; k++)
            local[k]++;
        fiber_suspend(f, (void *)(id + 1));
    }
    return (void *)(id + 1000000);
}

START_TEST(switch_ten_thousand_interleaved)
{
    struct fiber *fs = calloc(MANY, sizeof(*fs));
    ck_assert_ptr_nonnull(fs);
    for (uintptr_t i = 0; i < MANY; i++)
        ck_assert_int_eq(fiber_create(&fs[i], count_locally), 0);
    /* First entry hands each fiber its id; then resume them round-robin, in reverse
     * order every other round, so neighbours never run back to back in one order. */
    for (uintptr_t i = 0; i < MANY; i++)
        ck_assert_ptr_eq(fiber_resume(&fs[i], (void *)i), (void *)(i + 1));
    for (int r = 1; r <= ROUNDS; r++) {
        for (uintptr_t n = 0; n < MANY; n++) {
            uintptr_t i = (r % 2) ? MANY - 1 - n : n;
            void *want = r == ROUNDS ? (void *)(i + 1000000) : (void *)(i + 1);
            void *got = fiber_resume(&fs[i], NULL);
            if (got != want)
                ck_abort_msg("fiber %lu round %d: got %p", (unsigned long)i, r, got);
        }
    }
    for (uintptr_t i = 0; i < MANY; i++) {
        ck_assert(fiber_finished(&fs[i]));
        fiber_destroy(&fs[i]);
    }
    free(fs);
}
END_TEST

/* ---- floating-point control state stays with each fiber ---- */

static void *keep_rounding(struct fiber *f, void *arg)
{
    int mode = (int)(intptr_t)arg;
    fesetround(mode);
    for (int i = 0; i < 100; i++) {
        if (fegetround() != mode)
            return (void *)0;
        fiber_suspend(f, (void *)1);
    }
    return (void *)2;
}

START_TEST(switch_keeps_fp_rounding_per_fiber)
{
#if !defined(__x86_64__) && !defined(__i386__) && !defined(__s390x__)
    /* Boost's fcontext saves the FP control register on x86 (MXCSR, x87) and s390x (FPC)
     * only: elsewhere the rounding mode belongs to the thread, not to the job.
     * asyncjob(7) says so. */
    tap_skip("fcontext on this architecture does not switch the FP control register");
#endif
    static const int modes[] = { FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO };
    struct fiber fs[3];
    fesetround(FE_TONEAREST);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fiber_create(&fs[i], keep_rounding), 0);
        ck_assert_ptr_eq(fiber_resume(&fs[i], (void *)(intptr_t)modes[i]), (void *)1);
        ck_assert_int_eq(fegetround(), FE_TONEAREST);
    }
    for (int r = 1; r <= 100; r++) {
        for (int i = 0; i < 3; i++) {
            void *want = r == 100 ? (void *)2 : (void *)1;
            ck_assert_ptr_eq(fiber_resume(&fs[i], NULL), want);
            ck_assert_int_eq(fegetround(), FE_TONEAREST);
        }
    }
    for (int i = 0; i < 3; i++)
        fiber_destroy(&fs[i]);
}
END_TEST

/* ---- a write just below the stack faults at the guard page ---- */

static void *write_below_stack(struct fiber *f, void *arg)
{
    volatile char *below = (volatile char *)f->stack.lo - 1;
    *below = 1; /* must fault */
    return (void *)1;
}

/* Run a fiber that writes below its stack in a child process; return its wait status. */
static int guard_child_status(enum stack_guard mode)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Sanitizers catch SIGSEGV to print a report and exit(1); restore the default
         * action so that the fault itself is what kills the child, under every tool. */
        signal(SIGSEGV, SIG_DFL);
        if (mode != STACK_GUARD_AUTO && !stack_set_guard_mode(mode))
            _exit(77);
        struct fiber f;
        if (fiber_create(&f, write_below_stack) != 0)
            _exit(78);
        if (mode != STACK_GUARD_AUTO && stack_guard_mode() != mode)
            _exit(79);
        fiber_resume(&f, NULL);
        _exit(0); /* reached only if the write did not fault */
    }
    return wait_child(pid);
}

START_TEST(guard_page_mprotect_faults)
{
    int status = guard_child_status(STACK_GUARD_MPROTECT);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                  "child status %#x, wanted death by SIGSEGV", status);
}
END_TEST

START_TEST(guard_page_madvise_faults)
{
    if (!stack_set_guard_mode(STACK_GUARD_MADVISE)) {
        /* An emulator that answers 0 but installs nothing (qemu-user) cannot run this test;
         * the library saw through it and uses mprotect (guard_page_default_faults checks
         * that). A kernel that says EINVAL is older than 6.13: not skipped silently. */
        skip_if_guard_regions_faked();
        ck_abort_msg("this kernel lacks MADV_GUARD_INSTALL; cannot test guard regions");
    }
    int status = guard_child_status(STACK_GUARD_MADVISE);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                  "child status %#x, wanted death by SIGSEGV", status);
}
END_TEST

/* Whatever the kernel or emulator offers, a default stack has a guard that faults. */
START_TEST(guard_page_default_faults)
{
    int status = guard_child_status(STACK_GUARD_AUTO);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                  "child status %#x, wanted death by SIGSEGV", status);
}
END_TEST

/* ---- custom allocator: asked for 32768, may enlarge, free once per stack ---- */

static size_t asked_size;
static int alloc_calls, free_calls;
static void *last_block;
#define BIG_STACK (256 * 1024)

static void *big_alloc(size_t *num)
{
    asked_size = *num;
    alloc_calls++;
    *num = BIG_STACK;
    last_block = malloc(BIG_STACK);
    return last_block;
}

static void big_free(void *p)
{
    ck_assert_ptr_eq(p, last_block);
    free_calls++;
    free(p);
}

/* Uses ~100 KiB of stack: only fits if the fiber really got the larger stack. */
static void *use_big_stack(struct fiber *f, void *arg)
{
    volatile char buf[100 * 1024];
    memset((char *)buf, 0x5a, sizeof(buf));
    uintptr_t sum = 0;
    for (size_t i = 0; i < sizeof(buf); i += 4096)
        sum += buf[i];
    return (void *)sum;
}

START_TEST(custom_allocator_size_and_free)
{
    ck_assert_int_eq(stack_set_functions(big_alloc, big_free), 1);
    struct fiber f;
    ck_assert_int_eq(fiber_create(&f, use_big_stack), 0);
    ck_assert_uint_eq(asked_size, STACK_DEFAULT_SIZE);
    ck_assert_int_eq(alloc_calls, 1);
    ck_assert_uint_eq(fiber_stack_size(&f), BIG_STACK);
    ck_assert_ptr_eq(fiber_resume(&f, NULL), (void *)(uintptr_t)(0x5a * 25));
    ck_assert(fiber_finished(&f));
    ck_assert_int_eq(free_calls, 0);
    fiber_destroy(&f);
    ck_assert_int_eq(free_calls, 1);
    /* Locked once a stack exists. */
    ck_assert_int_eq(stack_set_functions(big_alloc, big_free), 0);
}
END_TEST

START_TEST(default_allocator_size_and_public_free)
{
    ASYNC_stack_alloc_fn a;
    ASYNC_stack_free_fn fr;
    stack_get_functions(&a, &fr);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(fr);
    size_t num = STACK_DEFAULT_SIZE;
    char *p = a(&num);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(num, STACK_DEFAULT_SIZE);
    memset(p, 1, num); /* the whole usable range is writable */
    fr(p);
}
END_TEST

/* ---- allocation failure is reported, not crashed on ---- */

static void *never_run(struct fiber *f, void *arg)
{
    return NULL;
}

/* Sanitizer runtimes and valgrind map memory of their own all the time (valgrind even to
 * exit), so an address-space limit would break them rather than the mmap under test: under
 * those tools the injection hook stands in for the failing mmap. */
static int tool_needs_address_space(void)
{
    return TEST_SANITIZED || RUNNING_ON_VALGRIND != 0;
}

START_TEST(stack_mmap_failure_reported)
{
    struct fiber f;
    if (tool_needs_address_space()) {
        alloc_fail_after(1);
        ck_assert_int_eq(fiber_create(&f, never_run), ASYNCJOB_ESTACK);
        return;
    }
    /* Leave no address space for another mapping: mmap itself fails. No Check call until
     * the limit is lifted: Check allocates at every assertion, and musl's malloc maps. */
    struct rlimit saved = { 0, 0 };
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &saved), 0);
    struct rlimit rl = saved;
    rl.rlim_cur = 1; /* below anything already mapped */
    int limited = setrlimit(RLIMIT_AS, &rl);
    /* qemu-user accepts the call but ignores RLIMIT_AS (its own mappings need room). */
    void *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int err = probe == MAP_FAILED ? fiber_create(&f, never_run) : -1;
    if (probe != MAP_FAILED)
        munmap(probe, 4096);
    int lifted = setrlimit(RLIMIT_AS, &saved); /* the soft limit may go back up */
    ck_assert_int_eq(limited, 0);
    ck_assert_int_eq(lifted, 0);
    if (probe != MAP_FAILED)
        tap_skip("RLIMIT_AS is ignored here (an emulator such as qemu-user): mmap cannot "
                 "be made to fail");
    ck_assert_int_eq(err, ASYNCJOB_ESTACK);
}
END_TEST

START_TEST(stack_injected_failure_reported)
{
    struct fiber f;
    alloc_fail_after(1);
    ck_assert_int_eq(fiber_create(&f, never_run), ASYNCJOB_ESTACK);
    /* The next attempt works normally. */
    ck_assert_int_eq(fiber_create(&f, never_run), 0);
    fiber_resume(&f, NULL);
    fiber_destroy(&f);
}
END_TEST

SUITE("fiber", 120, NULL, switch_million_round_trips, switch_balanced_and_plain_interoperate,
      return_helpers_jump_and_call, switch_ten_thousand_interleaved,
      switch_keeps_fp_rounding_per_fiber, guard_page_mprotect_faults, guard_page_madvise_faults,
      guard_page_default_faults, custom_allocator_size_and_free,
      default_allocator_size_and_public_free, stack_mmap_failure_reported,
      stack_injected_failure_reported)

#endif /* _WIN32 */
#include "tap_main.h"
