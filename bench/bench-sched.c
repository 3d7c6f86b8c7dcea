/* bench/bench-sched.c: the workloads that need only greenlets and the hub
 * (W1 switch, W2 spawn, W3 memory, W4 timers).  Timing brackets the same
 * span as the peers: from just before the first spawn to just after the
 * last join. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>      /* malloc_trim */
#endif
#include <string.h>
#include <unistd.h>
#include "bench.h"
#include "hub.h"          /* struct gev_greenlet: the timer gev_sleep armed */

/* ---- W1: yield through the hub ------------------------------------------ */

static void *yield_loop(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++)
        gev_sleep(0);
    return NULL;
}

int bench_switch_yield(int argc, char **argv)
{
    (void)argc;
    long half = atol(argv[1]) / 2;
    if (half < 1)
        bench_die("switch_yield: N must be at least 2");
    int64_t t0 = bench_now_ns();
    gev_greenlet *a = bench_spawn(yield_loop, (void *)(intptr_t)half);
    gev_greenlet *b = bench_spawn(yield_loop, (void *)(intptr_t)half);
    bench_join(a);
    bench_join(b);
    int64_t t1 = bench_now_ns();
    long ops = 2 * half;
    bench_result("switch_yield", "value=%.2f unit=ns/op ops=%ld", (double)(t1 - t0) / ops, ops);
    return 0;
}

/* ---- W1: direct hand-off ---------------------------------------------------
 * ST's figure is a turn passed with st_cond_signal + st_cond_wait: the
 * signal makes the other thread runnable without switching, the wait
 * switches to it.  The same shape here: releasing the other greenlet's
 * semaphore hands the unit to it and makes it ready (no switch), acquiring
 * our own blocks and switches straight to it. */

static gev_sem *turn_sem[2];
static long turn_rounds;

static void *turn_loop(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (long i = 0; i < turn_rounds; i++) {
        if (gev_sem_acquire(turn_sem[me], GEV_FOREVER) < 0)
            bench_die("gev_sem_acquire");
        gev_sem_release(turn_sem[!me]);
    }
    return NULL;
}

int bench_switch_direct(int argc, char **argv)
{
    (void)argc;
    turn_rounds = atol(argv[1]) / 2;
    if (turn_rounds < 1)
        bench_die("switch_direct: N must be at least 2");
    turn_sem[0] = gev_sem_new(1);
    turn_sem[1] = gev_sem_new(0);
    if (!turn_sem[0] || !turn_sem[1])
        bench_die("gev_sem_new");
    int64_t t0 = bench_now_ns();
    gev_greenlet *a = bench_spawn(turn_loop, (void *)(intptr_t)0);
    gev_greenlet *b = bench_spawn(turn_loop, (void *)(intptr_t)1);
    bench_join(a);
    bench_join(b);
    int64_t t1 = bench_now_ns();
    long ops = 2 * turn_rounds;
    bench_result("switch_direct", "value=%.2f unit=ns/op ops=%ld via=semaphore",
                 (double)(t1 - t0) / ops, ops);
    gev_sem_free(turn_sem[0]);
    gev_sem_free(turn_sem[1]);
    return 0;
}

/* ---- W2: spawn + run + join ------------------------------------------------ */

static void *empty(void *arg)
{
    return arg;
}

int bench_spawn_mode(int argc, char **argv)
{
    (void)argc;
    long n = atol(argv[1]);
    if (n < 1)
        bench_die("spawn: N must be positive");
    gev_greenlet **gs = malloc((size_t)n * sizeof *gs);
    if (!gs)
        bench_die("malloc");

    /* As every peer does it: N alive at once.  A greenlet gets its stack
     * when it first runs, and each of these ends before the next starts,
     * so they run one after another on one stack without a switch between
     * them (the peers give each task its stack at creation). */
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        gs[i] = bench_spawn(empty, NULL);
    for (long i = 0; i < n; i++)
        bench_join(gs[i]);
    /* Finished greenlets' stacks beyond the hub's caches are unmapped by the
     * hub greenlet on its next turn: give it that turn inside the timing,
     * as the peers free their tasks inside theirs. */
    gev_sleep(0);
    int64_t t1 = bench_now_ns();
    bench_result("spawn", "value=%.1f unit=ns/task n=%ld", (double)(t1 - t0) / n, n);

    /* One at a time (libdill's measure): the stack and record are reused.
     * At least a million of them: 100,000 take 4 ms, too short a span for a
     * figure that does not move with the CPU's clock ramp. */
    long seq = n < 1000000 ? 1000000 : n;
    t0 = bench_now_ns();
    for (long i = 0; i < seq; i++)
        bench_join(bench_spawn(empty, NULL));
    t1 = bench_now_ns();
    bench_result("spawn_seq", "value=%.1f unit=ns/task n=%ld", (double)(t1 - t0) / seq, seq);
    free(gs);
    return 0;
}

/* ---- W3: memory of parked greenlets ---------------------------------------- */

static double park_seconds;

static void *park(void *arg)
{
    gev_sleep(park_seconds);
    return arg;
}

int bench_mem(int argc, char **argv)
{
    (void)argc;
    long n = atol(argv[1]);
    park_seconds = atof(argv[2]);
    if (n < 1)
        bench_die("mem: N must be positive");
    gev_greenlet **gs = malloc((size_t)n * sizeof *gs);
    if (!gs)
        bench_die("malloc");
    long base = bench_status_kib("VmRSS");     /* the hub exists already */
    for (long i = 0; i < n; i++)
        gs[i] = bench_spawn(park, NULL);
    for (long i = 0; i < n; i++)
        bench_join(gs[i]);
    long peak = bench_status_kib("VmHWM");
    bench_result("mem", "value=%.3f unit=KiB/task peak_kib=%ld base_kib=%ld n=%ld",
                 (double)peak / n, peak, base, n);
    bench_result("mem_delta", "value=%.3f unit=KiB/task", (double)(peak - base) / n);
    free(gs);
    return 0;
}

/* ---- W4: many timers ------------------------------------------------------------
 * Each greenlet notes its deadline (its own clock read just before
 * sleeping, plus its duration), sleeps, notes when it ran again and its
 * place in the wake order.  As the peers do; it also notes the deadline
 * gev_sleep computed from its own clock read a moment later (the timer in
 * the greenlet's record, core/hub.h): an interrupt between the two reads
 * can swap two deadlines a few microseconds apart in the first measure,
 * never in the second.  A second pass ("timers_until_*") sleeps with
 * gev_sleep_until(gev_now() + duration) instead: the deadline noted is then
 * the very one the greenlet asked for, so the first measure has no clock
 * read between the deadline and the timer. */

static struct {
    uint32_t *dur_us;
    int64_t *deadline, *gev_deadline, *woke;
    long *order;
    long nwoken;
    bool until;
} tm;

static void *sleeper(void *arg)
{
    long i = (long)(intptr_t)arg;
    if (tm.until) {
        double deadline = gev_now() + tm.dur_us[i] / 1e6;
        tm.deadline[i] = (int64_t)(deadline * 1e9 + 0.5);  /* gev_sleep_until's rounding */
        gev_sleep_until(deadline);
    } else {
        tm.deadline[i] = bench_now_ns() + (int64_t)tm.dur_us[i] * 1000;
        gev_sleep(tm.dur_us[i] / 1e6);
    }
    tm.woke[i] = bench_now_ns();
    tm.gev_deadline[i] = gev_current()->timer.deadline;
    tm.order[tm.nwoken++] = i;
    return NULL;
}

/* Adjacent pairs in wake order whose deadlines are the other way round. */
static long count_inversions(const int64_t *deadline, long n, long *over_1ms, int64_t *worst)
{
    long inv = 0;
    *over_1ms = 0;
    *worst = 0;
    for (long k = 1; k < n; k++) {
        int64_t before = deadline[tm.order[k - 1]], after = deadline[tm.order[k]];
        inv += before > after;
        *over_1ms += before > after + 1000000;
        if (before - after > *worst)
            *worst = before - after;
    }
    return inv;
}

/* One pass: spawn the sleepers, join them, print the results under
 * `prefix` ("timers" or "timers_until"). */
static void timer_pass(long n, uint32_t longest, const char *prefix)
{
    gev_greenlet **gs = calloc((size_t)n, sizeof *gs);
    if (!gs)
        bench_die("calloc");
    /* Fault the result arrays in now: a first touch inside a sleeper, between
     * its clock read and gev_sleep's, costs up to a huge page's zeroing
     * (~0.1 ms) and would shift its recorded deadline against gev's. */
    memset(tm.deadline, 0xff, (size_t)n * sizeof *tm.deadline);
    memset(tm.gev_deadline, 0xff, (size_t)n * sizeof *tm.gev_deadline);
    memset(tm.woke, 0xff, (size_t)n * sizeof *tm.woke);
    memset(tm.order, 0xff, (size_t)n * sizeof *tm.order);
    tm.nwoken = 0;

    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        gs[i] = bench_spawn(sleeper, (void *)(intptr_t)i);
    for (long i = 0; i < n; i++)
        bench_join(gs[i]);
    int64_t t1 = bench_now_ns();
    if (tm.nwoken != n)
        bench_die("timers: not every greenlet woke");
    free(gs);

    long inv_1ms, gev_inv_1ms;
    int64_t worst, gev_worst;           /* the largest inversion, ns */
    long inv = count_inversions(tm.deadline, n, &inv_1ms, &worst);
    long gev_inv = count_inversions(tm.gev_deadline, n, &gev_inv_1ms, &gev_worst);
    double sum_us = 0, max_us = -1e300, min_us = 1e300;
    for (long i = 0; i < n; i++) {
        double late = (double)(tm.woke[i] - tm.deadline[i]) / 1e3;
        sum_us += late;
        max_us = late > max_us ? late : max_us;
        min_us = late < min_us ? late : min_us;
    }
    char key[64];
    double wall_ms = (double)(t1 - t0) / 1e6, longest_ms = longest / 1e3;
    bench_result(prefix, "value=%.1f unit=ms wall_ms=%.1f longest_ms=%.1f",
                 wall_ms - longest_ms, wall_ms, longest_ms);
    snprintf(key, sizeof key, "%s_inv", prefix);
    bench_result(key, "value=%ld unit=pairs ordered=%s max_inv_us=%.1f", inv,
                 inv ? "no" : "yes", worst / 1e3);
    snprintf(key, sizeof key, "%s_inv1ms", prefix);
    bench_result(key, "value=%ld unit=pairs", inv_1ms);
    snprintf(key, sizeof key, "%s_inv_gev", prefix);
    bench_result(key, "value=%ld unit=pairs ordered=%s max_inv_us=%.1f",
                 gev_inv, gev_inv ? "no" : "yes", gev_worst / 1e3);
    snprintf(key, sizeof key, "%s_late", prefix);
    bench_result(key, "value=%.1f unit=us max_late_us=%.1f min_late_us=%.1f",
                 sum_us / n, max_us, min_us);
}

int bench_timers(int argc, char **argv)
{
    (void)argc;
    long n = atol(argv[1]);
    if (n < 2)
        bench_die("timers: N must be at least 2");
    tm.dur_us = calloc((size_t)n, sizeof *tm.dur_us);
    tm.deadline = calloc((size_t)n, sizeof *tm.deadline);
    tm.gev_deadline = calloc((size_t)n, sizeof *tm.gev_deadline);
    tm.woke = calloc((size_t)n, sizeof *tm.woke);
    tm.order = calloc((size_t)n, sizeof *tm.order);
    if (!tm.dur_us || !tm.deadline || !tm.gev_deadline || !tm.woke || !tm.order)
        bench_die("calloc");
    uint32_t seed = BENCH_TIMER_SEED, longest = 0;
    for (long i = 0; i < n; i++) {
        tm.dur_us[i] = bench_xorshift32(&seed) % (BENCH_TIMER_MAX_US + 1);
        if (tm.dur_us[i] > longest)
            longest = tm.dur_us[i];
    }
    tm.until = false;
    timer_pass(n, longest, "timers");
    tm.until = true;
    timer_pass(n, longest, "timers_until");
    free(tm.dur_us);
    free(tm.deadline);
    free(tm.gev_deadline);
    free(tm.woke);
    free(tm.order);
    return 0;
}

/* ---- C100K: a million parked at once ---------------------------------------
 * N greenlets park in gev_sleep_until one shared deadline SECS after the
 * start (default 2 s plus 100 us per greenlet, so that all have parked by
 * then even when every first run costs a page fault of tens of us).
 * Reported: spawn + first run + park per greenlet and per second, RSS per
 * parked greenlet (VmRSS with all parked, minus the baseline), the time
 * from the deadline (or from the last park, if that came later) until the
 * last one has woken and been joined, and RSS from /proc/self/statm as the
 * hub idles afterwards (it gives stacks back once the peak has passed). */

static double park_until;

static void *park_at(void *arg)
{
    gev_sleep_until(park_until);
    return arg;
}

/* Resident KiB from /proc/self/statm (its second field, in pages). */
static long statm_rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        bench_die("/proc/self/statm");
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* RSS while the hub idles after the wake, at these seconds after it. */
static void park_rss_idle(long peak_kib, long base_kib)
{
    static const double at[] = { 0.5, 1, 2, 4, 8 };
    char buf[256];
    int len = 0;
    double slept = 0;
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        gev_sleep(at[i] - slept);
        slept = at[i];
        len += snprintf(buf + len, sizeof buf - (size_t)len, " at_%gs_kib=%ld", at[i],
                        statm_rss_kib());
    }
    long last = statm_rss_kib();
    bench_result("park_rss_after", "value=%ld unit=KiB returned_pct=%.1f peak_kib=%ld%s",
                 last, 100.0 * (double)(peak_kib - last) / (double)(peak_kib - base_kib),
                 peak_kib, buf);
#ifdef __GLIBC__
    /* What is left is mostly malloc's: freed greenlet records between the
     * few still allocated, which glibc keeps until asked. */
    malloc_trim(0);
    bench_result("park_rss_malloc_trim", "value=%ld unit=KiB", statm_rss_kib());
#endif
}

int bench_park(int argc, char **argv)
{
    long n = atol(argv[1]);
    double secs = argc > 2 ? atof(argv[2]) : 2 + (double)n * 100e-6;
    if (n < 1 || !(secs > 0))
        bench_die("park: N and SECS must be positive");
    gev_greenlet **gs = malloc((size_t)n * sizeof *gs);
    if (!gs)
        bench_die("malloc");
    long base = statm_rss_kib();
    park_until = gev_now() + secs;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        if (!(gs[i] = bench_spawn(park_at, NULL)))
            bench_die("spawn");
    gev_sleep(0);                       /* every one runs and parks */
    int64_t t1 = bench_now_ns(), due = (int64_t)(park_until * 1e9);
    long rss = statm_rss_kib();
    bench_result("park_spawn", "value=%.1f unit=ns/task n=%ld per_s=%.0f parked_before_deadline=%s",
                 (double)(t1 - t0) / n, n, n / ((double)(t1 - t0) / 1e9),
                 t1 < due ? "yes" : "no");
    bench_result("park_rss", "value=%.3f unit=KiB/task rss_kib=%ld base_kib=%ld",
                 (double)(rss - base) / n, rss, base);
    for (long i = 0; i < n; i++)
        bench_join(gs[i]);
    int64_t t2 = bench_now_ns();
    bench_result("park_wake", "value=%.1f unit=ms per_task_ns=%.1f note=deadline_to_last_joined",
                 (double)(t2 - (t1 > due ? t1 : due)) / 1e6,
                 (double)(t2 - (t1 > due ? t1 : due)) / n);
    free(gs);
    park_rss_idle(rss, base);
    return 0;
}
