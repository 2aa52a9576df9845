/* stack_guard.c: the guard below every default stack: its width, how it is installed
 * (madvise's guard regions where the kernel really has them, a probe catching emulators
 * that fake them, else mprotect; chosen once per process), and what happens when it
 * cannot be: the mprotect budget, strict guards and the count of unguarded stacks. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "stack_internal.h"

#ifndef MADV_GUARD_INSTALL
# define MADV_GUARD_INSTALL 102 /* Linux >= 6.13; older kernels answer EINVAL */
#endif

/* What Linux has by default when /proc/sys/vm/max_map_count cannot be read. */
#define STACK_MAP_LIMIT_DEFAULT 65530

/* The settings, read from the environment once (stack_guard_env()), then changed only by
 * their setters. Relaxed atomics: every stack reads each once and any recent value will
 * do. stack_guard_setting is an enum stack_guard: it settles once, and every value is
 * safe to act on. */
static int stack_guard_setting;
static size_t stack_guard_width = STACK_GUARD_DEFAULT;
static int stack_guard_strict;
static pthread_once_t stack_guard_once = PTHREAD_ONCE_INIT;

/* The counts: stacks whose mprotect guard holds mappings (two each), and stacks that
 * exist without a guard. The map limit: vm.max_map_count once read, or the test hook's. */
static size_t stack_guard_mprotected;
static size_t stack_guard_unguarded;
static size_t stack_guard_map_limit;

static size_t stack_guard_round(size_t n)
{
    size_t page = stack_page_size();
    return (n + page - 1) & ~(page - 1);
}

/* A malformed or out-of-range variable is ignored: the library never fails for its
 * environment. */
static void stack_guard_env(void)
{
    size_t n;
    if (stack_parse_size(getenv("ASYNCJOB_GUARD_SIZE"), &n) && n != 0 && n <= STACK_GUARD_MAX)
        __atomic_store_n(&stack_guard_width, stack_guard_round(n), __ATOMIC_RELAXED);
    const char *v = getenv("ASYNCJOB_STRICT_GUARDS");
    if (v != NULL && v[0] == '1' && v[1] == '\0')
        __atomic_store_n(&stack_guard_strict, 1, __ATOMIC_RELAXED);
    /* mprotect guards on a kernel with guard regions, as on kernels before 6.13 (tests,
     * and measuring what those kernels do). */
    v = getenv("ASYNCJOB_GUARD_MODE");
    if (v != NULL && strcmp(v, "mprotect") == 0)
        __atomic_store_n(&stack_guard_setting, (int)STACK_GUARD_MPROTECT, __ATOMIC_RELAXED);
}

size_t stack_guard_size(void)
{
    pthread_once(&stack_guard_once, stack_guard_env);
    size_t w = __atomic_load_n(&stack_guard_width, __ATOMIC_RELAXED);
    return w < stack_page_size() ? stack_page_size() : stack_guard_round(w);
}

int stack_set_guard_size(size_t bytes)
{
    if (bytes == 0 || bytes > STACK_GUARD_MAX) {
        error_set(ASYNCJOB_EGUARDSIZE);
        return 0;
    }
    pthread_once(&stack_guard_once, stack_guard_env);
    __atomic_store_n(&stack_guard_width, stack_guard_round(bytes), __ATOMIC_RELAXED);
    return 1;
}

int stack_strict_guards(void)
{
    pthread_once(&stack_guard_once, stack_guard_env);
    return __atomic_load_n(&stack_guard_strict, __ATOMIC_RELAXED);
}

int stack_set_strict_guards(int on)
{
    pthread_once(&stack_guard_once, stack_guard_env);
    return __atomic_exchange_n(&stack_guard_strict, on != 0, __ATOMIC_RELAXED);
}

size_t stack_unguarded_count(void)
{
    return __atomic_load_n(&stack_guard_unguarded, __ATOMIC_RELAXED);
}

void stack_set_map_limit(size_t n)
{
    __atomic_store_n(&stack_guard_map_limit, n, __ATOMIC_RELAXED);
}

/* vm.max_map_count, read once (a concurrent second read is harmless). */
static size_t stack_guard_limit(void)
{
    size_t n = __atomic_load_n(&stack_guard_map_limit, __ATOMIC_RELAXED);
    if (n != 0)
        return n;
    n = STACK_MAP_LIMIT_DEFAULT;
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[32];
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        size_t v = 0;
        if (len > 0) {
            buf[len] = '\0';
            if (buf[len - 1] == '\n')
                buf[len - 1] = '\0';
            if (stack_parse_size(buf, &v) && v != 0)
                n = v;
        }
    }
    __atomic_store_n(&stack_guard_map_limit, n, __ATOMIC_RELAXED);
    return n;
}

/* Whether another mprotect guard stays within the budget: seven eighths of the map
 * limit, two mappings per guard, so that the program and unguarded stacks keep the rest. */
static int stack_guard_budget_left(void)
{
    size_t budget = stack_guard_limit() / 16 * 7;
    return __atomic_load_n(&stack_guard_mprotected, __ATOMIC_RELAXED) < budget;
}

/* Whether the page at `addr` really refuses access: qemu-user answers 0 to advice it does
 * not implement. A write(2) from a real guard page fails with EFAULT, without a signal. */
static int stack_guard_is_real(const void *addr)
{
    int fds[2];
    /* Close-on-exec, so that a concurrent fork+exec cannot inherit the pair. */
    if (pipe2(fds, O_CLOEXEC) != 0)
        return 1; /* cannot tell (no free descriptor): trust the kernel's answer */
    ssize_t n = write(fds[1], addr, 1); /* one byte never blocks on an empty pipe */
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return n < 0 && err == EFAULT;
}

static void stack_guard_settle(enum stack_guard mode)
{
    __atomic_store_n(&stack_guard_setting, (int)mode, __ATOMIC_RELAXED);
}

/* Make the `len` bytes at `map` inaccessible, madvise first while the mode is not
 * settled (the first answer settles it); 0, or -1 with errno. */
static int stack_guard_install(void *map, size_t len)
{
    pthread_once(&stack_guard_once, stack_guard_env); /* ASYNCJOB_GUARD_MODE */
    int mode = __atomic_load_n(&stack_guard_setting, __ATOMIC_RELAXED);
    if (mode != STACK_GUARD_MPROTECT) {
        if (madvise(map, len, MADV_GUARD_INSTALL) == 0) {
            if (mode == STACK_GUARD_MADVISE)
                return 0;
            if (stack_guard_is_real(map)) {
                stack_guard_settle(STACK_GUARD_MADVISE);
                return 0;
            }
            /* A faked success: guard this and every later stack with mprotect. */
            stack_guard_settle(STACK_GUARD_MPROTECT);
            return mprotect(map, len, PROT_NONE);
        }
        if (mode == STACK_GUARD_MADVISE || errno != EINVAL)
            return -1;
        stack_guard_settle(STACK_GUARD_MPROTECT); /* this kernel has no guard regions */
    }
    return mprotect(map, len, PROT_NONE);
}

int stack_guard_take(void *map, size_t len, uint32_t *guarded)
{
    int strict = stack_strict_guards();
    if (!strict && stack_guard_mode() == STACK_GUARD_MPROTECT && !stack_guard_budget_left()) {
        *guarded = 0;
    } else if (stack_guard_install(map, len) == 0) {
        *guarded = (uint32_t)stack_guard_mode();
        if (*guarded == STACK_GUARD_MPROTECT)
            __atomic_add_fetch(&stack_guard_mprotected, 1, __ATOMIC_RELAXED);
        return 0;
    } else if (errno != ENOMEM) {
        return ASYNCJOB_ESTACK;
    } else if (strict) {
        return ASYNCJOB_ENOGUARD; /* out of mappings (or page tables) */
    } else {
        *guarded = 0;
    }
    __atomic_add_fetch(&stack_guard_unguarded, 1, __ATOMIC_RELAXED);
    return 0;
}

void stack_guard_dropped(uint32_t guarded)
{
    if (guarded == STACK_GUARD_MPROTECT)
        __atomic_sub_fetch(&stack_guard_mprotected, 1, __ATOMIC_RELAXED);
    else if (guarded == 0)
        __atomic_sub_fetch(&stack_guard_unguarded, 1, __ATOMIC_RELAXED);
}

int stack_guard_contains(const struct stack *s, const void *addr)
{
    uintptr_t lo = (uintptr_t)s->lo;
    return s->guarded != 0 && lo - (uintptr_t)addr - 1 < s->guard;
}

int stack_set_guard_mode(enum stack_guard mode)
{
    if (mode == STACK_GUARD_MADVISE) {
        /* Probe the kernel once on a scratch mapping. */
        size_t page = stack_page_size();
        void *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED)
            return 0;
        int ok = madvise(m, page, MADV_GUARD_INSTALL) == 0 && stack_guard_is_real(m);
        munmap(m, 2 * page);
        if (!ok)
            return 0;
    }
    stack_guard_settle(mode);
    return 1;
}

enum stack_guard stack_guard_mode(void)
{
    return (enum stack_guard)__atomic_load_n(&stack_guard_setting, __ATOMIC_RELAXED);
}
