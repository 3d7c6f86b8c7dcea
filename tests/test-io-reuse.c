/* A descriptor closed with plain close(2) behind gev's back, its number
 * reused at once by a new file: waits on the new file must see its events
 * (issue 11, point 3).  The kernel drops the old file from epoll silently,
 * while gev's lazily armed watcher (and the backend) still believe the
 * number is registered; every case below hung until its timeout before the
 * sweep and the eager disarm in api/fd.c.  The waits on the new file are
 * bounded generously: the sweep may take up to ~0.1 s to notice. */
#include "config.h"
#include "gevtest.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum { ROUNDS = 4 };
#define NEW_FILE_TIMEOUT 2.0    /* the wait on the new file */
#define NEW_FILE_BOUND 1.0      /* ... must end well before that */

/* A new pair after close(2) of the old one: the kernel hands out the
 * lowest free numbers, so the first end gets the old first end's number. */
static void reuse_socketpair(int sv[2], int want)
{
    gevtest_socketpair(sv);
    assert_int_equal(sv[0], want);
}

static void plain_close_pair(const int sv[2])
{
    assert_int_equal(close(sv[0]), 0);
    assert_int_equal(close(sv[1]), 0);
}

struct later { int fd; const char *text; };

static void *send_later(void *arg)
{
    struct later *d = arg;
    gev_sleep(0.01);
    assert_int_equal(send(d->fd, d->text, strlen(d->text), MSG_NOSIGNAL),
                     (ssize_t)strlen(d->text));
    return NULL;
}

static void *drain_later(void *arg)
{
    struct later *d = arg;
    char buf[4096];
    gev_sleep(0.01);
    while (recv(d->fd, buf, sizeof buf, 0) > 0)
        ;
    return NULL;
}

static void *eventfd_write_later(void *arg)
{
    struct later *d = arg;
    uint64_t v = 7;
    gev_sleep(0.01);
    assert_int_equal(write(d->fd, &v, sizeof v), (ssize_t)sizeof v);
    return NULL;
}

static void run_and_join(gev_greenlet *g)
{
    assert_int_equal(gev_join(g, 5), 0);
    gev_release(g);
}

/* gev_recv of `want` on fd, the text arriving from peer 10 ms after the
 * wait began: it must come, and well before the timeout. */
static void recv_sent_later(int fd, int peer, const char *want)
{
    struct later d = { peer, want };
    gev_greenlet *g = gev_spawn(send_later, &d);
    char buf[16] = {0};
    double t0 = gevtest_now();
    assert_int_equal(gev_recv(fd, buf, strlen(want), 0, NEW_FILE_TIMEOUT),
                     (ssize_t)strlen(want));
    assert_true(gevtest_now() - t0 < NEW_FILE_BOUND);
    assert_string_equal(buf, want);
    run_and_join(g);
}

/* ROUNDS times: `end_old` ends a wait on the old pair its way, close(2)
 * of both ends, a new pair under the same numbers, and a recv on it that
 * must see its data. */
static void reuse_rounds(void (*end_old)(const int sv[2]))
{
    int sv[2];
    gevtest_socketpair(sv);
    int n = sv[0];
    for (int i = 0; i < ROUNDS; i++) {
        end_old(sv);
        plain_close_pair(sv);
        reuse_socketpair(sv, n);
        recv_sent_later(sv[0], sv[1], "data");
    }
    plain_close_pair(sv);
}

static void recv_times_out(const int sv[2])
{
    char buf[8];
    assert_fails(gev_recv(sv[0], buf, sizeof buf, 0, 0.05), ETIMEDOUT);
}

static void recv_gets_event(const int sv[2])
{
    recv_sent_later(sv[0], sv[1], "x");
}

/* The reported scenario: a recv that timed out, close(2), the number
 * reused by a new socketpair, round after round. */
static void test_timed_out_recv_then_plain_close(void **state)
{
    reuse_rounds(recv_times_out);
}

/* The wait on the old file ended by its event (the watcher stays armed,
 * lazily), then close(2) and reuse. */
static void test_event_ended_recv_then_plain_close(void **state)
{
    reuse_rounds(recv_gets_event);
}

/* A short recv marks the old socket drained, so the next recv would wait
 * for the loop without trying recv(2) first: the mark must not make the
 * new socket, whose data is already there, wait on the dead registration. */
static void test_drained_mark_then_plain_close(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    int n = sv[0];
    for (int i = 0; i < ROUNDS; i++) {
        struct later d = { sv[1], "x" };
        gev_greenlet *g = gev_spawn(send_later, &d);
        char buf[16] = {0};
        assert_int_equal(gev_recv(sv[0], buf, sizeof buf, 0, 5), 1);   /* short */
        run_and_join(g);
        plain_close_pair(sv);
        reuse_socketpair(sv, n);
        assert_int_equal(send(sv[1], "new", 3, 0), 3);
        double t0 = gevtest_now();
        assert_int_equal(gev_recv(sv[0], buf, sizeof buf, 0, NEW_FILE_TIMEOUT), 3);
        assert_true(gevtest_now() - t0 < NEW_FILE_BOUND);
        assert_memory_equal(buf, "new", 3);
    }
    plain_close_pair(sv);
}

static void fill(int fd)
{
    static const char buf[4096];
    while (send(fd, buf, sizeof buf, MSG_NOSIGNAL) > 0)
        ;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* gev_send on a full socket: waits for the peer to drain it. */
static void send_after_drain(int fd, int peer)
{
    fill(fd);
    struct later d = { peer, NULL };
    gev_greenlet *g = gev_spawn(drain_later, &d);
    double t0 = gevtest_now();
    assert_int_equal(gev_send(fd, "z", 1, 0, NEW_FILE_TIMEOUT), 1);
    assert_true(gevtest_now() - t0 < NEW_FILE_BOUND);
    run_and_join(g);
}

/* The same for the write direction: a send waited for room and got it,
 * then close(2) and reuse. */
static void test_event_ended_send_then_plain_close(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    int n = sv[0];
    send_after_drain(sv[0], sv[1]);
    for (int i = 0; i < ROUNDS; i++) {
        plain_close_pair(sv);
        reuse_socketpair(sv, n);
        send_after_drain(sv[0], sv[1]);
    }
    plain_close_pair(sv);
}

/* dup2(2) onto the number closes the old file implicitly. */
static void test_event_ended_recv_then_dup2(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    int n = sv[0];
    recv_sent_later(n, sv[1], "x");
    for (int i = 0; i < ROUNDS; i++) {
        assert_int_equal(close(sv[1]), 0);
        gevtest_socketpair(sv);
        assert_int_equal(dup3(sv[0], n, O_CLOEXEC), n);
        assert_int_equal(close(sv[0]), 0);
        recv_sent_later(n, sv[1], "d");
    }
    assert_int_equal(close(n), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* eventfds all share one anonymous inode, so fstat(2) cannot tell an old
 * one from a new one under the same number: the fix must not rely on it. */
static void test_eventfd_reuse(void **state)
{
    int n = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(n >= 0);
    for (int i = 0; i <= ROUNDS; i++) {
        struct later d = { n, NULL };
        gev_greenlet *g = gev_spawn(eventfd_write_later, &d);
        uint64_t v = 0;
        double t0 = gevtest_now();
        assert_int_equal(gev_read(n, &v, sizeof v, NEW_FILE_TIMEOUT), (ssize_t)sizeof v);
        assert_true(gevtest_now() - t0 < NEW_FILE_BOUND);
        assert_int_equal(v, 7);
        run_and_join(g);
        assert_int_equal(close(n), 0);
        assert_int_equal(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), n);
    }
    assert_int_equal(close(n), 0);
}

/* On the new file, a loop of readiness waits each shorter than the
 * sweep's period (a poll-like loop): the first times out on the dead
 * registration, and the next ones must not go on waiting on it. */
static void test_short_waits_on_reused_number(void **state)
{
    int sv[2];
    gevtest_socketpair(sv);
    int n = sv[0];
    recv_sent_later(n, sv[1], "x");
    plain_close_pair(sv);
    reuse_socketpair(sv, n);
    struct later d = { sv[1], "late" };
    gev_greenlet *g = gev_spawn(send_later, &d);
    double t0 = gevtest_now();
    int r;
    while ((r = gev_wait_read(n, 0.02)) < 0 && errno == ETIMEDOUT &&
           gevtest_now() - t0 < NEW_FILE_TIMEOUT)
        ;
    assert_int_equal(r, GEV_READ);
    assert_true(gevtest_now() - t0 < NEW_FILE_BOUND);
    char buf[8] = {0};
    assert_int_equal(gev_recv(n, buf, sizeof buf, 0, 0), 4);
    assert_string_equal(buf, "late");
    run_and_join(g);
    plain_close_pair(sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_timed_out_recv_then_plain_close),
        gevtest(test_event_ended_recv_then_plain_close),
        gevtest(test_drained_mark_then_plain_close),
        gevtest(test_event_ended_send_then_plain_close),
        gevtest(test_event_ended_recv_then_dup2),
        gevtest(test_eventfd_reuse),
        gevtest(test_short_waits_on_reused_number),
    };
    return cmocka_run_group_tests_name("io-reuse", tests, NULL, NULL);
}
