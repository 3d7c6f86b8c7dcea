/* core/switch_ucontext.c: the C half of core/switch.h.
 *
 * Two kinds of switch share this file:
 *   - GEV_CONTEXT_ASM: the low-level routines are in core/switch_<cpu>.S
 *     (gev__switch_stack, gev__switch_make); this file wraps them;
 *   - otherwise: getcontext / makecontext / swapcontext.
 * Both go through the same AddressSanitizer fiber annotations (below), and
 * both start a fresh context in gev__context_boot().  Valgrind is told about
 * the stacks where they are made (core/stack.c).
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "switch.h"

/* ------------------------------------------------------------------------
 * AddressSanitizer fiber annotations
 * ------------------------------------------------------------------------ */
#ifdef GEV__ASAN         /* switch.h */
#ifdef HAVE_SANITIZER_ASAN_INTERFACE_H
#include <sanitizer/asan_interface.h>
#else
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

/* The context being left, so that the side that resumes can learn the
 * bounds of a thread's own stack (ASan tells them on the first switch away
 * from it).  NULL when the context being left will never run again. */
static __thread gev__context *asan_leaving;

static inline void switch_begin(gev__context *from, gev__context *to, void **fake_stack_save)
{
    asan_leaving = fake_stack_save ? from : NULL;
    __sanitizer_start_switch_fiber(fake_stack_save, to->stack_lo, to->stack_size);
}

static inline void switch_end(void *fake_stack)
{
    const void *old_lo = NULL;
    size_t old_size = 0;
    __sanitizer_finish_switch_fiber(fake_stack, &old_lo, &old_size);
    gev__context *left = asan_leaving;
    if (left && !left->stack_lo) {
        left->stack_lo = (void *)old_lo;
        left->stack_size = old_size;
    }
}

static inline void stack_fresh(void *lo, size_t size)
{
    /* A reused stack may still hold the redzones of frames that never
     * returned (the greenlet that had it finished with a final switch). */
    __asan_unpoison_memory_region(lo, size);
}
#else
#define switch_begin(from, to, fake_stack_save) ((void)0)
#define switch_end(fake_stack) ((void)0)
#define stack_fresh(lo, size) ((void)0)
#endif

/* ------------------------------------------------------------------------
 * ThreadSanitizer fiber annotations: each greenlet's context is a TSan
 * fiber, so TSan keeps a shadow stack and a clock per greenlet instead of
 * seeing one thread's stack jump around.  A finished greenlet's fiber is
 * destroyed by the side it switched to (a fiber cannot destroy itself);
 * destroying it keeps TSan's fiber count to the live greenlets.
 * ------------------------------------------------------------------------ */
#ifdef GEV__TSAN         /* switch.h */
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);

static __thread void *tsan_dying;

static inline void tsan_begin(gev__context *from, gev__context *to, bool final)
{
    if (final) {
        tsan_dying = from->tsan_fiber;
        from->tsan_fiber = NULL;
    }
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
}

static inline void tsan_end(void)
{
    if (tsan_dying) {
        __tsan_destroy_fiber(tsan_dying);
        tsan_dying = NULL;
    }
}

static inline void tsan_init(gev__context *ctx, void *fiber)
{
    ctx->tsan_fiber = fiber ? fiber : __tsan_create_fiber(0);
}
#define tsan_fiber_of(ctx) ((ctx)->tsan_fiber)
#define tsan_thread_fiber() __tsan_get_current_fiber()
#else
#define tsan_begin(from, to, final) ((void)0)
#define tsan_end() ((void)0)
#define tsan_init(ctx, fiber) ((void)(fiber))
#define tsan_fiber_of(ctx) NULL
#define tsan_thread_fiber() NULL
#endif

/* Where every fresh context starts (called by the trampoline of the kind in
 * use); not static: the assembly trampolines call it. */
void gev__context_boot(void (*entry)(void *), void *arg)
    __attribute__((noreturn, visibility("hidden")));

void gev__context_boot(void (*entry)(void *), void *arg)
{
    switch_end(NULL);
    tsan_end();
    entry(arg);
    abort();        /* entry must switch away with gev__context_switch_final */
}

/* ------------------------------------------------------------------------
 * The assembly kind
 * ------------------------------------------------------------------------ */
#ifdef GEV_CONTEXT_ASM

/* core/switch_<cpu>.S (gev__switch_stack is declared in switch.h) */
void *gev__switch_make(void *stack_top, void (*entry)(void *), void *arg);

void gev__context_init_thread(gev__context *ctx)
{
    ctx->sp = NULL;
    ctx->stack_lo = NULL;
    ctx->stack_size = 0;
    ctx->asan_fake_stack = NULL;
    ctx->tsan_fiber = NULL;
    tsan_init(ctx, tsan_thread_fiber());
}

void gev__context_init(gev__context *ctx, void *stack_lo, size_t size,
                       void (*entry)(void *arg), void *arg)
{
    stack_fresh(stack_lo, size);
    ctx->stack_lo = stack_lo;
    ctx->stack_size = size;
    ctx->asan_fake_stack = NULL;
    tsan_init(ctx, tsan_fiber_of(ctx));         /* a reused record keeps its fiber */
    /* The boot code is found by the trampoline; entry and arg ride in
     * callee-saved registers of the initial frame. */
    ctx->sp = gev__switch_make((char *)stack_lo + size, entry, arg);
}

#if defined(GEV__ASAN) || defined(GEV__TSAN)     /* else inline in switch.h */
void gev__context_switch(gev__context *from, gev__context *to)
{
    switch_begin(from, to, &from->asan_fake_stack);
    tsan_begin(from, to, false);
    gev__switch_stack(&from->sp, to->sp);
    switch_end(from->asan_fake_stack);
    tsan_end();
}
#endif

void gev__context_switch_final(gev__context *from, gev__context *to)
{
    /* Not a local for the save slot: under ASan with fake stacks, this
     * frame's locals die with the fake stack that switch_begin frees. */
    switch_begin(from, to, NULL);
    tsan_begin(from, to, true);
    gev__switch_stack(&from->sp, to->sp);
    __builtin_unreachable();
}

/* ------------------------------------------------------------------------
 * The ucontext kind
 * ------------------------------------------------------------------------ */
#else

/* makecontext passes int arguments only: a pointer travels as two halves. */
static void uc_trampoline(unsigned int entry_hi, unsigned int entry_lo,
                          unsigned int arg_hi, unsigned int arg_lo)
{
    uint64_t e = ((uint64_t)entry_hi << 32) | entry_lo;
    uint64_t a = ((uint64_t)arg_hi << 32) | arg_lo;
    void (*entry)(void *);
    uintptr_t ue = (uintptr_t)e;
    memcpy(&entry, &ue, sizeof entry);      /* function pointer from integer */
    gev__context_boot(entry, (void *)(uintptr_t)a);
}

void gev__context_init_thread(gev__context *ctx)
{
    memset(ctx, 0, sizeof *ctx);    /* uc is filled by the first switch away */
    tsan_init(ctx, tsan_thread_fiber());
}

void gev__context_init(gev__context *ctx, void *stack_lo, size_t size,
                       void (*entry)(void *arg), void *arg)
{
    uintptr_t ue;
    uint64_t e, a = (uint64_t)(uintptr_t)arg;

    stack_fresh(stack_lo, size);
    void *fiber = tsan_fiber_of(ctx);           /* a reused record keeps its fiber */
    memset(ctx, 0, sizeof *ctx);
    tsan_init(ctx, fiber);
    if (getcontext(&ctx->uc) != 0)
        abort();
    ctx->uc.uc_stack.ss_sp = stack_lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_stack.ss_flags = 0;
    ctx->uc.uc_link = NULL;
    ctx->stack_lo = stack_lo;
    ctx->stack_size = size;
    memcpy(&ue, &entry, sizeof ue);
    e = ue;
    makecontext(&ctx->uc, (void (*)(void))uc_trampoline, 4,
                (unsigned int)(e >> 32), (unsigned int)e,
                (unsigned int)(a >> 32), (unsigned int)a);
}

void gev__context_switch(gev__context *from, gev__context *to)
{
    switch_begin(from, to, &from->asan_fake_stack);
    tsan_begin(from, to, false);
    if (swapcontext(&from->uc, &to->uc) != 0)
        abort();
    switch_end(from->asan_fake_stack);
    tsan_end();
}

void gev__context_switch_final(gev__context *from, gev__context *to)
{
    (void)from;
    switch_begin(from, to, NULL);
    tsan_begin(from, to, true);
    setcontext(&to->uc);
    abort();
}

#endif
