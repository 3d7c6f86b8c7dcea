/* tests/test-loop-async.c: gev__async_send(), the one thread-safe call.
 *
 * A send from another thread (or a signal handler) wakes a blocked loop;
 * sends before the callback runs coalesce into one call; no wake-up is lost
 * under concurrent senders; a stopped watcher gets nothing. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"
#include "gevtest.h"

typedef struct ra {
    gev__async a;
    int calls;
    int wrong_thread;
    pthread_t loop_thread;
    atomic_int *observe;    /* if set: the largest value seen in a callback */
    int observed;
    int resend;             /* re-send from the callback this many times */
    uint64_t iter;
} ra;

static void ra_cb(gev__loop *loop, gev__async *a)
{
    ra *r = a->base.data;
    r->calls++;
    r->iter = gev__loop_iteration(loop);
    if (!pthread_equal(pthread_self(), r->loop_thread))
        r->wrong_thread++;
    if (r->observe != NULL) {
        int v = atomic_load(r->observe);
        if (v > r->observed)
            r->observed = v;
    }
    if (r->resend > 0) {
        r->resend--;
        gev__async_send(loop, a);
    }
}

static void ra_init(ra *r)
{
    memset(r, 0, sizeof *r);
    gev__async_init(&r->a, ra_cb);
    r->a.base.data = r;
    r->loop_thread = pthread_self();
}

/* Run ONCE, bounded by a watchdog timer; returns the elapsed time. */
static gev__nsec run_once_bounded(gev__loop *loop, int timeout_ms)
{
    gev__timer wd;
    gev__timer_init(&wd, gevtest__watchdog_cb);
    gev__loop_update_now(loop);
    gevtest_timer_start(loop, &wd, GEVTEST_MS(timeout_ms));
    gev__nsec t0 = gev__time_monotonic();
    assert_ge(gev__loop_run(loop, GEV__RUN_ONCE), 0);
    gev__nsec dt = gev__time_monotonic() - t0;
    gev__timer_stop(loop, &wd);
    return dt;
}

/* -- another thread ------------------------------------------------------ */

typedef struct {
    gev__loop *loop;
    gev__async *a;
    int delay_ms;
    int count;
    atomic_int *counter;
} sender;

static void *sender_main(void *arg)
{
    sender *s = arg;
    if (s->delay_ms > 0)
        gevtest_sleep_ns(GEVTEST_MS(s->delay_ms));
    for (int i = 0; i < s->count; i++) {
        if (s->counter != NULL)
            atomic_fetch_add(s->counter, 1);
        gev__async_send(s->loop, s->a);
    }
    return NULL;
}

static void test_send_from_thread_wakes_blocked_run(void **state)
{
    gev__loop *loop = *state;
    ra r;
    ra_init(&r);
    gev__async_start(loop, &r.a);
    assert_true(r.a.base.active);
    sender s = { loop, &r.a, 50, 1, NULL };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sender_main, &s), 0);
    gev__nsec dt = run_once_bounded(loop, 5000);
    pthread_join(th, NULL);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.wrong_thread, 0);        /* in the loop thread */
    assert_lt(dt, GEVTEST_MS(4000));              /* the send woke it, not the watchdog */
    gev__async_stop(loop, &r.a);
    assert_false(r.a.base.active);
}

static void test_sends_before_run_coalesce(void **state)
{
    gev__loop *loop = *state;
    ra r;
    ra_init(&r);
    gev__async_start(loop, &r.a);
    for (int i = 0; i < 1000; i++)
        gev__async_send(loop, &r.a);
    assert_int_equal(r.calls, 0);               /* never inside send */
    run_once_bounded(loop, 2000);
    assert_int_equal(r.calls, 1);
    for (int i = 0; i < 3; i++)
        gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);

    sender s = { loop, &r.a, 0, 1000, NULL };   /* the same from another thread */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sender_main, &s), 0);
    pthread_join(th, NULL);
    run_once_bounded(loop, 2000);
    for (int i = 0; i < 3; i++)
        gevtest_nowait(loop);
    assert_int_equal(r.calls, 2);
    gev__async_stop(loop, &r.a);
}

typedef struct { ra *r; int total; } observed_arg;

static bool observed_all(void *arg)
{
    observed_arg *o = arg;
    return o->r->observed >= o->total;
}

static void test_four_threads_no_lost_wakeup(void **state)
{
    gev__loop *loop = *state;
    enum { THREADS = 4, PER = 10000 };
    atomic_int counter = 0;
    ra r;
    ra_init(&r);
    r.observe = &counter;
    gev__async_start(loop, &r.a);
    sender s[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        s[i] = (sender){ loop, &r.a, 0, PER, &counter };
        assert_int_equal(pthread_create(&th[i], NULL, sender_main, &s[i]), 0);
    }
    observed_arg o = { &r, THREADS * PER };
    bool ok = gevtest_run_until_pred(loop, observed_all, &o, 8000);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    /* every increment happens before its send: a callback after the last
     * send must see the full count */
    assert_true(ok);
    assert_int_equal(r.observed, THREADS * PER);
    assert_true(r.calls >= 1 && r.calls <= THREADS * PER);
    assert_int_equal(r.wrong_thread, 0);
    gev__async_stop(loop, &r.a);
}

static void test_send_wakes_only_its_watcher(void **state)
{
    gev__loop *loop = *state;
    enum { N = 100 };
    ra *rs = calloc(N, sizeof *rs);
    assert_non_null(rs);
    for (int i = 0; i < N; i++) {
        ra_init(&rs[i]);
        gev__async_start(loop, &rs[i].a);
    }
    for (int i = 0; i < N; i += 3)
        gev__async_send(loop, &rs[i].a);
    run_once_bounded(loop, 2000);
    gevtest_nowait(loop);
    for (int i = 0; i < N; i++)
        assert_int_equal(rs[i].calls, i % 3 == 0 ? 1 : 0);
    gev__async_send(loop, &rs[1].a);
    gev__async_send(loop, &rs[2].a);
    run_once_bounded(loop, 2000);
    gevtest_nowait(loop);
    for (int i = 0; i < N; i++)
        assert_int_equal(rs[i].calls, (i % 3 == 0 || i == 1 || i == 2) ? 1 : 0);
    for (int i = 0; i < N; i++)
        gev__async_stop(loop, &rs[i].a);
    free(rs);
}

static void test_stopped_async_gets_no_callback(void **state)
{
    gev__loop *loop = *state;
    ra r, keep;
    ra_init(&r);
    ra_init(&keep);
    gev__async_start(loop, &keep.a);            /* keeps ONCE from returning at once */
    gev__async_start(loop, &r.a);
    gev__async_stop(loop, &r.a);
    gev__async_send(loop, &r.a);                /* sent while stopped */
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 0);

    gev__async_start(loop, &r.a);
    gev__async_send(loop, &r.a);                /* pending, then stopped */
    gev__async_stop(loop, &r.a);
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 0);

    gev__async_start(loop, &r.a);               /* and it works again */
    gev__async_send(loop, &r.a);
    run_once_bounded(loop, 2000);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);
    assert_int_equal(keep.calls, 0);
    gev__async_stop(loop, &r.a);
    gev__async_stop(loop, &keep.a);
}

/* -- signal handlers ---------------------------------------------------------- */

static gev__loop *g_loop;
static gev__async *g_async;

static void alarm_handler(int sig)
{
    (void)sig;
    int saved = errno;
    gev__async_send(g_loop, g_async);
    errno = saved;
}

typedef struct { pthread_t target; } killer;

static void *killer_main(void *arg)
{
    killer *k = arg;
    gevtest_sleep_ns(GEVTEST_MS(50));
    pthread_kill(k->target, SIGALRM);
    return NULL;
}

static void test_send_from_signal_handler(void **state)
{
    gev__loop *loop = *state;
    ra r;
    ra_init(&r);
    gev__async_start(loop, &r.a);
    g_loop = loop;
    g_async = &r.a;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alarm_handler;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);

    raise(SIGALRM);                             /* outside the loop */
    run_once_bounded(loop, 2000);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);

    /* inside the poll: interrupts it (EINTR) and must still be delivered */
    killer k = { pthread_self() };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, killer_main, &k), 0);
    bool ok = gevtest_run_until(loop, &r.calls, 2, 5000);
    pthread_join(th, NULL);
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    assert_true(ok);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.wrong_thread, 0);
    gev__async_stop(loop, &r.a);
}

static void test_send_from_callback_is_not_lost(void **state)
{
    gev__loop *loop = *state;
    ra r;
    ra_init(&r);
    r.resend = 3;
    gev__async_start(loop, &r.a);
    gev__async_send(loop, &r.a);
    assert_true(gevtest_run_until(loop, &r.calls, 4, 5000));
    for (int i = 0; i < 3; i++)
        gevtest_nowait(loop);
    assert_int_equal(r.calls, 4);
    gev__async_stop(loop, &r.a);
}

static void test_async_reference(void **state)
{
    gev__loop *loop = *state;
    ra r;
    ra_init(&r);
    assert_false(gev__loop_alive(loop));
    gev__async_start(loop, &r.a);
    assert_true(gev__loop_alive(loop));         /* an active async is referenced */
    gev__watcher_set_ref(loop, &r.a.base, false);
    assert_false(gev__loop_alive(loop));
    assert_true(r.a.base.active);
    gev__nsec t0 = gev__time_monotonic();
    assert_int_equal(gevtest_run_all(loop), 0);  /* returns at once */
    assert_lt(gev__time_monotonic() - t0, GEVTEST_MS(1000));
    gev__async_send(loop, &r.a);                /* unref'd still fires */
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);
    gev__watcher_set_ref(loop, &r.a.base, true);
    assert_true(gev__loop_alive(loop));
    gev__async_stop(loop, &r.a);
    assert_false(gev__loop_alive(loop));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GEVTEST_CASE(test_send_from_thread_wakes_blocked_run),
        GEVTEST_CASE(test_sends_before_run_coalesce),
        GEVTEST_CASE(test_four_threads_no_lost_wakeup),
        GEVTEST_CASE(test_send_wakes_only_its_watcher),
        GEVTEST_CASE(test_stopped_async_gets_no_callback),
        GEVTEST_CASE(test_send_from_signal_handler),
        GEVTEST_CASE(test_send_from_callback_is_not_lost),
        GEVTEST_CASE(test_async_reference),
    };
    return cmocka_run_group_tests_name("loop-async", tests, NULL, NULL);
}
