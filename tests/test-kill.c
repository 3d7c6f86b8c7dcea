/* gev_kill / gev_killall: before start, while blocked, timeouts, errors. */
#include "gevtest.h"

static void *log_ran(void *arg)
{
    gevtest_log("ran");
    return arg;
}

static void on_dead(gev_greenlet *g, void *arg)
{
    gevtest_log("link:%s", gev_killed(g) ? "killed" : "finished");
    (void)arg;
}

static void test_kill_before_start(void **state)
{
    int x;
    gev_greenlet *g = gev_spawn(log_ran, &x);
    assert_int_equal(gev_link(g, on_dead, NULL), 0);
    assert_int_equal(gev_kill(g, GEV_FOREVER), 0);
    assert_true(gev_ready(g));        /* dead at once */
    assert_true(gev_killed(g));
    assert_null(gev_value(g));
    assert_int_equal(gev_kill(g, GEV_FOREVER), 0);   /* harmless twice */
    assert_int_equal(gev_kill(g, 0), 0);
    gev_sleep(0);
    gev_sleep(0);
    assert_log("link:killed");        /* never ran; the link still fired */
    gev_release(g);
}

static void test_kill_zero_timeout_before_start(void **state)
{
    gev_greenlet *g = gev_spawn(log_ran, NULL);
    assert_int_equal(gev_kill(g, 0), 0);   /* not started: dead at once */
    assert_true(gev_ready(g));
    gev_sleep(0);
    assert_log("");
    gev_release(g);
}

static void *sleeper_with_cleanup(void *arg)
{
    int rc = gev_sleep(10);
    int err = errno;
    gevtest_log("woke:%s", rc == -1 && err == ECANCELED ? "ECANCELED" : "other");
    /* Once killed, every later blocking call fails at once. */
    double t0 = gevtest_now();
    rc = gev_sleep(1);
    err = errno;
    gevtest_log("again:%s", rc == -1 && err == ECANCELED ? "ECANCELED" : "other");
    rc = gev_sleep(0);
    gevtest_log("yield:%s", rc == -1 && errno == ECANCELED ? "ECANCELED" : "other");
    if (gevtest_now() - t0 < 0.5)
        gevtest_log("fast");
    gevtest_log("cleanup");
    return arg;
}

static void test_kill_while_sleeping(void **state)
{
    int x;
    gev_greenlet *g = gev_spawn(sleeper_with_cleanup, &x);
    gev_sleep(0.01);
    gevtest_log("killing");
    assert_int_equal(gev_kill(g, 1.0), 0);   /* returns after the victim returned */
    gevtest_log("killed");
    assert_log("killing woke:ECANCELED again:ECANCELED yield:ECANCELED fast cleanup killed");
    assert_true(gev_ready(g));
    assert_true(gev_killed(g));
    assert_ptr_equal(gev_value(g), &x);
    gev_release(g);
}

static void *ignore_cancel_briefly(void *arg)
{
    gev_sleep(10);   /* ECANCELED; the greenlet returns on its next turn */
    return arg;
}

static void test_kill_zero_timeout_only_requests(void **state)
{
    gev_greenlet *g = gev_spawn(ignore_cancel_briefly, NULL);
    gev_sleep(0);                         /* g is now sleeping */
    assert_fails(gev_kill(g, 0), ETIMEDOUT);   /* not dead yet... */
    assert_true(gev_killed(g));               /* ...but the kill was delivered */
    assert_int_equal(gev_join(g, 1.0), 0);
    assert_true(gev_ready(g));
    gev_release(g);
}

static void *kill_self(void *arg)
{
    errno = 0;
    int rc = gev_kill(gev_current(), 0);
    *(int *)arg = rc == -1 ? errno : 0;
    return NULL;
}

struct kill_main_args {
    gev_greenlet *main;
    int err;
};

static void *kill_main(void *arg)
{
    struct kill_main_args *a = arg;
    errno = 0;
    int rc = gev_kill(a->main, 0);
    a->err = rc == -1 ? errno : 0;
    return NULL;
}

static void test_kill_errors(void **state)
{
    int err = -1;
    gev_greenlet *g = gev_spawn(kill_self, &err);
    gev_join(g, GEV_FOREVER);
    assert_int_equal(err, EDEADLK);
    gev_release(g);

    struct kill_main_args m = {gev_current(), -1};
    g = gev_spawn(kill_main, &m);
    gev_join(g, GEV_FOREVER);
    assert_int_equal(m.err, EINVAL);
    gev_release(g);

    assert_fails(gev_kill(NULL, 0), EINVAL);
    assert_fails(gev_kill(gev_current(), 0), EINVAL);   /* main */
}

static void test_kill_spawn_later_before_it_fires(void **state)
{
    gev_greenlet *g = gev_spawn_later(0.01, log_ran, NULL);
    assert_int_equal(gev_kill(g, 0), 0);
    assert_true(gev_ready(g) && gev_killed(g));
    gev_sleep(0.03);
    assert_log("");
    gev_release(g);
}

static void *sleep_long(void *arg)
{
    if (gev_sleep(10) == -1 && errno == ECANCELED)
        gevtest_log("c%d", *(int *)arg);
    return NULL;
}

static void test_killall(void **state)
{
    int ids[4] = {0, 1, 2, 3};
    gev_greenlet *g[4];
    for (int i = 0; i < 4; i++)
        g[i] = gev_spawn(sleep_long, &ids[i]);
    gev_sleep(0);
    assert_int_equal(gev_killall(g, 4, 1.0), 0);
    assert_log("c0 c1 c2 c3");
    for (int i = 0; i < 4; i++) {
        assert_true(gev_ready(g[i]) && gev_killed(g[i]));
        gev_release(g[i]);
    }
}

static void test_finished_greenlet_is_not_killed(void **state)
{
    gev_greenlet *g = gev_spawn(log_ran, NULL);
    gev_join(g, GEV_FOREVER);
    assert_int_equal(gev_kill(g, 0), 0);
    assert_false(gev_killed(g));   /* the kill did not reach it before it finished */
    gev_release(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_kill_before_start),
        gevtest(test_kill_zero_timeout_before_start),
        gevtest(test_kill_while_sleeping),
        gevtest(test_kill_zero_timeout_only_requests),
        gevtest(test_kill_errors),
        gevtest(test_kill_spawn_later_before_it_fires),
        gevtest(test_killall),
        gevtest(test_finished_greenlet_is_not_killed),
    };
    return cmocka_run_group_tests_name("kill", tests, NULL, NULL);
}
