/* api/threads.h: the per-hub state shared by the thread pool
 * (api/threadpool.c) and gev_call_threadsafe (api/threadsafe.c), kept in the
 * hub slot GEV__HUB_SLOT_THREADS.
 *
 * Other threads reach this struct: pool workers, and callers of
 * gev_call_threadsafe.  Everything they touch is under `mu`; everything else
 * belongs to the hub's thread.  One async watcher (unref'd: in-flight jobs
 * keep the hub alive through gev__hub_busy, not through the watcher) wakes
 * the hub for both finished jobs and queued calls.
 *
 * The struct is created in the hub's thread (gev_hub_current() or the first
 * pool use) and never moves until gev_shutdown(), so a hub pointer handed to
 * another thread always finds it.
 */
#ifndef GEV_API_THREADS_H
#define GEV_API_THREADS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include "gev.h"
#include "hub.h"
#include "hub-slots.h"

typedef struct gev__tp_job gev__tp_job;
typedef struct gev__tp_worker gev__tp_worker;
typedef struct gev__ts_call gev__ts_call;

/* A job lives on the stack of the greenlet that waits for it. */
struct gev__tp_job {
    void *(*fn)(void *);
    void *arg;
    void *result;
    int err;                    /* ECANCELED: its worker vanished in fork() */
    bool done;                  /* delivered by the hub (not a stray wake) */
    gev_greenlet *g;
    uint64_t wait_id;
    gev__tp_job *next;
};

/* A call queued by gev_call_threadsafe, freed once it ran. */
struct gev__ts_call {
    void (*fn)(void *arg);
    void *arg;
    gev__ts_call *next;
};

typedef struct gev__threads {
    gev_hub *hub;
    gev__loop *loop;            /* the hub's; constant, read by other threads */
    gev__async async;           /* finished jobs, queued calls, exited workers */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* workers: a job, a new max, or stop */
    pthread_cond_t exit_cv;     /* shutdown: a worker exited */
    /* under mu: */
    gev__tp_job *queue_head, *queue_tail;   /* not started */
    gev__tp_job *done_head, *done_tail;     /* finished, to deliver */
    gev__tp_worker *workers;    /* every record not yet joined */
    size_t nworkers;            /* running threads */
    size_t nidle;               /* waiting for a job */
    size_t nqueued;
    size_t nexited;             /* records to join */
    size_t max;
    gev__nsec idle_ns;          /* an idle worker exits after this */
    bool stopping;
    bool forked;                /* set in the child by the atfork handler */
    gev__ts_call *calls_head, *calls_tail;
    int refs;                   /* gev_hub_ref() held (also in the hub's hold) */
    /* the process-wide list, for fork (under the registry lock) */
    struct gev__threads *reg_next, *reg_prev;
} gev__threads;

/* The hub's struct, created on first use (from the hub's thread only).
 * NULL + errno (ENOMEM, EAGAIN) if it cannot be made. */
gev__threads *gev__threads_of(gev_hub *hub);

/* threadsafe.c: run the queued calls, FIFO (hub's thread). */
void gev__threadsafe_run_calls(gev__threads *t);

/* For tests: the current hub's pool (created if needed).  The idle timeout
 * applies from a worker's next wait on; one without limit (the conventions'
 * negative, huge, +inf) keeps idle workers for good, NaN is ignored. */
void   gev__threadpool_set_idle_timeout(double seconds);
size_t gev__threadpool_workers(void);
size_t gev__threadpool_queued(void);        /* jobs no worker took yet */

#endif
