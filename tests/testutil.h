/* tests/testutil.h: helpers shared by the loop conformance tests.
 *
 * Everything here is static inline so each test program takes only what it
 * uses.  Rules the helpers follow, and the tests with them:
 *  - callbacks record what happened (tu_log) and the test asserts after the
 *    loop returns: a CMocka assert inside a callback would longjmp out of the
 *    middle of the loop's dispatch;
 *  - nothing waits without a limit: tu_run_until() keeps a watchdog timer;
 *  - in a forked child only TU_CHILD_CHECK() is used (a CMocka assert there
 *    would carry on running the rest of the suite in the child).
 */
#ifndef GEV_TESTS_TESTUTIL_H
#define GEV_TESTS_TESTUTIL_H

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"

/* -- time ------------------------------------------------------------- */

#define TU_MS(n) ((gev__nsec)(n) * INT64_C(1000000))
#define TU_US(n) ((gev__nsec)(n) * INT64_C(1000))

static inline void tu_sleep_ns(gev__nsec ns)
{
    struct timespec ts = { (time_t)(ns / GEV__NSEC_PER_SEC),
                           (long)(ns % GEV__NSEC_PER_SEC) };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Busy-wait until the monotonic clock has advanced by ns (no syscall that
 * could let the loop run). */
static inline void tu_spin_ns(gev__nsec ns)
{
    gev__nsec end = gev__time_monotonic() + ns;
    while (gev__time_monotonic() < end)
        ;
}

/* -- the loop fixture ---------------------------------------------------- */

/* A case that hangs (a loop that blocks when it should not) is killed by
 * SIGALRM instead of stalling the program until the harness's limit. */
#ifndef TU_CASE_TIMEOUT_S
#define TU_CASE_TIMEOUT_S 60
#endif

static inline int tu_loop_setup(void **state)
{
    alarm(TU_CASE_TIMEOUT_S);
    gev__loop *loop = gev__loop_new();
    if (loop == NULL)
        return -1;
    *state = loop;
    return 0;
}

static inline int tu_loop_teardown(void **state)
{
    gev__loop_free(*state);
    *state = NULL;
    alarm(0);
    return 0;
}

#define TU_CASE(fn) cmocka_unit_test_setup_teardown(fn, tu_loop_setup, tu_loop_teardown)

/* -- recording arrays ------------------------------------------------------ */

typedef struct tu_log {
    int *v;
    size_t n;      /* entries pushed (may exceed cap: that is reported) */
    size_t cap;
} tu_log;

static inline void tu_log_init(tu_log *l, size_t cap)
{
    l->v = calloc(cap ? cap : 1, sizeof *l->v);
    assert_non_null(l->v);
    l->n = 0;
    l->cap = cap;
}

static inline void tu_log_push(tu_log *l, int x)
{
    if (l->n < l->cap)
        l->v[l->n] = x;
    l->n++;
}

static inline void tu_log_free(tu_log *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* The log holds exactly `count` entries, equal to expected[] one by one. */
#define TU_ASSERT_LOG(log, expected, count) do {                               \
        const tu_log *tu_l_ = (log);                                           \
        const int *tu_e_ = (expected);                                         \
        size_t tu_c_ = (size_t)(count);                                        \
        if (tu_l_->n != tu_c_)                                                 \
            fail_msg("log has %zu entries, expected %zu", tu_l_->n, tu_c_);    \
        for (size_t tu_i_ = 0; tu_i_ < tu_c_; tu_i_++)                         \
            if (tu_l_->v[tu_i_] != tu_e_[tu_i_])                               \
                fail_msg("log[%zu] = %d, expected %d", tu_i_,                  \
                         tu_l_->v[tu_i_], tu_e_[tu_i_]);                       \
    } while (0)

/* Same, with the expectation written inline: TU_ASSERT_LOG_IS(&log, 1, 2, 3). */
#define TU_ASSERT_LOG_IS(log, ...) do {                                        \
        const int tu_x_[] = { __VA_ARGS__ };                                   \
        TU_ASSERT_LOG(log, tu_x_, sizeof tu_x_ / sizeof tu_x_[0]);             \
    } while (0)

/* -- running the loop with a limit ----------------------------------------- */

/* One iteration that must not fail. */
static inline void tu_nowait(gev__loop *loop)
{
    assert_true(gev__loop_run(loop, GEV__RUN_NOWAIT) >= 0);
}

typedef bool (*tu_pred)(void *arg);

static inline void tu__watchdog_cb(gev__loop *loop, gev__timer *t)
{
    (void)loop;
    (void)t;
}

/* gev__loop_run(ONCE) until pred(arg) holds or timeout_ms have passed; a
 * watchdog timer bounds each blocking iteration.  Returns pred's last value. */
static inline bool tu_run_until_pred(gev__loop *loop, tu_pred pred, void *arg, int timeout_ms)
{
    gev__nsec end = gev__time_monotonic() + TU_MS(timeout_ms);
    gev__timer wd;
    gev__timer_init(&wd, tu__watchdog_cb);
    while (!pred(arg)) {
        gev__nsec left = end - gev__time_monotonic();
        if (left <= 0)
            break;
        gev__timer_start(loop, &wd, left, 0);
        if (gev__loop_run(loop, GEV__RUN_ONCE) < 0)
            break;
    }
    gev__timer_stop(loop, &wd);
    return pred(arg);
}

typedef struct { const volatile int *counter; int target; } tu__count_arg;

static inline bool tu__count_reached(void *arg)
{
    const tu__count_arg *a = arg;
    return *a->counter >= a->target;
}

/* Run until *counter >= target (counter is updated by callbacks). */
static inline bool tu_run_until(gev__loop *loop, const volatile int *counter, int target,
                                int timeout_ms)
{
    tu__count_arg a = { counter, target };
    return tu_run_until_pred(loop, tu__count_reached, &a, timeout_ms);
}

typedef struct { const tu_log *log; size_t n; } tu__log_arg;

static inline bool tu__log_reached(void *arg)
{
    const tu__log_arg *a = arg;
    return a->log->n >= a->n;
}

/* Run until the log holds at least n entries. */
static inline bool tu_run_until_logged(gev__loop *loop, const tu_log *log, size_t n,
                                       int timeout_ms)
{
    tu__log_arg a = { log, n };
    return tu_run_until_pred(loop, tu__log_reached, &a, timeout_ms);
}

/* -- sockets ----------------------------------------------------------------- */

static inline void tu_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A connected AF_UNIX stream pair, both ends non-blocking. */
static inline void tu_socketpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    tu_set_nonblock(sv[0]);
    tu_set_nonblock(sv[1]);
}

static inline void tu_close_pair(int sv[2])
{
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    sv[0] = sv[1] = -1;
}

static inline bool tu_write_byte(int fd)
{
    char c = 'x';
    return write(fd, &c, 1) == 1;
}

/* Read everything readable; returns the number of bytes read. */
static inline size_t tu_drain(int fd)
{
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += (size_t)n;
    return total;
}

/* Write until the socket buffer is full (EAGAIN). */
static inline size_t tu_fill(int fd)
{
    static const char buf[4096];
    size_t total = 0;
    ssize_t n;
    while ((n = write(fd, buf, sizeof buf)) > 0)
        total += (size_t)n;
    assert_true(n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
    return total;
}

static inline bool tu_fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* -- fork and check -------------------------------------------------------------- */

static inline int *tu__child_report_fd(void)
{
    static int fd = -1;
    return &fd;
}

/* In a child started by tu_fork_check(): report the failed condition to the
 * parent through the pipe and exit 1. */
static inline void tu__child_fail(const char *file, int line, const char *expr)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s:%d: %s", file, line, expr);
    int fd = *tu__child_report_fd();
    if (fd >= 0 && n > 0) {
        ssize_t w = write(fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        (void)w;
    }
    _exit(1);
}

#define TU_CHILD_CHECK(cond) do {                                              \
        if (!(cond))                                                           \
            tu__child_fail(__FILE__, __LINE__, #cond);                         \
    } while (0)

/* Fork and wait for the child.  In the child, fn(arg) runs with an alarm of
 * timeout_s seconds, then the child exits 0.  In the parent, if parent_fn is
 * not NULL it runs while the child is alive (keep its CMocka asserts for
 * after it has let the child finish, or the child is left to its alarm).  Fails the test if the child did not exit 0,
 * with the child's TU_CHILD_CHECK message. */
static inline void tu_fork_check_with(void (*fn)(void *arg), void *arg,
                                      void (*parent_fn)(void *arg, pid_t child),
                                      void *parent_arg, unsigned timeout_s)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* CMocka's crash handlers would longjmp back into the suite and run
         * the remaining tests in the child: crash for real instead. */
        static const int crash_sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
        for (size_t i = 0; i < sizeof crash_sigs / sizeof crash_sigs[0]; i++)
            signal(crash_sigs[i], SIG_DFL);
        close(p[0]);
        *tu__child_report_fd() = p[1];
        alarm(timeout_s);
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    if (parent_fn != NULL)
        parent_fn(parent_arg, pid);
    char msg[512];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof msg - 1 &&
           ((n = read(p[0], msg + len, sizeof msg - 1 - len)) > 0 ||
            (n == -1 && errno == EINTR)))
        if (n > 0)
            len += (size_t)n;
    msg[len] = '\0';
    close(p[0]);
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
        ;
    assert_int_equal(r, pid);
    if (WIFSIGNALED(st))
        fail_msg("child killed by signal %d%s %s", WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? " (timeout)" : "", msg);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child failed (status %d): %s", st, msg);
}

static inline void tu_fork_check(void (*fn)(void *arg), void *arg, unsigned timeout_s)
{
    tu_fork_check_with(fn, arg, NULL, NULL, timeout_s);
}

/* Block until pid has exited, without reaping it (it stays a zombie). */
static inline void tu_wait_exited_noreap(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    while ((r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT)) == -1 && errno == EINTR)
        ;
    assert_int_equal(r, 0);
    assert_int_equal(si.si_pid, pid);
}

#endif
