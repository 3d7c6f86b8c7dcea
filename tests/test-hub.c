/* The hub: gev_run, deadlock detection, fairness, shutdown, identity. */
#include "config.h"
#include "gevtest.h"
#include <ctype.h>
#include <pthread.h>
#include "hub.h"

static void *sleep_then_log(void *arg)
{
    gev_sleep(*(double *)arg);
    gevtest_log("slept");
    return NULL;
}

static void test_run_returns_when_all_done(void **state)
{
    double d = 0.02;
    gev_greenlet *g = gev_spawn(sleep_then_log, &d);
    gev_release(g);
    double t0 = gevtest_now();
    assert_int_equal(gev_run(GEV_FOREVER), 0);
    assert_log("slept");
    assert_ge(gevtest_now() - t0, 0.019);
    assert_int_equal(gev_run(GEV_FOREVER), 0);   /* nothing left: returns at once */
}

static void test_run_times_out(void **state)
{
    double d = 5;
    gev_greenlet *g = gev_spawn(sleep_then_log, &d);
    double t0 = gevtest_now();
    assert_fails(gev_run(0.02), ETIMEDOUT);
    assert_lt(gevtest_now() - t0, 2.0);
    assert_log("");
    gev_kill(g, GEV_FOREVER);
    gev_release(g);
}

static void *join_arg(void *arg)
{
    int rc = gev_join(arg, GEV_FOREVER);
    gevtest_log("joined:%d", rc);
    return NULL;
}

static void test_run_with_timeout_returns_when_idle(void **state)
{
    double d = 0.01;
    gev_greenlet *g = gev_spawn(sleep_then_log, &d);
    double t0 = gevtest_now();
    assert_int_equal(gev_run(5.0), 0);   /* done after ~10 ms, not 5 s */
    assert_lt(gevtest_now() - t0, 2.0);
    assert_log("slept");
    gev_release(g);
}

static void log_in_link(gev_greenlet *g, void *arg)
{
    gevtest_log("link");
}

static void *noop(void *arg) { return arg; }

static void test_shutdown_runs_queued_links(void **state)
{
    gev_greenlet *g = gev_spawn(noop, NULL);
    gev_link(g, log_in_link, NULL);
    gev_sleep(0);              /* g finishes; its link waits for the hub */
    assert_true(gev_ready(g));
    assert_log("");
    gev_release(g);
    gev_shutdown();
    assert_log("link");
}

static void test_wait_nothing_can_end_is_edeadlk(void **state)
{
    /* g waits for main to finish, main waits for g: gevent's LoopExit. */
    gev_greenlet *g = gev_spawn(join_arg, gev_current());
    double t0 = gevtest_now();
    assert_fails(gev_join(g, GEV_FOREVER), EDEADLK);
    assert_lt(gevtest_now() - t0, 2.0);
    assert_false(gev_ready(g));
    gev_release(g);   /* gev_shutdown in the teardown kills it */
}

static void test_kill_interrupts_join_of_main(void **state)
{
    gev_greenlet *g = gev_spawn(join_arg, gev_current());
    gev_sleep(0);
    gev_kill(g, GEV_FOREVER);
    assert_log("joined:-1");
    gev_release(g);
}

static volatile int stop_spinning;

static void *spin_yield(void *arg)
{
    long *spins = arg;
    while (!stop_spinning && gev_sleep(0) == 0)
        (*spins)++;
    return NULL;
}

static void *timer_wakes(void *arg)
{
    double t0 = gevtest_now();
    gev_sleep(0.005);
    *(double *)arg = gevtest_now() - t0;
    stop_spinning = 1;
    return NULL;
}

static void test_yield_loop_does_not_starve_timers(void **state)
{
    long spins = 0;
    double woke_after = -1;
    stop_spinning = 0;
    gev_greenlet *g[2] = {gev_spawn(timer_wakes, &woke_after), gev_spawn(spin_yield, &spins)};
    gevtest_join_release(g, 2, 5.0);
    assert_true(woke_after >= 0.004 && woke_after < 1.0);
    assert_gt(spins, 0);
}

/* Each turn: about 2 us of work, then a yield. */
static void *busy_yield(void *arg)
{
    for (int turn = 0; turn < 10; turn++) {
        double until = gevtest_now() + 2e-6;
        while (gevtest_now() < until)
            ;
        gev_sleep(0);
    }
    (*(int *)arg)++;
    return NULL;
}

static void test_long_run_queue_polls_once_per_pass(void **state)
{
    /* 1,000 greenlets yielding in turn: a pass over the run queue takes
     * ~2 ms, far past the periodic poll's 100 us.  The due poll waits for
     * the hub's turn at the back of the queue, so there is about one per
     * pass: a hub that jumped the queue whenever a poll was due would poll
     * every 64 switches (~16 times per pass), each poll reporting again
     * every fd whose greenlet is already queued (the echo benchmark's CPU
     * per request doubled at 1,000 connections). */
    enum { N = 1000 };
    static gev_greenlet *g[N];
    int done = 0;
    gev__loop *loop = gev__hub_loop(gev__hub());
    for (int i = 0; i < N; i++)
        g[i] = gev_spawn(busy_yield, &done);
    uint64_t before = gev__loop_iteration(loop);
    gevtest_join_release(g, N, 30);
    uint64_t polls = gev__loop_iteration(loop) - before;
    assert_int_equal(done, N);
    assert_le(polls, 3 * 11);       /* 11 passes, ~1 poll each */
}

static void *sleep_forever_cleanup(void *arg)
{
    if (gev_sleep(3600) == -1 && errno == ECANCELED)
        (*(int *)arg)++;
    return NULL;
}

static void test_shutdown_kills_and_runs_cleanup(void **state)
{
    static int cleaned;
    cleaned = 0;
    for (int i = 0; i < 10; i++)
        gev_release(gev_spawn(sleep_forever_cleanup, &cleaned));
    gev_sleep(0);
    gev_shutdown();
    assert_int_equal(cleaned, 10);
    /* A fresh hub afterwards. */
    double d = 0.001;
    gev_greenlet *g = gev_spawn(sleep_then_log, &d);
    assert_int_equal(gev_join(g, 1.0), 0);
    gev_release(g);
    assert_log("slept");
}


static void *call_run(void *arg)
{
    errno = 0;
    *(int *)arg = gev_run(0.01) == -1 ? errno : 0;
    return NULL;
}

static void test_run_from_greenlet_is_einval(void **state)
{
    int err = -1;
    gev_greenlet *g = gev_spawn(call_run, &err);
    gev_join(g, GEV_FOREVER);
    assert_int_equal(err, EINVAL);
    gev_release(g);
}

static void test_identity(void **state)
{
    const char *v = gev_version();
    int a, b, c;
    assert_int_equal(sscanf(v, "%d.%d.%d", &a, &b, &c), 3);
    assert_string_equal(gev_backend(), GEV_BACKEND_NAME);
    const char *bv = gev_backend_version();
    assert_non_null(bv);
    assert_true(isdigit((unsigned char)bv[0]));
    assert_non_null(gev_hub_current());
}

static void *thread_hub(void *arg)
{
    double d = 0.001;
    gev_greenlet *g = gev_spawn(sleep_then_log, &d);
    int rc = g ? gev_join(g, 1.0) : -1;
    gev_release(g);
    *(gev_hub **)arg = gev_hub_current();
    gev_shutdown();
    return (void *)(intptr_t)rc;
}

static void test_one_hub_per_thread(void **state)
{
    gev_hub *other = NULL;
    pthread_t t;
    void *rc;
    assert_int_equal(pthread_create(&t, NULL, thread_hub, &other), 0);
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_int_equal((intptr_t)rc, 0);
    assert_non_null(other);
    assert_ptr_not_equal(other, gev_hub_current());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_run_returns_when_all_done),
        gevtest(test_run_times_out),
        gevtest(test_run_with_timeout_returns_when_idle),
        gevtest(test_shutdown_runs_queued_links),
        gevtest(test_wait_nothing_can_end_is_edeadlk),
        gevtest(test_kill_interrupts_join_of_main),
        gevtest(test_yield_loop_does_not_starve_timers),
        gevtest(test_long_run_queue_polls_once_per_pass),
        gevtest(test_shutdown_kills_and_runs_cleanup),
        gevtest(test_run_from_greenlet_is_einval),
        gevtest(test_identity),
        gevtest(test_one_hub_per_thread),
    };
    return cmocka_run_group_tests_name("hub", tests, NULL, NULL);
}
