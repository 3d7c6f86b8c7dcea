/* api/patch-fd.c: close, dup2, dup3, fcntl and ioctl(FIONBIO).
 *
 * close and dup2/dup3 (which close their target) first wake the greenlets
 * of this thread's hub that wait on the number (they fail with EBADF) and
 * drop the hub's watchers and the patch's per-fd state, so nothing
 * survives into a reused number.  They do so whenever patching is on and
 * this thread has a hub, also from the hub itself; another thread cannot
 * touch this hub, so a close there wakes nobody here.
 *
 * fcntl(F_GETFL/F_SETFL) and ioctl(FIONBIO) only differ from libc's while
 * a patched connect has set O_NONBLOCK on the descriptor (patch-io.c): the
 * caller keeps seeing, and setting, its own view, applied when the connect
 * ends.
 *
 * All of them, setsockopt(SO_RCVTIMEO/SO_SNDTIMEO) and socket keep the
 * per-fd cache right (patch.h): what they change is forgotten, a new socket
 * is entered.  The kernel keeps the timeouts themselves: getsockopt needs
 * no hook, and the IO hooks read a timeout back when one is set.
 */
#include "config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "patch.h"

GEV__PATCH_ORIGINAL(close);
GEV__PATCH_ORIGINAL(dup2);
GEV__PATCH_ORIGINAL(dup3);
GEV__PATCH_ORIGINAL(fcntl64);
GEV__PATCH_ORIGINAL(ioctl);
GEV__PATCH_ORIGINAL(socket);
GEV__PATCH_ORIGINAL(setsockopt);

static int gev__sys_close(int fd) { return (int)syscall(SYS_close, fd); }
static int gev__sys_dup3(int o, int n, int fl) { return (int)syscall(SYS_dup3, o, n, fl); }
static int gev__sys_dup2(int o, int n)
{
    if (o == n)     /* dup3 refuses what dup2 allows */
        return syscall(SYS_fcntl, o, F_GETFD) < 0 ? -1 : n;
    return gev__sys_dup3(o, n, 0);
}
static int gev__sys_fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return gev__patch_real_fcntl(fd, cmd, arg);
}
static int gev__sys_socket(int d, int t, int p) { return (int)syscall(SYS_socket, d, t, p); }
static int gev__sys_setsockopt(int fd, int level, int opt, const void *v, socklen_t len)
{
    return (int)syscall(SYS_setsockopt, fd, level, opt, v, len);
}
static int gev__sys_ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return (int)syscall(SYS_ioctl, fd, req, arg);
}

/* fd's number is about to name another file, or nothing. */
static void patch_closing(int fd)
{
    if (!atomic_load_explicit(&gev__patch_on, memory_order_relaxed))
        return;
    if (gev__tls_hub)
        gev__patch_fd_closing(fd);
    gev__patch_fd_forget(fd);
}

GEV__HOOK int close(int fd)
{
    patch_closing(fd);
    return GEV__PATCH_REAL(close)(fd);
}

/* dup2/dup3 close newfd only if oldfd is open and differs. */
static void patch_dup_closing(int oldfd, int newfd)
{
    if (oldfd != newfd && atomic_load_explicit(&gev__patch_on, memory_order_relaxed) &&
        gev__patch_real_fcntl(oldfd, F_GETFD, 0) >= 0)
        patch_closing(newfd);
}

GEV__HOOK int dup2(int oldfd, int newfd)
{
    patch_dup_closing(oldfd, newfd);
    return GEV__PATCH_REAL(dup2)(oldfd, newfd);
}

GEV__HOOK int dup3(int oldfd, int newfd, int flags)
{
    patch_dup_closing(oldfd, newfd);
    return GEV__PATCH_REAL(dup3)(oldfd, newfd, flags);
}

/* F_GETFL/F_SETFL while a connect of ours holds O_NONBLOCK; -2: not ours. */
static int patch_fcntl_view(int fd, int cmd, long arg)
{
    unsigned st = gev__patch_fd_get(fd);
    if (!(st & GEV__PATCH_FD_OVERRIDE) || (cmd != F_GETFL && cmd != F_SETFL))
        return -2;
    if (cmd == F_GETFL) {
        int fl = gev__patch_real_fcntl(fd, F_GETFL, 0);
        if (fl < 0)
            return fl;
        return (fl & ~O_NONBLOCK) | (st & GEV__PATCH_FD_CALLER_NB ? O_NONBLOCK : 0);
    }
    int r = gev__patch_real_fcntl(fd, F_SETFL, arg | O_NONBLOCK);
    if (r == 0)
        (void)gev__patch_fd_set(fd, GEV__PATCH_FD_OVERRIDE |
                                    (arg & O_NONBLOCK ? GEV__PATCH_FD_CALLER_NB : 0));
    return r;
}

static int patch_fcntl(int fd, int cmd, long arg, bool large)
{
    bool on = atomic_load_explicit(&gev__patch_on, memory_order_relaxed);
    int r = on ? patch_fcntl_view(fd, cmd, arg) : -2;
    if (r != -2)
        return r;
    r = large ? GEV__PATCH_REAL(fcntl64)(fd, cmd, arg) : gev__patch_real_fcntl(fd, cmd, arg);
    if (on && cmd == F_SETFL && r == 0)
        gev__patch_fd_forget(fd);       /* O_NONBLOCK may have changed */
    return r;
}

/* The argument is an int or a pointer: read as a long, as glibc does. */
GEV__HOOK int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return patch_fcntl(fd, cmd, arg, false);
}

/* What fcntl is with _FILE_OFFSET_BITS=64 on some ABIs. */
GEV__HOOK int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return patch_fcntl(fd, cmd, arg, true);
}

GEV__HOOK int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (req == FIONBIO && arg && atomic_load_explicit(&gev__patch_on, memory_order_relaxed) &&
        (gev__patch_fd_get(fd) & GEV__PATCH_FD_OVERRIDE)) {
        int fl = patch_fcntl_view(fd, F_GETFL, 0);
        if (fl < 0)
            return -1;
        return patch_fcntl_view(fd, F_SETFL, *(const int *)arg ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
    }
    int r = GEV__PATCH_REAL(ioctl)(fd, req, arg);
    if (req == FIONBIO && r == 0 && atomic_load_explicit(&gev__patch_on, memory_order_relaxed))
        gev__patch_fd_forget(fd);
    return r;
}

/* ---- sockets ------------------------------------------------------------ */

/* A new socket has no timeouts; entering it also overwrites whatever a
 * descriptor closed behind the close hook's back left under the number. */
GEV__HOOK int socket(int domain, int type, int protocol)
{
    int fd = GEV__PATCH_REAL(socket)(domain, type, protocol);
    if (fd >= 0 && atomic_load_explicit(&gev__patch_on, memory_order_relaxed))
        gev__patch_fd_new_socket(fd, type & SOCK_NONBLOCK,
                                 (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM ?
                                 GEV__PATCH_FD_STREAM : 0);
    return fd;
}

/* The option names a timeout may come under (the _OLD/_NEW pairs of
 * 32-bit ABIs with a 64-bit time_t). */
static bool patch_is_timeout_opt(int opt)
{
    bool is = opt == SO_RCVTIMEO || opt == SO_SNDTIMEO;
#if defined SO_RCVTIMEO_NEW && defined SO_SNDTIMEO_NEW
    is = is || opt == SO_RCVTIMEO_NEW || opt == SO_SNDTIMEO_NEW;
#endif
#if defined SO_RCVTIMEO_OLD && defined SO_SNDTIMEO_OLD
    is = is || opt == SO_RCVTIMEO_OLD || opt == SO_SNDTIMEO_OLD;
#endif
    return is;
}

GEV__HOOK int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
    int r = GEV__PATCH_REAL(setsockopt)(fd, level, opt, val, len);
    if (r == 0 && level == SOL_SOCKET && patch_is_timeout_opt(opt) &&
        atomic_load_explicit(&gev__patch_on, memory_order_relaxed))
        gev__patch_fd_forget(fd);
    return r;
}
