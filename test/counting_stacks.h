/*
 * counting_stacks.h: for tests and the fuzzer. A wrapper around the default stack
 * allocator that counts the stacks alive, installed with use_counting_stacks() before the
 * first stack exists. Thread-safe; include in one file per program.
 */
#ifndef ASYNCJOB_TEST_COUNTING_STACKS_H
#define ASYNCJOB_TEST_COUNTING_STACKS_H

#include <stddef.h>

#include "asyncjob.h"

static ASYNC_stack_alloc_fn def_alloc;
static ASYNC_stack_free_fn def_free;
static long live_stacks;

static void *counting_alloc(size_t *num)
{
    void *p = def_alloc(num);
    if (p != NULL)
        __atomic_add_fetch(&live_stacks, 1, __ATOMIC_RELAXED);
    return p;
}

static void counting_free(void *p)
{
    __atomic_sub_fetch(&live_stacks, 1, __ATOMIC_RELAXED);
    def_free(p);
}

/* Stacks allocated through counting_alloc() and not freed yet. */
static long stacks(void)
{
    return __atomic_load_n(&live_stacks, __ATOMIC_RELAXED);
}

/* Install the counting pair over the current one; 1 if it is in place (installed now, or
 * earlier in this process: a test runner that does not fork calls this more than once),
 * 0 if the functions are already locked to another pair. */
static int use_counting_stacks(void)
{
    ASYNC_stack_alloc_fn a;
    ASYNC_stack_free_fn f;
    ASYNC_get_mem_functions(&a, &f);
    if (a == counting_alloc)
        return 1;
    def_alloc = a;
    def_free = f;
    return ASYNC_set_mem_functions(counting_alloc, counting_free);
}

#endif /* ASYNCJOB_TEST_COUNTING_STACKS_H */
