/*
 * asyncjob.c: the whole library as one translation unit.
 *
 * Each layer keeps its own file; they are compiled together so that the switching layer's
 * fiber_resume()/fiber_suspend() inline into the API layer's hot path. Every extra call
 * level between an API function and jump_fcontext costs a mispredicted return on each side
 * of every switch (the return stack buffer cannot follow a stack switch), which measured
 * as 38 ns instead of 24 ns per pause/resume round trip. Bottom layer first.
 */
#include "alloc.c"
#include "error.c"
#include "stack.c"
#include "fiber.c"
#include "pool.c"
#include "wait_ctx.c"
#include "async.c"
#include "stack_api.c"
