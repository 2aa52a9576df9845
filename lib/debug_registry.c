/* debug_registry.c: the list of every job of the process and the descriptor that tells a
 * debugger how to read it (debug_registry.h). Touched, under one lock, only when a job is
 * created or destroyed. */
#include "config.h"

#include <sched.h>
#include <stddef.h>

#include "debug_registry.h"
#include "pool.h"

#define DEBUG_JOB_OFFSET(field) ((uint16_t)offsetof(struct async_job_st, field))
#define DEBUG_FIELD_SIZE(type, field) sizeof(((type *)0)->field)

/* The reader (gdb/asyncjob-gdb.py) decodes the fixed header as packed "8sIHHQH" and takes
 * the 16-bit offsets right after it, in declaration order, up to registry_layout. */
STATIC_ASSERT(offsetof(struct debug_registry, byte_order) == 8 &&
                  offsetof(struct debug_registry, version) == 12 &&
                  offsetof(struct debug_registry, size) == 14 &&
                  offsetof(struct debug_registry, not_active) == 16 &&
                  offsetof(struct debug_registry, pointer_size) == 24 &&
                  offsetof(struct debug_registry, job_link) == 26,
              "the descriptor's fixed header is the same in every version");
STATIC_ASSERT(offsetof(struct debug_registry, registry_layout) -
                      offsetof(struct debug_registry, job_link) == 12 * sizeof(uint16_t),
              "the 13 offsets follow one another, with no padding");
/* Every offset and the descriptor's size fit in its 16 bits. */
STATIC_ASSERT(sizeof(struct async_job_st) <= UINT16_MAX &&
                  sizeof(struct pool_thread) <= UINT16_MAX &&
                  sizeof(struct debug_registry) <= UINT16_MAX,
              "every offset must fit the descriptor's 16-bit fields");
/* The widths the reader gives the fields it reads: "Q", "i", or a pointer's size. */
STATIC_ASSERT(DEBUG_FIELD_SIZE(struct async_job_st, dbg_serial) == 8 &&
                  DEBUG_FIELD_SIZE(struct async_job_st, dbg_lwp) == 4 &&
                  DEBUG_FIELD_SIZE(struct async_job_st, active_tid) == 8 &&
                  DEBUG_FIELD_SIZE(struct async_job_st, fiber.stack.size) == sizeof(void *) &&
                  DEBUG_FIELD_SIZE(struct debug_registry, count) == 8,
              "the debugger reads each field with the width it has here");

/* Where the linked jump_fcontext leaves the registers of the stack it switches away from,
 * relative to that stack's saved context: measured at build time by lib/fcontext_probe,
 * which make runs to write this header ("" when it could not run; doc/DESIGN.md,
 * "jump_fcontext's save area"). */
#include "lib/fcontext_layout.h"
STATIC_ASSERT(sizeof(FCONTEXT_LAYOUT) <= DEBUG_CONTEXT_LAYOUT_SIZE,
              "the probed layout fits the descriptor");

/* In a section of its own as well as under its name, so that a debugger still finds it
 * in a library stripped of its symbol table (section headers survive strip). */
__attribute__((section(".asyncjob_debug"))) struct debug_registry asyncjob_debug_registry = {
    .magic = "asyncjob",
    .byte_order = 0x04030201,
    .version = DEBUG_REGISTRY_VERSION,
    .size = sizeof(struct debug_registry),
    .pointer_size = sizeof(void *),
    .job_link = DEBUG_JOB_OFFSET(dbg_link),
    .job_serial = DEBUG_JOB_OFFSET(dbg_serial),
    .job_lwp = DEBUG_JOB_OFFSET(dbg_lwp),
    .job_owner = DEBUG_JOB_OFFSET(dbg_owner),
    .job_func = DEBUG_JOB_OFFSET(func),
    .job_active_tid = DEBUG_JOB_OFFSET(active_tid),
    .job_ctx = DEBUG_JOB_OFFSET(fiber.ctx),
    .job_stack_lo = DEBUG_JOB_OFFSET(fiber.stack.lo),
    .job_stack_size = DEBUG_JOB_OFFSET(fiber.stack.size),
    .thread_current = (uint16_t)offsetof(struct pool_thread, current),
    .registry_head = (uint16_t)offsetof(struct debug_registry, head),
    .registry_count = (uint16_t)offsetof(struct debug_registry, count),
    .registry_layout = (uint16_t)offsetof(struct debug_registry, context_layout),
    .not_active = POOL_NOT_ACTIVE,
    .context_layout = FCONTEXT_LAYOUT,
    .head = {&asyncjob_debug_registry.head, &asyncjob_debug_registry.head},
};

/* The list's lock: a flag taken by exchange, so that a signal handler can try it without
 * blocking (debug_registry_find()); held for a few stores by add and remove. */
static int debug_registry_busy;

static void debug_registry_lock(void)
{
    while (__atomic_exchange_n(&debug_registry_busy, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void debug_registry_unlock(void)
{
    __atomic_store_n(&debug_registry_busy, 0, __ATOMIC_RELEASE);
}

void debug_registry_add(struct debug_link *link, uint64_t *serial)
{
    struct debug_registry *r = &asyncjob_debug_registry;
    debug_registry_lock();
    /* Numbered and linked before it is reachable: a reader stopping the process at any
     * point of this sees a sound list. */
    *serial = ++r->next_serial;
    link->next = &r->head;
    link->prev = r->head.prev;
    r->head.prev->next = link;
    r->head.prev = link;
    r->count++;
    debug_registry_unlock();
}

void debug_registry_remove(struct debug_link *link)
{
    assert(link->next != NULL && link->prev != NULL); /* in the list, once */
    debug_registry_lock();
    link->prev->next = link->next;
    link->next->prev = link->prev;
    asyncjob_debug_registry.count--;
    debug_registry_unlock();
    link->next = link->prev = NULL;
}

/* The walk of both finders, the lock held. */
static struct debug_link *debug_registry_walk(int (*match)(const struct debug_link *,
                                                           const void *),
                                              const void *arg)
{
    struct debug_registry *r = &asyncjob_debug_registry;
    struct debug_link *found = NULL;
    for (struct debug_link *l = r->head.next; l != &r->head; l = l->next) {
        if (match(l, arg)) {
            found = l;
            break;
        }
    }
    debug_registry_unlock();
    return found;
}

struct debug_link *debug_registry_find(int (*match)(const struct debug_link *, const void *),
                                       const void *arg)
{
    if (__atomic_exchange_n(&debug_registry_busy, 1, __ATOMIC_ACQUIRE))
        return NULL; /* being changed (perhaps by the interrupted code itself) */
    return debug_registry_walk(match, arg);
}

struct debug_link *debug_registry_find_wait(int (*match)(const struct debug_link *,
                                                         const void *),
                                            const void *arg)
{
    debug_registry_lock();
    return debug_registry_walk(match, arg);
}
