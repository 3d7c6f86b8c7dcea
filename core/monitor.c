/* core/monitor.c: the blocking monitor (gev_monitor_start, $GEV_MONITOR).
 *
 * A greenlet that runs long without switching blocks every other greenlet
 * of its hub, and nothing in the hub can notice: it is the hub's own thread
 * that is stuck.  So each monitored hub gets a thread of its own that
 * wakes every limit/4, samples the hub's switch counter and polling flag
 * (relaxed atomics the hub keeps anyway: no cost on the hub's side), and
 * when the counter has not moved for the limit while the hub was not
 * waiting in its poll, sends GEV__MONITOR_SIGNAL to the hub's thread.  The
 * handler runs there, on the blocked greenlet's stack's behalf, so it can
 * read the running greenlet's name and id without a race and take a
 * backtrace of exactly what is blocking; it writes the report with
 * write(2) and backtrace_symbols_fd() only.
 *
 * The signal is process-wide state: its handler is installed when the
 * first monitor starts and the previous disposition put back when the last
 * one stops (a count under a lock, the one global state here). */
#include "config.h"
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#ifdef HAVE_EXECINFO_H
#include <execinfo.h>
#endif
#include "gev.h"
#include "hub-internal.h"
#include "monitor.h"
#include "out.h"

/* A realtime signal: never sent by the kernel or the C library, queued
 * rather than merged, and SIGRTMIN + 7 rather than the first ones, which
 * programs (and timer_create users) pick first.  Not SIGRTMAX: valgrind
 * keeps that one for itself. */
#define GEV__MONITOR_SIGNAL (SIGRTMIN + 7)
#define BACKTRACE_MAX 64

struct gev__monitor {
    gev_hub *hub;
    pthread_t hub_thread;
    pthread_t thread;
    pid_t pid;                  /* the process `thread` runs in (fork) */
    bool running;               /* hub's thread only */
    pthread_mutex_t lock;
    pthread_cond_t wake;        /* on CLOCK_MONOTONIC */
    pid_t sync_pid;             /* the process that made these two */
    bool stop;                  /* under lock */
    _Atomic int64_t limit_ns;   /* a second start changes these two */
    atomic_int fd;
    /* The monitor thread's own. */
    uint64_t seen_switches;     /* the counter at the last sample */
    gev__nsec seen_since;       /* when it was first seen so (or polling) */
    uint64_t reported_switches; /* the episode reported last */
    gev__nsec last_report;
    /* Handed from the monitor thread to the handler: the episode (the
     * counter's value, stored last with release), how long it had run. */
    _Atomic uint64_t report_switches;
    _Atomic int64_t report_blocked_ns, report_time_ns;
};

/* ---- the report, written in the signal handler -------------------------- */
/* Async-signal-safe only from here to the handler: no stdio, no malloc
 * (core/out.h writes the text). */

/* A CLOCK_REALTIME time in ISO 8601, UTC ("2026-12-07T21:31:27.123Z"):
 * localtime_r and strftime may take locks and read files, so the civil
 * date is computed here (days to year/month/day: H. Hinnant's algorithm). */
static void put_utc(gev__out *o, int64_t ns)
{
    int64_t secs = ns / GEV__NSEC_PER_SEC, days = secs / 86400, sod = secs % 86400;
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    uint64_t doe = (uint64_t)(days - era * 146097);
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153;
    uint64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    gev__out_uint(o, (uint64_t)((int64_t)yoe + era * 400 + (month <= 2)), 4);
    gev__out_str(o, "-");
    gev__out_uint(o, month, 2);
    gev__out_str(o, "-");
    gev__out_uint(o, day, 2);
    gev__out_str(o, "T");
    gev__out_uint(o, (uint64_t)sod / 3600, 2);
    gev__out_str(o, ":");
    gev__out_uint(o, (uint64_t)sod / 60 % 60, 2);
    gev__out_str(o, ":");
    gev__out_uint(o, (uint64_t)sod % 60, 2);
    gev__out_str(o, ".");
    gev__out_uint(o, (uint64_t)(ns % GEV__NSEC_PER_SEC) / 1000000, 3);
    gev__out_str(o, "Z");
}

/* The interrupted code's program counter, so the backtrace can start at
 * the blocking code rather than in this handler; 0 where not known. */
static void *interrupted_pc(void *uctx)
{
    ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)uc->uc_mcontext.pc;
#else
    (void)uc;
    return NULL;
#endif
}

static void write_backtrace(int fd, void *uctx)
{
#ifdef HAVE_EXECINFO_H
    void *frames[BACKTRACE_MAX];
    int n = backtrace(frames, BACKTRACE_MAX), from = 0;
    /* The unwinder steps through the signal frame and gives the
     * interrupted frame's exact pc: drop the handler's frames above it. */
    void *pc = interrupted_pc(uctx);
    for (int i = 0; pc && i < n; i++)
        if (frames[i] == pc) {
            from = i;
            break;
        }
    backtrace_symbols_fd(frames + from, n - from, fd);
#else
    (void)fd;
    (void)uctx;
#endif
}

static void report(gev_hub *hub, gev__monitor *m, void *uctx)
{
    uint64_t episode = atomic_load_explicit(&m->report_switches, memory_order_acquire);
    /* The greenlet may have switched, or the hub entered its poll, between
     * the sample and this signal: then there is nothing to report.  Exact
     * here, on the hub's own thread. */
    if (__atomic_load_n(&hub->switches, __ATOMIC_RELAXED) != episode ||
        __atomic_load_n(&hub->polling, __ATOMIC_RELAXED))
        return;
    gev_greenlet *g = hub->hot.current;
    int fd = atomic_load_explicit(&m->fd, memory_order_relaxed);
    char buf[512];
    gev__out o = gev__out_to(fd, buf, sizeof buf);
    gev__out_str(&o, "gev monitor: greenlet \"");
    gev__out_str(&o, gev_name(g));
    gev__out_str(&o, "\" (id ");
    gev__out_uint(&o, g->id, 1);
    gev__out_str(&o, ") has run ");
    gev__out_secs(&o, atomic_load_explicit(&m->report_blocked_ns, memory_order_relaxed));
    gev__out_str(&o, " s without switching (limit ");
    gev__out_secs(&o, atomic_load_explicit(&m->limit_ns, memory_order_relaxed));
    gev__out_str(&o, " s) at ");
    put_utc(&o, atomic_load_explicit(&m->report_time_ns, memory_order_relaxed));
    gev__out_str(&o, "\n");
    gev__out_flush(&o);
    write_backtrace(fd, uctx);
}

static void monitor_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    int saved_errno = errno;
    gev_hub *hub = gev__hub_peek();
    /* Ours only: sent by this process to this thread (pthread_kill), for a
     * hub that is still monitored. */
    if (info && info->si_code == SI_TKILL && info->si_pid == getpid() && hub && hub->monitor)
        report(hub, hub->monitor, uctx);
    errno = saved_errno;
}

/* ---- the handler's installation ----------------------------------------- */

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static int handler_users;
static struct sigaction handler_prev;

static bool handler_installed(void)
{
    struct sigaction cur;
    return sigaction(GEV__MONITOR_SIGNAL, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
           cur.sa_sigaction == monitor_handler;
}

/* 0, or EBUSY when the program handles the signal itself. */
static int handler_hold(void)
{
    int err = 0;
    pthread_mutex_lock(&handler_lock);
    if (handler_users == 0) {
        struct sigaction sa, prev;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = monitor_handler;
        /* SA_ONSTACK: the hub's thread has an alternate stack (the stack
         * overflow report's), and a greenlet's stack may be nearly full. */
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(GEV__MONITOR_SIGNAL, NULL, &prev) != 0)
            err = errno;
        else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN)
            err = EBUSY;
        else if (sigaction(GEV__MONITOR_SIGNAL, &sa, &handler_prev) != 0)
            err = errno;
    }
    if (!err)
        handler_users++;
    pthread_mutex_unlock(&handler_lock);
    return err;
}

static void handler_release(void)
{
    pthread_mutex_lock(&handler_lock);
    if (--handler_users == 0 && handler_installed())
        sigaction(GEV__MONITOR_SIGNAL, &handler_prev, NULL);
    pthread_mutex_unlock(&handler_lock);
}

/* A signal the monitor sent just before it was joined may still be
 * pending for this thread (if it blocks the signal, it stays so): take it
 * now, or it would meet the restored default action, which kills. */
static void drain_pending(void)
{
    sigset_t set;
    struct timespec zero = { 0, 0 };
    sigemptyset(&set);
    sigaddset(&set, GEV__MONITOR_SIGNAL);
    while (sigtimedwait(&set, NULL, &zero) > 0)
        ;
}

/* ---- the monitor thread ------------------------------------------------- */

/* Sample often enough that a block is seen within a quarter of the limit
 * after it passed; never busier than 1000 times a second. */
static gev__nsec sample_period(int64_t limit)
{
    gev__nsec p = limit / 4;
    return p < 1000000 ? 1000000 : p;
}

static void sample(gev__monitor *m, int64_t limit)
{
    gev_hub *hub = m->hub;
    uint64_t sw = __atomic_load_n(&hub->switches, __ATOMIC_RELAXED);
    bool polling = __atomic_load_n(&hub->polling, __ATOMIC_RELAXED);
    gev__nsec now = gev__time_monotonic();
    if (sw != m->seen_switches || polling) {
        m->seen_switches = sw;
        m->seen_since = now;
        return;
    }
    /* One report per episode (the counter's value), one per
     * max(1 s, limit) in all: a program that blocks all the time gets a
     * report a second, not a flood. */
    gev__nsec blocked = now - m->seen_since;
    gev__nsec gap = limit > GEV__NSEC_PER_SEC ? limit : GEV__NSEC_PER_SEC;
    if (blocked < limit || sw == m->reported_switches ||
        (m->last_report && now - m->last_report < gap))
        return;
    /* Someone else's handler took the signal over since: it must not get
     * signals it does not expect. */
    if (!handler_installed())
        return;
    m->reported_switches = sw;
    m->last_report = now;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    atomic_store_explicit(&m->report_blocked_ns, blocked, memory_order_relaxed);
    atomic_store_explicit(&m->report_time_ns,
                          (int64_t)rt.tv_sec * GEV__NSEC_PER_SEC + rt.tv_nsec,
                          memory_order_relaxed);
    atomic_store_explicit(&m->report_switches, sw, memory_order_release);
    pthread_kill(m->hub_thread, GEV__MONITOR_SIGNAL);
}

static void *monitor_main(void *arg)
{
    gev__monitor *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        int64_t limit = atomic_load_explicit(&m->limit_ns, memory_order_relaxed);
        gev__nsec at = gev__time_monotonic() + sample_period(limit);
        struct timespec ts = { (time_t)(at / GEV__NSEC_PER_SEC), (long)(at % GEV__NSEC_PER_SEC) };
        pthread_cond_timedwait(&m->wake, &m->lock, &ts);
        if (!m->stop)
            sample(m, limit);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- starting and stopping ---------------------------------------------- */

static int sync_init(gev__monitor *m)
{
    pthread_condattr_t ca;
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        return -1;
    if (pthread_condattr_init(&ca) == 0) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        int rc = pthread_cond_init(&m->wake, &ca);
        pthread_condattr_destroy(&ca);
        if (rc == 0) {
            m->sync_pid = getpid();
            return 0;
        }
    }
    pthread_mutex_destroy(&m->lock);
    return -1;
}

/* Start the thread for m (its settings are stored); 0 or an errno. */
static int thread_start(gev__monitor *m)
{
    int err = handler_hold();
    if (err)
        return err;
    m->hub_thread = m->hub->thread;
    m->pid = getpid();
    m->stop = false;
    m->seen_switches = __atomic_load_n(&m->hub->switches, __ATOMIC_RELAXED);
    m->seen_since = gev__time_monotonic();
    m->reported_switches = UINT64_MAX;
    m->last_report = 0;
    /* The thread takes no signals: those sent to the process go to the
     * program's own threads, as before. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&m->thread, NULL, monitor_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        handler_release();
        return err;
    }
    m->running = true;
    return 0;
}

static void thread_stop(gev__monitor *m)
{
    if (!m->running)
        return;
    m->running = false;
    if (m->pid != getpid()) {
        /* Forked without gev_reinit: no thread here, but the parent's
         * count of monitors, inherited, includes this one. */
        handler_release();
        return;
    }
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    drain_pending();
    handler_release();
}

static gev__monitor *monitor_new(gev_hub *hub)
{
    gev__monitor *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (sync_init(m) < 0) {
        free(m);
        return NULL;
    }
    m->hub = hub;
    return m;
}

static int monitor_start(gev_hub *hub, int64_t limit_ns, int fd)
{
    gev__monitor *m = hub->monitor;
    if (!m && !(m = hub->monitor = monitor_new(hub)))
        return ENOMEM;
    if (m->running && m->pid != getpid())
        thread_stop(m);         /* a stale one from before a fork */
    atomic_store(&m->limit_ns, limit_ns);
    atomic_store(&m->fd, fd);
    if (m->running) {
        /* New settings: let the thread pick them up now. */
        pthread_mutex_lock(&m->lock);
        pthread_cond_signal(&m->wake);
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
#ifdef HAVE_EXECINFO_H
    /* The first backtrace() loads libgcc_s (dlopen, malloc): not something
     * a signal handler may do.  Done once here, the handler's calls are
     * safe. */
    void *frame;
    (void)backtrace(&frame, 1);
#endif
    return thread_start(m);
}

/* max_blocking in ns, at least 1 ms (the sampling period's floor). */
static int64_t limit_ns_of(double max_blocking)
{
    gev__nsec ns = gev__nsec_from_seconds(max_blocking);
    if (ns == GEV__FOREVER || ns > INT64_MAX / 4)
        return INT64_MAX / 4;   /* ~73 years: no overflow in sums */
    return ns < 1000000 ? 1000000 : ns;
}

int gev_monitor_start(double max_blocking, int fd)
{
    if (!(max_blocking > 0) || isinf(max_blocking))
        return gev__fail(EINVAL);       /* NaN fails the test above */
    if (fd == -1)
        fd = STDERR_FILENO;
    if (fd < 0 || fcntl(fd, F_GETFD) == -1)
        return gev__fail(EBADF);
    gev_hub *hub = gev__hub();
    if (!hub)
        return -1;
    int err = monitor_start(hub, limit_ns_of(max_blocking), fd);
    return err ? gev__fail(err) : 0;
}

void gev_monitor_stop(void)
{
    gev_hub *hub = gev__hub_peek();
    if (hub && hub->monitor)
        thread_stop(hub->monitor);
}

/* ---- the hub's side (monitor.h) ------------------------------------------ */

void gev__monitor_from_env(gev_hub *hub)
{
    const char *s = getenv("GEV_MONITOR");
    if (!s || !*s)
        return;
    char *end;
    double secs = strtod(s, &end);
    if (*end || !(secs > 0) || isinf(secs))
        return;
    (void)monitor_start(hub, limit_ns_of(secs), STDERR_FILENO);
}

void gev__monitor_after_fork(gev_hub *hub)
{
    gev__monitor *m = hub->monitor;
    if (!m || !m->running)
        return;
    /* The parent's count of monitors, inherited, includes this one. */
    m->running = false;
    handler_release();
    /* The parent's thread may have held the lock when it forked; the
     * child has no other thread, so fresh ones are safe. */
    if (sync_init(m) == 0)
        (void)thread_start(m);
}

void gev__monitor_free(gev_hub *hub)
{
    gev__monitor *m = hub->monitor;
    if (!m)
        return;
    thread_stop(m);
    hub->monitor = NULL;
    /* Copies made by fork() are left alone: the parent's thread may have
     * been waiting on the condition variable, and destroying it would wait
     * for that waiter, which does not exist here. */
    if (m->sync_pid == getpid()) {
        pthread_cond_destroy(&m->wake);
        pthread_mutex_destroy(&m->lock);
    }
    free(m);
}
