/* tests/test-signal-handler.c: gev_signal_handler / gev_signal_cancel, and
 * the disposition of a signal outside gev_signal_wait.
 *
 * Whatever may die of a signal (the point of issue 11's report) runs in a
 * forked child that reports through its exit status: 0 if every check
 * held, else the number of the failed check; a child killed by the signal
 * shows as such in the parent's assertion. */
#include "config.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gevtest.h"

/* A handler that counts its runs and logs them. */
typedef struct counter {
    atomic_int runs;
    int last_signum;
    bool log;
} counter;

static void count_run(int signum, void *arg)
{
    counter *c = arg;
    c->last_signum = signum;
    atomic_fetch_add(&c->runs, 1);
    if (c->log)
        gevtest_log("h%d", signum);
}

/* Wait (letting the hub run) until c has run at least n times, or 5 s. */
static bool runs_reach(counter *c, int n)
{
    double t0 = gevtest_now();
    while (atomic_load(&c->runs) < n) {
        if (gevtest_now() - t0 > 5.0 || gev_sleep(0.001) != 0)
            return false;
    }
    return true;
}

static int reinit_then(void *arg)
{
    int (*fn)(void) = *(int (**)(void))arg;
    return gev_reinit() == 0 ? fn() : 99;
}

/* Fork; the child runs fn after gev_reinit and exits with what it returns.
 * The parent reaps it with gev_waitpid and gets its wait status. */
static int in_child(int (*fn)(void))
{
    pid_t pid = gevtest_fork(reinit_then, &fn);
    int st = -1;
    assert_int_equal(gev_waitpid(pid, &st, 30.0), pid);
    return st;
}

static void assert_child_ok(int (*fn)(void))
{
    gevtest_assert_exited(in_child(fn), 0);
}

static void assert_child_killed_by(int (*fn)(void), int signum)
{
    gevtest_assert_killed(in_child(fn), signum);
}

/* ---- the reported scenario: a second SIGTERM during the drain ------------ */

static void *raise_later(void *arg)
{
    if (gev_sleep(0.02) == 0)
        raise((int)(intptr_t)arg);
    return NULL;
}

/* The server of the report: wait for SIGTERM, then drain for 0.2 s while a
 * second SIGTERM arrives.  Checks 1-4; without a handler it dies in the
 * drain. */
static int serve_and_drain(counter *c)
{
    gev_greenlet *g = gev_spawn(raise_later, (void *)(intptr_t)SIGTERM);
    if (gev_signal_wait(SIGTERM, 5.0) != 0)
        return 1;
    gev_release(g);
    g = gev_spawn(raise_later, (void *)(intptr_t)SIGTERM);
    gev_sleep(0.2);             /* the drain */
    gev_release(g);
    if (c && (!runs_reach(c, 2) || atomic_load(&c->runs) != 2 || c->last_signum != SIGTERM))
        return 2;
    return 0;
}

static int drain_with_handler(void)
{
    counter c = { 0 };
    gev_signal *h = gev_signal_handler(SIGTERM, count_run, &c);
    if (!h)
        return 3;
    int rc = serve_and_drain(&c);
    if (rc)
        return rc;
    /* The second delivery came between two waits: it was kept. */
    if (gev_signal_wait(SIGTERM, 0) != 0)
        return 4;
    if (gev_signal_wait(SIGTERM, 0) != -1 || errno != ETIMEDOUT)
        return 5;
    gev_signal_cancel(h);
    gev_shutdown();
    return 0;
}

static int drain_without_handler(void) { return serve_and_drain(NULL) ? 50 : 0; }

static void test_second_sigterm_during_drain(void **state)
{
    (void)state;
    assert_child_ok(drain_with_handler);
}

/* The documented disposition outside waits: without a handler, SIGTERM
 * between two waits has its default action again. */
static void test_second_sigterm_without_handler_kills(void **state)
{
    (void)state;
    assert_child_killed_by(drain_without_handler, SIGTERM);
}

/* ---- a burst of 10,000 signals ------------------------------------------- */

enum { BURST = 10000 };

typedef struct burst {
    atomic_int sent;
    atomic_bool done;
} burst;

static void *send_burst(void *arg)
{
    burst *b = arg;
    for (int i = 0; i < BURST; i++) {
        if (kill(getpid(), SIGUSR1) != 0)
            break;
        atomic_fetch_add(&b->sent, 1);
    }
    atomic_store(&b->done, true);
    return NULL;
}

/* A gev_signal_wait loop beside the handler: the other victim. */
static atomic_int wait_returns;

static void *wait_loop(void *arg)
{
    (void)arg;
    while (gev_signal_wait(SIGUSR1, GEV_FOREVER) == 0)
        atomic_fetch_add(&wait_returns, 1);
    return NULL;
}

/* Checks 20-27. */
static int burst_child(void)
{
    counter c = { 0 };
    burst b = { 0 };
    gev_signal *h = gev_signal_handler(SIGUSR1, count_run, &c);
    gev_greenlet *waiter = gev_spawn(wait_loop, NULL);
    pthread_t th;
    if (!h || !waiter || pthread_create(&th, NULL, send_burst, &b) != 0)
        return 20;
    double t0 = gevtest_now();
    while (!atomic_load(&b.done) && gevtest_now() - t0 < 20.0)
        gev_sleep(0.001);
    pthread_join(th, NULL);
    if (atomic_load(&b.sent) != BURST)
        return 21;
    gev_sleep(0.1);             /* the last deliveries settle */
    int after_burst = atomic_load(&c.runs);
    if (after_burst < 1 || after_burst > BURST)
        return 22;              /* coalesced, never more runs than signals */
    if (atomic_load(&wait_returns) < 1 || atomic_load(&wait_returns) > BURST)
        return 23;
    /* One more signal after the burst: exactly one more run, one more
     * wait return (nothing is reported twice, the last is not lost). */
    int waits = atomic_load(&wait_returns);
    raise(SIGUSR1);
    if (!runs_reach(&c, after_burst + 1))
        return 24;
    gev_sleep(0.05);
    if (atomic_load(&c.runs) != after_burst + 1)
        return 25;
    if (atomic_load(&wait_returns) != waits + 1)
        return 26;
    gev_kill(waiter, 1.0);
    gev_release(waiter);
    gev_signal_cancel(h);
    gev_shutdown();
    return 0;
}

static void test_burst_of_signals(void **state)
{
    (void)state;
    assert_child_ok(burst_child);
}

/* ---- no delivery lost between two waits ---------------------------------- */

static void *wait_once(void *arg)
{
    int *rc = arg;
    *rc = gev_signal_wait(SIGUSR1, 5.0);
    gevtest_log("woke");
    return NULL;
}

static void test_kept_between_waits(void **state)
{
    (void)state;
    counter c = { .log = true };
    gev_signal *h = gev_signal_handler(SIGUSR1, count_run, &c);
    assert_non_null(h);
    /* Two deliveries with no wait in progress: kept, as one. */
    raise(SIGUSR1);
    assert_true(runs_reach(&c, 1));
    raise(SIGUSR1);
    assert_true(runs_reach(&c, 2));
    assert_int_equal(gev_signal_wait(SIGUSR1, 0), 0);
    assert_fails(gev_signal_wait(SIGUSR1, 0), ETIMEDOUT);
    /* A delivery that a wait saw is not kept for the next one. */
    int rc = -2;
    gev_greenlet *gs[2] = { gev_spawn(wait_once, &rc),
                            gev_spawn(raise_later, (void *)(intptr_t)SIGUSR1) };
    gevtest_join_release(gs, 2, 5.0);
    assert_int_equal(rc, 0);
    assert_true(runs_reach(&c, 3));
    assert_fails(gev_signal_wait(SIGUSR1, 0), ETIMEDOUT);
    assert_log("h10 h10 woke h10");
    /* Nothing is kept once the last handler is gone. */
    raise(SIGUSR1);
    assert_true(runs_reach(&c, 4));
    gev_signal_cancel(h);
    assert_fails(gev_signal_wait(SIGUSR1, 0), ETIMEDOUT);
}

/* ---- the disposition: caught while a handler exists, then restored ------- */

static atomic_int own_handler_runs;

static void own_handler(int signum)
{
    (void)signum;
    atomic_fetch_add(&own_handler_runs, 1);
}

static void (*disposition(int signum))(int)
{
    struct sigaction sa;
    assert_int_equal(sigaction(signum, NULL, &sa), 0);
    return sa.sa_handler;
}

static void set_disposition(int signum, void (*fn)(int))
{
    struct sigaction sa = { 0 };
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(signum, &sa, NULL), 0);
}

/* The program's own handler and SIG_IGN come back after the cancel, also
 * when a wait outlived the handler; the program's handler then runs. */
static void test_cancel_restores_disposition(void **state)
{
    (void)state;
    counter c = { 0 };
    void (*const before[])(int) = { own_handler, SIG_IGN };
    for (size_t i = 0; i < 2; i++) {
        set_disposition(SIGUSR2, before[i]);
        gev_signal *h = gev_signal_handler(SIGUSR2, count_run, &c);
        assert_non_null(h);
        assert_ptr_not_equal(disposition(SIGUSR2), before[i]);
        gev_signal_cancel(h);
        assert_ptr_equal(disposition(SIGUSR2), before[i]);
    }
    set_disposition(SIGUSR2, own_handler);
    gev_signal *h = gev_signal_handler(SIGUSR2, count_run, &c);
    int rc = -2;
    gev_greenlet *g = gev_spawn(wait_once, &rc);   /* SIGUSR1: unrelated */
    gev_signal *h1 = gev_signal_handler(SIGUSR1, count_run, &c);
    gev_sleep(0.01);
    gev_signal_cancel(h1);      /* the wait still holds SIGUSR1 */
    assert_ptr_not_equal(disposition(SIGUSR1), SIG_DFL);
    raise(SIGUSR1);
    assert_int_equal(gev_join(g, 5.0), 0);
    gev_release(g);
    assert_int_equal(rc, 0);
    assert_ptr_equal(disposition(SIGUSR1), SIG_DFL);
    gev_signal_cancel(h);
    atomic_store(&own_handler_runs, 0);
    raise(SIGUSR2);
    assert_int_equal(atomic_load(&own_handler_runs), 1);
    set_disposition(SIGUSR2, SIG_DFL);
}

/* SIG_DFL comes back too: SIGTERM after the cancel kills. */
static int cancel_then_sigterm(void)
{
    counter c = { 0 };
    gev_signal *h = gev_signal_handler(SIGTERM, count_run, &c);
    if (!h)
        return 30;
    raise(SIGTERM);
    if (!runs_reach(&c, 1))
        return 31;
    gev_signal_cancel(h);
    raise(SIGTERM);
    return 32;
}

static void test_cancel_restores_default(void **state)
{
    (void)state;
    assert_child_killed_by(cancel_then_sigterm, SIGTERM);
}

/* gev_shutdown cancels what is left: blocked handler greenlets are killed,
 * and the disposition comes back. */
static void blocking_run(int signum, void *arg)
{
    gevtest_log("run%d", signum);
    int rc = gev_sleep(10.0);
    gevtest_log("end-%s", gevtest_outcome(rc));
    atomic_fetch_add(&((counter *)arg)->runs, 1);
}

static void test_shutdown_cancels(void **state)
{
    (void)state;
    counter c = { 0 };
    set_disposition(SIGUSR2, own_handler);
    assert_non_null(gev_signal_handler(SIGUSR2, blocking_run, &c));
    assert_non_null(gev_signal_handler(SIGUSR2, count_run, &c));
    raise(SIGUSR2);
    gev_sleep(0.02);
    raise(SIGUSR2);             /* the first run is blocked: a second starts */
    gev_sleep(0.02);
    gev_shutdown();
    assert_log("run12 run12 end-ECANCELED end-ECANCELED");
    assert_int_equal(atomic_load(&c.runs), 4);
    assert_ptr_equal(disposition(SIGUSR2), own_handler);
    set_disposition(SIGUSR2, SIG_DFL);
}

/* ---- several handlers, hub context, cancel from fn ----------------------- */

static void test_several_handlers_each_run(void **state)
{
    (void)state;
    counter a = { .log = true }, b = { .log = true };
    gev_signal *ha = gev_signal_handler(SIGUSR1, count_run, &a);
    gev_signal *hb = gev_signal_handler(SIGUSR1, count_run, &b);
    assert_non_null(ha);
    assert_non_null(hb);
    raise(SIGUSR1);
    assert_true(runs_reach(&a, 1) && runs_reach(&b, 1));
    gev_signal_cancel(ha);
    raise(SIGUSR1);
    assert_true(runs_reach(&b, 2));
    gev_sleep(0.02);
    assert_int_equal(atomic_load(&a.runs), 1);
    gev_signal_cancel(hb);
    assert_log("h10 h10 h10");
}

/* Deliveries before the handler's greenlet started coalesce into it: two
 * signals while the hub does not run make one run. */
static void test_deliveries_coalesce(void **state)
{
    (void)state;
    counter c = { 0 };
    gev_signal *h = gev_signal_handler(SIGUSR1, count_run, &c);
    raise(SIGUSR1);
    raise(SIGUSR1);
    gev_sleep(0.02);
    assert_int_equal(atomic_load(&c.runs), 1);
    gev_signal_cancel(h);
}

static void cancel_self(int signum, void *arg)
{
    gevtest_log("run%d", signum);
    gev_signal_cancel(*(gev_signal **)arg);
}

static void test_cancel_from_fn(void **state)
{
    (void)state;
    static gev_signal *h;
    h = gev_signal_handler(SIGUSR1, cancel_self, &h);
    assert_non_null(h);
    raise(SIGUSR1);
    gev_sleep(0.02);
    assert_ptr_equal(disposition(SIGUSR1), SIG_DFL);
    assert_log("run10");
}

/* A link callback (hub context) may create a handler: it does not block. */
static gev_signal *linked_h;
static counter linked_c;

static void link_creates(gev_greenlet *g, void *arg)
{
    (void)g;
    (void)arg;
    linked_h = gev_signal_handler(SIGUSR1, count_run, &linked_c);
}

static void *noop(void *arg) { return arg; }

static void test_handler_from_hub_context(void **state)
{
    (void)state;
    atomic_store(&linked_c.runs, 0);
    gev_greenlet *g = gev_spawn(noop, NULL);
    assert_int_equal(gev_link(g, link_creates, NULL), 0);
    assert_int_equal(gev_join(g, 1.0), 0);
    gev_release(g);
    gev_sleep(0.01);            /* the link has run by now */
    assert_non_null(linked_h);
    raise(SIGUSR1);
    assert_true(runs_reach(&linked_c, 1));
    gev_signal_cancel(linked_h);
}

/* gevent's signal_handler is ref=False: a handler alone does not keep
 * gev_run() going, nor let main wait on nothing; a wait does. */
static void test_handler_does_not_keep_run_alive(void **state)
{
    (void)state;
    counter c = { 0 };
    gev_signal *h = gev_signal_handler(SIGUSR1, count_run, &c);
    double t0 = gevtest_now();
    assert_int_equal(gev_run(5.0), 0);
    assert_lt(gevtest_now() - t0, 1.0);
    gev_event *e = gev_event_new();
    assert_fails(gev_event_wait(e, GEV_FOREVER), EDEADLK);
    gev_event_free(e);
    gev_greenlet *g = gev_spawn(raise_later, (void *)(intptr_t)SIGUSR1);
    assert_int_equal(gev_signal_wait(SIGUSR1, 5.0), 0);
    assert_true(runs_reach(&c, 1));
    gev_release(g);
    gev_signal_cancel(h);
}

/* ---- errors, other hubs, fork -------------------------------------------- */

static void test_handler_bad(void **state)
{
    (void)state;
    counter c = { 0 };
    const int bad[] = { 0, -1, NSIG, SIGKILL, SIGSTOP };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_null(gev_signal_handler(bad[i], count_run, &c));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(gev_signal_handler(SIGUSR1, NULL, &c));
    assert_int_equal(errno, EINVAL);
    assert_fails(gev_signal_wait(SIGSTOP, 0), EINVAL);
    gev_signal_cancel(NULL);
    assert_ptr_equal(disposition(SIGUSR1), SIG_DFL);
}

/* Another thread's hub owns the signal: EBUSY here, and it alone runs its
 * handler. */
static atomic_int other_state;
static counter other_c;

static void *other_hub_handles(void *arg)
{
    (void)arg;
    gev_signal *h = gev_signal_handler(SIGUSR2, count_run, &other_c);
    atomic_store(&other_state, h ? 1 : -1);
    while (h && atomic_load(&other_state) == 1)
        gev_sleep(0.001);
    runs_reach(&other_c, 1);
    gev_signal_cancel(h);
    gev_shutdown();
    return NULL;
}

static void test_other_hub_ebusy(void **state)
{
    (void)state;
    counter c = { 0 };
    pthread_t th;
    atomic_store(&other_state, 0);
    atomic_store(&other_c.runs, 0);
    assert_int_equal(pthread_create(&th, NULL, other_hub_handles, NULL), 0);
    while (atomic_load(&other_state) == 0)
        usleep(1000);
    assert_int_equal(atomic_load(&other_state), 1);
    errno = 0;
    assert_null(gev_signal_handler(SIGUSR2, count_run, &c));
    assert_int_equal(errno, EBUSY);
    kill(getpid(), SIGUSR2);
    atomic_store(&other_state, 2);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&other_c.runs), 1);
    assert_int_equal(atomic_load(&c.runs), 0);
}

/* Checks 40-41: the parent's handler works in the child. */
static counter fork_c;

static int handler_after_fork(void)
{
    raise(SIGUSR1);
    if (!runs_reach(&fork_c, 1))
        return 40;
    raise(SIGUSR1);
    if (!runs_reach(&fork_c, 2))
        return 41;
    gev_shutdown();
    return 0;
}

static void test_handler_after_fork(void **state)
{
    (void)state;
    atomic_store(&fork_c.runs, 0);
    gev_signal *h = gev_signal_handler(SIGUSR1, count_run, &fork_c);
    assert_non_null(h);
    assert_child_ok(handler_after_fork);
    assert_int_equal(atomic_load(&fork_c.runs), 0);
    raise(SIGUSR1);
    assert_true(runs_reach(&fork_c, 1));
    gev_signal_cancel(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_second_sigterm_during_drain),
        gevtest(test_second_sigterm_without_handler_kills),
        gevtest(test_burst_of_signals),
        gevtest(test_kept_between_waits),
        gevtest(test_cancel_restores_disposition),
        gevtest(test_cancel_restores_default),
        gevtest(test_shutdown_cancels),
        gevtest(test_several_handlers_each_run),
        gevtest(test_deliveries_coalesce),
        gevtest(test_cancel_from_fn),
        gevtest(test_handler_from_hub_context),
        gevtest(test_handler_does_not_keep_run_alive),
        gevtest(test_handler_bad),
        gevtest(test_other_hub_ebusy),
        gevtest(test_handler_after_fork),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
