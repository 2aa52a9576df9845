/*
 * child.h: for tests that run a job in a child process (one that overflows a stack, trips
 * a sanitizer, or needs the process's first stack) and read what it writes on a pipe.
 */
#ifndef ASYNCJOB_TEST_CHILD_H
#define ASYNCJOB_TEST_CHILD_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
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

#endif /* ASYNCJOB_TEST_CHILD_H */
