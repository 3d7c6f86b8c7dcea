/* api/native.c: the escape hatch to the event library compiled in
 * (gev-libev.h / gev-libevent.h; only the flavour's own is installed). */
#include "config.h"
#include "gev.h"
#include "hub.h"
#ifdef GEV_BACKEND_LIBEV
#include "gev-libev.h"
#else
#include "gev-libevent.h"
#endif

static void *native_loop(void)
{
    gev_hub *hub = gev__hub();
    return hub ? gev__backend_native(gev__loop_backend(gev__hub_loop(hub))) : NULL;
}

#ifdef GEV_BACKEND_LIBEV
struct ev_loop *gev_libev_loop(void) { return native_loop(); }
#else
struct event_base *gev_libevent_base(void) { return native_loop(); }
#endif
