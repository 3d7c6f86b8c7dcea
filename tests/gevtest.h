/* tests/gevtest.h: helpers shared by the greenlet-level test programs.
 *
 *  - an event log: greenlets append short tokens ("1A", "sent hello"), and a
 *    test compares the whole sequence with the exact order gevent defines;
 *  - a fresh hub per test: the teardown calls gev_shutdown(), and fails the
 *    test if a greenlet was left alive that shutdown had to kill;
 *  - a clock in seconds for generous upper bounds (never tight timings).
 */
#ifndef GEV_TESTS_GEVTEST_H
#define GEV_TESTS_GEVTEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
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
