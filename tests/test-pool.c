/* gev_pool: gevent.pool.Pool / Group.  Greenlets only log; the assertions
 * run in main. */
#include "config.h"
#include "gevtest.h"
#include <stdint.h>
#include <stdlib.h>

static gev_pool *pool;
static gev_event *go;       /* members wait for it */

static void *wait_go(void *arg)
{
    int rc = gev_event_wait(go, GEV_FOREVER);
    gevtest_log("%s:%s", (const char *)arg, gevtest_outcome(rc));
    return arg;
}

static void *log_done(void *arg)
{
    gevtest_log("%s", (const char *)arg);
    return arg;
}

static void test_free_count(void **state)
{
    pool = gev_pool_new(2);
    assert_int_equal(gev_pool_free_count(pool), 2);
    assert_int_equal(gev_pool_count(pool), 0);
    gev_greenlet *g = gev_pool_spawn(pool, log_done, "m");
    assert_non_null(g);
    assert_int_equal(gev_pool_free_count(pool), 1);
    assert_int_equal(gev_pool_count(pool), 1);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_ptr_equal(gev_value(g), "m");       /* the handle is still valid */
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_int_equal(gev_pool_free_count(pool), 2);
    assert_int_equal(gev_pool_count(pool), 0);
    assert_log("m");
    gev_pool_free(pool);
}

static void test_third_spawn_waits(void **state)
{
    pool = gev_pool_new(2);
    assert_non_null(gev_pool_spawn(pool, log_done, "1"));
    assert_non_null(gev_pool_spawn(pool, log_done, "2"));
    assert_int_equal(gev_pool_free_count(pool), 0);
    assert_non_null(gev_pool_spawn(pool, log_done, "3"));
    gevtest_log("spawned");
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_log("1 2 spawned 3");
    gev_pool_free(pool);
}

static void *spawn_into_pool(void *arg);

/* Each spawner goes on before the greenlet it spawned runs (gevent's order),
 * and the second waits for the first one's member to end. */
static void test_spawners_served_fifo(void **state)
{
    pool = gev_pool_new(1);
    go = gev_event_new();
    assert_non_null(gev_pool_spawn(pool, wait_go, "m"));
    gev_greenlet *s[2] = {gev_spawn(spawn_into_pool, "x1"), gev_spawn(spawn_into_pool, "x2")};
    gev_sleep(0);
    gev_event_set(go);
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_log("m:0 spawner:ok x1 spawner:ok x2");
    gev_release(s[0]);
    gev_release(s[1]);
    gev_event_free(go);
    gev_pool_free(pool);
}

static void test_unlimited(void **state)
{
    pool = gev_pool_new(0);
    go = gev_event_new();
    assert_int_equal(gev_pool_free_count(pool), SIZE_MAX);
    for (int i = 0; i < 1000; i++)
        assert_non_null(gev_pool_spawn(pool, wait_go, "m"));
    assert_int_equal(gev_pool_count(pool), 1000);
    assert_int_equal(gev_pool_wait_available(pool, 0), 0);
    gev_event_set(go);
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_int_equal(gev_pool_count(pool), 0);
    gev_event_free(go);
    gev_pool_free(pool);
}

static void test_wait_available(void **state)
{
    pool = gev_pool_new(1);
    go = gev_event_new();
    assert_int_equal(gev_pool_wait_available(pool, 0), 0);
    assert_non_null(gev_pool_spawn(pool, wait_go, "m"));
    /* a full pool times out (every timeout value: test-timeout-values) */
    assert_fails(gev_pool_wait_available(pool, 0), ETIMEDOUT);
    assert_fails_in_scoped_timeout(gev_pool_wait_available(pool, GEV_FOREVER));
    gev_event_set(go);
    assert_int_equal(gev_pool_wait_available(pool, GEV_FOREVER), 0);
    assert_int_equal(gev_pool_free_count(pool), 1);
    assert_log("m:0");
    gev_event_free(go);
    gev_pool_free(pool);
}

static void test_join_timeout(void **state)
{
    pool = gev_pool_new(4);
    go = gev_event_new();
    assert_int_equal(gev_pool_join(pool, 0), 0);          /* empty */
    assert_non_null(gev_pool_spawn(pool, wait_go, "a"));
    assert_non_null(gev_pool_spawn(pool, wait_go, "b"));
    assert_fails(gev_pool_join(pool, 0), ETIMEDOUT);
    assert_fails(gev_pool_join(pool, 0.01), ETIMEDOUT);
    assert_int_equal(gev_pool_count(pool), 2);
    gev_event_set(go);
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_log("a:0 b:0");
    gev_event_free(go);
    gev_pool_free(pool);
}

static void on_member_dead(gev_greenlet *g, void *arg)
{
    (void)arg;
    gevtest_log("dead:%s", gev_killed(g) ? "killed" : "finished");
}

static void test_kill_every_member_once(void **state)
{
    pool = gev_pool_new(0);
    go = gev_event_new();
    gev_greenlet *g[3];
    g[0] = gev_pool_spawn(pool, wait_go, "a");
    g[1] = gev_pool_spawn(pool, wait_go, "b");
    gev_sleep(0);
    g[2] = gev_pool_spawn(pool, wait_go, "never");      /* not started yet */
    for (int i = 0; i < 3; i++)
        assert_int_equal(gev_link(g[i], on_member_dead, NULL), 0);
    assert_int_equal(gev_pool_kill(pool, GEV_FOREVER), 0);
    assert_int_equal(gev_pool_count(pool), 0);
    for (int i = 0; i < 3; i++) {
        assert_true(gev_ready(g[i]));
        assert_true(gev_killed(g[i]));
    }
    gev_sleep(0);
    assert_log("a:ECANCELED b:ECANCELED dead:killed dead:killed dead:killed");
    assert_int_equal(gev_pool_kill(pool, GEV_FOREVER), 0);   /* empty: harmless */
    assert_int_equal(gev_pool_join(pool, 0), 0);
    gev_event_free(go);
    gev_pool_free(pool);
}

static void test_kill_zero_timeout_only_requests(void **state)
{
    pool = gev_pool_new(0);
    go = gev_event_new();
    assert_non_null(gev_pool_spawn(pool, wait_go, "a"));
    gev_sleep(0);
    assert_fails(gev_pool_kill(pool, 0), ETIMEDOUT);
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_log("a:ECANCELED");
    assert_non_null(gev_pool_spawn(pool, wait_go, "b"));   /* not started */
    assert_int_equal(gev_pool_kill(pool, 0), 0);
    gev_event_free(go);
    gev_pool_free(pool);
}

static int running, max_running, finished;

static void *busy_member(void *arg)
{
    if (++running > max_running)
        max_running = running;
    gev_sleep(0);
    running--;
    finished++;
    return arg;
}

static void test_10000_through_100(void **state)
{
    pool = gev_pool_new(100);
    running = max_running = finished = 0;
    for (int i = 0; i < 10000; i++)
        if (!gev_pool_spawn(pool, busy_member, NULL))
            fail_msg("spawn %d: %s", i, strerror(errno));
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_int_equal(finished, 10000);
    assert_int_equal(max_running, 100);
    assert_int_equal(gev_pool_count(pool), 0);
    gev_pool_free(pool);
}

/* A spawner killed while it waits for a slot gets NULL + ECANCELED and
 * takes no slot. */
static void *spawn_into_pool(void *arg)
{
    gev_greenlet *g = gev_pool_spawn(pool, log_done, arg);
    gevtest_log("spawner:%s", g ? "ok" : strerrorname_np(errno));
    return NULL;
}

static void test_killed_spawner(void **state)
{
    pool = gev_pool_new(1);
    go = gev_event_new();
    assert_non_null(gev_pool_spawn(pool, wait_go, "m"));
    gev_greenlet *s = gev_spawn(spawn_into_pool, "x");
    gev_sleep(0);
    assert_int_equal(gev_kill(s, GEV_FOREVER), 0);
    gev_event_set(go);
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_log("spawner:ECANCELED m:0");
    assert_int_equal(gev_pool_count(pool), 0);
    gev_release(s);
    gev_event_free(go);
    gev_pool_free(pool);
}

static void *join_own_pool(void *arg)
{
    gevtest_log("join:%s", gevtest_outcome(gev_pool_join(pool, GEV_FOREVER)));
    gevtest_log("kill:%s", gevtest_outcome(gev_pool_kill(pool, GEV_FOREVER)));
    return arg;
}

static void test_member_cannot_join_its_pool(void **state)
{
    pool = gev_pool_new(0);
    assert_non_null(gev_pool_spawn(pool, join_own_pool, NULL));
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_log("join:EDEADLK kill:EDEADLK");
    gev_pool_free(pool);
}

static void test_free_kills_live_members(void **state)
{
    pool = gev_pool_new(2);
    go = gev_event_new();
    assert_non_null(gev_pool_spawn(pool, wait_go, "a"));
    assert_non_null(gev_pool_spawn(pool, wait_go, "b"));
    gev_sleep(0);
    gev_greenlet *s = gev_spawn(spawn_into_pool, "c");
    gev_sleep(0);
    gev_pool_free(pool);            /* kills and waits: cleanup ran */
    assert_log("spawner:EBADF a:ECANCELED b:ECANCELED");
    assert_int_equal(gev_join(s, GEV_FOREVER), 0);
    gev_release(s);
    gev_event_free(go);
}

/* A greenlet joins a pool member while the pool's own link releases the
 * member when it finishes: the joiner resumes after the record is gone
 * and must not touch it (ASan in CI checks that; a full free list of
 * records makes the release a real free). */
static gev_greenlet *joined_member;

static void *join_member(void *arg)
{
    int rc = gev_join(joined_member, GEV_FOREVER);
    gevtest_log("%s:%s", (const char *)arg, gevtest_outcome(rc));
    return NULL;
}

static void *sleep_briefly(void *arg)
{
    gev_sleep(0.01);
    return arg;
}

static void test_join_member_released_by_pool(void **state)
{
    enum { MANY = 300, HOLD = 8 };      /* more than the record free list */
    gev_greenlet *gs[MANY + HOLD];
    for (int i = 0; i < MANY + HOLD; i++)
        gs[i] = gev_spawn(log_done, "");
    assert_int_equal(gev_joinall(gs, MANY + HOLD, GEV_FOREVER), 0);
    gevtest_release_all(gs, MANY);
    gevtest_log_reset();
    pool = gev_pool_new(0);
    joined_member = gev_pool_spawn(pool, sleep_briefly, NULL);
    gev_greenlet *j = gev_spawn(join_member, "joiner");
    gevtest_release_all(gs + MANY, HOLD);   /* the free list is full again */
    assert_int_equal(gev_pool_join(pool, GEV_FOREVER), 0);
    assert_int_equal(gev_join(j, GEV_FOREVER), 0);
    assert_log("joiner:0");
    gev_release(j);
    gev_pool_free(pool);
    pool = NULL;
}

static void test_null_handles(void **state)
{
    errno = 0;
    assert_null(gev_pool_spawn(NULL, log_done, NULL));
    assert_int_equal(errno, EINVAL);
    pool = gev_pool_new(1);
    errno = 0;
    assert_null(gev_pool_spawn(pool, NULL, NULL));
    assert_int_equal(errno, EINVAL);
    gev_pool_free(pool);
    assert_fails(gev_pool_join(NULL, 0), EINVAL);
    assert_fails(gev_pool_kill(NULL, 0), EINVAL);
    assert_fails(gev_pool_wait_available(NULL, 0), EINVAL);
    errno = 0;
    assert_int_equal(gev_pool_free_count(NULL), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(gev_pool_count(NULL), 0);
    assert_int_equal(errno, EINVAL);
    gev_pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_free_count),
        gevtest(test_third_spawn_waits),
        gevtest(test_spawners_served_fifo),
        gevtest(test_unlimited),
        gevtest(test_wait_available),
        gevtest(test_join_timeout),
        gevtest(test_kill_every_member_once),
        gevtest(test_kill_zero_timeout_only_requests),
        gevtest(test_10000_through_100),
        gevtest(test_killed_spawner),
        gevtest(test_member_cannot_join_its_pool),
        gevtest(test_free_kills_live_members),
        gevtest(test_join_member_released_by_pool),
        gevtest(test_null_handles),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
