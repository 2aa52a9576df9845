/* wait_ctx.c: the ASYNC_WAIT_CTX_* family. A wait ctx is a list of (key, fd, data,
 * cleanup) entries, a callback and a status, owned by one thread. Part of the API layer. */
#include "config.h"

#include "alloc.h"
#include "error.h"
#include "orphan.h"
#include "wait_ctx.h"

typedef void (*wait_ctx_cleanup_fn)(ASYNC_WAIT_CTX *, const void *, OSSL_ASYNC_FD, void *);

struct wait_ctx_fd {
    struct wait_ctx_fd *next;
    const void *key;
    OSSL_ASYNC_FD fd;
    void *custom_data;
    wait_ctx_cleanup_fn cleanup;
    int add;   /* added since the last reset */
    int del;   /* cleared since the last reset: invisible, reported in the del list */
    int held;  /* reported added by asyncjob_wait_ctx_sync(), not yet removed: polled */
};

ASYNC_WAIT_CTX wait_ctx_none = { .freed = 1 };
ASYNC_WAIT_CTX wait_ctx_cancel = { .changed = 1, .freed = 1 };

ASYNCJOB_API ASYNC_WAIT_CTX *ASYNC_WAIT_CTX_new(void)
{
    ASYNC_WAIT_CTX *ctx = alloc_heap_zero(sizeof(*ctx));
    if (ctx == NULL) {
        error_set(ASYNCJOB_ENOMEM);
        return NULL;
    }
    ctx->refs = 1;
    return ctx;
}

/* Free every entry; with `cleanup`, call the cleanup function of each one not cleared. */
static void wait_ctx_drop_entries(ASYNC_WAIT_CTX *ctx, int cleanup)
{
    struct wait_ctx_fd *e = ctx->fds;
    ctx->fds = NULL;
    while (e != NULL) {
        struct wait_ctx_fd *next = e->next;
        if (cleanup && !e->del && e->cleanup != NULL)
            e->cleanup(ctx, e->key, e->fd, e->custom_data);
        alloc_heap_free(e);
        e = next;
    }
    ctx->changed = 0;
}

COLD void wait_ctx_destroy(ASYNC_WAIT_CTX *ctx)
{
    assert(ctx->refs == 0);
    /* Only entries added through a stale pointer after ASYNC_WAIT_CTX_free() can be
     * left here; their owner gave up the ctx, so no cleanup is called for them. */
    wait_ctx_drop_entries(ctx, 0);
    alloc_heap_free(ctx);
}

ASYNCJOB_API void ASYNC_WAIT_CTX_free(ASYNC_WAIT_CTX *ctx)
{
    if (ctx == NULL || ctx->freed)
        return;
    wait_ctx_drop_entries(ctx, 1);
    /* Jobs still holding the ctx see NULL from ASYNC_get_wait_ctx() from now on; the
     * memory stays until the last of them finishes. */
    ctx->freed = 1;
    ctx->callback = NULL;
    ctx->callback_arg = NULL;
    if (ctx->refs > 1)
        orphan_reclaim_ctx(ctx);
    if (--ctx->refs == 0)
        wait_ctx_destroy(ctx);
}

ASYNCJOB_API int ASYNC_WAIT_CTX_set_wait_fd(ASYNC_WAIT_CTX *ctx, const void *key,
                                            OSSL_ASYNC_FD fd, void *custom_data,
                                            wait_ctx_cleanup_fn cleanup)
{
    if (ctx == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    struct wait_ctx_fd *e = alloc_heap(sizeof(*e));
    if (e == NULL) {
        error_set(ASYNCJOB_ENOMEM);
        return 0;
    }
    e->key = key;
    e->fd = fd;
    e->custom_data = custom_data;
    e->cleanup = cleanup;
    e->add = 1;
    e->del = 0;
    e->held = 0;
    e->next = ctx->fds;
    ctx->fds = e;
    ctx->numadd++;
    return 1;
}

/* The newest live (not cleared) entry with `key`, and the link that points at it. */
static struct wait_ctx_fd *wait_ctx_find_live(ASYNC_WAIT_CTX *ctx, const void *key,
                                              struct wait_ctx_fd ***link)
{
    struct wait_ctx_fd **pp = &ctx->fds;
    for (; *pp != NULL; pp = &(*pp)->next) {
        if (!(*pp)->del && (*pp)->key == key) {
            if (link != NULL)
                *link = pp;
            return *pp;
        }
    }
    return NULL;
}

ASYNCJOB_API int ASYNC_WAIT_CTX_get_fd(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD *fd,
                                       void **custom_data)
{
    if (ctx == NULL || fd == NULL || custom_data == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    struct wait_ctx_fd *e = wait_ctx_find_live(ctx, key, NULL);
    if (e == NULL) {
        error_set(ASYNCJOB_ENOENT);
        return 0;
    }
    *fd = e->fd;
    *custom_data = e->custom_data;
    return 1;
}

ASYNCJOB_API int ASYNC_WAIT_CTX_get_all_fds(ASYNC_WAIT_CTX *ctx, OSSL_ASYNC_FD *fd,
                                            size_t *numfds)
{
    if (ctx == NULL || numfds == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    size_t n = 0;
    for (struct wait_ctx_fd *e = ctx->fds; e != NULL; e = e->next) {
        if (e->del)
            continue;
        if (fd != NULL)
            fd[n] = e->fd;
        n++;
    }
    *numfds = n;
    return 1;
}

ASYNCJOB_API int ASYNC_WAIT_CTX_get_changed_fds(ASYNC_WAIT_CTX *ctx, OSSL_ASYNC_FD *addfd,
                                                size_t *numaddfds, OSSL_ASYNC_FD *delfd,
                                                size_t *numdelfds)
{
    if (ctx == NULL || numaddfds == NULL || numdelfds == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    *numaddfds = ctx->numadd;
    *numdelfds = ctx->numdel;
    size_t na = 0, nd = 0;
    for (struct wait_ctx_fd *e = ctx->fds; e != NULL; e = e->next) {
        if (e->del && delfd != NULL)
            delfd[nd++] = e->fd;
        else if (e->add && !e->del && addfd != NULL)
            addfd[na++] = e->fd;
    }
    return 1;
}

ASYNCJOB_API int ASYNC_WAIT_CTX_clear_fd(ASYNC_WAIT_CTX *ctx, const void *key)
{
    if (ctx == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    struct wait_ctx_fd **link;
    struct wait_ctx_fd *e = wait_ctx_find_live(ctx, key, &link);
    if (e == NULL) {
        error_set(ASYNCJOB_ENOENT);
        return 0;
    }
    if (e->add) {
        /* Added and cleared within one segment: the two cancel out. */
        *link = e->next;
        ctx->numadd--;
        alloc_heap_free(e);
    } else {
        e->del = 1;
        ctx->numdel++;
    }
    return 1;
}

void wait_ctx_reset_slow(ASYNC_WAIT_CTX *ctx)
{
    struct wait_ctx_fd **pp = &ctx->fds;
    while (*pp != NULL) {
        struct wait_ctx_fd *e = *pp;
        if (e->del) {
            *pp = e->next;
            alloc_heap_free(e);
        } else {
            e->add = 0;
            pp = &e->next;
        }
    }
    ctx->numadd = 0;
    ctx->numdel = 0;
}

ASYNCJOB_API int ASYNC_WAIT_CTX_set_callback(ASYNC_WAIT_CTX *ctx, ASYNC_callback_fn callback,
                                             void *callback_arg)
{
    if (ctx == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    ctx->callback = callback;
    ctx->callback_arg = callback_arg;
    return 1;
}

ASYNCJOB_API int ASYNC_WAIT_CTX_get_callback(ASYNC_WAIT_CTX *ctx, ASYNC_callback_fn *callback,
                                             void **callback_arg)
{
    if (ctx == NULL || callback == NULL || callback_arg == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    if (ctx->callback == NULL) {
        error_set(ASYNCJOB_ENOENT);
        return 0;
    }
    *callback = ctx->callback;
    *callback_arg = ctx->callback_arg;
    return 1;
}

ASYNCJOB_API int ASYNC_WAIT_CTX_set_status(ASYNC_WAIT_CTX *ctx, int status)
{
    if (ctx == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    ctx->status = status;
    return 1;
}

ASYNCJOB_API int ASYNC_WAIT_CTX_get_status(ASYNC_WAIT_CTX *ctx)
{
    if (ctx == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return ASYNC_STATUS_UNSUPPORTED;
    }
    return ctx->status;
}

/* Event-loop glue: `held` marks the entries the caller's poller has been told of. */
typedef int (*wait_ctx_report_fn)(OSSL_ASYNC_FD fd, int add, void *arg);

/* Tell fn of the entries to add (add 1: live, not held) or to remove (add 0: held, and
 * cleared unless `all`), marking each as the poller now has it; stops at fn's refusal. */
static int wait_ctx_report(ASYNC_WAIT_CTX *ctx, int add, int all, wait_ctx_report_fn fn,
                           void *arg)
{
    if (ctx == NULL || fn == NULL) {
        error_set(ASYNCJOB_EINVAL);
        return 0;
    }
    for (struct wait_ctx_fd *e = ctx->fds; e != NULL; e = e->next) {
        int due = add ? !e->del && !e->held : e->held && (e->del || all);
        if (!due)
            continue;
        if (!fn(e->fd, add, arg)) {
            error_set(ASYNCJOB_ESTOPPED);
            return 0;
        }
        e->held = add;
    }
    return 1;
}

ASYNCJOB_API int asyncjob_wait_ctx_sync(ASYNC_WAIT_CTX *ctx, wait_ctx_report_fn fn, void *arg)
{
    /* Removals first: a cleared fd whose number the job reused is then added back. */
    return wait_ctx_report(ctx, 0, 0, fn, arg) && wait_ctx_report(ctx, 1, 0, fn, arg);
}

ASYNCJOB_API int asyncjob_wait_ctx_forget(ASYNC_WAIT_CTX *ctx, wait_ctx_report_fn fn, void *arg)
{
    return wait_ctx_report(ctx, 0, 1, fn, arg);
}
