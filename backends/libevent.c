/* backends/libevent.c: the loop backend on libevent 2.1 (Part 2 of loop.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <event2/event.h>

#include "loop.h"

typedef struct fd_slot fd_slot;

struct gev__backend {
    gev__loop *loop;
    struct event_base *base;
    struct event *timeout;
    struct event *signals[NSIG];
    int nsignals;
    /* Of the current poll round: fds reported, fds new to this poll. */
    int round_fds, round_new;
    unsigned round_no;
    int round_cap;                  /* what libevent's array holds now */
};

/* One event per direction, so turning one on or off is one epoll_ctl.
 * (libevent reports the directions in separate callbacks; the core merges
 * them into one delivery per fd.) */
struct fd_slot {
    gev__backend *b;
    struct event *ev[2];
    int fd;
    int mask;
    unsigned round_seen;            /* counted in this round already */
};

static const int dir_mask[2] = { GEV__READ, GEV__WRITE };

/* libevent's epoll returns at most 32 fds per call at first and doubles its
 * array after each full call, up to 4096: a round that filled it may have
 * left some behind. */
enum { ROUND_CAP_FIRST = 32, ROUND_CAP_MAX = 4096 };

/* libevent sends every signal through one process-wide pipe that follows
 * the last base to add one, so only one base may have signals at a time. */
static _Atomic(gev__backend *) signal_base;

const char *gev__backend_name(void) { return "libevent"; }

const char *gev__backend_version(void) { return event_get_version(); }

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
}

gev__backend *gev__backend_new(gev__loop *loop)
{
    gev__backend *b = calloc(1, sizeof *b);
    struct event_config *cfg = event_config_new();

    if (!b || !cfg)
        goto fail;
    b->loop = loop;
    b->round_cap = ROUND_CAP_FIRST;
    /* Locks are useless: a loop belongs to one thread.  No PRECISE_TIMER:
     * it makes epoll arm a timerfd on every poll, a syscall each time, and
     * buys nothing here.  The core keeps its own clock and timer heap and
     * only ever asks for a relative wait, which libevent, like libev,
     * rounds up to epoll's milliseconds; the coarse clock can only end a
     * wait early, and the core then polls again for the rest. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    b->base = event_base_new_with_config(cfg);
    if (!b->base || !(b->timeout = evtimer_new(b->base, on_timeout, NULL)))
        goto fail;
    event_config_free(cfg);
    return b;
fail:
    if (b && b->base)
        event_base_free(b->base);
    if (cfg)
        event_config_free(cfg);
    free(b);
    errno = ENOMEM;
    return NULL;
}

void gev__backend_free(gev__backend *b)
{
    for (int sig = 1; sig < NSIG; sig++)
        gev__backend_signal_set(b, sig, false);
    event_free(b->timeout);
    event_base_free(b->base);
    free(b);
}

/* -- readiness ----------------------------------------------------------- */

static void on_fd(evutil_socket_t fd, short what, void *arg)
{
    fd_slot *s = arg;
    gev__backend *b = s->b;

    /* The two directions come in separate callbacks: count the fd once. */
    if (s->round_seen != b->round_no) {
        s->round_seen = b->round_no;
        b->round_fds++;
    }
    b->round_new += gev__loop_fd_event(b->loop, s->fd,
        (what & EV_READ ? GEV__READ : 0) | (what & EV_WRITE ? GEV__WRITE : 0));
}

static int poll_round(gev__backend *b, int flags)
{
    b->round_fds = b->round_new = 0;
    b->round_no++;
    /* NONBLOCK alone would keep looping while callbacks run; ONCE ends the
     * call after one round.  1 means no events registered: not an error. */
    return event_base_loop(b->base, EVLOOP_ONCE | flags) < 0 ? -1 : 0;
}

/* Poll again only after a round that filled libevent's array (it has grown
 * since): a re-poll reports every level-triggered fd of the earlier rounds
 * once more, so a needless one costs as much as the first. */
static bool round_maybe_full(gev__backend *b)
{
    if (b->round_fds < b->round_cap)
        return false;
    if (b->round_cap < ROUND_CAP_MAX)
        b->round_cap *= 2;
    return b->round_new > 0;
}

int gev__backend_poll(gev__backend *b, gev__nsec timeout)
{
    if (timeout > 0) {
        gev__nsec us = (timeout + 999) / 1000;
        struct timeval tv = { .tv_sec = us / 1000000, .tv_usec = us % 1000000 };
        if (evtimer_add(b->timeout, &tv) == -1)
            return -1;
    }
    int rc = poll_round(b, timeout == 0 ? EVLOOP_NONBLOCK : 0);
    /* Nothing is delivered yet, so a level-triggered fd seen again only
     * merges: every fd ready now is reported once, however many. */
    while (rc == 0 && round_maybe_full(b))
        rc = poll_round(b, EVLOOP_NONBLOCK);
    if (timeout > 0)
        evtimer_del(b->timeout);
    return rc;
}

/* -- per-fd interest --------------------------------------------------- */

static fd_slot *slot_new(gev__backend *b, int fd)
{
    fd_slot *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    s->b = b;
    s->fd = fd;
    s->ev[0] = event_new(b->base, fd, EV_READ | EV_PERSIST, on_fd, s);
    s->ev[1] = event_new(b->base, fd, EV_WRITE | EV_PERSIST, on_fd, s);
    if (s->ev[0] && s->ev[1])
        return s;
    if (s->ev[0])
        event_free(s->ev[0]);
    free(s);
    errno = ENOMEM;
    return NULL;
}

static int dir_apply(fd_slot *s, int i, int mask)
{
    return mask & dir_mask[i] ? event_add(s->ev[i], NULL) : event_del(s->ev[i]);
}

int gev__backend_fd_set(gev__backend *b, int fd, void **slot, int mask)
{
    fd_slot *s = *slot;

    if (!s && !mask)
        return 0;
    if (!s && !(s = *slot = slot_new(b, fd)))
        return -1;
    for (int i = 0; i < 2; i++) {
        if (!((s->mask ^ mask) & dir_mask[i]) || dir_apply(s, i, mask) == 0)
            continue;
        int err = errno ? errno : EINVAL;
        if (i == 1 && ((s->mask ^ mask) & dir_mask[0]))
            dir_apply(s, 0, s->mask);       /* all or nothing */
        errno = err;
        return -1;
    }
    s->mask = mask;
    return 0;
}

void gev__backend_fd_forget(gev__backend *b, int fd, void **slot)
{
    fd_slot *s = *slot;

    if (!s)
        return;
    event_free(s->ev[0]);
    event_free(s->ev[1]);
    free(s);
    *slot = NULL;
}

/* -- signals, fork --------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    gev__backend *b = arg;

    gev__loop_signal_event(b->loop, (int)sig);
}

static int signal_on(gev__backend *b, int signum)
{
    gev__backend *none = NULL;

    if (b->nsignals == 0 && !atomic_compare_exchange_strong(&signal_base, &none, b)) {
        errno = EBUSY;
        return -1;
    }
    struct event *ev = evsignal_new(b->base, signum, on_signal, b);
    if (ev && evsignal_add(ev, NULL) == 0) {
        b->signals[signum] = ev;
        b->nsignals++;
        return 0;
    }
    int err = errno ? errno : EINVAL;
    if (ev)
        event_free(ev);
    if (b->nsignals == 0)
        atomic_store(&signal_base, NULL);
    errno = err;
    return -1;
}

int gev__backend_signal_set(gev__backend *b, int signum, bool on)
{
    if (signum <= 0 || signum >= NSIG) {
        errno = EINVAL;
        return -1;
    }
    if (on == (b->signals[signum] != NULL))
        return 0;
    if (on)
        return signal_on(b, signum);
    event_free(b->signals[signum]);
    b->signals[signum] = NULL;
    if (--b->nsignals == 0)
        atomic_store(&signal_base, NULL);
    return 0;
}

void *gev__backend_native(gev__backend *b) { return b->base; }

int gev__backend_reinit(gev__backend *b)
{
    return event_reinit(b->base);
}
