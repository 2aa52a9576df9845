/* stack_size.c: the stack size in force (ASYNCJOB_STACK_SIZE first, then
 * asyncjob_set_stack_size()) and the size epoch, which tells stacks made for a smaller
 * size from the others. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "stack_internal.h"

STATIC_ASSERT(STACK_DEFAULT_SIZE >= STACK_SIZE_SETTING_MIN && STACK_DEFAULT_SIZE <= STACK_SIZE_MAX,
              "the default stack size must be one that asyncjob_set_stack_size() accepts");
STATIC_ASSERT(STACK_CUSTOM_MIN_SIZE <= STACK_SIZE_SETTING_MIN,
              "every size in range makes a usable stack");

/* The size asked of allocators (default stacks get STACK_SCALE times more). Relaxed
 * atomics: each new stack reads it once and any recent value will do; stack_size_lock
 * orders the sets and the epoch changes they make. */
static size_t stack_size_asked = STACK_DEFAULT_SIZE;
static pthread_once_t stack_size_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t stack_size_lock = PTHREAD_MUTEX_INITIALIZER;

/* Starts as an arbitrary value, so that zeroed memory never passes for an intact mark. */
uint32_t stack_epoch = 0x6a6f6273u; /* "jobs" */

static size_t stack_round_to_pages(size_t n)
{
    return (n + stack_page_size() - 1) & ~(stack_page_size() - 1);
}

int stack_parse_size(const char *v, size_t *out)
{
    size_t n = 0;
    if (v == NULL || *v < '0' || *v > '9')
        return 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > (SIZE_MAX - 9) / 10)
            return 0;
        n = n * 10 + (size_t)(*v - '0');
    }
    size_t unit = 1;
    if (*v == 'K' || *v == 'k')
        unit = 1024;
    else if (*v == 'M' || *v == 'm')
        unit = 1024 * 1024;
    if (unit != 1)
        v++;
    if (*v != '\0' || n > SIZE_MAX / unit)
        return 0;
    *out = n * unit;
    return 1;
}

static int stack_size_in_range(size_t n)
{
    return n >= STACK_SIZE_SETTING_MIN && n <= STACK_SIZE_MAX;
}

/* A malformed or out-of-range ASYNCJOB_STACK_SIZE is ignored: the library never fails
 * for its environment. */
static void stack_size_from_environment(void)
{
    size_t n;
    if (stack_parse_size(getenv("ASYNCJOB_STACK_SIZE"), &n) && stack_size_in_range(n))
        __atomic_store_n(&stack_size_asked, stack_round_to_pages(n), __ATOMIC_RELAXED);
}

/* The environment is read once, before the first stack or the first get or set. */
size_t stack_asked_size(void)
{
    pthread_once(&stack_size_once, stack_size_from_environment);
    return __atomic_load_n(&stack_size_asked, __ATOMIC_RELAXED);
}

size_t stack_get_size(void)
{
    return stack_asked_size() * STACK_SCALE;
}

int stack_set_size(size_t bytes)
{
    if (!stack_size_in_range(bytes)) {
        error_set(ASYNCJOB_ESTACKSIZE);
        return 0;
    }
    size_t n = stack_round_to_pages(bytes);
    pthread_mutex_lock(&stack_size_lock);
    size_t old = stack_asked_size();
    __atomic_store_n(&stack_size_asked, n, __ATOMIC_RELAXED);
    if (n > old) /* release: whoever sees the new epoch sees the new size too */
        __atomic_store_n(&stack_epoch, __atomic_load_n(&stack_epoch, __ATOMIC_RELAXED) + 1,
                         __ATOMIC_RELEASE);
    pthread_mutex_unlock(&stack_size_lock);
    return 1;
}

int stack_too_small(const struct stack *s)
{
    return s->asked < stack_asked_size();
}
