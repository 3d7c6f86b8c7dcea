/* gev.h: greenlets on an event loop, gevent's model in C.
 *
 * One header for everything.  Conventions for every function:
 *  - Errors are POSIX style: -1 (or NULL) with errno set, just before
 *    returning (after any switch).  Success is 0 or a non-negative count.
 *  - Timeouts are relative seconds.  GEV_FOREVER waits without limit, and
 *    so does every negative value, INFINITY and every value too large to
 *    count in nanoseconds (1e10, DBL_MAX): none expires early or wraps.
 *    NaN fails with EINVAL (NULL + EINVAL for gev_spawn_later and
 *    gev_timeout_start; EAI_SYSTEM + EINVAL for gev_getaddrinfo).  0 (and
 *    -0.0) does not wait: the call succeeds if it can complete at once,
 *    else fails with ETIMEDOUT; a tiny positive value has expired when the
 *    wait would start.  A call that completes without waiting (ready data,
 *    a free unit) may succeed before it looks at its timeout; one with an
 *    effect before its wait (a kill, a stop) checks it first.
 *  - Once a greenlet was killed, its current blocking call and every later
 *    one fail at once with ECANCELED (held back while it is shielded:
 *    gev_shield).
 *  - A blocking call from hub context (a link callback) fails with EDEADLK,
 *    and so does a wait in the main greenlet that nothing can ever end.
 *  - Each thread's hub is created on first use; objects belong to the thread
 *    that made them.  Only functions marked thread-safe cross threads.
 *  - Misuse C cannot report (a handle released twice or used after its
 *    release, a timeout cancelled twice, another thread's object) never acts
 *    on another object while gev can tell; what each call does then is said
 *    next to it.  With GEV_DEBUG=1 in the environment (read when the first
 *    hub is made) each one is detected and aborts after one line on stderr,
 *    "gev: <call>: <what>" (see MISUSE in gev(3)).
 * See gev(3) for the manual.
 */
#ifndef GEV_H
#define GEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>

#if defined(GEV_BUILDING) && defined(__GNUC__)
#  define GEV_API __attribute__((visibility("default")))
#else
#  define GEV_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define GEV_VERSION_MAJOR 0
#define GEV_VERSION_MINOR 1
#define GEV_VERSION_PATCH 0

#define GEV_FOREVER (-1.0)

/* ------------------------------------------------------------------ */
/* Library and hub                                                     */
/* ------------------------------------------------------------------ */

GEV_API const char *gev_version(void);          /* "MAJOR.MINOR.PATCH" */
GEV_API const char *gev_backend(void);          /* "libev" or "libevent" */
GEV_API const char *gev_backend_version(void);  /* the event library's run-time version */

/* From the main greenlet: run until no greenlet is alive and no referenced
 * watcher, thread-pool job, queued gev_call_threadsafe call or
 * gev_hub_ref reference is left (0), or until timeout (-1, ETIMEDOUT).
 * EINVAL from another greenlet (or timeout NaN), EDEADLK from hub
 * context. */
GEV_API int  gev_run(double timeout);
/* In the child after fork(): make this thread's hub usable again. */
GEV_API int  gev_reinit(void);
/* Kill every greenlet left (each runs its cleanup), free this thread's hub.
 * The next gev call creates a fresh one. */
GEV_API void gev_shutdown(void);
/* A thread's hub, as a handle other threads can use: only
 * gev_call_threadsafe, gev_hub_ref and gev_hub_unref take it. */
typedef struct gev_hub gev_hub;
/* The calling thread's hub (created if needed); NULL + ENOMEM if it cannot
 * be made. */
GEV_API gev_hub *gev_hub_current(void);
/* Thread-safe: fn runs in hub's thread (hub context), which wakes up.
 * Until it ran, the call is work in flight: a wait in main is not EDEADLK.
 * Undefined on a hub that was shut down; calls still queued at
 * gev_shutdown run during it.  EINVAL: hub or fn NULL; ENOMEM. */
GEV_API int  gev_call_threadsafe(gev_hub *hub, void (*fn)(void *arg), void *arg);
/* Hub keep-alive for work that arrives from other threads (libuv's
 * uv_async, gevent's loop.async_): while hub holds references, a wait in
 * its main greenlet is not "forever" (no EDEADLK) and gev_run() keeps
 * running.  Take the reference before the worker can finish; the worker
 * drops it (usually after its gev_call_threadsafe) and the unref that drops
 * the last one wakes the hub, so a wait that nothing else can end then
 * fails with EDEADLK and gev_run() returns.  Both thread-safe, with the
 * lifetime rule of gev_call_threadsafe; gev_shutdown() does not wait for
 * references still held.  EINVAL: hub NULL (or handed out by no
 * gev_hub_current()), or an unref without a reference held; EOVERFLOW:
 * INT_MAX references. */
GEV_API int  gev_hub_ref(gev_hub *hub);
GEV_API int  gev_hub_unref(gev_hub *hub);
/* The blocking monitor, for the calling thread's hub: a thread that
 * reports (to fd; -1 or 2: stderr) each greenlet running longer than
 * max_blocking seconds without switching: its name, id, how long, and a
 * backtrace taken at that moment (it signals the hub's thread with
 * SIGRTMIN+7).  At most one report per blocking episode and one per
 * max(1 s, max_blocking).  A second start changes limit and fd.  Also
 * started by $GEV_MONITOR=<seconds> when a hub is made.  EINVAL:
 * max_blocking NaN, <= 0 or infinite; EBADF: fd not open; EBUSY: the
 * program handles SIGRTMIN+7 itself; ENOMEM, EAGAIN (no thread).
 * gev_monitor_stop() stops and joins it (gev_shutdown() does too). */
GEV_API int  gev_monitor_start(double max_blocking, int fd);
GEV_API void gev_monitor_stop(void);

/* ------------------------------------------------------------------ */
/* Counters and run info                                               */
/* ------------------------------------------------------------------ */

/* Counters of the calling thread's hub, always kept (each costs a store
 * where it is counted anyway).  The stack figures marked process-wide
 * count every hub's stacks. */
struct gev_stats {
    uint64_t switches;          /* scheduling decisions (a greenlet or the
                                   hub picked to run next) */
    uint64_t spawns;            /* greenlets spawned */
    uint64_t loop_iterations;   /* polls of the event loop */
    size_t live_greenlets;      /* spawned and not finished (not main) */
    size_t stacks_cached;       /* spare stacks kept for the next first runs */
    size_t stacks_mapped;       /* process-wide: stacks in use or spare */
    size_t stack_bytes_mapped;  /* process-wide: their mappings, guard
                                   pages included (address space: untouched
                                   pages take no memory) */
    uint64_t reserved[8];       /* 0: room for more counters */
};
/* Fill *st: 0, or -1 with EINVAL (st NULL) or ENOMEM (no hub can be made). */
GEV_API int  gev_stats(struct gev_stats *st);
/* Write what every greenlet of the calling thread's hub is doing to fd,
 * one line each, then the loop's watchers and the counters (format in
 * gev(3), COUNTERS AND RUN INFO).  Uses write(2) only: no stdio, no
 * allocation.  With GEV_DUMP_SIGNAL=<signal> in the environment each hub
 * prints it to stderr on that signal; under GEV_DEBUG a wait in main that
 * fails with EDEADLK prints it first. */
GEV_API void gev_print_run_info(int fd);

/* ------------------------------------------------------------------ */
/* Greenlets                                                           */
/* ------------------------------------------------------------------ */

typedef struct gev_greenlet gev_greenlet;
typedef void *(*gev_fn)(void *arg);

/* Never switches: the new greenlet runs, in spawn order, once the current
 * one blocks or yields.  It gets its stack when it first runs (a cached one
 * if any), so greenlets spawned in bulk that finish one after another share
 * a stack.  NULL + EINVAL for a NULL fn; NULL + ENOMEM when no record can
 * be had (or stack_size is over 4 GiB); if no stack can be mapped when it
 * is first scheduled, it ends without running, as a kill before its start
 * would end it (gev_killed() is true, its links fire). */
GEV_API gev_greenlet *gev_spawn(gev_fn fn, void *arg);
/* gev_spawn with a stack of stack_size bytes (rounded up to pages; 0 = the
 * default, 256 KiB or $GEV_STACK_SIZE). */
GEV_API gev_greenlet *gev_spawn_sized(size_t stack_size, gev_fn fn, void *arg);
/* Starts fn from a timer after `seconds`; 0 = at the next loop turn, and
 * without limit (negative, huge) never: it stays unstarted until killed. */
GEV_API gev_greenlet *gev_spawn_later(double seconds, gev_fn fn, void *arg);

GEV_API int   gev_join(gev_greenlet *g, double timeout);  /* 0 once g finished */
GEV_API int   gev_joinall(gev_greenlet *const *gs, size_t n, double timeout);
/* 0 once g is dead.  Not started: it never runs and is dead at once.
 * Running: its blocking call fails with ECANCELED.  timeout 0 only requests
 * (-1 ETIMEDOUT if g is not dead by then; the kill is delivered anyway).
 * Killing the main greenlet: EINVAL; yourself: EDEADLK. */
GEV_API int   gev_kill(gev_greenlet *g, double timeout);
GEV_API int   gev_killall(gev_greenlet *const *gs, size_t n, double timeout);
GEV_API bool  gev_ready(const gev_greenlet *g);    /* finished (or killed before it ran) */
GEV_API bool  gev_killed(const gev_greenlet *g);   /* a kill reached it before it finished */
GEV_API void *gev_value(const gev_greenlet *g);    /* fn's return value; NULL if it never ran */
GEV_API gev_greenlet *gev_current(void);           /* the main greenlet has a handle too */
GEV_API const char *gev_name(const gev_greenlet *g);          /* default "greenlet-N" */
GEV_API void  gev_set_name(gev_greenlet *g, const char *name); /* copied */
/* Links run in the hub, once, after g finished, in the order added.  Linking
 * after g finished still fires (on the next hub turn).  A callback may unlink
 * a later one.  Blocking calls inside fail with EDEADLK. */
GEV_API int   gev_link(gev_greenlet *g, void (*cb)(gev_greenlet *g, void *arg), void *arg);
GEV_API int   gev_unlink(gev_greenlet *g, void (*cb)(gev_greenlet *g, void *arg), void *arg);
/* Give up the handle: the record is freed once g has finished too.  The
 * stack is reused as soon as g finishes, whatever the handle.
 *
 * After the release, the handle is stale once g has finished.  A freed
 * record is reused only after 16 more records were freed behind it; until
 * then a stale handle is recognised: a second gev_release does nothing,
 * gev_join, gev_joinall, gev_kill, gev_killall, gev_link and gev_unlink
 * fail with EINVAL, gev_name returns NULL (EINVAL), gev_set_name does
 * nothing (EINVAL), and gev_ready, gev_killed, gev_value answer for the
 * released greenlet.  Later the record may be another greenlet's, or
 * freed: using the handle is undefined.  (A handle released while g still
 * runs stays valid until g finishes; so does the handle a link callback
 * gets.)  Under GEV_DEBUG records are never reused and each of these calls
 * aborts, as does a second release of a greenlet still running and any of
 * them on another thread's greenlet. */
GEV_API void  gev_release(gev_greenlet *g);
/* Sleep; 0 (or a time that has passed) yields: every greenlet ready now
 * runs first, FIFO.  GEV_FOREVER sleeps until a kill or a scoped timeout
 * ends it (EDEADLK in main with nothing else to run). */
GEV_API int   gev_sleep(double seconds);
/* The monotonic clock every timeout counts from (CLOCK_MONOTONIC, in
 * seconds; not the time of day), read now. */
GEV_API double gev_now(void);
/* Sleep until gev_now() reaches `deadline` (libdill's deadlines): greenlets
 * that ask for deadlines wake in deadline order, equal ones in the order
 * they started sleeping, with no clock read in between to shift them.  The
 * deadline is taken to the nearest nanosecond.  One already past (any
 * negative one too) yields as gev_sleep(0) does; INFINITY, or one the clock
 * cannot count in int64 nanoseconds, sleeps without limit; NaN is EINVAL. */
GEV_API int   gev_sleep_until(double deadline);

/* ------------------------------------------------------------------ */
/* Scoped timeouts (gevent.Timeout)                                    */
/* ------------------------------------------------------------------ */

typedef struct gev_timeout gev_timeout;
/* From now on, blocking calls of the current greenlet fail with ETIMEDOUT
 * once `seconds` passed, until gev_timeout_cancel().  Nested: the first to
 * expire fires.  A timeout without limit never fires. */
GEV_API gev_timeout *gev_timeout_start(double seconds);
/* Whether t has fired (its deadline passed while the scope was open); it
 * stays true until the cancel, also while gev_shield holds it back.  NULL:
 * false. */
GEV_API bool gev_timeout_expired(const gev_timeout *t);
/* Ends the scope and frees t.  A timeout still open when its greenlet
 * returns is cancelled then.  Cancelling one again does nothing while gev
 * can tell (t is reused only after 16 more cancels; gev_timeout_expired
 * answers as before meanwhile), and is undefined after that.  Under
 * GEV_DEBUG t is never reused, and a second cancel, any use after it, or a
 * use from another thread aborts. */
GEV_API void gev_timeout_cancel(gev_timeout *t);

/* Cancellation shield (pthread_setcancelstate, Trio's shielded scope) for
 * the current greenlet: while on, kills and expired scoped timeouts are
 * held back from it (its waits are not cut short, its blocking calls do not
 * fail with ECANCELED / ETIMEDOUT), so cleanup after a kill can block: join
 * or kill a helper, flush a socket.  Held back, not dropped: gev_killed()
 * and gev_timeout_expired() still report them, and turning the shield off
 * lets them act again, so the next blocking call fails with ECANCELED /
 * ETIMEDOUT.  Waits still end by their own timeouts and deadlines; a
 * blocking call in hub context still fails with EDEADLK.  Returns the
 * previous state (false if no hub can be made).  Not inherited by spawned
 * greenlets; ends with the greenlet.  The idiom, in a killed handler:
 *     bool was = gev_shield(true);
 *     gev_kill(helper, 1.0);          // joins it: it no longer uses state
 *     free(state);
 *     gev_shield(was); */
GEV_API bool gev_shield(bool on);

/* ------------------------------------------------------------------ */
/* File descriptors and sockets                                        */
/* ------------------------------------------------------------------ */

/* Each call behaves like its libc twin (same return values, same errno for
 * real errors, never SIGPIPE) but waits cooperatively; the syscall is tried
 * first and the loop is used only on EAGAIN, except right after a recv from
 * a stream socket came back short (its queue was empty): the next gev_recv
 * / gev_recvfrom without flags and with a timeout other than 0 (and not in
 * the hub) waits for the loop's "readable" first (bytes that came meanwhile
 * are reported by the next poll) instead of a recv(2) that would fail with
 * EAGAIN.  EINTR is retried.  A second greenlet waiting on one fd in the
 * same direction gets EBUSY.  Close fds that gev waited on with
 * gev_close(), which wakes their waiters with EBADF before the number can
 * be reused.  Regular files count as always ready.  MSG_DONTWAIT in flags
 * returns EAGAIN instead of waiting, like libc.  gev_tcp_connect: a name
 * that does not resolve gives EADDRNOTAVAIL, a temporary resolver failure
 * EAGAIN, the deadline ETIMEDOUT, an unknown service (port name) EINVAL (so
 * does gev_tcp_listen). */
#define GEV_READ  1
#define GEV_WRITE 2

GEV_API int     gev_nonblock(int fd);
GEV_API int     gev_wait_fd(int fd, int events, double timeout); /* ready events (> 0) */
GEV_API int     gev_wait_read(int fd, double timeout);
GEV_API int     gev_wait_write(int fd, double timeout);
GEV_API ssize_t gev_read(int fd, void *buf, size_t n, double timeout);
GEV_API ssize_t gev_write(int fd, const void *buf, size_t n, double timeout);
GEV_API ssize_t gev_recv(int fd, void *buf, size_t n, int flags, double timeout);
GEV_API ssize_t gev_send(int fd, const void *buf, size_t n, int flags, double timeout);
GEV_API ssize_t gev_recvfrom(int fd, void *buf, size_t n, int flags,
                             struct sockaddr *addr, socklen_t *addrlen, double timeout);
GEV_API ssize_t gev_sendto(int fd, const void *buf, size_t n, int flags,
                           const struct sockaddr *addr, socklen_t addrlen, double timeout);
GEV_API ssize_t gev_sendall(int fd, const void *buf, size_t n, double timeout);
GEV_API int     gev_socket(int domain, int type, int protocol);
GEV_API int     gev_connect(int fd, const struct sockaddr *addr, socklen_t len, double timeout);
GEV_API int     gev_accept(int fd, struct sockaddr *addr, socklen_t *len, double timeout);
GEV_API int     gev_close(int fd);
GEV_API int     gev_tcp_connect(const char *host, const char *port, double timeout);
GEV_API int     gev_tcp_listen(const char *host, const char *port, int backlog);
/* getaddrinfo(3) in the thread pool (a numeric host and port are answered
 * at once, without it); returns its codes: 0, EAI_NONAME for a name that
 * does not resolve, EAI_SERVICE for an unknown service, and so on.  A wait
 * that fails gives EAI_AGAIN (timeout expired, scoped timeout too),
 * EAI_MEMORY (errno ENOMEM), or EAI_SYSTEM with errno ECANCELED, EDEADLK
 * (hub context), EINVAL (res NULL, timeout NaN); a lookup given up leaves
 * the thread pool's queue if no worker took it yet. */
GEV_API int     gev_getaddrinfo(const char *node, const char *service,
                                const struct addrinfo *hints, struct addrinfo **res,
                                double timeout);

/* ------------------------------------------------------------------ */
/* Thread pool, signals, child processes, threads                      */
/* ------------------------------------------------------------------ */

/* Runs fn(arg) in a worker thread; only the calling greenlet waits.  If the
 * greenlet is killed or a scoped timeout fires while the job still waits
 * for a worker, the job leaves the queue and never runs: -1 ECANCELED /
 * ETIMEDOUT at once, *result untouched.  Once fn has started, the call
 * returns only after fn returned, even if a kill or a timeout comes (then
 * -1 ECANCELED / ETIMEDOUT, *result still set), because arg often points
 * into the caller's stack.  Also -1 EINVAL (fn NULL), EDEADLK (hub
 * context), ENOMEM / EAGAIN (no worker could be made).  In a forked child,
 * a job whose worker vanished with the fork fails with ECANCELED. */
GEV_API int  gev_threadpool_run(void *(*fn)(void *), void *arg, void **result);
/* At most n workers for this hub's pool (default 10; extra idle workers
 * leave).  EINVAL for 0; ENOMEM (or EAGAIN) if the hub or its pool cannot
 * be made. */
GEV_API int  gev_threadpool_set_max(size_t n);
/* Signals.  A signal is caught by one thread's hub at a time: the first
 * hub that waits for it or handles it owns it until it lets it go, and a
 * wait or handler from another thread fails with EBUSY (under libevent,
 * one hub at a time may catch any signals at all).  The hub takes the
 * disposition over and restores the one it found (handler, SIG_IGN or
 * SIG_DFL) once it has no wait and no handler left for the signal.
 *
 * gev_signal_wait: 0 once signum was delivered (every wait in progress is
 * woken by one delivery).  Without a handler the signal is caught only
 * while a wait is in progress: between two waits it has its own
 * disposition again, so a second SIGTERM during a server's drain kills it
 * (install a gev_signal_handler to keep it caught).  While a handler for
 * signum exists on this hub, a delivery that no wait saw is kept (several
 * coalesce into one) and the next gev_signal_wait returns 0 at once, even
 * with timeout 0.  Errors: EINVAL (signum <= 0, >= NSIG, SIGKILL, SIGSTOP,
 * or reserved by libc), EBUSY (another thread's hub has it),
 * ENOMEM, EDEADLK (hub context, or a wait in main nothing can end),
 * ECANCELED, ETIMEDOUT. */
GEV_API int  gev_signal_wait(int signum, double timeout);
/* Persistent subscription (gevent.signal_handler, libuv's uv_signal): from
 * now on each delivery of signum runs fn(signum, arg) in a new greenlet of
 * this hub; deliveries that arrive while that greenlet has not started yet
 * coalesce into it, and one that arrives once it runs gets a new greenlet.
 * The signal stays caught until the last handler is cancelled (and no wait
 * is in progress).  Several handlers of one signal each run, in creation
 * order.  A handler does not keep gev_run() going and does not count as
 * something that can end a wait in main (gevent's ref=False): a program
 * that only waits for handlers should wait with gev_signal_wait.  Callable
 * from hub context (it does not block).  After fork() + gev_reinit() the
 * child's handlers keep working.  NULL + errno: EINVAL (bad signum as for
 * gev_signal_wait, or fn NULL), EBUSY, ENOMEM. */
typedef struct gev_signal gev_signal;
GEV_API gev_signal *gev_signal_handler(int signum, void (*fn)(int signum, void *arg), void *arg);
/* Cancel and free h (NULL: no-op); from the hub's thread, also from fn.
 * fn does not start again (a greenlet already running it goes on).
 * gev_shutdown() cancels the hub's remaining handlers: their handles are
 * invalid after it. */
GEV_API void gev_signal_cancel(gev_signal *h);
/* One child (pid > 0, else EINVAL; ECHILD if not our child); returns pid.
 * Only watched children are reaped. */
GEV_API int  gev_waitpid(pid_t pid, int *status, double timeout);

/* ------------------------------------------------------------------ */
/* Synchronisation                                                     */
/* ------------------------------------------------------------------ */

/* All waiters are served FIFO; a waiter whose timeout fired never consumes
 * an item or a unit.  Freeing an event, result, queue, channel, semaphore
 * or lock that has waiters wakes each of them with EBADF (they never touch
 * the freed object again); the object must not be used after its free. */
/* Events, results, queues, channels, semaphores, locks, and the pools and
 * servers below belong to the thread that made them.  Used from another
 * thread, each call is undefined (nothing checks it: the check would cost
 * every call); under GEV_DEBUG each aborts ("gev: gev_queue_put: queue of
 * another thread's hub").  A freed one must not be used at all. */
/* Every call below fails with EINVAL for a NULL object (one that returns
 * no int sets errno and returns false, 0 or nothing; a free or a close of
 * NULL is a no-op); a wait also
 * fails with ETIMEDOUT, ECANCELED, EINVAL (timeout NaN), EBADF (the object
 * was freed), and from hub context with ETIMEDOUT for timeout 0 ("would
 * have to wait"), else EDEADLK.  The constructors return NULL + ENOMEM. */

/* gevent.event.Event: a flag.  set wakes every waiter, and a wait returns 0
 * if the flag was set at any point during it (even if cleared again before
 * the waiter ran); a wait on a set event returns 0 without switching.  set
 * and clear never switch. */
typedef struct gev_event gev_event;
GEV_API gev_event *gev_event_new(void);             /* flag clear */
GEV_API void gev_event_set(gev_event *e);
GEV_API void gev_event_clear(gev_event *e);
GEV_API bool gev_event_is_set(const gev_event *e);
GEV_API int  gev_event_wait(gev_event *e, double timeout);
GEV_API void gev_event_free(gev_event *e);          /* NULL: no-op */

/* gevent.event.AsyncResult: a value or an error.  set and set_error may be
 * called again: each overwrites the outcome and wakes the waiters, and every
 * later get returns the latest (a waiter returns the outcome of the set that
 * woke it).  set_error(r, 0) is set(r, NULL).  get gives 0 and the value
 * (value may be NULL to ignore it), or -1 with errno = the error set;
 * ready is true once either was called. */
typedef struct gev_result gev_result;
GEV_API gev_result *gev_result_new(void);
GEV_API void gev_result_set(gev_result *r, void *value);
GEV_API void gev_result_set_error(gev_result *r, int err);
GEV_API int  gev_result_get(gev_result *r, void **value, double timeout);
GEV_API bool gev_result_ready(const gev_result *r);
GEV_API void gev_result_free(gev_result *r);        /* NULL: no-op */

/* gevent.queue.Queue: FIFO of void * items (NULL is an item too).  put
 * waits while maxsize items are queued (ENOMEM if the buffer cannot grow);
 * get removes the oldest item, peek shows it without removing it (item may
 * be NULL to ignore it).  A put with a getter waiting hands the item over
 * without switching. */
typedef struct gev_queue gev_queue;
GEV_API gev_queue *gev_queue_new(size_t maxsize);   /* 0 = unbounded */
GEV_API int    gev_queue_put(gev_queue *q, void *item, double timeout);
GEV_API int    gev_queue_get(gev_queue *q, void **item, double timeout);
GEV_API int    gev_queue_peek(gev_queue *q, void **item, double timeout);
/* Items still queued; after close it counts down as gets drain them. */
GEV_API size_t gev_queue_size(const gev_queue *q);
/* End of stream (Go's close, libdill's chdone).  From now on put fails with
 * EPIPE; get and peek return the items still queued, then fail with EPIPE
 * at once, whatever the timeout (0 too: EPIPE, not ETIMEDOUT; from hub
 * context too).  Every blocked getter, peeker and putter wakes with EPIPE
 * (a putter blocked on a full queue: its item was not added).  Closing
 * twice is harmless; NULL is a no-op.  Not thread-safe: another thread
 * closes through gev_call_threadsafe. */
GEV_API void   gev_queue_close(gev_queue *q);
/* Blocked waiters fail with EBADF.  Frees the queue's slots only: items
 * still queued (closed or not) are the caller's.  NULL: no-op. */
GEV_API void   gev_queue_free(gev_queue *q);

/* gevent.queue.Channel, a rendezvous without a buffer: put returns 0 only
 * once a getter has the item (with a getter waiting, put hands it over and
 * yields, so the getter runs first); get takes a waiting putter's item
 * without switching.  From hub context each succeeds only if a partner
 * waits. */
typedef struct gev_channel gev_channel;
GEV_API gev_channel *gev_channel_new(void);
GEV_API int  gev_channel_put(gev_channel *c, void *item, double timeout);
GEV_API int  gev_channel_get(gev_channel *c, void **item, double timeout);
/* End of stream: every blocked getter and putter wakes with EPIPE (a putter
 * whose item no getter took keeps it), and every later put and get fails
 * with EPIPE at once, whatever the timeout.  Closing twice is harmless;
 * NULL is a no-op. */
GEV_API void gev_channel_close(gev_channel *c);
GEV_API void gev_channel_free(gev_channel *c);      /* NULL: no-op */

/* gevent.lock.Semaphore / BoundedSemaphore: value units.  acquire takes
 * one, waiting while there is none; release hands its unit to the first
 * waiter, so one that releases and acquires at once queues behind the
 * waiters.  A bounded semaphore refuses a release that would raise the
 * value above its initial value: -1 EOVERFLOW (an unbounded one above
 * UINT_MAX).  gev_sem_value:
 * the units free now (0 while greenlets wait). */
typedef struct gev_sem gev_sem;
GEV_API gev_sem *gev_sem_new(unsigned value);
GEV_API gev_sem *gev_sem_new_bounded(unsigned value);
GEV_API int  gev_sem_acquire(gev_sem *s, double timeout);
GEV_API int  gev_sem_release(gev_sem *s);
GEV_API unsigned gev_sem_value(const gev_sem *s);
GEV_API void gev_sem_free(gev_sem *s);              /* NULL: no-op */

/* gevent.lock.RLock: owned by a greenlet and recursive: its owner acquires
 * again at once and must release as many times.  Released by another
 * greenlet (or when not held): -1 EPERM.  The last release hands the lock
 * to the first waiter.  Nothing releases the lock of a greenlet that ends
 * holding it. */
typedef struct gev_lock gev_lock;
GEV_API gev_lock *gev_lock_new(void);
GEV_API int  gev_lock_acquire(gev_lock *l, double timeout);
GEV_API int  gev_lock_release(gev_lock *l);
GEV_API void gev_lock_free(gev_lock *l);            /* NULL: no-op */

/* ------------------------------------------------------------------ */
/* Pools and servers                                                   */
/* ------------------------------------------------------------------ */

/* gevent.pool.Pool: at most size member greenlets at a time (0: no limit,
 * gevent's Group).  The pool owns its members: a handle from
 * gev_pool_spawn stays valid until the next gev_pool_join that returns 0,
 * or gev_pool_free; do not gev_release it.  NULL pool: EINVAL, as for the
 * synchronisation objects above. */
typedef struct gev_pool gev_pool;
GEV_API gev_pool *gev_pool_new(size_t size);        /* 0 = unlimited; NULL + ENOMEM */
/* gev_spawn into the pool.  A full pool makes it wait (without limit but
 * for a scoped timeout: ETIMEDOUT; ECANCELED; EDEADLK from hub context)
 * for a free slot, FIFO with gev_pool_wait_available's callers; the slot is
 * then the caller's.  NULL + EINVAL (fn NULL), ENOMEM, EBADF (pool freed
 * meanwhile). */
GEV_API gev_greenlet *gev_pool_spawn(gev_pool *p, gev_fn fn, void *arg);
/* 0 once no member is alive (and their handles are released).  A member
 * joining its own pool: EDEADLK. */
GEV_API int    gev_pool_join(gev_pool *p, double timeout);
/* Kill every member, in spawn order, with gev_killall's semantics (timeout
 * 0 only requests); members spawned while it waits are killed too.  A
 * member killing its own pool delivers the kills, then fails with
 * EDEADLK. */
GEV_API int    gev_pool_kill(gev_pool *p, double timeout);
/* 0 once a slot is free (it is not reserved for the caller). */
GEV_API int    gev_pool_wait_available(gev_pool *p, double timeout);
/* Free slots now: size minus live members; SIZE_MAX if unlimited. */
GEV_API size_t gev_pool_free_count(const gev_pool *p);
/* Live members.  A member counts until its link callback ran, in the hub
 * after it finished: gev_join on it may return first; after a
 * gev_pool_join or gev_pool_kill that returned 0, it is exact. */
GEV_API size_t gev_pool_count(const gev_pool *p);
/* Greenlets blocked in gev_pool_spawn / wait_available fail with EBADF
 * first, then the members are killed and waited for (each runs its
 * cleanup); where the caller cannot wait (hub context, a member, killed)
 * the kills are delivered and the members let go.  Waiters in join / kill
 * fail with EBADF.  NULL: no-op. */
GEV_API void   gev_pool_free(gev_pool *p);

/* gevent.server.StreamServer.  Each connection's handler runs in its own
 * greenlet (owned by the server); the server closes the client fd when the
 * handler returns. */
typedef struct gev_server gev_server;
typedef void (*gev_handler)(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg);
/* The server owns listen_fd from now on (closed by stop or free); a bound
 * socket that is not listening yet is put into listen() by start.
 * ENOTSOCK if it is not a socket, EBADF if not open, EINVAL for a negative
 * fd or a NULL handler, ENOMEM. */
GEV_API gev_server *gev_server_new(int listen_fd, gev_handler handler, void *arg);
/* 0 = unlimited; with n handlers running the server stops accepting
 * (connections wait in the backlog) until one ends.  EINVAL: s NULL. */
GEV_API int  gev_server_set_max_clients(gev_server *s, size_t n);
/* Accepts in its own greenlet (up to 100 per wake-up); returns at once.
 * EALREADY if started, EINVAL after a stop (or s NULL), listen(2)'s
 * errors, ENOMEM.  Accept errors such as EMFILE
 * pause accepting (10 ms doubling to 1 s); EBADF/EINVAL/ENOTSOCK on the
 * listener stop the server. */
GEV_API int  gev_server_start(gev_server *s);
/* Start (if not started), then wait until stopped: 0 once a stop ended it
 * (at once if it was stopped already), or -1 with the listener's error (the
 * server is stopped then), ECANCELED if the caller was killed (it stops the
 * server first), or an error of gev_server_start. */
GEV_API int  gev_server_serve_forever(gev_server *s);
/* Stop accepting and close the listener at once (later connects are
 * refused), wait for handlers up to timeout, then kill them and give them
 * 1 s more; -1 ETIMEDOUT if one is still running where a kill cannot
 * reach it (waiting for a job of gev_threadpool_run that has started);
 * ECANCELED (the caller was killed) and EDEADLK (hub context) after
 * killing the handlers without waiting; EINVAL (s NULL, timeout NaN).  A
 * handler may stop its own server (it is not waited for). */
GEV_API int  gev_server_stop(gev_server *s, double timeout);
/* Stops a server not stopped yet as gev_server_stop(s, 0) does (kill the
 * handlers, wait up to 1 s for them), then frees it; the record lives on
 * until its last greenlet ended, so a handler may free its own server.
 * NULL: no-op. */
GEV_API void gev_server_free(gev_server *s);

#ifdef __cplusplus
}
#endif
#endif
