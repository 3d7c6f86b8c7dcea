/* The blocking monitor (gev_monitor_start, $GEV_MONITOR): a greenlet that
 * runs past the limit without switching is reported once, with its name,
 * id, how long and a backtrace through the blocking function; a hub that
 * sleeps or switches often is never reported; reports are rate-limited;
 * the settings are checked; fork and stop behave.
 *
 * Linked with --export-dynamic (Makefile.am) so that backtrace_symbols_fd
 * can name spin_without_yielding, which is therefore not static. */
#include "gevtest.h"
#include <math.h>
#include <sched.h>
#include "hub.h"                /* a greenlet's id */

#define LIMIT 0.1               /* s */
#define SPIN 0.5                /* s: several limits, well under the rate window */
/* Where nothing must be reported: a limit that a loaded machine's
 * scheduler will not exceed by keeping the hub's thread off the CPU, and a
 * test that lasts more than twice as long. */
#define QUIET_LIMIT 0.25
#define QUIET_SECS 0.6
#define REPORT "gev monitor: greenlet \""

void spin_without_yielding(double secs);

/* Not inlined, exported: the frame the backtrace must show by name.
 * Under valgrind it gives up the CPU as it spins (the greenlet still does
 * not switch): valgrind runs one thread at a time, and its default
 * scheduler lets a thread that never makes a system call starve the
 * monitor's. */
__attribute__((noinline, visibility("default"))) void spin_without_yielding(double secs)
{
    gev__nsec end = gev__time_monotonic() + (gev__nsec)(secs * 1e9);
    while (gev__time_monotonic() < end)
        if (GEVTEST_ON_VALGRIND)
            sched_yield();
    __asm__ volatile("" ::: "memory");     /* no tail call: keep the frame */
}

static void *spinner(void *arg)
{
    spin_without_yielding(*(double *)arg);
    return NULL;
}

/* Two blocks of `arg` seconds, a switch between them. */
static void *spinner_twice(void *arg)
{
    spin_without_yielding(*(double *)arg);
    gev_sleep(0);
    spin_without_yielding(*(double *)arg);
    return NULL;
}

/* Switches every millisecond for `arg` seconds. */
static void *busy_switcher(void *arg)
{
    double end = gevtest_now() + *(double *)arg;
    while (gevtest_now() < end) {
        gevtest_spin_ns(GEVTEST_MS(1));
        gev_sleep(0);
    }
    return NULL;
}

/* A pipe the monitor writes to; the read end never blocks. */
static void report_pipe(int p[2])
{
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
}

/* Everything written to the pipe so far, NUL-terminated; closes it. */
static void read_reports(int p[2], char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(p[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    close(p[1]);
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++)
        n++;
    return n;
}

static int count_reports(const char *text) { return count_of(text, REPORT); }

/* Run fn(arg) in a greenlet named name under a monitor writing to a pipe,
 * stop the monitor, and leave in buf what it wrote; the greenlet's id in
 * *id. */
static void run_monitored(double limit, gev_fn fn, void *arg, const char *name, char *buf,
                          size_t cap, uint64_t *id)
{
    int p[2];
    report_pipe(p);
    assert_int_equal(gev_monitor_start(limit, p[1]), 0);
    gev_greenlet *g = gev_spawn(fn, arg);
    gev_set_name(g, name);
    if (id)
        *id = g->id;
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    gev_release(g);
    gev_monitor_stop();         /* joined: every report is in the pipe */
    read_reports(p, buf, cap);
}

static void test_spinner_reported_once(void **state)
{
    char buf[16384], want[64];
    double secs = SPIN;
    uint64_t id;
    run_monitored(LIMIT, spinner, &secs, "spinner", buf, sizeof buf, &id);
    if (count_reports(buf) != 1)
        fail_msg("expected one report, got:\n%s", buf);
    snprintf(want, sizeof want, REPORT "spinner\" (id %llu) has run ", (unsigned long long)id);
    const char *at = strstr(buf, want);
    if (!at)
        fail_msg("no \"%s\" in:\n%s", want, buf);
    double ran = strtod(at + strlen(want), NULL);
    assert_ge(ran, LIMIT);
    assert_le(ran, SPIN);
    assert_non_null(strstr(buf, " s without switching (limit 0.100 s) at 20"));
#ifdef HAVE_EXECINFO_H
    if (!strstr(buf, "spin_without_yielding"))
        fail_msg("no spin_without_yielding in the backtrace:\n%s", buf);
#endif
}

static void test_idle_sleep_not_reported(void **state)
{
    int p[2];
    char buf[4096];
    report_pipe(p);
    assert_int_equal(gev_monitor_start(QUIET_LIMIT, p[1]), 0);
    double t0 = gevtest_now();
    assert_int_equal(gev_sleep(QUIET_SECS), 0);
    assert_ge(gevtest_now() - t0, QUIET_SECS);
    gev_monitor_stop();
    read_reports(p, buf, sizeof buf);
    assert_string_equal(buf, "");
}

/* main waits in gev_join (switched away) while a greenlet sleeps. */
static void *sleeper(void *arg)
{
    gev_sleep(*(double *)arg);
    return NULL;
}

static void test_main_waiting_not_reported(void **state)
{
    char buf[4096];
    double secs = QUIET_SECS;
    run_monitored(QUIET_LIMIT, sleeper, &secs, "sleeper", buf, sizeof buf, NULL);
    assert_string_equal(buf, "");
}

static void test_short_switches_not_reported(void **state)
{
    char buf[4096];
    double secs = QUIET_SECS;
    run_monitored(QUIET_LIMIT, busy_switcher, &secs, "switcher", buf, sizeof buf, NULL);
    assert_string_equal(buf, "");
}

/* Two episodes within max(1 s, limit) of each other: the second is not
 * reported. */
static void test_rate_limited(void **state)
{
    char buf[16384];
    double secs = 0.4;
    run_monitored(LIMIT, spinner_twice, &secs, "spinner", buf, sizeof buf, NULL);
    if (count_reports(buf) != 1)
        fail_msg("expected one report, got:\n%s", buf);
}

/* A second start changes the limit and the fd. */
static void test_restart_changes_settings(void **state)
{
    int p1[2], p2[2];
    char buf1[4096], buf2[16384];
    double secs = SPIN;
    report_pipe(p1);
    report_pipe(p2);
    assert_int_equal(gev_monitor_start(100, p1[1]), 0);
    assert_int_equal(gev_monitor_start(LIMIT, p2[1]), 0);
    gev_greenlet *g = gev_spawn(spinner, &secs);
    gev_set_name(g, "spinner");
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    gev_release(g);
    gev_monitor_stop();
    gev_monitor_stop();         /* harmless twice */
    read_reports(p1, buf1, sizeof buf1);
    read_reports(p2, buf2, sizeof buf2);
    assert_string_equal(buf1, "");
    assert_int_equal(count_reports(buf2), 1);
}

static void test_bad_arguments(void **state)
{
    assert_fails(gev_monitor_start(0, -1), EINVAL);
    assert_fails(gev_monitor_start(-1, -1), EINVAL);
    assert_fails(gev_monitor_start(NAN, -1), EINVAL);
    assert_fails(gev_monitor_start(INFINITY, -1), EINVAL);
    assert_fails(gev_monitor_start(1, -2), EBADF);
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    assert_fails(gev_monitor_start(1, p[1]), EBADF);
    gev_monitor_stop();         /* none running: nothing to do */
    assert_int_equal(gev_monitor_start(1, -1), 0);     /* stderr */
    assert_int_equal(gev_monitor_start(1, 2), 0);
    gev_monitor_stop();
}

/* Stop does not wait for the thread's next sample (every limit/4). */
static void test_stop_is_prompt(void **state)
{
    assert_int_equal(gev_monitor_start(1000, -1), 0);
    gev_sleep(0.01);
    double t0 = gevtest_now();
    gev_monitor_stop();
    assert_lt(gevtest_now() - t0, 1.0 * gevtest_slow());
    /* And shutdown stops a running one. */
    assert_int_equal(gev_monitor_start(1000, -1), 0);
    t0 = gevtest_now();
    gev_shutdown();
    assert_lt(gevtest_now() - t0, 1.0 * gevtest_slow());
}

/* In a child: a spinner under the hub the child makes (stderr captured). */
static int child_spin(void *arg)
{
    (void)arg;
    double secs = SPIN;
    gev_greenlet *g = gev_spawn(spinner, &secs);
    gev_set_name(g, "spinner");
    int rc = gev_join(g, GEV_FOREVER);
    gev_shutdown();
    return rc == 0 ? 0 : 1;
}

static int child_env(void *arg)
{
    gev_shutdown();             /* the env is read when the hub is made */
    setenv("GEV_MONITOR", arg, 1);
    return child_spin(NULL);
}

static void test_env_starts_monitor(void **state)
{
    char err[16384];
    int st = gevtest_fork_capture(child_env, "0.1", err, sizeof err);
    gevtest_assert_exited(st, 0);
    if (count_reports(err) != 1 || !strstr(err, REPORT "spinner\""))
        fail_msg("expected one report of spinner on stderr, got:\n%s", err);
}

static void test_env_invalid_ignored(void **state)
{
    static const char *const bad[] = { "0", "-1", "abc", "0.1s", "nan", "inf", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[4096];
        int st = gevtest_fork_capture(child_env, (void *)bad[i], err, sizeof err);
        gevtest_assert_exited(st, 0);
        assert_string_equal(err, "");
    }
}

/* A monitor running at fork() runs again in the child after gev_reinit. */
static int child_reinit(void *arg)
{
    (void)arg;
    if (gev_reinit() != 0)
        return 2;
    return child_spin(NULL);
}

/* The child reports to the inherited pipe; the parent may report there
 * too, about main, which blocks its hub while it reads the child's
 * stderr. */
static void test_fork_restarts_monitor(void **state)
{
    int p[2];
    char err[4096], buf[32768];
    report_pipe(p);
    assert_int_equal(gev_monitor_start(LIMIT, p[1]), 0);
    int st = gevtest_fork_capture(child_reinit, NULL, err, sizeof err);
    gev_monitor_stop();
    read_reports(p, buf, sizeof buf);
    gevtest_assert_exited(st, 0);
    if (count_of(buf, REPORT "spinner\"") != 1)
        fail_msg("expected one report of spinner, got:\n%s", buf);
}

/* Forked without gev_reinit: the child has no monitor thread, and stopping
 * (or shutting down) must not wait for one. */
static int child_stop_without_reinit(void *arg)
{
    (void)arg;
    gev_monitor_stop();
    gev_shutdown();
    return 0;
}

static void test_fork_without_reinit_stops(void **state)
{
    char err[4096];
    assert_int_equal(gev_monitor_start(1000, -1), 0);
    int st = gevtest_fork_capture(child_stop_without_reinit, NULL, err, sizeof err);
    gev_monitor_stop();
    gevtest_assert_exited(st, 0);
    assert_string_equal(err, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_spinner_reported_once),
        gevtest(test_idle_sleep_not_reported),
        gevtest(test_main_waiting_not_reported),
        gevtest(test_short_switches_not_reported),
        gevtest(test_rate_limited),
        gevtest(test_restart_changes_settings),
        gevtest(test_bad_arguments),
        gevtest(test_stop_is_prompt),
        gevtest(test_env_starts_monitor),
        gevtest(test_env_invalid_ignored),
        gevtest(test_fork_restarts_monitor),
        gevtest(test_fork_without_reinit_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
