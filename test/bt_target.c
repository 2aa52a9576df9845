/*
 * bt_target.c: a program for test/gdb_backtrace.test. A job pauses once, then calls
 * bt_leaf(), where the debugger stops and prints the job's backtrace.
 */
#include <stdio.h>

#include <asyncjob.h>

int bt_leaf(int x);

__attribute__((noinline)) int bt_leaf(int x)
{
    __asm__ volatile("" ::: "memory"); /* keep the call */
    return x + 1;
}

static int job_body(void *arg)
{
    ASYNC_pause_job();
    int r = bt_leaf(41);
    __asm__ volatile("" ::: "memory"); /* no tail call: job_body stays in the backtrace */
    return r;
}

int main(void)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    if (ASYNC_start_job(&job, NULL, &ret, job_body, NULL, 0) != ASYNC_PAUSE ||
        ASYNC_start_job(&job, NULL, &ret, job_body, NULL, 0) != ASYNC_FINISH)
        return 1;
    printf("%d\n", ret);
    return ret == 42 ? 0 : 1;
}
