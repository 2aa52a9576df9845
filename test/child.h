/*
 * child.h: for tests that run a job in a child process (one that overflows a stack, trips
 * a sanitizer, or needs the process's first stack) and read what it writes on a pipe.
 */
#ifndef ASYNCJOB_TEST_CHILD_H
#define ASYNCJOB_TEST_CHILD_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Fork with a pipe from child to parent. The child gets 0 back with the write end in *fd,
 * also on its stderr if `onto_stderr`; the parent gets the child's pid with the read end. */
static inline pid_t fork_piped(int onto_stderr, int *fd)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        if (onto_stderr && dup2(fds[1], 2) < 0)
            _exit(70);
        *fd = fds[1];
    } else {
        close(fds[1]);
        *fd = fds[0];
    }
    return pid;
}

/* Read `fd` to its end and close it, keeping the first `size` bytes in `buf` and dropping
 * the rest: a child blocked on a full pipe, or killed by SIGPIPE, would not show how it
 * ended. Returns the bytes kept. */
static inline size_t read_to_end(int fd, void *buf, size_t size)
{
    size_t len = 0;
    for (;;) {
        char sink[4096];
        int full = len == size;
        ssize_t n = full ? read(fd, sink, sizeof(sink)) : read(fd, (char *)buf + len, size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!full)
            len += (size_t)n;
    }
    close(fd);
    return len;
}

/* The wait status of the child `pid`. */
static inline int wait_child(pid_t pid)
{
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* What the sanitizers print when they see something wrong or stop trusting themselves.
 * Valgrind reports elsewhere: through the child's exit status (--error-exitcode), and
 * test/valgrind-check.sh catches its stack-switch warning. */
#define CHILD_TOOL_WORDS                                                                   \
    "Sanitizer",        /* ASan, UBSan, TSan, LSan reports and warnings */                 \
    "ASan is ignoring", /* __asan_handle_no_return on a stack ASan does not know */        \
    "runtime error"     /* UBSan */

/* Run `body` in a child with its stderr on a pipe; return its wait status, and its stderr
 * (as much as fits) in `out`. */
static inline int run_body_in_child(void (*body)(void), char *out, size_t size)
{
    int fd;
    pid_t pid = fork_piped(1, &fd);
    if (pid == 0) {
        body();
        _exit(0);
    }
    out[read_to_end(fd, out, size - 1)] = '\0';
    return wait_child(pid);
}

/* Run `body` in a child; fail unless it exits 0 without a word from any sanitizer. */
static inline void run_quietly(void (*body)(void))
{
    static const char *const words[] = { CHILD_TOOL_WORDS };
    static char out[16384];
    int status = run_body_in_child(body, out, sizeof(out));
    const char *word = NULL;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(out, words[i]) != NULL)
            word = words[i];
    if (word != NULL || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "--- child output ---\n%s--- end ---\n", out);
        ck_abort_msg("child status %#x, output mentions \"%s\"", status,
                     word != NULL ? word : "nothing");
    }
}

#endif /* ASYNCJOB_TEST_CHILD_H */
