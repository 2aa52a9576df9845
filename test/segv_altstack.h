/*
 * segv_altstack.h: for tests whose child process overflows a job stack on purpose. The
 * child's SIGSEGV handler must run on an alternate stack, since the stack that overflowed
 * is the one the signal would otherwise be delivered on.
 */
#ifndef ASYNCJOB_TEST_SEGV_ALTSTACK_H
#define ASYNCJOB_TEST_SEGV_ALTSTACK_H

#include <signal.h>
#include <string.h>

/* Install `handler` for SIGSEGV on a static alternate stack; 0, or -1 on failure. */
static inline int catch_segv_on_altstack(void (*handler)(int, siginfo_t *, void *))
{
    static char altstack[64 * 1024];
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0 };
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    return sigaltstack(&ss, NULL) == 0 && sigaction(SIGSEGV, &sa, NULL) == 0 ? 0 : -1;
}

#endif /* ASYNCJOB_TEST_SEGV_ALTSTACK_H */
