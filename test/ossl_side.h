/*
 * ossl_side.h: the interface of test/libossl_side.so, a shared object linked only against
 * OpenSSL's libcrypto. test_coexist calls it to run libcrypto's own ASYNC jobs in a process
 * that also uses asyncjob, whose exported names are the same.
 */
#ifndef ASYNCJOB_TEST_OSSL_SIDE_H
#define ASYNCJOB_TEST_OSSL_SIDE_H

/* Run one libcrypto job that pauses `pauses` times, calling `inner` (if not NULL) between
 * pauses. Returns 1000 + pauses + the sum of inner()'s results, or a negative number
 * naming the check that failed inside (ossl_side.c). */
int ossl_side_run(int pauses, int (*inner)(void));

/* The file that defines the ASYNC_start_job this object's calls are bound to. */
const char *ossl_side_binding(void);

/* 1 if libcrypto's ASYNC_get_current_job() returns NULL here, else 0. */
int ossl_side_outside_job(void);

#endif /* ASYNCJOB_TEST_OSSL_SIDE_H */
