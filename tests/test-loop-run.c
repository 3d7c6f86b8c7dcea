/* tests/test-loop-run.c: gev__loop_run() modes, references, the cached
 * clock, the iteration counter and the backend's name. */
#include "config.h"

#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"
#include "gevtest.h"

#ifndef GEV_BACKEND_NAME
#error "config.h must define GEV_BACKEND_NAME"
#endif

/* -- recording watchers ---------------------------------------------------- */

typedef struct rec {
    int id;
    gevtest_rec *log;
    int calls;
    uint64_t iter;
    gev__nsec now;
    gev__nsec spin;         /* busy-wait this long in the callback */
    bool restart_zero;      /* timers: restart with 0 s */
} rec;

static void rec_hit(gev__loop *loop, rec *r)
{
    r->calls++;
    r->iter = gev__loop_iteration(loop);
    r->now = gev__loop_now(loop);
    if (r->log != NULL)
        gevtest_rec_push(r->log, r->id);
    if (r->spin > 0)
        gevtest_spin_ns(r->spin);
}

typedef struct { gev__timer t; rec r; } rtimer;
typedef struct { gev__io w; rec r; } rio;

static void rtimer_cb(gev__loop *loop, gev__timer *t)
{
    rtimer *x = t->base.data;
    rec_hit(loop, &x->r);
    if (x->r.restart_zero)
        gevtest_timer_start(loop, t, 0);
}

static void rio_cb(gev__loop *loop, gev__io *w, int revents)
{
    (void)revents;
    rio *x = w->base.data;
    rec_hit(loop, &x->r);
}

static void rtimer_init(rtimer *x, int id, gevtest_rec *log)
{
    memset(x, 0, sizeof *x);
    gev__timer_init(&x->t, rtimer_cb);
    x->t.base.data = x;
    x->r.id = id;
    x->r.log = log;
}

static void rio_init(rio *x, int id, gevtest_rec *log, int fd, int events)
{
    memset(x, 0, sizeof *x);
    gev__io_init(&x->w, rio_cb, fd, events);
    x->w.base.data = x;
    x->r.id = id;
    x->r.log = log;
}

static gev__nsec elapsed_since(gev__nsec t0)
{
    return gev__time_monotonic() - t0;
}

/* -- the backend ------------------------------------------------------------- */

static void test_backend_name_and_version(void **state)
{
    (void)state;
    const char *name = gev__backend_name();
    assert_non_null(name);
    assert_string_equal(name, GEV_BACKEND_NAME);
    assert_true(strcmp(name, "libev") == 0 || strcmp(name, "libevent") == 0);
    const char *v = gev__backend_version();
    assert_non_null(v);
    assert_gt(strlen(v), 0);
    assert_true(isdigit((unsigned char)v[0]));
    assert_non_null(strchr(v, '.'));            /* MAJOR.MINOR... */
}

/* -- modes -------------------------------------------------------------------------- */

static void test_empty_loop(void **state)
{
    gev__loop *loop = *state;
    assert_false(gev__loop_alive(loop));
    assert_int_equal(gev__loop_iteration(loop), 0);
    assert_int_equal(gev__loop_timer_count(loop), 0);
    gev__nsec now = gev__loop_now(loop);
    assert_true(now > 0 && now <= gev__time_monotonic());   /* valid before any run */
    gev__nsec t0 = gev__time_monotonic();
    assert_int_equal(gevtest_run_all(loop), 0);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_ONCE), 0);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_lt(elapsed_since(t0), GEVTEST_MS(1000));
}

static void test_unref_timer_does_not_keep_run_alive(void **state)
{
    gev__loop *loop = *state;
    rtimer long_t, short_t;
    rtimer_init(&long_t, 1, NULL);
    rtimer_init(&short_t, 2, NULL);
    gev__watcher_set_ref(loop, &long_t.t.base, false);     /* before start */
    gev__nsec t0 = gev__time_monotonic();
    gev__loop_update_now(loop);
    gevtest_timer_start(loop, &long_t.t, 10 * GEV__NSEC_PER_SEC);
    assert_false(gev__loop_alive(loop));
    gevtest_timer_start(loop, &short_t.t, GEVTEST_MS(5));
    assert_true(gev__loop_alive(loop));
    assert_int_equal(gevtest_run_all(loop), 0);
    gev__nsec dt = elapsed_since(t0);
    assert_int_equal(short_t.r.calls, 1);
    assert_int_equal(long_t.r.calls, 0);
    assert_true(long_t.t.base.active);          /* still there, just unref'd */
    assert_ge(dt, GEVTEST_MS(5));
    assert_lt(dt, GEVTEST_MS(2000));
    assert_false(gev__loop_alive(loop));
    gev__timer_stop(loop, &long_t.t);
    assert_int_equal(gev__loop_timer_count(loop), 0);
}

static void test_unref_watcher_still_fires(void **state)
{
    gev__loop *loop = *state;
    int sv[2];
    gevtest_socketpair(sv);
    rtimer quick, keep;
    rio io;
    rtimer_init(&quick, 1, NULL);
    rtimer_init(&keep, 2, NULL);
    rio_init(&io, 3, NULL, sv[0], GEV__READ);
    gevtest_timer_start(loop, &quick.t, GEVTEST_MS(1));
    gev__watcher_set_ref(loop, &quick.t.base, false);       /* while active */
    assert_int_equal(gev__io_start(loop, &io.w), 0);
    gev__watcher_set_ref(loop, &io.w.base, false);
    assert_false(gev__loop_alive(loop));
    assert_true(gevtest_write_byte(sv[1]));
    gevtest_timer_start(loop, &keep.t, GEVTEST_MS(50));
    assert_int_equal(gevtest_run_all(loop), 0);  /* io: unref'd */
    assert_int_equal(quick.r.calls, 1);
    assert_ge(io.r.calls, 1);
    assert_int_equal(keep.r.calls, 1);
    gev__io_stop(loop, &io.w);
    gevtest_close_pair(sv);
}

static void test_alive_and_ref_flags(void **state)
{
    gev__loop *loop = *state;
    rtimer a, b;
    rtimer_init(&a, 1, NULL);
    rtimer_init(&b, 2, NULL);
    assert_false(gev__loop_alive(loop));
    gevtest_timer_start(loop, &a.t, 10 * GEV__NSEC_PER_SEC);
    assert_true(gev__loop_alive(loop));
    gev__watcher_set_ref(loop, &a.t.base, false);
    assert_false(gev__loop_alive(loop));
    gev__watcher_set_ref(loop, &a.t.base, false);           /* a flag, not a counter */
    gev__watcher_set_ref(loop, &a.t.base, true);
    assert_true(gev__loop_alive(loop));
    gev__watcher_set_ref(loop, &a.t.base, true);
    gev__watcher_set_ref(loop, &a.t.base, false);
    assert_false(gev__loop_alive(loop));

    gevtest_timer_start(loop, &b.t, 10 * GEV__NSEC_PER_SEC);
    assert_true(gev__loop_alive(loop));
    gev__timer_stop(loop, &a.t);                /* stopping an unref'd one */
    assert_true(gev__loop_alive(loop));
    gev__timer_stop(loop, &b.t);
    assert_false(gev__loop_alive(loop));
    gevtest_timer_start(loop, &a.t, 10 * GEV__NSEC_PER_SEC);  /* keeps its flag */
    assert_false(gev__loop_alive(loop));
    assert_int_equal(gev__loop_run(loop, GEV__RUN_ONCE), 0);
    gev__timer_stop(loop, &a.t);
    assert_false(gev__loop_alive(loop));
}

static void test_run_return_values(void **state)
{
    gev__loop *loop = *state;
    rtimer a, b;
    rtimer_init(&a, 1, NULL);
    rtimer_init(&b, 2, NULL);
    gev__loop_update_now(loop);
    gevtest_timer_start(loop, &a.t, 0);
    gevtest_timer_start(loop, &b.t, GEVTEST_MS(50));
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 1);   /* b left */
    assert_int_equal(a.r.calls, 1);
    assert_true(gevtest_run_until(loop, &b.r.calls, 1, 2000));
    assert_int_equal(gev__loop_run(loop, GEV__RUN_ONCE), 0);
    gevtest_timer_start(loop, &a.t, GEVTEST_MS(3));
    assert_int_equal(gevtest_run_all(loop), 0);  /* until the last fired */
    assert_int_equal(a.r.calls, 2);
}

/* One RUN_ONCE iteration with a timer due `after` from now: it fires in
 * that iteration, not before its time. */
static void assert_one_iteration_fires(gev__loop *loop, gev__nsec after)
{
    rtimer a;
    rtimer_init(&a, 1, NULL);
    gev__nsec t0 = gev__time_monotonic();
    gev__loop_update_now(loop);
    gevtest_timer_start(loop, &a.t, after);
    uint64_t it = gev__loop_iteration(loop);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_ONCE), 0);
    assert_int_equal(gev__loop_iteration(loop), it + 1);
    assert_int_equal(a.r.calls, 1);         /* one iteration was enough */
    assert_ge(elapsed_since(t0), after);
}

static void test_once_waits_for_the_timer(void **state)
{
    for (int round = 0; round < 5; round++)
        assert_one_iteration_fires(*state, GEVTEST_MS(20));
}

static void on_foreign_signal(int sig) { (void)sig; }

/* A signal the loop does not watch interrupts the wait (libev then ends
 * its round, libevent recounts from its coarse clock): the iteration still
 * waits until the timer is due.  (A POSIX timer with SIGUSR2, so the
 * case's SIGALRM watchdog stays armed.) */
static void test_once_waits_through_a_foreign_signal(void **state)
{
    gev__loop *loop = *state;
    struct sigaction sa = { .sa_handler = on_foreign_signal }, old;
    assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
    timer_t interrupter;
    assert_int_equal(timer_create(CLOCK_MONOTONIC, &sev, &interrupter), 0);
    for (int round = 0; round < 3; round++) {
        struct itimerspec in_5ms = { .it_value = { .tv_nsec = 5000000 } };
        assert_int_equal(timer_settime(interrupter, 0, &in_5ms, NULL), 0);
        assert_one_iteration_fires(loop, GEVTEST_MS(40));
    }
    assert_int_equal(timer_delete(interrupter), 0);
    assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
}

/* What would keep a blocking run waiting: a timer 10 s away and a reader
 * of a socket nobody writes to (until the case does, through sv[1]). */
typedef struct { int sv[2]; rtimer t; rio io; } idle_watchers;

static void idle_start(gev__loop *loop, idle_watchers *x)
{
    gevtest_socketpair(x->sv);
    rtimer_init(&x->t, 1, NULL);
    rio_init(&x->io, 2, NULL, x->sv[0], GEV__READ);
    gevtest_timer_start(loop, &x->t.t, 10 * GEV__NSEC_PER_SEC);
    assert_int_equal(gev__io_start(loop, &x->io.w), 0);
}

static void idle_stop(gev__loop *loop, idle_watchers *x)
{
    gev__timer_stop(loop, &x->t.t);
    gev__io_stop(loop, &x->io.w);
    gevtest_close_pair(x->sv);
}

static void test_nowait_never_blocks(void **state)
{
    gev__loop *loop = *state;
    idle_watchers x;
    idle_start(loop, &x);
    gev__nsec t0 = gev__time_monotonic();
    uint64_t it = gev__loop_iteration(loop);
    for (int i = 0; i < 100; i++)
        assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 1);
    assert_lt(elapsed_since(t0), GEVTEST_MS(2000));
    assert_int_equal(gev__loop_iteration(loop), it + 100);
    assert_int_equal(x.t.r.calls + x.io.r.calls, 0);
    idle_stop(loop, &x);
}

static void test_once_with_nothing_referenced_does_not_block(void **state)
{
    gev__loop *loop = *state;
    idle_watchers x;
    idle_start(loop, &x);
    gev__watcher_set_ref(loop, &x.t.t.base, false);
    gev__watcher_set_ref(loop, &x.io.w.base, false);
    gev__nsec t0 = gev__time_monotonic();
    uint64_t it = gev__loop_iteration(loop);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_ONCE), 0);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_ONCE), 0);
    assert_lt(elapsed_since(t0), GEVTEST_MS(1000));
    assert_int_equal(gev__loop_iteration(loop), it + 2);
    assert_true(gevtest_write_byte(x.sv[1]));        /* unref'd io still dispatched */
    assert_int_equal(gev__loop_run(loop, GEV__RUN_ONCE), 0);
    assert_int_equal(x.io.r.calls, 1);
    idle_stop(loop, &x);
}

/* -- the cached clock and the iteration counter ---------------------------------------- */

static void test_now_is_cached_within_a_batch(void **state)
{
    gev__loop *loop = *state;
    rtimer a, b;
    rtimer_init(&a, 1, NULL);
    rtimer_init(&b, 2, NULL);
    a.r.spin = GEVTEST_MS(3);                        /* real time moves on ... */
    gevtest_timer_start(loop, &a.t, 0);
    gevtest_timer_start(loop, &b.t, 0);
    gev__loop_run(loop, GEV__RUN_NOWAIT);
    assert_int_equal(a.r.calls, 1);
    assert_int_equal(b.r.calls, 1);
    assert_int_equal(b.r.now, a.r.now);         /* ... the cached now does not */
    assert_int_equal(gev__loop_now(loop), a.r.now);
    assert_ge(gev__time_monotonic() - a.r.now, GEVTEST_MS(3));

    gev__nsec n1 = gev__loop_now(loop);
    gevtest_spin_ns(GEVTEST_MS(2));
    assert_int_equal(gev__loop_now(loop), n1);
    gev__nsec n2 = gev__loop_update_now(loop);
    assert_ge(n2 - n1, GEVTEST_MS(2));
    assert_int_equal(gev__loop_now(loop), n2);
    assert_le(n2, gev__time_monotonic());

    gevtest_sleep_ns(GEVTEST_MS(2));                      /* each iteration reads it again */
    gev__loop_run(loop, GEV__RUN_NOWAIT);
    assert_ge(gev__loop_now(loop) - n2, GEVTEST_MS(2));
}

static void test_now_read_after_the_poll(void **state)
{
    gev__loop *loop = *state;
    int sv[2];
    gevtest_socketpair(sv);
    rio io;
    rio_init(&io, 1, NULL, sv[0], GEV__READ);
    rtimer t;
    rtimer_init(&t, 2, NULL);
    assert_int_equal(gev__io_start(loop, &io.w), 0);
    gev__nsec n0 = gev__loop_update_now(loop);
    gevtest_timer_start(loop, &t.t, 0);
    gevtest_sleep_ns(GEVTEST_MS(3));
    assert_true(gevtest_write_byte(sv[1]));
    gev__loop_run(loop, GEV__RUN_ONCE);
    assert_int_equal(io.r.calls, 1);
    assert_int_equal(t.r.calls, 1);
    assert_int_equal(io.r.now, n0);             /* IO runs during the poll */
    assert_ge(t.r.now - n0, GEVTEST_MS(3));      /* timers after the update */
    gev__io_stop(loop, &io.w);
    gevtest_close_pair(sv);
}

static void test_iteration_counter(void **state)
{
    gev__loop *loop = *state;
    assert_int_equal(gev__loop_iteration(loop), 0);
    gev__loop_run(loop, GEV__RUN_NOWAIT);
    assert_int_equal(gev__loop_iteration(loop), 1);
    gev__loop_run(loop, GEV__RUN_ONCE);
    assert_int_equal(gev__loop_iteration(loop), 2);


    rtimer zero;                                /* restarts itself with 0 s */
    rtimer_init(&zero, 1, NULL);
    zero.r.restart_zero = true;
    gevtest_timer_start(loop, &zero.t, 0);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(gev__loop_run(loop, GEV__RUN_ONCE), 1);
        assert_int_equal(zero.r.calls, i);
        assert_int_equal(zero.r.iter, (uint64_t)2 + i);    /* its callback sees the new count */
    }
    assert_int_equal(gev__loop_iteration(loop), 7);
    gev__timer_stop(loop, &zero.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GEVTEST_CASE(test_backend_name_and_version),
        GEVTEST_CASE(test_empty_loop),
        GEVTEST_CASE(test_unref_timer_does_not_keep_run_alive),
        GEVTEST_CASE(test_unref_watcher_still_fires),
        GEVTEST_CASE(test_alive_and_ref_flags),
        GEVTEST_CASE(test_run_return_values),
        GEVTEST_CASE(test_once_waits_for_the_timer),
        GEVTEST_CASE(test_once_waits_through_a_foreign_signal),
        GEVTEST_CASE(test_nowait_never_blocks),
        GEVTEST_CASE(test_once_with_nothing_referenced_does_not_block),
        GEVTEST_CASE(test_now_is_cached_within_a_batch),
        GEVTEST_CASE(test_now_read_after_the_poll),
        GEVTEST_CASE(test_iteration_counter),
    };
    return cmocka_run_group_tests_name("loop-run", tests, NULL, NULL);
}
