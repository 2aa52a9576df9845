/*
 * stack.c: the default stack allocator (mmap + guard page) and the process-wide custom
 * allocator pair. Touches only the kernel's memory calls and alloc.h's failure hook.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
# include <valgrind/valgrind.h>
#endif

#include "alloc.h"
#include "error.h"
#include "stack.h"

#ifndef MADV_GUARD_INSTALL
# define MADV_GUARD_INSTALL 102 /* Linux >= 6.13; older kernels answer EINVAL */
#endif

#ifdef ASYNCJOB_ASAN
/* ASan's instrumented frames are several times larger: scale default stacks. */
# define STACK_SCALE 8
#else
# define STACK_SCALE 1
#endif

/*
 * A default stack mapping, from low to high addresses:
 *   [guard page][usable stack ............................][struct stack_tail]
 * The usable base is what the allocator returns. The tail shares the top page with the
 * stack's first frames (so it costs no resident memory of its own) and lets the public
 * default free function, which receives only the base, find the mapping's length. The
 * library itself never needs it: it knows each stack's size and unmaps directly.
 */
#define STACK_TAIL_MAGIC ((uintptr_t)0x6173796e636a6f62u) /* "asyncjob" */

struct stack_tail {
    uintptr_t check;  /* base ^ STACK_TAIL_MAGIC: tells a real tail from stack data */
    size_t map_len;   /* guard page included; keeps the stack top 16-byte aligned */
};

static int guard_mode; /* enum stack_guard, relaxed atomics: it only ever settles once */

static size_t page_size(void)
{
    static size_t cached;
    size_t p = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (p == 0) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&cached, p, __ATOMIC_RELAXED);
    }
    return p;
}

/* The mapping length for `usable` bytes of stack (tail included, guard included). */
static size_t map_length(size_t usable, size_t page)
{
    size_t body = (usable + sizeof(struct stack_tail) + page - 1) & ~(page - 1);
    return page + body;
}

/*
 * Whether the page at `addr` really refuses access. A success from madvise() is not proof:
 * qemu-user answers 0 to advice it does not implement, MADV_GUARD_INSTALL included, and
 * installs nothing. A write(2) whose source is a real guard page fails with EFAULT inside
 * the kernel, without a signal, so it tells the two apart. Run once per process.
 */
static int guard_is_real(const void *addr)
{
    int fds[2];
    /* The pair lives for one write, once per process (an empty pipe never blocks a
     * one-byte write); close-on-exec so that a concurrent fork+exec cannot inherit it. */
    if (pipe2(fds, O_CLOEXEC) != 0)
        return 1; /* cannot tell (no free descriptor): trust the kernel's answer */
    ssize_t n = write(fds[1], addr, 1);
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return n < 0 && err == EFAULT;
}

/* Make the lowest page of the mapping inaccessible. */
static int install_guard(void *map, size_t page)
{
    int mode = __atomic_load_n(&guard_mode, __ATOMIC_RELAXED);
    if (mode != STACK_GUARD_MPROTECT) {
        if (madvise(map, page, MADV_GUARD_INSTALL) == 0) {
            if (mode == STACK_GUARD_MADVISE)
                return 0;
            if (guard_is_real(map)) {
                __atomic_store_n(&guard_mode, STACK_GUARD_MADVISE, __ATOMIC_RELAXED);
                return 0;
            }
            /* A faked success: guard this and every later stack with mprotect. */
            __atomic_store_n(&guard_mode, STACK_GUARD_MPROTECT, __ATOMIC_RELAXED);
            return mprotect(map, page, PROT_NONE);
        }
        if (mode == STACK_GUARD_MADVISE || errno != EINVAL)
            return -1;
        /* This kernel has no guard regions: use mprotect from now on. */
        __atomic_store_n(&guard_mode, STACK_GUARD_MPROTECT, __ATOMIC_RELAXED);
    }
    return mprotect(map, page, PROT_NONE);
}

/* Guard the lowest page of `map` (map_len bytes) and write the tail; the usable base, with
 * its size in *num, or NULL if the guard could not be installed. */
static void *stack_setup(char *map, size_t map_len, size_t page, size_t *num)
{
    if (install_guard(map, page) != 0)
        return NULL;
    char *lo = map + page;
    struct stack_tail *tail = (struct stack_tail *)(void *)(map + map_len) - 1;
    tail->check = (uintptr_t)lo ^ STACK_TAIL_MAGIC;
    tail->map_len = map_len;
    *num = (size_t)((char *)tail - lo);
    return lo;
}

static void *map_anonymous(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* One stack in a mapping of its own. */
static void *map_one_stack(size_t map_len, size_t page, size_t *num)
{
    char *map = map_anonymous(map_len);
    if (map == NULL)
        return NULL;
    void *lo = stack_setup(map, map_len, page, num);
    if (lo == NULL)
        munmap(map, map_len);
    return lo;
}

static void *default_alloc(size_t *num)
{
    if (num == NULL || *num == 0 || *num > SIZE_MAX / 4 / STACK_SCALE)
        return NULL;
    size_t page = page_size();
    if (alloc_injected_failure())
        return NULL;
    return map_one_stack(map_length(*num * STACK_SCALE, page), page, num);
}

/*
 * The stack size in force. ASYNCJOB_STACK_SIZE gives the first value, read once before the
 * first default stack (or the first get or set); asyncjob_set_stack_size() changes it.
 * Stored as the size asked of allocators (custom ones get it as is); default stacks are
 * that times STACK_SCALE. Relaxed atomics: each stack reads it once, any recent value will
 * do; size_lock orders the sets and the epoch changes they make.
 */
static size_t size_asked = STACK_DEFAULT_SIZE;
static pthread_once_t size_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t size_lock = PTHREAD_MUTEX_INITIALIZER;

/* Starts as an arbitrary value, so that zeroed memory never passes for an intact mark. */
uint32_t stack_epoch = 0x6a6f6273u; /* "jobs" */

static size_t round_to_pages(size_t n)
{
    return (n + page_size() - 1) & ~(page_size() - 1);
}

/* Parse "123", "256K" or "4M" (a suffix in either case) into *out; 0 if malformed. */
static int parse_size(const char *v, size_t *out)
{
    size_t n = 0;
    if (v == NULL || *v < '0' || *v > '9')
        return 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > (SIZE_MAX - 9) / 10)
            return 0;
        n = n * 10 + (size_t)(*v - '0');
    }
    size_t unit = 1;
    if (*v == 'K' || *v == 'k')
        unit = 1024;
    else if (*v == 'M' || *v == 'm')
        unit = 1024 * 1024;
    if (unit != 1)
        v++;
    if (*v != '\0' || n > SIZE_MAX / unit)
        return 0;
    *out = n * unit;
    return 1;
}

static int size_in_range(size_t n)
{
    return n >= STACK_SIZE_MIN && n <= STACK_SIZE_MAX;
}

static void size_from_environment(void)
{
    size_t n;
    if (parse_size(getenv("ASYNCJOB_STACK_SIZE"), &n) && size_in_range(n))
        __atomic_store_n(&size_asked, round_to_pages(n), __ATOMIC_RELAXED);
}

static size_t asked_size(void)
{
    pthread_once(&size_once, size_from_environment);
    return __atomic_load_n(&size_asked, __ATOMIC_RELAXED);
}

size_t stack_get_size(void)
{
    return asked_size() * STACK_SCALE;
}

int stack_set_size(size_t bytes)
{
    if (!size_in_range(bytes)) {
        error_set(ASYNCJOB_ESTACKSIZE);
        return 0;
    }
    size_t n = round_to_pages(bytes);
    pthread_mutex_lock(&size_lock);
    size_t old = asked_size();
    __atomic_store_n(&size_asked, n, __ATOMIC_RELAXED);
    if (n > old) /* release: whoever sees the new epoch sees the new size too */
        __atomic_store_n(&stack_epoch, __atomic_load_n(&stack_epoch, __ATOMIC_RELAXED) + 1,
                         __ATOMIC_RELEASE);
    pthread_mutex_unlock(&size_lock);
    return 1;
}

/*
 * The library's own default stacks are carved from slabs: one mmap makes room for
 * STACK_SLAB_COUNT of them, and each is guarded and handed out when it is needed. That
 * saves a system call per stack (a cold job, `bench_api_asyncjob api`: 3.9 -> 2.7 us).
 * Each stack keeps the layout of a mapping of its own (guard page, usable stack, tail),
 * so stack_free() and the public default free function unmap it alone, like any other.
 * Each thread carves from its own slab (no lock); what it has not handed out is unmapped
 * by stack_release_thread(), which the pool calls when it is cleaned up (at thread exit
 * too). A slab holds stacks of one size: when the size changes, the rest of the slab is
 * unmapped and a new one made. Stacks whose mapping exceeds STACK_SLAB_MAX_LEN get a
 * mapping each (a system call is nothing next to such a stack). A program that calls the
 * public default allocator itself gets a mapping of its own.
 */
#define STACK_SLAB_COUNT 16
#define STACK_SLAB_MAX_LEN (128 * 1024)

static __thread struct {
    char *next;     /* the next stack's mapping */
    size_t left;    /* stacks not handed out yet, from `next` on */
    size_t map_len; /* the mapping length of each of them */
} slab TLS_INITIAL_EXEC;

void stack_release_thread(void)
{
    if (slab.left != 0)
        munmap(slab.next, slab.left * slab.map_len);
    slab.next = NULL;
    slab.left = 0;
}

/* A stack of `usable` bytes from this thread's slab; its usable size in *num. */
static void *slab_alloc(size_t usable, size_t *num)
{
    size_t page = page_size();
    size_t map_len = map_length(usable, page);

    if (alloc_injected_failure())
        return NULL;
    if (map_len > STACK_SLAB_MAX_LEN)
        return map_one_stack(map_len, page, num);
    if (slab.left != 0 && slab.map_len != map_len)
        stack_release_thread(); /* made for another size */
    if (slab.left == 0) {
        char *m = map_anonymous(STACK_SLAB_COUNT * map_len);
        if (m == NULL) /* perhaps only the slab is too much (an address-space limit) */
            return map_one_stack(map_len, page, num);
        slab.next = m;
        slab.left = STACK_SLAB_COUNT;
        slab.map_len = map_len;
    }
    /* A stack whose guard fails stays in the slab, for the next attempt. */
    void *lo = stack_setup(slab.next, map_len, page, num);
    if (lo != NULL) {
        slab.next += map_len;
        slab.left--;
    }
    return lo;
}

/* The public default free function: find the tail by walking up from the base, one page
 * end at a time. Only reached when a program calls the function it got from
 * ASYNC_get_mem_functions itself; the library unmaps its own stacks directly. */
static void default_free(void *addr)
{
    if (addr == NULL)
        return;
    size_t page = page_size();
    char *map = (char *)addr - page;
    for (char *end = (char *)addr + page;; end += page) {
        struct stack_tail *tail = (struct stack_tail *)(void *)end - 1;
        if (tail->check == ((uintptr_t)addr ^ STACK_TAIL_MAGIC) &&
            tail->map_len == (size_t)(end - map)) {
            munmap(map, tail->map_len);
            return;
        }
    }
}

/*
 * The process-wide pair. `locked` turns 1 when the first stack is allocated; from then on
 * set fails. The mutex orders a set against that first allocation; once locked, readers
 * need no lock because the pair never changes again.
 */
static pthread_mutex_t fn_lock = PTHREAD_MUTEX_INITIALIZER;
static int fn_locked;
static ASYNC_stack_alloc_fn fn_alloc = default_alloc;
static ASYNC_stack_free_fn fn_free = default_free;

int stack_set_functions(ASYNC_stack_alloc_fn alloc_fn, ASYNC_stack_free_fn free_fn)
{
    int ok = 0;
    pthread_mutex_lock(&fn_lock);
    if (!fn_locked) {
        if (alloc_fn != NULL)
            fn_alloc = alloc_fn;
        if (free_fn != NULL)
            fn_free = free_fn;
        ok = 1;
    }
    pthread_mutex_unlock(&fn_lock);
    if (!ok)
        error_set(ASYNCJOB_ELOCKED);
    return ok;
}

void stack_get_functions(ASYNC_stack_alloc_fn *alloc_fn, ASYNC_stack_free_fn *free_fn)
{
    pthread_mutex_lock(&fn_lock);
    if (alloc_fn != NULL)
        *alloc_fn = fn_alloc;
    if (free_fn != NULL)
        *free_fn = fn_free;
    pthread_mutex_unlock(&fn_lock);
}

/* Whether `s` has a deep mark of its own (set_mark() puts one in every default stack that
 * is large enough, except under valgrind). */
static int has_deep_mark(const struct stack *s)
{
    return (uintptr_t)s->mark - (uintptr_t)s->lo < s->size;
}

/* Write or read the mark; not instrumented, like stack_mark_ok(). */
#ifdef ASYNCJOB_ASAN
__attribute__((no_sanitize_address))
#endif
static void write_mark(uint32_t *m, uint32_t v)
{
    __atomic_store_n(m, v, __ATOMIC_RELAXED);
}

#ifdef ASYNCJOB_ASAN
__attribute__((no_sanitize_address))
#endif
static int mark_intact(const struct stack *s)
{
    return __atomic_load_n(s->mark, __ATOMIC_RELAXED) == s->mark_value;
}

/*
 * Point s->mark at its word and make it intact. A deep mark costs a resident page, so
 * only stacks with room for more than STACK_DEEP get one; under valgrind none does, since
 * memcheck marks the word inaccessible once a deep job's frames are gone and the check
 * would be a report.
 */
static void set_mark(struct stack *s)
{
    if (s->mark == NULL) {
        s->mark = &s->mark_value;
        if (s->free_fn == default_free && s->size > STACK_DEEP + page_size()
#ifdef HAVE_VALGRIND_VALGRIND_H
            && !RUNNING_ON_VALGRIND
#endif
        )
            s->mark = (uint32_t *)(void *)((char *)s->lo + s->size - STACK_DEEP);
    }
    s->mark_value = __atomic_load_n(&stack_epoch, __ATOMIC_RELAXED);
    write_mark(s->mark, s->mark_value);
}

int stack_alloc(struct stack *s)
{
    ASYNC_stack_alloc_fn a;
    ASYNC_stack_free_fn f;

    if (__atomic_load_n(&fn_locked, __ATOMIC_ACQUIRE)) {
        a = fn_alloc;
        f = fn_free;
    } else {
        pthread_mutex_lock(&fn_lock);
        __atomic_store_n(&fn_locked, 1, __ATOMIC_RELEASE);
        a = fn_alloc;
        f = fn_free;
        pthread_mutex_unlock(&fn_lock);
    }

    size_t asked = asked_size();
    size_t num = asked;
    void *lo = a == default_alloc ? slab_alloc(asked * STACK_SCALE, &num) : a(&num);
    if (lo == NULL || num < STACK_MIN_SIZE) {
        if (lo != NULL)
            f(lo);
        error_set(ASYNCJOB_ESTACK);
        return ASYNCJOB_ESTACK;
    }
    s->lo = lo;
    s->size = num;
    s->free_fn = f;
    s->asked = asked;
    s->mark = NULL;
    set_mark(s);
    return 0;
}

void stack_free(struct stack *s)
{
    if (s->lo == NULL)
        return;
    if (s->free_fn == default_free)
        munmap((char *)s->lo - page_size(), map_length(s->size, page_size()));
    else
        s->free_fn(s->lo);
    s->lo = NULL;
}

int stack_too_small(const struct stack *s)
{
    return s->asked < asked_size();
}

int stack_renew(struct stack *s, const void *frame)
{
    /* Acquire, pairing with stack_set_size(): the size read next is at least as new. */
    (void)__atomic_load_n(&stack_epoch, __ATOMIC_ACQUIRE);
    if (stack_too_small(s))
        return 0;
    if (has_deep_mark(s)) {
        /* Below the caller's page and the one under it nothing is live: the caller's
         * frame and its call to madvise fit in a page. */
        uintptr_t end = ((uintptr_t)frame & ~(uintptr_t)(page_size() - 1)) - page_size();
        if (end > (uintptr_t)s->lo)
            madvise(s->lo, end - (uintptr_t)s->lo, MADV_DONTNEED);
    }
    set_mark(s);
    return 1;
}

/*
 * The stack's use as the kernel sees it: every page a job wrote is resident (a default
 * stack is a fresh anonymous mapping), until stack_renew() gives it back. So the answer is
 * the depth of the lowest resident page, since the stack was made or last given back.
 */
size_t stack_peak(const struct stack *s)
{
    if (s->free_fn != default_free)
        return 0;
    size_t page = page_size();
    const char *lo = s->lo, *top = lo + s->size;
    size_t pages = (s->size + page - 1) / page;
    /* The deep mark's page is resident from the start: it counts once the job went past
     * the word, which it then has overwritten. */
    const char *skip = has_deep_mark(s) && mark_intact(s)
        ? (const char *)((uintptr_t)s->mark & ~(uintptr_t)(page - 1)) : NULL;
    unsigned char vec[64];
    for (size_t i = 0; i < pages; i += sizeof(vec)) {
        size_t n = pages - i < sizeof(vec) ? pages - i : sizeof(vec);
        const char *p = lo + i * page;
        if (mincore((void *)p, n * page, vec) != 0)
            return 0;
        for (size_t k = 0; k < n; k++, p += page)
            if ((vec[k] & 1) && p != skip)
                return (size_t)(top - p);
    }
    return 0;
}

int stack_set_guard_mode(enum stack_guard mode)
{
    if (mode == STACK_GUARD_MADVISE) {
        /* Probe the kernel once on a scratch mapping. */
        size_t page = page_size();
        void *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED)
            return 0;
        int ok = madvise(m, page, MADV_GUARD_INSTALL) == 0 && guard_is_real(m);
        munmap(m, 2 * page);
        if (!ok)
            return 0;
    }
    __atomic_store_n(&guard_mode, (int)mode, __ATOMIC_RELAXED);
    return 1;
}

enum stack_guard stack_guard_mode(void)
{
    return (enum stack_guard)__atomic_load_n(&guard_mode, __ATOMIC_RELAXED);
}
