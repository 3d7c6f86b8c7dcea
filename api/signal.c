/* api/signal.c: signals delivered to greenlets, once (gev_signal_wait) or
 * for as long as a subscription lasts (gev_signal_handler).
 *
 * Each hub keeps one record per signal it catches, with one loop watcher
 * that the waits and the handlers of that signal share.  While the watcher
 * is active the signal stays caught; the loop restores the disposition it
 * found once the last wait has ended and the last handler is cancelled.
 * So without a handler a signal is caught only while someone waits (between
 * two waits a second SIGTERM kills, as in gevent with no handler), and
 * with one it stays caught for good.
 *
 * One delivery wakes every wait in progress.  A delivery that no wait
 * saw is kept for the next gev_signal_wait, but only while a handler
 * exists: that is what makes a loop of waits lose nothing, and without a
 * handler nothing caught the signal between the waits anyway.
 *
 * The watcher holds a loop reference only while a wait is in progress: a
 * handler alone does not keep gev_run() going, nor make a wait that nothing
 * else can end legal (gevent's signal_handler watcher is ref=False).
 */
#include "config.h"
#include <signal.h>
#include <stdlib.h>
#include "gev.h"
#include "hub.h"
#include "hub-slots.h"

typedef struct sig_rec {
    gev__signal w;
    gev_hub *hub;
    gev__waitq waiters;         /* gev_signal_wait calls in progress */
    size_t nwaiting;            /* the same, stale ones included */
    gev_signal *handlers, *handlers_tail;
    bool kept;                  /* a delivery no wait saw (handlers only) */
} sig_rec;

struct gev_signal {
    sig_rec *rec;
    void (*fn)(int signum, void *arg);
    void *arg;
    gev_greenlet *pending;      /* spawned for a delivery, not started yet */
    gev_signal *next, *prev;
};

/* The hub's records, in slot GEV__HUB_SLOT_SIGNALS. */
typedef struct sig_table {
    sig_rec *recs[NSIG];
} sig_table;

/* ---- records ----------------------------------------------------------- */

static void handler_deliver(gev_signal *h);

static void rec_cb(gev__loop *loop, gev__signal *s)
{
    (void)loop;
    sig_rec *r = s->base.data;
    if (gev__waitq_wake_all(&r->waiters, 0) == 0 && r->handlers)
        r->kept = true;
    for (gev_signal *h = r->handlers; h; h = h->next)
        handler_deliver(h);
}

static void table_shutdown(gev_hub *hub, void *state);
static const gev__hub_hooks table_hooks = { table_shutdown, NULL };

static sig_table *table_of(gev_hub *hub)
{
    sig_table *t = gev__hub_slot(hub, GEV__HUB_SLOT_SIGNALS);
    if (!t && (t = calloc(1, sizeof *t)))
        gev__hub_set_slot(hub, GEV__HUB_SLOT_SIGNALS, t, &table_hooks);
    if (!t)
        errno = ENOMEM;
    return t;
}

/* The hub's record of signum, created (and the signal caught) if needed.
 * NULL + errno: EINVAL (a signal that cannot be caught), EBUSY (another
 * thread's hub catches it), ENOMEM. */
static sig_rec *rec_get(gev_hub *hub, int signum)
{
    sig_table *t = table_of(hub);
    if (!t)
        return NULL;
    if (t->recs[signum])
        return t->recs[signum];
    sig_rec *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->hub = hub;
    gev__waitq_init(&r->waiters);
    gev__signal_init(&r->w, rec_cb, signum);
    r->w.base.data = r;
    r->w.base.unref = true;     /* waits take the reference: rec_waiting */
    if (gev__signal_start(gev__hub_loop(hub), &r->w) == -1) {
        int err = errno;
        free(r);
        errno = err;
        return NULL;
    }
    return t->recs[signum] = r;
}

static void rec_free(sig_table *t, sig_rec *r)
{
    t->recs[r->w.signum] = NULL;
    gev__signal_stop(gev__hub_loop(r->hub), &r->w);  /* restores the disposition */
    free(r);
}

/* Let the signal go once nobody waits for it or handles it. */
static void rec_put(sig_rec *r)
{
    if (r->nwaiting == 0 && !r->handlers)
        rec_free(gev__hub_slot(r->hub, GEV__HUB_SLOT_SIGNALS), r);
}

static void rec_waiting(sig_rec *r, int delta)
{
    r->nwaiting += (size_t)delta;
    gev__watcher_set_ref(gev__hub_loop(r->hub), &r->w.base, r->nwaiting > 0);
}

/* ---- gev_signal_wait ---------------------------------------------------- */

int gev_signal_wait(int signum, double timeout)
{
    gev__nsec deadline;
    if (signum <= 0 || signum >= NSIG || gev__timeout_deadline(timeout, &deadline))
        return gev__fail(EINVAL);
    int err = gev__block_check();
    if (err)
        return gev__fail(err);
    sig_rec *r = rec_get(gev__hub(), signum);
    if (!r)
        return -1;
    if (r->kept) {
        r->kept = false;
        return 0;
    }
    gev__waiter w;
    rec_waiting(r, 1);
    gev__wait_note(GEV__WAIT_SIGNAL, signum);
    err = gev__waitq_wait(&r->waiters, &w, deadline);
    rec_waiting(r, -1);
    rec_put(r);
    return err ? gev__fail(err) : 0;
}

/* ---- gev_signal_handler ------------------------------------------------- */

/* The greenlet of one delivery.  It no longer needs h once fn starts, so a
 * cancel from fn itself (or from anyone while fn runs) is safe. */
static void *handler_run(void *arg)
{
    gev_signal *h = arg;
    gev_greenlet *self = h->pending;
    void (*fn)(int, void *) = h->fn;
    void *fn_arg = h->arg;
    int signum = h->rec->w.signum;
    h->pending = NULL;          /* later deliveries get a greenlet of their own */
    gev_release(self);
    fn(signum, fn_arg);
    return NULL;
}

/* A greenlet that never started (cancelled, or killed by gev_shutdown)
 * never will: it dies at once if it is not dead yet. */
static void drop_pending(gev_signal *h)
{
    if (!h->pending)
        return;
    gev_kill(h->pending, 0);
    gev_release(h->pending);
    h->pending = NULL;
}

static void handler_deliver(gev_signal *h)
{
    if (h->pending && !gev_ready(h->pending))
        return;                 /* coalesces with the one not started yet */
    drop_pending(h);
    if (gev__hub_shutting_down(h->rec->hub))
        return;                 /* gev_shutdown is killing greenlets */
    /* NULL (ENOMEM) loses this delivery: there is nobody to tell. */
    h->pending = gev_spawn(handler_run, h);
}

gev_signal *gev_signal_handler(int signum, void (*fn)(int signum, void *arg), void *arg)
{
    if (signum <= 0 || signum >= NSIG || !fn) {
        errno = EINVAL;
        return NULL;
    }
    gev_hub *hub = gev__hub();
    if (!hub)
        return NULL;
    gev_signal *h = calloc(1, sizeof *h);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    sig_rec *r = rec_get(hub, signum);
    if (!r) {
        int err = errno;
        free(h);
        errno = err;
        return NULL;
    }
    h->rec = r;
    h->fn = fn;
    h->arg = arg;
    GEV__DLIST_APPEND(r->handlers, r->handlers_tail, h, next, prev);
    return h;
}

void gev_signal_cancel(gev_signal *h)
{
    if (!h)
        return;
    sig_rec *r = h->rec;
    drop_pending(h);
    GEV__DLIST_UNLINK(r->handlers, r->handlers_tail, h, next, prev);
    if (!r->handlers)
        r->kept = false;        /* kept only on behalf of a handler */
    free(h);
    rec_put(r);
}

/* gev_shutdown: every greenlet has ended, so no wait is left; cancel the
 * handlers, which lets every signal go. */
static void table_shutdown(gev_hub *hub, void *state)
{
    sig_table *t = state;
    for (int signum = 1; signum < NSIG; signum++) {
        while (t->recs[signum] && t->recs[signum]->handlers)
            gev_signal_cancel(t->recs[signum]->handlers);
        if (t->recs[signum])
            rec_free(t, t->recs[signum]);   /* defensive: a wait outlived shutdown */
    }
    gev__hub_set_slot(hub, GEV__HUB_SLOT_SIGNALS, NULL, NULL);
    free(t);
}
