/* consumer.c: what the CMake and meson projects of .ci/installcheck.sh build against the
 * installed asyncjob, and the plain pkg-config builds there too: a job that pauses once;
 * prints asyncjob_version(), ASYNC_is_capable() and the job's result ("1.0.0 1 42"). */
#include <stdio.h>
#include <asyncjob.h>

static int job(void *arg)
{
    int v = *(int *)arg;
    if (ASYNC_pause_job() != 1)
        return -1;
    return v * 2;
}

int main(void)
{
    ASYNC_JOB *j = NULL;
    int arg = 21, ret = 0;
    if (ASYNC_start_job(&j, NULL, &ret, job, &arg, sizeof arg) != ASYNC_PAUSE ||
        ASYNC_start_job(&j, NULL, &ret, NULL, NULL, 0) != ASYNC_FINISH)
        return 1;
    printf("%s %d %d\n", asyncjob_version(), ASYNC_is_capable(), ret);
    ASYNC_cleanup_thread();
    return 0;
}
