/* gev_close while other greenlets wait on the fd: they wake with EBADF, the
 * backend stays consistent, and the number, reused at once, works
 * (gevent #2100, #1504). */
#include "config.h"
#include "gevtest.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* A fresh socketpair whose first end has exactly the number `fd`. */
static int socketpair_at(int fd)
{
    int sv[2];
    gevtest_socketpair(sv);
    if (sv[0] != fd) {
        assert_int_equal(dup3(sv[0], fd, O_CLOEXEC), fd);
        close(sv[0]);
    }
    return sv[1];
}

static void *recv_and_log(void *arg)
{
    int fd = *(int *)arg;
    char buf[16] = {0};
    ssize_t n = gev_recv(fd, buf, sizeof buf - 1, 0, 5);
    if (n < 0)
        gevtest_log("recv:err:%d", errno);
    else
        gevtest_log("recv:%s", buf);
    return NULL;
}

struct delayed_send { int fd; const char *text; };

static void *send_later(void *arg)
{
    struct delayed_send *d = arg;
    gev_sleep(0.01);
    gev_send(d->fd, d->text, strlen(d->text), 0, 1);
    return NULL;
}

/* The waiter wakes with EBADF and does not touch the number again, though
 * a new socket holds it and is waited on before the old waiter has run. */
static void test_close_wakes_recv_and_number_is_reused(void **state)
{
    int sv[2];
    char buf[16] = {0};
    gevtest_socketpair(sv);
    int fd = sv[0];
    gev_greenlet *w = gev_spawn(recv_and_log, &fd);
    assert_int_equal(gev_sleep(0), 0);
    assert_int_equal(gev_close(fd), 0);
    assert_int_equal(gev_close(sv[1]), 0);
    int peer = socketpair_at(fd);
    struct delayed_send d = { peer, "new" };
    gev_greenlet *s = gev_spawn(send_later, &d);
    ssize_t n = gev_recv(fd, buf, sizeof buf - 1, 0, 5);    /* no EBUSY */
    gevtest_log("main:%s", n > 0 ? buf : "fail");
    char want[64];
    snprintf(want, sizeof want, "recv:err:%d main:new", EBADF);
    assert_log(want);
    assert_int_equal(gev_join(w, 1), 0);
    assert_int_equal(gev_join(s, 1), 0);
    gev_release(w);
    gev_release(s);
    assert_int_equal(gev_close(fd), 0);
    assert_int_equal(gev_close(peer), 0);
}

static void *send_and_recv(void *arg)
{
    int fd = *(int *)arg;
    char block[65536];
    memset(block, 'b', sizeof block);
    ssize_t n;
    while ((n = gev_send(fd, block, sizeof block, 0, 0.2)) > 0)
        ;
    gevtest_log("send:err:%d", errno);
    return NULL;
}

/* Both directions wait; one close wakes both. */
/* The reader's data arrives, but before the reader runs another greenlet
 * closes the fd and the number goes to a new socket with data of its own:
 * the reader fails with EBADF and leaves the new socket's data alone. */
struct close_race { int trigger, fd, new_peer; };

static void *close_when_triggered(void *arg)
{
    struct close_race *c = arg;
    char b;
    assert_int_equal(gev_recv(c->trigger, &b, 1, 0, 5), 1);
    int fd = c->fd;
    assert_int_equal(gev_close(fd), 0);
    c->new_peer = socketpair_at(fd);
    assert_int_equal(write(c->new_peer, "new", 3), 3);
    gevtest_log("closed");
    return NULL;
}

/* One round: the reader's data and the closer's trigger arrive for the
 * same poll, written in the given order.  Which one runs first depends on
 * the order the event library reports them in; returns true if it was the
 * closer, having checked what the reader saw either way. */
static bool close_race_round(bool trigger_first)
{
    int trig[2], sv[2];
    gevtest_socketpair(trig);
    gevtest_socketpair(sv);
    gevtest_log_reset();
    struct close_race c = { trig[0], sv[0], -1 };
    gev_greenlet *closer = gev_spawn(close_when_triggered, &c);
    gev_greenlet *reader = gev_spawn(recv_and_log, &sv[0]);
    gev_sleep(0);                               /* both wait now */
    for (int i = 0; i < 2; i++) {
        if ((i == 0) == trigger_first)
            assert_int_equal(write(trig[1], "x", 1), 1);
        else
            assert_int_equal(write(sv[1], "old", 3), 3);
    }
    assert_int_equal(gev_join(reader, 5), 0);
    assert_int_equal(gev_join(closer, 5), 0);
    bool closer_first = strncmp(gevtest_log_str(), "closed", 6) == 0;
    char expect[32];
    if (closer_first)
        snprintf(expect, sizeof expect, "closed recv:err:%d", EBADF);
    else
        snprintf(expect, sizeof expect, "recv:old closed");
    assert_log(expect);
    char buf[8] = {0};
    assert_int_equal(read(sv[0], buf, sizeof buf), 3);     /* untouched */
    assert_string_equal(buf, "new");
    gev_release(reader);
    gev_release(closer);
    gev_close(sv[0]);
    close(c.new_peer);
    close(sv[1]);
    gev_close(trig[0]);             /* waited on: its watcher is still armed */
    close(trig[1]);
    return closer_first;
}

static void test_close_after_wake_before_run(void **state)
{
    bool a = close_race_round(true), b = close_race_round(false);
    assert_true(a || b);            /* the case under test did happen */
}

static void test_close_wakes_reader_and_writer(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    gev_greenlet *g[2] = { gev_spawn(recv_and_log, &sv[0]), gev_spawn(send_and_recv, &sv[0]) };
    assert_int_equal(gev_sleep(0.05), 0);    /* the writer has filled the buffer by now */
    assert_int_equal(gev_close(sv[0]), 0);
    gevtest_join_release(g, 2, 5);
    char want[64];
    snprintf(want, sizeof want, "recv:err:%d send:err:%d", EBADF, EBADF);
    assert_log(want);
    assert_int_equal(gev_close(sv[1]), 0);
}

struct connect_arg { int fd; struct sockaddr_in addr; };

static void *connect_and_log(void *arg)
{
    struct connect_arg *c = arg;
    int rc = gev_connect(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr, 5);
    gevtest_log("connect:%d:%d", rc, rc ? errno : 0);
    return NULL;
}

static void *accept_and_log(void *arg)
{
    int fd = gev_accept(*(int *)arg, NULL, NULL, 5);
    gevtest_log("accept:%d:%d", fd < 0 ? -1 : 0, fd < 0 ? errno : 0);
    return NULL;
}

/* listen(fd, 0) holds one connection; the next connect then hangs. */
static void test_close_wakes_connect_and_accept(void **state)
{
    int l = gev_tcp_listen("127.0.0.1", "0", 0);
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(l));
    int first = gev_tcp_connect("127.0.0.1", port, 5);
    assert_ge(first, 0);
    struct connect_arg c = { gev_socket(AF_INET, SOCK_STREAM, 0), {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)gevtest_local_port(l)),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
    gev_greenlet *g = gev_spawn(connect_and_log, &c);
    assert_int_equal(gev_sleep(0.05), 0);
    assert_int_equal(gev_close(c.fd), 0);
    assert_int_equal(gev_join(g, 5), 0);
    gev_release(g);

    /* Now an accept on a listener with nothing queued any more. */
    int s = gev_accept(l, NULL, NULL, 1);
    assert_ge(s, 0);
    gev_greenlet *a = gev_spawn(accept_and_log, &l);
    assert_int_equal(gev_sleep(0.01), 0);
    assert_int_equal(gev_close(l), 0);
    assert_int_equal(gev_join(a, 5), 0);
    gev_release(a);
    char want[64];
    snprintf(want, sizeof want, "connect:-1:%d accept:-1:%d", EBADF, EBADF);
    assert_log(want);

    /* The connect's number, reused by a TCP connection, works. */
    int l2 = gev_tcp_listen("127.0.0.1", "0", 8);
    snprintf(port, sizeof port, "%d", gevtest_local_port(l2));
    int c2 = gev_tcp_connect("127.0.0.1", port, 5);
    int s2 = gev_accept(l2, NULL, NULL, 5);
    assert_true(c2 >= 0 && s2 >= 0);
    struct delayed_send d = { s2, "tcp" };
    gev_greenlet *sender = gev_spawn(send_later, &d);
    char buf[8] = {0};
    assert_int_equal(gev_recv(c2, buf, sizeof buf - 1, 0, 5), 3);
    assert_string_equal(buf, "tcp");
    assert_int_equal(gev_join(sender, 1), 0);
    gev_release(sender);
    int fds[] = { first, s, l2, c2, s2 };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        assert_int_equal(gev_close(fds[i]), 0);
}

/* A watcher left armed after its last wait (lazy disarm), the fd closed,
 * the number reused at once, many times over: every new wait works. */
static void test_close_of_idle_armed_fd_then_reuse(void **state)
{
    int first = -1;
    for (int i = 0; i < 200; i++) {
        int sv[2];
        gevtest_socketpair(sv);
        if (first < 0)
            first = sv[0];
        assert_int_equal(sv[0], first);     /* the same numbers each round */
        struct delayed_send d = { sv[1], "x" };
        gev_greenlet *g = gev_spawn(send_later, &d);
        char buf[4];
        assert_int_equal(gev_recv(sv[0], buf, sizeof buf, 0, 5), 1);
        /* Leave sv[0] armed for reading and sv[1] for writing too. */
        assert_int_equal(gev_wait_write(sv[0], 1), GEV_WRITE);
        assert_int_equal(gev_join(g, 1), 0);
        gev_release(g);
        assert_int_equal(gev_close(sv[0]), 0);
        assert_int_equal(gev_close(sv[1]), 0);
    }
}

/* Closed with close(2) behind gev's back while still armed for reading,
 * the number then comes back from gev_socket() and its first wait is a read
 * too: the old interest must not stick (the loop would believe the fd is
 * registered while the kernel dropped it with the old file). */
static void test_plain_close_then_gev_socket(void **state)
{
    assert_int_equal(gev_sleep(0), 0);      /* the hub's own fds come first */
    int sender = gev_socket(AF_INET, SOCK_DGRAM, 0);
    int sv[2];
    gevtest_socketpair(sv);
    struct delayed_send d = { sv[1], "x" };
    gev_greenlet *g = gev_spawn(send_later, &d);
    char buf[8] = {0};
    assert_int_equal(gev_recv(sv[0], buf, sizeof buf, 0, 5), 1);   /* armed now */
    assert_int_equal(gev_join(g, 1), 0);
    gev_release(g);
    close(sv[0]);
    close(sv[1]);
    int u = gev_socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(u, sv[0]);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof a), 0);
    a.sin_port = htons((uint16_t)gevtest_local_port(u));
    assert_int_equal(connect(sender, (struct sockaddr *)&a, sizeof a), 0);
    struct delayed_send d2 = { sender, "fresh" };
    g = gev_spawn(send_later, &d2);
    assert_int_equal(gev_recv(u, buf, sizeof buf - 1, 0, 2), 5);
    assert_string_equal(buf, "fresh");
    assert_int_equal(gev_join(g, 1), 0);
    gev_release(g);
    assert_int_equal(gev_close(u), 0);
    assert_int_equal(gev_close(sender), 0);
}

static void *sendall_and_log(void *arg)
{
    int fd = *(int *)arg;
    size_t n = 16u << 20;
    char *data = calloc(1, n);
    ssize_t r = gev_sendall(fd, data, n, 5);
    gevtest_log("sendall:%d:%d", r < 0 ? -1 : 0, r < 0 ? errno : 0);
    free(data);
    return NULL;
}

static void test_close_during_sendall(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    gev_greenlet *g = gev_spawn(sendall_and_log, &sv[0]);
    assert_int_equal(gev_sleep(0.02), 0);
    assert_int_equal(gev_close(sv[0]), 0);
    assert_int_equal(gev_join(g, 5), 0);
    char want[32];
    snprintf(want, sizeof want, "sendall:-1:%d", EBADF);
    assert_log(want);
    gev_release(g);
    assert_int_equal(gev_close(sv[1]), 0);
}

/* gev_close from hub context (a link callback) is fine: it never blocks. */
static int link_close_fd;
static int link_close_rc;
static void close_in_link(gev_greenlet *g, void *arg) { link_close_rc = gev_close(link_close_fd); }
static void *nothing(void *arg) { return arg; }

static void test_close_from_hub_context(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    link_close_fd = sv[0];
    link_close_rc = -2;
    gev_greenlet *w = gev_spawn(recv_and_log, &sv[0]);
    gev_greenlet *g = gev_spawn(nothing, NULL);
    assert_int_equal(gev_link(g, close_in_link, NULL), 0);
    assert_int_equal(gev_join(w, 5), 0);
    assert_int_equal(link_close_rc, 0);
    char want[32];
    snprintf(want, sizeof want, "recv:err:%d", EBADF);
    assert_log(want);
    gev_release(w);
    gev_release(g);
    assert_int_equal(gev_close(sv[1]), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_close_wakes_recv_and_number_is_reused),
        gevtest(test_close_after_wake_before_run),
        gevtest(test_close_wakes_reader_and_writer),
        gevtest(test_close_wakes_connect_and_accept),
        gevtest(test_close_of_idle_armed_fd_then_reuse),
        gevtest(test_plain_close_then_gev_socket),
        gevtest(test_close_during_sendall),
        gevtest(test_close_from_hub_context),
    };
    return cmocka_run_group_tests_name("io-close", tests, NULL, NULL);
}
