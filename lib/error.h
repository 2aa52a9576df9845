/*
 * error.h: the per-thread error code behind asyncjob_last_error().
 * Every layer records its failures here; the table of messages lives in error.c.
 */
#ifndef ASYNCJOB_ERROR_H
#define ASYNCJOB_ERROR_H

#include "asyncjob.h"
#include "compiler.h"

/* Thread-local; initial-exec so that reading or writing it never calls __tls_get_addr. */
extern __thread int error_last TLS_INITIAL_EXEC;

/* Record `code` for the calling thread. Kept inline: it is a single store. */
static inline void error_set(enum asyncjob_error code)
{
    error_last = (int)code;
}

#endif /* ASYNCJOB_ERROR_H */
