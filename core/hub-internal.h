/* core/hub-internal.h: the hub's private state, shared by core/hub.c,
 * core/greenlet.c, core/timeout.c and core/runinfo.c only.  Everything
 * else goes through hub.h. */
#ifndef GEV_CORE_HUB_INTERNAL_H
#define GEV_CORE_HUB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "hub.h"
#include "records.h"

/* A stack with a context parked on it.  A greenlet gets one when it first
 * runs, not when it is spawned: 100,000 spawned greenlets that each finish
 * before the next starts need one stack between them, not 100,000 (a
 * greenlet that has not started has no stack in gevent either).  A finished
 * greenlet's runner stays parked in its loop (runner_main) and is handed to
 * the next greenlet that starts, so a start that finds an idle runner costs
 * no syscall and no context setup; when the greenlet that finishes is the
 * one whose runner the next one takes, there is not even a switch. */
struct gev__runner {
    gev__context ctx;
    gev__stack *stack;
    gev_greenlet *g;            /* what it runs now; NULL while idle */
    gev__runner *next;          /* idle / retired list */
};

struct gev__link {
    void (*cb)(gev_greenlet *g, void *arg);
    void *arg;
    gev__link *next;
};

/* While greenlets keep being ready, look at the clock every
 * GEV__POLL_EVERY scheduling decisions and poll the loop if GEV__POLL_AFTER
 * passed since the last poll, so a gev_sleep(0) loop never starves timers
 * and IO (gevent checks every 50 callbacks against a switch interval).  One
 * epoll_wait costs as much as tens of switches; a clock read, two. */
#define GEV__POLL_EVERY 64u
#define GEV__POLL_AFTER (100 * INT64_C(1000))   /* ns */
/* Finished greenlets' runners are all kept parked (an munmap per greenlet
 * would land on the hot path: 100,000 timers waking would each pay one);
 * those beyond what recent demand says to keep (gev__stack_cache_demand)
 * are freed by the hub greenlet, a batch at a time between polls (their
 * stacks go through gev__stack_put: the cache, else the arena or munmap). */
#define GEV__TRIM_BATCH 64u
#define GEV__FREE_RECORDS_MAX 256u

/* A freed greenlet record or cancelled timeout is reused only once
 * GEV__QUARANTINE more have been freed after it (the free records are a
 * FIFO, cancelled timeouts a ring), so a stale handle used in that window
 * meets its own freed object, which says so (GEV__FREED, cancelled), not a
 * new one that took over its memory.  Short: spawn+join cycles through
 * these records, and they must stay in L1.  Under GEV_DEBUG nothing freed
 * is reused until the hub goes: every later use is caught. */
#define GEV__QUARANTINE 16u
typedef struct gev__quarantine {
    void *slot[GEV__QUARANTINE];
    unsigned next;
} gev__quarantine;

/* Put p in, return what it pushes out (NULL until the ring is full). */
static inline void *gev__quarantine_push(gev__quarantine *q, void *p)
{
    void *old = q->slot[q->next];
    q->slot[q->next] = p;
    q->next = (q->next + 1) % GEV__QUARANTINE;
    return old;
}

/* free() everything in q (at shutdown). */
static inline void gev__quarantine_drain(gev__quarantine *q)
{
    for (unsigned i = 0; i < GEV__QUARANTINE; i++) {
        free(q->slot[i]);
        q->slot[i] = NULL;
    }
}

struct gev_hub {
    struct gev__hub_hot hot;    /* first: read inline by hub.h */
    gev_greenlet main;          /* the thread's own stack */
    gev__context main_ctx;
    gev_greenlet *hub_g;        /* the hub greenlet: polls, runs callbacks */
    unsigned since_poll;
    /* When the hub last polled (the loop's clock just after).  A poll is
     * due GEV__POLL_AFTER past it; not past the loop's cached clock, which
     * every gev_sleep() refreshes: a burst of first runs that each sleep
     * would keep that one fresh and the expired timers unread. */
    gev__nsec last_poll;
    /* Scheduling decisions so far (gev__hub_switch_away, the hub's own
     * switches).  Written by the hub's thread only, read by others (the
     * blocking monitor, gev_stats) with relaxed atomics: one that stays put
     * while the hub is not polling means a greenlet is running without
     * switching. */
    uint64_t switches;
    uint64_t spawns;            /* greenlets spawned (gev_stats) */
    bool polling;               /* in the loop's poll (relaxed atomic) */
    pthread_t thread;           /* the thread the hub belongs to */
    /* The run queue's head segment that a periodic poll put ahead of first
     * runs (see gev__hub_poll_check); NULL when there is none. */
    gev_greenlet *rq_prio_tail;
    bool poll_ahead;            /* the hub was queued there to poll */
    gev__callback *cb_head, *cb_tail;
    gev__runner *idle;          /* default-size runners, parked */
    size_t idle_count;
    gev__runner *retired;       /* to free from the hub greenlet */
    gev__timer trim_timer;      /* unref'd: wakes an idle hub to trim spares */
    gev__stack_cache stacks;
    size_t default_stack;
    gev_greenlet *all;          /* every spawned record not yet freed */
    gev__record_pool records;   /* where records come from (core/records.h) */
    gev_greenlet *free_records, *free_records_tail;  /* FIFO, oldest first */
    size_t free_record_count;
    size_t free_records_hold;   /* GEV__QUARANTINE; GEV_DEBUG: SIZE_MAX */
    size_t free_records_max;    /* GEV__FREE_RECORDS_MAX; GEV_DEBUG: SIZE_MAX */
    struct gev_timeout *kept_timeouts;  /* GEV_DEBUG: cancelled, never freed */
    gev__quarantine timeout_quarantine;
    uint64_t next_id;
    size_t live;                /* spawned and not dead */
    size_t unstarted;           /* of those, not run yet: no stack so far */
    int busy;                   /* gev__hub_busy() */
    atomic_int held;            /* gev__hub_hold(): changed by any thread */
    gev__async keepalive;       /* referenced while busy > 0 or held > 0;
                                   sent when held drops to 0 */
    bool keepalive_ref;         /* what keepalive's ref was last set to */
    bool main_in_run;           /* main waits in gev_run(): idle is success */
    bool shutting_down;
    const gev__hub_hooks *hooks[GEV__HUB_SLOTS];
    /* The blocking monitor (core/monitor.c): NULL until first started;
     * kept, stopped or not, until the hub goes, for its signal handler. */
    struct gev__monitor *monitor;
};

static inline gev__context *gev__ctx_of(gev_greenlet *g)
{
    return g->ctx;
}

/* hub.c */
void gev__rq_remove(gev_hub *hub, gev_greenlet *g);
/* Every GEV__POLL_EVERY decisions: queue the hub if a poll is due.  Behind
 * everything ready, as a rule (a server with 1,000 ready connections polls
 * once per pass); but when the next to run would be a greenlet's first run,
 * ahead of it, and the greenlets that poll wakes run ahead of it too: a
 * sleeper whose timer expired does not wait behind a burst of 100,000 first
 * runs.  Only a periodic (time-driven) poll reorders so; spawn order among
 * new greenlets and sleep(0)'s FIFO stay as they were. */
void gev__hub_poll_check(gev_hub *hub);

/* The first ready greenlet, taken off the run queue, else the hub. */
static inline gev_greenlet *gev__rq_pop_or_hub(gev_hub *hub)
{
    gev_greenlet *next = hub->hot.rq_head;
    if (!next)
        return hub->hub_g;
    hub->hot.rq_head = next->rq_next;
    if (__builtin_expect(next == hub->rq_prio_tail, 0))
        hub->rq_prio_tail = NULL;
    if (next->rq_next)
        next->rq_next->rq_prev = NULL;
    else
        hub->hot.rq_tail = NULL;
    next->queued = false;
    return next;
}

/* greenlet.c: the runner for a greenlet about to run for the first time,
 * when no idle one of its size is at hand; NULL (ENOMEM) if no stack can be
 * had, and then the greenlet has ended without running. */
gev__context *gev__runner_bind_slow(gev_hub *hub, gev_greenlet *g);

/* Give g, about to run for the first time, a runner: its context. */
static inline gev__context *gev__runner_bind(gev_hub *hub, gev_greenlet *g)
{
    gev__runner *r = hub->idle;
    if (__builtin_expect(!r || g->stack_size, 0))
        return gev__runner_bind_slow(hub, g);
    hub->idle = r->next;
    hub->idle_count--;
    hub->unstarted--;
    r->g = g;
    g->runner = r;
    return g->ctx = &r->ctx;
}

/* Switch from the current context `from` to whatever should run next: the
 * first ready greenlet, else the hub.  Inline: it is half of every
 * switch, and a frame of its own is one more call and return on it. */
/* One more scheduling decision (see gev_hub.switches). */
static inline void gev__hub_count_switch(gev_hub *hub)
{
    __atomic_store_n(&hub->switches, hub->switches + 1, __ATOMIC_RELAXED);
}

static inline void gev__hub_switch_away(gev_hub *hub, gev__context *from)
{
    gev__hub_count_switch(hub);
    /* Counted per decision, not per real switch: a lone greenlet yielding
     * to itself must still let the hub poll. */
    if (__builtin_expect(++hub->since_poll >= GEV__POLL_EVERY, 0))
        gev__hub_poll_check(hub);
    gev_greenlet *next = gev__rq_pop_or_hub(hub);
    gev__context *to = gev__ctx_of(next);
    /* A greenlet that never ran (the hub always has a context).  If it
     * cannot get a stack it has ended instead: pick again. */
    while (__builtin_expect(!to, 0) && !(to = gev__runner_bind(hub, next)))
        to = gev__ctx_of(next = gev__rq_pop_or_hub(hub));
    next->state = GEV__RUNNING;        /* never a dead one: it is queued */
    hub->hot.current = next;
    if (to != from)
        gev__context_switch(from, to);
}

/* gev__wait(GEV__FOREVER) for the current greenlet g, which may block
 * (gev__block_check() said 0): the hot part, for joins. */
static inline int gev__wait_forever_unchecked(gev_hub *hub, gev_greenlet *g)
{
    g->wait_since = gev__loop_now(hub->hot.loop);
    g->state = GEV__WAITING;
    g->wake_err = 0;
    gev__hub_switch_away(hub, gev__ctx_of(g));
    g->wait_kind = GEV__WAIT_OTHER;
    return g->wake_err;
}
/* A kill or a scoped timeout reached g (recorded in g, interrupt_err
 * updated): end its wait with gev__greenlet_interrupt_err(g), unless g is
 * shielded or in a wait that must not be cut short. */
void gev__interrupt(gev_greenlet *g);

/* greenlet.c */
gev__runner *gev__runner_new(gev_hub *hub, size_t stack_size,
                             void (*entry)(void *), void *arg);
void gev__runner_free(gev_hub *hub, gev__runner *r);
void gev__hub_trim_runners(gev_hub *hub);
/* Free up to GEV__TRIM_BATCH idle runners above `keep`; true if more
 * remain above it. */
bool gev__hub_trim_idle(gev_hub *hub, size_t keep);
void gev__greenlet_free_all(gev_hub *hub);
void gev__greenlet_init_record(gev_hub *hub, gev_greenlet *g);
/* Frees what a record owns (name, links), not the record. */
void gev__greenlet_free_parts(gev_greenlet *g);
const char *gev__greenlet_describe_fault(void *addr, size_t *stack_size);

/* runinfo.c: GEV_DEBUG's explanation of an EDEADLK in main (a line
 * saying why, then gev_print_run_info's table), on stderr. */
void gev__runinfo_deadlock(gev_hub *hub);

/* timeout.c: a greenlet returned with scoped timeouts still open. */
void gev__timeout_owner_finished(gev_greenlet *g);
/* Frees the hub's cancelled timeouts (at shutdown). */
void gev__timeout_free_all(gev_hub *hub);

#endif
