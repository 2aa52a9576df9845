/* error.c: asyncjob_last_error() and asyncjob_strerror(). The one table of error
 * messages; codes are the enum asyncjob_error of <asyncjob.h>. */
#include "config.h"

#include "error.h"

__thread int error_last TLS_INITIAL_EXEC;

void (*error_hook)(enum asyncjob_error code);

static const char *const error_messages[] = {
    [ASYNCJOB_OK] = "No error.",
    [ASYNCJOB_EINVAL] = "Invalid argument.",
    [ASYNCJOB_ENOMEM] = "Out of memory.",
    [ASYNCJOB_ESTACK] = "A job stack could not be allocated.",
    [ASYNCJOB_EPOOLFULL] = "The job pool is exhausted: max_size jobs exist and none is idle.",
    [ASYNCJOB_EWRONGTHREAD] = "The job belongs to another thread.",
    [ASYNCJOB_ENESTED] = "A job cannot be started or resumed from inside a running job.",
    [ASYNCJOB_ENOTPAUSED] = "The handle is not a paused job.",
    [ASYNCJOB_EINJOB] = "This call is not allowed from inside a running job.",
    [ASYNCJOB_ELOCKED] = "Stack functions cannot change once a job stack has been allocated.",
    [ASYNCJOB_ENOENT] = "No matching entry.",
    [ASYNCJOB_ECANCELED] = "The job was cancelled: it can no longer pause.",
    [ASYNCJOB_ERANGE] = "init_size is larger than max_size.",
    [ASYNCJOB_ESTACKSIZE] = "The stack size is below 16 KiB or above 1 GiB.",
    [ASYNCJOB_ENOTSUP] = "Not supported here: a custom allocator's stack cannot be measured, no C++ runtime is loaded, or the platform lacks the feature.",
    [ASYNCJOB_EGUARDSIZE] = "The guard size must be at least 1 byte (one page) and at most 256 MiB.",
    [ASYNCJOB_ENOGUARD] = "Strict guards are on and a job stack's guard could not be installed (out of memory mappings: see vm.max_map_count).",
    [ASYNCJOB_EPOOLSIZE] = "max_size or init_size is larger than INT_MAX.",
    [ASYNCJOB_ENOJOB] = "No job is running on this thread.",
    [ASYNCJOB_ESTOPPED] = "The callback returned 0: the report stopped there.",
};

ASYNCJOB_API int asyncjob_last_error(void)
{
    return error_last;
}

ASYNCJOB_API const char *asyncjob_strerror(int code)
{
    if (code < 0 || (size_t)code >= sizeof(error_messages) / sizeof(error_messages[0]) ||
        error_messages[code] == NULL)
        return "Unknown error code.";
    return error_messages[code];
}
