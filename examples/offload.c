/*
 * offload.c: the pattern asyncjob exists for. An epoll loop keeps thousands of jobs in
 * flight; each job hands a buffer to a small pool of worker threads for hashing, registers
 * an eventfd in its wait ctx and pauses; a worker writes the eventfd when the hash is ready
 * and the loop resumes that job. Prints jobs per second and checks every result.
 *
 * usage: offload [-n jobs] [-c in_flight] [-t workers] [-s bytes] [-F job]
 *   -n  jobs to run (default 10000)       -c  most jobs in flight (default: all of them)
 *   -t  worker threads (default 4)        -s  bytes hashed per job (default 4096)
 *   -F  corrupt job's result on purpose, to show that the check catches it (exit 1)
 */
#define _GNU_SOURCE
#include <asyncjob.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- the work: FNV-1a (64 bit) over a buffer of pseudo-random bytes ---- */

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* the FNV-1a 64-bit offset basis */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3u; /* the FNV 64-bit prime */
    }
    return h;
}

/* Job i's input: xorshift64 bytes seeded from i, so the check can rebuild it. */
static void fill(unsigned char *buf, size_t n, uint64_t i)
{
    uint64_t x = 0x9e3779b97f4a7c15u * (i + 1);
    for (size_t k = 0; k < n; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[k] = (unsigned char)x;
    }
}

/* ---- the worker pool: a locked FIFO of requests ---- */

struct request {
    struct request *next;
    const unsigned char *buf;
    size_t len;
    int efd;       /* written (1) once the hash is stored */
    uint64_t hash; /* the answer */
    int done;      /* set with release order after the eventfd write; read with acquire */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t more;
    struct request *head, *tail;
    int stop;
} queue = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0 };

static void submit(struct request *r)
{
    r->next = NULL;
    pthread_mutex_lock(&queue.lock);
    if (queue.tail != NULL)
        queue.tail->next = r;
    else
        queue.head = r;
    queue.tail = r;
    pthread_cond_signal(&queue.more);
    pthread_mutex_unlock(&queue.lock);
}

static void *worker(void *unused)
{
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&queue.lock);
        while (queue.head == NULL && !queue.stop)
            pthread_cond_wait(&queue.more, &queue.lock);
        struct request *r = queue.head;
        if (r == NULL) { /* stopping and nothing left */
            pthread_mutex_unlock(&queue.lock);
            return NULL;
        }
        queue.head = r->next;
        if (queue.head == NULL)
            queue.tail = NULL;
        pthread_mutex_unlock(&queue.lock);

        r->hash = fnv1a(r->buf, r->len);
        uint64_t one = 1;
        int efd = r->efd;
        /* Write first, publish `done` last: once the job sees `done` it may close the
         * eventfd and free the request, so the worker must not touch either afterwards. */
        if (write(efd, &one, sizeof one) != (ssize_t)sizeof one)
            perror("offload: eventfd write");
        __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    }
}

/* ---- the jobs ---- */

struct slot {
    ASYNC_JOB *job;     /* the paused job, or NULL */
    ASYNC_WAIT_CTX *ctx;
    uint64_t index;     /* which job this slot runs now */
    struct request req; /* lives in the slot: the job's stack holds only a pointer */
};

static size_t buf_len = 4096;
static uint64_t *results;
static int key; /* the wait ctx key: its address is what counts */

/* The wait ctx calls this when it is freed: the eventfd dies with the job's ctx. */
static void close_efd(ASYNC_WAIT_CTX *ctx, const void *k, OSSL_ASYNC_FD fd, void *data)
{
    (void)ctx, (void)k, (void)data;
    close(fd);
}

/* The job body: prepare the input, hand it to a worker, pause until the answer is there. */
static int hash_job(void *arg)
{
    struct slot *s = *(struct slot **)arg;
    unsigned char *buf = malloc(buf_len);
    if (buf == NULL)
        return 0;
    fill(buf, buf_len, s->index);

    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(ASYNC_get_current_job());
    if (efd < 0 || !ASYNC_WAIT_CTX_set_wait_fd(ctx, &key, efd, NULL, close_efd)) {
        if (efd >= 0)
            close(efd);
        free(buf);
        return 0;
    }
    s->req = (struct request){ .buf = buf, .len = buf_len, .efd = efd };
    submit(&s->req);

    /* A resume can come a moment before `done` is published (the eventfd is written
     * first): then simply pause again; the eventfd stays readable until drained. */
    while (!__atomic_load_n(&s->req.done, __ATOMIC_ACQUIRE))
        ASYNC_pause_job();
    uint64_t count;
    if (read(efd, &count, sizeof count) != (ssize_t)sizeof count)
        perror("offload: eventfd read");
    results[s->index] = s->req.hash;
    free(buf);
    return 1;
}

/* ---- the event loop ---- */

static int ep;
static uint64_t next_job, jobs_total, jobs_done, failures;

/* asyncjob_wait_ctx_sync() and _forget() call this for every fd epoll must start
 * (add 1) or stop (add 0) watching; returning 0 stops them. */
static int watch(OSSL_ASYNC_FD fd, int add, void *arg)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = arg };
    return epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) == 0;
}

/* After a pause: epoll watches exactly the fds the job waits on (removals first). */
static int sync_fds(struct slot *s)
{
    return asyncjob_wait_ctx_sync(s->ctx, watch, s) ? 0 : -1;
}

/* A job finished: forget its fds, free its ctx (which closes the eventfd). */
static void retire(struct slot *s, int ret)
{
    if (!asyncjob_wait_ctx_forget(s->ctx, watch, s)) {
        fprintf(stderr, "offload: job %" PRIu64 ": epoll_ctl DEL failed\n", s->index);
        failures++;
    }
    ASYNC_WAIT_CTX_free(s->ctx);
    s->ctx = NULL;
    if (ret != 1) {
        fprintf(stderr, "offload: job %" PRIu64 " failed\n", s->index);
        failures++;
    }
    jobs_done++;
}

/* Drive the slot's job (start it if `start`) until it pauses; while jobs finish at once,
 * start the next ones. Returns -1 on an API error. */
static int run_slot(struct slot *s, int start)
{
    for (;;) {
        int ret = 0, rc;
        if (start) {
            if (next_job == jobs_total)
                return 0; /* nothing left for this slot */
            s->index = next_job++;
            s->ctx = ASYNC_WAIT_CTX_new();
            if (s->ctx == NULL)
                return -1;
            rc = ASYNC_start_job(&s->job, s->ctx, &ret, hash_job, &s, sizeof s);
        } else {
            rc = ASYNC_start_job(&s->job, s->ctx, &ret, NULL, NULL, 0);
        }
        if (rc == ASYNC_PAUSE)
            return sync_fds(s);
        if (rc != ASYNC_FINISH)
            return -1;
        retire(s, ret);
        start = 1;
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each job in flight holds one eventfd: raise the descriptor limit as far as allowed and
 * return how many jobs fit under it. */
static uint64_t fd_budget(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > 100 ? (uint64_t)rl.rlim_cur - 64 : 36;
}

static uint64_t number(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s) {
        fprintf(stderr, "offload: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    uint64_t in_flight = 0, workers = 4, corrupt = UINT64_MAX;
    jobs_total = 10000;
    int opt;
    while ((opt = getopt(argc, argv, "n:c:t:s:F:")) != -1) {
        switch (opt) {
        case 'n': jobs_total = number(optarg, "job count"); break;
        case 'c': in_flight = number(optarg, "in-flight count"); break;
        case 't': workers = number(optarg, "worker count"); break;
        case 's': buf_len = number(optarg, "buffer size"); break;
        case 'F': corrupt = number(optarg, "job to corrupt"); break;
        default:
            fprintf(stderr, "usage: offload [-n jobs] [-c in_flight] [-t workers] "
                            "[-s bytes] [-F job]\n");
            return 2;
        }
    }
    if (jobs_total == 0 || workers == 0 || workers > 256 || buf_len == 0) {
        fprintf(stderr, "offload: -n, -t (at most 256) and -s must be positive\n");
        return 2;
    }
    if (in_flight == 0 || in_flight > jobs_total)
        in_flight = jobs_total;
    uint64_t budget = fd_budget();
    if (in_flight > budget) {
        fprintf(stderr, "offload: descriptor limit allows %" PRIu64 " jobs in flight\n",
                budget);
        in_flight = budget;
    }

    results = calloc(jobs_total, sizeof *results);
    struct slot *slots = calloc(in_flight, sizeof *slots);
    pthread_t threads[256];
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (results == NULL || slots == NULL || ep < 0) {
        perror("offload");
        return 1;
    }
    for (uint64_t i = 0; i < workers; i++)
        if (pthread_create(&threads[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "offload: cannot start worker threads\n");
            return 1;
        }
    /* One pool without limit; its jobs are created as the slots first need them. */
    ASYNC_init_thread(0, 0);

    double t0 = now();
    int err = 0;
    for (uint64_t i = 0; i < in_flight && !err; i++)
        err = run_slot(&slots[i], 1) != 0;
    struct epoll_event evs[256];
    while (!err && jobs_done < jobs_total) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("offload: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n && !err; i++)
            err = run_slot(evs[i].data.ptr, 0) != 0;
    }
    double elapsed = now() - t0;
    if (err) {
        fprintf(stderr, "offload: %s\n", asyncjob_strerror(asyncjob_last_error()));
        return 1;
    }

    pthread_mutex_lock(&queue.lock);
    queue.stop = 1;
    pthread_cond_broadcast(&queue.more);
    pthread_mutex_unlock(&queue.lock);
    for (uint64_t i = 0; i < workers; i++)
        pthread_join(threads[i], NULL);

    printf("offload: %" PRIu64 " jobs, %" PRIu64 " worker threads, %zu bytes each, "
           "%" PRIu64 " in flight at most\n", jobs_total, workers, buf_len, in_flight);
    printf("offload: %.0f jobs/s (%.3f s)\n", (double)jobs_total / elapsed, elapsed);

    /* The check, outside the timed part: hash every input again, directly. */
    if (corrupt < jobs_total)
        results[corrupt] ^= 1;
    unsigned char *buf = malloc(buf_len);
    uint64_t bad = 0;
    for (uint64_t i = 0; buf != NULL && i < jobs_total; i++) {
        fill(buf, buf_len, i);
        if (results[i] != fnv1a(buf, buf_len)) {
            if (bad++ < 5)
                fprintf(stderr, "offload: job %" PRIu64 " returned a wrong hash\n", i);
        }
    }
    if (buf == NULL || bad != 0 || failures != 0) {
        fprintf(stderr, "offload: %" PRIu64 " wrong results, %" PRIu64 " failed jobs\n", bad,
                failures);
        return 1;
    }
    printf("offload: all %" PRIu64 " results verified\n", jobs_total);
    free(buf);
    free(slots);
    free(results);
    close(ep);
    ASYNC_cleanup_thread();
    return 0;
}
