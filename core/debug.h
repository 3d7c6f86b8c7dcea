/* core/debug.h: GEV_DEBUG, the misuse checks C cannot report as errors.
 *
 * With GEV_DEBUG set in the environment (and not "0"), a released greenlet
 * handle, a cancelled timeout or another hub's object that reaches a public
 * call makes gev write one line naming the call to stderr and abort():
 *
 *     gev: gev_release: greenlet-7 released twice
 *     gev: gev_queue_put: queue of another thread's hub
 *
 * (The library prints only then, for GEV_DEBUG's note that stacks go
 * without guard pages (core/stack.c), and before it aborts on a stack
 * overflow.)  Without it
 * every check below costs one predictable branch: on the cached flag, or
 * on an object's owner field, which is NULL unless GEV_DEBUG is on. */
#ifndef GEV_CORE_DEBUG_H
#define GEV_CORE_DEBUG_H

#include <stdbool.h>
#include "gev-types.h"

/* Read once per process, when the first hub or stack is made (or the
 * first object asks, gev__debug_owner): a check must never see the answer
 * change. */
/* Declared hidden: -fvisibility=hidden covers definitions only, and a
 * check through the GOT is one instruction more on every hot path. */
extern bool gev__debug __attribute__((visibility("hidden")));
bool gev__debug_enabled(void);

/* Write "gev: <call>: <what>" to stderr and abort. */
__attribute__((noreturn, cold)) void gev__misuse(const char *call, const char *what);

/* The hub to record in a new object for the thread check: this thread's
 * (created if need be) under GEV_DEBUG, else NULL (nothing to check). */
gev_hub *gev__debug_owner(void);
__attribute__((cold)) void gev__debug_check_owner(const gev_hub *owner, const char *call,
                                                  const char *kind);

/* In each public call on a sync object, pool or server: abort if this
 * thread is not the one whose hub made it.  `kind` names the object. */
#define GEV__CHECK_OWNER(owner, kind)                                   \
    do {                                                                \
        if (__builtin_expect((owner) != NULL, 0))                       \
            gev__debug_check_owner((owner), __func__, (kind));          \
    } while (0)

#endif
