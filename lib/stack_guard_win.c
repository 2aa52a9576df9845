/* stack_guard_win.c: how the guard below each default stack refuses access on Windows,
 * built beside stack_guard.c (whose width, strictness and counts hold here too) in place
 * of its POSIX half: the guard is address space reserved with the stack and never
 * committed (stack_map_win.c), so it needs no call of its own, cannot fail and costs no
 * mapping. Compilers probe every page of a frame larger than one (__chkstk, which the
 * Windows ABI requires), so no frame steps over it. */
#include "config.h"

#include "stack_internal.h"

int stack_set_guard_mode(enum stack_guard mode)
{
    return mode == STACK_GUARD_AUTO || mode == STACK_GUARD_RESERVED;
}

enum stack_guard stack_guard_mode(void)
{
    return STACK_GUARD_RESERVED;
}
