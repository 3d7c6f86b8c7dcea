/* api/result.c: gev_result, gevent.event.AsyncResult.
 *
 * A value or an error, set once or more.  As in gevent, a result can be set
 * again: each set() or set_error() overwrites the outcome, and every later
 * get() returns the latest one.  Waiters are handed the outcome by the set
 * that woke them (not re-read when they run), so a result may be freed right
 * after setting it; a waiter woken by one set returns that outcome even if
 * another set overwrote it before the waiter ran.  set_error(r, 0) is
 * set(r, NULL). */
#include "config.h"
#include <stdlib.h>
#include "sync.h"

struct gev_result {
    gev_hub *hub;           /* GEV_DEBUG only, else NULL (core/debug.h) */
    bool ready;
    int err;            /* 0: value holds the result */
    void *value;
    gev__waitq waiters;
};

gev_result *gev_result_new(void)
{
    gev_result *r = calloc(1, sizeof *r);
    if (r) {
        r->hub = gev__debug_owner();
        gev__waitq_init(&r->waiters);
    }
    return r;
}

static void result_settle(gev_result *r, void *value, int err)
{
    r->ready = true;
    r->value = value;
    r->err = err;
    gev__sync_give_all(&r->waiters, value, err);
}

void gev_result_set(gev_result *r, void *value)
{
    if (!r) {
        errno = EINVAL;
        return;
    }
    GEV__CHECK_OWNER(r->hub, "result");
    result_settle(r, value, 0);
}

void gev_result_set_error(gev_result *r, int err)
{
    if (!r) {
        errno = EINVAL;
        return;
    }
    GEV__CHECK_OWNER(r->hub, "result");
    result_settle(r, NULL, err);
}

static int result_deliver(void **value, void *v, int err)
{
    if (err)
        return gev__fail(err);
    if (value)
        *value = v;
    return 0;
}

int gev_result_get(gev_result *r, void **value, double timeout)
{
    if (!r)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(r->hub, "result");
    if (r->ready)
        return result_deliver(value, r->value, r->err);
    gev__waiter w;
    int err = gev__sync_wait(&r->waiters, &w, NULL, 0, GEV__WAIT_RESULT, timeout);
    if (err)
        return gev__fail(err);
    return result_deliver(value, w.item, w.flags);
}

bool gev_result_ready(const gev_result *r)
{
    if (!r) {
        errno = EINVAL;
        return false;
    }
    GEV__CHECK_OWNER(r->hub, "result");
    return r->ready;
}

void gev_result_free(gev_result *r)
{
    if (!r)
        return;
    GEV__CHECK_OWNER(r->hub, "result");
    gev__sync_abandon(&r->waiters);
    free(r);
}
