/*
 * test_debug_registry.c: the debuggers' list of jobs (lib/debug_registry.h). The
 * descriptor must describe the structures as compiled (every offset against offsetof,
 * the fixed header where gdb/asyncjob-gdb.py reads it), and the list must hold exactly
 * the jobs that exist: added at creation, removed at destruction, numbered in order,
 * each with its owner thread.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "../lib/debug_registry.h"
#include "../lib/pool.h"
#include "check_suite.h"

#ifdef _WIN32
# include <windows.h>
# define test_os_thread_id() GetCurrentThreadId()
#else
# define test_os_thread_id() gettid()
#endif

#define REG (&asyncjob_debug_registry)

START_TEST(descriptor_matches_the_structures)
{
    ck_assert_mem_eq(REG->magic, "asyncjob", 8);
    ck_assert_uint_eq(REG->byte_order, 0x04030201);
    ck_assert_uint_eq(REG->version, DEBUG_REGISTRY_VERSION);
    ck_assert_uint_eq(REG->size, sizeof(struct debug_registry));
    ck_assert_uint_eq(REG->pointer_size, sizeof(void *));
    ck_assert_uint_eq(REG->not_active, POOL_NOT_ACTIVE);
    ck_assert_uint_eq(REG->job_link, offsetof(ASYNC_JOB, dbg_link));
    ck_assert_uint_eq(REG->job_serial, offsetof(ASYNC_JOB, dbg_serial));
    ck_assert_uint_eq(REG->job_lwp, offsetof(ASYNC_JOB, dbg_lwp));
    ck_assert_uint_eq(REG->job_owner, offsetof(ASYNC_JOB, dbg_owner));
    ck_assert_uint_eq(REG->job_func, offsetof(ASYNC_JOB, func));
    ck_assert_uint_eq(REG->job_active_tid, offsetof(ASYNC_JOB, active_tid));
    ck_assert_uint_eq(REG->job_ctx, offsetof(ASYNC_JOB, fiber.ctx));
    ck_assert_uint_eq(REG->job_stack_lo, offsetof(ASYNC_JOB, fiber.stack.lo));
    ck_assert_uint_eq(REG->job_stack_size, offsetof(ASYNC_JOB, fiber.stack.size));
    ck_assert_uint_eq(REG->thread_current, offsetof(struct pool_thread, current));
    ck_assert_uint_eq(REG->registry_head, offsetof(struct debug_registry, head));
    ck_assert_uint_eq(REG->registry_count, offsetof(struct debug_registry, count));
    ck_assert_uint_eq(REG->registry_layout, offsetof(struct debug_registry, context_layout));
    /* The widths the reader assumes for the fields it decodes. */
    ck_assert_uint_eq(sizeof(((ASYNC_JOB *)0)->dbg_lwp), 4);
    ck_assert_uint_eq(sizeof(((ASYNC_JOB *)0)->active_tid), 8);
    ck_assert_uint_eq(sizeof(((ASYNC_JOB *)0)->fiber.stack.size), sizeof(void *));
}
END_TEST

/* gdb/asyncjob-gdb.py decodes the header as "8sIHHQH" with no padding, then the offset
 * table in the order of the struct's fields. */
START_TEST(header_is_where_the_reader_looks)
{
    ck_assert_uint_eq(offsetof(struct debug_registry, byte_order), 8);
    ck_assert_uint_eq(offsetof(struct debug_registry, version), 12);
    ck_assert_uint_eq(offsetof(struct debug_registry, size), 14);
    ck_assert_uint_eq(offsetof(struct debug_registry, not_active), 16);
    ck_assert_uint_eq(offsetof(struct debug_registry, pointer_size), 24);
    ck_assert_uint_eq(offsetof(struct debug_registry, job_link), 26);
    ck_assert_uint_eq(offsetof(struct debug_registry, registry_layout), 26 + 2 * 12);
    /* The saved-context layout of this machine is known, or bt is not offered. Windows:
     * lib/fcontext_probe has no probe for the ms_pe switch, and the layout is empty. */
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(_WIN32)
    ck_assert_ptr_nonnull(strstr(REG->context_layout, "="));
#endif
}
END_TEST

/* Count the list's entries, checking every back link. */
static size_t walk(const ASYNC_JOB *want, int *found)
{
    size_t n = 0;
    const struct debug_link *l = REG->head.next;
    *found = 0;
    for (; l != &REG->head; l = l->next, n++) {
        ck_assert_ptr_eq(l->next->prev, l);
        if ((const char *)l - offsetof(ASYNC_JOB, dbg_link) == (const char *)want)
            *found = 1;
    }
    ck_assert_uint_eq(n, REG->count);
    return n;
}

static int pause_once(void *arg)
{
    ASYNC_pause_job();
    return 0;
}

START_TEST(list_follows_creation_and_destruction)
{
    int found;
    size_t before = walk(NULL, &found);
    uint64_t serial = REG->next_serial;
    ck_assert_int_eq(ASYNC_init_thread(0, 3), 1);
    ck_assert_uint_eq(walk(NULL, &found), before + 3);
    ASYNC_JOB *job = NULL;
    int ret;
    expect_start(ASYNC_PAUSE, &job, NULL, &ret, pause_once, NULL, 0);
    walk(job, &found);
    ck_assert_int_eq(found, 1);
    ck_assert_uint_gt(job->dbg_serial, serial);
    ck_assert_int_eq(job->dbg_lwp, (int)test_os_thread_id());
    ck_assert_ptr_eq(job->dbg_owner, pool_self());
    ck_assert_ptr_eq(job->func, pause_once);
    expect_resume(ASYNC_FINISH, &job, &ret);
    ASYNC_cleanup_thread();
    ck_assert_uint_eq(walk(NULL, &found), before);
    ck_assert_uint_eq(REG->next_serial, serial + 3);
}
END_TEST

static void *make_jobs(void *arg)
{
    ASYNC_init_thread(0, 2);
    ASYNC_cleanup_thread();
    return NULL;
}

START_TEST(threads_add_and_remove_concurrently)
{
    int found;
    size_t before = walk(NULL, &found);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, make_jobs, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(walk(NULL, &found), before);
}
END_TEST

SUITE("debug_registry", 0, NULL, descriptor_matches_the_structures,
      header_is_where_the_reader_looks, list_follows_creation_and_destruction,
      threads_add_and_remove_concurrently)

#include "tap_main.h"

