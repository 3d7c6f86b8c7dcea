/* gev-download: fetch web pages concurrently, one greenlet per URL.
 *
 *   gev-download [--sequential] [--timeout S] URL...
 *   gev-download --demo N
 *
 * The heart of it is main_urls(): spawn a greenlet per URL, then join
 * them all.  fetch() itself is plain sequential code (connect, send,
 * read); every call that would block switches to the hub instead, so
 * while one greenlet waits for its server the others make progress.
 * With --sequential the same fetch() runs one URL after another.
 *
 * Plain HTTP/1.1 only (no TLS), bodies with Content-Length, chunked, or
 * up to the close; redirects are reported, not followed.  Every URL has a
 * deadline (--timeout, 30 s) set with a scoped gev_timeout, which bounds
 * the whole fetch (DNS, connect, every read) without passing a timeout to
 * each call.
 *
 * --demo N starts a local HTTP server (a gev_server in this same thread)
 * that answers every request after 50 ms, fetches N pages from it one
 * after another and then all at once, and prints both times.
 */
#define _GNU_SOURCE             /* memmem, strcasestr */
#include <gev.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

static double url_timeout = 30.0;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- URLs ---------------------------------------------------------------- */

typedef struct {
    char host[256], port[8];
    const char *path;           /* points into the URL; "" means "/" */
} url_parts;

/* The port part of a URL ("" for none) into u->port: false if bad. */
static bool parse_port(const char *port, size_t len, url_parts *u)
{
    char *stop;
    long n = len ? strtol(port, &stop, 10) : 80;
    if (len && (len >= sizeof u->port || stop != port + len))
        return false;
    snprintf(u->port, sizeof u->port, "%ld", n);
    return n >= 1 && n <= 65535;
}

/* Split "http://host[:port][/path]" ("[v6addr]" allowed): NULL, or what
 * is wrong with the URL. */
static const char *parse_url(const char *url, url_parts *u)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return strstr(url, "://") ? "unsupported scheme (only http://)" : "not an http:// URL";
    const char *host = url + 7, *end;
    if (*host == '[') {                          /* an IPv6 literal */
        end = strchr(++host, ']');
        if (!end)
            return "unterminated [IPv6 address]";
    } else {
        end = host + strcspn(host, ":/?#");
    }
    size_t hlen = (size_t)(end - host);
    if (hlen == 0 || hlen >= sizeof u->host)
        return hlen ? "host name too long" : "no host";
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    end += *end == ']';
    const char *port = *end == ':' ? end + 1 : end;
    size_t plen = strcspn(port, "/?#");
    if ((port == end && plen) || !parse_port(port, plen, u))
        return "bad port";
    u->path = port + plen;
    return NULL;
}

/* ---- reading a response ------------------------------------------------------ */

/* A read buffer over a socket.  All reads wait without their own limit:
 * the greenlet's scoped timeout ends them. */
typedef struct {
    int fd;
    char buf[16384];
    size_t pos, len;
} reader;

/* More bytes into the buffer: > 0, 0 at EOF, -1 on error (errno). */
static ssize_t fill(reader *r)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == sizeof r->buf) {
        errno = EMSGSIZE;
        return -1;
    }
    ssize_t n = gev_recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0, GEV_FOREVER);
    if (n > 0)
        r->len += (size_t)n;
    return n;
}

/* The next "...\r\n" (terminator stripped, NUL-terminated, in the buffer),
 * or NULL with *why set. */
static char *read_line(reader *r, const char **why)
{
    for (;;) {
        char *start = r->buf + r->pos;
        char *eol = memmem(start, r->len - r->pos, "\r\n", 2);
        if (eol) {
            *eol = '\0';
            r->pos = (size_t)(eol + 2 - r->buf);
            return start;
        }
        ssize_t n = fill(r);
        if (n <= 0) {
            *why = n < 0 ? (errno == EMSGSIZE ? "line too long" : NULL)
                 : r->len > r->pos ? "connection closed in the middle of a line"
                                   : "connection closed early";
            return NULL;
        }
    }
}

/* Skip `n` body bytes (n < 0: up to EOF).  Adds what it read to *size.
 * 0, or -1 with *why (NULL: see errno). */
static int skip_body(reader *r, long long n, long long *size, const char **why)
{
    while (n != 0) {
        if (r->pos == r->len) {
            r->pos = r->len = 0;
            ssize_t got = fill(r);
            if (got == 0 && n < 0)
                return 0;               /* the body ends at the close */
            if (got <= 0) {
                *why = got == 0 ? "connection closed before the end of the body" : NULL;
                return -1;
            }
        }
        size_t have = r->len - r->pos;
        size_t take = n < 0 || (long long)have < n ? have : (size_t)n;
        r->pos += take;
        *size += (long long)take;
        if (n > 0)
            n -= (long long)take;
    }
    return 0;
}

/* A chunked body: "<hex size>[;ext]\r\n<data>\r\n" ... "0\r\n<trailers>\r\n". */
static int skip_chunked(reader *r, long long *size, const char **why)
{
    for (;;) {
        char *line = read_line(r, why), *end;
        if (!line)
            return -1;
        errno = 0;
        long long n = strtoll(line, &end, 16);
        if (end == line || n < 0 || errno || (*end && *end != ';' && *end != ' ')) {
            *why = "bad chunk size";
            return -1;
        }
        if (n == 0)
            break;
        if (skip_body(r, n, size, why) < 0 || !(line = read_line(r, why)))
            return -1;
        if (*line) {
            *why = "chunk not followed by CRLF";
            return -1;
        }
    }
    char *line;
    while ((line = read_line(r, why)) && *line)
        ;                               /* trailers: ignored */
    return line ? 0 : -1;
}

typedef struct {
    int status;
    long long size;             /* body bytes */
    double seconds;
    const char *error;          /* NULL if a response came in whole */
    char error_buf[160];
} result;

/* Read the head; leave the body framing in *length (-1: to EOF) and
 * *chunked.  0, or -1 with *why. */
static int read_head(reader *r, result *res, long long *length, bool *chunked,
                     const char **why)
{
    char *line = read_line(r, why);
    int minor;
    if (!line)
        return -1;
    if (sscanf(line, "HTTP/1.%1d %3d", &minor, &res->status) != 2 ||
        res->status < 100 || res->status > 999) {
        *why = "not an HTTP/1.x response";
        return -1;
    }
    *length = -1;
    *chunked = false;
    while ((line = read_line(r, why)) && *line) {
        char *value = strchr(line, ':');
        if (!value) {
            *why = "bad header line";
            return -1;
        }
        *value++ = '\0';
        if (!strcasecmp(line, "Content-Length"))
            *length = strtoll(value, NULL, 10);
        else if (!strcasecmp(line, "Transfer-Encoding"))
            *chunked = strcasestr(value, "chunked") != NULL;
    }
    if (*length < -1) {
        *why = "bad Content-Length";
        return -1;
    }
    return line ? 0 : -1;
}

/* Send the request and read the whole response over fd. */
static void exchange(int fd, const url_parts *u, result *res)
{
    char request[2048];
    const char *why = NULL;
    bool v6 = strchr(u->host, ':') != NULL;
    int n = snprintf(request, sizeof request,               /* no #fragment */
                     "GET %s%.*s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                     "User-Agent: gev-download\r\nAccept-Encoding: identity\r\n"
                     "Connection: close\r\n\r\n",
                     *u->path == '/' ? "" : "/", (int)strcspn(u->path, "#"), u->path,
                     v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
    if (n < 0 || (size_t)n >= sizeof request) {
        res->error = "URL too long";
        return;
    }
    if (gev_sendall(fd, request, (size_t)n, GEV_FOREVER) < 0) {
        res->error = strerror(errno);
        return;
    }
    reader *rd = malloc(sizeof *rd);    /* 16 KiB: keep greenlet stacks small */
    if (!rd) {
        res->error = strerror(errno);
        return;
    }
    rd->fd = fd;
    rd->pos = rd->len = 0;
    long long length;
    bool chunked;
    int rc = read_head(rd, res, &length, &chunked, &why);
    if (rc == 0 && res->status != 204 && res->status != 304 && res->status >= 200)
        rc = chunked ? skip_chunked(rd, &res->size, &why)
                     : skip_body(rd, length, &res->size, &why);
    free(rd);
    if (rc < 0)
        res->error = why ? why : strerror(errno);
}

/* Fetch one URL: fills res, never fails otherwise. */
static void fetch(const char *url, result *res)
{
    url_parts u;
    double start = now();
    memset(res, 0, sizeof *res);
    if ((res->error = parse_url(url, &u)))
        return;
    /* From here on every blocking call of this greenlet fails with
     * ETIMEDOUT once the URL's time is up. */
    gev_timeout *deadline = gev_timeout_start(url_timeout);
    int fd = gev_tcp_connect(u.host, u.port, GEV_FOREVER);
    if (fd < 0) {
        snprintf(res->error_buf, sizeof res->error_buf, "cannot connect: %s",
                 errno == EADDRNOTAVAIL ? "unknown host, or no address" : strerror(errno));
        res->error = res->error_buf;
    } else {
        exchange(fd, &u, res);
        gev_close(fd);
    }
    if (deadline && gev_timeout_expired(deadline)) {
        snprintf(res->error_buf, sizeof res->error_buf, "timed out after %g s", url_timeout);
        res->error = res->error_buf;
    }
    gev_timeout_cancel(deadline);
    res->seconds = now() - start;
}

static void print_result(const char *url, const result *res)
{
    if (res->error)
        printf("ERROR %-40s %s (%.3f s)\n", url, res->error, res->seconds);
    else
        printf("%3d   %-40s %10lld bytes  %.3f s\n", res->status, url, res->size,
               res->seconds);
}

/* ---- fetching many ------------------------------------------------------------- */

typedef struct {
    const char *url;
    result res;
    bool quiet;
} job;

/* The greenlet body: one URL. */
static void *fetch_job(void *arg)
{
    job *j = arg;
    fetch(j->url, &j->res);
    if (!j->quiet)
        print_result(j->url, &j->res);
    return NULL;
}

/* Every job in its own greenlet, all at once.  This is the whole trick. */
static int fetch_concurrently(job *jobs, size_t n)
{
    gev_greenlet **gs = calloc(n, sizeof *gs);
    if (!gs)
        return -1;
    size_t spawned = 0;
    while (spawned < n && (gs[spawned] = gev_spawn(fetch_job, &jobs[spawned])))
        spawned++;
    int rc = gev_joinall(gs, spawned, GEV_FOREVER);
    for (size_t i = 0; i < spawned; i++)
        gev_release(gs[i]);
    free(gs);
    return spawned == n ? rc : -1;
}

static void fetch_sequentially(job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fetch_job(&jobs[i]);
}

/* Fetch the jobs one way or the other; returns the wall time, or -1. */
static double fetch_all(job *jobs, size_t n, bool sequential)
{
    double start = now();
    if (sequential)
        fetch_sequentially(jobs, n);
    else if (fetch_concurrently(jobs, n) < 0)
        return -1;
    return now() - start;
}

static int count_failures(const job *jobs, size_t n)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += jobs[i].res.error != NULL;
    return failed;
}

static int main_urls(char **urls, size_t n, bool sequential)
{
    job *jobs = calloc(n, sizeof *jobs);
    if (!jobs)
        return 1;
    for (size_t i = 0; i < n; i++)
        jobs[i].url = urls[i];
    double secs = fetch_all(jobs, n, sequential);
    long long bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += jobs[i].res.size;
    int failed = count_failures(jobs, n);
    printf("total: %zu URLs (%d failed), %lld bytes in %.3f s (%s)\n", n, failed, bytes,
           secs, sequential ? "sequential" : "concurrent");
    free(jobs);
    return failed || secs < 0;
}

/* ---- the demo ------------------------------------------------------------------- */

#define DEMO_DELAY 0.05
#define DEMO_PAGE 102400        /* bytes per page, as in the peers' benchmark */

static char demo_page[DEMO_PAGE];

/* The demo server's handler: read the request, wait 50 ms (a slow
 * backend), send the page.  Odd-numbered pages go out chunked, so both
 * kinds of body are exercised. */
static void demo_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)peer; (void)peerlen; (void)arg;
    char req[4096];
    size_t len = 0;
    ssize_t n;
    while (!memmem(req, len, "\r\n\r\n", 4) &&
           (n = gev_recv(fd, req + len, sizeof req - len - 1, 0, 10.0)) > 0)
        len += (size_t)n;
    req[len] = '\0';
    if (gev_sleep(DEMO_DELAY) < 0)
        return;
    unsigned page = 0;
    bool chunked = sscanf(req, "GET /page/%u", &page) == 1 && page % 2;
    char head[160];
    int hlen = chunked
        ? snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                   "Connection: close\r\n\r\n%x\r\n", DEMO_PAGE)
        : snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n", DEMO_PAGE);
    if (gev_sendall(fd, head, (size_t)hlen, 10.0) >= 0 &&
        gev_sendall(fd, demo_page, sizeof demo_page, 10.0) >= 0 && chunked)
        gev_sendall(fd, "\r\n0\r\n\r\n", 7, 10.0);
}

/* Many sockets at once: lift the soft fd limit to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Time one way of fetching the demo pages; -1 if a page went wrong. */
static double demo_round(job *jobs, size_t n, bool sequential)
{
    double secs = fetch_all(jobs, n, sequential);
    for (size_t i = 0; i < n; i++)
        if (jobs[i].res.error || jobs[i].res.size != DEMO_PAGE) {
            fprintf(stderr, "gev-download: %s: %s\n", jobs[i].url,
                    jobs[i].res.error ? jobs[i].res.error : "wrong size");
            return -1;
        }
    return secs;
}

static int run_demo(gev_server *server, const char *port, size_t n)
{
    job *jobs = calloc(n, sizeof *jobs);
    char (*urls)[64] = calloc(n, sizeof *urls);
    if (!jobs || !urls)
        return 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%s/page/%zu", port, i);
        jobs[i] = (job){ .url = urls[i], .quiet = true };
    }
    printf("gev-download demo (%s backend): %zu pages of %d KiB from http://127.0.0.1:%s/,\n"
           "each answered after %.0f ms\n\n", gev_backend(), n, DEMO_PAGE / 1024, port,
           DEMO_DELAY * 1000);
    fflush(stdout);
    double seq = demo_round(jobs, n, true);
    double conc = seq < 0 ? -1 : demo_round(jobs, n, false);
    if (conc > 0) {
        printf("  %-12s %9s %10s\n", "mode", "time", "pages/s");
        printf("  %-12s %8.3fs %10.1f\n", "sequential", seq, (double)n / seq);
        printf("  %-12s %8.3fs %10.1f\n", "concurrent", conc, (double)n / conc);
        printf("  speed-up: %.1fx\n", seq / conc);
    }
    free(jobs);
    free(urls);
    gev_server_stop(server, 1.0);
    return conc > 0 ? 0 : 1;
}

static int main_demo(size_t n)
{
    raise_fd_limit();
    memset(demo_page, 'x', sizeof demo_page);
    int lfd = gev_tcp_listen("127.0.0.1", "0", 1024);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    gev_server *server = lfd < 0 ? NULL : gev_server_new(lfd, demo_handler, NULL);
    if (!server || getsockname(lfd, (struct sockaddr *)&sa, &len) < 0 ||
        gev_server_start(server) < 0) {
        perror("gev-download: demo server");
        return 1;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)ntohs(sa.sin_port));
    int rc = run_demo(server, port, n);
    gev_server_free(server);
    return rc;
}

/* ---- main ------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: gev-download [--sequential] [--timeout SECONDS] URL...\n"
                    "       gev-download --demo N\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bool sequential = false;
    long demo = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (!strcmp(argv[i], "--sequential"))
            sequential = true;
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            url_timeout = atof(argv[++i]);
        else if (!strcmp(argv[i], "--demo") && i + 1 < argc)
            demo = strtol(argv[++i], NULL, 10);
        else
            usage();
    }
    if (demo < 0 || (demo == 0 && i == argc) || (demo > 0 && i < argc) || url_timeout <= 0)
        usage();
    size_t nurls = i < argc ? (size_t)(argc - i) : 0;
    int rc = demo ? main_demo((size_t)demo) : main_urls(argv + i, nurls, sequential);
    gev_shutdown();
    return rc;
}
