/*
 * counting_stacks.h: the one counting stack allocator of the tests and the fuzzer. Installed
 * with use_counting_stacks() before the first stack exists, it wraps the pair in force then
 * (the library's default stacks) and counts every call, stack and free. A test can make it
 * fail (counted.fail_after) or hand out heap blocks of a size of its choosing
 * (counted.give_size). Counters are atomic: jobs on several threads may allocate at once.
 * Include in one file per program; Check runs each test in a fresh child, so each test
 * starts from zero.
 */
#ifndef ASYNCJOB_TEST_COUNTING_STACKS_H
#define ASYNCJOB_TEST_COUNTING_STACKS_H

#include <stddef.h>
#include <stdlib.h>

#include "asyncjob.h"

#define COUNTED_TRACK 64

static struct {
    ASYNC_stack_alloc_fn def_alloc;
    ASYNC_stack_free_fn def_free;
    long calls;           /* calls of counting_alloc, failed ones included */
    long allocs, frees;   /* stacks handed out, and given back */
    size_t first_request; /* *num as the library passed it on the first call */
    long fail_after;      /* >= 0: this many calls succeed, the later ones return NULL */
    size_t give_size;     /* non-zero: heap blocks of this size, not default stacks; set it
                           * before the first stack and never back to 0 */
    void *last_stack;     /* the stack handed out last */
    void *handed_out[COUNTED_TRACK], *freed[COUNTED_TRACK]; /* the first ones, in order */
} counted = { .fail_after = -1 };

static inline void *counting_alloc(size_t *num)
{
    long call = __atomic_fetch_add(&counted.calls, 1, __ATOMIC_RELAXED);
    if (call == 0)
        counted.first_request = *num;
    if (counted.fail_after >= 0 && call >= counted.fail_after)
        return NULL;
    void *p;
    if (counted.give_size != 0) {
        *num = counted.give_size;
        p = malloc(*num);
    } else {
        p = counted.def_alloc(num);
    }
    if (p == NULL)
        return NULL;
    long i = __atomic_fetch_add(&counted.allocs, 1, __ATOMIC_RELAXED);
    if (i < COUNTED_TRACK)
        counted.handed_out[i] = p;
    __atomic_store_n(&counted.last_stack, p, __ATOMIC_RELAXED);
    return p;
}

static inline void counting_free(void *p)
{
    long i = __atomic_fetch_add(&counted.frees, 1, __ATOMIC_RELAXED);
    if (i < COUNTED_TRACK)
        counted.freed[i] = p;
    if (counted.give_size != 0) /* a heap block (give_size stays non-zero once set) */
        free(p);
    else
        counted.def_free(p);
}

/* Stacks handed out by counting_alloc() and not freed yet. */
static inline long stacks(void)
{
    return __atomic_load_n(&counted.allocs, __ATOMIC_RELAXED) -
           __atomic_load_n(&counted.frees, __ATOMIC_RELAXED);
}

/* Install the counting pair over the current one; 1 if it is in place (installed now, or
 * earlier in this process: a test runner that does not fork calls this more than once),
 * 0 if the functions are already locked to another pair. */
static inline int use_counting_stacks(void)
{
    ASYNC_stack_alloc_fn a;
    ASYNC_stack_free_fn f;
    ASYNC_get_mem_functions(&a, &f);
    if (a == counting_alloc)
        return 1;
    counted.def_alloc = a;
    counted.def_free = f;
    return ASYNC_set_mem_functions(counting_alloc, counting_free);
}

#endif /* ASYNCJOB_TEST_COUNTING_STACKS_H */
