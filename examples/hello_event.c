/*
 * hello_event.c: hello_async.c for Windows. The job creates an event, registers it in its
 * wait ctx as the HANDLE it waits on, signals it and pauses; main waits on the registered
 * HANDLE with WaitForSingleObject and resumes the job. It prints the lines of the example
 * of OpenSSL's ASYNC_start_job(3) page (.ci/windows.sh compares them under Wine).
 */
#include <windows.h>

#include <stdio.h>

#include <asyncjob.h>

static const char wake_key;

static void close_event(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD h, void *data)
{
    (void)ctx;
    (void)key;
    (void)data;
    CloseHandle(h);
}

static int greet(void *arg)
{
    ASYNC_JOB *self = ASYNC_get_current_job();
    if (self == NULL) {
        printf("Not within a job: cannot happen\n");
        return 0;
    }
    printf("Executing within a job\n");
    printf("Passed in message is: %s\n", *(const char **)arg);
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (ev == NULL)
        return 0;
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(self);
    if (!ASYNC_WAIT_CTX_set_wait_fd(ctx, &wake_key, ev, NULL, close_event)) {
        CloseHandle(ev);
        return 0;
    }
    SetEvent(ev); /* what an engine would do once its work is done */
    ASYNC_pause_job();
    printf("Resumed the job after a pause\n");
    return 1;
}

int main(void)
{
    const char *msg = "Hello world!";
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    ASYNC_JOB *job = NULL;
    int ret = 0;
    if (ctx == NULL)
        return 1;
    printf("Starting...\n");
    for (;;) {
        switch (ASYNC_start_job(&job, ctx, &ret, greet, &msg, sizeof(msg))) {
        case ASYNC_ERR:
        case ASYNC_NO_JOBS:
            printf("The job could not be started\n");
            return 1;
        case ASYNC_PAUSE:
            printf("Job was paused\n");
            break;
        case ASYNC_FINISH:
            printf("Job finished with return value %d\n", ret);
            ASYNC_WAIT_CTX_free(ctx);
            printf("Finishing\n");
            return ret == 1 ? 0 : 1;
        }
        OSSL_ASYNC_FD h = OSSL_BAD_ASYNC_FD;
        size_t n = 1;
        if (!ASYNC_WAIT_CTX_get_all_fds(ctx, &h, &n) || n != 1)
            return 1;
        printf("Waiting for the job to be woken up\n");
        if (WaitForSingleObject(h, INFINITE) != WAIT_OBJECT_0)
            return 1;
    }
}
