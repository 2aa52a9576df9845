/*
 * dropin_probe.c: an OpenSSL program, linked against libcrypto only, that test/dropin_api.test
 * runs with libasyncjob-openssl.so preloaded. `dropin_probe checks` prints TAP for the
 * per-job default library context (real OSSL_LIB_CTX objects), the error queue, and
 * asyncjob_cancel_job reached through dlsym; `dropin_probe overflow` overflows a job's
 * stack and must die of SIGSEGV; `dropin_probe provider DIR` hashes messages in jobs on the
 * pausing test provider found in DIR and compares each digest with libcrypto's.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/async.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

static int failures;
static int number;

static void check(int ok, const char *what)
{
    printf("%s %d - %s\n", ok ? "ok" : "not ok", ++number, what);
    failures += !ok;
}

static OSSL_LIB_CTX *current(void)
{
    return OSSL_LIB_CTX_set0_default(NULL);
}

/* What the job saw, for the dispatcher to check. */
struct seen {
    OSSL_LIB_CTX *own;        /* the context the job sets as its default */
    OSSL_LIB_CTX *at_start;
    OSSL_LIB_CTX *after_resume;
    int pause_ret;
};

static int ctx_job(void *arg)
{
    struct seen *s = *(struct seen **)arg;
    s->at_start = current();
    OSSL_LIB_CTX_set0_default(s->own);
    s->pause_ret = ASYNC_pause_job();
    s->after_resume = current();
    return 7;
}

static int start(ASYNC_JOB **job, int *ret, struct seen *s)
{
    return ASYNC_start_job(job, NULL, ret, ctx_job, &s, sizeof(s));
}

/* A job starts with its caller's default; the caller gets its own back at each pause and
 * at the end, also after changing it meanwhile; the job gets its own back at the resume. */
static void test_libctx(void)
{
    OSSL_LIB_CTX *a = OSSL_LIB_CTX_new(), *b = OSSL_LIB_CTX_new(), *d = OSSL_LIB_CTX_new();
    OSSL_LIB_CTX *global = OSSL_LIB_CTX_set0_default(a);
    struct seen s = { .own = b };
    ASYNC_JOB *job = NULL;
    int ret = 0;
    check(start(&job, &ret, &s) == ASYNC_PAUSE, "the job paused");
    check(s.at_start == a, "a job starts with its caller's default library context");
    check(current() == a, "the caller has its own context back while the job is paused");
    OSSL_LIB_CTX_set0_default(d);
    check(start(&job, &ret, &s) == ASYNC_FINISH && ret == 7, "the job finished");
    check(s.after_resume == b, "the resumed job has its own context again");
    check(current() == d, "the caller has its own context back after the job finished");
    OSSL_LIB_CTX_set0_default(global);
    OSSL_LIB_CTX_free(a);
    OSSL_LIB_CTX_free(b);
    OSSL_LIB_CTX_free(d);
}

/* The entry on top of the error queue is ERR_LIB_ASYNC with `sentence` as its data. */
static void check_queued(const char *sentence, const char *what)
{
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_peek_last_error_data(&data, &flags);
    int ok = e != 0 && ERR_GET_LIB(e) == ERR_LIB_ASYNC && data != NULL &&
             (flags & ERR_TXT_STRING) && sentence != NULL && strcmp(data, sentence) == 0;
    check(ok, what);
    if (!ok)
        printf("# queued: lib %d data '%s', expected '%s'\n", e ? ERR_GET_LIB(e) : -1,
               data ? data : "(none)", sentence ? sentence : "(none)");
    ERR_clear_error();
}

static const char *(*strerror_fn)(int);
static int (*last_error_fn)(void);
static int (*cancel_fn)(ASYNC_JOB **, int *);

struct resume { ASYNC_JOB *job; int rc; };

static void *resume_elsewhere(void *arg)
{
    struct resume *r = arg;
    int ret;
    r->rc = ASYNC_start_job(&r->job, NULL, &ret, ctx_job, NULL, 0);
    check_queued(strerror_fn(last_error_fn()), "resuming from another thread queues asyncjob's sentence");
    return NULL;
}

/* libssl takes any queued error for a failure, so a miss must queue nothing. */
static void check_lookup_miss(void)
{
    ASYNC_WAIT_CTX *w = ASYNC_WAIT_CTX_new();
    OSSL_ASYNC_FD fd;
    void *custom;
    int key;
    check(w != NULL && !ASYNC_WAIT_CTX_get_fd(w, &key, &fd, &custom) && ERR_peek_error() == 0,
          "a wait ctx lookup that finds nothing queues no error, as in libcrypto");
    ASYNC_WAIT_CTX_free(w);
}

/* A full pool answers ASYNC_NO_JOBS with nothing queued, so that libssl can say "retry". */
static void *full_pool(void *arg)
{
    struct seen s = { .own = NULL };
    ASYNC_JOB *a = NULL, *b = NULL;
    int ret;
    if (!ASYNC_init_thread(1, 0))
        return NULL;
    ERR_clear_error();
    s.own = current();
    int first = start(&a, &ret, &s);
    int second = start(&b, &ret, &s);
    check(first == ASYNC_PAUSE && second == ASYNC_NO_JOBS && ERR_peek_error() == 0,
          "a full pool answers ASYNC_NO_JOBS and queues no error, as in libcrypto");
    if (first == ASYNC_PAUSE)
        start(&a, &ret, &s);
    ASYNC_cleanup_thread();
    return NULL;
}

/* Misuse is refused with an ASYNC_ERR and leaves an ERR_LIB_ASYNC entry; cancellation is
 * reachable through dlsym and gives the caller its context back. */
static void test_errors_and_cancel(void)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    ERR_clear_error();
    check(ASYNC_start_job(&job, NULL, &ret, NULL, NULL, 0) == ASYNC_ERR, "a NULL func is refused");
    check_queued(strerror_fn(last_error_fn()), "the refusal queues ERR_LIB_ASYNC with asyncjob's sentence");
    check_lookup_miss();
    pthread_t t;
    if (pthread_create(&t, NULL, full_pool, NULL) == 0)
        pthread_join(t, NULL);

    OSSL_LIB_CTX *b = OSSL_LIB_CTX_new();
    OSSL_LIB_CTX *mine = current();
    struct seen s = { .own = b };
    check(start(&job, &ret, &s) == ASYNC_PAUSE, "a job paused for the misuse and cancel tests");
    struct resume r = { job, 0 };
    if (pthread_create(&t, NULL, resume_elsewhere, &r) == 0)
        pthread_join(t, NULL);
    check(r.rc == ASYNC_ERR, "resuming from another thread is refused");
    check(cancel_fn(&job, &ret) == ASYNC_FINISH && job == NULL && ret == 7,
          "asyncjob_cancel_job from dlsym runs the job to its end");
    check(s.pause_ret == 0 && s.after_resume == b, "the cancelled job's pause failed, in its own context");
    check(current() == mine, "the caller has its own context back after the cancel");
    ERR_clear_error();
    OSSL_LIB_CTX_free(b);
}

/* Recurses until the limit, which no 32 KiB stack reaches; the guard page stops it first. */
static int deep(int n, int limit)
{
    volatile char pad[512];
    pad[0] = (char)n;
    if (n >= limit)
        return pad[0];
    return deep(n + 1, limit) + pad[0];
}

static int overflow_job(void *arg)
{
    return deep(0, 1 << 20);
}

#define HASH_JOBS 8

struct hash_job {
    const EVP_MD *md;
    unsigned char msg[3000];
    unsigned char out[EVP_MAX_MD_SIZE];
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wait;
    int ret, rc;
};

static int hash_job(void *arg)
{
    struct hash_job *h = *(struct hash_job **)arg;
    return EVP_Digest(h->msg, sizeof(h->msg), h->out, NULL, h->md, NULL);
}

/* Start every job, then resume the paused ones in turn until all finish: the pauses. */
static int run_hash_jobs(struct hash_job *h, const EVP_MD *md)
{
    int running = 0, pauses = 0;
    for (int i = 0; i < HASH_JOBS; i++) {
        struct hash_job *p = &h[i];
        memset(p->msg, 'a' + i, sizeof(p->msg));
        p->md = md;
        p->wait = ASYNC_WAIT_CTX_new();
        p->rc = ASYNC_start_job(&p->job, p->wait, &p->ret, hash_job, &p, sizeof(p));
        running += p->rc == ASYNC_PAUSE;
    }
    for (int i = 0; running > 0; i = (i + 1) % HASH_JOBS) {
        if (h[i].rc != ASYNC_PAUSE)
            continue;
        pauses++;
        h[i].rc = ASYNC_start_job(&h[i].job, h[i].wait, &h[i].ret, hash_job, NULL, 0);
        running -= h[i].rc != ASYNC_PAUSE;
    }
    return pauses;
}

/* HASH_JOBS jobs hash different messages on the pausing provider at once; each digest
 * must equal the default provider's. */
static int test_provider(const char *dir)
{
    static struct hash_job h[HASH_JOBS];
    OSSL_PROVIDER_set_default_search_path(NULL, dir);
    OSSL_PROVIDER *pp = OSSL_PROVIDER_load(NULL, "pausing"), *dp = OSSL_PROVIDER_load(NULL, "default");
    EVP_MD *paused = EVP_MD_fetch(NULL, "SHA2-256", "provider=pausing");
    EVP_MD *plain = EVP_MD_fetch(NULL, "SHA2-256", "provider=default");
    printf("1..3\n");
    check(pp != NULL && dp != NULL && paused != NULL && plain != NULL, "the pausing provider loads");
    if (failures != 0)
        return 1;
    check(run_hash_jobs(h, paused) >= HASH_JOBS, "the hashing jobs paused and were resumed");
    int same = 1;
    for (int i = 0; i < HASH_JOBS; i++) {
        unsigned char ref[EVP_MAX_MD_SIZE];
        same &= h[i].rc == ASYNC_FINISH && h[i].ret == 1 &&
                EVP_Digest(h[i].msg, sizeof(h[i].msg), ref, NULL, plain, NULL) &&
                memcmp(ref, h[i].out, 32) == 0;
        ASYNC_WAIT_CTX_free(h[i].wait);
    }
    check(same, "every digest made in a paused job equals the default provider's");
    EVP_MD_free(paused);
    EVP_MD_free(plain);
    return failures != 0;
}

int main(int argc, char **argv)
{
    strerror_fn = (const char *(*)(int))dlsym(RTLD_DEFAULT, "asyncjob_strerror");
    last_error_fn = (int (*)(void))dlsym(RTLD_DEFAULT, "asyncjob_last_error");
    cancel_fn = (int (*)(ASYNC_JOB **, int *))dlsym(RTLD_DEFAULT, "asyncjob_cancel_job");
    if (argc > 1 && strcmp(argv[1], "overflow") == 0) {
        ASYNC_JOB *job = NULL;
        int ret;
        if (cancel_fn == NULL)
            return 2; /* not running on the drop-in: no guard page promised */
        ASYNC_start_job(&job, NULL, &ret, overflow_job, NULL, 0);
        return 3; /* the overflow did not fault */
    }
    if (argc > 2 && strcmp(argv[1], "provider") == 0)
        return test_provider(argv[2]);
    printf("1..17\n");
    check(strerror_fn && last_error_fn && cancel_fn,
          "asyncjob_strerror, asyncjob_last_error and asyncjob_cancel_job are found by dlsym");
    if (failures != 0)
        return 1;
    test_libctx();
    test_errors_and_cancel();
    return failures != 0;
}
