/* gev-libevent.h: the escape hatch to libevent, installed only by the
 * libevent flavour of gev (libgev-libevent).
 *
 * gev_libevent_base() returns the event_base that this thread's hub polls
 * (creating the hub if needed), so a program can add events of its own, e.g.
 * from a library that only speaks libevent.  Their callbacks run in hub
 * context: blocking gev calls there fail with EDEADLK.  The hub does not
 * count them as work: gev_run() may return, and a wait in main may fail with
 * EDEADLK, while only they are active.  Never dispatch or free the base
 * yourself; gev owns it.  NULL + errno if the hub cannot be created. */
#ifndef GEV_LIBEVENT_H
#define GEV_LIBEVENT_H

#include <gev.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
GEV_API struct event_base *gev_libevent_base(void);

#ifdef __cplusplus
}
#endif
#endif
