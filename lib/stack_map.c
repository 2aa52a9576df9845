/* stack_map.c: the mappings of default stacks: one each, or carved from the calling
 * thread's slab, each laid out as stack_internal.h says; the public default pair; and the
 * system's memory calls the other stack files use (lib/stack_map_win.c on Windows). */
#include "config.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "stack_internal.h"

size_t stack_os_page_size(void)
{
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? (size_t)v : 4096;
}

void stack_unmap_default(void *lo, size_t usable)
{
    size_t page = stack_page_size();
    munmap((char *)lo - page, stack_map_length(usable, page));
}

/* Anonymous private pages read as zero after MADV_DONTNEED, which cannot fail on them. */
int stack_discard(void *p, size_t len)
{
    madvise(p, len, MADV_DONTNEED);
    return 0;
}

int stack_resident(const void *p, size_t pages, unsigned char *vec)
{
    return mincore((void *)p, pages * stack_page_size(), vec);
}

/* A slab makes room for STACK_SLAB_COUNT stacks of one size with one mmap; a stack whose
 * mapping is longer than STACK_SLAB_MAX_LEN gets a mapping of its own. */
#define STACK_SLAB_COUNT 16
#define STACK_SLAB_MAX_LEN (128 * 1024)

/* Guard the lowest page of `map` (map_len bytes) and write the tail; the usable base,
 * with its size in *num, or NULL if the guard could not be installed. */
static void *stack_setup(char *map, size_t map_len, size_t page, size_t *num)
{
    assert(((uintptr_t)map & (page - 1)) == 0 && map_len % page == 0);
    if (stack_guard_install(map, page) != 0)
        return NULL;
    char *lo = map + page;
    struct stack_tail *tail = (struct stack_tail *)(void *)(map + map_len) - 1;
    tail->check = (uintptr_t)lo ^ STACK_TAIL_MAGIC;
    tail->map_len = map_len;
    *num = (size_t)((char *)tail - lo);
    return lo;
}

static void *stack_map_anonymous(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* One stack in a mapping of its own. */
static void *stack_map_one(size_t map_len, size_t page, size_t *num)
{
    char *map = stack_map_anonymous(map_len);
    if (map == NULL)
        return NULL;
    void *lo = stack_setup(map, map_len, page, num);
    if (lo == NULL)
        munmap(map, map_len);
    return lo;
}

/* Reached only through the pointer ASYNC_get_mem_functions() gives (the library's own
 * stacks come from stack_slab_alloc()): each stack it makes has a mapping of its own. */
void *stack_default_alloc(size_t *num)
{
    if (num == NULL || *num == 0 || *num > SIZE_MAX / 4 / STACK_SCALE)
        return NULL;
    size_t page = stack_page_size();
    if (alloc_injected_failure())
        return NULL;
    return stack_map_one(stack_map_length(*num * STACK_SCALE, page), page, num);
}

/* Find the tail by walking up from the base, one page end at a time. Only for a caller
 * of the function ASYNC_get_mem_functions() gave: stack_free() unmaps directly. */
void stack_default_free(void *addr)
{
    if (addr == NULL)
        return;
    size_t page = stack_page_size();
    char *map = (char *)addr - page;
    for (char *end = (char *)addr + page;; end += page) {
        struct stack_tail *tail = (struct stack_tail *)(void *)end - 1;
        if (tail->check == ((uintptr_t)addr ^ STACK_TAIL_MAGIC) &&
            tail->map_len == (size_t)(end - map)) {
            munmap(map, tail->map_len);
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
}

/* A fresh slab for stacks of map_len bytes; 0 if it cannot be mapped. */
static int stack_slab_refill(struct stack_slab *s, size_t map_len)
{
    char *m = stack_map_anonymous(STACK_SLAB_COUNT * map_len);
    if (m == NULL)
        return 0;
    s->next = m;
    s->left = STACK_SLAB_COUNT;
    s->map_len = map_len;
    return 1;
}

void *stack_slab_alloc(size_t usable, size_t *num)
{
    struct stack_slab *s = &stack_thread_slab;
    size_t page = stack_page_size();
    size_t map_len = stack_map_length(usable, page);

    if (alloc_injected_failure())
        return NULL;
    if (map_len > STACK_SLAB_MAX_LEN)
        return stack_map_one(map_len, page, num);
    if (s->left != 0 && s->map_len != map_len)
        stack_release_thread(); /* made for another size */
    /* Perhaps only the whole slab is too much (an address-space limit). */
    if (s->left == 0 && !stack_slab_refill(s, map_len))
        return stack_map_one(map_len, page, num);
    /* A stack whose guard fails stays in the slab, for the next attempt. */
    void *lo = stack_setup(s->next, map_len, page, num);
    if (lo != NULL) {
        s->next += map_len;
        s->left--;
    }
    return lo;
}
