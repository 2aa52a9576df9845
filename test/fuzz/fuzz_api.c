/*
 * fuzz_api.c: a libFuzzer target that reads its input as a program of asyncjob API calls
 * over 8 job slots and 4 wait ctx slots, and checks every result against a small model of
 * the contract (ASYNC_start_job(3), ASYNC_WAIT_CTX_new(3), asyncjob_strerror(3)): return
 * codes, error codes, handles, fd lists, change counts, cleanup calls, pool accounting (live
 * stacks), and the allocation count of every call.
 *
 * One interpreter serves both sides of a switch: the driver runs it on the thread's own
 * stack, and each job's body runs it on the job's stack, so an input mixes calls made
 * outside jobs with calls made inside them (pause, block, nested starts, ...). Any
 * disagreement between library and model ends the run with __builtin_trap().
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "asyncjob.h"
#include "alloc.h"
#include "../counting_stacks.h"

#define NSLOT 8
#define NCTX 4
#define NKEY 5    /* key index 4 is the NULL key */
#define MAXE 12   /* model entries per ctx; set_wait_fd is skipped beyond */
#define MAXIDLE 64
#define BIG 160   /* argument size beyond the 64 bytes kept inside the job */

/* Abort on the first disagreement, saying where. */
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "fuzz_api: model mismatch at line %d: %s\n", __LINE__, \
                    #cond);                                                      \
            __builtin_trap();                                                    \
        }                                                                        \
    } while (0)

/* ---- input ---- */

static const uint8_t *in;
static size_t in_len, in_pos;

static int more(void)
{
    return in_pos < in_len;
}

/* The next byte, or 0 once the input is used up. */
static unsigned rd(void)
{
    return in_pos < in_len ? in[in_pos++] : 0;
}

/* ---- the model ---- */

enum { EMPTY = 0, PAUSED, RUNNING };

struct mjob {
    int state;
    ASYNC_JOB *h;        /* the handle, known once the job ran */
    ASYNC_JOB *stale;    /* the handle of the last job that finished in this slot */
    int ctx;             /* model ctx index the job is attached to, or -1 */
    unsigned blocked;
    int cancelled;
    unsigned long switches; /* ASYNC_PAUSE results the driver saw for this slot */
    unsigned long gen;   /* the pool generation it belongs to */
    int argkind;         /* 0: NULL args, 1: small, 2: big */
    size_t argsize;
    unsigned char arg[BIG];
};

struct ment {
    int key, fd, add, del, has_cleanup;
};

struct mctx {
    ASYNC_WAIT_CTX *p;   /* NULL: slot empty */
    int n;
    struct ment e[MAXE]; /* newest first, cleared entries included until the reset */
    size_t numadd, numdel;
    ASYNC_callback_fn cb;
    void *cbarg;
    int status;
};

static struct {
    struct mjob job[NSLOT];
    struct mctx ctx[NCTX];
    /* The thread's pool. */
    int initialised;
    size_t count, max;
    ASYNC_JOB *idle[MAXIDLE]; /* LIFO; NULL where the pointer is not known yet */
    size_t nidle;
    unsigned long gen;
    long orphans;        /* paused jobs of an earlier generation */
    /* Switch bookkeeping. */
    int running;         /* slot of the running job, or -1 */
    int starting;        /* slot the next job body belongs to */
    ASYNC_JOB *expect_self; /* the pooled job a start must reuse, if known */
    int outcome;         /* what the job body reported last: PAUSED or EMPTY (finished) */
    int ret;             /* the value it returned */
    /* Allocation injection. */
    long countdown, attempts;
} m;

/* Process-wide facts, kept across inputs like the library's own. */
static int merr;          /* the thread's asyncjob_last_error() */
static int stacks_locked; /* a stack allocation was attempted: set_mem_functions refuses */

static int keys[NKEY];
static const void *key_ptr(int k)
{
    return k == NKEY - 1 ? NULL : &keys[k];
}

static void *fd_data(int fd)
{
    return (void *)(uintptr_t)(0x10000 + (unsigned)fd);
}

static void fail(int code)
{
    merr = code;
}

static void check_err(void)
{
    CHECK(asyncjob_last_error() == merr);
}

/* One allocation of the library, as the model sees it: 1 if it succeeds. */
static int model_alloc(void)
{
    if (m.countdown == 0)
        return 1;
    m.attempts++;
    return --m.countdown != 0;
}

/* Jobs whose stacks exist: the pool's (idle and in use) and the orphans. */
static void check_stacks(void)
{
    CHECK(stacks() == (long)m.count + m.orphans);
}

/* Model of creating one job (job struct, then stack); 0 with the error set on failure. */
static int model_create(void)
{
    if (!model_alloc()) {
        fail(ASYNCJOB_ENOMEM);
        return 0;
    }
    stacks_locked = 1;
    if (!model_alloc()) {
        fail(ASYNCJOB_ESTACK);
        return 0;
    }
    return 1;
}

static int idle_contains(const ASYNC_JOB *p)
{
    for (size_t i = 0; i < m.nidle; i++)
        if (m.idle[i] == p)
            return 1;
    return 0;
}

static int slot_holding(const ASYNC_JOB *p)
{
    for (int s = 0; s < NSLOT; s++)
        if (m.job[s].state != EMPTY && m.job[s].h == p)
            return s;
    return -1;
}

/* ---- wait ctx model ---- */

/* Index of the newest live entry with key k, or -1. */
static int find_live(const struct mctx *c, int k)
{
    for (int i = 0; i < c->n; i++)
        if (!c->e[i].del && c->e[i].key == k)
            return i;
    return -1;
}

static void remove_entry(struct mctx *c, int i)
{
    memmove(&c->e[i], &c->e[i + 1], (size_t)(c->n - i - 1) * sizeof(c->e[0]));
    c->n--;
}

/* The reset rule: a paused job using this ctx was resumed. */
static void model_reset(struct mctx *c)
{
    for (int i = 0; i < c->n;) {
        if (c->e[i].del) {
            remove_entry(c, i);
        } else {
            c->e[i].add = 0;
            i++;
        }
    }
    c->numadd = c->numdel = 0;
}

/* The cleanup callbacks the library makes while freeing a ctx. */
static struct {
    ASYNC_WAIT_CTX *ctx;
    int n;
    int key[MAXE], fd[MAXE];
    int bad;
} cleanups;

static void on_cleanup(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd, void *data)
{
    int k = -1;
    for (int i = 0; i < NKEY; i++)
        if (key_ptr(i) == key)
            k = i;
    if (ctx != cleanups.ctx || k < 0 || data != fd_data(fd) || cleanups.n >= MAXE) {
        cleanups.bad = 1;
        return;
    }
    cleanups.key[cleanups.n] = k;
    cleanups.fd[cleanups.n] = fd;
    cleanups.n++;
}

static int cb_a(void *arg)
{
    (void)arg;
    return 1;
}

static int cb_b(void *arg)
{
    (void)arg;
    return 2;
}

/* Free ctx slot c (which holds a ctx) and check its cleanup calls. */
static void ctx_free(int c)
{
    struct mctx *mc = &m.ctx[c];
    memset(&cleanups, 0, sizeof(cleanups));
    cleanups.ctx = mc->p;
    ASYNC_WAIT_CTX_free(mc->p);
    CHECK(!cleanups.bad);
    int n = 0;
    for (int i = 0; i < mc->n; i++) {
        if (mc->e[i].del || !mc->e[i].has_cleanup)
            continue;
        CHECK(n < cleanups.n);
        CHECK(cleanups.key[n] == mc->e[i].key && cleanups.fd[n] == mc->e[i].fd);
        n++;
    }
    CHECK(n == cleanups.n);
    /* Jobs using it see no wait ctx from now on. */
    for (int s = 0; s < NSLOT; s++)
        if (m.job[s].state != EMPTY && m.job[s].ctx == c)
            m.job[s].ctx = -1;
    memset(mc, 0, sizeof(*mc));
}

/* The operations on wait ctx slot c (a NULL ctx when the slot is empty). */
static void op_ctx(unsigned op)
{
    int c = (int)(rd() % NCTX);
    struct mctx *mc = &m.ctx[c];
    ASYNC_WAIT_CTX *p = mc->p;
    int k = (int)(rd() % NKEY);
    OSSL_ASYNC_FD fds[MAXE + 4], fds2[MAXE + 4];

    switch (op) {
    case 0: { /* new (freeing what the slot held) */
        if (p != NULL)
            ctx_free(c);
        ASYNC_WAIT_CTX *n = ASYNC_WAIT_CTX_new();
        if (model_alloc()) {
            CHECK(n != NULL);
            CHECK(ASYNC_WAIT_CTX_get_status(n) == ASYNC_STATUS_UNSUPPORTED);
            mc->p = n;
        } else {
            CHECK(n == NULL);
            fail(ASYNCJOB_ENOMEM);
        }
        break;
    }
    case 1: /* free */
        if (p != NULL)
            ctx_free(c);
        else
            ASYNC_WAIT_CTX_free(NULL); /* a no-op: no error recorded */
        break;
    case 2: { /* set_wait_fd */
        int fd = (int)rd() - 1;
        int with_cleanup = (int)(rd() & 1);
        if (p != NULL && mc->n == MAXE)
            break;
        int rc = ASYNC_WAIT_CTX_set_wait_fd(p, key_ptr(k), fd, fd_data(fd),
                                            with_cleanup ? on_cleanup : NULL);
        if (p == NULL) {
            CHECK(rc == 0);
            fail(ASYNCJOB_EINVAL);
        } else if (!model_alloc()) {
            CHECK(rc == 0);
            fail(ASYNCJOB_ENOMEM);
        } else {
            CHECK(rc == 1);
            memmove(&mc->e[1], &mc->e[0], (size_t)mc->n * sizeof(mc->e[0]));
            mc->e[0] = (struct ment){ .key = k, .fd = fd, .add = 1, .has_cleanup = with_cleanup };
            mc->n++;
            mc->numadd++;
        }
        break;
    }
    case 3: { /* clear_fd */
        int rc = ASYNC_WAIT_CTX_clear_fd(p, key_ptr(k));
        if (p == NULL) {
            CHECK(rc == 0);
            fail(ASYNCJOB_EINVAL);
            break;
        }
        int i = find_live(mc, k);
        if (i < 0) {
            CHECK(rc == 0);
            fail(ASYNCJOB_ENOENT);
        } else {
            CHECK(rc == 1);
            if (mc->e[i].add) {
                remove_entry(mc, i);
                mc->numadd--;
            } else {
                mc->e[i].del = 1;
                mc->numdel++;
            }
        }
        break;
    }
    case 4: { /* get_fd */
        OSSL_ASYNC_FD fd = -77;
        void *data = &fd;
        int rc = ASYNC_WAIT_CTX_get_fd(p, key_ptr(k), &fd, &data);
        int i = p != NULL ? find_live(mc, k) : -1;
        if (i < 0) {
            CHECK(rc == 0 && fd == -77 && data == &fd);
            fail(p == NULL ? ASYNCJOB_EINVAL : ASYNCJOB_ENOENT);
        } else {
            CHECK(rc == 1 && fd == mc->e[i].fd && data == fd_data(fd));
        }
        break;
    }
    case 5: { /* get_all_fds, with and without the array */
        size_t n = 999;
        int rc = ASYNC_WAIT_CTX_get_all_fds(p, (k & 1) ? NULL : fds, &n);
        if (p == NULL) {
            CHECK(rc == 0 && n == 999);
            fail(ASYNCJOB_EINVAL);
            break;
        }
        CHECK(rc == 1);
        size_t want = 0;
        for (int i = 0; i < mc->n; i++) {
            if (mc->e[i].del)
                continue;
            if (!(k & 1))
                CHECK(fds[want] == mc->e[i].fd);
            want++;
        }
        CHECK(n == want);
        break;
    }
    case 6: { /* get_changed_fds */
        size_t na = 999, nd = 999;
        int arrays = (k & 1) == 0;
        int rc = ASYNC_WAIT_CTX_get_changed_fds(p, arrays ? fds : NULL, &na,
                                                arrays ? fds2 : NULL, &nd);
        if (p == NULL) {
            CHECK(rc == 0 && na == 999 && nd == 999);
            fail(ASYNCJOB_EINVAL);
            break;
        }
        CHECK(rc == 1 && na == mc->numadd && nd == mc->numdel);
        if (arrays) {
            size_t ia = 0, id = 0;
            for (int i = 0; i < mc->n; i++) {
                if (mc->e[i].del)
                    CHECK(fds2[id++] == mc->e[i].fd);
                else if (mc->e[i].add)
                    CHECK(fds[ia++] == mc->e[i].fd);
            }
            CHECK(ia == na && id == nd);
        }
        break;
    }
    case 7: { /* set_callback / get_callback */
        if (k < 3) {
            ASYNC_callback_fn cb = k == 0 ? NULL : k == 1 ? cb_a : cb_b;
            void *arg = fd_data((int)rd());
            int rc = ASYNC_WAIT_CTX_set_callback(p, cb, arg);
            if (p == NULL) {
                CHECK(rc == 0);
                fail(ASYNCJOB_EINVAL);
            } else {
                CHECK(rc == 1);
                mc->cb = cb;
                mc->cbarg = arg;
            }
        } else {
            ASYNC_callback_fn cb = cb_b;
            void *arg = &cb;
            int rc = ASYNC_WAIT_CTX_get_callback(p, &cb, &arg);
            if (p == NULL || mc->cb == NULL) {
                CHECK(rc == 0 && cb == cb_b && arg == &cb);
                fail(p == NULL ? ASYNCJOB_EINVAL : ASYNCJOB_ENOENT);
            } else {
                CHECK(rc == 1 && cb == mc->cb && arg == mc->cbarg);
            }
        }
        break;
    }
    default: { /* set_status / get_status */
        if (k < 2) {
            int s = (int)rd() - 100;
            int rc = ASYNC_WAIT_CTX_set_status(p, s);
            if (p == NULL) {
                CHECK(rc == 0);
                fail(ASYNCJOB_EINVAL);
            } else {
                CHECK(rc == 1);
                mc->status = s;
            }
        } else {
            int s = ASYNC_WAIT_CTX_get_status(p);
            if (p == NULL) {
                CHECK(s == ASYNC_STATUS_UNSUPPORTED);
                fail(ASYNCJOB_EINVAL);
            } else {
                CHECK(s == mc->status);
            }
        }
        break;
    }
    }
}

/* ---- jobs ---- */

static int interpret(int self_slot);

/* A job finished (or was given back unused): back to the pool or, if orphaned, freed. */
static void model_release(ASYNC_JOB *p, unsigned long gen)
{
    if (gen == m.gen && m.max != 0 && m.count > m.max) {
        m.count--; /* the limit was lowered while it ran: freed, not kept */
    } else if (gen == m.gen) {
        CHECK(m.nidle < MAXIDLE);
        m.idle[m.nidle++] = p;
    } else {
        m.orphans--;
    }
}

static void fill_arg(struct mjob *j, unsigned seed)
{
    for (size_t i = 0; i < j->argsize; i++)
        j->arg[i] = (unsigned char)(seed * 31 + i * 7);
}

/* The body of every job: check the argument copy and the handle, then interpret the
 * input until a RETURN op or the end of the input. */
static int job_body(void *arg)
{
    int s = m.starting;
    struct mjob *j = &m.job[s];
    ASYNC_JOB *self = ASYNC_get_current_job();
    CHECK(self != NULL);
    if (m.expect_self != NULL)
        CHECK(self == m.expect_self); /* LIFO reuse of the last job to finish */
    CHECK(slot_holding(self) < 0);   /* no paused job shares this handle */
    j->h = self;
    j->state = RUNNING;
    if (j->argkind == 0)
        CHECK(arg == NULL);
    else
        CHECK(arg != NULL && memcmp(arg, j->arg, j->argsize) == 0);

    int ret = interpret(s);

    /* The copy is still intact at the end (it lives until the job finishes). */
    if (j->argkind != 0)
        CHECK(memcmp(arg, j->arg, j->argsize) == 0);
    m.outcome = EMPTY;
    m.ret = ret;
    return ret;
}

/* After a start, resume or cancel came back: check it against what the job reported. */
static void after_run(int s, int rc, ASYNC_JOB *h, int ret)
{
    struct mjob *j = &m.job[s];
    m.running = -1;
    if (m.outcome == PAUSED) {
        CHECK(rc == ASYNC_PAUSE && h == j->h && ret == -12345);
        j->state = PAUSED;
        j->switches++;
    } else {
        CHECK(rc == ASYNC_FINISH && h == NULL && ret == m.ret);
        j->state = EMPTY;
        j->stale = j->h;
        j->h = NULL;
        j->ctx = -1;
        model_release(j->stale, j->gen);
    }
    CHECK(ASYNC_get_current_job() == NULL);
}

static void op_start(int in_job)
{
    int first = (int)(rd() % NSLOT);
    int c = (int)(rd() % (NCTX + 1));
    unsigned kind = rd() % 8;
    unsigned seed = rd();
    ASYNC_WAIT_CTX *ctx = c < NCTX ? m.ctx[c].p : NULL;

    int s = -1;
    for (int i = 0; i < NSLOT && s < 0; i++)
        if (m.job[(first + i) % NSLOT].state == EMPTY)
            s = (first + i) % NSLOT;
    if (s < 0 && !in_job)
        return; /* every slot is busy */

    /* Arguments: 0 NULL, 1-2 small, 3-4 big, 5 size 0, 6 NULL func, 7 NULL job pointer. */
    struct mjob scratch, *j = s >= 0 ? &m.job[s] : &scratch;
    j->argkind = kind == 0 ? 0 : kind <= 2 ? 1 : kind <= 4 ? 2 : 1;
    j->argsize = j->argkind == 0 ? 0 : j->argkind == 1 ? 1 + seed % 64 : 65 + seed % (BIG - 65);
    fill_arg(j, seed);
    unsigned char buf[BIG];
    memcpy(buf, j->arg, j->argsize);
    void *args = j->argkind == 0 ? NULL : buf;
    size_t size = kind == 5 ? 0 : j->argkind == 0 ? seed : j->argsize;
    int (*fn)(void *) = kind == 6 ? NULL : job_body;
    ASYNC_JOB *h = NULL;
    ASYNC_JOB **hp = kind == 7 ? NULL : &h;
    int ret = -12345;

    int expect_err = 0;
    if (hp == NULL)
        expect_err = ASYNCJOB_EINVAL;
    else if (in_job)
        expect_err = ASYNCJOB_ENESTED;
    else if (fn == NULL || (args != NULL && size == 0))
        expect_err = ASYNCJOB_EINVAL;
    if (expect_err != 0) {
        int rc = ASYNC_start_job(hp, ctx, &ret, fn, args, size);
        CHECK(rc == ASYNC_ERR && h == NULL && ret == -12345);
        fail(expect_err);
        return;
    }

    /* Model the pool: an idle job, or a new one if the limit allows. */
    int ok = 1;
    ASYNC_JOB *expect = NULL;
    if (m.nidle > 0) {
        expect = m.idle[--m.nidle];
    } else {
        m.initialised = 1;
        if (m.max != 0 && m.count >= m.max) {
            fail(ASYNCJOB_EPOOLFULL);
            ok = 0;
        } else if (!model_create()) {
            ok = 0;
        } else {
            m.count++;
        }
    }
    if (ok && j->argkind == 2 && !model_alloc()) {
        /* The argument copy failed: the job goes straight back to the pool. */
        fail(ASYNCJOB_ENOMEM);
        m.idle[m.nidle++] = expect;
        ok = 0;
    }
    m.starting = s;
    m.expect_self = expect;
    m.outcome = -1;
    j->state = EMPTY;
    j->ctx = ctx != NULL ? c : -1;
    j->blocked = 0;
    j->cancelled = 0;
    j->gen = m.gen;
    m.running = s;
    int rc = ASYNC_start_job(hp, ctx, &ret, fn, args, size);
    memset(buf, 0xA5, sizeof(buf)); /* the job must be using its own copy */
    if (!ok) {
        m.running = -1;
        CHECK(rc == ASYNC_NO_JOBS && h == NULL && ret == -12345);
        CHECK(m.outcome == -1); /* the function never ran */
        j->ctx = -1;
        return;
    }
    CHECK(m.outcome != -1);
    after_run(s, rc, h, ret);
}

/* Resume (cancel = 0) or cancel (1) the job of slot s. */
static void run_job(int s, int cancel)
{
    struct mjob *j = &m.job[s];
    ASYNC_JOB *h = j->h;
    int ret = -12345;
    if (cancel)
        j->cancelled = 1;
    m.outcome = -1;
    m.running = s;
    j->state = RUNNING;
    int rc = cancel ? asyncjob_cancel_job(&h, &ret)
                    : ASYNC_start_job(&h, NULL, &ret, NULL, NULL, 0);
    CHECK(m.outcome != -1);
    if (cancel)
        CHECK(m.outcome == EMPTY); /* a cancelled job can only finish */
    after_run(s, rc, h, ret);
}

/* Resume or cancel: from outside a job on a paused slot, it runs; every other case is a
 * misuse with its own code. */
static void op_resume(int in_job, int cancel)
{
    int s = (int)(rd() % NSLOT);
    struct mjob *j = &m.job[s];
    if (!in_job && j->state == PAUSED) {
        run_job(s, cancel);
        return;
    }
    ASYNC_JOB *h = j->state == EMPTY ? NULL : j->h;
    ASYNC_JOB *before = h;
    int ret = -12345;
    int rc;
    if (cancel)
        rc = asyncjob_cancel_job(&h, &ret);
    else if (h == NULL)
        rc = ASYNC_start_job(NULL, NULL, &ret, job_body, NULL, 0);
    else
        rc = ASYNC_start_job(&h, NULL, &ret, job_body, NULL, 0);
    CHECK(rc == ASYNC_ERR && h == before && ret == -12345);
    fail(h == NULL ? ASYNCJOB_EINVAL : ASYNCJOB_ENESTED);
}

/* ASYNC_pause_job, inside a job or outside. */
static void op_pause(int self)
{
    if (self < 0) {
        CHECK(ASYNC_pause_job() == 1);
        return;
    }
    struct mjob *j = &m.job[self];
    if (j->cancelled) {
        CHECK(ASYNC_pause_job() == 0);
        fail(ASYNCJOB_ECANCELED);
        return;
    }
    if (j->blocked) {
        unsigned long sw = j->switches;
        CHECK(ASYNC_pause_job() == 1);
        CHECK(j->switches == sw); /* it did not switch */
        return;
    }
    unsigned long sw = j->switches;
    m.outcome = PAUSED;
    int rc = ASYNC_pause_job();
    /* Back on the job's side: the driver saw ASYNC_PAUSE exactly once. */
    CHECK(j->switches == sw + 1);
    CHECK(m.running == self && j->state == RUNNING);
    CHECK(ASYNC_get_current_job() == j->h);
    if (j->ctx >= 0)
        model_reset(&m.ctx[j->ctx]);
    if (j->cancelled) {
        CHECK(rc == 0);
        fail(ASYNCJOB_ECANCELED);
    } else {
        CHECK(rc == 1);
    }
}

static void op_init(int in_job)
{
    size_t max = rd() % 6, init = rd() % 6;
    int rc = ASYNC_init_thread(max, init);
    if (in_job) {
        CHECK(rc == 0);
        fail(ASYNCJOB_EINJOB);
        return;
    }
    if (max != 0 && init > max) {
        CHECK(rc == 0);
        fail(ASYNCJOB_ERANGE);
        return;
    }
    CHECK(rc == 1);
    m.initialised = 1;
    m.max = max;
    if (max != 0 && m.count > max) {
        size_t excess = m.count - max;
        size_t keep = excess < m.nidle ? m.nidle - excess : 0;
        while (m.nidle > keep) {
            m.nidle--;
            m.count--;
        }
    }
    while (m.nidle < init && (max == 0 || m.count < max)) {
        if (!model_create())
            break;
        m.count++;
        m.idle[m.nidle++] = NULL;
    }
}

static void op_cleanup(int in_job)
{
    ASYNC_cleanup_thread();
    if (in_job) {
        fail(ASYNCJOB_EINJOB);
        return;
    }
    if (!m.initialised)
        return;
    /* Jobs still paused become orphans; idle ones are freed. */
    m.orphans += (long)(m.count - m.nidle);
    m.nidle = 0;
    m.count = 0;
    m.max = 0;
    m.gen++;
    m.initialised = 0;
}

/* Another thread tries to resume and cancel a paused job: both refused. */
struct foreign {
    ASYNC_JOB *h;
    int ok;
};

static void *foreign_thread(void *p)
{
    struct foreign *f = p;
    ASYNC_JOB *h = f->h;
    int ret = -1;
    f->ok = ASYNC_start_job(&h, NULL, &ret, job_body, NULL, 0) == ASYNC_ERR &&
            asyncjob_last_error() == ASYNCJOB_EWRONGTHREAD && h == f->h &&
            asyncjob_cancel_job(&h, &ret) == ASYNC_ERR &&
            asyncjob_last_error() == ASYNCJOB_EWRONGTHREAD && h == f->h && ret == -1 &&
            ASYNC_get_current_job() == NULL;
    return NULL;
}

static void op_misc(int self)
{
    unsigned sub = rd() % 7;
    int s = (int)(rd() % NSLOT);
    struct mjob *j = &m.job[s];
    switch (sub) {
    case 0:
    case 1: { /* a stale handle: its job finished and is idle in the pool */
        ASYNC_JOB *h = j->stale;
        if (h == NULL || !idle_contains(h) || slot_holding(h) >= 0)
            break;
        int ret = -12345;
        int rc = sub == 0 ? ASYNC_start_job(&h, NULL, &ret, job_body, NULL, 0)
                          : asyncjob_cancel_job(&h, &ret);
        CHECK(rc == ASYNC_ERR && h == j->stale && ret == -12345);
        fail(self >= 0 ? ASYNCJOB_ENESTED : ASYNCJOB_ENOTPAUSED);
        break;
    }
    case 2: { /* wrong thread */
        if (self >= 0 || j->state != PAUSED)
            break;
        struct foreign f = { .h = j->h };
        pthread_t t;
        if (pthread_create(&t, NULL, foreign_thread, &f) != 0)
            break;
        pthread_join(t, NULL);
        CHECK(f.ok);
        break;
    }
    case 3: /* the current job */
        CHECK(ASYNC_get_current_job() == (self >= 0 ? m.job[self].h : NULL));
        break;
    case 4: { /* a job's wait ctx */
        if (j->state == EMPTY) {
            CHECK(ASYNC_get_wait_ctx(NULL) == NULL);
            fail(ASYNCJOB_EINVAL);
        } else {
            CHECK(ASYNC_get_wait_ctx(j->h) == (j->ctx >= 0 ? m.ctx[j->ctx].p : NULL));
        }
        break;
    }
    case 5: { /* the stack functions are locked once any stack was allocated */
        int rc = ASYNC_set_mem_functions(NULL, NULL);
        if (stacks_locked) {
            CHECK(rc == 0);
            fail(ASYNCJOB_ELOCKED);
        } else {
            CHECK(rc == 1);
        }
        ASYNC_stack_alloc_fn a = NULL;
        ASYNC_stack_free_fn f = NULL;
        ASYNC_get_mem_functions(&a, &f);
        CHECK(a == counting_alloc && f == counting_free);
        CHECK(ASYNC_is_capable() == 1);
        break;
    }
    default: /* arm the allocation failure injection, or disarm it */
        m.countdown = (long)(rd() % 5);
        m.attempts = 0;
        alloc_fail_after(m.countdown);
        break;
    }
}

/*
 * Interpret operations until the input ends or, inside a job, a RETURN op. `self` is the
 * slot of the job running this loop, or -1 for the driver. Returns the job's value.
 */
static int interpret(int self)
{
    while (more()) {
        unsigned op = rd() % 24;
        switch (op) {
        case 0: case 1: op_start(self >= 0); break;
        case 2: case 3: op_resume(self >= 0, 0); break;
        case 4: op_resume(self >= 0, 1); break;
        case 5: case 6: op_pause(self); break;
        case 7: /* block */
            ASYNC_block_pause();
            if (self >= 0)
                m.job[self].blocked++;
            break;
        case 8: /* unblock */
            ASYNC_unblock_pause();
            if (self >= 0 && m.job[self].blocked > 0)
                m.job[self].blocked--;
            break;
        case 9: { /* return */
            int v = (int)rd();
            if (self >= 0)
                return v;
            break;
        }
        case 10: op_init(self >= 0); break;
        case 11: op_cleanup(self >= 0); break;
        case 12: case 13: op_misc(self); break;
        default: op_ctx(op - 14); break;
        }
        check_err();
        CHECK(alloc_count() == m.attempts);
        if (self < 0)
            check_stacks();
    }
    return self >= 0 ? 1000 + self : 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (use_counting_stacks() != 1)
        __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&m, 0, sizeof(m));
    m.running = -1;
    for (int s = 0; s < NSLOT; s++)
        m.job[s].ctx = -1;
    in = data;
    in_len = size;
    in_pos = 0;

    interpret(-1);

    /* Tear down: no more injected failures; finish every paused job (resume or cancel),
     * free every ctx, clean up the thread; then nothing of the library may be left. */
    alloc_fail_after(0);
    m.countdown = m.attempts = 0;
    for (int s = 0; s < NSLOT; s++)
        if (m.job[s].state == PAUSED)
            run_job(s, s & 1);
    for (int c = 0; c < NCTX; c++)
        if (m.ctx[c].p != NULL)
            ctx_free(c);
    op_cleanup(0);
    check_err();
    CHECK(m.orphans == 0);
    CHECK(stacks() == 0);
    return 0;
}
