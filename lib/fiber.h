/* fiber.h: the switching layer. A fiber is a stack plus a saved machine context; a caller
 * resumes it, it suspends back to that caller, and a pointer travels each way. This is
 * the only layer that knows how the switch is done (lib/fiber.c and fcontext.h). */
#ifndef ASYNCJOB_FIBER_H
#define ASYNCJOB_FIBER_H

#include <stddef.h>

#include "compiler.h"
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
#ifdef _WIN32
    void *seh_list;        /* this fiber's TIB ExceptionList while suspended */
    void *caller_seh_list; /* the caller's, while this fiber runs */
#endif
};

/* Allocate a stack and prepare `f` to run `entry`. 0, or an ASYNCJOB_E* code. */
int fiber_create(struct fiber *f, fiber_entry_fn entry);

/* Switch from the caller into `f` until it leaves or finishes. Returns `f` as the switch
 * carried it back: callers go on with that, so nothing lives in saved registers. Sends no
 * message: `f` finds its own last one unless the caller fiber_post()ed another. */
struct fiber *fiber_enter(struct fiber *f);

/* From inside `f`: switch back to its caller. Returns `f` when it is next entered. */
struct fiber *fiber_leave(struct fiber *f);

/* The balanced switch (doc/DESIGN.md, "Hot-path tricks"): the same switches, leaving the
 * CPU's return-stack predictor as they found it, for a fiber expected back without a return
 * through frames of its own (a started job that runs to its end). Elsewhere the plain forms
 * are shorter; without FIBER_ASM_CALL both are the same. */
struct fiber *fiber_enter_balanced(struct fiber *f);
struct fiber *fiber_leave_balanced(struct fiber *f);

/* Set the message the other side of `f`'s next switch finds: the fiber when it is next
 * entered, or its caller when the fiber next leaves. Switches carry none themselves. */
static inline void fiber_post(struct fiber *f, void *data)
{
    f->msg = data;
}

/* Return helpers (doc/DESIGN.md, "Hot-path tricks"): after a switch, `return name();`
 * returns by an indirect jump on x86-64, one helper per site. FIBER_RETURN_HELPER(name,
 * value) defines int name(void), FIBER_RETURN_HELPER_ARG(name) int name(int v). */
#if defined(__x86_64__) && defined(__LP64__)
# define FIBER_STR_(x) #x
# define FIBER_STR(x) FIBER_STR_(x)
# define FIBER_RETURN_ASM(name, set_eax)                                                  \
    __asm__(".pushsection .text.hot,\"ax\",@progbits\n\t"                               \
            ".p2align 4\n\t"                                                            \
            ".globl " #name "\n\t"                                                      \
            ".hidden " #name "\n\t"                                                     \
            ".type " #name ",@function\n" #name ":\n\t"                                  \
            ".cfi_startproc\n\t" set_eax "\n\t"                                        \
            "popq %rcx\n\t"                                                             \
            ".cfi_adjust_cfa_offset -8\n\t"                                             \
            ".cfi_register %rip, %rcx\n\t"                                              \
            "jmp *%rcx\n\t"                                                             \
            ".cfi_endproc\n\t"                                                          \
            ".size " #name ", .-" #name "\n\t"                                          \
            ".popsection")
# define FIBER_RETURN_HELPER(name, value)                                                 \
    __attribute__((visibility("hidden"))) int name(void);                                \
    FIBER_RETURN_ASM(name, "movl $" FIBER_STR(value) ", %eax")
# define FIBER_RETURN_HELPER_ARG(name)                                                    \
    __attribute__((visibility("hidden"))) int name(int v);                               \
    FIBER_RETURN_ASM(name, "movl %edi, %eax")
#else
# define FIBER_RETURN_HELPER(name, value)                                                 \
    static inline int name(void) { return (value); }
# define FIBER_RETURN_HELPER_ARG(name)                                                    \
    static inline int name(int v) { return v; }
#endif

/* The pointer of the last switch into or out of `f`. */
static inline void *fiber_message(const struct fiber *f)
{
    return f->msg;
}

/* Post `data` and enter `f`; what `f` sends back. */
static inline void *fiber_resume(struct fiber *f, void *data)
{
    fiber_post(f, data);
    return fiber_message(fiber_enter(f));
}

static inline void *fiber_suspend(struct fiber *f, void *data)
{
    fiber_post(f, data);
    return fiber_message(fiber_leave(f));
}

static inline int fiber_finished(const struct fiber *f)
{
    return f->finished;
}

/* From inside `f`, at any depth: finish it with `result`, as if its entry function had
 * returned it, and switch back to its caller for good. */
NORETURN void fiber_exit(struct fiber *f, void *result);

/* The code running `f` has left its stack without a switch (a longjmp out of it, or
 * pthread_exit's unwinding) and now runs on the stack `f` was entered from: tell the tools
 * so, as a final switch of `f` would have. `f` is then as if suspended never to run again:
 * fiber_destroy() may free it. */
void fiber_abandon(struct fiber *f);

/* Usable stack size in bytes. */
static inline size_t fiber_stack_size(const struct fiber *f)
{
    return f->stack.size;
}

/* Abandon whatever `f` was suspended in (it never runs again), give its stack's pages back
 * and make it fresh, with the same entry, as fiber_create() leaves it. */
void fiber_reset(struct fiber *f);

/* Release the stack. `f` must be finished, or suspended and never to run again. */
void fiber_destroy(struct fiber *f);

/* Give back the memory the calling thread holds for fibers it has not created yet. */
static inline void fiber_release_thread(void)
{
    stack_release_thread();
}

#endif /* ASYNCJOB_FIBER_H */
