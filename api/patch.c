/* api/patch.c: gev_patch_all(), the originals, the per-fd table and the
 * waits the hooks share.  See api/patch.h for when a hook acts. */
#include "config.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "patch.h"

atomic_bool gev__patch_on;

/* ---- the originals -------------------------------------------------------- */

/* Per thread: dlsym running, so a hooked call it makes takes the fallback. */
static _Thread_local bool resolving;

void *gev__patch_resolve(void *_Atomic *slot, const char *name, void *fallback)
{
    if (resolving)
        return fallback;
    resolving = true;
    void *p = dlsym(RTLD_NEXT, name);
    resolving = false;
    if (!p)
        p = fallback;
    atomic_store_explicit(slot, p, memory_order_release);
    return p;
}

GEV__PATCH_ORIGINAL(fcntl);

static int gev__sys_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = va_arg(ap, long);
    va_end(ap);
    return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int gev__patch_real_fcntl(int fd, int cmd, long arg)
{
    return GEV__PATCH_REAL(fcntl)(fd, cmd, arg);
}


/* ---- the per-fd table ----------------------------------------------------- */

#define FD_CHUNK_BITS 14
#define FD_DIR_BITS 16
#define FD_MAX (1L << (FD_CHUNK_BITS + FD_DIR_BITS))

/* Two bytes per fd.  512 KiB of pointers in .bss: only the pages of used directory slots are
 * ever touched.  A chunk, once published, is never freed (descriptors come
 * back), which is what makes the lock-free reads safe. */
static _Atomic(atomic_ushort *) fd_dir[1L << FD_DIR_BITS];

unsigned gev__patch_fd_get(int fd)
{
    if (fd < 0 || fd >= FD_MAX)
        return 0;
    atomic_ushort *c = atomic_load_explicit(&fd_dir[fd >> FD_CHUNK_BITS], memory_order_acquire);
    return c ? atomic_load_explicit(&c[fd & ((1 << FD_CHUNK_BITS) - 1)],
                                    memory_order_relaxed) : 0;
}

int gev__patch_fd_set(int fd, unsigned flags)
{
    if (fd < 0 || fd >= FD_MAX)
        return flags ? gev__fail(EBADF) : 0;
    _Atomic(atomic_ushort *) *slot = &fd_dir[fd >> FD_CHUNK_BITS];
    atomic_ushort *c = atomic_load_explicit(slot, memory_order_acquire);
    if (!c) {
        if (!flags)
            return 0;
        atomic_ushort *fresh = calloc(1 << FD_CHUNK_BITS, sizeof *fresh);
        if (!fresh)
            return gev__fail(ENOMEM);
        c = NULL;
        if (atomic_compare_exchange_strong(slot, &c, fresh))
            c = fresh;
        else
            free(fresh);            /* another thread won: c is theirs */
    }
    atomic_store_explicit(&c[fd & ((1 << FD_CHUNK_BITS) - 1)], (unsigned short)flags,
                          memory_order_relaxed);
    return 0;
}

/* ---- waits ------------------------------------------------------------------ */

int gev__patch_wait(gev_greenlet *g, int fd, int events, gev__nsec deadline)
{
    if (gev__patch_fd_wait(fd, events, deadline) >= 0)
        return 0;
    int err = errno;
    if (err == EBUSY) {
        /* Another greenlet waits on fd in this direction (several
         * greenlets accepting on one socket): wait through a poll set. */
        struct pollfd p = { .fd = fd, .events = (short)((events & GEV__READ ? POLLIN : 0) |
                                                        (events & GEV__WRITE ? POLLOUT : 0)) };
        int n = gev__patch_poll(g, &p, 1, deadline);
        return n > 0 ? 0 : n == 0 ? EAGAIN : errno;
    }
    /* ETIMEDOUT is either the caller's deadline or a scoped timeout. */
    return err == ETIMEDOUT && !g->expired_timeouts ? EAGAIN : err;
}

gev__nsec gev__patch_sock_deadline(int fd, int events)
{
    struct timeval tv = { 0, 0 };
    socklen_t len = sizeof tv;
    int opt = events & GEV__READ ? SO_RCVTIMEO : SO_SNDTIMEO;

    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0 || !(tv.tv_sec || tv.tv_usec))
        return GEV__FOREVER;
    return gev__patch_deadline_after((double)tv.tv_sec + (double)tv.tv_usec / 1e6);
}

/* ---- what is cached about a descriptor (patch.h) ----------------------------- */

/* Whether socket option `opt` (a timeout) is set: 1, unset: 0, no socket: -1. */
static int patch_sock_has(int fd, int opt)
{
    struct timeval tv = { 0, 0 };
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0)
        return -1;
    return tv.tv_sec || tv.tv_usec;
}

/* Asks the kernel: F_GETFL, then the timeouts (which also tell a socket),
 * else fstat.  Cached unless a connect of ours holds O_NONBLOCK (then the
 * caller's view comes from `cur`, and the entry is the connect's). */
static unsigned patch_fd_learn(int fd, unsigned cur)
{
    int fl = gev__patch_real_fcntl(fd, F_GETFL, 0);
    if (fl < 0) {
        if (!(cur & GEV__PATCH_FD_OVERRIDE))
            gev__patch_fd_forget(fd);
        return 0;
    }
    unsigned st = GEV__PATCH_FD_KNOWN;
    bool nb = cur & GEV__PATCH_FD_OVERRIDE ? cur & GEV__PATCH_FD_CALLER_NB : fl & O_NONBLOCK;
    int rcv = patch_sock_has(fd, SO_RCVTIMEO), type = 0;
    socklen_t tl = sizeof type;
    if (rcv >= 0) {
        st |= GEV__PATCH_FD_SOCK | (rcv ? GEV__PATCH_FD_RCVTIMEO : 0) |
              (patch_sock_has(fd, SO_SNDTIMEO) > 0 ? GEV__PATCH_FD_SNDTIMEO : 0);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM)
            st |= GEV__PATCH_FD_STREAM;
    } else {
        struct stat sb;
        if (fstat(fd, &sb) == 0 && (S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode)))
            st |= GEV__PATCH_FD_REGULAR;
    }
    if (nb)
        st |= GEV__PATCH_FD_NB;
    if (!(cur & GEV__PATCH_FD_OVERRIDE))
        (void)gev__patch_fd_set(fd, st);    /* ENOMEM: learned again next time */
    return st;
}

unsigned gev__patch_fd_state(int fd, bool recheck)
{
    unsigned st = gev__patch_fd_get(fd);
    if (!(st & GEV__PATCH_FD_KNOWN))
        return patch_fd_learn(fd, st);
    if (recheck) {
        int fl = gev__patch_real_fcntl(fd, F_GETFL, 0);
        if (fl < 0 || !(fl & O_NONBLOCK) != !(st & GEV__PATCH_FD_NB))
            return patch_fd_learn(fd, st);
    }
    return st;
}

gev__nsec gev__patch_fd_deadline(int fd, unsigned st, int events)
{
    unsigned has = events & GEV__READ ? GEV__PATCH_FD_RCVTIMEO : GEV__PATCH_FD_SNDTIMEO;
    return st & has ? gev__patch_sock_deadline(fd, events) : GEV__FOREVER;
}

void gev__patch_fd_forget(int fd)
{
    unsigned st = gev__patch_fd_get(fd), keep = GEV__PATCH_FD_OVERRIDE | GEV__PATCH_FD_CALLER_NB;
    if (st & ~keep)
        (void)gev__patch_fd_set(fd, st & keep);
}

void gev__patch_fd_new_socket(int fd, bool nonblock, unsigned inherit)
{
    unsigned st = GEV__PATCH_FD_KNOWN | GEV__PATCH_FD_SOCK | (nonblock ? GEV__PATCH_FD_NB : 0) |
                  (inherit & (GEV__PATCH_FD_RCVTIMEO | GEV__PATCH_FD_SNDTIMEO |
                              GEV__PATCH_FD_STREAM));
    int err = errno;            /* the hooked call succeeded: errno untouched */
    if (gev__patch_fd_set(fd, st) < 0)
        gev__patch_fd_forget(fd);
    errno = err;
}

/* ---- switching on ------------------------------------------------------------ */

/* The child of a fork: only the forking thread lives on, and its hub's
 * loop shares kernel state with the parent's until reinitialised. */
static void patch_atfork_child(void)
{
    if (gev__tls_hub)
        (void)gev_reinit();
}

static void patch_register_atfork(void)
{
    (void)pthread_atfork(NULL, NULL, patch_atfork_child);
}

/* Our own read hook, not what the symbol resolves to. */
extern __typeof__(read) gev__patch_read_local;

/* Whether the hooks are first in lookup order: "read" from the global
 * scope must not be libc's (which is what RTLD_NEXT from here finds).  It
 * may be another interposer in front of us (a sanitizer's), which ends in
 * ours through RTLD_NEXT just the same. */
static bool patch_interposes(void)
{
    void *global = dlsym(RTLD_DEFAULT, "read");
    void *next = dlsym(RTLD_NEXT, "read");

    if (global == (void *)gev__patch_read_local)
        return true;
    return global && next && global != next;
}

int gev_patch_all(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    if (atomic_load(&gev__patch_on))
        return 0;
    if (!patch_interposes())
        return gev__fail(ENOSYS);
    pthread_once(&once, patch_register_atfork);
    atomic_store(&gev__patch_on, true);
    return 0;
}

bool gev_patch_active(void)
{
    return atomic_load(&gev__patch_on);
}

/* Preloaded into a program that never heard of us: GEV_PATCH=1. */
__attribute__((constructor)) static void patch_from_environment(void)
{
    const char *v = getenv("GEV_PATCH");
    if (v && strcmp(v, "1") == 0)
        (void)gev_patch_all();
}
