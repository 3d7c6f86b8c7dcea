/* Sockets: recv/send timeouts, sendall, connect errors and timeouts, peer
 * reset, accept, UDP, and the TCP helpers (loopback only). */
#include "config.h"
#include "gevtest.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "fd.h"

static struct sockaddr_in loopback4(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    return a;
}

/* A connected TCP pair over 127.0.0.1. */
static void tcp_pair(int *client, int *server)
{
    int l = gev_tcp_listen("127.0.0.1", "0", 16);
    assert_ge(l, 0);
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(l));
    *client = gev_tcp_connect("127.0.0.1", port, 5);
    assert_ge(*client, 0);
    *server = gev_accept(l, NULL, NULL, 5);
    assert_ge(*server, 0);
    assert_int_equal(gev_close(l), 0);
}

static void close2(int a, int b)
{
    assert_int_equal(gev_close(a), 0);
    assert_int_equal(gev_close(b), 0);
}

static bool is_nonblock_cloexec(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

/* ---- sockets and listeners --------------------------------------------- */

static void test_socket_is_nonblocking(void **state)
{
    int fd = gev_socket(AF_INET, SOCK_STREAM, 0);
    assert_ge(fd, 0);
    assert_true(is_nonblock_cloexec(fd));
    assert_int_equal(gev_close(fd), 0);
    assert_fails(gev_socket(-1, SOCK_STREAM, 0), EAFNOSUPPORT);
}

static void test_tcp_listen_ephemeral(void **state)
{
    int l = gev_tcp_listen("127.0.0.1", "0", 8);
    assert_ge(l, 0);
    assert_true(is_nonblock_cloexec(l));
    assert_gt(gevtest_local_port(l), 0);
    int one = 0;
    socklen_t len = sizeof one;
    assert_int_equal(getsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, &len), 0);
    assert_true(one);
    assert_int_equal(gev_close(l), 0);

    l = gev_tcp_listen(NULL, "0", 8);      /* any address */
    assert_ge(l, 0);
    struct sockaddr_in a = loopback4(gevtest_local_port(l));
    int c = gev_socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(gev_connect(c, (struct sockaddr *)&a, sizeof a, 5), 0);
    int s = gev_accept(l, NULL, NULL, 5);
    assert_ge(s, 0);
    close2(c, s);
    assert_int_equal(gev_close(l), 0);

    assert_fails(gev_tcp_listen("127.0.0.1", NULL, 8), EINVAL);
    assert_fails(gev_tcp_listen("127.0.0.1", "no-such-service", 8), EINVAL);
}

static void test_accept(void **state)
{
    int l = gev_tcp_listen("127.0.0.1", "0", 8);
    assert_ge(l, 0);
    assert_fails(gev_accept(l, NULL, NULL, 0), ETIMEDOUT);
    double t0 = gevtest_now();
    assert_fails(gev_accept(l, NULL, NULL, 0.03), ETIMEDOUT);
    assert_ge(gevtest_now() - t0, 0.025);
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(l));
    int c = gev_tcp_connect("127.0.0.1", port, 5);
    assert_ge(c, 0);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int s = gev_accept(l, (struct sockaddr *)&peer, &len, 5);
    assert_ge(s, 0);
    assert_true(is_nonblock_cloexec(s));
    assert_int_equal(len, sizeof peer);
    assert_int_equal(ntohs(peer.sin_port), gevtest_local_port(c));
    close2(c, s);
    assert_int_equal(gev_close(l), 0);
}

/* ---- recv and send -------------------------------------------------------- */

static void test_recv_timeout(void **state)
{
    int c, s;
    char buf[8];
    tcp_pair(&c, &s);
    double t0 = gevtest_now();
    assert_fails(gev_recv(c, buf, sizeof buf, 0, 0.05), ETIMEDOUT);
    double dt = gevtest_now() - t0;
    assert_true(dt >= 0.045 && dt < 2.0);
    assert_fails(gev_recv(c, buf, sizeof buf, 0, 0), ETIMEDOUT);
    /* MSG_DONTWAIT keeps libc's meaning: EAGAIN, no wait. */
    assert_fails(gev_recv(c, buf, sizeof buf, MSG_DONTWAIT, 5), EAGAIN);
    assert_int_equal(gev_send(s, "abc", 3, 0, 1), 3);
    assert_int_equal(gev_recv(c, buf, sizeof buf, MSG_PEEK, 1), 3);
    assert_int_equal(gev_recv(c, buf, sizeof buf, 0, 1), 3);
    close2(c, s);
}

static void test_bad_socket_arguments(void **state)
{
    int c, s;
    char buf[4];
    tcp_pair(&c, &s);
    assert_fails(gev_recv(-1, buf, 1, 0, 1), EBADF);
    assert_fails(gev_send(-1, buf, 1, 0, 1), EBADF);
    assert_fails(gev_recv(c, NULL, 4, 0, 1), EFAULT);
    assert_fails(gev_send(c, NULL, 4, 0, 1), EFAULT);
    assert_fails(gev_sendall(c, NULL, 4, 1), EFAULT);
    assert_fails(gev_sendall(-1, "x", 1, 1), EBADF);
    assert_fails(gev_connect(-1, NULL, 0, 1), EBADF);
    assert_fails(gev_accept(-1, NULL, NULL, 1), EBADF);
    assert_fails(gev_recv(STDERR_FILENO + 1000, buf, 1, 0, 1), EBADF);
    close2(c, s);
}

static void test_sendall_zero_bytes(void **state)
{
    int c, s;
    tcp_pair(&c, &s);
    gev_timeout *t = gev_timeout_start(0.001);
    assert_int_equal(gev_sleep(0.01), -1);         /* expired */
    assert_int_equal(gev_sendall(c, "", 0, 0), 0); /* nothing to send: done */
    gev_timeout_cancel(t);
    assert_int_equal(gev_sendall(c, NULL, 0, GEV_FOREVER), 0);
    close2(c, s);
}

struct reader { int fd; size_t chunk; double pause; size_t total; bool check; };

static void *read_all(void *arg)
{
    struct reader *r = arg;
    char *buf = malloc(r->chunk);
    for (;;) {
        ssize_t n = gev_recv(r->fd, buf, r->chunk, 0, 10);
        if (n <= 0)
            break;
        for (ssize_t i = 0; r->check && i < n; i++)
            if ((unsigned char)buf[i] != (unsigned char)((r->total + (size_t)i) % 251))
                r->check = false;
        r->total += (size_t)n;
        if (r->pause > 0)
            gev_sleep(r->pause);
    }
    free(buf);
    return NULL;
}

static char *pattern(size_t n)
{
    char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(i % 251);
    return p;
}

/* A sender c, and a reader greenlet g that drains s into r (chunk bytes at
 * a time, pausing `pause` s after each); data: n bytes of the pattern. */
struct transfer { int c, s; size_t n; char *data; struct reader r; gev_greenlet *g; };

static void transfer_start(struct transfer *x, size_t n, size_t chunk, double pause, bool check)
{
    tcp_pair(&x->c, &x->s);
    x->n = n;
    x->data = pattern(n);
    x->r = (struct reader){ x->s, chunk, pause, 0, check };
    x->g = gev_spawn(read_all, &x->r);
}

static void test_sendall_everything(void **state)
{
    struct transfer x;
    transfer_start(&x, 8u << 20, 65536, 0, true);
    assert_int_equal(gev_sendall(x.c, x.data, x.n, 10), (ssize_t)x.n);
    assert_int_equal(shutdown(x.c, SHUT_WR), 0);
    assert_int_equal(gev_join(x.g, 10), 0);
    assert_int_equal(x.r.total, x.n);
    assert_true(x.r.check);
    gev_release(x.g);
    free(x.data);
    close2(x.c, x.s);
}

/* One deadline for the whole transfer, however many sends it takes. */
static void test_sendall_deadline_expires(void **state)
{
    struct transfer x;
    transfer_start(&x, 64u << 20, 4096, 0.01, false);
    double t0 = gevtest_now();
    assert_fails(gev_sendall(x.c, x.data, x.n, 0.3), ETIMEDOUT);
    double dt = gevtest_now() - t0;
    assert_ge(dt, 0.29);
    assert_lt(dt, 2.0);
    x.r.pause = 0;              /* drain what is buffered, quickly */
    assert_int_equal(gev_close(x.c), 0);
    assert_int_equal(gev_join(x.g, 10), 0);
    assert_true(x.r.total > 0 && x.r.total < x.n);
    gev_release(x.g);
    free(x.data);
    assert_int_equal(gev_close(x.s), 0);
}

static void test_peer_reset(void **state)
{
    int c, s;
    char buf[8];
    tcp_pair(&c, &s);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    assert_int_equal(gev_close(s), 0);      /* RST */
    assert_fails(gev_recv(c, buf, sizeof buf, 0, 5), ECONNRESET);
    /* Reported once; then the connection is simply gone. */
    errno = 0;
    ssize_t n = gev_send(c, "x", 1, 0, 1);
    assert_true(n == -1 ? errno == EPIPE || errno == ECONNRESET : n == 1);
    assert_int_equal(gev_close(c), 0);
}

static void *recv_and_log(void *arg)
{
    int fd = *(int *)arg;
    char buf[8];
    ssize_t n = gev_recv(fd, buf, sizeof buf, 0, 5);
    gevtest_log(n < 0 ? "err:%d" : "n:%d", n < 0 ? errno : (int)n);
    return NULL;
}

static void test_peer_reset_wakes_waiter(void **state)
{
    int c, s;
    tcp_pair(&c, &s);
    gev_greenlet *g = gev_spawn(recv_and_log, &c);
    assert_int_equal(gev_sleep(0), 0);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    assert_int_equal(gev_close(s), 0);
    assert_int_equal(gev_join(g, 5), 0);
    char want[32];
    snprintf(want, sizeof want, "err:%d", ECONNRESET);
    assert_log(want);
    gev_release(g);
    assert_int_equal(gev_close(c), 0);
}

static void test_udp(void **state)
{
    int a = gev_socket(AF_INET, SOCK_DGRAM, 0), b = gev_socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = loopback4(0);
    assert_int_equal(bind(a, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(bind(b, (struct sockaddr *)&addr, sizeof addr), 0);
    struct sockaddr_in to = loopback4(gevtest_local_port(a));
    char buf[16];
    assert_fails(gev_recvfrom(a, buf, sizeof buf, 0, NULL, NULL, 0.01), ETIMEDOUT);
    gev_greenlet *g = gev_spawn(recv_and_log, &a);
    assert_int_equal(gev_sleep(0), 0);
    assert_int_equal(gev_sendto(b, "dgram", 5, 0, (struct sockaddr *)&to, sizeof to, 1), 5);
    assert_int_equal(gev_join(g, 5), 0);
    assert_log("n:5");
    assert_int_equal(gev_sendto(b, "again", 5, 0, (struct sockaddr *)&to, sizeof to, 1), 5);
    struct sockaddr_in from;
    socklen_t len = sizeof from;
    assert_int_equal(gev_recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &len, 1), 5);
    assert_int_equal(ntohs(from.sin_port), gevtest_local_port(b));
    gev_release(g);
    close2(a, b);
}

/* ---- connect -------------------------------------------------------------- */

static int closed_port(void)
{
    int l = gev_tcp_listen("127.0.0.1", "0", 1);
    assert_ge(l, 0);
    int port = gevtest_local_port(l);
    assert_int_equal(gev_close(l), 0);
    return port;
}

static void test_connect_refused(void **state)
{
    struct sockaddr_in a = loopback4(closed_port());
    int fd = gev_socket(AF_INET, SOCK_STREAM, 0);
    assert_fails(gev_connect(fd, (struct sockaddr *)&a, sizeof a, 5), ECONNREFUSED);
    assert_int_equal(gev_close(fd), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    assert_fails(gev_tcp_connect("127.0.0.1", port, 5), ECONNREFUSED);
    assert_fails(gev_tcp_connect("127.0.0.1", NULL, 5), EINVAL);
}

/* A listener that does not answer, without leaving the machine: listen(fd,
 * 0) takes one connection into its queue; with it full, the next SYN is
 * dropped and the connect hangs. */
struct full_listener { int fd; struct sockaddr_in addr; int held[64]; int n; };

static void full_listener_open(struct full_listener *fl)
{
    fl->fd = gev_tcp_listen("127.0.0.1", "0", 0);
    assert_ge(fl->fd, 0);
    fl->addr = loopback4(gevtest_local_port(fl->fd));
    for (fl->n = 0; fl->n < 64; fl->n++) {
        int fd = fl->held[fl->n] = gev_socket(AF_INET, SOCK_STREAM, 0);
        if (gev_connect(fd, (struct sockaddr *)&fl->addr, sizeof fl->addr, 0.2) < 0) {
            assert_int_equal(errno, ETIMEDOUT);
            assert_int_equal(gev_close(fd), 0);
            return;
        }
    }
    fail_msg("the backlog never filled up");
}

static void full_listener_close(struct full_listener *fl)
{
    for (int i = 0; i < fl->n; i++)
        assert_int_equal(gev_close(fl->held[i]), 0);
    assert_int_equal(gev_close(fl->fd), 0);
}

static void test_connect_timeout(void **state)
{
    struct full_listener fl;
    full_listener_open(&fl);
    int fd = gev_socket(AF_INET, SOCK_STREAM, 0);
    double t0 = gevtest_now();
    assert_fails(gev_connect(fd, (struct sockaddr *)&fl.addr, sizeof fl.addr, 0.1), ETIMEDOUT);
    double dt = gevtest_now() - t0;
    assert_true(dt >= 0.095 && dt < 2.0);
    assert_int_equal(gev_close(fd), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(fl.addr.sin_port));
    t0 = gevtest_now();
    assert_fails(gev_tcp_connect("127.0.0.1", port, 0.1), ETIMEDOUT);
    assert_lt(gevtest_now() - t0, 2.0);
    full_listener_close(&fl);
}

static void *connect_killed(void *arg)
{
    const struct sockaddr_in *a = arg;
    int fd = gev_socket(AF_INET, SOCK_STREAM, 0);
    int rc = gev_connect(fd, (const struct sockaddr *)a, sizeof *a, GEV_FOREVER);
    gevtest_log("connect:%d:%d", rc, errno);
    rc = gev_connect(fd, (const struct sockaddr *)a, sizeof *a, GEV_FOREVER);
    gevtest_log("again:%d:%d", rc, errno);
    gev_close(fd);
    return NULL;
}

static void test_kill_during_connect(void **state)
{
    struct full_listener fl;
    full_listener_open(&fl);
    gev_greenlet *g = gev_spawn(connect_killed, &fl.addr);
    assert_int_equal(gev_sleep(0.01), 0);
    assert_int_equal(gev_kill(g, 1), 0);
    char want[64];
    snprintf(want, sizeof want, "connect:-1:%d again:-1:%d", ECANCELED, ECANCELED);
    assert_log(want);
    gev_release(g);
    full_listener_close(&fl);
}

/* ---- gev_tcp_connect: every address, in order ------------------------------- */

static void test_tcp_connect_localhost(void **state)
{
    int l = gev_tcp_listen("127.0.0.1", "0", 8);   /* IPv4 only */
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(l));
    int c = gev_tcp_connect("localhost", port, 5);
    assert_ge(c, 0);
    assert_true(is_nonblock_cloexec(c));
    int s = gev_accept(l, NULL, NULL, 5);
    assert_ge(s, 0);
    assert_int_equal(gev_send(c, "hi", 2, 0, 1), 2);
    char buf[4];
    assert_int_equal(gev_recv(s, buf, sizeof buf, 0, 1), 2);
    close2(c, s);
    assert_int_equal(gev_close(l), 0);
}

static int listen_on(const struct sockaddr *a, socklen_t len)
{
    int fd = gev_socket(a->sa_family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a, len) < 0 || listen(fd, 8) < 0) {
        gev_close(fd);
        return -1;
    }
    return fd;
}

/* ::1 then 127.0.0.1, as getaddrinfo orders "localhost" where both exist:
 * the IPv6 attempt is refused, the IPv4 one must still be made; with both
 * listening, the first address wins. */
static void test_tcp_connect_tries_each_address(void **state)
{
    struct sockaddr_in v4 = loopback4(0);
    int l4 = listen_on((struct sockaddr *)&v4, sizeof v4);
    assert_ge(l4, 0);
    v4.sin_port = htons((uint16_t)gevtest_local_port(l4));
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = v4.sin_port,
                               .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    struct addrinfo ai4 = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                            .ai_addr = (struct sockaddr *)&v4, .ai_addrlen = sizeof v4 };
    struct addrinfo ai6 = { .ai_family = AF_INET6, .ai_socktype = SOCK_STREAM,
                            .ai_addr = (struct sockaddr *)&v6, .ai_addrlen = sizeof v6,
                            .ai_next = &ai4 };
    int c = gev__tcp_connect_list(&ai6, gev__deadline_after(5));
    assert_ge(c, 0);
    int s = gev_accept(l4, NULL, NULL, 1);
    assert_ge(s, 0);
    close2(c, s);

    int l6 = listen_on((struct sockaddr *)&v6, sizeof v6);
    if (l6 < 0) {
        assert_int_equal(gev_close(l4), 0);
        skip();         /* no IPv6 loopback here */
    }
    c = gev__tcp_connect_list(&ai6, gev__deadline_after(5));
    assert_ge(c, 0);
    s = gev_accept(l6, NULL, NULL, 1);
    assert_ge(s, 0);
    assert_fails(gev_accept(l4, NULL, NULL, 0), ETIMEDOUT);
    close2(c, s);
    close2(l4, l6);
    assert_fails(gev__tcp_connect_list(&ai6, gev__deadline_after(5)), ECONNREFUSED);
    assert_fails(gev__tcp_connect_list(NULL, gev__deadline_after(5)), EADDRNOTAVAIL);
}

/* ---- a recv after a short read waits for the loop (stream only) ---- */

struct short_read {
    int fds[2];
    double timeout;
};

static void *log_t(void *arg)
{
    (void)arg;
    gevtest_log("t");
    return NULL;
}

/* Reads 10 bytes (a wait, then a short read), puts 5 more in the socket
 * itself, spawns a logger and reads again: "t" before "r5" means the
 * second recv went through the loop although the bytes were there. */
static void *short_reader(void *arg)
{
    struct short_read *sr = arg;
    char buf[100];
    gevtest_log("r%zd", gev_recv(sr->fds[0], buf, sizeof buf, 0, 5));
    assert_int_equal(write(sr->fds[1], "abcde", 5), 5);
    gev_greenlet *t = gev_spawn(log_t, NULL);
    ssize_t n = gev_recv(sr->fds[0], buf, sizeof buf, 0, sr->timeout);
    gevtest_log("r%zd", n);
    assert_memory_equal(buf, "abcde", 5);
    assert_int_equal(gev_join(t, GEV_FOREVER), 0);
    gev_release(t);
    return NULL;
}

static const char *short_read_order(int type, double timeout)
{
    struct short_read sr = { .timeout = timeout };
    assert_int_equal(socketpair(AF_UNIX, type, 0, sr.fds), 0);
    assert_int_equal(gev_nonblock(sr.fds[0]), 0);
    gevtest_log_reset();
    gev_greenlet *g = gev_spawn(short_reader, &sr);
    assert_int_equal(gev_sleep(0), 0);              /* it waits in its first recv */
    assert_int_equal(write(sr.fds[1], "0123456789", 10), 10);
    assert_int_equal(gev_join(g, 5), 0);
    gev_release(g);
    close2(sr.fds[0], sr.fds[1]);
    return gevtest_log_str();
}

static void test_recv_after_short_read_waits_for_the_loop(void **state)
{
    /* A short read emptied the stream: the next recv lets the loop say
     * when there is more, and still gets the bytes that came meanwhile. */
    assert_string_equal(short_read_order(SOCK_STREAM, 5), "r10 t r5");
    /* Timeout 0 must not wait: it tries at once. */
    assert_string_equal(short_read_order(SOCK_STREAM, 0), "r10 r5 t");
    /* A short datagram says nothing about what else is queued. */
    assert_string_equal(short_read_order(SOCK_DGRAM, 5), "r10 r5 t");
}

struct hub_recv {
    int fd;
    ssize_t got;
    int err;
};

static void recv_in_link(gev_greenlet *g, void *arg)
{
    (void)g;
    struct hub_recv *hr = arg;
    char buf[100];
    hr->got = gev_recv(hr->fd, buf, sizeof buf, 0, 5);
    hr->err = errno;
}

static void test_recv_after_short_read_in_hub_context(void **state)
{
    /* The hub may not wait, so it does not wait first either: with the
     * bytes there, its recv succeeds as it did before any short read. */
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(gev_nonblock(fds[0]), 0);
    struct short_read sr = { .fds = { fds[0], fds[1] }, .timeout = 5 };
    gev_greenlet *g = gev_spawn(short_reader, &sr);  /* leaves fds[0] drained */
    assert_int_equal(gev_sleep(0), 0);
    assert_int_equal(write(fds[1], "0123456789", 10), 10);
    assert_int_equal(gev_join(g, 5), 0);
    gev_release(g);
    assert_int_equal(write(fds[1], "xyz", 3), 3);
    struct hub_recv hr = { .fd = fds[0], .got = -2 };
    gev_greenlet *t = gev_spawn(log_t, NULL);
    assert_int_equal(gev_link(t, recv_in_link, &hr), 0);
    assert_int_equal(gev_join(t, 5), 0);
    gev_release(t);
    assert_int_equal(hr.got, 3);
    close2(fds[0], fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_socket_is_nonblocking),
        gevtest(test_tcp_listen_ephemeral),
        gevtest(test_accept),
        gevtest(test_recv_timeout),
        gevtest(test_bad_socket_arguments),
        gevtest(test_sendall_zero_bytes),
        gevtest(test_sendall_everything),
        gevtest(test_sendall_deadline_expires),
        gevtest(test_peer_reset),
        gevtest(test_peer_reset_wakes_waiter),
        gevtest(test_udp),
        gevtest(test_recv_after_short_read_waits_for_the_loop),
        gevtest(test_recv_after_short_read_in_hub_context),
        gevtest(test_connect_refused),
        gevtest(test_connect_timeout),
        gevtest(test_kill_during_connect),
        gevtest(test_tcp_connect_localhost),
        gevtest(test_tcp_connect_tries_each_address),
    };
    return cmocka_run_group_tests_name("io-socket", tests, NULL, NULL);
}
