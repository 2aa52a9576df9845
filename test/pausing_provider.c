/*
 * pausing_provider.c: a test-only OpenSSL 3 provider ("pausing") whose SHA-256 behaves
 * like a hardware offload engine. Inside a job, each update and the final go to a worker
 * thread while the job pauses on an eventfd registered in its wait context; outside a job
 * they run inline. The hashing itself is libcrypto's SHA-256, fetched in a library context
 * of the provider's own, so results must equal libcrypto's. At teardown the number of
 * hash steps, of those run inside a job, and of pauses is appended to the file named by
 * PAUSING_PROVIDER_COUNT, if set.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <openssl/async.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* One request to the worker: a hash step, the eventfd to signal, and a done flag. */
struct request {
    EVP_MD_CTX *md;
    const unsigned char *data; /* update */
    size_t len;
    unsigned char *out;        /* final, when not NULL */
    int ok;
    int done;
    int fd;
    struct request *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct request *queue;
static int stopping;
static pthread_t worker;
static unsigned long steps, injob, pauses;
static OSSL_LIB_CTX *inner;
static EVP_MD *sha256;

static int run_step(struct request *r)
{
    if (r->out != NULL)
        return EVP_DigestFinal_ex(r->md, r->out, NULL);
    return EVP_DigestUpdate(r->md, r->data, r->len);
}

static void *work(void *arg)
{
    pthread_mutex_lock(&lock);
    for (;;) {
        while (queue == NULL && !stopping)
            pthread_cond_wait(&wake, &lock);
        if (queue == NULL)
            break;
        struct request *r = queue;
        queue = r->next;
        pthread_mutex_unlock(&lock);
        r->ok = run_step(r);
        uint64_t one = 1;
        __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
        if (write(r->fd, &one, sizeof(one)) != sizeof(one))
            abort(); /* test code: an eventfd write cannot fail here */
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void close_fd(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd, void *custom)
{
    close(fd);
}

/* The job's eventfd, made and registered in its wait context on first use. */
static int job_fd(ASYNC_JOB *job)
{
    ASYNC_WAIT_CTX *w = ASYNC_get_wait_ctx(job);
    OSSL_ASYNC_FD fd = -1;
    void *custom;
    if (w == NULL)
        return -1;
    if (ASYNC_WAIT_CTX_get_fd(w, &lock, &fd, &custom) && fd >= 0)
        return fd;
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd >= 0 && !ASYNC_WAIT_CTX_set_wait_fd(w, &lock, fd, NULL, close_fd)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Hand the step to the worker and pause until it is done; inline outside a job. */
static int offload(struct request *r)
{
    ASYNC_JOB *job = ASYNC_get_current_job();
    __atomic_add_fetch(&steps, 1, __ATOMIC_RELAXED);
    if (job != NULL)
        __atomic_add_fetch(&injob, 1, __ATOMIC_RELAXED);
    r->fd = job != NULL ? job_fd(job) : -1;
    if (r->fd < 0)
        return run_step(r);
    r->done = 0;
    pthread_mutex_lock(&lock);
    r->next = queue;
    queue = r;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    /* At least one pause, as with a device that answers through its queue only. */
    do {
        __atomic_add_fetch(&pauses, 1, __ATOMIC_RELAXED);
        if (!ASYNC_pause_job())
            return 0;
    } while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE));
    uint64_t n;
    while (read(r->fd, &n, sizeof(n)) == sizeof(n))
        ;
    return r->ok;
}

static void *dg_newctx(void *provctx)
{
    return EVP_MD_CTX_new();
}

static void dg_freectx(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void *dg_dupctx(void *ctx)
{
    EVP_MD_CTX *dup = EVP_MD_CTX_new();
    if (dup != NULL && !EVP_MD_CTX_copy_ex(dup, ctx)) {
        EVP_MD_CTX_free(dup);
        dup = NULL;
    }
    return dup;
}

static int dg_init(void *ctx, const OSSL_PARAM params[])
{
    return EVP_DigestInit_ex(ctx, sha256, NULL);
}

static int dg_update(void *ctx, const unsigned char *in, size_t len)
{
    struct request r = { .md = ctx, .data = in, .len = len };
    return offload(&r);
}

static int dg_final(void *ctx, unsigned char *out, size_t *outl, size_t outsz)
{
    struct request r = { .md = ctx, .out = out };
    if (outsz < 32 || !offload(&r))
        return 0;
    *outl = 32;
    return 1;
}

static int dg_get_params(OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_BLOCK_SIZE);
    if (p != NULL && !OSSL_PARAM_set_size_t(p, 64))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_DIGEST_PARAM_SIZE);
    if (p != NULL && !OSSL_PARAM_set_size_t(p, 32))
        return 0;
    return 1;
}

static const OSSL_PARAM *dg_gettable_params(void *provctx)
{
    static const OSSL_PARAM table[] = {
        OSSL_PARAM_size_t(OSSL_DIGEST_PARAM_BLOCK_SIZE, NULL),
        OSSL_PARAM_size_t(OSSL_DIGEST_PARAM_SIZE, NULL),
        OSSL_PARAM_END
    };
    return table;
}

typedef void (*fn)(void);
static const OSSL_DISPATCH digest_fns[] = {
    { OSSL_FUNC_DIGEST_NEWCTX, (fn)dg_newctx },
    { OSSL_FUNC_DIGEST_FREECTX, (fn)dg_freectx },
    { OSSL_FUNC_DIGEST_DUPCTX, (fn)dg_dupctx },
    { OSSL_FUNC_DIGEST_INIT, (fn)dg_init },
    { OSSL_FUNC_DIGEST_UPDATE, (fn)dg_update },
    { OSSL_FUNC_DIGEST_FINAL, (fn)dg_final },
    { OSSL_FUNC_DIGEST_GET_PARAMS, (fn)dg_get_params },
    { OSSL_FUNC_DIGEST_GETTABLE_PARAMS, (fn)dg_gettable_params },
    { 0, NULL }
};

static const OSSL_ALGORITHM digests[] = {
    { "SHA2-256:SHA-256:SHA256:pausing-sha256", "provider=pausing", digest_fns, NULL },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *query(void *provctx, int id, int *no_cache)
{
    *no_cache = 0;
    return id == OSSL_OP_DIGEST ? digests : NULL;
}

static void teardown(void *provctx)
{
    pthread_mutex_lock(&lock);
    stopping = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(worker, NULL);
    const char *name = getenv("PAUSING_PROVIDER_COUNT");
    FILE *f = name != NULL ? fopen(name, "a") : NULL;
    if (f != NULL) {
        fprintf(f, "steps %lu injob %lu pauses %lu\n", steps, injob, pauses);
        fclose(f);
    }
    EVP_MD_free(sha256);
    OSSL_LIB_CTX_free(inner);
}

static const OSSL_DISPATCH provider_fns[] = {
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (fn)query },
    { OSSL_FUNC_PROVIDER_TEARDOWN, (fn)teardown },
    { 0, NULL }
};

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx);

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    inner = OSSL_LIB_CTX_new();
    sha256 = inner != NULL ? EVP_MD_fetch(inner, "SHA2-256", "provider=default") : NULL;
    if (sha256 == NULL || pthread_create(&worker, NULL, work, NULL) != 0) {
        EVP_MD_free(sha256);
        OSSL_LIB_CTX_free(inner);
        return 0;
    }
    *out = provider_fns;
    *provctx = (void *)handle;
    return 1;
}
