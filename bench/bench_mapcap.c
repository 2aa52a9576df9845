/*
 * bench_mapcap.c: how many jobs pause without MADV_GUARD_INSTALL. Forces the mprotect guards
 * (an internal hook: linked to the core library) and starts jobs until one fails; each guard
 * splits its stack's mapping in two, so vm.max_map_count sets the limit.
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

int main(int argc, char **argv)
{
    long limit = 1000000;
    if (argc == 3 && strcmp(argv[1], "--limit") == 0)
        limit = bench_count(argv[2]);
    else if (argc != 1) {
        fprintf(stderr, "usage: %s [--limit N]\n", argv[0]);
        return 2;
    }
    if (!stack_set_guard_mode(STACK_GUARD_MPROTECT)) {
        fprintf(stderr, "bench_mapcap: cannot force mprotect guards\n");
        return 1;
    }
    ASYNC_JOB **jobs = calloc((size_t)limit, sizeof *jobs);
    if (jobs == NULL)
        return 1;
    struct ctl c = { 0 }, *cp = &c;
    long n = 0;
    int ret, err = 0;
    for (; n < limit; n++) {
        if (ASYNC_start_job(&jobs[n], NULL, &ret, pauser, &cp, sizeof cp) != ASYNC_PAUSE) {
            err = asyncjob_last_error();
            break;
        }
    }
    long maps = -1;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &maps) != 1)
            maps = -1;
        fclose(f);
    }
    bench_emit("mprotect_reached", (double)n);
    bench_emit("max_map_count", (double)maps);
    if (err != 0)
        printf("mprotect_error %s\n", asyncjob_strerror(err));
    /* Left paused for the process exit to reclaim, as in the scale benchmark. */
    fflush(stdout);
    _exit(0);
}
