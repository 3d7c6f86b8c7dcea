/* bench/peer-st.c: State Threads (Debian libst-dev) on gev-bench's
 * workloads: stackful C coroutines with ST's own scheduler over poll().
 *
 *   peer-st switch_yield N     two threads calling st_usleep(0) (ST has no
 *                              yield; a zero sleep goes through its sleep queue)
 *   peer-st switch_direct N    two threads passing a turn with st_cond_signal /
 *                              st_cond_wait: ns per one-way hand-off
 *   peer-st spawn N            N joinable threads (ST's default 64 KiB stacks)
 *                              created, then joined: ns per thread
 *   peer-st mem N SECS         N threads asleep: KiB of peak RSS per thread
 *   peer-st timers N           N threads sleeping gev-bench's timer durations
 *   peer-st echo PORT | http PORT   the servers, a thread per connection
 */
#include "raw.h"
#include <signal.h>
#include <st.h>

#define PEER "st"

static st_thread_t spawn(void *(*fn)(void *), void *arg)
{
    st_thread_t t = st_thread_create(fn, arg, 1, 0);
    if (!t)
        raw_die("st_thread_create");
    return t;
}

static void join(st_thread_t t)
{
    st_thread_join(t, NULL);
}

/* ---- switch ---------------------------------------------------------------- */

static long half;               /* switches each of the two threads makes */
static st_cond_t turn_cond[2];
static int turn;

static void *yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < half; i++)
        st_usleep(0);
    return NULL;
}

static void *hander(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (long i = 0; i < half; i++) {
        while (turn != me)
            st_cond_wait(turn_cond[me]);
        turn = !me;
        st_cond_signal(turn_cond[!me]);
    }
    return NULL;
}

static int run_switch(long n, int direct)
{
    half = n / 2;
    turn_cond[0] = st_cond_new();
    turn_cond[1] = st_cond_new();
    void *(*fn)(void *) = direct ? hander : yielder;
    int64_t t0 = raw_now_ns();
    st_thread_t a = spawn(fn, (void *)0), b = spawn(fn, (void *)1);
    join(a);
    join(b);
    printf("peer=%s workload=%s value=%.2f unit=ns/op ops=%ld\n", PEER,
           direct ? "switch_direct" : "switch_yield", (double)(raw_now_ns() - t0) / (2 * half),
           2 * half);
    return 0;
}

/* ---- spawn, mem, timers ----------------------------------------------------- */

static void *nothing(void *arg)
{
    return arg;
}

static st_utime_t nap;
static void *napper(void *arg)
{
    st_usleep(nap);
    return arg;
}

static struct raw_timers tm;
static void *timer_thread(void *arg)
{
    long i = (long)(intptr_t)arg;
    tm.deadline[i] = raw_now_ns() + (int64_t)tm.dur_us[i] * 1000;
    st_usleep(tm.dur_us[i]);
    raw_timers_fired(&tm, i);
    return NULL;
}

/* Spawn n threads of fn (argument: the index), join them all: the ns it took. */
static int64_t spawn_join_all(long n, void *(*fn)(void *))
{
    st_thread_t *ts = calloc((size_t)n, sizeof *ts);
    if (!ts)
        raw_die("calloc");
    int64_t t0 = raw_now_ns();
    for (long i = 0; i < n; i++)
        ts[i] = spawn(fn, (void *)(intptr_t)i);
    for (long i = 0; i < n; i++)
        join(ts[i]);
    int64_t t = raw_now_ns() - t0;
    free(ts);
    return t;
}

static int run_spawn(long n)
{
    printf("peer=%s workload=spawn value=%.1f unit=ns/task n=%ld\n", PEER,
           (double)spawn_join_all(n, nothing) / n, n);
    return 0;
}

static int run_mem(long n, double secs)
{
    long base = raw_status_kib("VmRSS");
    nap = (st_utime_t)(secs * 1e6);
    spawn_join_all(n, napper);
    long peak = raw_status_kib("VmHWM");
    raw_report_mem(PEER, n, base, peak);
    return 0;
}

static int run_timers(long n)
{
    free(raw_timers_init(&tm, n, 1));        /* the threads are ST's */
    int64_t t0 = raw_now_ns();
    spawn_join_all(n, timer_thread);
    return raw_timers_finish(&tm, PEER, t0);
}

/* ---- servers ----------------------------------------------------------------- */

static int http_mode;

static void *serve_conn(void *arg)
{
    st_netfd_t c = arg;
    char buf[16384], out[64 * (sizeof RAW_HTTP_REPLY - 1)];
    int tail = 0;
    ssize_t n;
    while ((n = st_read(c, buf, sizeof buf, ST_UTIME_NO_TIMEOUT)) > 0) {
        const char *reply = buf;
        size_t len = (size_t)n;
        if (http_mode) {
            int heads = raw_http_heads(buf, len, &tail);
            heads = heads > 64 ? 64 : heads;        /* a pipelining client gets at most 64 at once */
            for (len = 0; heads--; len += sizeof RAW_HTTP_REPLY - 1)
                memcpy(out + len, RAW_HTTP_REPLY, sizeof RAW_HTTP_REPLY - 1);
            reply = out;
        }
        if (len && st_write(c, reply, len, ST_UTIME_NO_TIMEOUT) != (ssize_t)len)
            break;
    }
    st_netfd_close(c);
    return NULL;
}

static __attribute__((noreturn)) void run_server(int port, int http)
{
    http_mode = http;
    raw_raise_nofile();
    st_netfd_t l = st_netfd_open_socket(raw_listen(port));
    if (!l)
        raw_die("st_netfd_open_socket");
    for (;;) {
        st_netfd_t c = st_accept(l, NULL, NULL, ST_UTIME_NO_TIMEOUT);
        if (!c)
            continue;
        raw_nonblock_nodelay(st_netfd_fileno(c));
        if (!st_thread_create(serve_conn, c, 0, 0))
            st_netfd_close(c);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    raw_raise_nofile();
    /* poll() rather than select(), whose FD_SETSIZE would stop at 1024 fds. */
    st_set_eventsys(ST_EVENTSYS_ALT);
    if (st_get_eventsys() != ST_EVENTSYS_ALT)
        st_set_eventsys(ST_EVENTSYS_POLL);
    if (st_init() < 0)
        raw_die("st_init");
    const char *mode = argc > 2 ? argv[1] : "";
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (!strcmp(mode, "switch_yield") || !strcmp(mode, "switch_direct"))
        return run_switch(n, mode[7] == 'd');
    if (!strcmp(mode, "spawn"))
        return run_spawn(n);
    if (!strcmp(mode, "mem") && argc > 3)
        return run_mem(n, atof(argv[3]));
    if (!strcmp(mode, "timers") && n > 1)
        return run_timers(n);
    if (!strcmp(mode, "echo") || !strcmp(mode, "http"))
        run_server((int)n, mode[0] == 'h');
    fprintf(stderr, "usage: %s switch_yield N | switch_direct N | spawn N | mem N SECS | "
                    "timers N | echo PORT | http PORT\n", argv[0]);
    return 2;
}
