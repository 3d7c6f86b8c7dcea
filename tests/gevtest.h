/* tests/gevtest.h: helpers shared by the greenlet-level test programs.
 *
 *  - an event log: greenlets append short tokens ("1A", "sent hello"), and a
 *    test compares the whole sequence with the exact order gevent defines;
 *  - a fresh hub per test: the teardown calls gev_shutdown(), and fails the
 *    test if a greenlet was left alive that shutdown had to kill;
 *  - a clock in seconds for generous upper bounds (never tight timings);
 *  - small shared helpers: errno names for log tokens, joining and releasing
 *    a set of greenlets, a socket's local port, a ticking greenlet.
 */
#ifndef GEV_TESTS_GEVTEST_H
#define GEV_TESTS_GEVTEST_H

#include "config.h"             /* _GNU_SOURCE: strerrorname_np */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "gev.h"

#define GEVTEST_LOG_MAX 65536

static char gevtest_log_buf[GEVTEST_LOG_MAX];
static size_t gevtest_log_len;

static inline void gevtest_log_reset(void)
{
    gevtest_log_len = 0;
    gevtest_log_buf[0] = '\0';
}

/* Append one token; tokens are separated by single spaces. */
static inline __attribute__((format(printf, 1, 2))) void gevtest_log(const char *fmt, ...)
{
    if (gevtest_log_len && gevtest_log_len < GEVTEST_LOG_MAX - 1)
        gevtest_log_buf[gevtest_log_len++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(gevtest_log_buf + gevtest_log_len,
                      GEVTEST_LOG_MAX - gevtest_log_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        gevtest_log_len += (size_t)n;
    if (gevtest_log_len >= GEVTEST_LOG_MAX)
        gevtest_log_len = GEVTEST_LOG_MAX - 1;
}

static inline const char *gevtest_log_str(void) { return gevtest_log_buf; }

#define assert_log(expected) assert_string_equal(gevtest_log_str(), (expected))

static inline double gevtest_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* errno check for a call that must fail: assert_fails(gev_x(...), EINVAL) */
#define assert_fails(call, err) do {                 \
        errno = 0;                                   \
        long long rc_ = (long long)(call);           \
        int errno_ = errno;                          \
        assert_int_equal(rc_, -1);                   \
        assert_int_equal(errno_, (err));             \
    } while (0)

/* "0", or the errno's name: log tokens compare against gevent's outcomes. */
static inline const char *gevtest_outcome(int rc)
{
    return rc == 0 ? "0" : strerrorname_np(errno);
}

static inline void gevtest_release_all(gev_greenlet *const *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gev_release(g[i]);
}

/* Join all of g (which must succeed within timeout), then release them. */
static inline void gevtest_join_release(gev_greenlet *const *g, size_t n, double timeout)
{
    assert_int_equal(gev_joinall(g, n, timeout), 0);
    gevtest_release_all(g, n);
}

/* Waiters ended by their object, the same check for every sync object:
 * greenlets "a", "k", "b" block through wait(tag) (which logs
 * "<tag>:<outcome>..."); k's kill is delivered but k has not run again, so
 * its waiter is still queued, stale, when end() frees (EBADF) or closes
 * (EPIPE) the object.  The caller then checks the log "k:ECANCELED...
 * a:E... b:E...": k runs first (woken first), a and b in FIFO order.  Under
 * ASan a free also shows that no woken waiter touches the freed object. */
static inline void gevtest_waiters_ended_by(gev_fn wait, void (*end)(void))
{
    gev_greenlet *g[3] = {gev_spawn(wait, "a"), gev_spawn(wait, "k"), gev_spawn(wait, "b")};
    gev_sleep(0);
    assert_fails(gev_kill(g[1], 0), ETIMEDOUT);    /* delivered, k not run */
    end();
    gevtest_join_release(g, 3, GEV_FOREVER);
}

/* The dispatcher's closer (queue and channel tests): joins the producers,
 * logs "joined:<outcome>", then ends the stream. */
struct gevtest_closer {
    gev_greenlet **producers;
    size_t n;
    void (*close)(void);
};

static inline void *gevtest_close_after_producers(void *arg)
{
    struct gevtest_closer *c = arg;
    int rc = gev_joinall(c->producers, c->n, GEV_FOREVER);
    gevtest_log("joined:%s", gevtest_outcome(rc));
    c->close();
    return NULL;
}

/* The local port of a bound IPv4 or IPv6 socket. */
static inline int gevtest_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Under valgrind (CI's valgrind stage) everything runs many times slower,
 * under AddressSanitizer about twice (plus its shadow memory's faults):
 * upper time bounds stretch by gevtest_slow() and minimum tick counts
 * shrink by it (to 1, which still proves the hub ran).  In a normal build
 * both are as written. */
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#define GEVTEST_ON_VALGRIND (RUNNING_ON_VALGRIND != 0)
#else
#define GEVTEST_ON_VALGRIND 0
#endif

static inline double gevtest_slow(void)
{
#ifdef __SANITIZE_ADDRESS__
    return 2.0;
#else
    return GEVTEST_ON_VALGRIND ? 10.0 : 1.0;
#endif
}

static inline int gevtest_min_ticks(int n)
{
    int m = (int)(n / gevtest_slow());
    return m > 0 ? m : 1;
}

/* A greenlet that counts gevtest_ticks every 5 ms until it is killed. */
static int gevtest_ticks;

static inline void *gevtest_ticker(void *arg)
{
    (void)arg;
    while (gev_sleep(0.005) == 0)
        gevtest_ticks++;
    return NULL;
}

static inline int gevtest_setup(void **state)
{
    (void)state;
    gevtest_log_reset();
    return 0;
}

static inline int gevtest_teardown(void **state)
{
    (void)state;
    gev_shutdown();
    return 0;
}

#define gevtest(f) cmocka_unit_test_setup_teardown(f, gevtest_setup, gevtest_teardown)

#endif
