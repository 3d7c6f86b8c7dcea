/* api/threadpool.c: a per-hub pool of worker threads for blocking functions
 * (gev_threadpool_run), and the per-hub struct it shares with
 * gev_call_threadsafe (api/threads.h).
 *
 * A job lives on the stack of the greenlet that runs it.  The greenlet
 * queues it and waits.  A kill or a scoped timeout that comes while the job
 * is still queued takes it off the queue: it never runs.  Once a worker has
 * taken it, the wait goes on uninterruptibly (the kill or timeout is
 * recorded and reported afterwards), because the worker uses `arg` (usually
 * on that same stack) until fn returns.  Which of the two happens is decided
 * under the pool's mutex, where workers take jobs.  The worker moves the job
 * to the done list and sends the pool's async; the async callback, in the
 * hub, wakes each finished job's greenlet.
 *
 * Workers are made on demand (while queued jobs outnumber the idle workers
 * and fewer than `max` exist) and exit after `idle_ns` without work.  They
 * are joinable: an exited worker is joined by the hub on its next visit, and
 * gev_shutdown() joins them all.
 *
 * fork(): a process-wide registry of pools lets pthread_atfork hold every
 * pool's mutex across fork(), so the child gets consistent lists; the child
 * re-creates the locks, and gev_reinit() (the hub's on_fork hook) forgets the
 * workers, which do not exist there.
 */
#include "config.h"
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include "threads.h"

#define POOL_MAX_DEFAULT 10
#define POOL_IDLE_NS (5 * GEV__NSEC_PER_SEC)

struct gev__tp_worker {
    pthread_t tid;
    gev__threads *t;
    gev__tp_job *job;           /* running now: lost if the process forks */
    bool exited;                /* waits to be joined */
    gev__tp_worker *next, *prev;
};

/* ---- locks, and the registry that carries them across fork() ---------- */

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static gev__threads *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_err;

static int sync_init(gev__threads *t)
{
    pthread_condattr_t attr;
    int err = pthread_condattr_init(&attr);
    if (err)
        return err;
    /* Idle deadlines must not jump with the wall clock. */
    err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!err && !(err = pthread_mutex_init(&t->mu, NULL))) {
        if (!(err = pthread_cond_init(&t->work_cv, &attr))) {
            if (!(err = pthread_cond_init(&t->exit_cv, NULL))) {
                pthread_condattr_destroy(&attr);
                return 0;
            }
            pthread_cond_destroy(&t->work_cv);
        }
        pthread_mutex_destroy(&t->mu);
    }
    pthread_condattr_destroy(&attr);
    return err;
}

static void sync_destroy(gev__threads *t)
{
    pthread_cond_destroy(&t->exit_cv);
    pthread_cond_destroy(&t->work_cv);
    pthread_mutex_destroy(&t->mu);
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&registry_mu);
    for (gev__threads *t = registry; t; t = t->reg_next)
        pthread_mutex_lock(&t->mu);
}

static void atfork_parent(void)
{
    for (gev__threads *t = registry; t; t = t->reg_next)
        pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&registry_mu);
}

/* Only this thread exists in the child: locks held by the others (and
 * condvars they waited on) are re-made from scratch. */
static void atfork_child(void)
{
    for (gev__threads *t = registry; t; t = t->reg_next) {
        (void)sync_init(t);
        t->forked = true;
    }
    (void)pthread_mutex_init(&registry_mu, NULL);
}

static void atfork_register(void)
{
    atfork_err = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static int registry_add(gev__threads *t)
{
    pthread_once(&atfork_once, atfork_register);
    if (atfork_err)
        return atfork_err;
    pthread_mutex_lock(&registry_mu);
    GEV__DLIST_PUSH_HEAD(registry, t, reg_next, reg_prev);
    pthread_mutex_unlock(&registry_mu);
    return 0;
}

static void registry_remove(gev__threads *t)
{
    pthread_mutex_lock(&registry_mu);
    GEV__DLIST_UNLINK_HEAD(registry, t, reg_next, reg_prev);
    pthread_mutex_unlock(&registry_mu);
}

/* ---- workers (the job lists and counters are under t->mu) ------------- */

static void job_append(gev__tp_job **head, gev__tp_job **tail, gev__tp_job *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

static void done_push(gev__threads *t, gev__tp_job *job)
{
    job_append(&t->done_head, &t->done_tail, job);
}

static struct timespec deadline_after(gev__nsec ns)
{
    gev__nsec now = gev__time_monotonic();
    gev__nsec at = ns > INT64_MAX - now ? INT64_MAX : now + ns;
    return (struct timespec){ .tv_sec = at / GEV__NSEC_PER_SEC,
                              .tv_nsec = at % GEV__NSEC_PER_SEC };
}

static bool worker_may_sleep(const gev__threads *t)
{
    return !t->queue_head && !t->stopping && t->nworkers <= t->max;
}

/* Wait for a job; NULL when this worker should exit instead: idle too long,
 * one too many after set_max, or the pool stops (with nothing queued). */
static gev__tp_job *worker_next_job(gev__threads *t)
{
    struct timespec until = deadline_after(t->idle_ns);
    int rc = 0;
    while (worker_may_sleep(t) && rc != ETIMEDOUT)
        rc = t->idle_ns == GEV__FOREVER ? pthread_cond_wait(&t->work_cv, &t->mu)
                                        : pthread_cond_timedwait(&t->work_cv, &t->mu, &until);
    gev__tp_job *job = t->queue_head;
    if (!job || t->nworkers > t->max)
        return NULL;
    t->queue_head = job->next;
    if (!t->queue_head)
        t->queue_tail = NULL;
    t->nqueued--;
    t->nidle--;
    return job;
}

static void *worker_main(void *arg)
{
    gev__tp_worker *w = arg;
    gev__threads *t = w->t;
    gev__tp_job *job;
    pthread_mutex_lock(&t->mu);
    while ((job = worker_next_job(t))) {
        w->job = job;
        pthread_mutex_unlock(&t->mu);
        void *result = job->fn(job->arg);
        pthread_mutex_lock(&t->mu);
        job->result = result;
        w->job = NULL;
        t->nidle++;
        done_push(t, job);
        /* Sent under the lock: shutdown takes it before freeing the loop. */
        gev__async_send(t->loop, &t->async);
    }
    w->exited = true;
    t->nidle--;
    t->nworkers--;
    t->nexited++;
    pthread_cond_broadcast(&t->exit_cv);
    gev__async_send(t->loop, &t->async);     /* so the hub joins us */
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Workers run with asynchronous signals blocked, so a signal meant for the
 * hub's loop never interrupts a user's blocking call in a worker. */
static int worker_create(gev__tp_worker *w)
{
    sigset_t all, old;
    sigfillset(&all);
    static const int sync_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP };
    for (size_t i = 0; i < sizeof sync_signals / sizeof *sync_signals; i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&w->tid, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

static int worker_spawn(gev__threads *t)
{
    gev__tp_worker *w = calloc(1, sizeof *w);
    if (!w)
        return ENOMEM;
    w->t = t;
    int err = worker_create(w);
    if (err) {
        free(w);
        return err;
    }
    GEV__DLIST_PUSH_HEAD(t->workers, w, next, prev);
    t->nworkers++;
    t->nidle++;                 /* a new worker is free until it takes a job */
    return 0;
}

/* More workers while queued jobs outnumber the free ones. */
static int pool_grow(gev__threads *t)
{
    int err = 0;
    while (!err && t->nqueued > t->nidle && t->nworkers < t->max)
        err = worker_spawn(t);
    return err;
}

/* Join the workers that exited (idle, or at shutdown). */
static void pool_reap(gev__threads *t)
{
    gev__tp_worker *dead = NULL;
    pthread_mutex_lock(&t->mu);
    for (gev__tp_worker *w = t->workers, *next; t->nexited && w; w = next) {
        next = w->next;
        if (!w->exited)
            continue;
        GEV__DLIST_UNLINK_HEAD(t->workers, w, next, prev);
        t->nexited--;
        w->next = dead;
        dead = w;
    }
    pthread_mutex_unlock(&t->mu);
    while (dead) {
        gev__tp_worker *w = dead;
        dead = w->next;
        pthread_join(w->tid, NULL);
        free(w);
    }
}

/* Whether the job was still queued (then it is not any more).  Under mu.
 * A linear search: only a job whose caller gives up is looked for. */
static bool queue_remove(gev__threads *t, gev__tp_job *job)
{
    gev__tp_job **pp = &t->queue_head, *prev = NULL;
    while (*pp && *pp != job) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return false;
    *pp = job->next;
    if (t->queue_tail == job)
        t->queue_tail = prev;
    t->nqueued--;
    return true;
}

/* 0, or an errno when no worker exists and none could be made. */
static int pool_submit(gev__threads *t, gev__tp_job *job)
{
    pthread_mutex_lock(&t->mu);
    job_append(&t->queue_head, &t->queue_tail, job);
    t->nqueued++;
    int err = pool_grow(t);
    if (t->nworkers == 0) {
        queue_remove(t, job);
        pthread_mutex_unlock(&t->mu);
        return err ? err : EAGAIN;
    }
    pthread_cond_signal(&t->work_cv);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

/* ---- the hub side ------------------------------------------------------ */

/* Hub context.  Each job's memory belongs to its greenlet again once it is
 * marked done, so `next` is read first. */
static void jobs_deliver(gev__tp_job *job)
{
    while (job) {
        gev__tp_job *next = job->next;
        job->done = true;
        gev__wake(job->g, job->wait_id, 0);
        job = next;
    }
}

static void threads_async_cb(gev__loop *loop, gev__async *a)
{
    gev__threads *t = a->base.data;
    pthread_mutex_lock(&t->mu);
    gev__tp_job *done = t->done_head;
    t->done_head = t->done_tail = NULL;
    pthread_mutex_unlock(&t->mu);
    jobs_deliver(done);
    pool_reap(t);
    gev__threadsafe_run_calls(t);
}

/* After fork() the workers do not exist in this process: drop their
 * records; the jobs they were running fail with ECANCELED (fn will never
 * return here, so the caller's memory is free again).  Under mu. */
static void workers_forget(gev__threads *t)
{
    t->forked = false;
    while (t->workers) {
        gev__tp_worker *w = t->workers;
        t->workers = w->next;
        if (w->job) {
            w->job->err = ECANCELED;
            done_push(t, w->job);
        }
        free(w);
    }
    t->nworkers = t->nidle = t->nexited = 0;
}

/* Every job's greenlet waited for it, so by now no job is in flight; the
 * workers only need to be told to go.  Calls queued by other threads still
 * run (in this thread), so none is lost silently. */
static void threads_shutdown(gev_hub *hub, void *state)
{
    gev__threads *t = state;
    pthread_mutex_lock(&t->mu);
    if (t->forked)
        workers_forget(t);      /* a child that skipped gev_reinit() */
    t->stopping = true;
    pthread_cond_broadcast(&t->work_cv);
    while (t->nworkers > 0)
        pthread_cond_wait(&t->exit_cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    pool_reap(t);
    gev__threadsafe_run_calls(t);
    gev__async_stop(t->loop, &t->async);
    registry_remove(t);
    sync_destroy(t);
    gev__hub_set_slot(hub, GEV__HUB_SLOT_THREADS, NULL, NULL);
    free(t);
}

/* In the child after fork(), from gev_reinit(): queued jobs get new workers;
 * finished ones, lost ones and queued calls are delivered as usual. */
static int threads_fork(gev_hub *hub, void *state)
{
    gev__threads *t = state;
    if (!t->forked)
        return 0;               /* gev_reinit() without a fork: nothing lost */
    pthread_mutex_lock(&t->mu);
    workers_forget(t);
    int err = pool_grow(t);
    if (t->done_head || t->calls_head)
        gev__async_send(t->loop, &t->async);
    pthread_mutex_unlock(&t->mu);
    return err && t->nworkers == 0 && t->nqueued ? gev__fail(err) : 0;
}

static const gev__hub_hooks threads_hooks = {
    .on_shutdown = threads_shutdown,
    .on_fork = threads_fork,
};

static gev__threads *threads_new(gev_hub *hub)
{
    gev__threads *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    int err = sync_init(t);
    if (!err && (err = registry_add(t)))
        sync_destroy(t);
    if (err) {
        free(t);
        errno = err;
        return NULL;
    }
    t->hub = hub;
    t->loop = gev__hub_loop(hub);
    t->max = POOL_MAX_DEFAULT;
    t->idle_ns = POOL_IDLE_NS;
    gev__async_init(&t->async, threads_async_cb);
    t->async.base.data = t;
    gev__async_start(t->loop, &t->async);
    gev__watcher_set_ref(t->loop, &t->async.base, false);
    return t;
}

gev__threads *gev__threads_of(gev_hub *hub)
{
    gev__threads *t = gev__hub_slot(hub, GEV__HUB_SLOT_THREADS);
    if (!t && (t = threads_new(hub)))
        gev__hub_set_slot(hub, GEV__HUB_SLOT_THREADS, t, &threads_hooks);
    return t;
}

static gev__threads *current_threads(void)
{
    gev_hub *hub = gev__hub();
    return hub ? gev__threads_of(hub) : NULL;
}

/* ---- the public calls -------------------------------------------------- */

/* Take the job back if no worker has taken it yet. */
static bool job_withdraw(gev__threads *t, gev__tp_job *job)
{
    pthread_mutex_lock(&t->mu);
    bool withdrawn = queue_remove(t, job);
    pthread_mutex_unlock(&t->mu);
    return withdrawn;
}

/* Wait for the job: 0 once fn returned, or the errno (ECANCELED, ETIMEDOUT)
 * of a kill or scoped timeout that came while it was still queued, which
 * then never runs.  Once a worker took it, wait until the worker is done
 * with it, whatever else happens: the hub records a kill or a timeout, and
 * the caller reports it afterwards. */
static int job_wait(gev__threads *t, gev__tp_job *job)
{
    gev__hub_busy(t->hub, +1);  /* no "would block forever" while in flight */
    int err = 0;
    while (!job->done && !err) {
        gev__wait_note(GEV__WAIT_THREADPOOL, -1);
        err = gev__wait(GEV__FOREVER);
    }
    if (!err || job->done || !job_withdraw(t, job)) {
        err = 0;
        while (!job->done) {
            gev__wait_note(GEV__WAIT_THREADPOOL, -1);
            gev__wait_uninterruptible();
        }
    }
    gev__hub_busy(t->hub, -1);
    return err;
}

int gev_threadpool_run(void *(*fn)(void *), void *arg, void **result)
{
    if (!fn)
        return gev__fail(EINVAL);
    int err = gev__block_check();
    if (err)
        return gev__fail(err);
    gev__threads *t = current_threads();
    if (!t)
        return -1;
    pool_reap(t);
    gev__tp_job job = { .fn = fn, .arg = arg, .g = gev_current() };
    job.wait_id = gev__wait_begin();
    if ((err = pool_submit(t, &job)) || (err = job_wait(t, &job)))
        return gev__fail(err);  /* fn never ran: *result is untouched */
    if (result)
        *result = job.result;
    /* Killed or timed out meanwhile: fn did finish, but the caller asked to
     * stop, and learns it here rather than at its next call only. */
    err = job.err ? job.err : gev__block_check();
    return err ? gev__fail(err) : 0;
}

int gev_threadpool_set_max(size_t n)
{
    if (n == 0)
        return gev__fail(EINVAL);
    gev__threads *t = current_threads();
    if (!t)
        return -1;
    pthread_mutex_lock(&t->mu);
    t->max = n;
    (void)pool_grow(t);         /* failing is fine: jobs wait for a worker */
    pthread_cond_broadcast(&t->work_cv);    /* extra idle workers leave */
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void gev__threadpool_set_idle_timeout(double seconds)
{
    gev__threads *t = current_threads();
    if (!t || !gev__timeout_valid(seconds))
        return;
    pthread_mutex_lock(&t->mu);
    t->idle_ns = gev__nsec_from_seconds(seconds);   /* GEV__FOREVER: never */
    pthread_mutex_unlock(&t->mu);
}

size_t gev__threadpool_workers(void)
{
    gev__threads *t = current_threads();
    if (!t)
        return 0;
    pthread_mutex_lock(&t->mu);
    size_t n = t->nworkers;
    pthread_mutex_unlock(&t->mu);
    return n;
}

size_t gev__threadpool_queued(void)
{
    gev__threads *t = current_threads();
    if (!t)
        return 0;
    pthread_mutex_lock(&t->mu);
    size_t n = t->nqueued;
    pthread_mutex_unlock(&t->mu);
    return n;
}
