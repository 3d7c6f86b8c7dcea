/* core/switch_aarch64.S: the greenlet stack switch for aarch64 (AAPCS64).
 *
 * Only what the ABI says a callee must preserve is saved: x19-x28, the frame
 * pointer x29, the link register x30, d8-d15 (the low halves of v8-v15),
 * the stack pointer and FPCR.  x18 (the platform register) is left alone.
 *
 * Frame of a suspended context, from its saved stack pointer upwards
 * (176 bytes, a multiple of 16 as sp requires):
 *
 *     0  x19, x20   (fresh context: entry, arg)
 *    16  x21, x22
 *    32  x23, x24
 *    48  x25, x26
 *    64  x27, x28
 *    80  x29, x30   (fresh context: 0, gev__context_start)
 *    96  d8 .. d15
 *   160  FPCR, padding
 *
 * The C side (core/switch_ucontext.c) wraps these routines with the
 * sanitizer annotations.
 */
#include "config.h"

#if defined(__aarch64__) && defined(GEV_CONTEXT_ASM)

/* BTI landing pad ("bti c" = hint #34: a no-op on cores without BTI). */
#define GEV_BTI_C hint #34

        .text

/* void gev__switch_stack(void **save_sp, void *new_sp)
 *   x0 = where to store the current stack pointer
 *   x1 = the stack pointer of the context to resume */
        .globl  gev__switch_stack
        .hidden gev__switch_stack
        .type   gev__switch_stack, %function
        .p2align 4
gev__switch_stack:
        .cfi_startproc
        GEV_BTI_C
        sub     sp, sp, #176
        .cfi_adjust_cfa_offset 176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        .cfi_rel_offset x19, 0
        .cfi_rel_offset x20, 8
        .cfi_rel_offset x21, 16
        .cfi_rel_offset x22, 24
        .cfi_rel_offset x23, 32
        .cfi_rel_offset x24, 40
        .cfi_rel_offset x25, 48
        .cfi_rel_offset x26, 56
        .cfi_rel_offset x27, 64
        .cfi_rel_offset x28, 72
        .cfi_rel_offset x29, 80
        .cfi_rel_offset x30, 88
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]

        mov     x10, sp
        str     x10, [x0]
        mov     sp, x1
        /* Same frame layout on the new stack: the CFI above stays true. */

        ldr     x9, [sp, #160]
        mrs     x10, fpcr
        cmp     x9, x10
        b.eq    1f
        msr     fpcr, x9                /* writing FPCR may be slow: only on change */
1:
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #176
        .cfi_adjust_cfa_offset -176
        .cfi_restore x19
        .cfi_restore x20
        .cfi_restore x21
        .cfi_restore x22
        .cfi_restore x23
        .cfi_restore x24
        .cfi_restore x25
        .cfi_restore x26
        .cfi_restore x27
        .cfi_restore x28
        .cfi_restore x29
        .cfi_restore x30
        ret
        .cfi_endproc
        .size   gev__switch_stack, .-gev__switch_stack

/* void *gev__switch_make(void *stack_top, void (*entry)(void *), void *arg)
 * Builds the frame of a fresh context below stack_top and returns its stack
 * pointer.  FPCR is inherited from the caller (as a new thread inherits
 * it).  The first switch to it "returns" into gev__context_start with sp
 * 16-byte aligned. */
        .globl  gev__switch_make
        .hidden gev__switch_make
        .type   gev__switch_make, %function
        .p2align 4
gev__switch_make:
        .cfi_startproc
        GEV_BTI_C
        and     x0, x0, #~15
        sub     x0, x0, #192            /* after the switch: sp = top - 16 */
        stp     x1, x2, [x0, #0]        /* x19 = entry, x20 = arg */
        stp     xzr, xzr, [x0, #16]
        stp     xzr, xzr, [x0, #32]
        stp     xzr, xzr, [x0, #48]
        stp     xzr, xzr, [x0, #64]
        adr     x9, gev__context_start
        stp     xzr, x9, [x0, #80]      /* x29 = 0: end of the frame chain */
        stp     xzr, xzr, [x0, #96]
        stp     xzr, xzr, [x0, #112]
        stp     xzr, xzr, [x0, #128]
        stp     xzr, xzr, [x0, #144]
        mrs     x9, fpcr
        stp     x9, xzr, [x0, #160]
        stp     xzr, xzr, [x0, #176]    /* a zero frame record above */
        ret
        .cfi_endproc
        .size   gev__switch_make, .-gev__switch_make

/* The first code a fresh context runs: gev__context_boot(entry, arg), which
 * never returns.  The return address is marked undefined so that debuggers
 * and unwinders stop here.  Entered by "ret", so it needs no BTI pad. */
        .type   gev__context_start, %function
        .p2align 4
gev__context_start:
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x19
        mov     x1, x20
        bl      gev__context_boot
        brk     #0x3e8
        .cfi_endproc
        .size   gev__context_start, .-gev__context_start

/* GNU property note, so that linking this file does not turn BTI / PAC off
 * for the whole program when the rest of it is built with them.  The
 * routines are leaf functions that never sign return addresses, which is
 * compatible with PAC; the entry points have BTI landing pads. */
#if defined(__ARM_FEATURE_BTI_DEFAULT) || defined(__ARM_FEATURE_PAC_DEFAULT)
#define GEV_FEATURE_BTI 1
#define GEV_FEATURE_PAC 2
        .section .note.gnu.property, "a"
        .p2align 3
        .long   4                       /* name size */
        .long   16                      /* descriptor size */
        .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   0xc0000000              /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
        .long   4
        .long   (GEV_FEATURE_BTI | GEV_FEATURE_PAC)
        .long   0
#endif

#endif /* __aarch64__ && GEV_CONTEXT_ASM */

#if defined(__linux__) && defined(__ELF__)
        .section .note.GNU-stack, "", %progbits
#endif
