/* tests/test-threadpool.c: gev_threadpool_run and gev_threadpool_set_max.
 *
 * Blocking functions run in worker threads while the other greenlets keep
 * running; only the caller waits, and it never returns before fn returned,
 * even when it is killed or its scoped timeout expires.  Timing checks are
 * generous upper bounds and "at least" lower bounds. */
#include "config.h"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "gevtest.h"
#include "threads.h"

/* ---- blocking functions run by the pool ---------------------------------- */

static atomic_int in_flight, max_in_flight;

static void *sleep_100ms(void *arg)
{
    int now = atomic_fetch_add(&in_flight, 1) + 1;
    int seen = atomic_load(&max_in_flight);
    while (now > seen && !atomic_compare_exchange_weak(&max_in_flight, &seen, now))
        ;
    usleep(100000);
    atomic_fetch_sub(&in_flight, 1);
    return arg;
}

typedef struct slow_job {
    useconds_t usec;
    atomic_int finished;        /* set by fn just before it returns */
} slow_job;

static void *slow_fn(void *arg)
{
    slow_job *j = arg;
    usleep(j->usec);
    atomic_store(&j->finished, 1);
    return (void *)(intptr_t)42;
}

static void reset_counters(void)
{
    atomic_store(&in_flight, 0);
    atomic_store(&max_in_flight, 0);
}

/* ---- 20 sleeps of 100 ms with 10 workers: two rounds, not twenty ---------- */

static void *run_sleep(void *arg)
{
    void *res = NULL;
    if (gev_threadpool_run(sleep_100ms, arg, &res) != 0 || res != arg)
        return NULL;
    return (void *)1;
}

static void test_twenty_sleeps_concurrently(void **state)
{
    (void)state;
    reset_counters();
    gev_greenlet *gs[20];
    double t0 = gevtest_now();
    for (int i = 0; i < 20; i++)
        assert_non_null(gs[i] = gev_spawn(run_sleep, &gs[i]));
    assert_int_equal(gev_joinall(gs, 20, 10.0), 0);
    double dt = gevtest_now() - t0;
    for (int i = 0; i < 20; i++) {
        assert_ptr_equal(gev_value(gs[i]), (void *)1);
        gev_release(gs[i]);
    }
    assert_true(dt > 0.19);     /* at most 10 at a time: two rounds */
    /* One after another would take 2 s: anything below proves concurrency,
     * with room for a loaded machine or valgrind's serialised threads. */
    assert_true(dt < 1.9);
    /* Never more than the default 10 (fewer under valgrind's slow start). */
    assert_in_range(atomic_load(&max_in_flight), 2, 10);
}

/* ---- the other greenlets keep running; main may wait too ------------------ */

static void *self_thread(void *arg)
{
    *(pthread_t *)arg = pthread_self();
    usleep(100000);
    return (void *)7;
}

static void test_main_waits_others_run(void **state)
{
    (void)state;
    gevtest_ticks = 0;
    gev_greenlet *t = gev_spawn(gevtest_ticker, NULL);
    pthread_t worker = pthread_self();
    void *res = NULL;
    assert_int_equal(gev_threadpool_run(self_thread, &worker, &res), 0);
    assert_ptr_equal(res, (void *)7);
    assert_false(pthread_equal(worker, pthread_self()));
    assert_true(gevtest_ticks >= 5);
    assert_int_equal(gev_kill(t, 1.0), 0);
    gev_release(t);
}

/* main alone: the job in flight is not "would block forever". */
static void test_main_alone_no_edeadlk(void **state)
{
    (void)state;
    slow_job j = { .usec = 20000 };
    assert_int_equal(gev_threadpool_run(slow_fn, &j, NULL), 0);
    assert_int_equal(atomic_load(&j.finished), 1);
}

/* ---- a kill waits for fn; the greenlet then ends with ECANCELED ---------- */

typedef struct kill_probe {
    slow_job job;
    int rc, err;
    int finished_at_return;
    void *result;
    int sleep_rc, sleep_err;
} kill_probe;

static void *run_then_sleep(void *arg)
{
    kill_probe *p = arg;
    p->rc = gev_threadpool_run(slow_fn, &p->job, &p->result);
    p->err = errno;
    p->finished_at_return = atomic_load(&p->job.finished);
    p->sleep_rc = gev_sleep(0.01);
    p->sleep_err = errno;
    return NULL;
}

static void test_kill_waits_for_fn(void **state)
{
    (void)state;
    kill_probe p = { .job = { .usec = 500000 } };
    gev_greenlet *g = gev_spawn(run_then_sleep, &p);
    assert_int_equal(gev_sleep(0.01), 0);       /* g is inside the run */
    double t0 = gevtest_now();
    assert_fails(gev_kill(g, 0.05), ETIMEDOUT);
    assert_false(gev_ready(g));
    assert_int_equal(atomic_load(&p.job.finished), 0);
    assert_int_equal(gev_join(g, 5.0), 0);
    assert_true(gevtest_now() - t0 > 0.4);
    assert_true(gev_killed(g));
    assert_int_equal(p.rc, -1);
    assert_int_equal(p.err, ECANCELED);
    assert_int_equal(p.finished_at_return, 1);
    assert_ptr_equal(p.result, (void *)(intptr_t)42);
    assert_int_equal(p.sleep_rc, -1);
    assert_int_equal(p.sleep_err, ECANCELED);
    gev_release(g);
}

/* A scoped timeout, like a kill, waits for fn and then reports ETIMEDOUT. */
static void test_scoped_timeout_waits_for_fn(void **state)
{
    (void)state;
    slow_job j = { .usec = 100000 };
    void *res = NULL;
    double t0 = gevtest_now();
    gev_timeout *to = gev_timeout_start(0.02);
    assert_non_null(to);
    assert_fails(gev_threadpool_run(slow_fn, &j, &res), ETIMEDOUT);
    assert_true(gevtest_now() - t0 > 0.09);
    assert_int_equal(atomic_load(&j.finished), 1);
    assert_ptr_equal(res, (void *)(intptr_t)42);
    assert_true(gev_timeout_expired(to));
    gev_timeout_cancel(to);
}

/* ---- bad input and hub context --------------------------------------------- */

static int link_rc, link_err, link_ran;

static void run_from_link(gev_greenlet *g, void *arg)
{
    (void)g;
    slow_job *j = arg;
    errno = 0;
    link_rc = gev_threadpool_run(slow_fn, j, NULL);
    link_err = errno;
    link_ran = 1;
}

static void *noop(void *arg) { return arg; }

static void test_hub_context_edeadlk(void **state)
{
    (void)state;
    slow_job j = { .usec = 1000 };
    link_ran = 0;
    gev_greenlet *g = gev_spawn(noop, NULL);
    assert_int_equal(gev_link(g, run_from_link, &j), 0);
    for (int i = 0; i < 100 && !link_ran; i++)
        gev_sleep(0.001);
    assert_int_equal(link_ran, 1);
    assert_int_equal(link_rc, -1);
    assert_int_equal(link_err, EDEADLK);
    assert_int_equal(atomic_load(&j.finished), 0);
    gev_release(g);
}

static void test_bad_input(void **state)
{
    (void)state;
    assert_fails(gev_threadpool_set_max(0), EINVAL);
    assert_fails(gev_threadpool_run(NULL, NULL, NULL), EINVAL);
}

/* ---- set_max bounds the workers --------------------------------------------- */

static void test_set_max_one(void **state)
{
    (void)state;
    reset_counters();
    assert_int_equal(gev_threadpool_set_max(1), 0);
    gev_greenlet *gs[3];
    double t0 = gevtest_now();
    for (int i = 0; i < 3; i++)
        assert_non_null(gs[i] = gev_spawn(run_sleep, &gs[i]));
    gevtest_join_release(gs, 3, 5.0);
    assert_true(gevtest_now() - t0 > 0.29);
    assert_int_equal(atomic_load(&max_in_flight), 1);
    assert_true(gev__threadpool_workers() <= 1);
}

/* ---- idle workers exit (idle timeout shortened for the test) ---------------- */

static void test_idle_workers_exit(void **state)
{
    (void)state;
    gev__threadpool_set_idle_timeout(0.05);
    gev_greenlet *gs[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(gs[i] = gev_spawn(run_sleep, &gs[i]));
    assert_int_equal(gev_joinall(gs, 3, 5.0), 0);
    assert_true(gev__threadpool_workers() >= 1);
    for (int i = 0; i < 100 && gev__threadpool_workers() > 0; i++)
        gev_sleep(0.01);
    assert_int_equal(gev__threadpool_workers(), 0);
    /* And new ones are made when work comes again. */
    slow_job j = { .usec = 1000 };
    assert_int_equal(gev_threadpool_run(slow_fn, &j, NULL), 0);
    gevtest_release_all(gs, 3);
}

/* ---- shutdown waits for a job its greenlet waits for ------------------------ */

static void *run_slow(void *arg)
{
    gev_threadpool_run(slow_fn, arg, NULL);
    return NULL;
}

static void test_shutdown_waits_for_job(void **state)
{
    (void)state;
    slow_job j = { .usec = 100000 };
    gev_greenlet *g = gev_spawn(run_slow, &j);
    gev_release(g);
    assert_int_equal(gev_sleep(0.01), 0);
    gev_shutdown();
    assert_int_equal(atomic_load(&j.finished), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_twenty_sleeps_concurrently),
        gevtest(test_main_waits_others_run),
        gevtest(test_main_alone_no_edeadlk),
        gevtest(test_kill_waits_for_fn),
        gevtest(test_scoped_timeout_waits_for_fn),
        gevtest(test_hub_context_edeadlk),
        gevtest(test_bad_input),
        gevtest(test_set_max_one),
        gevtest(test_idle_workers_exit),
        gevtest(test_shutdown_waits_for_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
