/* api/patch-support.c: the private entry points of libgev that the patch
 * library (libgev-patch-<flavour>, api/patch*.c) calls.
 *
 * The patch library is a separate shared object linked against the
 * installed libgev, so gev's internals exist once in the process.  It needs
 * a few of them; rather than exporting gev__* at large, libgev exports this
 * short, explicit list (plus gev__tls_hub, read inline by the patch hooks'
 * flag check) under a version node named after the backend AND the package
 * version (gev.map.in).  A libgev-patch from another release then fails at
 * load time with a missing symbol version instead of misreading the hub
 * structures it shares through core/hub.h.  Nothing here is public API. */
#include "config.h"

#include "fd.h"

#define PATCH_SUPPORT __attribute__((visibility("default")))

PATCH_SUPPORT int gev__patch_fd_wait(int fd, int events, gev__nsec deadline);
PATCH_SUPPORT void gev__patch_fd_closing(int fd);
PATCH_SUPPORT gev__nsec gev__patch_deadline_after(double seconds);
PATCH_SUPPORT bool gev__patch_read_drained(int fd);
PATCH_SUPPORT void gev__patch_read_short(int fd, ssize_t r, size_t n);

int gev__patch_fd_wait(int fd, int events, gev__nsec deadline)
{
    return gev__fd_wait(fd, events, deadline);
}

void gev__patch_fd_closing(int fd)
{
    gev__fd_closing(fd);
}

gev__nsec gev__patch_deadline_after(double seconds)
{
    return gev__deadline_after(seconds);
}

/* gev_recv's drained mark (api/fd.h), for the patch's blocking reads. */
bool gev__patch_read_drained(int fd)
{
    gev_hub *hub = gev__hub_peek();
    return hub && gev__fd_read_waits_first(gev__fd_record_peek(hub, fd), fd, true);
}

void gev__patch_read_short(int fd, ssize_t r, size_t n)
{
    gev_hub *hub = gev__hub_peek();
    if (hub)
        gev__fd_read_note_short(gev__fd_record_peek(hub, fd), r, n);
}
