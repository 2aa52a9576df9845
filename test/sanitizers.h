/*
 * sanitizers.h: which checking tool a test program runs under, decided in one place for
 * every suite. Sanitizers are asked of the compiler (GCC defines __SANITIZE_ADDRESS__ and
 * __SANITIZE_THREAD__, Clang answers __has_feature), so no suite needs config.h for it;
 * valgrind is asked at run time (RUNNING_ON_VALGRIND, 0 where its header is missing).
 */
#ifndef ASYNCJOB_TEST_SANITIZERS_H
#define ASYNCJOB_TEST_SANITIZERS_H

#if defined(__SANITIZE_ADDRESS__)
# define TEST_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define TEST_ASAN 1
# endif
#endif
#ifndef TEST_ASAN
# define TEST_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
# define TEST_TSAN 1
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define TEST_TSAN 1
# endif
#endif
#ifndef TEST_TSAN
# define TEST_TSAN 0
#endif

/* A sanitizer's runtime installs its own SIGSEGV handler and maps memory of its own. */
#define TEST_SANITIZED (TEST_ASAN || TEST_TSAN)

#if defined(__has_include)
# if __has_include(<valgrind/valgrind.h>)
#  include <valgrind/valgrind.h>
# endif
#endif
#ifndef RUNNING_ON_VALGRIND
# define RUNNING_ON_VALGRIND 0
#endif

#endif /* ASYNCJOB_TEST_SANITIZERS_H */
