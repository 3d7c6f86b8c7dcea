/* bench/bench.h: what the gev-bench workloads share.
 *
 * gev-bench runs the same workloads as the peer programs it is compared
 * with (gevent, Go, State Threads, raw libev, raw libevent) and prints its
 * results the same way, one line per result:
 *
 *     peer=gev-<backend> workload=NAME value=NUMBER unit=UNIT [key=value ...]
 *
 * so that one driver (bench/compare) can run gev beside them and put
 * everything in one table.  Only the public API (<gev.h>) is used.
 */
#ifndef GEV_BENCH_H
#define GEV_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "gev.h"

/* "gev-libevent" or "gev-libev": the peer name printed on every line. */
const char *bench_peer(void);

/* CLOCK_MONOTONIC in nanoseconds (read every time, never cached). */
int64_t bench_now_ns(void);

/* A "Name:   N kB" field of /proc/self/status in KiB (VmRSS, VmHWM), or -1. */
long bench_status_kib(const char *field);

/* Print "peer=... workload=NAME " followed by the printf-formatted rest and
 * a newline.  stdout is line buffered, so a driver sees each line at once. */
void bench_result(const char *workload, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Exit with a message on stderr (and errno's text when errno is set). */
void bench_die(const char *what) __attribute__((noreturn));

/* Spawn or exit: a benchmark that cannot spawn has nothing to report. */
gev_greenlet *bench_spawn(gev_fn fn, void *arg);
/* Join g (forever) or exit, then release its handle. */
void bench_join(gev_greenlet *g);

/* The W4 sleep durations.  Every peer draws them from the same generator
 * (Marsaglia's xorshift32 with shifts 13, 17, 5, seeded with 12345, each
 * value taken modulo 500,001 microseconds) so the workload is identical
 * everywhere; the sum over 100,000 draws is 25,021,590,668 us. */
#define BENCH_TIMER_SEED 12345u
#define BENCH_TIMER_MAX_US 500000u
uint32_t bench_xorshift32(uint32_t *state);

/* The servers' shape (bench-net.c): listen on 127.0.0.1:port (backlog
 * 4096), the main greenlet accepts for ever, each connection gets a
 * greenlet running handler(fd) with TCP_NODELAY set.  plain: the listening
 * socket and accept() are libc's (blocking, for the patched server of
 * bench-patch.c), else gev_socket and gev_accept.  Never returns. */
int bench_serve(const char *what, const char *port, gev_fn handler, bool plain);

/* Workloads: each parses its own arguments (argv[0] is the mode) and
 * returns the process exit status. */
int bench_switch_yield(int argc, char **argv);
int bench_switch_direct(int argc, char **argv);
int bench_spawn_mode(int argc, char **argv);
int bench_mem(int argc, char **argv);
int bench_timers(int argc, char **argv);
int bench_park(int argc, char **argv);
int bench_echo(int argc, char **argv);
int bench_http(int argc, char **argv);
int bench_pingpong(int argc, char **argv);
int bench_queue(int argc, char **argv);
int bench_channel(int argc, char **argv);
int bench_semaphore(int argc, char **argv);
#ifdef GEV_BENCH_PATCH
int bench_echo_patched(int argc, char **argv);      /* bench-patch.c */
int bench_hook_cost(int argc, char **argv);
#endif

#endif
