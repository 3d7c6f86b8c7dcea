/* bench/gev-bench.c: gev's side of the peer comparison (W1-W6) plus a few
 * gev-only workloads.  Same modes, arguments and output lines as the peer
 * programs it is compared with, so a driver runs them side by side.
 *
 * usage: gev-bench MODE [args]
 *   switch_yield N    two greenlets calling gev_sleep(0): ns per yield (W1)
 *   switch_direct N   two greenlets passing a turn through two semaphores
 *                     (release the other's, acquire your own): ns per
 *                     one-way hand-off, the analogue of ST's cond signal/wait
 *   spawn N           spawn N empty greenlets, then join them all: ns per
 *                     greenlet (W2); also spawn_seq: spawn + join one at a time
 *   mem N SECS        N greenlets parked in gev_sleep(SECS): KiB of peak RSS
 *                     (VmHWM) per greenlet, with and without the baseline (W3)
 *   timers N          N greenlets sleeping 0-500 ms (the peers' xorshift32
 *                     durations): overhead, wake-order inversions, lateness (W4)
 *   park N [SECS]     N greenlets (e.g. 1000000) parked in gev_sleep at once, all
 *                     due at one deadline: spawn+park rate, KiB of RSS per
 *                     greenlet, the time from the deadline (or the last park)
 *                     to the last wake, and RSS as the hub idles afterwards
 *   echo PORT         TCP echo server on 127.0.0.1, a greenlet per connection (W5)
 *   http PORT         minimal keep-alive HTTP server, the peers' 78-byte reply (W6)
 *   pingpong N        N round trips of 64 bytes between two greenlets over a
 *                     socketpair: round trips/s
 *   queue N           N items from a producer to a consumer through a
 *                     gev_queue of 128: items/s
 *   channel N         N messages ping-ponged over two gev_channels: ns/message
 *   semaphore N       N acquire/release pairs on one semaphore contended by
 *                     100 greenlets: ns per pair
 * gev-bench-patch (the same sources plus bench-patch.c, linked with the
 * patch library) adds echo_patched PORT and hook_cost N: see bench-patch.c.
 * Servers run until killed (SIGTERM) and print nothing on stdout.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"

const char *bench_peer(void)
{
    static char name[32];
    if (!name[0])
        snprintf(name, sizeof name, "gev-%s", gev_backend());
    return name;
}

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

long bench_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    size_t len = strlen(field);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, len) && line[len] == ':') {
            kib = atol(line + len + 1);
            break;
        }
    fclose(f);
    return kib;
}

void bench_result(const char *workload, const char *fmt, ...)
{
    va_list ap;
    printf("peer=%s workload=%s ", bench_peer(), workload);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

void bench_die(const char *what)
{
    if (errno)
        fprintf(stderr, "gev-bench: %s: %s\n", what, strerror(errno));
    else
        fprintf(stderr, "gev-bench: %s\n", what);
    exit(1);
}

gev_greenlet *bench_spawn(gev_fn fn, void *arg)
{
    gev_greenlet *g = gev_spawn(fn, arg);
    if (!g)
        bench_die("gev_spawn");
    return g;
}

void bench_join(gev_greenlet *g)
{
    if (gev_join(g, GEV_FOREVER) < 0)
        bench_die("gev_join");
    gev_release(g);
}

uint32_t bench_xorshift32(uint32_t *state)
{
    uint32_t v = *state;
    v ^= v << 13;
    v ^= v >> 17;
    v ^= v << 5;
    return *state = v;
}

static const struct mode {
    const char *name;
    int nargs;
    const char *args;
    int (*run)(int argc, char **argv);
} modes[] = {
    { "switch_yield", 1, "N", bench_switch_yield },
    { "switch_direct", 1, "N", bench_switch_direct },
    { "spawn", 1, "N", bench_spawn_mode },
    { "mem", 2, "N SECS", bench_mem },
    { "timers", 1, "N", bench_timers },
    { "park", 1, "N [SECS]", bench_park },
    { "echo", 1, "PORT", bench_echo },
    { "http", 1, "PORT", bench_http },
    { "pingpong", 1, "N", bench_pingpong },
    { "queue", 1, "N", bench_queue },
    { "channel", 1, "N", bench_channel },
    { "semaphore", 1, "N", bench_semaphore },
#ifdef GEV_BENCH_PATCH
    { "echo_patched", 1, "PORT", bench_echo_patched },
    { "hook_cost", 1, "N", bench_hook_cost },
#endif
};

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s MODE ARGS, one of:\n", prog);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        fprintf(stderr, "  %s %s\n", modes[i].name, modes[i].args);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(argv[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (strcmp(argv[1], modes[i].name))
            continue;
        if (argc - 2 < modes[i].nargs)
            return usage(argv[0]);
        /* Create the hub now, so no workload times its creation. */
        if (!gev_current())
            bench_die("cannot create the hub");
        int status = modes[i].run(argc - 1, argv + 1);
        gev_shutdown();
        return status;
    }
    return usage(argv[0]);
}
