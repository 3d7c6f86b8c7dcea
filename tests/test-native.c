/* The escape hatch: a watcher added straight to the event library's loop
 * runs while greenlets sleep, in hub context. */
#include "config.h"
#include "gevtest.h"
#ifdef GEV_BACKEND_LIBEV
#include "gev-libev.h"
#if defined(HAVE_LIBEV_EV_H) && !defined(HAVE_EV_H)
#include <libev/ev.h>
#else
#include <ev.h>
#endif
#else
#include "gev-libevent.h"
#include <event2/event.h>
#endif

static int fired;
static int blocking_errno;

static void on_native_timer(void)
{
    fired++;
    errno = 0;
    blocking_errno = gev_sleep(0) == -1 ? errno : 0;   /* hub context */
}

#ifdef GEV_BACKEND_LIBEV
static void on_ev_timer(struct ev_loop *loop, ev_timer *w, int revents) { on_native_timer(); }
#else
static void event_cb(evutil_socket_t fd, short what, void *arg) { on_native_timer(); }
#endif

static void test_native_timer_fires_while_greenlets_sleep(void **state)
{
    fired = 0;
    blocking_errno = -1;
#ifdef GEV_BACKEND_LIBEV
    struct ev_loop *loop = gev_libev_loop();
    assert_non_null(loop);
    ev_timer t;
    ev_timer_init(&t, on_ev_timer, 0.01, 0.);
    ev_timer_start(loop, &t);
#else
    struct event_base *base = gev_libevent_base();
    assert_non_null(base);
    struct event *ev = evtimer_new(base, event_cb, NULL);
    struct timeval tv = {0, 10000};
    assert_int_equal(evtimer_add(ev, &tv), 0);
#endif
    assert_int_equal(gev_sleep(0.1), 0);
    assert_int_equal(fired, 1);
    assert_int_equal(blocking_errno, EDEADLK);
#ifndef GEV_BACKEND_LIBEV
    event_free(ev);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_native_timer_fires_while_greenlets_sleep),
    };
    return cmocka_run_group_tests_name("native", tests, NULL, NULL);
}
