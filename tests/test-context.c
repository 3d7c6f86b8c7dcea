/* tests/test-context.c: the context switch (core/switch.h) and the greenlet
 * stacks (core/stack.h), on their own: no hub, no loop.
 *
 * Contexts record what they see; the assertions run on the main stack (a
 * CMocka assert inside a context would longjmp across stacks).  Forked
 * children report through pipes and exit with _exit().
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gevtest.h"
#include "stack.h"
#include "switch.h"



#define KiB ((size_t)1024)
#define STACK_256K (256 * KiB)

static gev__stack_cache cache;
static gev__context main_ctx;

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* Read everything from fd until EOF into buf (NUL-terminated). */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r > 0) {
            n += (size_t)r;
            if (n == cap - 1)
                break;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    buf[n] = '\0';
    return n;
}

/* A probe: fn writes its results to fd `out`.  It runs in a child
 * (gevtest_fork_capture: *err gets its stderr); *out gets the results
 * (small: they fit in the pipe until the child has exited).  Returns the
 * child's wait status. */
typedef void (*probe_fn)(int out, void *arg);
struct probe { probe_fn fn; void *arg; int out; };

static int probe_main(void *arg)
{
    struct probe *p = arg;
    p->fn(p->out, p->arg);
    return 0;
}

static int run_probe(probe_fn fn, void *arg, char *err, size_t errcap, char *out, size_t outcap)
{
    int op[2];
    assert_int_equal(pipe(op), 0);
    struct probe p = { fn, arg, op[1] };
    int status = gevtest_fork_capture(probe_main, &p, err, errcap);
    close(op[1]);
    read_all(op[0], out, outcap);
    close(op[0]);
    return status;
}

static void write_full(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w > 0) {
            c += w;
            n -= (size_t)w;
        } else if (!(w < 0 && errno == EINTR)) {
            return;
        }
    }
}

/* ------------------------------------------------------------------------
 * Probes run in main() before anything else touches stack.c: the default
 * size and GEV_DEBUG are read once per process, so each case needs a child
 * forked from a process that has not read them yet.
 * ------------------------------------------------------------------------ */
struct size_case {
    const char *env;            /* NULL: unset */
    size_t expect;              /* before rounding up to pages (0: page) */
    size_t got, got_stack;
    int status;
};

static struct size_case size_cases[] = {
    { NULL,         256 * KiB, 0, 0, 0 },
    { "65536",      64 * KiB,  0, 0, 0 },
    { "64k",        64 * KiB,  0, 0, 0 },
    { "64K",        64 * KiB,  0, 0, 0 },
    { "1m",         1024 * KiB, 0, 0, 0 },
    { "2M",         2048 * KiB, 0, 0, 0 },
    { "16384",      16 * KiB,  0, 0, 0 },
    { "100000",     100000,    0, 0, 0 },   /* rounded up to pages */
    { "1024M",      1024 * 1024 * KiB, 0, 0, 0 },
    { "16383",      256 * KiB, 0, 0, 0 },   /* < 16 KiB: ignored */
    { "8k",         256 * KiB, 0, 0, 0 },
    { "1025m",      256 * KiB, 0, 0, 0 },   /* > 1 GiB: ignored */
    { "4294967296", 256 * KiB, 0, 0, 0 },
    { "99999999999999999999999k", 256 * KiB, 0, 0, 0 },
    { "",           256 * KiB, 0, 0, 0 },
    { "abc",        256 * KiB, 0, 0, 0 },
    { "64kb",       256 * KiB, 0, 0, 0 },
    { "-65536",     256 * KiB, 0, 0, 0 },
    { " 65536",     256 * KiB, 0, 0, 0 },
    { "64g",        256 * KiB, 0, 0, 0 },
};

static void size_child(int out, void *arg)
{
    struct size_case *c = arg;
    size_t r[2];
    gev__stack *s;

    if (c->env)
        setenv("GEV_STACK_SIZE", c->env, 1);
    else
        unsetenv("GEV_STACK_SIZE");
    r[0] = gev__stack_default_size();
    s = gev__stack_get(NULL, 0);
    r[1] = s ? s->size : 0;
    if (s)
        gev__stack_put(NULL, s);
    write_full(out, r, sizeof r);
}

struct fallback_probe {
    const char *debug;          /* GEV_DEBUG value, NULL: unset */
    int status;
    size_t guarded, unguarded, after_guarded, after_unguarded, made;
    char err[4096];
};
static struct fallback_probe fallback_probes[2] = { { "1", 0, 0, 0, 0, 0, 0, "" },
                                                     { NULL, 0, 0, 0, 0, 0, 0, "" } };

/* Make (small) stacks until a few unguarded ones exist, then free them. */
static void fallback_child(int out, void *arg)
{
    struct fallback_probe *p = arg;
    size_t cap = 80000, n = 0, r[5];
    gev__stack **v = malloc(cap * sizeof *v);
    gev__stack_stats st = { 0, 0, false };

    if (p->debug)
        setenv("GEV_DEBUG", p->debug, 1);
    else
        unsetenv("GEV_DEBUG");
    while (v && n < cap) {
        if (!(v[n] = gev__stack_get(NULL, 16 * KiB)))
            break;
        n++;
        gev__stack_stats_get(&st);
        if (st.unguarded >= 3)
            break;
    }
    r[0] = st.guarded;
    r[1] = st.unguarded;
    r[4] = n;
    while (n)
        gev__stack_put(NULL, v[--n]);
    gev__stack_stats_get(&st);
    r[2] = st.guarded;
    r[3] = st.unguarded;
    write_full(out, r, sizeof r);
}

static void run_probes(void)
{
    char out[64];

    for (size_t i = 0; i < sizeof size_cases / sizeof size_cases[0]; i++) {
        char err[256];
        size_t r[2] = { 0, 0 };
        size_cases[i].status = run_probe(size_child, &size_cases[i], err, sizeof err,
                                         out, sizeof out);
        memcpy(r, out, sizeof r);
        size_cases[i].got = r[0];
        size_cases[i].got_stack = r[1];
    }
    for (size_t i = 0; i < 2 && !GEVTEST_ON_VALGRIND; i++) {
        size_t r[5] = { 0, 0, 0, 0, 0 };
        struct fallback_probe *p = &fallback_probes[i];
        p->status = run_probe(fallback_child, p, p->err, sizeof p->err, out, sizeof out);
        memcpy(r, out, sizeof r);
        p->guarded = r[0];
        p->unguarded = r[1];
        p->after_guarded = r[2];
        p->after_unguarded = r[3];
        p->made = r[4];
    }
}

static void test_stack_size_env(void **state)
{
    long ps = sysconf(_SC_PAGESIZE);
    (void)state;
    for (size_t i = 0; i < sizeof size_cases / sizeof size_cases[0]; i++) {
        struct size_case *c = &size_cases[i];
        size_t expect = (c->expect + (size_t)ps - 1) / (size_t)ps * (size_t)ps;
        if (c->got != expect || c->got_stack != expect)
            print_error("GEV_STACK_SIZE=\"%s\": default %zu, stack %zu, expected %zu\n",
                        c->env ? c->env : "(unset)", c->got, c->got_stack, expect);
        assert_true(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0);
        assert_int_equal(c->got, expect);
        assert_int_equal(c->got_stack, expect);
    }
}

static long max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

/* Past the limit, stacks come without a guard page; GEV_DEBUG reports the
 * first fallback with one line, and nothing is printed without it. */
static void test_fallback_report(void **state)
{
    struct fallback_probe *dbg = &fallback_probes[0], *quiet = &fallback_probes[1];
    long maps = max_map_count();
    size_t limit = (size_t)(maps / 2 - 1000);
    (void)state;

    if (GEVTEST_ON_VALGRIND) {
        /* Valgrind's address-space manager runs out of segments (its
         * VG_N_SEGMENTS) long before vm.max_map_count. */
        print_message("skipped under valgrind: too many mappings for it\n");
        skip();
        return;
    }
    for (int i = 0; i < 2; i++) {
        struct fallback_probe *p = &fallback_probes[i];
        assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
        assert_int_equal(p->unguarded, 3);
        assert_gt(p->guarded, 1000);
        if (maps >= 8000) /* the documented share of the limit, unless ENOMEM came first */
            assert_le(p->guarded, limit);
        assert_int_equal(p->made, p->guarded + p->unguarded);
        assert_int_equal(p->after_guarded, 0);
        assert_int_equal(p->after_unguarded, 0);
    }
    {
        assert_string_equal(quiet->err, "");
        /* exactly one line, starting with "gev: " */
        assert_true(strncmp(dbg->err, "gev: ", 5) == 0);
        assert_non_null(strchr(dbg->err, '\n'));
        assert_true(strchr(dbg->err, '\n')[1] == '\0');
        assert_non_null(strstr(dbg->err, "guard"));
    }
}

/* ------------------------------------------------------------------------
 * Ping-pong between main and two contexts
 * ------------------------------------------------------------------------ */
static gev__context ctx_a, ctx_b;
static char trace[128];
static size_t ntrace;

static void rec(char who, int step)
{
    if (ntrace + 2 < sizeof trace) {
        trace[ntrace++] = who;
        trace[ntrace++] = (char)('0' + step);
        trace[ntrace] = '\0';
    }
}

/* One side of the ping-pong: it records its steps 0..2, after each
 * switching to the next of `to` (the last switch is final). */
struct pp_side {
    char who;
    gev__context *self, *to[3];
    void *seen;                 /* the argument its entry got */
};
static struct pp_side pp_a = { 'a', &ctx_a, { &ctx_b, &main_ctx, &ctx_b }, NULL };
static struct pp_side pp_b = { 'b', &ctx_b, { &main_ctx, &ctx_a, &main_ctx }, NULL };

static void pp_entry(struct pp_side *side, void *arg)
{
    side->seen = arg;
    for (int step = 0; step < 2; step++) {
        rec(side->who, step);
        gev__context_switch(side->self, side->to[step]);
    }
    rec(side->who, 2);
    gev__context_switch_final(side->self, side->to[2]);
}

static void pp_entry_a(void *arg) { pp_entry(&pp_a, arg); }
static void pp_entry_b(void *arg) { pp_entry(&pp_b, arg); }

static void test_pingpong(void **state)
{
    gev__stack *sa = gev__stack_get(&cache, STACK_256K);
    gev__stack *sb = gev__stack_get(&cache, STACK_256K);
    /* Pointer values with high bits set: the ucontext kind splits them. */
    void *arg_a = (void *)(uintptr_t)UINT64_C(0xfedcba9876543210);
    void *arg_b = &ctx_b;
    (void)state;

    assert_non_null(sa);
    assert_non_null(sb);
    assert_true(sa->lo != sb->lo);
    ntrace = 0;
    trace[0] = '\0';
    gev__context_init_thread(&main_ctx);
    gev__context_init(&ctx_a, sa->lo, sa->size, pp_entry_a, arg_a);
    gev__context_init(&ctx_b, sb->lo, sb->size, pp_entry_b, arg_b);

    rec('M', 0);
    gev__context_switch(&main_ctx, &ctx_a);
    rec('M', 1);
    gev__context_switch(&main_ctx, &ctx_b);
    rec('M', 2);
    gev__context_switch(&main_ctx, &ctx_a);
    rec('M', 3);

    assert_string_equal(trace, "M0a0b0M1b1a1M2a2b2M3");
    assert_ptr_equal(pp_a.seen, arg_a);
    assert_ptr_equal(pp_b.seen, arg_b);
#if GEVTEST_UNDER_ASAN
    /* ASan told us the thread stack's bounds on the first switch away. */
    assert_non_null(main_ctx.stack_lo);
    assert_gt(main_ctx.stack_size, 0);
    assert_true((char *)&sa < (char *)main_ctx.stack_lo + main_ctx.stack_size);
#endif
    gev__stack_put(&cache, sb);
    gev__stack_put(&cache, sa);
}

/* Arguments of many shapes reach entry, each its own. */
struct arg_rec {
    gev__context ctx;
    void *expect, *got;
    int ran;
    uintptr_t frame;
};
static struct arg_rec *arg_current;

static void arg_entry(void *arg)
{
    /* With a frame pointer set up here, the frame address is the stack
     * pointer at entry minus the pushed return address / frame record: a
     * multiple of 16 when the ABI's alignment was kept on the way in. */
    arg_current->frame = (uintptr_t)__builtin_frame_address(0);
    arg_current->got = arg;
    arg_current->ran++;
    gev__context_switch_final(&arg_current->ctx, &main_ctx);
}

static void test_args(void **state)
{
    static int local_obj;
    void *values[] = { NULL, &local_obj, (void *)(uintptr_t)1,
                       (void *)(uintptr_t)UINTPTR_MAX, (void *)(uintptr_t)0x80000000u,
                       (void *)(uintptr_t)0xffffffffu, &main_ctx, (void *)test_args };
    struct arg_rec r;
    (void)state;

    gev__context_init_thread(&main_ctx);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        gev__stack *s = gev__stack_get(&cache, 0);
        assert_non_null(s);
        memset(&r, 0, sizeof r);
        r.expect = values[i];
        r.got = (void *)&r;
        arg_current = &r;
        gev__context_init(&r.ctx, s->lo, s->size, arg_entry, values[i]);
        gev__context_switch(&main_ctx, &r.ctx);
        assert_int_equal(r.ran, 1);
        assert_ptr_equal(r.got, r.expect);
#if defined(__x86_64__) || defined(__aarch64__)
        assert_int_equal(r.frame % 16, 0);
#endif
        assert_true(r.frame > (uintptr_t)s->lo && r.frame < (uintptr_t)s->lo + s->size);
        gev__stack_put(&cache, s);
    }
}

/* ------------------------------------------------------------------------
 * Callee-saved registers survive switches (checked in assembly: the
 * compiler might otherwise keep nothing in them across the call)
 * ------------------------------------------------------------------------ */
/* gev__context_switch may be inline: the assembly below calls it through
 * this out-of-line copy. */
void test_switch_call(gev__context *from, gev__context *to) __attribute__((noinline, used));
void test_switch_call(gev__context *from, gev__context *to)
{
    gev__context_switch(from, to);
}

#if defined(__x86_64__)
#define NREGS 6         /* rbx rbp r12 r13 r14 r15 */
/* void test_regs_switch(from, to, const uint64_t in[NREGS], uint64_t out[NREGS]):
 * loads the callee-saved registers from in[], calls gev__context_switch,
 * stores what they hold afterwards into out[]. */
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl test_regs_switch\n"
    ".type test_regs_switch, @function\n"
    "test_regs_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  pushq %rcx\n"
    "  movq 0(%rdx), %rbx\n  movq 8(%rdx), %rbp\n  movq 16(%rdx), %r12\n"
    "  movq 24(%rdx), %r13\n  movq 32(%rdx), %r14\n  movq 40(%rdx), %r15\n"
    "  call test_switch_call\n"
    "  popq %rcx\n"
    "  movq %rbx, 0(%rcx)\n  movq %rbp, 8(%rcx)\n  movq %r12, 16(%rcx)\n"
    "  movq %r13, 24(%rcx)\n  movq %r14, 32(%rcx)\n  movq %r15, 40(%rcx)\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size test_regs_switch, .-test_regs_switch\n");
#elif defined(__aarch64__)
#define NREGS 18        /* x19-x28, d8-d15 */
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl test_regs_switch\n"
    ".type test_regs_switch, %function\n"
    "test_regs_switch:\n"
    "  stp x29, x30, [sp, #-176]!\n"
    "  mov x29, sp\n"
    "  stp x19, x20, [sp, #16]\n  stp x21, x22, [sp, #32]\n  stp x23, x24, [sp, #48]\n"
    "  stp x25, x26, [sp, #64]\n  stp x27, x28, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n"
    "  stp d12, d13, [sp, #128]\n  stp d14, d15, [sp, #144]\n"
    "  str x3, [sp, #160]\n"
    "  ldp x19, x20, [x2, #0]\n  ldp x21, x22, [x2, #16]\n  ldp x23, x24, [x2, #32]\n"
    "  ldp x25, x26, [x2, #48]\n  ldp x27, x28, [x2, #64]\n"
    "  ldp d8, d9, [x2, #80]\n  ldp d10, d11, [x2, #96]\n"
    "  ldp d12, d13, [x2, #112]\n  ldp d14, d15, [x2, #128]\n"
    "  bl test_switch_call\n"
    "  ldr x3, [sp, #160]\n"
    "  stp x19, x20, [x3, #0]\n  stp x21, x22, [x3, #16]\n  stp x23, x24, [x3, #32]\n"
    "  stp x25, x26, [x3, #48]\n  stp x27, x28, [x3, #64]\n"
    "  stp d8, d9, [x3, #80]\n  stp d10, d11, [x3, #96]\n"
    "  stp d12, d13, [x3, #112]\n  stp d14, d15, [x3, #128]\n"
    "  ldp x19, x20, [sp, #16]\n  ldp x21, x22, [sp, #32]\n  ldp x23, x24, [sp, #48]\n"
    "  ldp x25, x26, [sp, #64]\n  ldp x27, x28, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n"
    "  ldp d12, d13, [sp, #128]\n  ldp d14, d15, [sp, #144]\n"
    "  ldp x29, x30, [sp], #176\n"
    "  ret\n"
    ".size test_regs_switch, .-test_regs_switch\n");
#endif

#ifdef NREGS
void test_regs_switch(gev__context *from, gev__context *to, const uint64_t *in, uint64_t *out);

static gev__context regs_ctx;
static uint64_t regs_child_in[2][NREGS], regs_child_out[2][NREGS];

static void regs_entry(void *arg)
{
    (void)arg;
    test_regs_switch(&regs_ctx, &main_ctx, regs_child_in[0], regs_child_out[0]);
    test_regs_switch(&regs_ctx, &main_ctx, regs_child_in[1], regs_child_out[1]);
    gev__context_switch_final(&regs_ctx, &main_ctx);
}

static void fill_pattern(uint64_t *v, uint64_t seed)
{
    for (int i = 0; i < NREGS; i++)
        v[i] = (seed * UINT64_C(0x9e3779b97f4a7c15)) ^ ((uint64_t)(i + 1) << 56) ^ (uint64_t)i;
}
#endif

static void test_callee_saved(void **state)
{
#ifdef NREGS
    uint64_t in[3][NREGS], out[3][NREGS];
    gev__stack *s = gev__stack_get(&cache, 0);
    (void)state;

    assert_non_null(s);
    fill_pattern(in[0], 1);
    fill_pattern(in[1], 2);
    fill_pattern(in[2], 3);
    fill_pattern(regs_child_in[0], 4);
    fill_pattern(regs_child_in[1], 5);
    memset(out, 0, sizeof out);
    memset(regs_child_out, 0, sizeof regs_child_out);
    gev__context_init_thread(&main_ctx);
    gev__context_init(&regs_ctx, s->lo, s->size, regs_entry, NULL);

    test_regs_switch(&main_ctx, &regs_ctx, in[0], out[0]);   /* child starts */
    test_regs_switch(&main_ctx, &regs_ctx, in[1], out[1]);   /* child resumes */
    test_regs_switch(&main_ctx, &regs_ctx, in[2], out[2]);   /* child finishes */
    for (int i = 0; i < 3; i++)
        assert_memory_equal(out[i], in[i], sizeof in[i]);
    assert_memory_equal(regs_child_out[0], regs_child_in[0], sizeof regs_child_in[0]);
    assert_memory_equal(regs_child_out[1], regs_child_in[1], sizeof regs_child_in[1]);
    gev__stack_put(&cache, s);
#else
    (void)state;
    skip();
#endif
}

/* ------------------------------------------------------------------------
 * Floating point values computed on both sides of switches
 * ------------------------------------------------------------------------ */
static gev__context fp_ctx;
static double fp_child_result;

static double __attribute__((noinline)) fp_series(double x, int n, gev__context *self,
                                                  gev__context *other)
{
    double a = x, b = x * 0.5, c = x + 1.25, d = 1.0 / (x + 3.0);
    for (int i = 0; i < n; i++) {
        a = a * 1.0000001 + b;
        b = b * 0.999 - c * 1e-3;
        c = c + d * a * 1e-6;
        d = d * 0.5 + 0.25;
        gev__context_switch(self, other);
    }
    return a + b + c + d;
}

static double fp_series_plain(double x, int n)
{
    double a = x, b = x * 0.5, c = x + 1.25, d = 1.0 / (x + 3.0);
    for (int i = 0; i < n; i++) {
        a = a * 1.0000001 + b;
        b = b * 0.999 - c * 1e-3;
        c = c + d * a * 1e-6;
        d = d * 0.5 + 0.25;
    }
    return a + b + c + d;
}

static void fp_entry(void *arg)
{
    (void)arg;
    fp_child_result = fp_series(7.5, 100, &fp_ctx, &main_ctx);
    gev__context_switch_final(&fp_ctx, &main_ctx);
}

static void test_float(void **state)
{
    gev__stack *s = gev__stack_get(&cache, 0);
    volatile double seed = 3.25;
    double mine;
    (void)state;

    assert_non_null(s);
    gev__context_init_thread(&main_ctx);
    gev__context_init(&fp_ctx, s->lo, s->size, fp_entry, NULL);
    fp_child_result = 0;
    /* 101 switches from main: the child switches back 100 times, then ends */
    mine = fp_series(seed, 101, &main_ctx, &fp_ctx);
    assert_true(mine == fp_series_plain(seed, 101));
    assert_true(fp_child_result == fp_series_plain(7.5, 100));
    gev__stack_put(&cache, s);
}

/* ------------------------------------------------------------------------
 * Floating-point control state (rounding mode, flush-to-zero) is per context
 * ------------------------------------------------------------------------ */
#if defined(__x86_64__)
#define HAVE_FPCTL 1
typedef struct { unsigned mxcsr; unsigned short cw; } fpctl;
static fpctl fpctl_get(void)
{
    fpctl f;
    __asm__ volatile("stmxcsr %0" : "=m"(f.mxcsr) : : "memory");
    __asm__ volatile("fnstcw %0" : "=m"(f.cw) : : "memory");
    f.mxcsr &= 0xffc0u;         /* control bits only, not the sticky flags */
    return f;
}
static void fpctl_set(fpctl f)
{
    unsigned m;
    __asm__ volatile("stmxcsr %0" : "=m"(m) : : "memory");
    m = (m & 0x3fu) | (f.mxcsr & 0xffc0u);
    __asm__ volatile("ldmxcsr %0" : : "m"(m) : "memory");
    __asm__ volatile("fldcw %0" : : "m"(f.cw) : "memory");
}
static bool fpctl_equal(fpctl a, fpctl b)
{
    if (GEVTEST_ON_VALGRIND)  /* it keeps the rounding bits only */
        return (a.mxcsr & 0x6000u) == (b.mxcsr & 0x6000u) && (a.cw & 0x0c00u) == (b.cw & 0x0c00u);
    return a.mxcsr == b.mxcsr && a.cw == b.cw;
}
/* rounding: 0 nearest, 1 down, 2 up, 3 toward zero */
static fpctl fpctl_make(fpctl base, unsigned rounding, bool ftz)
{
    base.mxcsr = (base.mxcsr & ~0xe000u) | (rounding << 13) | (ftz ? 0x8000u : 0);
    base.cw = (unsigned short)((base.cw & ~0x0c00u) | (rounding << 10));
    return base;
}
#elif defined(__aarch64__)
#define HAVE_FPCTL 1
typedef struct { uint64_t fpcr; } fpctl;
static fpctl fpctl_get(void)
{
    fpctl f;
    __asm__ volatile("mrs %0, fpcr" : "=r"(f.fpcr) : : "memory");
    return f;
}
static void fpctl_set(fpctl f)
{
    __asm__ volatile("msr fpcr, %0" : : "r"(f.fpcr) : "memory");
}
static bool fpctl_equal(fpctl a, fpctl b) { return a.fpcr == b.fpcr; }
/* rounding: 0 nearest, 1 down, 2 up, 3 toward zero (FPCR RMode: N, P, M, Z) */
static fpctl fpctl_make(fpctl base, unsigned rounding, bool ftz)
{
    static const unsigned rmode[4] = { 0, 2, 1, 3 };
    base.fpcr = (base.fpcr & ~(UINT64_C(3) << 22) & ~(UINT64_C(1) << 24)) |
                ((uint64_t)rmode[rounding] << 22) | (ftz ? UINT64_C(1) << 24 : 0);
    return base;
}
#endif

#ifdef HAVE_FPCTL
/* What the arithmetic actually does under the current mode. */
struct fp_effect { double third, neg_third, tiny; };
static struct fp_effect fp_observe(void)
{
    volatile double one = 1.0, three = 3.0, small = 1e-300, smaller = 1e-10;
    volatile double r1, r2, r3;
    struct fp_effect e;
    __asm__ volatile("" : : : "memory");
    r1 = one / three;
    r2 = -one / three;
    r3 = small * smaller;       /* subnormal result: 0 when flushed */
    e.third = r1;
    e.neg_third = r2;
    e.tiny = r3;
    return e;
}

static gev__context fpc_ctx;
static fpctl fpc_child_mode, fpc_child_seen[2], fpc_child_start;
static struct fp_effect fpc_child_effect[2];

static void fpc_entry(void *arg)
{
    (void)arg;
    fpc_child_start = fpctl_get();
    fpctl_set(fpc_child_mode);
    fpc_child_seen[0] = fpctl_get();
    fpc_child_effect[0] = fp_observe();
    gev__context_switch(&fpc_ctx, &main_ctx);
    fpc_child_seen[1] = fpctl_get();
    fpc_child_effect[1] = fp_observe();
    gev__context_switch_final(&fpc_ctx, &main_ctx);
}
#endif

static void test_fp_control(void **state)
{
#ifdef HAVE_FPCTL
    fpctl orig = fpctl_get(), main_mode, start_mode;
    struct fp_effect nearest, up, down, main_seen;
    bool real_fp;
    gev__stack *s = gev__stack_get(&cache, 0);
    (void)state;

    assert_non_null(s);
    nearest = fp_observe();
    fpctl_set(fpctl_make(orig, 2, false));
    up = fp_observe();
    fpctl_set(fpctl_make(orig, 1, false));
    down = fp_observe();
    fpctl_set(orig);
    /* Valgrind computes with round-to-nearest and no flush-to-zero whatever
     * the control registers say: there, only the registers are checked. */
    real_fp = !GEVTEST_ON_VALGRIND;
    /* sanity: the modes make a difference, and FTZ is off by default */
    if (real_fp) {
        assert_true(up.third > nearest.third || up.third > down.third);
        assert_lt(down.third, up.third);
        assert_true(nearest.tiny != 0.0);
    }

    /* The child is created while main rounds toward zero: it inherits that.
     * It then rounds up with flush-to-zero; main meanwhile rounds down. */
    start_mode = fpctl_make(orig, 3, false);
    fpctl_set(start_mode);
    gev__context_init_thread(&main_ctx);
    gev__context_init(&fpc_ctx, s->lo, s->size, fpc_entry, NULL);
    main_mode = fpctl_make(orig, 1, false);
    fpctl_set(main_mode);
    fpc_child_mode = fpctl_make(orig, 2, true);

    gev__context_switch(&main_ctx, &fpc_ctx);
    {
        fpctl now = fpctl_get();
        main_seen = fp_observe();
        fpctl_set(orig);                /* before any assert can bail out */
        assert_true(fpctl_equal(now, main_mode));
        fpctl_set(main_mode);
    }
    if (real_fp) {
        assert_true(main_seen.third == down.third);
        assert_true(main_seen.tiny != 0.0);
    }
    gev__context_switch(&main_ctx, &fpc_ctx);
    {
        fpctl now = fpctl_get();
        fpctl_set(orig);
        assert_true(fpctl_equal(now, main_mode));
    }
    assert_true(fpctl_equal(fpc_child_start, start_mode));
    for (int i = 0; i < 2; i++) {
        assert_true(fpctl_equal(fpc_child_seen[i], fpc_child_mode));
        if (!real_fp)
            continue;
        assert_true(fpc_child_effect[i].third == up.third);
        assert_true(fpc_child_effect[i].neg_third == up.neg_third);
        assert_true(fpc_child_effect[i].tiny == 0.0);       /* flushed */
    }
    gev__stack_put(&cache, s);
#else
    (void)state;
    skip();
#endif
}

/* ------------------------------------------------------------------------
 * 10,000 contexts, 50 alive at a time, on stacks from the cache
 * ------------------------------------------------------------------------ */
#define MANY_TOTAL 10000
#define MANY_ALIVE 50
static gev__context many_ctx[MANY_ALIVE];
static unsigned many_started, many_finished;
static unsigned many_seen[MANY_ALIVE];

static void many_entry(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    volatile char touch[512];
    touch[0] = (char)i;
    touch[511] = touch[0];
    many_started++;
    many_seen[i]++;
    gev__context_switch(&many_ctx[i], &main_ctx);
    many_finished += (touch[511] == (char)i);
    gev__context_switch_final(&many_ctx[i], &main_ctx);
}

static void test_many_contexts(void **state)
{
    gev__stack *st[MANY_ALIVE];
    void *first_round[MANY_ALIVE];
    gev__stack_stats before, after;
    gev__stack_cache c;
    (void)state;

    gev__stack_cache_init(&c);
    assert_int_equal(c.max, 64);
    gev__stack_stats_get(&before);
    gev__context_init_thread(&main_ctx);
    many_started = many_finished = 0;
    memset(many_seen, 0, sizeof many_seen);
    for (int round = 0; round < MANY_TOTAL / MANY_ALIVE; round++) {
        for (size_t i = 0; i < MANY_ALIVE; i++) {
            st[i] = gev__stack_get(&c, 0);
            assert_non_null(st[i]);
            if (round == 0)
                first_round[i] = st[i]->lo;
            else
                /* LIFO: put back in reverse, so the same order comes out */
                assert_ptr_equal(st[i]->lo, first_round[i]);
            gev__context_init(&many_ctx[i], st[i]->lo, st[i]->size, many_entry,
                              (void *)(uintptr_t)i);
            gev__context_switch(&main_ctx, &many_ctx[i]);
        }
        for (size_t i = 0; i < MANY_ALIVE; i++)
            gev__context_switch(&main_ctx, &many_ctx[i]);
        for (size_t i = MANY_ALIVE; i-- > 0;)
            gev__stack_put(&c, st[i]);
        gev__stack_stats_get(&after);
        /* no new mapping after the first round */
        assert_int_equal(after.guarded + after.unguarded,
                         before.guarded + before.unguarded + MANY_ALIVE);
        assert_int_equal(c.count, MANY_ALIVE);
    }
    assert_int_equal(many_started, MANY_TOTAL);
    assert_int_equal(many_finished, MANY_TOTAL);
    for (size_t i = 0; i < MANY_ALIVE; i++)
        assert_int_equal(many_seen[i], MANY_TOTAL / MANY_ALIVE);
    gev__stack_cache_drain(&c);
    assert_int_equal(c.count, 0);
    assert_null(c.head);
    gev__stack_stats_get(&after);
    assert_int_equal(after.guarded, before.guarded);
    assert_int_equal(after.unguarded, before.unguarded);
}

/* The cache: bounded, LIFO, one size. */
static void test_cache_rules(void **state)
{
    gev__stack_cache c;
    gev__stack *v[70], *odd, *again;
    gev__stack_stats before, st;
    long ps = sysconf(_SC_PAGESIZE);
    (void)state;

    gev__stack_cache_init(&c);
    gev__stack_stats_get(&before);
    for (int i = 0; i < 70; i++) {
        v[i] = gev__stack_get(&c, 64 * KiB);
        assert_non_null(v[i]);
        assert_int_equal(v[i]->size, 64 * KiB);
        assert_true(v[i]->guarded);
        assert_true((char *)v[i]->lo == (char *)v[i]->map + ps);
        assert_int_equal(v[i]->map_size, 64 * KiB + (size_t)ps);
        assert_int_equal((uintptr_t)v[i]->lo % (uintptr_t)ps, 0);
    }
    gev__stack_stats_get(&st);
    assert_int_equal(st.guarded, before.guarded + 70);
    for (int i = 0; i < 70; i++)
        gev__stack_put(&c, v[i]);
    assert_int_equal(c.count, 64);      /* 6 were unmapped */
    gev__stack_stats_get(&st);
    assert_int_equal(st.guarded, before.guarded + 64);
    /* LIFO: the last one put comes out first */
    again = gev__stack_get(&c, 64 * KiB);
    assert_ptr_equal(again, v[63]);
    gev__stack_put(&c, again);
    /* another size: a new mapping (rounded up to pages); on put, unmapped */
    odd = gev__stack_get(&c, 100000);
    assert_non_null(odd);
    assert_int_equal(odd->size % (size_t)ps, 0);
    assert_true(odd->size >= 100000 && odd->size < 100000 + (size_t)ps);
    assert_int_equal(c.count, 64);
    gev__stack_put(&c, gev__stack_get(&c, 64 * KiB));   /* keep count at 64 */
    c.max = 100;
    gev__stack_put(&c, odd);
    assert_int_equal(c.count, 64);
    gev__stack_stats_get(&st);
    assert_int_equal(st.guarded, before.guarded + 64);
    /* a cache can be emptied and reused */
    gev__stack_cache_drain(&c);
    gev__stack_stats_get(&st);
    assert_int_equal(st.guarded, before.guarded);
    assert_int_equal(st.unguarded, before.unguarded);
    /* a NULL cache: plain map/unmap */
    odd = gev__stack_get(NULL, 0);
    assert_non_null(odd);
    assert_int_equal(odd->size, gev__stack_default_size());
    gev__stack_put(NULL, odd);
    gev__stack_stats_get(&st);
    assert_int_equal(st.guarded, before.guarded);
}

/* ------------------------------------------------------------------------
 * Deep recursion on a 256 KiB stack
 * ------------------------------------------------------------------------ */
static gev__context deep_ctx;
static char *deep_top;
static size_t deep_max_used, deep_target;
static unsigned long deep_sum;
static int deep_depth;

static unsigned long __attribute__((noinline)) deep_recurse(int depth)
{
    volatile unsigned char buf[1000];
    char *fp = __builtin_frame_address(0);
    size_t used = (size_t)(deep_top - fp);
    unsigned long sum = 0;

    for (size_t i = 0; i < sizeof buf; i += 37)
        buf[i] = (unsigned char)(depth + (int)i);
    if (used > deep_max_used)
        deep_max_used = used;
    if (used < deep_target && depth < 100000) {
        sum = deep_recurse(depth + 1);
    } else {
        deep_depth = depth;
    }
    for (size_t i = 0; i < sizeof buf; i += 37)
        sum += buf[i] == (unsigned char)(depth + (int)i);
    return sum;
}

static void deep_entry(void *arg)
{
    (void)arg;
    deep_sum = deep_recurse(0);
    gev__context_switch_final(&deep_ctx, &main_ctx);
}

static void test_deep_recursion(void **state)
{
    gev__stack *s = gev__stack_get(&cache, STACK_256K);
    (void)state;

    assert_non_null(s);
    assert_int_equal(s->size, STACK_256K);
    deep_top = (char *)s->lo + s->size;
    deep_target = s->size - 24 * KiB;   /* stop within 24 KiB of the guard */
    deep_max_used = 0;
    deep_sum = 0;
    gev__context_init_thread(&main_ctx);
    gev__context_init(&deep_ctx, s->lo, s->size, deep_entry, NULL);
    gev__context_switch(&main_ctx, &deep_ctx);
    assert_ge(deep_max_used, deep_target);
    assert_lt(deep_max_used, s->size);
    assert_int_equal(deep_sum, (unsigned long)(deep_depth + 1) * ((1000 + 36) / 37));
    gev__stack_put(&cache, s);
}

/* ------------------------------------------------------------------------
 * Overflow: a child process runs off the end of a greenlet stack
 * ------------------------------------------------------------------------ */
static gev__stack *ovf_stack;
static gev__context ovf_ctx;
static volatile int ovf_stop = -1;

static const char *ovf_describe(void *addr, size_t *size)
{
    char *a = addr;
    if (ovf_stack && a >= (char *)ovf_stack->map && a < (char *)ovf_stack->lo) {
        *size = ovf_stack->size;
        return "overflower";
    }
    return NULL;
}

static int __attribute__((noinline)) ovf_recurse(volatile char *prev, int depth)
{
    volatile char buf[200];
    buf[0] = (char)depth;
    buf[199] = prev ? prev[0] : 0;
    if (depth == ovf_stop)
        return 0;
    return ovf_recurse(buf, depth + 1) + buf[depth % 200];   /* not a tail call */
}

static void ovf_entry(void *arg)
{
    (void)arg;
    ovf_recurse(NULL, 0);
    gev__context_switch_final(&ovf_ctx, &main_ctx);
}

static void overflow_run(void)
{
    gev__context thread_ctx;

    if (gev__stack_guard_thread_init(ovf_describe) != 0)
        _exit(3);
    ovf_stack = gev__stack_get(NULL, STACK_256K);
    if (!ovf_stack || !ovf_stack->guarded)
        _exit(4);
    gev__context_init_thread(&thread_ctx);
    gev__context_init(&ovf_ctx, ovf_stack->lo, ovf_stack->size, ovf_entry, NULL);
    gev__context_switch(&thread_ctx, &ovf_ctx);
    _exit(5);
}

static int overflow_child(void *arg)
{
    (void)arg;
    overflow_run();
    return 9;       /* not reached */
}

static const char overflow_msg[] =
    "gev: stack overflow in greenlet overflower (stack size 262144)\n";

static void test_overflow_reported(void **state)
{
    char err[8192];
    (void)state;

    int status = gevtest_fork_capture(overflow_child, NULL, err, sizeof err);
    gevtest_assert_killed_saying(status, SIGABRT, err, overflow_msg);
    /* first on stderr (valgrind and qemu may add their own words after) */
    if (!GEVTEST_ON_VALGRIND)
        assert_memory_equal(err, overflow_msg, strlen(overflow_msg));
}

/* The same on another thread: each thread needs its own signal stack. */
static void *overflow_thread(void *arg)
{
    (void)arg;
    overflow_run();
    return NULL;
}

static int overflow_thread_child(void *arg)
{
    pthread_t t;
    /* the main thread has a signal stack too; the fault is not there */
    if (gev__stack_guard_thread_init(ovf_describe) != 0)
        _exit(6);
    if (pthread_create(&t, NULL, overflow_thread, arg) != 0)
        _exit(7);
    pthread_join(t, NULL);
    return 8;
}

static void test_overflow_reported_thread(void **state)
{
    char err[8192];
    (void)state;

    int status = gevtest_fork_capture(overflow_thread_child, NULL, err, sizeof err);
    gevtest_assert_killed_saying(status, SIGABRT, err, overflow_msg);
}

/* A fault that is not a stack overflow still crashes as usual... */
static void wild_fault(void)
{
    volatile char *p;
    if (gev__stack_guard_thread_init(ovf_describe) != 0)
        _exit(3);
    p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((void *)p == MAP_FAILED)
        _exit(4);
#ifdef VALGRIND_DISABLE_ERROR_REPORTING
    VALGRIND_DISABLE_ERROR_REPORTING;      /* the fault is on purpose */
#endif
    p[10] = 1;
    _exit(5);
}

static int wild_fault_child(void *arg)
{
    (void)arg;
    wild_fault();
    return 9;       /* not reached */
}

/* ... or reaches the handler that was there before. */
static void prev_handler(int sig)
{
    (void)sig;
#ifdef VALGRIND_ENABLE_ERROR_REPORTING
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
    _exit(42);
}

static int chained_fault_child(void *arg)
{
    struct sigaction sa;
    (void)arg;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prev_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    wild_fault();
    return 9;       /* not reached */
}

/* A program whose own handler recovers from faults (a GC, a JIT) keeps it
 * working under ours, and ours stays installed for the next overflow. */
static sigjmp_buf recover_jmp;
static int recovered;

static void recovering_handler(int sig)
{
    (void)sig;
    recovered++;
    siglongjmp(recover_jmp, 1);
}

static int recovering_fault_child(void *arg)
{
    struct sigaction sa, now;
    (void)arg;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = recovering_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    if (gev__stack_guard_thread_init(ovf_describe) != 0)
        _exit(3);
    volatile char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((void *)p == MAP_FAILED)
        _exit(4);
#ifdef VALGRIND_DISABLE_ERROR_REPORTING
    VALGRIND_DISABLE_ERROR_REPORTING;
#endif
    for (int i = 0; i < 2; i++)
        if (sigsetjmp(recover_jmp, 1) == 0)
            p[0] = 1;
#ifdef VALGRIND_ENABLE_ERROR_REPORTING
    VALGRIND_ENABLE_ERROR_REPORTING;
#endif
    sigaction(SIGSEGV, NULL, &now);
    bool ours = (now.sa_flags & SA_SIGINFO) && now.sa_sigaction != NULL &&
                (void *)now.sa_handler != (void *)recovering_handler;
    return recovered == 2 && ours ? 43 : 5;
}

static void test_other_faults(void **state)
{
    char err[8192];
    int status;
    (void)state;

    status = gevtest_fork_capture(wild_fault_child, NULL, err, sizeof err);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    assert_null(strstr(err, "gev:"));
    status = gevtest_fork_capture(chained_fault_child, NULL, err, sizeof err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    assert_null(strstr(err, "gev:"));
    status = gevtest_fork_capture(recovering_fault_child, NULL, err, sizeof err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 43);
    assert_null(strstr(err, "gev:"));
}

/* The alternate signal stack is per thread and freed at exit. */
static void test_guard_thread_init_exit(void **state)
{
    stack_t before, ss;
    struct sigaction prev_segv, sa;
    (void)state;

    sigaction(SIGSEGV, NULL, &prev_segv);
    assert_int_equal(sigaltstack(NULL, &before), 0);
    assert_int_equal(gev__stack_guard_thread_init(ovf_describe), 0);
    assert_int_equal(sigaltstack(NULL, &ss), 0);
    assert_false(ss.ss_flags & SS_DISABLE);
    if (before.ss_flags & SS_DISABLE) {
        assert_ge(ss.ss_size, 64 * KiB);
    } else {
        /* one was there already (ASan makes one): it is kept */
        assert_ptr_equal(ss.ss_sp, before.ss_sp);
    }
    assert_int_equal(sigaction(SIGSEGV, NULL, &sa), 0);
    assert_true(sa.sa_flags & SA_ONSTACK);
    assert_true(sa.sa_flags & SA_SIGINFO);
    assert_int_equal(gev__stack_guard_thread_init(ovf_describe), 0);    /* idempotent */
    gev__stack_guard_thread_exit();
    assert_int_equal(sigaltstack(NULL, &ss), 0);
    if (before.ss_flags & SS_DISABLE)
        assert_true(ss.ss_flags & SS_DISABLE);
    else
        assert_ptr_equal(ss.ss_sp, before.ss_sp);
    gev__stack_guard_thread_exit();     /* harmless twice */
    sigaction(SIGSEGV, &prev_segv, NULL);
}

/* ------------------------------------------------------------------------
 * 40,000 stacks alive at once (past the guarded share of vm.max_map_count)
 * ------------------------------------------------------------------------ */
#define MASS_MAX 40000
static void test_mass_stacks(void **state)
{
    /* Valgrind tracks at most some tens of thousands of mappings itself */
    const size_t MASS = GEVTEST_ON_VALGRIND ? 10000 : MASS_MAX;
    gev__stack **v = calloc(MASS, sizeof *v);
    gev__stack_stats before, st = { 0 };
    size_t made = 0, guarded = 0;
    long maps = max_map_count();
    (void)state;

    assert_non_null(v);
    gev__stack_stats_get(&before);
    for (; made < MASS; made++) {
        v[made] = gev__stack_get(NULL, 0);
        if (!v[made])
            break;
        guarded += v[made]->guarded;
    }
    gev__stack_stats_get(&st);
    if (made != MASS)
        print_error("only %zu stacks (errno %d)\n", made, errno);
    assert_int_equal(made, MASS);
    assert_int_equal(st.guarded + st.unguarded, before.guarded + before.unguarded + MASS);
    assert_int_equal(st.guarded - before.guarded, guarded);
    if (st.guard_markers)       /* guards cost no mapping: all guarded */
        assert_int_equal(st.unguarded, before.unguarded);
    else if (maps < 2 * (long)MASS)
        assert_gt(st.unguarded, before.unguarded);  /* the fallback kicked in */
    /* all usable, at both ends */
    for (size_t i = 0; i < MASS; i += 97) {
        volatile char *lo = v[i]->lo, *hi = (char *)v[i]->lo + v[i]->size - 1;
        *lo = 1;
        *hi = 2;
        assert_int_equal(*lo + *hi, 3);
    }
    /* and a context runs on an unguarded one */
    if (!v[MASS - 1]->guarded) {
        gev__stack *s = v[MASS - 1];
        deep_top = (char *)s->lo + s->size;
        deep_target = s->size / 2;
        deep_max_used = 0;
        gev__context_init_thread(&main_ctx);
        gev__context_init(&deep_ctx, s->lo, s->size, deep_entry, NULL);
        gev__context_switch(&main_ctx, &deep_ctx);
        assert_ge(deep_max_used, deep_target);
    }
    while (made)
        gev__stack_put(NULL, v[--made]);
    gev__stack_stats_get(&st);
    assert_int_equal(st.guarded, before.guarded);
    assert_int_equal(st.unguarded, before.unguarded);
    free(v);
}

/* ------------------------------------------------------------------------ */
static int group_setup(void **state)
{
    (void)state;
    gev__stack_cache_init(&cache);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    gev__stack_cache_drain(&cache);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stack_size_env),
        cmocka_unit_test(test_fallback_report),
        cmocka_unit_test(test_pingpong),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_callee_saved),
        cmocka_unit_test(test_float),
        cmocka_unit_test(test_fp_control),
        cmocka_unit_test(test_many_contexts),
        cmocka_unit_test(test_cache_rules),
        cmocka_unit_test(test_deep_recursion),
        cmocka_unit_test(test_overflow_reported),
        cmocka_unit_test(test_overflow_reported_thread),
        cmocka_unit_test(test_other_faults),
        cmocka_unit_test(test_guard_thread_init_exit),
        cmocka_unit_test(test_mass_stacks),
    };

    unsetenv("GEV_STACK_SIZE");
    unsetenv("GEV_DEBUG");
    run_probes();       /* before this process reads either */
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
