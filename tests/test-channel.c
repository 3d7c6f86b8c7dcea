/* gev_channel: gevent.queue.Channel, a rendezvous (test__queue.py::
 * TestChannel's exact event orders).  Greenlets only log; the assertions run
 * in main. */
#include "config.h"
#include "gevtest.h"
#include <stdint.h>
#include <stdlib.h>

static gev_channel *ch;

static void *get_two(void *arg)
{
    for (int i = 0; i < 2; i++) {
        void *v = NULL;
        if (gev_channel_get(ch, &v, GEV_FOREVER) == 0)
            gevtest_log("%s", (char *)v);
    }
    return arg;
}

static void test_send(void **state)
{
    ch = gev_channel_new();
    gev_greenlet *g = gev_spawn(get_two, NULL);
    gevtest_log("sending");
    assert_int_equal(gev_channel_put(ch, "hello", GEV_FOREVER), 0);
    gevtest_log("sent hello");
    assert_int_equal(gev_channel_put(ch, "world", GEV_FOREVER), 0);
    gevtest_log("sent world");
    assert_log("sending hello sent hello world sent world");
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    gev_release(g);
    gev_channel_free(ch);
}

static void *put_two(void *arg)
{
    gevtest_log("sending hello");
    gev_channel_put(ch, "hello", GEV_FOREVER);
    gevtest_log("sending world");
    gev_channel_put(ch, "world", GEV_FOREVER);
    gevtest_log("sent world");
    return arg;
}

static void test_wait(void **state)
{
    ch = gev_channel_new();
    gev_greenlet *g = gev_spawn(put_two, NULL);
    gevtest_log("waiting");
    for (int i = 0; i < 2; i++) {
        void *v = NULL;
        assert_int_equal(gev_channel_get(ch, &v, GEV_FOREVER), 0);
        gevtest_log("%s", (char *)v);
    }
    assert_log("waiting sending hello hello sending world world");
    gev_sleep(0);
    assert_log("waiting sending hello hello sending world world sent world");
    assert_true(gev_ready(g));
    gev_release(g);
    gev_channel_free(ch);
}

/* test_zero_max_size: the sender waits until a receiver came. */
static void *send_hi(void *arg)
{
    int rc = gev_channel_put(ch, "hi", GEV_FOREVER);
    gevtest_log("sent:%s", gevtest_outcome(rc));
    return arg;
}

static void *receive_and_log(void *arg)
{
    void *v = NULL;
    int rc = gev_channel_get(ch, &v, GEV_FOREVER);
    gevtest_log("%s:%s:%s", (const char *)arg, gevtest_outcome(rc), v ? (char *)v : "-");
    return arg;
}

/* Puts its tag: logs "put<tag>:<outcome>". */
static void *put_and_log(void *arg)
{
    int rc = gev_channel_put(ch, arg, GEV_FOREVER);
    gevtest_log("put%s:%s", (const char *)arg, gevtest_outcome(rc));
    return arg;
}

static void test_sender_waits_for_receiver(void **state)
{
    ch = gev_channel_new();
    gev_greenlet *p = gev_spawn(send_hi, NULL);
    gev_sleep(0.001);
    assert_log("");
    gev_greenlet *r = gev_spawn(receive_and_log, "r");
    gev_greenlet *both[2] = {p, r};
    gevtest_join_release(both, 2, GEV_FOREVER);
    assert_log("r:0:hi sent:0");
    gev_channel_free(ch);
}

static void test_timeouts(void **state)
{
    ch = gev_channel_new();
    void *v;
    assert_fails(gev_channel_put(ch, "x", 0), ETIMEDOUT);
    assert_fails(gev_channel_get(ch, &v, 0), ETIMEDOUT);
    assert_fails(gev_channel_put(ch, "x", 0.01), ETIMEDOUT);
    /* The putter that gave up left nothing behind. */
    assert_fails(gev_channel_get(ch, &v, 0.01), ETIMEDOUT);
    gev_timeout *t = gev_timeout_start(0.01);
    assert_fails(gev_channel_get(ch, &v, GEV_FOREVER), ETIMEDOUT);
    gev_timeout_cancel(t);
    gev_channel_free(ch);
}

static void test_killed_putter_is_not_consumed(void **state)
{
    ch = gev_channel_new();
    gev_greenlet *p = gev_spawn(send_hi, NULL);
    gev_sleep(0);
    assert_int_equal(gev_kill(p, 0), -1);     /* woken with ECANCELED, not run yet */
    void *v;
    assert_fails(gev_channel_get(ch, &v, 0), ETIMEDOUT);
    assert_int_equal(gev_join(p, GEV_FOREVER), 0);
    assert_log("sent:ECANCELED");
    gev_release(p);
    gev_channel_free(ch);
}

static void test_receivers_served_fifo(void **state)
{
    ch = gev_channel_new();
    gev_greenlet *g[2] = {gev_spawn(receive_and_log, "r1"), gev_spawn(receive_and_log, "r2")};
    gev_sleep(0);
    assert_int_equal(gev_channel_put(ch, "a", 0), 0);
    assert_int_equal(gev_channel_put(ch, "b", 0), 0);
    gevtest_join_release(g, 2, GEV_FOREVER);
    assert_log("r1:0:a r2:0:b");
    gev_channel_free(ch);
}

static void test_free_wakes_waiters(void **state)
{
    ch = gev_channel_new();
    gev_greenlet *g[2] = {gev_spawn(send_hi, NULL), gev_spawn(receive_and_log, "r")};
    gev_sleep(0);       /* the sender waits; the receiver takes "hi" */
    gev_greenlet *r = gev_spawn(receive_and_log, "late");
    gev_sleep(0);
    gev_channel_free(ch);
    gevtest_join_release(g, 2, GEV_FOREVER);
    assert_int_equal(gev_join(r, GEV_FOREVER), 0);
    assert_log("r:0:hi sent:0 late:EBADF:-");
    gev_release(r);
}

/* After close every put and get fails with EPIPE at once, any timeout. */
static void assert_closed(void)
{
    void *v = NULL;
    assert_fails(gev_channel_put(ch, "z", 0), EPIPE);
    assert_fails(gev_channel_put(ch, "z", GEV_FOREVER), EPIPE);
    assert_fails(gev_channel_get(ch, &v, 0), EPIPE);
    assert_fails(gev_channel_get(ch, &v, GEV_FOREVER), EPIPE);
    assert_null(v);
}

static void close_ch_twice(void)
{
    gev_channel_close(ch);
    gev_channel_close(ch);          /* harmless */
}

static void test_close_wakes_waiters_both_directions(void **state)
{
    ch = gev_channel_new();
    gevtest_waiters_ended_by(put_and_log, close_ch_twice);
    assert_log("putk:ECANCELED puta:EPIPE putb:EPIPE");
    assert_closed();                /* and nobody took a's or b's item */
    gev_channel_free(ch);
    gevtest_log_reset();
    ch = gev_channel_new();
    gevtest_waiters_ended_by(receive_and_log, close_ch_twice);
    assert_log("k:ECANCELED:- a:EPIPE:- b:EPIPE:-");
    assert_closed();
    gev_channel_close(NULL);
    gev_channel_free(ch);
}

/* A put whose item a getter took before the close still succeeded. */
static void test_close_after_handoff_keeps_it(void **state)
{
    ch = gev_channel_new();
    gev_greenlet *p = gev_spawn(put_and_log, "a");
    gev_sleep(0);
    void *v = NULL;
    assert_int_equal(gev_channel_get(ch, &v, 0), 0);   /* a is woken, not run */
    gev_channel_close(ch);
    assert_int_equal(gev_join(p, GEV_FOREVER), 0);
    assert_string_equal(v, "a");
    assert_log("puta:0");
    gev_release(p);
    gev_channel_free(ch);
}

/* The dispatcher pattern: producers put, a closer joins them and closes,
 * the consumer's loop ends with EPIPE after every item, in put order. */
enum { PRODUCERS = 3, ITEMS = 4 };
static gev_greenlet *producers[PRODUCERS];
static char items[PRODUCERS][ITEMS][3];

/* Producer p puts "<letter p><i>" for i = 0 .. ITEMS-1. */
static void *produce(void *arg)
{
    uintptr_t p = (uintptr_t)arg;
    for (int i = 0; i < ITEMS; i++) {
        items[p][i][0] = (char)('a' + p);
        items[p][i][1] = (char)('0' + i);   /* ITEMS <= 10 */
        if (gev_channel_put(ch, items[p][i], GEV_FOREVER) != 0)
            gevtest_log("put%s:%s", items[p][i], gevtest_outcome(-1));
    }
    return arg;
}

static void close_ch(void) { gev_channel_close(ch); }

static void test_close_ends_consumer_loop(void **state)
{
    ch = gev_channel_new();
    for (uintptr_t p = 0; p < PRODUCERS; p++)
        producers[p] = gev_spawn(produce, (void *)p);
    struct gevtest_closer c = {producers, PRODUCERS, close_ch};
    gev_greenlet *closer = gev_spawn(gevtest_close_after_producers, &c);
    void *v;
    int rc;
    char got[256] = "";
    while ((rc = gev_channel_get(ch, &v, GEV_FOREVER)) == 0)
        strcat(got, v);
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EPIPE);
    /* Each get takes the first waiting putter's item: a0 b0 c0, then each
     * producer's next item queues behind the others again. */
    assert_string_equal(got, "a0b0c0a1b1c1a2b2c2a3b3c3");
    assert_int_equal(gev_join(closer, GEV_FOREVER), 0);
    assert_log("joined:0");             /* and no put failed */
    gevtest_release_all(producers, PRODUCERS);
    gev_release(closer);
    gev_channel_free(ch);
}

static void free_ch(void) { gev_channel_free(ch); }

static void test_free_wakes_waiters_both_directions(void **state)
{
    ch = gev_channel_new();
    gevtest_waiters_ended_by(receive_and_log, free_ch);
    assert_log("k:ECANCELED:- a:EBADF:- b:EBADF:-");
    gevtest_log_reset();
    ch = gev_channel_new();
    gevtest_waiters_ended_by(put_and_log, free_ch);
    assert_log("putk:ECANCELED puta:EBADF putb:EBADF");
}

static void test_null_handles(void **state)
{
    void *v;
    assert_fails(gev_channel_put(NULL, NULL, 0), EINVAL);
    assert_fails(gev_channel_get(NULL, &v, 0), EINVAL);
    gev_channel_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_send),
        gevtest(test_wait),
        gevtest(test_sender_waits_for_receiver),
        gevtest(test_timeouts),
        gevtest(test_killed_putter_is_not_consumed),
        gevtest(test_receivers_served_fifo),
        gevtest(test_free_wakes_waiters),
        gevtest(test_free_wakes_waiters_both_directions),
        gevtest(test_close_wakes_waiters_both_directions),
        gevtest(test_close_after_handoff_keeps_it),
        gevtest(test_close_ends_consumer_loop),
        gevtest(test_null_handles),
    };
    return cmocka_run_group_tests_name("channel", tests, NULL, NULL);
}
