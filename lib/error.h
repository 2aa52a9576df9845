/* error.h: the per-thread error code behind asyncjob_last_error().
 * Every layer records its failures here; the table of messages lives in error.c. */
#ifndef ASYNCJOB_ERROR_H
#define ASYNCJOB_ERROR_H

#include "asyncjob.h"
#include "compiler.h"

/* Thread-local; initial-exec so that reading or writing it never calls __tls_get_addr. */
extern __thread int error_last TLS_INITIAL_EXEC;

/* NULL in libasyncjob. The OpenSSL drop-in (lib/openssl_dropin.c) points it at a function
 * that also queues each failure on libcrypto's error stack. Read on failure paths only. */
extern void (*error_hook)(enum asyncjob_error code) HIDDEN;

/* Record `code` for the calling thread: a store, and a test that fails outside the drop-in. */
static inline void error_set(enum asyncjob_error code)
{
    error_last = (int)code;
    if (unlikely(error_hook != NULL))
        error_hook(code);
}

#endif /* ASYNCJOB_ERROR_H */
