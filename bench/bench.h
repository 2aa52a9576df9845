/*
 * bench.h: what the benchmark programs share: a clock, memory probes, best-of-bursts timing
 * and the "key value" lines bench/run reads. Benchmarks report numbers, never judge them.
 */
#ifndef ASYNCJOB_BENCH_H
#define ASYNCJOB_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Nanoseconds on the monotonic clock. */
static inline uint64_t bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resident set size in bytes, from /proc/self/statm (second field, in pages). */
static inline long long bench_rss_bytes(void)
{
    long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Page-table memory in bytes (VmPTE of /proc/self/status): not part of the RSS, but every
 * mapping's touched pages need it, so the scale curve reports it beside the RSS. */
static inline long long bench_pte_bytes(void)
{
    char line[256];
    long long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmPTE: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

/* Timed runs are split into this many bursts and the best one counts, so that a burst in
 * which another process took the CPU does not (the machine may be shared). */
#define BENCH_BURSTS 10

/* A warm-up run of fn over a tenth of `iters`, then the lowest result of BENCH_BURSTS runs
 * sharing `iters`; negative as soon as a run returns a negative value (a failure). */
static inline double bench_best_of_bursts(double (*fn)(long), long iters)
{
    double best = 0;
    fn(iters / 10 + 1);
    for (int b = 0; b < BENCH_BURSTS; b++) {
        double t = fn(iters / BENCH_BURSTS + 1);
        if (t < 0)
            return t;
        if (b == 0 || t < best)
            best = t;
    }
    return best;
}

/* One figure of one repetition. bench/run gathers these lines across repetitions. */
static inline void bench_emit(const char *key, double value)
{
    printf("%s %.6g\n", key, value);
    fflush(stdout);
}

/* Parse a decimal count option value, exiting with a usage message on garbage. */
static inline long bench_count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "not a positive count: %s\n", s);
        exit(2);
    }
    return v;
}

#endif /* ASYNCJOB_BENCH_H */
