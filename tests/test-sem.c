/* gev_sem: gevent.lock.Semaphore / BoundedSemaphore.  Greenlets only log;
 * the assertions run in main. */
#include "config.h"
#include "gevtest.h"
#include <stdlib.h>

static gev_sem *sem;

static void *acquire_and_log(void *arg)
{
    int rc = gev_sem_acquire(sem, GEV_FOREVER);
    gevtest_log("%s:%s", (const char *)arg, gevtest_outcome(rc));
    return arg;
}

static void test_empty_semaphore_times_out(void **state)
{
    sem = gev_sem_new(0);
    assert_int_equal(gev_sem_value(sem), 0);
    assert_fails(gev_sem_acquire(sem, 0), ETIMEDOUT);
    double t0 = gevtest_now();
    assert_fails(gev_sem_acquire(sem, 0.01), ETIMEDOUT);
    assert_true(gevtest_now() - t0 >= 0.009);
    assert_int_equal(gev_sem_value(sem), 0);
    gev_sem_free(sem);
}

static void test_counts(void **state)
{
    sem = gev_sem_new(2);
    assert_int_equal(gev_sem_acquire(sem, 0), 0);
    assert_int_equal(gev_sem_value(sem), 1);
    assert_int_equal(gev_sem_acquire(sem, 0), 0);
    assert_fails(gev_sem_acquire(sem, 0), ETIMEDOUT);
    assert_int_equal(gev_sem_release(sem), 0);
    assert_int_equal(gev_sem_release(sem), 0);
    assert_int_equal(gev_sem_release(sem), 0);   /* unbounded: above the start */
    assert_int_equal(gev_sem_value(sem), 3);
    gev_sem_free(sem);
}

static void test_bounded_release_overflows(void **state)
{
    sem = gev_sem_new_bounded(1);
    assert_fails(gev_sem_release(sem), EOVERFLOW);
    assert_int_equal(gev_sem_acquire(sem, 0), 0);
    assert_int_equal(gev_sem_release(sem), 0);
    assert_fails(gev_sem_release(sem), EOVERFLOW);
    assert_int_equal(gev_sem_value(sem), 1);
    gev_sem_free(sem);
}

static void test_waiters_served_fifo(void **state)
{
    sem = gev_sem_new(0);
    gev_greenlet *g[3] = {gev_spawn(acquire_and_log, "a"), gev_spawn(acquire_and_log, "b"),
                          gev_spawn(acquire_and_log, "c")};
    gev_sleep(0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gev_sem_release(sem), 0);
    assert_int_equal(gev_sem_value(sem), 0);      /* handed over, not counted */
    gevtest_join_release(g, 3, GEV_FOREVER);
    assert_log("a:0 b:0 c:0");
    gev_sem_free(sem);
}

/* Two greenlets ping-pong the semaphore; a third that starts waiting must
 * get it within a round, not after they are done. */
static void *ping_pong(void *arg)
{
    for (int i = 0; i < 100; i++) {
        if (gev_sem_acquire(sem, GEV_FOREVER) != 0)
            return NULL;
        gevtest_log("%s", (const char *)arg);
        gev_sleep(0);
        gev_sem_release(sem);
    }
    return arg;
}

static void test_ping_pong_cannot_starve_a_third(void **state)
{
    sem = gev_sem_new(1);
    gev_greenlet *g[3] = {gev_spawn(ping_pong, "A"), gev_spawn(ping_pong, "B"), NULL};
    gev_sleep(0);
    gev_sleep(0);
    g[2] = gev_spawn(acquire_and_log, "C");
    assert_int_equal(gev_join(g[2], GEV_FOREVER), 0);
    /* C got in after at most a few turns of A and B. */
    const char *log = gevtest_log_str();
    assert_non_null(strstr(log, "C:0"));
    assert_true(strstr(log, "C:0") - log < 40);
    assert_int_equal(gev_sem_release(sem), 0);
    assert_int_equal(gev_joinall(g, 2, GEV_FOREVER), 0);
    gevtest_release_all(g, 3);
    gev_sem_free(sem);
}

static void test_cancel_and_timeout_never_consume(void **state)
{
    sem = gev_sem_new(0);
    gev_greenlet *k = gev_spawn(acquire_and_log, "k");
    gev_greenlet *w = gev_spawn(acquire_and_log, "w");
    gev_sleep(0);
    assert_int_equal(gev_kill(k, 0), -1);          /* woken, not yet run */
    assert_int_equal(gev_sem_release(sem), 0);     /* skips k, goes to w */
    gev_greenlet *both[2] = {k, w};
    assert_int_equal(gev_joinall(both, 2, GEV_FOREVER), 0);
    assert_log("k:ECANCELED w:0");
    assert_int_equal(gev_sem_value(sem), 0);
    gev_timeout *t = gev_timeout_start(0.01);
    assert_fails(gev_sem_acquire(sem, GEV_FOREVER), ETIMEDOUT);
    gev_timeout_cancel(t);
    assert_int_equal(gev_sem_release(sem), 0);
    assert_int_equal(gev_sem_value(sem), 1);       /* nobody took it */
    gev_release(k);
    gev_release(w);
    gev_sem_free(sem);
}

static void free_sem(void) { gev_sem_free(sem); }

static void test_free_wakes_waiters(void **state)
{
    sem = gev_sem_new(0);
    gevtest_waiters_ended_by(acquire_and_log, free_sem);
    assert_log("k:ECANCELED a:EBADF b:EBADF");
}

static void test_null_handles(void **state)
{
    assert_fails(gev_sem_acquire(NULL, 0), EINVAL);
    assert_fails(gev_sem_release(NULL), EINVAL);
    errno = 0;
    assert_int_equal(gev_sem_value(NULL), 0);
    assert_int_equal(errno, EINVAL);
    gev_sem_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_empty_semaphore_times_out),
        gevtest(test_counts),
        gevtest(test_bounded_release_overflows),
        gevtest(test_waiters_served_fifo),
        gevtest(test_ping_pong_cannot_starve_a_third),
        gevtest(test_cancel_and_timeout_never_consume),
        gevtest(test_free_wakes_waiters),
        gevtest(test_null_handles),
    };
    return cmocka_run_group_tests_name("sem", tests, NULL, NULL);
}
