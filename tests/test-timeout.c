/* Scoped timeouts (gevent.Timeout). */
#include "gevtest.h"

static void test_timeout_interrupts_sleep_and_sticks(void **state)
{
    gev_timeout *t = gev_timeout_start(0.01);
    assert_non_null(t);
    double t0 = gevtest_now();
    assert_fails(gev_sleep(5), ETIMEDOUT);
    assert_lt(gevtest_now() - t0, 2.0);
    assert_true(gev_timeout_expired(t));
    /* Inside the expired scope every blocking call fails at once. */
    t0 = gevtest_now();
    assert_fails(gev_sleep(1), ETIMEDOUT);
    assert_fails(gev_sleep(0), ETIMEDOUT);
    assert_lt(gevtest_now() - t0, 0.5);
    gev_timeout_cancel(t);
    assert_int_equal(gev_sleep(0.001), 0);
}

static void test_nested_inner_first(void **state)
{
    gev_timeout *outer = gev_timeout_start(0.5);
    gev_timeout *inner = gev_timeout_start(0.01);
    assert_fails(gev_sleep(5), ETIMEDOUT);
    assert_true(gev_timeout_expired(inner));
    assert_false(gev_timeout_expired(outer));   /* still pending */
    gev_timeout_cancel(inner);
    assert_int_equal(gev_sleep(0.001), 0);       /* outer has not fired */
    gev_timeout_cancel(outer);
}

static void test_nested_outer_first(void **state)
{
    gev_timeout *outer = gev_timeout_start(0.01);
    gev_timeout *inner = gev_timeout_start(0.5);
    assert_fails(gev_sleep(5), ETIMEDOUT);
    assert_true(gev_timeout_expired(outer));
    assert_false(gev_timeout_expired(inner));
    gev_timeout_cancel(inner);
    assert_fails(gev_sleep(0), ETIMEDOUT);       /* outer's scope is still open */
    gev_timeout_cancel(outer);
    assert_int_equal(gev_sleep(0), 0);
}

static void test_sleep0_loop_under_timeout_ends(void **state)
{
    gev_timeout *t = gev_timeout_start(0.01);
    double t0 = gevtest_now();
    long spins = 0;
    while (gev_sleep(0) == 0)
        spins++;
    assert_int_equal(errno, ETIMEDOUT);
    double took = gevtest_now() - t0;
    assert_ge(took, 0.009);
    assert_lt(took, 1.0);
    assert_gt(spins, 0);
    gev_timeout_cancel(t);
}

static void *sleep_and_log(void *arg)
{
    int rc = gev_sleep(0.03);
    gevtest_log("other:%d", rc);
    return NULL;
}

static void *timed_out_sleeper(void *arg)
{
    gev_timeout *t = gev_timeout_start(0.01);
    int rc = gev_sleep(1);
    gevtest_log("owner:%d:%s", rc, errno == ETIMEDOUT ? "ETIMEDOUT" : "?");
    gev_timeout_cancel(t);
    return NULL;
}

static void test_timeout_affects_only_its_greenlet(void **state)
{
    gev_greenlet *g[2] = {gev_spawn(timed_out_sleeper, NULL), gev_spawn(sleep_and_log, NULL)};
    gevtest_join_release(g, 2, 2.0);
    assert_log("owner:-1:ETIMEDOUT other:0");
}

static void test_cancel_before_expiry(void **state)
{
    gev_timeout *t = gev_timeout_start(0.01);
    gev_timeout_cancel(t);
    assert_int_equal(gev_sleep(0.03), 0);
    gev_timeout *never = gev_timeout_start(GEV_FOREVER);
    assert_int_equal(gev_sleep(0.001), 0);
    assert_false(gev_timeout_expired(never));
    gev_timeout_cancel(never);
    gev_timeout_cancel(NULL);
}

static void *forget_to_cancel(void *arg)
{
    gev_timeout_start(0.01);   /* cancelled for us when we return */
    return NULL;
}

static void test_unclosed_scope_at_return(void **state)
{
    gev_greenlet *g = gev_spawn(forget_to_cancel, NULL);
    gev_join(g, GEV_FOREVER);
    gev_release(g);
    assert_int_equal(gev_sleep(0.03), 0);   /* its timer never fires into us */
}

static void *join_under_timeout(void *arg)
{
    gev_timeout *t = gev_timeout_start(0.01);
    int rc = gev_join(arg, GEV_FOREVER);
    gevtest_log("join:%d:%s", rc, errno == ETIMEDOUT ? "ETIMEDOUT" : "?");
    gev_timeout_cancel(t);
    return NULL;
}

static void *sleep_half(void *arg)
{
    gev_sleep(0.5);
    return arg;
}

static void test_timeout_interrupts_join(void **state)
{
    gev_greenlet *slow = gev_spawn(sleep_half, NULL);
    gev_greenlet *j = gev_spawn(join_under_timeout, slow);
    gev_join(j, 2.0);
    assert_log("join:-1:ETIMEDOUT");
    gev_kill(slow, GEV_FOREVER);
    gev_release(slow);
    gev_release(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_timeout_interrupts_sleep_and_sticks),
        gevtest(test_nested_inner_first),
        gevtest(test_nested_outer_first),
        gevtest(test_sleep0_loop_under_timeout_ends),
        gevtest(test_timeout_affects_only_its_greenlet),
        gevtest(test_cancel_before_expiry),
        gevtest(test_unclosed_scope_at_return),
        gevtest(test_timeout_interrupts_join),
    };
    return cmocka_run_group_tests_name("timeout", tests, NULL, NULL);
}
