/* core/switch.h: switching between greenlet stacks.
 *
 * x86-64 (System V) and aarch64 (AAPCS64) have hand-written switches
 * (core/switch_<cpu>.S) that save only what the ABI says a callee must keep:
 * callee-saved registers, the stack pointer and the floating-point control
 * state (MXCSR and the x87 control word; FPCR).  Other CPUs, or
 * --with-context=ucontext, use core/switch_ucontext.c.
 *
 * AddressSanitizer is told about every switch (core/switch_ucontext.c,
 * for both kinds), Valgrind about every stack where it is made
 * (core/stack.c), so that both run clean over greenlet code.
 */
#ifndef GEV_CORE_SWITCH_H
#define GEV_CORE_SWITCH_H

#include <stddef.h>
#include "config.h"
#ifndef GEV_CONTEXT_ASM
#include <ucontext.h>
#endif

typedef struct gev__context {
#ifdef GEV_CONTEXT_ASM
    void *sp;                   /* saved stack pointer; the rest is on the stack */
#else
    ucontext_t uc;
#endif
    /* The stack this context runs on, for the sanitizer annotations.
     * NULL/0 for a thread's own stack (learned on the first switch away). */
    void *stack_lo;
    size_t stack_size;
    void *asan_fake_stack;      /* ASan's per-fiber state */
    void *tsan_fiber;           /* ThreadSanitizer's fiber (GEV__TSAN builds) */
} gev__context;

/* The thread's own stack: the main greenlet's (the hub greenlet has a
 * stack of its own). */
void gev__context_init_thread(gev__context *ctx);

/* Prepare ctx so that the first switch to it calls entry(arg) on the stack
 * [stack_lo, stack_lo + size).  entry must never return: a finished
 * greenlet switches away with gev__context_switch_final(). */
void gev__context_init(gev__context *ctx, void *stack_lo, size_t size,
                       void (*entry)(void *arg), void *arg);

/* Save the current state in `from`, resume `to`.  Returns when someone
 * switches back to `from`.  Inline for the assembly kind without ASan: a
 * wrapper frame costs a call and a return on every switch. */
#if defined(__SANITIZE_ADDRESS__)
#define GEV__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GEV__ASAN 1
#endif
#endif
#ifdef GEV_CONTEXT_ASM
void gev__switch_stack(void **save_sp, void *new_sp);    /* core/switch_<cpu>.S */
#endif
#if defined(__SANITIZE_THREAD__)
#define GEV__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GEV__TSAN 1
#endif
#endif
#if defined(GEV_CONTEXT_ASM) && !defined(GEV__ASAN) && !defined(GEV__TSAN)
static inline void gev__context_switch(gev__context *from, gev__context *to)
{
    gev__switch_stack(&from->sp, to->sp);
}
#else
void gev__context_switch(gev__context *from, gev__context *to);
#endif

/* Like gev__context_switch, for a context that will never be resumed (its
 * greenlet finished): lets ASan free the fiber's fake stack. */
void gev__context_switch_final(gev__context *from, gev__context *to)
    __attribute__((noreturn));

#endif
