/*
 * bench_peers.cpp: bench_api's "rt" loop (resume, which yields straight back) on coroutine
 * APIs a user could pick instead: Boost.Context's C++ fiber, Boost.Coroutine2 and libpcl.
 * C++ for the benchmark only; prints "key ns" lines, the best of the bursts each.
 */
#include "config.h"

#include <boost/context/fiber.hpp>
#include <boost/coroutine2/coroutine.hpp>
#include <cstring>
#include <utility>

#ifdef HAVE_LIBPCL
# include <pcl.h>
#endif

#include "bench.h"

namespace ctx = boost::context;

/* Boost.Context's fiber: resume() into the fiber, which resumes its caller straight back. */
static double boost_fiber(long iters)
{
    bool stop = false;
    ctx::fiber f{[&stop](ctx::fiber &&caller) {
        while (!stop)
            caller = std::move(caller).resume();
        return std::move(caller);
    }};
    f = std::move(f).resume(); /* in and out once, so the loop times only round trips */
    uint64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        f = std::move(f).resume();
    uint64_t t1 = bench_now();
    stop = true;
    f = std::move(f).resume(); /* the fiber returns and is gone */
    return (double)(t1 - t0) / iters;
}

/* Boost.Coroutine2: an asymmetric coroutine; each call of the pull side is one round trip. */
static double coroutine2(long iters)
{
    typedef boost::coroutines2::coroutine<void> coro;
    bool stop = false;
    coro::pull_type source([&stop](coro::push_type &sink) {
        while (!stop)
            sink();
    });
    uint64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        source();
    uint64_t t1 = bench_now();
    stop = true;
    source();
    return (double)(t1 - t0) / iters;
}

#ifdef HAVE_LIBPCL
static bool pcl_stop;

static void pcl_body(void *)
{
    while (!pcl_stop)
        co_resume();
}

/* libpcl: co_call() into the coroutine, co_resume() back to its caller. */
static double pcl(long iters)
{
    static char stack[64 * 1024];
    pcl_stop = false;
    if (co_thread_init() != 0)
        return -1;
    coroutine_t co = co_create(pcl_body, NULL, stack, sizeof stack);
    if (co == NULL)
        return -1;
    uint64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        co_call(co);
    uint64_t t1 = bench_now();
    pcl_stop = true;
    co_call(co); /* the body returns, which ends the coroutine */
    co_thread_cleanup();
    return (double)(t1 - t0) / iters;
}
#endif

int main(int argc, char **argv)
{
    long iters = 2000000;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--quick") == 0)
            iters = 20000;
        else if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = bench_count(argv[++i]);
        else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            std::fprintf(stderr, "usage: %s [--quick] [--iters N] [--only NAME]\n", argv[0]);
            return 2;
        }
    }
    static const struct {
        const char *key;
        double (*fn)(long);
    } peers[] = {
        { "boost_fiber", boost_fiber },
        { "coroutine2", coroutine2 },
#ifdef HAVE_LIBPCL
        { "pcl", pcl },
#endif
    };
    for (const auto &p : peers) {
        if (only != NULL && std::strcmp(only, p.key) != 0)
            continue;
        double best = bench_best_of_bursts(p.fn, iters);
        if (best < 0) {
            std::fprintf(stderr, "%s: could not create the coroutine\n", p.key);
            return 1;
        }
        bench_emit(p.key, best);
    }
    return 0;
}
