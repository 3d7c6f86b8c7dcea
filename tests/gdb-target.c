/* tests/gdb-target.c: the program tests/test-gdb.sh runs under gdb.
 *
 * Three greenlets park in known functions, one per kind of wait (an fd,
 * a timer, a sync object), and a fourth in a second thread's hub; once all
 * are parked, main calls
 * gdb_stop_here(), where the test stops it and asks doc/gev-gdb.py for
 * `info greenlets` and `greenlet bt N`.  Run alone, it wakes the three and
 * exits 0, so it is an ordinary program too.  A user's program: the public
 * header and library only (the extension must find the hub in the shared
 * library's thread-local storage, as it would in the field).
 */
#include <gev.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static int pipe_fds[2];
static gev_event *event;
static int other_fds[2];        /* the other thread's greenlet reads it */
static int ready_fds[2];        /* the other thread says it is parked */

/* noinline and a use after the call: each stays a frame of its own, not a
 * tail call, so the backtrace must show it. */
__attribute__((noinline)) static int park_reading_a_pipe(void)
{
    char c;
    ssize_t n = gev_read(pipe_fds[0], &c, 1, GEV_FOREVER);
    return n == 1 ? 0 : -1;
}

__attribute__((noinline)) static int park_sleeping(void)
{
    int rc = gev_sleep(3600);           /* killed long before */
    return rc + 1;
}

__attribute__((noinline)) static int park_on_event(void)
{
    int rc = gev_event_wait(event, GEV_FOREVER);
    return rc + 1;
}

__attribute__((noinline)) static int park_in_another_thread(void)
{
    char c;
    ssize_t n = gev_read(other_fds[0], &c, 1, GEV_FOREVER);
    return n == 1 ? 0 : -1;
}

static void *reader(void *arg) { (void)arg; return (void *)(long)park_reading_a_pipe(); }
static void *sleeper(void *arg) { (void)arg; return (void *)(long)park_sleeping(); }
static void *waiter(void *arg) { (void)arg; return (void *)(long)park_on_event(); }

static void *far_reader(void *arg) { (void)arg; return (void *)(long)park_in_another_thread(); }

/* A second thread with a hub of its own: its greenlet 3 parks reading. */
static void *other_thread(void *arg)
{
    (void)arg;
    gev_greenlet *g = gev_spawn(far_reader, NULL);
    if (!g)
        return (void *)1;
    gev_set_name(g, "far-reader");
    gev_sleep(0);
    if (write(ready_fds[1], "r", 1) != 1)
        return (void *)1;
    int rc = gev_join(g, GEV_FOREVER);
    gev_release(g);
    return (void *)(long)rc;
}

/* Where the debugger stops: the four are parked. */
__attribute__((noinline)) void gdb_stop_here(void);
__attribute__((noinline)) void gdb_stop_here(void)
{
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    pthread_t other;
    char c;
    if (pipe(pipe_fds) != 0 || gev_nonblock(pipe_fds[0]) != 0 || gev_nonblock(pipe_fds[1]) != 0 ||
        pipe(other_fds) != 0 || gev_nonblock(other_fds[0]) != 0 || pipe(ready_fds) != 0 ||
        !(event = gev_event_new()) || pthread_create(&other, NULL, other_thread, NULL) != 0 ||
        read(ready_fds[0], &c, 1) != 1) {
        perror("gdb-target: setup");
        return 1;
    }
    static const char *const names[3] = { "reader", "sleeper", "waiter" };
    gev_fn fns[3] = { reader, sleeper, waiter };
    gev_greenlet *g[3];
    for (int i = 0; i < 3; i++) {
        if (!(g[i] = gev_spawn(fns[i], NULL))) {
            perror("gdb-target: gev_spawn");
            return 1;
        }
        gev_set_name(g[i], names[i]);
    }
    /* Each runs up to its wait; then the hub polls, so that it too is
     * parked where it usually is, in its loop. */
    gev_sleep(0.01);
    gdb_stop_here();
    /* Wake the three the ways they wait, then the sleeper by a kill. */
    if (gev_write(pipe_fds[1], "x", 1, GEV_FOREVER) != 1)
        return 1;
    gev_event_set(event);
    gev_kill(g[1], GEV_FOREVER);
    void *other_rc = NULL;
    if (write(other_fds[1], "x", 1) != 1 || pthread_join(other, &other_rc) != 0 || other_rc)
        return 1;
    int rc = gev_joinall(g, 3, GEV_FOREVER);
    for (int i = 0; i < 3; i++)
        gev_release(g[i]);
    gev_event_free(event);
    printf("gdb-target: %s\n", rc == 0 ? "ok" : "join failed");
    return rc == 0 ? 0 : 1;
}
