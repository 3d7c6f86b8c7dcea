/* api/process.c: waiting for child processes (gev_waitpid) without
 * blocking the other greenlets (signals are in api/signal.c).
 *
 * A wait starts a loop watcher for its length and lets the loop multiplex.
 * The loop reaps only the pids that are watched (waitpid(pid, WNOHANG) on
 * SIGCHLD), so a user's own SIGCHLD handling and waitpid of other children
 * keep working beside it.
 */
#include "config.h"
#include <signal.h>
#include <sys/wait.h>
#include "gev.h"
#include "hub.h"

/* The common start of a wait: may we block, and a waiter with a fresh
 * wait id (its flags say whether the awaited thing happened).  The hub's
 * loop, or NULL + errno. */
static gev__loop *waiter_begin(gev__waiter *w)
{
    int err = gev__block_check();
    if (err) {
        errno = err;
        return NULL;
    }
    gev__waiter_init(w);
    return gev__hub_loop(gev__hub());
}

/* Watcher callbacks (hub context). */
static void waiter_fire(gev__waiter *w)
{
    w->flags = 1;
    gev__wake(w->g, w->wait_id, 0);
}

/* ---- child processes --------------------------------------------------- */

static void child_cb(gev__loop *loop, gev__child *c)
{
    waiter_fire(c->base.data);
}

/* waitpid(pid, WNOHANG) without EINTR: pid, 0 while it runs, -1 + errno. */
static pid_t reap_now(pid_t pid, int *status)
{
    pid_t r;
    do
        r = waitpid(pid, status, WNOHANG);
    while (r == -1 && errno == EINTR);
    return r;
}

static int reaped(pid_t pid, int *status, int st)
{
    if (status)
        *status = st;
    return (int)pid;
}

static int child_wait(pid_t pid, int *status, double timeout)
{
    gev__waiter w;
    gev__loop *loop = waiter_begin(&w);
    if (!loop)
        return -1;
    if (timeout == 0)
        return gev__fail(ETIMEDOUT);    /* reap_now just saw it running */
    gev__nsec deadline;
    int err = gev__timeout_deadline(timeout, &deadline);
    if (err)
        return gev__fail(err);
    gev__child c;
    gev__child_init(&c, child_cb, pid);
    c.base.data = &w;
    if (gev__child_start(loop, &c) == -1)
        return -1;              /* EBUSY: another thread's hub has SIGCHLD */
    gev__wait_note(GEV__WAIT_CHILD, (int)pid);
    err = gev__wait(deadline);
    gev__child_stop(loop, &c);
    /* Reaped is final: if the loop reaped it while a kill or the deadline
     * was ending the wait, its status exists nowhere else, so report it. */
    if (w.flags)
        return reaped(pid, status, c.status);
    return gev__fail(err ? err : ECHILD);
}

int gev_waitpid(pid_t pid, int *status, double timeout)
{
    if (pid <= 0)
        return gev__fail(EINVAL);  /* only specific pids: see gev.h */
    int st = 0;
    pid_t r = reap_now(pid, &st);
    if (r == -1)
        return -1;              /* ECHILD: not our child */
    if (r == pid)
        return reaped(pid, status, st);
    return child_wait(pid, status, timeout);
}
