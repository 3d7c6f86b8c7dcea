/* tests/test-patch-poll.c: poll, ppoll, select, pselect, epoll_wait and
 * getaddrinfo inside greenlets keep the hub running (gev-patch.h). */
#include "patchtest.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

static int pa[2], pb[2];

static void *late_writer(void *arg)
{
    gev_sleep(0.1);
    assert_int_equal(write((int)(intptr_t)arg, "x", 1), 1);
    return NULL;
}

static void pipes_open(void)
{
    assert_int_equal(pipe(pa), 0);
    assert_int_equal(pipe(pb), 0);
}

static void pipes_close(void)
{
    close(pa[0]), close(pa[1]), close(pb[0]), close(pb[1]);
}

/* Runs fn in a greenlet while a ticker ticks; returns fn's value. */
static intptr_t with_ticker(gev_fn fn, int min_ticks)
{
    gev_greenlet *t = pt_ticker_start();
    gev_greenlet *g = gev_spawn(fn, NULL);
    assert_int_equal(gev_join(g, 5), 0);
    intptr_t v = (intptr_t)gev_value(g);
    gev_release(g);
    assert_true(gevtest_ticks >= gevtest_min_ticks(min_ticks));
    pt_ticker_stop(t);
    return v;
}

/* poll with the same fd twice, and another fd that becomes ready. */
static void *do_poll(void *arg)
{
    struct pollfd p[3] = { { pa[0], POLLIN, 0 }, { pa[0], POLLIN, 0 }, { pb[0], POLLIN, 0 } };
    int n = poll(p, 3, 2000);
    gevtest_log("poll=%d %x %x %x", n, p[0].revents, p[1].revents, p[2].revents);
    n = poll(p, 3, 100);            /* pb is still ready */
    gevtest_log("again=%d", n);
    struct pollfd q = { pa[0], POLLIN, 0 };
    n = poll(&q, 1, 100);
    gevtest_log("timeout=%d", n);
    return NULL;
}

static void test_poll(void **state)
{
    pipes_open();
    gev_greenlet *w = gev_spawn(late_writer, (void *)(intptr_t)pb[1]);
    with_ticker(do_poll, 10);
    gevtest_join_release(&w, 1, 1);
    assert_log("poll=1 0 0 1 again=1 timeout=0");
    pipes_close();
}

static void *do_ppoll(void *arg)
{
    struct pollfd p = { pb[0], POLLIN, 0 };
    struct timespec ts = { 2, 0 };
    return (void *)(intptr_t)ppoll(&p, 1, &ts, NULL);
}

static void test_ppoll(void **state)
{
    pipes_open();
    gev_greenlet *w = gev_spawn(late_writer, (void *)(intptr_t)pb[1]);
    assert_int_equal(with_ticker(do_ppoll, 3), 1);
    gevtest_join_release(&w, 1, 1);
    pipes_close();
}

static void *do_select(void *arg)
{
    fd_set r;
    FD_ZERO(&r);
    FD_SET(pa[0], &r);
    FD_SET(pb[0], &r);
    struct timeval tv = { 2, 0 };
    int n = select((pa[0] > pb[0] ? pa[0] : pb[0]) + 1, &r, NULL, NULL, &tv);
    gevtest_log("select=%d %d %d", n, FD_ISSET(pa[0], &r), FD_ISSET(pb[0], &r));
    FD_ZERO(&r);
    FD_SET(pa[0], &r);
    tv = (struct timeval){ 0, 100000 };
    n = select(pa[0] + 1, &r, NULL, NULL, &tv);
    gevtest_log("timeout=%d %d", n, FD_ISSET(pa[0], &r));
    struct timespec ts = { 0, 50000000 };
    FD_SET(pa[0], &r);
    n = pselect(pa[0] + 1, &r, NULL, NULL, &ts, NULL);
    gevtest_log("pselect=%d", n);
    return NULL;
}

static void test_select(void **state)
{
    pipes_open();
    gev_greenlet *w = gev_spawn(late_writer, (void *)(intptr_t)pb[1]);
    with_ticker(do_select, 10);
    gevtest_join_release(&w, 1, 1);
    assert_log("select=1 0 1 timeout=0 0 pselect=0");
    pipes_close();
}

static int ep;

static void *do_epoll(void *arg)
{
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, 2000);
    gevtest_log("epoll=%d %d", n, n == 1 ? ev[0].data.fd : -1);
    char c;
    assert_int_equal(read(pb[0], &c, 1), 1);
    n = epoll_wait(ep, ev, 4, 100);
    gevtest_log("timeout=%d", n);
    return NULL;
}

static void test_epoll_wait(void **state)
{
    pipes_open();
    ep = epoll_create1(0);
    struct epoll_event e = { .events = EPOLLIN, .data.fd = pb[0] };
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, pb[0], &e), 0);
    gev_greenlet *w = gev_spawn(late_writer, (void *)(intptr_t)pb[1]);
    with_ticker(do_epoll, 10);
    gevtest_join_release(&w, 1, 1);
    char expect[64];
    snprintf(expect, sizeof expect, "epoll=1 %d timeout=0", pb[0]);
    assert_log(expect);
    close(ep);
    pipes_close();
}

static void *blocked_poll(void *arg)
{
    struct pollfd p = { pa[0], POLLIN, 0 };
    errno = 0;
    int n = poll(&p, 1, -1);
    gevtest_log("poll:%s", gevtest_outcome(n));
    return NULL;
}

static void test_kill_and_timeout_in_poll(void **state)
{
    pipes_open();
    gev_greenlet *g = gev_spawn(blocked_poll, NULL);
    gev_sleep(0.05);
    assert_int_equal(gev_kill(g, 1), 0);
    gev_release(g);
    gev_timeout *t = gev_timeout_start(0.05);
    blocked_poll(NULL);
    gev_timeout_cancel(t);
    assert_log("poll:ECANCELED poll:ETIMEDOUT");
    pipes_close();
}

static void *resolver(void *arg)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo("localhost", "80", &hints, &res);
    bool ok = rc == 0 && res != NULL;
    if (res)
        freeaddrinfo(res);
    return (void *)(intptr_t)ok;
}

static void test_getaddrinfo(void **state)
{
    gev_greenlet *gs[20];
    gev_greenlet *t = pt_ticker_start();
    pt_spawn_n(gs, 20, resolver);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(gev_join(gs[i], 10), 0);
        assert_int_equal((intptr_t)gev_value(gs[i]), 1);
        gev_release(gs[i]);
    }
    pt_ticker_stop(t);
}

/* The gethostbyname family runs in the thread pool: the greenlet spawned
 * after the resolver runs while it resolves. */
static void *hostbyname(void *arg)
{
    bool reentrant = arg != NULL;
    gevtest_log("%s:start", reentrant ? "r" : "plain");
    struct hostent he, *h = NULL;
    char buf[1024];
    int herr = 0;
    if (reentrant)
        assert_int_equal(gethostbyname_r("localhost", &he, buf, sizeof buf, &h, &herr), 0);
    else
        h = gethostbyname("localhost");
    assert_non_null(h);
    assert_int_equal(h->h_addrtype, AF_INET);
    assert_int_equal(h->h_length, 4);
    assert_memory_equal(h->h_addr_list[0], "\x7f\0\0\x01", 4);
    gevtest_log("%s:done", reentrant ? "r" : "plain");
    return NULL;
}

static void *other(void *arg)
{
    gevtest_log("other");
    return NULL;
}

static void test_gethostbyname(void **state)
{
    struct hostent *probe = gethostbyname("localhost");
    if (!probe || probe->h_addrtype != AF_INET ||
        memcmp(probe->h_addr_list[0], "\x7f\0\0\x01", 4) != 0) {
        print_message("localhost does not resolve to 127.0.0.1 here: skipped\n");
        skip();
    }
    for (int r = 0; r < 2; r++) {
        gevtest_log_reset();
        gev_greenlet *gs[2] = { gev_spawn(hostbyname, r ? "r" : NULL), gev_spawn(other, NULL) };
        gevtest_join_release(gs, 2, 5);
        assert_log(r ? "r:start other r:done" : "plain:start other plain:done");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        pt_test(test_poll),
        pt_test(test_ppoll),
        pt_test(test_select),
        pt_test(test_epoll_wait),
        pt_test(test_kill_and_timeout_in_poll),
        pt_test(test_getaddrinfo),
        pt_test(test_gethostbyname),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
