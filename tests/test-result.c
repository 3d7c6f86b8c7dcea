/* gev_result: gevent.event.AsyncResult.  Greenlets only log; the assertions
 * run in main. */
#include "config.h"
#include "gevtest.h"
#include <stdlib.h>

static gev_result *res;

/* Logs "<tag>:<outcome>:<value string>". */
static void *get_forever(void *arg)
{
    void *v = NULL;
    int rc = gev_result_get(res, &v, GEV_FOREVER);
    gevtest_log("%s:%s:%s", (const char *)arg, gevtest_outcome(rc), v ? (const char *)v : "-");
    return NULL;
}

static void test_get_waits_for_value(void **state)
{
    res = gev_result_new();
    gev_greenlet *g = gev_spawn(get_forever, "g");
    gev_sleep(0);
    assert_false(gev_result_ready(res));
    assert_log("");
    gev_result_set(res, "v");
    assert_true(gev_result_ready(res));
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("g:0:v");
    gev_release(g);
    gev_result_free(res);
}

static void test_error(void **state)
{
    res = gev_result_new();
    gev_greenlet *g = gev_spawn(get_forever, "g");
    gev_sleep(0);
    gev_result_set_error(res, EPIPE);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("g:EPIPE:-");
    void *v = NULL;
    assert_fails(gev_result_get(res, &v, GEV_FOREVER), EPIPE);   /* ready: no wait */
    assert_true(gev_result_ready(res));
    gev_release(g);
    gev_result_free(res);
}

static void test_timeout(void **state)
{
    res = gev_result_new();
    void *v = NULL;
    assert_fails(gev_result_get(res, &v, 0), ETIMEDOUT);
    double t0 = gevtest_now();
    assert_fails(gev_result_get(res, &v, 0.01), ETIMEDOUT);
    assert_true(gevtest_now() - t0 >= 0.009);
    gev_timeout *t = gev_timeout_start(0.01);
    assert_fails(gev_result_get(res, &v, GEV_FOREVER), ETIMEDOUT);
    gev_timeout_cancel(t);
    gev_result_free(res);
}

static void *log_other(void *arg)
{
    gevtest_log("other");
    return arg;
}

static void test_get_on_ready_does_not_block(void **state)
{
    res = gev_result_new();
    gev_result_set(res, "v");
    gev_greenlet *g = gev_spawn(log_other, NULL);
    void *v = NULL;
    assert_int_equal(gev_result_get(res, &v, GEV_FOREVER), 0);
    assert_string_equal(v, "v");
    assert_int_equal(gev_result_get(res, NULL, 0), 0);
    gevtest_log("main");
    gev_sleep(0);
    assert_log("main other");
    gev_release(g);
    gev_result_free(res);
}

static void test_several_waiters_all_get_it(void **state)
{
    res = gev_result_new();
    gev_greenlet *g[3] = {gev_spawn(get_forever, "a"), gev_spawn(get_forever, "b"),
                          gev_spawn(get_forever, "c")};
    gev_sleep(0);
    gev_result_set(res, "v");
    gevtest_join_release(g, 3, GEV_FOREVER);
    assert_log("a:0:v b:0:v c:0:v");
    gev_result_free(res);
}

/* gevent's AsyncResult can be set again: the latest outcome wins for later
 * gets; a waiter keeps what the set that woke it handed over. */
static void test_set_again_overwrites(void **state)
{
    res = gev_result_new();
    gev_greenlet *g = gev_spawn(get_forever, "g");
    gev_sleep(0);
    gev_result_set(res, "first");
    gev_result_set(res, "second");
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("g:0:first");
    void *v = NULL;
    assert_int_equal(gev_result_get(res, &v, 0), 0);
    assert_string_equal(v, "second");
    gev_result_set_error(res, EIO);
    assert_fails(gev_result_get(res, &v, 0), EIO);
    gev_result_set(res, "third");
    assert_int_equal(gev_result_get(res, &v, 0), 0);
    assert_string_equal(v, "third");
    gev_release(g);
    gev_result_free(res);
}

static void free_res(void) { gev_result_free(res); }

static void test_kill_and_free(void **state)
{
    res = gev_result_new();
    gevtest_waiters_ended_by(get_forever, free_res);
    assert_log("k:ECANCELED:- a:EBADF:- b:EBADF:-");
}

static void test_freed_right_after_set(void **state)
{
    res = gev_result_new();
    gev_greenlet *g = gev_spawn(get_forever, "g");
    gev_sleep(0);
    gev_result_set(res, "v");
    gev_result_free(res);        /* the woken waiter does not touch it again */
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("g:0:v");
    gev_release(g);
}

static void test_null_handles(void **state)
{
    assert_fails(gev_result_get(NULL, NULL, 0), EINVAL);
    errno = 0;
    gev_result_set(NULL, NULL);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    gev_result_set_error(NULL, EIO);
    assert_int_equal(errno, EINVAL);
    assert_false(gev_result_ready(NULL));
    gev_result_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_get_waits_for_value),
        gevtest(test_error),
        gevtest(test_timeout),
        gevtest(test_get_on_ready_does_not_block),
        gevtest(test_several_waiters_all_get_it),
        gevtest(test_set_again_overwrites),
        gevtest(test_kill_and_free),
        gevtest(test_freed_right_after_set),
        gevtest(test_null_handles),
    };
    return cmocka_run_group_tests_name("result", tests, NULL, NULL);
}
