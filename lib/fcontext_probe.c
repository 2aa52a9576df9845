/*
 * fcontext_probe.c: finds where the linked jump_fcontext leaves the registers of the
 * context it switches away from, and prints lib/fcontext_layout.h for the gdb extension
 * (lib/debug_registry.c puts the layout in the descriptor). Built by make with the same
 * fcontext objects as the library and run on the build machine (through binfmt_misc for a
 * cross build); doc/DESIGN.md, "jump_fcontext's save area".
 *
 * probe_switch(to, sp_after) loads a distinct value into every callee-saved register,
 * calls jump_fcontext(to, 0) and, once resumed, stores its stack pointer in *sp_after.
 * The context it jumps to copies the save area, then jumps back. A register is placed
 * only if its value sits in exactly one slot; the resume address is the label after the
 * call; the stack pointer is where the caller stood after the call returned. Anything
 * else (a value missing or found twice, an architecture without a probe) prints the
 * reason on stderr and exits 1, and make writes an empty layout instead of a guess.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

void probe_switch(fcontext_t to, uintptr_t *sp_after);
extern const char probe_return[];

/* The value probe_switch puts in register i (0-based) of REGISTERS. */
#define PROBE_VALUE(i) (PROBE_BASE + (uintptr_t)(i) * 0x10101u + 1u)

#if defined(__x86_64__) && defined(__LP64__) && defined(__ELF__)
# define ARCH "x86_64"
# define PC_NAME "rip"
# define SP_NAME "rsp"
# define HAVE_LINK 0
# define PROBE_BASE ((uintptr_t)0x5a17c0de00000000u)
static const char *const REGISTERS[] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};
__asm__(".text\n"
        ".globl probe_switch\n"
        ".type probe_switch, @function\n"
        "probe_switch:\n"
        "  push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
        "  push %rsi\n" /* sp_after; the stack is 16-byte aligned again */
        "  movabs $0x5a17c0de00000001, %rbx\n"
        "  movabs $0x5a17c0de00010102, %rbp\n"
        "  movabs $0x5a17c0de00020203, %r12\n"
        "  movabs $0x5a17c0de00030304, %r13\n"
        "  movabs $0x5a17c0de00040405, %r14\n"
        "  movabs $0x5a17c0de00050506, %r15\n"
        "  xor %esi, %esi\n"
        "  call jump_fcontext\n"
        ".globl probe_return\n"
        "probe_return:\n"
        "  pop %rsi\n"
        "  lea -8(%rsp), %rcx\n" /* the stack pointer right after the return */
        "  mov %rcx, (%rsi)\n"
        "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
        "  ret\n"
        ".size probe_switch, .-probe_switch\n");
#elif defined(__aarch64__) && defined(__ELF__)
# define ARCH "aarch64"
# define PC_NAME "pc"
# define SP_NAME "sp"
# define HAVE_LINK 1
# define LINK_NAME "x30"
# define PROBE_BASE ((uintptr_t)0x5a17c0de00000000u)
static const char *const REGISTERS[] = {"x19", "x20", "x21", "x22", "x23", "x24",
                                        "x25", "x26", "x27", "x28", "x29"};
__asm__(".text\n"
        ".globl probe_switch\n"
        ".type probe_switch, %function\n"
        "probe_switch:\n"
        "  stp x29, x30, [sp, #-112]!\n"
        "  stp x19, x20, [sp, #16]\n"
        "  stp x21, x22, [sp, #32]\n"
        "  stp x23, x24, [sp, #48]\n"
        "  stp x25, x26, [sp, #64]\n"
        "  stp x27, x28, [sp, #80]\n"
        "  str x1, [sp, #96]\n" /* sp_after */
        "  ldr x19, =0x5a17c0de00000001\n"
        "  ldr x20, =0x5a17c0de00010102\n"
        "  ldr x21, =0x5a17c0de00020203\n"
        "  ldr x22, =0x5a17c0de00030304\n"
        "  ldr x23, =0x5a17c0de00040405\n"
        "  ldr x24, =0x5a17c0de00050506\n"
        "  ldr x25, =0x5a17c0de00060607\n"
        "  ldr x26, =0x5a17c0de00070708\n"
        "  ldr x27, =0x5a17c0de00080809\n"
        "  ldr x28, =0x5a17c0de0009090a\n"
        "  ldr x29, =0x5a17c0de000a0a0b\n"
        "  mov x1, #0\n"
        "  bl jump_fcontext\n"
        ".globl probe_return\n"
        "probe_return:\n"
        "  ldr x2, [sp, #96]\n"
        "  mov x3, sp\n"
        "  str x3, [x2]\n"
        "  ldp x19, x20, [sp, #16]\n"
        "  ldp x21, x22, [sp, #32]\n"
        "  ldp x23, x24, [sp, #48]\n"
        "  ldp x25, x26, [sp, #64]\n"
        "  ldp x27, x28, [sp, #80]\n"
        "  ldp x29, x30, [sp], #112\n"
        "  ret\n"
        "  .ltorg\n"
        ".size probe_switch, .-probe_switch\n");
#elif defined(__riscv) && __riscv_xlen == 64 && defined(__ELF__)
# define ARCH "riscv64"
# define PC_NAME "pc"
# define SP_NAME "sp"
# define HAVE_LINK 1
# define LINK_NAME "ra"
# define PROBE_BASE ((uintptr_t)0x5a17c0de00000000u)
static const char *const REGISTERS[] = {"s0", "s1", "s2", "s3", "s4",  "s5",
                                        "s6", "s7", "s8", "s9", "s10", "s11"};
__asm__(".text\n"
        ".globl probe_switch\n"
        ".type probe_switch, @function\n"
        "probe_switch:\n"
        "  addi sp, sp, -112\n"
        "  sd ra, 0(sp)\n sd s0, 8(sp)\n sd s1, 16(sp)\n sd s2, 24(sp)\n sd s3, 32(sp)\n"
        "  sd s4, 40(sp)\n sd s5, 48(sp)\n sd s6, 56(sp)\n sd s7, 64(sp)\n sd s8, 72(sp)\n"
        "  sd s9, 80(sp)\n sd s10, 88(sp)\n sd s11, 96(sp)\n sd a1, 104(sp)\n"
        "  li s0, 0x5a17c0de00000001\n"
        "  li s1, 0x5a17c0de00010102\n"
        "  li s2, 0x5a17c0de00020203\n"
        "  li s3, 0x5a17c0de00030304\n"
        "  li s4, 0x5a17c0de00040405\n"
        "  li s5, 0x5a17c0de00050506\n"
        "  li s6, 0x5a17c0de00060607\n"
        "  li s7, 0x5a17c0de00070708\n"
        "  li s8, 0x5a17c0de00080809\n"
        "  li s9, 0x5a17c0de0009090a\n"
        "  li s10, 0x5a17c0de000a0a0b\n"
        "  li s11, 0x5a17c0de000b0b0c\n"
        "  li a1, 0\n"
        "  call jump_fcontext\n"
        ".globl probe_return\n"
        "probe_return:\n"
        "  ld a2, 104(sp)\n"
        "  sd sp, 0(a2)\n"
        "  ld ra, 0(sp)\n ld s0, 8(sp)\n ld s1, 16(sp)\n ld s2, 24(sp)\n ld s3, 32(sp)\n"
        "  ld s4, 40(sp)\n ld s5, 48(sp)\n ld s6, 56(sp)\n ld s7, 64(sp)\n ld s8, 72(sp)\n"
        "  ld s9, 80(sp)\n ld s10, 88(sp)\n ld s11, 96(sp)\n"
        "  addi sp, sp, 112\n"
        "  ret\n"
        ".size probe_switch, .-probe_switch\n");
#elif defined(__i386__) && defined(__ELF__)
# define ARCH "i386"
# define PC_NAME "eip"
# define SP_NAME "esp"
# define HAVE_LINK 0
# define PROBE_BASE ((uintptr_t)0x5a170000u)
static const char *const REGISTERS[] = {"ebx", "ebp", "esi", "edi"};
/* jump_fcontext returns its transfer_t through a hidden pointer, which it may pop or
 * not: what the code after the call needs is stored twice, 4 bytes apart, so that it is
 * found at the same offset from the stack pointer either way. */
__asm__(".text\n"
        ".globl probe_switch\n"
        ".type probe_switch, @function\n"
        "probe_switch:\n"
        "  push %ebp\n push %ebx\n push %esi\n push %edi\n"
        "  mov 20(%esp), %eax\n" /* to */
        "  mov 24(%esp), %ecx\n" /* sp_after */
        "  mov %esp, %edx\n"
        "  sub $44, %esp\n"
        "  mov %ecx, 16(%esp)\n mov %ecx, 20(%esp)\n"
        "  mov %edx, 24(%esp)\n mov %edx, 28(%esp)\n"
        "  lea 32(%esp), %ecx\n"
        "  mov %ecx, 0(%esp)\n" /* the hidden pointer */
        "  mov %eax, 4(%esp)\n"
        "  movl $0, 8(%esp)\n"
        "  mov $0x5a170001, %ebx\n"
        "  mov $0x5a180102, %ebp\n"
        "  mov $0x5a190203, %esi\n"
        "  mov $0x5a1a0304, %edi\n"
        "  call jump_fcontext\n"
        ".globl probe_return\n"
        "probe_return:\n"
        "  mov 16(%esp), %ecx\n"
        "  mov %esp, (%ecx)\n"
        "  mov 24(%esp), %esp\n"
        "  pop %edi\n pop %esi\n pop %ebx\n pop %ebp\n"
        "  ret\n"
        ".size probe_switch, .-probe_switch\n");
#else
# define ARCH "an architecture without a probe"
#endif

#define WINDOW 96 /* words of the save area looked at */

static int fail(const char *why, const char *name)
{
    fprintf(stderr, "fcontext_probe (%s): %s%s%s\n", ARCH, why, name ? ": " : "",
            name ? name : "");
    return 1;
}

#ifdef PROBE_BASE
static uintptr_t saved[WINDOW];
static uintptr_t context;

/* The probe's other side: copy what the switch left, go back. */
static void probe_entry(transfer_t t)
{
    context = (uintptr_t)t.fctx;
    memcpy(saved, t.fctx, sizeof saved);
    jump_fcontext(t.fctx, NULL);
    abort(); /* never resumed */
}

/* The one slot holding `value`, as a byte offset; -1 if none, -2 if several. */
static long slot_of(uintptr_t value, long after)
{
    long found = -1;
    for (long i = 0; i < WINDOW; i++) {
        if (saved[i] != value || (long)(i * sizeof(uintptr_t)) <= after)
            continue;
        if (found >= 0)
            return -2;
        found = (long)(i * sizeof(uintptr_t));
    }
    return found;
}

#endif

int main(void)
{
#ifndef PROBE_BASE
    return fail("no probe for this architecture", NULL);
#else
    static char stack[65536] __attribute__((aligned(64)));
    char layout[160], *p = layout, *end = layout + sizeof layout;
    uintptr_t sp_after = 0;
    fcontext_t other = make_fcontext(stack + sizeof stack, sizeof stack, probe_entry);
    probe_switch(other, &sp_after);
    if (context == 0 || sp_after <= context || sp_after - context > sizeof saved ||
        (sp_after - context) % sizeof(uintptr_t) != 0)
        return fail("the stack pointer after the switch is not above the save area", NULL);
    /* The resume address: one slot, or two where the link register is saved as well (the
     * two hold the same value at every switch, so either reads right). */
    long pc = slot_of((uintptr_t)probe_return, -1), link = -1;
    if (pc == -2) {
        long first = -1;
        for (long i = 0; i < WINDOW && link < 0; i++)
            if (saved[i] == (uintptr_t)probe_return) {
                if (first < 0)
                    first = (long)(i * sizeof(uintptr_t));
                else
                    link = first, pc = (long)(i * sizeof(uintptr_t));
            }
        if (!HAVE_LINK || slot_of((uintptr_t)probe_return, pc) != -1)
            return fail("the return address is saved in more than two slots", NULL);
    }
    if (pc < 0)
        return fail("the return address is not in the save area", NULL);
    p += snprintf(p, (size_t)(end - p), "%s@%ld %s=%lu", PC_NAME, pc, SP_NAME,
                  (unsigned long)(sp_after - context));
#if HAVE_LINK
    if (link >= 0)
        p += snprintf(p, (size_t)(end - p), " %s@%ld", LINK_NAME, link);
#endif
    for (size_t i = 0; i < sizeof REGISTERS / sizeof REGISTERS[0]; i++) {
        long at = slot_of(PROBE_VALUE(i), -1);
        if (at == -1)
            return fail("a callee-saved register's value is not in the save area", REGISTERS[i]);
        if (at == -2)
            return fail("a callee-saved register's value is in several slots", REGISTERS[i]);
        if (p >= end - 1)
            break;
        p += snprintf(p, (size_t)(end - p), " %s@%ld", REGISTERS[i], at);
    }
    if (p >= end - 1)
        return fail("the layout does not fit the descriptor's 160 bytes", NULL);
    printf("/* Generated by lib/fcontext_probe (%s): where the linked jump_fcontext leaves a\n"
           " * suspended context's registers, relative to its saved context. */\n"
           "#define FCONTEXT_LAYOUT \"%s\"\n",
           ARCH, layout);
    return 0;
#endif
}
