/* gev-patch.h: monkey patching for C, gevent's monkey.patch_all().
 *
 * Link with -lgev-patch-<backend> (pkg-config gev-patch-<backend>, or the
 * generic gev-patch) and call gev_patch_all(), or preload the library into
 * a gev program: LD_PRELOAD=libgev-patch-<backend>.so.0 GEV_PATCH=1.  From
 * then on, the blocking libc calls listed in gev_patch_all(3) made
 * by a greenlet (other than the hub) of a thread whose hub exists, wait
 * cooperatively on the hub instead of blocking the thread: unmodified
 * blocking code (an HTTP client, a database driver) runs concurrently in
 * greenlets.  Everywhere else (other threads, the hub, before the call)
 * they are libc's own.  A patched call can fail with ECANCELED (the
 * greenlet was killed) or ETIMEDOUT (a scoped gev_timeout expired).
 */
#ifndef GEV_PATCH_H
#define GEV_PATCH_H

#include <stdbool.h>
#include "gev.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Switch patching on for the whole process (idempotent).  Returns 0, or -1
 * with errno ENOSYS when the hooks cannot work because libc's definitions
 * come before the library's in symbol lookup order (a static binary, or the
 * library loaded after libc with RTLD_LOCAL/RTLD_DEEPBIND): then nothing is
 * switched on.  Code loaded with RTLD_DEEPBIND into a patched process
 * bypasses the hooks undetectably. */
GEV_API int  gev_patch_all(void);

/* Whether gev_patch_all() succeeded in this process. */
GEV_API bool gev_patch_active(void);

#ifdef __cplusplus
}
#endif

#endif
