/* alloc.c: the library's allocation wrappers with test-only failure injection. */
#include "config.h"

#include <stdlib.h>

#include "alloc.h"

/* Countdown to the injected failure (0: none armed) and a counter of attempts. */
static long alloc_fail_countdown;
static long alloc_attempts;

int alloc_injected_failure(void)
{
    if (__atomic_load_n(&alloc_fail_countdown, __ATOMIC_RELAXED) == 0)
        return 0;
    __atomic_add_fetch(&alloc_attempts, 1, __ATOMIC_RELAXED);
    return __atomic_sub_fetch(&alloc_fail_countdown, 1, __ATOMIC_RELAXED) == 0;
}

void alloc_fail_after(long n)
{
    __atomic_store_n(&alloc_attempts, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&alloc_fail_countdown, n, __ATOMIC_RELAXED);
}

long alloc_count(void)
{
    return __atomic_load_n(&alloc_attempts, __ATOMIC_RELAXED);
}

void *alloc_heap(size_t size)
{
    return size > ALLOC_MAX || alloc_injected_failure() ? NULL : malloc(size);
}

void *alloc_heap_zero(size_t size)
{
    return size > ALLOC_MAX || alloc_injected_failure() ? NULL : calloc(1, size);
}

void alloc_heap_free(void *p)
{
    free(p);
}
