/* core/loop.h: the abstract event loop the hub runs on.
 *
 * Two halves, one header (redis' ae is the picture):
 *
 *   Part 1, the loop the core uses.  Implemented once, in core/loop.c, for
 *   every backend: the timer heap, the fd table, async wake-ups, signal and
 *   child multiplexing, reference counting.  It holds what the library
 *   calls and nothing more (no repeating timers, prepare hooks or break:
 *   the hub never needed them).  Because the
 *   core owns timers and dispatch order, both backends behave the same by
 *   construction (equal deadlines fire in start order, no coarse clocks).
 *
 *   Part 2, the backend contract.  Implemented by exactly one file in
 *   backends/ (configure compiles one): per-fd interest on/off, one blocking
 *   poll with a timeout, signals, reinit after fork.  That is all an event
 *   library has to do for us.
 *
 * Threads: a loop belongs to the thread that created it.  The only call that
 * may come from another thread is gev__async_send().
 *
 * Watchers are plain structs owned by the caller (no allocation on the hot
 * path).  A watcher must be stopped before its memory is reused or freed;
 * stopping it inside any callback (its own or another's) guarantees it gets no
 * further callback, and it may be freed right after the stop.
 */
#ifndef GEV_CORE_LOOP_H
#define GEV_CORE_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "dlist.h"

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC). */
typedef int64_t gev__nsec;
#define GEV__NSEC_PER_SEC INT64_C(1000000000)
#define GEV__FOREVER ((gev__nsec)-1)

gev__nsec gev__time_monotonic(void);          /* reads the clock, not cached */
/* A duration to the nearest ns; GEV__FOREVER for one that has no count:
 * negative, NaN, +inf, 2^63 ns or more. */
gev__nsec gev__nsec_from_seconds(double s);

/* IO event bits.  GEV__ERROR is only ever delivered, never watched for: it
 * tells a watcher that its fd is being closed (gev__loop_closing_fd). */
#define GEV__READ  1
#define GEV__WRITE 2
#define GEV__ERROR 4

typedef struct gev__loop gev__loop;

/* ==================================================================== */
/* Part 1: the loop (core/loop.c)                                       */
/* ==================================================================== */

/* Common head of every watcher.  `data` is the caller's; the rest is private
 * to core/loop.c (read `active` if you must, never write it). */
typedef struct gev__watcher {
    void *data;
    bool active;
    bool unref;      /* active but does not keep gev__loop_run() alive */
} gev__watcher;

/* The start of struct gev__loop (core/loop.c): what the inline functions
 * below read.  Private otherwise. */
struct gev__loop_head {
    size_t refs;                /* active watchers not unref'd */
    gev__nsec now;              /* the cached clock (gev__loop_now) */
};

/* Reference counting, libev's ev_ref/ev_unref per watcher: an unref'd
 * watcher still fires but does not make gev__loop_run() return 1, nor
 * gev__loop_alive() true, nor GEV__RUN_ONCE block for it.  Works on any watcher type
 * (pass &w->base), active or not.  Inline: every fd wait turns its
 * watcher's reference on and off. */
static inline void gev__watcher_set_ref(gev__loop *loop, gev__watcher *w, bool ref)
{
    if (w->unref == !ref)
        return;
    if (w->active)
        ((struct gev__loop_head *)(void *)loop)->refs += ref ? 1 : (size_t)-1;
    w->unref = !ref;
}

/* -- the loop ------------------------------------------------------- */

gev__loop *gev__loop_new(void);                 /* NULL + errno */
void       gev__loop_free(gev__loop *loop);     /* watchers must be stopped */

enum {
    GEV__RUN_ONCE    = 1, /* block until something happens (does not block
                             if nothing referenced is active) */
    GEV__RUN_NOWAIT  = 2  /* never block */
};
/* One iteration (the hub runs the loop one iteration at a time):
 *   1. poll the backend: timeout 0 for NOWAIT or when nothing referenced is
 *      active, else until the earliest timer deadline (forever if none);
 *      IO and async callbacks run right after it;
 *   2. the cached `now` is updated; signal callbacks run; child watchers
 *      are reaped;
 *   3. timers due at `now` fire in (deadline, start order); a timer started
 *      during this step never fires in it, whatever its deadline.
 * Returns 1 if referenced watchers are still active, 0 if none, -1 + errno on
 * a backend failure. */
int  gev__loop_run(gev__loop *loop, int mode);
bool gev__loop_alive(const gev__loop *loop);    /* any referenced watcher active */
/* Iterations so far, counted as each begins: its callbacks see the new
 * count.  Read by tests (how often the hub polled) and gev_stats. */
uint64_t gev__loop_iteration(const gev__loop *loop);
/* Active watchers by kind (internal ones included: the loop's own wake-up
 * fd, the hub's keepalive), for gev_print_run_info.  O(fds watched). */
typedef struct gev__loop_counts {
    size_t io;                  /* active IO watchers */
    size_t fds;                 /* distinct fds they watch */
    size_t timers, signals, children, asyncs;
    size_t refs;                /* of all these, the ones keeping the loop alive */
} gev__loop_counts;
void gev__loop_counts_get(const gev__loop *loop, gev__loop_counts *c);

/* The cached clock: read once per iteration, after the poll.  Timers count
 * from it; call gev__loop_update_now() first when a long stretch of work may
 * have made it stale (gevent's sleep does). */
static inline gev__nsec gev__loop_now(const gev__loop *loop)
{
    return ((const struct gev__loop_head *)(const void *)loop)->now;   /* inline: every wait reads it */
}
gev__nsec gev__loop_update_now(gev__loop *loop);

/* In the child after fork(): make the loop usable again (new backend state,
 * new wake-up fd).  Active watchers stay active.  The parent's loop is not
 * touched. */
int gev__loop_reinit(gev__loop *loop);

/* -- IO watchers (level-triggered) --------------------------------- */

typedef struct gev__io gev__io;
typedef void (*gev__io_cb)(gev__loop *loop, gev__io *w, int revents);
struct gev__io {
    gev__watcher base;
    gev__io_cb cb;
    int fd;
    int events;                 /* GEV__READ | GEV__WRITE */
    gev__io *next, *prev;       /* private: the watchers of this fd */
};
/* Any number of watchers may watch one fd; each gets the events it asked
 * for, in the order they were started.  An fd gets at most one callback
 * per watcher per iteration, with the combined bits (revents may hold both
 * GEV__READ and GEV__WRITE): backends collect readiness during the poll and
 * hand it over after it.  Starting or stopping a watcher that is due for its
 * GEV__ERROR call (gev__loop_closing_fd) cancels that call. */
void gev__io_init(gev__io *w, gev__io_cb cb, int fd, int events);
int  gev__io_start(gev__loop *loop, gev__io *w); /* -1 EBADF: fd not open;
                                                    -1 EINVAL: no event bits;
                                                    -1 EPERM: a regular file
                                                    or directory (epoll's rule,
                                                    for both backends) */
void gev__io_stop(gev__loop *loop, gev__io *w);
/* Change the watched events, active or not (stays active; no backend call if
 * the fd's combined interest does not change). */
int  gev__io_set_events(gev__loop *loop, gev__io *w, int events);

/* Call before close(2) on an fd that may be watched: every active watcher
 * of fd is stopped and then called once with GEV__ERROR (plus nothing else),
 * synchronously inside this call, in start order,
 * and the backend forgets the fd, so the number can be reused at once by a
 * new socket and watched again.  Returns the number of watchers woken. */
int gev__loop_closing_fd(gev__loop *loop, int fd);

/* The kernel may have dropped fd's registration behind the loop's back
 * (close(2) without gev__loop_closing_fd, the number reused at once): make
 * the backend forget what it knew and register the watchers' interest
 * again, for whatever file fd names now.  Watchers stay as they are.
 * 0 (also for an fd nobody watches), or -1 + errno (EBADF: fd not open;
 * EPERM: a regular file or directory now), after which only
 * gev__loop_closing_fd may follow. */
int gev__loop_fd_refresh(gev__loop *loop, int fd);

/* -- timers ---------------------------------------------------------- */

typedef struct gev__timer gev__timer;
typedef void (*gev__timer_cb)(gev__loop *loop, gev__timer *t);
struct gev__timer {
    gev__watcher base;
    gev__timer_cb cb;
    gev__nsec deadline;         /* absolute, on the loop's clock */
    uint64_t seq;               /* private: start order, breaks ties */
    size_t heap_index;          /* private: in the heap, or a mark for the run */
    gev__timer *run_next, *run_prev;   /* private: the in-order run */
};
void gev__timer_init(gev__timer *t, gev__timer_cb cb);
/* One-shot: fire once the loop's clock reaches `deadline` (a deadline
 * already past fires on the next iteration), stopped before its callback.
 * If the heap cannot grow the timer is left (or becomes) inactive, errno
 * ENOMEM.  An unref'd timer stays unref'd across stop and start.
 * O(log n), O(1) for a deadline no earlier than the latest one started
 * (the usual case: one timeout for every wait).  Restarting an active
 * timer moves it. */
void gev__timer_start_at(gev__loop *loop, gev__timer *t, gev__nsec deadline);
void gev__timer_stop(gev__loop *loop, gev__timer *t);       /* O(log n) or O(1) */
/* Active timers.  Read by tests and gev__loop_counts_get. */
size_t gev__loop_timer_count(const gev__loop *loop);

/* -- async: the thread-safe wake-up ----------------------------------- */

typedef struct gev__async gev__async;
typedef void (*gev__async_cb)(gev__loop *loop, gev__async *a);
struct gev__async {
    gev__watcher base;
    gev__async_cb cb;
    atomic_int pending;         /* private */
    gev__async *next, *prev;    /* private */
};
void gev__async_init(gev__async *a, gev__async_cb cb);
void gev__async_start(gev__loop *loop, gev__async *a);
void gev__async_stop(gev__loop *loop, gev__async *a);
/* Thread-safe and async-signal-safe.  Sends that arrive before the loop
 * thread runs the callback coalesce into one call. */
void gev__async_send(gev__loop *loop, gev__async *a);

/* -- signals: delivered as callbacks in the loop thread ------------- */
/* A signal raised any number of times during one poll is delivered once
 * in that iteration (POSIX coalesces standard signals; both backends are
 * made to agree), signals in increasing number order, after the IO
 * callbacks and before the timers.  After the last watcher of a signal
 * stops, the signal's disposition is what it was before the first start. */

typedef struct gev__signal gev__signal;
typedef void (*gev__signal_cb)(gev__loop *loop, gev__signal *s);
struct gev__signal {
    gev__watcher base;
    gev__signal_cb cb;
    int signum;
    gev__signal *next, *prev;   /* private */
};
void gev__signal_init(gev__signal *s, gev__signal_cb cb, int signum);
/* -1 EINVAL: bad signal number; -1 EBUSY: another thread's loop already
 * watches that signal (a signal disposition is process-wide).  Under
 * libevent, whose signal pipe is process-wide, only one loop at a time may
 * watch any signals at all: a second loop gets EBUSY for every signal. */
int  gev__signal_start(gev__loop *loop, gev__signal *s);
void gev__signal_stop(gev__loop *loop, gev__signal *s);

/* -- child processes: reaped with waitpid(pid, WNOHANG) on SIGCHLD ---- */

typedef struct gev__child gev__child;
typedef void (*gev__child_cb)(gev__loop *loop, gev__child *c);
struct gev__child {
    gev__watcher base;
    gev__child_cb cb;
    pid_t pid;
    int status;                 /* waitpid status, valid in the callback */
    bool reaped;                /* private: by another watcher of the pid */
    gev__child *next, *prev;    /* private */
};
void gev__child_init(gev__child *c, gev__child_cb cb, pid_t pid);
/* pid must be > 0 (EINVAL otherwise): the loop never reaps children nobody
 * watches.  The watcher stops itself before its callback runs (the child
 * was reaped).  A child that exited before start is reaped on the next
 * iteration. */
int  gev__child_start(gev__loop *loop, gev__child *c);
void gev__child_stop(gev__loop *loop, gev__child *c);

/* ==================================================================== */
/* Part 2: the backend contract (backends/<library>.c, one compiled in) */
/* ==================================================================== */

typedef struct gev__backend gev__backend;

const char *gev__backend_name(void);      /* "libev" or "libevent" */
const char *gev__backend_version(void);   /* the library's run-time version */

/* One per loop.  NULL + errno on failure. */
gev__backend *gev__backend_new(gev__loop *loop);
void gev__backend_free(gev__backend *b);

/* Wait for events for at most `timeout` ns (GEV__FOREVER: no limit, 0: just
 * look) and report each through gev__loop_fd_event() / gev__loop_signal_event().
 * May return early, even from a timed wait with nothing to report: the core
 * polls again for the rest.  0, or -1 + errno on failure. */
int gev__backend_poll(gev__backend *b, gev__nsec timeout);

/* Set the interest in fd to `mask` (GEV__READ|GEV__WRITE, 0 = none).
 * `*slot` is the backend's per-fd state, kept by the core in its fd table:
 * NULL the first time; the backend allocates it on demand.  Level-triggered.
 * -1 + errno if the fd cannot be watched (EBADF, EPERM for regular files). */
int gev__backend_fd_set(gev__backend *b, int fd, void **slot, int mask);
/* fd is about to be closed (or its record dropped): remove it from the
 * backend and free *slot.  After this the same number may be a new file. */
void gev__backend_fd_forget(gev__backend *b, int fd, void **slot);

/* Start or stop delivering signum to this loop. -1 + errno on failure. */
int gev__backend_signal_set(gev__backend *b, int signum, bool on);

/* In the child after fork(). */
int gev__backend_reinit(gev__backend *b);

/* The library's own loop object (struct ev_loop *, struct event_base *),
 * for the escape-hatch headers gev-libev.h / gev-libevent.h. */
void *gev__backend_native(gev__backend *b);
/* The backend of a loop (core/loop.c). */
gev__backend *gev__loop_backend(gev__loop *loop);

/* Called by the backend during gev__backend_poll (core/loop.c).  Both only
 * note what happened; the core delivers after the poll, once per fd (bits
 * combined) and once per signal.  gev__loop_fd_event returns true if fd was
 * not reported yet in this poll (a backend polling in several rounds uses
 * it to tell whether a round found anything new). */
bool gev__loop_fd_event(gev__loop *loop, int fd, int revents);
void gev__loop_signal_event(gev__loop *loop, int signum);

#endif
