/*
 * libuv_jobs.c: 1,000 jobs on a libuv loop, kept in step with asyncjob_wait_ctx_sync():
 * one uv_poll_t per fd a job waits on, started when the fd is reported added and closed
 * when it is reported removed. The jobs are epoll_jobs.c's: each waits three times on a
 * timerfd of its own and reuses the fd number between two waits, which works because
 * removals are reported before additions.
 *
 * usage: libuv_jobs [-n jobs] [-c in_flight] [-r rounds]   (defaults: 1000, 200, 3)
 * Prints "N jobs finished, M waits" and exits 0 when every job ran all its rounds.
 */
#define _GNU_SOURCE
#include <asyncjob.h>
#include <uv.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_FDS 4 /* these jobs wait on one fd at a time */

struct slot {
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *ctx;
    int index;
    uv_poll_t *polls[MAX_FDS]; /* one per fd the loop watches for this job */
};

static uv_loop_t *loop;
static int rounds = 3, njobs = 1000, next, done, failed;
static long waits;
static int key;

/* Inside a job: wait `ms` milliseconds on a new timerfd registered in the job's ctx. */
static int wait_ms(int ms)
{
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    struct itimerspec t = { .it_value = { .tv_nsec = ms * 1000000L } };
    uint64_t expirations;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

    if (fd < 0 || timerfd_settime(fd, 0, &t, NULL) != 0 ||
        !ASYNC_WAIT_CTX_set_wait_fd(ctx, &key, fd, NULL, NULL)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    while (read(fd, &expirations, sizeof expirations) != (ssize_t)sizeof expirations)
        if (errno != EAGAIN || !ASYNC_pause_job())
            break;
    waits++;
    ASYNC_WAIT_CTX_clear_fd(ctx, &key);
    close(fd);
    return 1;
}

static int job_main(void *arg)
{
    int index = *(int *)arg;
    for (int r = 0; r < rounds; r++)
        if (!wait_ms(1 + (index + r) % 4))
            return 0;
    return 1;
}

static void run(struct slot *s, int (*func)(void *));

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    run(h->data, NULL);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* What asyncjob_wait_ctx_sync() and _forget() call: start or stop watching fd. */
static int watch(OSSL_ASYNC_FD fd, int add, void *arg)
{
    struct slot *s = arg;
    for (int i = 0; i < MAX_FDS; i++) {
        uv_poll_t *h = s->polls[i];
        uv_os_fd_t polled;
        if (!add && h != NULL && uv_fileno((uv_handle_t *)h, &polled) == 0 && polled == fd) {
            uv_poll_stop(h);
            uv_close((uv_handle_t *)h, free_handle);
            s->polls[i] = NULL;
            return 1;
        }
        if (add && h == NULL) {
            if ((h = malloc(sizeof *h)) == NULL)
                return 0;
            if (uv_poll_init(loop, h, fd) != 0) {
                free(h);
                return 0;
            }
            h->data = s;
            s->polls[i] = h;
            return uv_poll_start(h, UV_READABLE, on_readable) == 0;
        }
    }
    return 0;
}

/* Start (func != NULL) or resume the slot's job; when it finishes, start the next one. */
static void run(struct slot *s, int (*func)(void *))
{
    for (;;) {
        int ret = 0;
        switch (ASYNC_start_job(&s->job, s->ctx, &ret, func, &s->index, sizeof s->index)) {
        case ASYNC_PAUSE:
            if (!asyncjob_wait_ctx_sync(s->ctx, watch, s))
                failed = 1;
            return;
        case ASYNC_FINISH:
            if (!asyncjob_wait_ctx_forget(s->ctx, watch, s) || ret != 1)
                failed = 1;
            ASYNC_WAIT_CTX_free(s->ctx);
            s->ctx = NULL;
            done++;
            break;
        default:
            fprintf(stderr, "libuv_jobs: %s\n", asyncjob_strerror(asyncjob_last_error()));
            failed = 1;
            return;
        }
        if (next == njobs || failed)
            return;
        s->index = next++;
        if ((s->ctx = ASYNC_WAIT_CTX_new()) == NULL) {
            failed = 1;
            return;
        }
        func = job_main;
    }
}

int main(int argc, char **argv)
{
    int nslots = 200, opt;
    while ((opt = getopt(argc, argv, "n:c:r:")) != -1) {
        if (opt == 'n') njobs = atoi(optarg);
        else if (opt == 'c') nslots = atoi(optarg);
        else if (opt == 'r') rounds = atoi(optarg);
        else return 2;
    }
    struct slot *slots = calloc((size_t)nslots, sizeof *slots);
    loop = uv_default_loop();
    if (slots == NULL || loop == NULL)
        return 1;
    for (int i = 0; i < nslots && next < njobs && !failed; i++) {
        slots[i].index = next++;
        if ((slots[i].ctx = ASYNC_WAIT_CTX_new()) == NULL)
            return 1;
        run(&slots[i], job_main);
    }
    /* The loop ends when no fd is watched any more: every job finished (or one failed). */
    while (!failed && uv_run(loop, UV_RUN_ONCE) != 0)
        ;
    printf("%d jobs finished, %ld waits\n", done, waits);
    int rc = failed || done != njobs || waits != (long)njobs * rounds;
    for (int i = 0; i < nslots; i++) /* after a failure: let go of what is left */
        for (int j = 0; j < MAX_FDS; j++)
            if (slots[i].polls[j] != NULL)
                uv_close((uv_handle_t *)slots[i].polls[j], free_handle);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    free(slots);
    ASYNC_cleanup_thread();
    return rc;
}
