/*
 * hello_async.c: the smallest complete asyncjob program. One job prints a greeting copied
 * from main's arguments, creates a pipe, registers its read end in the job's wait ctx,
 * signals it, and pauses; main waits on the registered fd with select() and resumes the
 * job, which finishes. It prints the same lines as the example of OpenSSL's
 * ASYNC_start_job(3) page (make check compares them with hello_async.expected), and
 * test/seed_example.sh builds that page's own program too when the page is at hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <unistd.h>

#include <asyncjob.h>

/* The wait ctx key: any unique address will do. */
static const char wake_key;

/* The pipe's write end travels to the cleanup as custom data. */
static void close_pipe(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD readfd, void *data)
{
    int *writefd = data;
    close(readfd);
    close(*writefd);
    free(writefd);
}

static int greet(void *arg)
{
    if (ASYNC_get_current_job() == NULL) {
        printf("Not inside a job\n");
        return 0;
    }
    printf("Executing within a job\n");
    printf("Passed in message is: %s\n", (const char *)arg);

    int fds[2];
    int *writefd = malloc(sizeof(*writefd));
    if (writefd == NULL || pipe(fds) != 0) {
        free(writefd);
        printf("Cannot make a pipe\n");
        return 0;
    }
    *writefd = fds[1];
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    if (!ASYNC_WAIT_CTX_set_wait_fd(ctx, &wake_key, fds[0], writefd, close_pipe)) {
        close_pipe(ctx, &wake_key, fds[0], writefd);
        return 0;
    }

    /* Whatever the job waits for would make the fd readable later; here it is at once. */
    char byte = 'w';
    if (write(fds[1], &byte, 1) != 1)
        return 0;
    ASYNC_pause_job();
    if (read(fds[0], &byte, 1) != 1)
        return 0;
    printf("Resumed the job after a pause\n");
    return 1;
}

int main(void)
{
    char message[] = "Hello world!";
    ASYNC_JOB *job = NULL;
    int ret = 0;

    printf("Starting...\n");
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    if (ctx == NULL) {
        fprintf(stderr, "ASYNC_WAIT_CTX_new: %s\n", asyncjob_strerror(asyncjob_last_error()));
        return 1;
    }

    for (;;) {
        int rc = ASYNC_start_job(&job, ctx, &ret, greet, message, sizeof(message));
        if (rc == ASYNC_FINISH) {
            printf("Job finished with return value %d\n", ret);
            break;
        }
        if (rc != ASYNC_PAUSE) {
            printf("An error occurred: %s\n", asyncjob_strerror(asyncjob_last_error()));
            break;
        }
        printf("Job was paused\n");
        printf("Waiting for the job to be woken up\n");

        OSSL_ASYNC_FD fd;
        size_t n = 0;
        if (!ASYNC_WAIT_CTX_get_all_fds(ctx, NULL, &n) || n != 1 ||
            !ASYNC_WAIT_CTX_get_all_fds(ctx, &fd, &n)) {
            printf("Expected exactly one wait fd\n");
            return 1;
        }
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(fd, &readable);
        if (select(fd + 1, &readable, NULL, NULL, NULL) < 0)
            return 1;
    }

    ASYNC_WAIT_CTX_free(ctx); /* runs close_pipe for the registered fd */
    printf("Finishing\n");
    return ret == 1 ? 0 : 1;
}
