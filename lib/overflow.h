/* overflow.h: the overflow report (asyncjob_overflow_report(3)), beside the pool like the
 * debug registry: a SIGSEGV/SIGBUS handler, installed only when asked, that names the job
 * whose stack guard a fault hit, then lets the fault take its course. The pool calls
 * overflow_thread_ready() where a thread may start running jobs (off the hot path). */
#ifndef ASYNCJOB_OVERFLOW_H
#define ASYNCJOB_OVERFLOW_H

#include "asyncjob.h"
#include "compiler.h"

/* Nonzero while the report is on (relaxed atomic: a thread that sees it late sets up its
 * alternate stack at its next chance). */
extern int overflow_on;

/* The alternate signal stack the library mapped for the calling thread, or NULL. */
extern __thread void *overflow_thread_altstack TLS_INITIAL_EXEC;

/* Give the calling thread its alternate signal stack (the handler runs there, since the
 * stack that overflowed cannot take a signal frame); freed at thread exit. */
void overflow_thread_setup(void);

/* Called when the calling thread sets up its pool or creates a job. */
static inline void overflow_thread_ready(void)
{
    if (unlikely(__atomic_load_n(&overflow_on, __ATOMIC_RELAXED)) &&
        overflow_thread_altstack == NULL)
        overflow_thread_setup();
}

/* At the first pool set-up of the process: turn the report on if ASYNCJOB_OVERFLOW_REPORT
 * is 1, or if it is unset or empty and overflow_default is nonzero (the drop-in sets it). */
extern int overflow_default;
void overflow_read_env(void);

/* The body of asyncjob_overflow_report(). */
int overflow_report(int on);

#endif /* ASYNCJOB_OVERFLOW_H */
