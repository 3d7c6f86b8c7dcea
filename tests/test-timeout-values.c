/* tests/test-timeout-values.c: one table of odd timeout values against every
 * family of calls that takes seconds (api/gev.h's conventions).
 *
 *  - 0 and -0.0 do not wait: ETIMEDOUT where the call would have to;
 *  - a tiny positive value is a deadline that has passed: ETIMEDOUT soon;
 *  - negative values, GEV_FOREVER, INFINITY and values too large to count
 *    in nanoseconds wait without limit: after 50 ms the call still waits,
 *    and it ends the way another greenlet ends it (an event set, data
 *    sent, a kill: ECANCELED);
 *  - NaN fails with EINVAL and waits for nothing.
 * Each case runs the call in a greenlet of its own, so a call that waits
 * when it must not shows up as a join that times out.
 */
#include "gevtest.h"
#include <stdatomic.h>
#include <float.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <poll.h>
#include <unistd.h>
#include <sys/wait.h>

enum kind { NOWAIT, TINY, FOREVER, NOTNUM };

typedef struct value {
    const char *name;
    double v;
    enum kind kind;
} value;

static const value values[] = {
    { "0", 0.0, NOWAIT },
    { "-0.0", -0.0, NOWAIT },
    { "1e-300", 1e-300, TINY },
    { "1e-6", 1e-6, TINY },
    { "-1e-300", -1e-300, FOREVER },
    { "GEV_FOREVER", GEV_FOREVER, FOREVER },
    { "-INFINITY", -INFINITY, FOREVER },
    { "9.2e9", 9.2e9, FOREVER },   /* countable in ns; maybe not from now */
    { "9.3e9", 9.3e9, FOREVER },   /* past 2^63 ns */
    { "1e300", 1e300, FOREVER },
    { "DBL_MAX", DBL_MAX, FOREVER },
    { "INFINITY", INFINITY, FOREVER },
    { "NAN", NAN, NOTNUM },
};
#define NVALUES (sizeof values / sizeof values[0])

#define WAIT_BEFORE_END 0.05    /* how long a "forever" call must last */
#define QUICK 0.5               /* generous bound for "at once" */

typedef struct fx fx;
typedef struct family {
    const char *name;
    void (*setup)(fx *f);
    long (*call)(fx *f, double t);  /* in the waiter; >= 0 is success */
    void (*end)(fx *f);             /* ends a wait successfully; NULL: kill it */
    void (*cleanup)(fx *f);
    bool nowait_succeeds;           /* 0 and tiny succeed (sleep, spawn_later) */
    bool absolute;                  /* a deadline: negative ones have passed */
} family;

struct fx {
    const family *fam;
    double t;
    int fds[2], pipe[2];
    int client;
    pid_t pid;
    gev_event *e;
    gev_result *r;
    gev_queue *q;
    gev_channel *c;
    gev_sem *s;
    gev_lock *l;
    gev_pool *pool;
    gev_greenlet *target;
    bool target_ran;
    bool done;
    long rc;
    int err;
    double took;
};

static enum kind kind_of(const family *fam, const value *v)
{
    if (fam->absolute && v->kind != NOTNUM && v->v < 1.0)
        return NOWAIT;              /* before the clock's start: passed */
    return v->kind;
}

static void *waiter(void *arg)
{
    fx *f = arg;
    double t0 = gevtest_now();
    errno = 0;
    f->rc = f->fam->call(f, f->t);
    f->err = errno;
    f->took = gevtest_now() - t0;
    f->done = true;
    return NULL;
}

#define check(cond, ...) do {                                                  \
        if (!(cond))                                                           \
            fail_msg("%s(%s): %s (rc %ld, %s, %.3f s)", fam->name, v->name,    \
                     #cond, f.rc, strerrorname_np(f.err), f.took);             \
    } while (0)

static void run_case(const family *fam, const value *v)
{
    fx f = { .fam = fam, .t = v->v, .fds = { -1, -1 }, .pipe = { -1, -1 }, .client = -1 };
    if (fam->setup)
        fam->setup(&f);
    gev_greenlet *w = gev_spawn(waiter, &f);
    assert_non_null(w);
    enum kind k = kind_of(fam, v);
    if (k == FOREVER) {
        gev_sleep(WAIT_BEFORE_END);
        check(!f.done);
        if (fam->end)
            fam->end(&f);
        else
            gev_kill(w, 0);
        check(gev_join(w, 5.0) == 0);
        if (fam->end)
            check(f.rc >= 0);
        else
            check(f.rc == -1 && f.err == ECANCELED);
    } else {
        check(gev_join(w, 2.0) == 0);   /* it did not wait for an end */
        if (k == NOTNUM)
            check(f.rc == -1 && f.err == EINVAL);
        else if (fam->nowait_succeeds)
            check(f.rc >= 0);
        else
            check(f.rc == -1 && f.err == ETIMEDOUT);
        check(f.took < QUICK);
    }
    gev_kill(w, GEV_FOREVER);
    gev_release(w);
    if (fam->cleanup)
        fam->cleanup(&f);
}

static void run_family(const family *fam)
{
    for (size_t i = 0; i < NVALUES; i++)
        run_case(fam, &values[i]);
}

/* ---- shared pieces --------------------------------------------------------- */

static void make_event(fx *f) { f->e = gev_event_new(); assert_non_null(f->e); }
static void set_event(fx *f) { gev_event_set(f->e); }
static void free_event(fx *f) { gev_event_free(f->e); }

static void make_socketpair(fx *f)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->fds), 0);
}
static void send_byte(fx *f) { assert_int_equal(write(f->fds[1], "x", 1), 1); }
static void close_socketpair(fx *f)
{
    gev_close(f->fds[0]);
    gev_close(f->fds[1]);
}

/* A socketpair whose fds[1] cannot take one more byte. */
static void make_full_socketpair(fx *f)
{
    static char junk[65536];
    make_socketpair(f);
    while (send(f->fds[1], junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
    while (send(f->fds[1], junk, 1, MSG_DONTWAIT) > 0)
        ;
}
static void drain(fx *f)
{
    static char buf[65536];
    while (recv(f->fds[0], buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
}

/* A greenlet that a kill cannot end at once: it is in gev_threadpool_run,
 * whose worker blocks reading f->pipe until end_target writes to it (10 s
 * at most, so that a failed case cannot hang the teardown's kill). */
static atomic_int worker_started;

static void *read_pipe_in_worker(void *arg)
{
    fx *f = arg;
    atomic_store(&worker_started, 1);
    struct pollfd p = { .fd = f->pipe[0], .events = POLLIN };
    char c;
    if (poll(&p, 1, 10000) != 1)
        return NULL;
    return (void *)(intptr_t)read(f->pipe[0], &c, 1);
}
static void *busy_in_threadpool(void *arg)
{
    void *res;
    gev_threadpool_run(read_pipe_in_worker, arg, &res);
    return NULL;
}
/* A job still queued is withdrawn by a kill (the caller returns at once):
 * wait until the worker runs it, so the kill must wait for it. */
static void wait_worker_started(void)
{
    double t0 = gevtest_now();
    while (!atomic_load(&worker_started) && gevtest_now() - t0 < 5)
        gev_sleep(0.001);
    assert_true(atomic_load(&worker_started));
}
static void make_busy_target(fx *f)
{
    assert_int_equal(pipe(f->pipe), 0);
    atomic_store(&worker_started, 0);
    f->target = gev_spawn(busy_in_threadpool, f);
    wait_worker_started();
}
static void end_target(fx *f)
{
    if (f->pipe[1] >= 0) {
        assert_int_equal(write(f->pipe[1], "x", 1), 1);
        close(f->pipe[1]);
        f->pipe[1] = -1;
    }
}
static void free_busy_target(fx *f)
{
    end_target(f);
    assert_int_equal(gev_join(f->target, 5.0), 0);
    gev_release(f->target);
    close(f->pipe[0]);
}

/* A greenlet that ends once f->e is set. */
static void *wait_event(void *arg)
{
    fx *f = arg;
    gev_event_wait(f->e, GEV_FOREVER);
    return NULL;
}
static void make_event_target(fx *f)
{
    make_event(f);
    f->target = gev_spawn(wait_event, f);
}
static void free_event_target(fx *f)
{
    gev_event_set(f->e);
    assert_int_equal(gev_join(f->target, 5.0), 0);
    gev_release(f->target);
    free_event(f);
}

/* ---- greenlets, sleeps, scopes -------------------------------------------- */

static long call_sleep(fx *f, double t) { (void)f; return gev_sleep(t); }
static long call_sleep_until(fx *f, double t) { (void)f; return gev_sleep_until(t); }

static long call_scope(fx *f, double t)
{
    gev_timeout *to = gev_timeout_start(t);
    if (!to)
        return -1;
    int rc = gev_event_wait(f->e, GEV_FOREVER);
    int err = errno;
    gev_timeout_cancel(to);
    errno = err;
    return rc;
}

static void *mark_ran(void *arg)
{
    fx *f = arg;
    f->target_ran = true;
    gev_event_set(f->e);
    return NULL;
}
/* Succeeds once the greenlet spawned later ran. */
static long call_spawn_later(fx *f, double t)
{
    f->target = gev_spawn_later(t, mark_ran, f);
    if (!f->target)
        return -1;
    return gev_event_wait(f->e, GEV_FOREVER);
}
/* A greenlet whose start never comes: it is still new, and a kill ends it
 * without running it. */
static void end_spawn_later(fx *f)
{
    assert_false(gev_ready(f->target));
    assert_false(f->target_ran);
    assert_int_equal(gev_kill(f->target, 0), 0);
    assert_true(gev_ready(f->target));
    assert_false(f->target_ran);
    gev_event_set(f->e);
}
static void free_spawn_later(fx *f)
{
    if (f->target) {
        gev_kill(f->target, 0);
        gev_release(f->target);
    }
    free_event(f);
}

static long call_join(fx *f, double t) { return gev_join(f->target, t); }
static long call_joinall(fx *f, double t) { return gev_joinall(&f->target, 1, t); }
static long call_kill(fx *f, double t) { return gev_kill(f->target, t); }
static long call_killall(fx *f, double t) { return gev_killall(&f->target, 1, t); }

static const family f_sleep = { "gev_sleep", NULL, call_sleep, NULL, NULL, true, false };
static const family f_sleep_until = { "gev_sleep_until", NULL, call_sleep_until, NULL, NULL,
                                      true, true };
static const family f_scope = { "gev_timeout_start", make_event, call_scope, set_event,
                                free_event, false, false };
static const family f_spawn_later = { "gev_spawn_later", make_event, call_spawn_later,
                                      end_spawn_later, free_spawn_later, true, false };
static const family f_join = { "gev_join", make_event_target, call_join, set_event,
                               free_event_target, false, false };
static const family f_joinall = { "gev_joinall", make_event_target, call_joinall, set_event,
                                  free_event_target, false, false };
static const family f_kill = { "gev_kill", make_busy_target, call_kill, end_target,
                               free_busy_target, false, false };
static const family f_killall = { "gev_killall", make_busy_target, call_killall, end_target,
                                  free_busy_target, false, false };

static void test_sleep(void **state) { run_family(&f_sleep); }
static void test_sleep_until(void **state) { run_family(&f_sleep_until); }
static void test_timeout_scope(void **state) { run_family(&f_scope); }
static void test_spawn_later(void **state) { run_family(&f_spawn_later); }
static void test_join(void **state) { run_family(&f_join); run_family(&f_joinall); }
static void test_kill(void **state) { run_family(&f_kill); run_family(&f_killall); }

/* A NaN kill is refused before it kills anything. */
static void test_kill_nan_kills_nothing(void **state)
{
    fx f = { .pipe = { -1, -1 } };
    make_busy_target(&f);
    assert_fails(gev_kill(f.target, NAN), EINVAL);
    assert_fails(gev_killall(&f.target, 1, NAN), EINVAL);
    assert_false(gev_killed(f.target));
    free_busy_target(&f);
    assert_false(gev_killed(f.target));
}

/* ---- descriptors ------------------------------------------------------------ */

static long call_wait_read(fx *f, double t) { return gev_wait_read(f->fds[0], t); }
static long call_recv(fx *f, double t)
{
    char c;
    return gev_recv(f->fds[0], &c, 1, 0, t);
}
static long call_read(fx *f, double t)
{
    char c;
    return gev_read(f->fds[0], &c, 1, t);
}
static long call_send(fx *f, double t) { return gev_send(f->fds[1], "y", 1, 0, t); }
static long call_sendall(fx *f, double t) { return gev_sendall(f->fds[1], "y", 1, t); }

static long call_accept(fx *f, double t)
{
    int fd = gev_accept(f->fds[0], NULL, NULL, t);
    if (fd >= 0)
        gev_close(fd);
    return fd;
}
static void make_listener(fx *f)
{
    f->fds[0] = gev_tcp_listen("127.0.0.1", "0", 8);
    assert_ge(f->fds[0], 0);
}
static void connect_client(fx *f)
{
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(f->fds[0]));
    f->client = gev_tcp_connect("127.0.0.1", port, 5.0);
    assert_ge(f->client, 0);
}
static void close_listener(fx *f)
{
    gev_close(f->fds[0]);
    if (f->client >= 0)
        gev_close(f->client);
}

static const family f_wait_read = { "gev_wait_read", make_socketpair, call_wait_read,
                                    send_byte, close_socketpair, false, false };
static const family f_recv = { "gev_recv", make_socketpair, call_recv, send_byte,
                               close_socketpair, false, false };
static const family f_read = { "gev_read", make_socketpair, call_read, send_byte,
                               close_socketpair, false, false };
static const family f_send = { "gev_send", make_full_socketpair, call_send, drain,
                               close_socketpair, false, false };
static const family f_sendall = { "gev_sendall", make_full_socketpair, call_sendall, drain,
                                  close_socketpair, false, false };
static const family f_accept = { "gev_accept", make_listener, call_accept, connect_client,
                                 close_listener, false, false };

static void test_fd_waits(void **state)
{
    run_family(&f_wait_read);
    run_family(&f_recv);
    run_family(&f_read);
}
static void test_fd_sends(void **state)
{
    run_family(&f_send);
    run_family(&f_sendall);
}
static void test_accept(void **state) { run_family(&f_accept); }

/* Connects finish by themselves: a limitless timeout must not end them
 * early, NaN must refuse before connecting. */
static void test_connect(void **state)
{
    int lfd = gev_tcp_listen("127.0.0.1", "0", 64);
    assert_ge(lfd, 0);
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(lfd));
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(gevtest_local_port(lfd)),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    for (size_t i = 0; i < NVALUES; i++) {
        const value *v = &values[i];
        if (v->kind != FOREVER && v->kind != NOTNUM)
            continue;
        int fd = gev_socket(AF_INET, SOCK_STREAM, 0);
        assert_ge(fd, 0);
        errno = 0;
        int rc = gev_connect(fd, (struct sockaddr *)&sin, sizeof sin, v->v);
        int err = errno;
        gev_close(fd);
        fd = gev_tcp_connect("127.0.0.1", port, v->v);
        int err2 = errno;
        if (fd >= 0)
            gev_close(fd);
        if (v->kind == NOTNUM) {
            assert_int_equal(rc, -1);
            assert_int_equal(err, EINVAL);
            assert_int_equal(fd, -1);
            assert_int_equal(err2, EINVAL);
        } else {
            if (rc != 0 || fd < 0)
                fail_msg("connect(%s): %d %s, tcp_connect %d %s", v->name, rc,
                         strerrorname_np(err), fd, strerrorname_np(err2));
        }
    }
    gev_close(lfd);
}

/* "localhost" goes to the thread pool: a limitless timeout waits for it,
 * 0 does not, NaN is EAI_SYSTEM with errno EINVAL even for a number. */
static void test_getaddrinfo(void **state)
{
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
    for (size_t i = 0; i < NVALUES; i++) {
        const value *v = &values[i];
        struct addrinfo *res = NULL;
        errno = 0;
        int rc = gev_getaddrinfo("localhost", "80", &hints, &res, v->v);
        int err = errno;
        if (res)
            freeaddrinfo(res);
        if (v->kind == NOTNUM) {
            assert_int_equal(rc, EAI_SYSTEM);
            assert_int_equal(err, EINVAL);
            res = NULL;
            assert_int_equal(gev_getaddrinfo("127.0.0.1", "80", &hints, &res, v->v),
                             EAI_SYSTEM);
            assert_null(res);
        } else if (v->kind == FOREVER && rc != 0) {
            fail_msg("getaddrinfo(%s): %d %s", v->name, rc, strerrorname_np(err));
        } else if (v->kind == NOWAIT) {
            assert_int_equal(rc, EAI_AGAIN);
            assert_int_equal(err, ETIMEDOUT);
        }
    }
}

/* ---- synchronisation objects ------------------------------------------------- */

static void make_result(fx *f) { f->r = gev_result_new(); }
static long call_result(fx *f, double t)
{
    void *val;
    return gev_result_get(f->r, &val, t);
}
static void set_result(fx *f) { gev_result_set(f->r, f); }
static void free_result(fx *f) { gev_result_free(f->r); }

static long call_event(fx *f, double t) { return gev_event_wait(f->e, t); }

static void make_queue(fx *f) { f->q = gev_queue_new(1); }
static void make_full_queue(fx *f)
{
    make_queue(f);
    assert_int_equal(gev_queue_put(f->q, f, 0), 0);
}
static long call_queue_get(fx *f, double t)
{
    void *item;
    return gev_queue_get(f->q, &item, t);
}
static long call_queue_peek(fx *f, double t)
{
    void *item;
    return gev_queue_peek(f->q, &item, t);
}
static long call_queue_put(fx *f, double t) { return gev_queue_put(f->q, f, t); }
static void queue_put(fx *f) { assert_int_equal(gev_queue_put(f->q, f, 0), 0); }
static void queue_get(fx *f)
{
    void *item;
    assert_int_equal(gev_queue_get(f->q, &item, 0), 0);
}
static void free_queue(fx *f) { gev_queue_free(f->q); }

static void make_channel(fx *f) { f->c = gev_channel_new(); }
static long call_channel_get(fx *f, double t)
{
    void *item;
    return gev_channel_get(f->c, &item, t);
}
static long call_channel_put(fx *f, double t) { return gev_channel_put(f->c, f, t); }
static void channel_put(fx *f) { assert_int_equal(gev_channel_put(f->c, f, 0), 0); }
static void channel_get(fx *f)
{
    void *item;
    assert_int_equal(gev_channel_get(f->c, &item, 0), 0);
}
static void free_channel(fx *f) { gev_channel_free(f->c); }

static void make_sem(fx *f) { f->s = gev_sem_new(0); }
static long call_sem(fx *f, double t) { return gev_sem_acquire(f->s, t); }
static void sem_release(fx *f) { assert_int_equal(gev_sem_release(f->s), 0); }
static void free_sem(fx *f) { gev_sem_free(f->s); }

static void make_lock(fx *f)
{
    f->l = gev_lock_new();
    assert_int_equal(gev_lock_acquire(f->l, 0), 0);
}
static long call_lock(fx *f, double t)
{
    int rc = gev_lock_acquire(f->l, t);
    if (rc == 0)
        gev_lock_release(f->l);
    return rc;
}
static void lock_release(fx *f) { assert_int_equal(gev_lock_release(f->l), 0); }
static void free_lock(fx *f)
{
    if (gev_lock_release(f->l) != 0)
        assert_int_equal(errno, EPERM);     /* released by the end already */
    gev_lock_free(f->l);
}

static const family f_event = { "gev_event_wait", make_event, call_event, set_event,
                                free_event, false, false };
static const family f_result = { "gev_result_get", make_result, call_result, set_result,
                                 free_result, false, false };
static const family f_queue_get = { "gev_queue_get", make_queue, call_queue_get, queue_put,
                                    free_queue, false, false };
static const family f_queue_peek = { "gev_queue_peek", make_queue, call_queue_peek, queue_put,
                                     free_queue, false, false };
static const family f_queue_put = { "gev_queue_put", make_full_queue, call_queue_put, queue_get,
                                    free_queue, false, false };
static const family f_channel_get = { "gev_channel_get", make_channel, call_channel_get,
                                      channel_put, free_channel, false, false };
static const family f_channel_put = { "gev_channel_put", make_channel, call_channel_put,
                                      channel_get, free_channel, false, false };
static const family f_sem = { "gev_sem_acquire", make_sem, call_sem, sem_release, free_sem,
                              false, false };
static const family f_lock = { "gev_lock_acquire", make_lock, call_lock, lock_release,
                               free_lock, false, false };

static void test_sync_objects(void **state)
{
    run_family(&f_event);
    run_family(&f_result);
    run_family(&f_queue_get);
    run_family(&f_queue_peek);
    run_family(&f_queue_put);
    run_family(&f_channel_get);
    run_family(&f_channel_put);
    run_family(&f_sem);
    run_family(&f_lock);
}

/* ---- pools --------------------------------------------------------------- */

static void make_pool_waiting(fx *f)
{
    make_event(f);
    f->pool = gev_pool_new(1);
    assert_non_null(gev_pool_spawn(f->pool, wait_event, f));
}
static void make_pool_busy(fx *f)
{
    assert_int_equal(pipe(f->pipe), 0);
    f->pool = gev_pool_new(1);
    atomic_store(&worker_started, 0);
    assert_non_null(gev_pool_spawn(f->pool, busy_in_threadpool, f));
    wait_worker_started();
}
static void free_pool(fx *f)
{
    if (f->e)
        gev_event_set(f->e);
    end_target(f);
    assert_int_equal(gev_pool_join(f->pool, 5.0), 0);
    gev_pool_free(f->pool);
    if (f->e)
        free_event(f);
    if (f->pipe[0] >= 0)
        close(f->pipe[0]);
}
static long call_pool_join(fx *f, double t) { return gev_pool_join(f->pool, t); }
static long call_pool_available(fx *f, double t) { return gev_pool_wait_available(f->pool, t); }
static long call_pool_kill(fx *f, double t) { return gev_pool_kill(f->pool, t); }

static const family f_pool_join = { "gev_pool_join", make_pool_waiting, call_pool_join,
                                    set_event, free_pool, false, false };
static const family f_pool_available = { "gev_pool_wait_available", make_pool_waiting,
                                         call_pool_available, set_event, free_pool,
                                         false, false };
static const family f_pool_kill = { "gev_pool_kill", make_pool_busy, call_pool_kill,
                                    end_target, free_pool, false, false };

static void test_pool(void **state)
{
    run_family(&f_pool_join);
    run_family(&f_pool_available);
    run_family(&f_pool_kill);
}

/* ---- signals, children, gev_run, servers ------------------------------------ */

static long call_signal(fx *f, double t) { (void)f; return gev_signal_wait(SIGUSR1, t); }
static void raise_usr1(fx *f) { (void)f; raise(SIGUSR1); }

static int exit_on_pipe(void *arg)
{
    int *pipefd = arg;
    char c;
    close(pipefd[1]);
    return read(pipefd[0], &c, 1) == 1 ? 7 : 8;
}

/* A child that exits once its pipe is written to (or closed). */
static void make_child(fx *f)
{
    assert_int_equal(pipe(f->pipe), 0);
    f->pid = gevtest_fork(exit_on_pipe, f->pipe);
    close(f->pipe[0]);
    f->pipe[0] = -1;
}
static long call_waitpid(fx *f, double t)
{
    int st = 0;
    int rc = gev_waitpid(f->pid, &st, t);
    if (rc == f->pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 7))
        return -2;
    if (rc == f->pid)
        f->pid = 0;                 /* reaped */
    return rc;
}
static void free_child(fx *f)
{
    end_target(f);
    if (f->pid > 0)
        assert_int_equal(waitpid(f->pid, NULL, 0), f->pid);
}

static const family f_signal = { "gev_signal_wait", NULL, call_signal, raise_usr1, NULL,
                                 false, false };
static const family f_waitpid = { "gev_waitpid", make_child, call_waitpid, end_target,
                                  free_child, false, false };

static void test_signal_wait(void **state) { run_family(&f_signal); }
static void test_waitpid(void **state) { run_family(&f_waitpid); }

static void *sleep_then_log(void *arg)
{
    (void)arg;
    gev_sleep(WAIT_BEFORE_END);
    gevtest_log("slept");
    return NULL;
}

/* gev_run from main: a limitless one returns once the work is done. */
static void test_run(void **state)
{
    for (size_t i = 0; i < NVALUES; i++) {
        const value *v = &values[i];
        gevtest_log_reset();
        gev_greenlet *g = gev_spawn(sleep_then_log, NULL);
        double t0 = gevtest_now();
        errno = 0;
        int rc = gev_run(v->v);
        int err = errno;
        double took = gevtest_now() - t0;
        bool ok;
        if (v->kind == FOREVER)
            ok = rc == 0 && strcmp(gevtest_log_str(), "slept") == 0;
        else
            ok = rc == -1 && err == (v->kind == NOTNUM ? EINVAL : ETIMEDOUT) &&
                 took < QUICK && gevtest_log_str()[0] == '\0';
        if (!ok)
            fail_msg("gev_run(%s): %d %s after %.3f s, log \"%s\"", v->name, rc,
                     strerrorname_np(err), took, gevtest_log_str());
        assert_int_equal(gev_join(g, 5.0), 0);
        gev_release(g);
    }
}

static void handler_nop(int fd, const struct sockaddr *peer, socklen_t len, void *arg)
{
    (void)fd; (void)peer; (void)len; (void)arg;
}

/* A NaN stop is refused: the server still runs and stops afterwards. */
static void test_server_stop_nan(void **state)
{
    int lfd = gev_tcp_listen("127.0.0.1", "0", 8);
    assert_ge(lfd, 0);
    gev_server *s = gev_server_new(lfd, handler_nop, NULL);
    assert_non_null(s);
    assert_int_equal(gev_server_start(s), 0);
    assert_fails(gev_server_stop(s, NAN), EINVAL);
    assert_int_equal(gev_server_start(s), -1);
    assert_int_equal(errno, EALREADY);          /* still running */
    assert_int_equal(gev_server_stop(s, INFINITY), 0);
    gev_server_free(s);
}

/* ---- the reported cases ---------------------------------------------------- */

/* A scope without limit armed a timer whose deadline wrapped: the hub then
 * waited in the backend for ever, and the sleep never returned. */
static void test_infinite_scope_then_sleep(void **state)
{
    gev_timeout *to = gev_timeout_start(INFINITY);
    assert_non_null(to);
    double t0 = gevtest_now();
    assert_int_equal(gev_sleep(0.1), 0);
    double took = gevtest_now() - t0;
    assert_ge(took, 0.09);
    assert_lt(took, 5.0);
    assert_false(gev_timeout_expired(to));
    gev_timeout_cancel(to);
}

static void *recv_forever(void *arg)
{
    int *fds = arg;
    char c;
    ssize_t r = gev_recv(fds[0], &c, 1, 0, INFINITY);
    gevtest_log("recv:%zd:%s", r, r == 1 ? "0" : strerrorname_np(errno));
    return NULL;
}

static void test_recv_infinity_waits(void **state)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    gev_greenlet *g = gev_spawn(recv_forever, fds);
    assert_int_equal(gev_sleep(WAIT_BEFORE_END), 0);
    assert_log("");
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(gev_join(g, 5.0), 0);
    assert_log("recv:1:0");
    gev_release(g);
    gev_close(fds[0]);
    gev_close(fds[1]);
}

/* GEV_FOREVER in main with nothing else to run would wait for ever. */
static void test_sleep_forever_in_main_deadlocks(void **state)
{
    assert_fails(gev_sleep(GEV_FOREVER), EDEADLK);
    assert_fails(gev_sleep(INFINITY), EDEADLK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_recv_infinity_waits),
        gevtest(test_sleep_forever_in_main_deadlocks),
        gevtest(test_sleep),
        gevtest(test_sleep_until),
        gevtest(test_timeout_scope),
        gevtest(test_spawn_later),
        gevtest(test_join),
        gevtest(test_kill),
        gevtest(test_kill_nan_kills_nothing),
        gevtest(test_fd_waits),
        gevtest(test_fd_sends),
        gevtest(test_accept),
        gevtest(test_connect),
        gevtest(test_getaddrinfo),
        gevtest(test_sync_objects),
        gevtest(test_pool),
        gevtest(test_signal_wait),
        gevtest(test_waitpid),
        gevtest(test_run),
        gevtest(test_server_stop_nan),
        gevtest(test_infinite_scope_then_sleep),    /* last: it hung */
    };
    return cmocka_run_group_tests_name("timeout-values", tests, NULL, NULL);
}
