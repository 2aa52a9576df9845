/*
 * guard_probe.h: for the guard-region tests. When the library refuses
 * MADV_GUARD_INSTALL guards, tell an emulator that fakes them (qemu-user answers 0 and
 * installs nothing: the test is reported as SKIP) from a kernel that lacks them (EINVAL:
 * the caller fails the test, since the facility under test is missing).
 */
#ifndef ASYNCJOB_GUARD_PROBE_H
#define ASYNCJOB_GUARD_PROBE_H

#include <check.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tap_skip.h"

static inline void skip_if_guard_regions_faked(void)
{
    long page = sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    int claimed = madvise(m, (size_t)page, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(m, (size_t)page);
    if (claimed)
        tap_skip("madvise(MADV_GUARD_INSTALL) succeeds here but installs no guard "
                 "(an emulator such as qemu-user)");
}

#endif /* ASYNCJOB_GUARD_PROBE_H */
