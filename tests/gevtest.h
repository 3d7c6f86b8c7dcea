/* tests/gevtest.h: the helpers every test program shares, one prefix
 * (gevtest_ / GEVTEST_, plus CMocka-style assert_* macros).
 *
 * Greenlet-level tests (a hub per test):
 *  - an event log: greenlets append short tokens ("1A", "sent hello"), and a
 *    test compares the whole sequence with the exact order gevent defines;
 *  - a fresh hub per test: gevtest(f) resets the log, and its teardown calls
 *    gev_shutdown() so the next test starts with no greenlets;
 *  - a clock in seconds for generous upper bounds (never tight timings);
 *  - small shared helpers: errno names for log tokens, joining and releasing
 *    a set of greenlets, a socket's local port, a ticking greenlet.
 *
 * Loop conformance tests (the internal gev__loop, no hub), and helpers both
 * kinds use:
 *  - callbacks record what happened (gevtest_rec) and the test asserts after
 *    the loop returns: a CMocka assert inside a callback would longjmp out of
 *    the middle of the loop's dispatch;
 *  - GEVTEST_CASE(fn) gives a case a fresh loop, GEVTEST_LOG_CASE(fn) a log
 *    too (gevtest_caselog);
 *  - nothing waits without a limit: gevtest_run_until() keeps a watchdog timer;
 *  - every child process comes from a fork helper, which gives it the
 *    default crash actions: gevtest_fork_check() runs a function that
 *    reports through GEVTEST_CHILD_CHECK() (a CMocka assert there would
 *    carry on running the rest of the suite in the child); gevtest_fork()
 *    and gevtest_fork_capture() one whose exit code (and stderr) tell,
 *    checked with gevtest_assert_exited / _killed / _killed_saying.
 *
 * Everything is static (inline functions, macros, the case log and the
 * tick counter), so each program takes only what it uses.
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
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gev.h"
#include "loop.h"

/* 1 when built with ThreadSanitizer: it does not support fork() in a
 * process that has threads, so the cases that fork skip under it. */
#if defined(__SANITIZE_THREAD__)
#define GEVTEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GEVTEST_UNDER_TSAN 1
#endif
#endif
#ifndef GEVTEST_UNDER_TSAN
#define GEVTEST_UNDER_TSAN 0
#endif

/* 1 when built with AddressSanitizer (gcc or clang): tests that run off a
 * stack's end on purpose, or count mappings, skip or adapt under it. */
#if defined(__SANITIZE_ADDRESS__)
#define GEVTEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GEVTEST_UNDER_ASAN 1
#endif
#endif
#ifndef GEVTEST_UNDER_ASAN
#define GEVTEST_UNDER_ASAN 0
#endif

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

/* Ordering asserts that say why they failed: assert_lt(a, b) checks a < b
 * (likewise assert_le, assert_gt, assert_ge) and on failure prints the
 * expression and both values, where assert_true(a < b) prints only the
 * expression.  Each operand is evaluated once; integers are compared as
 * long long, and if either operand is floating point both are compared as
 * double (so 0.05 < 1 and n < 100 both read naturally). */
#define GEVTEST_IS_FLOAT_(x) _Generic((x), float: 1, double: 1, long double: 1, default: 0)

#define GEVTEST_CMP_(a, op, b) do {                                            \
        if (GEVTEST_IS_FLOAT_((a) + (b))) {                                    \
            double gt_a_ = (double)(a), gt_b_ = (double)(b);                   \
            if (!(gt_a_ op gt_b_))                                             \
                fail_msg("assert %s %s %s: %.9g %s %.9g is false",                 \
                         #a, #op, #b, gt_a_, #op, gt_b_);                      \
        } else {                                                               \
            long long gt_a_ = (long long)(a), gt_b_ = (long long)(b);          \
            if (!(gt_a_ op gt_b_))                                             \
                fail_msg("assert %s %s %s: %lld %s %lld is false",             \
                         #a, #op, #b, gt_a_, #op, gt_b_);                      \
        }                                                                      \
    } while (0)

#define assert_lt(a, b) GEVTEST_CMP_(a, <, b)
#define assert_le(a, b) GEVTEST_CMP_(a, <=, b)
#define assert_gt(a, b) GEVTEST_CMP_(a, >, b)
#define assert_ge(a, b) GEVTEST_CMP_(a, >=, b)

/* errno check for a call that must fail: assert_fails(gev_x(...), EINVAL) */
#define assert_fails(call, err) do {                 \
        errno = 0;                                   \
        long long rc_ = (long long)(call);           \
        int errno_ = errno;                          \
        assert_int_equal(rc_, -1);                   \
        assert_int_equal(errno_, (err));             \
    } while (0)

/* `call`, made inside a scoped timeout of 10 ms, fails with ETIMEDOUT. */
#define assert_fails_in_scoped_timeout(call) do {    \
        gev_timeout *t_ = gev_timeout_start(0.01);   \
        assert_fails(call, ETIMEDOUT);               \
        gev_timeout_cancel(t_);                      \
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

/* -- time ------------------------------------------------------------- */

#define GEVTEST_MS(n) ((gev__nsec)(n) * INT64_C(1000000))
#define GEVTEST_US(n) ((gev__nsec)(n) * INT64_C(1000))

static inline void gevtest_sleep_ns(gev__nsec ns)
{
    struct timespec ts = { (time_t)(ns / GEV__NSEC_PER_SEC),
                           (long)(ns % GEV__NSEC_PER_SEC) };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Busy-wait until the monotonic clock has advanced by ns (no syscall that
 * could let the loop run). */
static inline void gevtest_spin_ns(gev__nsec ns)
{
    gev__nsec end = gev__time_monotonic() + ns;
    while (gev__time_monotonic() < end)
        ;
}

/* -- the loop fixture ---------------------------------------------------- */

/* A case that hangs (a loop that blocks when it should not) is killed by
 * SIGALRM instead of stalling the program until the harness's limit. */
#ifndef GEVTEST_CASE_TIMEOUT_S
#define GEVTEST_CASE_TIMEOUT_S 60
#endif

static inline int gevtest_loop_setup(void **state)
{
    alarm(GEVTEST_CASE_TIMEOUT_S);
    gev__loop *loop = gev__loop_new();
    if (loop == NULL)
        return -1;
    *state = loop;
    return 0;
}

static inline int gevtest_loop_teardown(void **state)
{
    gev__loop_free(*state);
    *state = NULL;
    alarm(0);
    return 0;
}

#define GEVTEST_CASE(fn) cmocka_unit_test_setup_teardown(fn, gevtest_loop_setup, gevtest_loop_teardown)

/* -- recording arrays ------------------------------------------------------ */

typedef struct gevtest_rec {
    int *v;
    size_t n;      /* entries pushed (may exceed cap: that is reported) */
    size_t cap;
} gevtest_rec;

static inline void gevtest_rec_init(gevtest_rec *l, size_t cap)
{
    l->v = calloc(cap ? cap : 1, sizeof *l->v);
    assert_non_null(l->v);
    l->n = 0;
    l->cap = cap;
}

static inline void gevtest_rec_push(gevtest_rec *l, int x)
{
    if (l->n < l->cap)
        l->v[l->n] = x;
    l->n++;
}

static inline void gevtest_rec_free(gevtest_rec *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* The log holds exactly `count` entries, equal to expected[] one by one. */
#define GEVTEST_ASSERT_REC(log, expected, count) do {                               \
        const gevtest_rec *gevtest_l_ = (log);                                           \
        const int *gevtest_e_ = (expected);                                         \
        size_t gevtest_c_ = (size_t)(count);                                        \
        if (gevtest_l_->n != gevtest_c_)                                                 \
            fail_msg("log has %zu entries, expected %zu", gevtest_l_->n, gevtest_c_);    \
        for (size_t gevtest_i_ = 0; gevtest_i_ < gevtest_c_; gevtest_i_++)                         \
            if (gevtest_l_->v[gevtest_i_] != gevtest_e_[gevtest_i_])                               \
                fail_msg("log[%zu] = %d, expected %d", gevtest_i_,                  \
                         gevtest_l_->v[gevtest_i_], gevtest_e_[gevtest_i_]);                       \
    } while (0)

/* Same, with the expectation written inline: GEVTEST_ASSERT_REC_IS(&log, 1, 2, 3). */
#define GEVTEST_ASSERT_REC_IS(log, ...) do {                                        \
        const int gevtest_x_[] = { __VA_ARGS__ };                                   \
        GEVTEST_ASSERT_REC(log, gevtest_x_, sizeof gevtest_x_ / sizeof gevtest_x_[0]);             \
    } while (0)

/* -- loop cases with a log -------------------------------------------------- */

/* GEVTEST_LOG_CASE(fn): a GEVTEST_CASE whose log, gevtest_caselog, is empty
 * at the start with room for 4096 entries, and freed after the case. */
static gevtest_rec gevtest_caselog;

static inline int gevtest_log_setup(void **state)
{
    gevtest_rec_init(&gevtest_caselog, 4096);
    return gevtest_loop_setup(state);
}

static inline int gevtest_log_teardown(void **state)
{
    gevtest_rec_free(&gevtest_caselog);
    return gevtest_loop_teardown(state);
}

#define GEVTEST_LOG_CASE(fn) cmocka_unit_test_setup_teardown(fn, gevtest_log_setup, gevtest_log_teardown)

/* -- running the loop with a limit ----------------------------------------- */

/* Start t `after` ns (negative: 0) from the loop's cached now, the way the
 * hub turns a timeout into a deadline for gev__timer_start_at. */
static inline void gevtest_timer_start(gev__loop *loop, gev__timer *t, gev__nsec after)
{
    gev__nsec now = gev__loop_now(loop);
    if (after < 0)
        after = 0;
    gev__timer_start_at(loop, t, after > INT64_MAX - now ? INT64_MAX : now + after);
}

/* One iteration that must not fail. */
static inline void gevtest_nowait(gev__loop *loop)
{
    assert_true(gev__loop_run(loop, GEV__RUN_NOWAIT) >= 0);
}

/* GEV__RUN_ONCE until nothing referenced is active: 0, or -1 on a failure. */
static inline int gevtest_run_all(gev__loop *loop)
{
    int r;
    while ((r = gev__loop_run(loop, GEV__RUN_ONCE)) > 0)
        ;
    return r;
}

typedef bool (*gevtest_pred)(void *arg);

static inline void gevtest__watchdog_cb(gev__loop *loop, gev__timer *t)
{
    (void)loop;
    (void)t;
}

/* gev__loop_run(ONCE) until pred(arg) holds or timeout_ms have passed; a
 * watchdog timer bounds each blocking iteration.  Returns pred's last value. */
static inline bool gevtest_run_until_pred(gev__loop *loop, gevtest_pred pred, void *arg, int timeout_ms)
{
    gev__nsec end = gev__time_monotonic() + GEVTEST_MS(timeout_ms);
    gev__timer wd;
    gev__timer_init(&wd, gevtest__watchdog_cb);
    while (!pred(arg)) {
        gev__nsec left = end - gev__time_monotonic();
        if (left <= 0)
            break;
        gevtest_timer_start(loop, &wd, left);
        if (gev__loop_run(loop, GEV__RUN_ONCE) < 0)
            break;
    }
    gev__timer_stop(loop, &wd);
    return pred(arg);
}

typedef struct { const volatile int *counter; int target; } gevtest__count_arg;

static inline bool gevtest__count_reached(void *arg)
{
    const gevtest__count_arg *a = arg;
    return *a->counter >= a->target;
}

/* Run until *counter >= target (counter is updated by callbacks). */
static inline bool gevtest_run_until(gev__loop *loop, const volatile int *counter, int target,
                                int timeout_ms)
{
    gevtest__count_arg a = { counter, target };
    return gevtest_run_until_pred(loop, gevtest__count_reached, &a, timeout_ms);
}

typedef struct { const gevtest_rec *log; size_t n; } gevtest__rec_arg;

static inline bool gevtest__rec_reached(void *arg)
{
    const gevtest__rec_arg *a = arg;
    return a->log->n >= a->n;
}

/* Run until the log holds at least n entries. */
static inline bool gevtest_run_until_recorded(gev__loop *loop, const gevtest_rec *log, size_t n,
                                       int timeout_ms)
{
    gevtest__rec_arg a = { log, n };
    return gevtest_run_until_pred(loop, gevtest__rec_reached, &a, timeout_ms);
}

/* -- sockets ----------------------------------------------------------------- */

static inline void gevtest_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A connected AF_UNIX stream pair, both ends non-blocking and close-on-exec. */
static inline void gevtest_socketpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static inline void gevtest_close_pair(int sv[2])
{
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    sv[0] = sv[1] = -1;
}

static inline bool gevtest_write_byte(int fd)
{
    char c = 'x';
    return write(fd, &c, 1) == 1;
}

/* Read everything readable; returns the number of bytes read. */
static inline size_t gevtest_drain(int fd)
{
    char buf[4096];
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += (size_t)n;
    return total;
}

/* Write until the socket buffer is full (EAGAIN). */
static inline size_t gevtest_fill(int fd)
{
    static const char buf[4096];
    size_t total = 0;
    ssize_t n;
    while ((n = write(fd, buf, sizeof buf)) > 0)
        total += (size_t)n;
    assert_true(n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
    return total;
}

static inline bool gevtest_fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* -- child processes: each test forks through these ------------------------- */

/* fork() for a test: returns 0 in the child, the pid in the parent.  CMocka's
 * crash handlers would longjmp back into the suite and run the remaining
 * tests in a child, so the child crashes for real instead. */
static inline pid_t gevtest__fork(void)
{
    if (GEVTEST_UNDER_TSAN)
        skip();
    fflush(NULL);
    pid_t pid = fork();
    assert_ge(pid, 0);
    if (pid == 0) {
        static const int crash_sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
        for (size_t i = 0; i < sizeof crash_sigs / sizeof crash_sigs[0]; i++)
            signal(crash_sigs[i], SIG_DFL);
    }
    return pid;
}

/* Fork a child that runs fn(arg) and exits with what it returns (no CMocka
 * asserts in fn: the exit status says it all).  Returns the child's pid. */
static inline pid_t gevtest_fork(int (*fn)(void *arg), void *arg)
{
    pid_t pid = gevtest__fork();
    if (pid == 0) {
        _exit(fn(arg));
    }
    return pid;
}

/* A child that exits with code after usec microseconds. */
static inline pid_t gevtest_spawn_exit(unsigned usec, int code)
{
    pid_t pid = gevtest__fork();
    if (pid == 0) {
        if (usec)
            usleep(usec);
        _exit(code);
    }
    return pid;
}

/* Reap pid (retrying on EINTR); returns its wait status. */
static inline int gevtest_reap(pid_t pid)
{
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
        ;
    assert_int_equal(r, pid);
    return st;
}

/* The wait status is a normal exit with code; otherwise fail saying what
 * it was (the signal that killed the child, or the other code). */
static inline void gevtest_assert_exited(int st, int code)
{
    if (WIFSIGNALED(st))
        fail_msg("child killed by signal %d (%s), expected exit %d",
                 WTERMSIG(st), strsignal(WTERMSIG(st)), code);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), code);
}

/* The wait status is death by signal sig; otherwise fail saying what it was. */
static inline void gevtest_assert_killed(int st, int sig)
{
    if (WIFEXITED(st))
        fail_msg("child exited with %d, expected signal %d (%s)", WEXITSTATUS(st), sig,
                 strsignal(sig));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), sig);
}

/* The wait status is death by signal sig and the child's stderr (err)
 * holds want; otherwise fail showing the status and all of stderr.  The
 * check of a crash that must be reported (a stack overflow: SIGABRT). */
static inline void gevtest_assert_killed_saying(int st, int sig, const char *err,
                                                const char *want)
{
    if (!WIFSIGNALED(st) || WTERMSIG(st) != sig || strstr(err, want) == NULL)
        fail_msg("child status 0x%x, expected signal %d and \"%s\" on stderr:\n%s",
                 st, sig, want, err);
}

/* Run fn(arg) in a child with its stderr captured: err gets what it wrote
 * (NUL-terminated, cut at cap - 1); returns the child's wait status. */
static inline int gevtest_fork_capture(int (*fn)(void *arg), void *arg, char *err, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = gevtest__fork();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        _exit(fn(arg));
    }
    close(p[1]);
    size_t len = 0;
    for (;;) {                  /* to EOF, so the child never blocks on us */
        char spill[256];
        size_t room = cap - 1 - len;
        ssize_t n = read(p[0], room ? err + len : spill, room ? room : sizeof spill);
        if (n > 0 && room)
            len += (size_t)n;
        else if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    err[len] = '\0';
    close(p[0]);
    return gevtest_reap(pid);
}

/* -- fork and check -------------------------------------------------------------- */

static inline int *gevtest__child_report_fd(void)
{
    static int fd = -1;
    return &fd;
}

/* In a child started by gevtest_fork_check(): report the failed condition to the
 * parent through the pipe and exit 1. */
static inline void gevtest__child_fail(const char *file, int line, const char *expr)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s:%d: %s", file, line, expr);
    int fd = *gevtest__child_report_fd();
    if (fd >= 0 && n > 0) {
        ssize_t w = write(fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        (void)w;
    }
    _exit(1);
}

#define GEVTEST_CHILD_CHECK(cond) do {                                              \
        if (!(cond))                                                           \
            gevtest__child_fail(__FILE__, __LINE__, #cond);                         \
    } while (0)

/* Fork and wait for the child.  In the child, fn(arg) runs with an alarm of
 * timeout_s seconds, then the child exits 0.  In the parent, if parent_fn is
 * not NULL it runs while the child is alive (keep its CMocka asserts for
 * after it has let the child finish, or the child is left to its alarm).  Fails the test if the child did not exit 0,
 * with the child's GEVTEST_CHILD_CHECK message. */
static inline void gevtest_fork_check_with(void (*fn)(void *arg), void *arg,
                                      void (*parent_fn)(void *arg, pid_t child),
                                      void *parent_arg, unsigned timeout_s)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = gevtest__fork();
    if (pid == 0) {
        close(p[0]);
        *gevtest__child_report_fd() = p[1];
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
    int st = gevtest_reap(pid);
    if (WIFSIGNALED(st))
        fail_msg("child killed by signal %d%s %s", WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? " (timeout)" : "", msg);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child failed (status %d): %s", st, msg);
}

static inline void gevtest_fork_check(void (*fn)(void *arg), void *arg, unsigned timeout_s)
{
    gevtest_fork_check_with(fn, arg, NULL, NULL, timeout_s);
}

/* Block until pid has exited, without reaping it (it stays a zombie). */
static inline void gevtest_wait_exited_noreap(pid_t pid)
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
