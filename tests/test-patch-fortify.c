/* tests/test-patch-fortify.c: built with -O2 -D_FORTIFY_SOURCE=2 (as
 * Debian builds its libraries), so read/recv/poll with buffers of known
 * size become __read_chk/__recv_chk/__poll_chk: patched just the same. */
#include "patchtest.h"
#include <poll.h>
#include <sys/socket.h>

#if !defined(__OPTIMIZE__) || !defined(_FORTIFY_SOURCE) || _FORTIFY_SOURCE < 2
#error "this test must be built with -O2 -D_FORTIFY_SOURCE=2"
#endif

static int sv[10][2];
static volatile size_t want = 4;    /* not a constant: the _chk variant */
static volatile nfds_t one = 1;

static void *reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    char buf[8];
    struct pollfd p = { sv[i][0], POLLIN, 0 };
    if (poll(&p, one, 2000) != 1)
        return (void *)-1;
    ssize_t n = (i & 1) ? recv(sv[i][0], buf, want, 0) : read(sv[i][0], buf, want);
    if (n != 4)
        return (void *)-2;
    n = (i & 1) ? read(sv[i][0], buf, want) : recv(sv[i][0], buf, want, 0);
    return (void *)(intptr_t)n;
}

static void *writer(void *arg)
{
    for (int round = 0; round < 2; round++) {
        gev_sleep(0.1);
        for (int i = 0; i < 10; i++)
            assert_int_equal(send(sv[i][1], "data", 4, 0), 4);
    }
    return NULL;
}

static void test_fortified_calls_cooperate(void **state)
{
    gev_greenlet *gs[11];
    for (int i = 0; i < 10; i++)
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
    gev_greenlet *t = pt_ticker_start();
    double t0 = gevtest_now();
    pt_spawn_n(gs, 10, reader);
    gs[10] = gev_spawn(writer, NULL);
    assert_int_equal(gev_joinall(gs, 11, 5), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal((intptr_t)gev_value(gs[i]), 4);
    gevtest_release_all(gs, 11);
    assert_true(gevtest_now() - t0 < 1.0 * gevtest_slow());
    assert_true(gevtest_ticks >= gevtest_min_ticks(10));   /* each blocked; the hub ran on */
    pt_ticker_stop(t);
    for (int i = 0; i < 10; i++)
        close(sv[i][0]), close(sv[i][1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        pt_test(test_fortified_calls_cooperate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
