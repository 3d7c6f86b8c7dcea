/* bench/bench-net.c: network workloads (W5 echo, W6 http, pingpong).
 *
 * Servers are written the way a gev user would write them: the main
 * greenlet accepts, one greenlet per connection does plain blocking-style
 * gev_recv / gev_sendall.  What the peers' servers do is matched: 127.0.0.1
 * only, backlog 4096, TCP_NODELAY, one 16 KiB read per wake-up, keep-alive.
 * They run until the process is killed (the driver sends SIGTERM).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem */
#endif
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include "bench.h"

#define CONN_BUF 16384

/* The peers' reply, byte for byte: 78 bytes, of which a 13-byte body. */
static const char http_reply[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "hello, world\n";
#define HTTP_REPLY_LEN (sizeof http_reply - 1)

static void open_files_to_hard_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* plain: a socket as libc makes it (blocking), for bench-patch.c's
 * unmodified server; else gev_socket's non-blocking one. */
static int listen_loopback(const char *port_arg, bool plain)
{
    long port = atol(port_arg);
    if (port < 1 || port > 65535)
        bench_die("port out of range");
    int fd = plain ? socket(AF_INET, SOCK_STREAM, 0) : gev_socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        bench_die("socket");
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
        bench_die("bind");
    if (listen(fd, 4096) < 0)
        bench_die("listen");
    return fd;
}

int bench_serve(const char *what, const char *port, gev_fn handler, bool plain)
{
    open_files_to_hard_limit();
    int lfd = listen_loopback(port, plain);
    fprintf(stderr, "%s %s server on 127.0.0.1:%s\n", bench_peer(), what, port);
    for (;;) {
        int fd = plain ? accept(lfd, NULL, NULL) : gev_accept(lfd, NULL, NULL, GEV_FOREVER);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                gev_sleep(0.01);        /* out of descriptors: let some close */
            else if (errno != ECONNABORTED && errno != EINTR)
                bench_die("accept");
            continue;
        }
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        gev_greenlet *g = gev_spawn(handler, (void *)(intptr_t)fd);
        if (!g) {
            gev_close(fd);
            continue;
        }
        gev_release(g);
    }
}

/* ---- W5: echo ---------------------------------------------------------------- */

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[CONN_BUF];
    for (;;) {
        ssize_t n = gev_recv(fd, buf, sizeof buf, 0, GEV_FOREVER);
        if (n <= 0 || gev_sendall(fd, buf, (size_t)n, GEV_FOREVER) < 0)
            break;
    }
    gev_close(fd);
    return NULL;
}

int bench_echo(int argc, char **argv)
{
    (void)argc;
    return bench_serve("echo", argv[1], echo_conn, false);
}

/* ---- W6: minimal HTTP ------------------------------------------------------------
 * Any complete request head ("\r\n\r\n") gets the canned reply; pipelined
 * requests are answered together, in one send. */

static void *http_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char in[CONN_BUF], out[CONN_BUF];
    size_t have = 0;
    for (;;) {
        ssize_t n = gev_recv(fd, in + have, sizeof in - have, 0, GEV_FOREVER);
        if (n <= 0)
            break;
        have += (size_t)n;
        size_t used = 0, outlen = 0;
        char *end;
        while (outlen + HTTP_REPLY_LEN <= sizeof out &&
               (end = memmem(in + used, have - used, "\r\n\r\n", 4))) {
            memcpy(out + outlen, http_reply, HTTP_REPLY_LEN);
            outlen += HTTP_REPLY_LEN;
            used = (size_t)(end - in) + 4;
        }
        if (used) {
            memmove(in, in + used, have - used);
            have -= used;
        } else if (have == sizeof in) {
            break;                      /* a head larger than the buffer */
        }
        if (outlen && gev_sendall(fd, out, outlen, GEV_FOREVER) < 0)
            break;
    }
    gev_close(fd);
    return NULL;
}

int bench_http(int argc, char **argv)
{
    (void)argc;
    return bench_serve("http", argv[1], http_conn, false);
}

/* ---- pingpong: two greenlets over a socketpair ----------------------------------- */

#define PING_SIZE 64

static int pp_fd[2];
static long pp_rounds;

static int recv_exactly(int fd, char *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = gev_recv(fd, buf + got, n - got, 0, GEV_FOREVER);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *pinger(void *arg)
{
    char msg[PING_SIZE] = { 0 }, back[PING_SIZE];
    for (long i = 0; i < pp_rounds; i++)
        if (gev_sendall(pp_fd[0], msg, sizeof msg, GEV_FOREVER) < 0 ||
            recv_exactly(pp_fd[0], back, sizeof back) < 0)
            bench_die("pingpong: pinger");
    return arg;
}

static void *ponger(void *arg)
{
    char buf[PING_SIZE];
    while (recv_exactly(pp_fd[1], buf, sizeof buf) == 0)
        if (gev_sendall(pp_fd[1], buf, sizeof buf, GEV_FOREVER) < 0)
            break;
    return arg;
}

int bench_pingpong(int argc, char **argv)
{
    (void)argc;
    pp_rounds = atol(argv[1]);
    if (pp_rounds < 1)
        bench_die("pingpong: N must be positive");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pp_fd) < 0)
        bench_die("socketpair");
    int64_t t0 = bench_now_ns();
    gev_greenlet *a = bench_spawn(pinger, NULL);
    gev_greenlet *b = bench_spawn(ponger, NULL);
    bench_join(a);
    int64_t t1 = bench_now_ns();
    gev_close(pp_fd[0]);                /* the ponger sees EOF and returns */
    bench_join(b);
    gev_close(pp_fd[1]);
    double secs = (double)(t1 - t0) / 1e9;
    bench_result("pingpong", "value=%.0f unit=rt/s ns_per_rt=%.1f n=%ld size=%d",
                 pp_rounds / secs, secs * 1e9 / pp_rounds, pp_rounds, PING_SIZE);
    return 0;
}
