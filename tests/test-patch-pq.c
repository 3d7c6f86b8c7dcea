/* tests/test-patch-pq.c: unmodified libpq (PQconnectdb and PQexec, the
 * blocking API) in greenlets under gev_patch_all(), against a throw-away
 * PostgreSQL cluster this test makes (initdb + postgres in a temporary
 * directory, as an unprivileged user when run as root, on a free loopback
 * port; stopped by PID at the end).
 *
 *  - 50 greenlets each connect and run SELECT pg_sleep(0.2): one after
 *    another that is 10 s of sleeping alone, concurrently well under 2 s,
 *    and a ticker greenlet keeps ticking meanwhile;
 *  - a kill reaches a greenlet blocked in PQexec: the call returns (libpq
 *    reports the failed read) instead of waiting out the query.
 * Skipped (77) when libpq was not found at configure time or no PostgreSQL
 * server is installed.
 */
#include "gevtest.h"
#include "realserver.h"

#ifndef HAVE_LIBPQ
int main(void)
{
    rs_skip("libpq was not found at configure time (apt-get install libpq-dev)");
}
#else
#include <libpq-fe.h>
#include "gev-patch.h"

#define CLIENTS 50

static rs_server pg;
static char conninfo[256];

typedef struct {
    bool ok;
    char error[160];
} query;

/* The greenlet: plain libpq. */
static void *sleep_query(void *arg)
{
    query *q = arg;
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(q->error, sizeof q->error, "connect: %s", PQerrorMessage(c));
    } else {
        PGresult *r = PQexec(c, "SELECT pg_sleep(0.2), 42");
        q->ok = PQresultStatus(r) == PGRES_TUPLES_OK && !strcmp(PQgetvalue(r, 0, 1), "42");
        if (!q->ok)
            snprintf(q->error, sizeof q->error, "exec: %s", PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return NULL;
}

static int group_setup(void **state)
{
    (void)state;
    rs_pg_start(&pg);
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d dbname=postgres user=gev connect_timeout=20", pg.port);
    /* The port opens before the server takes queries ("the database system
     * is starting up"): wait for PQping's word, before patching. */
    double end = rs_now() + 30;
    while (PQping(conninfo) != PQPING_OK && rs_now() < end)
        usleep(50000);
    if (PQping(conninfo) != PQPING_OK) {
        rs_show_log(&pg);
        rs_stop(&pg);
        rs_skip("PostgreSQL started but never accepted queries");
    }
    assert_int_equal(gev_patch_all(), 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rs_stop(&pg);
    return 0;
}

static void test_fifty_sleeping_queries_overlap(void **state)
{
    static query q[CLIENTS];
    gev_greenlet *g[CLIENTS], *ticker = gev_spawn(gevtest_ticker, NULL);
    gevtest_ticks = 0;
    double t0 = gevtest_now();
    for (int i = 0; i < CLIENTS; i++) {
        q[i] = (query){ 0 };
        g[i] = gev_spawn(sleep_query, &q[i]);
    }
    gevtest_join_release(g, CLIENTS, 60);
    double took = gevtest_now() - t0;
    gev_kill(ticker, GEV_FOREVER);
    gev_release(ticker);
    for (int i = 0; i < CLIENTS; i++)
        if (!q[i].ok)
            fail_msg("client %d: %s", i, q[i].error);
    print_message("%d clients x SELECT pg_sleep(0.2): %.3f s (10 s one after another), %d ticks\n",
                  CLIENTS, took, gevtest_ticks);
    /* 10 s one after another; about 0.5 s on a quiet machine (each
     * connection is a new server process). */
    assert_true(took < 4.0 * rs_time_scale());
    assert_true(gevtest_ticks >= gevtest_min_ticks(10));
}

static void *long_query(void *arg)
{
    query *q = arg;
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    gevtest_log("connected");
    PGresult *r = PQexec(c, "SELECT pg_sleep(30)");
    q->ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    PQfinish(c);
    gevtest_log("returned");
    return NULL;
}

static void test_kill_reaches_a_greenlet_in_pqexec(void **state)
{
    query q = { 0 };
    gev_greenlet *g = gev_spawn(long_query, &q);
    double t0 = gevtest_now();
    while (strcmp(gevtest_log_str(), "connected") && gevtest_now() - t0 < 20)
        gev_sleep(0.01);
    gev_sleep(0.2);                         /* now inside PQexec's wait */
    assert_int_equal(gev_kill(g, 10), 0);
    gev_release(g);
    assert_log("connected returned");
    assert_false(q.ok);                     /* the query did not complete */
    assert_true(gevtest_now() - t0 < 10);   /* not the query's 30 s */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_fifty_sleeping_queries_overlap),
        gevtest(test_kill_reaches_a_greenlet_in_pqexec),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
#endif
