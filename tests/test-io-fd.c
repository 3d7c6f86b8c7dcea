/* Cooperative IO on plain descriptors: gev_wait_fd, gev_read, gev_write,
 * the fast path, timeouts, EBUSY, kills, lazy disarm, SIGPIPE. */
#include "config.h"
#include "gevtest.h"
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hub.h"

/* A non-blocking pipe, as gev expects. */
static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void close_pair(int p[2])
{
    assert_int_equal(gev_close(p[0]), 0);
    assert_int_equal(gev_close(p[1]), 0);
}

static void *log_token(void *arg)
{
    gevtest_log("%s", (const char *)arg);
    return NULL;
}

/* ---- arguments ------------------------------------------------------------ */

static void test_nonblock(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_false(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(gev_nonblock(p[0]), 0);
    assert_true(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(gev_nonblock(p[0]), 0);       /* already: fine */
    assert_fails(gev_nonblock(-1), EBADF);
    close_pair(p);
}

static void test_bad_arguments(void **state)
{
    int p[2];
    char buf[4];
    make_pipe(p);
    assert_fails(gev_read(-1, buf, sizeof buf, 1), EBADF);
    assert_fails(gev_write(-5, buf, sizeof buf, 1), EBADF);
    assert_fails(gev_wait_fd(-1, GEV_READ, 1), EBADF);
    assert_fails(gev_read(p[0], NULL, 10, 1), EFAULT);
    assert_fails(gev_write(p[1], NULL, 10, 1), EFAULT);
    assert_int_equal(gev_write(p[1], NULL, 0, 1), 0);
    assert_fails(gev_wait_fd(p[0], 0, 1), EINVAL);
    assert_fails(gev_wait_fd(p[0], 4, 1), EINVAL);
    assert_fails(gev_wait_fd(p[0], GEV_READ | 8, 1), EINVAL);
    close_pair(p);
    /* Closed numbers: the syscall or the loop says EBADF, nothing crashes. */
    assert_fails(gev_read(p[0], buf, sizeof buf, 1), EBADF);
    assert_fails(gev_wait_fd(p[0], GEV_READ, 1), EBADF);
    assert_fails(gev_wait_fd(p[0], GEV_READ, 0), EBADF);
    assert_fails(gev_close(p[0]), EBADF);
    assert_fails(gev_close(-1), EBADF);
}

/* ---- timeouts ------------------------------------------------------------ */

static void test_read_timeout(void **state)
{
    int p[2];
    char buf[4];
    make_pipe(p);
    double t0 = gevtest_now();
    assert_fails(gev_read(p[0], buf, sizeof buf, 0.05), ETIMEDOUT);
    double dt = gevtest_now() - t0;
    assert_ge(dt, 0.045);
    assert_lt(dt, 2.0);
    t0 = gevtest_now();
    assert_fails(gev_wait_read(p[0], 0.05), ETIMEDOUT);
    assert_ge(gevtest_now() - t0, 0.045);
    close_pair(p);
}

/* Timeout 0: done at once if possible, else ETIMEDOUT, and never a switch
 * (the ready greenlet logs only once main yields). */
static void test_timeout_zero(void **state)
{
    int p[2];
    char buf[8];
    make_pipe(p);
    gev_greenlet *g = gev_spawn(log_token, "other");
    assert_fails(gev_read(p[0], buf, sizeof buf, 0), ETIMEDOUT);
    assert_fails(gev_wait_read(p[0], 0), ETIMEDOUT);
    assert_int_equal(gev_wait_write(p[1], 0), GEV_WRITE);
    assert_int_equal(gev_write(p[1], "hi", 2, 0), 2);
    assert_int_equal(gev_wait_read(p[0], 0), GEV_READ);
    assert_int_equal(gev_wait_fd(p[0], GEV_READ | GEV_WRITE, 0), GEV_READ);
    assert_int_equal(gev_read(p[0], buf, sizeof buf, 0), 2);
    gevtest_log("main");
    assert_int_equal(gev_sleep(0), 0);
    assert_log("main other");
    gev_release(g);
    close_pair(p);
}

/* ---- the fast path ---------------------------------------------------------- */

static void test_fast_path_does_not_switch(void **state)
{
    int sv[2];
    char buf[8];
    gevtest_socketpair(sv);
    assert_int_equal(gev_write(sv[1], "data", 4, 1), 4);
    gev_greenlet *g = gev_spawn(log_token, "other");
    /* Data waits: the read returns without going near the hub, so the
     * ready greenlet has not run yet. */
    assert_int_equal(gev_read(sv[0], buf, sizeof buf, 1), 4);
    assert_int_equal(gev_write(sv[0], "back", 4, 1), 4);
    assert_int_equal(gev_recv(sv[1], buf, sizeof buf, 0, 1), 4);
    gevtest_log("main");
    assert_int_equal(gev_join(g, 1), 0);
    assert_log("main other");
    /* No watcher was ever needed. */
    assert_false(gev__loop_alive(gev__hub_loop(gev__hub())));
    gev_release(g);
    close_pair(sv);
}

static void *read_and_log(void *arg)
{
    int fd = *(int *)arg;
    char buf[16] = {0};
    gevtest_log("wait");
    ssize_t n = gev_read(fd, buf, sizeof buf - 1, 5);
    if (n >= 0)
        gevtest_log("got:%s", buf);
    else
        gevtest_log("err:%d", errno);
    return NULL;
}

static void test_read_waits_for_data(void **state)
{
    int p[2];
    make_pipe(p);
    gev_greenlet *g = gev_spawn(read_and_log, &p[0]);
    assert_int_equal(gev_sleep(0), 0);
    gevtest_log("write");
    assert_int_equal(gev_write(p[1], "hello", 5, 1), 5);
    assert_int_equal(gev_join(g, 5), 0);
    assert_log("wait write got:hello");
    gev_release(g);
    close_pair(p);
}

static void test_eof_returns_zero(void **state)
{
    int p[2];
    char buf[4];
    make_pipe(p);
    gev_greenlet *g = gev_spawn(read_and_log, &p[0]);
    assert_int_equal(gev_sleep(0), 0);
    assert_int_equal(gev_close(p[1]), 0);
    assert_int_equal(gev_join(g, 5), 0);
    assert_log("wait got:");
    assert_int_equal(gev_read(p[0], buf, sizeof buf, 1), 0);   /* again, at once */
    assert_int_equal(gev_close(p[0]), 0);
    gev_release(g);
}

/* ---- one waiter per direction --------------------------------------------- */

static void test_second_reader_gets_ebusy(void **state)
{
    int sv[2];
    char buf[4];
    gevtest_socketpair(sv);
    gev_greenlet *g = gev_spawn(read_and_log, &sv[0]);
    assert_int_equal(gev_sleep(0), 0);
    assert_fails(gev_read(sv[0], buf, sizeof buf, 1), EBUSY);
    assert_fails(gev_wait_fd(sv[0], GEV_READ | GEV_WRITE, 1), EBUSY);
    /* The other direction is free. */
    assert_int_equal(gev_wait_write(sv[0], 1), GEV_WRITE);
    assert_int_equal(gev_write(sv[1], "ok", 2, 1), 2);
    assert_int_equal(gev_join(g, 5), 0);
    assert_log("wait got:ok");
    /* Free again once the first waiter has gone. */
    assert_fails(gev_read(sv[0], buf, sizeof buf, 0.01), ETIMEDOUT);
    gev_release(g);
    close_pair(sv);
}

/* ---- cancellation ------------------------------------------------------------- */

static void *read_twice(void *arg)
{
    int fd = *(int *)arg;
    char buf[4];
    ssize_t n = gev_read(fd, buf, sizeof buf, GEV_FOREVER);
    gevtest_log("first:%zd:%d", n, errno);
    n = gev_read(fd, buf, sizeof buf, GEV_FOREVER);   /* data waits now */
    gevtest_log("second:%zd:%d", n, errno);
    return NULL;
}

static void test_kill_during_read(void **state)
{
    int p[2];
    make_pipe(p);
    gev_greenlet *g = gev_spawn(read_twice, &p[0]);
    assert_int_equal(gev_sleep(0), 0);
    assert_int_equal(gev_write(p[1], "x", 1, 1), 1);   /* ready, but the kill comes first */
    assert_int_equal(gev_kill(g, 1), 0);
    assert_true(gev_killed(g));
    char want[64];
    snprintf(want, sizeof want, "first:-1:%d second:-1:%d", ECANCELED, ECANCELED);
    assert_log(want);
    gev_release(g);
    close_pair(p);
}

static void test_scoped_timeout_ends_read(void **state)
{
    int p[2];
    char buf[4];
    make_pipe(p);
    gev_timeout *t = gev_timeout_start(0.03);
    double t0 = gevtest_now();
    assert_fails(gev_read(p[0], buf, sizeof buf, GEV_FOREVER), ETIMEDOUT);
    assert_lt(gevtest_now() - t0, 2.0);
    /* Expired: the next call fails at once, even one that could complete. */
    assert_fails(gev_write(p[1], "x", 1, 0), ETIMEDOUT);
    gev_timeout_cancel(t);
    assert_int_equal(gev_write(p[1], "x", 1, 0), 1);
    assert_int_equal(gev_read(p[0], buf, sizeof buf, 0), 1);
    close_pair(p);
}

/* ---- no stale wake-up: a wake meant for an earlier wait (an fd event that
 * arrives after the wait ended by its timeout) never ends a later one ---- */

static void *read_then_sleep(void *arg)
{
    int fd = *(int *)arg;
    char buf[4];
    ssize_t n = gev_read(fd, buf, sizeof buf, 0.02);
    gevtest_log("read:%s", n == 1 ? "data" : errno == ETIMEDOUT ? "timeout" : "other");
    /* Whichever source lost must not cut this sleep short. */
    double t0 = gevtest_now();
    gev_sleep(0.05);
    gevtest_log("slept:%s", gevtest_now() - t0 >= 0.045 ? "full" : "short");
    return NULL;
}

static void test_fd_and_deadline_in_one_iteration(void **state)
{
    int p[2];
    make_pipe(p);
    gev_greenlet *g = gev_spawn(read_then_sleep, &p[0]);
    assert_int_equal(gev_sleep(0), 0);
    /* Without yielding, let the deadline pass and make the fd ready, so the
     * next poll sees both. */
    double t0 = gevtest_now();
    while (gevtest_now() - t0 < 0.04)
        ;
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(gev_join(g, 5), 0);
    const char *log = gevtest_log_str();
    assert_true(strcmp(log, "read:data slept:full") == 0 ||
                strcmp(log, "read:timeout slept:full") == 0);
    gev_release(g);
    close_pair(p);
}

/* ---- lazy disarm ------------------------------------------------------------- */

struct pingpong { int fd; int rounds; bool first; };

static void *pingpong_side(void *arg)
{
    struct pingpong *pp = arg;
    char c = 'x';
    for (int i = 0; i < pp->rounds; i++) {
        if (pp->first && gev_write(pp->fd, &c, 1, 5) != 1)
            return (void *)1;
        if (gev_read(pp->fd, &c, 1, 5) != 1)
            return (void *)1;
        if (!pp->first && gev_write(pp->fd, &c, 1, 5) != 1)
            return (void *)1;
    }
    return NULL;
}

/* Watchers stay armed between waits, keep working across many cycles, and
 * never keep gev_run() alive once nobody waits. */
static void test_lazy_disarm_many_cycles(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    struct pingpong a = { sv[0], 5000, true }, b = { sv[1], 5000, false };
    gev_greenlet *g[2] = { gev_spawn(pingpong_side, &a), gev_spawn(pingpong_side, &b) };
    assert_int_equal(gev_joinall(g, 2, 10), 0);
    assert_null(gev_value(g[0]));
    assert_null(gev_value(g[1]));
    gev__loop *loop = gev__hub_loop(gev__hub());
    assert_false(gev__loop_alive(loop));
    /* gev_run returns at once, and a wait nothing can end is a deadlock
     * (gev_run(FOREVER), not a finite timeout: see the report on hub.c). */
    double t0 = gevtest_now();
    assert_int_equal(gev_run(GEV_FOREVER), 0);
    assert_lt(gevtest_now() - t0, 1.0);
    gev__wait_begin();
    assert_int_equal(gev__wait(GEV__FOREVER), EDEADLK);
    /* The armed-but-idle watchers still work for the next wait. */
    struct pingpong c = { sv[0], 3, true }, d = { sv[1], 3, false };
    gev_greenlet *h[2] = { gev_spawn(pingpong_side, &c), gev_spawn(pingpong_side, &d) };
    gevtest_join_release(h, 2, 5);
    gevtest_release_all(g, 2);
    close_pair(sv);
}

/* ---- writes ----------------------------------------------------------------- */

static void *fill_then_write(void *arg)
{
    int fd = *(int *)arg;
    char block[4096];
    memset(block, 'w', sizeof block);
    while (gev_write(fd, block, sizeof block, 0) > 0)
        ;
    gevtest_log("full");
    ssize_t n = gev_write(fd, block, sizeof block, 5);
    gevtest_log("wrote:%zd", n);
    return NULL;
}

static void test_write_waits_for_room(void **state)
{
    int p[2];
    char buf[65536];
    make_pipe(p);
    gev_greenlet *g = gev_spawn(fill_then_write, &p[1]);
    assert_int_equal(gev_sleep(0), 0);
    gevtest_log("drain");
    while (gev_read(p[0], buf, sizeof buf, 0) > 0)
        ;
    assert_int_equal(gev_join(g, 5), 0);
    assert_log("full drain wrote:4096");
    gev_release(g);
    close_pair(p);
}

static bool sigpipe_pending(void)
{
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, SIGPIPE);
}

static bool sigpipe_blocked(void)
{
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    return sigismember(&set, SIGPIPE);
}

/* The default disposition of SIGPIPE kills: EPIPE must come back instead,
 * for pipes and sockets, and leave no signal pending or mask changed. */
static void test_epipe_without_sigpipe(void **state)
{
    int p[2], sv[2];
    make_pipe(p);
    assert_int_equal(gev_close(p[0]), 0);
    assert_fails(gev_write(p[1], "x", 1, 1), EPIPE);
    assert_false(sigpipe_pending());
    assert_false(sigpipe_blocked());
    assert_int_equal(gev_close(p[1]), 0);

    gevtest_socketpair(sv);
    assert_int_equal(gev_close(sv[1]), 0);
    assert_fails(gev_write(sv[0], "x", 1, 1), EPIPE);
    assert_fails(gev_send(sv[0], "x", 1, 0, 1), EPIPE);
    assert_fails(gev_sendall(sv[0], "xy", 2, 1), EPIPE);
    assert_false(sigpipe_pending());
    assert_int_equal(gev_close(sv[0]), 0);
}

/* A SIGPIPE the application had pending (blocked) before stays pending. */
static void test_epipe_keeps_foreign_sigpipe(void **state)
{
    int p[2];
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    raise(SIGPIPE);
    make_pipe(p);
    assert_int_equal(gev_close(p[0]), 0);
    assert_fails(gev_write(p[1], "x", 1, 1), EPIPE);
    assert_true(sigpipe_pending());
    assert_true(sigpipe_blocked());
    const struct timespec zero = { 0, 0 };
    assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGPIPE);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(gev_close(p[1]), 0);
}

/* ---- other kinds of file and context ------------------------------------- */

static void test_regular_file_is_always_ready(void **state)
{
    char path[] = "/tmp/gev-io-fd-XXXXXX";
    int fd = mkstemp(path);
    assert_ge(fd, 0);
    unlink(path);
    assert_int_equal(gev_write(fd, "abc", 3, 1), 3);
    assert_int_equal(gev_wait_read(fd, 1), GEV_READ);
    assert_int_equal(gev_wait_fd(fd, GEV_READ | GEV_WRITE, GEV_FOREVER), GEV_READ | GEV_WRITE);
    char buf[4];
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(gev_read(fd, buf, sizeof buf, 1), 3);
    assert_int_equal(gev_close(fd), 0);
}

static void *nothing(void *arg) { return arg; }

static int link_fd;
static ssize_t link_read_ready, link_read_empty;
static int link_errno;

static void read_in_link(gev_greenlet *g, void *arg)
{
    char buf[4];
    link_read_ready = gev_read(link_fd, buf, sizeof buf, GEV_FOREVER);
    link_read_empty = gev_read(link_fd, buf, sizeof buf, GEV_FOREVER);
    link_errno = errno;
}

/* In hub context a call that can complete at once does; one that would
 * have to wait fails with EDEADLK instead of switching. */
static void test_hub_context(void **state)
{
    int p[2];
    make_pipe(p);
    assert_int_equal(gev_write(p[1], "x", 1, 1), 1);
    link_fd = p[0];
    gev_greenlet *g = gev_spawn(nothing, NULL);
    assert_int_equal(gev_link(g, read_in_link, NULL), 0);
    assert_int_equal(gev_join(g, 1), 0);
    assert_int_equal(gev_sleep(0.01), 0);
    assert_int_equal(link_read_ready, 1);
    assert_int_equal(link_read_empty, -1);
    assert_int_equal(link_errno, EDEADLK);
    gev_release(g);
    close_pair(p);
}

static void test_wait_both_directions(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    assert_int_equal(gev_wait_fd(sv[0], GEV_READ | GEV_WRITE, 1), GEV_WRITE);
    assert_int_equal(gev_write(sv[1], "x", 1, 1), 1);
    assert_int_equal(gev_wait_fd(sv[0], GEV_READ | GEV_WRITE, 1) & GEV_READ, GEV_READ);
    assert_int_equal(gev_wait_fd(sv[0], GEV_READ, 1), GEV_READ);
    close_pair(sv);
}

/* After fork and gev_reinit, a watcher the parent left armed (lazily) is
 * registered with the child's new backend and wakes the child's waits. */
static int reinit_and_read_c(void *arg)
{
    int fd = *(int *)arg;
    char c;
    return gev_reinit() == 0 && gev_read(fd, &c, 1, 5) == 1 && c == 'c' ? 0 : 1;
}

static void test_fork_keeps_armed_watchers_working(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    gev_greenlet *g = gev_spawn(read_and_log, &sv[0]);
    assert_int_equal(gev_sleep(0), 0);
    assert_int_equal(gev_write(sv[1], "p", 1, 1), 1);
    assert_int_equal(gev_join(g, 5), 0);      /* sv[0] stays armed for reading */
    gev_release(g);
    pid_t pid = gevtest_fork(reinit_and_read_c, &sv[0]);
    assert_int_equal(gev_sleep(0.05), 0);
    assert_int_equal(gev_write(sv[1], "c", 1, 1), 1);
    gevtest_assert_exited(gevtest_reap(pid), 0);
    close_pair(sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_nonblock),
        gevtest(test_bad_arguments),
        gevtest(test_read_timeout),
        gevtest(test_timeout_zero),
        gevtest(test_fast_path_does_not_switch),
        gevtest(test_read_waits_for_data),
        gevtest(test_eof_returns_zero),
        gevtest(test_second_reader_gets_ebusy),
        gevtest(test_kill_during_read),
        gevtest(test_scoped_timeout_ends_read),
        gevtest(test_fd_and_deadline_in_one_iteration),
        gevtest(test_lazy_disarm_many_cycles),
        gevtest(test_write_waits_for_room),
        gevtest(test_epipe_without_sigpipe),
        gevtest(test_epipe_keeps_foreign_sigpipe),
        gevtest(test_regular_file_is_always_ready),
        gevtest(test_hub_context),
        gevtest(test_wait_both_directions),
        gevtest(test_fork_keeps_armed_watchers_working),
    };
    return cmocka_run_group_tests_name("io-fd", tests, NULL, NULL);
}
