/*
 * test_stress.c: many threads, each running thousands of jobs that pause and resume in
 * an interleaved order, some threads exiting without ASYNC_cleanup_thread(). Meant above
 * all for the ThreadSanitizer and valgrind legs of CI; linked against the installed library.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "asyncjob.h"
#include "check_suite.h"
#include "sanitizers.h"

/* Sizes: valgrind runs every thread on one core at a fraction of native speed, so the
 * job counts shrink there; the shape of the test (threads, pauses, exits) stays. */
static int under_valgrind(void)
{
    return RUNNING_ON_VALGRIND != 0;
}

#define MAX_BATCH 32   /* jobs one thread keeps in flight at once */
#define MAX_PAUSES 4   /* a job pauses 0..MAX_PAUSES-1 times */

/* What a job computes: a small chain of pseudo-random numbers from its seed. The thread
 * recomputes it without pausing to check the job's result. */
static uint32_t next_rand(uint32_t x)
{
    return x * 1103515245u + 12345u;
}

static int expected_result(uint32_t seed)
{
    uint32_t x = seed, sum = 0;
    for (int k = 0; k < 16; k++) {
        x = next_rand(x);
        sum = sum * 31u + x;
    }
    return (int)(sum & 0x7fffffff);
}

struct job_args {
    uint32_t seed;
    uint32_t pauses;
    ASYNC_WAIT_CTX *ctx; /* the wait ctx the job was started with, or NULL */
};

/* Keeps its state in locals across every pause, and checks it after each resume. */
static int stress_job(void *p)
{
    const struct job_args *a = p; /* the library's copy, inside the job */
    volatile uint32_t local[16];
    uint32_t x = a->seed;
    for (int k = 0; k < 16; k++)
        local[k] = x = next_rand(x);

    for (uint32_t i = 0; i < a->pauses; i++) {
        if (!ASYNC_pause_job())
            return -1;
        ASYNC_JOB *self = ASYNC_get_current_job();
        if (self == NULL || ASYNC_get_wait_ctx(self) != a->ctx)
            return -2;
        x = a->seed;
        for (int k = 0; k < 16; k++) {
            x = next_rand(x);
            if (local[k] != x)
                return -3;
        }
    }
    uint32_t sum = 0;
    for (int k = 0; k < 16; k++)
        sum = sum * 31u + local[k];
    return (int)(sum & 0x7fffffff);
}

struct worker {
    pthread_t thread;
    pthread_barrier_t *start;
    unsigned index;
    int jobs;          /* how many jobs to run, in total */
    int batch;         /* how many to keep in flight */
    int cleanup;       /* call ASYNC_cleanup_thread() at the end, or just exit */
    int finished;      /* out: jobs that finished with the right result */
    char error[160];   /* out: the first failure, or empty */
};

static long finished_everywhere; /* summed by every worker, atomically */

static void *worker_main(void *p)
{
    struct worker *w = p;
    ASYNC_JOB *job[MAX_BATCH] = { NULL };
    int ret[MAX_BATCH];
    uint32_t seed[MAX_BATCH];
    ASYNC_WAIT_CTX *ctx[MAX_BATCH];
    int started = 0;

    /* Every other slot gets a wait ctx, so attach and detach run too. */
    for (int s = 0; s < w->batch; s++) {
        ctx[s] = NULL;
        if (s % 2 == 0 && (ctx[s] = ASYNC_WAIT_CTX_new()) == NULL) {
            snprintf(w->error, sizeof(w->error), "thread %u: ASYNC_WAIT_CTX_new failed", w->index);
            goto out;
        }
    }
    /* Half the threads fill their pool up front, half let it grow on demand. */
    if (w->index % 2 == 0 && !ASYNC_init_thread(0, (size_t)w->batch / 2)) {
        snprintf(w->error, sizeof(w->error), "thread %u: ASYNC_init_thread failed", w->index);
        goto out;
    }
    pthread_barrier_wait(w->start);

    while (w->finished < w->jobs) {
        for (int s = 0; s < w->batch && w->error[0] == '\0'; s++) {
            int r;
            if (job[s] == NULL) {
                if (started == w->jobs)
                    continue;
                struct job_args a;
                seed[s] = w->index * 1000003u + (uint32_t)started;
                a.seed = seed[s];
                a.pauses = (uint32_t)started % MAX_PAUSES;
                a.ctx = ctx[s];
                started++;
                r = ASYNC_start_job(&job[s], ctx[s], &ret[s], stress_job, &a, sizeof(a));
            } else {
                r = ASYNC_start_job(&job[s], ctx[s], &ret[s], NULL, NULL, 0);
            }
            if (r == ASYNC_FINISH) {
                if (job[s] != NULL || ret[s] != expected_result(seed[s]))
                    snprintf(w->error, sizeof(w->error),
                             "thread %u: job of seed %u returned %d, wanted %d", w->index,
                             (unsigned)seed[s], ret[s], expected_result(seed[s]));
                else
                    w->finished++;
            } else if (r != ASYNC_PAUSE || job[s] == NULL) {
                snprintf(w->error, sizeof(w->error), "thread %u: ASYNC_start_job gave %d (%s)",
                         w->index, r, asyncjob_strerror(asyncjob_last_error()));
            }
        }
        if (w->error[0] != '\0')
            break;
    }
    __atomic_add_fetch(&finished_everywhere, w->finished, __ATOMIC_RELAXED);
    if (w->error[0] != '\0')
        return NULL; /* a paused job may remain: the test fails anyway */
out:
    for (int s = 0; s < w->batch; s++)
        ASYNC_WAIT_CTX_free(ctx[s]);
    /* Without cleanup, the thread-exit handler must free the pool (valgrind checks). */
    if (w->cleanup)
        ASYNC_cleanup_thread();
    return NULL;
}

struct team {
    struct worker w[8];
    unsigned n;
    int jobs;
    pthread_barrier_t start;
};

/* Start `n` workers; `no_cleanup_every` > 0 makes every such worker exit without calling
 * ASYNC_cleanup_thread(). They wait at a barrier and then all run at once. */
static void start_team(struct team *t, unsigned n, int jobs, int batch,
                       unsigned no_cleanup_every)
{
    ck_assert_uint_le(n, 8);
    ck_assert_int_le(batch, MAX_BATCH);
    ck_assert_int_eq(pthread_barrier_init(&t->start, NULL, n), 0);
    t->n = n;
    t->jobs = jobs;
    __atomic_store_n(&finished_everywhere, 0, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &t->w[i];
        memset(w, 0, sizeof(*w));
        w->start = &t->start;
        w->index = i;
        w->jobs = jobs;
        w->batch = batch;
        w->cleanup = no_cleanup_every == 0 || (i + 1) % no_cleanup_every != 0;
        ck_assert_int_eq(pthread_create(&w->thread, NULL, worker_main, w), 0);
    }
}

/* Join every worker and check that each ran all its jobs with the right results. */
static void join_team(struct team *t)
{
    for (unsigned i = 0; i < t->n; i++)
        ck_assert_int_eq(pthread_join(t->w[i].thread, NULL), 0);
    pthread_barrier_destroy(&t->start);
    for (unsigned i = 0; i < t->n; i++) {
        ck_assert_msg(t->w[i].error[0] == '\0', "%s", t->w[i].error);
        ck_assert_int_eq(t->w[i].finished, t->jobs);
    }
}

static void run_workers(unsigned n, int jobs, int batch, unsigned no_cleanup_every)
{
    struct team t;
    start_team(&t, n, jobs, batch, no_cleanup_every);
    join_team(&t);
    ck_assert_int_eq(__atomic_load_n(&finished_everywhere, __ATOMIC_RELAXED),
                     (long)n * jobs);
}

static int jobs_per_thread(void)
{
    return under_valgrind() ? 1500 : 5000;
}

START_TEST(stress_two_threads_with_cleanup)
{
    run_workers(2, jobs_per_thread(), MAX_BATCH, 0);
}
END_TEST

START_TEST(stress_eight_threads_half_exit_without_cleanup)
{
    run_workers(8, jobs_per_thread(), MAX_BATCH, 2);
}
END_TEST

/* Threads come and go in waves, none cleaning up: the thread-exit handler frees every
 * pool while other threads keep switching. */
START_TEST(stress_thread_waves_without_cleanup)
{
    int waves = under_valgrind() ? 3 : 6;
    for (int i = 0; i < waves; i++)
        run_workers(4, jobs_per_thread() / 4, 8, 1);
}
END_TEST

/* The main thread runs jobs of its own while workers run theirs. */
START_TEST(stress_main_thread_alongside_workers)
{
    struct team t;
    struct worker self;
    pthread_barrier_t alone;
    memset(&self, 0, sizeof(self));
    ck_assert_int_eq(pthread_barrier_init(&alone, NULL, 1), 0);
    self.start = &alone;
    self.index = 100;
    self.jobs = jobs_per_thread() / 2;
    self.batch = 16;
    self.cleanup = 1;
    start_team(&t, 3, jobs_per_thread() / 2, 16, 3);
    worker_main(&self);
    join_team(&t);
    pthread_barrier_destroy(&alone);
    ck_assert_msg(self.error[0] == '\0', "%s", self.error);
    ck_assert_int_eq(self.finished, self.jobs);
    ck_assert_int_eq(__atomic_load_n(&finished_everywhere, __ATOMIC_RELAXED),
                     4L * self.jobs);
}
END_TEST

SUITE("stress", 600, NULL, stress_two_threads_with_cleanup,
      stress_eight_threads_half_exit_without_cleanup, stress_thread_waves_without_cleanup,
      stress_main_thread_alongside_workers)

#include "tap_main.h"
