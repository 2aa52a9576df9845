/* stack.c: a job stack's life: allocated through the process-wide allocator pair (the
 * ASYNC_set_mem_functions() backend, locked by the first stack) and freed by the function
 * that made it. The other lib/stack_*.c files hold what default stacks need. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>

#include "error.h"
#include "stack_internal.h"

size_t stack_page_size(void)
{
    static size_t cached;
    size_t p = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (p == 0) {
        p = stack_os_page_size();
        __atomic_store_n(&cached, p, __ATOMIC_RELAXED);
    }
    return p;
}

size_t stack_map_length(size_t usable, size_t guard, size_t page)
{
    size_t body = (usable + sizeof(struct stack_tail) + page - 1) & ~(page - 1);
    return guard + body;
}

/* The pair in force. stack_fn_locked turns 1 with the first stack; from then on the pair
 * never changes, so readers need the lock only until they see it set. */
static pthread_mutex_t stack_fn_lock = PTHREAD_MUTEX_INITIALIZER;
static int stack_fn_locked;
static ASYNC_stack_alloc_fn stack_fn_alloc = stack_default_alloc;
static ASYNC_stack_free_fn stack_fn_free = stack_default_free;

int stack_set_functions(ASYNC_stack_alloc_fn alloc_fn, ASYNC_stack_free_fn free_fn)
{
    int ok = 0;
    pthread_mutex_lock(&stack_fn_lock);
    if (!stack_fn_locked) {
        if (alloc_fn != NULL)
            stack_fn_alloc = alloc_fn;
        if (free_fn != NULL)
            stack_fn_free = free_fn;
        ok = 1;
    }
    pthread_mutex_unlock(&stack_fn_lock);
    if (!ok)
        error_set(ASYNCJOB_ELOCKED);
    return ok;
}

void stack_get_functions(ASYNC_stack_alloc_fn *alloc_fn, ASYNC_stack_free_fn *free_fn)
{
    pthread_mutex_lock(&stack_fn_lock);
    if (alloc_fn != NULL)
        *alloc_fn = stack_fn_alloc;
    if (free_fn != NULL)
        *free_fn = stack_fn_free;
    pthread_mutex_unlock(&stack_fn_lock);
}

/* The pair for a new stack, locking it for good. */
static void stack_lock_functions(ASYNC_stack_alloc_fn *alloc_fn, ASYNC_stack_free_fn *free_fn)
{
    if (__atomic_load_n(&stack_fn_locked, __ATOMIC_ACQUIRE)) {
        *alloc_fn = stack_fn_alloc;
        *free_fn = stack_fn_free;
        return;
    }
    pthread_mutex_lock(&stack_fn_lock);
    __atomic_store_n(&stack_fn_locked, 1, __ATOMIC_RELEASE);
    *alloc_fn = stack_fn_alloc;
    *free_fn = stack_fn_free;
    pthread_mutex_unlock(&stack_fn_lock);
}

int stack_alloc(struct stack *s)
{
    ASYNC_stack_alloc_fn a;
    ASYNC_stack_free_fn f;
    stack_lock_functions(&a, &f);

    size_t asked = stack_asked_size();
    if (a == stack_default_alloc) {
        int err = stack_slab_alloc(asked * STACK_SCALE, s);
        if (err != 0) {
            error_set(err);
            return err;
        }
    } else {
        size_t num = asked;
        void *lo = a(&num);
        if (lo == NULL || num < STACK_CUSTOM_MIN_USABLE) {
            if (lo != NULL)
                f(lo);
            error_set(ASYNCJOB_ESTACK);
            return ASYNCJOB_ESTACK;
        }
        s->lo = lo;
        s->size = num;
        s->guard = 0;
        s->guarded = 0;
    }
    s->free_fn = f;
    s->asked = asked;
    s->mark = NULL;
    stack_set_mark(s);
    return 0;
}

void stack_free(struct stack *s)
{
    if (s->lo == NULL)
        return;
    /* The library knows its own stacks' mappings: no walk to the tail. */
    if (s->free_fn == stack_default_free)
        stack_unmap(s);
    else
        s->free_fn(s->lo);
    s->lo = NULL;
}
