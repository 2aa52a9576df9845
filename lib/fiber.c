/* fiber.c: stack switching on Boost.Context's fcontext, and the annotations that keep ASan,
 * TSan and valgrind correct across switches. The only file that includes fcontext.h; it
 * touches stack.h below it and nothing above. */
#include "config.h"

#include <string.h>

#include "../third_party/fcontext/fcontext.h"
#include "fiber.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
# include <valgrind/memcheck.h>
# include <valgrind/valgrind.h>
#endif
#ifdef ASYNCJOB_ASAN
# include <sanitizer/asan_interface.h>
# include <sanitizer/common_interface_defs.h>
#endif
#ifdef ASYNCJOB_TSAN
# include <sanitizer/tsan_interface.h>
#endif

/* ASan: start_switch just before a stack is left, finish_switch first thing on arrival; a
 * NULL save slot, passed by a fiber's final switch alone, frees the fake stack left behind
 * (doc/DESIGN.md, "The switching layer"). Each hook is nothing without its tool. */
#ifdef ASYNCJOB_ASAN
# define FIBER_ASAN_START(slot, lo, size) __sanitizer_start_switch_fiber((slot), (lo), (size))
# define FIBER_ASAN_FINISH(saved, lo_out, size_out) \
    __sanitizer_finish_switch_fiber((saved), (lo_out), (size_out))
#else
# define FIBER_ASAN_START(slot, lo, size) ((void)0)
# define FIBER_ASAN_FINISH(saved, lo_out, size_out) ((void)0)
#endif

/* TSan: switch_to_fiber must come immediately before the switch, in this same function. */
#ifdef ASYNCJOB_TSAN
# define FIBER_TSAN_SWITCH(to) __tsan_switch_to_fiber((to), 0)
#else
# define FIBER_TSAN_SWITCH(to) ((void)0)
#endif

/* Windows: Boost's asm switches the TIB's stack fields; the TIB's ExceptionList is left to
 * the library. Windows x64 does not use it, but Wine keeps its own frames there and calls
 * every one below the stack pointer of a frame it unwinds, which a job's stack may lie above:
 * so each side of a switch keeps its own list, saved as it leaves and put back as it
 * arrives, and a new fiber's list is empty (doc/DESIGN.md, "Windows"). */
#ifdef _WIN32
# include <intrin.h>
# define FIBER_SEH_EMPTY ((void *)~(uintptr_t)0)
# define FIBER_SEH_SAVE(slot) ((slot) = (void *)__readgsqword(0))
# define FIBER_SEH_LOAD(list) __writegsqword(0, (uintptr_t)(list))
#else
# define FIBER_SEH_SAVE(slot) ((void)0)
# define FIBER_SEH_LOAD(list) ((void)0)
#endif

#include "fiber_switch.h"

static ALWAYS_INLINE struct fiber *fiber_do_enter(struct fiber *f, int balanced)
{
#ifdef ASYNCJOB_TSAN
    f->caller_tsan_fiber = __tsan_get_current_fiber();
#endif
    FIBER_ASAN_START(&f->caller_fake_stack, f->stack.lo, f->stack.size);
    FIBER_TSAN_SWITCH(f->tsan_fiber);
    FIBER_SEH_SAVE(f->caller_seh_list);
    transfer_t t = fiber_switch_to(f->ctx, f, balanced);
    struct fiber *back = t.data;
    FIBER_SEH_LOAD(back->caller_seh_list);
    FIBER_ASAN_FINISH(back->caller_fake_stack, NULL, NULL);
    back->ctx = t.fctx;
    return back;
}

static ALWAYS_INLINE struct fiber *fiber_do_leave(struct fiber *f, int balanced)
{
    FIBER_ASAN_START(&f->fake_stack, f->caller_lo, f->caller_size);
    FIBER_TSAN_SWITCH(f->caller_tsan_fiber);
    FIBER_SEH_SAVE(f->seh_list);
    transfer_t t = fiber_switch_to(f->caller, f, balanced);
    struct fiber *back = t.data;
    FIBER_SEH_LOAD(back->seh_list);
    FIBER_ASAN_FINISH(back->fake_stack, &back->caller_lo, &back->caller_size);
    back->caller = t.fctx;
    return back;
}

struct fiber *fiber_enter(struct fiber *f)
{
    return fiber_do_enter(f, 0);
}

struct fiber *fiber_leave(struct fiber *f)
{
    return fiber_do_leave(f, 0);
}

struct fiber *fiber_enter_balanced(struct fiber *f)
{
    return fiber_do_enter(f, 1);
}

struct fiber *fiber_leave_balanced(struct fiber *f)
{
    return fiber_do_leave(f, 1);
}

/* Bytes kept zero above a fiber's first frame (a multiple of 16: the ABI's alignment). */
#define FIBER_TOP_PAD 64
STATIC_ASSERT(FIBER_TOP_PAD % 16 == 0, "the first frame's top stays 16-byte aligned");

/* Every fiber starts here; fiber_create() enters once and comes straight back, so that
 * entering needs no "first time" branch. noinline: this frame and its CFI must stay the
 * bottom of every backtrace inside a job. */
static NORETURN NOINLINE void fiber_trampoline(transfer_t t)
{
    struct fiber *f = t.data;
    f->caller = t.fctx;
#ifdef _WIN32
    FIBER_SEH_LOAD(FIBER_SEH_EMPTY);
#endif
    FIBER_ASAN_FINISH(NULL, &f->caller_lo, &f->caller_size);

    f = fiber_leave(f);
    fiber_exit(f, f->entry(f, fiber_message(f)));
}

void fiber_exit(struct fiber *f, void *result)
{
    f->finished = 1;
    f->msg = result;
    FIBER_ASAN_START(NULL, f->caller_lo, f->caller_size);
    FIBER_TSAN_SWITCH(f->caller_tsan_fiber);
    jump_fcontext(f->caller, f);
    __builtin_unreachable(); /* nothing ever resumes a finished fiber */
}

/* Not instrumented by ASan: the valgrind request's argument block is a local, which ASan
 * would put on the fake stack of the job being abandoned, freed by the switch below. */
NO_ASAN
void fiber_abandon(struct fiber *f)
{
    /* ASan: as fiber_exit()'s switch (its fake stack freed), then the arrival it never had. */
    FIBER_ASAN_START(NULL, f->caller_lo, f->caller_size);
    FIBER_ASAN_FINISH(f->caller_fake_stack, NULL, NULL);
    FIBER_TSAN_SWITCH(f->caller_tsan_fiber);
#ifdef HAVE_VALGRIND_VALGRIND_H
    /* memcheck took the stack for one whose frames are gone (pthread_exit's unwinding left
     * it without a switch): the public default free function reads it to find the tail. */
    VALGRIND_MAKE_MEM_DEFINED(f->stack.lo, f->stack.size);
#endif
    (void)f;
}

/* Introduce a fiber's new stack to the tools in use (fiber_destroy() takes it back). */
static void fiber_register(struct fiber *f)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    /* Else valgrind takes every switch for a huge stack-pointer jump. */
    f->vg_id = VALGRIND_STACK_REGISTER(f->stack.lo, (char *)f->stack.lo + f->stack.size);
#endif
#ifdef ASYNCJOB_ASAN
    f->fake_stack = NULL;
    f->caller_fake_stack = NULL;
    f->caller_lo = NULL;
    f->caller_size = 0;
#endif
#ifdef ASYNCJOB_TSAN
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
#ifdef ASYNCJOB_ASAN
    /* fiber_destroy() hands stacks back clean, but a custom allocator may recycle memory
     * that held someone else's frames: stale redzones there would be false reports. The
     * check only reads shadow memory, so fresh mappings cost no resident shadow pages. */
    if (__asan_region_is_poisoned(f->stack.lo, f->stack.size) != NULL)
        __asan_unpoison_memory_region(f->stack.lo, f->stack.size);
#endif
    (void)f;
}

/* Lay out a fresh context on f's stack and run it to its first leave. */
static void fiber_start(struct fiber *f, fiber_entry_fn entry)
{
    f->entry = entry;
    f->finished = 0;
    f->caller = NULL;
    fiber_register(f);
    /* A zeroed pad at the very top ends a debugger's backtrace cleanly at the fiber's
     * entry (a null return address) instead of wandering into whatever lies above. */
    char *top = (char *)f->stack.lo + f->stack.size - FIBER_TOP_PAD;
    memset(top, 0, FIBER_TOP_PAD);
    f->ctx = make_fcontext(top, f->stack.size - FIBER_TOP_PAD, fiber_trampoline);
    fiber_resume(f, NULL);
}

int fiber_create(struct fiber *f, fiber_entry_fn entry)
{
    int err = stack_alloc(&f->stack);
    if (err != 0)
        return err;
    fiber_start(f, entry);
    return 0;
}

/* The tools forget f's stack (fiber_register() introduced it). */
static void fiber_unregister(struct fiber *f)
{
#ifdef ASYNCJOB_TSAN
    __tsan_destroy_fiber(f->tsan_fiber);
#endif
#ifdef HAVE_VALGRIND_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(f->vg_id);
#endif
#ifdef ASYNCJOB_ASAN
    /* A fiber abandoned while suspended leaves its frames' redzones in the shadow, which
     * the memory's next user must not inherit. (Its fake stack cannot be freed from
     * outside.) */
    __asan_unpoison_memory_region(f->stack.lo, f->stack.size);
#endif
    (void)f;
}

void fiber_reset(struct fiber *f)
{
    fiber_unregister(f);
    stack_discard(&f->stack);
    fiber_start(f, f->entry);
}

void fiber_destroy(struct fiber *f)
{
    fiber_unregister(f);
    stack_free(&f->stack);
}
