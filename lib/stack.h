/* stack.h: the stack layer, job stack memory: guarded default stacks, or a process-wide
 * custom pair (ASYNC_set_mem_functions) until the first stack; the size in force; the deep
 * mark. Used by the fiber and pool layers; lib/stack_internal.h is for the layer itself. */
#ifndef ASYNCJOB_STACK_H
#define ASYNCJOB_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "asyncjob.h"
#include "compiler.h"

/* The size asked of every allocator until asyncjob_set_stack_size() or
 * ASYNCJOB_STACK_SIZE says otherwise, as OpenSSL does. */
#define STACK_DEFAULT_SIZE 32768

/* The sizes asyncjob_set_stack_size() and ASYNCJOB_STACK_SIZE accept (before the ASan
 * scaling): the setting's minimum, as the library's frames, the lazy binder and a signal
 * frame need a few pages; beyond 1 GiB a size is far more likely a mistake than a need. */
#define STACK_SIZE_SETTING_MIN 16384
#define STACK_SIZE_MAX ((size_t)1 << 30)

/* A job that went deeper than this into a default stack gives the pages below its
 * frames back when it finishes (a fresh job needs one page; see stack_mark_ok()). */
#define STACK_DEEP 65536

/* The size epoch: the value of every intact mark word (see struct stack). It changes
 * when the stack size grows, so that every job made before finds its mark stale. */
extern uint32_t stack_epoch;

/* A custom allocator's stack smaller than this is refused: a custom stack has no guard page
 * to stop an overflow, and less than a page cannot even hold the dynamic linker's lazy
 * binding, which saves the whole vector register state on the stack. ASan's frames are
 * larger: there the minimum is four times that (STACK_CUSTOM_MIN_USABLE, stack_internal.h). */
#define STACK_CUSTOM_MIN_SIZE 4096

/* The guard below a default stack: 64 KiB of address space unless ASYNCJOB_GUARD_SIZE or
 * asyncjob_set_guard_size() says otherwise (in pages, at least one). GCC's and Clang's
 * stack-clash probes assume a guard of at most 64 KiB (aarch64's probe interval), and a
 * frame that writes its lowest byte first lands in it if it is under 64 KiB. */
#define STACK_GUARD_DEFAULT 65536
#define STACK_GUARD_MAX ((size_t)1 << 28)

/* One job stack: [lo, lo + size) is usable; the stack grows down from lo + size. */
struct stack {
    void *lo;
    size_t size;
    ASYNC_stack_free_fn free_fn; /* the function that must release lo */
    size_t asked;                /* the size in force when it was made (before scaling) */
    /* The mark, the word a finishing job checks against stack_epoch: STACK_DEEP below the
     * top of a large enough default stack (a depth sentinel: a job that deep overwrites it),
     * else `epoch` itself. It holds the same value as `epoch`. */
    uint32_t *mark;
    uint32_t epoch; /* stack_epoch when the stack was made or last renewed */
    /* Default stacks: how [lo - guard, lo) refuses access (enum stack_guard: MADVISE or
     * MPROTECT), or 0 if it does not (a stack made past the map budget); 0 for custom. */
    uint32_t guarded;
    size_t guard; /* default stacks: bytes of the mapping below lo, the guard; 0: custom */
};

/* The finish path's whole cost: two loads (the mark, and the epoch, which only a growth
 * of the stack size ever writes) and a compare. Not instrumented by ASan: a deep job's
 * dead frames may have left the word's shadow poisoned. */
NO_ASAN
static inline int stack_mark_ok(const uint32_t *mark)
{
    /* Only the owner thread writes *mark; the epoch is shared, hence atomic. */
    return likely(*mark == __atomic_load_n(&stack_epoch, __ATOMIC_RELAXED));
}

/* A job on `s` finished with its mark not intact. 0 if `s` is too small now, or its pages
 * could not be given back whole (the caller frees the job); else 1, the pages below `frame` (the caller's, on `s`) given back if the
 * job went deep, the mark renewed. */
int stack_renew(struct stack *s, const void *frame);

/* Give back every page of `s`, whose frames will never run again (a default stack: a
 * late write there lands on a fresh zero page), and renew its mark. */
void stack_discard(struct stack *s);

/* Whether `s` was made for a smaller size than the one in force. (Not its actual size: a
 * custom allocator may give less than it is asked for, every time.) */
int stack_too_small(const struct stack *s);

/* Bytes of `s` in pages that are resident, from its lowest such page to its top; 0 if
 * `s` is not a default stack (or the kernel cannot tell). */
size_t stack_peak(const struct stack *s);

/* The usable size of default stacks made from now on (ASan scaling applied). */
size_t stack_get_size(void);
/* Set it (bytes rounded up to pages); 0 with ASYNCJOB_ESTACKSIZE when out of range. */
int stack_set_size(size_t bytes);

/* Allocate with the current functions (which are locked from then on). Returns 0, or
 * ASYNCJOB_ESTACK (or ASYNCJOB_ENOGUARD: strict guards) with *s untouched. */
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
    STACK_GUARD_RESERVED = 3, /* Windows: address space reserved and never committed */
};

/* The guard width of default stacks made from now on (page multiple, at least a page). */
size_t stack_guard_size(void);
/* Set it (bytes rounded up to pages); 0 with ASYNCJOB_EGUARDSIZE when out of range. */
int stack_set_guard_size(size_t bytes);

/* Whether `addr` lies in the guard below `s` (a default stack whose guard is installed).
 * Async-signal-safe: reads s's fields, set before its job first ran, and nothing else. */
int stack_guard_contains(const struct stack *s, const void *addr);

/* Strict guards: a default stack that cannot be guarded is refused (ASYNCJOB_ENOGUARD)
 * instead of being handed out unguarded. ASYNCJOB_STRICT_GUARDS=1 sets it first; the
 * setter returns the previous setting. */
int stack_set_strict_guards(int on);
int stack_strict_guards(void);
/* Default stacks alive now without a guard. */
size_t stack_unguarded_count(void);

/* Test hook: pretend vm.max_map_count is `n` (0: read it again) for the mprotect budget. */
void stack_set_map_limit(size_t n);

/* Test hook: force a guard mechanism (returns 0 if the kernel lacks it). */
int stack_set_guard_mode(enum stack_guard mode);
/* The mechanism in use (after the first default stack, never AUTO). */
enum stack_guard stack_guard_mode(void);

#endif /* ASYNCJOB_STACK_H */
