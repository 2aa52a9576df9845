/* asyncjob.c: the whole library as one translation unit, bottom layer first, so that the
 * switching layer inlines into the API's hot path: a call level between them would add a
 * return after every switch, which the CPU cannot predict (doc/DESIGN.md, "The hot path"). */
#include "alloc.c"
#include "error.c"
#include "stack.c"
#include "stack_size.c"
#ifdef _WIN32
# include "stack_map_win.c"
# include "stack_guard_win.c"
#else
# include "stack_map.c"
#endif
#include "stack_guard.c"
#include "stack_mark.c"
#include "fiber.c"
#include "pool.c"
#include "debug_registry.c"
#include "overflow.c"
#include "wait_ctx.c"
#include "async.c"
#include "orphan.c"
#include "stack_api.c"
#include "version.c"
