/* bench/loadgen.c: closed-loop load generator for the echo and HTTP
 * servers that bench/compare runs.
 *
 *   loadgen echo|http -p PORT [-c CONNS] [-d SECONDS] [-s SIZE] [-n NAME]
 *
 * Opens CONNS connections to 127.0.0.1:PORT (TCP_NODELAY); once all are
 * up, each sends one request and sends the next only when the whole reply
 * is in: echo sends SIZE bytes (default 64) and waits for SIZE back; http
 * sends a 40-byte GET and waits for one response (head plus
 * Content-Length bytes).  One thread, level-triggered epoll.  After
 * SECONDS (default 5) it prints one line:
 *
 *   peer=NAME workload=echo|http value=REQ_PER_S unit=req/s p50_us=.. p99_us=.. errors=..
 *
 * Latency is per request, from the send to the last byte of its reply, in a
 * histogram of 1 us buckets up to 1 s.
 */
#include "raw.h"
#include <arpa/inet.h>
#include <signal.h>
#include <sys/epoll.h>

#define HIST_US 1000000
#define GET "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

struct client {
    int fd, up;
    size_t got, want;           /* bytes of the reply in, bytes it has (0: not known yet) */
    char head[512];             /* http: the reply's head until its length is known */
    int64_t sent_at;
};

static uint32_t hist[HIST_US];
static int http;
static size_t size = 64;
static char msg[65536];

static int send_request(struct client *c)
{
    const char *req = http ? GET : msg;
    size_t len = http ? sizeof GET - 1 : size;
    c->got = 0;
    c->want = http ? 0 : size;
    c->sent_at = raw_now_ns();
    return write(c->fd, req, len) == (ssize_t)len ? 0 : -1;
}

/* http: the reply's total length once its head is in, else 0. */
static size_t http_reply_len(const char *head, size_t len)
{
    const char *end = memmem(head, len, "\r\n\r\n", 4);
    const char *cl = end ? strcasestr(head, "\r\nContent-Length:") : NULL;
    if (!end || !cl || cl > end)
        return 0;
    return (size_t)(end + 4 - head) + strtoul(cl + 17, NULL, 10);
}

/* Data came for c: true once the whole reply is in. */
static int take(struct client *c, const char *buf, size_t n)
{
    if (http && !c->want) {
        size_t room = sizeof c->head - 1 - c->got, k = n < room ? n : room;
        memcpy(c->head + c->got, buf, k);
        c->head[c->got + k] = 0;
        c->want = http_reply_len(c->head, c->got + k);
    }
    c->got += n;
    return c->want && c->got >= c->want;
}

static double percentile(uint64_t total, double q)
{
    uint64_t acc = 0;
    for (int i = 0; i < HIST_US; i++)
        if ((acc += hist[i]) > (uint64_t)(q * (double)total))
            return i;
    return HIST_US;
}

static void connect_all(int ep, struct client *cs, int n, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct epoll_event evs[256];
    for (int i = 0; i < n; i++) {
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0)
            raw_die("socket");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
            raw_die("connect");
        cs[i].fd = fd;
        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &cs[i] };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    int64_t give_up = raw_now_ns() + 10000000000;
    for (int up = 0; up < n;) {
        if (raw_now_ns() > give_up) {
            fprintf(stderr, "loadgen: only %d of %d connections up\n", up, n);
            exit(1);
        }
        int k = epoll_wait(ep, evs, 256, 100);
        for (int j = 0; j < k; j++) {
            struct client *c = evs[j].data.ptr;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
                exit(1);
            }
            if (c->up++)
                continue;
            up++;
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
}

int main(int argc, char **argv)
{
    int port = 0, nconn = 100, opt, errors = 0;
    double secs = 5;
    const char *name = "unknown";
    if (argc < 2 || (strcmp(argv[1], "echo") && strcmp(argv[1], "http")))
        goto usage;
    http = !strcmp(argv[1], "http");
    optind = 2;
    while ((opt = getopt(argc, argv, "p:c:d:s:n:")) != -1)
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': nconn = atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'n': name = optarg; break;
        default: goto usage;
        }
    if (port <= 0 || nconn <= 0 || size == 0 || size > sizeof msg)
        goto usage;
    signal(SIGPIPE, SIG_IGN);
    raw_raise_nofile();
    memset(msg, 'x', size);
    struct client *cs = calloc((size_t)nconn, sizeof *cs);
    struct epoll_event *evs = calloc((size_t)nconn, sizeof *evs);
    int ep = epoll_create1(0);
    if (!cs || !evs || ep < 0)
        raw_die("setup");
    connect_all(ep, cs, nconn, port);

    uint64_t done = 0;
    int64_t t0 = raw_now_ns(), t_end = t0 + (int64_t)(secs * 1e9);
    for (int i = 0; i < nconn; i++)
        errors += send_request(&cs[i]) < 0;
    while (raw_now_ns() < t_end) {
        int k = epoll_wait(ep, evs, nconn, 50);
        for (int j = 0; j < k; j++) {
            struct client *c = evs[j].data.ptr;
            char buf[65536];
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0) {
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            if (!take(c, buf, (size_t)r))
                continue;
            int64_t us = (raw_now_ns() - c->sent_at) / 1000;
            hist[us < HIST_US ? us : HIST_US - 1]++;
            done++;
            errors += send_request(c) < 0;
        }
    }
    double el = (double)(raw_now_ns() - t0) / 1e9;
    printf("peer=%s workload=%s value=%.0f unit=req/s p50_us=%.0f p99_us=%.0f errors=%d "
           "conns=%d seconds=%.2f\n", name, argv[1], (double)done / el, percentile(done, 0.5),
           percentile(done, 0.99), errors, nconn, el);
    return 0;
usage:
    fprintf(stderr, "usage: loadgen echo|http -p PORT [-c CONNS] [-d SECONDS] [-s SIZE] [-n NAME]\n");
    return 2;
}
