/* bench/raw.h: what the programs bench/compare measures gev against share
 * (the raw libev and libevent baselines, the State Threads peer and the load
 * generator).  Header-only, so that each of them is one C file that
 * bench/compare builds with `cc` and pkg-config, without the library.
 *
 * They print results the way gev-bench does, one line per result:
 *
 *     peer=NAME workload=NAME value=NUMBER unit=UNIT [key=value ...]
 */
#ifndef GEV_BENCH_RAW_H
#define GEV_BENCH_RAW_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The reply of every minimal HTTP server compared (78 bytes). */
#define RAW_HTTP_REPLY                                                        \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" \
    "hello, world\n"

static inline int64_t raw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void raw_die(const char *what)
{
    perror(what);
    exit(1);
}

/* The timer workload's durations: the same generator as gev-bench's
 * (bench.h: xorshift32 13/17/5, seed 12345, modulo 500,001 us), so every
 * system sleeps the same sequence. */
static inline uint32_t raw_timer_us(uint32_t *state)
{
    uint32_t v = *state;
    v ^= v << 13;
    v ^= v >> 17;
    v ^= v << 5;
    *state = v;
    return v % 500001u;
}

/* Many connections: lift the soft fd limit to the hard one. */
static inline void raw_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static inline void raw_nonblock_nodelay(int fd)
{
    int one = 1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* A non-blocking listening socket on 127.0.0.1:port, backlog 4096 (what
 * gev-bench's servers use). */
static inline int raw_listen(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        raw_die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0)
        raw_die("bind/listen");
    return fd;
}

/* HTTP keep-alive framing for the minimal servers: how many request heads
 * ("\r\n\r\n") end in buf[0..len), given that the previous read ended with
 * *tail (how many bytes of "\r\n\r\n" were already matched).  Updates *tail,
 * so a terminator split across reads is still counted once. */
static inline int raw_http_heads(const char *buf, size_t len, int *tail)
{
    static const char end[] = "\r\n\r\n";
    int heads = 0, m = *tail;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == end[m])
            m++;
        else
            m = buf[i] == '\r';
        if (m == 4) {
            heads++;
            m = 0;
        }
    }
    *tail = m;
    return heads;
}

/* The callback servers' reply to n request heads that came in one read:
 * one write of n replies (64 at most per write), as every server compared
 * does.  -1 if a write came up short. */
static inline ssize_t raw_http_reply(int fd, int n)
{
    static char out[64 * (sizeof RAW_HTTP_REPLY - 1)];
    size_t len = 0;
    ssize_t w = 0;
    for (; n > 0; n--) {
        memcpy(out + len, RAW_HTTP_REPLY, sizeof RAW_HTTP_REPLY - 1);
        len += sizeof RAW_HTTP_REPLY - 1;
        if (len == sizeof out || n == 1) {
            if ((w = write(fd, out, len)) != (ssize_t)len)
                return -1;
            len = 0;
        }
    }
    return w;
}

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"); -1 if absent. */
static inline long raw_status_kib(const char *field)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field)))
            kib = atol(line + strlen(field) + 1);
    if (f)
        fclose(f);
    return kib;
}

/* The mem workload's report: peak RSS per task, and beyond the base. */
static inline void raw_report_mem(const char *peer, long n, long base_kib, long peak_kib)
{
    printf("peer=%s workload=mem value=%.3f unit=KiB/task peak_kib=%ld base_kib=%ld n=%ld\n",
           peer, (double)peak_kib / n, peak_kib, base_kib, n);
    printf("peer=%s workload=mem_delta value=%.3f unit=KiB/task\n", peer,
           (double)(peak_kib - base_kib) / n);
}

/* The timer workload's report (what gev-bench's `timers` prints first):
 * deadline[i] is when timer i was due, woke[i] when its callback ran,
 * order[k] the k-th to run.  An inversion is an adjacent pair woken against
 * deadline order. */
static inline void raw_report_timers(const char *peer, long n, const int64_t *deadline,
                                     const int64_t *woke, const long *order, int64_t t0,
                                     int64_t t1, uint32_t longest_us)
{
    long inv = 0, inv1ms = 0;
    double late = 0, wall_ms = (double)(t1 - t0) / 1e6;
    for (long k = 1; k < n; k++) {
        int64_t d = deadline[order[k - 1]] - deadline[order[k]];
        inv += d > 0;
        inv1ms += d > 1000000;
    }
    for (long i = 0; i < n; i++)
        late += (double)(woke[i] - deadline[i]) / 1e3;
    printf("peer=%s workload=timers value=%.1f unit=ms wall_ms=%.1f\n", peer,
           wall_ms - longest_us / 1e3, wall_ms);
    printf("peer=%s workload=timers_inv value=%ld unit=pairs\n", peer, inv);
    printf("peer=%s workload=timers_inv1ms value=%ld unit=pairs\n", peer, inv1ms);
    printf("peer=%s workload=timers_late value=%.1f unit=us\n", peer, late / (double)n);
}

/* The timer workload's bookkeeping, shared by the raw baselines. */
struct raw_timers {
    long n, woken;
    uint32_t longest_us;
    uint32_t *dur_us;
    int64_t *deadline, *woke;
    long *order;
};

/* Set t up for n timers and return an array of n zeroed timer records of
 * `each` bytes (the library's timer structs), for the caller to free. */
static inline void *raw_timers_init(struct raw_timers *t, long n, size_t each)
{
    void *timers = calloc((size_t)n, each);
    uint32_t seed = 12345;
    t->n = n;
    t->woken = 0;
    t->longest_us = 0;
    t->dur_us = calloc((size_t)n, sizeof *t->dur_us);
    t->deadline = calloc((size_t)n, sizeof *t->deadline);
    t->woke = calloc((size_t)n, sizeof *t->woke);
    t->order = calloc((size_t)n, sizeof *t->order);
    if (!timers || !t->dur_us || !t->deadline || !t->woke || !t->order)
        raw_die("calloc");
    for (long i = 0; i < n; i++) {
        t->dur_us[i] = raw_timer_us(&seed);
        if (t->dur_us[i] > t->longest_us)
            t->longest_us = t->dur_us[i];
    }
    /* Fault the arrays in now, not inside the timed span. */
    memset(t->deadline, 0, (size_t)n * sizeof *t->deadline);
    memset(t->woke, 0, (size_t)n * sizeof *t->woke);
    memset(t->order, 0, (size_t)n * sizeof *t->order);
    return timers;
}

/* Every timer has fired (the loop ran dry): report, counting from t0. */
static inline int raw_timers_finish(struct raw_timers *t, const char *peer, int64_t t0)
{
    int64_t t1 = raw_now_ns();
    if (t->woken != t->n)
        raw_die("timers: not every timer fired");
    raw_report_timers(peer, t->n, t->deadline, t->woke, t->order, t0, t1, t->longest_us);
    free(t->dur_us);
    free(t->deadline);
    free(t->woke);
    free(t->order);
    return 0;
}

/* Timer i fired: record when and in which place. */
static inline void raw_timers_fired(struct raw_timers *t, long i)
{
    t->woke[i] = raw_now_ns();
    t->order[t->woken++] = i;
}

#endif
