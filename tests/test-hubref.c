/* tests/test-hubref.c: what keeps a wait in main from being "forever" when
 * the work comes from another thread: a gev_call_threadsafe call queued and
 * not yet run, and gev_hub_ref / gev_hub_unref.
 *
 * Without them the hub cannot know that another thread will call, and a
 * wait in main that only such a call can end fails with EDEADLK (that is
 * still the answer once the last reference is dropped). */
#include "config.h"
#include <pthread.h>
#include <unistd.h>
#include "gevtest.h"

typedef struct worker {
    gev_hub *hub;
    gev_event *e;               /* set through gev_call_threadsafe if non-NULL */
    useconds_t delay;
    bool unref;                 /* then gev_hub_unref */
    int rc;                     /* of the last call made */
} worker;

static void set_event(void *arg) { gev_event_set(arg); }

static void *work(void *arg)
{
    worker *w = arg;
    if (w->delay)
        usleep(w->delay);
    if (w->e && (w->rc = gev_call_threadsafe(w->hub, set_event, w->e)) != 0)
        return NULL;
    if (w->unref)
        w->rc = gev_hub_unref(w->hub);
    return NULL;
}

static void worker_start(pthread_t *th, worker *w, gev_event *e, useconds_t delay, bool unref)
{
    *w = (worker){ .hub = gev_hub_current(), .e = e, .delay = delay, .unref = unref };
    assert_non_null(w->hub);
    assert_int_equal(pthread_create(th, NULL, work, w), 0);
}

/* ---- a queued call is work in flight ------------------------------------ */

/* The program: the worker's call returned 0 before main waits; the
 * forever wait must run it, not fail with EDEADLK. */
static void test_queued_call_is_not_deadlock(void **state)
{
    (void)state;
    gev_event *e = gev_event_new();
    pthread_t th;
    worker w;
    worker_start(&th, &w, e, 0, false);
    pthread_join(th, NULL);             /* queued, not run: main has not yielded */
    assert_int_equal(w.rc, 0);
    assert_false(gev_event_is_set(e));
    assert_int_equal(gev_event_wait(e, GEV_FOREVER), 0);
    assert_true(gev_event_is_set(e));
    /* Run and gone: nothing can set it again. */
    gev_event_clear(e);
    assert_fails(gev_event_wait(e, GEV_FOREVER), EDEADLK);
    gev_event_free(e);
}

/* ---- gev_hub_ref ------------------------------------------------------------ */

/* Main takes a reference and waits for ever on e while a worker, 50 ms
 * later, sets `set` (e or nothing) and drops the reference.  Returns the
 * wait's errno (0: it returned 0); the wait lasted about those 50 ms. */
static int ref_and_wait(gev_event *e, gev_event *set)
{
    pthread_t th;
    worker w;
    assert_int_equal(gev_hub_ref(gev_hub_current()), 0);
    double t0 = gevtest_now();
    worker_start(&th, &w, set, 50000, true);
    errno = 0;
    int rc = gev_event_wait(e, GEV_FOREVER) == 0 ? 0 : errno;
    double dt = gevtest_now() - t0;
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    assert_ge(dt, 0.045);
    assert_lt(dt, 2.0);
    return rc;
}

/* Main says a worker will call: the forever wait lasts until it does. */
static void test_ref_waits_for_worker(void **state)
{
    (void)state;
    gev_event *e = gev_event_new();
    assert_int_equal(ref_and_wait(e, e), 0);
    assert_true(gev_event_is_set(e));
    gev_event_free(e);
}

/* The last reference dropped by another thread while main sleeps in the
 * poll: the hub wakes up and the wait fails with EDEADLK at once. */
static void test_unref_wakes_to_deadlock(void **state)
{
    (void)state;
    gev_event *e = gev_event_new();
    assert_int_equal(ref_and_wait(e, NULL), EDEADLK);
    gev_event_free(e);
}

/* The unref racing with the hub's "is anything left?" decision, many times
 * over: every wait ends (EDEADLK), none sleeps in the poll for ever. */
static void test_unref_race(void **state)
{
    (void)state;
    gev_event *e = gev_event_new();
    for (int i = 0; i < 300; i++) {
        pthread_t th;
        worker w;
        assert_int_equal(gev_hub_ref(gev_hub_current()), 0);
        worker_start(&th, &w, i % 2 ? e : NULL, (useconds_t)(i % 7) * 100, true);
        int rc = gev_event_wait(e, GEV_FOREVER);
        pthread_join(th, NULL);
        assert_int_equal(w.rc, 0);
        if (i % 2) {
            assert_int_equal(rc, 0);        /* the call was queued before the unref */
            gev_event_clear(e);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(errno, EDEADLK);
        }
    }
    gev_event_free(e);
}

/* gev_run keeps running while a reference is held, and returns once the
 * last one is dropped. */
static void test_run_holds_while_referenced(void **state)
{
    (void)state;
    pthread_t th;
    worker w;
    assert_int_equal(gev_hub_ref(gev_hub_current()), 0);
    double t0 = gevtest_now();
    worker_start(&th, &w, NULL, 100000, true);
    assert_int_equal(gev_run(GEV_FOREVER), 0);
    double dt = gevtest_now() - t0;
    pthread_join(th, NULL);
    assert_true(dt >= 0.095 && dt < 2.0);
    /* Nothing left at all: returns at once. */
    t0 = gevtest_now();
    assert_int_equal(gev_run(GEV_FOREVER), 0);
    assert_lt(gevtest_now() - t0, 0.5);
}

/* References count, from the hub's own thread too; a wait with a timeout
 * while referenced times out rather than failing with EDEADLK. */
static void test_counting(void **state)
{
    (void)state;
    gev_hub *hub = gev_hub_current();
    gev_event *e = gev_event_new();
    assert_int_equal(gev_hub_ref(hub), 0);
    assert_int_equal(gev_hub_ref(hub), 0);
    assert_int_equal(gev_hub_unref(hub), 0);
    assert_fails(gev_event_wait(e, 0.02), ETIMEDOUT);
    assert_fails(gev_run(0.02), ETIMEDOUT);
    assert_int_equal(gev_hub_unref(hub), 0);
    assert_fails(gev_event_wait(e, GEV_FOREVER), EDEADLK);
    assert_fails(gev_hub_unref(hub), EINVAL);      /* none held */
    assert_fails(gev_event_wait(e, GEV_FOREVER), EDEADLK);
    gev_event_free(e);
}

static void test_bad_input(void **state)
{
    (void)state;
    assert_fails(gev_hub_ref(NULL), EINVAL);
    assert_fails(gev_hub_unref(NULL), EINVAL);
}

/* gev_shutdown does not wait for references still held: it frees the hub. */
static void test_shutdown_with_ref_held(void **state)
{
    (void)state;
    assert_int_equal(gev_hub_ref(gev_hub_current()), 0);
    gev_greenlet *g = gev_spawn(gevtest_ticker, NULL);
    gev_sleep(0.01);
    gev_release(g);
    double t0 = gevtest_now();
    gev_shutdown();
    assert_lt(gevtest_now() - t0, 0.5);
    /* A fresh hub starts with no references. */
    gev_event *e = gev_event_new();
    assert_fails(gev_event_wait(e, GEV_FOREVER), EDEADLK);
    gev_event_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_queued_call_is_not_deadlock),
        gevtest(test_ref_waits_for_worker),
        gevtest(test_unref_wakes_to_deadlock),
        gevtest(test_unref_race),
        gevtest(test_run_holds_while_referenced),
        gevtest(test_counting),
        gevtest(test_bad_input),
        gevtest(test_shutdown_with_ref_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
