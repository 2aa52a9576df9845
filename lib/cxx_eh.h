/* cxx_eh.h: the C++ runtime's per-thread exception state (the list of exceptions being
 * handled, the count of those thrown and not caught yet), which a job that asked for it
 * (asyncjob_isolate_exceptions()) keeps apart from its dispatcher's across each switch.
 * The state is reached through __cxa_get_globals(), which libstdc++ and libc++abi both
 * define with the Itanium C++ ABI's layout; a weak reference, so that a C program needs
 * no C++ runtime. Nothing here is on the hot path: only jobs that asked pay. */
#ifndef ASYNCJOB_CXX_EH_H
#define ASYNCJOB_CXX_EH_H

#include <stddef.h>

#include "compiler.h"

/* The leading fields of the runtime's __cxa_eh_globals: the Itanium ABI's two, plus the
 * list of exceptions being propagated that ARM's exception ABI adds. */
struct cxx_eh_state {
    void *caught;
    unsigned int uncaught;
#if defined(__arm__) && defined(__ARM_EABI__)
    void *propagating;
#endif
};

#if defined(__ELF__)
# define CXX_EH_WEAK 1
struct cxx_eh_state *__cxa_get_globals(void) __attribute__((weak));
#endif

/* The calling thread's state, or NULL if no C++ runtime is loaded. */
static inline struct cxx_eh_state *cxx_eh_globals(void)
{
#ifdef CXX_EH_WEAK
    if (__cxa_get_globals != NULL)
        return __cxa_get_globals();
#endif
    return NULL;
}

/* Exchange the thread's state with `saved`. */
static inline void cxx_eh_swap(struct cxx_eh_state *saved)
{
    struct cxx_eh_state *g = cxx_eh_globals();
    if (g != NULL) {
        struct cxx_eh_state t = *g;
        *g = *saved;
        *saved = t;
    }
}

#endif /* ASYNCJOB_CXX_EH_H */
