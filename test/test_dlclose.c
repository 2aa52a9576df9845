/*
 * test_dlclose.c: libasyncjob loaded with dlopen and closed again: a thread that used it
 * and is still alive at dlclose must be able to exit (its thread-exit hook must still be
 * there), and load after load must not use up the process's thread keys. The program does
 * not link the library; LIBASYNCJOB_SO names the built one.
 */
#include <asyncjob.h>

#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "check_suite.h"

/* The library's functions this test calls, found with dlsym. */
struct api {
    void *handle;
    int (*init_thread)(size_t, size_t);
    int (*start_job)(ASYNC_JOB **, ASYNC_WAIT_CTX *, int *, int (*)(void *), void *, size_t);
    int (*pause_job)(void);
};

static struct api api;

static void load(void)
{
    api.handle = dlopen(LIBASYNCJOB_SO, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(api.handle != NULL, "dlopen: %s", dlerror());
    *(void **)&api.init_thread = dlsym(api.handle, "ASYNC_init_thread");
    *(void **)&api.start_job = dlsym(api.handle, "ASYNC_start_job");
    *(void **)&api.pause_job = dlsym(api.handle, "ASYNC_pause_job");
    ck_assert(api.init_thread != NULL && api.start_job != NULL && api.pause_job != NULL);
}

static int pause_once(void *arg)
{
    (void)arg;
    return api.pause_job();
}

static int return_seven(void *arg)
{
    (void)arg;
    return 7;
}

/* The thread and the test take turns: 1 = the thread has used the library, 2 = closed. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn = PTHREAD_COND_INITIALIZER;
static int stage;

static void set_stage(int s)
{
    pthread_mutex_lock(&lock);
    stage = s;
    pthread_cond_broadcast(&turn);
    pthread_mutex_unlock(&lock);
}

static void wait_stage(int s)
{
    pthread_mutex_lock(&lock);
    while (stage < s)
        pthread_cond_wait(&turn, &lock);
    pthread_mutex_unlock(&lock);
}

/* A pool with idle jobs and a paused job, no ASYNC_cleanup_thread(): the thread exits
 * after the library was closed. */
static void *use_then_outlive(void *arg)
{
    int *ok = arg;
    ASYNC_JOB *job = NULL;
    int ret;
    *ok = api.init_thread(0, 4) == 1 &&
          api.start_job(&job, NULL, &ret, pause_once, NULL, 0) == ASYNC_PAUSE;
    set_stage(1);
    wait_stage(2);
    return NULL;
}

START_TEST(thread_outlives_dlclose)
{
    load();
    pthread_t t;
    int ok = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, use_then_outlive, &ok), 0);
    wait_stage(1);
    ck_assert_int_eq(dlclose(api.handle), 0);
    set_stage(2);
    /* A crash here, as the thread exits, fails the test (Check's child dies). */
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert(ok);
}
END_TEST

/* More load/close cycles than a process has thread keys (PTHREAD_KEYS_MAX, 1024 in glibc),
 * each on a thread of its own that uses the library: every start works, and the program
 * can still make a key of its own. */
#define CYCLES 1100

static void *start_one(void *arg)
{
    ASYNC_JOB *job = NULL;
    int ret = 0;
    *(int *)arg = api.start_job(&job, NULL, &ret, return_seven, NULL, 0) == ASYNC_FINISH &&
                  ret == 7;
    return NULL;
}

START_TEST(load_cycles_keep_keys)
{
    for (int i = 0; i < CYCLES; i++) {
        load();
        pthread_t t;
        int ok = 0;
        ck_assert_int_eq(pthread_create(&t, NULL, start_one, &ok), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_msg(ok, "the start failed in cycle %d", i);
        ck_assert_int_eq(dlclose(api.handle), 0);
    }
    pthread_key_t key;
    ck_assert_int_eq(pthread_key_create(&key, NULL), 0);
    pthread_key_delete(key);
}
END_TEST

SUITE("dlclose", 120, NULL, thread_outlives_dlclose, load_cycles_keep_keys)

#include "tap_main.h"
