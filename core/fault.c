/* core/fault.c: the counter behind core/fault.h (fault-injection builds).
 *
 * Every wrapped call counts; the armed one fails as its real twin does when
 * the resource is gone.  Process-wide on purpose: a test arms it, runs a
 * program, reads the counts (the thread pool's calls count too).  Distinct
 * call sites are told apart by the wrapper's return address. */
#include "config.h"
#include "fault.h"
/* This file calls the real ones (fault.h came in by -include). */
#undef malloc
#undef calloc
#undef realloc
#undef mmap
#undef socket
#undef accept4
#undef pipe
#undef eventfd
#undef timerfd_create
#undef pthread_create
#undef event_add

#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stdint.h>
#ifndef GEV_BACKEND_LIBEV
#include <event2/event.h>
#endif

#define SITES_MAX 512

static atomic_ulong calls, fail_at;
static _Atomic(uintptr_t) sites[SITES_MAX];
static atomic_ulong nsites;

static void note_site(uintptr_t at)
{
    unsigned long n = atomic_load(&nsites);
    for (unsigned long i = 0; i < n && i < SITES_MAX; i++)
        if (atomic_load(&sites[i]) == at)
            return;
    n = atomic_fetch_add(&nsites, 1);
    if (n < SITES_MAX)
        atomic_store(&sites[n], at);
}

/* True when this call is the one to fail.  GEV_FAULT_TRACE set: the
 * failing call's backtrace goes to stderr, to find the site of a failure
 * that did not end cleanly (this is a test build: it may print). */
static bool fault_now(uintptr_t site)
{
    note_site(site);
    unsigned long n = atomic_fetch_add(&calls, 1) + 1;
    if (n != atomic_load(&fail_at))
        return false;
    if (getenv("GEV_FAULT_TRACE")) {
        void *frames[16];
        backtrace_symbols_fd(frames, backtrace(frames, 16), 2);
    }
    return true;
}
#define FAULT() fault_now((uintptr_t)__builtin_return_address(0))

void gev__fault_arm(unsigned long nth)
{
    atomic_store(&calls, 0);
    atomic_store(&fail_at, nth);
}
unsigned long gev__fault_calls(void) { return atomic_load(&calls); }
unsigned long gev__fault_sites(void)
{
    unsigned long n = atomic_load(&nsites);
    return n < SITES_MAX ? n : SITES_MAX;
}

static int fail(int err) { errno = err; return -1; }

void *gev__fault_malloc(size_t n)
{
    return FAULT() ? (errno = ENOMEM, NULL) : malloc(n);
}
void *gev__fault_calloc(size_t n, size_t size)
{
    return FAULT() ? (errno = ENOMEM, NULL) : calloc(n, size);
}
void *gev__fault_realloc(void *p, size_t n)
{
    return FAULT() ? (errno = ENOMEM, NULL) : realloc(p, n);
}
void *gev__fault_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return FAULT() ? (errno = ENOMEM, MAP_FAILED) : mmap(addr, len, prot, flags, fd, off);
}
int gev__fault_socket(int domain, int type, int protocol)
{
    return FAULT() ? fail(EMFILE) : socket(domain, type, protocol);
}
int gev__fault_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return FAULT() ? fail(EMFILE) : accept4(fd, addr, len, flags);
}
int gev__fault_pipe(int p[2])
{
    return FAULT() ? fail(EMFILE) : pipe(p);
}
int gev__fault_eventfd(unsigned int initval, int flags)
{
    return FAULT() ? fail(EMFILE) : eventfd(initval, flags);
}
int gev__fault_timerfd_create(int clockid, int flags)
{
    return FAULT() ? fail(EMFILE) : timerfd_create(clockid, flags);
}
int gev__fault_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                              void *(*fn)(void *), void *arg)
{
    return FAULT() ? EAGAIN : pthread_create(t, attr, fn, arg);
}
int gev__fault_event_add(struct event *ev, const struct timeval *tv)
{
#ifndef GEV_BACKEND_LIBEV
    return FAULT() ? fail(ENOMEM) : event_add(ev, tv);     /* epoll_ctl out of memory */
#else
    (void)ev, (void)tv;
    return -1;
#endif
}
