/* tests/test-threadsafe.c: gev_call_threadsafe.
 *
 * Calls from other threads run in the hub's thread, every one of them, in
 * order per calling thread, and wake a hub that was waiting.  The hub cannot
 * know that another thread will call, so the waits here have timeouts (a
 * wait in main that only such a call could end would be EDEADLK). */
#include "config.h"
#include <pthread.h>
#include <unistd.h>
#include "gevtest.h"

#define NTHREADS 4
#define NCALLS 1000

static pthread_t hub_thread;
static int ran_total, wrong_thread, out_of_order;
static int last_seq[NTHREADS];

typedef struct call_arg {
    int thread, seq;
} call_arg;

static call_arg args[NTHREADS][NCALLS];

static void count_call(void *arg)
{
    call_arg *a = arg;
    if (!pthread_equal(pthread_self(), hub_thread))
        wrong_thread++;
    if (a->seq != last_seq[a->thread] + 1)
        out_of_order++;
    last_seq[a->thread] = a->seq;
    ran_total++;
}

typedef struct caller {
    gev_hub *hub;
    int index;
    int failures;
} caller;

static void *call_many(void *arg)
{
    caller *c = arg;
    for (int i = 0; i < NCALLS; i++) {
        call_arg *a = &args[c->index][i];
        a->thread = c->index;
        a->seq = i;
        if (gev_call_threadsafe(c->hub, count_call, a) != 0)
            c->failures++;
    }
    return NULL;
}

static void test_four_threads(void **state)
{
    (void)state;
    hub_thread = pthread_self();
    ran_total = wrong_thread = out_of_order = 0;
    for (int i = 0; i < NTHREADS; i++)
        last_seq[i] = -1;
    gev_hub *hub = gev_hub_current();
    assert_non_null(hub);
    pthread_t th[NTHREADS];
    caller cs[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        cs[i] = (caller){ hub, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, call_many, &cs[i]), 0);
    }
    double t0 = gevtest_now();
    while (ran_total < NTHREADS * NCALLS && gevtest_now() - t0 < 10.0)
        gev_sleep(0.001);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(cs[i].failures, 0);
    }
    assert_int_equal(ran_total, NTHREADS * NCALLS);
    assert_int_equal(wrong_thread, 0);
    assert_int_equal(out_of_order, 0);
}

/* A hub blocked in its poll wakes up for the call at once. */
static gev_greenlet *sleeper;
static double woken_at;

static void wake_sleeper(void *arg)
{
    (void)arg;
    woken_at = gevtest_now();
    gev_kill(sleeper, 0);
}

static void *call_after_50ms(void *arg)
{
    usleep(50000);
    gev_call_threadsafe(arg, wake_sleeper, NULL);
    return NULL;
}

static void *sleep_long(void *arg)
{
    (void)arg;
    gev_sleep(5.0);
    return NULL;
}

static void test_wakes_the_hub(void **state)
{
    (void)state;
    woken_at = 0;
    gev_hub *hub = gev_hub_current();
    sleeper = gev_spawn(sleep_long, NULL);
    pthread_t th;
    double t0 = gevtest_now();
    assert_int_equal(pthread_create(&th, NULL, call_after_50ms, hub), 0);
    assert_int_equal(gev_join(sleeper, 5.0), 0);
    double dt = gevtest_now() - t0;
    pthread_join(th, NULL);
    assert_gt(woken_at, 0);
    assert_true(dt >= 0.049 && dt < 1.0);
    assert_true(gev_killed(sleeper));
    gev_release(sleeper);
}

/* From the hub's own thread: queued, runs on a later turn, not inside. */
static int flag;

static void set_flag(void *arg) { *(int *)arg = 1; }

static void test_from_own_thread(void **state)
{
    (void)state;
    flag = 0;
    assert_int_equal(gev_call_threadsafe(gev_hub_current(), set_flag, &flag), 0);
    assert_int_equal(flag, 0);
    for (int i = 0; i < 100 && !flag; i++)
        gev_sleep(0.001);
    assert_int_equal(flag, 1);
}

static void test_bad_input(void **state)
{
    (void)state;
    assert_fails(gev_call_threadsafe(NULL, set_flag, &flag), EINVAL);
    assert_fails(gev_call_threadsafe(gev_hub_current(), NULL, NULL), EINVAL);
}

/* A call queued before gev_shutdown still runs, in the hub's thread. */
static pthread_t ran_in;

static void record_thread(void *arg)
{
    ran_in = pthread_self();
    *(int *)arg = 1;
}

static void *call_once(void *arg)
{
    gev_call_threadsafe(arg, record_thread, &flag);
    return NULL;
}

static void test_pending_runs_at_shutdown(void **state)
{
    (void)state;
    flag = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, call_once, gev_hub_current()), 0);
    pthread_join(th, NULL);
    gev_shutdown();
    assert_int_equal(flag, 1);
    assert_true(pthread_equal(ran_in, pthread_self()));
}

/* Into another thread's hub (handed over under a lock). */
static pthread_mutex_t other_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t other_cv = PTHREAD_COND_INITIALIZER;
static gev_hub *other_hub;

static void *other_hub_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&other_mu);
    other_hub = gev_hub_current();
    pthread_cond_signal(&other_cv);
    pthread_mutex_unlock(&other_mu);
    for (int i = 0; i < 5000 && !flag; i++)
        gev_sleep(0.001);
    gev_shutdown();
    return NULL;
}

static void test_into_other_hub(void **state)
{
    (void)state;
    flag = 0;
    ran_in = pthread_self();
    other_hub = NULL;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_hub_thread, NULL), 0);
    pthread_mutex_lock(&other_mu);
    while (!other_hub)
        pthread_cond_wait(&other_cv, &other_mu);
    gev_hub *hub = other_hub;
    pthread_mutex_unlock(&other_mu);
    assert_int_equal(gev_call_threadsafe(hub, record_thread, &flag), 0);
    pthread_join(th, NULL);
    assert_int_equal(flag, 1);
    assert_true(pthread_equal(ran_in, th));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_four_threads),
        gevtest(test_wakes_the_hub),
        gevtest(test_from_own_thread),
        gevtest(test_bad_input),
        gevtest(test_pending_runs_at_shutdown),
        gevtest(test_into_other_hub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
