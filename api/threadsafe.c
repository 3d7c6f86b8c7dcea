/* api/threadsafe.c: gev_call_threadsafe, the one way into a hub from another
 * thread (gevent's loop.run_callback_threadsafe).
 *
 * A call is appended, under the lock of the hub's gev__threads struct, to a
 * FIFO list, and the struct's async watcher is sent; the async callback, in
 * the hub's thread, runs the list in order.  So calls run in hub context,
 * each exactly once, and in order per calling thread.
 *
 * Another thread can neither create that struct nor start its watcher (the
 * loop belongs to the hub's thread), so the hub's thread makes it when it
 * hands out its handle: gev_hub_current().
 *
 * Queued calls and gev_hub_ref() references both count as work promised to
 * the hub (gev__hub_hold), so a wait in main is not taken for a deadlock
 * while either is there.  Both change under the lock: a call counts from
 * before its async send until it ran; an unref that drops the last hold
 * sends the hub's keepalive under the lock, so gev_shutdown(), which takes
 * the lock before the loop goes, cannot free it under that send.
 *
 * Lifetime: the hub must outlive every call.  Calling gev_call_threadsafe on
 * a hub that gev_shutdown() freed (or that is being freed) is undefined;
 * calls queued before shutdown still run, in the hub's thread, during it.
 */
#include "config.h"
#include <limits.h>
#include <stdlib.h>
#include "threads.h"

/* Handing out the hub is the moment to prepare its cross-thread queue:
 * only the hub's own thread may create it. */
gev_hub *gev_hub_current(void)
{
    gev_hub *hub = gev__hub();
    return hub && gev__threads_of(hub) ? hub : NULL;
}

void gev__threadsafe_run_calls(gev__threads *t)
{
    pthread_mutex_lock(&t->mu);
    gev__ts_call *c = t->calls_head;
    t->calls_head = t->calls_tail = NULL;
    pthread_mutex_unlock(&t->mu);
    /* Calls queued by these run on the next turn: no starvation. */
    int n = 0;
    while (c) {
        gev__ts_call *next = c->next;
        c->fn(c->arg);
        free(c);
        c = next;
        n++;
    }
    /* Run, so no longer work in flight (none of them could block). */
    if (n)
        gev__hub_hold(t->hub, -n);
}

/* The hub's struct.  Only its own thread may create it; another thread
 * relies on gev_hub_current() having done so before the handle escaped. */
static gev__threads *threads_for_caller(gev_hub *hub)
{
    gev__threads *t = gev__hub_slot(hub, GEV__HUB_SLOT_THREADS);
    if (t)
        return t;
    if (gev__hub_peek() == hub)
        return gev__threads_of(hub);
    errno = EINVAL;
    return NULL;
}

int gev_call_threadsafe(gev_hub *hub, void (*fn)(void *arg), void *arg)
{
    if (!hub || !fn)
        return gev__fail(EINVAL);
    gev__threads *t = threads_for_caller(hub);
    if (!t)
        return -1;
    gev__ts_call *c = malloc(sizeof *c);
    if (!c)
        return gev__fail(ENOMEM);
    c->fn = fn;
    c->arg = arg;
    c->next = NULL;
    pthread_mutex_lock(&t->mu);
    if (t->calls_tail)
        t->calls_tail->next = c;
    else
        t->calls_head = c;
    t->calls_tail = c;
    gev__hub_hold(hub, +1);
    /* Under the lock, so a shutdown that took the lock after us finds the
     * loop still there for this send. */
    gev__async_send(t->loop, &t->async);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int hub_ref_add(gev_hub *hub, int delta)
{
    if (!hub)
        return gev__fail(EINVAL);
    gev__threads *t = threads_for_caller(hub);
    if (!t)
        return -1;
    int err = 0;
    pthread_mutex_lock(&t->mu);
    if (delta < 0 && t->refs == 0)
        err = EINVAL;
    else if (delta > 0 && t->refs == INT_MAX)
        err = EOVERFLOW;
    else {
        t->refs += delta;
        gev__hub_hold(hub, delta);
    }
    pthread_mutex_unlock(&t->mu);
    return err ? gev__fail(err) : 0;
}

int gev_hub_ref(gev_hub *hub) { return hub_ref_add(hub, +1); }
int gev_hub_unref(gev_hub *hub) { return hub_ref_add(hub, -1); }
