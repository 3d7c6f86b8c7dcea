/* gev_queue: gevent.queue.Queue (test__queue.py::TestQueue and more).
 * Greenlets only log; the assertions run in main. */
#include "config.h"
#include "gevtest.h"
#include <stdint.h>
#include <stdlib.h>

static gev_queue *q;

static void *putter_abc(void *arg)
{
    static char *items[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        if (gev_queue_put(q, items[i], GEV_FOREVER) == 0)
            gevtest_log("%s", items[i]);
    return arg;
}

static char *get_now(void)
{
    void *v = NULL;
    assert_int_equal(gev_queue_get(q, &v, 0), 0);
    return v;
}

static void test_max_size(void **state)
{
    q = gev_queue_new(2);
    gev_greenlet *p = gev_spawn(putter_abc, NULL);
    gev_sleep(0);
    assert_log("a b");            /* the putter waits with c */
    assert_int_equal(gev_queue_size(q), 2);
    assert_string_equal(get_now(), "a");
    assert_int_equal(gev_queue_size(q), 2);   /* c moved in at once */
    gev_sleep(0);
    assert_log("a b c");
    assert_string_equal(get_now(), "b");
    assert_string_equal(get_now(), "c");
    assert_true(gev_ready(p));
    gev_release(p);
    gev_queue_free(q);
}

/* Logs "<tag>:<outcome>:<item>". */
static void *get_and_log(void *arg)
{
    void *v = NULL;
    int rc = gev_queue_get(q, &v, GEV_FOREVER);
    gevtest_log("%s:%s:%s", (const char *)arg, gevtest_outcome(rc), v ? (const char *)v : "-");
    return NULL;
}

static void *put_and_log(void *arg)
{
    int rc = gev_queue_put(q, arg, GEV_FOREVER);
    gevtest_log("put%s:%s", (const char *)arg, gevtest_outcome(rc));
    return NULL;
}

static void *log_nothing(void *arg) { return arg; }

static void test_getters_served_fifo(void **state)
{
    q = gev_queue_new(0);
    gev_greenlet *g[3] = {gev_spawn(get_and_log, "g1"), gev_spawn(get_and_log, "g2"),
                          gev_spawn(get_and_log, "g3")};
    gev_sleep(0);
    assert_int_equal(gev_queue_put(q, "x", 0), 0);
    assert_int_equal(gev_queue_put(q, "y", 0), 0);
    assert_int_equal(gev_queue_put(q, "z", 0), 0);
    assert_int_equal(gev_queue_size(q), 0);    /* handed over, not queued */
    gevtest_join_release(g, 3, GEV_FOREVER);
    assert_log("g1:0:x g2:0:y g3:0:z");
    gev_queue_free(q);
}

static void test_putters_served_fifo(void **state)
{
    q = gev_queue_new(1);
    assert_int_equal(gev_queue_put(q, "0", 0), 0);
    assert_fails(gev_queue_put(q, "late", 0), ETIMEDOUT);
    gev_greenlet *g[3] = {gev_spawn(put_and_log, "1"), gev_spawn(put_and_log, "2"),
                          gev_spawn(put_and_log, "3")};
    gev_sleep(0);
    for (int i = 0; i < 4; i++) {
        char want[2] = {(char)('0' + i), 0};
        assert_string_equal(get_now(), want);
    }
    gevtest_join_release(g, 3, GEV_FOREVER);
    assert_log("put1:0 put2:0 put3:0");
    gev_queue_free(q);
}

static void test_zero_timeout_getters_and_later_item_stays(void **state)
{
    q = gev_queue_new(0);
    void *v;
    assert_fails(gev_queue_get(q, &v, 0), ETIMEDOUT);
    assert_fails(gev_queue_get(q, &v, 0), ETIMEDOUT);
    assert_int_equal(gev_queue_put(q, "sent", 0), 0);
    assert_int_equal(gev_queue_size(q), 1);
    assert_string_equal(get_now(), "sent");
    gev_queue_free(q);
}

/* test_two_bogus_waiters: getters under a 0-second scoped timeout. */
static void *get_under_zero_timeout(void *arg)
{
    gev_timeout *t = gev_timeout_start(0);
    get_and_log(arg);
    gev_timeout_cancel(t);
    return NULL;
}

static void test_two_bogus_waiters(void **state)
{
    q = gev_queue_new(0);
    gev_greenlet *g[2] = {gev_spawn(get_under_zero_timeout, "e1"),
                          gev_spawn(get_under_zero_timeout, "e2")};
    gev_sleep(0.05);
    assert_int_equal(gev_queue_put(q, "sent", 0), 0);
    gevtest_join_release(g, 2, GEV_FOREVER);
    assert_log("e1:ETIMEDOUT:- e2:ETIMEDOUT:-");
    assert_string_equal(get_now(), "sent");
    gev_queue_free(q);
}

static void *peek_and_log(void *arg)
{
    void *v = NULL;
    int rc = gev_queue_peek(q, &v, GEV_FOREVER);
    gevtest_log("%s:%s:%s", (const char *)arg, gevtest_outcome(rc), v ? (const char *)v : "-");
    return NULL;
}

static void test_peek(void **state)
{
    q = gev_queue_new(0);
    void *v = NULL;
    assert_fails(gev_queue_peek(q, &v, 0), ETIMEDOUT);
    gev_greenlet *g = gev_spawn(peek_and_log, "p");
    gev_sleep(0);
    assert_int_equal(gev_queue_put(q, "hi", 0), 0);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("p:0:hi");
    assert_int_equal(gev_queue_size(q), 1);        /* the peek took nothing */
    assert_int_equal(gev_queue_peek(q, &v, 0), 0);
    assert_string_equal(v, "hi");
    assert_int_equal(gev_queue_size(q), 1);
    assert_string_equal(get_now(), "hi");
    gev_release(g);
    gev_queue_free(q);
}

static void test_million_items_unbounded(void **state)
{
    enum { N = 1000000 };
    q = gev_queue_new(0);
    for (uintptr_t i = 0; i < N; i++)
        if (gev_queue_put(q, (void *)i, 0) != 0)
            fail_msg("put %lu failed", (unsigned long)i);
    assert_int_equal(gev_queue_size(q), N);
    for (uintptr_t i = 0; i < N; i++) {
        void *v;
        if (gev_queue_get(q, &v, 0) != 0 || v != (void *)i)
            fail_msg("get %lu wrong", (unsigned long)i);
    }
    assert_int_equal(gev_queue_size(q), 0);
    gev_queue_free(q);
}

static void test_wrapped_ring_keeps_order(void **state)
{
    q = gev_queue_new(0);
    uintptr_t next_in = 0, next_out = 0;
    /* Interleave so the ring wraps before it grows. */
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 7 + round; i++)
            assert_int_equal(gev_queue_put(q, (void *)next_in++, 0), 0);
        for (int i = 0; i < 5 + round; i++) {
            void *v;
            assert_int_equal(gev_queue_get(q, &v, 0), 0);
            assert_ptr_equal(v, (void *)next_out++);
        }
    }
    assert_int_equal(gev_queue_size(q), next_in - next_out);
    gev_queue_free(q);
}

static void test_kill_cancels_get(void **state)
{
    q = gev_queue_new(0);
    gev_greenlet *g = gev_spawn(get_and_log, "g");
    gev_sleep(0);
    assert_int_equal(gev_kill(g, 0), -1);     /* woken, not dead yet */
    /* The killed getter is not waiting any more: the item stays queued. */
    assert_int_equal(gev_queue_put(q, "x", 0), 0);
    assert_int_equal(gev_queue_size(q), 1);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("g:ECANCELED:-");
    gev_release(g);
    gev_queue_free(q);
}

static void test_scoped_timeout_on_full_put(void **state)
{
    q = gev_queue_new(1);
    assert_int_equal(gev_queue_put(q, "a", 0), 0);
    gev_timeout *t = gev_timeout_start(0.01);
    assert_fails(gev_queue_put(q, "b", GEV_FOREVER), ETIMEDOUT);
    gev_timeout_cancel(t);
    assert_fails(gev_queue_put(q, "b", 0.01), ETIMEDOUT);
    assert_int_equal(gev_queue_size(q), 1);
    assert_string_equal(get_now(), "a");       /* b never went in */
    assert_int_equal(gev_queue_size(q), 0);
    gev_queue_free(q);
}

/* The getter's 10 ms timeout and a putter started by a 10 ms timer that was
 * armed just after it end in the same loop turn: the getter is woken with
 * ETIMEDOUT first, and the putter that runs after it must not hand it the
 * item: it stays queued. */
static void *put_x(void *arg)
{
    gev_queue_put(q, "x", 0);
    return arg;
}

static void *get_10ms(void *arg)
{
    void *v = NULL;
    int rc = gev_queue_get(q, &v, 0.01);
    gevtest_log("%s", rc == 0 ? (char *)v : gevtest_outcome(rc));
    return arg;
}

static void test_expired_getter_never_consumes(void **state)
{
    q = gev_queue_new(0);
    gev_greenlet *g = gev_spawn(get_10ms, NULL);
    gev_sleep(0);
    gev_greenlet *p = gev_spawn_later(0.01, put_x, NULL);
    gev_greenlet *both[2] = {g, p};
    gevtest_join_release(both, 2, GEV_FOREVER);
    assert_log("ETIMEDOUT");
    assert_int_equal(gev_queue_size(q), 1);
    gev_queue_free(q);
}

/* Hub context: what can complete at once does; a wait cannot. */
static void from_link(gev_greenlet *g, void *arg)
{
    (void)g;
    (void)arg;
    void *v;
    gevtest_log("put:%s", gevtest_outcome(gev_queue_put(q, "y", GEV_FOREVER)));
    gevtest_log("get:%s", gevtest_outcome(gev_queue_get(q, &v, GEV_FOREVER)));
    gevtest_log("get0:%s", gevtest_outcome(gev_queue_get(q, &v, 0)));
    gevtest_log("get0:%s", gevtest_outcome(gev_queue_get(q, &v, 0)));
    gevtest_log("get:%s", gevtest_outcome(gev_queue_get(q, &v, GEV_FOREVER)));
}

static void test_from_hub_context(void **state)
{
    q = gev_queue_new(0);
    assert_int_equal(gev_queue_put(q, "x", 0), 0);
    gev_greenlet *h = gev_spawn(log_nothing, NULL);
    assert_int_equal(gev_link(h, from_link, NULL), 0);
    assert_int_equal(gev_join(h, GEV_FOREVER), 0);
    gev_sleep(0);
    gev_sleep(0);
    assert_log("put:0 get:0 get0:0 get0:ETIMEDOUT get:EDEADLK");
    gev_release(h);
    gev_queue_free(q);
}

static void free_q(void) { gev_queue_free(q); }

/* Getters and peekers on an empty queue, putters on a full one (whose item
 * stays queued: free releases the slot, the item is the caller's). */
static void test_free_wakes_waiters(void **state)
{
    q = gev_queue_new(0);
    gevtest_waiters_ended_by(get_and_log, free_q);
    assert_log("k:ECANCELED:- a:EBADF:- b:EBADF:-");
    gevtest_log_reset();
    q = gev_queue_new(0);
    gevtest_waiters_ended_by(peek_and_log, free_q);
    assert_log("k:ECANCELED:- a:EBADF:- b:EBADF:-");
    gevtest_log_reset();
    q = gev_queue_new(1);
    assert_int_equal(gev_queue_put(q, "x", 0), 0);
    gevtest_waiters_ended_by(put_and_log, free_q);
    assert_log("putk:ECANCELED puta:EBADF putb:EBADF");
}

/* After close and drain: put, get and peek fail with EPIPE at once, with
 * any timeout (0 too: EPIPE, not ETIMEDOUT). */
static void assert_closed_and_empty(void)
{
    void *v = NULL;
    assert_int_equal(gev_queue_size(q), 0);
    assert_fails(gev_queue_put(q, "z", 0), EPIPE);
    assert_fails(gev_queue_put(q, "z", GEV_FOREVER), EPIPE);
    assert_fails(gev_queue_get(q, &v, 0), EPIPE);
    assert_fails(gev_queue_get(q, &v, GEV_FOREVER), EPIPE);
    assert_fails(gev_queue_peek(q, &v, 0), EPIPE);
    assert_fails(gev_queue_peek(q, &v, GEV_FOREVER), EPIPE);
    assert_null(v);
    assert_int_equal(gev_queue_size(q), 0);
}

/* Getters and peekers blocked on an empty queue wake with EPIPE: the
 * getters in order, then the peekers. */
static void test_close_wakes_getters_and_peekers(void **state)
{
    q = gev_queue_new(0);
    gev_greenlet *g[4] = {gev_spawn(get_and_log, "g1"), gev_spawn(peek_and_log, "p1"),
                          gev_spawn(get_and_log, "g2"), gev_spawn(peek_and_log, "p2")};
    gev_sleep(0);
    gev_queue_close(q);
    gev_queue_close(q);             /* harmless */
    gevtest_join_release(g, 4, GEV_FOREVER);
    assert_log("g1:EPIPE:- g2:EPIPE:- p1:EPIPE:- p2:EPIPE:-");
    assert_closed_and_empty();
    gev_queue_close(NULL);
    gev_queue_free(q);
}

/* Bounded and full: blocked putters wake with EPIPE in order and their
 * items are not added; the queued items are still got (and peeked), then
 * EPIPE. */
static void test_close_full_bounded_queue(void **state)
{
    q = gev_queue_new(2);
    assert_int_equal(gev_queue_put(q, "a", 0), 0);
    assert_int_equal(gev_queue_put(q, "b", 0), 0);
    gev_greenlet *g[2] = {gev_spawn(put_and_log, "c"), gev_spawn(put_and_log, "d")};
    gev_sleep(0);
    gev_queue_close(q);
    gevtest_join_release(g, 2, GEV_FOREVER);
    assert_log("putc:EPIPE putd:EPIPE");
    assert_int_equal(gev_queue_size(q), 2);
    assert_fails(gev_queue_put(q, "e", GEV_FOREVER), EPIPE);
    void *v = NULL;
    assert_int_equal(gev_queue_peek(q, &v, 0), 0);
    assert_string_equal(v, "a");
    assert_string_equal(get_now(), "a");
    assert_int_equal(gev_queue_size(q), 1);
    assert_int_equal(gev_queue_get(q, &v, GEV_FOREVER), 0);
    assert_string_equal(v, "b");
    assert_closed_and_empty();
    gev_queue_free(q);
}

/* Closed with items, then freed: the ring goes, the items are ours. */
static void test_free_after_close_with_items(void **state)
{
    q = gev_queue_new(0);
    assert_int_equal(gev_queue_put(q, "a", 0), 0);
    gev_queue_close(q);
    assert_int_equal(gev_queue_size(q), 1);
    gev_queue_free(q);
}

/* A getter handed an item before the close still gets it. */
static void test_close_after_handoff_keeps_it(void **state)
{
    q = gev_queue_new(0);
    gev_greenlet *g = gev_spawn(get_and_log, "g");
    gev_sleep(0);
    assert_int_equal(gev_queue_put(q, "x", 0), 0);   /* g is woken, not run */
    gev_queue_close(q);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_log("g:0:x");
    assert_closed_and_empty();
    gev_release(g);
    gev_queue_free(q);
}

/* Hub context: a closed, empty queue answers EPIPE, not EDEADLK. */
static void closed_from_link(gev_greenlet *g, void *arg)
{
    (void)g;
    (void)arg;
    void *v;
    gevtest_log("get:%s", gevtest_outcome(gev_queue_get(q, &v, GEV_FOREVER)));
    gevtest_log("get:%s", gevtest_outcome(gev_queue_get(q, &v, GEV_FOREVER)));
    gevtest_log("put:%s", gevtest_outcome(gev_queue_put(q, "y", GEV_FOREVER)));
}

static void test_closed_from_hub_context(void **state)
{
    q = gev_queue_new(0);
    assert_int_equal(gev_queue_put(q, "x", 0), 0);
    gev_queue_close(q);
    gev_greenlet *h = gev_spawn(log_nothing, NULL);
    assert_int_equal(gev_link(h, closed_from_link, NULL), 0);
    assert_int_equal(gev_join(h, GEV_FOREVER), 0);
    gev_sleep(0);
    assert_log("get:0 get:EPIPE put:EPIPE");
    gev_release(h);
    gev_queue_free(q);
}

/* The dispatcher pattern: producers put, a closer joins them and closes;
 * the consumer's loop gets every item in the order the queue took them,
 * then ends with EPIPE.  Unbounded, every put completes at once, so the
 * order the producers record is the queue's order; bounded (2), putters
 * block and each producer's items must still come in its own order. */
enum { PRODUCERS = 3, ITEMS = 50 };
static gev_greenlet *producers[PRODUCERS];
static uintptr_t put_order[PRODUCERS * ITEMS];
static size_t n_put;

static void *produce(void *arg)
{
    uintptr_t p = (uintptr_t)arg;
    for (uintptr_t i = 0; i < ITEMS; i++) {
        uintptr_t item = p * ITEMS + i + 1;     /* never NULL */
        if (gev_queue_put(q, (void *)item, GEV_FOREVER) != 0) {
            gevtest_log("put:%s", gevtest_outcome(-1));
            return NULL;
        }
        put_order[n_put++] = item;
        if ((i + p) % 3 == 0)                   /* vary the interleaving */
            gev_sleep(0);
    }
    return arg;
}

static void close_q(void) { gev_queue_close(q); }

static void run_dispatcher(size_t maxsize)
{
    q = gev_queue_new(maxsize);
    n_put = 0;
    for (uintptr_t p = 0; p < PRODUCERS; p++)
        producers[p] = gev_spawn(produce, (void *)p);
    struct gevtest_closer c = {producers, PRODUCERS, close_q};
    gev_greenlet *closer = gev_spawn(gevtest_close_after_producers, &c);
    uintptr_t got[PRODUCERS * ITEMS + 1];
    size_t n_got = 0, next[PRODUCERS] = {0};
    void *v;
    int rc = 0;
    while (n_got <= PRODUCERS * ITEMS && (rc = gev_queue_get(q, &v, GEV_FOREVER)) == 0) {
        uintptr_t item = (uintptr_t)v - 1;
        assert_int_equal(item % ITEMS, next[item / ITEMS]++);
        got[n_got++] = item + 1;
    }
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(n_got, PRODUCERS * ITEMS);
    if (!maxsize)
        assert_memory_equal(got, put_order, sizeof put_order);
    assert_int_equal(gev_join(closer, GEV_FOREVER), 0);
    assert_log("joined:0");             /* and no put failed */
    gevtest_release_all(producers, PRODUCERS);
    gev_release(closer);
    gev_queue_free(q);
}

static void test_close_ends_consumer_loop(void **state)
{
    run_dispatcher(0);
    gevtest_log_reset();
    run_dispatcher(2);
}

static void test_null_handles(void **state)
{
    void *v;
    assert_fails(gev_queue_put(NULL, NULL, 0), EINVAL);
    assert_fails(gev_queue_get(NULL, &v, 0), EINVAL);
    assert_fails(gev_queue_peek(NULL, &v, 0), EINVAL);
    errno = 0;
    assert_int_equal(gev_queue_size(NULL), 0);
    assert_int_equal(errno, EINVAL);
    gev_queue_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_max_size),
        gevtest(test_getters_served_fifo),
        gevtest(test_putters_served_fifo),
        gevtest(test_zero_timeout_getters_and_later_item_stays),
        gevtest(test_two_bogus_waiters),
        gevtest(test_peek),
        gevtest(test_million_items_unbounded),
        gevtest(test_wrapped_ring_keeps_order),
        gevtest(test_kill_cancels_get),
        gevtest(test_scoped_timeout_on_full_put),
        gevtest(test_expired_getter_never_consumes),
        gevtest(test_from_hub_context),
        gevtest(test_free_wakes_waiters),
        gevtest(test_close_wakes_getters_and_peekers),
        gevtest(test_close_full_bounded_queue),
        gevtest(test_free_after_close_with_items),
        gevtest(test_close_after_handoff_keeps_it),
        gevtest(test_closed_from_hub_context),
        gevtest(test_close_ends_consumer_loop),
        gevtest(test_null_handles),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
