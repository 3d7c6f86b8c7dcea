/* Failure injection (a --enable-fault-injection build; core/fault.h).
 *
 * A representative program - spawn and sleep, a queue, a few messages
 * echoed through gev_server, a thread-pool call, a DNS lookup, a scoped
 * timeout - runs once to count the wrapped calls it makes (allocations,
 * mmap, socket, accept, pipe/eventfd/timerfd, pthread_create, watcher
 * starts), then once per N with the Nth of them failing, each run in a
 * child of its own.  Each must end cleanly: every failure reaches the
 * program as an error (ENOMEM, EMFILE, EAGAIN; a lookup's EAI_ code; a
 * connection the server dropped; a greenlet that could not start reports
 * itself killed), no crash, no hang (an alarm), no leak (LeakSanitizer, in
 * CI's ASan build of this test), and afterwards the same hub spawns, sleeps
 * and queues as usual. */
#include "gevtest.h"
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#if GEVTEST_UNDER_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* core/fault.c's test side (its header would route this file's own
 * allocations through the counter too). */
void gev__fault_arm(unsigned long nth);
unsigned long gev__fault_calls(void);
unsigned long gev__fault_sites(void);

/* ---- the program --------------------------------------------------------- */

static bool clean_errno(int err)
{
    return err == ENOMEM || err == EMFILE || err == ENFILE || err == EAGAIN;
}

/* Steps report here: ok, or failed cleanly (errno as a resource runs out),
 * or failed otherwise (the run fails). */
static int dirty;
static void step(const char *what, bool ok)
{
    int err = errno;                            /* set by the call just made */
    if (!ok && !clean_errno(err)) {
        fprintf(stderr, "step %s: unclean error %s\n", what, strerrorname_np(err));
        dirty++;
    }
}

static void *nap(void *arg)
{
    return (void *)(intptr_t)gev_sleep(0.001);
}

static void spawn_and_sleep(void)
{
    gev_greenlet *g[3];
    for (int i = 0; i < 3; i++) {
        g[i] = gev_spawn(nap, NULL);
        step("spawn", g[i] != NULL);
    }
    for (int i = 0; i < 3; i++)
        if (g[i]) {
            /* 0, or a greenlet that got no stack and ended killed */
            step("join", gev_join(g[i], 5.0) == 0);
            gev_release(g[i]);
        }
}

static void queue_round(void)
{
    gev_queue *q = gev_queue_new(4);
    step("queue_new", q != NULL);
    if (!q)
        return;
    for (intptr_t i = 0; i < 3; i++)
        step("queue_put", gev_queue_put(q, (void *)i, 1.0) == 0);
    void *item;
    while (gev_queue_size(q) > 0)
        step("queue_get", gev_queue_get(q, &item, 1.0) == 0);
    gev_queue_free(q);
}

static void echo_handler(int fd, const struct sockaddr *peer, socklen_t len, void *arg)
{
    char buf[64];
    ssize_t n;
    while ((n = gev_recv(fd, buf, sizeof buf, 0, 5.0)) > 0)
        if (gev_sendall(fd, buf, (size_t)n, 5.0) != n)
            break;
}

/* A connection the server dropped (its handler got no stack, or its accept
 * failed with EMFILE until the client gave up) is a clean outcome too. */
static void echo_round(void)
{
    int lfd = gev_tcp_listen("127.0.0.1", "0", 16);
    step("listen", lfd >= 0);
    if (lfd < 0)
        return;
    char port[16];
    snprintf(port, sizeof port, "%d", gevtest_local_port(lfd));
    gev_server *s = gev_server_new(lfd, echo_handler, NULL);
    step("server_new", s != NULL);
    if (!s) {
        gev_close(lfd);
        return;
    }
    int rc = gev_server_start(s);
    step("server_start", rc == 0);
    int fd = rc == 0 ? gev_tcp_connect("127.0.0.1", port, 5.0) : -1;
    if (rc == 0)
        step("connect", fd >= 0);
    for (int i = 0; fd >= 0 && i < 3; i++) {
        char buf[8];
        if (gev_sendall(fd, "hello", 5, 2.0) != 5)
            break;
        ssize_t n = gev_recv(fd, buf, sizeof buf, 0, 2.0);
        if (n <= 0)
            break;                              /* dropped, or timed out: clean */
        if (n != 5 || memcmp(buf, "hello", 5) != 0) {
            fprintf(stderr, "echo: wrong bytes back\n");
            dirty++;
        }
    }
    if (fd >= 0)
        gev_close(fd);
    gev_server_stop(s, 2.0);
    gev_server_free(s);
}

static void *add_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

static void pool_and_dns(void)
{
    void *r = NULL;
    int rc = gev_threadpool_run(add_one, (void *)41, &r);
    step("threadpool_run", rc == 0);
    if (rc == 0 && r != (void *)42) {
        fprintf(stderr, "threadpool: wrong result\n");
        dirty++;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    int e = gev_getaddrinfo("localhost", "80", &hints, &res, 5.0);
    if (e == EAI_SYSTEM)
        step("getaddrinfo", false);
    else if (e != 0 && e != EAI_MEMORY && e != EAI_AGAIN) {
        fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(e));
        dirty++;
    }
    if (res)
        freeaddrinfo(res);
}

static void scoped_timeout(void)
{
    gev_timeout *t = gev_timeout_start(0.001);
    step("timeout_start", t != NULL);
    if (!t)
        return;
    int rc = gev_sleep(1.0);
    if (!(rc == -1 && errno == ETIMEDOUT)) {
        fprintf(stderr, "scoped timeout: sleep gave %d\n", rc);
        dirty++;
    }
    gev_timeout_cancel(t);
}

static void program(void)
{
    spawn_and_sleep();
    queue_round();
    echo_round();
    pool_and_dns();
    scoped_timeout();
}

/* After the fault: the same hub works as usual, or the run is dirty. */
static void afterwards(void)
{
    gev__fault_arm(0);
    gev_greenlet *g = gev_spawn(nap, NULL);
    gev_queue *q = gev_queue_new(1);
    void *item = NULL;
    bool ok = g && gev_join(g, 5.0) == 0 && !gev_killed(g) && q &&
              gev_queue_put(q, (void *)1, 1.0) == 0 && gev_queue_get(q, &item, 1.0) == 0 &&
              item == (void *)1;
    if (g)
        gev_release(g);
    gev_queue_free(q);
    if (!ok) {
        fprintf(stderr, "the hub does not work after the fault\n");
        dirty++;
    }
}

/* ---- the walk ------------------------------------------------------------ */

static unsigned long fail_nth;

static int child(void *arg)
{
    alarm(30);                                  /* a hang dies by SIGALRM */
    signal(SIGPIPE, SIG_IGN);
    gev__fault_arm(fail_nth);
    program();
    unsigned long calls = gev__fault_calls(), sites = gev__fault_sites();
    afterwards();
    gev_shutdown();
    fprintf(stderr, "calls=%lu sites=%lu\n", calls, sites);
#if GEVTEST_UNDER_ASAN
    if (__lsan_do_recoverable_leak_check())
        dirty++;
#endif
    return dirty ? 1 : 0;
}

static void run_child(unsigned long nth, unsigned long *calls, unsigned long *sites)
{
    setenv("GEV_FAULT_TRACE", "1", 1);          /* the failing site, in a report */
    static char err[16384];
    fail_nth = nth;
    int st = gevtest_fork_capture(child, NULL, err, sizeof err);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("failing call %lu of the program: child status 0x%x%s\n%s", nth, st,
                 WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (hung)" : "", err);
    const char *c = strstr(err, "calls=");
    if (c)
        sscanf(c, "calls=%lu sites=%lu", calls, sites);
}

static void test_every_call_site_fails_cleanly(void **state)
{
    unsigned long total = 0, sites = 0, c = 0, s = 0;
    run_child(0, &total, &sites);
    assert_gt(total, 0);
    /* Calls from the thread pool's workers make the count vary a little
     * from run to run: walk past the first run's count. */
    unsigned long walked = 0;
    for (unsigned long n = 1; n <= total + 8; n++, walked++)
        run_child(n, &c, &s);
    print_message("fault injection: %lu wrapped calls at %lu distinct call sites, "
                  "each made to fail in turn (%lu runs)\n", total, sites, walked);
    assert_gt(sites, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_call_site_fails_cleanly),
    };
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
