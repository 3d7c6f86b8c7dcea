/* api/patch.h: shared by the files of the patch library (api/patch*.c).
 *
 * Each hook has the shape
 *
 *     ssize_t read(int fd, void *buf, size_t n)
 *     {
 *         gev_greenlet *g = gev__patch_acting();
 *         if (!g)
 *             return GEV__PATCH_REAL(read)(fd, buf, n);    // libc's own
 *         ... the cooperative version ...
 *     }
 *
 * gev__patch_acting() is the whole cost of a hook that does not act: a
 * global flag, then this thread's hub pointer (an initial-exec TLS read) and
 * its current greenlet.  A hook acts only after gev_patch_all(), on a thread
 * whose hub exists, in a greenlet other than the hub (main included, as in
 * gevent).  Everywhere else, including every call gev itself makes from the
 * hub, the call goes straight to libc.
 *
 * The originals come from dlsym(RTLD_NEXT), resolved on first use.  dlsym
 * may allocate, and an allocator may call read(2) or similar: a call made
 * while this thread is resolving gets the fallback (a direct syscall, or
 * ENOSYS for library functions), so nothing recurses and no NULL pointer is
 * ever called.
 */
#ifndef GEV_API_PATCH_H
#define GEV_API_PATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include "hub.h"
#include "gev-patch.h"

/* Hooks are the symbols libc's callers bind to: default visibility. */
#define GEV__HOOK __attribute__((visibility("default")))

/* In libgev, private to the patch library (api/patch-support.c). */
int gev__patch_fd_wait(int fd, int events, gev__nsec deadline);
void gev__patch_fd_closing(int fd);
gev__nsec gev__patch_deadline_after(double seconds);

/* Set once by gev_patch_all(), never cleared: process-wide by nature. */
extern atomic_bool gev__patch_on;

static inline gev_greenlet *gev__patch_acting(void)
{
    if (__builtin_expect(!atomic_load_explicit(&gev__patch_on, memory_order_relaxed), 1))
        return NULL;
    gev_hub *hub = gev__tls_hub;
    if (!hub)
        return NULL;
    gev_greenlet *g = gev__hot(hub)->current;
    return g->is_hub ? NULL : g;
}

/* The errno a patched call must fail with before it starts, as gev's own
 * calls do: ECANCELED once killed, ETIMEDOUT after a scoped timeout, 0
 * while gev_shield() holds both back (the one statement of it is
 * gev__greenlet_interrupt_err, core/hub.h). */
static inline int gev__patch_check(const gev_greenlet *g)
{
    return gev__greenlet_interrupt_err(g);
}

/* The original of a hooked function: *slot once resolved, else dlsym
 * (RTLD_NEXT), else `fallback`. */
void *gev__patch_resolve(void *_Atomic *slot, const char *name, void *fallback);

/* Declares the slot of one original.  Used once per hooked function. */
#define GEV__PATCH_ORIGINAL(name) \
    static __typeof__(name) *_Atomic gev__real_##name

/* The original, with `fallback_fn` (same type) where dlsym has none. */
#define GEV__PATCH_REAL_OR(name, fallback_fn)                                  \
    ((__typeof__(name) *)({                                                    \
        __typeof__(name) *p_ = atomic_load_explicit(&gev__real_##name,         \
                                                    memory_order_acquire);     \
        __builtin_expect(p_ != NULL, 1) ? p_ :                                 \
            (__typeof__(name) *)gev__patch_resolve(                           \
                (void *_Atomic *)&gev__real_##name, #name,                     \
                (void *)(fallback_fn));                                        \
    }))
/* Most originals fall back to a syscall-based `gev__sys_<name>`. */
#define GEV__PATCH_REAL(name) GEV__PATCH_REAL_OR(name, gev__sys_##name)

/* A wait for fd, `events` GEV__READ/GEV__WRITE, until `deadline`; the
 * errno of a deadline that the CALLER set (SO_RCVTIMEO, poll's timeout) is
 * told apart from a scoped gev_timeout: returns 0 when ready, else an errno:
 * EAGAIN for the caller's own deadline, ETIMEDOUT/ECANCELED/EBADF... */
int gev__patch_wait(gev_greenlet *g, int fd, int events, gev__nsec deadline);

/* The caller's deadline for a blocking socket call on fd (SO_RCVTIMEO for
 * reads, SO_SNDTIMEO for writes, read from the kernel, which keeps them),
 * GEV__FOREVER if none or fd is no socket. */
gev__nsec gev__patch_sock_deadline(int fd, int events);

/* In libgev: gev_recv's "drained" mark (api/fd.h) of fd in this thread's
 * hub: a short read emptied the stream socket and the loop has reported
 * nothing since, so the next blocking read waits before it tries. */
bool gev__patch_read_drained(int fd);
void gev__patch_read_short(int fd, ssize_t r, size_t n);

/* ---- the per-fd state ---------------------------------------------------
 * The one process-wide table of the patch library (descriptors are
 * process-wide).  Two bytes per fd number, chunked (chunks allocated as
 * numbers are first used; any fd up to 2^30); lock-free reads.
 *
 * OVERRIDE/CALLER_NB: the patch itself set O_NONBLOCK on fd for a while
 * (connect), and the caller's own wish meanwhile, so fcntl(F_GETFL) keeps
 * reporting the caller's view.
 *
 * KNOWN and the bits after it cache what a blocking call needs to know
 * about the descriptor, so that a blocking read on a socket costs the
 * syscalls libc's would and no more: whether it is a socket (a stream
 * socket: read and write become recv and send, MSG_DONTWAIT, the same
 * calls there and cheaper than preadv2), a regular file, whether the
 * caller made it non-blocking, whether it has a send or receive timeout
 * (its value is read from the kernel when there is one).
 * Learned on first need (F_GETFL, getsockopt, fstat), entered directly by
 * the socket/accept/accept4 hooks, and forgotten by every hook that can
 * change them: close, dup2/dup3 (their target), fcntl(F_SETFL),
 * ioctl(FIONBIO), setsockopt(SO_RCVTIMEO/SO_SNDTIMEO), and a try that
 * fails with EBADF or ENOTSOCK.  Each time a try says EAGAIN and the hook
 * is about to wait, F_GETFL checks the cached O_NONBLOCK view again (one
 * syscall on the slow path), and a difference makes it learn afresh.
 *
 * What the hooks cannot see can make the cache stale: a descriptor closed
 * without the close hook (fclose of an fdopen'ed socket, closing inside
 * libc, syscall(SYS_close), close_range) whose number comes back from a
 * call that is not hooked (pipe, open, socketpair, eventfd...); O_NONBLOCK
 * or a timeout changed by a raw syscall, or by another process sharing the
 * file description.  Stale, the cache can make a timeout be ignored until
 * the entry is forgotten, and a read right after a short read (the drained
 * mark, which skips the F_GETFL check) wait for data where a caller who
 * made fd non-blocking by such a route expects EAGAIN.  A cached "stream
 * socket" that is no socket any more fails its try with ENOTSOCK, which
 * forgets it and tries again (patch-io.c).  doc/gev.3 says the same. */
enum { GEV__PATCH_FD_OVERRIDE = 1,    /* we set O_NONBLOCK; caller's view: */
       GEV__PATCH_FD_CALLER_NB = 2,   /* ... non-blocking (set by fcntl) */
       GEV__PATCH_FD_KNOWN = 4,       /* the bits below are learned */
       GEV__PATCH_FD_SOCK = 8,        /* a socket */
       GEV__PATCH_FD_REGULAR = 16,    /* a regular file or block device */
       GEV__PATCH_FD_NB = 32,         /* the caller's O_NONBLOCK */
       GEV__PATCH_FD_RCVTIMEO = 64,   /* SO_RCVTIMEO is set (not zero) */
       GEV__PATCH_FD_SNDTIMEO = 128,
       GEV__PATCH_FD_STREAM = 256 };  /* a SOCK_STREAM socket */
unsigned gev__patch_fd_get(int fd);
/* Sets the flags of fd; -1 ENOMEM / EBADF if no entry can hold them. */
int gev__patch_fd_set(int fd, unsigned flags);
/* Drops what is cached about fd (the file changed); a connect's
 * OVERRIDE/CALLER_NB stay (close clears those).  Allocates nothing. */
void gev__patch_fd_forget(int fd);
/* What is known about fd (KNOWN and the bits after it; CALLER_NB's view
 * while a connect holds O_NONBLOCK), learned now if not cached; with
 * `recheck`, a cached O_NONBLOCK view is checked against F_GETFL.  0 if fd
 * is not open. */
unsigned gev__patch_fd_state(int fd, bool recheck);
/* The caller's deadline for a wait on fd in direction `events`, from the
 * state `st` that gev__patch_fd_state returned. */
gev__nsec gev__patch_fd_deadline(int fd, unsigned st, int events);
/* A socket the kernel just created (socket, accept): its state entered
 * directly; `inherit`: its RCVTIMEO/SNDTIMEO/STREAM bits. */
void gev__patch_fd_new_socket(int fd, bool nonblock, unsigned inherit);

/* The originals the files share (resolved in patch.c). */
int gev__patch_real_fcntl(int fd, int cmd, long arg);
int gev__patch_real_poll_now(struct pollfd *fds, unsigned long n);

/* poll(2) done cooperatively, for poll/ppoll/select/pselect: deadline
 * absolute (GEV__FOREVER: none).  Returns like poll(2). */
int gev__patch_poll(gev_greenlet *g, struct pollfd *fds, unsigned long n, gev__nsec deadline);

#endif
