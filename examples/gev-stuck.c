/* gev-stuck: a program with the commonest gev mistake in it, for
 * doc/debugging.md to find.  Four greenlets wait cooperatively (a ticker, a
 * reader on a pipe, a waiter on an event, a sleeper) while a fifth, "crunch",
 * calls a function that computes for 0.6 s without ever switching: the
 * whole thread stops with it, and the ticker's ticks show the gap.
 *
 *   gev-stuck            run it (try GEV_MONITOR=0.1 gev-stuck)
 *   gev-stuck --dump     also print what every greenlet is doing, while
 *                        they wait, with gev_print_run_info()
 *   gev-stuck --forever  a second mistake: at the end main waits for an
 *                        event only the waiting "waiter" could set (try
 *                        GEV_DEBUG=1 gev-stuck --forever)
 *
 * Under gdb with gev-gdb.py: `break checksum_the_slow_way`, `run`,
 * `info greenlets`, `greenlet bt <id>`. */
#include <errno.h>
#include <gev.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double started;

static void *ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        gev_sleep(0.1);
        printf("tick at %.2f s\n", now() - started);
    }
    return NULL;
}

static void *reader(void *arg)
{
    char c;
    /* Nobody writes: it reads the end of file when main closes the pipe. */
    return gev_read(*(int *)arg, &c, 1, GEV_FOREVER) == 0 ? NULL : arg;
}

static void *waiter(void *arg)
{
    gev_event_wait(arg, GEV_FOREVER);
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    gev_sleep(10);      /* killed before then */
    return NULL;
}

/* The mistake: 0.6 s of work with no gev call in it.  (A blocking call gev
 * does not know about, such as sleep() without gev_patch_all(), stops the
 * thread the same way.)  Not static, and the program is linked with
 * -rdynamic, so the monitor's backtrace can name it. */
unsigned checksum_the_slow_way(void);
__attribute__((noinline)) unsigned checksum_the_slow_way(void)
{
    volatile unsigned sum = 0;
    double until = now() + 0.6;
    while (now() < until)
        for (int i = 0; i < 1000; i++)
            sum += (unsigned)i;
    return sum;
}

static void *crunch(void *arg)
{
    (void)arg;
    gev_sleep(0.25);
    printf("crunch: checksum %u\n", checksum_the_slow_way());
    return NULL;
}

static gev_greenlet *spawn_named(const char *name, gev_fn fn, void *arg)
{
    gev_greenlet *g = gev_spawn(fn, arg);
    if (g)
        gev_set_name(g, name);
    return g;
}

int main(int argc, char **argv)
{
    bool dump = argc > 1 && strcmp(argv[1], "--dump") == 0;
    bool forever = argc > 1 && strcmp(argv[1], "--forever") == 0;
    int fds[2];
    gev_event *done = gev_event_new();
    /* gev_read tries read(2) first: on a blocking descriptor that would
     * stop the thread, so the pipe is made non-blocking. */
    if (pipe(fds) < 0 || gev_nonblock(fds[0]) < 0 || !done) {
        perror("gev-stuck");
        return 1;
    }
    started = now();
    setvbuf(stdout, NULL, _IOLBF, 0);
    gev_greenlet *g[] = {
        spawn_named("ticker", ticker, NULL),  spawn_named("reader", reader, &fds[0]),
        spawn_named("waiter", waiter, done),  spawn_named("sleeper", sleeper, NULL),
        spawn_named("crunch", crunch, NULL),
    };
    enum { N = sizeof g / sizeof g[0] };
    for (int i = 0; i < N; i++)
        if (!g[i]) {
            perror("gev-stuck: gev_spawn");
            return 1;
        }
    gev_sleep(0.15);
    if (dump)
        gev_print_run_info(STDOUT_FILENO);
    gev_join(g[0], GEV_FOREVER);        /* the ticker's ten ticks */
    close(fds[1]);
    gev_kill(g[3], GEV_FOREVER);
    /* Nothing is left that could set it: gev says so (EDEADLK) rather than
     * hang, and with GEV_DEBUG set shows who waits for what. */
    if (forever && gev_event_wait(done, GEV_FOREVER) < 0)
        printf("gev-stuck: gev_event_wait: %s\n", strerror(errno));
    gev_event_set(done);
    int rc = gev_joinall(g, N, 5.0) == 0 ? 0 : 1;
    for (int i = 0; i < N; i++)
        gev_release(g[i]);
    gev_event_free(done);
    close(fds[0]);
    return rc;
}
