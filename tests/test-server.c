/* gev_server: lifecycle (refused before start / served / refused after
 * stop), max_clients, stop with handlers that do not finish (or ignore the
 * kill), listener errors, fd exhaustion (backoff without spinning), the
 * accept batch, stop and free from a handler, bad arguments. */
#include "gevtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------- */

static char port_str[8];

/* A TCP socket bound to 127.0.0.1 on an ephemeral port; listening or not.
 * Its port goes to port_str. */
static int bound_socket(bool listening)
{
    int fd = gev_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    assert_ge(fd, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (listening)
        assert_int_equal(listen(fd, 128), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(port_str, sizeof port_str, "%u", (unsigned)ntohs(sa.sin_port));
    return fd;
}

static int connect_client(void)
{
    return gev_tcp_connect("127.0.0.1", port_str, 2.0);
}

/* Connect, send "ping", expect "ping" back: 0, or the errno that failed. */
static int round_trip(void)
{
    char buf[8];
    int fd = connect_client();
    if (fd < 0)
        return errno;
    int err = 0;
    if (gev_sendall(fd, "ping", 4, 2.0) != 4)
        err = errno;
    else if (gev_recv(fd, buf, sizeof buf, 0, 2.0) != 4)
        err = errno ? errno : EPROTO;
    gev_close(fd);
    return err;
}

/* Echo until EOF. */
static void echo_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    char buf[256];
    ssize_t n;
    (void)arg;
    assert_int_equal(peer->sa_family, AF_INET);
    assert_int_equal(peerlen, sizeof(struct sockaddr_in));
    while ((n = gev_recv(fd, buf, sizeof buf, 0, 5.0)) > 0)
        gev_sendall(fd, buf, (size_t)n, 5.0);
}

/* Logs "start<byte>" with the first byte the client sends, then holds the
 * connection until the client closes it, and logs "end<byte>". */
static void named_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    char c, buf[16];
    (void)peer; (void)peerlen; (void)arg;
    if (gev_recv(fd, &c, 1, 0, 5.0) != 1)
        return;
    gevtest_log("start%c", c);
    while (gev_recv(fd, buf, sizeof buf, 0, 5.0) > 0)
        ;
    gevtest_log("end%c", c);
}

static int client_named(char name)
{
    int fd = connect_client();
    assert_ge(fd, 0);
    assert_int_equal(gev_sendall(fd, &name, 1, 1.0), 1);
    return fd;
}

/* serve_forever in a greenlet: value is (void *)(intptr_t)(rc == 0 ? 0 : errno). */
static void *serve_forever_main(void *server)
{
    int rc = gev_server_serve_forever(server);
    return (void *)(intptr_t)(rc == 0 ? 0 : errno);
}

/* Sleep in small steps until cond() or `seconds` pass. */
static bool wait_until(bool (*cond)(void), double seconds)
{
    double end = gevtest_now() + seconds;
    while (!cond() && gevtest_now() < end)
        gev_sleep(0.005);
    return cond();
}

/* ---- bad input ------------------------------------------------------------------ */

static void noop_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)fd; (void)peer; (void)peerlen; (void)arg;
}

static void test_bad_arguments(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    errno = 0;
    assert_null(gev_server_new(-1, noop_handler, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gev_server_new(fds[0], NULL, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gev_server_new(fds[0], noop_handler, NULL));    /* not a socket */
    assert_int_equal(errno, ENOTSOCK);
    assert_fails(gev_server_start(NULL), EINVAL);
    assert_fails(gev_server_serve_forever(NULL), EINVAL);
    assert_fails(gev_server_stop(NULL, 0), EINVAL);
    assert_fails(gev_server_set_max_clients(NULL, 1), EINVAL);
    gev_server_free(NULL);
    close(fds[0]);
    close(fds[1]);

    gev_server *s = gev_server_new(bound_socket(true), noop_handler, NULL);
    assert_non_null(s);
    assert_int_equal(gev_server_start(s), 0);
    assert_fails(gev_server_start(s), EALREADY);
    assert_int_equal(gev_server_stop(s, 0), 0);
    assert_fails(gev_server_start(s), EINVAL);     /* the listener is gone */
    assert_int_equal(gev_server_serve_forever(s), 0);   /* already stopped */
    gev_server_free(s);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void test_refused_served_refused(void **state)
{
    /* Bound but not listening: gev_server_start() does the listen(). */
    int lfd = bound_socket(false);
    gev_server *s = gev_server_new(lfd, echo_handler, NULL);
    assert_non_null(s);
    assert_int_equal(round_trip(), ECONNREFUSED);
    assert_int_equal(gev_server_start(s), 0);
    assert_int_equal(round_trip(), 0);
    assert_int_equal(round_trip(), 0);
    assert_int_equal(gev_server_stop(s, 1.0), 0);
    assert_int_equal(round_trip(), ECONNREFUSED);
    gev_server_free(s);
}

static gev_server *stop_target;

static void *stop_later(void *arg)
{
    gev_sleep(0.05);
    gevtest_log("stopping");
    assert_int_equal(gev_server_stop(stop_target, 1.0), 0);
    return arg;
}

static void test_serve_forever_returns_after_stop(void **state)
{
    stop_target = gev_server_new(bound_socket(true), echo_handler, NULL);
    gev_greenlet *g = gev_spawn(stop_later, NULL);
    assert_int_equal(gev_server_serve_forever(stop_target), 0);
    gevtest_log("returned");
    assert_log("stopping returned");
    assert_int_equal(round_trip(), ECONNREFUSED);
    gev_join(g, 1.0);
    gev_release(g);
    gev_server_free(stop_target);
}

/* ---- max_clients ------------------------------------------------------------------------ */

static void test_max_clients(void **state)
{
    gev_server *s = gev_server_new(bound_socket(true), named_handler, NULL);
    assert_int_equal(gev_server_set_max_clients(s, 2), 0);
    assert_int_equal(gev_server_start(s), 0);
    int a = client_named('A'), b = client_named('B');
    gev_sleep(0.05);
    int c = client_named('C');      /* connects: it waits in the backlog */
    gev_sleep(0.2);
    assert_log("startA startB");    /* C is held back */
    gev_close(a);                   /* one of the two long handlers ends */
    gev_sleep(0.1);
    assert_log("startA startB endA startC");
    /* Raising the limit lets a waiting client in at once. */
    int d = client_named('D');
    gev_sleep(0.1);
    assert_log("startA startB endA startC");
    assert_int_equal(gev_server_set_max_clients(s, 3), 0);
    gev_sleep(0.1);
    assert_log("startA startB endA startC startD");
    gev_close(b);
    gev_close(c);
    gev_close(d);
    assert_int_equal(gev_server_stop(s, 2.0), 0);
    gev_server_free(s);
}

/* ---- stop with handlers that do not finish ------------------------------------------------ */

/* Would run for 10 s: only the kill after the stop timeout ends it. */
static void slow_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)fd; (void)peer; (void)peerlen; (void)arg;
    gevtest_log("handler");
    int rc = gev_sleep(10);
    gevtest_log("woke:%s", rc < 0 && errno == ECANCELED ? "ECANCELED" : "other");
}

/* Connect and wait until the handler runs. */
static int client_with_handler_running(void)
{
    int fd = connect_client();
    assert_ge(fd, 0);
    while (strstr(gevtest_log_str(), "handler") == NULL)
        gev_sleep(0.005);
    return fd;
}

/* Serve with `handler`, wait until it runs for a client, then stop with
 * `timeout`, expecting errno `err` (0: success).  Returns how long the stop
 * took; the server and the client's fd come back for more checks. */
static double timed_stop(gev_handler handler, double timeout, int err,
                         gev_server **server, int *client)
{
    gev_server *s = gev_server_new(bound_socket(true), handler, NULL);
    assert_int_equal(gev_server_start(s), 0);
    *client = client_with_handler_running();
    *server = s;
    double t0 = gevtest_now();
    if (err)
        assert_fails(gev_server_stop(s, timeout), err);
    else
        assert_int_equal(gev_server_stop(s, timeout), 0);
    return gevtest_now() - t0;
}

/* The server closes the client fd after the handler: the client sees EOF. */
static void assert_closed_by_server(int fd)
{
    char c;
    assert_int_equal(gev_recv(fd, &c, 1, 0, 2.0), 0);
    gev_close(fd);
}

static void test_stop_kills_after_timeout(void **state)
{
    gev_server *s;
    int fd;
    double took = timed_stop(slow_handler, 0.2, 0, &s, &fd);
    assert_true(took >= 0.19 && took < 1.0);
    assert_log("handler woke:ECANCELED");
    assert_closed_by_server(fd);
    gev_server_free(s);
}

/* Ignores the kill the only way a greenlet can: once killed, every
 * blocking call fails at once, so it cannot wait any more; it catches
 * ECANCELED and goes on computing (a bounded busy loop, 0.3 s) before it
 * returns.  The stop cannot preempt it, but returns as soon as it is done,
 * and the connection is closed. */
static void stubborn_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)fd; (void)peer; (void)peerlen; (void)arg;
    gevtest_log("handler");
    if (gev_sleep(10) == 0 || errno != ECANCELED)
        return;
    double end = gevtest_now() + 0.3;
    int refused = 0;
    while (gevtest_now() < end)         /* every blocking call fails now */
        refused += gev_sleep(0.01) < 0 && errno == ECANCELED;
    gevtest_log("ignored:%s", refused > 0 ? "yes" : "no");
}

static void test_stop_with_handler_ignoring_kill(void **state)
{
    gev_server *s;
    int fd;
    double took = timed_stop(stubborn_handler, 0.1, 0, &s, &fd);
    assert_true(took >= 0.39 && took < 1.5);     /* timeout + the busy loop */
    assert_log("handler ignored:yes");
    assert_closed_by_server(fd);
    assert_int_equal(round_trip(), ECONNREFUSED);
    gev_server_free(s);
}

/* Waits in a worker thread, where a kill cannot reach it: it really
 * ignores the kill while the hub goes on.  stop gives up after the kill's
 * grace (1 s) with ETIMEDOUT; the server still owns the handler and closes
 * its connection once it returns, even after gev_server_free(). */
static void *sleep_in_thread(void *arg)
{
    usleep(2500 * 1000);
    return arg;
}

static void pool_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)fd; (void)peer; (void)peerlen; (void)arg;
    gevtest_log("handler");
    gev_threadpool_run(sleep_in_thread, NULL, NULL);
    gevtest_log("done");
}

static void test_stop_gives_up_on_unkillable_handler(void **state)
{
    gev_server *s;
    int fd;
    double took = timed_stop(pool_handler, 0.1, ETIMEDOUT, &s, &fd);
    assert_true(took >= 1.09 && took < 2.0);     /* timeout + grace, not 2.5 s */
    assert_log("handler");
    assert_int_equal(round_trip(), ECONNREFUSED);
    gev_server_free(s);             /* the record stays until the handler ends */
    assert_closed_by_server(fd);
    assert_log("handler done");
}

/* ---- stop and free from inside ---------------------------------------------------------- */

static gev_server *self_server;

/* The first client's handler stops its own server; the other one is
 * waiting for its client and gets killed after the timeout. */
static void stopping_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    char c;
    (void)peer; (void)peerlen; (void)arg;
    if (gev_recv(fd, &c, 1, 0, 5.0) != 1)
        return;
    if (c == 'S') {
        gevtest_log("stop");
        int rc = gev_server_stop(self_server, 0.1);
        gevtest_log("stopped:%d", rc);
        gev_server_free(self_server);   /* the record lives until we return */
        gev_sendall(fd, "k", 1, 1.0);
    } else {
        gevtest_log("wait");
        gev_recv(fd, &c, 1, 0, 5.0);
        gevtest_log("killed:%d", errno == ECANCELED);
    }
}

static void test_stop_and_free_from_handler(void **state)
{
    self_server = gev_server_new(bound_socket(true), stopping_handler, NULL);
    gev_greenlet *g = gev_spawn(serve_forever_main, self_server);
    gev_sleep(0.01);
    int w = client_named('W');
    gev_sleep(0.05);
    int s = client_named('S');
    char c;
    assert_int_equal(gev_recv(s, &c, 1, 0, 2.0), 1);
    assert_int_equal(gev_join(g, 2.0), 0);
    assert_null(gev_value(g));      /* serve_forever returned 0 */
    assert_log("wait stop killed:1 stopped:0");
    assert_closed_by_server(s);
    assert_closed_by_server(w);
    gev_release(g);
}

static void test_free_running_server(void **state)
{
    gev_server *s = gev_server_new(bound_socket(true), slow_handler, NULL);
    assert_int_equal(gev_server_start(s), 0);
    int fd = client_with_handler_running();
    gev_server_free(s);             /* kills the handler; nothing leaks */
    assert_log("handler woke:ECANCELED");
    assert_closed_by_server(fd);
    assert_int_equal(round_trip(), ECONNREFUSED);
}

/* ---- listener errors ----------------------------------------------------------------------- */

static int listener_fd;

static void *break_listener(void *how)
{
    gev_sleep(0.05);
    if (how)
        shutdown(listener_fd, SHUT_RDWR);   /* accept then says EINVAL */
    else
        gev_close(listener_fd);             /* closed behind the server's back */
    return NULL;
}

static void check_listener_error(void *how, int expected)
{
    listener_fd = bound_socket(true);
    gev_server *s = gev_server_new(listener_fd, echo_handler, NULL);
    gev_greenlet *g = gev_spawn(break_listener, how);
    double t0 = gevtest_now();
    assert_fails(gev_server_serve_forever(s), expected);
    assert_lt(gevtest_now() - t0, 1.0);
    gev_join(g, 1.0);
    gev_release(g);
    gev_server_free(s);
}

static void test_listener_closed_ends_serve_forever(void **state)
{
    check_listener_error(NULL, EBADF);
}

static void test_listener_shut_down_ends_serve_forever(void **state)
{
    check_listener_error((void *)1, EINVAL);
}

/* ---- many connections at once ---------------------------------------------------------------- */

#define BURST 300
static int burst_served;

static void count_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)peer; (void)peerlen; (void)arg;
    burst_served++;
    gev_sendall(fd, "x", 1, 2.0);
}

static bool burst_done(void) { return burst_served == BURST; }

static void test_accept_burst(void **state)
{
    static int fds[BURST];
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * BURST + 64)
        skip();
    burst_served = 0;
    gev_server *s = gev_server_new(bound_socket(true), count_handler, NULL);
    assert_int_equal(gev_server_start(s), 0);
    for (int i = 0; i < BURST; i++)
        assert_ge((fds[i] = connect_client()), 0);
    assert_true(wait_until(burst_done, 5.0));
    for (int i = 0; i < BURST; i++) {
        char c;
        assert_int_equal(gev_recv(fds[i], &c, 1, 0, 2.0), 1);
        gev_close(fds[i]);
    }
    assert_int_equal(gev_server_stop(s, 1.0), 0);
    gev_server_free(s);
}

/* ---- fd exhaustion ------------------------------------------------------------------------- */

/* In a child with RLIMIT_NOFILE lowered: clients take every fd, so the
 * server's accept fails with EMFILE while connections wait.  It must back
 * off (CPU stays low) and serve again once clients close. */
#define NOFILE_LIMIT 64

static int greeted;

static void greet_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    char c;
    (void)peer; (void)peerlen; (void)arg;
    greeted++;
    gev_sendall(fd, "h", 1, 1.0);
    gev_recv(fd, &c, 1, 0, 10.0);       /* hold the fd until the client closes */
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define CHILD_CHECK(cond, code) do { if (!(cond)) { \
        fprintf(stderr, "fd exhaustion child: %s failed\n", #cond); _exit(code); } } while (0)

/* Open clients until the process is out of fds; returns how many. */
static int open_until_emfile(int *fds, int max)
{
    int n = 0;
    while (n < max && (fds[n] = connect_client()) >= 0)
        n++;
    CHILD_CHECK(n < max && errno == EMFILE, 10);
    return n;
}

/* How many of fds[from..n) the server greeted ("h" readable now). */
static int count_greeted(const int *fds, int from, int n)
{
    int count = 0;
    for (int i = from; i < n; i++) {
        char c;
        count += recv(fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK) == 1;
    }
    return count;
}

static int fd_exhaustion_child(void *arg)
{
    (void)arg;
    alarm(20);                      /* never outlive a failed test */
    struct rlimit rl;               /* the soft limit only: valgrind allows that */
    CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0, 11);
    rl.rlim_cur = NOFILE_LIMIT;
    CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, 11);
    gev_server *s = gev_server_new(bound_socket(true), greet_handler, NULL);
    CHILD_CHECK(s && gev_server_start(s) == 0, 12);
    /* Whoever of client and server takes the last fd, end with a client
     * that the server cannot accept: keep one fd back, then use it. */
    int fds[NOFILE_LIMIT], reserve = dup(2);
    CHILD_CHECK(reserve >= 0, 17);
    int n = open_until_emfile(fds, NOFILE_LIMIT - 1);
    close(reserve);
    CHILD_CHECK((fds[n++] = connect_client()) >= 0, 18);
    gev_sleep(0.1);
    int before = count_greeted(fds, 0, n);
    CHILD_CHECK(before < n, 13);                /* some wait: accept hit EMFILE */

    /* The server keeps failing with EMFILE: it must not spin. */
    double cpu0 = cpu_seconds(), t0 = gevtest_now();
    gev_sleep(0.5);
    double cpu = cpu_seconds() - cpu0, wall = gevtest_now() - t0;
    fprintf(stderr, "fd exhaustion: %d clients, %d served, CPU %.3f s over %.3f s\n",
            n, before, cpu, wall);
    CHILD_CHECK(cpu < 0.25 * wall, 14);

    /* Close the greeted clients: their handlers end, fds come back, and
     * the server (after at most a 1 s backoff) serves again: a new client,
     * and the ones that waited in the backlog.  (Not those under valgrind:
     * it emulates the fd limit by closing what accept returned above it,
     * so the waiting connections are gone.) */
    for (int i = 0; i < n; i++)
        if (count_greeted(fds, i, i + 1)) {
            gev_close(fds[i]);
            fds[i] = -1;
        }
    int fresh = connect_client();
    CHILD_CHECK(fresh >= 0, 19);
    char c;
    CHILD_CHECK(gev_recv(fresh, &c, 1, 0, 3.0) == 1, 15);
    gev_close(fresh);
    const char *preload = getenv("LD_PRELOAD");
    int later = 0;
    for (int i = 0; i < n; i++)
        later += fds[i] >= 0 && count_greeted(fds, i, i + 1);
    CHILD_CHECK(later > 0 || (preload && strstr(preload, "vgpreload")), 20);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            gev_close(fds[i]);
    CHILD_CHECK(gev_server_stop(s, 1.0) == 0, 16);
    gev_server_free(s);
    gev_shutdown();
    return 0;
}

static void test_fd_exhaustion_backs_off(void **state)
{
    gev_shutdown();                 /* the child starts from a clean slate */
    pid_t pid = gevtest_fork(fd_exhaustion_child, NULL);
    int status = 0;
    if (gev_waitpid(pid, &status, 30.0) != pid) {
        kill(pid, SIGKILL);
        fail_msg("the fd exhaustion child hangs");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_bad_arguments),
        gevtest(test_refused_served_refused),
        gevtest(test_serve_forever_returns_after_stop),
        gevtest(test_max_clients),
        gevtest(test_stop_kills_after_timeout),
        gevtest(test_stop_with_handler_ignoring_kill),
        gevtest(test_stop_gives_up_on_unkillable_handler),
        gevtest(test_stop_and_free_from_handler),
        gevtest(test_free_running_server),
        gevtest(test_listener_closed_ends_serve_forever),
        gevtest(test_listener_shut_down_ends_serve_forever),
        gevtest(test_accept_burst),
        gevtest(test_fd_exhaustion_backs_off),
    };
    return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
