/* tests/test-loop-timer.c: the timer heap of core/loop.h.
 *
 * Order is (deadline, start order) under both backends; 0 s timers never fire
 * synchronously nor in the dispatch that started them; resolution is 1 ms
 * or better.  Timing checks are lower bounds
 * (never early) and generous upper bounds only. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"
#include "gevtest.h"

/* A recording timer: every firing pushes id to log. */
typedef struct rt rt;
struct rt {
    gev__timer t;
    int id;
    gevtest_rec *log;
    int fired;
    uint64_t iter;          /* gev__loop_iteration() at the last firing */
    gev__nsec mono;         /* gev__time_monotonic() at the last firing */
    gev__nsec now;          /* gev__loop_now() at the last firing */
    void (*action)(gev__loop *loop, rt *self);
    rt *other;
};

static void rt_cb(gev__loop *loop, gev__timer *t)
{
    rt *r = t->base.data;
    r->fired++;
    r->iter = gev__loop_iteration(loop);
    r->mono = gev__time_monotonic();
    r->now = gev__loop_now(loop);
    if (r->log != NULL)
        gevtest_rec_push(r->log, r->id);
    if (r->action != NULL)
        r->action(loop, r);
}

static void rt_init(rt *r, int id, gevtest_rec *log)
{
    memset(r, 0, sizeof *r);
    gev__timer_init(&r->t, rt_cb);
    r->t.base.data = r;
    r->id = id;
    r->log = log;
}

/* A case's three timers: ids 1, 2, 3 in that order. */
static void rt_init_abc(rt *a, rt *b, rt *c, gevtest_rec *log)
{
    rt_init(a, 1, log);
    rt_init(b, 2, log);
    rt_init(c, 3, log);
}

/* A small deterministic PRNG, so a failure reproduces. */
static uint32_t rng_next(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (uint32_t)(*s >> 33);
}

/* -- clock helpers ------------------------------------------------------ */

static void test_time_helpers(void **state)
{
    (void)state;
    assert_int_equal(gev__nsec_from_seconds(0.0), 0);
    assert_int_equal(gev__nsec_from_seconds(0.001), INT64_C(1000000));
    assert_int_equal(gev__nsec_from_seconds(1.5), INT64_C(1500000000));
    assert_int_equal(gev__nsec_from_seconds(-1.0), GEV__FOREVER);
    assert_int_equal(gev__nsec_from_seconds(-0.25), GEV__FOREVER);

    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    gev__nsec ref = (gev__nsec)ts.tv_sec * GEV__NSEC_PER_SEC + ts.tv_nsec;
    gev__nsec a = gev__time_monotonic();
    gev__nsec b = gev__time_monotonic();
    assert_true(a >= ref && a - ref < GEVTEST_MS(200));   /* CLOCK_MONOTONIC */
    assert_ge(b, a);
    gevtest_sleep_ns(GEVTEST_MS(2));
    assert_ge(gev__time_monotonic() - b, GEVTEST_MS(2));
}

/* -- start / stop / count -------------------------------------------------- */

static void test_start_keeps_the_deadline(void **state)
{
    gev__loop *loop = *state;
    rt a;
    rt_init(&a, 0, NULL);
    assert_false(a.t.base.active);
    assert_int_equal(gev__loop_timer_count(loop), 0);

    gev__nsec now = gev__loop_update_now(loop);
    assert_int_equal(gev__loop_now(loop), now);
    gev__timer_start_at(loop, &a.t, now + GEVTEST_MS(10));
    assert_true(a.t.base.active);
    assert_int_equal(a.t.deadline, now + GEVTEST_MS(10));
    assert_int_equal(gev__loop_timer_count(loop), 1);

    gev__timer_stop(loop, &a.t);
    assert_false(a.t.base.active);
    assert_int_equal(gev__loop_timer_count(loop), 0);
    gev__timer_stop(loop, &a.t);                /* stopping twice is harmless */
    assert_int_equal(gev__loop_timer_count(loop), 0);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_int_equal(a.fired, 0);
}

static void test_timer_count(void **state)
{
    gev__loop *loop = *state;
    enum { N = 100 };
    rt *ts = calloc(N, sizeof *ts);
    assert_non_null(ts);
    for (int i = 0; i < N; i++) {
        rt_init(&ts[i], i, NULL);
        gevtest_timer_start(loop, &ts[i].t, GEVTEST_MS(1000 + i));
        assert_int_equal(gev__loop_timer_count(loop), (size_t)i + 1);
    }
    gevtest_timer_start(loop, &ts[5].t, GEVTEST_MS(1));      /* restart: no new entry */
    assert_int_equal(gev__loop_timer_count(loop), N);
    for (int i = 0; i < N; i += 2)
        gev__timer_stop(loop, &ts[i].t);
    assert_int_equal(gev__loop_timer_count(loop), N / 2);
    for (int i = 1; i < N; i += 2)
        gev__timer_stop(loop, &ts[i].t);
    assert_int_equal(gev__loop_timer_count(loop), 0);
    free(ts);
}

/* -- ordering ------------------------------------------------------------------ */

static void test_equal_deadlines_fire_in_start_order(void **state)
{
    gev__loop *loop = *state;
    enum { N = 1000 };
    gevtest_rec *log = &gevtest_caselog;
    rt *ts = calloc(N, sizeof *ts);
    assert_non_null(ts);
    for (int i = 0; i < N; i++) {
        rt_init(&ts[i], i, log);
        gevtest_timer_start(loop, &ts[i].t, GEVTEST_MS(1));
    }
    assert_true(gevtest_run_until(loop, &ts[N - 1].fired, 1, 5000));
    int *exp = malloc(N * sizeof *exp);
    assert_non_null(exp);
    for (int i = 0; i < N; i++)
        exp[i] = i;
    GEVTEST_ASSERT_REC(log, exp, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ts[i].fired, 1);
        assert_false(ts[i].t.base.active);
        assert_int_equal(ts[i].iter, ts[0].iter);   /* one dispatch */
    }
    assert_int_equal(gev__loop_timer_count(loop), 0);
    free(exp);
    free(ts);
}

static void test_mixed_delays_with_ties(void **state)
{
    gev__loop *loop = *state;
    enum { N = 60 };
    gevtest_rec *log = &gevtest_caselog;
    rt ts[N];
    int delay[N];
    for (int i = 0; i < N; i++) {
        delay[i] = (i * 7) % 5;             /* 0..4 ms, 12 of each */
        rt_init(&ts[i], i, log);
        gevtest_timer_start(loop, &ts[i].t, GEVTEST_MS(delay[i]));
    }
    /* expected: by delay, ties by start order */
    int exp[N], k = 0;
    for (int d = 0; d < 5; d++)
        for (int i = 0; i < N; i++)
            if (delay[i] == d)
                exp[k++] = i;
    assert_int_equal(k, N);
    assert_true(gevtest_run_until_recorded(loop, log, N, 5000));
    GEVTEST_ASSERT_REC(log, exp, N);
}

/* Deadlines in increasing order take the O(1) in-order run, others the
 * heap; moves between them and ties across them keep (deadline, start). */
static void test_in_order_run_mixed_with_heap(void **state)
{
    gev__loop *loop = *state;
    enum { N = 16 };
    gevtest_rec *log = &gevtest_caselog;
    rt ts[N];
    gev__nsec now = gev__loop_update_now(loop);
    for (int i = 0; i < N; i++)
        rt_init(&ts[i], i, log);
    for (int i = 0; i < 10; i++)                /* 10..19 ms: the run */
        gev__timer_start_at(loop, &ts[i].t, now + GEVTEST_MS(10 + i));
    for (int i = 10; i < 15; i++)               /* 1, 3, 5, 7, 9 ms: the heap */
        gev__timer_start_at(loop, &ts[i].t, now + GEVTEST_MS(2 * (i - 10) + 1));
    gev__timer_start_at(loop, &ts[15].t, now + GEVTEST_MS(16));  /* ties with 6 */
    gev__timer_stop(loop, &ts[2].t);
    gev__timer_stop(loop, &ts[5].t);
    gev__timer_start_at(loop, &ts[8].t, now + GEVTEST_MS(2));   /* run -> heap */
    gev__timer_start_at(loop, &ts[12].t, now + GEVTEST_MS(30)); /* heap -> run */
    assert_int_equal(gev__loop_timer_count(loop), 14);
    const int exp[] = { 10, 8, 11, 13, 14, 0, 1, 3, 4, 6, 15, 7, 9, 12 };
    enum { M = sizeof exp / sizeof exp[0] };
    assert_true(gevtest_run_until_recorded(loop, log, M, 5000));
    GEVTEST_ASSERT_REC(log, exp, M);
    assert_int_equal(gev__loop_timer_count(loop), 0);
}

static void test_zero_delay_not_synchronous(void **state)
{
    gev__loop *loop = *state;
    rt a;
    rt_init(&a, 0, NULL);
    gevtest_timer_start(loop, &a.t, 0);
    assert_int_equal(a.fired, 0);              /* not inside start */
    assert_true(a.t.base.active);
    assert_int_equal(gev__loop_timer_count(loop), 1);
    uint64_t it0 = gev__loop_iteration(loop);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_int_equal(gev__loop_iteration(loop), it0 + 1);
    assert_int_equal(a.fired, 1);              /* on the next iteration */
    assert_false(a.t.base.active);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_int_equal(a.fired, 1);
}

static void start_other_zero(gev__loop *loop, rt *self)
{
    gevtest_timer_start(loop, &self->other->t, 0);
}

static void start_other_in_past(gev__loop *loop, rt *self)
{
    gev__timer_start_at(loop, &self->other->t, gev__loop_now(loop) - GEV__NSEC_PER_SEC);
}

/* a's callback (re)starts b with action; b_due: b was due in the same
 * dispatch already.  Either way b fires in the next iteration, not in a's.
 * In a GEVTEST_LOG_CASE. */
static void check_started_in_dispatch(gev__loop *loop, void (*action)(gev__loop *, rt *),
                                      bool b_due)
{
    gevtest_rec *log = &gevtest_caselog;
    rt a, b;
    rt_init(&a, 1, log);
    rt_init(&b, 2, log);
    a.action = action;
    a.other = &b;
    gevtest_timer_start(loop, &a.t, 0);
    if (b_due)
        gevtest_timer_start(loop, &b.t, 0);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 1);  /* b is active */
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);              /* not in the same dispatch */
    assert_true(b.t.base.active);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_int_equal(b.fired, 1);
    assert_int_equal(b.iter, a.iter + 1);      /* the next iteration */
    GEVTEST_ASSERT_REC_IS(log, 1, 2);
}

static void test_zero_delay_from_callback_fires_next_iteration(void **state)
{
    check_started_in_dispatch(*state, start_other_zero, false);
}

static void test_past_deadline_from_callback_fires_next_iteration(void **state)
{
    check_started_in_dispatch(*state, start_other_in_past, false);
}

static void restart_self_zero(gev__loop *loop, rt *self)
{
    gevtest_timer_start(loop, &self->t, 0);
}

static void test_self_restart_fires_once_per_iteration(void **state)
{
    gev__loop *loop = *state;
    rt a;
    rt_init(&a, 0, NULL);
    a.action = restart_self_zero;
    gevtest_timer_start(loop, &a.t, 0);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 1);
        assert_int_equal(a.fired, i);
    }
    gev__timer_stop(loop, &a.t);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_int_equal(a.fired, 5);
}

static void stop_other(gev__loop *loop, rt *self)
{
    gev__timer_stop(loop, &self->other->t);
}

static void test_stop_in_callback_prevents_due_timer(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    rt a, b, c;
    rt_init_abc(&a, &b, &c, log);
    a.action = stop_other;
    a.other = &b;
    gevtest_timer_start(loop, &a.t, GEVTEST_MS(1));
    gevtest_timer_start(loop, &b.t, GEVTEST_MS(1));
    gevtest_timer_start(loop, &c.t, GEVTEST_MS(2));
    gevtest_sleep_ns(GEVTEST_MS(4));                      /* all three due in one iteration */
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    GEVTEST_ASSERT_REC_IS(log, 1, 3);
    assert_int_equal(b.fired, 0);
    assert_false(b.t.base.active);
    assert_int_equal(a.iter, c.iter);
    assert_int_equal(gev__loop_timer_count(loop), 0);
}

static void stop_free_other(gev__loop *loop, rt *self)
{
    gev__timer_stop(loop, &self->other->t);
    free(self->other);
    self->other = NULL;
}

/* Restarts itself; on its third firing stops itself while active again,
 * and frees itself. */
static void stop_free_self(gev__loop *loop, rt *self)
{
    gevtest_timer_start(loop, &self->t, GEVTEST_MS(1));
    if (self->fired == 3) {
        gevtest_rec_push(self->log, -1);
        gev__timer_stop(loop, &self->t);
        free(self);
    }
}

static void test_stop_and_free_in_callbacks(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    rt *a = malloc(sizeof *a), *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    assert_true(a && b && c);
    rt_init(a, 1, log);
    rt_init(b, 2, log);
    rt_init(c, 3, log);
    a->action = stop_free_other;               /* a frees b, due in the same dispatch */
    a->other = b;
    c->action = stop_free_self;                /* c (restarting) frees itself */
    gevtest_timer_start(loop, &a->t, 0);
    gevtest_timer_start(loop, &b->t, 0);
    gevtest_timer_start(loop, &c->t, 0);
    assert_true(gevtest_run_until_recorded(loop, log, 5, 5000));
    /* first dispatch: a, c (b stopped and freed by a); c twice more, then -1 */
    GEVTEST_ASSERT_REC_IS(log, 1, 3, 3, 3, -1);
    assert_int_equal(gev__loop_timer_count(loop), 0);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_int_equal(log->n, 5);
    free(a);
}

static void test_restart_moves_active_timer(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    rt a, b, c;
    rt_init_abc(&a, &b, &c, log);
    gevtest_timer_start(loop, &a.t, GEVTEST_MS(1));
    gevtest_timer_start(loop, &b.t, GEVTEST_MS(2));
    gevtest_timer_start(loop, &c.t, GEVTEST_MS(10000));
    gevtest_timer_start(loop, &a.t, GEVTEST_MS(3));   /* later: after b */
    assert_int_equal(a.t.deadline, gev__loop_now(loop) + GEVTEST_MS(3));
    gevtest_timer_start(loop, &c.t, 0);          /* earlier: first */
    assert_int_equal(gev__loop_timer_count(loop), 3);
    assert_true(gevtest_run_until_recorded(loop, log, 3, 5000));
    GEVTEST_ASSERT_REC_IS(log, 3, 2, 1);
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_int_equal(log->n, 3);                  /* each once */
}

static void test_restart_due_timer_in_callback_defers_it(void **state)
{
    check_started_in_dispatch(*state, start_other_zero, true);
}

static void test_start_at(void **state)
{
    gev__loop *loop = *state;
    gevtest_rec *log = &gevtest_caselog;
    rt t1, t2, t3, t4;
    rt_init(&t1, 1, log);
    rt_init(&t2, 2, log);
    rt_init(&t3, 3, log);
    rt_init(&t4, 4, log);
    gev__nsec now = gev__loop_update_now(loop);
    gev__timer_start_at(loop, &t1.t, now + GEVTEST_MS(100));
    gev__timer_start_at(loop, &t1.t, now + GEVTEST_MS(3));     /* moved */
    gev__timer_start_at(loop, &t2.t, now + GEVTEST_MS(1));
    gev__timer_start_at(loop, &t3.t, now + GEVTEST_MS(1));
    gev__timer_start_at(loop, &t4.t, now - GEV__NSEC_PER_SEC);
    assert_int_equal(t1.t.deadline, now + GEVTEST_MS(3));
    assert_int_equal(t2.t.deadline, now + GEVTEST_MS(1));
    assert_int_equal(t4.t.deadline, now - GEV__NSEC_PER_SEC);
    assert_int_equal(gev__loop_timer_count(loop), 4);
    assert_int_equal(log->n, 0);
    gev__loop_run(loop, GEV__RUN_NOWAIT);
    assert_ge(log->n, 1);                    /* the past one: next iteration */
    assert_int_equal(log->v[0], 4);
    assert_true(gevtest_run_until_recorded(loop, log, 4, 5000));
    GEVTEST_ASSERT_REC_IS(log, 4, 2, 3, 1);
    assert_ge(t1.mono, now + GEVTEST_MS(3));
    gevtest_sleep_ns(GEVTEST_MS(10));
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    assert_int_equal(log->n, 4);                 /* all one-shot */
    assert_int_equal(gev__loop_timer_count(loop), 0);
}

/* -- the heap under random load ------------------------------------------- */

typedef struct {
    int idx;
    gev__nsec deadline;
    uint64_t order;         /* the test's own count of starts */
} heap_key;

static int heap_key_cmp(const void *pa, const void *pb)
{
    const heap_key *a = pa, *b = pb;
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static void test_heap_random_deadlines_one_dispatch(void **state)
{
    gev__loop *loop = *state;
    enum { N = 3000 };
    uint64_t seed = 12345;
    gevtest_rec *log = &gevtest_caselog;
    rt *ts = calloc(N, sizeof *ts);
    uint64_t *order = calloc(N, sizeof *order);
    bool *live = calloc(N, sizeof *live);
    assert_true(ts && order && live);
    uint64_t starts = 0;
    for (int i = 0; i < N; i++) {
        rt_init(&ts[i], i, log);
        gevtest_timer_start(loop, &ts[i].t, GEVTEST_US(100) * (rng_next(&seed) % 50));
        order[i] = starts++;
        live[i] = true;
    }
    /* churn: restarts (new start order), stops, restarts of stopped ones */
    for (int k = 0; k < N; k++) {
        int i = (int)(rng_next(&seed) % N);
        switch (rng_next(&seed) % 3) {
        case 0:
            gev__timer_stop(loop, &ts[i].t);
            live[i] = false;
            break;
        default:
            gevtest_timer_start(loop, &ts[i].t, GEVTEST_US(100) * (rng_next(&seed) % 50));
            order[i] = starts++;
            live[i] = true;
            break;
        }
    }
    heap_key *keys = calloc(N, sizeof *keys);
    assert_non_null(keys);
    size_t nlive = 0;
    for (int i = 0; i < N; i++)
        if (live[i]) {
            assert_true(ts[i].t.base.active);
            keys[nlive++] = (heap_key){ i, ts[i].t.deadline, order[i] };
        } else {
            assert_false(ts[i].t.base.active);
        }
    assert_int_equal(gev__loop_timer_count(loop), nlive);
    qsort(keys, nlive, sizeof *keys, heap_key_cmp);
    int *exp = calloc(nlive ? nlive : 1, sizeof *exp);
    assert_non_null(exp);
    for (size_t j = 0; j < nlive; j++)
        exp[j] = keys[j].idx;
    gevtest_sleep_ns(GEVTEST_MS(6));                      /* every deadline is now past */
    assert_int_equal(gev__loop_run(loop, GEV__RUN_NOWAIT), 0);
    GEVTEST_ASSERT_REC(log, exp, nlive);
    assert_int_equal(gev__loop_timer_count(loop), 0);
    free(exp);
    free(keys);
    free(live);
    free(order);
    free(ts);
}

/* Over many iterations, with callbacks stopping random pending timers. */
typedef struct {
    rt *ts;
    bool *stopped;
    uint64_t seed;
    int n;
    int fired_total;
    gev__nsec last_deadline;
    int last_idx;
    int order_errors;
} heap_run;

static heap_run *g_heap_run;

static void heap_run_action(gev__loop *loop, rt *self)
{
    heap_run *h = g_heap_run;
    h->fired_total++;
    /* self->t.deadline still holds its deadline (one-shot, not restarted) */
    if (self->t.deadline < h->last_deadline ||
        (self->t.deadline == h->last_deadline && self->id < h->last_idx))
        h->order_errors++;
    h->last_deadline = self->t.deadline;
    h->last_idx = self->id;
    if (h->stopped[self->id])
        h->order_errors += 1000;                /* a stopped timer fired */
    if (rng_next(&h->seed) % 4 == 0) {
        int v = (int)(rng_next(&h->seed) % (uint32_t)h->n);
        if (v != self->id && h->ts[v].t.base.active) {
            gev__timer_stop(loop, &h->ts[v].t);
            h->stopped[v] = true;
        }
    }
}

static bool heap_run_done(void *arg)
{
    const heap_run *h = arg;
    int stopped = 0;
    for (int i = 0; i < h->n; i++)
        stopped += h->stopped[i];
    return h->fired_total + stopped == h->n;
}

static void test_heap_random_deadlines_over_iterations(void **state)
{
    gev__loop *loop = *state;
    enum { N = 2000 };
    heap_run h = { 0 };
    h.ts = calloc(N, sizeof *h.ts);
    h.stopped = calloc(N, sizeof *h.stopped);
    assert_true(h.ts && h.stopped);
    h.seed = 777;
    h.n = N;
    h.last_deadline = INT64_MIN;
    g_heap_run = &h;
    gev__loop_update_now(loop);
    for (int i = 0; i < N; i++) {   /* started in index order: index = start order */
        rt_init(&h.ts[i], i, NULL);
        h.ts[i].action = heap_run_action;
        gevtest_timer_start(loop, &h.ts[i].t, GEVTEST_US(250) * (rng_next(&h.seed) % 80));
    }
    assert_true(gevtest_run_until_pred(loop, heap_run_done, &h, 5000));
    assert_int_equal(gev__loop_timer_count(loop), 0);
    int nstopped = 0;
    for (int i = 0; i < N; i++) {
        if (h.stopped[i])
            nstopped++, assert_int_equal(h.ts[i].fired, 0);
        else
            assert_int_equal(h.ts[i].fired, 1);
    }
    assert_int_equal(h.order_errors, 0);
    assert_int_equal(h.fired_total + nstopped, N);
    assert_gt(nstopped, 0);
    free(h.stopped);
    free(h.ts);
}

/* -- resolution ------------------------------------------------------------------ */

static void test_1ms_timer_not_early(void **state)
{
    gev__loop *loop = *state;
    for (int round = 0; round < 20; round++) {
        rt r;
        rt_init(&r, 0, NULL);
        gev__nsec t0 = gev__time_monotonic();
        gev__loop_update_now(loop);
        gevtest_timer_start(loop, &r.t, GEVTEST_MS(1));
        assert_true(gevtest_run_until(loop, &r.fired, 1, 500));
        assert_ge(r.mono - t0, GEVTEST_MS(1));
        assert_ge(r.now, r.t.deadline);
        assert_lt(r.mono - t0, GEVTEST_MS(500));
    }
}

static void test_1ms_apart_fire_in_order(void **state)
{
    gev__loop *loop = *state;
    enum { N = 10 };
    gevtest_rec *log = &gevtest_caselog;
    rt ts[N];
    gev__nsec t0 = gev__time_monotonic();
    gev__loop_update_now(loop);
    for (int i = N; i >= 1; i--) {              /* started latest first */
        rt_init(&ts[i - 1], i, log);
        gevtest_timer_start(loop, &ts[i - 1].t, GEVTEST_MS(i));
    }
    assert_true(gevtest_run_until_recorded(loop, log, N, 5000));
    GEVTEST_ASSERT_REC_IS(log, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    for (int i = 1; i <= N; i++)
        assert_ge(ts[i - 1].mono - t0, GEVTEST_MS(i));
}

static void test_2ms_before_3ms(void **state)
{
    gev__loop *loop = *state;
    for (int round = 0; round < 20; round++) {
        gevtest_rec log;
        gevtest_rec_init(&log, 4);
        rt a, b;
        rt_init(&a, 3, &log);
        rt_init(&b, 2, &log);
        gev__loop_update_now(loop);
        gevtest_timer_start(loop, &a.t, GEVTEST_MS(3));
        gevtest_timer_start(loop, &b.t, GEVTEST_MS(2));
        assert_true(gevtest_run_until_recorded(loop, &log, 2, 2000));
        GEVTEST_ASSERT_REC_IS(&log, 2, 3);
        gevtest_rec_free(&log);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GEVTEST_CASE(test_time_helpers),
        GEVTEST_CASE(test_start_keeps_the_deadline),
        GEVTEST_CASE(test_timer_count),
        GEVTEST_LOG_CASE(test_equal_deadlines_fire_in_start_order),
        GEVTEST_LOG_CASE(test_mixed_delays_with_ties),
        GEVTEST_CASE(test_zero_delay_not_synchronous),
        GEVTEST_LOG_CASE(test_zero_delay_from_callback_fires_next_iteration),
        GEVTEST_LOG_CASE(test_past_deadline_from_callback_fires_next_iteration),
        GEVTEST_CASE(test_self_restart_fires_once_per_iteration),
        GEVTEST_LOG_CASE(test_stop_in_callback_prevents_due_timer),
        GEVTEST_LOG_CASE(test_stop_and_free_in_callbacks),
        GEVTEST_LOG_CASE(test_restart_moves_active_timer),
        GEVTEST_LOG_CASE(test_restart_due_timer_in_callback_defers_it),
        GEVTEST_LOG_CASE(test_start_at),
        GEVTEST_LOG_CASE(test_in_order_run_mixed_with_heap),
        GEVTEST_LOG_CASE(test_heap_random_deadlines_one_dispatch),
        GEVTEST_CASE(test_heap_random_deadlines_over_iterations),
        GEVTEST_CASE(test_1ms_timer_not_early),
        GEVTEST_LOG_CASE(test_1ms_apart_fire_in_order),
        GEVTEST_CASE(test_2ms_before_3ms),
    };
    return cmocka_run_group_tests_name("loop-timer", tests, NULL, NULL);
}
