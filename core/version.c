/* core/version.c: what was built.  gev_backend() answers from the backend
 * file compiled in, so it cannot disagree with the code that runs. */
#include "config.h"
#include "gev.h"
#include "loop.h"

#define GEV_STR_(x) #x
#define GEV_STR(x) GEV_STR_(x)

const char *gev_version(void)
{
    return GEV_STR(GEV_VERSION_MAJOR) "." GEV_STR(GEV_VERSION_MINOR) "."
           GEV_STR(GEV_VERSION_PATCH);
}

const char *gev_backend(void) { return gev__backend_name(); }

const char *gev_backend_version(void) { return gev__backend_version(); }
