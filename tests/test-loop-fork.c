/* tests/test-loop-fork.c: gev__loop_reinit() in the child after fork().
 *
 * In the child, after reinit, inherited and new timers, IO, async, signal and
 * child watchers work.  The parent's loop is not touched: it keeps working
 * while the child runs and after the child has stopped watchers, forgotten
 * fds and freed its copy (the epoll set and the wake-up fd are shared across
 * fork until the child makes its own).  Children report through
 * GEVTEST_CHILD_CHECK (exit status + message pipe). */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"
#include "gevtest.h"

/* One counting callback per watcher type; data points at an int counter. */
static void count_timer(gev__loop *loop, gev__timer *t)
{
    (void)loop;
    ++*(int *)t->base.data;
}

static void count_io(gev__loop *loop, gev__io *w, int revents)
{
    (void)loop;
    if (revents & GEV__READ)
        ++*(int *)w->base.data;
}

static void count_async(gev__loop *loop, gev__async *a)
{
    (void)loop;
    ++*(int *)a->base.data;
}

static void count_signal(gev__loop *loop, gev__signal *s)
{
    (void)loop;
    ++*(int *)s->base.data;
}

static int g_child_status = -1;

static void count_child(gev__loop *loop, gev__child *c)
{
    (void)loop;
    g_child_status = c->status;
    ++*(int *)c->base.data;
}

typedef struct {
    gev__loop *loop;
    gev__async *a;
    int delay_ms;
} async_sender;

static void *send_later(void *arg)
{
    async_sender *s = arg;
    gevtest_sleep_ns(GEVTEST_MS(s->delay_ms));
    gev__async_send(s->loop, s->a);
    return NULL;
}

/* Send from another thread and run until the callback (bounded). */
static bool async_roundtrip(gev__loop *loop, gev__async *a, const int *count, int delay_ms)
{
    int target = *count + 1;
    async_sender s = { loop, a, delay_ms };
    pthread_t th;
    if (pthread_create(&th, NULL, send_later, &s) != 0)
        return false;
    bool ok = gevtest_run_until(loop, count, target, 3000);
    pthread_join(th, NULL);
    return ok;
}

/* The parent's side: run the loop until the child has exited (not reaping
 * it) or ms have passed. */
static void run_while_child_alive(gev__loop *loop, pid_t pid, int ms)
{
    gev__nsec end = gev__time_monotonic() + GEVTEST_MS(ms);
    gev__timer tick;
    gev__timer_init(&tick, gevtest__watchdog_cb);
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            break;
        if (gev__time_monotonic() >= end)
            break;
        gevtest_timer_start(loop, &tick, GEVTEST_MS(10));
        gev__loop_run(loop, GEV__RUN_ONCE);
    }
    gev__timer_stop(loop, &tick);
}

/* -- everything works in the child; the parent keeps working meanwhile ----- */

typedef struct {
    gev__loop *loop;
    int p[2], q[2];         /* p: the child's, q: the parent's */
    gev__timer t;
    gev__io iop, ioq;
    gev__async a;
    int n_t, n_p, n_q, n_a;
    /* parent's results, asserted after the child is reaped */
    int par_q, par_a, par_t;
} shared_setup;

static void reinit_child(void *arg)
{
    shared_setup *s = arg;
    gev__loop *loop = s->loop;
    GEVTEST_CHILD_CHECK(gev__loop_reinit(loop) == 0);
    gev__io_stop(loop, &s->ioq);                /* the parent's fd */
    GEVTEST_CHILD_CHECK(s->t.base.active && s->iop.base.active && s->a.base.active);

    /* inherited watchers */
    GEVTEST_CHILD_CHECK(gevtest_run_until(loop, &s->n_t, 1, 3000));
    GEVTEST_CHILD_CHECK(gevtest_write_byte(s->p[1]));
    GEVTEST_CHILD_CHECK(gevtest_run_until(loop, &s->n_p, 1, 3000));
    GEVTEST_CHILD_CHECK(async_roundtrip(loop, &s->a, &s->n_a, 20));
    GEVTEST_CHILD_CHECK(async_roundtrip(loop, &s->a, &s->n_a, 0));

    /* new watchers */
    int nt = 0, nio = 0, na = 0;
    gev__timer t2;
    gev__timer_init(&t2, count_timer);
    t2.base.data = &nt;
    gevtest_timer_start(loop, &t2, GEVTEST_MS(5));
    GEVTEST_CHILD_CHECK(gevtest_run_until(loop, &nt, 1, 3000));
    int n[2];
    GEVTEST_CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, n) == 0);
    gev__io io2;
    gev__io_init(&io2, count_io, n[0], GEV__READ);
    io2.base.data = &nio;
    GEVTEST_CHILD_CHECK(gev__io_start(loop, &io2) == 0);
    GEVTEST_CHILD_CHECK(gevtest_write_byte(n[1]));
    GEVTEST_CHILD_CHECK(gevtest_run_until(loop, &nio, 1, 3000));
    gev__async a2;
    gev__async_init(&a2, count_async);
    a2.base.data = &na;
    gev__async_start(loop, &a2);
    GEVTEST_CHILD_CHECK(async_roundtrip(loop, &a2, &na, 20));
    GEVTEST_CHILD_CHECK(s->n_q == 0);                /* never saw the parent's fd */

    gev__io_stop(loop, &io2);
    gev__async_stop(loop, &a2);
    gev__timer_stop(loop, &s->t);
    gev__io_stop(loop, &s->iop);
    gev__async_stop(loop, &s->a);
    GEVTEST_CHILD_CHECK(gev__loop_run(loop, GEV__RUN_NOWAIT) == 0);
    gev__loop_free(loop);                       /* the child's copy */
    close(n[0]);
    close(n[1]);
}

static void reinit_parent(void *arg, pid_t child)
{
    shared_setup *s = arg;
    gev__loop *loop = s->loop;
    gev__io_stop(loop, &s->iop);                /* the child's fd */
    if (gevtest_write_byte(s->q[1]) && gevtest_run_until(loop, &s->n_q, 1, 3000))
        s->par_q = 1;
    gevtest_drain(s->q[0]);
    if (async_roundtrip(loop, &s->a, &s->n_a, 10))
        s->par_a = 1;
    if (gevtest_run_until(loop, &s->n_t, 1, 3000))
        s->par_t = 1;
    run_while_child_alive(loop, child, 8000);
}

static void test_reinit_child_works_parent_unaffected(void **state)
{
    gev__loop *loop = *state;
    shared_setup *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->loop = loop;
    gevtest_socketpair(s->p);
    gevtest_socketpair(s->q);
    gev__timer_init(&s->t, count_timer);
    s->t.base.data = &s->n_t;
    gev__io_init(&s->iop, count_io, s->p[0], GEV__READ);
    s->iop.base.data = &s->n_p;
    gev__io_init(&s->ioq, count_io, s->q[0], GEV__READ);
    s->ioq.base.data = &s->n_q;
    gev__async_init(&s->a, count_async);
    s->a.base.data = &s->n_a;
    gev__loop_update_now(loop);                 /* the fixture's now may be old */
    gevtest_timer_start(loop, &s->t, GEVTEST_MS(100));
    assert_int_equal(gev__io_start(loop, &s->iop), 0);
    assert_int_equal(gev__io_start(loop, &s->ioq), 0);
    gev__async_start(loop, &s->a);
    assert_ge(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);  /* registered before fork */

    gevtest_fork_check_with(reinit_child, s, reinit_parent, s, 10);
    assert_int_equal(s->par_q, 1);              /* during the child's run */
    assert_int_equal(s->par_a, 1);
    assert_int_equal(s->par_t, 1);
    assert_int_equal(s->n_p, 0);                /* the child's data never here */

    /* and after it */
    assert_true(gevtest_write_byte(s->q[1]));
    assert_true(gevtest_run_until(loop, &s->n_q, 2, 3000));
    assert_true(async_roundtrip(loop, &s->a, &s->n_a, 10));
    gevtest_timer_start(loop, &s->t, GEVTEST_MS(1));
    assert_true(gevtest_run_until(loop, &s->n_t, 2, 3000));

    gev__io_stop(loop, &s->ioq);
    gev__async_stop(loop, &s->a);
    gevtest_close_pair(s->p);
    gevtest_close_pair(s->q);
    free(s);
}

/* -- what the child does to its copy stays in the child ----------------------- */

enum change { CHILD_STOPS, CHILD_FORGETS, CHILD_RETARGETS };

typedef struct {
    gev__loop *loop;
    int sv[2];
    gev__io w;
    gev__async a;
    int n_w, n_a;
    enum change change;
} child_changes;

static void changes_child(void *arg)
{
    child_changes *c = arg;
    GEVTEST_CHILD_CHECK(gev__loop_reinit(c->loop) == 0);
    switch (c->change) {
    case CHILD_STOPS:
        gev__io_stop(c->loop, &c->w);
        break;
    case CHILD_FORGETS:
        GEVTEST_CHILD_CHECK(gev__loop_closing_fd(c->loop, c->sv[0]) == 1);
        close(c->sv[0]);
        break;
    case CHILD_RETARGETS:       /* READ -> WRITE on a socket that is full */
        GEVTEST_CHILD_CHECK(gev__io_set_events(c->loop, &c->w, GEV__WRITE) == 0);
        break;
    }
    gev__async_stop(c->loop, &c->a);
    GEVTEST_CHILD_CHECK(gev__loop_run(c->loop, GEV__RUN_NOWAIT) >= 0);
    gev__io_stop(c->loop, &c->w);
    gev__loop_free(c->loop);
}

static void check_child_changes(gev__loop *loop, enum change change)
{
    child_changes c;
    memset(&c, 0, sizeof c);
    c.loop = loop;
    c.change = change;
    gevtest_socketpair(c.sv);
    gevtest_fill(c.sv[0]);                           /* never writable */
    gev__io_init(&c.w, count_io, c.sv[0], GEV__READ);
    c.w.base.data = &c.n_w;
    gev__async_init(&c.a, count_async);
    c.a.base.data = &c.n_a;
    assert_int_equal(gev__io_start(loop, &c.w), 0);
    gev__async_start(loop, &c.a);
    assert_ge(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);

    gevtest_fork_check(changes_child, &c, 10);       /* the child has exited */

    assert_true(c.w.base.active);
    assert_int_equal(c.w.events, GEV__READ);
    assert_true(gevtest_write_byte(c.sv[1]));
    assert_true(gevtest_run_until(loop, &c.n_w, 1, 3000));   /* still in our set, as READ */
    assert_true(async_roundtrip(loop, &c.a, &c.n_a, 10)); /* wake-up intact */
    assert_true(async_roundtrip(loop, &c.a, &c.n_a, 0));
    gev__io_stop(loop, &c.w);
    gev__async_stop(loop, &c.a);
    gevtest_close_pair(c.sv);
}

static void test_child_stop_does_not_affect_parent(void **state)
{
    check_child_changes(*state, CHILD_STOPS);
}

static void test_child_closing_fd_does_not_affect_parent(void **state)
{
    check_child_changes(*state, CHILD_FORGETS);
}

static void test_child_set_events_does_not_affect_parent(void **state)
{
    check_child_changes(*state, CHILD_RETARGETS);
}

/* -- the wake-up is the child's own ------------------------------------------------ */

typedef struct {
    gev__loop *loop;
    gev__async a;
    int n_a;
} wake_setup;

static void wake_child(void *arg)
{
    wake_setup *w = arg;
    GEVTEST_CHILD_CHECK(gev__loop_reinit(w->loop) == 0);
    /* the parent is blocked on its own wake-up fd meanwhile: a shared one
     * would let it swallow these */
    for (int i = 0; i < 20; i++)
        GEVTEST_CHILD_CHECK(async_roundtrip(w->loop, &w->a, &w->n_a, 5));
    gev__async_stop(w->loop, &w->a);
    gev__loop_free(w->loop);
}

static void wake_parent(void *arg, pid_t child)
{
    wake_setup *w = arg;
    run_while_child_alive(w->loop, child, 8000);
}

static void test_child_async_wakeups_are_its_own(void **state)
{
    gev__loop *loop = *state;
    wake_setup w;
    memset(&w, 0, sizeof w);
    w.loop = loop;
    gev__async_init(&w.a, count_async);
    w.a.base.data = &w.n_a;
    gev__async_start(loop, &w.a);
    assert_ge(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    gevtest_fork_check_with(wake_child, &w, wake_parent, &w, 10);
    assert_int_equal(w.n_a, 0);                 /* none of the child's sends */
    assert_true(async_roundtrip(loop, &w.a, &w.n_a, 10));
    assert_int_equal(w.n_a, 1);
    gev__async_stop(loop, &w.a);
}

/* -- signals and children in the child --------------------------------------------- */

typedef struct {
    gev__loop *loop;
    gev__signal *inherited;
} signal_setup;

static void signal_child(void *arg)
{
    signal_setup *ss = arg;
    gev__loop *loop = ss->loop;
    GEVTEST_CHILD_CHECK(gev__loop_reinit(loop) == 0);
    int ns = 0, nc = 0;
    gev__signal s;
    gev__signal_init(&s, count_signal, SIGUSR1);
    s.base.data = &ns;
    GEVTEST_CHILD_CHECK(gev__signal_start(loop, &s) == 0);
    GEVTEST_CHILD_CHECK(raise(SIGUSR1) == 0);
    GEVTEST_CHILD_CHECK(gevtest_run_until(loop, &ns, 1, 3000));
    pid_t pid = fork();
    GEVTEST_CHILD_CHECK(pid >= 0);
    if (pid == 0)
        _exit(9);
    gev__child c;
    gev__child_init(&c, count_child, pid);
    c.base.data = &nc;
    GEVTEST_CHILD_CHECK(gev__child_start(loop, &c) == 0);
    GEVTEST_CHILD_CHECK(gevtest_run_until(loop, &nc, 1, 3000));
    GEVTEST_CHILD_CHECK(WIFEXITED(g_child_status) && WEXITSTATUS(g_child_status) == 9);
    GEVTEST_CHILD_CHECK(raise(SIGUSR1) == 0);
    GEVTEST_CHILD_CHECK(gevtest_run_until(loop, &ns, 2, 3000));
    gev__signal_stop(loop, &s);
    gev__signal_stop(loop, ss->inherited);
    gev__loop_free(loop);
}

static void test_signals_and_children_in_child(void **state)
{
    gev__loop *loop = *state;
    int n = 0;
    gev__signal s;                              /* the parent watches it too */
    gev__signal_init(&s, count_signal, SIGUSR1);
    s.base.data = &n;
    assert_int_equal(gev__signal_start(loop, &s), 0);
    signal_setup ss = { loop, &s };
    gevtest_fork_check(signal_child, &ss, 10);
    assert_int_equal(n, 0);
    raise(SIGUSR1);                             /* the parent's still works */
    assert_true(gevtest_run_until(loop, &n, 1, 3000));
    gev__signal_stop(loop, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GEVTEST_CASE(test_reinit_child_works_parent_unaffected),
        GEVTEST_CASE(test_child_stop_does_not_affect_parent),
        GEVTEST_CASE(test_child_closing_fd_does_not_affect_parent),
        GEVTEST_CASE(test_child_set_events_does_not_affect_parent),
        GEVTEST_CASE(test_child_async_wakeups_are_its_own),
        GEVTEST_CASE(test_signals_and_children_in_child),
    };
    return cmocka_run_group_tests_name("loop-fork", tests, NULL, NULL);
}
