/* core/timeout.c: scoped timeouts (gevent.Timeout).
 *
 * A timeout belongs to the greenlet that started it.  When it fires it wakes
 * that greenlet if it is waiting, and from then on every blocking call of
 * the greenlet fails at once with ETIMEDOUT (gev__block_check counts expired
 * timeouts) until the scope is cancelled, except while it is shielded.
 * Nested timeouts each keep their
 * own timer: the first to expire fires, the others stay pending.
 *
 * A cancelled timeout is not freed at once: it waits in its hub's
 * quarantine (hub-internal.h) marked cancelled, so a second cancel of the
 * same handle finds it and does nothing, instead of touching freed memory
 * or another scope that took it over.  Under GEV_DEBUG it is kept until
 * the hub goes, and any later use aborts. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "gev.h"           /* the calls this file defines */
#include "hub-internal.h"

struct gev_timeout {
    gev__timer timer;
    gev_greenlet *owner;
    gev_hub *hub;               /* the owner's: the owner may be freed first */
    bool expired;
    bool cancelled;
    struct gev_timeout *outer;  /* the owner's stack of scopes */
};

static void timeout_fired(gev__loop *loop, gev__timer *t)
{
    (void)loop;
    gev_timeout *to = t->base.data;
    to->expired = true;
    to->owner->expired_timeouts++;
    gev__interrupt(to->owner);
}

gev_timeout *gev_timeout_start(double seconds)
{
    gev_hub *hub = gev__hub();
    if (!hub)
        return NULL;
    gev_greenlet *g = gev_current();
    if (g->is_hub) {
        errno = EDEADLK;
        return NULL;
    }
    gev__nsec deadline;
    if (gev__timeout_deadline(seconds, &deadline)) {
        errno = EINVAL;
        return NULL;
    }
    gev_timeout *to = calloc(1, sizeof *to);
    if (!to)
        return NULL;
    to->owner = g;
    to->hub = hub;
    to->outer = g->timeouts;
    g->timeouts = to;
    gev__timer_init(&to->timer, timeout_fired);
    to->timer.base.data = to;
    if (deadline != GEV__FOREVER) {
        gev__timer_start_at(gev__hub_loop(hub), &to->timer, deadline);
        if (!to->timer.base.active) {       /* ENOMEM: it would never expire */
            gev_timeout_cancel(to);
            errno = ENOMEM;
            return NULL;
        }
    }
    return to;
}

/* GEV_DEBUG: a cancelled timeout, or another thread's. */
static __attribute__((noinline, cold)) void debug_check(const gev_timeout *t, const char *call)
{
    if (t->cancelled)
        gev__misuse(call, strcmp(call, "gev_timeout_cancel") == 0
                    ? "timeout cancelled twice (or after its greenlet returned)"
                    : "timeout used after gev_timeout_cancel (or after its greenlet returned)");
    gev__debug_check_owner(t->hub, call, "timeout");
}

#define CHECK_TIMEOUT(t)                                                \
    do {                                                                \
        if (__builtin_expect(gev__debug, 0))                            \
            debug_check((t), __func__);                                 \
    } while (0)

bool gev_timeout_expired(const gev_timeout *t)
{
    if (!t)
        return false;
    CHECK_TIMEOUT(t);
    return t->expired;          /* cancelled and quarantined: as it was */
}

static void timeout_detach(gev_timeout *t)
{
    if (t->timer.base.active)
        gev__timer_stop(gev__hub_loop(t->owner->hub), &t->timer);
    if (t->expired) {
        t->owner->expired_timeouts--;
        gev__greenlet_interrupt_update(t->owner);
    }
    for (gev_timeout **pp = &t->owner->timeouts; *pp; pp = &(*pp)->outer)
        if (*pp == t) {
            *pp = t->outer;
            break;
        }
}

/* Detach t and retire it: quarantined (or kept, under GEV_DEBUG), and
 * whatever the quarantine pushes out is freed. */
static void timeout_end(gev_timeout *t)
{
    gev_hub *hub = t->hub;
    timeout_detach(t);
    t->cancelled = true;
    if (__builtin_expect(gev__debug, 0)) {
        t->outer = hub->kept_timeouts;
        hub->kept_timeouts = t;
        return;
    }
    free(gev__quarantine_push(&hub->timeout_quarantine, t));
}

void gev_timeout_cancel(gev_timeout *t)
{
    if (!t)
        return;
    CHECK_TIMEOUT(t);
    if (!t->cancelled)          /* twice: nothing to do (see the top) */
        timeout_end(t);
}

/* A greenlet returned inside open scopes: nothing can cancel them usefully
 * any more, and their timers must not fire into a freed record.  A handle
 * the greenlet gave away is cancelled already when its holder cancels it. */
void gev__timeout_owner_finished(gev_greenlet *g)
{
    while (g->timeouts)
        timeout_end(g->timeouts);
}

void gev__timeout_free_all(gev_hub *hub)
{
    gev__quarantine_drain(&hub->timeout_quarantine);
    while (hub->kept_timeouts) {
        gev_timeout *t = hub->kept_timeouts;
        hub->kept_timeouts = t->outer;
        free(t);
    }
}
