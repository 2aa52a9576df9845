/*
 * tap_main.h: the main() shared by every Check suite. Each test case prints one TAP line
 * on stdout, which automake's tap-driver.sh turns into one PASS/FAIL/SKIP line of make check.
 * A test file defines `static Suite *suite(void)` and includes this header last.
 */
#ifndef ASYNCJOB_TAP_MAIN_H
#define ASYNCJOB_TAP_MAIN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_suite.h"
#include "tap_skip.h"

#ifdef _WIN32
# include <fcntl.h>
# include <io.h>
#endif

static Suite *suite(void);

/* Copy Check's TAP stream from `in` to stdout, turning tap_skip() failures into SKIP
 * lines. Returns the number of real failures. */
static int tap_copy(FILE *in)
{
    char line[4096];
    int failed = 0;
    while (fgets(line, sizeof line, in) != NULL) {
        char *tag = strstr(line, TAP_SKIP_TAG);
        if (strncmp(line, "not ok ", 7) == 0 && tag != NULL) {
            /* "not ok N - name: TAP-SKIP: why" becomes "ok N - name # SKIP why". */
            char *name_end = tag;
            while (name_end > line && (name_end[-1] == ' ' || name_end[-1] == ':'))
                name_end--;
            printf("ok %.*s # SKIP %s", (int)(name_end - (line + 7)), line + 7,
                   tag + strlen(TAP_SKIP_TAG));
        } else {
            if (strncmp(line, "not ok", 6) == 0)
                failed++;
            fputs(line, stdout);
        }
    }
    return failed;
}

int main(void)
{
#ifdef _WIN32
    /* TAP lines end in \n alone, as tap-driver.sh reads them (msvcrt would write \r\n). */
    _setmode(_fileno(stdout), _O_BINARY);
#endif
    /* ASYNCJOB_TEST_COUNT=1: print how many tests the suite has (check_suite.h). */
    if (getenv("ASYNCJOB_TEST_COUNT") != NULL) {
        srunner_free(srunner_create(suite()));
        printf("%d\n", suite_test_count);
        return EXIT_SUCCESS;
    }
    /* Check writes its TAP to a file; it is read back and filtered once the run ends. */
#ifdef _WIN32
    /* Windows: mingw's mkstemp opens the file unshared, so Check could not open it while
     * the descriptor lives; it is closed, and the file opened again by name once written. */
    const char *tmp = getenv("TEMP");
    char path[1024];
    snprintf(path, sizeof path, "%s\\asyncjob-tap-XXXXXX", tmp != NULL ? tmp : ".");
#else
    char path[] = "/tmp/asyncjob-tap-XXXXXX";
#endif
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return EXIT_FAILURE;
    }
#ifdef _WIN32
    close(fd);
#endif
    SRunner *sr = srunner_create(suite());
    srunner_set_tap(sr, path);
    srunner_run_all(sr, CK_SILENT);
    int check_failed = srunner_ntests_failed(sr);
    srunner_free(sr);

#ifdef _WIN32
    FILE *in = fopen(path, "r");
#else
    FILE *in = fdopen(fd, "r");
#endif
    int failed = in != NULL ? tap_copy(in) : check_failed + 1;
    if (in != NULL)
        fclose(in);
    unlink(path);
    fflush(stdout);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* ASYNCJOB_TAP_MAIN_H */
