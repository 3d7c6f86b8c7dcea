/* Links: order, once, after death, unlink during notification, hub context. */
#include "gevtest.h"
#include <stdlib.h>

static void *noop(void *arg) { return arg; }

static int order[1000];
static int order_len;

static void record_index(gev_greenlet *g, void *arg)
{
    order[order_len++] = (int)(intptr_t)arg;
}

static void test_1000_links_in_order(void **state)
{
    order_len = 0;
    gev_greenlet *g = gev_spawn(noop, NULL);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(gev_link(g, record_index, (void *)(intptr_t)i), 0);
    gev_join(g, GEV_FOREVER);
    gev_sleep(0);
    assert_int_equal(order_len, 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(order[i], i);
    gev_sleep(0);
    assert_int_equal(order_len, 1000);   /* once */
    gev_release(g);
}

static void log_link(gev_greenlet *g, void *arg)
{
    gevtest_log("%s", (const char *)arg);
}

static void test_link_after_death_fires(void **state)
{
    gev_greenlet *g = gev_spawn(noop, NULL);
    gev_join(g, GEV_FOREVER);
    assert_int_equal(gev_link(g, log_link, "late"), 0);
    assert_log("");               /* not synchronous: links run in the hub */
    gev_sleep(0);
    assert_log("late");
    gev_release(g);
}

static void unlink_next(gev_greenlet *g, void *arg)
{
    gevtest_log("first");
    assert_int_equal(gev_unlink(g, log_link, "second"), 0);
}

static void test_link_unlinks_a_later_one(void **state)
{
    gev_greenlet *g = gev_spawn(noop, NULL);
    gev_link(g, unlink_next, NULL);
    gev_link(g, log_link, "second");
    gev_link(g, log_link, "third");
    gev_join(g, GEV_FOREVER);
    gev_sleep(0);
    assert_log("first third");
    gev_release(g);
}

static void test_unlink_before_death(void **state)
{
    gev_greenlet *g = gev_spawn(noop, NULL);
    gev_link(g, log_link, "a");
    gev_link(g, log_link, "b");
    assert_int_equal(gev_unlink(g, log_link, "a"), 0);
    assert_fails(gev_unlink(g, log_link, "a"), ENOENT);
    gev_join(g, GEV_FOREVER);
    gev_sleep(0);
    assert_log("b");
    gev_release(g);
    assert_fails(gev_link(NULL, log_link, NULL), EINVAL);
    assert_fails(gev_link(gev_current(), NULL, NULL), EINVAL);
}

static void block_in_link(gev_greenlet *g, void *arg)
{
    int rc = gev_sleep(0);
    int e1 = errno;
    int rc2 = gev_sleep(0.01);
    int e2 = errno;
    int rc3 = gev_join(g, 1.0);   /* g is dead: no wait needed, succeeds */
    gevtest_log("%d:%s %d:%s %d", rc, e1 == EDEADLK ? "EDEADLK" : "?",
                rc2, e2 == EDEADLK ? "EDEADLK" : "?", rc3);
}

static void test_blocking_in_link_is_edeadlk(void **state)
{
    gev_greenlet *g = gev_spawn(noop, NULL);
    gev_link(g, block_in_link, NULL);
    gev_join(g, GEV_FOREVER);
    gev_sleep(0);
    assert_log("-1:EDEADLK -1:EDEADLK 0");
    gev_release(g);
}

static void release_in_link(gev_greenlet *g, void *arg)
{
    gevtest_log("released");
    gev_release(g);
}

static void test_release_inside_link(void **state)
{
    gev_greenlet *g = gev_spawn(noop, NULL);
    gev_link(g, release_in_link, NULL);
    gev_link(g, log_link, "after");   /* still runs: the record lives until notified */
    gev_sleep(0);
    gev_sleep(0);
    assert_log("released after");
}

static void *join_then_log(void *arg)
{
    gev_join(arg, GEV_FOREVER);
    gevtest_log("joiner");
    return NULL;
}

static void test_links_run_after_ready_greenlets(void **state)
{
    gev_greenlet *g = gev_spawn(noop, NULL);
    gev_greenlet *j = gev_spawn(join_then_log, g);
    gev_link(g, log_link, "link");
    gev_sleep(0);    /* g finishes first (spawn order); its links wait for the hub */
    gev_join(j, GEV_FOREVER);
    gev_sleep(0);
    assert_log("joiner link");
    gev_release(g);
    gev_release(j);
}

static void test_join_returns_after_earlier_links(void **state)
{
    /* gevent: join is a link, so links added before it run first. */
    gev_greenlet *g = gev_spawn(noop, NULL);
    gev_link(g, log_link, "link");
    gev_join(g, GEV_FOREVER);
    gevtest_log("joined");
    assert_log("link joined");
    gev_release(g);
}

/* Links that run links: Y's link kills the unstarted X1, whose link kills
 * the unstarted X2, whose joiner must then resume promptly.  Each kill
 * queues the next notification while the hub is running callbacks; it must
 * run on the hub's next turn, not when the busy loop next polls (a
 * gev_sleep(0) spinner would get thousands of turns first). */
static gev_greenlet *chain_x1, *chain_x2;
static int chain_spins;

static void *chain_ret(void *arg) { return arg; }
static void chain_noop(gev_greenlet *g, void *arg) { (void)g; (void)arg; }
static void chain_kill_x1(gev_greenlet *g, void *arg) { (void)g; (void)arg; gev_kill(chain_x1, 0); }
static void chain_kill_x2(gev_greenlet *g, void *arg) { (void)g; (void)arg; gev_kill(chain_x2, 0); }

static void *chain_joiner(void *arg)
{
    gev_join(chain_x2, GEV_FOREVER);
    *(int *)arg = chain_spins;
    return NULL;
}

static void *chain_spinner(void *arg)
{
    for (chain_spins = 0; chain_spins < 100000 && !*(int *)arg; chain_spins++)
        gev_sleep(0);
    return NULL;
}

static void test_chained_link_callbacks_run_promptly(void **state)
{
    chain_x1 = gev_spawn_later(10.0, chain_ret, NULL);
    chain_x2 = gev_spawn_later(10.0, chain_ret, NULL);
    assert_int_equal(gev_link(chain_x1, chain_kill_x2, NULL), 0);
    assert_int_equal(gev_link(chain_x2, chain_noop, NULL), 0);
    gev_greenlet *y = gev_spawn(chain_ret, NULL);
    assert_int_equal(gev_link(y, chain_kill_x1, NULL), 0);
    int woke_at = 0;
    gev_greenlet *j = gev_spawn(chain_joiner, &woke_at);
    gev_greenlet *s = gev_spawn(chain_spinner, &woke_at);
    assert_int_equal(gev_join(j, GEV_FOREVER), 0);
    assert_int_equal(gev_join(s, GEV_FOREVER), 0);
    assert_true(woke_at > 0 && woke_at < 10);
    gev_greenlet *all[] = { chain_x1, chain_x2, y, j, s };
    gevtest_release_all(all, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_1000_links_in_order),
        gevtest(test_link_after_death_fires),
        gevtest(test_link_unlinks_a_later_one),
        gevtest(test_unlink_before_death),
        gevtest(test_blocking_in_link_is_edeadlk),
        gevtest(test_release_inside_link),
        gevtest(test_links_run_after_ready_greenlets),
        gevtest(test_join_returns_after_earlier_links),
        gevtest(test_chained_link_callbacks_run_promptly),
    };
    return cmocka_run_group_tests_name("link", tests, NULL, NULL);
}
