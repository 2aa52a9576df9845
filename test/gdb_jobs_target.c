/*
 * gdb_jobs_target.c: a program for test/gdb_jobs.sh. When it calls gdb_jobs_stop(),
 * inside a running job, the process holds: on the main thread, two jobs paused in
 * different call chains (alpha, beta), the running one, and two idle pooled jobs; on a
 * second thread, one job paused in its own chain (gamma) and one idle job. Then every
 * job is finished and the program exits 0. With the argument "crash" it aborts there
 * instead, for a core file written by the kernel. With "heap-stacks" the job stacks come
 * from malloc: gdb's gcore cannot read mappings that hold guard regions
 * (MADV_GUARD_INSTALL), so it leaves the library's default stacks out of its core files.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asyncjob.h>

/* Where the debugger stops; called from inside the running job. */
void gdb_jobs_stop(void);

#define KEEP_CALL() __asm__ volatile("" ::: "memory") /* no tail call: each frame stays */

static int crash;

__attribute__((noinline)) void gdb_jobs_stop(void)
{
    if (crash)
        abort();
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

__attribute__((noinline)) static int beta_middle(int x)
{
    int r = beta_inner(x + 1);
    KEEP_CALL();
    return r;
}

__attribute__((noinline)) static int beta_outer(void *arg)
{
    int r = beta_middle(2);
    KEEP_CALL();
    return r;
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

static int finish(ASYNC_JOB **job, int want)
{
    int ret = 0;
    return ASYNC_start_job(job, NULL, &ret, NULL, NULL, 0) == ASYNC_FINISH && ret == want;
}

int main(int argc, char **argv)
{
    ASYNC_JOB *a = NULL, *b = NULL, *c = NULL;
    int ret = 0, ok = 1;
    pthread_t t;
    crash = argc > 1 && strcmp(argv[1], "crash") == 0;
    if (argc > 1 && strcmp(argv[1], "heap-stacks") == 0 && !ASYNC_set_mem_functions(heap_stack, free))
        return 1;
    pthread_barrier_init(&paused, NULL, 2);
    pthread_barrier_init(&inspected, NULL, 2);
    if (!ASYNC_init_thread(0, 5) || pthread_create(&t, NULL, second_thread, &ok) != 0)
        return 1;
    pthread_barrier_wait(&paused);
    ok = ASYNC_start_job(&a, NULL, &ret, alpha_outer, NULL, 0) == ASYNC_PAUSE &&
         ASYNC_start_job(&b, NULL, &ret, beta_outer, NULL, 0) == ASYNC_PAUSE &&
         ASYNC_start_job(&c, NULL, &ret, running_job, NULL, 0) == ASYNC_FINISH && ret == 3;
    pthread_barrier_wait(&inspected);
    void *joined = NULL;
    ok = ok && finish(&a, 2) && finish(&b, 6) && pthread_join(t, &joined) == 0 && joined;
    ASYNC_cleanup_thread();
    puts(ok ? "ok" : "failed");
    return ok ? 0 : 1;
}
