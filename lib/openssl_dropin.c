/* openssl_dropin.c: the adapter of libasyncjob-openssl.so (the core under libcrypto's
 * version node): a default library context per job, and failures on libcrypto's error queue.
 * It wraps the core's ASYNC_start_job and asyncjob_cancel_job (renamed dropin_core_*). */
#include "config.h"

#include <dlfcn.h>

#include <openssl/crypto.h>
#include <openssl/asyncerr.h>
#include <openssl/err.h>

#include "async.h"
#include "error.h"
#include "orphan.h"
#include "overflow.h"
#include "pool.h"

/* The core's ASYNC_start_job and asyncjob_cancel_job, renamed in the drop-in's copy. */
int dropin_core_start_job(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
                            int (*func)(void *), void *args, size_t size);
int dropin_core_cancel_job(ASYNC_JOB **job, int *ret);

/* libcrypto's own OSSL_LIB_CTX_set0_default, which the drop-in's definition forwards to. */
static OSSL_LIB_CTX *(*dropin_libcrypto_set0_default)(OSSL_LIB_CTX *libctx);

/* The thread's default library context, NULL until first read. Exact, since every change
 * goes through OSSL_LIB_CTX_set0_default below, libcrypto's own calls too (its PLT), so a
 * start reads it rather than calling libcrypto. */
static __thread OSSL_LIB_CTX *dropin_thread_libctx TLS_INITIAL_EXEC;

ASYNCJOB_API OSSL_LIB_CTX *OSSL_LIB_CTX_set0_default(OSSL_LIB_CTX *libctx)
{
    OSSL_LIB_CTX *prev =
        dropin_libcrypto_set0_default != NULL ? dropin_libcrypto_set0_default(libctx) : NULL;
    if (prev != NULL)
        dropin_thread_libctx = libctx != NULL ? libctx : prev;
    return prev;
}

/* The calling thread's default library context (NULL only if libcrypto's is unreachable). */
static OSSL_LIB_CTX *dropin_current_libctx(void)
{
    OSSL_LIB_CTX *c = dropin_thread_libctx;
    if (unlikely(c == NULL))
        c = OSSL_LIB_CTX_set0_default(NULL);
    return c;
}

/* The job the core will resume for this call, or NULL: a start, or a call it will refuse
 * (the core's own test, async_may_resume(), so a refused call touches no context). */
static ASYNC_JOB *dropin_resumable(ASYNC_JOB **job)
{
    if (job == NULL || *job == NULL)
        return NULL;
    const struct pool_thread *pt = pool_self();
    ASYNC_JOB *j = *job;
    return async_may_resume(pt, j) ? j : NULL;
}

/* Before the switch: a resumed job gets back the default it had when it paused. A new
 * job starts with its caller's, which is already in place. Setting a context equal to the
 * current one would change nothing, so that call is skipped. */
static void dropin_enter_libctx(ASYNC_JOB *resumed, OSSL_LIB_CTX *caller)
{
    if (resumed != NULL && resumed->adapter_data != NULL && resumed->adapter_data != caller)
        OSSL_LIB_CTX_set0_default(resumed->adapter_data);
}

/* After the switch: a paused job keeps its current default for its next resume, and the
 * caller gets its own back. */
static void dropin_leave_libctx(ASYNC_JOB **job, int rc, OSSL_LIB_CTX *caller)
{
    OSSL_LIB_CTX *now = dropin_current_libctx();
    if (rc == ASYNC_PAUSE)
        (*job)->adapter_data = now;
    if (now != caller && caller != NULL)
        OSSL_LIB_CTX_set0_default(caller);
}

/* The core's start returns after a switch, so this wrapper does too: a return helper
 * (doc/DESIGN.md, "Hot-path tricks"). */
FIBER_RETURN_HELPER_ARG(dropin_ret_start);

ASYNCJOB_API int ASYNC_start_job(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
                                 int (*func)(void *), void *args, size_t size)
{
    OSSL_LIB_CTX *caller = dropin_current_libctx();
    dropin_enter_libctx(dropin_resumable(job), caller);
    int rc = dropin_core_start_job(job, ctx, ret, func, args, size);
    dropin_leave_libctx(job, rc, caller);
    return dropin_ret_start(rc);
}

ASYNCJOB_API int asyncjob_cancel_job(ASYNC_JOB **job, int *ret)
{
    OSSL_LIB_CTX *caller = dropin_current_libctx();
    dropin_enter_libctx(dropin_resumable(job), caller);
    int rc = dropin_core_cancel_job(job, ret);
    dropin_leave_libctx(job, rc, caller);
    return rc;
}

/* libcrypto's reason code closest to each asyncjob error; the sentence carries the rest. */
static int dropin_reason_of(enum asyncjob_error code)
{
    switch (code) {
    case ASYNCJOB_EINVAL:
        return ERR_R_PASSED_INVALID_ARGUMENT;
    case ASYNCJOB_ENOMEM:
        return ERR_R_MALLOC_FAILURE;
    case ASYNCJOB_ERANGE:
        return ASYNC_R_INVALID_POOL_SIZE;
    case ASYNCJOB_ESTACK:
        return ASYNC_R_INIT_FAILED;
    default:
        return ERR_R_OPERATION_FAIL;
    }
}

/* Each failure of the core becomes an ERR_LIB_ASYNC entry with asyncjob's sentence, except
 * the two libcrypto reports without one (a lookup that finds nothing, a full pool): libssl
 * takes any queued entry for a fatal error (doc/DESIGN.md, "The OpenSSL drop-in"). */
static void dropin_queue_error(enum asyncjob_error code)
{
    if (code == ASYNCJOB_ENOENT || code == ASYNCJOB_EPOOLFULL)
        return;
    ERR_new();
    ERR_set_debug("asyncjob", 0, "asyncjob");
    ERR_set_error(ERR_LIB_ASYNC, dropin_reason_of(code), "%s", asyncjob_strerror((int)code));
}

/* libcrypto's definition of `name`, looked up in libcrypto itself (found through one of
 * its functions that the drop-in does not define), whatever the load order. */
static void *dropin_libcrypto_symbol(const char *name)
{
    Dl_info info;
    void *sym = NULL;
    if (dladdr((void *)ERR_new, &info) == 0 || info.dli_fname == NULL)
        return NULL;
    void *h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (h != NULL) {
        sym = dlsym(h, name);
        dlclose(h);
    }
    return sym;
}

__attribute__((constructor)) static void dropin_init(void)
{
    void *set0 = dropin_libcrypto_symbol("OSSL_LIB_CTX_set0_default");
    dropin_libcrypto_set0_default = (OSSL_LIB_CTX * (*)(OSSL_LIB_CTX *)) set0;
    error_hook = dropin_queue_error;
    overflow_default = 1; /* asyncjob-openssl(1): the overflow report is on unless turned off */
    orphan_reclaim = 1;   /* and orphaned jobs are reclaimed: libssl never resumes them */
}
