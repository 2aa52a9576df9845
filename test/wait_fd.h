/*
 * wait_fd.h: wait ctx entries named by small numbers on every system. The library never
 * looks at an OSSL_ASYNC_FD (it stores, lists and hands it back), so a suite about the
 * bookkeeping uses made-up values: an int on POSIX, a HANDLE of the same number on Windows
 * (never waited on or closed). On POSIX both macros are the number itself, so a suite's
 * Linux assertions are the ones it always had.
 */
#ifndef ASYNCJOB_TEST_WAIT_FD_H
#define ASYNCJOB_TEST_WAIT_FD_H

#include <asyncjob.h>
#include <check.h>
#include <stdint.h>

#ifdef _WIN32
/* The OSSL_ASYNC_FD numbered n, and the number of an OSSL_ASYNC_FD. */
#define FD(n) ((OSSL_ASYNC_FD)(intptr_t)(n))
#define FD_NUM(fd) ((intptr_t)(fd))
#else
#define FD(n) (n)
#define FD_NUM(fd) (fd)
#endif

/* Two OSSL_ASYNC_FDs must be the same. */
#define ck_assert_fd_eq(x, y) ck_assert_int_eq(FD_NUM(x), FD_NUM(y))

#endif /* ASYNCJOB_TEST_WAIT_FD_H */
