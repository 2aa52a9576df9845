/*
 * fcontext.h: C declarations for Boost.Context's fcontext assembler routines.
 *
 * Written for asyncjob from the documented ABI (see README.md in this folder); the
 * routines themselves come from Boost.Context (its system package, or its source
 * assembled at build time) and are linked in as objects. Only lib/fiber.c may include this header.
 */
#ifndef ASYNCJOB_FCONTEXT_H
#define ASYNCJOB_FCONTEXT_H

#include <stddef.h>

/* A suspended context: an opaque pointer into the stack it was suspended on. */
typedef void *fcontext_t;

/* What a resumed context receives: the context that just suspended, and its message. */
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;

/* Suspend the current context and resume `to`, which receives {current, vp}. */
transfer_t jump_fcontext(fcontext_t const to, void *vp);

/* Prepare a context on the stack whose highest address is `sp` (`size` bytes below it).
 * The first jump to it calls `fn`, which must never return. */
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

#endif /* ASYNCJOB_FCONTEXT_H */
