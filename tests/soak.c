/* tests/soak: hours of traffic compressed into a minute (not in make check).
 *
 *     tests/soak [SECONDS] [CLIENTS] [HTTPD]
 *
 * Phase 1 (first half of SECONDS): CLIENTS greenlets (default 2000) connect
 * to a gev_server in this process and exchange messages of random size
 * (1 B - 256 KiB, log-uniform) that carry a checksum; the server checks each
 * one and echoes it, the client checks the echo.  A killer greenlet kills
 * random clients, and clients put random scoped timeouts around exchanges;
 * a client that dies is replaced by a new one, which reconnects.
 * Phase 2 (a third): the same clients pipeline HTTP/1.1 requests to
 * HTTPD (examples/gev-httpd, started here on an ephemeral port, with a
 * 2 s header timeout) and check every answer.
 * Phase 3 (the rest, at least 5 s): hostile clients against the same
 * gev-httpd: 1,500 slowloris connections that drip a header byte every
 * 0.2 s and 300 that send garbage, while one ordinary client keeps asking
 * for "/" and must get each answer within 1 s of its request (its connect
 * within 3.5 s: a full backlog makes the kernel drop SYNs).
 *
 * At the end: every message that completed was intact both ways (no
 * corruption is ever tolerated), every greenlet is gone, and the process's
 * descriptor count is back to its baseline and its RSS within 64 MiB of
 * it once gev_shutdown() and malloc_trim() ran (glibc keeps freed heap
 * pages for reuse: about 170 MiB of them after a 60 s run, which is the
 * allocator's, not gev's; the RSS before the trim is printed too).  Prints
 * the figures and exits 0, or names what failed and exits 1.
 * Uses only the public API, as a user's program would.
 */
#define _GNU_SOURCE                     /* memmem */
#include <gev.h>
#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MESSAGE (256 * 1024)
#define RSS_TOLERANCE_KIB (64 * 1024)

extern char **environ;

struct stats {
    long connections, messages, bytes, kills, timeouts, corrupt, failed_connects;
    long http_requests, http_bad;
    long drips_cut, garbage_answered, normal_requests;
    double normal_worst, normal_worst_connect;
};

struct soak {
    struct stats st;
    double phase_end;
    int phase;                      /* 1 echo, 2 http, 3 hostile */
    char port[16], http_port[16];
    gev_greenlet **clients;
    size_t nclients;
    unsigned seed;
};

static uint32_t rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 1) & 0x7fffffff;
}

/* FNV-1a: enough to catch a lost, doubled or reordered byte. */
static uint32_t checksum(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int recv_all(int fd, void *buf, size_t n, double timeout)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = gev_recv(fd, (char *)buf + got, n - got, 0, timeout);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* The server side: header {length, checksum}, payload; checked, echoed. */
static void echo_handler(int fd, const struct sockaddr *peer, socklen_t len, void *arg)
{
    struct soak *sk = arg;
    (void)peer, (void)len;
    uint32_t head[2];
    while (recv_all(fd, head, sizeof head, 30.0) == 0 && head[0] <= MAX_MESSAGE) {
        unsigned char *buf = malloc(head[0]);
        int rc = buf ? recv_all(fd, buf, head[0], 30.0) : -1;
        if (rc == 0 && checksum(buf, head[0]) != head[1])
            sk->st.corrupt++;
        if (rc == 0)
            rc = gev_sendall(fd, head, sizeof head, 30.0) < 0 || gev_sendall(fd, buf, head[0], 30.0) < 0;
        free(buf);
        if (rc != 0)
            break;
    }
}

/* One exchange; 0 when the echo came back intact, -1 on an error (killed,
 * timed out, peer gone: the connection is then dropped). */
static int exchange(struct soak *sk, int fd, unsigned *seed)
{
    size_t n = (size_t)1 << (rnd(seed) % 19);          /* log-uniform 1 B - 256 KiB */
    n = n + rnd(seed) % n;
    if (n > MAX_MESSAGE)
        n = MAX_MESSAGE;
    unsigned char *out = malloc(n), *in = malloc(n);
    uint32_t head[2] = { (uint32_t)n, 0 }, back[2];
    int rc = -1;
    if (out && in) {
        for (size_t i = 0; i < n; i++)
            out[i] = (unsigned char)rnd(seed);
        head[1] = checksum(out, n);
        rc = gev_sendall(fd, head, sizeof head, 30.0) < 0 || gev_sendall(fd, out, n, 30.0) < 0 ||
             recv_all(fd, back, sizeof back, 30.0) < 0 || recv_all(fd, in, n, 30.0) < 0 ? -1 : 0;
    }
    if (rc == 0) {
        if (back[0] != head[0] || back[1] != head[1] || memcmp(in, out, n) != 0)
            sk->st.corrupt++;
        sk->st.messages++;
        sk->st.bytes += (long)n;
    }
    int err = errno;                        /* the caller looks at why it failed */
    free(out);
    free(in);
    errno = err;
    return rc;
}

/* A killed client stops; the killer has put another in its place. */
static bool go_on(const struct soak *sk, int phase)
{
    return sk->phase == phase && gev_now() < sk->phase_end && !gev_killed(gev_current());
}

/* A client's connection: counted, or -1 after a failure is counted (a
 * kill's ECANCELED is not a failure) and a short nap before the retry. */
static int client_connect(struct soak *sk, const char *port)
{
    int fd = gev_tcp_connect("127.0.0.1", port, 10.0);
    if (fd >= 0) {
        sk->st.connections++;
        return fd;
    }
    if (errno != ECANCELED) {
        sk->st.failed_connects++;
        if (getenv("SOAK_VERBOSE"))
            fprintf(stderr, "connect: %s\n", strerror(errno));
    }
    gev_sleep(0.01);
    return -1;
}

static void *echo_client(void *arg)
{
    struct soak *sk = arg;
    unsigned seed = sk->seed += 7919;
    while (go_on(sk, 1)) {
        int fd = client_connect(sk, sk->port);
        if (fd < 0)
            continue;
        for (int k = 1 + (int)(rnd(&seed) % 8); k > 0 && go_on(sk, 1); k--) {
            /* One exchange in four runs under a scoped timeout short
             * enough to expire now and then. */
            gev_timeout *t = rnd(&seed) % 4 ? NULL : gev_timeout_start(0.001 * (rnd(&seed) % 20));
            int rc = exchange(sk, fd, &seed);
            if (rc < 0 && errno == ETIMEDOUT && t && gev_timeout_expired(t))
                sk->st.timeouts++;
            if (t)
                gev_timeout_cancel(t);
            if (rc < 0)
                break;
        }
        gev_close(fd);
    }
    return NULL;
}

/* Pipelines DEPTH requests, then reads DEPTH answers of "hello". */
static int http_round(struct soak *sk, int fd, int depth)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: soak\r\n\r\n";
    char all[16 * sizeof req], buf[4096];
    size_t len = 0, have = 0;
    for (int i = 0; i < depth; i++, len += sizeof req - 1)
        memcpy(all + len, req, sizeof req - 1);
    if (gev_sendall(fd, all, len, 10.0) < 0)
        return -1;
    for (int answered = 0; answered < depth;) {
        char *end = memmem(buf, have, "\r\n\r\n", 4);
        if (!end) {
            ssize_t r = gev_recv(fd, buf + have, sizeof buf - have, 0, 10.0);
            if (r <= 0)
                return -1;
            have += (size_t)r;
            continue;
        }
        size_t total = (size_t)(end - buf) + 4 + 5;
        if (have < total) {
            ssize_t r = gev_recv(fd, buf + have, sizeof buf - have, 0, 10.0);
            if (r <= 0)
                return -1;
            have += (size_t)r;
            continue;
        }
        if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || memcmp(end + 4, "hello", 5) != 0)
            sk->st.http_bad++;
        sk->st.http_requests++;
        memmove(buf, buf + total, have - total);
        have -= total;
        answered++;
    }
    return 0;
}

static void *http_client(void *arg)
{
    struct soak *sk = arg;
    unsigned seed = sk->seed += 7919;
    while (go_on(sk, 2)) {
        int fd = client_connect(sk, sk->http_port);
        if (fd < 0)
            continue;
        for (int k = 1 + (int)(rnd(&seed) % 8); k > 0; k--)
            if (http_round(sk, fd, 1 + (int)(rnd(&seed) % 16)) < 0)
                break;
        gev_close(fd);
    }
    return NULL;
}

/* Slowloris: a request line, then a header one byte every 0.2 s, until
 * the server cuts the connection (its header timeout) or the phase ends. */
static void *dripper(void *arg)
{
    struct soak *sk = arg;
    while (go_on(sk, 3)) {
        int fd = gev_tcp_connect("127.0.0.1", sk->http_port, 10.0);
        if (fd < 0) {
            gev_sleep(0.1);
            continue;
        }
        int rc = (int)gev_sendall(fd, "GET / HTTP/1.1\r\n", 16, 10.0);
        while (rc > 0 && go_on(sk, 3) && gev_sleep(0.2) == 0)
            rc = (int)gev_send(fd, "X", 1, 0, 1.0);
        if (rc <= 0 && go_on(sk, 3))
            sk->st.drips_cut++;
        gev_close(fd);
    }
    return NULL;
}

/* Random bytes as a request head: the server answers 400/431/501/505, or
 * closes; either way it must not stop serving others. */
static void *garbage(void *arg)
{
    struct soak *sk = arg;
    unsigned seed = sk->seed += 7919;
    char junk[2048], answer[512];
    while (go_on(sk, 3)) {
        int fd = gev_tcp_connect("127.0.0.1", sk->http_port, 10.0);
        if (fd < 0) {
            gev_sleep(0.1);
            continue;
        }
        size_t n = 1 + rnd(&seed) % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (char)rnd(&seed);
        memcpy(junk + n - (n >= 4 ? 4 : n), "\r\n\r\n", n >= 4 ? 4 : n);
        if (gev_sendall(fd, junk, n, 5.0) == (ssize_t)n &&
            gev_recv(fd, answer, sizeof answer, 0, 5.0) > 0)
            sk->st.garbage_answered++;
        gev_close(fd);
        gev_sleep(0.05);
    }
    return NULL;
}

/* The ordinary client: one request per connection, timed.  Its answer
 * must come within 1 s of the request.  Its connect is bounded apart, at
 * 3.5 s: when the hostile clients fill the listen backlog the kernel drops
 * SYNs, and the client's own retransmits (1 s, then 2 s more) are the
 * kernel's timing, not the server's. */
static void *normal_client(void *arg)
{
    struct soak *sk = arg;
    while (go_on(sk, 3)) {
        double t0 = gev_now();
        int fd = gev_tcp_connect("127.0.0.1", sk->http_port, 10.0);
        double t1 = gev_now();
        int ok = fd >= 0 && http_round(sk, fd, 1) == 0;
        double answer = gev_now() - t1, connect = t1 - t0;
        if (fd >= 0)
            gev_close(fd);
        if (!ok || answer > 1.0 || connect > 3.5) {
            sk->st.http_bad++;
            fprintf(stderr, "soak: ordinary client %s: connect %.3f s, answer %.3f s\n",
                    ok ? "served late" : "not served", connect, answer);
        }
        if (answer > sk->st.normal_worst)
            sk->st.normal_worst = answer;
        if (connect > sk->st.normal_worst_connect)
            sk->st.normal_worst_connect = connect;
        sk->st.normal_requests++;
        gev_sleep(0.05);
    }
    return NULL;
}

static int run_hostile(struct soak *sk, double seconds)
{
    enum { DRIPPERS = 1500, GARBAGE = 300, ALL = DRIPPERS + GARBAGE + 1 };
    gev_greenlet **g = calloc(ALL, sizeof *g);
    int rc = g ? 0 : -1;
    sk->phase = 3;
    sk->phase_end = gev_now() + seconds;
    for (size_t i = 0; g && i < ALL; i++)
        if (!(g[i] = gev_spawn(i < DRIPPERS ? dripper : i < ALL - 1 ? garbage : normal_client, sk)))
            rc = -1;
    if (g && gev_joinall(g, ALL, seconds + 30.0) != 0)
        rc = -1;
    for (size_t i = 0; g && i < ALL; i++)
        gev_release(g[i]);
    free(g);
    sk->phase = 0;
    return rc;
}

/* Kills a random client now and then and puts a new one in its place. */
static void *killer(void *arg)
{
    struct soak *sk = arg;
    gev_fn fn = sk->phase == 1 ? echo_client : http_client;
    while (gev_now() < sk->phase_end && gev_sleep(0.005) == 0) {
        size_t i = rnd(&sk->seed) % sk->nclients;
        if (gev_kill(sk->clients[i], 5.0) == 0)
            sk->st.kills++;
        gev_release(sk->clients[i]);
        sk->clients[i] = gev_spawn(fn, sk);
    }
    return NULL;
}

static int run_phase(struct soak *sk, int phase, double seconds)
{
    gev_fn fn = phase == 1 ? echo_client : http_client;
    sk->phase = phase;
    sk->phase_end = gev_now() + seconds;
    for (size_t i = 0; i < sk->nclients; i++)
        if (!(sk->clients[i] = gev_spawn(fn, sk)))
            return -1;
    gev_greenlet *k = gev_spawn(killer, sk);
    int rc = gev_join(k, seconds + 60);
    gev_release(k);
    if (gev_joinall(sk->clients, sk->nclients, 60.0) != 0)
        rc = -1;
    for (size_t i = 0; i < sk->nclients; i++)
        gev_release(sk->clients[i]);
    sk->phase = 0;
    return rc;
}

/* gev-httpd on an ephemeral port; its first line names the URL. */
static pid_t start_httpd(const char *path, char *port, size_t portlen)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    char *argv[] = { (char *)path, "--port", "0", "--header-timeout", "2", NULL };
    pid_t pid;
    int err = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    char line[256] = "";
    ssize_t n = err ? -1 : gev_read(p[0], line, sizeof line - 1, 10.0);
    close(p[0]);
    char *colon = n > 0 ? strrchr(line, ':') : NULL;
    if (err || !colon) {
        if (!err)
            kill(pid, SIGKILL), waitpid(pid, NULL, 0);
        return -1;
    }
    snprintf(port, portlen, "%d", atoi(colon + 1));
    return pid;
}

static long fd_count(void)
{
    long n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static long status_kib(const char *field)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = atol(line + strlen(field));
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 60;
    struct soak sk = { .nclients = argc > 2 ? (size_t)atol(argv[2]) : 2000, .seed = 12345 };
    const char *httpd = argc > 3 ? argv[3] : "examples/gev-httpd";
    signal(SIGPIPE, SIG_IGN);
    sk.clients = calloc(sk.nclients, sizeof *sk.clients);
    long fds0 = fd_count(), rss0 = status_kib("VmRSS:");

    int lfd = gev_tcp_listen("127.0.0.1", "0", 4096);
    struct sockaddr_storage a;
    socklen_t al = sizeof a;
    if (!sk.clients || lfd < 0 || getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
        perror("soak: listen");
        return 1;
    }
    snprintf(sk.port, sizeof sk.port, "%d", ntohs(((struct sockaddr_in *)&a)->sin_port));
    gev_server *srv = gev_server_new(lfd, echo_handler, &sk);
    double hostile = seconds / 3 > 5 ? seconds / 3 : 5;
    int ok = srv && gev_server_start(srv) == 0 && run_phase(&sk, 1, seconds / 3) == 0;
    ok &= srv && gev_server_stop(srv, 10.0) == 0;
    gev_server_free(srv);

    pid_t pid = start_httpd(httpd, sk.http_port, sizeof sk.http_port);
    if (pid < 0)
        fprintf(stderr, "soak: could not start %s\n", httpd), ok = 0;
    else {
        ok &= run_phase(&sk, 2, seconds / 3) == 0;
        ok &= run_hostile(&sk, hostile) == 0;
        kill(pid, SIGTERM);
        int status;
        ok &= gev_waitpid(pid, &status, 10.0) == pid;
    }
    gev_shutdown();                         /* frees the hub: back to baseline */
    long rss_before_trim = status_kib("VmRSS:");
    malloc_trim(0);                         /* glibc keeps freed heap pages otherwise */

    long fds1 = fd_count(), rss1 = status_kib("VmRSS:"), peak = status_kib("VmHWM:");
    struct stats *s = &sk.st;
    printf("soak: %.0f s, %zu clients: %ld connections, %ld messages, %ld bytes, %ld kills, "
           "%ld timeouts, %ld failed connects; http: %ld requests\n",
           seconds, sk.nclients, s->connections, s->messages, s->bytes, s->kills, s->timeouts,
           s->failed_connects, s->http_requests);
    printf("soak: hostile: %ld slowloris connections cut, %ld garbage heads answered, "
           "ordinary client served %ld times, worst answer %.3f s, worst connect %.3f s\n",
           s->drips_cut, s->garbage_answered, s->normal_requests, s->normal_worst,
           s->normal_worst_connect);
    printf("soak: descriptors %ld -> %ld, RSS %ld -> %ld KiB (%ld before malloc_trim; peak %ld KiB)\n",
           fds0, fds1, rss0, rss1, rss_before_trim, peak);
    const char *why = !ok ? "a phase failed (a greenlet did not finish, or the server did not stop)"
                    : s->corrupt ? "corrupted messages"
                    : s->http_bad ? "bad HTTP answers"
                    : s->messages == 0 || s->http_requests == 0 || s->normal_requests == 0
                      ? "no traffic"
                    : s->drips_cut == 0 ? "no slowloris connection was cut"
                    : fds1 != fds0 ? "descriptors leaked"
                    : rss1 - rss0 > RSS_TOLERANCE_KIB ? "RSS did not come back within 64 MiB"
                    : NULL;
    if (why) {
        printf("soak: FAIL: %s (corrupt %ld, bad http %ld)\n", why, s->corrupt, s->http_bad);
        return 1;
    }
    printf("soak: ok\n");
    free(sk.clients);
    return 0;
}
