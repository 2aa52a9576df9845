/*
 * asyncjob.h: the public interface of asyncjob.
 *
 * asyncjob implements OpenSSL 3.x's ASYNC_JOB and ASYNC_WAIT_CTX API (same names,
 * prototypes and constants) as a standalone library, plus a few asyncjob_* additions.
 * Code written for <openssl/async.h> builds against it by changing the include line.
 */
#ifndef ASYNCJOB_H
#define ASYNCJOB_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every public function carries ASYNCJOB_API; the library is built with hidden
 * visibility, so anything without it stays internal. On Windows the DLL's exports are
 * listed by a .def file made from lib/asyncjob.abi, and callers reach them through the
 * import library, so the same declarations serve the DLL and the static library. */
#if defined(ASYNCJOB_BUILDING) && defined(__GNUC__) && !defined(_WIN32)
# define ASYNCJOB_API __attribute__((visibility("default")))
#else
# define ASYNCJOB_API
#endif

#define ASYNCJOB_VERSION_MAJOR 1
#define ASYNCJOB_VERSION_MINOR 0
#define ASYNCJOB_VERSION_PATCH 0
#define ASYNCJOB_VERSION_STRING "1.0.0"

/* <openssl/async.h> (which <openssl/ssl.h> includes) declares these too: its wait fd type
 * is a macro, so both define it only if it is not defined yet, and its three typedefs are
 * not repeated after it (a repeated typedef is an error before C11). */
#ifndef OSSL_ASYNC_FD
# ifdef _WIN32 /* a HANDLE (an event, a pipe...), as in OpenSSL's header on Windows */
#  include <windows.h>
#  define OSSL_ASYNC_FD HANDLE
#  define OSSL_BAD_ASYNC_FD INVALID_HANDLE_VALUE
# else
#  define OSSL_ASYNC_FD int
#  define OSSL_BAD_ASYNC_FD -1
# endif
#endif
#ifndef OPENSSL_ASYNC_H
typedef struct async_job_st ASYNC_JOB;
typedef struct async_wait_ctx_st ASYNC_WAIT_CTX;
typedef int (*ASYNC_callback_fn)(void *arg);
#endif
typedef void *(*ASYNC_stack_alloc_fn)(size_t *num);
typedef void (*ASYNC_stack_free_fn)(void *addr);

/* Results of ASYNC_start_job. */
#define ASYNC_ERR 0
#define ASYNC_NO_JOBS 1
#define ASYNC_PAUSE 2
#define ASYNC_FINISH 3

/* Values for ASYNC_WAIT_CTX_set_status / _get_status. */
#define ASYNC_STATUS_UNSUPPORTED 0
#define ASYNC_STATUS_ERR 1
#define ASYNC_STATUS_OK 2
#define ASYNC_STATUS_EAGAIN 3

/* Thread pool and job lifecycle. */
ASYNCJOB_API int ASYNC_init_thread(size_t max_size, size_t init_size);
ASYNCJOB_API void ASYNC_cleanup_thread(void);
ASYNCJOB_API int ASYNC_start_job(ASYNC_JOB **job, ASYNC_WAIT_CTX *ctx, int *ret,
                                 int (*func)(void *), void *args, size_t size);
ASYNCJOB_API int ASYNC_pause_job(void);
ASYNCJOB_API ASYNC_JOB *ASYNC_get_current_job(void);
ASYNCJOB_API ASYNC_WAIT_CTX *ASYNC_get_wait_ctx(ASYNC_JOB *job);
ASYNCJOB_API void ASYNC_block_pause(void);
ASYNCJOB_API void ASYNC_unblock_pause(void);
ASYNCJOB_API int ASYNC_is_capable(void);
ASYNCJOB_API int ASYNC_set_mem_functions(ASYNC_stack_alloc_fn alloc_fn,
                                         ASYNC_stack_free_fn free_fn);
ASYNCJOB_API void ASYNC_get_mem_functions(ASYNC_stack_alloc_fn *alloc_fn,
                                          ASYNC_stack_free_fn *free_fn);

/* Wait contexts: how a paused job tells its caller what it waits for. */
ASYNCJOB_API ASYNC_WAIT_CTX *ASYNC_WAIT_CTX_new(void);
ASYNCJOB_API void ASYNC_WAIT_CTX_free(ASYNC_WAIT_CTX *ctx);
ASYNCJOB_API int ASYNC_WAIT_CTX_set_wait_fd(ASYNC_WAIT_CTX *ctx, const void *key,
                                            OSSL_ASYNC_FD fd, void *custom_data,
                                            void (*cleanup)(ASYNC_WAIT_CTX *, const void *,
                                                            OSSL_ASYNC_FD, void *));
ASYNCJOB_API int ASYNC_WAIT_CTX_get_fd(ASYNC_WAIT_CTX *ctx, const void *key,
                                       OSSL_ASYNC_FD *fd, void **custom_data);
ASYNCJOB_API int ASYNC_WAIT_CTX_get_all_fds(ASYNC_WAIT_CTX *ctx, OSSL_ASYNC_FD *fd,
                                            size_t *numfds);
ASYNCJOB_API int ASYNC_WAIT_CTX_get_changed_fds(ASYNC_WAIT_CTX *ctx, OSSL_ASYNC_FD *addfd,
                                                size_t *numaddfds, OSSL_ASYNC_FD *delfd,
                                                size_t *numdelfds);
ASYNCJOB_API int ASYNC_WAIT_CTX_clear_fd(ASYNC_WAIT_CTX *ctx, const void *key);
ASYNCJOB_API int ASYNC_WAIT_CTX_set_callback(ASYNC_WAIT_CTX *ctx, ASYNC_callback_fn callback,
                                             void *callback_arg);
ASYNCJOB_API int ASYNC_WAIT_CTX_get_callback(ASYNC_WAIT_CTX *ctx, ASYNC_callback_fn *callback,
                                             void **callback_arg);
ASYNCJOB_API int ASYNC_WAIT_CTX_set_status(ASYNC_WAIT_CTX *ctx, int status);
ASYNCJOB_API int ASYNC_WAIT_CTX_get_status(ASYNC_WAIT_CTX *ctx);

/*
 * asyncjob additions.
 *
 * Error codes: every asyncjob call that fails (returns ASYNC_ERR, ASYNC_NO_JOBS, 0 or
 * NULL for failure) records one of these for the calling thread. Like errno, a later
 * success does not clear it. The values are part of the ABI and never renumbered.
 */
enum asyncjob_error {
    ASYNCJOB_OK = 0,            /* no failure recorded yet */
    ASYNCJOB_EINVAL = 1,        /* an argument is invalid (NULL where not allowed, size 0) */
    ASYNCJOB_ENOMEM = 2,        /* a heap allocation failed */
    ASYNCJOB_ESTACK = 3,        /* a job stack could not be allocated */
    ASYNCJOB_EPOOLFULL = 4,     /* the pool reached max_size and no job is idle */
    ASYNCJOB_EWRONGTHREAD = 5,  /* the job belongs to another thread */
    ASYNCJOB_ENESTED = 6,       /* ASYNC_start_job called from inside a running job */
    ASYNCJOB_ENOTPAUSED = 7,    /* the handle is not a paused job */
    ASYNCJOB_EINJOB = 8,        /* the call is not allowed from inside a job */
    ASYNCJOB_ELOCKED = 9,       /* stack functions can no longer change: stacks exist */
    ASYNCJOB_ENOENT = 10,       /* no wait ctx entry or callback matches */
    ASYNCJOB_ECANCELED = 11,    /* the job was cancelled: pausing is refused */
    ASYNCJOB_ERANGE = 12,       /* init_size exceeds max_size */
    ASYNCJOB_ESTACKSIZE = 13,   /* stack size below 16 KiB or above 1 GiB */
    ASYNCJOB_ENOTSUP = 14,      /* not supported here: a custom stack's use, no C++ runtime */
    ASYNCJOB_EGUARDSIZE = 15,   /* guard size 0 or above 256 MiB */
    ASYNCJOB_ENOGUARD = 16,     /* strict guards: a stack's guard could not be installed */
    ASYNCJOB_EPOOLSIZE = 17,    /* max_size or init_size above INT_MAX */
    ASYNCJOB_ENOJOB = 18        /* the call needs a running job and there is none */
};

/* The calling thread's most recent error code (0 if none yet). */
ASYNCJOB_API int asyncjob_last_error(void);

/* A short English sentence for any code; never NULL. */
ASYNCJOB_API const char *asyncjob_strerror(int code);

/*
 * Cancel a paused job. The job is resumed in cancel mode: from then on every
 * ASYNC_pause_job() inside it returns 0 at once (asyncjob_last_error() ==
 * ASYNCJOB_ECANCELED) without pausing, even while pausing is blocked, so the job's own
 * error handling unwinds it. Returns ASYNC_FINISH with *ret set to the job's return value
 * (unless ret is NULL) and *job set to NULL; the job goes back to the pool (or is freed if
 * ASYNC_cleanup_thread() orphaned it). Fails like a resume does, returning ASYNC_ERR with
 * the job, *job and *ret untouched: ASYNCJOB_EINVAL (job or *job NULL),
 * ASYNCJOB_EWRONGTHREAD, ASYNCJOB_ENESTED (called from inside a job), ASYNCJOB_ENOTPAUSED.
 */
ASYNCJOB_API int asyncjob_cancel_job(ASYNC_JOB **job, int *ret);

/*
 * Job stacks (asyncjob_set_stack_size(3)). The size of the stacks the default allocator
 * makes from now on, process-wide: 16 KiB to 1 GiB, rounded up to whole pages; returns 1,
 * or 0 with ASYNCJOB_ESTACKSIZE. The first value comes from ASYNCJOB_STACK_SIZE ("256K")
 * if it is valid, else 32768. asyncjob_get_stack_size() returns the size in force (times
 * 8 under AddressSanitizer, as applied). asyncjob_stack_peak() returns how many bytes of a
 * paused or running job's stack are in touched pages (0 with an error code for NULL, an
 * idle job, another thread's job, a custom allocator's stack). asyncjob_trim_thread()
 * frees the calling thread's idle jobs beyond `keep` and returns how many it freed (0 and
 * ASYNCJOB_EINJOB from inside a job).
 */
ASYNCJOB_API int asyncjob_set_stack_size(size_t bytes);
ASYNCJOB_API size_t asyncjob_get_stack_size(void);
ASYNCJOB_API size_t asyncjob_stack_peak(const ASYNC_JOB *job);
ASYNCJOB_API size_t asyncjob_trim_thread(size_t keep);

/*
 * Guards (asyncjob_set_guard_size(3)). Below every default stack lies a guard: address
 * space that refuses access, 64 KiB unless ASYNCJOB_GUARD_SIZE or
 * asyncjob_set_guard_size() says otherwise (1 byte to 256 MiB, rounded up to pages; 0 and
 * ASYNCJOB_EGUARDSIZE otherwise), for stacks made from then on. A stack that cannot be
 * guarded (mprotect guards past 7/8 of vm.max_map_count, or out of mappings) is made
 * without a guard and counted by asyncjob_unguarded_stacks(), unless strict guards are on
 * (ASYNCJOB_STRICT_GUARDS=1, asyncjob_set_strict_guards(1), which returns the previous
 * setting): then the start returns ASYNC_NO_JOBS with ASYNCJOB_ENOGUARD.
 */
ASYNCJOB_API int asyncjob_set_guard_size(size_t bytes);
ASYNCJOB_API size_t asyncjob_get_guard_size(void);
ASYNCJOB_API int asyncjob_set_strict_guards(int on);
ASYNCJOB_API size_t asyncjob_unguarded_stacks(void);

/*
 * Stack overflows (asyncjob_overflow_report(3)). asyncjob_overflow_report(1) installs a
 * SIGSEGV and SIGBUS handler that writes one line to stderr when a fault hits the guard
 * below a job's stack (the job, its start function, its stack size, how to raise it), then
 * lets the fault kill the process as it would have; other faults go to the handler that
 * was there before. Threads that run jobs get an alternate signal stack. 0 puts the
 * previous handlers back. ASYNCJOB_OVERFLOW_REPORT=1 turns it on at the first job; the
 * OpenSSL drop-in turns it on unless it is 0. asyncjob_guard_job() returns the job whose stack
 * guard holds `addr`, or NULL; async-signal-safe, for a program's own handler.
 */
ASYNCJOB_API int asyncjob_overflow_report(int on);
ASYNCJOB_API ASYNC_JOB *asyncjob_guard_job(const void *addr);

/*
 * Threads (asyncjob_abandon_job(3)). asyncjob_abandon_job() recovers a thread whose
 * running job was left without returning or pausing (a longjmp out of it): called outside
 * that job's stack, it frees the job without running anything on its stack and returns 1;
 * 0 with ASYNCJOB_ENOJOB if no job is running, ASYNCJOB_EINJOB if called on the running
 * job's own stack. asyncjob_isolate_exceptions(), called inside a job, gives the job its
 * own C++ exception-handling state until it finishes (try/catch blocks across a pause):
 * 1, or 0 with ASYNCJOB_ENOJOB outside a job, ASYNCJOB_ENOTSUP without a C++ runtime.
 */
ASYNCJOB_API int asyncjob_abandon_job(void);
ASYNCJOB_API int asyncjob_isolate_exceptions(void);

/*
 * Orphaned jobs (asyncjob_reclaim_orphans(3)). With reclaiming on, ASYNC_WAIT_CTX_free()
 * of a ctx that a paused job of the calling thread waits with takes that job for good: it
 * is never resumed (its handle is refused), its stack's pages are given back at once, and
 * after a quarantine of one second it serves new jobs. Off unless asked (the call, or
 * ASYNCJOB_RECLAIM_ORPHANS=1); on by default under the OpenSSL drop-in. Returns the
 * previous setting.
 */
ASYNCJOB_API int asyncjob_reclaim_orphans(int on);

/*
 * libcrypto exports the same ASYNC_* names: the linker binds a program's calls to whichever
 * of libasyncjob and libcrypto comes first on its link line, so put -lasyncjob before
 * -lcrypto. asyncjob(7), "OPENSSL IN THE SAME PROGRAM".
 */

#ifdef __cplusplus
}
#endif

#endif /* ASYNCJOB_H */
