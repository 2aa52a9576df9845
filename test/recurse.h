/*
 * recurse.h: unbounded recursion in small frames, for the tests that overflow a job stack
 * on purpose and must fault in the guard, not jump over it.
 */
#ifndef ASYNCJOB_TEST_RECURSE_H
#define ASYNCJOB_TEST_RECURSE_H

/* Nonzero stops the recursion; it stays 0, but the compiler cannot know that. */
static volatile int stop_depth;

/* Each frame keeps a small array alive across the call, so frames cannot be merged and
 * the call is not a tail call; the array stays far below a page, so a frame cannot step
 * over the guard page. */
__attribute__((noinline)) static int recurse(volatile char *up, int depth)
{
    volatile char frame[200];
    frame[0] = (char)depth;
    frame[sizeof(frame) - 1] = up != NULL ? up[0] : 0;
    if (stop_depth != 0 && depth >= stop_depth)
        return frame[0];
    return recurse(frame, depth + 1) + frame[sizeof(frame) - 1];
}

#endif /* ASYNCJOB_TEST_RECURSE_H */
