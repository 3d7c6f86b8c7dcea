/* api/fd.c: the per-hub fd table, the one wait on an fd, and the IO calls
 * on plain descriptors (read, write, close).  See fd.h for the model. */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "fd.h"

_Static_assert(GEV_READ == GEV__READ && GEV_WRITE == GEV__WRITE,
               "public and loop event bits are passed through unchanged");

#define FD_CHUNK GEV__FD_CHUNK
typedef gev__fd_record fd_record;
typedef gev__fd_table fd_table;

/* ---- the table ---------------------------------------------------------- */

static void fd_table_free(gev_hub *hub, void *state)
{
    fd_table *t = state;
    gev__loop *loop = gev__hub_loop(hub);

    /* Every greenlet is gone by now; lazily armed watchers are still
     * linked into the loop, which must not outlive them. */
    if (t->sweep_fd >= 0) {
        gev__io_stop(loop, &t->sweep_io);
        close(t->sweep_fd);
    }
    for (size_t c = 0; c < t->nchunks; c++) {
        for (size_t i = 0; t->chunks[c] && i < FD_CHUNK; i++)
            if (t->chunks[c][i].io.base.active)
                gev__io_stop(loop, &t->chunks[c][i].io);
        free(t->chunks[c]);
    }
    free(t->chunks);
    free(t);
}

static int fd_table_fork(gev_hub *hub, void *state);

/* After fork the loop re-registers active watchers itself; only the
 * sweep's timerfd, shared with the parent, is the child's to replace. */
static const gev__hub_hooks fd_table_hooks = { fd_table_free, fd_table_fork };

static fd_table *fd_table_get(gev_hub *hub)
{
    fd_table *t = gev__hub_slot(hub, GEV__HUB_SLOT_IO);

    if (!t && (t = calloc(1, sizeof *t))) {
        t->sweep_fd = -1;
        gev__hub_set_slot(hub, GEV__HUB_SLOT_IO, t, &fd_table_hooks);
    }
    return t;
}


static fd_record *fd_record_get(fd_table *t, int fd)
{
    size_t c = (size_t)fd / FD_CHUNK;

    if (c >= t->nchunks) {
        size_t n = t->nchunks ? t->nchunks : 4;
        while (n <= c)
            n *= 2;
        fd_record **chunks = realloc(t->chunks, n * sizeof *chunks);
        if (!chunks)
            return NULL;
        memset(chunks + t->nchunks, 0, (n - t->nchunks) * sizeof *chunks);
        t->chunks = chunks;
        t->nchunks = n;
    }
    if (!t->chunks[c] && !(t->chunks[c] = calloc(FD_CHUNK, sizeof(fd_record))))
        return NULL;
    return &t->chunks[c][(size_t)fd % FD_CHUNK];
}

static fd_record *fd_record_of(gev_hub *hub, int fd)
{
    return gev__fd_record_peek(hub, fd);
}

/* The state that belongs to the file, not to the number. */
static void fd_record_forget_file(fd_record *r)
{
    r->read_drained = false;
    r->kind = GEV__FD_KIND_UNKNOWN;
}

bool gev__fd_drained_is_stream(gev__fd_record *r, int fd)
{
    if (r->kind == GEV__FD_KIND_UNKNOWN) {
        int type = 0;
        socklen_t len = sizeof type;
        bool stream = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
                      type == SOCK_STREAM;
        r->kind = stream ? GEV__FD_KIND_STREAM : GEV__FD_KIND_OTHER;
    }
    if (r->kind == GEV__FD_KIND_STREAM)
        return true;
    r->read_drained = false;
    return false;
}

/* ---- the watcher -------------------------------------------------------- */

/* Hands `ev` to the waiter of one direction; returns the events nobody
 * wanted.  A waiter already woken by another source ignores the wake. */
static inline int fd_deliver(gev__waiter *w, int ev)
{
    if (!ev)
        return 0;
    if (!w)
        return ev;
    w->flags |= ev;
    gev__wake(w->g, w->wait_id, 0);
    return 0;
}

/* The fd is being closed.  A waiter that an event already woke, but that
 * has not run yet, is marked too: it must fail with EBADF rather than
 * retry its call on whatever file gets the number next. */
static void fd_record_close_waiters(fd_record *r)
{
    gev__waiter *ws[2] = { r->reader, r->writer };
    for (int i = 0; i < 2; i++) {
        if (!ws[i])
            continue;
        ws[i]->flags |= GEV__ERROR;
        gev__wake(ws[i]->g, ws[i]->wait_id, EBADF);
    }
    /* Cleared now, not when they resume: the number may be reused and
     * waited on before they run, and that must not look busy. */
    r->reader = r->writer = NULL;
}

/* Stop watching the directions `drop` (the watcher is active). */
static void fd_record_drop(gev__loop *loop, fd_record *r, int drop)
{
    int keep = r->io.events & ~drop;
    if (keep == r->io.events)
        return;
    if (keep)
        (void)gev__io_set_events(loop, &r->io, keep);
    else
        gev__io_stop(loop, &r->io);
}

static void fd_io_cb(gev__loop *loop, gev__io *io, int revents)
{
    fd_record *r = io->base.data;

    if (revents & GEV__ERROR) {         /* gev__loop_closing_fd: already stopped */
        fd_record_close_waiters(r);
        return;
    }
    if (revents & GEV__READ)
        r->read_drained = false;        /* something came after the short read */
    int idle = fd_deliver(r->reader, revents & GEV__READ) |
               fd_deliver(r->writer, revents & GEV__WRITE);
    /* Lazy disarm: the first event nobody waits for drops its direction. */
    if (idle)
        fd_record_drop(loop, r, idle);
}

/* Whether the watcher already covers `events`: then a wait costs no
 * syscall, and trusts that the number still names the file it was armed
 * for (the sweep checks). */
static inline bool fd_record_covers(const fd_record *r, int events)
{
    return r->io.base.active && (r->io.events & events) == events;
}

/* Make the watcher cover `events`, with a backend call: the loop gives
 * the backend the new interest, which registers the number afresh if the
 * kernel dropped it (libevent and libev retry a refused MOD as an ADD). */
static int fd_record_arm(gev__loop *loop, fd_record *r, int fd, int events)
{
    if (r->io.base.active)
        return gev__io_set_events(loop, &r->io, r->io.events | events);
    gev__io_init(&r->io, fd_io_cb, fd, events);
    r->io.base.data = r;
    return gev__io_start(loop, &r->io);
}

/* Referenced exactly while somebody waits, so an idle armed watcher never
 * keeps gev_run() alive nor hides a deadlock in main. */
static void fd_record_publish(gev__loop *loop, fd_record *r, gev__waiter *w, int events)
{
    if (events & GEV__READ)
        r->reader = w;
    if (events & GEV__WRITE)
        r->writer = w;
    gev__watcher_set_ref(loop, &r->io.base, true);
}

static void fd_record_unpublish(gev__loop *loop, fd_record *r, gev__waiter *w)
{
    if (r->reader == w)
        r->reader = NULL;
    if (r->writer == w)
        r->writer = NULL;
    if (!r->reader && !r->writer)
        gev__watcher_set_ref(loop, &r->io.base, false);
}

/* ---- the sweep: unverified waits on a number closed behind our back ----- */

/* Long enough that a busy server's sweep costs nothing (it ticks 20 times
 * a second and touches only records waited on since the last tick), short
 * enough that a reused number costs at most two periods of delay. */
#define FD_SWEEP_PERIOD_NS (50 * 1000 * 1000)

/* Somebody has waited on r for a whole sweep period, relying on interest
 * armed before the wait.  The kernel may have dropped it with a file
 * closed by close(2): register the number again.  That is a syscall or
 * two for a wait that is slow anyway, and right whatever the file is now.
 * A number that cannot be watched any more (closed, or now a regular
 * file) is treated as gev_close() would: its waiters fail with EBADF. */
static void fd_record_refresh(gev__loop *loop, fd_record *r)
{
    int fd = r->io.fd;

    if (gev__loop_fd_refresh(loop, fd) < 0) {
        fd_record_forget_file(r);
        gev__loop_closing_fd(loop, fd);
    }
}

/* Start or stop the ticks; false if the timerfd refused. */
static bool fd_sweep_set(fd_table *t, bool on)
{
    const struct timespec period = { 0, on ? FD_SWEEP_PERIOD_NS : 0 };
    const struct itimerspec its = { .it_interval = period, .it_value = period };

    if (timerfd_settime(t->sweep_fd, 0, &its, NULL) < 0)
        return false;
    t->sweep_ticking = on;
    return true;
}

static void fd_sweep_tick(fd_table *t, gev__loop *loop)
{
    for (fd_record **p = &t->sweep_list; *p;) {
        fd_record *r = *p;
        bool waiting = r->reader || r->writer;
        bool same_wait = r->waits == r->seen_waits;
        r->seen_waits = r->waits;
        if (waiting && !same_wait) {
            p = &r->sweep_next;
            continue;
        }
        *p = r->sweep_next;             /* verified now, or nobody waits */
        r->listed = false;
        if (waiting)
            fd_record_refresh(loop, r);
    }
    if (!t->sweep_list)
        (void)fd_sweep_set(t, false);
}

static void fd_sweep_cb(gev__loop *loop, gev__io *io, int revents)
{
    fd_table *t = io->base.data;
    uint64_t expirations;

    if (revents & GEV__ERROR) {         /* somebody gev_close()d our number */
        t->sweep_fd = -1;
        t->sweep_ticking = false;
        return;
    }
    if (read(t->sweep_fd, &expirations, sizeof expirations) > 0)
        fd_sweep_tick(t, loop);
}

/* The sweep's clock is a timerfd, not a loop timer: while any timer is
 * pending, every poll is a timed one, which costs the backend far more
 * than the echo path's whole wait (hundreds of instructions a request
 * under libevent), and an echo server always has a wait listed.  The
 * timerfd sits in epoll like any fd and costs nothing until it ticks. */
static bool fd_sweep_open(gev__loop *loop, fd_table *t)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return false;
    gev__io_init(&t->sweep_io, fd_sweep_cb, fd, GEV__READ);
    t->sweep_io.base.data = t;
    /* It serves the waits, which keep the loop alive themselves. */
    gev__watcher_set_ref(loop, &t->sweep_io.base, false);
    if (gev__io_start(loop, &t->sweep_io) < 0) {
        close(fd);
        return false;
    }
    t->sweep_fd = fd;
    return true;
}

/* The first listing since the list was empty starts the ticks.  Without a
 * timerfd (out of descriptors) the wait is only as before: listed, and
 * swept once the clock can be made at a later listing. */
static __attribute__((noinline)) void fd_sweep_enlist(gev__loop *loop, fd_table *t,
                                                       fd_record *r)
{
    r->listed = true;
    r->sweep_next = t->sweep_list;
    t->sweep_list = r;
    if (t->sweep_ticking)
        return;
    int err = errno;
    if (t->sweep_fd >= 0 || fd_sweep_open(loop, t))
        (void)fd_sweep_set(t, true);
    errno = err;
}

/* A wait that relies on interest armed before it: one increment, and on
 * the sweep's list unless already there (the echo path stays listed). */
static inline void fd_sweep_note(gev__loop *loop, fd_table *t, fd_record *r)
{
    r->waits++;
    if (!r->listed)
        fd_sweep_enlist(loop, t, r);
}

static int fd_table_fork(gev_hub *hub, void *state)
{
    fd_table *t = state;
    gev__loop *loop = gev__hub_loop(hub);

    if (t->sweep_fd < 0)
        return 0;
    gev__io_stop(loop, &t->sweep_io);
    close(t->sweep_fd);
    t->sweep_fd = -1;
    t->sweep_ticking = false;
    if (t->sweep_list && (!fd_sweep_open(loop, t) || !fd_sweep_set(t, true)))
        return -1;
    return 0;
}

/* A wait ended without its event (timeout, kill): drop the directions
 * nobody else waits in now rather than at their next event, so the next
 * wait arms afresh.  Costs nothing on the echo path; it fixes a number
 * reused after a timed-out wait at once, and a loop of waits each shorter
 * than the sweep's period, which the sweep would never see through. */
static void fd_record_disarm_idle(gev__loop *loop, fd_record *r, int events)
{
    int drop = events & ~((r->reader ? GEV__READ : 0) | (r->writer ? GEV__WRITE : 0));
    if (r->io.base.active && drop)
        fd_record_drop(loop, r, drop);
}

/* ---- waiting ------------------------------------------------------------- */

int gev__fd_check(void)
{
    int err = gev__block_check();
    return err == EDEADLK ? 0 : err;
}

/* A wait whose deadline has passed: ready now, or ETIMEDOUT.  poll(2)
 * instead of the loop, so timeout 0 never switches and works in the hub. */
static int fd_poll_now(int fd, int events)
{
    struct pollfd p = { .fd = fd, .events = (short)((events & GEV__READ ? POLLIN : 0) |
                                                    (events & GEV__WRITE ? POLLOUT : 0)) };
    int err = gev__fd_check();
    if (err)
        return gev__fail(err);
    int n;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -1;
    if (p.revents & POLLNVAL)
        return gev__fail(EBADF);
    int ready = 0;
    if (p.revents & (POLLIN | POLLHUP | POLLERR))
        ready |= events & GEV__READ;
    if (p.revents & (POLLOUT | POLLHUP | POLLERR))
        ready |= events & GEV__WRITE;
    return ready ? ready : gev__fail(ETIMEDOUT);
}

/* A wait on fd that ends before it began: its note goes (core/hub.h). */
static __attribute__((cold, noinline)) int fd_wait_not_begun(gev_hub *hub, int rc)
{
    gev__wait_note_for(gev__hot(hub)->current, GEV__WAIT_OTHER, -1);
    return rc;
}

static int fd_wait_in_loop(gev_hub *hub, int fd, int events, gev__nsec deadline)
{
    /* Noted first, while fd and events are at hand anyway: later, fd would
     * have to live across the calls below (a spill on the echo path).
     * Both directions at once (gev_wait_fd) show as a read. */
    gev_greenlet *self = gev__hot(hub)->current;
    gev__wait_note_for(self, events & GEV__READ ? GEV__WAIT_READ : GEV__WAIT_WRITE, fd);
    gev__loop *loop = gev__hub_loop(hub);
    fd_table *t = gev__hub_slot(hub, GEV__HUB_SLOT_IO);
    fd_record *r = fd_record_of(hub, fd);      /* usually there already */

    if (!r && (!(t = fd_table_get(hub)) || !(r = fd_record_get(t, fd))))
        return fd_wait_not_begun(hub, gev__fail(ENOMEM));
    if (((events & GEV__READ) && r->reader) || ((events & GEV__WRITE) && r->writer))
        return fd_wait_not_begun(hub, gev__fail(EBUSY));
    if (fd_record_covers(r, events))
        fd_sweep_note(loop, t, r);
    else if (fd_record_arm(loop, r, fd, events) < 0)  /* EPERM: a regular file, always ready */
        return fd_wait_not_begun(hub, errno == EPERM ? events : -1);
    /* Only what the wakers read (fd_deliver, fd_record_close_waiters):
     * the waiter is on no queue.  w.flags collects the ready events. */
    gev__waiter w = gev__waiter_for(self);
    fd_record_publish(loop, r, &w, events);
    int err = gev__wait_prechecked(deadline);  /* fd_wait_checked checked */
    fd_record_unpublish(loop, r, &w);
    if (__builtin_expect(err != 0, 0)) {
        if (!(w.flags & GEV__ERROR))
            fd_record_disarm_idle(loop, r, events);
        return gev__fail(err);
    }
    if (w.flags & GEV__ERROR)
        return gev__fail(EBADF);    /* closed after the event woke us */
    return w.flags;
}

/* gev__fd_wait once fd, events and the hub are known good. */
static int fd_wait_checked(gev_hub *hub, int fd, int events, gev__nsec deadline)
{
    if (deadline != GEV__FOREVER && deadline <= gev__loop_now(gev__hub_loop(hub)))
        return fd_poll_now(fd, events);
    int err = gev__block_check();
    if (err)
        return gev__fail(err);
    return fd_wait_in_loop(hub, fd, events, deadline);
}

int gev__fd_wait(int fd, int events, gev__nsec deadline)
{
    if (fd < 0)
        return gev__fail(EBADF);
    if (!events || (events & ~(GEV__READ | GEV__WRITE)))
        return gev__fail(EINVAL);
    gev_hub *hub = gev__hub();
    if (!hub)
        return -1;
    return fd_wait_checked(hub, fd, events, deadline);
}

ssize_t gev__fd_do(int fd, gev__fd_op *op)
{
    if (fd < 0)
        return gev__fail(EBADF);
    if (op->n && !op->rbuf && !op->wbuf)
        return gev__fail(EFAULT);
    int err = gev__fd_check();
    if (err)
        return gev__fail(err);
    ssize_t r = op->call(fd, op);     /* the fast path: usually done here */
    return r >= 0 ? r : gev__fd_retry(fd, op);
}

ssize_t gev__fd_retry(int fd, gev__fd_op *op)
{
    for (;;) {
        if (errno != EINTR) {
            if ((errno != EAGAIN && errno != EWOULDBLOCK) || (op->flags & MSG_DONTWAIT))
                return -1;
            /* A zero timeout after the call said "would block" (the accept
             * loop of a server ends this way on every wake-up): no clock
             * read, no poll(2) to learn the same thing. */
            if (!op->have_deadline && op->timeout == 0)
                return gev__fail(ETIMEDOUT);
            if (!op->have_deadline) {
                int err = gev__timeout_deadline(op->timeout, &op->deadline);
                if (err)
                    return gev__fail(err);
                op->have_deadline = true;
            }
            /* fd and the op's events are good, and the caller's check made
             * the hub. */
            if (fd_wait_checked(gev__hub_peek(), fd, op->events, op->deadline) < 0)
                return -1;
        }
        ssize_t r = op->call(fd, op);
        if (r >= 0)
            return r;
    }
}

/* ---- closing ------------------------------------------------------------- */

void gev__fd_closing(int fd)
{
    gev_hub *hub = gev__hub_peek();

    if (!hub || fd < 0)
        return;
    fd_record *r = fd_record_of(hub, fd);
    if (r) {
        fd_record_close_waiters(r);
        fd_record_forget_file(r);
    }
    /* Stops our watcher and everybody else's on this number, and makes the
     * backend forget the fd (gevent #2100, #1504). */
    gev__loop_closing_fd(gev__hub_loop(hub), fd);
}

void gev__fd_fresh(int fd)
{
    gev_hub *hub = gev__hub_peek();
    fd_record *r = hub ? fd_record_of(hub, fd) : NULL;

    /* Still armed under a number the kernel just handed out: the old file
     * was closed behind our back, and its interest must not stick. */
    if (r && r->io.base.active)
        gev__fd_closing(fd);
    else if (r)
        fd_record_forget_file(r);
}

int gev_close(int fd)
{
    if (fd < 0)
        return gev__fail(EBADF);
    gev__fd_closing(fd);
    /* On Linux the fd is released even when close reports EINTR, so a
     * retry could close a number another thread just got. */
    if (close(fd) == 0 || errno == EINTR)
        return 0;
    return -1;
}

/* ---- the calls on plain descriptors ------------------------------------- */

int gev_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int gev_wait_fd(int fd, int events, double timeout)
{
    gev__nsec deadline;
    int err = gev__timeout_deadline(timeout, &deadline);
    return err ? gev__fail(err) : gev__fd_wait(fd, events, deadline);
}

int gev_wait_read(int fd, double timeout) { return gev_wait_fd(fd, GEV_READ, timeout); }
int gev_wait_write(int fd, double timeout) { return gev_wait_fd(fd, GEV_WRITE, timeout); }

static ssize_t op_read(int fd, gev__fd_op *op)
{
    return read(fd, op->rbuf, op->n);
}

/* write(2) to a pipe whose reader is gone raises SIGPIPE.  Block it in this
 * thread only (the disposition is the application's), and take back the
 * signal we caused, unless one was pending already. */
static ssize_t write_without_sigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool was_pending = sigismember(&old, SIGPIPE) && sigpending(&pending) == 0 &&
                       sigismember(&pending, SIGPIPE);
    ssize_t r = write(fd, buf, n);
    int err = errno;
    if (r < 0 && err == EPIPE && !was_pending) {
        const struct timespec zero = { 0, 0 };
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return r;
}

static ssize_t op_write_file(int fd, gev__fd_op *op)
{
    return write_without_sigpipe(fd, op->wbuf, op->n);
}

/* Sockets take MSG_NOSIGNAL, which costs nothing; only other files pay for
 * the signal mask, and only from their first attempt on. */
static ssize_t op_write(int fd, gev__fd_op *op)
{
    ssize_t r = send(fd, op->wbuf, op->n, MSG_NOSIGNAL);

    if (r < 0 && errno == ENOTSOCK) {
        op->call = op_write_file;
        return op_write_file(fd, op);
    }
    return r;
}

ssize_t gev_read(int fd, void *buf, size_t n, double timeout)
{
    gev__fd_op op = { .call = op_read, .events = GEV__READ, .rbuf = buf, .n = n,
                      .timeout = timeout };
    return gev__fd_do(fd, &op);
}

ssize_t gev_write(int fd, const void *buf, size_t n, double timeout)
{
    gev__fd_op op = { .call = op_write, .events = GEV__WRITE, .wbuf = buf, .n = n,
                      .timeout = timeout };
    return gev__fd_do(fd, &op);
}
