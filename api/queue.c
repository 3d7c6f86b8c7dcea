/* api/queue.c: gev_queue, gevent.queue.Queue (maxsize 0 = unbounded).
 *
 * Items live in a ring buffer that doubles when full: no allocation per
 * item.  Blocked getters and putters are served FIFO by hand-off:
 *  - a put with a getter waiting gives the item straight to the first live
 *    getter (the ring stays empty), and does not switch;
 *  - a get from a full queue with putters waiting takes the head item and
 *    moves the first live putter's item into the freed slot, so a new putter
 *    cannot overtake one that waits.
 * Hence getters wait only on an empty ring, putters only on a full one.
 * Peekers wait apart: every item put while they wait is shown to all of
 * them (they consume nothing), whether it went to the ring or to a getter.
 *
 * Close (end of stream) fails every blocked waiter with EPIPE.  Nothing is
 * lost by that: getters and peekers wait only on an empty ring, and a
 * putter that waits has not added its item yet.  The items in the ring stay
 * for later gets, which fail with EPIPE only once the ring is empty.
 */
#include "config.h"
#include <stdlib.h>
#include "sync.h"

#define RING_MIN 16

struct gev_queue {
    gev_hub *hub;           /* GEV_DEBUG only, else NULL (core/debug.h) */
    size_t maxsize;     /* 0: unbounded */
    void **ring;
    size_t cap;         /* a power of two, or 0 before the first item */
    size_t head, len;
    gev__waitq getters, putters, peekers;
    bool closed;
};

gev_queue *gev_queue_new(size_t maxsize)
{
    gev_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->hub = gev__debug_owner();
    q->maxsize = maxsize;
    gev__waitq_init(&q->getters);
    gev__waitq_init(&q->putters);
    gev__waitq_init(&q->peekers);
    return q;
}

/* Double the ring, unwrapping it so the items start at index 0. */
static int ring_grow(gev_queue *q)
{
    size_t cap = q->cap ? q->cap * 2 : RING_MIN;
    if (cap < q->cap || cap > SIZE_MAX / sizeof *q->ring)
        return ENOMEM;
    void **ring = malloc(cap * sizeof *ring);
    if (!ring)
        return ENOMEM;
    for (size_t i = 0; i < q->len; i++)
        ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static int ring_push(gev_queue *q, void *item)
{
    if (q->len == q->cap) {
        int err = ring_grow(q);
        if (err)
            return err;
    }
    q->ring[(q->head + q->len) & (q->cap - 1)] = item;
    q->len++;
    return 0;
}

static void *ring_pop(gev_queue *q)
{
    void *item = q->ring[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return item;
}

static bool queue_full(const gev_queue *q)
{
    return q->maxsize && q->len >= q->maxsize;
}

/* Put without waiting: 0, EAGAIN if the queue is full, or ENOMEM. */
static int queue_put_now(gev_queue *q, void *item)
{
    if (!gev__sync_handoff(&q->getters, item)) {
        if (queue_full(q))
            return EAGAIN;
        int err = ring_push(q, item);
        if (err)
            return err;
    }
    gev__sync_give_all(&q->peekers, item, 0);
    return 0;
}

int gev_queue_put(gev_queue *q, void *item, double timeout)
{
    if (!q)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(q->hub, "queue");
    if (q->closed)
        return gev__fail(EPIPE);
    int err = queue_put_now(q, item);
    if (err != EAGAIN)
        return gev__sync_result(err);
    gev__waiter w;
    /* Success means a getter moved our item into the ring. */
    return gev__sync_result(gev__sync_wait(&q->putters, &w, item, 0, GEV__WAIT_QUEUE, timeout));
}

int gev_queue_get(gev_queue *q, void **item, double timeout)
{
    if (!q)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(q->hub, "queue");
    void *got;
    if (q->len) {
        got = ring_pop(q);
        gev__waiter *p = gev__waitq_pop_live(&q->putters);
        if (p) {
            /* The slot just freed takes it: ring_push cannot fail here. */
            ring_push(q, p->item);
            gev__sync_give(p, NULL, 0);
        }
    } else if (q->closed) {
        return gev__fail(EPIPE);
    } else {
        int err = gev__sync_take(&q->getters, &got, GEV__WAIT_QUEUE, timeout);
        if (err)
            return gev__fail(err);
    }
    if (item)
        *item = got;
    return 0;
}

int gev_queue_peek(gev_queue *q, void **item, double timeout)
{
    if (!q)
        return gev__fail(EINVAL);
    GEV__CHECK_OWNER(q->hub, "queue");
    void *got;
    if (q->len) {
        got = q->ring[q->head];
    } else if (q->closed) {
        return gev__fail(EPIPE);
    } else {
        int err = gev__sync_take(&q->peekers, &got, GEV__WAIT_QUEUE, timeout);
        if (err)
            return gev__fail(err);
    }
    if (item)
        *item = got;
    return 0;
}

size_t gev_queue_size(const gev_queue *q)
{
    if (!q) {
        errno = EINVAL;
        return 0;
    }
    GEV__CHECK_OWNER(q->hub, "queue");
    return q->len;
}

void gev_queue_close(gev_queue *q)
{
    if (!q)
        return;
    GEV__CHECK_OWNER(q->hub, "queue");
    if (q->closed)
        return;
    q->closed = true;
    gev__sync_close(&q->getters);
    gev__sync_close(&q->peekers);
    gev__sync_close(&q->putters);
}

void gev_queue_free(gev_queue *q)
{
    if (!q)
        return;
    GEV__CHECK_OWNER(q->hub, "queue");
    gev__sync_abandon(&q->getters);
    gev__sync_abandon(&q->putters);
    gev__sync_abandon(&q->peekers);
    free(q->ring);
    free(q);
}
