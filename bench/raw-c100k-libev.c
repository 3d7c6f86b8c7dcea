/* bench/raw-c100k-libev.c: the floor for gev-bench's W2 and W4 (issue 13):
 * the same two workloads written directly on libev, callbacks and no stacks,
 * so that gev-libev can be measured beside it in one run on one machine.
 *
 *   raw-c100k-libev spawn N    N malloc'd ev_idle "tasks" started at once,
 *                              each stops and frees itself: ns per task
 *   raw-c100k-libev timers N   N ev_timers with gev-bench's durations (the
 *                              shared xorshift32, 0-500 ms), all started at
 *                              once: overhead beyond the longest, mean
 *                              lateness, wake-order inversions
 *
 * Build (not part of `make`; it needs only libev):
 *   cc -O2 -o raw-c100k-libev bench/raw-c100k-libev.c -lev
 */
#include <ev.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- W2 ---- */
static long done;

static void task_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
    free(w);
    done++;
}

static int run_spawn(struct ev_loop *loop, long n)
{
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        ev_idle *w = malloc(sizeof *w);
        if (!w)
            return 1;
        ev_idle_init(w, task_cb);
        ev_idle_start(loop, w);
    }
    ev_run(loop, 0);
    int64_t t1 = now_ns();
    if (done != n)
        return 1;
    printf("peer=libev workload=spawn value=%.1f unit=ns/task n=%ld\n", (double)(t1 - t0) / n, n);
    return 0;
}

/* ---- W4 ---- */
struct sleeper {
    ev_timer t;
    int64_t deadline;
};
static struct sleeper *sl;
static long *order, nwoken;
static int64_t *woke;

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    long i = (struct sleeper *)w - sl;
    woke[i] = now_ns();
    order[nwoken++] = i;
}

static int run_timers(struct ev_loop *loop, long n)
{
    sl = calloc((size_t)n, sizeof *sl);
    order = calloc((size_t)n, sizeof *order);
    woke = calloc((size_t)n, sizeof *woke);
    if (!sl || !order || !woke)
        return 1;
    uint32_t x = 12345, longest = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        uint32_t us = x % 500001;
        longest = us > longest ? us : longest;
        ev_now_update(loop);
        sl[i].deadline = now_ns() + (int64_t)us * 1000;
        ev_timer_init(&sl[i].t, timer_cb, us / 1e6, 0);
        ev_timer_start(loop, &sl[i].t);
    }
    ev_run(loop, 0);
    int64_t t1 = now_ns();
    long inv = 0;
    double late = 0;
    for (long k = 0; k < n; k++) {
        late += (double)(woke[order[k]] - sl[order[k]].deadline) / 1e3;
        inv += k > 0 && sl[order[k - 1]].deadline > sl[order[k]].deadline;
    }
    printf("peer=libev workload=timers value=%.1f unit=ms wall_ms=%.1f\n",
           (double)(t1 - t0) / 1e6 - longest / 1e3, (double)(t1 - t0) / 1e6);
    printf("peer=libev workload=timers_inv value=%ld unit=pairs\n", inv);
    printf("peer=libev workload=timers_late value=%.1f unit=us\n", late / n);
    return 0;
}

int main(int argc, char **argv)
{
    struct ev_loop *loop = ev_default_loop(0);
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (!loop || n < 1) {
        fprintf(stderr, "usage: %s spawn|timers N\n", argv[0]);
        return 2;
    }
    if (argv[1][0] == 's')
        return run_spawn(loop, n);
    return run_timers(loop, n);
}
