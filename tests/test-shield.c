/* tests/test-shield.c: gev_shield, the cancellation shield.
 *
 * While a greenlet is shielded, a kill or an expired scoped timeout neither
 * ends its current wait nor fails its next blocking calls (sleep, join,
 * kill-and-join, fd waits and the syscall fast path, the thread pool); both
 * stay recorded and act on the first blocking call after the shield comes
 * off.  The last case is the server: a handler killed by
 * gev_server_stop shields, kills and joins its writer, and only then frees
 * what the writer uses (run it under ASan to see the use-after-free the
 * shield prevents). */
#include "config.h"
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include "gevtest.h"

static void log_rc(const char *what, int rc)
{
    gevtest_log("%s:%s", what, gevtest_outcome(rc));
}

static void test_returns_previous_state(void **state)
{
    (void)state;
    assert_false(gev_shield(true));
    assert_true(gev_shield(true));
    assert_true(gev_shield(false));
    assert_false(gev_shield(false));
}

/* ---- kills ------------------------------------------------------------------ */

static void *short_sleeper(void *arg)
{
    (void)arg;
    gev_sleep(0.01);
    gevtest_log("helper-done");
    return NULL;
}

/* Killed during a shielded sleep: the sleep runs to its end; sleeping,
 * joining and kill-and-join all work; the kill acts after the shield. */
static void *shielded_worker(void *arg)
{
    (void)arg;
    gev_shield(true);
    double t0 = gevtest_now();
    log_rc("sleep", gev_sleep(0.05));
    gevtest_log("full:%d killed:%d", gevtest_now() - t0 >= 0.045, gev_killed(gev_current()));
    log_rc("yield", gev_sleep(0));
    gev_greenlet *h = gev_spawn(short_sleeper, NULL);
    log_rc("join", gev_join(h, 1.0));
    gev_release(h);
    gev_greenlet *t = gev_spawn(gevtest_ticker, NULL);
    gev_sleep(0);
    log_rc("kill", gev_kill(t, 1.0));
    gev_release(t);
    gevtest_log("was:%d", gev_shield(false));
    log_rc("after", gev_sleep(0.01));
    log_rc("yield", gev_sleep(0));
    return NULL;
}

static void test_kill_held_back(void **state)
{
    (void)state;
    gev_greenlet *g = gev_spawn(shielded_worker, NULL);
    gev_sleep(0.01);                        /* it sleeps, shielded */
    assert_fails(gev_kill(g, 0), ETIMEDOUT);   /* delivered, not acted on */
    assert_true(gev_killed(g));
    assert_int_equal(gev_join(g, 2.0), 0);
    assert_log("sleep:0 full:1 killed:1 yield:0 helper-done join:0 kill:0 was:1 "
               "after:ECANCELED yield:ECANCELED");
    gev_release(g);
}

/* The idiom: killed unshielded, then shield for the cleanup. */
static void *cleanup_after_kill(void *arg)
{
    (void)arg;
    log_rc("wait", gev_sleep(5.0));
    bool was = gev_shield(true);
    log_rc("cleanup", gev_sleep(0.01));
    gev_shield(was);
    log_rc("after", gev_sleep(0.01));
    return NULL;
}

static void test_cleanup_after_kill(void **state)
{
    (void)state;
    gev_greenlet *g = gev_spawn(cleanup_after_kill, NULL);
    gev_sleep(0.01);
    assert_int_equal(gev_kill(g, 1.0), 0);  /* waits for the shielded cleanup */
    assert_log("wait:ECANCELED cleanup:0 after:ECANCELED");
    gev_release(g);
}

/* A shielded greenlet that returns leaves nothing behind: the next one on
 * the same record is killable as usual. */
static void *return_shielded(void *arg)
{
    (void)arg;
    gev_shield(true);
    return NULL;
}

static void *sleep_long(void *arg)
{
    (void)arg;
    log_rc("sleep", gev_sleep(5.0));
    return NULL;
}

static void test_shield_ends_with_greenlet(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        gev_greenlet *g = gev_spawn(return_shielded, NULL);
        assert_int_equal(gev_join(g, 1.0), 0);
        gev_release(g);
    }
    gev_greenlet *g = gev_spawn(sleep_long, NULL);
    gev_sleep(0.01);
    double t0 = gevtest_now();
    assert_int_equal(gev_kill(g, 1.0), 0);
    assert_lt(gevtest_now() - t0, 0.5);
    assert_log("sleep:ECANCELED");
    gev_release(g);
}

/* ---- scoped timeouts ------------------------------------------------------- */

static void test_timeout_held_back(void **state)
{
    (void)state;
    gev_shield(true);
    gev_timeout *to = gev_timeout_start(0.02);
    double t0 = gevtest_now();
    assert_int_equal(gev_sleep(0.1), 0);    /* the expiry does not cut it short */
    assert_ge(gevtest_now() - t0, 0.095);
    assert_true(gev_timeout_expired(to));
    assert_int_equal(gev_sleep(0), 0);
    assert_true(gev_shield(false));
    assert_fails(gev_sleep(0.01), ETIMEDOUT);
    assert_fails(gev_sleep(0), ETIMEDOUT);
    gev_timeout_cancel(to);
    assert_int_equal(gev_sleep(0), 0);
}

/* ---- fd waits --------------------------------------------------------------- */

typedef struct pair_reader {
    int fd;
    char got;
} pair_reader;

static void *shielded_reader(void *arg)
{
    pair_reader *r = arg;
    gev_shield(true);
    ssize_t n = gev_recv(r->fd, &r->got, 1, 0, GEV_FOREVER);
    gevtest_log("recv:%zd", n);
    /* Data ready: the fast path honours the shield too. */
    n = gev_recv(r->fd, &r->got, 1, 0, GEV_FOREVER);
    gevtest_log("fast:%zd", n);
    gev_shield(false);
    n = gev_recv(r->fd, &r->got, 1, 0, GEV_FOREVER);    /* "z" is there */
    gevtest_log("after:%s", n < 0 ? gevtest_outcome(-1) : "data");
    return NULL;
}

static void test_fd_wait_held_back(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    pair_reader r = { .fd = sv[0] };
    gev_greenlet *g = gev_spawn(shielded_reader, &r);
    gev_sleep(0.01);                        /* it waits in gev_recv */
    assert_fails(gev_kill(g, 0), ETIMEDOUT);
    gev_sleep(0.02);
    assert_false(gev_ready(g));             /* still waiting for data */
    assert_int_equal(send(sv[1], "xyz", 3, 0), 3);
    assert_int_equal(gev_join(g, 1.0), 0);
    assert_log("recv:1 fast:1 after:ECANCELED");
    gev_release(g);
    gev_close(sv[0]);
    gev_close(sv[1]);
}

/* ---- the server: a killed handler joins its writer before freeing ------- */

/* Per connection: the handler reads lines into a queue, a writer greenlet
 * sends them back; both share `conn`. */
typedef struct conn {
    int fd;
    gev_queue *out;
    gev_greenlet *writer;
    int sent;
} conn;

static int writers_cleaned;

static void *writer_main(void *arg)
{
    conn *c = arg;
    void *item;
    while (gev_queue_get(c->out, &item, GEV_FOREVER) == 0)
        if (gev_sendall(c->fd, "x", 1, GEV_FOREVER) == 1)
            c->sent++;
    /* Killed: this touches c after the handler's kill request. */
    c->sent = -1;
    writers_cleaned++;
    return NULL;
}

static void handler(int fd, const struct sockaddr *peer, socklen_t len, void *arg)
{
    (void)peer; (void)len; (void)arg;
    conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->out = gev_queue_new(0);
    c->writer = gev_spawn(writer_main, c);
    char ch;
    while (gev_recv(fd, &ch, 1, 0, GEV_FOREVER) == 1)
        gev_queue_put(c->out, c, GEV_FOREVER);
    /* Killed by gev_server_stop (or the client left): the writer still
     * runs on c; without the shield this kill-and-join fails at once. */
    bool was = gev_shield(true);
    int rc = gev_kill(c->writer, 1.0);
    gev_shield(was);
    gevtest_log("join:%s", gevtest_outcome(rc));
    gev_release(c->writer);
    gev_queue_free(c->out);
    free(c);
}

static void test_server_stop_joins_writer(void **state)
{
    (void)state;
    writers_cleaned = 0;
    int lfd = gev_tcp_listen("127.0.0.1", "0", 16);
    assert_ge(lfd, 0);
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(lfd));
    gev_server *s = gev_server_new(lfd, handler, NULL);
    assert_non_null(s);
    assert_int_equal(gev_server_start(s), 0);
    int fd[2];
    for (int i = 0; i < 2; i++) {
        fd[i] = gev_tcp_connect("127.0.0.1", port, 2.0);
        assert_ge(fd[i], 0);
        char echo;
        assert_int_equal(gev_sendall(fd[i], "a", 1, 2.0), 1);
        assert_int_equal(gev_recv(fd[i], &echo, 1, 0, 2.0), 1);
    }
    assert_int_equal(gev_server_stop(s, 2.0), 0);
    assert_int_equal(writers_cleaned, 2);
    assert_log("join:0 join:0");
    gev_server_free(s);
    gev_close(fd[0]);
    gev_close(fd[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_returns_previous_state),
        gevtest(test_kill_held_back),
        gevtest(test_cleanup_after_kill),
        gevtest(test_shield_ends_with_greenlet),
        gevtest(test_timeout_held_back),
        gevtest(test_fd_wait_held_back),
        gevtest(test_server_stop_joins_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
