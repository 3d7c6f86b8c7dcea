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

/* ---- output: a stack buffer and write(2) --------------------------------- */

#define OUT_SIZE 4096
#define NAME_SHOWN 64           /* longer names are cut, "..." added */

typedef struct out {
    int fd;
    size_t len;
    char buf[OUT_SIZE];
} out;

/* A reader that went away (EPIPE, a full non-blocking pipe) loses the
 * rest: the caller is not told, as with any diagnostic. */
static void out_flush(out *o)
{
    size_t off = 0;
    while (off < o->len) {
        ssize_t n = write(o->fd, o->buf + off, o->len - off);
        if (n > 0)
            off += (size_t)n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    o->len = 0;
}

static void out_bytes(out *o, const char *s, size_t n)
{
    while (n) {
        if (o->len == OUT_SIZE)
            out_flush(o);
        size_t k = OUT_SIZE - o->len < n ? OUT_SIZE - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

static void out_str(out *o, const char *s) { out_bytes(o, s, strlen(s)); }

static void out_u64(out *o, uint64_t v)
{
    char d[20];
    size_t n = sizeof d;
    do
        d[--n] = (char)('0' + v % 10);
    while (v /= 10);
    out_bytes(o, d + n, sizeof d - n);
}

static void out_int(out *o, int v)
{
    if (v < 0)
        out_str(o, "-");
    out_u64(o, v < 0 ? (uint64_t)-(int64_t)v : (uint64_t)v);
}

/* Seconds with three decimals ("0.512"); a negative span (a deadline just
 * passed) shows as 0.000. */
static void out_secs(out *o, gev__nsec ns)
{
    uint64_t ms = ns > 0 ? (uint64_t)ns / 1000000u : 0;
    char frac[5] = { '.', (char)('0' + ms / 100 % 10), (char)('0' + ms / 10 % 10),
                     (char)('0' + ms % 10), '\0' };
    out_u64(o, ms / 1000);
    out_str(o, frac);
}

/* Quoted; '"', '\\' and control characters become '?', so that the line
 * stays one line and the name's end is where the quote is. */
static void out_name(out *o, const gev_greenlet *g)
{
    out_str(o, "\"");
    if (!g->name) {
        out_str(o, "greenlet-");
        out_u64(o, g->id);
    } else {
        size_t i;
        for (i = 0; g->name[i] && i < NAME_SHOWN; i++) {
            unsigned char c = (unsigned char)g->name[i];
            char ch = c < 0x20 || c == 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
            out_bytes(o, &ch, 1);
        }
        if (g->name[i])
            out_str(o, "...");
    }
    out_str(o, "\"");
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

static void put_waiting(out *o, const gev_hub *hub, const gev_greenlet *g, gev__nsec now)
{
    unsigned kind = g->wait_kind;
    if (kind == GEV__WAIT_READ || kind == GEV__WAIT_WRITE) {
        out_str(o, "waiting on fd ");
        out_int(o, g->wait_fd);
        out_str(o, kind == GEV__WAIT_READ ? " for read" : " for write");
    } else if (kind == GEV__WAIT_SLEEP) {
        out_str(o, "sleeping");
    } else if (kind < GEV__WAIT_KINDS && kind_names[kind]) {
        out_str(o, "waiting on ");
        out_str(o, kind_names[kind]);
        if (kind == GEV__WAIT_SIGNAL || kind == GEV__WAIT_CHILD) {
            out_str(o, " ");
            out_int(o, g->wait_fd);
        }
    } else if (g->is_main && hub->main_in_run) {
        out_str(o, "waiting in gev_run");
    } else {
        out_str(o, "waiting");
    }
    out_str(o, " for ");
    out_secs(o, now - g->wait_since);
    out_str(o, " s");
    if (g->timer.base.active) {
        out_str(o, kind == GEV__WAIT_SLEEP ? ", wakes in " : ", times out in ");
        out_secs(o, g->timer.deadline - now);
        out_str(o, " s");
    }
}

/* "  id 3 "reader" waiting on fd 7 for read for 0.512 s, spawned by 1" */
static void put_greenlet(out *o, const gev_hub *hub, const gev_greenlet *g, gev__nsec now)
{
    out_str(o, "  id ");
    out_u64(o, g->id);
    out_str(o, " ");
    out_name(o, g);
    out_str(o, " ");
    enum row row = row_of(hub, g);
    if (g->is_hub) {
        /* Its record's state says nothing once it has run (it switches
         * to greenlets without leaving RUNNING): where it is does. */
        out_str(o, g == hub->hot.current ? "running" : g->queued ? "ready" : "idle");
    } else if (row == ROW_WAITING) {
        put_waiting(o, hub, g, now);
    } else {
        static const char *const words[] = { "running", "ready", "new", "waiting", "dead" };
        out_str(o, words[row]);
        if (row == ROW_NEW && g->timer.base.active) {       /* gev_spawn_later */
            out_str(o, ", starts in ");
            out_secs(o, g->timer.deadline - now);
            out_str(o, " s");
        }
    }
    if (g->killed)
        out_str(o, ", killed");
    if (g->shielded)
        out_str(o, ", shielded");
    if (g->parent_id) {
        out_str(o, ", spawned by ");
        out_u64(o, g->parent_id);
    }
    out_str(o, "\n");
}

/* The oldest record of hub->all (which new records join at the head). */
static const gev_greenlet *all_oldest(const gev_hub *hub)
{
    const gev_greenlet *g = hub->all;
    while (g && g->all_next)
        g = g->all_next;
    return g;
}

static void put_header(out *o, const gev_hub *hub)
{
    size_t rows[ROW_DEAD + 1] = { 0 };
    rows[row_of(hub, &hub->main)]++;
    for (const gev_greenlet *g = hub->all; g; g = g->all_next)
        rows[row_of(hub, g)]++;
    out_str(o, "gev: ");
    out_u64(o, rows[ROW_RUNNING] + rows[ROW_READY] + rows[ROW_NEW] + rows[ROW_WAITING]);
    static const char *const parts[] = { " greenlets (", " running, ", " ready, ", " new, " };
    for (int r = ROW_RUNNING; r <= ROW_WAITING; r++) {
        out_str(o, parts[r]);
        out_u64(o, rows[r]);
    }
    out_str(o, " waiting), loop iteration ");
    out_u64(o, gev__loop_iteration(hub->hot.loop));
    out_str(o, "\n");
}

static void put_kv(out *o, const char *key, uint64_t v)
{
    out_str(o, key);
    out_u64(o, v);
}

static void put_watchers(out *o, const gev_hub *hub)
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
    out_str(o, "\n");
}

static void put_counters(out *o, gev_hub *hub)
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
    out_str(o, "\n");
}

static void print_run_info(gev_hub *hub, int fd)
{
    out o = { .fd = fd };
    gev__nsec now = gev__time_monotonic();
    put_header(&o, hub);
    put_greenlet(&o, hub, &hub->main, now);
    put_greenlet(&o, hub, hub->hub_g, now);
    for (const gev_greenlet *g = all_oldest(hub); g; g = g->all_prev)
        if (row_of(hub, g) != ROW_DEAD)
            put_greenlet(&o, hub, g, now);
    put_watchers(&o, hub);
    put_counters(&o, hub);
    out_str(&o, "gev: end of run info\n");
    out_flush(&o);
}

void gev_print_run_info(int fd)
{
    int err = errno;
    gev_hub *hub = gev__hub_peek();
    if (hub) {
        print_run_info(hub, fd);
    } else {
        out o = { .fd = fd };
        out_str(&o, "gev: no hub in this thread\n");
        out_flush(&o);
    }
    errno = err;
}

void gev__runinfo_deadlock(gev_hub *hub)
{
    out o = { .fd = STDERR_FILENO };
    out_str(&o, "gev: GEV_DEBUG: the main greenlet would wait forever, its wait fails "
                "with EDEADLK: no greenlet is ready, and no referenced watcher, "
                "thread-pool job or hub reference is left to wake one\n");
    out_flush(&o);
    print_run_info(hub, STDERR_FILENO);
}
