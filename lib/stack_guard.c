/* stack_guard.c: how default stacks get their inaccessible guard page: madvise's guard
 * regions where the kernel really has them (a probe catches emulators that fake them),
 * else mprotect. The choice is made once per process. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stack_internal.h"

#ifndef MADV_GUARD_INSTALL
# define MADV_GUARD_INSTALL 102 /* Linux >= 6.13; older kernels answer EINVAL */
#endif

/* enum stack_guard. Relaxed atomics: it settles once, and every value is safe to act on. */
static int stack_guard_setting;

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

/* madvise first while the mode is not settled; the first answer settles it. */
int stack_guard_install(void *map, size_t page)
{
    int mode = __atomic_load_n(&stack_guard_setting, __ATOMIC_RELAXED);
    if (mode != STACK_GUARD_MPROTECT) {
        if (madvise(map, page, MADV_GUARD_INSTALL) == 0) {
            if (mode == STACK_GUARD_MADVISE)
                return 0;
            if (stack_guard_is_real(map)) {
                stack_guard_settle(STACK_GUARD_MADVISE);
                return 0;
            }
            /* A faked success: guard this and every later stack with mprotect. */
            stack_guard_settle(STACK_GUARD_MPROTECT);
            return mprotect(map, page, PROT_NONE);
        }
        if (mode == STACK_GUARD_MADVISE || errno != EINVAL)
            return -1;
        stack_guard_settle(STACK_GUARD_MPROTECT); /* this kernel has no guard regions */
    }
    return mprotect(map, page, PROT_NONE);
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
