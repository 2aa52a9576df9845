/*
 * stack.h: job stack memory. The default allocator maps stacks with an inaccessible guard
 * page below them; ASYNC_set_mem_functions can replace it process-wide until the first
 * stack is allocated. Used by the fiber and pool layers.
 */
#ifndef ASYNCJOB_STACK_H
#define ASYNCJOB_STACK_H

#include <stddef.h>

#include "asyncjob.h"

/* The size asked of every allocator, as OpenSSL does. */
#define STACK_DEFAULT_SIZE 32768

/* A custom allocator's stack smaller than this is refused: a custom stack has no guard page
 * to stop an overflow, and less than a page cannot even hold the dynamic linker's lazy
 * binding, which saves the whole vector register state on the stack. */
#define STACK_MIN_SIZE 4096

/* One job stack: [lo, lo + size) is usable; the stack grows down from lo + size. */
struct stack {
    void *lo;
    size_t size;
    ASYNC_stack_free_fn free_fn; /* the function that must release lo */
};

/* Allocate with the current functions (which are locked from then on).
 * Returns 0, or ASYNCJOB_ESTACK with *s untouched. */
int stack_alloc(struct stack *s);
void stack_free(struct stack *s);

/* Unmap the calling thread's default stacks that were made ahead and not handed out. */
void stack_release_thread(void);

/* Backends of ASYNC_set_mem_functions / ASYNC_get_mem_functions. */
int stack_set_functions(ASYNC_stack_alloc_fn alloc_fn, ASYNC_stack_free_fn free_fn);
void stack_get_functions(ASYNC_stack_alloc_fn *alloc_fn, ASYNC_stack_free_fn *free_fn);

/* How default stacks get their guard page. */
enum stack_guard {
    STACK_GUARD_AUTO = 0,     /* MADV_GUARD_INSTALL if the kernel has it, else mprotect */
    STACK_GUARD_MADVISE = 1,  /* madvise(MADV_GUARD_INSTALL): the mapping stays whole */
    STACK_GUARD_MPROTECT = 2, /* mprotect(PROT_NONE): splits the mapping in two */
};

/* Test hook: force a guard mechanism (returns 0 if the kernel lacks it). */
int stack_set_guard_mode(enum stack_guard mode);
/* The mechanism in use (after the first default stack, never AUTO). */
enum stack_guard stack_guard_mode(void);

#endif /* ASYNCJOB_STACK_H */
