/* tests/test-loop-close.c: gev__loop_closing_fd() and fd number reuse.
 *
 * closing_fd stops every active watcher of the fd and calls each once with
 * exactly GEV__ERROR; the backend forgets the fd, so the number can come back
 * from the next socket() and be watched again with no stale state (gevent
 * #2100, #1504).  The old file is kept alive with dup() in the reuse tests:
 * then a backend that did not really forget it would still report its events
 * under the old number. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"
#include "gevtest.h"

typedef struct cw cw;
struct cw {
    gev__io w;
    gevtest_rec revs;            /* every revents it got */
    int active_in_error_cb; /* GEV__ERROR callbacks that saw it still active */
    void (*action)(gev__loop *loop, cw *self, int revents);
    int target_fd;          /* for the actions */
    cw *other;
    int closing_ret;
};

static void cw_cb(gev__loop *loop, gev__io *w, int revents)
{
    cw *c = w->base.data;
    gevtest_rec_push(&c->revs, revents);
    if ((revents & GEV__ERROR) && w->base.active)
        c->active_in_error_cb++;
    if (c->action != NULL)
        c->action(loop, c, revents);
}

static void cw_init(cw *c, int fd, int events)
{
    memset(c, 0, sizeof *c);
    gev__io_init(&c->w, cw_cb, fd, events);
    c->w.base.data = c;
    gevtest_rec_init(&c->revs, 64);
    c->target_fd = -1;
}

static void cw_start(gev__loop *loop, cw *c)
{
    assert_int_equal(gev__io_start(loop, &c->w), 0);
}

static void cw_free(gev__loop *loop, cw *c)
{
    gev__io_stop(loop, &c->w);
    gevtest_rec_free(&c->revs);
}

/* The watcher got exactly one callback, with exactly GEV__ERROR, while
 * already stopped. */
static void assert_error_once(const cw *c)
{
    GEVTEST_ASSERT_REC_IS(&c->revs, GEV__ERROR);
    assert_int_equal(c->active_in_error_cb, 0);
    assert_false(c->w.base.active);
}

static void test_closing_fd_wakes_read_and_write_watchers(void **state)
{
    gev__loop *loop = *state;
    int sv[2], q[2];
    gevtest_socketpair(sv);
    gevtest_socketpair(q);
    cw rd, wr, other;
    cw_init(&rd, sv[0], GEV__READ);
    cw_init(&wr, sv[0], GEV__WRITE);
    cw_init(&other, q[0], GEV__WRITE);
    cw_start(loop, &rd);
    cw_start(loop, &wr);
    cw_start(loop, &other);

    assert_int_equal(gev__loop_closing_fd(loop, sv[0]), 2);
    assert_false(rd.w.base.active);             /* stopped by the call */
    assert_false(wr.w.base.active);
    assert_true(other.w.base.active);
    bool sync = rd.revs.n == 1 && wr.revs.n == 1;
    close(sv[0]);
    sv[0] = -1;
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    assert_error_once(&rd);
    assert_error_once(&wr);
    GEVTEST_ASSERT_REC_IS(&other.revs, GEV__WRITE, GEV__WRITE);   /* unaffected */
    assert_true(other.w.base.active);
    if (!sync)
        print_message("note: GEV__ERROR callbacks were deferred to the loop\n");
    cw_free(loop, &rd);
    cw_free(loop, &wr);
    cw_free(loop, &other);
    gevtest_close_pair(sv);
    gevtest_close_pair(q);
}

static void test_closing_fd_return_value(void **state)
{
    gev__loop *loop = *state;
    int sv[2];
    gevtest_socketpair(sv);
    cw a, b, c, never, stopped;
    cw_init(&a, sv[0], GEV__READ);
    cw_init(&b, sv[0], GEV__WRITE);
    cw_init(&c, sv[0], GEV__READ | GEV__WRITE);
    cw_init(&never, sv[0], GEV__READ);          /* initialised, never started */
    cw_init(&stopped, sv[0], GEV__READ);
    cw_start(loop, &stopped);
    cw_start(loop, &a);
    cw_start(loop, &b);
    cw_start(loop, &c);
    gev__io_stop(loop, &stopped.w);

    assert_int_equal(gev__loop_closing_fd(loop, sv[1]), 0);   /* not watched */
    assert_int_equal(gev__loop_closing_fd(loop, 1 << 20), 0); /* never seen */
    assert_int_equal(gev__loop_closing_fd(loop, sv[0]), 3);
    assert_int_equal(gev__loop_closing_fd(loop, sv[0]), 0);   /* nothing left */
    gevtest_nowait(loop);
    assert_error_once(&a);
    assert_error_once(&b);
    assert_error_once(&c);
    assert_int_equal(never.revs.n, 0);
    assert_int_equal(stopped.revs.n, 0);
    assert_false(gev__loop_alive(loop));
    cw_free(loop, &a);
    cw_free(loop, &b);
    cw_free(loop, &c);
    cw_free(loop, &never);
    cw_free(loop, &stopped);
    gevtest_close_pair(sv);
}

/* One close/reuse cycle on a fresh pair.  The old file is kept open (and
 * readable: data plus EOF) under another number until the end of the next
 * cycle, so a stale registration would show up as a READ on the new socket. */
static void close_reuse_cycle(gev__loop *loop, int base[2], int *keep_prev)
{
    int sv[2];
    gevtest_socketpair(sv);
    if (base[0] < 0) {
        base[0] = sv[0];
        base[1] = sv[1];
    } else {                                    /* the numbers did come back */
        assert_int_equal(sv[0], base[0]);
        assert_int_equal(sv[1], base[1]);
    }
    cw rd, wr;
    cw_init(&rd, sv[0], GEV__READ);
    cw_init(&wr, sv[0], GEV__WRITE);
    cw_start(loop, &rd);
    cw_start(loop, &wr);
    gevtest_nowait(loop);                               /* a fresh socket: writable only */
    assert_int_equal(rd.revs.n, 0);
    GEVTEST_ASSERT_REC_IS(&wr.revs, GEV__WRITE);
    assert_true(gevtest_write_byte(sv[1]));
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(&rd.revs, GEV__READ);
    GEVTEST_ASSERT_REC_IS(&wr.revs, GEV__WRITE, GEV__WRITE);

    int keep = dup(sv[0]);
    assert_ge(keep, 0);
    rd.revs.n = wr.revs.n = 0;
    assert_int_equal(gev__loop_closing_fd(loop, sv[0]), 2);
    close(sv[0]);
    close(sv[1]);
    gevtest_nowait(loop);
    assert_error_once(&rd);
    assert_error_once(&wr);
    cw_free(loop, &rd);
    cw_free(loop, &wr);
    if (*keep_prev >= 0)
        close(*keep_prev);
    *keep_prev = keep;
}

static void test_fd_reuse_events_only_for_new_watcher(void **state)
{
    gev__loop *loop = *state;
    int sv[2];
    gevtest_socketpair(sv);
    int keep = dup(sv[0]);                      /* the old file outlives its number */
    assert_ge(keep, 0);
    cw old_rd, old_wr;
    cw_init(&old_rd, sv[0], GEV__READ);
    cw_init(&old_wr, sv[0], GEV__WRITE);
    cw_start(loop, &old_rd);
    cw_start(loop, &old_wr);
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(&old_wr.revs, GEV__WRITE);
    old_wr.revs.n = 0;

    assert_int_equal(gev__loop_closing_fd(loop, sv[0]), 2);
    int num = sv[0];
    close(sv[0]);
    gevtest_nowait(loop);
    assert_error_once(&old_rd);
    assert_error_once(&old_wr);

    int n[2];
    gevtest_socketpair(n);
    assert_int_equal(n[0], num);                /* the number came back */
    assert_true(gevtest_write_byte(sv[1]));          /* the OLD file is readable */
    gevtest_fill(n[0]);                              /* the new one is not writable */
    cw nrd, nwr;
    cw_init(&nrd, n[0], GEV__READ);
    cw_init(&nwr, n[0], GEV__WRITE);
    cw_start(loop, &nrd);
    cw_start(loop, &nwr);
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    assert_int_equal(nrd.revs.n, 0);            /* nothing from the old file */
    assert_int_equal(nwr.revs.n, 0);

    assert_true(gevtest_write_byte(n[1]));           /* now the new one is readable */
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(&nrd.revs, GEV__READ, GEV__READ);
    assert_int_equal(nwr.revs.n, 0);
    gevtest_drain(n[1]);                             /* and writable again */
    nrd.revs.n = 0;
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(&nrd.revs, GEV__READ);
    GEVTEST_ASSERT_REC_IS(&nwr.revs, GEV__WRITE);
    GEVTEST_ASSERT_REC_IS(&old_rd.revs, GEV__ERROR); /* the old ones: nothing more */
    GEVTEST_ASSERT_REC_IS(&old_wr.revs, GEV__ERROR);

    assert_int_equal(gev__loop_closing_fd(loop, n[0]), 2);
    cw_free(loop, &old_rd);
    cw_free(loop, &old_wr);
    cw_free(loop, &nrd);
    cw_free(loop, &nwr);
    close(keep);
    close(sv[1]);
    gevtest_close_pair(n);
}

static void test_close_reuse_cycle_200_times(void **state)
{
    gev__loop *loop = *state;
    int base[2] = { -1, -1 }, keep = -1;
    for (int i = 0; i < 200; i++)
        close_reuse_cycle(loop, base, &keep);
    close(keep);
    assert_false(gev__loop_alive(loop));
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
}

/* closing_fd from inside a callback of a watcher of that fd */
static void close_target_on_read(gev__loop *loop, cw *self, int revents)
{
    if (revents & GEV__READ) {
        self->closing_ret = gev__loop_closing_fd(loop, self->target_fd);
        close(self->target_fd);
        self->action = NULL;
    }
}

static void test_closing_fd_inside_own_callback(void **state)
{
    gev__loop *loop = *state;
    int sv[2], q[2];
    gevtest_socketpair(sv);
    gevtest_socketpair(q);
    cw a, b, c, x;
    cw_init(&a, sv[0], GEV__READ);
    cw_init(&b, sv[0], GEV__READ);
    cw_init(&c, sv[0], GEV__READ | GEV__WRITE);
    cw_init(&x, q[0], GEV__READ);
    a.action = close_target_on_read;
    a.target_fd = sv[0];
    cw_start(loop, &a);
    cw_start(loop, &b);
    cw_start(loop, &c);
    cw_start(loop, &x);
    assert_true(gevtest_write_byte(sv[1]));
    assert_true(gevtest_write_byte(q[1]));
    gevtest_nowait(loop);
    assert_int_equal(a.closing_ret, 3);         /* a itself was still active */
    GEVTEST_ASSERT_REC_IS(&a.revs, GEV__READ, GEV__ERROR);
    assert_int_equal(a.active_in_error_cb, 0);
    assert_error_once(&b);                      /* no READ after the close */
    assert_error_once(&c);
    GEVTEST_ASSERT_REC_IS(&x.revs, GEV__READ);       /* the other fd is untouched */
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(&a.revs, GEV__READ, GEV__ERROR);
    assert_error_once(&b);
    assert_error_once(&c);
    GEVTEST_ASSERT_REC_IS(&x.revs, GEV__READ, GEV__READ);
    cw_free(loop, &a);
    cw_free(loop, &b);
    cw_free(loop, &c);
    cw_free(loop, &x);
    close(sv[1]);
    gevtest_close_pair(q);
}

/* Two fds ready in the same poll; the first callback closes the other fd. */
static void test_closing_other_fd_ready_in_same_poll(void **state)
{
    gev__loop *loop = *state;
    int p1[2], p2[2];
    gevtest_socketpair(p1);
    gevtest_socketpair(p2);
    cw x, y;
    cw_init(&x, p1[0], GEV__READ);
    cw_init(&y, p2[0], GEV__READ);
    x.action = close_target_on_read;
    x.target_fd = p2[0];
    y.action = close_target_on_read;
    y.target_fd = p1[0];
    cw_start(loop, &x);
    cw_start(loop, &y);
    assert_true(gevtest_write_byte(p1[1]));
    assert_true(gevtest_write_byte(p2[1]));
    gevtest_nowait(loop);
    cw *first = x.revs.n > 0 && x.revs.v[0] == GEV__READ ? &x : &y;
    cw *second = first == &x ? &y : &x;
    GEVTEST_ASSERT_REC_IS(&first->revs, GEV__READ);
    assert_int_equal(first->closing_ret, 1);
    assert_error_once(second);                  /* never its READ */
    assert_int_equal(second->closing_ret, 0);
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(&first->revs, GEV__READ, GEV__READ);
    assert_error_once(second);
    if (first == &x)
        p2[0] = -1;
    else
        p1[0] = -1;
    cw_free(loop, &x);
    cw_free(loop, &y);
    gevtest_close_pair(p1);
    gevtest_close_pair(p2);
}

/* Whichever watcher gets the first GEV__ERROR call stops (and frees) one
 * watcher still due for its call and restarts another on a new fd: both of
 * those calls are cancelled (the order of the calls is not promised). */
typedef struct {
    cw *w[4];               /* heap-allocated */
    int self, stopped, restarted;
    int new_fd;
    int restart_rc;
} cancel_plan;

static cancel_plan *g_plan;

static void cancel_others(gev__loop *loop, cw *self, int revents)
{
    cancel_plan *p = g_plan;
    if (!(revents & GEV__ERROR) || p == NULL)
        return;
    g_plan = NULL;
    int others[3], n = 0;
    for (int i = 0; i < 4; i++)
        if (p->w[i] == self)
            p->self = i;
        else
            others[n++] = i;
    p->stopped = others[0];
    p->restarted = others[1];
    cw *v = p->w[p->stopped];
    gev__io_stop(loop, &v->w);
    gevtest_rec_free(&v->revs);
    free(v);
    p->w[p->stopped] = NULL;
    cw *r = p->w[p->restarted];
    gev__io_init(&r->w, cw_cb, p->new_fd, GEV__WRITE);
    p->restart_rc = gev__io_start(loop, &r->w);
}

static void test_closing_fd_error_call_cancelled_by_stop_or_start(void **state)
{
    gev__loop *loop = *state;
    int sv[2], q[2];
    gevtest_socketpair(sv);
    gevtest_socketpair(q);
    static const int ev[4] = { GEV__READ, GEV__READ, GEV__WRITE, GEV__READ | GEV__WRITE };
    cancel_plan plan = { .self = -1, .stopped = -1, .restarted = -1, .new_fd = q[0],
                         .restart_rc = -1 };
    for (int i = 0; i < 4; i++) {
        plan.w[i] = malloc(sizeof *plan.w[i]);
        assert_non_null(plan.w[i]);
        cw_init(plan.w[i], sv[0], ev[i]);
        plan.w[i]->action = cancel_others;
        cw_start(loop, plan.w[i]);
    }
    g_plan = &plan;
    int woken = gev__loop_closing_fd(loop, sv[0]);
    close(sv[0]);
    gevtest_nowait(loop);
    assert_null(g_plan);
    assert_int_equal(woken, 2);                 /* 4 due, 2 cancelled */
    assert_int_equal(plan.restart_rc, 0);
    for (int i = 0; i < 4; i++) {
        if (i == plan.stopped)
            continue;
        cw *c = plan.w[i];
        if (i == plan.restarted) {              /* no ERROR; works on q[0] */
            assert_true(c->w.base.active);
            GEVTEST_ASSERT_REC_IS(&c->revs, GEV__WRITE);
        } else {
            assert_error_once(c);
        }
    }
    for (int i = 0; i < 4; i++)
        if (plan.w[i] != NULL) {
            cw_free(loop, plan.w[i]);
            free(plan.w[i]);
        }
    close(sv[1]);
    gevtest_close_pair(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GEVTEST_CASE(test_closing_fd_wakes_read_and_write_watchers),
        GEVTEST_CASE(test_closing_fd_return_value),
        GEVTEST_CASE(test_fd_reuse_events_only_for_new_watcher),
        GEVTEST_CASE(test_close_reuse_cycle_200_times),
        GEVTEST_CASE(test_closing_fd_inside_own_callback),
        GEVTEST_CASE(test_closing_other_fd_ready_in_same_poll),
        GEVTEST_CASE(test_closing_fd_error_call_cancelled_by_stop_or_start),
    };
    return cmocka_run_group_tests_name("loop-close", tests, NULL, NULL);
}
