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
 * calls do: ECANCELED once killed, ETIMEDOUT after a scoped timeout. */
static inline int gev__patch_check(const gev_greenlet *g)
{
    return g->killed ? ECANCELED : g->expired_timeouts ? ETIMEDOUT : 0;
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
 * reads, SO_SNDTIMEO for writes, read from the kernel, which keeps them:
 * no copy of ours can go stale), GEV__FOREVER if none. */
gev__nsec gev__patch_sock_deadline(int fd, int events);
/* The same, false (and GEV__FOREVER) when fd is no socket: one getsockopt
 * that also tells sockets from other descriptors. */
bool gev__patch_sock_timeout(int fd, int events, gev__nsec *deadline);

/* ---- the per-fd state ---------------------------------------------------
 * The one process-wide table of the patch library (descriptors are
 * process-wide).  It holds only what the kernel cannot tell us: that the
 * patch itself set O_NONBLOCK on fd for a while (connect), and the
 * caller's own O_NONBLOCK wish meanwhile, so fcntl(F_GETFL) keeps reporting
 * the caller's view.  Entries exist only while such a call is in progress
 * and are cleared by close/dup2/dup3, so nothing survives into a reused
 * number.  Chunked, any fd number up to 2^30; lock-free reads. */
enum { GEV__PATCH_FD_OVERRIDE = 1,   /* we set O_NONBLOCK; caller's view: */
       GEV__PATCH_FD_CALLER_NB = 2 }; /* ... non-blocking (set by fcntl) */
unsigned gev__patch_fd_get(int fd);
/* Sets the flags of fd; -1 ENOMEM / EBADF if no entry can hold them. */
int gev__patch_fd_set(int fd, unsigned flags);

/* The originals the files share (resolved in patch.c). */
int gev__patch_real_fcntl(int fd, int cmd, long arg);
int gev__patch_real_poll_now(struct pollfd *fds, unsigned long n);

/* poll(2) done cooperatively, for poll/ppoll/select/pselect: deadline
 * absolute (GEV__FOREVER: none).  Returns like poll(2). */
int gev__patch_poll(gev_greenlet *g, struct pollfd *fds, unsigned long n, gev__nsec deadline);

#endif
