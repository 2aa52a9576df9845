/* stack_guard_win.c: the guard below each default stack on Windows, built instead of
 * stack_guard.c: STACK_GUARD_WIN bytes of address space reserved with the stack and never
 * committed. Every frame larger than a page is probed page by page (__chkstk, which the
 * Windows ABI makes compilers call), so no frame steps over it. */
#include "config.h"

#include "stack_internal.h"

/* The allocation granularity of VirtualAlloc: the reservation rounds up to it anyway. */
#define STACK_GUARD_WIN ((size_t)64 * 1024)

size_t stack_guard_width(void)
{
    return STACK_GUARD_WIN;
}

int stack_set_guard_mode(enum stack_guard mode)
{
    return mode == STACK_GUARD_AUTO || mode == STACK_GUARD_RESERVED;
}

enum stack_guard stack_guard_mode(void)
{
    return STACK_GUARD_RESERVED;
}
