/* core/monitor.h: the blocking monitor (gev_monitor_start in api/gev.h),
 * as the hub sees it: started from $GEV_MONITOR when a hub is made,
 * restarted in a forked child, stopped when the hub goes.  The rest is
 * core/monitor.c's own. */
#ifndef GEV_CORE_MONITOR_H
#define GEV_CORE_MONITOR_H

#include "hub.h"

typedef struct gev__monitor gev__monitor;

/* Hub creation: $GEV_MONITOR=<seconds> (finite, > 0) starts the monitor on
 * stderr; anything else is ignored, silently (the library never prints
 * unless asked). */
void gev__monitor_from_env(gev_hub *hub);
/* gev_reinit, in the child: the monitor thread did not survive fork();
 * start another if one was running (silently not, if that fails: a
 * debugging aid must not fail the child). */
void gev__monitor_after_fork(gev_hub *hub);
/* hub_free, on the hub's thread: stop and join the thread, free it all. */
void gev__monitor_free(gev_hub *hub);

#endif
