/* api/event.c: gev_event, gevent.event.Event.
 *
 * A flag and the greenlets waiting for it.  set() wakes every waiter with
 * success at once, so a waiter returns 0 even if the flag was cleared again
 * before it ran (gevent: "set at any point during the wait"); waiters never
 * re-check the flag.  A wait on a set event returns without switching. */
#include "config.h"
#include <stdlib.h>
#include "sync.h"

struct gev_event {
    gev_hub *hub;           /* GEV_DEBUG only, else NULL (core/debug.h) */
    bool flag;
    gev__waitq waiters;
};

gev_event *gev_event_new(void)
{
    gev_event *e = malloc(sizeof *e);
    if (!e)
        return NULL;
    e->hub = gev__debug_owner();
    e->flag = false;
    gev__waitq_init(&e->waiters);
    return e;
}

void gev_event_set(gev_event *e)
{
    if (!e) {
        errno = EINVAL;
        return;
    }
    GEV__CHECK_OWNER(e->hub, "event");
    e->flag = true;
    gev__sync_give_all(&e->waiters, NULL, 0);
}

void gev_event_clear(gev_event *e)
{
    if (!e) {
        errno = EINVAL;
        return;
    }
    GEV__CHECK_OWNER(e->hub, "event");
    e->flag = false;
}

bool gev_event_is_set(const gev_event *e)
{
    if (!e) {
        errno = EINVAL;
        return false;
    }
    GEV__CHECK_OWNER(e->hub, "event");
    return e->flag;
}

int gev_event_wait(gev_event *e, double timeout)
{
    if (!e)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(e->hub, "event");
    if (e->flag)
        return 0;
    gev__waiter w;
    return gev__sync_result(gev__sync_wait(&e->waiters, &w, NULL, 0, GEV__WAIT_EVENT, timeout));
}

void gev_event_free(gev_event *e)
{
    if (!e)
        return;
    GEV__CHECK_OWNER(e->hub, "event");
    gev__sync_abandon(&e->waiters);
    free(e);
}
