/* core/hub.h: the per-thread hub, greenlets, and the one way to block.
 *
 * Every module in api/ that blocks (fds, sync objects, pools, the thread
 * pool) does it through this header and nothing else:
 *
 *     int err = gev__block_check();          // EDEADLK / ECANCELED / ETIMEDOUT?
 *     if (err) return gev__fail(err);        // (gev__wait checks too: this
 *                                            //  matters only where publishing
 *                                            //  has effects of its own)
 *     gev__waiter w;
 *     gev__waiter_init(&w);                   // takes a fresh wait id
 *     ... publish &w where a waker will find it (a waitq, an fd record) ...
 *     err = gev__wait(deadline);              // switch away until woken
 *     ... unpublish &w if it is still published ...
 *     return err ? gev__fail(err) : 0;
 *
 * A wait can be ended by several sources (the awaited event, the deadline,
 * a kill, a scoped timeout, a close of the fd).  Every source ends it with
 * gev__wake(g, wait_id, err), which ignores a stale id or a greenlet that is
 * not waiting any more, so the first source wins and the others are
 * harmless (libmill #132 is the bug this prevents).  The waiter itself
 * stops whatever it started once it runs again.
 *
 * Hand-off objects (queues, channels, semaphores) give an item or a unit to
 * a waiter *before* waking it; they must pick waiters with
 * gev__waitq_pop_live(), which skips waiters that another source already
 * woke, so a waiter whose timeout fired never consumes anything.
 */
#ifndef GEV_CORE_HUB_H
#define GEV_CORE_HUB_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include "gev-types.h"
#include "debug.h"
#include "loop.h"
#include "stack.h"
#include "switch.h"

typedef struct gev__waiter gev__waiter;
typedef struct gev__waitq gev__waitq;
typedef struct gev__link gev__link;
typedef struct gev__runner gev__runner;

/* A waiter lives on its greenlet's stack; a queue only links waiters. */
struct gev__waiter {
    gev_greenlet *g;
    uint64_t wait_id;
    gev__waitq *q;              /* the queue it is on, NULL once taken off */
    gev__waiter *next, *prev;
    void *item;                 /* a hand-off payload */
    int flags;                  /* free for the object's use */
};
struct gev__waitq {
    gev__waiter *head, *tail;
};

/* A function the hub runs in hub context; the caller owns the node. */
typedef struct gev__callback {
    void (*fn)(void *arg);
    void *arg;
    struct gev__callback *next;
} gev__callback;

enum gev__state {
    GEV__NEW,       /* spawned, never ran (maybe queued, maybe on a timer) */
    GEV__READY,     /* in the run queue */
    GEV__RUNNING,   /* the current greenlet */
    GEV__WAITING,   /* blocked in gev__wait() */
    GEV__DEAD,      /* returned, or killed before it ran */
    GEV__FREED      /* dead and released: a stale handle's record, in the
                       quarantine or the free list (core/greenlet.c) */
};

/* What a waiting greenlet waits for: set by each blocking call before it
 * waits (gev__wait_note), shown by gev_print_run_info and gev-gdb.py. */
enum gev__wait_kind {
    GEV__WAIT_OTHER,        /* not said */
    GEV__WAIT_SLEEP,        /* gev_sleep: until the wait's deadline */
    GEV__WAIT_READ,         /* fd readable (wait_fd) */
    GEV__WAIT_WRITE,        /* fd writable (wait_fd) */
    GEV__WAIT_JOIN,         /* another greenlet's end */
    GEV__WAIT_EVENT,
    GEV__WAIT_RESULT,
    GEV__WAIT_QUEUE,
    GEV__WAIT_CHANNEL,
    GEV__WAIT_LOCK,
    GEV__WAIT_SEMAPHORE,
    GEV__WAIT_THREADPOOL,   /* a job in the thread pool (DNS included) */
    GEV__WAIT_SIGNAL,
    GEV__WAIT_CHILD,        /* a child process */
    GEV__WAIT_KINDS
};

struct gev_greenlet {
    gev_hub *hub;
    gev__runner *runner;        /* stack + context from its first run until it
                                   ends; NULL before (and for main) */
    gev__context *ctx;          /* where it is switched to: the runner's or
                                   main's; NULL until it first runs */
    size_t stack_size;          /* asked for at spawn; 0 = the default */
    gev_fn fn;
    void *arg, *value;
    enum gev__state state;
    bool killed;                /* a kill was delivered */
    bool released;              /* the handle was given up */
    bool is_main, is_hub;
    bool nocancel;              /* in gev__wait_uninterruptible() */
    bool shielded;              /* gev_shield(true): kills and expiries held back */
    bool notify_queued;         /* links are queued for the hub */
    bool queued;                /* in the run queue */
    unsigned char wait_kind;    /* enum gev__wait_kind of the current wait;
                                   GEV__WAIT_OTHER outside waits */
    int wait_fd;                /* GEV__WAIT_READ/WRITE: the descriptor;
                                   SIGNAL: the signal; CHILD: the pid; else -1 */
    gev__nsec wait_since;       /* loop time the current wait began */
    uint64_t parent_id;         /* id of the greenlet that spawned it (0: main
                                   and the hub; the hub's id for greenlets the
                                   hub spawns, such as signal handlers) */
    int wake_err;               /* what ended the last wait */
    unsigned expired_timeouts;  /* scoped timeouts fired and not cancelled */
    int interrupt_err;          /* gev__greenlet_interrupt_err(): kept up to
                                   date by gev__greenlet_interrupt_update() */
    uint64_t wait_id;
    uint64_t id;
    gev_greenlet *rq_next, *rq_prev;     /* run queue */
    gev_greenlet *all_next, *all_prev;   /* every record of the hub */
    gev__timer timer;           /* the deadline of the current wait; spawn_later */
    gev__waiter *joiner;        /* the first greenlet in gev_join() on this one */
    gev__waitq joiners;         /* the others, in order */
    gev__link *links, *links_tail;
    gev__callback notify;       /* runs the links, in the hub */
    struct gev_timeout *timeouts;  /* innermost scoped timeout first */
    char *name;                 /* NULL: "greenlet-<id>" on demand */
    char name_buf[24];
};

/* Called on the hub when it shuts down or when its thread forked. */
typedef struct gev__hub_hooks {
    void (*on_shutdown)(gev_hub *hub, void *state);
    int  (*on_fork)(gev_hub *hub, void *state);   /* in the child */
} gev__hub_hooks;

/* Per-hub state of the modules above the core, opaque to it: the modules
 * number their slots (api/hub-slots.h). */
#define GEV__HUB_SLOTS 3

/* ----------------------------------------------------------------- */
/* The hub                                                             */
/* ----------------------------------------------------------------- */

/* Each thread's hub, where all of its state hangs.  initial-exec, so that the
 * shared library reads it with one instruction instead of a
 * __tls_get_addr call on every blocking call. */
extern _Thread_local gev_hub *gev__tls_hub __attribute__((tls_model("initial-exec")));
gev_hub *gev__hub_create(void);

/* This thread's hub, created on first use; NULL + errno (ENOMEM, or what
 * making its loop failed with) if it cannot. */
static inline gev_hub *gev__hub(void)
{
    gev_hub *hub = gev__tls_hub;
    return hub ? hub : gev__hub_create();
}
/* This thread's hub if it exists, else NULL (never creates one). */
static inline gev_hub *gev__hub_peek(void) { return gev__tls_hub; }

/* The start of struct gev_hub (core/hub-internal.h): what the hot paths
 * of every module read, inline. */
struct gev__hub_hot {
    gev_greenlet *current;
    gev__loop *loop;
    gev_greenlet *rq_head, *rq_tail;    /* the run queue, FIFO */
    void *slots[GEV__HUB_SLOTS];        /* see gev__hub_slot */
};
static inline struct gev__hub_hot *gev__hot(gev_hub *hub)
{
    return (struct gev__hub_hot *)(void *)hub;
}

/* Append g to the run queue (doubly linked so a kill can take it out). */
static inline void gev__rq_push(gev_hub *hub, gev_greenlet *g)
{
    struct gev__hub_hot *h = gev__hot(hub);
    GEV__DLIST_APPEND(h->rq_head, h->rq_tail, g, rq_next, rq_prev);
    g->queued = true;
}
static inline gev__loop *gev__hub_loop(gev_hub *hub) { return gev__hot(hub)->loop; }

/* Per-hub state of a module above the core (api/hub-slots.h), created
 * lazily by the module; hooks run at shutdown and after fork. */
static inline void *gev__hub_slot(gev_hub *hub, int slot) { return gev__hot(hub)->slots[slot]; }
void  gev__hub_set_slot(gev_hub *hub, int slot, void *state, const gev__hub_hooks *hooks);

/* Run fn(hub) at the end of every hub's creation, in its thread, with the
 * hub installed (fn may call the public API; what it fails at it must let
 * go).  For modules above the core that act on every new hub without the
 * core knowing them: they register from a constructor, before any hub can
 * exist, and the list is only read after that (GEV__HUB_CREATE_HOOKS at
 * most; a registration beyond is ignored).  Not thread-safe: constructors
 * only. */
#define GEV__HUB_CREATE_HOOKS 4
void gev__hub_on_create(void (*fn)(gev_hub *hub));

/* Keep the hub's "can anything still happen?" answer honest about work that
 * is not a loop watcher (e.g. jobs in flight in the thread pool): while
 * busy > 0, a wait in main does not fail with EDEADLK and gev_run() does not
 * return. */
void gev__hub_busy(gev_hub *hub, int delta);
/* The same for work promised by other threads (gev_hub_ref, queued
 * gev_call_threadsafe calls).  Thread-safe.  A drop to 0 wakes the hub, so a
 * main greenlet waiting "forever" learns that nothing is left (EDEADLK) and
 * gev_run() returns.  The caller keeps the hub alive across the call (the
 * api/threads.h lock, which gev_shutdown() takes, does that). */
void gev__hub_hold(gev_hub *hub, int delta);

/* True from the start of gev_shutdown(): modules stop spawning greenlets
 * for events (signal handlers), since shutdown is killing them. */
bool gev__hub_shutting_down(const gev_hub *hub);

/* Run fn(arg) in hub context (like gevent's loop.run_callback): after the
 * currently ready greenlets, before the next poll.  No allocation when the
 * caller provides the node. */
void gev__hub_callback(gev_hub *hub, gev__callback *cb);



/* ----------------------------------------------------------------- */
/* Blocking and waking                                                 */
/* ----------------------------------------------------------------- */

/* True while the hub greenlet runs (watcher callbacks, links). */
static inline bool gev__in_hub(void)
{
    gev_hub *hub = gev__tls_hub;
    return hub && gev__hot(hub)->current->is_hub;
}

/* The one test of "was g interrupted?": ECANCELED once killed, else
 * ETIMEDOUT while a scoped timeout has expired, else 0; always 0 while g is
 * shielded (gev_shield), though the kill or expiry stays recorded and acts
 * again once the shield is off.  Every blocking path asks this and nothing
 * else, so the shield holds everywhere.  One load on the hot paths: the
 * answer is kept in a field, recomputed whenever an input changes. */
static inline int gev__greenlet_interrupt_err(const gev_greenlet *g)
{
    return g->interrupt_err;
}
static inline void gev__greenlet_interrupt_update(gev_greenlet *g)
{
    g->interrupt_err = g->shielded ? 0 : g->killed ? ECANCELED :
                       g->expired_timeouts ? ETIMEDOUT : 0;
}

/* 0 if the current greenlet may block now, else the errno the call must
 * fail with: EDEADLK (hub context), ECANCELED (killed), ETIMEDOUT (a scoped
 * timeout expired; see gev__greenlet_interrupt_err), ENOMEM when this
 * thread has no hub and none can be made. */
static inline int gev__block_check(void)
{
    gev_hub *hub = gev__hub();
    if (!hub)
        return ENOMEM;
    gev_greenlet *g = gev__hot(hub)->current;
    if (g->is_hub)
        return EDEADLK;
    return gev__greenlet_interrupt_err(g);
}

/* The one conversion of a relative timeout in seconds, made by every call
 * that takes one (api/gev.h's conventions): 0, or EINVAL for NaN.
 * *deadline is GEV__FOREVER for a negative timeout, +inf, or one whose end
 * the clock cannot count (int64 ns from boot): none of them may expire.
 * Else now (clock refreshed) + timeout to the nearest ns, so 0, -0.0 and a
 * tiny timeout give a deadline that has passed already.  Inline up to the
 * clock read: waits without limit are the common case. */
gev__nsec gev__deadline_after(double timeout);    /* timeout >= 0 */
static inline int gev__timeout_deadline(double timeout, gev__nsec *deadline)
{
    if (timeout < 0)
        *deadline = GEV__FOREVER;
    else if (timeout != timeout)
        return EINVAL;
    else
        *deadline = gev__deadline_after(timeout);
    return 0;
}
/* Whether gev__timeout_deadline() will take timeout: for calls with effects
 * before their wait (kills, a server's stop), which a NaN must not have. */
static inline bool gev__timeout_valid(double timeout) { return timeout == timeout; }

/* Say what g, the current greenlet, is about to wait for, just before
 * its gev__wait*() (cheap: two stores).  The wait stamps wait_since and
 * sets the kind back to GEV__WAIT_OTHER whenever it returns, waited or
 * not, so a wait that notes nothing never shows a stale kind.  `arg`: the
 * fd (READ, WRITE), the signal (SIGNAL), the pid (CHILD), else -1. */
static inline void gev__wait_note_for(gev_greenlet *g, enum gev__wait_kind kind, int arg)
{
    g->wait_kind = (unsigned char)kind;
    g->wait_fd = arg;
}
/* The same for the current greenlet of this thread's hub, if any. */
static inline void gev__wait_note(enum gev__wait_kind kind, int arg)
{
    gev_hub *hub = gev__tls_hub;
    if (hub)
        gev__wait_note_for(gev__hot(hub)->current, kind, arg);
}

/* Start a new wait for the current greenlet: returns its id.  Publish
 * (greenlet, id) to the wakers before calling gev__wait(). */

static inline uint64_t gev__wait_begin(void)
{
    gev_hub *hub = gev__hub();
    return hub ? ++gev__hot(hub)->current->wait_id : 0;
}

/* Block until gev__wake() for the id of the last gev__wait_begin(), or the
 * absolute deadline (ETIMEDOUT), a kill (ECANCELED), a scoped timeout
 * (ETIMEDOUT), or a wait in main that nothing can end (EDEADLK).  Returns 0
 * or the errno given to gev__wake(); ENOMEM at once if the deadline's timer
 * cannot be armed.  Does not set errno. */
int gev__wait(gev__nsec deadline);
/* gev__wait for a caller that got 0 from gev__block_check() and has not
 * let anything run since (publishing a waiter does not). */
int gev__wait_prechecked(gev__nsec deadline);

/* Like gev__wait(GEV__FOREVER), but neither a kill nor a scoped timeout
 * ends it: they are recorded and fail the next blocking call.  For waits
 * that must not return before another thread is done with the caller's
 * memory (the thread pool).  EDEADLK from hub context. */
int gev__wait_uninterruptible(void);

/* End the wait `wait_id` of g with `err` (0 = success): g becomes ready.
 * Ignored if g is not waiting or the id is stale.  Returns whether it woke g.
 * Inline: every IO event and every hand-off ends in it. */
static inline bool gev__wake(gev_greenlet *g, uint64_t wait_id, int err)
{
    if (g->state != GEV__WAITING || g->wait_id != wait_id)
        return false;
    g->wake_err = err;
    g->state = GEV__READY;
    gev__rq_push(g->hub, g);
    return true;
}

/* Yield: the current greenlet goes to the back of the run queue. */
void gev__yield(void);

/* errno = err; return -1.  The common tail of every failing call. */
static inline int gev__fail(int err) { errno = err; return -1; }

/* ----------------------------------------------------------------- */
/* Wait queues: FIFO lists of waiters, for sync objects                */
/* ----------------------------------------------------------------- */


static inline void gev__waitq_init(gev__waitq *q) { q->head = q->tail = NULL; }
/* A waiter for g (the current greenlet, at hand) with a fresh wait id, on
 * no queue: what gev__waiter_init makes, without looking up the hub. */
static inline gev__waiter gev__waiter_for(gev_greenlet *g)
{
    return (gev__waiter){ .g = g, .wait_id = ++g->wait_id };
}

/* Fill w for the current greenlet and a fresh wait id (gev__wait_begin). */
static inline void gev__waiter_init(gev__waiter *w)
{
    gev_hub *hub = gev__hub();
    gev_greenlet *g = hub ? gev__hot(hub)->current : NULL;
    w->g = g;
    w->wait_id = g ? ++g->wait_id : 0;
    w->q = NULL;
    w->next = w->prev = NULL;
    w->item = NULL;
    w->flags = 0;
}
static inline void gev__waitq_push(gev__waitq *q, gev__waiter *w)
{
    w->q = q;
    GEV__DLIST_APPEND(q->head, q->tail, w, next, prev);
}

/* No-op if w is not on q (a waker already took it off). */
static inline void gev__waitq_remove(gev__waitq *q, gev__waiter *w)
{
    if (w->q != q)
        return;
    GEV__DLIST_UNLINK(q->head, q->tail, w, next, prev);
    w->q = NULL;
}
/* Take the first waiter that is still waiting for this very wait (stale
 * ones are dropped on the way).  NULL if none. */
gev__waiter *gev__waitq_pop_live(gev__waitq *q);
bool gev__waitq_has_live(gev__waitq *q);
/* Wake the first live waiter / every live waiter with err. */
bool gev__waitq_wake_one(gev__waitq *q, int err);
size_t gev__waitq_wake_all(gev__waitq *q, int err);
/* The whole dance for the common case: enqueue w (set up by
 * gev__waiter_init and whatever the caller publishes in it), wait, dequeue.
 * Returns 0 or an errno; w->item holds what a waker handed over.  Inline:
 * every frame between a blocking call and the switch is one more return
 * the CPU mispredicts when the greenlet resumes (its return-stack buffer
 * holds the call chain of the greenlet that ran before). */
static inline int gev__waitq_wait_as(gev__waitq *q, gev__waiter *w, gev__nsec deadline)
{
    /* No check of our own: gev__wait makes it, and if it fails at once
     * nothing ran while w was queued, so taking it off again is enough. */
    gev__waitq_push(q, w);
    int err = gev__wait(deadline);
    gev__waitq_remove(q, w);
    return err;
}
/* The same for a waiter with nothing to publish. */
static inline int gev__waitq_wait(gev__waitq *q, gev__waiter *w, gev__nsec deadline)
{
    gev__waiter_init(w);
    return gev__waitq_wait_as(q, w, deadline);
}

/* ----------------------------------------------------------------- */
/* Greenlets, for pools and servers                                     */
/* ----------------------------------------------------------------- */

/* Free g's record if it is dead, released and no notification is pending. */
void gev__greenlet_maybe_free(gev_greenlet *g);

/* gev_spawn(fn, arg) with done(g, done_arg) linked, so the owner learns of
 * the end even of a greenlet killed before it ran.  NULL + errno, and then
 * nothing was spawned. */
gev_greenlet *gev__spawn_linked(gev_fn fn, void *arg,
                                void (*done)(gev_greenlet *g, void *arg), void *done_arg);

#endif
