/*
 * tap_skip.h: tap_skip(), for a Check test that finds the facility it exists to test
 * missing from this environment (for example an emulator that ignores a system call).
 * tap_main.h turns such a test's line into a TAP SKIP: never a PASS, never left out.
 */
#ifndef ASYNCJOB_TAP_SKIP_H
#define ASYNCJOB_TAP_SKIP_H

#include <check.h>

/* The test ends like a failure whose message starts with this tag; tap_main.h's main()
 * rewrites "not ok N - name: TAP-SKIP: why" into "ok N - name # SKIP why". */
#define TAP_SKIP_TAG "TAP-SKIP: "
#define tap_skip(...) ck_abort_msg(TAP_SKIP_TAG __VA_ARGS__)

#endif /* ASYNCJOB_TAP_SKIP_H */
