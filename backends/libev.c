/* backends/libev.c: the loop backend on libev 4.x (Part 2 of loop.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(HAVE_LIBEV_EV_H) && !defined(HAVE_EV_H)
#include <libev/ev.h>
#else
#include <ev.h>         /* also Fedora's, whose pkg-config adds -I.../libev */
#endif

#include "loop.h"

struct gev__backend {
    gev__loop *loop;
    struct ev_loop *ev;
    ev_timer timeout;
    ev_signal *signals[NSIG];
    /* Of the current poll round: fds reported, fds new to this poll. */
    int round_fds, round_new;
    int round_cap;                  /* what libev's array holds now */
};

/* libev's epoll returns at most 64 fds per call at first and doubles its
 * array after each full call: a round that filled it may have left some
 * behind. */
enum { ROUND_CAP_FIRST = 64 };

const char *gev__backend_name(void) { return "libev"; }

const char *gev__backend_version(void)
{
    static char buf[32];    /* always the same text, so sharing it is fine */

    snprintf(buf, sizeof buf, "%d.%d", ev_version_major(), ev_version_minor());
    return buf;
}

static void on_timeout(struct ev_loop *ev, ev_timer *w, int revents)
{
}

gev__backend *gev__backend_new(gev__loop *loop)
{
    gev__backend *b = calloc(1, sizeof *b);

    if (!b)
        return NULL;
    b->loop = loop;
    b->round_cap = ROUND_CAP_FIRST;
    /* Never the default loop: it belongs to whoever else uses libev here. */
    b->ev = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
    if (!b->ev) {
        free(b);
        errno = ENOMEM;
        return NULL;
    }
    ev_init(&b->timeout, on_timeout);
    return b;
}

void gev__backend_free(gev__backend *b)
{
    for (int sig = 1; sig < NSIG; sig++)
        gev__backend_signal_set(b, sig, false);
    ev_timer_stop(b->ev, &b->timeout);
    ev_loop_destroy(b->ev);
    free(b);
}

static void on_io(struct ev_loop *ev, ev_io *w, int revents)
{
    gev__backend *b = w->data;

    b->round_fds++;             /* one watcher per fd */
    /* EV_ERROR: libev found the fd bad and stopped the watcher; the
     * watchers' next read or write will report the error. */
    if (revents & EV_ERROR)
        revents |= EV_READ | EV_WRITE;
    b->round_new += gev__loop_fd_event(b->loop, w->fd,
        (revents & EV_READ ? GEV__READ : 0) | (revents & EV_WRITE ? GEV__WRITE : 0));
}

static void poll_round(gev__backend *b, int flags)
{
    b->round_fds = b->round_new = 0;
    ev_run(b->ev, flags);
}

/* Poll again only after a round that filled libev's array (it has grown
 * since): a re-poll reports every level-triggered fd of the earlier rounds
 * once more, so a needless one costs as much as the first. */
static bool round_maybe_full(gev__backend *b)
{
    if (b->round_fds < b->round_cap)
        return false;
    if (b->round_cap < INT_MAX / 2)
        b->round_cap *= 2;
    return b->round_new > 0;
}

int gev__backend_poll(gev__backend *b, gev__nsec timeout)
{
    if (timeout > 0) {
        ev_now_update(b->ev);       /* libev counts timers from its own now */
        ev_timer_set(&b->timeout, (ev_tstamp)timeout / 1e9, 0.);
        ev_timer_start(b->ev, &b->timeout);
    }
    poll_round(b, timeout == 0 ? EVRUN_NOWAIT : EVRUN_ONCE);
    /* Nothing is delivered yet, so a level-triggered fd seen again only
     * merges: every fd ready now is reported once, however many. */
    while (round_maybe_full(b))
        poll_round(b, EVRUN_NOWAIT);
    ev_timer_stop(b->ev, &b->timeout);
    return 0;
}

static int ev_mask(int mask)
{
    return (mask & GEV__READ ? EV_READ : 0) | (mask & GEV__WRITE ? EV_WRITE : 0);
}

int gev__backend_fd_set(gev__backend *b, int fd, void **slot, int mask)
{
    ev_io *w = *slot;

    if (!w && !mask)
        return 0;
    if (!w) {
        if (!(w = *slot = malloc(sizeof *w)))
            return -1;
        /* ev_io_init marks the fd as changed, so libev adds a reused number
         * to epoll afresh instead of trusting what it knew (gevent #2100). */
        ev_io_init(w, on_io, fd, ev_mask(mask));
        w->data = b;
    } else if (ev_is_active(w)) {
        ev_io_stop(b->ev, w);
        if (!mask)
            return 0;
        ev_io_modify(w, ev_mask(mask));
    } else if (!mask) {
        return 0;               /* already off: never start one with no events */
    } else {
        ev_io_set(w, fd, ev_mask(mask));
    }
    ev_io_start(b->ev, w);
    return 0;
}

void gev__backend_fd_forget(gev__backend *b, int fd, void **slot)
{
    ev_io *w = *slot;

    if (!w)
        return;
    ev_io_stop(b->ev, w);
    free(w);
    *slot = NULL;
}

static void on_signal(struct ev_loop *ev, ev_signal *w, int revents)
{
    gev__backend *b = w->data;

    gev__loop_signal_event(b->loop, w->signum);
}

int gev__backend_signal_set(gev__backend *b, int signum, bool on)
{
    if (signum <= 0 || signum >= NSIG) {
        errno = EINVAL;
        return -1;
    }
    ev_signal *w = b->signals[signum];
    if (on && !w) {
        if (!(w = malloc(sizeof *w)))
            return -1;
        ev_signal_init(w, on_signal, signum);
        w->data = b;
        ev_signal_start(b->ev, w);
        b->signals[signum] = w;
    } else if (!on && w) {
        ev_signal_stop(b->ev, w);
        free(w);
        b->signals[signum] = NULL;
    }
    return 0;
}

void *gev__backend_native(gev__backend *b) { return b->ev; }

int gev__backend_reinit(gev__backend *b)
{
    /* libev re-creates its epoll fd and re-adds every fd on the next run. */
    ev_loop_fork(b->ev);
    return 0;
}
