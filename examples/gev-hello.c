/* gev-hello: a first look at gev.
 *
 * Two greenlets sleep and log, interleaved by the hub; meanwhile the main
 * greenlet waits for a pipe to become readable.  Nothing here uses threads:
 * every "blocking" call below switches to the hub, which runs whatever is
 * ready next.
 *
 *   $ gev-hello
 *   gev 0.1.0, backend libevent 2.1.12-stable
 *   ...
 */
#include <gev.h>
#include <stdio.h>
#include <unistd.h>

static int pipe_fds[2];

/* A greenlet: logs three ticks, `arg` seconds apart. */
static void *ticker(void *arg)
{
    double period = *(const double *)arg;
    for (int i = 1; i <= 3; i++) {
        gev_sleep(period);          /* switches to the hub; others run */
        printf("  %s: tick %d (every %.0f ms)\n", gev_name(gev_current()), i,
               period * 1000);
    }
    return NULL;
}

/* A greenlet that, after a while, writes to the pipe main is waiting on. */
static void *writer(void *arg)
{
    (void)arg;
    gev_sleep(0.1);
    printf("  writer: writing to the pipe\n");
    gev_write(pipe_fds[1], "x", 1, GEV_FOREVER);
    return NULL;
}

int main(void)
{
    printf("gev %s, backend %s %s\n", gev_version(), gev_backend(),
           gev_backend_version());

    if (pipe(pipe_fds) < 0 || gev_nonblock(pipe_fds[0]) < 0 ||
        gev_nonblock(pipe_fds[1]) < 0) {
        perror("pipe");
        return 1;
    }

    /* gev_spawn never switches: the greenlets start once main blocks. */
    static const double fast = 0.02, slow = 0.05;
    gev_greenlet *g[3] = { gev_spawn(ticker, (void *)&fast),
                           gev_spawn(ticker, (void *)&slow),
                           gev_spawn(writer, NULL) };
    if (!g[0] || !g[1] || !g[2]) {
        perror("gev_spawn");
        return 1;
    }
    gev_set_name(g[0], "fast");
    gev_set_name(g[1], "slow");

    /* main blocks here: the tickers and the writer run meanwhile. */
    printf("main: waiting for the pipe\n");
    if (gev_wait_read(pipe_fds[0], 5.0) < 0) {
        perror("gev_wait_read");
        return 1;
    }
    printf("main: the pipe is readable\n");

    /* Wait for the rest, then give up the handles. */
    gev_joinall(g, 3, GEV_FOREVER);
    for (int i = 0; i < 3; i++)
        gev_release(g[i]);
    printf("main: all greenlets done\n");
    gev_shutdown();
    return 0;
}
