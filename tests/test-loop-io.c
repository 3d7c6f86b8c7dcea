/* tests/test-loop-io.c: IO watchers of core/loop.h.
 *
 * Level-triggered; each watcher gets only the events it asked for; watchers
 * of one fd are called in start order; a watcher stopped (and freed) inside
 * any callback gets no further callback; invalid fds fail with EBADF. */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"
#include "gevtest.h"

/* Log entries: id * 16 + revents. */
#define E(id, rev) ((id) * 16 + (rev))
#define R GEV__READ
#define W GEV__WRITE
#define RW (GEV__READ | GEV__WRITE)

typedef struct ri ri;
struct ri {
    gev__io w;
    int id;
    gevtest_rec *log;
    int calls;
    int bad_revents;        /* callbacks with bits it did not ask for */
    int last_revents;
    uint64_t iter;
    void (*action)(gev__loop *loop, ri *self, int revents);
    ri *other;
};

static void ri_cb(gev__loop *loop, gev__io *w, int revents)
{
    ri *r = w->base.data;
    r->calls++;
    r->last_revents = revents;
    r->iter = gev__loop_iteration(loop);
    if (revents == 0 || (revents & ~w->events) != 0)
        r->bad_revents++;
    if (r->log != NULL)
        gevtest_rec_push(r->log, E(r->id, revents));
    if (r->action != NULL)
        r->action(loop, r, revents);
}

static void ri_init(ri *r, int id, gevtest_rec *log, int fd, int events)
{
    memset(r, 0, sizeof *r);
    gev__io_init(&r->w, ri_cb, fd, events);
    r->w.base.data = r;
    r->id = id;
    r->log = log;
}

static ri *ri_new(int id, gevtest_rec *log, int fd, int events)
{
    ri *r = malloc(sizeof *r);
    assert_non_null(r);
    ri_init(r, id, log, fd, events);
    return r;
}

static void ri_start(gev__loop *loop, ri *r)
{
    assert_int_equal(gev__io_start(loop, &r->w), 0);
    assert_true(r->w.base.active);
}

/* The fixture of most cases: a connected pair sv (sv[0] watched, sv[1] the
 * peer) and gevtest_caselog, made before each case and closed and freed
 * after it. */
static int sv[2] = { -1, -1 };

static int io_setup(void **state)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    return gevtest_log_setup(state);
}

static int io_teardown(void **state)
{
    gevtest_close_pair(sv);
    return gevtest_log_teardown(state);
}

#define IO_CASE(fn) cmocka_unit_test_setup_teardown(fn, io_setup, io_teardown)

/* -- level-triggered ------------------------------------------------------- */

static void test_level_triggered_read(void **state)
{
    gev__loop *loop = *state;
    ri r;
    ri_init(&r, 1, NULL, sv[0], R);
    ri_start(loop, &r);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 0);               /* nothing to read */
    assert_true(gevtest_write_byte(sv[1]));
    uint64_t last = 0;
    for (int i = 1; i <= 3; i++) {              /* unread: fires every iteration */
        gevtest_nowait(loop);
        assert_int_equal(r.calls, i);
        assert_int_equal(r.last_revents, R);
        if (i > 1)
            assert_int_equal(r.iter, last + 1);
        last = r.iter;
    }
    assert_int_equal(gevtest_drain(sv[0]), 1);
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.bad_revents, 0);
    gev__io_stop(loop, &r.w);
    assert_false(r.w.base.active);
}

static void test_level_triggered_write(void **state)
{
    gev__loop *loop = *state;
    ri r;
    ri_init(&r, 1, NULL, sv[0], W);
    ri_start(loop, &r);
    uint64_t last = 0;
    for (int i = 1; i <= 3; i++) {
        gevtest_nowait(loop);
        assert_int_equal(r.calls, i);
        assert_int_equal(r.last_revents, W);
        if (i > 1)
            assert_int_equal(r.iter, last + 1);
        last = r.iter;
    }
    gev__io_stop(loop, &r.w);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 3);
}

static void test_peer_closed_is_readable(void **state)
{
    gev__loop *loop = *state;
    ri r;
    ri_init(&r, 1, NULL, sv[0], R);
    ri_start(loop, &r);
    close(sv[1]);
    sv[1] = -1;
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 2);               /* EOF stays readable */
    assert_int_equal(r.last_revents, R);
    assert_int_equal(r.bad_revents, 0);
    gev__io_stop(loop, &r.w);
}

/* -- directions and several watchers ----------------------------------------- */

static void test_read_and_write_watchers_are_independent(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    ri rd, wr;
    ri_init(&rd, 1, log, sv[0], R);
    ri_init(&wr, 2, log, sv[0], W);
    ri_start(loop, &rd);
    ri_start(loop, &wr);

    gevtest_nowait(loop);                               /* writable, nothing to read */
    GEVTEST_ASSERT_REC_IS(log, E(2, W));

    assert_true(gevtest_write_byte(sv[1]));
    log->n = 0;
    gevtest_nowait(loop);                               /* both, in start order */
    GEVTEST_ASSERT_REC_IS(log, E(1, R), E(2, W));

    gevtest_fill(sv[0]);                             /* not writable, still readable */
    log->n = 0;
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(1, R));

    assert_int_equal(gevtest_drain(sv[0]), 1);       /* neither */
    log->n = 0;
    gevtest_nowait(loop);
    assert_int_equal(log->n, 0);

    gev__io_stop(loop, &rd.w);                  /* stopping one leaves the other */
    gevtest_drain(sv[1]);
    assert_true(gevtest_write_byte(sv[1]));
    log->n = 0;
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(2, W));
    gev__io_stop(loop, &wr.w);
    assert_int_equal(rd.bad_revents + wr.bad_revents, 0);
}

static void test_combined_watcher_gets_both_bits(void **state)
{
    gev__loop *loop = *state;
    ri r;
    ri_init(&r, 1, NULL, sv[0], RW);
    ri_start(loop, &r);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last_revents, W);
    assert_true(gevtest_write_byte(sv[1]));
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.last_revents, RW);      /* one call, both bits */
    gevtest_fill(sv[0]);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.last_revents, R);
    gev__io_stop(loop, &r.w);
}

static void test_many_watchers_on_one_fd_in_start_order(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    static const int ev[5] = { R, W, RW, R, W };
    ri rs[5];
    for (int i = 0; i < 5; i++) {
        ri_init(&rs[i], i, log, sv[0], ev[i]);
        ri_start(loop, &rs[i]);
    }
    assert_true(gevtest_write_byte(sv[1]));
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(0, R), E(1, W), E(2, RW), E(3, R), E(4, W));

    gev__io_stop(loop, &rs[0].w);               /* a restart goes to the end */
    ri_start(loop, &rs[0]);
    log->n = 0;
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(1, W), E(2, RW), E(3, R), E(4, W), E(0, R));

    for (int i = 0; i < 5; i++)
        gev__io_stop(loop, &rs[i].w);
    log->n = 0;
    gevtest_nowait(loop);
    assert_int_equal(log->n, 0);
}

/* -- stopping inside callbacks ------------------------------------------------- */

static void stop_other(gev__loop *loop, ri *self, int revents)
{
    (void)revents;
    if (self->other != NULL)
        gev__io_stop(loop, &self->other->w);
}

static void test_stop_other_on_same_fd_in_callback(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    ri a, b, c;
    ri_init(&a, 1, log, sv[0], R);
    ri_init(&b, 2, log, sv[0], R);
    ri_init(&c, 3, log, sv[0], R);
    a.action = stop_other;
    a.other = &b;
    ri_start(loop, &a);
    ri_start(loop, &b);
    ri_start(loop, &c);
    assert_true(gevtest_write_byte(sv[1]));
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(1, R), E(3, R));
    assert_false(b.w.base.active);
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(1, R), E(3, R), E(1, R), E(3, R));
    gev__io_stop(loop, &a.w);
    gev__io_stop(loop, &c.w);
}

static void stop_free_other(gev__loop *loop, ri *self, int revents)
{
    (void)revents;
    ri *o = self->other;
    if (o != NULL) {
        self->other = NULL;
        gev__io_stop(loop, &o->w);
        free(o);
    }
}

static void test_stop_other_on_different_fd_same_poll(void **state)
{
    gev__loop *loop = *state;
    int p1[2], p2[2];
    gevtest_socketpair(p1);
    gevtest_socketpair(p2);
    gevtest_rec log;
    gevtest_rec_init(&log, 64);
    ri *x = ri_new(1, &log, p1[0], R);
    ri *y = ri_new(2, &log, p2[0], R);
    x->action = stop_other;
    y->action = stop_other;
    x->other = y;
    y->other = x;
    ri_start(loop, x);
    ri_start(loop, y);
    assert_true(gevtest_write_byte(p1[1]));
    assert_true(gevtest_write_byte(p2[1]));
    gevtest_nowait(loop);                               /* both ready in one poll */
    assert_int_equal(log.n, 1);                 /* the first stops the second */
    int first = log.v[0];
    ri *winner = first == E(1, R) ? x : y;
    ri *loser = winner == x ? y : x;
    assert_true(first == E(1, R) || first == E(2, R));
    assert_false(loser->w.base.active);
    assert_int_equal(loser->calls, 0);
    winner->other = NULL;
    free(loser);                                /* stopped: may be freed */
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(&log, first, first);
    gev__io_stop(loop, &winner->w);
    free(winner);
    gevtest_rec_free(&log);
    gevtest_close_pair(p1);
    gevtest_close_pair(p2);
}

static void stop_free_self(gev__loop *loop, ri *self, int revents)
{
    (void)revents;
    gev__io_stop(loop, &self->w);
    free(self);
}

static void test_stop_and_free_self_in_callback(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    ri *a = ri_new(1, log, sv[0], R);
    ri *b = ri_new(2, log, sv[0], RW);
    ri *c = ri_new(3, log, sv[0], R);
    b->action = stop_free_self;
    ri_start(loop, a);
    ri_start(loop, b);
    ri_start(loop, c);
    assert_true(gevtest_write_byte(sv[1]));
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(1, R), E(2, RW), E(3, R));
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(1, R), E(2, RW), E(3, R), E(1, R), E(3, R));
    gev__io_stop(loop, &a->w);
    gev__io_stop(loop, &c->w);
    free(a);
    free(c);
}

static void test_stop_and_free_others_in_callback(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    ri *a = ri_new(1, log, sv[0], R);
    ri *b = ri_new(2, log, sv[0], R);
    ri *c = ri_new(3, log, sv[0], R);
    ri *d = ri_new(4, log, sv[0], R);
    a->action = stop_free_other;                /* a frees b: the next in the list */
    a->other = b;
    c->action = stop_free_other;                /* c frees a: already called */
    c->other = a;
    ri *all[4] = { a, b, c, d };
    for (int i = 0; i < 4; i++)
        ri_start(loop, all[i]);
    assert_true(gevtest_write_byte(sv[1]));
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(1, R), E(3, R), E(4, R));
    c->action = NULL;
    gevtest_nowait(loop);
    GEVTEST_ASSERT_REC_IS(log, E(1, R), E(3, R), E(4, R), E(3, R), E(4, R));
    gev__io_stop(loop, &c->w);
    gev__io_stop(loop, &d->w);
    free(c);
    free(d);
}

/* -- set_events ------------------------------------------------------------------ */

static void switch_to_read(gev__loop *loop, ri *self, int revents)
{
    (void)revents;
    if (gev__io_set_events(loop, &self->w, R) != 0)
        self->bad_revents += 100;
    self->action = NULL;
}

static void test_set_events_while_active(void **state)
{
    gev__loop *loop = *state;
    ri r;
    ri_init(&r, 1, NULL, sv[0], R);
    ri_start(loop, &r);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 0);

    assert_int_equal(gev__io_set_events(loop, &r.w, W), 0);
    assert_true(r.w.base.active);
    assert_int_equal(r.w.events, W);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last_revents, W);

    assert_true(gevtest_write_byte(sv[1]));
    assert_int_equal(gev__io_set_events(loop, &r.w, RW), 0);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.last_revents, RW);

    r.action = switch_to_read;                  /* changed inside its callback */
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.last_revents, RW);
    assert_true(r.w.base.active);
    assert_int_equal(gevtest_drain(sv[0]), 1);
    gevtest_nowait(loop);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 3);               /* READ only, nothing to read */
    assert_true(gevtest_write_byte(sv[1]));
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 4);
    assert_int_equal(r.last_revents, R);

    gev__io_stop(loop, &r.w);                   /* inactive: changes, stays inactive */
    assert_int_equal(gev__io_set_events(loop, &r.w, W), 0);
    assert_false(r.w.base.active);
    assert_int_equal(r.w.events, W);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 4);
    ri_start(loop, &r);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 5);
    assert_int_equal(r.last_revents, W);
    assert_int_equal(r.bad_revents, 0);
    gev__io_stop(loop, &r.w);
}

/* -- errors ------------------------------------------------------------------------ */

static void expect_start_fails(gev__loop *loop, int fd, int events, int err)
{
    ri r;
    ri_init(&r, 9, NULL, fd, events);
    errno = 0;
    assert_int_equal(gev__io_start(loop, &r.w), -1);
    assert_int_equal(errno, err);
    assert_false(r.w.base.active);
    gev__io_stop(loop, &r.w);                   /* harmless on an inactive watcher */
}

static void test_start_on_invalid_fd_fails(void **state)
{
    gev__loop *loop = *state;
    int closed = sv[0];
    close(sv[0]);
    sv[0] = -1;
    assert_false(gevtest_fd_is_open(closed));
    expect_start_fails(loop, closed, R, EBADF);
    expect_start_fails(loop, -1, R, EBADF);
    expect_start_fails(loop, 1 << 20, W, EBADF);
    expect_start_fails(loop, INT_MAX, RW, EBADF);
    expect_start_fails(loop, sv[1], 0, EINVAL);
    assert_false(gev__loop_alive(loop));
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);

    /* the loop still works: io on a fresh pair (maybe the same number) */
    int p[2];
    gevtest_socketpair(p);
    ri r;
    ri_init(&r, 1, NULL, p[0], R);
    ri_start(loop, &r);
    assert_true(gev__loop_alive(loop));
    assert_true(gevtest_write_byte(p[1]));
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.last_revents, R);
    gev__io_stop(loop, &r.w);
    gevtest_close_pair(p);
}

static void test_start_on_regular_file_or_directory_is_eperm(void **state)
{
    gev__loop *loop = *state;
    FILE *f = tmpfile();
    assert_non_null(f);
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    assert_ge(dir, 0);
    expect_start_fails(loop, fileno(f), GEV__READ, EPERM);
    expect_start_fails(loop, fileno(f), GEV__WRITE, EPERM);
    expect_start_fails(loop, dir, GEV__READ, EPERM);
    assert_false(gev__loop_alive(loop));
    int p[2];                                   /* the loop still works */
    gevtest_socketpair(p);
    ri r;
    ri_init(&r, 1, NULL, p[0], W);
    ri_start(loop, &r);
    gevtest_nowait(loop);
    assert_int_equal(r.calls, 1);
    gev__io_stop(loop, &r.w);
    gevtest_close_pair(p);
    close(dir);
    fclose(f);
}

/* -- blocking and many fds ---------------------------------------------------------- */

static void *write_later(void *arg)
{
    gevtest_sleep_ns(GEVTEST_MS(50));
    int fd = *(int *)arg;
    char c = 'w';
    ssize_t n = write(fd, &c, 1);
    (void)n;
    return NULL;
}

static void test_io_wakes_blocked_run(void **state)
{
    gev__loop *loop = *state;
    ri r;
    ri_init(&r, 1, NULL, sv[0], R);
    ri_start(loop, &r);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_later, &sv[1]), 0);
    uint64_t it0 = gev__loop_iteration(loop);
    bool ok = gevtest_run_until(loop, &r.calls, 1, 5000);
    uint64_t iterations = gev__loop_iteration(loop) - it0;
    pthread_join(th, NULL);
    assert_true(ok);
    assert_le(iterations, 2);               /* it blocked, did not spin */
    assert_int_equal(r.last_revents, R);
    gev__io_stop(loop, &r.w);
}

static void test_many_fds(void **state)
{
    gev__loop *loop = *state;
    /* 200 of them ready: more than either library's first event array
     * holds, so the backend must poll in rounds that follow its growth. */
    enum { N = 400 };
    int (*p)[2] = calloc(N, sizeof *p);
    ri *rs = calloc(N, sizeof *rs);
    assert_true(p && rs);
    gevtest_rec log;
    gevtest_rec_init(&log, 4 * N);
    for (int i = 0; i < N; i++) {
        gevtest_socketpair(p[i]);
        ri_init(&rs[i], i, &log, p[i][0], R);
        ri_start(loop, &rs[i]);
    }
    for (int i = 0; i < N; i += 2)
        assert_true(gevtest_write_byte(p[i][1]));
    gevtest_nowait(loop);
    for (int i = 0; i < N; i++) {
        assert_int_equal(rs[i].calls, i % 2 == 0 ? 1 : 0);
        assert_int_equal(rs[i].bad_revents, 0);
    }
    for (int i = 0; i < N; i++) {
        gev__io_stop(loop, &rs[i].w);
        gevtest_close_pair(p[i]);
    }
    gevtest_rec_free(&log);
    free(rs);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        IO_CASE(test_level_triggered_read),
        IO_CASE(test_level_triggered_write),
        IO_CASE(test_peer_closed_is_readable),
        IO_CASE(test_read_and_write_watchers_are_independent),
        IO_CASE(test_combined_watcher_gets_both_bits),
        IO_CASE(test_many_watchers_on_one_fd_in_start_order),
        IO_CASE(test_stop_other_on_same_fd_in_callback),
        GEVTEST_CASE(test_stop_other_on_different_fd_same_poll),
        IO_CASE(test_stop_and_free_self_in_callback),
        IO_CASE(test_stop_and_free_others_in_callback),
        IO_CASE(test_set_events_while_active),
        IO_CASE(test_start_on_invalid_fd_fails),
        GEVTEST_CASE(test_start_on_regular_file_or_directory_is_eperm),
        IO_CASE(test_io_wakes_blocked_run),
        GEVTEST_CASE(test_many_fds),
    };
    return cmocka_run_group_tests_name("loop-io", tests, NULL, NULL);
}
