/*
 * epoll_jobs.c: 1,000 jobs on an epoll loop, kept in step with asyncjob_wait_ctx_sync().
 * Each job waits three times on a timerfd of its own; between two waits it clears and
 * closes the old timerfd and makes a new one, which gets the same fd number back. The
 * loop removes before it adds (asyncjob_wait_ctx_sync's order), so the reused number ends
 * up watched; added first, it would be removed again and the job would wait forever.
 *
 * usage: epoll_jobs [-n jobs] [-c in_flight] [-r rounds]   (defaults: 1000, 200, 3)
 * Prints "N jobs finished, M waits" and exits 0 when every job ran all its rounds.
 */
#define _GNU_SOURCE
#include <asyncjob.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct slot {
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *ctx;
    int index;
};

static int ep, rounds = 3;
static long waits;
static int key; /* the wait ctx key: its address is what counts */

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
    ASYNC_WAIT_CTX_clear_fd(ctx, &key); /* the next timerfd may get this number back */
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

/* What asyncjob_wait_ctx_sync() and _forget() call. A job that closed an fd has already
 * taken it out of the epoll set, so a removal may find it gone: that is not an error. */
static int watch(OSSL_ASYNC_FD fd, int add, void *arg)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = arg };
    if (epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) == 0)
        return 1;
    return !add && (errno == ENOENT || errno == EBADF);
}

/* Start (func != NULL) or resume the slot's job; on ASYNC_FINISH, free its ctx. Returns
 * 1 while the job is paused, 0 when it finished well, -1 on an error. */
static int run(struct slot *s, int (*func)(void *))
{
    int ret = 0;
    switch (ASYNC_start_job(&s->job, s->ctx, &ret, func, &s->index, sizeof s->index)) {
    case ASYNC_PAUSE:
        return asyncjob_wait_ctx_sync(s->ctx, watch, s) ? 1 : -1;
    case ASYNC_FINISH:
        if (!asyncjob_wait_ctx_forget(s->ctx, watch, s))
            ret = 0;
        ASYNC_WAIT_CTX_free(s->ctx);
        s->ctx = NULL;
        return ret == 1 ? 0 : -1;
    default:
        fprintf(stderr, "epoll_jobs: %s\n", asyncjob_strerror(asyncjob_last_error()));
        return -1;
    }
}

int main(int argc, char **argv)
{
    int njobs = 1000, nslots = 200, opt, next = 0, done = 0, active = 0, rc = 0;
    while ((opt = getopt(argc, argv, "n:c:r:")) != -1) {
        if (opt == 'n') njobs = atoi(optarg);
        else if (opt == 'c') nslots = atoi(optarg);
        else if (opt == 'r') rounds = atoi(optarg);
        else return 2;
    }
    struct slot *slots = calloc((size_t)nslots, sizeof *slots);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (slots == NULL || ep < 0)
        return 1;

    /* Fill every slot with a job; refill a slot whenever its job finishes. */
    for (int i = 0; i < nslots && rc == 0; i++) {
        struct slot *s = &slots[i];
        while (next < njobs && s->job == NULL && rc == 0) {
            s->index = next++;
            if ((s->ctx = ASYNC_WAIT_CTX_new()) == NULL)
                return 1;
            int r = run(s, job_main);
            if (r < 0)
                rc = 1;
            else if (r == 0)
                done++;
        }
        active += s->job != NULL;
    }
    while (active > 0 && rc == 0) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 10000);
        if (n <= 0) {
            fprintf(stderr, "epoll_jobs: %s with %d jobs paused\n",
                    n == 0 ? "stalled for 10 s" : "epoll_wait failed", active);
            rc = 1;
            break;
        }
        for (int i = 0; i < n && rc == 0; i++) {
            struct slot *s = evs[i].data.ptr;
            if (s->job == NULL)
                continue; /* finished earlier in this batch */
            int r = run(s, NULL);
            while (r == 0 && rc == 0) { /* finished: start the next job here */
                done++;
                active--;
                if (next == njobs)
                    break;
                s->index = next++;
                if ((s->ctx = ASYNC_WAIT_CTX_new()) == NULL)
                    return 1;
                active++;
                r = run(s, job_main);
            }
            if (r < 0)
                rc = 1;
        }
    }
    printf("%d jobs finished, %ld waits\n", done, waits);
    if (rc == 0 && (done != njobs || waits != (long)njobs * rounds))
        rc = 1;
    close(ep);
    free(slots);
    ASYNC_cleanup_thread();
    return rc;
}
