/* core/debug.c: GEV_DEBUG's flag and its one way to complain. */
#include "config.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "debug.h"
#include "hub.h"

/* Process-wide, like the environment it caches: written once under
 * pthread_once, before any check can read it as true. */
bool gev__debug;
static pthread_once_t debug_once = PTHREAD_ONCE_INIT;

static void debug_read(void)
{
    const char *v = getenv("GEV_DEBUG");
    gev__debug = v && *v && strcmp(v, "0") != 0;
}

bool gev__debug_enabled(void)
{
    pthread_once(&debug_once, debug_read);
    return gev__debug;
}

void gev__misuse(const char *call, const char *what)
{
    char line[256];
    size_t n = 0;
    const char *parts[] = {"gev: ", call, ": ", what, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        size_t len = strlen(parts[i]);
        if (len > sizeof line - 1 - n)
            len = sizeof line - 1 - n;
        memcpy(line + n, parts[i], len);
        n += len;
    }
    line[n ? n - 1 : 0] = '\n';     /* a truncated line still ends */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    abort();
}

gev_hub *gev__debug_owner(void)
{
    return gev__debug_enabled() ? gev__hub() : NULL;
}

void gev__debug_check_owner(const gev_hub *owner, const char *call, const char *kind)
{
    if (owner == gev__hub_peek())
        return;
    char what[96];
    size_t n = strlen(kind);
    if (n > 48)
        n = 48;
    memcpy(what, kind, n);
    strcpy(what + n, " of another thread's hub");
    gev__misuse(call, what);
}
