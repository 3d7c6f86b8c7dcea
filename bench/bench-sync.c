/* bench/bench-sync.c: synchronisation objects (gev-only rows: no peer
 * program has these modes).  Each checks that what arrives is what was
 * sent, so a fast but wrong object cannot post a good figure. */
#include <stdint.h>
#include <stdlib.h>
#include "bench.h"

/* ---- queue: producer -> bounded queue of 128 -> consumer ---------------------- */

#define QUEUE_BOUND 128

static gev_queue *q;
static long q_items;

static void *producer(void *arg)
{
    for (long i = 1; i <= q_items; i++)
        if (gev_queue_put(q, (void *)(intptr_t)i, GEV_FOREVER) < 0)
            bench_die("gev_queue_put");
    return arg;
}

static void *consumer(void *arg)
{
    for (long i = 1; i <= q_items; i++) {
        void *item;
        if (gev_queue_get(q, &item, GEV_FOREVER) < 0)
            bench_die("gev_queue_get");
        if ((intptr_t)item != i)
            bench_die("queue: items out of order");
    }
    return arg;
}

int bench_queue(int argc, char **argv)
{
    (void)argc;
    q_items = atol(argv[1]);
    if (q_items < 1)
        bench_die("queue: N must be positive");
    if (!(q = gev_queue_new(QUEUE_BOUND)))
        bench_die("gev_queue_new");
    int64_t t0 = bench_now_ns();
    gev_greenlet *p = bench_spawn(producer, NULL);
    gev_greenlet *c = bench_spawn(consumer, NULL);
    bench_join(p);
    bench_join(c);
    int64_t t1 = bench_now_ns();
    double secs = (double)(t1 - t0) / 1e9;
    bench_result("queue", "value=%.0f unit=items/s ns_per_item=%.2f n=%ld maxsize=%d",
                 q_items / secs, secs * 1e9 / q_items, q_items, QUEUE_BOUND);
    gev_queue_free(q);
    return 0;
}

/* ---- channel: rendezvous ping-pong ----------------------------------------------
 * A puts to B on one channel, B puts back on the other; every put returns
 * only once the other side has taken the item. */

static gev_channel *to_b, *to_a;
static long ch_rounds;

static void *chan_a(void *arg)
{
    for (long i = 1; i <= ch_rounds; i++) {
        void *back;
        if (gev_channel_put(to_b, (void *)(intptr_t)i, GEV_FOREVER) < 0 ||
            gev_channel_get(to_a, &back, GEV_FOREVER) < 0)
            bench_die("channel: a");
        if ((intptr_t)back != -i)
            bench_die("channel: wrong reply");
    }
    return arg;
}

static void *chan_b(void *arg)
{
    for (long i = 1; i <= ch_rounds; i++) {
        void *item;
        if (gev_channel_get(to_b, &item, GEV_FOREVER) < 0 ||
            gev_channel_put(to_a, (void *)(-(intptr_t)item), GEV_FOREVER) < 0)
            bench_die("channel: b");
    }
    return arg;
}

int bench_channel(int argc, char **argv)
{
    (void)argc;
    ch_rounds = atol(argv[1]) / 2;
    if (ch_rounds < 1)
        bench_die("channel: N must be at least 2");
    to_b = gev_channel_new();
    to_a = gev_channel_new();
    if (!to_a || !to_b)
        bench_die("gev_channel_new");
    int64_t t0 = bench_now_ns();
    gev_greenlet *a = bench_spawn(chan_a, NULL);
    gev_greenlet *b = bench_spawn(chan_b, NULL);
    bench_join(a);
    bench_join(b);
    int64_t t1 = bench_now_ns();
    long msgs = 2 * ch_rounds;
    bench_result("channel", "value=%.2f unit=ns/msg msgs=%ld", (double)(t1 - t0) / msgs, msgs);
    gev_channel_free(to_a);
    gev_channel_free(to_b);
    return 0;
}

/* ---- semaphore: 100 greenlets contending for one unit ------------------------------
 * In a cooperative scheduler a holder that never blocks is never contended,
 * so each holder yields once (gev_sleep(0)) before releasing: the other 99
 * queue up in acquire, and every release hands the unit to the first of
 * them.  The figure therefore includes that yield. */

#define SEM_GREENLETS 100

static gev_sem *sem;
static long sem_rounds;
static int sem_holders;

static void *contender(void *arg)
{
    for (long i = 0; i < sem_rounds; i++) {
        if (gev_sem_acquire(sem, GEV_FOREVER) < 0)
            bench_die("gev_sem_acquire");
        if (++sem_holders != 1)
            bench_die("semaphore: two holders at once");
        gev_sleep(0);
        sem_holders--;
        gev_sem_release(sem);
    }
    return arg;
}

int bench_semaphore(int argc, char **argv)
{
    (void)argc;
    sem_rounds = atol(argv[1]) / SEM_GREENLETS;
    if (sem_rounds < 1)
        bench_die("semaphore: N must be at least 100");
    if (!(sem = gev_sem_new(1)))
        bench_die("gev_sem_new");
    gev_greenlet *gs[SEM_GREENLETS];
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < SEM_GREENLETS; i++)
        gs[i] = bench_spawn(contender, NULL);
    for (int i = 0; i < SEM_GREENLETS; i++)
        bench_join(gs[i]);
    int64_t t1 = bench_now_ns();
    long pairs = sem_rounds * SEM_GREENLETS;
    bench_result("semaphore", "value=%.2f unit=ns/pair pairs=%ld greenlets=%d hold=yield",
                 (double)(t1 - t0) / pairs, pairs, SEM_GREENLETS);
    gev_sem_free(sem);
    return 0;
}
