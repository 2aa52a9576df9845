/*
 * bench_api.c: the job API's figures, for asyncjob (-DBENCH_ASYNCJOB) or OpenSSL's libcrypto
 * (-DBENCH_OPENSSL; both export the ASYNC_* names, so never in one program). Sections: api,
 * scale N, threads; rt and pooled alone, for callgrind.
 */
#undef _FORTIFY_SOURCE /* OpenSSL's jobs _longjmp between stacks inside this process */
#include "config.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#if defined(BENCH_ASYNCJOB)
# include "asyncjob.h"
# define LIB_ERROR() asyncjob_strerror(asyncjob_last_error())
#elif defined(BENCH_OPENSSL)
# include <openssl/async.h>
# include <openssl/crypto.h>
# define LIB_ERROR() "see OpenSSL's error queue"
#else
# error "build with -DBENCH_ASYNCJOB or -DBENCH_OPENSSL"
#endif

#include "bench.h"

/*
 * Heap allocations, counted per thread by a malloc family that interposes on every library
 * and forwards to glibc's; not under sanitizers (their own malloc) nor musl (no __libc_*).
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__GLIBC__)
# define COUNTS_ALLOCS 0
static unsigned long heap_allocs;
#else
# define COUNTS_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static __thread unsigned long heap_allocs;

void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);
void free(void *p);

void *malloc(size_t n)
{
    heap_allocs++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    heap_allocs++;
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    heap_allocs++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

/* Report an allocation count, when they are counted at all. */
static void emit_allocs(const char *key, double per_op)
{
    if (COUNTS_ALLOCS)
        bench_emit(key, per_op);
}

static void die(const char *what, int r)
{
    fprintf(stderr, "bench_api: %s: ASYNC_start_job returned %d (%s)\n", what, r, LIB_ERROR());
    exit(1);
}

/*
 * Every job starts with a wait ctx, as real users' do (OpenSSL 3.0's ASYNC_pause_job()
 * needs one: it resets its fd counts unchecked). One ctx serves all of a thread's jobs.
 */
static __thread ASYNC_WAIT_CTX *wctx;

static void need_wait_ctx(void)
{
    if (wctx == NULL && (wctx = ASYNC_WAIT_CTX_new()) == NULL) {
        fprintf(stderr, "bench_api: ASYNC_WAIT_CTX_new failed\n");
        exit(1);
    }
}

/* A job that pauses until told to stop. Its argument copy holds a pointer to the flag. */
struct ctl {
    volatile int stop;
};

static int pauser(void *arg)
{
    struct ctl *c = *(struct ctl **)arg;
    while (!c->stop)
        if (!ASYNC_pause_job())
            return 1;
    return 0;
}

/* A job that returns at once (its 8-byte argument still has to be copied in). */
static int returner(void *arg)
{
    return *(struct ctl **)arg != NULL;
}

/* Resume `job` until it has paused `iters` times; ns per resume+pause round trip. */
static double round_trips(ASYNC_JOB **job, struct ctl **cp, long iters)
{
    int ret, r;
    uint64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        if ((r = ASYNC_start_job(job, wctx, &ret, pauser, cp, sizeof *cp)) != ASYNC_PAUSE)
            die("resume", r);
    return (double)(bench_now() - t0) / iters;
}

/* Start a job that pauses at once, then warm it up with a tenth of `iters` round trips. */
static void start_warm(ASYNC_JOB **job, struct ctl **cp, long iters, const char *what)
{
    int ret, r;
    if ((r = ASYNC_start_job(job, wctx, &ret, pauser, cp, sizeof *cp)) != ASYNC_PAUSE)
        die(what, r);
    round_trips(job, cp, iters / 10 + 1);
}

static void finish(ASYNC_JOB **job, struct ctl *c, struct ctl **cp)
{
    int ret, r;
    c->stop = 1;
    if ((r = ASYNC_start_job(job, wctx, &ret, pauser, cp, sizeof *cp)) != ASYNC_FINISH)
        die("finish", r);
    c->stop = 0;
}

/* Only the round trip, for instruction counting under callgrind. */
static void section_rt(long iters)
{
    struct ctl c = { 0 }, *cp = &c;
    ASYNC_JOB *job = NULL;
    need_wait_ctx();
    start_warm(&job, &cp, iters, "start");
    bench_emit("rt", round_trips(&job, &cp, iters));
    finish(&job, &c, &cp);
}

/* Start jobs that return at once, from a warm pool: ns per start+finish (the first tenth
 * of the iterations warm up), and the heap allocations they make. */
static void pooled(long iters)
{
    struct ctl *cp = NULL;
    ASYNC_JOB *job;
    int ret, r;
    double best = 0;
    unsigned long a0 = 0;
    long counted = 0;
    /* Pass 0 warms up; the others are the bursts. */
    for (int pass = 0; pass <= BENCH_BURSTS; pass++) {
        long n = pass == 0 ? iters / 10 + 1 : iters / BENCH_BURSTS + 1;
        if (pass == 1)
            a0 = heap_allocs;
        uint64_t t0 = bench_now();
        for (long i = 0; i < n; i++) {
            job = NULL;
            if ((r = ASYNC_start_job(&job, wctx, &ret, returner, &cp, sizeof cp)) != ASYNC_FINISH)
                die("pooled start", r);
        }
        double t = (double)(bench_now() - t0) / n;
        if (pass == 1 || t < best)
            best = t;
        if (pass > 0)
            counted += n;
    }
    double allocs = (double)(heap_allocs - a0) / counted; /* before stdio allocates */
    bench_emit("pooled", best);
    emit_allocs("allocs_pooled", allocs);
}

static void section_api(long iters, long cold_jobs)
{
    struct ctl c = { 0 }, *cp = &c;
    ASYNC_JOB *job = NULL;
    int ret, r;
    need_wait_ctx();

    /* Round trip: one paused job, resumed over and over. */
    start_warm(&job, &cp, iters, "start");
    unsigned long a0 = heap_allocs;
    double rt = 0;
    for (int b = 0; b < BENCH_BURSTS; b++) {
        double t = round_trips(&job, &cp, iters / BENCH_BURSTS + 1);
        if (b == 0 || t < rt)
            rt = t;
    }
    double allocs = (double)(heap_allocs - a0) / iters; /* before stdio allocates */
    bench_emit("rt", rt);
    emit_allocs("allocs_rt", allocs);
    finish(&job, &c, &cp);

    /* Pooled start + finish: the pool is warm from the job above. */
    pooled(iters);

    /* Cold creation: empty the pool, then start jobs that each pause at once, so every
     * start must make a new job (stack, context, first switch in and out). */
    ASYNC_cleanup_thread();
    ASYNC_JOB **jobs = calloc((size_t)cold_jobs, sizeof *jobs);
    if (jobs == NULL)
        exit(1);
    a0 = heap_allocs;
    uint64_t t0 = bench_now();
    for (long i = 0; i < cold_jobs; i++)
        if ((r = ASYNC_start_job(&jobs[i], wctx, &ret, pauser, &cp, sizeof cp)) != ASYNC_PAUSE)
            die("cold start", r);
    uint64_t t1 = bench_now();
    allocs = (double)(heap_allocs - a0) / cold_jobs;
    bench_emit("cold", (double)(t1 - t0) / cold_jobs);
    emit_allocs("allocs_cold", allocs);
    for (long i = 0; i < cold_jobs; i++)
        finish(&jobs[i], &c, &cp);
    free(jobs);
    ASYNC_cleanup_thread();
}

/* N jobs paused at once on this thread; each figure is per job or per resume. */
static void section_scale(long n, long min_resumes)
{
    struct ctl c = { 0 }, *cp = &c;
    int ret, r;
    char key[64];
    need_wait_ctx();
    ASYNC_JOB **jobs = calloc((size_t)n, sizeof *jobs);
    if (jobs == NULL)
        exit(1);
    memset(jobs, 0, (size_t)n * sizeof *jobs); /* resident before the baseline */

    long long rss0 = bench_rss_bytes(), pte0 = bench_pte_bytes();
    uint64_t t0 = bench_now();
    for (long i = 0; i < n; i++) {
        if ((r = ASYNC_start_job(&jobs[i], wctx, &ret, pauser, &cp, sizeof cp)) != ASYNC_PAUSE) {
            /* Report how far it got: this is a finding, not a crash. */
            fprintf(stderr, "bench_api: scale %ld: job %ld could not start: %d (%s)\n", n, i,
                    r, LIB_ERROR());
            snprintf(key, sizeof key, "scale_reached_%ld", n);
            bench_emit(key, (double)i);
            _exit(0);
        }
    }
    uint64_t t1 = bench_now();
    long long rss1 = bench_rss_bytes(), pte1 = bench_pte_bytes();

    long rounds = (min_resumes + n - 1) / n;
    if (rounds < 2)
        rounds = 2;
    uint64_t t2 = bench_now();
    for (long k = 0; k < rounds; k++)
        for (long i = 0; i < n; i++)
            if ((r = ASYNC_start_job(&jobs[i], wctx, &ret, pauser, &cp, sizeof cp)) != ASYNC_PAUSE)
                die("scale resume", r);
    uint64_t t3 = bench_now();

    snprintf(key, sizeof key, "scale_create_%ld", n);
    bench_emit(key, (double)(t1 - t0) / n);
    snprintf(key, sizeof key, "scale_resume_%ld", n);
    bench_emit(key, (double)(t3 - t2) / ((double)rounds * n));
    snprintf(key, sizeof key, "scale_kib_%ld", n);
    bench_emit(key, (double)(rss1 - rss0) / 1024.0 / n);
    snprintf(key, sizeof key, "scale_ptkib_%ld", n);
    bench_emit(key, (double)(pte1 - pte0) / 1024.0 / n);
    /* The paused jobs are left to the process exit: tearing down a million of them would
     * only add minutes to the run. */
    _exit(0);
}

struct thread_arg {
    long iters;
    pthread_barrier_t *barrier;
    uint64_t t0, t1;
    uint64_t cpu; /* this thread's CPU time over the measured loop */
};

static uint64_t thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    struct ctl c = { 0 }, *cp = &c;
    ASYNC_JOB *job = NULL;
    need_wait_ctx();
    start_warm(&job, &cp, a->iters, "thread start");
    pthread_barrier_wait(a->barrier);
    uint64_t c0 = thread_cpu_now();
    a->t0 = bench_now();
    round_trips(&job, &cp, a->iters);
    a->t1 = bench_now();
    a->cpu = thread_cpu_now() - c0;
    finish(&job, &c, &cp);
    ASYNC_cleanup_thread();
    ASYNC_WAIT_CTX_free(wctx);
    wctx = NULL;
    return NULL;
}

/*
 * Round trips per microsecond over `nthreads` threads, each with its own job: by the wall
 * clock (what a program gets) and by each thread's CPU time (what the code scales to).
 */
static double throughput(int nthreads, long iters, double *per_cpu)
{
    pthread_t th[2];
    struct thread_arg args[2];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        args[i] = (struct thread_arg){ .iters = iters, .barrier = &barrier };
        if (pthread_create(&th[i], NULL, thread_main, &args[i]) != 0)
            exit(1);
    }
    uint64_t start = UINT64_MAX, end = 0;
    *per_cpu = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        *per_cpu += (double)iters * 1000.0 / (double)args[i].cpu;
        if (args[i].t0 < start)
            start = args[i].t0;
        if (args[i].t1 > end)
            end = args[i].t1;
    }
    pthread_barrier_destroy(&barrier);
    return (double)nthreads * iters * 1000.0 / (double)(end - start);
}

static void section_threads(long iters)
{
    double one_cpu, two_cpu;
    double one = throughput(1, iters, &one_cpu);
    double two = throughput(2, iters, &two_cpu);
    bench_emit("thr1", one);
    bench_emit("thr2", two);
    bench_emit("thr_ratio", two / one);
    bench_emit("thr_ratio_cpu", two_cpu / one_cpu);
}

int main(int argc, char **argv)
{
    long iters = 2000000, cold_jobs = 2000, scale_n = 0, min_resumes = 2000000;
    const char *section = "api";
#ifdef BENCH_OPENSSL
    /* ASYNC_pause_job needs libcrypto's thread-local keys, made by this initialisation. */
    if (!OPENSSL_init_crypto(OPENSSL_INIT_ASYNC, NULL))
        return 1;
#endif
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            iters = 20000;
            cold_jobs = 100;
            min_resumes = 20000;
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            iters = bench_count(argv[++i]);
        } else if (strcmp(argv[i], "api") == 0 || strcmp(argv[i], "threads") == 0 ||
                   strcmp(argv[i], "rt") == 0 || strcmp(argv[i], "pooled") == 0) {
            section = argv[i];
        } else if (strcmp(argv[i], "scale") == 0 && i + 1 < argc) {
            section = argv[i];
            scale_n = bench_count(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--iters N] api|rt|pooled|threads|scale N\n", argv[0]);
            return 2;
        }
    }
    if (strcmp(section, "api") == 0)
        section_api(iters, cold_jobs);
    else if (strcmp(section, "rt") == 0)
        section_rt(iters);
    else if (strcmp(section, "pooled") == 0) {
        need_wait_ctx();
        pooled(iters);
    }
    else if (strcmp(section, "threads") == 0)
        section_threads(iters);
    else
        section_scale(scale_n, min_resumes);
    return 0;
}
