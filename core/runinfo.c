/* core/runinfo.c: what a hub can tell about itself, cheaply enough to be
 * always on: gev_stats (counters the hub keeps anyway) and
 * gev_print_run_info (what every greenlet is doing, for a human).
 *
 * Read-only: nothing here changes the hub, the loop or a record (not even
 * a greenlet's lazily made default name), nothing allocates, and the only
 * output is write(2) from a buffer on the stack.  So the table can be
 * printed from anywhere in the hub's thread: a greenlet, a link callback,
 * a signal handler greenlet (GEV_DUMP_SIGNAL), the hub at an EDEADLK
 * (GEV_DEBUG), a debugger's `call`.  The format is documented in gev(3)
 * (COUNTERS AND RUN INFO) and checked by tests/test-runinfo.c: change
 * both with it. */
#include "config.h"
#include <string.h>
#include <unistd.h>
#include "gev.h"           /* the calls this file defines */
#include "hub-internal.h"
#include "out.h"

/* ---- counters ------------------------------------------------------------ */

static void stats_fill(gev_hub *hub, struct gev_stats *st)
{
    gev__stack_stats ss;
    gev__stack_stats_get(&ss);
    *st = (struct gev_stats){
        .switches = __atomic_load_n(&hub->switches, __ATOMIC_RELAXED),
        .spawns = hub->spawns,
        .loop_iterations = gev__loop_iteration(hub->hot.loop),
        .live_greenlets = hub->live,
        .stacks_cached = hub->idle_count + hub->stacks.count,
        .stacks_mapped = ss.guarded + ss.unguarded,
        .stack_bytes_mapped = ss.bytes,
    };
}

int gev_stats(struct gev_stats *st)
{
    if (!st)
        return gev__fail(EINVAL);
    gev_hub *hub = gev__hub();
    if (!hub)
        return -1;              /* ENOMEM, as gev__hub() said */
    stats_fill(hub, st);
    return 0;
}

/* ---- output: a stack buffer and write(2) (core/out.h) -------------------- */

#define OUT_SIZE 4096
#define NAME_SHOWN 64           /* longer names are cut, "..." added */

/* Quoted; '"', '\\' and control characters become '?', so that the line
 * stays one line and the name's end is where the quote is. */
static void put_name(gev__out *o, const gev_greenlet *g)
{
    gev__out_str(o, "\"");
    if (!g->name) {
        gev__out_str(o, "greenlet-");
        gev__out_uint(o, g->id, 1);
    } else {
        size_t i;
        for (i = 0; g->name[i] && i < NAME_SHOWN; i++) {
            unsigned char c = (unsigned char)g->name[i];
            char ch = c < 0x20 || c == 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
            gev__out_bytes(o, &ch, 1);
        }
        if (g->name[i])
            gev__out_str(o, "...");
    }
    gev__out_str(o, "\"");
}

/* ---- the table ------------------------------------------------------------ */

/* What a greenlet is doing, as the table counts it. */
enum row { ROW_RUNNING, ROW_READY, ROW_NEW, ROW_WAITING, ROW_DEAD };

static enum row row_of(const gev_hub *hub, const gev_greenlet *g)
{
    if (g == hub->hot.current)
        return ROW_RUNNING;
    switch (g->state) {
    case GEV__NEW:
        return ROW_NEW;
    case GEV__READY:
        return ROW_READY;
    case GEV__WAITING:
        return ROW_WAITING;
    case GEV__RUNNING:
        return ROW_RUNNING;
    default:
        return ROW_DEAD;
    }
}

/* "waiting on <what>" for the kinds that need no argument of their own. */
static const char *const kind_names[GEV__WAIT_KINDS] = {
    [GEV__WAIT_JOIN] = "join",
    [GEV__WAIT_EVENT] = "event",
    [GEV__WAIT_RESULT] = "result",
    [GEV__WAIT_QUEUE] = "queue",
    [GEV__WAIT_CHANNEL] = "channel",
    [GEV__WAIT_LOCK] = "lock",
    [GEV__WAIT_SEMAPHORE] = "semaphore",
    [GEV__WAIT_THREADPOOL] = "thread pool",
    [GEV__WAIT_SIGNAL] = "signal",
    [GEV__WAIT_CHILD] = "child",
};

static void put_waiting(gev__out *o, const gev_hub *hub, const gev_greenlet *g, gev__nsec now)
{
    unsigned kind = g->wait_kind;
    if (kind == GEV__WAIT_READ || kind == GEV__WAIT_WRITE) {
        gev__out_str(o, "waiting on fd ");
        gev__out_int(o, g->wait_fd);
        gev__out_str(o, kind == GEV__WAIT_READ ? " for read" : " for write");
    } else if (kind == GEV__WAIT_SLEEP) {
        gev__out_str(o, "sleeping");
    } else if (kind < GEV__WAIT_KINDS && kind_names[kind]) {
        gev__out_str(o, "waiting on ");
        gev__out_str(o, kind_names[kind]);
        if (kind == GEV__WAIT_SIGNAL || kind == GEV__WAIT_CHILD) {
            gev__out_str(o, " ");
            gev__out_int(o, g->wait_fd);
        }
    } else if (g->is_main && hub->main_in_run) {
        gev__out_str(o, "waiting in gev_run");
    } else {
        gev__out_str(o, "waiting");
    }
    gev__out_str(o, " for ");
    gev__out_secs(o, now - g->wait_since);
    gev__out_str(o, " s");
    if (g->timer.base.active) {
        gev__out_str(o, kind == GEV__WAIT_SLEEP ? ", wakes in " : ", times out in ");
        gev__out_secs(o, g->timer.deadline - now);
        gev__out_str(o, " s");
    }
}

/* "  id 3 "reader" waiting on fd 7 for read for 0.512 s, spawned by 1" */
static void put_greenlet(gev__out *o, const gev_hub *hub, const gev_greenlet *g, gev__nsec now)
{
    gev__out_str(o, "  id ");
    gev__out_uint(o, g->id, 1);
    gev__out_str(o, " ");
    put_name(o, g);
    gev__out_str(o, " ");
    enum row row = row_of(hub, g);
    if (g->is_hub) {
        /* Its record's state says nothing once it has run (it switches
         * to greenlets without leaving RUNNING): where it is does. */
        gev__out_str(o, g == hub->hot.current ? "running" : g->queued ? "ready" : "idle");
    } else if (row == ROW_WAITING) {
        put_waiting(o, hub, g, now);
    } else {
        static const char *const words[] = { "running", "ready", "new", "waiting", "dead" };
        gev__out_str(o, words[row]);
        if (row == ROW_NEW && g->timer.base.active) {       /* gev_spawn_later */
            gev__out_str(o, ", starts in ");
            gev__out_secs(o, g->timer.deadline - now);
            gev__out_str(o, " s");
        }
    }
    if (g->killed)
        gev__out_str(o, ", killed");
    if (g->shielded)
        gev__out_str(o, ", shielded");
    if (g->parent_id) {
        gev__out_str(o, ", spawned by ");
        gev__out_uint(o, g->parent_id, 1);
    }
    gev__out_str(o, "\n");
}

/* The oldest record of hub->all (which new records join at the head). */
static const gev_greenlet *all_oldest(const gev_hub *hub)
{
    const gev_greenlet *g = hub->all;
    while (g && g->all_next)
        g = g->all_next;
    return g;
}

static void put_header(gev__out *o, const gev_hub *hub)
{
    size_t rows[ROW_DEAD + 1] = { 0 };
    rows[row_of(hub, &hub->main)]++;
    for (const gev_greenlet *g = hub->all; g; g = g->all_next)
        rows[row_of(hub, g)]++;
    gev__out_str(o, "gev: ");
    gev__out_uint(o, rows[ROW_RUNNING] + rows[ROW_READY] + rows[ROW_NEW] + rows[ROW_WAITING], 1);
    static const char *const parts[] = { " greenlets (", " running, ", " ready, ", " new, " };
    for (int r = ROW_RUNNING; r <= ROW_WAITING; r++) {
        gev__out_str(o, parts[r]);
        gev__out_uint(o, rows[r], 1);
    }
    gev__out_str(o, " waiting), loop iteration ");
    gev__out_uint(o, gev__loop_iteration(hub->hot.loop), 1);
    gev__out_str(o, "\n");
}

static void put_kv(gev__out *o, const char *key, uint64_t v)
{
    gev__out_str(o, key);
    gev__out_uint(o, v, 1);
}

static void put_watchers(gev__out *o, const gev_hub *hub)
{
    gev__loop_counts c;
    gev__loop_counts_get(hub->hot.loop, &c);
    put_kv(o, "gev: watchers: io ", c.io);
    put_kv(o, " (fds ", c.fds);
    put_kv(o, "), timers ", c.timers);
    put_kv(o, ", signals ", c.signals);
    put_kv(o, ", children ", c.children);
    put_kv(o, ", async ", c.asyncs);
    put_kv(o, "; referenced ", c.refs);
    gev__out_str(o, "\n");
}

static void put_counters(gev__out *o, gev_hub *hub)
{
    struct gev_stats st;
    stats_fill(hub, &st);
    size_t dead = 0;
    for (const gev_greenlet *g = hub->all; g; g = g->all_next)
        dead += g->state == GEV__DEAD;
    put_kv(o, "gev: counters: switches ", st.switches);
    put_kv(o, ", spawns ", st.spawns);
    put_kv(o, ", finished unreleased ", dead);
    put_kv(o, ", stacks cached ", st.stacks_cached);
    put_kv(o, ", stack bytes mapped ", st.stack_bytes_mapped);
    gev__out_str(o, "\n");
}

static void print_run_info(gev_hub *hub, int fd)
{
    char buf[OUT_SIZE];
    gev__out o = gev__out_to(fd, buf, sizeof buf);
    gev__nsec now = gev__time_monotonic();
    put_header(&o, hub);
    put_greenlet(&o, hub, &hub->main, now);
    put_greenlet(&o, hub, hub->hub_g, now);
    for (const gev_greenlet *g = all_oldest(hub); g; g = g->all_prev)
        if (row_of(hub, g) != ROW_DEAD)
            put_greenlet(&o, hub, g, now);
    put_watchers(&o, hub);
    put_counters(&o, hub);
    gev__out_str(&o, "gev: end of run info\n");
    gev__out_flush(&o);
}

void gev_print_run_info(int fd)
{
    int err = errno;
    gev_hub *hub = gev__hub_peek();
    if (hub) {
        print_run_info(hub, fd);
    } else {
        char buf[OUT_SIZE];
    gev__out o = gev__out_to(fd, buf, sizeof buf);
        gev__out_str(&o, "gev: no hub in this thread\n");
        gev__out_flush(&o);
    }
    errno = err;
}

void gev__runinfo_deadlock(gev_hub *hub)
{
    char buf[OUT_SIZE];
    gev__out o = gev__out_to(STDERR_FILENO, buf, sizeof buf);
    gev__out_str(&o, "gev: GEV_DEBUG: the main greenlet would wait forever, its wait fails "
                "with EDEADLK: no greenlet is ready, and no referenced watcher, "
                "thread-pool job or hub reference is left to wake one\n");
    gev__out_flush(&o);
    print_run_info(hub, STDERR_FILENO);
}
