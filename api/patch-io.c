/* api/patch-io.c: the read-like and write-like hooks, connect and accept.
 *
 * A caller that believes fd blocking gets blocking behaviour while its
 * greenlet waits on the hub.  The descriptor's O_NONBLOCK flag is never
 * touched for reads and writes: each attempt is non-blocking by itself —
 * MSG_DONTWAIT on sockets, and preadv2/pwritev2 with RWF_NOWAIT for
 * read/write (sockets and pipes honour it) — so a file description shared
 * with another thread or process is never seen non-blocking.  Where a
 * descriptor does not support RWF_NOWAIT (ttys, some character devices),
 * the hook waits until poll(2) says ready and then makes the real,
 * blocking call: if another process takes the data in between, that one
 * call blocks the thread (accepted, and rare).  accept works the same way,
 * because a listening socket shared by prefork workers must never be seen
 * non-blocking by them.  connect cannot be made non-blocking per call, so
 * it sets O_NONBLOCK for its duration, and fcntl(F_GETFL) reports the
 * caller's view meanwhile (patch-fd.c).  Regular files and block devices
 * are "always ready", as poll(2) says: the real call, which may block on
 * the disk as it does in gevent.
 *
 * What each call must know about the descriptor (socket? the caller's
 * O_NONBLOCK? timeouts?) comes from the per-fd cache (patch.h), so that a
 * blocking read or write on a known stream socket is one recv/send with
 * MSG_DONTWAIT, and a read right after a short one waits first (gev_recv's
 * drained mark): the system calls of gev_recv/gev_send, no more.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "patch.h"

/* ---- one operation ----------------------------------------------------- */

typedef struct patch_io patch_io;
struct patch_io {
    int fd;
    int events;                             /* GEV__READ or GEV__WRITE */
    ssize_t (*try_)(patch_io *io);          /* one non-blocking attempt */
    ssize_t (*real)(patch_io *io);          /* the blocking original */
    ssize_t (*plain)(patch_io *io);         /* try_ if the cache was wrong */
    struct iovec *iov;                      /* what is left to transfer */
    int iovcnt;
    struct msghdr *msg;                     /* socket calls: name, control */
    int flags;                              /* socket calls: the caller's */
    bool sock;                              /* try_ is a socket call */
    bool drain_ok;                          /* a read without flags */
    bool kind_known, regular, caller_nb;    /* learned at the first EAGAIN */
    bool deadline_set;
    gev__nsec deadline;                     /* the caller's timeout, set once */
};

/* What the per-fd state `st` (patch.h) means for this call.  The
 * caller's timeout runs from the first wait of the call on. */
static void patch_know(patch_io *io, unsigned st)
{
    io->kind_known = true;
    io->regular = st & GEV__PATCH_FD_REGULAR;
    io->caller_nb = (st & GEV__PATCH_FD_NB) && !io->regular;  /* meaningless there */
    if (!io->deadline_set)
        io->deadline = gev__patch_fd_deadline(io->fd, st, io->events);
    io->deadline_set = true;
}

/* What a blocking call must do after a try said EAGAIN: decided once per
 * call.  Returns 0 to wait until io->deadline, 1 to make the real call
 * (regular files), -1 to return EAGAIN (the caller's own non-blocking fd).
 * The answer is cached per fd; here, on the way to a wait, one F_GETFL
 * checks its O_NONBLOCK view (patch.h says why). */
static int patch_learn(patch_io *io)
{
    if (!io->kind_known)
        patch_know(io, gev__patch_fd_state(io->fd, true));
    return io->regular ? 1 : io->caller_nb ? -1 : 0;
}

/* A blocking read right after a short one on a stream socket that the
 * cache knows blocking to the caller (gev_recv's drained mark, patch.h):
 * the try would say EAGAIN, so wait for the loop's report first, saving
 * that syscall.  0 (try now) or the wait's errno. */
static int patch_wait_drained(gev_greenlet *g, patch_io *io)
{
    unsigned st = gev__patch_fd_get(io->fd);
    unsigned need = GEV__PATCH_FD_KNOWN | GEV__PATCH_FD_SOCK;
    if ((st & (need | GEV__PATCH_FD_NB)) != need || !gev__patch_read_drained(io->fd))
        return 0;
    io->deadline = gev__patch_fd_deadline(io->fd, st, GEV__READ);
    io->deadline_set = true;
    return gev__patch_wait(g, io->fd, GEV__READ, io->deadline);
}

/* Wait until poll(2) says fd is ready for `events` right now: then the
 * real call that follows, with no switch in between, finds it so unless
 * another thread or process took it.  Several greenlets may wake for one
 * event (a connection for three acceptors): each checks again.  0 or an
 * errno. */
static int patch_wait_ready(gev_greenlet *g, int fd, int events, gev__nsec deadline)
{
    struct pollfd p = { .fd = fd, .events = events & GEV__READ ? POLLIN : POLLOUT };
    int err = 0;
    while (!err && gev__patch_real_poll_now(&p, 1) == 0)
        err = gev__patch_wait(g, fd, events, deadline);
    return err;
}

/* A descriptor without RWF_NOWAIT: wait until ready, then the real call
 * (see the header comment for the race this accepts). */
static ssize_t patch_ready_then_real(gev_greenlet *g, patch_io *io)
{
    int err = gev__patch_fd_state(io->fd, true) & GEV__PATCH_FD_NB ? 0 :
              patch_wait_ready(g, io->fd, io->events, GEV__FOREVER);
    return err ? gev__fail(err) : io->real(io);
}

/* One patched transfer: the result of the first attempt that did not say
 * EAGAIN, waiting on the hub between attempts as the caller's blocking
 * view asks.  Returns like the syscall. */
static ssize_t patch_do(gev_greenlet *g, patch_io *io)
{
    int err = gev__patch_check(g);
    if (!err && io->drain_ok)
        err = patch_wait_drained(g, io);
    if (err)
        return gev__fail(err);
    for (;;) {
        ssize_t r = io->try_(io);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == EBADF)
            gev__patch_fd_forget(io->fd);
        if (errno == ENOTSOCK && io->plain) {   /* the cache said "socket" */
            gev__patch_fd_forget(io->fd);
            io->try_ = io->plain, io->plain = NULL, io->sock = false;
            continue;
        }
        if (errno == EOPNOTSUPP && !io->sock)
            return patch_ready_then_real(g, io);
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        int what = patch_learn(io);
        if (what > 0)
            return io->real(io);
        if (what < 0)
            return gev__fail(EAGAIN);
        if ((err = gev__patch_wait(g, io->fd, io->events, io->deadline)))
            return gev__fail(err);
    }
}

/* After a partial transfer: whether the caller's non-blocking view makes
 * it the answer (a blocking caller gets the rest too). */
static bool patch_partial_is_final(patch_io *io)
{
    if (!io->kind_known)
        (void)patch_learn(io);
    return io->caller_nb;
}

/* Drop n transferred bytes from the front of io->iov. */
static void patch_advance(patch_io *io, size_t n)
{
    while (io->iovcnt > 0 && n >= io->iov->iov_len) {
        n -= io->iov->iov_len;
        io->iov++;
        io->iovcnt--;
    }
    if (io->iovcnt > 0) {
        io->iov->iov_base = (char *)io->iov->iov_base + n;
        io->iov->iov_len -= n;
    }
}

/* A copy of the caller's array that a transfer loop may advance (writes,
 * and reads with MSG_WAITALL): `small` when it fits, else malloc'd (NULL,
 * ENOMEM).  The caller frees it when it is not `small`. */
#define PATCH_IOV_STACK 8

static struct iovec *patch_iov_copy(struct iovec *small, const struct iovec *iov, int cnt)
{
    struct iovec *copy = small;
    if (cnt > PATCH_IOV_STACK && !(copy = malloc((size_t)cnt * sizeof *copy))) {
        errno = ENOMEM;
        return NULL;
    }
    if (cnt > 0)
        memcpy(copy, iov, (size_t)cnt * sizeof *copy);
    return copy;
}

static size_t patch_iov_total(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* A read without flags that got fewer than `want` bytes emptied a stream
 * socket: the next one may wait first (patch_wait_drained). */
static inline void patch_note_short(int fd, ssize_t r, size_t want)
{
    if (r > 0 && (size_t)r < want)
        gev__patch_read_short(fd, r, want);
}

/* A blocking write writes everything, as a blocking send(2) on a stream
 * does; a failure after some bytes went out returns their count.  `total`
 * is the caller's byte count; io->iov is a copy the loop may advance. */
static ssize_t patch_write_all(gev_greenlet *g, patch_io *io, size_t total)
{
    size_t done = 0;
    for (;;) {
        ssize_t r = patch_do(g, io);
        if (r < 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)r;
        if (done >= total || r == 0 || patch_partial_is_final(io))
            return (ssize_t)done;
        patch_advance(io, (size_t)r);
        if (io->msg)
            io->msg->msg_control = NULL, io->msg->msg_controllen = 0;  /* sent once */
    }
}

/* ---- the attempts ---------------------------------------------------------- */

static ssize_t try_preadv(patch_io *io)
{
    return preadv2(io->fd, io->iov, io->iovcnt, -1, RWF_NOWAIT);
}

static ssize_t try_pwritev(patch_io *io)
{
    return pwritev2(io->fd, io->iov, io->iovcnt, -1, RWF_NOWAIT);
}

static ssize_t try_recvmsg(patch_io *io)
{
    io->msg->msg_iov = io->iov;
    io->msg->msg_iovlen = (size_t)io->iovcnt;
    return recvmsg(io->fd, io->msg, io->flags | MSG_DONTWAIT);
}

static ssize_t try_sendmsg(patch_io *io)
{
    io->msg->msg_iov = io->iov;
    io->msg->msg_iovlen = (size_t)io->iovcnt;
    return sendmsg(io->fd, io->msg, io->flags | MSG_DONTWAIT);
}

/* The originals, also the fallbacks of dlsym (raw syscalls). */
GEV__PATCH_ORIGINAL(read);
GEV__PATCH_ORIGINAL(readv);
GEV__PATCH_ORIGINAL(write);
GEV__PATCH_ORIGINAL(writev);
GEV__PATCH_ORIGINAL(recv);
GEV__PATCH_ORIGINAL(recvfrom);
GEV__PATCH_ORIGINAL(recvmsg);
GEV__PATCH_ORIGINAL(send);
GEV__PATCH_ORIGINAL(sendto);
GEV__PATCH_ORIGINAL(sendmsg);
GEV__PATCH_ORIGINAL(connect);
GEV__PATCH_ORIGINAL(accept);
GEV__PATCH_ORIGINAL(accept4);

static ssize_t gev__sys_read(int fd, void *b, size_t n) { return syscall(SYS_read, fd, b, n); }
static ssize_t gev__sys_write(int fd, const void *b, size_t n) { return syscall(SYS_write, fd, b, n); }
static ssize_t gev__sys_readv(int fd, const struct iovec *v, int n) { return syscall(SYS_readv, fd, v, n); }
static ssize_t gev__sys_writev(int fd, const struct iovec *v, int n) { return syscall(SYS_writev, fd, v, n); }
static ssize_t gev__sys_recvfrom(int fd, void *b, size_t n, int fl, struct sockaddr *a, socklen_t *al)
{
    return syscall(SYS_recvfrom, fd, b, n, fl, a, al);
}
static ssize_t gev__sys_recv(int fd, void *b, size_t n, int fl) { return gev__sys_recvfrom(fd, b, n, fl, NULL, NULL); }
static ssize_t gev__sys_recvmsg(int fd, struct msghdr *m, int fl) { return syscall(SYS_recvmsg, fd, m, fl); }
static ssize_t gev__sys_sendto(int fd, const void *b, size_t n, int fl, const struct sockaddr *a, socklen_t al)
{
    return syscall(SYS_sendto, fd, b, n, fl, a, al);
}
static ssize_t gev__sys_send(int fd, const void *b, size_t n, int fl) { return gev__sys_sendto(fd, b, n, fl, NULL, 0); }
static ssize_t gev__sys_sendmsg(int fd, const struct msghdr *m, int fl) { return syscall(SYS_sendmsg, fd, m, fl); }
static int gev__sys_connect(int fd, const struct sockaddr *a, socklen_t al) { return (int)syscall(SYS_connect, fd, a, al); }
static int gev__sys_accept4(int fd, struct sockaddr *a, socklen_t *al, int fl) { return (int)syscall(SYS_accept4, fd, a, al, fl); }
static int gev__sys_accept(int fd, struct sockaddr *a, socklen_t *al) { return gev__sys_accept4(fd, a, al, 0); }

static ssize_t real_readv(patch_io *io) { return GEV__PATCH_REAL(readv)(io->fd, io->iov, io->iovcnt); }
static ssize_t real_writev(patch_io *io) { return GEV__PATCH_REAL(writev)(io->fd, io->iov, io->iovcnt); }
static ssize_t real_recvmsg(patch_io *io) { return GEV__PATCH_REAL(recvmsg)(io->fd, io->msg, io->flags); }
static ssize_t real_sendmsg(patch_io *io) { return GEV__PATCH_REAL(sendmsg)(io->fd, io->msg, io->flags); }

/* read/write on a stream socket the cache knows (n > 0: recv and send of
 * nothing differ from read and write of nothing on datagram sockets). */
static ssize_t try_recv(patch_io *io)
{
    return GEV__PATCH_REAL(recvfrom)(io->fd, io->iov->iov_base, io->iov->iov_len,
                                     MSG_DONTWAIT, NULL, NULL);
}

static ssize_t try_send(patch_io *io)
{
    return GEV__PATCH_REAL(sendto)(io->fd, io->iov->iov_base, io->iov->iov_len,
                                   MSG_DONTWAIT, NULL, 0);
}

/* The try for one read/write buffer: recv/send on a stream socket the cache
 * knows (patch.h), else preadv2/pwritev2 (`plain`). */
static void patch_pick_try(patch_io *io, ssize_t (*plain)(patch_io *),
                           ssize_t (*sock)(patch_io *))
{
    unsigned st = gev__patch_fd_get(io->fd);
    io->try_ = plain;
    if (io->iovcnt == 1 && io->iov->iov_len > 0 &&
        (st & (GEV__PATCH_FD_KNOWN | GEV__PATCH_FD_STREAM)) ==
            (GEV__PATCH_FD_KNOWN | GEV__PATCH_FD_STREAM)) {
        io->try_ = sock, io->plain = plain, io->sock = true;
    }
}

/* ---- reads ------------------------------------------------------------------ */

static ssize_t patch_readv(gev_greenlet *g, int fd, struct iovec *iov, int cnt)
{
    patch_io io = { .fd = fd, .events = GEV__READ, .real = real_readv,
                    .iov = iov, .iovcnt = cnt, .drain_ok = true };
    patch_pick_try(&io, try_preadv, try_recv);
    ssize_t r = patch_do(g, &io);
    patch_note_short(fd, r, cnt == 1 ? iov->iov_len : patch_iov_total(iov, cnt));
    return r;
}

/* recv-like calls on a blocking stream socket with MSG_WAITALL: the kernel
 * fills the buffer before it returns; so do we, one try at a time. */
static ssize_t patch_recv_all(gev_greenlet *g, patch_io *io, ssize_t r)
{
    int type = 0;
    socklen_t tl = sizeof type;
    size_t total = patch_iov_total(io->iov, io->iovcnt), done = (size_t)r;

    if (getsockopt(io->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM)
        return r;
    while (done < total && r > 0 && !patch_partial_is_final(io)) {
        patch_advance(io, (size_t)r);
        if ((r = patch_do(g, io)) > 0)
            done += (size_t)r;
    }
    return done;
}

static ssize_t patch_recvmsg(gev_greenlet *g, int fd, struct msghdr *msg, int flags)
{
    int cnt = (int)msg->msg_iovlen;
    struct iovec small[PATCH_IOV_STACK], *copy = patch_iov_copy(small, msg->msg_iov, cnt);
    if (!copy)
        return -1;
    patch_io io = { .fd = fd, .events = GEV__READ, .try_ = try_recvmsg, .real = real_recvmsg,
                    .iov = copy, .iovcnt = cnt, .msg = msg, .flags = flags, .sock = true,
                    .drain_ok = !flags };
    struct iovec *saved = msg->msg_iov;
    size_t total = patch_iov_total(copy, cnt);
    ssize_t r = patch_do(g, &io);
    if (r > 0 && (flags & MSG_WAITALL) && (size_t)r < total)
        r = patch_recv_all(g, &io, r);
    else if (!flags)
        patch_note_short(fd, r, total);
    msg->msg_iov = saved;
    msg->msg_iovlen = (size_t)cnt;
    if (copy != small)
        free(copy);
    return r;
}

static ssize_t patch_recvfrom(gev_greenlet *g, int fd, void *buf, size_t n, int flags,
                              struct sockaddr *addr, socklen_t *addrlen)
{
    struct iovec v = { buf, n };
    struct msghdr m = { .msg_name = addr, .msg_namelen = addr && addrlen ? *addrlen : 0,
                        .msg_iov = &v, .msg_iovlen = 1 };
    ssize_t r = patch_recvmsg(g, fd, &m, flags);
    if (r >= 0 && addr && addrlen)
        *addrlen = m.msg_namelen;
    return r;
}

GEV__HOOK ssize_t read(int fd, void *buf, size_t n)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return GEV__PATCH_REAL(read)(fd, buf, n);
    struct iovec v = { buf, n };
    return patch_readv(g, fd, &v, 1);
}
/* patch.c compares it with what "read" resolves to. */
extern __typeof__(read) gev__patch_read_local __attribute__((alias("read"), visibility("hidden")));

GEV__HOOK ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || cnt <= 0 || cnt > IOV_MAX)
        return GEV__PATCH_REAL(readv)(fd, iov, cnt);
    /* preadv2 does not change the array; a cast, not a copy. */
    return patch_readv(g, fd, (struct iovec *)iov, cnt);
}

GEV__HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || (flags & MSG_DONTWAIT))
        return GEV__PATCH_REAL(recv)(fd, buf, n, flags);
    return patch_recvfrom(g, fd, buf, n, flags, NULL, NULL);
}

GEV__HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                           socklen_t *addrlen)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || (flags & MSG_DONTWAIT))
        return GEV__PATCH_REAL(recvfrom)(fd, buf, n, flags, addr, addrlen);
    return patch_recvfrom(g, fd, buf, n, flags, addr, addrlen);
}

GEV__HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || (flags & MSG_DONTWAIT) || !msg || msg->msg_iovlen > IOV_MAX)
        return GEV__PATCH_REAL(recvmsg)(fd, msg, flags);
    return patch_recvmsg(g, fd, msg, flags);
}

/* ---- writes ----------------------------------------------------------------- */

static ssize_t patch_writev(gev_greenlet *g, int fd, const struct iovec *iov, int cnt,
                            struct msghdr *msg, int flags)
{
    struct iovec small[PATCH_IOV_STACK], *copy = patch_iov_copy(small, iov, cnt);
    if (!copy)
        return -1;
    patch_io io = { .fd = fd, .events = GEV__WRITE, .iov = copy, .iovcnt = cnt };
    if (msg) {
        io.try_ = try_sendmsg, io.real = real_sendmsg;
        io.msg = msg, io.flags = flags, io.sock = true;
    } else {
        io.real = real_writev;
        patch_pick_try(&io, try_pwritev, try_send);
    }
    ssize_t r = patch_write_all(g, &io, patch_iov_total(iov, cnt));
    if (copy != small)
        free(copy);
    return r;
}

static ssize_t patch_sendmsg(gev_greenlet *g, int fd, const struct msghdr *msg, int flags)
{
    struct msghdr m = *msg;     /* control is cleared after the first part */
    return patch_writev(g, fd, msg->msg_iov, (int)msg->msg_iovlen, &m, flags);
}

static ssize_t patch_sendto(gev_greenlet *g, int fd, const void *buf, size_t n, int flags,
                            const struct sockaddr *dest, socklen_t destlen)
{
    struct iovec v = { (void *)buf, n };
    struct msghdr m = { .msg_name = (void *)dest, .msg_namelen = destlen,
                        .msg_iov = &v, .msg_iovlen = 1 };
    return patch_sendmsg(g, fd, &m, flags);
}

GEV__HOOK ssize_t write(int fd, const void *buf, size_t n)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return GEV__PATCH_REAL(write)(fd, buf, n);
    struct iovec v = { (void *)buf, n };
    return patch_writev(g, fd, &v, 1, NULL, 0);
}

GEV__HOOK ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || cnt <= 0 || cnt > IOV_MAX)
        return GEV__PATCH_REAL(writev)(fd, iov, cnt);
    return patch_writev(g, fd, iov, cnt, NULL, 0);
}

GEV__HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || (flags & MSG_DONTWAIT))
        return GEV__PATCH_REAL(send)(fd, buf, n, flags);
    return patch_sendto(g, fd, buf, n, flags, NULL, 0);
}

GEV__HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                         const struct sockaddr *dest, socklen_t destlen)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || (flags & MSG_DONTWAIT))
        return GEV__PATCH_REAL(sendto)(fd, buf, n, flags, dest, destlen);
    return patch_sendto(g, fd, buf, n, flags, dest, destlen);
}

GEV__HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || (flags & MSG_DONTWAIT) || !msg || msg->msg_iovlen > IOV_MAX)
        return GEV__PATCH_REAL(sendmsg)(fd, msg, flags);
    return patch_sendmsg(g, fd, msg, flags);
}

/* ---- connect and accept ------------------------------------------------------- */

/* Connect with O_NONBLOCK set for the duration (the one flag flip). */
static int patch_connect(gev_greenlet *g, int fd, const struct sockaddr *addr, socklen_t len,
                         int fl)
{
    if (gev__patch_fd_set(fd, GEV__PATCH_FD_OVERRIDE) < 0 ||
        gev__patch_real_fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        (void)gev__patch_fd_set(fd, 0);
        return GEV__PATCH_REAL(connect)(fd, addr, len);
    }
    int r = GEV__PATCH_REAL(connect)(fd, addr, len), err = r < 0 ? errno : 0;
    if (err == EINPROGRESS) {
        int werr = gev__patch_wait(g, fd, GEV__WRITE, gev__patch_sock_deadline(fd, GEV__WRITE));
        socklen_t el = sizeof err;
        if (werr == EAGAIN)
            err = EINPROGRESS;      /* SO_SNDTIMEO expired: what Linux says */
        else if (werr)
            err = werr;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (werr == EBADF)          /* closed meanwhile: the number is not ours */
            return gev__fail(EBADF);
    }
    /* Back to the caller's view, including a wish it expressed meanwhile. */
    bool nb = gev__patch_fd_get(fd) & GEV__PATCH_FD_CALLER_NB;
    int now = gev__patch_real_fcntl(fd, F_GETFL, 0);
    if (now >= 0)
        (void)gev__patch_real_fcntl(fd, F_SETFL, nb ? now | O_NONBLOCK : now & ~O_NONBLOCK);
    (void)gev__patch_fd_set(fd, 0);     /* learned again when needed */
    return err ? gev__fail(err) : 0;
}

GEV__HOOK int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return GEV__PATCH_REAL(connect)(fd, addr, len);
    int err = gev__patch_check(g);
    if (err)
        return gev__fail(err);
    int fl = gev__patch_real_fcntl(fd, F_GETFL, 0);
    /* (a connect already in progress on fd keeps O_NONBLOCK: not ours) */
    if (fl < 0 || (fl & O_NONBLOCK) || (gev__patch_fd_get(fd) & GEV__PATCH_FD_OVERRIDE))
        return GEV__PATCH_REAL(connect)(fd, addr, len);
    return patch_connect(g, fd, addr, len, fl);
}

/* Wait until the listening socket is readable, then the real accept4
 * (the race with other processes is described at the top). */
static int patch_accept4(gev_greenlet *g, int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int err = gev__patch_check(g);
    if (err)
        return gev__fail(err);
    unsigned st = gev__patch_fd_state(fd, true);
    if (!(st & GEV__PATCH_FD_NB) &&
        (err = patch_wait_ready(g, fd, GEV__READ, gev__patch_fd_deadline(fd, st, GEV__READ))))
        return gev__fail(err);
    return GEV__PATCH_REAL(accept4)(fd, addr, len, flags);
}

/* A socket accepted on lfd, entered in the cache (patch.h) whoever accepted
 * it: it inherits lfd's type and timeouts (Linux copies them), not its
 * O_NONBLOCK. */
static int patch_accepted(int lfd, int fd, int flags)
{
    if (fd >= 0 && atomic_load_explicit(&gev__patch_on, memory_order_relaxed)) {
        unsigned st = gev__patch_fd_get(lfd);
        if (st & GEV__PATCH_FD_KNOWN)
            gev__patch_fd_new_socket(fd, flags & SOCK_NONBLOCK, st);
        else
            gev__patch_fd_forget(fd);
    }
    return fd;
}

GEV__HOOK int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return patch_accepted(fd, GEV__PATCH_REAL(accept)(fd, addr, len), 0);
    return patch_accepted(fd, patch_accept4(g, fd, addr, len, 0), 0);
}

GEV__HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return patch_accepted(fd, GEV__PATCH_REAL(accept4)(fd, addr, len, flags), flags);
    return patch_accepted(fd, patch_accept4(g, fd, addr, len, flags), flags);
}

/* ---- _FORTIFY_SOURCE entry points ---------------------------------------------- */

/* The checked versions: glibc's own aborts on an overflow; otherwise the
 * plain hook. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *addr, socklen_t *addrlen);
GEV__PATCH_ORIGINAL(__read_chk);
GEV__PATCH_ORIGINAL(__recv_chk);
GEV__PATCH_ORIGINAL(__recvfrom_chk);

/* Without glibc's checker (never, on glibc), overflow still stops here. */
static ssize_t gev__sys___read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        abort();
    return gev__sys_read(fd, buf, n);
}
static ssize_t gev__sys___recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        abort();
    return gev__sys_recv(fd, buf, n, flags);
}
static ssize_t gev__sys___recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                       struct sockaddr *addr, socklen_t *addrlen)
{
    if (n > buflen)
        abort();
    return gev__sys_recvfrom(fd, buf, n, flags, addr, addrlen);
}

GEV__HOOK ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen || !gev__patch_acting())
        return GEV__PATCH_REAL(__read_chk)(fd, buf, n, buflen);
    return read(fd, buf, n);
}

GEV__HOOK ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen || !gev__patch_acting())
        return GEV__PATCH_REAL(__recv_chk)(fd, buf, n, buflen, flags);
    return recv(fd, buf, n, flags);
}

GEV__HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                 struct sockaddr *addr, socklen_t *addrlen)
{
    if (n > buflen || !gev__patch_acting())
        return GEV__PATCH_REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, addrlen);
    return recvfrom(fd, buf, n, flags, addr, addrlen);
}
