/*
 * windows_skip.h: for a suite that needs what Windows lacks (fork, POSIX signals, mmap,
 * dlopen...). On Windows its file is only WINDOWS_SKIP_SUITE(name, why): one test that
 * reports SKIP with the reason, never a PASS. test/test_windows.c covers Windows itself.
 */
#ifndef ASYNCJOB_WINDOWS_SKIP_H
#define ASYNCJOB_WINDOWS_SKIP_H

#include <check.h>

#include "check_suite.h"
#include "tap_skip.h"

#define WINDOWS_SKIP_SUITE(name, why)                                                      \
    START_TEST(name##_on_windows)                                                          \
    {                                                                                      \
        tap_skip("not on Windows: " why);                                                  \
    }                                                                                      \
    END_TEST                                                                               \
    SUITE(#name, 0, NULL, name##_on_windows)

#endif /* ASYNCJOB_WINDOWS_SKIP_H */
