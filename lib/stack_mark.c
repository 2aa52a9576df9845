/* stack_mark.c: how deep jobs go into their stacks: the deep mark that a finishing job
 * checks (stack.h), its renewal, which gives the pages of a deep job back, and
 * stack_peak(), which asks the kernel which pages are resident. */
#include "config.h"

#include <stdint.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
# include <valgrind/valgrind.h>
#endif

#include "stack_internal.h"

STATIC_ASSERT(STACK_DEEP % sizeof(uint32_t) == 0,
              "the deep mark, STACK_DEEP below a 16-byte aligned top, must be an aligned word");

/* Whether `s` has a deep mark of its own rather than its `epoch` field as the mark. */
static int stack_has_deep_mark(const struct stack *s)
{
    return (uintptr_t)s->mark - (uintptr_t)s->lo < s->size;
}

/* Write or read the mark; not instrumented, like stack_mark_ok(). */
NO_ASAN
static void stack_write_mark(uint32_t *m, uint32_t v)
{
    __atomic_store_n(m, v, __ATOMIC_RELAXED);
}

NO_ASAN
static int stack_mark_intact(const struct stack *s)
{
    return __atomic_load_n(s->mark, __ATOMIC_RELAXED) == s->epoch;
}

/* Whether `s` gets a deep mark: it costs a resident page, and under valgrind memcheck
 * would report the check once a deep job's frames are gone. */
static int stack_wants_deep_mark(const struct stack *s)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return 0;
#endif
    return s->free_fn == stack_default_free && s->size > STACK_DEEP + stack_page_size();
}

void stack_set_mark(struct stack *s)
{
    if (s->mark == NULL) {
        s->mark = &s->epoch;
        if (stack_wants_deep_mark(s))
            s->mark = (uint32_t *)(void *)((char *)s->lo + s->size - STACK_DEEP);
    }
    s->epoch = __atomic_load_n(&stack_epoch, __ATOMIC_RELAXED);
    stack_write_mark(s->mark, s->epoch);
}

void stack_discard(struct stack *s)
{
    /* Only the library's own mappings: a custom allocator's memory is not ours to zero. */
    if (s->free_fn == stack_default_free)
        /* Never fails on Linux; on Windows a failed recommit (commit limit reached) leaves
         * the stack decommitted, and its next job faults: doc/DESIGN.md, "Windows". */
        (void)stack_os_discard(s->lo, s->size);
    stack_set_mark(s);
}

int stack_renew(struct stack *s, const void *frame)
{
    assert((uintptr_t)frame - (uintptr_t)s->lo < s->size);
    /* Acquire, pairing with stack_set_size(): the size read next is at least as new. */
    (void)__atomic_load_n(&stack_epoch, __ATOMIC_ACQUIRE);
    if (stack_too_small(s))
        return 0;
    if (stack_has_deep_mark(s)) {
        /* Nothing is live below the caller's page and the one under it: the caller's
         * frame and its call to stack_os_discard() fit in a page. */
        size_t page = stack_page_size();
        uintptr_t end = ((uintptr_t)frame & ~(uintptr_t)(page - 1)) - page;
        if (end > (uintptr_t)s->lo && stack_os_discard(s->lo, end - (uintptr_t)s->lo) != 0)
            return 0; /* part of the stack is unusable now: the caller frees it */
    }
    stack_set_mark(s);
    return 1;
}

/* Every page a job wrote is resident (a default stack is a fresh anonymous mapping) until
 * stack_renew() gives it back: the lowest resident page is the deepest the job went. */
size_t stack_peak(const struct stack *s)
{
    if (s->free_fn != stack_default_free)
        return 0;
    size_t page = stack_page_size();
    const char *lo = s->lo, *top = lo + s->size;
    size_t pages = (s->size + page - 1) / page;
    /* The deep mark's page is resident from the start: it counts once the job went past
     * the word, which it then has overwritten. */
    const char *skip = stack_has_deep_mark(s) && stack_mark_intact(s)
        ? (const char *)((uintptr_t)s->mark & ~(uintptr_t)(page - 1)) : NULL;
    unsigned char vec[64];
    for (size_t i = 0; i < pages; i += sizeof(vec)) {
        size_t n = pages - i < sizeof(vec) ? pages - i : sizeof(vec);
        const char *p = lo + i * page;
        if (stack_resident(p, n, vec) != 0)
            return 0;
        for (size_t k = 0; k < n; k++, p += page)
            if ((vec[k] & 1) && p != skip)
                return (size_t)(top - p);
    }
    return 0;
}
