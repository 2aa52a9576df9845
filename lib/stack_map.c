/* stack_map.c: the mappings of default stacks: one each, or carved from the calling
 * thread's slab, each laid out as stack_internal.h says; their unmapping, with the spares
 * that the kernel would not unmap yet; and the public default pair. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "alloc.h"
#include "stack_internal.h"

/* A slab makes room for STACK_SLAB_COUNT stacks of one size with one mmap; a stack whose
 * mapping, guard left out, is longer than STACK_SLAB_MAX_LEN gets a mapping of its own. */
#define STACK_SLAB_COUNT 16
#define STACK_SLAB_MAX_LEN (128 * 1024)

/* Write the tail of the mapping `map` (map_len bytes, the lowest `guard` of them the
 * guard, installed as `guarded` says); the usable base, with its size in *num. */
static void *stack_write_tail(char *map, size_t map_len, size_t guard, uint32_t guarded,
                              size_t *num)
{
    char *lo = map + guard;
    struct stack_tail *tail = (struct stack_tail *)(void *)(map + map_len) - 1;
    tail->check = (uintptr_t)lo ^ STACK_TAIL_MAGIC;
    tail->map_len = map_len | guarded;
    *num = (size_t)((char *)tail - lo);
    return lo;
}

/* Guard the lowest `guard` bytes of `map` (map_len bytes) and write the tail into *s;
 * 0, or the guard's error code. */
static int stack_setup(char *map, size_t map_len, size_t guard, struct stack *s)
{
    size_t page = stack_page_size();
    assert(((uintptr_t)map & (page - 1)) == 0 && map_len % page == 0 && guard % page == 0);
    (void)page;
    uint32_t guarded;
    int err = stack_guard_take(map, guard, &guarded);
    if (err != 0)
        return err;
    s->lo = stack_write_tail(map, map_len, guard, guarded, &s->size);
    s->guard = guard;
    s->guarded = guarded;
    return 0;
}

static void *stack_map_anonymous(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* One stack in a mapping of its own. */
static int stack_map_one(size_t map_len, size_t guard, struct stack *s)
{
    char *map = stack_map_anonymous(map_len);
    if (map == NULL)
        return ASYNCJOB_ESTACK;
    int err = stack_setup(map, map_len, guard, s);
    if (err != 0)
        munmap(map, map_len);
    return err;
}

/* Reached only through the pointer ASYNC_get_mem_functions() gives (the library's own
 * stacks come from stack_slab_alloc()): each stack it makes has a mapping of its own. */
void *stack_default_alloc(size_t *num)
{
    if (num == NULL || *num == 0 || *num > STACK_SIZE_MAX)
        return NULL;
    size_t page = stack_page_size(), guard = stack_guard_size();
    if (alloc_injected_failure())
        return NULL;
    struct stack s;
    if (stack_map_one(stack_map_length(*num * STACK_SCALE, guard, page), guard, &s) != 0)
        return NULL;
    *num = s.size;
    return s.lo;
}

/* Spares: stacks whose munmap failed (ENOMEM: unmapping from the middle of a mapping
 * splits it, which the kernel refuses at vm.max_map_count). Their pages are given back
 * and they stay listed, with their guards, to be handed out again or unmapped later. The
 * list's node lies in the spare's lowest usable bytes. */
struct stack_spare {
    struct stack_spare *next;
    size_t map_len;   /* the whole mapping, guard included */
    size_t guard;     /* the guard's bytes, at the mapping's bottom */
    uint32_t guarded; /* as struct stack's */
};

static pthread_mutex_t stack_spare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stack_spare *stack_spares; /* written under the lock; peeked at without it */

static void stack_spare_put(char *map, size_t map_len, size_t guard, uint32_t guarded)
{
    /* The pages go back to the kernel (MADV_DONTNEED never splits a mapping); the node
     * then costs the one page it lies in. */
    madvise(map + guard, map_len - guard, MADV_DONTNEED);
    struct stack_spare *sp = (struct stack_spare *)(void *)(map + guard);
    sp->map_len = map_len;
    sp->guard = guard;
    sp->guarded = guarded;
    pthread_mutex_lock(&stack_spare_lock);
    sp->next = stack_spares;
    __atomic_store_n(&stack_spares, sp, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&stack_spare_lock);
}

/* A spare for a mapping of map_len bytes with a guard of `guard`, taken off the list
 * into *s; 0 if there is none. */
static int stack_spare_take(size_t map_len, size_t guard, struct stack *s)
{
    if (__atomic_load_n(&stack_spares, __ATOMIC_RELAXED) == NULL)
        return 0;
    pthread_mutex_lock(&stack_spare_lock);
    struct stack_spare **pp = &stack_spares, *sp;
    while ((sp = *pp) != NULL && (sp->map_len != map_len || sp->guard != guard))
        pp = &sp->next;
    if (sp != NULL)
        __atomic_store_n(pp, sp->next, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&stack_spare_lock);
    if (sp == NULL)
        return 0;
    s->guarded = sp->guarded;
    s->guard = guard;
    s->lo = stack_write_tail((char *)sp - guard, map_len, guard, sp->guarded, &s->size);
    return 1;
}

/* Try to unmap every spare again; the ones the kernel still refuses stay listed. */
static void stack_spare_retry(void)
{
    if (__atomic_load_n(&stack_spares, __ATOMIC_RELAXED) == NULL)
        return;
    pthread_mutex_lock(&stack_spare_lock);
    struct stack_spare **pp = &stack_spares, *sp;
    while ((sp = *pp) != NULL) {
        struct stack_spare next = *sp;
        if (munmap((char *)sp - next.guard, next.map_len) == 0) {
            __atomic_store_n(pp, next.next, __ATOMIC_RELAXED);
            stack_guard_dropped(next.guarded);
        } else {
            pp = &sp->next;
        }
    }
    pthread_mutex_unlock(&stack_spare_lock);
}

/* Unmap one default stack's mapping, or keep it as a spare if the kernel refuses. */
static void stack_unmap_range(char *map, size_t map_len, size_t guard, uint32_t guarded)
{
    if (munmap(map, map_len) != 0) {
        stack_spare_put(map, map_len, guard, guarded);
        return;
    }
    stack_guard_dropped(guarded);
    /* A mapping went: the kernel may take a spare now. */
    stack_spare_retry();
}

void stack_unmap(const struct stack *s)
{
    size_t map_len = s->guard + s->size + sizeof(struct stack_tail);
    stack_unmap_range((char *)s->lo - s->guard, map_len, s->guard, s->guarded);
}

/* Find the tail by walking up from the base, one page end at a time. Only for a caller
 * of the function ASYNC_get_mem_functions() gave: stack_free() unmaps directly. The guard
 * is what the tail's mapping length leaves below the base. */
void stack_default_free(void *addr)
{
    if (addr == NULL)
        return;
    size_t page = stack_page_size();
    for (char *end = (char *)addr + page;; end += page) {
        struct stack_tail *tail = (struct stack_tail *)(void *)end - 1;
        size_t above = (size_t)(end - (char *)addr);
        size_t map_len = tail->map_len & ~(size_t)3, guard = map_len - above;
        if (tail->check == ((uintptr_t)addr ^ STACK_TAIL_MAGIC) && map_len > above &&
            guard <= STACK_GUARD_MAX && guard % page == 0) {
            stack_unmap_range((char *)addr - guard, map_len, guard,
                              (uint32_t)(tail->map_len & 3));
            return;
        }
    }
}

/* The calling thread's slab: stacks of one size not handed out yet. Each one handed out
 * keeps the layout of a mapping of its own, so that it is unmapped alone like any other. */
struct stack_slab {
    char *next;     /* the next stack's mapping */
    size_t left;    /* stacks not handed out yet, from `next` on */
    size_t map_len; /* the mapping length of each of them */
    size_t guard;   /* the guard of each of them */
};

static __thread struct stack_slab stack_thread_slab TLS_INITIAL_EXEC;

/* The pool calls it as it is cleaned up, at thread exit too. */
void stack_release_thread(void)
{
    struct stack_slab *s = &stack_thread_slab;
    if (s->left != 0)
        munmap(s->next, s->left * s->map_len);
    s->next = NULL;
    s->left = 0;
    stack_spare_retry();
}

/* A fresh slab for stacks of map_len bytes; 0 if it cannot be mapped. */
static int stack_slab_refill(struct stack_slab *s, size_t map_len, size_t guard)
{
    char *m = stack_map_anonymous(STACK_SLAB_COUNT * map_len);
    if (m == NULL)
        return 0;
    s->next = m;
    s->left = STACK_SLAB_COUNT;
    s->map_len = map_len;
    s->guard = guard;
    return 1;
}

int stack_slab_alloc(size_t usable, struct stack *st)
{
    struct stack_slab *s = &stack_thread_slab;
    size_t page = stack_page_size(), guard = stack_guard_size();
    size_t map_len = stack_map_length(usable, guard, page);

    if (alloc_injected_failure())
        return ASYNCJOB_ESTACK;
    if (stack_spare_take(map_len, guard, st))
        return 0;
    if (map_len - guard > STACK_SLAB_MAX_LEN)
        return stack_map_one(map_len, guard, st);
    if (s->left != 0 && (s->map_len != map_len || s->guard != guard))
        stack_release_thread(); /* made for another size */
    /* Perhaps only the whole slab is too much (an address-space limit). */
    if (s->left == 0 && !stack_slab_refill(s, map_len, guard))
        return stack_map_one(map_len, guard, st);
    /* A stack whose guard fails stays in the slab, for the next attempt. */
    int err = stack_setup(s->next, map_len, guard, st);
    if (err == 0) {
        s->next += map_len;
        s->left--;
    }
    return err;
}
