/* api/patch-sleep.c: sleep, usleep, nanosleep, clock_nanosleep as
 * gev_sleep.  Arguments libc refuses go to libc, for its errno; a sleep a
 * kill or a scoped timeout ends early fails as an interrupted sleep does
 * (the time left reported where libc reports it), with errno ECANCELED or
 * ETIMEDOUT in place of EINTR. */
#include "config.h"

#include <math.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "patch.h"

GEV__PATCH_ORIGINAL(sleep);
GEV__PATCH_ORIGINAL(usleep);
GEV__PATCH_ORIGINAL(nanosleep);
GEV__PATCH_ORIGINAL(clock_nanosleep);

static int gev__sys_nanosleep(const struct timespec *req, struct timespec *rem)
{
    return (int)syscall(SYS_nanosleep, req, rem);
}
static int gev__sys_clock_nanosleep(clockid_t c, int fl, const struct timespec *req,
                                    struct timespec *rem)
{
    /* The syscall returns -1 + errno; the function returns the error. */
    return syscall(SYS_clock_nanosleep, c, fl, req, rem) < 0 ? errno : 0;
}
static unsigned gev__sys_sleep(unsigned s)
{
    struct timespec t = { s, 0 };
    return gev__sys_nanosleep(&t, &t) < 0 ? (unsigned)t.tv_sec : 0;
}
static int gev__sys_usleep(useconds_t us)
{
    struct timespec t = { us / 1000000, (long)(us % 1000000) * 1000 };
    return gev__sys_nanosleep(&t, NULL);
}

static double now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* gev_sleep(s): 0, or the errno that ended it with *left the time left. */
static int patch_sleep(double s, double *left)
{
    double start = now_mono();
    if (gev_sleep(s) == 0)
        return 0;
    int err = errno;
    *left = fmax(0, s - (now_mono() - start));
    return err;
}

static struct timespec ts_from(double s)
{
    struct timespec t = { (time_t)s, 0 };
    t.tv_nsec = (long)((s - (double)t.tv_sec) * 1e9);
    return t;
}

GEV__HOOK unsigned sleep(unsigned s)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return GEV__PATCH_REAL(sleep)(s);
    double left;
    int err = patch_sleep(s, &left);
    if (!err)
        return 0;
    errno = err;
    return (unsigned)ceil(left);
}

GEV__HOOK int usleep(useconds_t us)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g)
        return GEV__PATCH_REAL(usleep)(us);
    double left;
    int err = patch_sleep(us / 1e6, &left);
    return err ? gev__fail(err) : 0;
}

static bool ts_ok(const struct timespec *t)
{
    return t && t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000L;
}

GEV__HOOK int nanosleep(const struct timespec *req, struct timespec *rem)
{
    gev_greenlet *g = gev__patch_acting();
    if (!g || !ts_ok(req))
        return GEV__PATCH_REAL(nanosleep)(req, rem);
    double left;
    int err = patch_sleep((double)req->tv_sec + req->tv_nsec / 1e9, &left);
    if (err && rem)
        *rem = ts_from(left);
    return err ? gev__fail(err) : 0;
}

GEV__HOOK int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                              struct timespec *rem)
{
    gev_greenlet *g = gev__patch_acting();
    struct timespec now;
    if (!g || !ts_ok(req) || (flags & ~TIMER_ABSTIME) ||
        (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC && clk != CLOCK_BOOTTIME) ||
        clock_gettime(clk, &now) < 0)
        return GEV__PATCH_REAL(clock_nanosleep)(clk, flags, req, rem);
    double s = (double)req->tv_sec + req->tv_nsec / 1e9;
    if (flags & TIMER_ABSTIME)
        s -= (double)now.tv_sec + now.tv_nsec / 1e9;
    double left;
    int err = patch_sleep(fmax(s, 0), &left);
    if (err && rem && !(flags & TIMER_ABSTIME))
        *rem = ts_from(left);
    return err;
}
