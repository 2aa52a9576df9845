/*
 * fiber_switch.h: how lib/fiber.c calls Boost's jump_fcontext, fiber_switch_to(to, data,
 * balanced). Included by lib/fiber.c only, after fcontext.h.
 *
 * On x86-64 (configure sets FIBER_ASM_CALL and -mno-red-zone) the call is inline asm: as a
 * C call the compiler would align the stack around it, so each API function would open a
 * frame for nothing. The asm states Boost's SysV contract: `to` in rdi and `data` in rsi,
 * the transfer_t back in rax:rdx, every caller-saved register clobbered (the other side
 * may have used any), rbx, rbp and r12-r15 restored by the switch itself. The return
 * address and jump_fcontext's save area go below the stack pointer: hence no red zone.
 *
 * "Balanced" pushes the return address and jumps instead of calling, so that the switch
 * leaves no entry on the CPU's return-stack buffer (jump_fcontext never returns through
 * `ret`): for a start whose job runs to its end, the caller's entry is then on top again
 * when ASYNC_start_job returns. Elsewhere the shorter plain call is used.
 */
#ifndef ASYNCJOB_FIBER_SWITCH_H
#define ASYNCJOB_FIBER_SWITCH_H

#include "compiler.h"

#if defined(FIBER_ASM_CALL) && defined(__x86_64__) && defined(__LP64__)
# ifdef __AVX512F__
#  define FIBER_AVX512_CLOBBERS                                                           \
      "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",     \
      "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k0", "k1", "k2",     \
      "k3", "k4", "k5", "k6", "k7",
# else
#  define FIBER_AVX512_CLOBBERS
# endif
# define FIBER_SWITCH_ASM(code, to, data, t)                                               \
    __asm__ volatile(code                                                                  \
                     : "=a"((t).fctx), "=d"((t).data), "+D"(to), "+S"(data)                \
                     :                                                                     \
                     : "rcx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1",    \
                       "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",     \
                       "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",               \
                       FIBER_AVX512_CLOBBERS "st", "st(1)", "st(2)", "st(3)", "st(4)",     \
                       "st(5)", "st(6)", "st(7)", "mm0", "mm1", "mm2", "mm3", "mm4", "mm5", \
                       "mm6", "mm7")

static ALWAYS_INLINE transfer_t fiber_switch_to(fcontext_t to, void *data, int balanced)
{
    transfer_t t;
    if (balanced)
        FIBER_SWITCH_ASM("lea 1f(%%rip), %%rax\n\t"
                         "push %%rax\n\t"
                         "jmp jump_fcontext\n"
                         "1:",
                         to, data, t);
    else
        FIBER_SWITCH_ASM("call jump_fcontext", to, data, t);
    return t;
}
#else
static ALWAYS_INLINE transfer_t fiber_switch_to(fcontext_t to, void *data, int balanced)
{
    (void)balanced; /* a C call is all there is */
    return jump_fcontext(to, data);
}
#endif

#endif /* ASYNCJOB_FIBER_SWITCH_H */
