/* stack_internal.h: what the stack layer's files (lib/stack*.c) share among themselves:
 * the layout of a default stack's mapping and each file's entry points. Nothing above
 * the stack layer includes it; lib/stack.h is the layer's interface. */
#ifndef ASYNCJOB_STACK_INTERNAL_H
#define ASYNCJOB_STACK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "stack.h"

/* Default stacks are this many times the size in force: ASan's frames are larger. */
#ifdef ASYNCJOB_ASAN
# define STACK_SCALE 8
#else
# define STACK_SCALE 1
#endif

/* A custom allocator's stack must have at least this many bytes: under ASan a job that
 * only pauses used 4,731 bytes (issue 22), so four times the plain minimum. */
#ifdef ASYNCJOB_ASAN
# define STACK_CUSTOM_MIN_USABLE (4 * STACK_CUSTOM_MIN_SIZE)
#else
# define STACK_CUSTOM_MIN_USABLE STACK_CUSTOM_MIN_SIZE
#endif

/* A default stack's mapping, low to high: [guard][usable stack][struct stack_tail].
 * The tail lets stack_default_free(), which gets only the usable base, find the mapping;
 * it shares the top page with the first frames, so it costs no page of its own. */
#define STACK_TAIL_MAGIC ((uintptr_t)0x6173796e636a6f62u) /* "asyncjob" */

struct stack_tail {
    uintptr_t check; /* base ^ STACK_TAIL_MAGIC: tells a real tail from stack data */
    size_t map_len;  /* the whole mapping's length, guard included (a page multiple), plus
                      * how the guard was installed (struct stack's guarded, below 4) */
};

/* The tail ends the mapping (page-aligned) and the stack's top is the tail's address. */
STATIC_ASSERT(sizeof(struct stack_tail) % (2 * sizeof(void *)) == 0,
              "the stack top below the tail stays two-word aligned (16 bytes on LP64)");

/* stack.c: the system's page size (read once), and the mapping length for `usable`
 * bytes of default stack below a guard of `guard` bytes, tail included. */
size_t stack_page_size(void);
size_t stack_map_length(size_t usable, size_t guard, size_t page);

/* stack_size.c: parse "123", "256K" or "4M" (either case) into *out; 0 if malformed. */
int stack_parse_size(const char *v, size_t *out);

/* The system's memory calls, in stack_map.c (POSIX) or stack_map_win.c (Windows): the page
 * size; giving `len` bytes at `p` back (they read as zero when next touched; 0, or -1 if
 * the range is unusable now); whether each of `pages` pages from `p` is resident (bit 0
 * of vec[i]; 0, or -1). */
size_t stack_os_page_size(void);
int stack_os_discard(void *p, size_t len);
int stack_resident(const void *p, size_t pages, unsigned char *vec);

/* stack_size.c: the size in force as allocators are asked for it (before STACK_SCALE). */
size_t stack_asked_size(void);

/* stack_map.c: the public default pair (ASYNC_get_mem_functions() hands them out); the
 * library's own way to a default stack of `usable` bytes, from the thread's slab, which
 * sets lo, size, guard and guarded of *s (0, or an ASYNCJOB_E* code); and its release. */
void *stack_default_alloc(size_t *num);
void stack_default_free(void *addr);
int stack_slab_alloc(size_t usable, struct stack *s);
void stack_unmap(const struct stack *s);

/* stack_guard.c: guard the lowest `len` bytes of `map` as the policy says: 0 with the
 * mechanism used in *guarded (0: none, past the map budget or out of mappings, when
 * guards are not strict), or ASYNCJOB_ENOGUARD / ASYNCJOB_ESTACK. stack_guard_dropped()
 * is told of every such stack's unmapping. */
int stack_guard_take(void *map, size_t len, uint32_t *guarded);
void stack_guard_dropped(uint32_t guarded);

/* stack_mark.c: point s->mark at its word and write the epoch in force into it. */
void stack_set_mark(struct stack *s);

#endif /* ASYNCJOB_STACK_INTERNAL_H */
