/*
 * gdb_jobs_target.c: a program for test/gdb_jobs.sh. When it calls gdb_jobs_stop(),
 * inside a running job, the process holds: on the main thread, three jobs paused in
 * different call chains (alpha, beta, regs), the running one, and one idle pooled job; on
 * a second thread, one job paused in its own chain (gamma) and one idle job. Then every
 * job is finished and the program exits 0. Arguments: "crash" traps there instead, for a
 * core file written by the kernel; "heap-stacks" takes the job stacks from malloc;
 * "mprotect" (only when linked with the core library, GDB_JOBS_CORE) guards the default
 * stacks with mprotect, as on kernels without MADV_GUARD_INSTALL.
 *
 * beta_middle keeps beta_mark (207) on its stack, and the regs job pauses from
 * regs_pause(), which holds known values in every callee-saved register (REGS_* below,
 * x86-64 only) across ASYNC_pause_job: a debugger that reads the switch's save area
 * wrong shows other values there.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncjob.h>

#include "sanitizers.h"

/* ASan moves a function's locals to its fake stack, where gdb cannot follow them from the
 * job's frame: the function whose local the tests print keeps its frame on the job's stack. */
#if TEST_ASAN
# define LOCALS_ON_STACK __attribute__((no_sanitize_address))
#else
# define LOCALS_ON_STACK
#endif

/* Where the debugger stops; called from inside the running job. */
void gdb_jobs_stop(void);

#define KEEP_CALL() __asm__ volatile("" ::: "memory") /* no tail call: each frame stays */

static int crash;

#ifdef GDB_JOBS_CORE
int stack_set_guard_mode(int mode); /* lib/stack.h: STACK_GUARD_MPROTECT is 2 */
#endif

/* 1 if every callee-saved register still held its value when ASYNC_pause_job returned. */
int regs_pause(void);
#if defined(__x86_64__) && defined(__ELF__)
/* rbx, rbp, r12 to r15: 0x1111111111111111 to 0x6666666666666666 (test/gdb_jobs.sh). */
__asm__(".text\n"
        ".globl regs_pause\n"
        ".type regs_pause, @function\n"
        "regs_pause:\n"
        "  .cfi_startproc\n"
        "  push %rbp\n  .cfi_adjust_cfa_offset 8\n  .cfi_rel_offset %rbp, 0\n"
        "  push %rbx\n  .cfi_adjust_cfa_offset 8\n  .cfi_rel_offset %rbx, 0\n"
        "  push %r12\n  .cfi_adjust_cfa_offset 8\n  .cfi_rel_offset %r12, 0\n"
        "  push %r13\n  .cfi_adjust_cfa_offset 8\n  .cfi_rel_offset %r13, 0\n"
        "  push %r14\n  .cfi_adjust_cfa_offset 8\n  .cfi_rel_offset %r14, 0\n"
        "  push %r15\n  .cfi_adjust_cfa_offset 8\n  .cfi_rel_offset %r15, 0\n"
        "  sub $8, %rsp\n  .cfi_adjust_cfa_offset 8\n"
        "  movabs $0x1111111111111111, %rbx\n"
        "  movabs $0x2222222222222222, %rbp\n"
        "  movabs $0x3333333333333333, %r12\n"
        "  movabs $0x4444444444444444, %r13\n"
        "  movabs $0x5555555555555555, %r14\n"
        "  movabs $0x6666666666666666, %r15\n"
        "  call ASYNC_pause_job@PLT\n"
        "  xor %eax, %eax\n"
        "  movabs $0x1111111111111111, %rcx\n  cmp %rcx, %rbx\n  jne 1f\n"
        "  movabs $0x2222222222222222, %rcx\n  cmp %rcx, %rbp\n  jne 1f\n"
        "  movabs $0x3333333333333333, %rcx\n  cmp %rcx, %r12\n  jne 1f\n"
        "  movabs $0x4444444444444444, %rcx\n  cmp %rcx, %r13\n  jne 1f\n"
        "  movabs $0x5555555555555555, %rcx\n  cmp %rcx, %r14\n  jne 1f\n"
        "  movabs $0x6666666666666666, %rcx\n  cmp %rcx, %r15\n  jne 1f\n"
        "  mov $1, %eax\n"
        "1:\n"
        "  add $8, %rsp\n  .cfi_adjust_cfa_offset -8\n"
        "  pop %r15\n  .cfi_adjust_cfa_offset -8\n  .cfi_restore %r15\n"
        "  pop %r14\n  .cfi_adjust_cfa_offset -8\n  .cfi_restore %r14\n"
        "  pop %r13\n  .cfi_adjust_cfa_offset -8\n  .cfi_restore %r13\n"
        "  pop %r12\n  .cfi_adjust_cfa_offset -8\n  .cfi_restore %r12\n"
        "  pop %rbx\n  .cfi_adjust_cfa_offset -8\n  .cfi_restore %rbx\n"
        "  pop %rbp\n  .cfi_adjust_cfa_offset -8\n  .cfi_restore %rbp\n"
        "  ret\n"
        "  .cfi_endproc\n"
        ".size regs_pause, .-regs_pause\n");
#else
__attribute__((noinline)) int regs_pause(void)
{
    ASYNC_pause_job();
    KEEP_CALL();
    return 1;
}
#endif

__attribute__((noinline)) void gdb_jobs_stop(void)
{
    if (crash)
        __builtin_trap(); /* here, not in the C library: musl's abort() has no unwind
                           * information, so gdb could not get back to running_job */
    KEEP_CALL();
}

__attribute__((noinline)) static int alpha_inner(int x)
{
    ASYNC_pause_job();
    KEEP_CALL();
    return x + 1;
}

__attribute__((noinline)) static int alpha_outer(void *arg)
{
    int r = alpha_inner(1);
    KEEP_CALL();
    return r;
}

__attribute__((noinline)) static int beta_inner(int x)
{
    ASYNC_pause_job();
    KEEP_CALL();
    return x * 2;
}

__attribute__((noinline)) LOCALS_ON_STACK static int beta_middle(int x)
{
    volatile int beta_mark = x * 100 + 7;
    int r = beta_inner(x + 1) + beta_mark - beta_mark;
    KEEP_CALL();
    return r;
}

__attribute__((noinline)) static int beta_outer(void *arg)
{
    int r = beta_middle(2);
    KEEP_CALL();
    return r;
}

__attribute__((noinline)) static int regs_job(void *arg)
{
    int ok = regs_pause();
    KEEP_CALL();
    return ok ? 11 : 0;
}

__attribute__((noinline)) static int gamma_leaf(void *arg)
{
    ASYNC_pause_job();
    KEEP_CALL();
    return 7;
}

__attribute__((noinline)) static int running_job(void *arg)
{
    gdb_jobs_stop();
    KEEP_CALL();
    return 3;
}

static void *heap_stack(size_t *num)
{
    return malloc(*num);
}

static pthread_barrier_t paused, inspected;

/* The second thread: a pool of two, one job paused until the main thread is inspected. */
static void *second_thread(void *arg)
{
    ASYNC_JOB *job = NULL;
    int ret = 0, ok = ASYNC_init_thread(0, 2) &&
                      ASYNC_start_job(&job, NULL, &ret, gamma_leaf, NULL, 0) == ASYNC_PAUSE;
    pthread_barrier_wait(&paused);
    pthread_barrier_wait(&inspected);
    ok = ok && ASYNC_start_job(&job, NULL, &ret, NULL, NULL, 0) == ASYNC_FINISH && ret == 7;
    ASYNC_cleanup_thread();
    return ok ? arg : NULL;
}

/* Resume `*job` to its end: whether it finished, with `want` as its result. */
static int finish_with(ASYNC_JOB **job, int want)
{
    int ret = 0;
    return ASYNC_start_job(job, NULL, &ret, NULL, NULL, 0) == ASYNC_FINISH && ret == want;
}

int main(int argc, char **argv)
{
    ASYNC_JOB *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    int ret = 0, ok = 1;
    pthread_t t;
    crash = argc > 1 && strcmp(argv[1], "crash") == 0;
    if (argc > 1 && strcmp(argv[1], "heap-stacks") == 0 && !ASYNC_set_mem_functions(heap_stack, free))
        return 1;
    if (argc > 1 && strcmp(argv[1], "mprotect") == 0) {
#ifdef GDB_JOBS_CORE
        if (!stack_set_guard_mode(2))
            return 1;
#else
        fputs("mprotect: only with the core library\n", stderr);
        return 1;
#endif
    }
    pthread_barrier_init(&paused, NULL, 2);
    pthread_barrier_init(&inspected, NULL, 2);
    if (!ASYNC_init_thread(0, 5) || pthread_create(&t, NULL, second_thread, &ok) != 0)
        return 1;
    pthread_barrier_wait(&paused);
    ok = ASYNC_start_job(&a, NULL, &ret, alpha_outer, NULL, 0) == ASYNC_PAUSE &&
         ASYNC_start_job(&b, NULL, &ret, beta_outer, NULL, 0) == ASYNC_PAUSE &&
         ASYNC_start_job(&d, NULL, &ret, regs_job, NULL, 0) == ASYNC_PAUSE &&
         ASYNC_start_job(&c, NULL, &ret, running_job, NULL, 0) == ASYNC_FINISH && ret == 3;
    pthread_barrier_wait(&inspected);
    void *joined = NULL;
    ok = ok && finish_with(&a, 2) && finish_with(&b, 6) && finish_with(&d, 11) &&
         pthread_join(t, &joined) == 0 && joined;
    ASYNC_cleanup_thread();
    puts(ok ? "ok" : "failed");
    return ok ? 0 : 1;
}
