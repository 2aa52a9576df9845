/* overflow.c: the overflow report. A SIGSEGV/SIGBUS handler, on an alternate stack per
 * thread that runs jobs, recognises a fault in the guard below a job's stack and writes
 * one line about it to stderr, then puts back the disposition it found and returns, so the
 * fault happens again as if the handler had never been there. Every other fault goes to
 * that previous disposition. Everything the handler does is async-signal-safe
 * (doc/DESIGN.md, "The overflow report"). Nothing is installed unless asked. */
#include "config.h"

#ifdef _WIN32
/* Windows has neither these signals nor sigaltstack(): the report is refused, and no
 * address is recognised. */
# include "error.h"
# include "overflow.h"

int overflow_on;
int overflow_default;
__thread void *overflow_thread_altstack TLS_INITIAL_EXEC;

void overflow_thread_setup(void)
{
}

void overflow_read_env(void)
{
}

int overflow_report(int on)
{
    if (!on)
        return 1;
    error_set(ASYNCJOB_ENOTSUP);
    return 0;
}

ASYNCJOB_API ASYNC_JOB *asyncjob_guard_job(const void *addr)
{
    (void)addr;
    return NULL;
}

ASYNCJOB_API int asyncjob_overflow_report(int on)
{
    return overflow_report(on);
}

#else /* !_WIN32 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __GLIBC__
# include <link.h>
#endif

#include "debug_registry.h"
#include "error.h"
#include "overflow.h"
#include "pool.h"
#include "stack.h"

int overflow_on;
__thread void *overflow_thread_altstack TLS_INITIAL_EXEC;

/* The signals handled, and what each had before the handler came. */
static const int overflow_signals[2] = {SIGSEGV, SIGBUS};
static struct sigaction overflow_prev[2];
static pthread_mutex_t overflow_lock = PTHREAD_MUTEX_INITIALIZER;

/* The usable size of the alternate stacks the library maps, and what a thread that had its
 * own alternate stack already records instead of a mapping. */
#define OVERFLOW_ALTSTACK_SIZE (64 * 1024)
static char overflow_not_ours;

static int overflow_link_matches(const struct debug_link *l, const void *addr)
{
    const ASYNC_JOB *job = container_of(l, ASYNC_JOB, dbg_link);
    return stack_guard_contains(&job->fiber.stack, addr);
}

/* The job whose guard holds addr: the calling thread's running job first (an overflow
 * faults on the thread that runs the job), then every job, unless the list is being
 * changed right now. */
static ASYNC_JOB *overflow_guard_job(const void *addr)
{
    ASYNC_JOB *job = pool_self()->current;
    if (job != NULL && stack_guard_contains(&job->fiber.stack, addr))
        return job;
    struct debug_link *l = debug_registry_find(overflow_link_matches, addr);
    return l != NULL ? container_of(l, ASYNC_JOB, dbg_link) : NULL;
}

ASYNCJOB_API ASYNC_JOB *asyncjob_guard_job(const void *addr)
{
    return overflow_guard_job(addr);
}

/* A line assembled with stores only. */
struct overflow_line {
    char buf[512];
    size_t len;
};

static void line_str(struct overflow_line *ln, const char *s)
{
    while (*s != '\0' && ln->len < sizeof(ln->buf) - 1)
        ln->buf[ln->len++] = *s++;
}

static void line_num(struct overflow_line *ln, uintmax_t v, unsigned base)
{
    char tmp[3 * sizeof(v)];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    if (base == 16)
        line_str(ln, "0x");
    while (n > 0 && ln->len < sizeof(ln->buf) - 1)
        ln->buf[ln->len++] = tmp[--n];
}

#ifdef __GLIBC__
/* A pointer from a module's dynamic section: glibc relocates most of them in place, but
 * not on every architecture. */
static uintptr_t overflow_dyn_ptr(const struct link_map *m, uintptr_t p)
{
    return p < m->l_addr ? p + m->l_addr : p;
}

/* How many symbols a GNU hash table covers: past the highest bucket's chain end. */
static size_t overflow_gnu_hash_count(const uint32_t *h)
{
    uint32_t nbuckets = h[0], symoffset = h[1], bloom_words = h[2];
    /* The bloom filter is bloom_words words of the object's class (ElfW(Addr)) wide. */
    const uint32_t *buckets = h + 4 + bloom_words * (sizeof(ElfW(Addr)) / sizeof(uint32_t));
    const uint32_t *chain = buckets + nbuckets;
    uint32_t last = 0;
    for (uint32_t i = 0; i < nbuckets; i++)
        if (buckets[i] > last)
            last = buckets[i];
    if (last < symoffset)
        return symoffset;
    while ((chain[last - symoffset] & 1) == 0)
        last++;
    return (size_t)last + 1;
}

/* A module's file name; the program's own entry has none. */
static const char *overflow_module_name(const struct link_map *m)
{
    return m->l_name[0] != '\0' ? m->l_name : program_invocation_name;
}

/* The dynamic symbol of module m at exactly addr (what dladdr() would name), or NULL. */
static const char *overflow_dynsym_at(const struct link_map *m, uintptr_t addr)
{
    const ElfW(Sym) *sym = NULL;
    const char *str = NULL;
    size_t count = 0;
    for (const ElfW(Dyn) *d = m->l_ld; d != NULL && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_SYMTAB)
            sym = (const ElfW(Sym) *)overflow_dyn_ptr(m, d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            str = (const char *)overflow_dyn_ptr(m, d->d_un.d_ptr);
        else if (d->d_tag == DT_HASH)
            count = ((const uint32_t *)overflow_dyn_ptr(m, d->d_un.d_ptr))[1];
        else if (d->d_tag == DT_GNU_HASH && count == 0)
            count = overflow_gnu_hash_count((const uint32_t *)overflow_dyn_ptr(m, d->d_un.d_ptr));
    }
    if (sym == NULL || str == NULL)
        return NULL;
    for (size_t i = 1; i < count; i++) {
        int type = sym[i].st_info & 0xf; /* ELF32_ST_TYPE and ELF64_ST_TYPE alike */
        if (sym[i].st_shndx != SHN_UNDEF && (type == STT_FUNC || type == STT_GNU_IFUNC) &&
            sym[i].st_value + m->l_addr == addr)
            return str + sym[i].st_name;
    }
    return NULL;
}

/* " NAME in MODULE" or " at MODULE+0xOFFSET": the loaded modules are read from the dynamic
 * loader's list without a lock (as a debugger reads them), so a module unloaded by another
 * thread at this very moment is the one case this can trip on. */
static void overflow_name_function(struct overflow_line *ln, uintptr_t addr)
{
    const struct link_map *best = NULL;
    for (const struct link_map *m = _r_debug.r_map; m != NULL; m = m->l_next) {
        const char *name = overflow_dynsym_at(m, addr);
        if (name != NULL) {
            line_str(ln, name);
            line_str(ln, " in ");
            line_str(ln, overflow_module_name(m));
            return;
        }
        if (m->l_addr <= addr && (best == NULL || m->l_addr > best->l_addr))
            best = m;
    }
    line_num(ln, addr, 16);
    if (best != NULL) {
        line_str(ln, " (");
        line_str(ln, overflow_module_name(best));
        line_str(ln, "+");
        line_num(ln, addr - best->l_addr, 16);
        line_str(ln, ")");
    }
}
#else
static void overflow_name_function(struct overflow_line *ln, uintptr_t addr)
{
    line_num(ln, addr, 16);
}
#endif

/* The one line: which job, its start function, its stack, the fault, what to change. */
static void overflow_write_line(const ASYNC_JOB *job, const void *addr)
{
    struct overflow_line ln = {.len = 0};
    size_t asked = job->fiber.stack.asked;
    line_str(&ln, "asyncjob: job ");
    line_num(&ln, job->dbg_serial, 10);
    line_str(&ln, " overflowed its stack of ");
    line_num(&ln, asked, 10);
    line_str(&ln, " bytes (fault at ");
    line_num(&ln, (uintptr_t)addr, 16);
    line_str(&ln, " in the guard below it; start function ");
    overflow_name_function(&ln, (uintptr_t)job->func);
    line_str(&ln, "); raise the size with ASYNCJOB_STACK_SIZE=");
    line_num(&ln, (asked * 2 + 1023) / 1024, 10);
    line_str(&ln, "K or asyncjob_set_stack_size()\n");
    for (size_t off = 0; off < ln.len;) {
        ssize_t n = write(STDERR_FILENO, ln.buf + off, ln.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}

static void overflow_handler(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    const struct sigaction *prev = &overflow_prev[sig == SIGBUS];
    /* si_code > 0: raised by the kernel for a fault, not sent by a process. */
    const ASYNC_JOB *job = si->si_code > 0 ? overflow_guard_job(si->si_addr) : NULL;
    if (job != NULL)
        overflow_write_line(job, si->si_addr);
    if (job != NULL || (!(prev->sa_flags & SA_SIGINFO) &&
                        (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN))) {
        /* Back to what was there; a fault then happens again when this returns, a sent
         * signal is sent again (unless it was ignored). */
        sigaction(sig, prev, NULL);
        if (si->si_code <= 0 && prev->sa_handler == SIG_DFL)
            raise(sig);
    } else if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
    } else {
        prev->sa_handler(sig);
    }
    errno = saved_errno;
}

static pthread_key_t overflow_key;
static pthread_once_t overflow_key_once = PTHREAD_ONCE_INIT;
static int overflow_key_ok;

/* At thread exit: stop using the thread's alternate stack, unmap it. */
static void overflow_thread_exit(void *altstack)
{
    stack_t cur;
    size_t page = stack_page_size();
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == altstack && !(cur.ss_flags & SS_ONSTACK)) {
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
    }
    munmap((char *)altstack - page, page + OVERFLOW_ALTSTACK_SIZE);
    overflow_thread_altstack = NULL;
}

static void overflow_make_key(void)
{
    overflow_key_ok = pthread_key_create(&overflow_key, overflow_thread_exit) == 0;
}

void overflow_thread_setup(void)
{
    stack_t cur;
    if (overflow_thread_altstack != NULL || sigaltstack(NULL, &cur) != 0)
        return;
    if (!(cur.ss_flags & SS_DISABLE)) {
        overflow_thread_altstack = &overflow_not_ours; /* the program gave it one */
        return;
    }
    pthread_once(&overflow_key_once, overflow_make_key);
    if (!overflow_key_ok)
        return;
    /* A guard page below, so that a handler that overflows it faults rather than write on. */
    size_t page = stack_page_size();
    char *m = mmap(NULL, page + OVERFLOW_ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return;
    stack_t ss = {.ss_sp = m + page, .ss_size = OVERFLOW_ALTSTACK_SIZE, .ss_flags = 0};
    if (mprotect(m, page, PROT_NONE) != 0 || pthread_setspecific(overflow_key, ss.ss_sp) != 0 ||
        sigaltstack(&ss, NULL) != 0) {
        pthread_setspecific(overflow_key, NULL);
        munmap(m, page + OVERFLOW_ALTSTACK_SIZE);
        return;
    }
    overflow_thread_altstack = ss.ss_sp;
}

int overflow_report(int on)
{
    pthread_mutex_lock(&overflow_lock);
    int was = __atomic_load_n(&overflow_on, __ATOMIC_RELAXED);
    if (on && !was) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = overflow_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        for (int i = 0; i < 2; i++) {
            sigaction(overflow_signals[i], NULL, &overflow_prev[i]);
            sigaction(overflow_signals[i], &sa, NULL);
        }
        __atomic_store_n(&overflow_on, 1, __ATOMIC_RELAXED);
    } else if (!on && was) {
        /* Put back what was there, unless the program has replaced the handler since. */
        for (int i = 0; i < 2; i++) {
            struct sigaction cur;
            if (sigaction(overflow_signals[i], NULL, &cur) == 0 &&
                (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == overflow_handler)
                sigaction(overflow_signals[i], &overflow_prev[i], NULL);
        }
        __atomic_store_n(&overflow_on, 0, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&overflow_lock);
    if (on) {
        overflow_thread_setup();
        if (overflow_thread_altstack == NULL) {
            error_set(ASYNCJOB_ENOMEM);
            return 0;
        }
    }
    return 1;
}

int overflow_default;

void overflow_read_env(void)
{
    const char *v = getenv("ASYNCJOB_OVERFLOW_REPORT");
    if (v != NULL && *v != '\0' ? strcmp(v, "1") == 0 : overflow_default)
        overflow_report(1);
}

ASYNCJOB_API int asyncjob_overflow_report(int on)
{
    return overflow_report(on);
}

#endif /* !_WIN32 */
