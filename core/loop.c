/* core/loop.c: the loop every backend shares (Part 1 of loop.h).
 *
 * The backend only polls fds and signals; timers, dispatch order, async
 * wake-ups and children live here, so both event libraries behave the same
 * by construction.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_EVENTFD_H
#include <sys/eventfd.h>
#endif

#include "loop.h"

/* -- intrusive lists ---------------------------------------------------- */

/* Every watcher list is walked through a cursor: [next, last] is what is
 * left to visit.  Removing a watcher moves the cursor past it, so a callback
 * may stop or free any watcher; watchers started during a walk are appended
 * after `last`, so the walk does not reach them. */
#define LIST(T) struct { T *head, *tail; }
#define CURSOR(T) struct { T *next, *last; }

#define list_push(l, w) GEV__DLIST_APPEND((l)->head, (l)->tail, w, next, prev)
#define list_unlink(l, w) GEV__DLIST_UNLINK((l)->head, (l)->tail, w, next, prev)

#define cursor_skip(c, w) do {                                          \
        if ((c)->next == (w))                                           \
            (c)->next = (c)->last == (w) ? NULL : (w)->next;            \
        else if ((c)->next && (c)->last == (w))                         \
            (c)->last = (w)->prev;                                      \
    } while (0)

#define list_remove(l, c, w) do { cursor_skip(c, w); list_unlink(l, w); } while (0)

#define cursor_begin(c, l) ((c)->next = (l)->head, (c)->last = (l)->tail)
/* Loads the next watcher into w and steps past it; false at the end. */
#define cursor_take(c, w) \
    (((w) = (c)->next) != NULL && ((c)->next = (w) == (c)->last ? NULL : (w)->next, true))

/* -- the loop ------------------------------------------------------------ */

struct fd_rec {
    LIST(gev__io) ios;      /* in start order */
    void *slot;             /* the backend's per-fd state */
    int mask;               /* interest the backend holds now */
    int pending;            /* reported during this poll; on `ready` if set */
    unsigned gen;           /* bumped whenever the number is dropped */
};

/* Watchers stopped by gev__loop_closing_fd that still owe a GEV__ERROR call.
 * It lives on the caller's stack; a start or stop of one of them takes it
 * out, so it is never called after it may have been freed. */
struct closing {
    LIST(gev__io) ios;
    struct closing *up;
};

struct gev__loop {
    struct gev__loop_head head;     /* first: read inline by loop.h */
    gev__backend *backend;
    uint64_t iteration;

    struct fd_rec *fds;
    int *ready;                     /* fds reported during this poll, in order */
    int nfds, nready;
    CURSOR(gev__io) io_cur;
    struct closing *closing;

    struct heap_entry *heap;
    size_t nheap, heap_cap;
    gev__timer *run_head, *run_tail;    /* the in-order run, see timer_insert */
    size_t nrun;
    uint64_t timer_seq;

    LIST(gev__async) asyncs;
    CURSOR(gev__async) async_cur;
    atomic_int async_sent;          /* a wake-up is on its way */
    int wake_rfd, wake_wfd;
    gev__io wake_io;

    LIST(gev__signal) signals[NSIG];
    bool signal_pending[NSIG];      /* reported during this poll */
    struct sigaction signal_saved[NSIG];   /* disposition before we took it */
    bool any_signal_pending;
    CURSOR(gev__signal) signal_cur;

    LIST(gev__child) children;
    CURSOR(gev__child) child_cur;
    gev__signal sigchld;
    bool child_scan;
};

/* Signal dispositions are per process, so a signal can belong to only one
 * loop at a time; this table is the loop's only global state. */
static _Atomic(gev__loop *) signal_owner[NSIG];

/* -- time ------------------------------------------------------------- */

gev__nsec gev__time_monotonic(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (gev__nsec)ts.tv_sec * GEV__NSEC_PER_SEC + ts.tv_nsec;
}

gev__nsec gev__nsec_from_seconds(double s)
{
    double ns = s * 1e9;
    /* Negative, NaN, +inf, or 2^63 ns (292 years) and more: no count of
     * nanoseconds.  Below 2^63 doubles are 1024 apart at most, so adding
     * the half for rounding cannot reach 2^63. */
    if (!(ns >= 0 && ns < 0x1p63))
        return GEV__FOREVER;
    return (gev__nsec)(ns + 0.5);
}

gev__backend *gev__loop_backend(gev__loop *loop) { return loop->backend; }

gev__nsec gev__loop_update_now(gev__loop *loop)
{
    return loop->head.now = gev__time_monotonic();
}

/* -- reference counting ------------------------------------------------ */

static void watcher_on(gev__loop *loop, gev__watcher *w)
{
    w->active = true;
    loop->head.refs += !w->unref;
}

static void watcher_off(gev__loop *loop, gev__watcher *w)
{
    w->active = false;
    loop->head.refs -= !w->unref;
}

_Static_assert(offsetof(struct gev__loop, head) == 0, "the head must come first");

bool gev__loop_alive(const gev__loop *loop) { return loop->head.refs > 0; }

uint64_t gev__loop_iteration(const gev__loop *loop) { return loop->iteration; }

/* -- the fd table -------------------------------------------------------- */

static int fd_reserve(gev__loop *loop, int fd)
{
    if (fd < loop->nfds)
        return 0;
    size_t n = loop->nfds ? (size_t)loop->nfds : 64;
    while (n <= (size_t)fd)
        n *= 2;
    if (n > INT_MAX)
        n = (size_t)fd + 1;
    struct fd_rec *fds = realloc(loop->fds, n * sizeof *fds);
    if (!fds)
        return -1;
    loop->fds = fds;
    memset(fds + loop->nfds, 0, (n - (size_t)loop->nfds) * sizeof *fds);
    /* One slot per fd: an fd is on the ready list at most once, so
     * reporting readiness can never fail for lack of room. */
    int *ready = realloc(loop->ready, n * sizeof *ready);
    if (!ready)
        return -1;
    loop->ready = ready;
    loop->nfds = (int)n;
    return 0;
}

/* Gives the backend the union of the watchers' events.  `force` re-sends
 * it even if unchanged, for when the backend reported events nobody wants. */
static int fd_sync(gev__loop *loop, int fd, bool force)
{
    struct fd_rec *r = &loop->fds[fd];
    int mask = 0;

    for (gev__io *w = r->ios.head; w; w = w->next)
        mask |= w->events;
    if (mask == r->mask && !force)
        return 0;
    if (gev__backend_fd_set(loop->backend, fd, &r->slot, mask) == -1)
        return -1;
    r->mask = mask;
    return 0;
}

static void fds_forget_all(gev__loop *loop)
{
    for (int fd = 0; fd < loop->nfds; fd++)
        if (loop->fds[fd].slot)
            gev__backend_fd_forget(loop->backend, fd, &loop->fds[fd].slot);
}

/* The number is about to name another file: no state may survive under it. */
static void fd_drop(gev__loop *loop, int fd)
{
    struct fd_rec *r = &loop->fds[fd];

    if (r->slot)
        gev__backend_fd_forget(loop->backend, fd, &r->slot);
    *r = (struct fd_rec){ .gen = r->gen + 1 };
}

/* -- IO watchers --------------------------------------------------------- */

void gev__io_init(gev__io *w, gev__io_cb cb, int fd, int events)
{
    /* next/prev are left alone: an inactive watcher may still be queued in
     * a closing frame, and io_start/io_stop need them to take it out. */
    w->base.active = false;
    w->base.unref = false;
    w->cb = cb;
    w->fd = fd;
    w->events = events & (GEV__READ | GEV__WRITE);
}

static void closing_drop(gev__loop *loop, gev__io *w)
{
    for (struct closing *c = loop->closing; c; c = c->up)
        for (gev__io *x = c->ios.head; x; x = x->next)
            if (x == w) {
                list_unlink(&c->ios, w);
                return;
            }
}

static void io_unlink(gev__loop *loop, gev__io *w)
{
    list_remove(&loop->fds[w->fd].ios, &loop->io_cur, w);
    watcher_off(loop, &w->base);
}

/* With interest already armed the fd is known to be fine; otherwise ask
 * (before growing the table for it), since a backend may only notice a bad
 * fd later, during the poll.  Regular files and directories are refused
 * here for both backends alike: epoll rejects them (libevent would also log
 * a warning), while libev would fake them as always ready. */
static int fd_check_watchable(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == -1)
        return -1;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int gev__io_start(gev__loop *loop, gev__io *w)
{
    if (loop->closing)
        closing_drop(loop, w);
    if (w->base.active)
        return 0;
    if (!(w->events & (GEV__READ | GEV__WRITE))) {
        errno = EINVAL;
        return -1;
    }
    if (w->fd < 0) {
        errno = EBADF;
        return -1;
    }
    bool armed = w->fd < loop->nfds && loop->fds[w->fd].mask;
    if (!armed && fd_check_watchable(w->fd) == -1)
        return -1;
    if (fd_reserve(loop, w->fd) == -1)
        return -1;
    list_push(&loop->fds[w->fd].ios, w);
    watcher_on(loop, &w->base);
    if (fd_sync(loop, w->fd, false) == 0)
        return 0;
    int err = errno;
    io_unlink(loop, w);
    errno = err;
    return -1;
}

void gev__io_stop(gev__loop *loop, gev__io *w)
{
    if (loop->closing)
        closing_drop(loop, w);
    if (!w->base.active)
        return;
    io_unlink(loop, w);
    /* Lowering interest fails only if the fd is gone already; an event that
     * still arrives is lowered again in gev__loop_fd_event. */
    (void)fd_sync(loop, w->fd, false);
}

int gev__io_set_events(gev__loop *loop, gev__io *w, int events)
{
    int old = w->events;

    events &= GEV__READ | GEV__WRITE;
    if (!events) {
        errno = EINVAL;
        return -1;
    }
    w->events = events;
    if (!w->base.active || fd_sync(loop, w->fd, false) == 0)
        return 0;
    w->events = old;
    return -1;
}

/* Readiness is only noted during the poll and delivered after it, once per
 * fd with the combined bits: libevent reports each direction separately,
 * libev both at once, and a backend may poll in several rounds. */
bool gev__loop_fd_event(gev__loop *loop, int fd, int revents)
{
    if (fd < 0 || fd >= loop->nfds || !revents)
        return false;
    struct fd_rec *r = &loop->fds[fd];
    bool first = !r->pending;
    if (first)
        loop->ready[loop->nready++] = fd;
    r->pending |= revents;
    return first;
}

static void fd_dispatch(gev__loop *loop, int fd, int revents)
{
    /* The table may move (realloc) or the number may be closed and reused
     * by any callback: hold the index and the generation, never a pointer. */
    unsigned gen = loop->fds[fd].gen;
    bool wanted = false;
    gev__io *w;

    for (cursor_begin(&loop->io_cur, &loop->fds[fd].ios); cursor_take(&loop->io_cur, w);) {
        int ev = revents & w->events;
        if (!ev)
            continue;
        wanted = true;
        w->cb(loop, w, ev);
        if (loop->fds[fd].gen != gen) {
            loop->io_cur.next = NULL;
            return;
        }
    }
    /* Level-triggered: unwanted readiness would be reported on every poll. */
    if (!wanted)
        (void)fd_sync(loop, fd, true);
}

static void fds_dispatch(gev__loop *loop)
{
    /* A dropped fd (closed by an earlier callback) has no pending bits. */
    for (int i = 0; i < loop->nready; i++) {
        int fd = loop->ready[i];
        int revents = loop->fds[fd].pending;
        loop->fds[fd].pending = 0;
        if (revents)
            fd_dispatch(loop, fd, revents);
    }
    loop->nready = 0;
}

static void closing_pop(gev__loop *loop, struct closing *c)
{
    /* Frames can live on different greenlet stacks, so they need not end
     * in the order they began. */
    struct closing **p = &loop->closing;

    while (*p != c)
        p = &(*p)->up;
    *p = c->up;
}

int gev__loop_closing_fd(gev__loop *loop, int fd)
{
    struct closing c = { .up = loop->closing };
    gev__io *w;
    int woken = 0;

    if (fd < 0 || fd >= loop->nfds)
        return 0;
    while ((w = loop->fds[fd].ios.head)) {
        io_unlink(loop, w);
        list_push(&c.ios, w);
    }
    fd_drop(loop, fd);
    loop->closing = &c;
    while ((w = c.ios.head)) {
        list_unlink(&c.ios, w);
        woken++;
        w->cb(loop, w, GEV__ERROR);
    }
    closing_pop(loop, &c);
    return woken;
}

int gev__loop_fd_refresh(gev__loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->nfds || !loop->fds[fd].ios.head)
        return 0;
    /* Asked first, as gev__io_start does: the backend must not learn of a
     * bad fd or a regular file only in its poll (libevent would log). */
    if (fd_check_watchable(fd) == -1)
        return -1;
    struct fd_rec *r = &loop->fds[fd];
    if (r->slot)
        gev__backend_fd_forget(loop->backend, fd, &r->slot);
    r->mask = 0;
    return fd_sync(loop, fd, false);
}

/* -- timers: a 4-ary min-heap on (deadline, seq) ---------------------- */

/* Each entry carries its timer's key, so sifting compares within the
 * array instead of loading one timer (one cache line elsewhere) per
 * comparison.  Four children per node (as libev): half the levels of a
 * binary heap, so half the timers whose heap_index a sift rewrites, and a
 * node's children sit side by side. */
#define HEAP_ARITY 4
#define HEAP_PARENT(i) (((i) - 1) / HEAP_ARITY)
struct heap_entry {
    gev__nsec deadline;
    uint64_t seq;
    gev__timer *t;
};

/* The firing order: deadline, then start order. */
static bool key_before(gev__nsec da, uint64_t sa, gev__nsec db, uint64_t sb)
{
    return da < db || (da == db && sa < sb);
}

static bool entry_before(const struct heap_entry *a, const struct heap_entry *b)
{
    return key_before(a->deadline, a->seq, b->deadline, b->seq);
}

static void heap_put(gev__loop *loop, size_t i, struct heap_entry e)
{
    loop->heap[i] = e;
    e.t->heap_index = i;
}

static void heap_up(gev__loop *loop, size_t i)
{
    struct heap_entry e = loop->heap[i];

    while (i > 0 && entry_before(&e, &loop->heap[HEAP_PARENT(i)])) {
        heap_put(loop, i, loop->heap[HEAP_PARENT(i)]);
        i = HEAP_PARENT(i);
    }
    heap_put(loop, i, e);
}

static void heap_down(gev__loop *loop, size_t i)
{
    struct heap_entry e = loop->heap[i];

    for (;;) {
        size_t first = HEAP_ARITY * i + 1, c = first;
        if (first >= loop->nheap)
            break;
        for (size_t k = first + 1; k < first + HEAP_ARITY && k < loop->nheap; k++)
            if (entry_before(&loop->heap[k], &loop->heap[c]))
                c = k;
        if (!entry_before(&loop->heap[c], &e))
            break;
        heap_put(loop, i, loop->heap[c]);
        i = c;
    }
    heap_put(loop, i, e);
}

static void heap_fix(gev__loop *loop, size_t i)
{
    if (i > 0 && entry_before(&loop->heap[i], &loop->heap[HEAP_PARENT(i)]))
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

static int heap_reserve(gev__loop *loop)
{
    if (loop->nheap < loop->heap_cap)
        return 0;
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    struct heap_entry *heap = realloc(loop->heap, cap * sizeof *heap);
    if (!heap)
        return -1;
    loop->heap = heap;
    loop->heap_cap = cap;
    return 0;
}

/* -- timers: the heap and the in-order run ------------------------------ */

/* Most timers are the timeouts of waits, and most waits of a program use
 * the same timeout, so deadlines mostly come in increasing order.  A timer
 * whose (deadline, seq) is no earlier than the last one of the run is
 * appended to the run, a list in firing order: O(1) to add and to remove,
 * where the heap would sift twice.  Anything else goes to the heap.  The
 * next timer is the earlier of the run's head and the heap's top. */
#define TIMER_IN_RUN SIZE_MAX

static bool timer_before(const gev__timer *a, const gev__timer *b)
{
    return key_before(a->deadline, a->seq, b->deadline, b->seq);
}

static int timer_insert(gev__loop *loop, gev__timer *t)
{
    if (!loop->run_tail || !timer_before(t, loop->run_tail)) {
        t->heap_index = TIMER_IN_RUN;
        GEV__DLIST_APPEND(loop->run_head, loop->run_tail, t, run_next, run_prev);
        loop->nrun++;
        return 0;
    }
    if (heap_reserve(loop) == -1)
        return -1;
    heap_put(loop, loop->nheap++, (struct heap_entry){ t->deadline, t->seq, t });
    heap_up(loop, t->heap_index);
    return 0;
}

static void timer_remove(gev__loop *loop, gev__timer *t)
{
    if (t->heap_index == TIMER_IN_RUN) {
        GEV__DLIST_UNLINK(loop->run_head, loop->run_tail, t, run_next, run_prev);
        loop->nrun--;
        return;
    }
    size_t i = t->heap_index;
    struct heap_entry last = loop->heap[--loop->nheap];
    if (i < loop->nheap) {
        heap_put(loop, i, last);
        heap_fix(loop, i);
    }
}

/* The timer that fires next, or NULL. */
static gev__timer *timer_first(const gev__loop *loop)
{
    gev__timer *top = loop->nheap ? loop->heap[0].t : NULL;
    if (!loop->run_head || (top && timer_before(top, loop->run_head)))
        return top;
    return loop->run_head;
}

/* A fresh seq at every (re)start is what orders equal deadlines by start
 * and keeps timers started during dispatch out of that dispatch. */
static void timer_arm(gev__loop *loop, gev__timer *t, gev__nsec deadline)
{
    bool was_active = t->base.active;
    if (was_active)
        timer_remove(loop, t);
    t->deadline = deadline;
    t->seq = ++loop->timer_seq;
    if (timer_insert(loop, t) == -1) {
        /* ENOMEM (only a move from the run to a full heap, or a new timer,
         * can need room): the timer is stopped. */
        if (was_active)
            watcher_off(loop, &t->base);
        return;
    }
    if (!was_active)
        watcher_on(loop, &t->base);
}

void gev__timer_init(gev__timer *t, gev__timer_cb cb)
{
    t->base.active = false;
    t->base.unref = false;
    t->cb = cb;
    t->deadline = 0;
}

void gev__timer_start_at(gev__loop *loop, gev__timer *t, gev__nsec deadline)
{
    timer_arm(loop, t, deadline);
}

void gev__timer_stop(gev__loop *loop, gev__timer *t)
{
    if (!t->base.active)
        return;
    timer_remove(loop, t);
    watcher_off(loop, &t->base);
}

size_t gev__loop_timer_count(const gev__loop *loop) { return loop->nheap + loop->nrun; }

/* The loop's own plumbing (its wake-up fd, its SIGCHLD watcher) is left
 * out: the counts are of what the hub and the modules started. */
void gev__loop_counts_get(const gev__loop *loop, gev__loop_counts *c)
{
    *c = (gev__loop_counts){ .timers = gev__loop_timer_count(loop), .refs = loop->head.refs };
    for (int fd = 0; fd < loop->nfds; fd++) {
        size_t n = 0;
        for (const gev__io *w = loop->fds[fd].ios.head; w; w = w->next)
            n += w != &loop->wake_io;
        c->io += n;
        c->fds += n > 0;
    }
    for (int sig = 1; sig < NSIG; sig++)
        for (const gev__signal *s = loop->signals[sig].head; s; s = s->next)
            c->signals += s != &loop->sigchld;
    for (const gev__child *ch = loop->children.head; ch; ch = ch->next)
        c->children++;
    for (const gev__async *a = loop->asyncs.head; a; a = a->next)
        c->asyncs++;
}

static void timers_run(gev__loop *loop)
{
    uint64_t started_before = loop->timer_seq;

    gev__timer *t;
    while ((t = timer_first(loop))) {
        /* Stopping at the first ineligible timer keeps (deadline, seq) order:
         * every other timer comes after it. */
        if (t->deadline > loop->head.now || t->seq > started_before)
            return;
        gev__timer_stop(loop, t);
        t->cb(loop, t);
    }
}

/* -- async ---------------------------------------------------------------- */

static void wake_write(gev__loop *loop)
{
    uint64_t one = 1;

    /* EAGAIN means a wake-up is already queued, which is all we want;
     * -1: reinit could not reopen it (gev_reinit failed). */
    if (loop->wake_wfd >= 0 && write(loop->wake_wfd, &one, sizeof one) < 0) {
    }
}

static void wake_drain(gev__loop *loop)
{
    char buf[64];

    while (read(loop->wake_rfd, buf, sizeof buf) == (ssize_t)sizeof buf) {
    }
}

static void wake_cb(gev__loop *loop, gev__io *w, int revents)
{
    gev__async *a;

    /* Drain, then clear the flag, then look: a send that lands after the
     * flag is cleared writes again, so none is lost. */
    wake_drain(loop);
    atomic_store(&loop->async_sent, 0);
    for (cursor_begin(&loop->async_cur, &loop->asyncs); cursor_take(&loop->async_cur, a);)
        if (atomic_exchange(&a->pending, 0))
            a->cb(loop, a);
}

static int wake_pipe(gev__loop *loop)
{
#ifdef HAVE_SYS_EVENTFD_H
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd == -1)
        return -1;
    loop->wake_rfd = loop->wake_wfd = fd;
#else
    int p[2];
    if (pipe(p) == -1)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    loop->wake_rfd = p[0];
    loop->wake_wfd = p[1];
#endif
    return 0;
}

/* -1 once closed, so no later write or close reaches a file that reused
 * the number. */
static void wake_fds_close(gev__loop *loop)
{
    close(loop->wake_rfd);
    if (loop->wake_wfd != loop->wake_rfd)
        close(loop->wake_wfd);
    loop->wake_rfd = loop->wake_wfd = -1;
}

static void wake_close(gev__loop *loop)
{
    if (loop->wake_rfd < 0)
        return;
    gev__io_stop(loop, &loop->wake_io);
    fd_drop(loop, loop->wake_rfd);
    wake_fds_close(loop);
}

static int wake_open(gev__loop *loop)
{
    if (wake_pipe(loop) == -1)
        return -1;
    gev__io_init(&loop->wake_io, wake_cb, loop->wake_rfd, GEV__READ);
    loop->wake_io.base.unref = true;   /* async watchers hold the reference */
    if (gev__io_start(loop, &loop->wake_io) == -1) {
        int err = errno;
        wake_fds_close(loop);
        errno = err;
        return -1;
    }
    /* After fork a send may have been pending on the old, shared fd. */
    if (atomic_load(&loop->async_sent))
        wake_write(loop);
    return 0;
}

void gev__async_init(gev__async *a, gev__async_cb cb)
{
    a->base.active = false;
    a->base.unref = false;
    a->cb = cb;
    atomic_init(&a->pending, 0);
}

void gev__async_start(gev__loop *loop, gev__async *a)
{
    if (a->base.active)
        return;
    list_push(&loop->asyncs, a);
    watcher_on(loop, &a->base);
    /* A send that came while the watcher was stopped is not lost. */
    if (atomic_load(&a->pending) && !atomic_exchange(&loop->async_sent, 1))
        wake_write(loop);
}

void gev__async_stop(gev__loop *loop, gev__async *a)
{
    if (!a->base.active)
        return;
    list_remove(&loop->asyncs, &loop->async_cur, a);
    watcher_off(loop, &a->base);
}

void gev__async_send(gev__loop *loop, gev__async *a)
{
    int err = errno;                /* we may be in a signal handler */

    atomic_store(&a->pending, 1);
    if (!atomic_exchange(&loop->async_sent, 1))
        wake_write(loop);
    errno = err;
}

/* -- signals ------------------------------------------------------------ */

void gev__signal_init(gev__signal *s, gev__signal_cb cb, int signum)
{
    s->base.active = false;
    s->base.unref = false;
    s->cb = cb;
    s->signum = signum;
}

static bool signum_valid(int sig)
{
    struct sigaction sa;

    /* sigaction also refuses the numbers libc keeps for itself. */
    return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP &&
           sigaction(sig, NULL, &sa) == 0;
}

static int signal_claim(gev__loop *loop, int sig)
{
    gev__loop *none = NULL;

    if (!atomic_compare_exchange_strong(&signal_owner[sig], &none, loop)) {
        errno = EBUSY;
        return -1;
    }
    /* Kept so the last stop gives the program its own handler back, under
     * both backends (libev alone would leave SIG_DFL). */
    sigaction(sig, NULL, &loop->signal_saved[sig]);
    if (gev__backend_signal_set(loop->backend, sig, true) == 0)
        return 0;
    int err = errno;
    atomic_store(&signal_owner[sig], NULL);
    errno = err;
    return -1;
}

int gev__signal_start(gev__loop *loop, gev__signal *s)
{
    if (s->base.active)
        return 0;
    if (!signum_valid(s->signum)) {
        errno = EINVAL;
        return -1;
    }
    if (!loop->signals[s->signum].head && signal_claim(loop, s->signum) == -1)
        return -1;
    list_push(&loop->signals[s->signum], s);
    watcher_on(loop, &s->base);
    return 0;
}

void gev__signal_stop(gev__loop *loop, gev__signal *s)
{
    if (!s->base.active)
        return;
    list_remove(&loop->signals[s->signum], &loop->signal_cur, s);
    watcher_off(loop, &s->base);
    if (loop->signals[s->signum].head)
        return;
    (void)gev__backend_signal_set(loop->backend, s->signum, false);
    sigaction(s->signum, &loop->signal_saved[s->signum], NULL);
    atomic_store(&signal_owner[s->signum], NULL);
}

/* Signals are only noted during the poll and delivered after it, once per
 * signal per iteration in signal-number order: libevent would call once per
 * raise and libev once per iteration, and POSIX coalesces them anyway. */
void gev__loop_signal_event(gev__loop *loop, int signum)
{
    if (signum <= 0 || signum >= NSIG)
        return;
    loop->signal_pending[signum] = true;
    loop->any_signal_pending = true;
}

static void signals_run(gev__loop *loop)
{
    gev__signal *s;

    loop->any_signal_pending = false;
    for (int signum = 1; signum < NSIG; signum++) {
        if (!loop->signal_pending[signum])
            continue;
        loop->signal_pending[signum] = false;
        for (cursor_begin(&loop->signal_cur, &loop->signals[signum]); cursor_take(&loop->signal_cur, s);)
            s->cb(loop, s);
    }
}

/* -- children ----------------------------------------------------------- */

void gev__child_init(gev__child *c, gev__child_cb cb, pid_t pid)
{
    c->base.active = false;
    c->base.unref = false;
    c->cb = cb;
    c->pid = pid;
    c->status = 0;
    c->reaped = false;
}

static void sigchld_cb(gev__loop *loop, gev__signal *s)
{
    loop->child_scan = true;
}

int gev__child_start(gev__loop *loop, gev__child *c)
{
    if (c->base.active)
        return 0;
    /* Only one pid each: waiting for "any child" would reap children that
     * other code is waiting for. */
    if (c->pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (!loop->children.head && gev__signal_start(loop, &loop->sigchld) == -1)
        return -1;
    c->reaped = false;
    list_push(&loop->children, c);
    watcher_on(loop, &c->base);
    loop->child_scan = true;        /* it may have exited already */
    return 0;
}

void gev__child_stop(gev__loop *loop, gev__child *c)
{
    if (!c->base.active)
        return;
    list_remove(&loop->children, &loop->child_cur, c);
    watcher_off(loop, &c->base);
    if (!loop->children.head)
        gev__signal_stop(loop, &loop->sigchld);
}

static void children_reap(gev__loop *loop)
{
    gev__child *c;

    loop->child_scan = false;
    for (cursor_begin(&loop->child_cur, &loop->children); cursor_take(&loop->child_cur, c);) {
        if (!c->reaped) {
            if (waitpid(c->pid, &c->status, WNOHANG) != c->pid)
                continue;
            /* The pid's other watchers end too: waitpid will not see it
             * again. */
            for (gev__child *x = c->next; x; x = x->next)
                if (x->pid == c->pid) {
                    x->status = c->status;
                    x->reaped = true;
                }
        }
        gev__child_stop(loop, c);
        c->cb(loop, c);
    }
}

/* -- create, run, fork, free ---------------------------------------------- */

gev__loop *gev__loop_new(void)
{
    gev__loop *loop = calloc(1, sizeof *loop);

    if (!loop)
        return NULL;
    atomic_init(&loop->async_sent, 0);
    loop->wake_rfd = loop->wake_wfd = -1;
    loop->head.now = gev__time_monotonic();
    gev__signal_init(&loop->sigchld, sigchld_cb, SIGCHLD);
    loop->sigchld.base.unref = true;   /* child watchers hold the reference */
    loop->backend = gev__backend_new(loop);
    if (loop->backend && wake_open(loop) == 0)
        return loop;
    int err = errno;
    if (loop->backend) {
        fds_forget_all(loop);
        gev__backend_free(loop->backend);
    }
    free(loop->fds);
    free(loop->ready);
    free(loop);
    errno = err;
    return NULL;
}

void gev__loop_free(gev__loop *loop)
{
    if (!loop)
        return;
    gev__signal_stop(loop, &loop->sigchld);
    wake_close(loop);
    fds_forget_all(loop);
    gev__backend_free(loop->backend);
    for (int sig = 1; sig < NSIG; sig++) {
        gev__loop *mine = loop;
        atomic_compare_exchange_strong(&signal_owner[sig], &mine, NULL);
    }
    free(loop->fds);
    free(loop->ready);
    free(loop->heap);
    free(loop);
}

/* The longest single backend wait: a timer further off is waited for in
 * several (gev__nsec_from_seconds lets deadlines reach 292 years). */
#define POLL_MAX_NS (3600 * GEV__NSEC_PER_SEC)

static gev__nsec poll_timeout(const gev__loop *loop, int mode)
{
    if (mode == GEV__RUN_NOWAIT || loop->head.refs == 0 || loop->child_scan)
        return 0;
    const gev__timer *first = timer_first(loop);
    if (!first)
        return GEV__FOREVER;
    /* A fresh clock: callbacks since the last poll may have taken a while. */
    gev__nsec now = gev__time_monotonic();
    if (first->deadline <= now)
        return 0;
    /* Capped, so that a backend never converts a count near INT64_MAX
     * (libevent rounds up to microseconds); poll_backend polls again. */
    gev__nsec left = first->deadline - now;
    return left < POLL_MAX_NS ? left : POLL_MAX_NS;
}

/* A backend may end a timed wait early with nothing to report: libev ends
 * its round when a signal it does not watch interrupts the wait, libevent
 * counts its timeout on a coarse clock that lags by up to a tick.  Wait
 * out the rest here, so one iteration with a timer is enough for it to
 * fire under either. */
static int poll_backend(gev__loop *loop, int mode)
{
    gev__nsec timeout = poll_timeout(loop, mode);
    for (;;) {
        if (gev__backend_poll(loop->backend, timeout) == -1)
            return -1;
        if (timeout == 0 || timeout == GEV__FOREVER || loop->nready > 0
            || loop->any_signal_pending)
            return 0;
        if ((timeout = poll_timeout(loop, mode)) == 0)
            return 0;
    }
}

static int loop_iterate(gev__loop *loop, int mode)
{
    loop->iteration++;
    if (poll_backend(loop, mode) == -1)
        return -1;
    fds_dispatch(loop);
    loop->head.now = gev__time_monotonic();
    if (loop->any_signal_pending)
        signals_run(loop);
    if (loop->child_scan)
        children_reap(loop);
    timers_run(loop);
    return 0;
}

int gev__loop_run(gev__loop *loop, int mode)
{
    if (loop_iterate(loop, mode) == -1)
        return -1;
    return loop->head.refs > 0;
}

/* The backend may come back from reinit with an empty kernel set, so every
 * armed fd is handed to it again from scratch. */
static int fds_rearm(gev__loop *loop)
{
    int rc = 0, err = 0;

    for (int fd = 0; fd < loop->nfds; fd++) {
        struct fd_rec *r = &loop->fds[fd];
        if (r->slot)
            gev__backend_fd_forget(loop->backend, fd, &r->slot);
        r->slot = NULL;
        r->mask = 0;
        if (r->ios.head && fd_sync(loop, fd, false) == -1 && rc == 0) {
            rc = -1;
            err = errno;
        }
    }
    errno = err;
    return rc;
}

int gev__loop_reinit(gev__loop *loop)
{
    if (gev__backend_reinit(loop->backend) == -1)
        return -1;
    /* The eventfd is shared with the parent: a send there would wake both.
     * Signals need no work: both libraries keep their handlers across fork
     * and reinit, and turning them off and on would open a window with the
     * default disposition. */
    wake_close(loop);
    int rc = fds_rearm(loop);
    int err = errno;
    if (wake_open(loop) == -1)
        return -1;
    errno = err;
    return rc;
}
