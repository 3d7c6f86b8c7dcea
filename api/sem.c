/* api/sem.c: gev_sem (gevent.lock.Semaphore / BoundedSemaphore) and
 * gev_lock (gevent.lock.RLock).
 *
 * Fairness by hand-off: a release with a live waiter gives the unit to the
 * first one instead of raising the counter, so a greenlet that releases and
 * at once acquires again queues behind the waiters (two greenlets
 * ping-ponging cannot starve a third).  Hence the counter is positive only
 * while nobody waits, and a waiter woken with success already owns its unit.
 *
 * The lock is the same idea with an owner and a recursion count instead of
 * a counter: the releaser makes the first live waiter the owner before it
 * wakes it, so the woken greenlet never has to touch the lock again. */
#include "config.h"
#include <limits.h>
#include <stdlib.h>
#include "sync.h"

struct gev_sem {
    gev_hub *hub;           /* GEV_DEBUG only, else NULL (core/debug.h) */
    unsigned value;
    unsigned bound;     /* UINT_MAX: unbounded */
    gev__waitq waiters;
};

static gev_sem *sem_new(unsigned value, unsigned bound)
{
    gev_sem *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    s->hub = gev__debug_owner();
    s->value = value;
    s->bound = bound;
    gev__waitq_init(&s->waiters);
    return s;
}

gev_sem *gev_sem_new(unsigned value) { return sem_new(value, UINT_MAX); }
gev_sem *gev_sem_new_bounded(unsigned value) { return sem_new(value, value); }

int gev_sem_acquire(gev_sem *s, double timeout)
{
    if (!s)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(s->hub, "semaphore");
    if (s->value > 0) {
        s->value--;
        return 0;
    }
    gev__waiter w;
    return gev__sync_result(gev__sync_wait(&s->waiters, &w, NULL, 0, GEV__WAIT_SEMAPHORE, timeout));
}

int gev_sem_release(gev_sem *s)
{
    if (!s)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(s->hub, "semaphore");
    if (gev__sync_handoff(&s->waiters, NULL))
        return 0;
    if (s->value >= s->bound)
        return gev__fail(EOVERFLOW);
    s->value++;
    return 0;
}

unsigned gev_sem_value(const gev_sem *s)
{
    if (!s) {
        errno = EINVAL;
        return 0;
    }
    GEV__CHECK_OWNER(s->hub, "semaphore");
    return s->value;
}

void gev_sem_free(gev_sem *s)
{
    if (!s)
        return;
    GEV__CHECK_OWNER(s->hub, "semaphore");
    gev__sync_abandon(&s->waiters);
    free(s);
}

/* ---- the lock ------------------------------------------------------------ */

struct gev_lock {
    gev_hub *hub;           /* GEV_DEBUG only, else NULL (core/debug.h) */
    gev_greenlet *owner;    /* NULL: unlocked */
    unsigned long count;    /* recursion depth of the owner */
    gev__waitq waiters;
};

gev_lock *gev_lock_new(void)
{
    gev_lock *l = calloc(1, sizeof *l);
    if (l) {
        l->hub = gev__debug_owner();
        gev__waitq_init(&l->waiters);
    }
    return l;
}

int gev_lock_acquire(gev_lock *l, double timeout)
{
    if (!l)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(l->hub, "lock");
    gev_greenlet *me = gev_current();
    if (!me)
        return -1;
    if (l->owner == me) {
        l->count++;
        return 0;
    }
    if (!l->owner) {
        l->owner = me;
        l->count = 1;
        return 0;
    }
    gev__waiter w;
    return gev__sync_result(gev__sync_wait(&l->waiters, &w, NULL, 0, GEV__WAIT_LOCK, timeout));
}

int gev_lock_release(gev_lock *l)
{
    if (!l)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(l->hub, "lock");
    gev_greenlet *me = gev_current();
    if (!me || l->owner != me)
        return gev__fail(EPERM);
    if (--l->count > 0)
        return 0;
    gev__waiter *w = gev__sync_handoff(&l->waiters, NULL);
    l->owner = w ? w->g : NULL;
    l->count = w ? 1 : 0;
    return 0;
}

void gev_lock_free(gev_lock *l)
{
    if (!l)
        return;
    GEV__CHECK_OWNER(l->hub, "lock");
    gev__sync_abandon(&l->waiters);
    free(l);
}
