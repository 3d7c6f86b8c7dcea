/* api/hub-slots.h: the api modules' slots in the hub (gev__hub_slot).
 *
 * The core keeps GEV__HUB_SLOTS opaque pointers per hub, with a shutdown
 * and a fork hook each, and knows nothing of what is in them: the modules
 * above it number their slots here.
 */
#ifndef GEV_API_HUB_SLOTS_H
#define GEV_API_HUB_SLOTS_H

#include "hub.h"

enum {
    GEV__HUB_SLOT_IO,           /* api/fd.c: the fd table */
    GEV__HUB_SLOT_THREADS,      /* api/threads.h: thread pool, threadsafe calls */
    GEV__HUB_SLOT_SIGNALS,      /* api/signal.c: signal handlers */
    GEV__HUB_SLOT_COUNT
};
_Static_assert(GEV__HUB_SLOT_COUNT <= GEV__HUB_SLOTS, "raise GEV__HUB_SLOTS in core/hub.h");

#endif
