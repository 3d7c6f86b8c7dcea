/* api/channel.c: gev_channel, gevent.queue.Channel: a rendezvous.
 *
 * No buffer: a put returns only once a getter has the item.  The orderings
 * are gevent's (test__queue.py::TestChannel):
 *  - put with a getter waiting hands the item over, then yields, so the
 *    getter runs before the putter goes on (gevent's hub switches to the
 *    getter first, then back to the putter);
 *  - put with no getter waits as a putter until a getter takes the item;
 *  - get with a putter waiting takes its item, wakes it and goes on without
 *    switching (the putter resumes after the getter blocks or yields).
 * From hub context a put or get succeeds only if a partner waits.
 * Close fails every blocked getter and putter with EPIPE (a putter's item
 * was not taken), and every later put and get at once. */
#include "config.h"
#include <stdlib.h>
#include "sync.h"

struct gev_channel {
    gev_hub *hub;           /* GEV_DEBUG only, else NULL (core/debug.h) */
    gev__waitq getters, putters;
    bool closed;
};

gev_channel *gev_channel_new(void)
{
    gev_channel *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->hub = gev__debug_owner();
    gev__waitq_init(&c->getters);
    gev__waitq_init(&c->putters);
    c->closed = false;
    return c;
}

int gev_channel_put(gev_channel *c, void *item, double timeout)
{
    if (!c)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(c->hub, "channel");
    if (c->closed)
        return gev__fail(EPIPE);
    if (gev__sync_handoff(&c->getters, item)) {
        if (!gev__in_hub())
            gev__yield();
        return 0;
    }
    gev__waiter w;
    return gev__sync_result(gev__sync_wait(&c->putters, &w, item, 0, GEV__WAIT_CHANNEL, timeout));
}

int gev_channel_get(gev_channel *c, void **item, double timeout)
{
    if (!c)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(c->hub, "channel");
    if (c->closed)
        return gev__fail(EPIPE);
    void *got;
    gev__waiter *p = gev__waitq_pop_live(&c->putters);
    if (p) {
        got = p->item;
        gev__sync_give(p, NULL, 0);
    } else {
        int err = gev__sync_take(&c->getters, &got, GEV__WAIT_CHANNEL, timeout);
        if (err)
            return gev__fail(err);
    }
    if (item)
        *item = got;
    return 0;
}

void gev_channel_close(gev_channel *c)
{
    if (!c)
        return;
    GEV__CHECK_OWNER(c->hub, "channel");
    if (c->closed)
        return;
    c->closed = true;
    gev__sync_close(&c->getters);
    gev__sync_close(&c->putters);
}

void gev_channel_free(gev_channel *c)
{
    if (!c)
        return;
    GEV__CHECK_OWNER(c->hub, "channel");
    gev__sync_abandon(&c->getters);
    gev__sync_abandon(&c->putters);
    free(c);
}
