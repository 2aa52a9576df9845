/*
 * ossl_side.c: a shared object linked only against OpenSSL's libcrypto. It runs
 * libcrypto's own ASYNC jobs; test_coexist loads it next to libasyncjob to show that
 * symbol versions keep each library's ASYNC_* calls bound to that library.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stddef.h>

#include <openssl/async.h>

#include "ossl_side.h"

struct job_args {
    int pauses;
    int (*inner)(void);
};

static int key; /* the wait ctx key: compared as a pointer */

/* The job body: pause `pauses` times; after each resume, check that libcrypto still sees
 * this job as current and call inner(). */
static int ossl_job(void *arg)
{
    const struct job_args *a = arg;
    ASYNC_JOB *self = ASYNC_get_current_job();
    if (self == NULL)
        return -10;
    ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(self);
    if (ctx == NULL || !ASYNC_WAIT_CTX_set_wait_fd(ctx, &key, 7, NULL, NULL))
        return -11;
    int sum = 1000;
    for (int i = 0; i < a->pauses; i++) {
        if (!ASYNC_pause_job())
            return -12;
        if (ASYNC_get_current_job() != self)
            return -13;
        if (a->inner != NULL)
            sum += a->inner();
        sum++;
    }
    return sum;
}

int ossl_side_run(int pauses, int (*inner)(void))
{
    struct job_args a = { pauses, inner };
    ASYNC_WAIT_CTX *ctx = ASYNC_WAIT_CTX_new();
    if (ctx == NULL)
        return -1;
    ASYNC_JOB *job = NULL;
    int ret = 0, seen_pauses = 0, result = -2;
    for (;;) {
        int rc = ASYNC_start_job(&job, ctx, &ret, ossl_job, &a, sizeof a);
        if (rc == ASYNC_PAUSE) {
            OSSL_ASYNC_FD fd = -1;
            void *data = NULL;
            /* The fd the job registered must be visible through libcrypto's wait ctx. */
            if (!ASYNC_WAIT_CTX_get_fd(ctx, &key, &fd, &data) || fd != 7) {
                result = -3;
                break;
            }
            seen_pauses++;
            continue;
        }
        if (rc == ASYNC_FINISH)
            result = seen_pauses == pauses ? ret : -4;
        else
            result = -5; /* ASYNC_ERR or ASYNC_NO_JOBS */
        break;
    }
    ASYNC_WAIT_CTX_free(ctx);
    return result;
}

const char *ossl_side_binding(void)
{
    Dl_info info;
    if (dladdr((void *)&ASYNC_start_job, &info) == 0 || info.dli_fname == NULL)
        return "";
    return info.dli_fname;
}

int ossl_side_outside_job(void)
{
    return ASYNC_get_current_job() == NULL;
}
