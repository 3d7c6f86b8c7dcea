/* bench/peer-libdill.c: libdill (stackful C coroutines, structured
 * concurrency) on gev-bench's task workloads, measured the way libdill's
 * own perf/ programs do.  libdill is not in Debian: bench/compare builds
 * this only when pointed at an installed libdill (--libdill PREFIX, or
 * $LIBDILL), e.g. one built from its source release with
 * `./autogen.sh && ./configure --prefix=P && make install`.
 *
 *   peer-libdill switch_yield N   two coroutines calling yield() in turn
 *                                 (libdill's perf/ctxswitch): ns per switch
 *   peer-libdill switch_direct N  two coroutines passing a turn over a
 *                                 channel (chsend/chrecv): ns per hand-off
 *   peer-libdill spawn N          N coroutines alive at once (each blocked
 *                                 on one channel), released with chdone()
 *                                 and closed: ns per coroutine (none if go()
 *                                 fails first: a default libdill guards each
 *                                 stack with mprotect, two mappings each, and
 *                                 stops near vm.max_map_count / 2); then go() +
 *                                 hclose() one at a time, N times (libdill's
 *                                 perf/go): spawn_seq, ns per coroutine
 *   peer-libdill mem N SECS       N coroutines asleep: KiB of peak RSS each
 *
 * go() runs the new coroutine at once, up to its first blocking call; a
 * handle closed before its coroutine ends cancels it, so every coroutine
 * here has ended (or been released) before its hclose(). */
#include "raw.h"
#include <libdill.h>

#define PEER "libdill"

static void check(int rc, const char *what)
{
    if (rc < 0)
        raw_die(what);
}

/* ---- switch ---------------------------------------------------------------- */

static coroutine void yielder(long n)
{
    for (long i = 0; i < n; i++)
        yield();
}

static coroutine void hander(int in, int out, long n)
{
    char c = 0;
    for (long i = 0; i < n; i++) {
        check(chrecv(in, &c, 1, -1), "chrecv");
        check(chsend(out, &c, 1, -1), "chsend");
    }
}

static int run_switch(long n, int direct)
{
    long half = n / 2;
    int64_t t0 = raw_now_ns();
    if (direct) {
        int a[2], b[2];
        char c = 0;
        check(chmake(a), "chmake");
        check(chmake(b), "chmake");
        int h = go(hander(a[1], b[0], half));
        check(h, "go");
        for (long i = 0; i < half; i++) {
            check(chsend(a[0], &c, 1, -1), "chsend");
            check(chrecv(b[1], &c, 1, -1), "chrecv");
        }
        hclose(h);
    } else {
        int h = go(yielder(half));
        check(h, "go");
        yielder(half);
        hclose(h);
    }
    /* a direct round trip is two hand-offs, as a yield round is two switches */
    printf("peer=%s workload=%s value=%.2f unit=ns/op ops=%ld\n", PEER,
           direct ? "switch_direct" : "switch_yield", (double)(raw_now_ns() - t0) / (2 * half),
           2 * half);
    return 0;
}

/* ---- spawn, mem --------------------------------------------------------------- */

static coroutine void blocked(int ch)
{
    char c;
    chrecv(ch, &c, 1, -1);      /* EPIPE once released */
}

static coroutine void nothing(void) {}

static coroutine void napper(int64_t until)
{
    msleep(until);
}

static int run_spawn(long n)
{
    int *hs = calloc((size_t)n, sizeof *hs), ch[2];
    if (!hs)
        raw_die("calloc");
    check(chmake(ch), "chmake");
    int64_t t0 = raw_now_ns();
    long made = 0;
    int err = 0;
    while (made < n && (hs[made] = go(blocked(ch[1]))) >= 0)
        made++;
    if (made < n)
        err = errno;
    check(chdone(ch[0]), "chdone");
    for (long i = 0; i < made; i++)
        hclose(hs[i]);
    int64_t t = raw_now_ns() - t0;
    if (made == n)
        printf("peer=%s workload=spawn value=%.1f unit=ns/task n=%ld\n", PEER, (double)t / n, n);
    else    /* each stack's guard page is a mapping of its own: vm.max_map_count */
        fprintf(stderr, "peer-libdill: go() failed after %ld coroutines alive: %s\n", made,
                strerror(err));
    long seq = n * 10;
    t0 = raw_now_ns();
    for (long i = 0; i < seq; i++) {
        int h = go(nothing());
        check(h, "go");
        hclose(h);
    }
    printf("peer=%s workload=spawn_seq value=%.1f unit=ns/task n=%ld\n", PEER,
           (double)(raw_now_ns() - t0) / seq, seq);
    hclose(ch[0]);
    hclose(ch[1]);
    free(hs);
    return 0;
}

static int run_mem(long n, double secs)
{
    int *hs = calloc((size_t)n, sizeof *hs);
    if (!hs)
        raw_die("calloc");
    long base = raw_status_kib("VmRSS");
    int64_t until = now() + (int64_t)(secs * 1000);
    for (long i = 0; i < n; i++)
        check(hs[i] = go(napper(until)), "go");
    msleep(until + 50);         /* they have all woken and ended */
    for (long i = 0; i < n; i++)
        hclose(hs[i]);
    long peak = raw_status_kib("VmHWM");
    raw_report_mem(PEER, n, base, peak);
    free(hs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "switch_yield"))
        return run_switch(atol(argv[2]), 0);
    if (argc >= 3 && !strcmp(argv[1], "switch_direct"))
        return run_switch(atol(argv[2]), 1);
    if (argc >= 3 && !strcmp(argv[1], "spawn"))
        return run_spawn(atol(argv[2]));
    if (argc >= 4 && !strcmp(argv[1], "mem"))
        return run_mem(atol(argv[2]), atof(argv[3]));
    fprintf(stderr, "usage: peer-libdill switch_yield|switch_direct|spawn N | mem N SECS\n");
    return 2;
}
