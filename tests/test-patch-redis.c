/* tests/test-patch-redis.c: unmodified hiredis (the blocking redisCommand
 * API) in greenlets under gev_patch_all(), against a redis-server this test
 * starts on a free loopback port.
 *
 *  - 50 greenlets block in BLPOP, each on a list of its own, while another
 *    greenlet pushes the items 200 ms later: every waiter gets its own
 *    item, and a ticker greenlet keeps ticking meanwhile;
 *  - redisSetTimeout (SO_RCVTIMEO underneath) still ends a read that waits
 *    too long, reported exactly as hiredis reports it without the patch.
 * Skipped (77) when hiredis was not found at configure time or redis-server
 * is not installed.
 */
#include "gevtest.h"
#include "realserver.h"
#include <pthread.h>

#ifndef HAVE_HIREDIS
int main(void)
{
    rs_skip("hiredis was not found at configure time (apt-get install libhiredis-dev)");
}
#else
#include <hiredis/hiredis.h>
#include "gev-patch.h"

#define WAITERS 50

static rs_server redis;

static redisContext *connect_redis(void)
{
    redisContext *c = redisConnect("127.0.0.1", redis.port);
    if (!c || c->err)
        fail_msg("redisConnect: %s", c ? c->errstr : "out of memory");
    return c;
}

typedef struct {
    int index;
    char got[160];
} waiter;

/* The greenlet: a plain blocking BLPOP with a server-side limit of 10 s. */
static void *blpop(void *arg)
{
    waiter *w = arg;
    redisContext *c = connect_redis();
    redisReply *r = redisCommand(c, "BLPOP gev:list:%d 10", w->index);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        snprintf(w->got, sizeof w->got, "%s", r->element[1]->str);
    else
        snprintf(w->got, sizeof w->got, "error:%s", c->err ? c->errstr : "reply");
    freeReplyObject(r);
    redisFree(c);
    return NULL;
}

static void *pusher(void *arg)
{
    (void)arg;
    gev_sleep(0.2);
    redisContext *c = connect_redis();
    for (int i = 0; i < WAITERS; i++)
        freeReplyObject(redisCommand(c, "RPUSH gev:list:%d item-%d", i, i));
    redisFree(c);
    return NULL;
}

static int group_setup(void **state)
{
    (void)state;
    rs_redis_start(&redis);
    assert_int_equal(gev_patch_all(), 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rs_stop(&redis);
    return 0;
}

static void test_fifty_blpops_get_their_items(void **state)
{
    static waiter w[WAITERS];
    gev_greenlet *g[WAITERS + 1], *ticker = gev_spawn(gevtest_ticker, NULL);
    gevtest_ticks = 0;
    double t0 = gevtest_now();
    for (int i = 0; i < WAITERS; i++) {
        w[i] = (waiter){ .index = i };
        g[i] = gev_spawn(blpop, &w[i]);
    }
    g[WAITERS] = gev_spawn(pusher, NULL);
    gevtest_join_release(g, WAITERS + 1, 30);
    double took = gevtest_now() - t0;
    gev_kill(ticker, GEV_FOREVER);
    gev_release(ticker);
    for (int i = 0; i < WAITERS; i++) {
        char want[32];
        snprintf(want, sizeof want, "item-%d", i);
        assert_string_equal(w[i].got, want);
    }
    print_message("%d BLPOPs served after a 0.2 s push: %.3f s, %d ticks\n",
                  WAITERS, took, gevtest_ticks);
    assert_true(took < 3.0 * rs_time_scale());
    assert_true(gevtest_ticks >= gevtest_min_ticks(10));       /* the hub ran while they waited */
}

typedef struct {
    int err;
    char errstr[128];
    double took;
} timeout_outcome;

/* BLPOP on an empty list with a 0.1 s client timeout (redisSetTimeout sets
 * SO_RCVTIMEO), the server's own limit 5 s. */
static void *blpop_with_timeout(void *arg)
{
    timeout_outcome *o = arg;
    redisContext *c = connect_redis();
    struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
    double t0 = gevtest_now();
    if (redisSetTimeout(c, tv) == REDIS_OK && !redisCommand(c, "BLPOP gev:empty 5")) {
        o->err = c->err;
        snprintf(o->errstr, sizeof o->errstr, "%s", c->errstr);
    }
    o->took = gevtest_now() - t0;
    redisFree(c);
    return NULL;
}

static void test_redis_set_timeout_reports_as_hiredis_does(void **state)
{
    /* What hiredis reports without the patch: the same call on a thread of
     * its own, where the hooks are libc's calls. */
    timeout_outcome plain = { 0 }, patched = { 0 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blpop_with_timeout, &plain), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_not_equal(plain.err, 0);

    gevtest_ticks = 0;
    gev_greenlet *ticker = gev_spawn(gevtest_ticker, NULL);
    gev_greenlet *g = gev_spawn(blpop_with_timeout, &patched);
    gevtest_join_release(&g, 1, 10);
    gev_kill(ticker, GEV_FOREVER);
    gev_release(ticker);
    print_message("plain: %d '%s' after %.3f s; in a greenlet: %d '%s' after %.3f s\n",
                  plain.err, plain.errstr, plain.took, patched.err, patched.errstr, patched.took);
    assert_int_equal(patched.err, plain.err);
    assert_string_equal(patched.errstr, plain.errstr);
    assert_true(patched.took >= 0.09 && patched.took < 2.0 * rs_time_scale());
    assert_true(gevtest_ticks > 0);     /* it waited on the hub */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_fifty_blpops_get_their_items),
        gevtest(test_redis_set_timeout_reports_as_hiredis_does),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
#endif
