/* fiber_switch.h: how lib/fiber.c calls Boost's jump_fcontext, fiber_switch_to(to, data,
 * balanced); included by lib/fiber.c only, after fcontext.h. Why it is inline asm on
 * x86-64: doc/DESIGN.md, "The switch call". */
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
/* The switch asm without a red zone (doc/DESIGN.md, "Hot-path tricks"). Boost's SysV
 * contract: `to` in rdi, `data` in rsi, the transfer_t back in rax:rdx, every caller-saved
 * register clobbered (the other side may use any). */
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

/* Balanced: push the return address and jump, so that the switch leaves no entry on the
 * CPU's return-stack buffer (jump_fcontext never returns through `ret`). */
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
