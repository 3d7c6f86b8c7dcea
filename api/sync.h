/* api/sync.h: the hand-off steps shared by the synchronisation objects
 * (event, result, queue, channel, semaphore, lock) and the pool.
 *
 * Every object here follows one rule (core/hub.h): whoever ends a wait
 * with success hands the waiter what it waited for (an item, a unit, a
 * value) *before* waking it, and picks waiters with gev__waitq_pop_live(),
 * so a waiter whose timeout or kill already fired is skipped and never
 * consumes anything.  A woken waiter reads only its own gev__waiter (on its
 * stack), never the object: the object may be freed before it runs.
 *
 * Freeing an object wakes the greenlets still blocked on it with EBADF;
 * closing a queue or a channel wakes them with EPIPE.
 */
#ifndef GEV_API_SYNC_H
#define GEV_API_SYNC_H

#include "gev.h"
#include "hub.h"

/* Block the current greenlet on q until a waker hands it something, for
 * `timeout` seconds.  `item` and `flags` are published in w for the waker
 * (a putter's item, a waiter's kind); after a successful wait w->item and
 * w->flags hold what the waker handed over.  `kind` says what the greenlet
 * waits on (gev_print_run_info).  Returns 0 or an errno.
 *
 * timeout 0 fails with ETIMEDOUT even in hub context (a link callback):
 * "would have to wait" is the answer there, as gevent's put_nowait and
 * get_nowait give it from the hub; any longer wait there is EDEADLK. */
static inline int gev__sync_wait(gev__waitq *q, gev__waiter *w, void *item,
                                 int flags, enum gev__wait_kind kind, double timeout)
{
    if (timeout == 0) {             /* the nowait case: no clock, no queue */
        int err = gev__block_check();
        return err && err != EDEADLK ? err : ETIMEDOUT;
    }
    gev__nsec deadline;
    int err = gev__timeout_deadline(timeout, &deadline);
    if (err)
        return err;
    gev__waiter_init(w);
    w->item = item;
    w->flags = flags;
    if (w->g)                       /* else no hub: the wait fails (ENOMEM) */
        gev__wait_note_for(w->g, kind, -1);
    return gev__waitq_wait_as(q, w, deadline);
}

/* gev__sync_wait() for a greenlet that takes an item: *item gets it. */
static inline int gev__sync_take(gev__waitq *q, void **item, enum gev__wait_kind kind,
                                 double timeout)
{
    gev__waiter w;
    int err = gev__sync_wait(q, &w, NULL, 0, kind, timeout);
    if (!err)
        *item = w.item;
    return err;
}

/* Wake w with success, handing it item and flags first. */
static inline void gev__sync_give(gev__waiter *w, void *item, int flags)
{
    w->item = item;
    w->flags = flags;
    gev__wake(w->g, w->wait_id, 0);
}

/* Hand item to the first live waiter of q and wake it.  Returns the waiter
 * served (still valid until the caller switches), or NULL if none waits. */
static inline gev__waiter *gev__sync_handoff(gev__waitq *q, void *item)
{
    gev__waiter *w = gev__waitq_pop_live(q);
    if (w)
        gev__sync_give(w, item, w->flags);
    return w;
}

/* Hand item and flags to every live waiter of q, in FIFO order. */
static inline void gev__sync_give_all(gev__waitq *q, void *item, int flags)
{
    gev__waiter *w;
    while ((w = gev__waitq_pop_live(q)))
        gev__sync_give(w, item, flags);
}

/* End of stream (gev_queue_close, gev_channel_close): q's blocked waiters
 * fail with EPIPE, in FIFO order. */
static inline void gev__sync_close(gev__waitq *q)
{
    gev__waitq_wake_all(q, EPIPE);
}

/* The object is going away: its blocked waiters fail with EBADF.  Each is
 * taken off q before it is woken (w->q = NULL), so when it resumes its
 * gev__waitq_remove() sees that and never reads the freed object. */
static inline void gev__sync_abandon(gev__waitq *q)
{
    gev__waitq_wake_all(q, EBADF);
}

/* The common tail of a call that waited: 0, or -1 with errno = err. */
static inline int gev__sync_result(int err)
{
    return err ? gev__fail(err) : 0;
}

#endif
