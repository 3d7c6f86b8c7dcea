/* tests/patchtest.h: helpers for the tests of the patch library (and for
 * tests of unmodified client libraries on top of it).
 *
 *  - pt_setup: gev_patch_all() must work; the teardown of gevtest.h shuts
 *    the hub down;
 *  - pt_server: a greenlet server on 127.0.0.1 written with gev's own API,
 *    which answers each request line after a delay;
 *  - pt_spawn_n: n greenlets of one function, their index as argument;
 *  - the ticker of gevtest.h proves the hub keeps running.
 */
#ifndef GEV_TESTS_PATCHTEST_H
#define GEV_TESTS_PATCHTEST_H

#include "gevtest.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "gev-patch.h"

#define PT_SKIP 77

static inline int pt_setup(void **state)
{
    assert_int_equal(gev_patch_all(), 0);
    assert_true(gev_patch_active());
    return gevtest_setup(state);
}

#define pt_test(f) cmocka_unit_test_setup_teardown(f, pt_setup, gevtest_teardown)

/* ---- a delaying server -------------------------------------------------- */

typedef struct pt_server {
    int fd, port;
    double delay;               /* before each answer */
    gev_greenlet *acceptor;
    int served;
} pt_server;

typedef struct { pt_server *s; int fd; } pt_conn;

/* Reads one request (up to "\n"), waits s->delay, answers "ok:<request>". */
static inline void *pt_server_conn(void *arg)
{
    pt_conn *c = arg;
    char req[256], resp[300];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof req - 1 && (r = gev_recv(c->fd, req + n, sizeof req - 1 - n, 0, 10)) > 0) {
        n += (size_t)r;
        if (memchr(req, '\n', n))
            break;
    }
    req[n] = '\0';
    gev_sleep(c->s->delay);
    int len = snprintf(resp, sizeof resp, "ok:%s", req);
    if (gev_sendall(c->fd, resp, (size_t)len, 10) == len)
        c->s->served++;
    gev_close(c->fd);
    free(c);
    return NULL;
}

static inline void *pt_server_accept(void *arg)
{
    pt_server *s = arg;
    int fd;
    while ((fd = gev_accept(s->fd, NULL, NULL, GEV_FOREVER)) >= 0) {
        pt_conn *c = malloc(sizeof *c);
        assert_non_null(c);
        *c = (pt_conn){ s, fd };
        gev_greenlet *g = gev_spawn(pt_server_conn, c);
        assert_non_null(g);
        gev_release(g);
    }
    return NULL;
}

static inline void pt_server_start(pt_server *s, double delay)
{
    *s = (pt_server){ .delay = delay };
    s->fd = gev_tcp_listen("127.0.0.1", "0", 512);
    assert_true(s->fd >= 0);
    s->port = gevtest_local_port(s->fd);
    s->acceptor = gev_spawn(pt_server_accept, s);
    assert_non_null(s->acceptor);
}

static inline void pt_server_stop(pt_server *s)
{
    assert_int_equal(gev_kill(s->acceptor, 1), 0);
    gev_release(s->acceptor);
    gev_close(s->fd);
}

/* A blocking TCP socket connected with plain libc (patched or not). */
static inline int pt_connect_plain(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* ---- greenlets ------------------------------------------------------------- */

static inline void pt_spawn_n(gev_greenlet **gs, int n, gev_fn fn)
{
    for (int i = 0; i < n; i++) {
        gs[i] = gev_spawn(fn, (void *)(intptr_t)i);
        assert_non_null(gs[i]);
    }
}

static inline gev_greenlet *pt_ticker_start(void)
{
    gevtest_ticks = 0;
    gev_greenlet *t = gev_spawn(gevtest_ticker, NULL);
    assert_non_null(t);
    return t;
}

static inline void pt_ticker_stop(gev_greenlet *t)
{
    assert_int_equal(gev_kill(t, 1), 0);
    gev_release(t);
}

#endif
