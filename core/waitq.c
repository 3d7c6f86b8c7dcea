/* core/waitq.c: FIFO wait queues, the building block of every sync object.
 * Waiters live on their greenlets' stacks; a queue only links them. */
#include "config.h"
#include "hub.h"

static bool waiter_live(const gev__waiter *w)
{
    return w->g->state == GEV__WAITING && w->g->wait_id == w->wait_id;
}

gev__waiter *gev__waitq_pop_live(gev__waitq *q)
{
    while (q->head) {
        gev__waiter *w = q->head;
        gev__waitq_remove(q, w);
        if (waiter_live(w))
            return w;
    }
    return NULL;
}

bool gev__waitq_has_live(gev__waitq *q)
{
    for (gev__waiter *w = q->head; w; w = w->next)
        if (waiter_live(w))
            return true;
    return false;
}

bool gev__waitq_wake_one(gev__waitq *q, int err)
{
    gev__waiter *w = gev__waitq_pop_live(q);
    return w && gev__wake(w->g, w->wait_id, err);
}

size_t gev__waitq_wake_all(gev__waitq *q, int err)
{
    size_t n = 0;
    gev__waiter *w;
    while ((w = gev__waitq_pop_live(q)))
        n += gev__wake(w->g, w->wait_id, err);
    return n;
}
