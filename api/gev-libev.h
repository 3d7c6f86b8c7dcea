/* gev-libev.h: the escape hatch to libev, installed only by the libev
 * flavour of gev (libgev-libev).
 *
 * gev_libev_loop() returns the libev loop that this thread's hub polls
 * (creating the hub if needed), so a program can add watchers of its own,
 * e.g. from a library that only speaks libev.  Their callbacks run in hub
 * context: blocking gev calls there fail with EDEADLK.  The hub does not
 * count them as work: gev_run() may return, and a wait in main may fail with
 * EDEADLK, while only they are active.  Never run or destroy the loop
 * yourself; gev owns it.  NULL + errno if the hub cannot be created. */
#ifndef GEV_LIBEV_H
#define GEV_LIBEV_H

#include <gev.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;
GEV_API struct ev_loop *gev_libev_loop(void);

#ifdef __cplusplus
}
#endif
#endif
