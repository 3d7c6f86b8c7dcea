/* core/switch_x86_64.S: the greenlet stack switch for x86-64 (System V).
 *
 * Only what the ABI says a callee must preserve is saved: rbx, rbp,
 * r12-r15, the stack pointer, and the floating-point control state (the
 * MXCSR control bits and the x87 control word).  Everything lives on the
 * stack being left; the context keeps only the stack pointer.
 *
 * Frame of a suspended context, from its saved stack pointer upwards:
 *
 *     0  MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes padding
 *     8  r15
 *    16  r14
 *    24  r13        (fresh context: arg)
 *    32  r12        (fresh context: entry)
 *    40  rbx
 *    48  rbp        (fresh context: 0)
 *    56  return address (fresh context: gev__context_start)
 *
 * The C side (core/switch_ucontext.c) wraps these routines with the
 * sanitizer annotations.
 */
#include "config.h"

#if defined(__x86_64__) && defined(GEV_CONTEXT_ASM)

#if defined(__CET__) && (__CET__ & 1)
#define GEV_LANDING_PAD endbr64
#else
#define GEV_LANDING_PAD
#endif

        .text

/* void gev__switch_stack(void **save_sp, void *new_sp)
 *   rdi = where to store the current stack pointer
 *   rsi = the stack pointer of the context to resume */
        .globl  gev__switch_stack
        .hidden gev__switch_stack
        .type   gev__switch_stack, @function
        .p2align 4
gev__switch_stack:
        .cfi_startproc
        GEV_LANDING_PAD
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbx, 0
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r12, 0
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r13, 0
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r14, 0
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r15, 0
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movl    (%rsp), %eax            /* kept to compare with the new ones */
        movzwl  4(%rsp), %ecx

        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        /* Same frame layout on the new stack: the CFI above stays true. */

        /* Loading MXCSR and the x87 control word costs more than the rest
         * of the switch together (each serialises its unit); almost every
         * greenlet runs with the same values, so load only what differs. */
        cmpl    (%rsp), %eax
        jne     .Lload_mxcsr
.Lmxcsr_done:
        cmpw    4(%rsp), %cx
        jne     .Lload_x87cw
.Lx87cw_done:
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %r15
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r15
        popq    %r14
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r14
        popq    %r13
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r13
        popq    %r12
        .cfi_adjust_cfa_offset -8
        .cfi_restore %r12
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbx
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore %rbp
        ret
.Lload_mxcsr:
        ldmxcsr (%rsp)
        jmp     .Lmxcsr_done
.Lload_x87cw:
        fldcw   4(%rsp)
        jmp     .Lx87cw_done
        .cfi_endproc
        .size   gev__switch_stack, .-gev__switch_stack

/* void *gev__switch_make(void *stack_top, void (*entry)(void *), void *arg)
 * Builds the frame of a fresh context below stack_top and returns its stack
 * pointer.  The floating-point control state is inherited from the caller
 * (as a new thread inherits it).  The first switch to it "returns" into
 * gev__context_start with rsp 16-byte aligned. */
        .globl  gev__switch_make
        .hidden gev__switch_make
        .type   gev__switch_make, @function
        .p2align 4
gev__switch_make:
        .cfi_startproc
        GEV_LANDING_PAD
        andq    $-16, %rdi
        leaq    -80(%rdi), %rax         /* after the switch: rsp = top - 16 */
        movq    $0, (%rax)
        stmxcsr (%rax)
        fnstcw  4(%rax)
        movq    $0, 8(%rax)             /* r15 */
        movq    $0, 16(%rax)            /* r14 */
        movq    %rdx, 24(%rax)          /* r13 = arg */
        movq    %rsi, 32(%rax)          /* r12 = entry */
        movq    $0, 40(%rax)            /* rbx */
        movq    $0, 48(%rax)            /* rbp = 0: end of the frame chain */
        leaq    gev__context_start(%rip), %rcx
        movq    %rcx, 56(%rax)
        movq    $0, 64(%rax)            /* a zero "return address" above */
        movq    $0, 72(%rax)
        ret
        .cfi_endproc
        .size   gev__switch_make, .-gev__switch_make

/* The first code a fresh context runs: gev__context_boot(entry, arg), which
 * never returns.  The return address is marked undefined so that debuggers
 * and unwinders stop here. */
        .type   gev__context_start, @function
        .p2align 4
gev__context_start:
        .cfi_startproc
        .cfi_undefined %rip
        movq    %r12, %rdi
        movq    %r13, %rsi
        call    gev__context_boot
        ud2
        .cfi_endproc
        .size   gev__context_start, .-gev__context_start

#if defined(__CET__) && (__CET__ & 1)
/* GNU property note: IBT compatible (landing pads above).  Not SHSTK: the
 * switch moves between stacks without telling the shadow stack. */
        .section .note.gnu.property, "a"
        .p2align 3
        .long   4                       /* name size */
        .long   16                      /* descriptor size */
        .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .long   0xc0000002              /* GNU_PROPERTY_X86_FEATURE_1_AND */
        .long   4
        .long   1                       /* IBT */
        .p2align 3
#endif

#endif /* __x86_64__ && GEV_CONTEXT_ASM */

#if defined(__linux__) && defined(__ELF__)
        .section .note.GNU-stack, "", %progbits
#endif
