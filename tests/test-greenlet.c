/* Greenlets: spawn order, yielding, join, values, names, stacks. */
#include "config.h"
#include "gevtest.h"
#include "hub-internal.h"       /* the record pool */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "stack.h"      /* gev__stack_stats_get: how many stacks are mapped */

static void *log_name(void *arg)
{
    gevtest_log("%s", (const char *)arg);
    return arg;
}

static void test_spawn_never_switches_and_runs_in_order(void **state)
{
    gev_greenlet *g[3];
    g[0] = gev_spawn(log_name, "g1");
    g[1] = gev_spawn(log_name, "g2");
    g[2] = gev_spawn(log_name, "g3");
    gevtest_log("spawned");
    assert_int_equal(gev_sleep(0), 0);
    gevtest_log("main");
    assert_log("spawned g1 g2 g3 main");
    for (int i = 0; i < 3; i++) {
        assert_true(gev_ready(g[i]));
        assert_false(gev_killed(g[i]));
        gev_release(g[i]);
    }
}

static void *a_yield_b(void *arg)
{
    gevtest_log("%sA", (const char *)arg);
    gev_sleep(0);
    gevtest_log("%sB", (const char *)arg);
    return NULL;
}

static void test_sleep0_interleaves(void **state)
{
    gev_greenlet *g[2] = {gev_spawn(a_yield_b, "1"), gev_spawn(a_yield_b, "2")};
    gevtest_join_release(g, 2, GEV_FOREVER);
    assert_log("1A 2A 1B 2B");
}

static void *return_arg(void *arg) { return arg; }

static void test_join_and_value(void **state)
{
    int x;
    gev_greenlet *g = gev_spawn(return_arg, &x);
    assert_non_null(g);
    assert_false(gev_ready(g));
    assert_null(gev_value(g));
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_true(gev_ready(g));
    assert_ptr_equal(gev_value(g), &x);
    assert_int_equal(gev_join(g, 0), 0);   /* finished: no wait */
    gev_release(g);
}

static void *sleep_arg(void *arg)
{
    gev_sleep(*(double *)arg);
    return NULL;
}

static void test_join_timeout(void **state)
{
    double d = 0.5;
    gev_greenlet *g = gev_spawn(sleep_arg, &d);
    double t0 = gevtest_now();
    assert_fails(gev_join(g, 0.02), ETIMEDOUT);
    double took = gevtest_now() - t0;
    assert_true(took >= 0.019 && took < 0.4);
    assert_fails(gev_join(g, 0), ETIMEDOUT);
    assert_false(gev_ready(g));
    assert_int_equal(gev_kill(g, GEV_FOREVER), 0);
    gev_release(g);
}

static void *join_self(void *arg)
{
    errno = 0;
    int rc = gev_join(gev_current(), 1.0);
    *(int *)arg = rc == -1 ? errno : 0;
    return NULL;
}

/* Joiners resume in the order they joined, whether the first one sits in
 * the record's slot or all wait in the queue; one that gave up is skipped,
 * and a joiner arriving after it still queues behind the earlier ones. */
struct joiner { gev_greenlet *target; const char *name; double timeout; };

static void *join_and_log(void *arg)
{
    struct joiner *j = arg;
    int rc = gev_join(j->target, j->timeout);
    gevtest_log("%s%s", j->name, rc == 0 ? "" : "-timeout");
    return NULL;
}

static void *wait_for_event(void *e)
{
    assert_int_equal(gev_event_wait(e, GEV_FOREVER), 0);
    return NULL;
}

static void test_joiners_resume_in_join_order(void **state)
{
    /* The target ends when told, not after a sleep: on a loaded machine a
     * sleep can end before D has joined, and D then finds it dead. */
    gev_event *end = gev_event_new();
    gev_greenlet *g = gev_spawn(wait_for_event, end);
    struct joiner js[] = { { g, "A", 0.01 }, { g, "B", GEV_FOREVER },
                           { g, "C", GEV_FOREVER }, { g, "D", GEV_FOREVER } };
    gev_greenlet *jg[4];
    for (int i = 0; i < 3; i++)
        jg[i] = gev_spawn(join_and_log, &js[i]);
    gev_sleep(0.02);                    /* A (the slot) gave up; B, C queued */
    assert_log("A-timeout");
    jg[3] = gev_spawn(join_and_log, &js[3]);
    assert_int_equal(gev_sleep(0), 0);  /* D joins, behind B and C */
    gev_event_set(end);
    gevtest_join_release(jg, 4, GEV_FOREVER);
    assert_log("A-timeout B C D");
    gev_release(g);
    gev_event_free(end);
}

static void test_join_self_is_edeadlk(void **state)
{
    int err = -1;
    gev_greenlet *g = gev_spawn(join_self, &err);
    gev_join(g, GEV_FOREVER);
    assert_int_equal(err, EDEADLK);
    gev_release(g);
    assert_fails(gev_join(gev_current(), 0.01), EDEADLK);
}

static void test_joinall_one_deadline(void **state)
{
    double d[3] = {0.01, 0.02, 5.0};
    gev_greenlet *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = gev_spawn(sleep_arg, &d[i]);
    assert_int_equal(gev_joinall(g, 2, 2.0), 0);
    assert_true(gev_ready(g[0]) && gev_ready(g[1]));
    double t0 = gevtest_now();
    assert_fails(gev_joinall(g, 3, 0.05), ETIMEDOUT);
    assert_lt(gevtest_now() - t0, 1.0);
    assert_int_equal(gev_killall(g, 3, GEV_FOREVER), 0);
    for (int i = 0; i < 3; i++) {
        assert_true(gev_ready(g[i]));
        gev_release(g[i]);
    }
    assert_int_equal(gev_joinall(NULL, 0, 0), 0);
    assert_fails(gev_joinall(NULL, 1, 0), EINVAL);
}

static void test_spawn_later_order(void **state)
{
    gev_greenlet *late = gev_spawn_later(0.03, log_name, "late");
    gev_greenlet *early = gev_spawn_later(0.01, log_name, "early");
    gev_greenlet *now = gev_spawn(log_name, "now");
    gev_sleep(0);
    gevtest_log("yielded");
    assert_false(gev_ready(early));
    gev_greenlet *all[3] = {late, early, now};
    gevtest_join_release(all, 3, 2.0);
    assert_log("now yielded early late");
}

static void *count_up(void *arg)
{
    (*(long *)arg)++;
    return NULL;
}

static void test_100k_spawned_and_joined(void **state)
{
    /* All alive at once: too many mappings for valgrind's own table. */
    const int N = GEVTEST_ON_VALGRIND ? 5000 : 100000;
    gev_greenlet **g = malloc((size_t)N * sizeof *g);
    long counter = 0;
    for (int i = 0; i < N; i++) {
        g[i] = gev_spawn(count_up, &counter);
        assert_non_null(g[i]);
    }
    assert_int_equal(counter, 0);
    gevtest_join_release(g, (size_t)N, GEV_FOREVER);
    assert_int_equal(counter, N);
    free(g);
}

static size_t live_stacks(void)
{
    gev__stack_stats st;
    gev__stack_stats_get(&st);
    return st.guarded + st.unguarded;
}

static long run_order[20000];
static long run_count;

static void *note_order(void *arg)
{
    run_order[run_count++] = (long)(intptr_t)arg;
    return arg;
}

static void test_unstarted_greenlets_hold_no_stack(void **state)
{
    /* A greenlet gets its stack when it first runs: spawned ones that each
     * finish before the next starts share one stack, in spawn order. */
    enum { N = 20000 };
    static gev_greenlet *g[N];
    assert_int_equal(gev_sleep(0), 0);     /* the hub's own stack is mapped */
    size_t before = live_stacks();
    run_count = 0;
    for (long i = 0; i < N; i++)
        assert_non_null(g[i] = gev_spawn(note_order, (void *)(intptr_t)i));
    assert_int_equal(live_stacks(), before);
    assert_int_equal(gev_join(g[0], GEV_FOREVER), 0);
    assert_int_equal(run_count, N);        /* all ran before main resumed */
    for (long i = 0; i < N; i++) {
        assert_int_equal(run_order[i], i);
        assert_true(gev_ready(g[i]));
        assert_ptr_equal(gev_value(g[i]), (void *)(intptr_t)i);
    }
    assert_le(live_stacks(), before + 1);
    gevtest_release_all(g, N);
}

static void note_link(gev_greenlet *g, void *arg)
{
    (void)g;
    gevtest_log("link-%s", (const char *)arg);
}

#define STACKLESS_CHECK(cond, code) do { if (!(cond)) { \
        fprintf(stderr, "no-stack child: %s failed\n", #cond); return code; } } while (0)

static int no_stack_child(void *arg)
{
    (void)arg;
    alarm(20);
    STACKLESS_CHECK(gev_reinit() == 0, 9);
    struct rlimit rl = {(rlim_t)1 << 30, (rlim_t)1 << 30};
    STACKLESS_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, 10);
    gevtest_log_reset();
    gev_greenlet *big = gev_spawn_sized((size_t)2 << 30, log_name, "big");
    gev_greenlet *small = gev_spawn(log_name, "small");
    STACKLESS_CHECK(big && small, 11);
    STACKLESS_CHECK(gev_link(big, note_link, "big") == 0, 12);
    STACKLESS_CHECK(gev_join(big, GEV_FOREVER) == 0, 13);
    STACKLESS_CHECK(gev_join(small, GEV_FOREVER) == 0, 14);
    STACKLESS_CHECK(gev_ready(big) && gev_killed(big) && !gev_value(big), 15);
    STACKLESS_CHECK(!gev_killed(small) && gev_value(small), 16);
    STACKLESS_CHECK(strcmp(gevtest_log_str(), "small link-big") == 0, 17);
    return 0;
}

static void test_no_stack_at_start_ends_like_a_kill(void **state)
{
    /* An address-space limit the first greenlet's 2 GiB stack cannot fit
     * under: it ends without running, killed, links fired; the next one
     * runs as usual.  In a child, since the limit stays. */
    if (GEVTEST_ON_VALGRIND || GEVTEST_UNDER_ASAN)
        skip();     /* both reserve more address space than the limit */
    gevtest_assert_exited(gevtest_reap(gevtest_fork(no_stack_child, NULL)), 0);
}

static void *park_forever(void *arg)
{
    gev_sleep(3600);
    return arg;
}

/* ---- sleeping until a deadline ---- */

static double sleep_base;

static void *sleep_until_then_log(void *arg)
{
    double deadline = sleep_base + *(double *)arg;
    assert_int_equal(gev_sleep_until(deadline), 0);
    assert_ge(gev_now(), deadline);     /* never early */
    gevtest_log("%g", *(double *)arg * 1000);
    return NULL;
}

static void test_sleep_until_wakes_in_deadline_order(void **state)
{
    /* Deadline order; equal deadlines in the order the sleeps started. */
    static double at[] = { 0.030, 0.010, 0.020, 0.010, 0.0005 };
    gev_greenlet *g[5];
    for (int i = 0; i < 5; i++)
        g[i] = gev_spawn(sleep_until_then_log, &at[i]);
    /* Taken after the spawns (which create the hub: 0.26 s after the 40k
     * test on a loaded machine) and 0.25 s out, so a run that loses the CPU
     * between here and the sleeps does not find every deadline past (past
     * deadlines yield in spawn order). */
    sleep_base = gev_now() + 0.25;
    assert_lt(fabs(sleep_base - 0.25 - gevtest_now()), 0.01);  /* CLOCK_MONOTONIC */
    gevtest_join_release(g, 5, 5);
    assert_log("0.5 10 10 20 30");
}

static void test_sleep_until_past_yields(void **state)
{
    gev_greenlet *t = gev_spawn(log_name, "t");
    assert_int_equal(gev_sleep_until(gev_now() - 1), 0);
    gevtest_log("main");
    assert_int_equal(gev_sleep_until(-5), 0);
    assert_log("t main");
    assert_fails(gev_sleep_until(NAN), EINVAL);
    gevtest_join_release(&t, 1, GEV_FOREVER);
}

static void test_40k_concurrent_greenlets(void **state)
{
    /* Past vm.max_map_count / 2 guarded stacks: spawning must keep working. */
    enum { N = 40000 };
    if (GEVTEST_ON_VALGRIND)
        skip();   /* valgrind's own table of mappings is too small */
    gev_greenlet **g = malloc(N * sizeof *g);
    for (int i = 0; i < N; i++) {
        g[i] = gev_spawn_sized(32 * 1024, park_forever, NULL);
        assert_non_null(g[i]);
    }
    gev_sleep(0);   /* all of them run and park */
    for (int i = 0; i < N; i++)
        assert_false(gev_ready(g[i]));
    assert_int_equal(gev_killall(g, N, GEV_FOREVER), 0);
    gevtest_release_all(g, N);
    free(g);
}

static void *park_scrambled(void *arg)
{
    /* 0-500 ms, in an order unrelated to the spawn (and address) order */
    gev_sleep((double)(intptr_t)arg / 1e6);
    return arg;
}

static void test_second_wave_of_parked_greenlets(void **state)
{
    /* 100,000 parked at once: most of their stacks cannot have a guard page,
     * and those merge into shared mappings.  They end in scrambled order
     * while the hub, idle in between, unmaps the stacks it does not keep.
     * A second wave as large must find stacks again: unguarded ones given
     * back while mappings were short must not take their address ranges
     * with them. */
    enum { N = 100000 };
    if (GEVTEST_ON_VALGRIND)
        skip();   /* valgrind's own table of mappings is too small */
    gev_greenlet **g = malloc(N * sizeof *g);
    for (int wave = 0; wave < 2; wave++) {
        uint32_t x = 12345;
        for (int i = 0; i < N; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            assert_non_null(g[i] = gev_spawn(park_scrambled, (void *)(intptr_t)(x % 500001)));
        }
        assert_int_equal(gev_sleep(0), 0);     /* all of them start and park */
        /* Not ended for want of a stack.  (Some may have ended properly:
         * a sleeper whose timer expires mid-burst is woken by a periodic
         * poll ahead of the first runs still queued, so before main.) */
        for (int i = 0; i < N; i++)
            assert_false(gev_killed(g[i]));
        assert_int_equal(gev_joinall(g, N, 10), 0);
        for (int i = 0; i < N; i++)
            assert_false(gev_killed(g[i]));
        gevtest_release_all(g, N);
    }
    free(g);
}

/* Spare stacks follow demand (core/stack.h, gev__stack_cache_demand). */
/* Parks on an event after using 32 KiB of its stack, so all of a burst is
 * parked at once however slowly the burst starts (under valgrind, slower
 * than a short sleep: early ones would end and lend their stacks on). */
static void *touch_then_wait(void *arg)
{
    volatile char buf[32 * 1024];
    for (size_t i = 0; i < sizeof buf; i += 1024)
        buf[i] = 1;
    assert_int_equal(gev_event_wait(arg, GEV_FOREVER), 0);
    return (void *)(intptr_t)buf[0];
}

static void test_spare_stacks_kept_after_a_burst_then_given_back(void **state)
{
    /* The stacks of a burst stay while it is recent (a second wave needs
     * no new ones) and go once it is two windows (1 s each) old, down to
     * the minimum kept (idle runners and cache, GEV__STACK_SPARE_MIN each). */
    enum { N = 2000 };
    static gev_greenlet *g[N];
    gev_event *go = gev_event_new();
    assert_int_equal(gev_sleep(0), 0);
    size_t before = live_stacks();
    double t0 = gevtest_now();
    for (int i = 0; i < N; i++)
        assert_non_null(g[i] = gev_spawn(touch_then_wait, go));
    assert_int_equal(gev_sleep(0), 0);          /* all started and parked */
    assert_ge(live_stacks(), before + N);
    gev_event_set(go);
    assert_int_equal(gev_joinall(g, N, 10), 0);
    gevtest_release_all(g, N);
    gev_event_free(go);
    assert_int_equal(gev_sleep(0.1), 0);        /* idle, the burst recent */
    /* Recent means within a window: a burst that itself took longer (under
     * valgrind, several seconds) is already old, and trimming may begin. */
    if (gevtest_now() - t0 < 0.8)
        assert_ge(live_stacks(), before + N);
    /* Two windows on, the hub gives them back a batch per poll; a starved
     * process (valgrind on a busy machine) takes longer than the windows,
     * so wait for it within a generous bound rather than a fixed time. */
    double limit = gevtest_now() + 2.5 + 30 * gevtest_slow();
    while (live_stacks() > before + 2 * GEV__STACK_SPARE_MIN && gevtest_now() < limit)
        assert_int_equal(gev_sleep(0.1), 0);
    assert_le(live_stacks(), before + 2 * GEV__STACK_SPARE_MIN);
}

/* The spares of a burst go to the next burst's first runs, even when the
 * hub polls in between them: greenlets not started yet are stacks wanted,
 * not stacks held, so a poll does not trim the spares they are about to
 * take.  Each of the second burst spins 2 us first (a poll is due every
 * 64 of them) and notes how few stacks existed when it ran. */
static size_t fewest_stacks;

static void *spin_note_stacks_then_wait(void *arg)
{
    gevtest_spin_ns(2000);
    size_t now = live_stacks();
    if (now < fewest_stacks)
        fewest_stacks = now;
    assert_int_equal(gev_event_wait(arg, GEV_FOREVER), 0);
    return NULL;
}

static void burst_parked_then_ended(gev_greenlet **g, int n, gev_fn fn)
{
    gev_event *go = gev_event_new();
    for (int i = 0; i < n; i++)
        assert_non_null(g[i] = gev_spawn(fn, go));
    assert_int_equal(gev_sleep(0), 0);          /* all started and parked */
    gev_event_set(go);
    assert_int_equal(gev_joinall(g, n, 10), 0);
    gevtest_release_all(g, n);
    gev_event_free(go);
}

static void test_spare_stacks_kept_for_a_burst_polled_amid(void **state)
{
    (void)state;
    enum { N = 2000 };
    static gev_greenlet *g[N];
    assert_int_equal(gev_sleep(0), 0);
    size_t before = live_stacks();
    double t0 = gevtest_now();
    burst_parked_then_ended(g, N, touch_then_wait);
    size_t spares = live_stacks();
    assert_ge(spares, before + N);
    fewest_stacks = SIZE_MAX;
    burst_parked_then_ended(g, N, spin_note_stacks_then_wait);
    /* Only while the first burst is recent (one window, 1 s): a slower
     * run (valgrind) may trim its spares by then, rightly. */
    if (gevtest_now() - t0 < 0.8)
        /* before: the polls trimmed them 64 a time, down to ~1,000 */
        assert_ge(fewest_stacks, spares - GEV__STACK_SPARE_MIN);
}

/* Records come from 2 MiB slabs (core/records.h) that are unmapped once
 * every record in them is given back: after a burst of 30,000 greenlets
 * ended and released, the slab being carved and at most one that the
 * hub's FIFO of freed records still holds stay mapped.  And records given
 * back are handed out again before a new slab is mapped. */
static void test_record_slabs_given_back_after_a_burst(void **state)
{
    (void)state;
    enum { N = 30000 };
    gev_hub *hub = gev__hub();
    assert_non_null(hub);
    if (hub->records.use_malloc)
        skip();                 /* ASan, valgrind: a malloc per record */
    gev_greenlet **g = malloc(N * sizeof *g);
    assert_non_null(g);
    size_t before = hub->records.slabs;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++)
            assert_non_null(g[i] = gev_spawn(return_arg, g));
        size_t during = hub->records.slabs;
        /* 6,393 records a slab: five for 30,000; the second round reuses
         * what the first gave back (the slab kept for carving among them) */
        assert_ge(during, before + (size_t)N / (GEV__RECORD_SLAB_SIZE / sizeof(gev_greenlet)));
        assert_le(during, before + 7);
        gevtest_join_release(g, N, GEV_FOREVER);
        assert_le(hub->records.slabs, before + 2);
    }
    free(g);
}

static long rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_free_stacks_give_memory_back_beside_live_ones(void **state)
{
    /* Every 64th greenlet (an arena's worth, core/stack.c) stays parked
     * while the others end: their memory must still go back once the hub
     * drops its spares, not wait for whole arenas to be free. */
    enum { N = 1024, TOUCHED_KIB = 32 };
    static gev_greenlet *g[N];
    if (RUNNING_ON_VALGRIND)
        skip();     /* valgrind's RSS is its own */
    /* Parked on events, not sleeping: all of them parked at once however
     * the polls amid their first runs interleave starts and ends. */
    gev_event *go = gev_event_new(), *stay = gev_event_new();
    for (int i = 0; i < N; i++)
        assert_non_null(g[i] = gev_spawn(touch_then_wait, i % 64 ? go : stay));
    assert_int_equal(gev_sleep(0), 0);          /* all parked */
    long peak = rss_kib();
    gev_event_set(go);
    for (int i = 0; i < N; i++)
        if (i % 64)
            assert_int_equal(gev_join(g[i], GEV_FOREVER), 0);
    assert_int_equal(gev_sleep(2.5), 0);
    long after = rss_kib();
    gev_event_set(stay);
    assert_int_equal(gev_joinall(g, N, GEV_FOREVER), 0);
    gevtest_release_all(g, N);
    gev_event_free(go);
    gev_event_free(stay);
    assert_le(after, peak - (long)N * TOUCHED_KIB / 2);
}

/* A sleeper whose timer expires while a burst of first runs is still
 * queued is woken ahead of the rest of the burst (by the periodic poll),
 * not after all of it.  An order, not a timing: each burst greenlet takes
 * at least 2 us, so the burst lasts at least 100 ms, and the sleeper's
 * 10 ms end long before half of it has run.  In the second form each
 * burst greenlet then sleeps itself, as W4's do: every gev_sleep() reads
 * the clock into the loop's, which must not hide that the hub has not
 * polled for the whole burst. */
enum { BURST = 50000 };
static long burst_ran, sleeper_saw;

static void *burst_member(void *then_sleep)
{
    gevtest_spin_ns(2000);
    burst_ran++;
    if (then_sleep)
        assert_int_equal(gev_sleep(0.001), 0);
    return NULL;
}

static void *burst_sleeper(void *arg)
{
    gev_sleep(0.01);
    sleeper_saw = burst_ran;
    return arg;
}

static void sleeper_amid_burst(void *member_arg)
{
    gev_greenlet **g = malloc((BURST + 1) * sizeof *g);
    assert_non_null(g);
    burst_ran = 0;
    sleeper_saw = -1;
    assert_non_null(g[0] = gev_spawn(burst_sleeper, NULL));
    assert_int_equal(gev_sleep(0), 0);          /* it sleeps now */
    for (int i = 1; i <= BURST; i++)
        assert_non_null(g[i] = gev_spawn(burst_member, member_arg));
    gevtest_join_release(g, BURST + 1, GEV_FOREVER);
    assert_int_equal(burst_ran, BURST);
    /* before: sleeper_saw == BURST (the poll queued behind the burst; in
     * the second form, no poll due while the sleeps kept the clock fresh) */
    assert_true(sleeper_saw >= 0 && sleeper_saw < BURST / 2);
    free(g);
}

static void test_sleeper_not_starved_by_burst(void **state)
{
    (void)state;
    sleeper_amid_burst(NULL);
}

static void test_sleeper_not_starved_by_sleeping_burst(void **state)
{
    (void)state;
    sleeper_amid_burst(&burst_ran);
}

static size_t __attribute__((noinline)) recurse(size_t depth, volatile char *prev)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[1023] = prev ? prev[0] : 0;
    if (depth == 0)
        return frame[0] + frame[1023];
    return recurse(depth - 1, frame) + frame[0];
}

static void *deep(void *arg)
{
    size_t depth = *(size_t *)arg;
    recurse(depth, NULL);
    return arg;
}

static void test_deep_recursion_within_stack(void **state)
{
    /* ~200 KiB of a 256 KiB stack. */
    size_t depth = 190;
    gev_greenlet *g = gev_spawn_sized(256 * 1024, deep, &depth);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    assert_ptr_equal(gev_value(g), &depth);
    gev_release(g);
}

static int dive_too_deep(void *arg)
{
    (void)arg;
    size_t depth = 1000000;
    gev_greenlet *g = gev_spawn_sized(256 * 1024, deep, &depth);
    gev_set_name(g, "deep-diver");
    gev_join(g, GEV_FOREVER);
    return 0;   /* not reached */
}

static void test_stack_overflow_is_reported(void **state)
{
    char err[512];
    int status = gevtest_fork_capture(dive_too_deep, NULL, err, sizeof err);
    gevtest_assert_killed_saying(status, SIGABRT, err,
                                 "gev: stack overflow in greenlet deep-diver (stack size 262144)");
}

static void test_names(void **state)
{
    gev_greenlet *g = gev_spawn(return_arg, NULL);
    const char *name = gev_name(g);
    assert_non_null(name);
    assert_int_equal(strncmp(name, "greenlet-", 9), 0);
    gev_set_name(g, "worker");
    assert_string_equal(gev_name(g), "worker");
    assert_non_null(gev_current());
    assert_string_equal(gev_name(gev_current()), "main");
    gev_join(g, GEV_FOREVER);
    gev_release(g);
    assert_null(gev_spawn(NULL, NULL));
    assert_int_equal(errno, EINVAL);
}

static void *current_is(void *arg)
{
    *(gev_greenlet **)arg = gev_current();
    return NULL;
}

static void test_current_inside(void **state)
{
    gev_greenlet *seen = NULL;
    gev_greenlet *g = gev_spawn(current_is, &seen);
    gev_join(g, GEV_FOREVER);
    assert_ptr_equal(seen, g);
    gev_release(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_spawn_never_switches_and_runs_in_order),
        gevtest(test_sleep0_interleaves),
        gevtest(test_join_and_value),
        gevtest(test_join_timeout),
        gevtest(test_joiners_resume_in_join_order),
        gevtest(test_join_self_is_edeadlk),
        gevtest(test_joinall_one_deadline),
        gevtest(test_spawn_later_order),
        gevtest(test_100k_spawned_and_joined),
        gevtest(test_unstarted_greenlets_hold_no_stack),
        gevtest(test_no_stack_at_start_ends_like_a_kill),
        gevtest(test_40k_concurrent_greenlets),
        gevtest(test_second_wave_of_parked_greenlets),
        gevtest(test_spare_stacks_kept_for_a_burst_polled_amid),
        gevtest(test_record_slabs_given_back_after_a_burst),
        gevtest(test_sleeper_not_starved_by_burst),
        gevtest(test_sleeper_not_starved_by_sleeping_burst),
        gevtest(test_spare_stacks_kept_after_a_burst_then_given_back),
        gevtest(test_free_stacks_give_memory_back_beside_live_ones),
        gevtest(test_deep_recursion_within_stack),
        gevtest(test_stack_overflow_is_reported),
        gevtest(test_sleep_until_wakes_in_deadline_order),
        gevtest(test_sleep_until_past_yields),
        gevtest(test_names),
        gevtest(test_current_inside),
    };
    return cmocka_run_group_tests_name("greenlet", tests, NULL, NULL);
}
