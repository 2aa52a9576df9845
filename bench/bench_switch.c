/*
 * bench_switch.c: ns per there-and-back switch between two stacks for what a job library
 * can be built on: fcontext inline and behind one out-of-line call per side, OpenSSL's
 * _setjmp/_longjmp on makecontext stacks, and swapcontext.
 */
#undef _FORTIFY_SOURCE /* __longjmp_chk refuses to jump to another stack */
#include "config.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_UCONTEXT_FUNCS
# include <ucontext.h>
#endif

#include "../third_party/fcontext/fcontext.h"
#include "bench.h"

#define STACK_BYTES (64 * 1024)

static char *new_stack(void)
{
    char *s = malloc(STACK_BYTES);
    if (s == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return s;
}

/* --- fcontext, inline: both loops call jump_fcontext directly. --- */

static void inline_peer(transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, NULL);
}

static double fctx_inline(long iters)
{
    char *stack = new_stack();
    transfer_t t = jump_fcontext(make_fcontext(stack + STACK_BYTES, STACK_BYTES, inline_peer),
                                 NULL);
    uint64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        t = jump_fcontext(t.fctx, NULL);
    uint64_t t1 = bench_now();
    free(stack); /* the peer is parked forever; its stack is simply dropped */
    return (double)(t1 - t0) / iters;
}

/* --- fcontext behind one out-of-line call per side: what every non-inlined API pays.
 * noipa (noinline for clang, which lacks it) keeps the call a call; the empty asm after the
 * switch keeps it from becoming a tail jump, so a real frame returns after it. --- */

#if defined(__clang__)
# define BENCH_OUT_OF_LINE __attribute__((noinline))
#else
# define BENCH_OUT_OF_LINE __attribute__((noipa))
#endif

BENCH_OUT_OF_LINE static fcontext_t ool_switch(fcontext_t to)
{
    transfer_t t = jump_fcontext(to, NULL);
    __asm__ volatile("" ::: "memory");
    return t.fctx;
}

static void ool_peer(transfer_t t)
{
    fcontext_t back = t.fctx;
    for (;;)
        back = ool_switch(back);
}

static double fctx_ool(long iters)
{
    char *stack = new_stack();
    fcontext_t peer = jump_fcontext(make_fcontext(stack + STACK_BYTES, STACK_BYTES, ool_peer),
                                    NULL).fctx;
    uint64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        peer = ool_switch(peer);
    uint64_t t1 = bench_now();
    free(stack);
    return (double)(t1 - t0) / iters;
}

#ifdef HAVE_UCONTEXT_FUNCS /* not in every libc: musl has no ucontext functions */
/* --- _setjmp/_longjmp between stacks made by makecontext: OpenSSL's libcrypto switch.
 * The first entry into a fibre goes through setcontext; every later one is a _longjmp
 * to where the fibre last called _setjmp. --- */

struct sj_fibre {
    ucontext_t uc;
    jmp_buf env;
    int env_init;
};

static struct sj_fibre sj_main, sj_peer;

static inline void sj_swap(struct sj_fibre *from, struct sj_fibre *to)
{
    from->env_init = 1;
    if (_setjmp(from->env) == 0) {
        if (to->env_init)
            _longjmp(to->env, 1);
        setcontext(&to->uc);
    }
}

static void sj_peer_main(void)
{
    for (;;)
        sj_swap(&sj_peer, &sj_main);
}

static double setjmp_switch(long iters)
{
    char *stack = new_stack();
    memset(&sj_main, 0, sizeof sj_main);
    memset(&sj_peer, 0, sizeof sj_peer);
    if (getcontext(&sj_peer.uc) != 0)
        exit(1);
    sj_peer.uc.uc_stack.ss_sp = stack;
    sj_peer.uc.uc_stack.ss_size = STACK_BYTES;
    sj_peer.uc.uc_link = NULL;
    makecontext(&sj_peer.uc, sj_peer_main, 0);
    sj_swap(&sj_main, &sj_peer); /* first entry; the peer comes straight back */
    uint64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        sj_swap(&sj_main, &sj_peer);
    uint64_t t1 = bench_now();
    free(stack);
    return (double)(t1 - t0) / iters;
}

/* --- swapcontext: saves and restores the signal mask, a system call each way. --- */

static ucontext_t uc_main, uc_peer;

static void uc_peer_main(void)
{
    for (;;)
        swapcontext(&uc_peer, &uc_main);
}

static double ucontext_switch(long iters)
{
    char *stack = new_stack();
    if (getcontext(&uc_peer) != 0)
        exit(1);
    uc_peer.uc_stack.ss_sp = stack;
    uc_peer.uc_stack.ss_size = STACK_BYTES;
    uc_peer.uc_link = NULL;
    makecontext(&uc_peer, uc_peer_main, 0);
    swapcontext(&uc_main, &uc_peer);
    uint64_t t0 = bench_now();
    for (long i = 0; i < iters; i++)
        swapcontext(&uc_main, &uc_peer);
    uint64_t t1 = bench_now();
    free(stack);
    return (double)(t1 - t0) / iters;
}
#endif /* HAVE_UCONTEXT_FUNCS */

int main(int argc, char **argv)
{
    long iters = 2000000;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            iters = 20000;
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = bench_count(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--iters N] [--only NAME]\n", argv[0]);
            return 2;
        }
    }
    static const struct {
        const char *key;
        double (*fn)(long);
        long div; /* swapcontext makes system calls: fewer iterations keep its run short */
    } variants[] = {
        { "fctx_inline", fctx_inline, 1 },
        { "fctx_ool", fctx_ool, 1 },
#ifdef HAVE_UCONTEXT_FUNCS
        { "setjmp", setjmp_switch, 1 },
        { "ucontext", ucontext_switch, 10 },
#endif
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        if (only != NULL && strcmp(only, variants[v].key) != 0)
            continue;
        long n = iters / variants[v].div;
        if (n < 1)
            n = 1;
        bench_emit(variants[v].key, bench_best_of_bursts(variants[v].fn, n));
    }
    return 0;
}
