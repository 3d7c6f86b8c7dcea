/* gev_lock: gevent.lock.RLock (an owner greenlet, recursive).  Greenlets
 * only log; the assertions run in main. */
#include "config.h"
#include "gevtest.h"
#include <stdlib.h>

static gev_lock *lock;

/* Acquire, log, release: "<tag>:<acquire outcome>". */
static void *lock_and_log(void *arg)
{
    int rc = gev_lock_acquire(lock, GEV_FOREVER);
    gevtest_log("%s:%s", (const char *)arg, gevtest_outcome(rc));
    if (rc == 0)
        gev_lock_release(lock);
    return arg;
}

static void *release_and_log(void *arg)
{
    gevtest_log("%s:%s", (const char *)arg, gevtest_outcome(gev_lock_release(lock)));
    return arg;
}

static void test_recursive_acquire_by_owner(void **state)
{
    lock = gev_lock_new();
    for (int i = 0; i < 3; i++)
        assert_int_equal(gev_lock_acquire(lock, 0), 0);
    gev_greenlet *g = gev_spawn(lock_and_log, "g");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(gev_lock_release(lock), 0);
        gev_sleep(0);
        assert_log("");                 /* still held: count 3, 2, 1 */
    }
    assert_int_equal(gev_lock_release(lock), 0);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("g:0");
    assert_int_equal(gev_lock_acquire(lock, 0), 0);   /* g released it */
    assert_int_equal(gev_lock_release(lock), 0);
    gev_release(g);
    gev_lock_free(lock);
}

static void test_release_by_non_owner_is_eperm(void **state)
{
    lock = gev_lock_new();
    assert_fails(gev_lock_release(lock), EPERM);       /* unlocked */
    assert_int_equal(gev_lock_acquire(lock, 0), 0);
    gev_greenlet *g = gev_spawn(release_and_log, "other");
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("other:EPERM");
    assert_int_equal(gev_lock_release(lock), 0);
    assert_fails(gev_lock_release(lock), EPERM);
    gev_release(g);
    gev_lock_free(lock);
}

static void *hold_lock(void *arg)
{
    gev_lock_acquire(lock, GEV_FOREVER);
    gev_event_wait(arg, GEV_FOREVER);
    gev_lock_release(lock);
    return NULL;
}

static void test_acquire_timeout_when_held_by_another(void **state)
{
    lock = gev_lock_new();
    gev_event *e = gev_event_new();
    gev_greenlet *h = gev_spawn(hold_lock, e);
    gev_sleep(0);
    assert_fails(gev_lock_acquire(lock, 0), ETIMEDOUT);
    assert_fails(gev_lock_acquire(lock, 0.01), ETIMEDOUT);
    assert_fails_in_scoped_timeout(gev_lock_acquire(lock, GEV_FOREVER));
    gev_event_set(e);
    assert_int_equal(gev_join(h, GEV_FOREVER), 0);
    assert_int_equal(gev_lock_acquire(lock, 0), 0);
    assert_int_equal(gev_lock_release(lock), 0);
    gev_release(h);
    gev_event_free(e);
    gev_lock_free(lock);
}

static void test_killed_waiter_leaves_lock_consistent(void **state)
{
    lock = gev_lock_new();
    assert_int_equal(gev_lock_acquire(lock, 0), 0);
    gev_greenlet *k = gev_spawn(lock_and_log, "k");
    gev_greenlet *w = gev_spawn(lock_and_log, "w");
    gev_sleep(0);
    assert_int_equal(gev_kill(k, GEV_FOREVER), 0);
    assert_int_equal(gev_lock_release(lock), 0);
    assert_int_equal(gev_join(w, GEV_FOREVER), 0);
    assert_log("k:ECANCELED w:0");
    assert_int_equal(gev_lock_acquire(lock, 0), 0);   /* free again */
    assert_int_equal(gev_lock_release(lock), 0);
    gev_release(k);
    gev_release(w);
    gev_lock_free(lock);
}

static void test_handed_over_fifo(void **state)
{
    lock = gev_lock_new();
    assert_int_equal(gev_lock_acquire(lock, 0), 0);
    gev_greenlet *g[2] = {gev_spawn(lock_and_log, "a"), gev_spawn(lock_and_log, "b")};
    gev_sleep(0);
    assert_int_equal(gev_lock_release(lock), 0);
    /* a owns it now, before it even ran: main queues behind b. */
    assert_fails(gev_lock_acquire(lock, 0), ETIMEDOUT);
    assert_int_equal(gev_lock_acquire(lock, GEV_FOREVER), 0);
    gevtest_log("main");
    assert_log("a:0 b:0 main");
    assert_int_equal(gev_lock_release(lock), 0);
    gevtest_join_release(g, 2, GEV_FOREVER);
    gev_lock_free(lock);
}

static void free_lock(void) { gev_lock_free(lock); }

/* Freed while main holds it and three greenlets wait for it. */
static void test_free_wakes_waiters(void **state)
{
    lock = gev_lock_new();
    assert_int_equal(gev_lock_acquire(lock, 0), 0);
    gevtest_waiters_ended_by(lock_and_log, free_lock);
    assert_log("k:ECANCELED a:EBADF b:EBADF");
}

static void test_null_handles(void **state)
{
    assert_fails(gev_lock_acquire(NULL, 0), EINVAL);
    assert_fails(gev_lock_release(NULL), EINVAL);
    gev_lock_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_recursive_acquire_by_owner),
        gevtest(test_release_by_non_owner_is_eperm),
        gevtest(test_acquire_timeout_when_held_by_another),
        gevtest(test_killed_waiter_leaves_lock_consistent),
        gevtest(test_handed_over_fifo),
        gevtest(test_free_wakes_waiters),
        gevtest(test_null_handles),
    };
    return cmocka_run_group_tests_name("lock", tests, NULL, NULL);
}
