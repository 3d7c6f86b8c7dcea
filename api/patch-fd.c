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
 * ends.  SO_RCVTIMEO/SO_SNDTIMEO need no hook: the kernel keeps them and
 * the IO hooks read them back before they wait (patch.c).
 */
#include "config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "patch.h"

GEV__PATCH_ORIGINAL(close);
GEV__PATCH_ORIGINAL(dup2);
GEV__PATCH_ORIGINAL(dup3);
GEV__PATCH_ORIGINAL(fcntl64);
GEV__PATCH_ORIGINAL(ioctl);

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
    if (gev__patch_fd_get(fd))
        (void)gev__patch_fd_set(fd, 0);
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
    int r = atomic_load_explicit(&gev__patch_on, memory_order_relaxed) ?
            patch_fcntl_view(fd, cmd, arg) : -2;
    if (r != -2)
        return r;
    return large ? GEV__PATCH_REAL(fcntl64)(fd, cmd, arg) : gev__patch_real_fcntl(fd, cmd, arg);
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
    return GEV__PATCH_REAL(ioctl)(fd, req, arg);
}
