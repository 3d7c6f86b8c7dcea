/* tests/test-patch-libc.c: where the hooks do not wait, they are libc.
 * One table of calls, each run before gev_patch_all() (the reference:
 * libc's own), then after it in a greenlet, in main, in the hub (a
 * callback) and on another thread: results and errno side by side. */
#include "patchtest.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/uio.h>

typedef struct { long rc; int err; } outcome;

static outcome result(long rc) { return (outcome){ rc, rc < 0 ? errno : 0 }; }

static long bad_read(void) { char c; return read(-1, &c, 1); }
static long empty_nonblock_read(void)
{
    int p[2]; char c;
    if (pipe(p) < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) < 0)
        return -100;
    long r = read(p[0], &c, 1);
    int e = errno;
    close(p[0]), close(p[1]);
    errno = e;
    return r;
}
static long full_read(void)
{
    int p[2]; char c[4];
    if (pipe(p) < 0 || write(p[1], "abc", 3) != 3)
        return -100;
    long r = read(p[0], c, sizeof c);
    close(p[0]), close(p[1]);
    return r;
}
static long epipe_write(void)
{
    int p[2];
    if (pipe(p) < 0)
        return -100;
    close(p[0]);
    long r = write(p[1], "x", 1);
    int e = errno;
    close(p[1]);
    errno = e;
    return r;
}
static volatile int minus_one = -1;
static long readv_bad_count(void) { char c; struct iovec v = { &c, 1 }; return readv(0, &v, minus_one); }
static long recv_notsock(void)
{
    int p[2]; char c;
    if (pipe(p) < 0)
        return -100;
    long r = recv(p[0], &c, 1, 0);
    int e = errno;
    close(p[0]), close(p[1]);
    errno = e;
    return r;
}
static long send_dontwait_full(void)
{
    int sv[2];
    char buf[4096] = "";
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -100;
    long r, total = 0;
    while ((r = send(sv[0], buf, sizeof buf, MSG_DONTWAIT)) > 0)
        total += r;
    int e = errno;
    close(sv[0]), close(sv[1]);
    errno = e;
    return total > 0 ? r : -200;
}
static long connect_refused(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(l, (struct sockaddr *)&a, &al) < 0)
        return -100;
    close(l);                   /* the port is free again: nobody listens */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    long r = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    int fl = fcntl(fd, F_GETFL);
    close(fd);
    errno = e;
    return fl & O_NONBLOCK ? -300 : r;
}
static long accept_not_listening(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    long r = accept(fd, NULL, NULL);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}
static long poll_nval(void)
{
    struct pollfd p = { 100000 - 7, POLLIN, 0 };
    long r = poll(&p, 1, 10);
    return r == 1 ? p.revents : r;
}
static long poll_timeout(void) { struct pollfd p = { -1, POLLIN, 0 }; return poll(&p, 1, 10); }
static long select_einval(void) { return select(-1, NULL, NULL, NULL, NULL); }
static long select_timeout(void) { struct timeval tv = { 0, 10000 }; return select(0, NULL, NULL, NULL, &tv); }
static long select_ebadf(void)
{
    fd_set r;
    FD_ZERO(&r);
    FD_SET(1000, &r);
    struct timeval tv = { 0, 10000 };
    return select(1001, &r, NULL, NULL, &tv);
}
static long nanosleep_einval(void) { struct timespec t = { 0, 2000000000L }; return nanosleep(&t, NULL); }
static long nanosleep_short(void) { struct timespec t = { 0, 1000000 }; return nanosleep(&t, NULL); }
static long clock_nanosleep_bad(void)
{
    struct timespec t = { 0, 1000 };
    return clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &t, NULL);
}
static long clock_nanosleep_abs_past(void)
{
    struct timespec t = { 0, 1 };
    return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
}
static long usleep_short(void) { return usleep(1000); }
static long sleep_zero(void) { return sleep(0); }
static long gai_bad(void)
{
    struct addrinfo *res = NULL;
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST };
    return getaddrinfo("not an address", NULL, &hints, &res);
}
static long gai_local(void)
{
    struct addrinfo *res = NULL, hints = { .ai_family = AF_INET, .ai_flags = AI_NUMERICHOST };
    long r = getaddrinfo("127.0.0.1", "80", &hints, &res);
    if (r == 0)
        r = ((struct sockaddr_in *)res->ai_addr)->sin_port, freeaddrinfo(res);
    return r;
}
static long dup2_bad(void) { return dup2(-1, 100); }
static long close_bad(void) { return close(-1); }
static long epoll_bad(void) { struct epoll_event e; return epoll_wait(-1, &e, 1, 10); }
static long epoll_timeout(void)
{
    int ep = epoll_create1(0);
    struct epoll_event e;
    long r = epoll_wait(ep, &e, 1, 10);
    close(ep);
    return r;
}
static long rcvtimeo_read(void)
{
    int sv[2];
    char c;
    struct timeval tv = { 0, 10000 };
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
        setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
        return -100;
    long r = read(sv[0], &c, 1);
    int e = errno;
    close(sv[0]), close(sv[1]);
    errno = e;
    return r;
}
static long fcntl_getfl(void)
{
    int p[2];
    if (pipe(p) < 0)
        return -100;
    long r = fcntl(p[0], F_GETFL);
    close(p[0]), close(p[1]);
    return r;
}
static long fcntl_bad(void) { return fcntl(-1, F_GETFL); }

static const struct { const char *name; long (*fn)(void); } calls[] = {
#define C(f) { #f, f }
    C(bad_read), C(empty_nonblock_read), C(full_read), C(epipe_write), C(readv_bad_count),
    C(recv_notsock), C(send_dontwait_full), C(connect_refused), C(accept_not_listening),
    C(poll_nval), C(poll_timeout), C(select_einval), C(select_timeout), C(select_ebadf),
    C(nanosleep_einval), C(nanosleep_short), C(clock_nanosleep_bad),
    C(clock_nanosleep_abs_past), C(usleep_short), C(sleep_zero), C(gai_bad), C(gai_local),
    C(dup2_bad), C(close_bad), C(epoll_bad), C(epoll_timeout), C(rcvtimeo_read),
    C(fcntl_getfl), C(fcntl_bad),
#undef C
};
#define NCALLS (sizeof calls / sizeof calls[0])

static outcome reference[NCALLS];

static void run_all(outcome *out)
{
    for (size_t i = 0; i < NCALLS; i++) {
        errno = 0;
        out[i] = result(calls[i].fn());
    }
}

static void compare(const char *where, const outcome *got)
{
    for (size_t i = 0; i < NCALLS; i++)
        if (got[i].rc != reference[i].rc || got[i].err != reference[i].err)
            fail_msg("%s: %s: %ld/%s, libc %ld/%s", where, calls[i].name, got[i].rc,
                     strerrorname_np(got[i].err), reference[i].rc,
                     strerrorname_np(reference[i].err));
}

static void *in_greenlet(void *arg) { run_all(arg); return NULL; }
static void *in_thread(void *arg) { run_all(arg); return NULL; }
static void in_hub(void *arg) { run_all(arg); }

static void test_same_as_libc(void **state)
{
    outcome got[NCALLS];
    run_all(reference);                 /* not patched yet: libc itself */
    for (size_t i = 0; i < NCALLS; i++)
        assert_true(reference[i].rc > -100);    /* each case's own setup worked */
    assert_int_equal(gev_patch_all(), 0);

    gev_greenlet *g = gev_spawn(in_greenlet, got);
    assert_int_equal(gev_join(g, 10), 0);
    gev_release(g);
    compare("greenlet", got);

    run_all(got);
    compare("main", got);

    memset(got, 0, sizeof got);
    assert_int_equal(gev_call_threadsafe(gev_hub_current(), in_hub, got), 0);
    gev_sleep(0.5);
    compare("hub", got);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, in_thread, got), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    compare("thread", got);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        gevtest(test_same_as_libc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
