/* Many connections through one hub: an echo server with a greenlet per
 * connection and 1,000 concurrent clients, all written as sequential code. */
#include "config.h"
#include "gevtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG 64

struct server {
    int listen_fd;
    size_t handlers_done;
    size_t bytes;
};

struct conn { struct server *srv; int fd; };

static void *echo_handler(void *arg)
{
    struct conn *c = arg;
    char buf[4096];
    ssize_t n;
    while ((n = gev_recv(c->fd, buf, sizeof buf, 0, 10)) > 0) {
        if (gev_sendall(c->fd, buf, (size_t)n, 10) < 0)
            break;
        c->srv->bytes += (size_t)n;
    }
    gev_close(c->fd);
    c->srv->handlers_done++;
    free(c);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct server *srv = arg;
    for (;;) {
        int fd = gev_accept(srv->listen_fd, NULL, NULL, GEV_FOREVER);
        if (fd < 0)
            return NULL;    /* killed, or the listener was closed */
        struct conn *c = malloc(sizeof *c);
        c->srv = srv;
        c->fd = fd;
        gev_greenlet *g = gev_spawn(echo_handler, c);
        if (!g) {
            gev_close(fd);
            free(c);
            continue;
        }
        gev_release(g);
    }
}

struct client { const char *port; int id; int rounds; bool ok; };

static bool recv_exactly(int fd, char *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = gev_recv(fd, buf + got, n - got, 0, 10);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void *echo_client(void *arg)
{
    struct client *c = arg;
    int fd = gev_tcp_connect("127.0.0.1", c->port, 10);
    if (fd < 0)
        return NULL;
    char out[MSG] = {0}, in[MSG];
    bool ok = true;
    for (int r = 0; r < c->rounds && ok; r++) {
        snprintf(out, sizeof out, "client %d round %d", c->id, r);
        ok = gev_sendall(fd, out, MSG, 10) == MSG && recv_exactly(fd, in, MSG) &&
             memcmp(in, out, MSG) == 0;
    }
    c->ok = ok;
    gev_close(fd);
    return NULL;
}

static void raise_fd_limit(rlim_t need)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < need)
        skip();     /* the hard limit leaves no room for the test */
}

static void run_echo(int nclients, int rounds)
{
    raise_fd_limit((rlim_t)nclients * 2 + 64);
    struct server srv = { .listen_fd = gev_tcp_listen("127.0.0.1", "0", 4096) };
    assert_ge(srv.listen_fd, 0);
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(srv.listen_fd));
    gev_greenlet *acceptor = gev_spawn(accept_loop, &srv);

    struct client *cs = calloc((size_t)nclients, sizeof *cs);
    gev_greenlet **gs = calloc((size_t)nclients, sizeof *gs);
    for (int i = 0; i < nclients; i++) {
        cs[i] = (struct client){ port, i, rounds, false };
        gs[i] = gev_spawn(echo_client, &cs[i]);
        assert_non_null(gs[i]);
    }
    double t0 = gevtest_now();
    gevtest_join_release(gs, (size_t)nclients, 15);
    for (int i = 0; i < nclients; i++)
        assert_true(cs[i].ok);
    /* Every handler sees its client's EOF and ends. */
    while (srv.handlers_done < (size_t)nclients && gevtest_now() - t0 < 15)
        gev_sleep(0.01);
    assert_int_equal(srv.handlers_done, nclients);
    assert_int_equal(srv.bytes, (size_t)nclients * (size_t)rounds * MSG);
    assert_int_equal(gev_close(srv.listen_fd), 0);      /* ends the acceptor: EBADF */
    assert_int_equal(gev_join(acceptor, 5), 0);
    gev_release(acceptor);
    free(cs);
    free(gs);
}

static void test_echo_1000_connections(void **state)
{
    run_echo(1000, 10);
}

/* Two greenlets, many short exchanges: the armed watchers are reused. */
static void test_echo_one_connection_many_rounds(void **state)
{
    run_echo(1, 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_echo_1000_connections),
        gevtest(test_echo_one_connection_many_rounds),
    };
    return cmocka_run_group_tests_name("io-echo", tests, NULL, NULL);
}
