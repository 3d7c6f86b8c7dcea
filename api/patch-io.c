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
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
    struct iovec *iov;                      /* what is left to transfer */
    int iovcnt;
    struct msghdr *msg;                     /* socket calls: name, control */
    int flags;                              /* socket calls: the caller's */
    bool sock;                              /* try_ is a socket call */
    bool kind_known, regular, caller_nb;    /* learned at the first EAGAIN */
    gev__nsec deadline;
};

/* Whether the caller sees fd as non-blocking (its flag, or the wish it
 * expressed while a connect of ours had set O_NONBLOCK). */
static bool patch_caller_nonblock(int fd)
{
    unsigned st = gev__patch_fd_get(fd);
    if (st & GEV__PATCH_FD_OVERRIDE)
        return st & GEV__PATCH_FD_CALLER_NB;
    int fl = gev__patch_real_fcntl(fd, F_GETFL, 0);
    return fl >= 0 && (fl & O_NONBLOCK);
}

/* What a blocking call must do after a try said EAGAIN: learned once per
 * call.  Returns 0 to wait until io->deadline, 1 to make the real call
 * (regular files), -1 to return EAGAIN (the caller's own non-blocking fd).
 * A blocking socket, the common case, costs two syscalls here: F_GETFL,
 * and the getsockopt of its timeout, which also says it is a socket. */
static int patch_learn(patch_io *io)
{
    if (!io->kind_known) {
        io->kind_known = true;
        io->caller_nb = patch_caller_nonblock(io->fd);
        if (io->caller_nb || !gev__patch_sock_timeout(io->fd, io->events, &io->deadline)) {
            struct stat st;
            io->regular = fstat(io->fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
            io->caller_nb = io->caller_nb && !io->regular;  /* O_NONBLOCK means nothing there */
            io->deadline = GEV__FOREVER;
        }
    }
    return io->regular ? 1 : io->caller_nb ? -1 : 0;
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
    int err = patch_caller_nonblock(io->fd) ? 0 :
              patch_wait_ready(g, io->fd, io->events, GEV__FOREVER);
    return err ? gev__fail(err) : io->real(io);
}

/* One patched transfer: the result of the first attempt that did not say
 * EAGAIN, waiting on the hub between attempts as the caller's blocking
 * view asks.  Returns like the syscall. */
static ssize_t patch_do(gev_greenlet *g, patch_io *io)
{
    int err = gev__patch_check(g);
    if (err)
        return gev__fail(err);
    for (;;) {
        ssize_t r = io->try_(io);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
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

/* ---- reads ------------------------------------------------------------------ */

static ssize_t patch_readv(gev_greenlet *g, int fd, struct iovec *iov, int cnt)
{
    patch_io io = { .fd = fd, .events = GEV__READ, .try_ = try_preadv, .real = real_readv,
                    .iov = iov, .iovcnt = cnt };
    return patch_do(g, &io);
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
                    .iov = copy, .iovcnt = cnt, .msg = msg, .flags = flags, .sock = true };
    struct iovec *saved = msg->msg_iov;
    size_t total = patch_iov_total(copy, cnt);
    ssize_t r = patch_do(g, &io);
    if (r > 0 && (flags & MSG_WAITALL) && (size_t)r < total)
        r = patch_recv_all(g, &io, r);
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
        io.try_ = try_pwritev, io.real = real_writev;
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
    unsigned st = gev__patch_fd_get(fd);
    int now = gev__patch_real_fcntl(fd, F_GETFL, 0);
    if (now >= 0)
        (void)gev__patch_real_fcntl(fd, F_SETFL, (st & GEV__PATCH_FD_CALLER_NB) ? now | O_NONBLOCK :
                                                 now & ~O_NONBLOCK);
    (void)gev__patch_fd_set(fd, 0);
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
    if (fl < 0 || (fl & O_NONBLOCK) || gev__patch_fd_get(fd))
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
    if (!patch_caller_nonblock(fd) &&
        (err = patch_wait_ready(g, fd, GEV__READ, gev__patch_sock_deadline(fd, GEV__READ))))
        return gev__fail(err);
    return GEV__PATCH_REAL(accept4)(fd, addr, len, flags);
}

GEV__HOOK int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return GEV__PATCH_REAL(accept)(fd, addr, len);
    return patch_accept4(g, fd, addr, len, 0);
}

GEV__HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return GEV__PATCH_REAL(accept4)(fd, addr, len, flags);
    return patch_accept4(g, fd, addr, len, flags);
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
