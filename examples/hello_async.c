/*
 * hello_async.c: the example program of OpenSSL's ASYNC_start_job(3) manual page, built
 * against asyncjob. Only the include lines differ (<asyncjob.h> replaces <openssl/async.h>
 * and <openssl/crypto.h>; <stdlib.h> declares abort) and OPENSSL_malloc/OPENSSL_free are
 * plain malloc/free, as ASYNC-API.md section 5 requires. The program text is OpenSSL's
 * documentation example (Apache License 2.0), kept verbatim on purpose: it proves that code
 * written for <openssl/async.h> builds unchanged. make check compares its output with
 * hello_async.expected, the output printed in that manual page.
 */
#ifdef _WIN32
# include <windows.h>
#endif
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <asyncjob.h>

int unique = 0;

void cleanup(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD r, void *vw)
{
    OSSL_ASYNC_FD *w = (OSSL_ASYNC_FD *)vw;

    close(r);
    close(*w);
    free(w);
}

int jobfunc(void *arg)
{
    ASYNC_JOB *currjob;
    unsigned char *msg;
    int pipefds[2] = {0, 0};
    OSSL_ASYNC_FD *wptr;
    char buf = 'X';

    currjob = ASYNC_get_current_job();
    if (currjob != NULL) {
        printf("Executing within a job\n");
    } else {
        printf("Not executing within a job - should not happen\n");
        return 0;
    }

    msg = (unsigned char *)arg;
    printf("Passed in message is: %s\n", msg);

    if (pipe(pipefds) != 0) {
        printf("Failed to create pipe\n");
        return 0;
    }
    wptr = malloc(sizeof(OSSL_ASYNC_FD));
    if (wptr == NULL) {
        printf("Failed to malloc\n");
        return 0;
    }
    *wptr = pipefds[1];
    ASYNC_WAIT_CTX_set_wait_fd(ASYNC_get_wait_ctx(currjob), &unique,
                               pipefds[0], wptr, cleanup);

    /*
     * Normally some external event would cause this to happen at some
     * later point - but we do it here for demo purposes, i.e.
     * immediately signalling that the job is ready to be woken up after
     * we return to main via ASYNC_pause_job().
     */
    write(pipefds[1], &buf, 1);

    /* Return control back to main */
    ASYNC_pause_job();

    /* Clear the wake signal */
    read(pipefds[0], &buf, 1);

    printf ("Resumed the job after a pause\n");

    return 1;
}

int main(void)
{
    ASYNC_JOB *job = NULL;
    ASYNC_WAIT_CTX *ctx = NULL;
    int ret;
    OSSL_ASYNC_FD waitfd;
    fd_set waitfdset;
    size_t numfds;
    unsigned char msg[13] = "Hello world!";

    printf("Starting...\n");

    ctx = ASYNC_WAIT_CTX_new();
    if (ctx == NULL) {
        printf("Failed to create ASYNC_WAIT_CTX\n");
        abort();
    }

    for (;;) {
        switch (ASYNC_start_job(&job, ctx, &ret, jobfunc, msg, sizeof(msg))) {
        case ASYNC_ERR:
        case ASYNC_NO_JOBS:
            printf("An error occurred\n");
            goto end;
        case ASYNC_PAUSE:
            printf("Job was paused\n");
            break;
        case ASYNC_FINISH:
            printf("Job finished with return value %d\n", ret);
            goto end;
        }

        /* Wait for the job to be woken */
        printf("Waiting for the job to be woken up\n");

        if (!ASYNC_WAIT_CTX_get_all_fds(ctx, NULL, &numfds)
                || numfds > 1) {
            printf("Unexpected number of fds\n");
            abort();
        }
        ASYNC_WAIT_CTX_get_all_fds(ctx, &waitfd, &numfds);
        FD_ZERO(&waitfdset);
        FD_SET(waitfd, &waitfdset);
        select(waitfd + 1, &waitfdset, NULL, NULL, NULL);
    }

end:
    ASYNC_WAIT_CTX_free(ctx);
    printf("Finishing\n");

    return 0;
}
