/* api/server.c: gev_server, gevent.server.StreamServer.
 *
 * Greenlets.  One acceptor greenlet takes connections off the listening
 * socket; each connection gets a handler greenlet (a "client") that calls
 * the user's handler and then closes the fd.  A gev_link callback on each
 * client ends its membership in the hub: count, wake the acceptor if it
 * waited for a free slot, wake gev_server_stop() if it waited for the
 * clients to finish, release the greenlet.
 *
 * Accepting.  Like gevent's max_accept, the acceptor takes up to
 * ACCEPT_BATCH connections per wakeup without waiting (gev_accept with
 * timeout 0), then yields so the new handlers run before it accepts more.
 * When max_clients handlers run it does not touch the listener at all:
 * connections wait in the kernel's backlog.  Errors fall in four kinds
 * (accept_error_kind): per-connection errors are retried at once; running
 * out of fds or memory pauses with a backoff (10 ms doubling to 1 s, reset
 * by a success) because the listener stays readable and retrying at once
 * would spin; errors that say the listener itself is unusable end the
 * acceptor, and gev_server_serve_forever() returns that error.
 *
 * Stopping.  gev_server_stop() sets `stopping` (the acceptor checks it
 * after every wait, so it never touches the fd number again), kills the
 * acceptor and closes the listener: new connects are refused.  Then it
 * waits for the clients up to the timeout, kills the rest and gives them
 * KILL_GRACE seconds to return (gevent's pool.kill(timeout=1)).  A handler
 * that ignores the kill (e.g. waiting for a running thread-pool job) is
 * left running; the server still owns it.
 *
 * Lifetime.  The server record outlives gev_server_free() while the
 * acceptor, a client, or a stop / serve_forever call in another greenlet
 * still runs (each of them reads it when it ends); the last one frees it
 * (server_maybe_free).  So a handler may stop or free its own server, and
 * main may free it while a handler's stop call still waits.
 */
#include "config.h"
#include <stdlib.h>
#include <sys/socket.h>
#include "gev.h"
#include "hub.h"

#define ACCEPT_BATCH 100
#define BACKOFF_MIN 0.01
#define BACKOFF_MAX 1.0
#define KILL_GRACE 1.0
/* How long serve_forever waits for the handlers after the listener failed
 * (gevent's stop_timeout). */
#define STOP_TIMEOUT 1.0

typedef struct client client;

enum server_state { SERVER_NEW, SERVER_RUNNING, SERVER_STOPPED };

struct gev_server {
    gev_hub *hub;           /* GEV_DEBUG only, else NULL (core/debug.h) */
    int listen_fd;              /* -1 once closed (or found closed) */
    gev_handler handler;
    void *arg;
    size_t max_clients;         /* 0: unlimited */
    size_t nclients;            /* handler greenlets not yet finished */
    client *clients;            /* their records, for stop */
    enum server_state state;
    bool stopping;              /* the acceptor must not accept any more */
    bool freed;                 /* gev_server_free() was called */
    unsigned busy;              /* stop / serve_forever calls under way */
    int error;                  /* what ended the acceptor, 0 if stop did */
    gev_greenlet *acceptor;     /* NULL when not running */
    gev__waitq slot_waiters;    /* the acceptor, while max_clients run */
    gev__waitq drain_waiters;   /* stop: woken whenever a client ends */
    gev__waitq done_waiters;    /* serve_forever: woken by stop or an error */
};

struct client {
    gev_server *s;
    gev_greenlet *g;
    int fd;                     /* -1 once closed */
    socklen_t peerlen;
    struct sockaddr_storage peer;
    client *prev, *next;
};

/* ---- lifetime ------------------------------------------------------------- */

gev_server *gev_server_new(int listen_fd, gev_handler handler, void *arg)
{
    int type;
    socklen_t len = sizeof type;
    if (listen_fd < 0 || !handler) {
        errno = EINVAL;
        return NULL;
    }
    /* Fail early on what can never be accepted from (ENOTSOCK, EBADF). */
    if (getsockopt(listen_fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        gev_nonblock(listen_fd) < 0)
        return NULL;
    gev_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hub = gev__debug_owner();
    s->listen_fd = listen_fd;
    s->handler = handler;
    s->arg = arg;
    gev__waitq_init(&s->slot_waiters);
    gev__waitq_init(&s->drain_waiters);
    gev__waitq_init(&s->done_waiters);
    return s;
}

/* Free the record once nobody can read it any more. */
static void server_maybe_free(gev_server *s)
{
    if (s->freed && !s->acceptor && s->nclients == 0 && s->busy == 0)
        free(s);
}

/* Around the public calls that read s after a wait (another greenlet may
 * free the server meanwhile). */
static void server_enter(gev_server *s) { s->busy++; }
static void server_leave(gev_server *s)
{
    s->busy--;
    server_maybe_free(s);
}

static void close_listener(gev_server *s)
{
    if (s->listen_fd >= 0)
        gev_close(s->listen_fd);    /* wakes the acceptor with EBADF */
    s->listen_fd = -1;
}

/* ---- clients ---------------------------------------------------------------- */

static void *client_main(void *arg)
{
    client *c = arg;
    c->s->handler(c->fd, (struct sockaddr *)&c->peer, c->peerlen, c->s->arg);
    gev_close(c->fd);
    c->fd = -1;
    return NULL;
}

/* gev_link callback, in the hub: client c has finished. */
static void client_done(gev_greenlet *g, void *arg)
{
    client *c = arg;
    gev_server *s = c->s;
    if (c->fd >= 0)             /* killed before it ever ran */
        gev_close(c->fd);
    GEV__DLIST_UNLINK_HEAD(s->clients, c, next, prev);
    s->nclients--;
    gev_release(g);
    free(c);
    gev__waitq_wake_one(&s->slot_waiters, 0);
    gev__waitq_wake_all(&s->drain_waiters, 0);
    server_maybe_free(s);
}

/* Hand fd to a new handler greenlet.  0, or an errno (fd is then closed). */
static int client_spawn(gev_server *s, int fd, const struct sockaddr_storage *peer,
                        socklen_t peerlen)
{
    client *c = malloc(sizeof *c);
    gev_greenlet *g = c ? gev__spawn_linked(client_main, c, client_done, c) : NULL;
    if (!g) {
        int err = errno;
        free(c);
        gev_close(fd);
        return err;
    }
    *c = (client){ .s = s, .g = g, .fd = fd, .peerlen = peerlen, .peer = *peer };
    GEV__DLIST_PUSH_HEAD(s->clients, c, next, prev);
    s->nclients++;
    return 0;
}

/* ---- the acceptor ------------------------------------------------------------ */

enum accept_kind { ACCEPT_OK, ACCEPT_RETRY, ACCEPT_WAIT, ACCEPT_BACKOFF, ACCEPT_END };

static enum accept_kind accept_error_kind(int err)
{
    switch (err) {
    case ETIMEDOUT:             /* gev_accept(.., 0): nothing pending */
    case EAGAIN:
        return ACCEPT_WAIT;
    /* Errors of the connection being accepted (accept(2), "Linux notes"):
     * that connection is gone, the next one may be fine. */
    case EINTR: case ECONNABORTED: case EPROTO: case EPERM:
    case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN: case ENONET:
    case EHOSTUNREACH: case ENETUNREACH:
        return ACCEPT_RETRY;
    /* The listener is unusable (or we were killed / it was closed). */
    case EBADF: case EINVAL: case ENOTSOCK: case EOPNOTSUPP: case ECANCELED:
        return ACCEPT_END;
    default:                    /* EMFILE, ENFILE, ENOBUFS, ENOMEM, ... */
        return ACCEPT_BACKOFF;
    }
}

static bool server_full(const gev_server *s)
{
    return s->max_clients && s->nclients >= s->max_clients;
}

/* Wait while max_clients handlers run.  0 or an errno (ECANCELED). */
static int wait_for_slot(gev_server *s)
{
    while (server_full(s) && !s->stopping) {
        gev__waiter w;
        int err = gev__waitq_wait(&s->slot_waiters, &w, GEV__FOREVER);
        if (err)
            return err;
    }
    return 0;
}

/* Take one connection, or deal with the error.  *batch counts the accept
 * attempts since the last wait (failed ones too: a run of per-connection
 * errors must not starve the hub either), *delay is the next backoff.
 * 0 to go on, or the errno that ends the acceptor. */
static int accept_step(gev_server *s, unsigned *batch, double *delay)
{
    struct sockaddr_storage peer;
    socklen_t peerlen = sizeof peer;
    int fd = gev_accept(s->listen_fd, (struct sockaddr *)&peer, &peerlen, 0);
    int err = fd < 0 ? errno : 0;
    enum accept_kind kind = fd < 0 ? accept_error_kind(err) : ACCEPT_OK;
    if (fd >= 0 && client_spawn(s, fd, &peer, peerlen) != 0)
        kind = ACCEPT_BACKOFF;          /* out of memory or stacks */
    switch (kind) {
    case ACCEPT_OK:
        *delay = BACKOFF_MIN;
        /* fall through */
    case ACCEPT_RETRY:
        if (++*batch < ACCEPT_BATCH)
            return 0;
        *batch = 0;                     /* let the new handlers run first */
        return gev_sleep(0) < 0 ? errno : 0;
    case ACCEPT_WAIT:
        *batch = 0;
        return gev_wait_read(s->listen_fd, GEV_FOREVER) < 0 ? errno : 0;
    case ACCEPT_BACKOFF:
        err = gev_sleep(*delay) < 0 ? errno : 0;
        *delay = *delay * 2 < BACKOFF_MAX ? *delay * 2 : BACKOFF_MAX;
        return err;
    default:
        return err;
    }
}

static void *acceptor_main(void *arg)
{
    gev_server *s = arg;
    unsigned batch = 0;
    double delay = BACKOFF_MIN;
    int err = 0;
    while (!err && !s->stopping) {
        err = wait_for_slot(s);
        if (!err && !s->stopping)
            err = accept_step(s, &batch, &delay);
    }
    if (!s->stopping) {         /* the listener failed: serve_forever reports it */
        s->error = err;
        if (err == EBADF)       /* closed behind our back: not ours to close */
            s->listen_fd = -1;
    }
    return NULL;
}

/* gev_link callback, in the hub: the acceptor has finished, or was killed
 * before it ever ran (a stop right after the start). */
static void acceptor_done(gev_greenlet *g, void *arg)
{
    gev_server *s = arg;
    if (!s->stopping && !s->error)
        s->error = ECANCELED;   /* killed by someone else (gev_shutdown) */
    gev_release(g);
    s->acceptor = NULL;
    gev__waitq_wake_all(&s->done_waiters, 0);
    server_maybe_free(s);
}

/* ---- the public calls ----------------------------------------------------------- */

int gev_server_set_max_clients(gev_server *s, size_t n)
{
    if (!s)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(s->hub, "server");
    s->max_clients = n;
    gev__waitq_wake_one(&s->slot_waiters, 0);  /* it may have grown */
    return 0;
}

/* Like gevent, a socket that is only bound starts listening at start(). */
static int ensure_listening(int fd)
{
    int on = 0;
    socklen_t len = sizeof on;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0)
        return -1;
    return on ? 0 : listen(fd, SOMAXCONN);
}

int gev_server_start(gev_server *s)
{
    if (!s)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(s->hub, "server");
    if (s->state != SERVER_NEW)
        return gev__fail(s->state == SERVER_RUNNING ? EALREADY : EINVAL);
    if (ensure_listening(s->listen_fd) < 0)
        return -1;
    gev_greenlet *g = gev__spawn_linked(acceptor_main, s, acceptor_done, s);
    if (!g)
        return -1;
    gev_set_name(g, "gev-server-acceptor");
    s->acceptor = g;
    s->state = SERVER_RUNNING;
    return 0;
}

/* The client record of the calling greenlet, if a handler stops its server. */
static client *current_client(const gev_server *s)
{
    gev_greenlet *me = gev_current();
    for (client *c = s->clients; c; c = c->next)
        if (c->g == me)
            return c;
    return NULL;
}

/* Wait until no client but `self` runs, or the deadline: 0 or an errno. */
static int wait_clients(gev_server *s, const client *self, gev__nsec deadline)
{
    while (s->nclients > (self ? 1u : 0u)) {
        gev__waiter w;
        gev__wait_note(GEV__WAIT_JOIN, -1);     /* the handlers' ends */
        int err = gev__waitq_wait(&s->drain_waiters, &w, deadline);
        if (err)
            return err;
    }
    return 0;
}

static void kill_clients(gev_server *s, const client *self)
{
    for (client *c = s->clients, *next; c; c = next) {
        next = c->next;         /* links fire later, in the hub, but be safe */
        if (c != self)
            gev_kill(c->g, 0);
    }
}

/* The body of gev_server_stop(): 0 or an errno. */
static int server_stop(gev_server *s, gev__nsec deadline)
{
    s->stopping = true;
    if (s->acceptor)
        gev_kill(s->acceptor, 0);
    close_listener(s);
    const client *self = current_client(s);
    int err = wait_clients(s, self, deadline);
    if (err == ETIMEDOUT || err == ECANCELED || err == EDEADLK) {
        /* Handlers still run (or we cannot wait): kill them, then give them
         * a bounded grace to return. */
        kill_clients(s, self);
        err = wait_clients(s, self, gev__deadline_after(KILL_GRACE));
    }
    s->state = SERVER_STOPPED;
    gev__waitq_wake_all(&s->done_waiters, 0);
    return err;
}

int gev_server_stop(gev_server *s, double timeout)
{
    gev__nsec deadline;
    if (!s || gev__timeout_deadline(timeout, &deadline))
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(s->hub, "server");
    server_enter(s);
    int err = server_stop(s, deadline);
    server_leave(s);
    return err ? gev__fail(err) : 0;
}

/* serve_forever is over once stopped, or once the acceptor ended by itself
 * (a stop under way ends it too, but is not over before its waits are). */
static bool serve_over(const gev_server *s)
{
    return s->state == SERVER_STOPPED || (!s->acceptor && !s->stopping);
}

/* The body of gev_server_serve_forever(): 0 or an errno. */
static int serve_forever(gev_server *s)
{
    if (s->state == SERVER_NEW && gev_server_start(s) < 0)
        return errno;
    int err = 0;
    while (!err && !serve_over(s)) {
        gev__waiter w;
        err = gev__waitq_wait(&s->done_waiters, &w, GEV__FOREVER);
    }
    if (!err && s->state == SERVER_STOPPED)
        return 0;
    /* The listener failed, or our own wait did (we were killed): stop it
     * all, as gevent's serve_forever does in its finally clause. */
    if (!err)
        err = s->error;
    server_stop(s, STOP_TIMEOUT);
    return err;
}

int gev_server_serve_forever(gev_server *s)
{
    if (!s)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(s->hub, "server");
    server_enter(s);
    int err = serve_forever(s);
    server_leave(s);
    return err ? gev__fail(err) : 0;
}

/* Greenlets that have finished but whose link callback has not run yet
 * (one killed before it started is dead at once; its links run on the
 * next hub turn, which a gev_shutdown() right after the free would never
 * give): run the callback now, so nothing waits for a turn that may not come. */
static void reap_finished(gev_server *s)
{
    if (s->acceptor && gev_ready(s->acceptor) &&
        gev_unlink(s->acceptor, acceptor_done, s) == 0)
        acceptor_done(s->acceptor, s);
    for (client *c = s->clients, *next; c; c = next) {
        next = c->next;
        if (gev_ready(c->g) && gev_unlink(c->g, client_done, c) == 0)
            client_done(c->g, c);
    }
}

void gev_server_free(gev_server *s)
{
    if (!s)
        return;
    GEV__CHECK_OWNER(s->hub, "server");
    if (s->state != SERVER_STOPPED)
        server_stop(s, 0);      /* not freed yet: stop's waits are safe */
    reap_finished(s);
    s->freed = true;
    server_maybe_free(s);
}
