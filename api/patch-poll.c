/* api/patch-poll.c: poll, ppoll, select, pselect, epoll_wait, epoll_pwait.
 *
 * Every one of them works the same way: the real call with a zero timeout
 * (so results, revents, the modified sets and every errno are libc's
 * own), and while it finds nothing ready and time is left, a cooperative
 * wait for readiness on the hub.  A single fd with plain POLLIN/POLLOUT
 * interest waits on it directly; anything else (several fds, the same fd
 * twice, POLLPRI) through a temporary epoll set, which the hub watches.
 * The signal mask of ppoll/pselect/epoll_pwait applies during each
 * zero-timeout call, so a signal it unblocks is delivered and reported
 * (EINTR) as libc would; while the greenlet waits, the thread's own mask
 * stays in force (the hub serves everybody).
 */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "patch.h"

GEV__PATCH_ORIGINAL(poll);
GEV__PATCH_ORIGINAL(ppoll);
GEV__PATCH_ORIGINAL(select);
GEV__PATCH_ORIGINAL(pselect);
GEV__PATCH_ORIGINAL(epoll_wait);
GEV__PATCH_ORIGINAL(epoll_pwait);

#define KSIGSET ((size_t)_NSIG / 8)

static int gev__sys_ppoll(struct pollfd *f, nfds_t n, const struct timespec *t, const sigset_t *m)
{
    return (int)syscall(SYS_ppoll, f, n, t, m, KSIGSET);
}
static int gev__sys_poll(struct pollfd *f, nfds_t n, int ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    return gev__sys_ppoll(f, n, ms < 0 ? NULL : &t, NULL);
}
static int gev__sys_pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t,
                            const sigset_t *m)
{
    const void *data[2] = { m, (void *)KSIGSET };
    struct timespec copy, *tp = NULL;
    if (t)
        copy = *t, tp = &copy;
    return (int)syscall(SYS_pselect6, n, r, w, e, tp, m ? data : NULL);
}
static int gev__sys_select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    return (int)syscall(SYS_select, n, r, w, e, tv);
}
static int gev__sys_epoll_pwait(int fd, struct epoll_event *ev, int max, int ms, const sigset_t *m)
{
    return (int)syscall(SYS_epoll_pwait, fd, ev, max, ms, m, KSIGSET);
}
static int gev__sys_epoll_wait(int fd, struct epoll_event *ev, int max, int ms)
{
    return gev__sys_epoll_pwait(fd, ev, max, ms, NULL);
}

static const struct timespec zero_ts;

int gev__patch_real_poll_now(struct pollfd *fds, unsigned long n)
{
    int r;
    while ((r = GEV__PATCH_REAL(poll)(fds, n, 0)) < 0 && errno == EINTR)
        ;
    return r;
}

static gev__nsec deadline_ms(int ms)
{
    return ms < 0 ? GEV__FOREVER : gev__patch_deadline_after(ms / 1e3);
}

static gev__nsec deadline_ts(const struct timespec *t)
{
    return !t ? GEV__FOREVER : gev__patch_deadline_after((double)t->tv_sec + t->tv_nsec / 1e9);
}

static bool ts_valid(const struct timespec *t)
{
    return !t || (t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L);
}

/* ---- waiting for a set ---------------------------------------------------- */

/* The union of the interest in fds[i].fd from entry i on (epoll takes each
 * fd once; poll sets may name one twice, as libcurl's do). */
static uint32_t set_events(const struct pollfd *fds, unsigned long n, unsigned long i)
{
    uint32_t ev = 0;
    for (unsigned long j = i; j < n; j++)
        if (fds[j].fd == fds[i].fd)
            ev |= (uint16_t)fds[j].events;
    return ev;
}

/* Wait until one of fds may be ready: 0, else an errno (EAGAIN: deadline). */
static int wait_epoll(gev_greenlet *g, const struct pollfd *fds, unsigned long n, gev__nsec deadline)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return errno;
    for (unsigned long i = 0; i < n; i++) {
        struct epoll_event e = { .events = set_events(fds, n, i), .data.fd = fds[i].fd };
        /* Taken once, with the union.  EPERM: a regular file, which the
         * zero-timeout call has reported ready already; EBADF: the
         * zero-timeout call reported it (poll) or, beyond the fd table,
         * ignores it (select), so waiting on the rest is what libc does. */
        if (fds[i].fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &e) < 0 &&
            errno != EEXIST && errno != EPERM && errno != EBADF) {
            int err = errno;
            close(ep);
            return err;
        }
    }
    int err = gev__patch_wait(g, ep, GEV__READ, deadline);
    close(ep);                  /* the hook: drops the hub's watcher too */
    return err;
}

static int wait_set(gev_greenlet *g, const struct pollfd *fds, unsigned long n, gev__nsec deadline)
{
    const short plain = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
    if (n == 1 && fds[0].fd >= 0 && fds[0].events && !(fds[0].events & ~plain)) {
        int events = (fds[0].events & (POLLIN | POLLRDNORM) ? GEV__READ : 0) |
                     (fds[0].events & (POLLOUT | POLLWRNORM) ? GEV__WRITE : 0);
        if (gev__patch_fd_wait(fds[0].fd, events, deadline) >= 0)
            return 0;
        /* EBUSY: another greenlet waits on it; EBADF: see wait_epoll. */
        if (errno != EBUSY && errno != EBADF)
            return errno == ETIMEDOUT && !g->expired_timeouts ? EAGAIN : errno;
    }
    return wait_epoll(g, fds, n, deadline);
}

/* ---- poll ------------------------------------------------------------------- */

static int poll_now(struct pollfd *fds, unsigned long n, const sigset_t *mask)
{
    if (mask)
        return GEV__PATCH_REAL(ppoll)(fds, n, &zero_ts, mask);
    return gev__patch_real_poll_now(fds, n);
}

static int patch_ppoll(gev_greenlet *g, struct pollfd *fds, unsigned long n, gev__nsec deadline,
                       const sigset_t *mask)
{
    int err = gev__patch_check(g);
    if (err)
        return gev__fail(err);
    for (;;) {
        int r = poll_now(fds, n, mask);
        if (r != 0)
            return r;
        if ((err = wait_set(g, fds, n, deadline)) == EAGAIN)
            return poll_now(fds, n, mask);      /* the caller's deadline */
        if (err)
            return gev__fail(err);
    }
}

int gev__patch_poll(gev_greenlet *g, struct pollfd *fds, unsigned long n, gev__nsec deadline)
{
    return patch_ppoll(g, fds, n, deadline, NULL);
}

GEV__HOOK int poll(struct pollfd *fds, nfds_t n, int ms)
{
    gev_greenlet *g = ms ? gev__patch_acting() : NULL;
    if (!g)
        return GEV__PATCH_REAL(poll)(fds, n, ms);
    return patch_ppoll(g, fds, n, deadline_ms(ms), NULL);
}

GEV__HOOK int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || !ts_valid(t) || (t && !t->tv_sec && !t->tv_nsec))
        return GEV__PATCH_REAL(ppoll)(fds, n, t, mask);
    return patch_ppoll(g, fds, n, deadline_ts(t), mask);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int ms, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask,
                size_t fdslen);
GEV__PATCH_ORIGINAL(__poll_chk);
GEV__PATCH_ORIGINAL(__ppoll_chk);

static int gev__sys___poll_chk(struct pollfd *fds, nfds_t n, int ms, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        abort();
    return gev__sys_poll(fds, n, ms);
}
static int gev__sys___ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t,
                                const sigset_t *mask, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        abort();
    return gev__sys_ppoll(fds, n, t, mask);
}

GEV__HOOK int __poll_chk(struct pollfd *fds, nfds_t n, int ms, size_t fdslen)
{
    if (fdslen / sizeof *fds < n || !gev__patch_acting())
        return GEV__PATCH_REAL(__poll_chk)(fds, n, ms, fdslen);
    return poll(fds, n, ms);
}

GEV__HOOK int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t,
                          const sigset_t *mask, size_t fdslen)
{
    if (fdslen / sizeof *fds < n || !gev__patch_acting())
        return GEV__PATCH_REAL(__ppoll_chk)(fds, n, t, mask, fdslen);
    return ppoll(fds, n, t, mask);
}

/* ---- select ------------------------------------------------------------------ */

typedef struct select_sets {
    int n;
    fd_set *set[3];
    fd_set saved[3];
} select_sets;

static int select_now(select_sets *s, const sigset_t *mask)
{
    for (int i = 0; i < 3; i++)
        if (s->set[i])
            *s->set[i] = s->saved[i];
    int r;
    while ((r = GEV__PATCH_REAL(pselect)(s->n, s->set[0], s->set[1], s->set[2], &zero_ts,
                                          mask)) < 0 && errno == EINTR && !mask)
        ;
    return r;
}

/* The sets as a poll set, for the wait (select's except = POLLPRI). */
static struct pollfd *select_pollset(const select_sets *s, unsigned long *n)
{
    static const short ev[3] = { POLLIN, POLLOUT, POLLPRI };
    struct pollfd *p = malloc((size_t)(s->n ? s->n : 1) * 3 * sizeof *p);
    *n = 0;
    for (int fd = 0; p && fd < s->n; fd++)
        for (int i = 0; i < 3; i++)
            if (s->set[i] && FD_ISSET(fd, &s->saved[i]))
                p[(*n)++] = (struct pollfd){ .fd = fd, .events = ev[i] };
    return p;
}

static int patch_pselect(gev_greenlet *g, select_sets *s, gev__nsec deadline, const sigset_t *mask)
{
    int err = gev__patch_check(g), r;
    if (err)
        return gev__fail(err);
    for (int i = 0; i < 3; i++)
        if (s->set[i])
            s->saved[i] = *s->set[i];
    if ((r = select_now(s, mask)) != 0)
        return r;               /* also nfds out of range and bad fds */
    unsigned long n;
    struct pollfd *p = select_pollset(s, &n);
    if (!p)
        return gev__fail(ENOMEM);
    while ((err = wait_set(g, p, n, deadline)) == 0 && (r = select_now(s, mask)) == 0)
        ;
    free(p);
    if (err == EAGAIN)
        return select_now(s, mask);     /* the caller's deadline */
    return err ? gev__fail(err) : r;
}

static bool select_valid(int n) { return n >= 0 && n <= FD_SETSIZE; }

GEV__HOOK int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || !select_valid(n) || (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 ||
                                          tv->tv_usec >= 1000000 || (!tv->tv_sec && !tv->tv_usec))))
        return GEV__PATCH_REAL(select)(n, r, w, e, tv);
    select_sets s = { .n = n, .set = { r, w, e } };
    gev__nsec deadline = tv ? gev__patch_deadline_after((double)tv->tv_sec + tv->tv_usec / 1e6) :
                              GEV__FOREVER;
    int rc = patch_pselect(g, &s, deadline, NULL);
    if (tv && rc == 0)
        tv->tv_sec = tv->tv_usec = 0;   /* Linux leaves what is left: nothing */
    return rc;
}

GEV__HOOK int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t,
                      const sigset_t *mask)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || !select_valid(n) || !ts_valid(t) || (t && !t->tv_sec && !t->tv_nsec))
        return GEV__PATCH_REAL(pselect)(n, r, w, e, t, mask);
    select_sets s = { .n = n, .set = { r, w, e } };
    return patch_pselect(g, &s, deadline_ts(t), mask);
}

/* ---- epoll -------------------------------------------------------------------- */

/* The epoll fd is readable while it has events ready: wait for that on
 * the hub, then collect them with a zero timeout. */
static int patch_epoll(gev_greenlet *g, int ep, struct epoll_event *ev, int max, int ms,
                       const sigset_t *mask)
{
    int err = gev__patch_check(g), r;
    if (err)
        return gev__fail(err);
    gev__nsec deadline = deadline_ms(ms);
    for (;;) {
        while ((r = GEV__PATCH_REAL(epoll_pwait)(ep, ev, max, 0, mask)) < 0 && errno == EINTR &&
               !mask)
            ;
        if (r != 0)
            return r;
        if ((err = gev__patch_wait(g, ep, GEV__READ, deadline)) == EAGAIN)
            return GEV__PATCH_REAL(epoll_pwait)(ep, ev, max, 0, mask);
        if (err)
            return gev__fail(err);
    }
}

GEV__HOOK int epoll_wait(int ep, struct epoll_event *ev, int max, int ms)
{
    gev_greenlet *g = ms ? gev__patch_acting() : NULL;
    if (!g)
        return GEV__PATCH_REAL(epoll_wait)(ep, ev, max, ms);
    return patch_epoll(g, ep, ev, max, ms, NULL);
}

GEV__HOOK int epoll_pwait(int ep, struct epoll_event *ev, int max, int ms, const sigset_t *mask)
{
    gev_greenlet *g = ms ? gev__patch_acting() : NULL;
    if (!g)
        return GEV__PATCH_REAL(epoll_pwait)(ep, ev, max, ms, mask);
    return patch_epoll(g, ep, ev, max, ms, mask);
}
