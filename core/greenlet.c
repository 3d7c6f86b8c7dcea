/* core/greenlet.c: spawning, running, finishing, joining, killing and
 * linking greenlets; their records and runners. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gev.h"           /* the calls this file defines */
#include "hub-internal.h"

/* ---- runners ------------------------------------------------------------- */

gev__runner *gev__runner_new(gev_hub *hub, size_t stack_size,
                             void (*entry)(void *), void *arg)
{
    gev__runner *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->stack = gev__stack_get(&hub->stacks, stack_size ? stack_size : hub->default_stack);
    if (!r->stack) {
        int err = errno;
        free(r);
        errno = err;
        return NULL;
    }
    gev__context_init(&r->ctx, r->stack->lo, r->stack->size, entry,
                      arg ? arg : r);
    return r;
}

void gev__runner_free(gev_hub *hub, gev__runner *r)
{
    gev__stack_put(&hub->stacks, r->stack);
    free(r);
}

/* Runners of finished greenlets beyond what the idle list keeps are retired
 * and unmapped here, from the hub greenlet: never while running on them. */
void gev__hub_trim_runners(gev_hub *hub)
{
    while (hub->retired) {
        gev__runner *r = hub->retired;
        hub->retired = r->next;
        gev__runner_free(hub, r);
    }
}

bool gev__hub_trim_idle(gev_hub *hub, size_t keep)
{
    for (unsigned n = 0; n < GEV__TRIM_BATCH && hub->idle_count > keep; n++) {
        gev__runner *r = hub->idle;
        hub->idle = r->next;
        hub->idle_count--;
        gev__runner_free(hub, r);
    }
    return hub->idle_count > keep;
}

static void runner_park(gev_hub *hub, gev__runner *r)
{
    if (r->stack->size == hub->default_stack) {
        r->next = hub->idle;
        hub->idle = r;
        hub->idle_count++;
    } else {
        r->next = hub->retired;
        hub->retired = r;
    }
}

static void runner_main(void *arg);
static void finish(gev_hub *hub, gev_greenlet *g);

gev__context *gev__runner_bind_slow(gev_hub *hub, gev_greenlet *g)
{
    gev__runner *r;
    hub->unstarted--;           /* it runs now, or ends */
    if ((g->stack_size == 0 || g->stack_size == hub->default_stack) && hub->idle) {
        r = hub->idle;
        hub->idle = r->next;
        hub->idle_count--;
    } else if (!(r = gev__runner_new(hub, g->stack_size, runner_main, NULL))) {
        /* Out of memory or mappings, where gev_spawn can no longer say so:
         * it ends as a greenlet killed before it started does. */
        g->killed = true;
        finish(hub, g);
        gev__greenlet_maybe_free(g);
        return NULL;
    }
    r->g = g;
    g->runner = r;
    return g->ctx = &r->ctx;
}

/* ---- records ------------------------------------------------------------- */

/* Every field of a new record, set one by one: a memset of the whole
 * record (with its name buffer) was the largest single cost of a spawn. */
static void record_reset(gev_hub *hub, gev_greenlet *g)
{
    g->hub = hub;
    g->runner = NULL;
    g->ctx = NULL;
    g->value = NULL;
    g->killed = g->released = g->is_main = g->is_hub = false;
    g->nocancel = g->shielded = g->notify_queued = g->queued = false;
    g->wake_err = 0;
    g->expired_timeouts = 0;
    g->interrupt_err = 0;
    g->wait_kind = GEV__WAIT_OTHER;     /* and so after every wait */
    g->wait_fd = -1;
    g->id = ++hub->next_id;
    gev__timer_init(&g->timer, NULL);
    g->timer.base.data = g;
    g->joiner = NULL;
    gev__waitq_init(&g->joiners);
    g->links = g->links_tail = NULL;
    g->timeouts = NULL;
    g->name = NULL;
    g->name_buf[0] = '\0';
}

/* A record from the free list needs less: record_free() only takes records
 * that are dead and released with nothing pending, so they come back with
 * no timer armed, no joiners, links, timeouts or name, the same hub, and
 * is_main/is_hub false.  They keep counting wait ids, so a wake-up meant
 * for a previous life never matches a wait of this one. */
static void record_recycle(gev_hub *hub, gev_greenlet *g)
{
    g->ctx = NULL;              /* its last runner went to someone else */
    g->value = NULL;
    g->killed = g->released = false;
    g->nocancel = g->shielded = g->notify_queued = g->queued = false;
    g->expired_timeouts = 0;
    g->interrupt_err = 0;
    g->id = ++hub->next_id;
    g->name_buf[0] = '\0';
}

void gev__greenlet_init_record(gev_hub *hub, gev_greenlet *g)
{
    memset(g, 0, sizeof *g);
    record_reset(hub, g);
}

static inline __attribute__((always_inline)) gev_greenlet *record_new(gev_hub *hub)
{
    gev_greenlet *g;
    if (hub->free_record_count > hub->free_records_hold) {
        g = hub->free_records;
        hub->free_records = g->all_next;
        hub->free_record_count--;
        record_recycle(hub, g);
    } else if ((g = gev__record_alloc(&hub->records))) {
        g->wait_id = 0;
        record_reset(hub, g);
    } else {
        return NULL;
    }
    GEV__DLIST_PUSH_HEAD(hub->all, g, all_next, all_prev);
    return g;
}

static void free_parts(gev_greenlet *g) __attribute__((noinline, cold));

/* The tail's all_next is left as it is: the count says where the list
 * ends. */
static inline void records_append(gev_hub *hub, gev_greenlet *g)
{
    if (hub->free_record_count++)
        hub->free_records_tail->all_next = g;
    else
        hub->free_records = g;
    hub->free_records_tail = g;
}

/* The free list is full: its oldest record goes, never the newest (a
 * stale handle to that one must still find it).  A call of its own, so
 * that record_free needs no frame. */
static __attribute__((noinline, cold)) void records_append_full(gev_hub *hub, gev_greenlet *g)
{
    gev_greenlet *old = hub->free_records;
    hub->free_records = old->all_next;
    hub->free_record_count--;
    gev__record_release(&hub->records, old);
    records_append(hub, g);
}

/* A freed record keeps hub, id, released and state (GEV__FREED): a stale
 * handle meets a record that says what it is for as long as it stays on
 * the free list, which is FIFO and hands a record out only when
 * free_records_hold newer ones wait behind it (LIFO would give it to the
 * very next spawn).  Under GEV_DEBUG it stays there until the hub goes. */
static inline void record_free(gev_hub *hub, gev_greenlet *g)
{
    GEV__DLIST_UNLINK_HEAD(hub->all, g, all_next, all_prev);
    gev__greenlet_free_parts(g);
    g->state = GEV__FREED;
    if (__builtin_expect(hub->free_record_count >= hub->free_records_max, 0))
        records_append_full(hub, g);
    else
        records_append(hub, g);
}

void gev__greenlet_free_parts(gev_greenlet *g)
{
    if (__builtin_expect(g->name || g->links, 0))
        free_parts(g);
}

static void free_parts(gev_greenlet *g)
{
    if (g->name) {
        free(g->name);
        g->name = NULL;
    }
    for (gev__link *l = g->links; l;) {
        gev__link *next = l->next;
        free(l);
        l = next;
    }
    g->links = g->links_tail = NULL;
}

void gev__greenlet_maybe_free(gev_greenlet *g)
{
    if (g->released && g->state == GEV__DEAD && !g->notify_queued && !g->is_main && !g->is_hub)
        record_free(g->hub, g);
}

void gev__greenlet_free_all(gev_hub *hub)
{
    while (hub->all) {
        gev_greenlet *g = hub->all;
        if (g->runner && g->state != GEV__DEAD) {
            /* Never finished (shutdown could not end it): its stack goes. */
            gev__runner_free(hub, g->runner);
            g->runner = NULL;
        }
        if (g->timer.base.active)
            gev__timer_stop(hub->hot.loop, &g->timer);
        record_free(hub, g);
    }
    for (; hub->free_record_count; hub->free_record_count--) {
        gev_greenlet *g = hub->free_records;
        hub->free_records = g->all_next;
        gev__record_release(&hub->records, g);
    }
    gev__record_pool_drain(&hub->records);
    while (hub->idle) {
        gev__runner *r = hub->idle;
        hub->idle = r->next;
        gev__runner_free(hub, r);
    }
    gev__hub_trim_runners(hub);
}

/* ---- misuse (core/debug.h) ---------------------------------------------- */

static const char *default_name(gev_greenlet *g);

/* "gev: <call>: greenlet-N <what>", and abort. */
static __attribute__((noreturn, cold)) void misuse(const gev_greenlet *g, const char *call,
                                                   const char *what)
{
    char line[96];
    size_t n = strlen(strcpy(line, default_name((gev_greenlet *)g)));
    snprintf(line + n, sizeof line - n, " %s", what);
    gev__misuse(call, line);
}

/* GEV_DEBUG: g's handle was released and its record freed, or g belongs
 * to another thread's hub. */
static __attribute__((noinline, cold)) void debug_check_handle(const gev_greenlet *g,
                                                              const char *call)
{
    if (g->state == GEV__FREED)
        misuse(g, call, "used after gev_release");
    gev__debug_check_owner(g->hub, call, "greenlet");
}

#define CHECK_HANDLE(g)                                                 \
    do {                                                                \
        if (__builtin_expect(gev__debug, 0))                            \
            debug_check_handle((g), __func__);                          \
    } while (0)

/* ---- names ----------------------------------------------------------------- */

/* Async-signal-safe: the stack overflow handler names greenlets too. */
static const char *default_name(gev_greenlet *g)
{
    if (g->name_buf[0])
        return g->name_buf;
    char digits[24];
    int n = 0;
    uint64_t id = g->id;
    do {
        digits[n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    memcpy(g->name_buf, "greenlet-", 9);
    int i = 9;
    while (n)
        g->name_buf[i++] = digits[--n];
    g->name_buf[i] = '\0';
    return g->name_buf;
}

const char *gev_name(const gev_greenlet *g)
{
    if (!g)
        return NULL;
    CHECK_HANDLE(g);
    if (g->state == GEV__FREED) {
        errno = EINVAL;
        return NULL;
    }
    return g->name ? g->name : default_name((gev_greenlet *)g);
}

void gev_set_name(gev_greenlet *g, const char *name)
{
    if (!g || !name)
        return;
    CHECK_HANDLE(g);
    if (g->state == GEV__FREED) {
        errno = EINVAL;
        return;
    }
    char *copy = strdup(name);
    if (!copy)
        return;
    free(g->name);
    g->name = copy;
}

const char *gev__greenlet_describe_fault(void *addr, size_t *stack_size)
{
    gev_hub *hub = gev__hub_peek();
    if (!hub || !hub->hot.current->runner)
        return NULL;
    gev__stack *s = hub->hot.current->runner->stack;
    /* The guard page, or just below it: a frame larger than a page can jump
     * over the guard into unmapped space. */
    char *a = addr, *lo = s->lo;
    if (a >= lo || a < lo - 64 * 1024)
        return NULL;
    *stack_size = s->size;
    return gev_name(hub->hot.current);
}

/* ---- running and finishing -------------------------------------------------- */

static inline void wake_joiners(gev_greenlet *g)
{
    gev__waiter *w = g->joiner;
    if (w) {
        g->joiner = NULL;
        w->q = NULL;                /* tells join_until g is done with it */
        gev__wake(w->g, w->wait_id, 0);
    }
    if (g->joiners.head)
        gev__waitq_wake_all(&g->joiners, 0);
}

static void notify_links(void *arg)
{
    gev_greenlet *g = arg;
    gev__link *l;
    /* Pop before calling: each link fires once, and a callback may unlink a
     * later one or add new ones. */
    while ((l = g->links)) {
        g->links = l->next;
        if (!g->links)
            g->links_tail = NULL;
        l->cb(g, l->arg);
        free(l);
    }
    /* In gevent a join is a link too: joiners resume after the links that
     * were added before them. */
    wake_joiners(g);
    g->notify_queued = false;
    gev__greenlet_maybe_free(g);
}

static void queue_notify(gev_greenlet *g)
{
    if (g->notify_queued || !g->links)
        return;
    /* The record outlives the notification (maybe_free waits for it). */
    g->notify_queued = true;
    g->notify.fn = notify_links;
    g->notify.arg = g;
    gev__hub_callback(g->hub, &g->notify);
}

static void finish(gev_hub *hub, gev_greenlet *g)
{
    g->state = GEV__DEAD;
    hub->live--;
    if (g->timer.base.active)
        gev__timer_stop(hub->hot.loop, &g->timer);
    if (g->timeouts)
        gev__timeout_owner_finished(g);
    if (g->links)
        queue_notify(g);   /* wakes the joiners after the links */
    else
        wake_joiners(g);
}

static void runner_main(void *arg)
{
    gev__runner *r = arg;
    for (;;) {
        gev_greenlet *g = r->g;
        gev_hub *hub = g->hub;
        g->value = g->fn(g->arg);
        finish(hub, g);
        g->runner = NULL;
        r->g = NULL;
        runner_park(hub, r);
        gev__greenlet_maybe_free(g);
        gev__hub_switch_away(hub, &r->ctx);
    }
}

/* ---- spawning ------------------------------------------------------------------- */

/* A record for a new greenlet, not queued anywhere yet (its runner, stack
 * and context, comes when it first runs).  Inline in each kind of
 * spawn: a frame of its own was a tenth of a spawn's instructions. */
static inline __attribute__((always_inline)) gev_greenlet *spawn_record(size_t stack_size, gev_fn fn, void *arg)
{
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    if (stack_size > GEV__STACK_SIZE_LIMIT) {
        errno = ENOMEM;
        return NULL;
    }
    gev_hub *hub = gev__hub();
    if (!hub)
        return NULL;
    gev_greenlet *g = record_new(hub);
    if (!g)
        return NULL;
    g->stack_size = stack_size;     /* the runner comes when it first runs */
    g->fn = fn;
    g->arg = arg;
    g->state = GEV__NEW;
    g->parent_id = hub->hot.current->id;
    hub->live++;
    hub->unstarted++;
    hub->spawns++;
    return g;
}

gev_greenlet *gev_spawn_sized(size_t stack_size, gev_fn fn, void *arg)
{
    gev_greenlet *g = spawn_record(stack_size, fn, arg);
    if (g)
        gev__rq_push(g->hub, g);
    return g;
}

gev_greenlet *gev_spawn(gev_fn fn, void *arg)
{
    gev_greenlet *g = spawn_record(0, fn, arg);
    if (g)
        gev__rq_push(g->hub, g);
    return g;
}

static void spawn_later_cb(gev__loop *loop, gev__timer *t)
{
    (void)loop;
    gev_greenlet *g = t->base.data;     /* still NEW: it starts now */
    gev__rq_push(g->hub, g);
}

static int kill_request(gev_greenlet *g);

gev_greenlet *gev__spawn_linked(gev_fn fn, void *arg,
                                void (*done)(gev_greenlet *g, void *arg), void *done_arg)
{
    gev_greenlet *g = gev_spawn(fn, arg);
    if (g && gev_link(g, done, done_arg) < 0) {
        int err = errno;
        kill_request(g);            /* not started yet: it never runs */
        gev_release(g);
        errno = err;
        return NULL;
    }
    return g;
}

/* A delay without limit leaves g unstarted until a kill ends it. */
gev_greenlet *gev_spawn_later(double seconds, gev_fn fn, void *arg)
{
    gev__nsec deadline;
    if (gev__timeout_deadline(seconds, &deadline)) {
        errno = EINVAL;
        return NULL;
    }
    gev_greenlet *g = spawn_record(0, fn, arg);
    if (!g || deadline == GEV__FOREVER)
        return g;
    g->timer.cb = spawn_later_cb;
    gev__timer_start_at(gev__hub_loop(g->hub), &g->timer, deadline);
    if (!g->timer.base.active) {            /* ENOMEM: it would never start */
        kill_request(g);
        gev_release(g);
        errno = ENOMEM;
        return NULL;
    }
    return g;
}

/* ---- joining and killing ----------------------------------------------------------- */

static inline __attribute__((always_inline)) int join_until(gev_greenlet *g, gev__nsec deadline)
{
    gev_hub *hub = g->hub;
    gev_greenlet *self = hub->hot.current;
    if (g == self)
        return EDEADLK;
    if (g->state >= GEV__DEAD)
        return g->state == GEV__DEAD ? 0 : EINVAL;  /* FREED: released */
    gev__waiter w;
    gev__wait_note_for(self, GEV__WAIT_JOIN, -1);
    if (g->joiner || g->joiners.head)
        return gev__waitq_wait(&g->joiners, &w, deadline);
    /* The usual case, a single joiner, takes the slot: no queue to keep.
     * Later joiners queue behind it, so joiners still resume in order.
     * Only the fields a wake reads are set. */
    w.g = self;
    w.wait_id = ++self->wait_id;
    w.q = &g->joiners;              /* "still in the slot", as on a queue */
    g->joiner = &w;
    int err;
    if (deadline == GEV__FOREVER && !self->is_hub && !gev__greenlet_interrupt_err(self))
        err = gev__wait_forever_unchecked(hub, self);
    else
        err = gev__wait(deadline);
    /* Once g has woken its joiners its record may be freed (a link may
     * release it) before we run: only touch it while we are still in the
     * slot, which means g has not finished. */
    if (w.q)
        g->joiner = NULL;
    return err;
}

int gev_join(gev_greenlet *g, double timeout)
{
    gev__nsec deadline;
    if (!g)
        return gev__fail(EINVAL);
    CHECK_HANDLE(g);
    int err = gev__timeout_deadline(timeout, &deadline);
    if (!err)
        err = join_until(g, deadline);
    return err ? gev__fail(err) : 0;
}

static int joinall_until(gev_greenlet *const *gs, size_t n, gev__nsec deadline)
{
    for (size_t i = 0; i < n; i++) {
        if (!gs[i])
            return EINVAL;
        CHECK_HANDLE(gs[i]);
        int err = join_until(gs[i], deadline);
        if (err)
            return err;
    }
    return 0;
}

int gev_joinall(gev_greenlet *const *gs, size_t n, double timeout)
{
    gev__nsec deadline;
    if (n && !gs)
        return gev__fail(EINVAL);
    int err = gev__timeout_deadline(timeout, &deadline);
    if (!err)
        err = joinall_until(gs, n, deadline);
    return err ? gev__fail(err) : 0;
}

static void kill_unstarted(gev_hub *hub, gev_greenlet *g)
{
    gev__rq_remove(hub, g);     /* it has no runner yet */
    hub->unstarted--;
    g->killed = true;
    finish(hub, g);
}

/* Deliver a kill without waiting.  0 if g is dead afterwards. */
static int kill_request(gev_greenlet *g)
{
    gev_hub *hub = g->hub;
    if (g->is_main || g->is_hub)
        return EINVAL;
    if (g == hub->hot.current)
        return EDEADLK;
    if (g->state >= GEV__DEAD)
        return g->state == GEV__DEAD ? 0 : EINVAL;  /* FREED: released */
    if (g->state == GEV__NEW) {
        kill_unstarted(hub, g);
        return 0;
    }
    if (!g->killed) {
        g->killed = true;
        gev__interrupt(g);      /* recorded even if g is shielded */
    }
    return ETIMEDOUT;
}

/* The deadline of a kill's wait; 0 only requests (no clock read: pools and
 * servers kill that way member by member).  Taken before the kill, so that
 * a NaN kills nothing. */
static int kill_deadline(double timeout, gev__nsec *deadline)
{
    *deadline = 0;
    return timeout == 0 ? 0 : gev__timeout_deadline(timeout, deadline);
}

int gev_kill(gev_greenlet *g, double timeout)
{
    gev__nsec deadline;
    if (!g)
        return gev__fail(EINVAL);
    CHECK_HANDLE(g);
    int err = kill_deadline(timeout, &deadline);
    if (!err)
        err = kill_request(g);
    if (err == ETIMEDOUT && timeout != 0)
        err = join_until(g, deadline);
    return err ? gev__fail(err) : 0;
}

int gev_killall(gev_greenlet *const *gs, size_t n, double timeout)
{
    gev__nsec deadline;
    if (n && !gs)
        return gev__fail(EINVAL);
    if (kill_deadline(timeout, &deadline))
        return gev__fail(EINVAL);
    int first_err = 0;
    for (size_t i = 0; i < n; i++) {
        if (gs[i])
            CHECK_HANDLE(gs[i]);
        int err = gs[i] ? kill_request(gs[i]) : EINVAL;
        if (err && err != ETIMEDOUT && !first_err)
            first_err = err;
    }
    if (first_err)
        return gev__fail(first_err);
    if (timeout == 0) {
        for (size_t i = 0; i < n; i++)
            if (gs[i]->state != GEV__DEAD)
                return gev__fail(ETIMEDOUT);
        return 0;
    }
    first_err = joinall_until(gs, n, deadline);
    return first_err ? gev__fail(first_err) : 0;
}

/* ---- state and links ------------------------------------------------------------------ */

/* On a released handle whose record is still quarantined these answer for
 * the greenlet that was released: the record keeps its state and value. */
bool gev_ready(const gev_greenlet *g)
{
    if (!g)
        return false;
    CHECK_HANDLE(g);
    return g->state >= GEV__DEAD;
}

bool gev_killed(const gev_greenlet *g)
{
    if (!g)
        return false;
    CHECK_HANDLE(g);
    return g->killed;
}

void *gev_value(const gev_greenlet *g)
{
    if (!g)
        return NULL;
    CHECK_HANDLE(g);
    return g->value;
}

gev_greenlet *gev_current(void)
{
    gev_hub *hub = gev__hub();
    return hub ? hub->hot.current : NULL;
}

int gev_link(gev_greenlet *g, void (*cb)(gev_greenlet *, void *), void *arg)
{
    if (!g || !cb)
        return gev__fail(EINVAL);
    CHECK_HANDLE(g);
    if (g->state == GEV__FREED)
        return gev__fail(EINVAL);
    gev__link *l = malloc(sizeof *l);
    if (!l)
        return gev__fail(ENOMEM);
    l->cb = cb;
    l->arg = arg;
    l->next = NULL;
    if (g->links_tail)
        g->links_tail->next = l;
    else
        g->links = l;
    g->links_tail = l;
    if (g->state == GEV__DEAD)
        queue_notify(g);
    return 0;
}

int gev_unlink(gev_greenlet *g, void (*cb)(gev_greenlet *, void *), void *arg)
{
    if (!g || !cb)
        return gev__fail(EINVAL);
    CHECK_HANDLE(g);
    if (g->state == GEV__FREED)
        return gev__fail(EINVAL);
    for (gev__link **pp = &g->links, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        gev__link *l = *pp;
        if (l->cb == cb && l->arg == arg) {
            *pp = l->next;
            if (g->links_tail == l)
                g->links_tail = prev;
            free(l);
            return 0;
        }
    }
    return gev__fail(ENOENT);
}

/* GEV_DEBUG: a second release, or one from another thread, aborts. */
static __attribute__((noinline, cold)) void release_checked(gev_greenlet *g)
{
    if (!g || g->is_main || g->is_hub)
        return;
    if (g->released)
        misuse(g, "gev_release", "released twice");
    gev__debug_check_owner(g->hub, "gev_release", "greenlet");
    g->released = true;
    gev__greenlet_maybe_free(g);
}

/* A second release changes nothing: a live greenlet was released already,
 * and a freed record is GEV__FREED, not GEV__DEAD, so it is not freed again. */
static inline __attribute__((always_inline)) void release(gev_greenlet *g)
{
    if (!g || g->is_main || g->is_hub)
        return;
    g->released = true;
    if (g->state == GEV__DEAD && !g->notify_queued)
        record_free(g->hub, g);     /* maybe_free, inline */
}

void gev_release(gev_greenlet *g)
{
    if (__builtin_expect(gev__debug, 0))
        release_checked(g);         /* a tail call: no frame on the usual path */
    else
        release(g);
}

/* ---- sleeping --------------------------------------------------------------------------- */

static int yield_checked(void)
{
    int err = gev__block_check();
    if (err)
        return err;
    gev__yield();
    /* A kill or a scoped timeout that arrived while we were queued. */
    return gev__block_check();
}

/* deadline is GEV__FOREVER or on a clock read just now. */
static int sleep_to(gev_hub *hub, gev__nsec deadline)
{
    if (deadline != GEV__FOREVER && deadline <= gev__loop_now(hub->hot.loop))
        return yield_checked();         /* passed already: as sleep(0) */
    gev__wait_begin();
    gev__wait_note_for(hub->hot.current, GEV__WAIT_SLEEP, -1);
    int err = gev__wait(deadline);
    /* The deadline is the point of a sleep; only a scoped timeout's
     * ETIMEDOUT is an error. */
    if (err == ETIMEDOUT && gev__block_check() != ETIMEDOUT)
        err = 0;
    return err;
}

int gev_sleep(double seconds)
{
    if (seconds == 0) {                 /* the common yield: no clock read */
        int err = yield_checked();
        return err ? gev__fail(err) : 0;
    }
    gev_hub *hub = gev__hub();
    if (!hub)
        return -1;
    gev__nsec deadline;
    int err = gev__timeout_deadline(seconds, &deadline);
    if (!err)
        err = sleep_to(hub, deadline);
    return err ? gev__fail(err) : 0;
}

double gev_now(void)
{
    gev_hub *hub = gev__hub_peek();
    gev__nsec now = hub ? gev__loop_update_now(hub->hot.loop) : gev__time_monotonic();
    return (double)now / 1e9;
}

int gev_sleep_until(double deadline)
{
    if (deadline != deadline)
        return gev__fail(EINVAL);
    gev_hub *hub = gev__hub();
    if (!hub)
        return -1;
    /* A negative deadline is long past (nsec_from_seconds would say
     * "forever" for it); +inf, or one past the clock's int64 ns, never
     * comes. */
    gev__nsec at = deadline > 0 ? gev__nsec_from_seconds(deadline) : 0;
    gev__loop_update_now(hub->hot.loop);
    int err = sleep_to(hub, at);
    return err ? gev__fail(err) : 0;
}
