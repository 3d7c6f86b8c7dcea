/* tests/test-loop-signal.c: signal and child watchers.
 *
 * Signals arrive as callbacks in the loop thread (never inside the handler);
 * every watcher of a signal is called; a stopped one is not; bad numbers are
 * EINVAL and a signal owned by another thread's loop is EBUSY.  Children are
 * reaped with waitpid(pid): the status reaches the callback, a child that
 * exited before start is still reaped, and a pid nobody watches is left alone.
 *
 * A watcher is never stopped while it is the last one of SIGUSR1/2 and the
 * signal may still come: the disposition after the last stop is the
 * backend's business (libev restores SIG_DFL, which would kill the test). */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"
#include "gevtest.h"

typedef struct rs rs;
struct rs {
    gev__signal s;
    int id;
    gevtest_rec *log;
    int calls;
    int wrong_thread;
    int wrong_signum;
    pthread_t loop_thread;
    rs *other;              /* stopped from the callback if set */
};

static void rs_cb(gev__loop *loop, gev__signal *s)
{
    rs *r = s->base.data;
    r->calls++;
    if (!pthread_equal(pthread_self(), r->loop_thread))
        r->wrong_thread++;
    if (s->signum != r->s.signum)
        r->wrong_signum++;
    if (r->log != NULL)
        gevtest_rec_push(r->log, r->id);
    if (r->other != NULL)
        gev__signal_stop(loop, &r->other->s);
}

static void rs_init(rs *r, int id, int signum)
{
    memset(r, 0, sizeof *r);
    gev__signal_init(&r->s, rs_cb, signum);
    r->s.base.data = r;
    r->id = id;
    r->loop_thread = pthread_self();
}

static void rs_start(gev__loop *loop, rs *r)
{
    assert_int_equal(gev__signal_start(loop, &r->s), 0);
    assert_true(r->s.base.active);
}

/* -- signals ------------------------------------------------------------- */

static void check_one_delivery(gev__loop *loop, int signum, bool use_kill)
{
    rs r;
    rs_init(&r, 1, signum);
    rs_start(loop, &r);
    assert_true(gev__loop_alive(loop));
    if (use_kill)
        assert_int_equal(kill(getpid(), signum), 0);
    else
        assert_int_equal(raise(signum), 0);
    assert_int_equal(r.calls, 0);               /* not inside the handler */
    assert_true(gevtest_run_until(loop, &r.calls, 1, 2000));
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);               /* one signal, one callback */
    assert_int_equal(r.wrong_thread, 0);
    assert_int_equal(r.wrong_signum, 0);
    assert_int_equal(r.s.signum, signum);
    /* again, to see that it keeps working */
    assert_int_equal(raise(signum), 0);
    assert_true(gevtest_run_until(loop, &r.calls, 2, 2000));
    gev__signal_stop(loop, &r.s);
    assert_false(r.s.base.active);
    assert_false(gev__loop_alive(loop));
}

static void test_raise_sigusr1(void **state)
{
    check_one_delivery(*state, SIGUSR1, false);
}

static void test_kill_sigusr2(void **state)
{
    check_one_delivery(*state, SIGUSR2, true);
}

static void *kill_later(void *arg)
{
    (void)arg;
    gevtest_sleep_ns(GEVTEST_MS(50));
    kill(getpid(), SIGUSR2);    /* process-directed: any thread may take it */
    return NULL;
}

static void signal_from_thread_child(void *arg)
{
    (void)arg;
    gev__loop *loop = gev__loop_new();
    GEVTEST_CHILD_CHECK(loop != NULL);
    rs r;
    rs_init(&r, 1, SIGUSR2);
    GEVTEST_CHILD_CHECK(gev__signal_start(loop, &r.s) == 0);
    pthread_t th;
    GEVTEST_CHILD_CHECK(pthread_create(&th, NULL, kill_later, NULL) == 0);
    uint64_t it0 = gev__loop_iteration(loop);
    bool ok = gevtest_run_until(loop, &r.calls, 1, 5000);
    uint64_t iterations = gev__loop_iteration(loop) - it0;
    pthread_join(th, NULL);
    GEVTEST_CHILD_CHECK(ok);
    GEVTEST_CHILD_CHECK(r.calls == 1);
    GEVTEST_CHILD_CHECK(r.wrong_thread == 0);        /* in the loop thread */
    GEVTEST_CHILD_CHECK(iterations <= 2);            /* it blocked, did not spin */
    gev__signal_stop(loop, &r.s);
    gev__loop_free(loop);
}

/* In a child process: the default action would kill the whole suite if the
 * signal reached a thread without the loop's handler. */
static void test_signal_from_other_thread_wakes_blocked_run(void **state)
{
    (void)state;
    gevtest_fork_check(signal_from_thread_child, NULL, 10);
}

static void test_two_watchers_on_one_signal(void **state)
{
    gev__loop *loop = *state;
    rs a, b;
    rs_init(&a, 1, SIGUSR1);
    rs_init(&b, 2, SIGUSR1);
    rs_start(loop, &a);
    rs_start(loop, &b);
    raise(SIGUSR1);
    assert_true(gevtest_run_until(loop, &b.calls, 1, 2000));
    assert_true(gevtest_run_until(loop, &a.calls, 1, 2000));
    gevtest_nowait(loop);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);

    gev__signal_stop(loop, &a.s);               /* b keeps the signal */
    assert_false(a.s.base.active);
    raise(SIGUSR1);
    assert_true(gevtest_run_until(loop, &b.calls, 2, 2000));
    gevtest_nowait(loop);
    assert_int_equal(a.calls, 1);               /* stopped: no more */
    assert_int_equal(b.calls, 2);

    rs_start(loop, &a);                         /* restarted: again */
    raise(SIGUSR1);
    assert_true(gevtest_run_until(loop, &a.calls, 2, 2000));
    assert_true(gevtest_run_until(loop, &b.calls, 3, 2000));
    gev__signal_stop(loop, &a.s);
    gev__signal_stop(loop, &b.s);
}

static void test_stop_other_in_callback(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec log;
    gevtest_rec_init(&log, 8);
    rs a, b, keep;
    rs_init(&a, 1, SIGUSR2);
    rs_init(&b, 2, SIGUSR2);
    rs_init(&keep, 3, SIGUSR2);                 /* keeps the disposition */
    a.log = b.log = &log;
    a.other = &b;
    b.other = &a;
    rs_start(loop, &a);
    rs_start(loop, &b);
    rs_start(loop, &keep);
    raise(SIGUSR2);
    assert_true(gevtest_run_until(loop, &keep.calls, 1, 2000));
    gevtest_nowait(loop);
    assert_int_equal(log.n, 1);                 /* the first stopped the second */
    rs *first = log.v[0] == 1 ? &a : &b;
    rs *second = first == &a ? &b : &a;
    assert_int_equal(first->calls, 1);
    assert_int_equal(second->calls, 0);
    assert_false(second->s.base.active);
    raise(SIGUSR2);
    assert_true(gevtest_run_until(loop, &keep.calls, 2, 2000));
    gevtest_nowait(loop);
    assert_int_equal(first->calls, 2);
    assert_int_equal(second->calls, 0);
    gev__signal_stop(loop, &a.s);
    gev__signal_stop(loop, &b.s);
    gev__signal_stop(loop, &keep.s);
    gevtest_rec_free(&log);
}

static void test_bad_signum_is_einval(void **state)
{
    gev__loop *loop = *state;
    static const int bad[] = { 0, -1, NSIG, NSIG + 10, 1000 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rs r;
        rs_init(&r, 1, bad[i]);
        errno = 0;
        assert_int_equal(gev__signal_start(loop, &r.s), -1);
        assert_int_equal(errno, EINVAL);
        assert_false(r.s.base.active);
    }
    assert_false(gev__loop_alive(loop));
    rs ok;                                      /* still works */
    rs_init(&ok, 1, SIGUSR1);
    rs_start(loop, &ok);
    raise(SIGUSR1);
    assert_true(gevtest_run_until(loop, &ok.calls, 1, 2000));
    gev__signal_stop(loop, &ok.s);
}

/* Another thread's loop owns SIGUSR1 until told to let go. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage;              /* 1: watching, 2: release, 3: released */
    int start_rc;
} owner;

static void *owner_main(void *arg)
{
    owner *o = arg;
    gev__loop *loop = gev__loop_new();
    rs r;
    rs_init(&r, 9, SIGUSR1);
    int rc = loop ? gev__signal_start(loop, &r.s) : -1;
    pthread_mutex_lock(&o->mu);
    o->start_rc = rc;
    o->stage = 1;
    pthread_cond_broadcast(&o->cv);
    while (o->stage != 2)
        pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
    if (loop) {
        gev__signal_stop(loop, &r.s);
        gev__loop_free(loop);
    }
    pthread_mutex_lock(&o->mu);
    o->stage = 3;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

static void owner_wait(owner *o, int stage)
{
    pthread_mutex_lock(&o->mu);
    while (o->stage != stage)
        pthread_cond_wait(&o->cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

static void test_signal_of_other_thread_is_ebusy(void **state)
{
    gev__loop *loop = *state;
    owner o = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, owner_main, &o), 0);
    owner_wait(&o, 1);
    int start_rc = o.start_rc;
    rs r;
    rs_init(&r, 1, SIGUSR1);
    errno = 0;
    int rc = gev__signal_start(loop, &r.s);
    int err = errno;
    /* another signal: libevent's signal pipe is process-wide, so there a
     * second loop gets EBUSY for every signal (loop.h); libev allows it */
    rs other;
    rs_init(&other, 2, SIGUSR2);
    errno = 0;
    int rc2 = gev__signal_start(loop, &other.s);
    int err2 = errno;
    bool other_ok = false;
    if (rc2 == 0) {
        raise(SIGUSR2);
        other_ok = gevtest_run_until(loop, &other.calls, 1, 2000);
        gev__signal_stop(loop, &other.s);
    }
    pthread_mutex_lock(&o.mu);
    o.stage = 2;
    pthread_cond_broadcast(&o.cv);
    pthread_mutex_unlock(&o.mu);
    owner_wait(&o, 3);
    pthread_join(th, NULL);
    assert_int_equal(start_rc, 0);
    assert_int_equal(rc, -1);
    assert_int_equal(err, EBUSY);
    assert_false(r.s.base.active);
    if (strcmp(GEV_BACKEND_NAME, "libevent") == 0) {
        assert_int_equal(rc2, -1);
        assert_int_equal(err2, EBUSY);
    } else {
        assert_int_equal(rc2, 0);
        assert_true(other_ok);
        assert_int_equal(other.wrong_thread, 0);
    }
    (void)err2;

    rs_start(loop, &r);                         /* released: ours now */
    raise(SIGUSR1);
    assert_true(gevtest_run_until(loop, &r.calls, 1, 2000));
    assert_int_equal(r.wrong_thread, 0);
    gev__signal_stop(loop, &r.s);
}

/* -- children --------------------------------------------------------------- */

typedef struct rc rc;
struct rc {
    gev__child c;
    int calls;
    int status;
    pid_t pid_seen;
    int active_in_cb;
};

static void rc_cb(gev__loop *loop, gev__child *c)
{
    (void)loop;
    rc *r = c->base.data;
    r->calls++;
    r->status = c->status;
    r->pid_seen = c->pid;
    if (c->base.active)
        r->active_in_cb++;
}

static void rc_init(rc *r, pid_t pid)
{
    memset(r, 0, sizeof *r);
    gev__child_init(&r->c, rc_cb, pid);
    r->c.base.data = r;
}

static bool not_reaped(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

static void test_child_bad_pid_is_einval(void **state)
{
    gev__loop *loop = *state;
    static const pid_t bad[] = { 0, -1, -12345 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc r;
        rc_init(&r, bad[i]);
        errno = 0;
        assert_int_equal(gev__child_start(loop, &r.c), -1);
        assert_int_equal(errno, EINVAL);
        assert_false(r.c.base.active);
    }
    assert_false(gev__loop_alive(loop));
}

static void test_child_exit_status(void **state)
{
    gev__loop *loop = *state;
    pid_t pid = gevtest_spawn_exit(0, 7);
    rc r;
    rc_init(&r, pid);
    assert_int_equal(gev__child_start(loop, &r.c), 0);
    assert_true(r.c.base.active);
    assert_true(gev__loop_alive(loop));
    assert_true(gevtest_run_until(loop, &r.calls, 1, 5000));
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.pid_seen, pid);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 7);
    assert_int_equal(r.active_in_cb, 0);        /* stopped before the callback */
    assert_false(r.c.base.active);
    assert_false(gev__loop_alive(loop));
    errno = 0;
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);   /* reaped */
    assert_int_equal(errno, ECHILD);
}

static int pause_forever(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return 0;   /* not reached */
}

static void test_child_killed_by_signal(void **state)
{
    gev__loop *loop = *state;
    pid_t pid = gevtest_fork(pause_forever, NULL);
    rc r;
    rc_init(&r, pid);
    int start = gev__child_start(loop, &r.c);
    gevtest_nowait(loop);
    int early = r.calls;
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(start, 0);
    assert_int_equal(early, 0);
    assert_true(gevtest_run_until(loop, &r.calls, 1, 5000));
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGKILL);
}

static void test_child_exited_before_start(void **state)
{
    gev__loop *loop = *state;
    pid_t pid = gevtest_spawn_exit(0, 3);
    gevtest_wait_exited_noreap(pid);                 /* a zombie before start */
    gevtest_nowait(loop);                               /* SIGCHLD long gone */
    rc r;
    rc_init(&r, pid);
    assert_int_equal(gev__child_start(loop, &r.c), 0);
    gevtest_nowait(loop);                               /* reaped on the next iteration */
    assert_int_equal(r.calls, 1);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 3);
    assert_false(r.c.base.active);
    assert_false(not_reaped(pid));
}

static void test_several_children(void **state)
{
    gev__loop *loop = *state;
    enum { N = 5 };
    rc r[N];
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = gevtest_spawn_exit(0, 10 + i);
        rc_init(&r[i], pids[i]);
        assert_int_equal(gev__child_start(loop, &r[i].c), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_true(gevtest_run_until(loop, &r[i].calls, 1, 5000));
        assert_int_equal(r[i].pid_seen, pids[i]);
        assert_int_equal(WEXITSTATUS(r[i].status), 10 + i);
    }
    gevtest_nowait(loop);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].calls, 1);
    assert_false(gev__loop_alive(loop));
}

/* Watchers for A, B, A: the first reaps A, and the second watcher of A,
 * behind one of another pid, gets the same status in the same pass. */
static void test_two_watchers_of_one_child_apart(void **state)
{
    gev__loop *loop = *state;
    pid_t a = gevtest_spawn_exit(0, 4), b = gevtest_spawn_exit(0, 5);
    gevtest_wait_exited_noreap(a);
    gevtest_wait_exited_noreap(b);
    rc r[3];
    rc_init(&r[0], a);
    rc_init(&r[1], b);
    rc_init(&r[2], a);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gev__child_start(loop, &r[i].c), 0);
    gevtest_nowait(loop);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_false(r[i].c.base.active);
    }
    assert_int_equal(WEXITSTATUS(r[0].status), 4);
    assert_int_equal(WEXITSTATUS(r[1].status), 5);
    assert_int_equal(WEXITSTATUS(r[2].status), 4);
    assert_false(gev__loop_alive(loop));
}

static void test_unwatched_child_is_not_reaped(void **state)
{
    gev__loop *loop = *state;
    pid_t other = gevtest_spawn_exit(0, 5);                /* nobody watches it */
    gevtest_wait_exited_noreap(other);
    pid_t watched = gevtest_spawn_exit(0, 1);
    rc r;
    rc_init(&r, watched);
    assert_int_equal(gev__child_start(loop, &r.c), 0);
    assert_true(gevtest_run_until(loop, &r.calls, 1, 5000));
    for (int i = 0; i < 3; i++)
        gevtest_nowait(loop);
    assert_true(not_reaped(other));             /* still ours to reap */
    int st = 0;
    assert_int_equal(waitpid(other, &st, 0), other);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 5);
}

static void test_stopped_child_watcher_gets_nothing(void **state)
{
    gev__loop *loop = *state;
    pid_t a = gevtest_spawn_exit(0, 2);
    pid_t b = gevtest_spawn_exit(0, 4);
    rc ra, rb;
    rc_init(&ra, a);
    rc_init(&rb, b);
    assert_int_equal(gev__child_start(loop, &ra.c), 0);
    assert_int_equal(gev__child_start(loop, &rb.c), 0);
    gev__child_stop(loop, &ra.c);
    assert_false(ra.c.base.active);
    assert_true(gevtest_run_until(loop, &rb.calls, 1, 5000));
    gevtest_wait_exited_noreap(a);
    for (int i = 0; i < 3; i++)
        gevtest_nowait(loop);
    assert_int_equal(ra.calls, 0);
    assert_int_equal(WEXITSTATUS(rb.status), 4);
    int st = 0;                                 /* not reaped by the loop */
    assert_int_equal(waitpid(a, &st, 0), a);
    assert_int_equal(WEXITSTATUS(st), 2);
}

/* Both backends coalesce: a signal raised several times before the loop
 * runs is delivered once, and pending signals in signal-number order. */
static void test_raised_signals_coalesce(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec log;
    gevtest_rec_init(&log, 16);
    rs a, b;
    rs_init(&a, 1, SIGUSR1);
    rs_init(&b, 2, SIGUSR2);
    a.log = b.log = &log;
    rs_start(loop, &b);
    rs_start(loop, &a);
    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_true(gevtest_run_until(loop, &b.calls, 1, 2000));
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(&log, 1, 2);
    gev__signal_stop(loop, &a.s);
    gev__signal_stop(loop, &b.s);
    gevtest_rec_free(&log);
}

static volatile sig_atomic_t own_handler_calls;
static void own_handler(int sig) { (void)sig; own_handler_calls++; }

/* After the last watcher stops, the program's own handler is back. */
static void test_disposition_restored_after_last_stop(void **state)
{
    gev__loop *loop = *state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    own_handler_calls = 0;
    rs r;
    rs_init(&r, 1, SIGUSR1);
    rs_start(loop, &r);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_true(gevtest_run_until(loop, &r.calls, 1, 2000));
    assert_int_equal(own_handler_calls, 0);   /* the loop had it */
    gev__signal_stop(loop, &r.s);
    assert_int_equal(raise(SIGUSR1), 0);      /* would kill us under SIG_DFL */
    assert_int_equal(own_handler_calls, 1);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GEVTEST_CASE(test_raise_sigusr1),
        GEVTEST_CASE(test_kill_sigusr2),
        GEVTEST_CASE(test_signal_from_other_thread_wakes_blocked_run),
        GEVTEST_CASE(test_two_watchers_on_one_signal),
        GEVTEST_CASE(test_stop_other_in_callback),
        GEVTEST_CASE(test_raised_signals_coalesce),
        GEVTEST_CASE(test_disposition_restored_after_last_stop),
        GEVTEST_CASE(test_bad_signum_is_einval),
        GEVTEST_CASE(test_signal_of_other_thread_is_ebusy),
        GEVTEST_CASE(test_child_bad_pid_is_einval),
        GEVTEST_CASE(test_child_exit_status),
        GEVTEST_CASE(test_child_killed_by_signal),
        GEVTEST_CASE(test_child_exited_before_start),
        GEVTEST_CASE(test_several_children),
        GEVTEST_CASE(test_two_watchers_of_one_child_apart),
        GEVTEST_CASE(test_unwatched_child_is_not_reaped),
        GEVTEST_CASE(test_stopped_child_watcher_gets_nothing),
    };
    return cmocka_run_group_tests_name("loop-signal", tests, NULL, NULL);
}
