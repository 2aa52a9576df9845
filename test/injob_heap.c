/* injob_heap.c: an LD_PRELOAD measuring aid for test/haproxy_orphans.sh (glibc only, never
 * linked into anything): it counts the heap blocks allocated while an ASYNC job is current
 * on the calling thread that are still live, and writes "live_in_job_bytes=N blocks=N" to
 * $INJOB_HEAP_OUT every second. Under the drop-in, whatever an orphaned job's frames
 * allocated and only they pointed to shows up here as a count that grows with the aborts. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define SLOTS (1u << 22) /* open addressing, linear probing: room for 4M live blocks */
static struct slot {
    void *p;
    size_t n;
} table[SLOTS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t live_bytes, live_blocks;
static void *(*current_job)(void);
static __thread int asking; /* libcrypto's ASYNC_get_current_job() may allocate, dlsym too */

static int in_job(void)
{
    if (asking)
        return 0;
    asking = 1;
    if (current_job == NULL)
        current_job = (void *(*)(void))dlsym(RTLD_DEFAULT, "ASYNC_get_current_job");
    int yes = current_job != NULL && current_job() != NULL;
    asking = 0;
    return yes;
}

static size_t home(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 2654435761u) & (SLOTS - 1);
}

static void remember(void *p, size_t n)
{
    pthread_mutex_lock(&table_lock);
    if (live_blocks < SLOTS - 1) {
        size_t i = home(p);
        while (table[i].p != NULL)
            i = (i + 1) & (SLOTS - 1);
        table[i] = (struct slot){ p, n };
        live_bytes += n;
        live_blocks++;
    }
    pthread_mutex_unlock(&table_lock);
}

/* Removal by backward shift: later entries of the probe run move up into the hole unless
 * their home lies cyclically in (hole, their slot]. */
static void forget(void *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&table_lock);
    size_t i = home(p);
    while (table[i].p != NULL && table[i].p != p)
        i = (i + 1) & (SLOTS - 1);
    if (table[i].p == p) {
        live_bytes -= table[i].n;
        live_blocks--;
        for (size_t j = (i + 1) & (SLOTS - 1); table[j].p != NULL; j = (j + 1) & (SLOTS - 1)) {
            size_t k = home(table[j].p);
            int stays = i < j ? (k > i && k <= j) : (k > i || k <= j);
            if (!stays) {
                table[i] = table[j];
                i = j;
            }
        }
        table[i].p = NULL;
    }
    pthread_mutex_unlock(&table_lock);
}

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (p != NULL && in_job())
        remember(p, n);
    return p;
}

void *calloc(size_t count, size_t n)
{
    void *p = __libc_calloc(count, n);
    if (p != NULL && in_job())
        remember(p, count * n);
    return p;
}

void *realloc(void *old, size_t n)
{
    forget(old); /* first, as free() does: the address may be reused at once */
    void *p = __libc_realloc(old, n);
    if (p != NULL && in_job())
        remember(p, n);
    return p;
}

void free(void *p)
{
    forget(p);
    __libc_free(p);
}

static void *report(void *unused)
{
    (void)unused;
    const char *path = getenv("INJOB_HEAP_OUT");
    for (;;) {
        sleep(1);
        FILE *f = fopen(path != NULL ? path : "/dev/null", "w");
        if (f == NULL)
            continue;
        pthread_mutex_lock(&table_lock);
        size_t bytes = live_bytes, blocks = live_blocks;
        pthread_mutex_unlock(&table_lock);
        fprintf(f, "live_in_job_bytes=%zu blocks=%zu\n", bytes, blocks);
        fclose(f);
    }
    return NULL;
}

__attribute__((constructor)) static void start_reporter(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, report, NULL) == 0)
        pthread_detach(t);
}
