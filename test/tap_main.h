/*
 * tap_main.h: the main() shared by every Check suite. Each test case prints one TAP line
 * on stdout, which automake's tap-driver.sh turns into one PASS/FAIL line of make check.
 * A test file defines `static Suite *suite(void)` and includes this header last.
 */
#ifndef ASYNCJOB_TAP_MAIN_H
#define ASYNCJOB_TAP_MAIN_H

#include <check.h>
#include <stdlib.h>

static Suite *suite(void);

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* ASYNCJOB_TAP_MAIN_H */
