/* alloc.h: every heap allocation and stack mapping of the library passes through here,
 * so that tests can make the Nth one fail (alloc_fail_after) and check that each failure
 * path returns a clean error and leaks nothing. Internal; never exported. */
#ifndef ASYNCJOB_ALLOC_H
#define ASYNCJOB_ALLOC_H

#include <stddef.h>

/* No block the library asks for is larger: a bigger size (a caller's SIZE_MAX) fails
 * before malloc sees it, where ASan and TSan would abort (allocation-size-too-big, above
 * 1 TiB on 64-bit targets, 3 GiB on 32-bit ones) and valgrind would warn. */
#define ALLOC_MAX ((size_t)1 << (sizeof(size_t) > 4 ? 36 : 30))

/* malloc/calloc/free for library objects; NULL on (real or injected) failure, and for a
 * size above ALLOC_MAX. */
void *alloc_heap(size_t size);
void *alloc_heap_zero(size_t size);
void alloc_heap_free(void *p);

/* True if the allocation about to be made must fail (test injection). Stack mappings
 * call it too. Costs one relaxed atomic load when no failure is armed. */
int alloc_injected_failure(void);

/* Test hook: the next n-1 allocations succeed and the nth fails; n == 0 disarms.
 * alloc_count() tells how many allocations were attempted since the last arming. */
void alloc_fail_after(long n);
long alloc_count(void);

#endif /* ASYNCJOB_ALLOC_H */
