/* core/timeout.c: scoped timeouts (gevent.Timeout).
 *
 * A timeout belongs to the greenlet that started it.  When it fires it wakes
 * that greenlet if it is waiting, and from then on every blocking call of
 * the greenlet fails at once with ETIMEDOUT (gev__block_check counts expired
 * timeouts) until the scope is cancelled, except while it is shielded.  Nested timeouts each keep their
 * own timer: the first to expire fires, the others stay pending. */
#include "config.h"
#include <stdlib.h>
#include "hub-internal.h"

struct gev_timeout {
    gev__timer timer;
    gev_greenlet *owner;
    bool expired;
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

bool gev_timeout_expired(const gev_timeout *t)
{
    return t && t->expired;
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

void gev_timeout_cancel(gev_timeout *t)
{
    if (!t)
        return;
    timeout_detach(t);
    free(t);
}

/* A greenlet returned inside open scopes: nothing can cancel them usefully
 * any more, and their timers must not fire into a freed record. */
void gev__timeout_owner_finished(gev_greenlet *g)
{
    while (g->timeouts)
        gev_timeout_cancel(g->timeouts);
}
