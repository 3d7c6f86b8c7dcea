/* gev_event: gevent.event.Event.  Greenlets only log; the assertions run in
 * main (a CMocka assert must not longjmp across greenlet stacks). */
#include "config.h"
#include "gevtest.h"
#include <stdint.h>
#include <stdlib.h>

static gev_event *ev;

static void *log_other(void *arg)
{
    gevtest_log("other");
    return arg;
}

static void *wait_forever(void *arg)
{
    int rc = gev_event_wait(ev, GEV_FOREVER);
    gevtest_log("%s:%s", (const char *)arg, gevtest_outcome(rc));
    return NULL;
}

static void test_wait_on_set_event_does_not_switch(void **state)
{
    ev = gev_event_new();
    gev_greenlet *g = gev_spawn(log_other, NULL);
    gev_event_set(ev);
    assert_true(gev_event_is_set(ev));
    assert_int_equal(gev_event_wait(ev, GEV_FOREVER), 0);
    assert_int_equal(gev_event_wait(ev, 0), 0);
    gevtest_log("main");
    gev_sleep(0);
    assert_log("main other");     /* the ready greenlet did not run in between */
    gev_release(g);
    gev_event_free(ev);
}

static void test_set_then_clear_still_wakes(void **state)
{
    ev = gev_event_new();
    gev_greenlet *g = gev_spawn(wait_forever, "w");
    gev_sleep(0);
    gev_event_set(ev);
    gev_event_clear(ev);
    assert_false(gev_event_is_set(ev));
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("w:0");
    gev_release(g);
    gev_event_free(ev);
}

#define MANY 1000
static int woke_order[MANY];
static int woke_count;

static void *wait_and_record(void *arg)
{
    if (gev_event_wait(ev, GEV_FOREVER) == 0)
        woke_order[woke_count++] = (int)(intptr_t)arg;
    return NULL;
}

static void test_1000_waiters_wake_fifo_after_set_clear(void **state)
{
    ev = gev_event_new();
    gev_greenlet *g[MANY];
    woke_count = 0;
    for (int i = 0; i < MANY; i++)
        g[i] = gev_spawn(wait_and_record, (void *)(intptr_t)i);
    gev_sleep(0);
    assert_int_equal(woke_count, 0);
    gev_event_set(ev);
    gev_event_clear(ev);
    gevtest_join_release(g, MANY, GEV_FOREVER);
    assert_int_equal(woke_count, MANY);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(woke_order[i], i);
    gev_event_free(ev);
}

static void test_timeouts(void **state)
{
    ev = gev_event_new();
    double t0 = gevtest_now();
    assert_fails(gev_event_wait(ev, 0), ETIMEDOUT);
    assert_fails(gev_event_wait(ev, 0.01), ETIMEDOUT);
    double dt = gevtest_now() - t0;
    assert_true(dt >= 0.009 && dt < 1.0);
    gev_event_free(ev);
}

static void test_scoped_timeout(void **state)
{
    ev = gev_event_new();
    gev_timeout *t = gev_timeout_start(0.01);
    assert_fails(gev_event_wait(ev, GEV_FOREVER), ETIMEDOUT);
    assert_true(gev_timeout_expired(t));
    gev_timeout_cancel(t);
    gev_event_free(ev);
}

static void test_kill_cancels_wait(void **state)
{
    ev = gev_event_new();
    gev_greenlet *g = gev_spawn(wait_forever, "w");
    gev_sleep(0);
    assert_int_equal(gev_kill(g, GEV_FOREVER), 0);
    assert_log("w:ECANCELED");
    gev_event_set(ev);            /* nobody left to wake */
    gev_release(g);
    gev_event_free(ev);
}

static void test_wait_forever_in_main_alone_is_edeadlk(void **state)
{
    ev = gev_event_new();
    assert_fails(gev_event_wait(ev, GEV_FOREVER), EDEADLK);
    gev_event_free(ev);
}

static void free_ev(void) { gev_event_free(ev); }

static void test_free_wakes_waiters_with_ebadf(void **state)
{
    ev = gev_event_new();
    gevtest_waiters_ended_by(wait_forever, free_ev);
    assert_log("k:ECANCELED a:EBADF b:EBADF");
}

static void test_null_handles(void **state)
{
    assert_fails(gev_event_wait(NULL, 0), EINVAL);
    errno = 0;
    gev_event_set(NULL);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    gev_event_clear(NULL);
    assert_int_equal(errno, EINVAL);
    assert_false(gev_event_is_set(NULL));
    gev_event_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_wait_on_set_event_does_not_switch),
        gevtest(test_set_then_clear_still_wakes),
        gevtest(test_1000_waiters_wake_fifo_after_set_clear),
        gevtest(test_timeouts),
        gevtest(test_scoped_timeout),
        gevtest(test_kill_cancels_wait),
        gevtest(test_wait_forever_in_main_alone_is_edeadlk),
        gevtest(test_free_wakes_waiters_with_ebadf),
        gevtest(test_null_handles),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
