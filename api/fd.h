/* api/fd.h: cooperative waits on file descriptors, for api/fd.c, api/socket.c
 * and the modules built on them (the server, the patch library).
 *
 * Each hub keeps a table indexed by fd (no fixed size: chunks allocated as
 * numbers are first used).  A record holds one
 * loop watcher for the fd, armed for the directions somebody waits in, and
 * at most one waiting greenlet per direction.  The watcher is disarmed
 * lazily: it stays armed after its waiter resumed, and a direction is
 * dropped only when an event for it arrives with nobody waiting, so a
 * greenlet that reads, writes and reads again costs no epoll_ctl.  While
 * nobody waits, the watcher is unreferenced: it neither keeps gev_run()
 * going nor hides a deadlock from the hub.
 *
 * The lazily armed watcher is why descriptors used with gev should be
 * closed through gev_close() (or gev__fd_closing() right before close(2)):
 * a plain close makes the kernel drop the file from epoll silently, while
 * the record and the backend still believe the number is registered, so a
 * new file under the number would wait on a registration nobody has.
 * Libraries a program calls close their own descriptors with close(2), so
 * that mistake must cost a delay, never a hang, and it is caught three ways:
 *  - numbers returned by gev_socket() and gev_accept() are checked for such
 *    leftovers (gev__fd_fresh);
 *  - a wait that ends without its event (timeout, kill) drops its
 *    directions at once, so the next wait arms afresh, which re-registers
 *    the number whatever file it names now;
 *  - a wait that relies on interest armed before it began (the echo path:
 *    no syscall) is "unverified": a sweep, ticking only while such waits
 *    exist, re-registers the number of every unverified wait
 *    still going on after a whole sweep period (50-100 ms after it began).
 *    A re-registration is cheap for a slow wait, always right (unlike
 *    comparing fstat(2) identities: eventfds share one inode), and a
 *    number closed and not reused fails its waiters with EBADF.
 */
#ifndef GEV_API_FD_H
#define GEV_API_FD_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/socket.h>
#include "gev.h"
#include "hub.h"
#include "hub-slots.h"

/* The table: records live in fixed chunks so a watcher never moves once
 * the loop has linked it; only the array of chunk pointers grows.  Here for
 * the inline fast paths of the socket calls. */
#define GEV__FD_CHUNK 256

enum { GEV__FD_KIND_UNKNOWN, GEV__FD_KIND_STREAM, GEV__FD_KIND_OTHER };

typedef struct gev__fd_record {
    gev__io io;                 /* armed for io.events while active */
    gev__waiter *reader;        /* on the waiting greenlet's stack; */
    gev__waiter *writer;        /* it unpublishes itself when it resumes */
    /* A recv on this stream socket came back short, so it emptied the
     * socket's receive queue, and no read event has been seen since: the
     * next recv waits for one instead of trying first (see gev_recvfrom). */
    bool read_drained;
    unsigned char kind;         /* GEV__FD_KIND_*, learned when first needed */
    /* The sweep (fd.c): on the table's list since an unverified wait, until
     * a tick finds nobody waiting.  `waits` counts unverified waits; a tick
     * that finds it where the previous tick left it (`seen_waits`) while
     * somebody waits has found one wait that lasted a whole period. */
    bool listed;
    unsigned waits, seen_waits;
    struct gev__fd_record *sweep_next;
} gev__fd_record;

typedef struct gev__fd_table {
    gev__fd_record **chunks;
    size_t nchunks;
    gev__fd_record *sweep_list; /* the listed records */
    /* The sweep's clock: a timerfd, made at the first listing, ticking
     * while the list is not empty; its watcher is unreferenced. */
    int sweep_fd;               /* -1 if none */
    bool sweep_ticking;
    gev__io sweep_io;
} gev__fd_table;

/* The record of fd if it was ever created, else NULL. */
static inline gev__fd_record *gev__fd_record_peek(gev_hub *hub, int fd)
{
    const gev__fd_table *t = gev__hub_slot(hub, GEV__HUB_SLOT_IO);
    size_t c = (size_t)fd / GEV__FD_CHUNK;

    if (!t || c >= t->nchunks || !t->chunks[c])
        return NULL;
    return &t->chunks[c][(size_t)fd % GEV__FD_CHUNK];
}

/* For a record marked read_drained: whether fd is a SOCK_STREAM socket
 * (asked once per file); if not, the mark is dropped for good. */
bool gev__fd_drained_is_stream(gev__fd_record *r, int fd);

/* For gev_recv and the patch library's read hooks.
 * A recv that comes back short from a stream socket has emptied its
 * receive queue.  Until the loop reports the fd readable again, the next
 * recv waits for that report instead of making a recv(2) that would almost
 * always fail with EAGAIN: in a request-response exchange that failing call
 * is one syscall in three.  The watcher is level-triggered and still armed
 * (lazy disarm), so bytes that came in the meantime are reported by the
 * next poll: nothing is missed, at worst the recv is served one poll later.
 * Datagram sockets (a short read says nothing about the queue), calls with
 * flags, timeout 0 (it must not wait: !may_wait), a second reader (EBUSY
 * is for calls that have to wait) and the hub itself (it may not wait:
 * EDEADLK is for calls that have to) always try first. */
static inline bool gev__fd_read_waits_first(gev__fd_record *rec, int fd, bool may_wait)
{
    return rec && rec->read_drained && may_wait && !rec->reader &&
           !gev__in_hub() && gev__fd_drained_is_stream(rec, fd);
}

static inline void gev__fd_read_note_short(gev__fd_record *rec, ssize_t r, size_t n)
{
    if (rec && r > 0 && (size_t)r < n && rec->kind != GEV__FD_KIND_OTHER &&
        rec->io.base.active && (rec->io.events & GEV__READ))
        rec->read_drained = true;
}

/* Wait until fd is ready for `events` (GEV__READ and/or GEV__WRITE) or the
 * absolute deadline passes.  The only place that blocks on an fd.
 * Returns the ready events (> 0), or -1 with errno: EBADF (bad fd,
 * gev_close() of fd during the wait, or close(2) of it found by the
 * sweep), EINVAL (no or unknown event bits),
 * EBUSY (another greenlet waits on fd in one of these directions),
 * ETIMEDOUT, ECANCELED, EDEADLK (see gev__wait), or the loop's error when
 * the fd cannot be watched.  A regular file (which epoll refuses) is always
 * ready, as poll(2) says. */
int gev__fd_wait(int fd, int events, gev__nsec deadline);

/* fd is about to be closed: its waiters wake with EBADF, every watcher of
 * the number is dropped from the loop, and the record is cleared, so the
 * number can be reused at once.  Harmless on an fd nobody watched. */
void gev__fd_closing(int fd);

/* fd was just returned by the kernel (socket, accept): drop any state left
 * under its number by a descriptor closed without gev_close(). */
void gev__fd_fresh(int fd);

/* 0 if the current greenlet may start an IO call, else the errno it must
 * fail with at once (ECANCELED once killed, ETIMEDOUT after a scoped
 * timeout expired, ENOMEM when no hub can be made).  Hub context is
 * allowed: only the wait fails there. */
int gev__fd_check(void);

/* One IO operation in the shape every read-like and write-like call shares:
 * try the syscall, wait for `events` on EAGAIN, retry; EINTR is retried. */
typedef struct gev__fd_op gev__fd_op;
struct gev__fd_op {
    ssize_t (*call)(int fd, gev__fd_op *op);  /* one attempt: >= 0, or -1 + errno */
    int events;                 /* what EAGAIN waits for */
    void *rbuf;                 /* read-like calls */
    const void *wbuf;           /* write-like calls */
    size_t n;
    int flags;
    struct sockaddr *addr;      /* recvfrom, accept */
    socklen_t *addrlen;
    const struct sockaddr *dest;  /* sendto */
    socklen_t destlen;
    double timeout;             /* relative; turned into `deadline` at the first wait */
    gev__nsec deadline;
    bool have_deadline;         /* set: `deadline` holds (sendall keeps one for all) */
};

/* Runs op on fd: the syscall's result, or -1 with errno (the syscall's, or
 * the wait's: ETIMEDOUT, ECANCELED, EBADF...). */
ssize_t gev__fd_do(int fd, gev__fd_op *op);

/* The rest of gev__fd_do after a first attempt that failed, errno still
 * set by it: retried on EINTR, waited for on EAGAIN, else -1. */
ssize_t gev__fd_retry(int fd, gev__fd_op *op);

/* Whether a call may try its syscall at once, inline, before it builds an
 * op: a hub exists and the current greenlet is not interrupted (neither
 * killed nor past a scoped timeout, or shielded: the check gev__fd_do
 * makes).  The fast path of every
 * socket call: when the syscall succeeds, that is all it costs. */
static inline bool gev__fd_may_try(int fd)
{
    gev_hub *hub = gev__hub_peek();
    if (fd < 0 || !hub)
        return false;
    const gev_greenlet *g = gev__hot(hub)->current;
    return !gev__greenlet_interrupt_err(g);
}

/* connect(2) with an absolute deadline, for gev_connect and gev_tcp_connect. */
int gev__connect_until(int fd, const struct sockaddr *addr, socklen_t len,
                       gev__nsec deadline);

/* Try each address of `list` in order until one connects before the
 * deadline; returns the connected non-blocking fd, or -1 with the errno of
 * the last attempt.  gev_tcp_connect after resolution. */
int gev__tcp_connect_list(const struct addrinfo *list, gev__nsec deadline);

#endif
