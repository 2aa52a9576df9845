/* debug_registry.h: the process's list of jobs, for debuggers. The pool layer adds a job
 * when it creates one and removes it when it destroys it, nothing else; a debugger (the
 * gdb extension in gdb/) walks the list from the descriptor without running any code. */
#ifndef ASYNCJOB_DEBUG_REGISTRY_H
#define ASYNCJOB_DEBUG_REGISTRY_H

#include <stdint.h>

#include "debug_link.h"

/* Raise whenever a field of struct debug_registry, or the meaning of one, changes: the
 * debugger refuses a descriptor whose version it does not know. */
#define DEBUG_REGISTRY_VERSION 1

/* Room for the save-area layout string (lib/fcontext_probe.c writes at most this). */
#define DEBUG_CONTEXT_LAYOUT_SIZE 160

/* What a debugger needs to find and read the jobs without debug information: where each
 * field sits, as byte offsets fixed at compile time, and the list itself. Field widths
 * are fixed so that the reader can decode it knowing only the pointer size. */
struct debug_registry {
    /* The fixed header: the same in every version. */
    char magic[8];            /* "asyncjob" */
    uint32_t byte_order;      /* 0x04030201 in the process's byte order */
    uint16_t version;         /* DEBUG_REGISTRY_VERSION */
    uint16_t size;            /* sizeof(struct debug_registry) */
    uint64_t not_active;      /* active_tid of an idle job */
    uint16_t pointer_size;
    /* Byte offsets, in ASYNC_JOB unless said otherwise; the reader takes them in this
     * order, right after pointer_size. */
    uint16_t job_link;        /* struct debug_link */
    uint16_t job_serial;      /* uint64_t: the job's number, from 1, never reused */
    uint16_t job_lwp;         /* int32_t: kernel thread id of the owner thread */
    uint16_t job_owner;       /* pointer to the owner's struct pool_thread */
    uint16_t job_func;        /* pointer: the start function, if the job is started */
    uint16_t job_active_tid;  /* uint64_t: not_active while the job is idle */
    uint16_t job_ctx;         /* pointer: the saved context while suspended */
    uint16_t job_stack_lo;    /* pointer: lowest usable stack address */
    uint16_t job_stack_size;  /* size_t: usable stack bytes */
    uint16_t thread_current;  /* in struct pool_thread: pointer to the running job */
    uint16_t registry_head;   /* in this descriptor: head */
    uint16_t registry_count;  /* in this descriptor: count */
    uint16_t registry_layout; /* in this descriptor: context_layout */
    /* Where jump_fcontext left the registers of a suspended job, relative to its saved
     * context: "reg@N" saved at ctx + N, "reg=N" equal to ctx + N (the stack pointer).
     * Register names are gdb's; empty where the layout is not known. */
    char context_layout[DEBUG_CONTEXT_LAYOUT_SIZE];
    struct debug_link head;   /* the list */
    uint64_t count;           /* jobs in the list */
    uint64_t next_serial;
};

/* The descriptor: found by its symbol or by its section (debug_registry.c). */
extern struct debug_registry asyncjob_debug_registry;

/* Number a job (*serial) and add its links to the list; remove them. Both lock. */
void debug_registry_add(struct debug_link *link, uint64_t *serial);
void debug_registry_remove(struct debug_link *link);

/* The first link for which match(link, arg) is nonzero, or NULL, also when the list is
 * being changed at this moment: it never waits, so a signal handler may call it. */
struct debug_link *debug_registry_find(int (*match)(const struct debug_link *, const void *),
                                       const void *arg);
/* The same, waiting for the lock (never from a signal handler). */
struct debug_link *debug_registry_find_wait(int (*match)(const struct debug_link *,
                                                         const void *),
                                            const void *arg);

#endif /* ASYNCJOB_DEBUG_REGISTRY_H */
