/* api/socket.c: sockets on the fd table of fd.c (recv, send, connect,
 * accept...), TCP helpers, and getaddrinfo in the thread pool. */
#include "config.h"

#include <limits.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd.h"

/* ---- data ---------------------------------------------------------------- */

/* recv and send are recvfrom and sendto without an address, as in libc. */
static ssize_t op_recvfrom(int fd, gev__fd_op *op)
{
    return recvfrom(fd, op->rbuf, op->n, op->flags, op->addr, op->addrlen);
}

static ssize_t op_sendto(int fd, gev__fd_op *op)
{
    return sendto(fd, op->wbuf, op->n, op->flags | MSG_NOSIGNAL, op->dest, op->destlen);
}

/* The op of a recvfrom or a sendto, built only when the first attempt
 * could not finish the call, field by field: a compound literal costs a
 * `rep stos` and a copy. */
static void op_fill(gev__fd_op *op, ssize_t (*call)(int, gev__fd_op *), int events,
                    size_t n, int flags, double timeout)
{
    op->call = call;
    op->events = events;
    op->rbuf = NULL;
    op->wbuf = NULL;
    op->n = n;
    op->flags = flags;
    op->addr = NULL;
    op->addrlen = NULL;
    op->dest = NULL;
    op->destlen = 0;
    op->timeout = timeout;
    op->deadline = 0;
    op->have_deadline = false;
}

static void recvfrom_op(gev__fd_op *op, void *buf, size_t n, int flags,
                        struct sockaddr *addr, socklen_t *addrlen, double timeout)
{
    op_fill(op, op_recvfrom, GEV__READ, n, flags, timeout);
    op->rbuf = buf;
    op->addr = addr;
    op->addrlen = addrlen;
}

static void sendto_op(gev__fd_op *op, const void *buf, size_t n, int flags,
                      const struct sockaddr *addr, socklen_t addrlen, double timeout)
{
    op_fill(op, op_sendto, GEV__WRITE, n, flags, timeout);
    op->wbuf = buf;
    op->dest = addr;
    op->destlen = addrlen;
}

/* The slow paths live apart, so that the fast ones keep a small frame
 * (no op on their stack).  `tried`: the first attempt was made and failed,
 * errno still says how. */
static __attribute__((noinline)) ssize_t
recvfrom_rest(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
              socklen_t *addrlen, double timeout, bool tried)
{
    gev__fd_op op;
    recvfrom_op(&op, buf, n, flags, addr, addrlen, timeout);
    ssize_t r = tried ? gev__fd_retry(fd, &op) : gev__fd_do(fd, &op);
    gev_hub *hub = gev__hub_peek();
    if (r > 0 && !flags && hub)
        gev__fd_read_note_short(gev__fd_record_peek(hub, fd), r, n);
    return r;
}

static __attribute__((noinline)) ssize_t
sendto_rest(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
            socklen_t addrlen, double timeout, bool tried)
{
    gev__fd_op op;
    sendto_op(&op, buf, n, flags, addr, addrlen, timeout);
    return tried ? gev__fd_retry(fd, &op) : gev__fd_do(fd, &op);
}

ssize_t gev_recvfrom(int fd, void *buf, size_t n, int flags,
                     struct sockaddr *addr, socklen_t *addrlen, double timeout)
{
    bool tried = gev__fd_may_try(fd) && (buf || !n);
    if (tried) {
        gev__fd_record *rec = flags ? NULL : gev__fd_record_peek(gev__hub_peek(), fd);
        if (gev__fd_read_waits_first(rec, fd, timeout != 0)) {
            errno = EAGAIN;     /* what the recv(2) would have said */
        } else {
            ssize_t r = recvfrom(fd, buf, n, flags, addr, addrlen);
            if (r >= 0) {
                gev__fd_read_note_short(rec, r, n);
                return r;
            }
        }
    }
    return recvfrom_rest(fd, buf, n, flags, addr, addrlen, timeout, tried);
}

ssize_t gev_sendto(int fd, const void *buf, size_t n, int flags,
                   const struct sockaddr *addr, socklen_t addrlen, double timeout)
{
    bool tried = gev__fd_may_try(fd) && (buf || !n);
    if (tried) {
        ssize_t r = sendto(fd, buf, n, flags | MSG_NOSIGNAL, addr, addrlen);
        if (r >= 0)
            return r;
    }
    return sendto_rest(fd, buf, n, flags, addr, addrlen, timeout, tried);
}

ssize_t gev_recv(int fd, void *buf, size_t n, int flags, double timeout)
{
    return gev_recvfrom(fd, buf, n, flags, NULL, NULL, timeout);
}

ssize_t gev_send(int fd, const void *buf, size_t n, int flags, double timeout)
{
    return gev_sendto(fd, buf, n, flags, NULL, 0, timeout);
}

/* gev_sendall after a first attempt: `done` bytes went (r >= 0), or the
 * attempt failed with errno (r < 0, tried), or none was made. */
static __attribute__((noinline)) ssize_t
sendall_rest(int fd, const char *buf, size_t n, double timeout, ssize_t r, bool tried)
{
    int first_err = errno;
    /* One deadline for every send that follows, fixed now. */
    gev__fd_op op;
    sendto_op(&op, NULL, 0, 0, NULL, 0, timeout);
    int err = gev__timeout_deadline(timeout, &op.deadline);
    if (err)
        return gev__fail(err);
    op.have_deadline = true;
    for (size_t done = r > 0 ? (size_t)r : 0; done < n; done += (size_t)r) {
        op.wbuf = buf ? buf + done : NULL;
        op.n = n - done;
        /* After a first attempt that failed, carry on from its errno. */
        if (tried && r < 0) {
            errno = first_err;
            r = gev__fd_retry(fd, &op);
        } else {
            r = gev__fd_do(fd, &op);
        }
        if (r < 0)
            return -1;
        tried = false;
    }
    return (ssize_t)n;
}

ssize_t gev_sendall(int fd, const void *buf, size_t n, double timeout)
{
    if (fd < 0)
        return gev__fail(EBADF);
    if (n == 0)
        return 0;
    if (n > SSIZE_MAX)
        return gev__fail(EINVAL);
    /* The usual case: everything goes in one send, and no clock is read. */
    ssize_t r = 0;
    bool tried = gev__fd_may_try(fd) && buf;
    if (tried) {
        r = send(fd, buf, n, MSG_NOSIGNAL);
        if (r == (ssize_t)n)
            return r;
    }
    return sendall_rest(fd, buf, n, timeout, r, tried);
}

/* ---- sockets --------------------------------------------------------------- */

int gev_socket(int domain, int type, int protocol)
{
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);

    if (fd >= 0)
        gev__fd_fresh(fd);
    return fd;
}

static ssize_t op_accept(int fd, gev__fd_op *op)
{
    return accept4(fd, op->addr, op->addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int gev_accept(int fd, struct sockaddr *addr, socklen_t *len, double timeout)
{
    gev__fd_op op = { .call = op_accept, .events = GEV__READ, .addr = addr,
                      .addrlen = len, .timeout = timeout };
    ssize_t r = gev__fd_do(fd, &op);

    if (r >= 0)
        gev__fd_fresh((int)r);
    return (int)r;
}

static int connect_errno(int fd, const struct sockaddr *addr, socklen_t len)
{
    return connect(fd, addr, len) == 0 ? 0 : errno;
}

/* The outcome of a connect that went on in the background. */
static int connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    return err ? gev__fail(err) : 0;
}

int gev__connect_until(int fd, const struct sockaddr *addr, socklen_t len,
                       gev__nsec deadline)
{
    if (fd < 0)
        return gev__fail(EBADF);
    int err = gev__fd_check();
    if (err)
        return gev__fail(err);
    err = connect_errno(fd, addr, len);
    /* AF_UNIX with a full backlog says EAGAIN and does not go on by itself:
     * retry once writable, as gevent does. */
    while (err == EAGAIN) {
        if (gev__fd_wait(fd, GEV__WRITE, deadline) < 0)
            return -1;
        err = connect_errno(fd, addr, len);
    }
    /* After EINTR the connection goes on in the background, as after
     * EINPROGRESS (POSIX). */
    if (err != EINPROGRESS && err != EINTR)
        return err ? gev__fail(err) : 0;
    if (gev__fd_wait(fd, GEV__WRITE, deadline) < 0)
        return -1;
    return connect_result(fd);
}

int gev_connect(int fd, const struct sockaddr *addr, socklen_t len, double timeout)
{
    gev__nsec deadline;
    int err = gev__timeout_deadline(timeout, &deadline);
    return err ? gev__fail(err) : gev__connect_until(fd, addr, len, deadline);
}

/* ---- getaddrinfo in the thread pool ---------------------------------------
 *
 * The caller may give up (deadline, kill) while the lookup still runs in a
 * worker.  So the lookup is a heap-owned job, waited for by a helper
 * greenlet (gev_threadpool_run only returns once the worker is done with
 * it), and the job is freed by whichever of caller and helper lets go last.
 * A caller that gives up kills the helper, so a lookup still queued in the
 * pool leaves the queue and never runs. */

typedef struct gai_job {
    char *node, *service;
    struct addrinfo hints;
    bool has_hints;
    struct addrinfo *res;       /* the worker's answer, until somebody takes it */
    int rc, err;
    bool done;
    gev_greenlet *caller;       /* NULL once the caller gave up */
    uint64_t wait_id;
    int refs;
} gai_job;

static void gai_job_unref(gai_job *j)
{
    if (--j->refs > 0)
        return;
    if (j->res)
        freeaddrinfo(j->res);
    free(j->node);
    free(j->service);
    free(j);
}

static gai_job *gai_job_new(const char *node, const char *service,
                            const struct addrinfo *hints)
{
    gai_job *j = calloc(1, sizeof *j);

    if (!j)
        return NULL;
    j->refs = 2;                /* the caller and the helper */
    if (hints) {
        /* Only these fields are input (getaddrinfo(3)). */
        j->hints.ai_flags = hints->ai_flags;
        j->hints.ai_family = hints->ai_family;
        j->hints.ai_socktype = hints->ai_socktype;
        j->hints.ai_protocol = hints->ai_protocol;
        j->has_hints = true;
    }
    j->node = node ? strdup(node) : NULL;
    j->service = service ? strdup(service) : NULL;
    if ((node && !j->node) || (service && !j->service)) {
        j->refs = 1;
        gai_job_unref(j);
        return NULL;
    }
    return j;
}

/* In a worker thread: touches nothing but the job. */
static void *gai_work(void *arg)
{
    gai_job *j = arg;

    j->rc = getaddrinfo(j->node, j->service, j->has_hints ? &j->hints : NULL, &j->res);
    j->err = j->rc == EAI_SYSTEM ? errno : 0;
    return NULL;
}

static void gai_finish(gai_job *j, int rc, int err)
{
    if (!j->done) {
        j->done = true;
        if (rc) {
            j->rc = rc;
            j->err = err;
        }
    }
    if (j->caller)
        gev__wake(j->caller, j->wait_id, 0);
}

/* A link, so the job is released even if the helper is killed before it
 * starts (gev_shutdown). */
static void gai_helper_never_ran(gev_greenlet *g, void *arg)
{
    gai_job *j = arg;

    gai_finish(j, EAI_SYSTEM, ECANCELED);
    gai_job_unref(j);
}

static void *gai_helper(void *arg)
{
    gai_job *j = arg;

    /* From here on the helper itself lets go of the job, which then does
     * not depend on the hub running a link after this greenlet ends. */
    gev_unlink(gev_current(), gai_helper_never_ran, j);
    if (gev_threadpool_run(gai_work, j, NULL) < 0)
        gai_finish(j, EAI_SYSTEM, errno);
    else
        gai_finish(j, 0, 0);
    gai_job_unref(j);
    return NULL;
}

/* A wait error as getaddrinfo reports it: expiry is EAI_AGAIN. */
static int gai_fail(int err)
{
    errno = err;
    return err == ETIMEDOUT ? EAI_AGAIN : err == ENOMEM ? EAI_MEMORY : EAI_SYSTEM;
}

static bool deadline_passed(gev__nsec deadline)
{
    return deadline != GEV__FOREVER && gev__time_monotonic() >= deadline;
}

/* Hands the job to a new helper greenlet (which runs once we wait); NULL +
 * errno if it cannot be made. */
static gev_greenlet *gai_start(gai_job *j)
{
    return gev__spawn_linked(gai_helper, j, gai_helper_never_ran, j);
}

/* The caller is done with the helper.  If it gave up, the lookup is not
 * wanted any more: a kill takes it off the pool's queue if no worker has
 * it yet (the helper does that once it runs; the caller does not wait). */
static void gai_let_go(gev_greenlet *helper, int err)
{
    if (err)
        (void)gev_kill(helper, 0);
    gev_release(helper);
}

static int gai_in_pool(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res,
                       gev__nsec deadline)
{
    gai_job *j = gai_job_new(node, service, hints);
    if (!j)
        return gai_fail(ENOMEM);
    gev_greenlet *helper = gai_start(j);
    if (!helper) {
        int err = errno;
        j->refs = 1;
        gai_job_unref(j);
        return gai_fail(err);
    }
    j->caller = gev_current();
    j->wait_id = gev__wait_begin();
    gev__wait_note(GEV__WAIT_THREADPOOL, -1);  /* the lookup, in the pool */
    int err = gev__wait(deadline);
    j->caller = NULL;
    gai_let_go(helper, err);
    int rc = err ? gai_fail(err) : j->rc;
    if (!err && rc == 0) {
        *res = j->res;          /* the caller's now */
        j->res = NULL;
    } else if (!err && rc == EAI_SYSTEM) {
        errno = j->err;         /* only EAI_SYSTEM says errno holds the cause */
    }
    gai_job_unref(j);
    return rc;
}

/* getaddrinfo with an absolute deadline.  Numeric addresses need no
 * lookup, so they are answered here, without the pool and without
 * switching (also from hub context). */
static int gai_until(const char *node, const char *service,
                     const struct addrinfo *hints, struct addrinfo **res,
                     gev__nsec deadline)
{
    if (!res)
        return gai_fail(EINVAL);
    int err = gev__fd_check();
    if (err)
        return gai_fail(err);
    struct addrinfo numeric = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    if (hints) {
        numeric.ai_flags |= hints->ai_flags;
        numeric.ai_family = hints->ai_family;
        numeric.ai_socktype = hints->ai_socktype;
        numeric.ai_protocol = hints->ai_protocol;
    }
    if (getaddrinfo(node, service, &numeric, res) == 0)
        return 0;
    if ((err = gev__block_check()))
        return gai_fail(err);
    if (deadline_passed(deadline))
        return gai_fail(ETIMEDOUT);
    return gai_in_pool(node, service, hints, res, deadline);
}

int gev_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                    struct addrinfo **res, double timeout)
{
    gev__nsec deadline;
    int err = gev__timeout_deadline(timeout, &deadline);
    return err ? gai_fail(err) : gai_until(node, service, hints, res, deadline);
}

/* ---- TCP helpers -------------------------------------------------------------- */

/* A failed lookup as an errno, for the calls that return fds.  A name that
 * does not resolve is EADDRNOTAVAIL, as in libdill. */
static int gai_errno(int rc, gev__nsec deadline)
{
    switch (rc) {
    case EAI_SYSTEM:
        return errno;
    case EAI_MEMORY:
        return ENOMEM;
    case EAI_AGAIN:
        return deadline_passed(deadline) ? ETIMEDOUT : EAGAIN;
    case EAI_SERVICE: case EAI_SOCKTYPE: case EAI_FAMILY: case EAI_BADFLAGS:
        return EINVAL;
    default:
        return EADDRNOTAVAIL;
    }
}

static int tcp_resolve(const char *host, const char *port, int flags,
                       struct addrinfo **list, gev__nsec deadline)
{
    struct addrinfo hints = { .ai_flags = flags, .ai_socktype = SOCK_STREAM };

    if (!port)
        return gev__fail(EINVAL);
    int rc = gai_until(host, port, &hints, list, deadline);
    return rc ? gev__fail(gai_errno(rc, deadline)) : 0;
}

/* A wait that failed for the caller rather than for this address. */
static bool connect_give_up(int err, gev__nsec deadline)
{
    return err == ECANCELED || err == EDEADLK || gev__fd_check() != 0 ||
           deadline_passed(deadline);
}

int gev__tcp_connect_list(const struct addrinfo *list, gev__nsec deadline)
{
    int err = EADDRNOTAVAIL;    /* an empty list */

    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        int fd = gev_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (gev__connect_until(fd, ai->ai_addr, ai->ai_addrlen, deadline) == 0)
            return fd;
        err = errno;
        gev_close(fd);
        if (connect_give_up(err, deadline))
            break;
    }
    return gev__fail(err);
}

int gev_tcp_connect(const char *host, const char *port, double timeout)
{
    gev__nsec deadline;
    int err = gev__timeout_deadline(timeout, &deadline);
    if (err)
        return gev__fail(err);
    struct addrinfo *list;

    if (tcp_resolve(host, port, 0, &list, deadline) < 0)
        return -1;
    int fd = gev__tcp_connect_list(list, deadline);
    err = errno;
    freeaddrinfo(list);
    errno = err;
    return fd;
}

static int tcp_listen_on(const struct addrinfo *ai, int backlog)
{
    int one = 1;
    int fd = gev_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
        bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
        return fd;
    int err = errno;
    gev_close(fd);
    return gev__fail(err);
}

int gev_tcp_listen(const char *host, const char *port, int backlog)
{
    struct addrinfo *list;

    if (tcp_resolve(host, port, AI_PASSIVE, &list, GEV__FOREVER) < 0)
        return -1;
    int fd = -1, err = EADDRNOTAVAIL;
    for (const struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next)
        if ((fd = tcp_listen_on(ai, backlog)) < 0)
            err = errno;
    freeaddrinfo(list);
    return fd >= 0 ? fd : gev__fail(err);
}
