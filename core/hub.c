/* core/hub.c: the per-thread hub: run queue, switching, the hub greenlet's
 * loop, and the one way to block (gev__wait) and to end a wait (gev__wake).
 *
 * Scheduling: a greenlet that blocks or yields switches
 * straight to the next ready greenlet; only when nothing is ready, or every
 * GEV__POLL_EVERY switches, does control go to the hub greenlet, which runs
 * queued callbacks and polls the loop (without blocking if anything is
 * ready). */
#include "config.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "gev.h"           /* the calls this file defines */
#include "hub-internal.h"
#include "monitor.h"

/* Default visibility: the patch library reads it inline (gev.map.in). */
__attribute__((visibility("default"))) _Thread_local gev_hub *gev__tls_hub;

/* hub.h reads the current greenlet, the loop, the run queue and the
 * modules' slots inline, through struct gev__hub_hot at offset 0. */
_Static_assert(offsetof(struct gev_hub, hot) == 0, "the hot part must come first");

/* ---- run queue (gev__rq_push is inline in hub.h) ---- */

void gev__rq_remove(gev_hub *hub, gev_greenlet *g)
{
    if (!g->queued)
        return;
    if (g == hub->rq_prio_tail)
        hub->rq_prio_tail = g->rq_prev;     /* the segment is a prefix */
    GEV__DLIST_UNLINK(hub->hot.rq_head, hub->hot.rq_tail, g, rq_next, rq_prev);
    g->queued = false;
}

static gev_greenlet *rq_pop(gev_hub *hub)
{
    gev_greenlet *g = hub->hot.rq_head;
    if (g)
        gev__rq_remove(hub, g);
    return g;
}

/* Queue the hub greenlet behind what is ready now (callbacks to run, or a
 * poll is due). */
static void hub_wake_self(gev_hub *hub)
{
    if (!hub->hub_g->queued && hub->hot.current != hub->hub_g)
        gev__rq_push(hub, hub->hub_g);
}

static void switch_to(gev_hub *hub, gev__context *from, gev_greenlet *next)
{
    next->state = GEV__RUNNING;
    hub->hot.current = next;
    gev__hub_count_switch(hub);
    gev__context_switch(from, gev__ctx_of(next));
}

/* Put g at the end of the run queue's head segment. */
static void rq_insert_prio(gev_hub *hub, gev_greenlet *g)
{
    gev_greenlet *at = hub->rq_prio_tail;
    gev_greenlet *after = at ? at->rq_next : hub->hot.rq_head;
    g->rq_prev = at;
    g->rq_next = after;
    if (at)
        at->rq_next = g;
    else
        hub->hot.rq_head = g;
    if (after)
        after->rq_prev = g;
    else
        hub->hot.rq_tail = g;
    g->queued = true;
    hub->rq_prio_tail = g;
}

/* Move what was queued after `before` (the tail when the poll began; NULL:
 * the queue was empty) to the end of the head segment. */
static void rq_promote_after(gev_hub *hub, gev_greenlet *before)
{
    if (before && !before->queued)
        return;             /* taken out meanwhile: leave the order alone */
    gev_greenlet *first = before ? before->rq_next : hub->hot.rq_head;
    gev_greenlet *last = hub->hot.rq_tail, *at = hub->rq_prio_tail;
    if (!first)
        return;
    if (at != before) {
        gev_greenlet *after = at ? at->rq_next : hub->hot.rq_head;
        before->rq_next = NULL;     /* before != at, so before != NULL */
        hub->hot.rq_tail = before;
        first->rq_prev = at;
        if (at)
            at->rq_next = first;
        else
            hub->hot.rq_head = first;
        last->rq_next = after;
        after->rq_prev = last;      /* after precedes before: not NULL */
    }
    hub->rq_prio_tail = last;
}

void gev__hub_poll_check(gev_hub *hub)
{
    hub->since_poll = 0;
    if (gev__time_monotonic() - hub->last_poll < GEV__POLL_AFTER)
        return;
    gev_greenlet *first = hub->rq_prio_tail ? hub->rq_prio_tail->rq_next : hub->hot.rq_head;
    if (!first || first->state != GEV__NEW || hub->hot.current == hub->hub_g) {
        hub_wake_self(hub);
        return;
    }
    if (hub->poll_ahead && hub->hub_g->queued)
        return;             /* ahead already */
    gev__rq_remove(hub, hub->hub_g);
    rq_insert_prio(hub, hub->hub_g);
    hub->poll_ahead = true;
}

/* ---- hub callbacks ---------------------------------------------------- */

void gev__hub_callback(gev_hub *hub, gev__callback *cb)
{
    cb->next = NULL;
    if (hub->cb_tail)
        hub->cb_tail->next = cb;
    else
        hub->cb_head = cb;
    hub->cb_tail = cb;
    hub_wake_self(hub);
}

static void hub_run_callbacks(gev_hub *hub)
{
    /* Callbacks queued while these run wait for the next turn, so a
     * callback that re-queues itself cannot starve the loop. */
    gev__callback *cb = hub->cb_head;
    hub->cb_head = hub->cb_tail = NULL;
    while (cb) {
        gev__callback *next = cb->next;
        cb->fn(cb->arg);
        cb = next;
    }
}

/* ---- the hub greenlet --------------------------------------------------- */

/* Reference the keepalive watcher while work outside the loop is pending,
 * so the loop counts it as alive and a poll blocks (until the work ends or
 * the last hold is dropped, which sends the watcher).  Set from the hub's
 * thread only: held changes in any thread, the loop belongs to this one.
 * Holds are ignored at shutdown, which must not wait for other threads. */
static void keepalive_sync(gev_hub *hub)
{
    bool want = hub->busy > 0 ||
                (!hub->shutting_down && atomic_load(&hub->held) > 0);
    if (want != hub->keepalive_ref) {
        gev__watcher_set_ref(hub->hot.loop, &hub->keepalive.base, want);
        hub->keepalive_ref = want;
    }
}

/* Nothing is ready and no referenced watcher or pending work can ever make
 * anything ready: the greenlet waiting in main would wait forever.  gevent
 * raises LoopExit there; gev_run() treats it as "all done".  A hold dropped
 * by another thread after this answered "no" sends the keepalive watcher,
 * which ends the poll so that the question is asked again. */
static bool hub_idle_forever(gev_hub *hub)
{
    keepalive_sync(hub);
    return !hub->hot.rq_head && !hub->cb_head && !gev__loop_alive(hub->hot.loop);
}

/* ---- spare stacks -------------------------------------------------------- */

static void trim_timer_cb(gev__loop *loop, gev__timer *t) { (void)loop; (void)t; }

/* Unmap a batch of the idle runners beyond what recent demand says to keep
 * (core/stack.h); true if more remain beyond it.  Here, between polls, so
 * the cost never lands on a greenlet's switch; busy or idle, so a hub that
 * never idles after a burst still gives its memory back.  Greenlets not
 * started yet count as wanted (each will take a stack), not as holding
 * one: the polls during a burst of first runs keep the spares it is
 * about to take. */
static bool hub_trim_spares(gev_hub *hub)
{
    size_t keep = gev__stack_cache_demand(&hub->stacks, hub->live, hub->live - hub->unstarted,
                                          hub->idle_count,
                                          gev__loop_now(hub->hot.loop));
    return gev__hub_trim_idle(hub, keep);
}

/* Idle with spares that recent demand still covers: come back when that
 * figure may drop, or they would stay until something else wakes the hub.
 * Unref'd, so it never keeps gev_run() from returning. */
static void hub_trim_later(gev_hub *hub)
{
    if (hub->idle_count <= GEV__STACK_SPARE_MIN)
        return;
    gev__nsec at = gev__stack_cache_window_end(&hub->stacks);
    if (!hub->trim_timer.base.active || hub->trim_timer.deadline != at)
        gev__timer_start_at(hub->hot.loop, &hub->trim_timer, at);
}

/* Run the loop, marked as polling for the blocking monitor: time spent
 * here is the loop waiting, not a greenlet blocking it.  (Callbacks run
 * inside count as polling too; they only wake greenlets.) */
static void hub_loop_run(gev_hub *hub, int mode)
{
    __atomic_store_n(&hub->polling, true, __ATOMIC_RELAXED);
    gev__loop_run(hub->hot.loop, mode);
    __atomic_store_n(&hub->polling, false, __ATOMIC_RELAXED);
    hub->last_poll = gev__loop_now(hub->hot.loop);   /* read after the poll */
}

static void hub_poll(gev_hub *hub)
{
    hub->since_poll = 0;
    bool more = hub_trim_spares(hub);
    if (hub->hot.rq_head || hub->cb_head) {
        hub_loop_run(hub, GEV__RUN_NOWAIT);
    } else if (hub_idle_forever(hub)) {
        if (__builtin_expect(gev__debug, 0) && !hub->main_in_run &&
            hub->main.state == GEV__WAITING)
            gev__runinfo_deadlock(hub);     /* asked for: GEV_DEBUG */
        gev__wake(&hub->main, hub->main.wait_id, hub->main_in_run ? 0 : EDEADLK);
    } else {
        /* Idle: trim on without blocking until the surplus is gone. */
        if (!more)
            hub_trim_later(hub);
        hub_loop_run(hub, more ? GEV__RUN_NOWAIT : GEV__RUN_ONCE);
    }
}

static void hub_main(void *arg)
{
    gev_hub *hub = arg;
    for (;;) {
        hub_run_callbacks(hub);
        gev__hub_trim_runners(hub);
        bool ahead = hub->poll_ahead;
        gev_greenlet *before = hub->hot.rq_tail;
        hub->poll_ahead = false;
        hub_poll(hub);
        if (ahead)
            rq_promote_after(hub, before);
        hub_run_callbacks(hub);
        gev_greenlet *next = rq_pop(hub);
        if (!next)
            continue;
        if (!next->ctx && !gev__runner_bind(hub, next))
            continue;       /* no stack for it: it ended without running */
        /* Callbacks queued by the ones just run: hub_wake_self() does
         * nothing while the hub itself runs, so queue it here. */
        if (hub->cb_head)
            gev__rq_push(hub, hub->hub_g);
        switch_to(hub, &hub->hub_g->runner->ctx, next);
    }
}

/* ---- creation and destruction ------------------------------------------ */

static void keepalive_cb(gev__loop *loop, gev__async *a) { (void)loop; (void)a; }

static int hub_init(gev_hub *hub)
{
    hub->hot.loop = gev__loop_new();
    if (!hub->hot.loop)
        return -1;
    gev__stack_cache_init(&hub->stacks);
    hub->default_stack = gev__stack_default_size();
    gev__record_pool_init(&hub->records);
    /* Under GEV_DEBUG freed records are never reused (core/debug.h). */
    hub->free_records_hold = gev__debug ? SIZE_MAX : GEV__QUARANTINE;
    hub->free_records_max = gev__debug ? SIZE_MAX : GEV__FREE_RECORDS_MAX;
    gev__greenlet_init_record(hub, &hub->main);
    hub->main.is_main = true;
    hub->main.state = GEV__RUNNING;
    hub->main.name = strdup("main");
    gev__context_init_thread(&hub->main_ctx);
    hub->main.ctx = &hub->main_ctx;
    hub->hot.current = &hub->main;
    hub->thread = pthread_self();

    hub->hub_g = calloc(1, sizeof *hub->hub_g);
    if (!hub->hub_g)
        return -1;
    gev__greenlet_init_record(hub, hub->hub_g);
    hub->hub_g->is_hub = true;
    hub->hub_g->name = strdup("hub");
    hub->hub_g->runner = gev__runner_new(hub, 0, hub_main, hub);
    if (!hub->hub_g->runner)
        return -1;
    hub->hub_g->ctx = &hub->hub_g->runner->ctx;
    hub->hub_g->state = GEV__WAITING;

    gev__timer_init(&hub->trim_timer, trim_timer_cb);
    gev__watcher_set_ref(hub->hot.loop, &hub->trim_timer.base, false);
    gev__async_init(&hub->keepalive, keepalive_cb);
    gev__async_start(hub->hot.loop, &hub->keepalive);
    gev__watcher_set_ref(hub->hot.loop, &hub->keepalive.base, false);
    gev__stack_guard_thread_init(gev__greenlet_describe_fault);
    gev__monitor_from_env(hub);
    return 0;
}

static void hub_free(gev_hub *hub)
{
    gev__monitor_free(hub);     /* first: its thread reads the hub */
    for (int i = 0; i < GEV__HUB_SLOTS; i++)
        if (hub->hooks[i] && hub->hooks[i]->on_shutdown)
            hub->hooks[i]->on_shutdown(hub, hub->hot.slots[i]);
    gev__greenlet_free_all(hub);
    gev__timeout_free_all(hub);
    if (hub->hub_g) {
        if (hub->hub_g->runner)
            gev__runner_free(hub, hub->hub_g->runner);
        gev__greenlet_free_parts(hub->hub_g);
        free(hub->hub_g);
    }
    gev__greenlet_free_parts(&hub->main);
    gev__stack_cache_drain(&hub->stacks);
    if (hub->hot.loop) {
        if (hub->trim_timer.base.active)
            gev__timer_stop(hub->hot.loop, &hub->trim_timer);
        gev__async_stop(hub->hot.loop, &hub->keepalive);
        gev__loop_free(hub->hot.loop);
    }
    gev__stack_guard_thread_exit();
    free(hub);
}

/* Process-wide, unlike everything else here: written by constructors at
 * load time, read-only once any hub exists (gev__hub_on_create). */
static void (*create_hooks[GEV__HUB_CREATE_HOOKS])(gev_hub *hub);

void gev__hub_on_create(void (*fn)(gev_hub *hub))
{
    for (int i = 0; i < GEV__HUB_CREATE_HOOKS; i++)
        if (!create_hooks[i]) {
            create_hooks[i] = fn;
            return;
        }
}

static void hub_run_create_hooks(gev_hub *hub)
{
    int err = errno;
    for (int i = 0; i < GEV__HUB_CREATE_HOOKS && create_hooks[i]; i++)
        create_hooks[i](hub);
    errno = err;
}

gev_hub *gev__hub_create(void)
{
    if (gev__tls_hub)
        return gev__tls_hub;
    gev__debug_enabled();           /* cached before any check reads it */
    gev_hub *hub = calloc(1, sizeof *hub);
    if (!hub) {
        errno = ENOMEM;
        return NULL;
    }
    if (hub_init(hub) < 0) {
        int err = errno ? errno : ENOMEM;
        hub_free(hub);
        errno = err;
        return NULL;
    }
    gev__tls_hub = hub;
    hub_run_create_hooks(hub);
    return hub;
}


void gev__hub_set_slot(gev_hub *hub, int slot, void *state, const gev__hub_hooks *hooks)
{
    hub->hot.slots[slot] = state;
    hub->hooks[slot] = hooks;
}

bool gev__hub_shutting_down(const gev_hub *hub) { return hub->shutting_down; }

void gev__hub_busy(gev_hub *hub, int delta)
{
    hub->busy += delta;
    keepalive_sync(hub);
}

void gev__hub_hold(gev_hub *hub, int delta)
{
    if (atomic_fetch_add(&hub->held, delta) + delta == 0)
        gev__async_send(hub->hot.loop, &hub->keepalive);
}


/* ---- blocking and waking ------------------------------------------------ */

gev__nsec gev__deadline_after(double timeout)
{
    gev_hub *hub = gev__hub();
    gev__nsec now = hub ? gev__loop_update_now(hub->hot.loop) : gev__time_monotonic();
    gev__nsec ns = gev__nsec_from_seconds(timeout);
    /* Saturated: a deadline past INT64_MAX would wrap into the past. */
    return ns == GEV__FOREVER || ns > INT64_MAX - now ? GEV__FOREVER : now + ns;
}

static void wait_timer_cb(gev__loop *loop, gev__timer *t)
{
    (void)loop;
    gev_greenlet *g = t->base.data;
    gev__wake(g, g->wait_id, ETIMEDOUT);
}

/* A wait that ends without waiting: what was noted for it goes. */
static __attribute__((cold, noinline)) int wait_not_begun(int err)
{
    gev_hub *hub = gev__tls_hub;
    if (hub)
        hub->hot.current->wait_kind = GEV__WAIT_OTHER;
    return err;
}

int gev__wait(gev__nsec deadline)
{
    int err = gev__block_check();
    return err ? wait_not_begun(err) : gev__wait_prechecked(deadline);
}

int gev__wait_prechecked(gev__nsec deadline)
{
    gev_hub *hub = gev__tls_hub;
    gev_greenlet *g = hub->hot.current;
    gev__nsec now = gev__loop_now(hub->hot.loop);
    if (deadline != GEV__FOREVER) {
        if (deadline <= now)
            return wait_not_begun(ETIMEDOUT);
        g->timer.cb = wait_timer_cb;
        gev__timer_start_at(hub->hot.loop, &g->timer, deadline);
        if (!g->timer.base.active)
            return wait_not_begun(ENOMEM);  /* a wait that could outlive its deadline */
    }
    g->wait_since = now;
    g->state = GEV__WAITING;
    g->wake_err = 0;
    gev__hub_switch_away(hub, gev__ctx_of(g));
    g->wait_kind = GEV__WAIT_OTHER;
    if (g->timer.base.active)
        gev__timer_stop(hub->hot.loop, &g->timer);
    return g->wake_err;
}

int gev__wait_uninterruptible(void)
{
    gev_hub *hub = gev__hub();
    if (!hub)
        return ENOMEM;
    gev_greenlet *g = hub->hot.current;
    if (g->is_hub)
        return wait_not_begun(EDEADLK);
    g->nocancel = true;
    g->wait_since = gev__loop_now(hub->hot.loop);
    g->state = GEV__WAITING;
    g->wake_err = 0;
    gev__hub_switch_away(hub, gev__ctx_of(g));
    g->wait_kind = GEV__WAIT_OTHER;
    g->nocancel = false;
    return g->wake_err;
}

/* A kill or a scoped timeout ends the wait now, unless it is one that must
 * not be cut short, or g is shielded (then the next blocking call after
 * the shield is lifted fails instead). */
void gev__interrupt(gev_greenlet *g)
{
    gev__greenlet_interrupt_update(g);
    int err = gev__greenlet_interrupt_err(g);
    if (err && g->state == GEV__WAITING && !g->nocancel)
        gev__wake(g, g->wait_id, err);
}

bool gev_shield(bool on)
{
    gev_hub *hub = gev__hub();
    if (!hub)
        return false;
    gev_greenlet *g = hub->hot.current;
    bool was = g->shielded;
    g->shielded = on;
    gev__greenlet_interrupt_update(g);
    return was;
}

void gev__yield(void)
{
    gev_hub *hub = gev__hub();
    if (!hub)
        return;
    gev_greenlet *g = hub->hot.current;
    g->state = GEV__READY;
    gev__rq_push(hub, g);
    gev__hub_switch_away(hub, gev__ctx_of(g));
}

/* ---- the library-level calls -------------------------------------------- */

int gev_run(double timeout)
{
    gev_hub *hub = gev__hub();
    if (!hub)
        return -1;
    if (hub->hot.current != &hub->main)
        return gev__fail(hub->hot.current->is_hub ? EDEADLK : EINVAL);
    gev__nsec deadline;
    int err = gev__timeout_deadline(timeout, &deadline);
    if (err)
        return gev__fail(err);
    gev__wait_begin();
    hub->main_in_run = true;
    /* gev_run's own deadline must not count as something left to do, or
     * gev_run(t) could never return before t (an unref'd timer stays so
     * across the start and stop inside gev__wait). */
    gev__watcher_set_ref(hub->hot.loop, &hub->main.timer.base, false);
    err = gev__wait(deadline);
    gev__watcher_set_ref(hub->hot.loop, &hub->main.timer.base, true);
    hub->main_in_run = false;
    return err ? gev__fail(err) : 0;
}

int gev_reinit(void)
{
    gev_hub *hub = gev__hub();
    if (!hub)
        return -1;
    if (gev__loop_reinit(hub->hot.loop) < 0)
        return -1;
    hub->thread = pthread_self();   /* the child's one thread */
    gev__monitor_after_fork(hub);
    for (int i = 0; i < GEV__HUB_SLOTS; i++)
        if (hub->hooks[i] && hub->hooks[i]->on_fork &&
            hub->hooks[i]->on_fork(hub, hub->hot.slots[i]) < 0)
            return -1;
    return 0;
}

void gev_shutdown(void)
{
    gev_hub *hub = gev__tls_hub;
    if (!hub || hub->hot.current != &hub->main)
        return;
    hub->shutting_down = true;
    /* Kill what is left and let each run its cleanup; gev_run returns once
     * nothing can happen any more. */
    for (gev_greenlet *g = hub->all; g; g = g->all_next)
        if (g->state != GEV__DEAD)
            gev_kill(g, 0);
    if (hub->live > 0 || hub->cb_head)
        gev_run(GEV_FOREVER);   /* also runs links still queued */
    gev__tls_hub = NULL;
    hub_free(hub);
}
