/* core/fault.h: failure injection, in builds configured with
 * --enable-fault-injection only (a test build, never shipped).
 *
 * configure passes "-include core/fault.h" to the library's sources, so
 * every call below, wherever the library makes it, goes through a counter
 * (core/fault.c) that can make the Nth such call fail the way the real one
 * fails when the resource runs out: NULL/MAP_FAILED or -1 with ENOMEM,
 * EMFILE or EAGAIN.  tests/test-faults.c walks N over every call a
 * representative program makes.  The system headers come first, so their
 * declarations keep the real names; the function-like macros then rename
 * the library's calls only.
 */
#ifndef GEV_CORE_FAULT_H
#define GEV_CORE_FAULT_H

#include "config.h"             /* _GNU_SOURCE first: accept4, as the library sees it */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <unistd.h>

void *gev__fault_malloc(size_t n);
void *gev__fault_calloc(size_t n, size_t size);
void *gev__fault_realloc(void *p, size_t n);
void *gev__fault_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int gev__fault_socket(int domain, int type, int protocol);
int gev__fault_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int gev__fault_pipe(int p[2]);
int gev__fault_eventfd(unsigned int initval, int flags);
int gev__fault_timerfd_create(int clockid, int flags);
int gev__fault_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                              void *(*fn)(void *), void *arg);
/* The backend's watcher start (libevent's event_add; libev's cannot fail,
 * its watchers are malloc'd above). */
struct event;
struct timeval;
int gev__fault_event_add(struct event *ev, const struct timeval *tv);

/* The test's side: fail the Nth call from now on (0: none), how many calls
 * were counted, and how many distinct call sites were seen. */
void gev__fault_arm(unsigned long nth);
unsigned long gev__fault_calls(void);
unsigned long gev__fault_sites(void);

#define malloc(n) gev__fault_malloc(n)
#define calloc(n, size) gev__fault_calloc(n, size)
#define realloc(p, n) gev__fault_realloc(p, n)
#define mmap(a, l, p, f, fd, o) gev__fault_mmap(a, l, p, f, fd, o)
#define socket(d, t, p) gev__fault_socket(d, t, p)
#define accept4(fd, a, l, f) gev__fault_accept4(fd, a, l, f)
#define pipe(p) gev__fault_pipe(p)
#define eventfd(v, f) gev__fault_eventfd(v, f)
#define timerfd_create(c, f) gev__fault_timerfd_create(c, f)
#define pthread_create(t, a, fn, arg) gev__fault_pthread_create(t, a, fn, arg)
#define event_add(ev, tv) gev__fault_event_add(ev, tv)

#endif
