/*
 * bench_mapcap.c: jobs paused with the guards of a given mechanism (mprotect unless
 * --madvise; an internal hook: linked to the core library), up to --limit or the first
 * failure. Each mprotect guard splits its stack's mapping in two, so vm.max_map_count
 * would set the limit; past 7/8 of it new stacks are unguarded (asyncjob(7)). Prints how
 * many started, how many are unguarded, and mappings and resident KiB per job.
 */
#include "config.h"

#include <string.h>

#include "asyncjob.h"
#include "bench.h"
#include "../lib/stack.h"

struct ctl {
    volatile int stop;
};

static int pauser(void *arg)
{
    struct ctl *c = *(struct ctl **)arg;
    while (!c->stop)
        ASYNC_pause_job();
    return 0;
}

/* Lines of /proc/self/maps. */
static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (f == NULL)
        return -1;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    long limit = 1000000;
    enum stack_guard mode = STACK_GUARD_MPROTECT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            limit = bench_count(argv[++i]);
        } else if (strcmp(argv[i], "--madvise") == 0) {
            mode = STACK_GUARD_MADVISE;
        } else {
            fprintf(stderr, "usage: %s [--limit N] [--madvise]\n", argv[0]);
            return 2;
        }
    }
    if (!stack_set_guard_mode(mode)) {
        fprintf(stderr, "bench_mapcap: cannot force %s guards\n",
                mode == STACK_GUARD_MPROTECT ? "mprotect" : "madvise");
        return 1;
    }
    const char *name = mode == STACK_GUARD_MPROTECT ? "mprotect" : "madvise";
    ASYNC_JOB **jobs = calloc((size_t)limit, sizeof *jobs);
    if (jobs == NULL)
        return 1;
    memset(jobs, 0, (size_t)limit * sizeof *jobs); /* resident before the baseline */
    struct ctl c = { 0 }, *cp = &c;
    long n = 0, maps0 = count_maps();
    long long rss0 = bench_rss_bytes();
    int ret, err = 0;
    for (; n < limit; n++) {
        if (ASYNC_start_job(&jobs[n], NULL, &ret, pauser, &cp, sizeof cp) != ASYNC_PAUSE) {
            err = asyncjob_last_error();
            break;
        }
    }
    long long rss1 = bench_rss_bytes();
    long maps1 = count_maps();
    long maps = -1;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &maps) != 1)
            maps = -1;
        fclose(f);
    }
    char key[64];
    snprintf(key, sizeof key, "%s_reached", name);
    bench_emit(key, (double)n);
    snprintf(key, sizeof key, "%s_unguarded", name);
    bench_emit(key, (double)asyncjob_unguarded_stacks());
    snprintf(key, sizeof key, "%s_maps_per_job", name);
    bench_emit(key, n > 0 ? (double)(maps1 - maps0) / n : 0);
    snprintf(key, sizeof key, "%s_kib_per_job", name);
    bench_emit(key, n > 0 ? (double)(rss1 - rss0) / 1024.0 / n : 0);
    bench_emit("max_map_count", (double)maps);
    if (err != 0)
        printf("%s_error %s\n", name, asyncjob_strerror(err));
    /* Left paused for the process exit to reclaim, as in the scale benchmark. */
    fflush(stdout);
    _exit(0);
}
