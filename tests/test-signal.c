/* tests/test-signal.c: gev_signal_wait, gev_waitpid, and fork + gev_reinit.
 *
 * Signals are raised by other greenlets while the waiters wait (a signal
 * with no waiter has its default disposition, which would end the test).
 * Children report through their exit status; a forked child that checks gev
 * itself exits with a distinct code per failed check. */
#include "config.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gevtest.h"

/* ---- gev_signal_wait ------------------------------------------------------ */

typedef struct sig_probe {
    int signum;
    double timeout;
    int rc, err;
} sig_probe;

static void *wait_signal(void *arg)
{
    sig_probe *p = arg;
    errno = 0;
    p->rc = gev_signal_wait(p->signum, p->timeout);
    p->err = errno;
    gevtest_log("got%d", p->signum);
    return NULL;
}

static void *raise_signals(void *arg)
{
    const int *sigs = arg;
    gev_sleep(0.01);            /* the waiters are waiting by now */
    for (; *sigs; sigs++) {
        gevtest_log("raise%d", *sigs);
        raise(*sigs);
        gev_sleep(0.01);
    }
    return NULL;
}

static void test_signal_wait_usr1(void **state)
{
    (void)state;
    sig_probe p = { SIGUSR1, 5.0, -2, 0 };
    static const int sigs[] = { SIGUSR1, 0 };
    gev_greenlet *gs[2] = { gev_spawn(wait_signal, &p), gev_spawn(raise_signals, (void *)sigs) };
    gevtest_join_release(gs, 2, 5.0);
    assert_int_equal(p.rc, 0);
    assert_log("raise10 got10");
}

/* Two waiters and a raiser; the log shows who woke when. */
static void two_waiters(int sig1, int sig2, const int *raised, const char *log)
{
    sig_probe p1 = { sig1, 5.0, -2, 0 }, p2 = { sig2, 5.0, -2, 0 };
    gev_greenlet *gs[3] = { gev_spawn(wait_signal, &p1), gev_spawn(wait_signal, &p2),
                            gev_spawn(raise_signals, (void *)raised) };
    gevtest_join_release(gs, 3, 5.0);
    assert_int_equal(p1.rc, 0);
    assert_int_equal(p2.rc, 0);
    assert_log(log);
}

/* A greenlet per signal, woken in delivery order. */
static void test_two_signals_two_waiters(void **state)
{
    (void)state;
    static const int sigs[] = { SIGUSR2, SIGUSR1, 0 };
    two_waiters(SIGUSR1, SIGUSR2, sigs, "raise12 got12 raise10 got10");
}

/* Several waiters for one signal: one delivery wakes them all. */
static void test_one_signal_two_waiters(void **state)
{
    (void)state;
    static const int sigs[] = { SIGUSR1, 0 };
    two_waiters(SIGUSR1, SIGUSR1, sigs, "raise10 got10 got10");
}

static void test_signal_timeout(void **state)
{
    (void)state;
    double t0 = gevtest_now();
    assert_fails(gev_signal_wait(SIGUSR1, 0.05), ETIMEDOUT);
    double dt = gevtest_now() - t0;
    assert_true(dt >= 0.049 && dt < 1.0);
    assert_fails(gev_signal_wait(SIGUSR1, 0), ETIMEDOUT);
}

static void test_signal_kill(void **state)
{
    (void)state;
    sig_probe p = { SIGUSR1, 5.0, -2, 0 };
    gev_greenlet *g = gev_spawn(wait_signal, &p);
    assert_int_equal(gev_sleep(0.01), 0);
    assert_int_equal(gev_kill(g, 1.0), 0);
    assert_int_equal(p.rc, -1);
    assert_int_equal(p.err, ECANCELED);
    gev_release(g);
}

static void test_signal_bad(void **state)
{
    (void)state;
    assert_fails(gev_signal_wait(0, 0.01), EINVAL);
    assert_fails(gev_signal_wait(-1, 0.01), EINVAL);
    assert_fails(gev_signal_wait(NSIG, 0.01), EINVAL);
    assert_fails(gev_signal_wait(SIGKILL, 0.01), EINVAL);
}

/* Signal dispositions are per process: another thread's hub owns it. */
static atomic_int other_waiting;

static void *other_thread_waits(void *arg)
{
    (void)arg;
    gev_greenlet *g = gev_spawn(wait_signal, &(sig_probe){ SIGUSR2, 0.3, -2, 0 });
    gev_sleep(0.01);
    atomic_store(&other_waiting, 1);
    gev_join(g, 2.0);
    gev_release(g);
    gev_shutdown();
    return NULL;
}

static void test_signal_other_hub_ebusy(void **state)
{
    (void)state;
    pthread_t th;
    atomic_store(&other_waiting, 0);
    assert_int_equal(pthread_create(&th, NULL, other_thread_waits, NULL), 0);
    while (!atomic_load(&other_waiting))
        usleep(1000);
    assert_fails(gev_signal_wait(SIGUSR2, 0.01), EBUSY);
    pthread_join(th, NULL);
}

/* ---- gev_waitpid ---------------------------------------------------------- */

static void test_waitpid_while_ticking(void **state)
{
    (void)state;
    gevtest_ticks = 0;
    gev_greenlet *t = gev_spawn(gevtest_ticker, NULL);
    pid_t pid = gevtest_spawn_exit(50000, 7);
    int st = -1;
    assert_int_equal(gev_waitpid(pid, &st, 5.0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7);
    assert_ge(gevtest_ticks, 3);
    assert_fails(gev_waitpid(pid, &st, 0), ECHILD);     /* reaped once */
    assert_int_equal(gev_kill(t, 1.0), 0);
    gev_release(t);
}

/* Already exited: the fast path reaps it without waiting. */
static void test_waitpid_fast_path(void **state)
{
    (void)state;
    pid_t pid = gevtest_spawn_exit(0, 3);
    /* Until it has exited, without reaping it (a fixed sleep was too short
     * under valgrind, where a child's exit runs the leak check). */
    siginfo_t info;
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    int st = -1;
    assert_int_equal(gev_waitpid(pid, &st, 0), pid);
    assert_int_equal(WEXITSTATUS(st), 3);
}

static void test_waitpid_timeout_then_kill(void **state)
{
    (void)state;
    pid_t pid = gevtest_spawn_exit(5000000, 0);
    int st = -1;
    assert_fails(gev_waitpid(pid, &st, 0), ETIMEDOUT);
    assert_fails(gev_waitpid(pid, &st, 0.05), ETIMEDOUT);
    kill(pid, SIGKILL);
    assert_int_equal(gev_waitpid(pid, NULL, 5.0), pid);
}

static void test_waitpid_bad(void **state)
{
    (void)state;
    int st;
    assert_fails(gev_waitpid(-1, &st, 0.01), EINVAL);
    assert_fails(gev_waitpid(0, &st, 0.01), EINVAL);
    assert_fails(gev_waitpid(getpid(), &st, 0.01), ECHILD);
    assert_fails(gev_waitpid(1, &st, 0.01), ECHILD);
}

/* User SIGCHLD handling keeps working beside gev_waitpid: a greenlet waiting
 * for SIGCHLD is woken, and the user's own waitpid of another child is not
 * robbed by the loop (which reaps only watched pids). */
typedef struct pid_probe {
    pid_t pid;
    int rc, st;
} pid_probe;

static void *wait_child(void *arg)
{
    pid_probe *p = arg;
    p->rc = gev_waitpid(p->pid, &p->st, 5.0);
    gevtest_log("reaped");
    return NULL;
}

static void test_waitpid_beside_user_sigchld(void **state)
{
    (void)state;
    sig_probe sp = { SIGCHLD, 5.0, -2, 0 };
    pid_t other = gevtest_spawn_exit(0, 5);
    pid_probe pp = { gevtest_spawn_exit(50000, 6), -2, -1 };
    gev_greenlet *gs[2] = { gev_spawn(wait_signal, &sp), gev_spawn(wait_child, &pp) };
    gevtest_join_release(gs, 2, 5.0);
    assert_int_equal(sp.rc, 0);
    assert_int_equal(pp.rc, pp.pid);
    assert_int_equal(WEXITSTATUS(pp.st), 6);
    int st = -1;
    assert_int_equal(waitpid(other, &st, 0), other);
    assert_int_equal(WEXITSTATUS(st), 5);
}

/* ---- fork + gev_reinit ---------------------------------------------------- */

static void *slow_value(void *arg)
{
    usleep(200000);
    return arg;
}

static void *quick_value(void *arg) { return arg; }

typedef struct run_probe {
    int rc, err;
    void *res;
} run_probe;

static void *run_slow_job(void *arg)
{
    run_probe *p = arg;
    p->rc = gev_threadpool_run(slow_value, (void *)(intptr_t)9, &p->res);
    p->err = errno;
    return NULL;
}

static void *sleep_then_run(void *arg)
{
    (void)arg;
    if (gev_sleep(0.01) != 0)
        return NULL;
    void *res = NULL;
    if (gev_threadpool_run(quick_value, (void *)(intptr_t)5, &res) != 0)
        return NULL;
    return res;
}

/* In the child: exit code 0 if gev works, else the number of the check. */
static int child_checks(gev_greenlet *parent_job, run_probe *pj)
{
    if (gev_reinit() != 0)
        return 10;
    /* The job the parent's worker was running does not exist here. */
    if (gev_join(parent_job, 2.0) != 0)
        return 11;
    if (pj->rc != -1 || pj->err != ECANCELED)
        return 12;
    gev_greenlet *gs[4];
    for (int i = 0; i < 4; i++)
        if (!(gs[i] = gev_spawn(sleep_then_run, NULL)))
            return 13;
    if (gev_joinall(gs, 4, 5.0) != 0)
        return 14;
    for (int i = 0; i < 4; i++)
        if (gev_value(gs[i]) != (void *)(intptr_t)5)
            return 15;
    double t0 = gevtest_now();
    if (gev_sleep(0.02) != 0 || gevtest_now() - t0 < 0.019)
        return 16;
    gev_shutdown();
    return 0;
}

struct forked_checks { gev_greenlet *job; run_probe *pj; };

static int run_child_checks(void *arg)
{
    struct forked_checks *fc = arg;
    return child_checks(fc->job, fc->pj);
}

static void test_fork_reinit(void **state)
{
    (void)state;
    /* Workers exist, and one is busy, when the process forks. */
    void *res = NULL;
    assert_int_equal(gev_threadpool_run(quick_value, NULL, &res), 0);
    run_probe pj = { -2, 0, NULL };
    gev_greenlet *job = gev_spawn(run_slow_job, &pj);
    assert_int_equal(gev_sleep(0.02), 0);
    struct forked_checks fc = { job, &pj };
    pid_t pid = gevtest_fork(run_child_checks, &fc);
    /* The parent is unaffected: its job ends normally. */
    assert_int_equal(gev_join(job, 5.0), 0);
    assert_int_equal(pj.rc, 0);
    assert_ptr_equal(pj.res, (void *)(intptr_t)9);
    gev_release(job);
    int st = -1;
    assert_int_equal(gev_waitpid(pid, &st, 10.0), pid);
    gevtest_assert_exited(st, 0);
    assert_int_equal(gev_threadpool_run(quick_value, (void *)(intptr_t)3, &res), 0);
    assert_ptr_equal(res, (void *)(intptr_t)3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_signal_wait_usr1),
        gevtest(test_two_signals_two_waiters),
        gevtest(test_one_signal_two_waiters),
        gevtest(test_signal_timeout),
        gevtest(test_signal_kill),
        gevtest(test_signal_bad),
        gevtest(test_signal_other_hub_ebusy),
        gevtest(test_waitpid_while_ticking),
        gevtest(test_waitpid_fast_path),
        gevtest(test_waitpid_timeout_then_kill),
        gevtest(test_waitpid_bad),
        gevtest(test_waitpid_beside_user_sigchld),
        gevtest(test_fork_reinit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
