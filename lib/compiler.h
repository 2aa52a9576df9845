/* compiler.h: the compiler attributes and helpers every layer uses, spelled once. GCC and
 * clang only (configure builds with nothing else). No layer's knowledge lives here. */
#ifndef ASYNCJOB_COMPILER_H
#define ASYNCJOB_COMPILER_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h> /* and, through it, the C library's own macros (__GLIBC__) */

/* Branch hints for the hot path: the error and slow cases are `unlikely`. */
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Code placement. ALWAYS_INLINE: a call level here would cost a return on a hot path.
 * HOT: the hot path's out-of-line functions, kept together in .text.hot so that edits
 * elsewhere do not move them. COLD: error paths, out of line and out of the way. */
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define HOT __attribute__((hot))
#define COLD __attribute__((noinline, cold))
#define NORETURN __attribute__((noreturn))
#define FALLTHROUGH __attribute__((fallthrough))

/* Thread-local state, reached relative to the thread pointer (no __tls_get_addr call).
 * glibc only: it keeps spare static TLS for libraries dlopen()ed later, while musl's
 * dlopen() refuses a library with initial-exec TLS ("initial-exec TLS resolves to dynamic
 * definition"); there the compiler's default model applies (doc/DESIGN.md, "The hot
 * path"). */
#if defined(__GLIBC__)
# define TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))
#else
# define TLS_INITIAL_EXEC
#endif

/* A name the library's objects share that must not be reachable from outside. PE has no
 * symbol visibility: the DLL's .def file lists the only names it exports. */
#ifdef _WIN32
# define HIDDEN
#else
# define HIDDEN __attribute__((visibility("hidden")))
#endif

/* Not instrumented by AddressSanitizer, in ASan builds only; each use says why. */
#ifdef ASYNCJOB_ASAN
# define NO_ASAN __attribute__((no_sanitize_address))
#else
# define NO_ASAN
#endif

/* A layout the code relies on, checked at compile time. */
#define STATIC_ASSERT(cond, why) _Static_assert(cond, why)

/* The structure of type `type` whose member `member` is at `ptr`. */
#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* assert() states internal invariants only, never input checks (bad input gets an error
 * code). configure's --enable-asserts compiles them in; the default build has NDEBUG. */

#endif /* ASYNCJOB_COMPILER_H */
