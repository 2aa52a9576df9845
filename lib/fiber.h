/*
 * fiber.h: the switching layer. A fiber is a stack plus a saved machine context; a caller
 * resumes it, it suspends back to that caller, and a pointer travels each way. This is
 * the only layer that knows how the switch is done (lib/fiber.c and fcontext.h).
 */
#ifndef ASYNCJOB_FIBER_H
#define ASYNCJOB_FIBER_H

#include <stddef.h>

#include "stack.h"

struct fiber;

/* A fiber's body. `arg` is the pointer of the first fiber_resume(); what it returns is
 * what that fiber_resume() (or a later one) returns, and the fiber is then finished. */
typedef void *(*fiber_entry_fn)(struct fiber *f, void *arg);

/* Treat as opaque above this layer; the fields are here only so that it can be embedded. */
struct fiber {
    void *ctx;    /* this fiber's context while it is suspended */
    void *caller; /* the context that resumed it, while it runs */
    void *msg;    /* the pointer of the last switch into or out of this fiber */
    fiber_entry_fn entry;
    struct stack stack;
    int finished;
#ifdef HAVE_VALGRIND_VALGRIND_H
    unsigned vg_id;
#endif
#ifdef ASYNCJOB_ASAN
    void *fake_stack;        /* ASan's fake stack of this fiber while suspended */
    void *caller_fake_stack; /* the caller's, while this fiber runs */
    const void *caller_lo;   /* the caller's stack bounds, learned on each entry */
    size_t caller_size;
#endif
#ifdef ASYNCJOB_TSAN
    void *tsan_fiber;
    void *caller_tsan_fiber;
#endif
};

/* Allocate a stack and prepare `f` to run `entry`. 0, or an ASYNCJOB_E* code. */
int fiber_create(struct fiber *f, fiber_entry_fn entry);

/*
 * Switch from the caller into `f`, handing it `data`. Returns `f` once it has switched
 * back, with the pointer it passed to fiber_leave() (or its entry function's result, then
 * fiber_finished(f) is true) in fiber_message(f). The switch carries the fiber's address
 * itself, so a caller that goes on with the returned pointer instead of `f` keeps nothing
 * in saved registers across the switch.
 */
struct fiber *fiber_enter(struct fiber *f, void *data);

/* From inside `f`: switch back to its caller, handing it `data`. Returns `f` when it is
 * next entered, with the pointer given to that fiber_enter() in fiber_message(f). */
struct fiber *fiber_leave(struct fiber *f, void *data);

/*
 * The same two switches, made so that they leave the CPU's return-stack predictor as they
 * found it. For a caller that expects the fiber to come back without returning through
 * frames of its own, as when a job is started and runs to its end: the caller's next
 * return is then predicted instead of missed. Elsewhere the plain forms are faster (by
 * two instructions). Where the switch is a C call (not x86-64) both forms are the same.
 */
struct fiber *fiber_enter_balanced(struct fiber *f, void *data);
struct fiber *fiber_leave_balanced(struct fiber *f, void *data);

/* The pointer of the last switch into or out of `f`. */
static inline void *fiber_message(const struct fiber *f)
{
    return f->msg;
}

/* fiber_enter() and fiber_leave() for callers that only want the message. */
static inline void *fiber_resume(struct fiber *f, void *data)
{
    return fiber_message(fiber_enter(f, data));
}

static inline void *fiber_suspend(struct fiber *f, void *data)
{
    return fiber_message(fiber_leave(f, data));
}

static inline int fiber_finished(const struct fiber *f)
{
    return f->finished;
}

/* Usable stack size in bytes. */
static inline size_t fiber_stack_size(const struct fiber *f)
{
    return f->stack.size;
}

/* Release the stack. `f` must be finished, or suspended and never to run again. */
void fiber_destroy(struct fiber *f);

/* Give back the memory the calling thread holds for fibers it has not created yet. */
static inline void fiber_release_thread(void)
{
    stack_release_thread();
}

#endif /* ASYNCJOB_FIBER_H */
