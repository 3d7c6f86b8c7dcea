/* gev_getaddrinfo: lookups run in the thread pool while other greenlets
 * keep running; numeric ones need no lookup; expiry, kills, hub context.
 * No DNS beyond "localhost" and a name that cannot exist. */
#include "config.h"
#include "gevtest.h"
#include "threads.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

static volatile bool ticker_stop;
static unsigned ticks;

/* Proves the hub is not blocked: it runs whenever the hub gets a turn. */
static void *ticker(void *arg)
{
    while (!ticker_stop) {
        ticks++;
        if (gev_sleep(0) < 0)
            break;
    }
    return NULL;
}

static gev_greenlet *ticker_start(void)
{
    ticker_stop = false;
    ticks = 0;
    return gev_spawn(ticker, NULL);
}

static void ticker_end(gev_greenlet *t)
{
    ticker_stop = true;
    assert_int_equal(gev_join(t, 5), 0);
    gev_release(t);
}

static bool has_ipv4_loopback(const struct addrinfo *res)
{
    for (; res; res = res->ai_next)
        if (res->ai_family == AF_INET &&
            ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            return true;
    return false;
}

static void test_localhost_while_others_run(void **state)
{
    gev_greenlet *t = ticker_start();
    assert_int_equal(gev_sleep(0), 0);
    unsigned before = ticks;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    assert_int_equal(gev_getaddrinfo("localhost", "80", &hints, &res, 5), 0);
    assert_gt(ticks, before);
    assert_true(has_ipv4_loopback(res));
    assert_int_equal(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 80);
    freeaddrinfo(res);
    ticker_end(t);
}

static void test_nonexistent_name_while_others_run(void **state)
{
    gev_greenlet *t = ticker_start();
    assert_int_equal(gev_sleep(0), 0);
    unsigned before = ticks;
    struct addrinfo *res = NULL;
    int rc = gev_getaddrinfo("nonexistent.invalid", NULL, NULL, &res, 10);
    assert_gt(ticks, before);
    /* Without a network the resolver may also say "try again" or "failed". */
    assert_true(rc == EAI_NONAME || rc == EAI_AGAIN || rc == EAI_FAIL ||
                rc == EAI_NODATA);
    assert_null(res);
    ticker_end(t);
}

static void *log_token(void *arg)
{
    gevtest_log("%s", (const char *)arg);
    return NULL;
}

/* Numeric hosts need no lookup: answered at once, without a switch. */
static void test_numeric_needs_no_switch(void **state)
{
    gev_greenlet *g = gev_spawn(log_token, "other");
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM }, *res;
    assert_int_equal(gev_getaddrinfo("127.0.0.1", "53", &hints, &res, 0), 0);
    assert_true(has_ipv4_loopback(res));
    freeaddrinfo(res);
    assert_int_equal(gev_getaddrinfo("::1", NULL, NULL, &res, 0), 0);
    assert_int_equal(res->ai_family, AF_INET6);
    freeaddrinfo(res);
    gevtest_log("main");
    assert_int_equal(gev_join(g, 1), 0);
    assert_log("main other");
    gev_release(g);
}

static void test_bad_arguments_and_timeout_zero(void **state)
{
    struct addrinfo *res = NULL;
    errno = 0;
    assert_int_equal(gev_getaddrinfo("localhost", NULL, NULL, NULL, 1), EAI_SYSTEM);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(gev_getaddrinfo(NULL, NULL, NULL, &res, 1), EAI_NONAME);
    /* A real lookup would have to wait. */
    assert_int_equal(gev_getaddrinfo("localhost", NULL, NULL, &res, 0), EAI_AGAIN);
    assert_null(res);
}

/* A busy pool (one worker, occupied) makes the lookup outlast its timeout:
 * expiry is EAI_AGAIN, in about the time asked. */
static void *block_worker(void *arg)
{
    usleep(1000 * 1000);
    return arg;
}

static void *occupy_pool(void *arg)
{
    gev_threadpool_run(block_worker, NULL, NULL);
    return NULL;
}

/* An abandoned lookup that no worker took yet leaves the pool's queue (on
 * the hub's next turn: its helper greenlet takes it off). */
static void assert_lookup_left_queue(void)
{
    assert_int_equal(gev_sleep(0.01), 0);
    assert_int_equal(gev__threadpool_queued(), 0);
}

static void test_expiry_is_eai_again(void **state)
{
    assert_int_equal(gev_threadpool_set_max(1), 0);
    gev_greenlet *busy = gev_spawn(occupy_pool, NULL);
    assert_int_equal(gev_sleep(0.01), 0);
    struct addrinfo *res = NULL;
    double t0 = gevtest_now();
    assert_int_equal(gev_getaddrinfo("localhost", NULL, NULL, &res, 0.05), EAI_AGAIN);
    double dt = gevtest_now() - t0;
    assert_true(dt >= 0.045 && dt < 0.8);    /* not waiting for the worker */
    assert_null(res);
    assert_lookup_left_queue();
    /* A scoped timeout is expiry too. */
    gev_timeout *to = gev_timeout_start(0.02);
    assert_int_equal(gev_getaddrinfo("localhost", NULL, NULL, &res, GEV_FOREVER), EAI_AGAIN);
    gev_timeout_cancel(to);
    assert_lookup_left_queue();
    assert_int_equal(gev_join(busy, 5), 0);
    gev_release(busy);
    /* A new lookup works. */
    assert_int_equal(gev_getaddrinfo("localhost", NULL, NULL, &res, 5), 0);
    freeaddrinfo(res);
    assert_int_equal(gev_threadpool_set_max(10), 0);
}

static void *lookup_and_log(void *arg)
{
    struct addrinfo *res = NULL;
    int rc = gev_getaddrinfo("localhost", NULL, NULL, &res, GEV_FOREVER);
    gevtest_log("rc:%d:%d", rc == EAI_SYSTEM ? -1 : rc, rc == EAI_SYSTEM ? errno : 0);
    if (rc == 0)
        freeaddrinfo(res);
    rc = gev_getaddrinfo("127.0.0.1", NULL, NULL, &res, GEV_FOREVER);
    gevtest_log("again:%d:%d", rc == EAI_SYSTEM ? -1 : rc, rc == EAI_SYSTEM ? errno : 0);
    return NULL;
}

/* A kill ends the wait at once, and the lookup, still queued, never runs. */
static void test_kill_during_lookup(void **state)
{
    assert_int_equal(gev_threadpool_set_max(1), 0);
    gev_greenlet *busy = gev_spawn(occupy_pool, NULL);
    gev_greenlet *g = gev_spawn(lookup_and_log, NULL);
    assert_int_equal(gev_sleep(0.01), 0);
    double t0 = gevtest_now();
    assert_int_equal(gev_kill(g, 1), 0);
    assert_lt(gevtest_now() - t0, 0.8);
    char want[64];
    snprintf(want, sizeof want, "rc:-1:%d again:-1:%d", ECANCELED, ECANCELED);
    assert_log(want);
    gev_release(g);
    assert_lookup_left_queue();
    assert_int_equal(gev_join(busy, 5), 0);
    gev_release(busy);
    assert_int_equal(gev_run(GEV_FOREVER), 0);
    assert_int_equal(gev_threadpool_set_max(10), 0);
}

/* gev_shutdown with a lookup in flight: no crash, no leak (valgrind). */
static void test_shutdown_with_lookup_in_flight(void **state)
{
    gev_greenlet *g = gev_spawn(lookup_and_log, NULL);
    assert_int_equal(gev_sleep(0), 0);
    gev_release(g);
}

static int link_rc_numeric, link_rc_name, link_errno;

static void lookup_in_link(gev_greenlet *g, void *arg)
{
    struct addrinfo *res = NULL;
    link_rc_numeric = gev_getaddrinfo("127.0.0.1", "80", NULL, &res, GEV_FOREVER);
    if (link_rc_numeric == 0)
        freeaddrinfo(res);
    link_rc_name = gev_getaddrinfo("localhost", "80", NULL, &res, GEV_FOREVER);
    link_errno = errno;
}

static void *nothing(void *arg) { return arg; }

static void test_hub_context(void **state)
{
    gev_greenlet *g = gev_spawn(nothing, NULL);
    link_rc_numeric = link_rc_name = -100;
    assert_int_equal(gev_link(g, lookup_in_link, NULL), 0);
    assert_int_equal(gev_join(g, 1), 0);
    assert_int_equal(gev_sleep(0.01), 0);
    assert_int_equal(link_rc_numeric, 0);
    assert_int_equal(link_rc_name, EAI_SYSTEM);
    assert_int_equal(link_errno, EDEADLK);
    gev_release(g);
}

static void test_tcp_connect_unknown_host(void **state)
{
    errno = 0;
    assert_int_equal(gev_tcp_connect("nonexistent.invalid", "80", 10), -1);
    /* "not found", or "try again" from a resolver without a network */
    assert_true(errno == EADDRNOTAVAIL || errno == EAGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_localhost_while_others_run),
        gevtest(test_nonexistent_name_while_others_run),
        gevtest(test_numeric_needs_no_switch),
        gevtest(test_bad_arguments_and_timeout_zero),
        gevtest(test_expiry_is_eai_again),
        gevtest(test_kill_during_lookup),
        gevtest(test_shutdown_with_lookup_in_flight),
        gevtest(test_hub_context),
        gevtest(test_tcp_connect_unknown_host),
    };
    return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
