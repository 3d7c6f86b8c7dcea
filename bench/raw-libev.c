/* bench/raw-libev.c: the floor gev-libev is measured against: the same
 * workloads written directly on libev, with callbacks and no coroutines.
 *
 *   raw-libev echo PORT    TCP echo server on 127.0.0.1 (read 16 KiB, write it back)
 *   raw-libev http PORT    keep-alive HTTP server: the 78-byte reply per request head
 *   raw-libev timers N     N ev_timers with gev-bench's timer durations, all
 *                          started at once: overhead, order inversions, lateness
 *
 * The servers are for closed-loop loads of small messages (bench/loadgen.c,
 * wrk): a reply is one write into an empty socket buffer, so a short write
 * only happens to a client that stopped reading, and closes the connection.
 * They run until killed.
 */
#include <ev.h>
#include "raw.h"

#define PEER "libev"

struct conn {
    ev_io io;
    int http, tail;             /* tail: see raw_http_heads */
};

static int http_mode;

static void conn_close(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c);
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct conn *c = (struct conn *)w;
    char buf[16384];
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(loop, c);
        return;
    }
    ssize_t sent = c->http ? raw_http_reply(w->fd, raw_http_heads(buf, (size_t)n, &c->tail))
                           : write(w->fd, buf, (size_t)n);
    if (sent < 0 || (!c->http && sent != n))
        conn_close(loop, c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    int fd;
    while ((fd = accept(w->fd, NULL, NULL)) >= 0) {
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        raw_nonblock_nodelay(fd);
        c->http = http_mode;
        ev_io_init(&c->io, conn_cb, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

static int serve(int port, int http)
{
    struct ev_loop *loop = EV_DEFAULT;
    ev_io lw;
    http_mode = http;
    raw_raise_nofile();
    ev_io_init(&lw, accept_cb, raw_listen(port), EV_READ);
    ev_io_start(loop, &lw);
    ev_run(loop, 0);
    return 0;
}

/* ---- timers ---------------------------------------------------------------- */

static struct raw_timers tm;

struct timer {
    ev_timer w;
    long i;
};

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    raw_timers_fired(&tm, ((struct timer *)w)->i);
}

static int timers(long n)
{
    struct ev_loop *loop = EV_DEFAULT;
    struct timer *ts = raw_timers_init(&tm, n, sizeof *ts);
    int64_t t0 = raw_now_ns();
    for (long i = 0; i < n; i++) {
        /* ev_timer_start counts from the loop's cached time, which is as
         * old as the last poll: refresh it (libev's advice for timers
         * started long after a poll), so each deadline is the clock now
         * plus the duration, as the caller records it. */
        ev_now_update(loop);
        tm.deadline[i] = raw_now_ns() + (int64_t)tm.dur_us[i] * 1000;
        ts[i].i = i;
        ev_timer_init(&ts[i].w, timer_cb, tm.dur_us[i] / 1e6, 0);
        ev_timer_start(loop, &ts[i].w);
    }
    ev_run(loop, 0);
    free(ts);
    return raw_timers_finish(&tm, PEER, t0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "echo"))
        return serve(atoi(argv[2]), 0);
    if (argc == 3 && !strcmp(argv[1], "http"))
        return serve(atoi(argv[2]), 1);
    if (argc == 3 && !strcmp(argv[1], "timers") && atol(argv[2]) > 1)
        return timers(atol(argv[2]));
    fprintf(stderr, "usage: %s echo PORT | http PORT | timers N\n", argv[0]);
    return 2;
}
