/* stack_map_win.c: default stacks on Windows, built instead of stack_map.c. Each stack is
 * a VirtualAlloc reservation of its own, low to high [guard][usable stack]; only the
 * usable part is committed, so the guard (stack_guard_size() bytes, stack_guard_win.c)
 * faults on any access. No slab, no tail and no spares: a reservation is released whole,
 * found from any address in it. Also the system calls the other stack files use. */
#include "config.h"

#include <stdint.h>
#include <windows.h>
#include <psapi.h>

#include "alloc.h"
#include "error.h"
#include "stack_internal.h"

size_t stack_os_page_size(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize != 0 ? si.dwPageSize : 4096;
}

/* A stack of `usable` bytes (rounded up to pages) above a reserved guard of `guard`
 * bytes, into *s; 0 or ASYNCJOB_ESTACK. */
static int stack_win_map(size_t usable, size_t guard, struct stack *s)
{
    size_t page = stack_page_size();
    size_t body = (usable + page - 1) & ~(page - 1);
    if (body < usable || body > SIZE_MAX - guard)
        return ASYNCJOB_ESTACK;
    char *map = VirtualAlloc(NULL, guard + body, MEM_RESERVE, PAGE_NOACCESS);
    if (map == NULL)
        return ASYNCJOB_ESTACK;
    if (VirtualAlloc(map + guard, body, MEM_COMMIT, PAGE_READWRITE) == NULL) {
        VirtualFree(map, 0, MEM_RELEASE);
        return ASYNCJOB_ESTACK;
    }
    s->lo = map + guard;
    s->size = body;
    s->guard = guard;
    s->guarded = STACK_GUARD_RESERVED;
    return 0;
}

/* Release the reservation that holds `addr`. */
static void stack_win_release(void *addr)
{
    MEMORY_BASIC_INFORMATION mbi;
    if (VirtualQuery(addr, &mbi, sizeof(mbi)) == sizeof(mbi) && mbi.AllocationBase != NULL)
        VirtualFree(mbi.AllocationBase, 0, MEM_RELEASE);
}

void stack_unmap(const struct stack *s)
{
    stack_win_release(s->lo);
}

/* Decommitted pages read as zero once committed again; if that fails, part of the stack
 * is gone and the caller must give the whole stack up. */
int stack_os_discard(void *p, size_t len)
{
    if (!VirtualFree(p, len, MEM_DECOMMIT))
        return -1;
    return VirtualAlloc(p, len, MEM_COMMIT, PAGE_READWRITE) != NULL ? 0 : -1;
}

/* A committed page is in the working set once touched, until stack_os_discard() or the
 * system trims it: the deepest such page tells how deep a job went. */
int stack_resident(const void *p, size_t pages, unsigned char *vec)
{
    PSAPI_WORKING_SET_EX_INFORMATION info[64];
    size_t page = stack_page_size();
    for (size_t done = 0; done < pages;) {
        size_t n = pages - done < 64 ? pages - done : 64;
        for (size_t k = 0; k < n; k++)
            info[k].VirtualAddress = (char *)p + (done + k) * page;
        if (!QueryWorkingSetEx(GetCurrentProcess(), info, (DWORD)(n * sizeof(info[0]))))
            return -1;
        for (size_t k = 0; k < n; k++)
            vec[done + k] = info[k].VirtualAttributes.Valid ? 1 : 0;
        done += n;
    }
    return 0;
}

void *stack_default_alloc(size_t *num)
{
    if (num == NULL || *num == 0 || *num > STACK_SIZE_MAX)
        return NULL;
    if (alloc_injected_failure())
        return NULL;
    struct stack s;
    if (stack_win_map(*num * STACK_SCALE, stack_guard_size(), &s) != 0)
        return NULL;
    *num = s.size;
    return s.lo;
}

void stack_default_free(void *addr)
{
    if (addr != NULL)
        stack_win_release(addr);
}

/* Each stack has a reservation of its own: there is no slab to carve from or release. */
int stack_slab_alloc(size_t usable, struct stack *s)
{
    if (alloc_injected_failure())
        return ASYNCJOB_ESTACK;
    return stack_win_map(usable, stack_guard_size(), s);
}

void stack_release_thread(void)
{
}
