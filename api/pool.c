/* api/pool.c: gev_pool, gevent.pool.Pool (size 0: unlimited, gevent's Group).
 *
 * Membership.  Each member has a small node, passed to a gev_link callback
 * that ends the membership: it runs in the hub once the greenlet finished,
 * so gev_pool_count() (live members) drops when that callback ran, which is
 * after gev_join() on the member may have returned.  gev_pool_join() and
 * gev_pool_kill() wait for the callbacks, so after they return 0 the count
 * is exact.
 *
 * Slots.  A spawn into a full pool waits in FIFO order with the callers of
 * gev_pool_wait_available().  When a member ends, its callback serves the
 * waiters in order: a wait_available caller is woken (it takes no slot); a
 * spawner gets its greenlet created *for* it in the hub and handed over
 * before it runs, so a woken caller never touches the pool again (the pool
 * may be freed before it runs, and no later spawn can steal the slot).
 *
 * Lifetime.  Greenlets spawned by a pool are owned by the pool: the handle
 * returned by gev_pool_spawn() stays valid until the next gev_pool_join()
 * that returns 0, or gev_pool_free(); do not gev_release() it.  Finished
 * members are kept on a list and released there.
 *
 * gev_pool_free() first fails the greenlets blocked in gev_pool_spawn() or
 * gev_pool_wait_available() with EBADF (so none gets a slot the kill frees),
 * then kills the live members and waits until they are dead (each runs its
 * cleanup first).  Where it cannot wait (hub context, called by a member, or
 * the caller was killed) it delivers the kills and lets the members go: they
 * are no longer members, and each record is freed when its greenlet ends.
 * Greenlets blocked in gev_pool_join()/gev_pool_kill() fail with EBADF.
 *
 * gev_pool_kill() kills every member once, in spawn order, with
 * gev_killall()'s semantics; members spawned while it waits are killed at
 * once (gevent's Group.kill loops until the group is empty).  A member that
 * joins or kills its own pool fails with EDEADLK (after delivering the kills).
 *
 * gev_pool_free_count() of an unlimited pool is SIZE_MAX.
 */
#include "config.h"
#include <stdint.h>
#include <stdlib.h>
#include "sync.h"

typedef struct pool_member pool_member;
struct pool_member {
    gev_greenlet *g;
    gev_pool *pool;
    pool_member *prev, *next;
};

typedef struct {
    pool_member *head, *tail;   /* oldest first: kills go in spawn order */
} member_list;

struct gev_pool {
    gev_hub *hub;           /* GEV_DEBUG only, else NULL (core/debug.h) */
    size_t size;            /* 0: unlimited */
    size_t count;           /* live members */
    member_list live, finished;
    gev__waitq slot_waiters;    /* spawners and wait_available callers, FIFO */
    gev__waitq join_waiters;    /* woken when count drops to 0 */
    gev__waitq kill_waiters;    /* likewise; while any waits, new members die */
};

/* What a slot waiter waits for (gev__waiter.flags). */
enum { WAIT_SLOT, WAIT_SPAWN };

/* What a spawner hands over in its waiter: its function and argument. */
typedef struct {
    gev_fn fn;
    void *arg;
} spawn_request;

gev_pool *gev_pool_new(size_t size)
{
    gev_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->hub = gev__debug_owner();
    p->size = size;
    gev__waitq_init(&p->slot_waiters);
    gev__waitq_init(&p->join_waiters);
    gev__waitq_init(&p->kill_waiters);
    return p;
}

/* ---- member lists ----------------------------------------------------------- */

static void list_push(member_list *l, pool_member *m)
{
    GEV__DLIST_APPEND(l->head, l->tail, m, next, prev);
}

static void list_remove(member_list *l, pool_member *m)
{
    GEV__DLIST_UNLINK(l->head, l->tail, m, next, prev);
}

/* Give up the handles of finished members: they are freed with their nodes. */
static void release_finished(gev_pool *p)
{
    while (p->finished.head) {
        pool_member *m = p->finished.head;
        list_remove(&p->finished, m);
        gev_release(m->g);
        free(m);
    }
}

static bool is_member(const gev_pool *p, const gev_greenlet *g)
{
    for (const pool_member *m = p->live.head; m; m = m->next)
        if (m->g == g)
            return true;
    return false;
}

/* ---- spawning and ending ------------------------------------------------------ */

static bool has_slot(const gev_pool *p)
{
    return p->size == 0 || p->count < p->size;
}

static void member_done(gev_greenlet *g, void *arg);

/* Spawn fn(arg) as a member: may run in hub context.  NULL + errno. */
static gev_greenlet *member_spawn(gev_pool *p, gev_fn fn, void *arg)
{
    pool_member *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    gev_greenlet *g = gev__spawn_linked(fn, arg, member_done, m);
    if (!g) {
        int err = errno;
        free(m);
        errno = err;
        return NULL;
    }
    m->g = g;
    m->pool = p;
    list_push(&p->live, m);
    p->count++;
    /* A gev_pool_kill() waits: it kills every member, newcomers included
     * (gevent's Group.kill loops until the group is empty). */
    if (gev__waitq_has_live(&p->kill_waiters))
        gev_kill(g, 0);
    return g;
}

/* A slot is free: serve the slot waiters in order until one takes it. */
static void serve_slot_waiters(gev_pool *p)
{
    gev__waiter *w;
    while (has_slot(p) && (w = gev__waitq_pop_live(&p->slot_waiters))) {
        if (w->flags == WAIT_SLOT) {
            gev__sync_give(w, NULL, 0);
            continue;
        }
        /* Wake first, then spawn, so the spawner runs before its greenlet
         * (gevent's order: the spawner goes on, the greenlet starts later). */
        spawn_request *req = w->item;
        gev__sync_give(w, NULL, 0);
        w->item = member_spawn(p, req->fn, req->arg);
        w->flags = w->item ? 0 : errno;
    }
}

/* gev_link callback, in the hub: the membership of g ends. */
static void member_done(gev_greenlet *g, void *arg)
{
    (void)g;
    pool_member *m = arg;
    gev_pool *p = m->pool;
    list_remove(&p->live, m);
    list_push(&p->finished, m);
    p->count--;
    serve_slot_waiters(p);
    if (p->count > 0)
        return;
    gev__sync_give_all(&p->kill_waiters, NULL, 0);
    if (!gev__waitq_has_live(&p->join_waiters))
        return;
    gev__sync_give_all(&p->join_waiters, NULL, 0);
    /* Done here, not by the woken joiner: it must not touch the pool. */
    release_finished(p);
}

gev_greenlet *gev_pool_spawn(gev_pool *p, gev_fn fn, void *arg)
{
    if (!p || !fn) {
        errno = EINVAL;
        return NULL;
    }
    GEV__CHECK_OWNER(p->hub, "pool");
    if (has_slot(p))
        return member_spawn(p, fn, arg);
    spawn_request req = { fn, arg };
    gev__waiter w;
    int err = gev__sync_wait(&p->slot_waiters, &w, &req, WAIT_SPAWN, GEV__WAIT_OTHER,
                             GEV_FOREVER);
    if (!err)
        err = w.flags;      /* the hub's spawn for us failed */
    if (err) {
        errno = err;
        return NULL;
    }
    return w.item;
}

int gev_pool_wait_available(gev_pool *p, double timeout)
{
    if (!p)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(p->hub, "pool");
    if (has_slot(p))
        return 0;
    gev__waiter w;
    return gev__sync_result(gev__sync_wait(&p->slot_waiters, &w, NULL, WAIT_SLOT,
                                                     GEV__WAIT_OTHER, timeout));
}

/* ---- joining and killing ------------------------------------------------------- */

/* Wait until the membership count dropped to 0.  A member waiting for its
 * own pool would wait for itself. */
static int wait_empty(gev_pool *p, gev__waitq *q, double timeout)
{
    if (p->count == 0)
        return 0;
    if (is_member(p, gev_current()))
        return EDEADLK;
    gev__waiter w;
    return gev__sync_wait(q, &w, NULL, 0, GEV__WAIT_JOIN, timeout);   /* its members' ends */
}

int gev_pool_join(gev_pool *p, double timeout)
{
    if (!p)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(p->hub, "pool");
    bool was_empty = p->count == 0;
    int err = wait_empty(p, &p->join_waiters, timeout);
    if (!err && was_empty)
        release_finished(p);
    return gev__sync_result(err);
}

/* Deliver a kill to every live member but the caller (a kill reaches a
 * greenlet once: gev_kill twice is harmless).  True if all are dead now. */
static bool kill_members(gev_pool *p)
{
    bool all_dead = true;
    for (pool_member *m = p->live.head; m; m = m->next)
        if (m->g == gev_current() || gev_kill(m->g, 0) < 0)
            all_dead = false;
    return all_dead;
}

/* gev_killall's semantics: timeout 0 only requests. */
int gev_pool_kill(gev_pool *p, double timeout)
{
    if (!p || !gev__timeout_valid(timeout))
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(p->hub, "pool");
    bool all_dead = kill_members(p);
    if (timeout == 0)
        return all_dead ? 0 : gev__fail(ETIMEDOUT);
    return gev__sync_result(wait_empty(p, &p->kill_waiters, timeout));
}

size_t gev_pool_free_count(const gev_pool *p)
{
    if (!p) {
        errno = EINVAL;
        return 0;
    }
    GEV__CHECK_OWNER(p->hub, "pool");
    if (p->size == 0)
        return SIZE_MAX;
    return p->count < p->size ? p->size - p->count : 0;
}

size_t gev_pool_count(const gev_pool *p)
{
    if (!p) {
        errno = EINVAL;
        return 0;
    }
    GEV__CHECK_OWNER(p->hub, "pool");
    return p->count;
}

/* Members that are still linked stop being members: their callback goes,
 * and their records are freed when they end. */
static void detach_members(gev_pool *p)
{
    while (p->live.head) {
        pool_member *m = p->live.head;
        list_remove(&p->live, m);
        gev_unlink(m->g, member_done, m);
        gev_release(m->g);
        free(m);
    }
}

void gev_pool_free(gev_pool *p)
{
    if (!p)
        return;
    GEV__CHECK_OWNER(p->hub, "pool");
    /* Blocked spawners fail first, so none gets a slot freed by the kill. */
    gev__sync_abandon(&p->slot_waiters);
    if (p->count)
        gev_pool_kill(p, GEV_FOREVER);
    detach_members(p);
    release_finished(p);
    gev__sync_abandon(&p->join_waiters);
    gev__sync_abandon(&p->kill_waiters);
    free(p);
}
