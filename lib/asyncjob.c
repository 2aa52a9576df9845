/*
 * asyncjob.c: the whole library as one translation unit.
 *
 * Each layer keeps its own file; they are compiled together so that the switching layer's
 * fiber_enter()/fiber_leave() inline into the API layer's hot path: a call level between
 * an API function and jump_fcontext would add a return after every switch, which the CPU
 * cannot predict (doc/DESIGN.md). Bottom layer first.
 */
#include "alloc.c"
#include "error.c"
#include "stack.c"
#include "stack_size.c"
#include "stack_map.c"
#include "stack_guard.c"
#include "stack_mark.c"
#include "fiber.c"
#include "pool.c"
#include "debug_registry.c"
#include "wait_ctx.c"
#include "async.c"
#include "stack_api.c"
