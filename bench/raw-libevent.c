/* bench/raw-libevent.c: the floor gev-libevent is measured against: the
 * same workloads written directly on libevent 2, with callbacks and no
 * coroutines.
 *
 *   raw-libevent echo PORT     TCP echo server on 127.0.0.1 (read 16 KiB, write it back)
 *   raw-libevent http PORT     keep-alive HTTP server: the 78-byte reply per request head
 *   raw-libevent timers N      N timer events with gev-bench's timer durations, all
 *                              added at once: overhead, order inversions, lateness
 *   raw-libevent pages PORT MS SIZE
 *                              the download workload's slow web server: every
 *                              request is answered after MS milliseconds with a
 *                              SIZE-byte body, then the connection is closed
 *
 * The echo and http servers use plain events (not bufferevents), the
 * cheapest way to use libevent, and are meant for closed-loop loads of small
 * messages: a reply is one write into an empty socket buffer, so a short
 * write only happens to a client that stopped reading, and closes the
 * connection.  The base is libevent's default one (no precise timer: the
 * cached, coarse clock is what the timer workload shows).  Servers run until
 * killed.
 */
#include "raw.h"
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>   /* timers embedded like libev's, no malloc each */

#define PEER "libevent"

static struct event_base *base;

struct conn {
    struct event *ev;
    int http, tail;             /* tail: see raw_http_heads */
};

static int http_mode;

static void conn_close(struct conn *c)
{
    close(event_get_fd(c->ev));
    event_free(c->ev);
    free(c);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    char buf[16384];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    ssize_t sent = c->http ? raw_http_reply(fd, raw_http_heads(buf, (size_t)n, &c->tail))
                           : write(fd, buf, (size_t)n);
    if (sent < 0 || (!c->http && sent != n))
        conn_close(c);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    (void)what; (void)arg;
    int fd;
    while ((fd = accept(lfd, NULL, NULL)) >= 0) {
        struct conn *c = calloc(1, sizeof *c);
        if (!c || !(c->ev = event_new(base, fd, EV_READ | EV_PERSIST, conn_cb, c))) {
            free(c);
            close(fd);
            continue;
        }
        raw_nonblock_nodelay(fd);
        c->http = http_mode;
        event_add(c->ev, NULL);
    }
}

static int serve(int port, int http, event_callback_fn cb)
{
    http_mode = http;
    raw_raise_nofile();
    struct event *lev = event_new(base, raw_listen(port), EV_READ | EV_PERSIST, cb, NULL);
    if (!lev || event_add(lev, NULL) < 0)
        raw_die("event_add");
    event_base_dispatch(base);
    return 0;
}

/* ---- the download workload's slow server ----------------------------------------- */

static struct timeval page_delay;
static char *page;
static size_t page_len;

struct page_conn {
    struct bufferevent *bev;
    struct event *timer;
    int tail;
};

static void page_free(struct page_conn *p)
{
    event_free(p->timer);
    bufferevent_free(p->bev);
    free(p);
}

static void page_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev; (void)what;
    page_free(arg);
}

/* The whole reply is out: close (the client reads up to the close). */
static void page_written_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    page_free(arg);
}

static void page_due_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    struct page_conn *p = arg;
    evbuffer_add_printf(bufferevent_get_output(p->bev),
                        "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                        page_len);
    evbuffer_add_reference(bufferevent_get_output(p->bev), page, page_len, NULL, NULL);
    bufferevent_setcb(p->bev, NULL, page_written_cb, page_event_cb, p);
}

static void page_read_cb(struct bufferevent *bev, void *arg)
{
    struct page_conn *p = arg;
    char buf[4096];
    size_t n;
    while ((n = bufferevent_read(bev, buf, sizeof buf)) > 0)
        if (raw_http_heads(buf, n, &p->tail)) {
            bufferevent_disable(bev, EV_READ);
            evtimer_add(p->timer, &page_delay);
            return;
        }
}

static void page_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    (void)what; (void)arg;
    int fd;
    while ((fd = accept(lfd, NULL, NULL)) >= 0) {
        struct page_conn *p = calloc(1, sizeof *p);
        raw_nonblock_nodelay(fd);
        if (!p || !(p->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE))) {
            free(p);
            close(fd);
            continue;
        }
        p->timer = evtimer_new(base, page_due_cb, p);
        bufferevent_setcb(p->bev, page_read_cb, NULL, page_event_cb, p);
        bufferevent_enable(p->bev, EV_READ);
    }
}

static int pages(int port, long ms, long size)
{
    page_delay = (struct timeval){ .tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000 };
    page_len = (size_t)size;
    if (!(page = malloc(page_len)))
        raw_die("malloc");
    memset(page, 'x', page_len);
    return serve(port, 0, page_accept_cb);
}

/* ---- timers ---------------------------------------------------------------- */

static struct raw_timers tm;

struct timer {
    struct event ev;
    long i;
};

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    raw_timers_fired(&tm, ((struct timer *)arg)->i);
}

static int timers(long n)
{
    struct timer *ts = raw_timers_init(&tm, n, sizeof *ts);
    int64_t t0 = raw_now_ns();
    for (long i = 0; i < n; i++) {
        /* Outside the loop evtimer_add reads libevent's clock, which
         * without EVENT_BASE_FLAG_PRECISE_TIMER is CLOCK_MONOTONIC_COARSE
         * (one tick is several ms): the caller's deadline is its own
         * precise clock now plus the duration, and the difference is what
         * the inversions count. */
        struct timeval tv = { .tv_sec = tm.dur_us[i] / 1000000,
                              .tv_usec = tm.dur_us[i] % 1000000 };
        tm.deadline[i] = raw_now_ns() + (int64_t)tm.dur_us[i] * 1000;
        ts[i].i = i;
        evtimer_assign(&ts[i].ev, base, timer_cb, &ts[i]);
        evtimer_add(&ts[i].ev, &tv);
    }
    event_base_dispatch(base);
    free(ts);
    return raw_timers_finish(&tm, PEER, t0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!(base = event_base_new()))
        raw_die("event_base_new");
    if (argc == 3 && !strcmp(argv[1], "echo"))
        return serve(atoi(argv[2]), 0, accept_cb);
    if (argc == 3 && !strcmp(argv[1], "http"))
        return serve(atoi(argv[2]), 1, accept_cb);
    if (argc == 3 && !strcmp(argv[1], "timers") && atol(argv[2]) > 1)
        return timers(atol(argv[2]));
    if (argc == 5 && !strcmp(argv[1], "pages"))
        return pages(atoi(argv[2]), atol(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: %s echo PORT | http PORT | timers N | pages PORT MS SIZE\n", argv[0]);
    return 2;
}
