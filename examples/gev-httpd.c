/* gev-httpd: a small HTTP/1.1 server with keep-alive, on gev_server.
 *
 *   gev-httpd [--host ADDR] [--port N] [--root DIR] [--header-timeout S]
 *             [--max-clients N]
 *
 * GET / answers "hello"; with --root, GET /a/b.txt serves DIR/a/b.txt.
 * Prints "listening on http://ADDR:PORT/" once it accepts (port 0, the default,
 * picks a free one).
 *
 * How it is built: gev_server gives each connection its own greenlet, and
 * the handler (serve_connection) is an ordinary sequential loop: read a
 * request head, answer it, repeat while the client keeps the connection
 * alive.  Every gev_recv / gev_sendall switches to the hub while it waits,
 * so one thread serves every client.
 *
 * What it defends against:
 *  - slow clients (slowloris): the whole request head must arrive within
 *    --header-timeout seconds (10) of its first byte, and an idle
 *    connection gets as long for a first byte, else it is cut;
 *  - oversized heads: more than HEAD_MAX bytes get 431;
 *  - malformed requests: 400; methods other than GET and HEAD: 501;
 *  - path escapes: the path is opened one component at a time below the
 *    root with openat(O_NOFOLLOW), so "..", symlinks (even ones pointing
 *    inside the root) and anything else that could leave the root get 403
 *    or 404, without a window between checking a path and opening it.
 * Request bodies are not read: a request that announces one is answered
 * and then the connection is closed, so the body is never mistaken for
 * the next request.
 */
#define _GNU_SOURCE         /* memmem, strcasestr */
#include <gev.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192           /* request line + headers */
#define SEND_TIMEOUT 30.0       /* a client that does not read for that long */
#define FILE_CHUNK 16384

static int root_fd = -1;        /* --root, opened once; -1: no files */
static double header_timeout = 10.0;

/* ---- reading a request head ------------------------------------------------ */

typedef struct {
    char data[HEAD_MAX];
    size_t len;                 /* bytes in data (a pipelined request may follow the head) */
} conn_buf;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { HEAD_EOF = 0, HEAD_FAILED = -1, HEAD_TOO_BIG = -2 };

/* Read until the buffer holds a whole head ("\r\n\r\n").  Two limits, as
 * nginx has them: a connection with nothing sent yet waits header_timeout
 * for a first byte; from that byte on, the whole head must arrive within
 * header_timeout too (one deadline for all reads, so a client dripping a
 * byte at a time is cut as surely as a silent one).  The clock is read only
 * once part of a head is here: the usual head comes in one piece, and the
 * wait for it needs no clock of ours (gev_recv's timeout is relative).
 * Returns the length of the head, or HEAD_EOF (closed before a byte),
 * HEAD_FAILED, HEAD_TOO_BIG. */
/* Where the head ends ("\r\n\r\n") in data[0..len), or NULL; the first
 * `searched` bytes were looked at before, so only the new ones are. */
static char *find_head_end(char *data, size_t searched, size_t len)
{
    size_t i = searched > 3 ? searched - 3 : 0;
    char *lf;
    while ((lf = memchr(data + i, '\n', len - i))) {
        size_t at = (size_t)(lf - data);
        if (at >= 3 && lf[-1] == '\r' && lf[-2] == '\n' && lf[-3] == '\r')
            return lf + 1;
        i = at + 1;
    }
    return NULL;
}

static ssize_t read_head(int fd, conn_buf *b)
{
    double deadline = 0;            /* 0: no byte of this head yet */
    for (size_t searched = 0;; searched = b->len) {
        char *end = find_head_end(b->data, searched, b->len);
        if (end)
            return end - b->data;
        if (b->len == sizeof b->data)
            return HEAD_TOO_BIG;
        double left = header_timeout;
        if (b->len > 0 && deadline == 0) {
            deadline = now() + header_timeout;
        } else if (b->len > 0) {
            left = deadline - now();
            if (left <= 0)
                return HEAD_FAILED;
        }
        ssize_t n = gev_recv(fd, b->data + b->len, sizeof b->data - b->len, 0, left);
        if (n <= 0)
            return n == 0 && b->len == 0 ? HEAD_EOF : HEAD_FAILED;
        b->len += (size_t)n;
    }
}

/* ---- parsing ------------------------------------------------------------------- */

typedef struct {
    const char *method, *target;    /* NUL-terminated inside the buffer */
    int minor;                      /* HTTP/1.<minor> */
    bool head_only;                 /* HEAD */
    bool keep_alive;
    bool has_body;                  /* Content-Length > 0 or Transfer-Encoding */
} request;

/* The parser works on lines as [start, end) ranges, with memchr: a head
 * is parsed per request, and byte loops or calls that look for a NUL cost
 * more than the rest of the request's work in user space. */

/* RFC 9110 token characters, as a table filled once by main(). */
static bool tchar[256];

static void init_tchars(void)
{
    for (int c = 0; c < 256; c++)
        tchar[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool all_tchars(const char *p, const char *end)
{
    for (; p < end; p++)
        if (!tchar[(unsigned char)*p])
            return false;
    return true;
}

/* "METHOD SP TARGET SP HTTP/1.x" in [line, eol): 0, or the status to answer. */
static int parse_request_line(char *line, char *eol, request *r)
{
    char *sp1 = memchr(line, ' ', (size_t)(eol - line));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || !all_tchars(line, sp1))
        return 400;
    *sp1 = *sp2 = '\0';
    r->method = line;
    r->target = sp1 + 1;
    const char *version = sp2 + 1;
    if (eol - version != 8 || memcmp(version, "HTTP/", 5) != 0 || version[6] != '.')
        return 400;
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
        return 505;
    r->minor = version[7] - '0';
    r->keep_alive = r->minor == 1;
    for (const char *p = r->target; p < sp2; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 400;
    return 0;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* A header name (len bytes) against a lower-case name, ignoring case. */
static bool name_is(const char *name, size_t len, const char *want)
{
    size_t i = 0;
    while (i < len && want[i] && ascii_lower(name[i]) == want[i])
        i++;
    return i == len && !want[i];
}

/* One "Name: value" line in [line, eol), NUL-terminated at eol: 0, or the
 * status to answer. */
static int parse_header(char *line, char *eol, request *r, bool *has_host)
{
    char *colon = memchr(line, ':', (size_t)(eol - line));
    if (!colon || colon == line || !all_tchars(line, colon))
        return 400;                 /* also catches obsolete line folding */
    size_t len = (size_t)(colon - line);
    char *value = colon + 1;
    value += strspn(value, " \t");
    if (name_is(line, len, "host"))
        *has_host = true;
    else if (name_is(line, len, "connection"))
        r->keep_alive = strcasestr(value, "close") ? false
                      : strcasestr(value, "keep-alive") ? true : r->keep_alive;
    else if (name_is(line, len, "transfer-encoding"))
        r->has_body = true;
    else if (name_is(line, len, "content-length"))
        r->has_body |= strspn(value, "0") != strcspn(value, " \t");
    return 0;
}

/* The CR of the CRLF that ends the line at `line` (the head ends at `end`),
 * or NULL for a line with a bare CR (RFC 9112 lets a server reject those). */
static char *end_of_line(char *line, const char *end)
{
    char *cr = memchr(line, '\r', (size_t)(end - line));
    return cr && cr[1] == '\n' ? cr : NULL;
}

/* Split the head (len bytes, ending in "\r\n\r\n") in place and parse it. */
static int parse_head(char *head, size_t len, request *r)
{
    memset(r, 0, sizeof *r);
    if (memchr(head, '\0', len))
        return 400;                 /* the string functions below would stop there */
    char *end = head + len - 2;     /* the blank line */
    *end = '\0';
    char *line = head, *eol = end_of_line(line, end);
    if (!eol)
        return 400;
    *eol = '\0';
    int status = parse_request_line(line, eol, r);
    bool has_host = false;
    for (line = eol + 2; !status && line < end; line = eol + 2) {
        if (!(eol = end_of_line(line, end)))
            return 400;
        *eol = '\0';
        status = parse_header(line, eol, r, &has_host);
    }
    if (!status && r->minor == 1 && !has_host)
        status = 400;               /* RFC 9112: HTTP/1.1 requires Host */
    if (!status && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        status = 501;
    r->head_only = !status && !strcmp(r->method, "HEAD");
    if (r->has_body)
        r->keep_alive = false;
    return status;
}

/* ---- answering ---------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default:  return "Internal Server Error";
    }
}

/* The status line and headers for a body of `length` bytes, followed by
 * `body` if not NULL, into out: the length, so one send does it all. */
static size_t format_response(char *out, size_t size, int status, const char *type,
                              long long length, const char *body, bool keep_alive)
{
    int n = snprintf(out, size,
                     "HTTP/1.1 %d %s\r\nServer: gev-httpd\r\nContent-Type: %s\r\n"
                     "Content-Length: %lld\r\n%s\r\n%s",
                     status, reason(status), type, length,
                     keep_alive ? "" : "Connection: close\r\n", body ? body : "");
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

static int send_all(int fd, const char *data, size_t n)
{
    return gev_sendall(fd, data, n, SEND_TIMEOUT) < 0 ? -1 : 0;
}

/* "hello", formatted once: the answer a benchmark asks for over and over. */
static char hello[2][160];      /* [keep_alive] */
static size_t hello_len[2];

static void format_hello(void)
{
    for (int keep = 0; keep < 2; keep++)
        hello_len[keep] = format_response(hello[keep], sizeof hello[keep], 200,
                                          "text/plain", 5, "hello", keep);
}

/* Closing a socket with unread input makes the kernel send a reset, which
 * can destroy an answer the client has not read yet.  After an error, say
 * we are done (FIN) and swallow what the client still sends, for a moment. */
static void linger(int fd)
{
    char sink[4096];
    double end = now() + 1.0;
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 16 && end > now(); i++)
        if (gev_recv(fd, sink, sizeof sink, 0, end - now()) <= 0)
            break;
}

/* An error status, with its reason as the body; the connection closes. */
static int send_error(int fd, int status, const request *r)
{
    char text[64], out[512];
    snprintf(text, sizeof text, "%d %s\n", status, reason(status));
    size_t n = format_response(out, sizeof out, status, "text/plain",
                               (long long)strlen(text), r->head_only ? NULL : text, false);
    int rc = send_all(fd, out, n);
    if (rc == 0)
        linger(fd);
    return -1;                  /* the connection ends here */
}

/* ---- files ----------------------------------------------------------------------- */

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode the path of `target` (the query is dropped) into out.
 * 0, or 400 (bad escape, NUL, too long). */
static int decode_path(const char *target, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = target; *p && *p != '?' && *p != '#'; p++) {
        char c = *p;
        if (c == '%') {
            int hi = hex(p[1]), lo = hi < 0 ? -1 : hex(p[2]);
            if (lo < 0 || (hi == 0 && lo == 0))
                return 400;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (n + 1 >= size)
            return 400;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

static int status_of_errno(int err)
{
    return err == ENOENT || err == ENOTDIR ? 404 : 403;
}

/* Open `path` below the root, one component at a time, never following a
 * symlink and refusing "..": fd, or -status. */
static int open_below_root(char *path)
{
    int dir = dup(root_fd);
    char *save = NULL;
    for (char *comp = strtok_r(path, "/", &save); comp && dir >= 0;
         comp = strtok_r(NULL, "/", &save)) {
        if (!strcmp(comp, "."))
            continue;
        if (!strcmp(comp, "..")) {
            close(dir);
            return -403;
        }
        int fd = openat(dir, comp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        int err = errno;
        close(dir);
        if (fd < 0)
            return -status_of_errno(err);
        dir = fd;
    }
    return dir < 0 ? -500 : dir;
}

static const char *content_type(const char *path)
{
    static const char *const types[][2] = {
        { ".html", "text/html" }, { ".txt", "text/plain" }, { ".css", "text/css" },
        { ".js", "text/javascript" }, { ".json", "application/json" },
        { ".png", "image/png" }, { ".jpg", "image/jpeg" }, { ".svg", "image/svg+xml" },
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(dot, types[i][0]))
            return types[i][1];
    return "application/octet-stream";
}

/* Copy the file to the client.  Files are read with plain read(2): from
 * the page cache that does not block for long (a server for cold disks
 * would read in gev_threadpool_run). */
static int send_file_body(int fd, int file, long long size)
{
    char chunk[FILE_CHUNK];
    while (size > 0) {
        ssize_t n = read(file, chunk, sizeof chunk);
        if (n <= 0)
            return -1;          /* shrank under us: the length we sent is wrong */
        if (gev_sendall(fd, chunk, (size_t)n, SEND_TIMEOUT) < 0)
            return -1;
        size -= n;
    }
    return 0;
}

/* Serve the file at `path` (decoded) below the root. */
static int serve_file(int fd, char *path, const request *r)
{
    const char *type = content_type(path);
    int file = open_below_root(path);       /* consumes path (strtok) */
    if (file < 0)
        return send_error(fd, -file, r);
    struct stat st;
    if (fstat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(file);
        return send_error(fd, 403, r);      /* directories are not listed */
    }
    char head[256];
    size_t n = format_response(head, sizeof head, 200, type, (long long)st.st_size,
                               NULL, r->keep_alive);
    int rc = send_all(fd, head, n);
    if (rc == 0 && !r->head_only)
        rc = send_file_body(fd, file, (long long)st.st_size);
    close(file);
    return rc;
}

/* Answer one parsed request: 0 to go on with the connection, -1 to close. */
static int answer(int fd, request *r)
{
    char path[HEAD_MAX];
    int rc, status = r->target[0] == '/' ? decode_path(r->target, path, sizeof path) : 400;
    if (status)
        rc = send_error(fd, status, r);
    else if (!strcmp(path, "/"))
        rc = send_all(fd, hello[r->keep_alive],     /* HEAD: without the body */
                      hello_len[r->keep_alive] - (r->head_only ? strlen("hello") : 0));
    else if (root_fd < 0)
        rc = send_error(fd, 404, r);
    else
        rc = serve_file(fd, path, r);
    return rc == 0 && r->keep_alive && !status ? 0 : -1;
}

/* ---- the connection ----------------------------------------------------------- */

/* The handler: one greenlet per connection runs it; the server closes fd
 * when it returns. */
static void serve_connection(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)peer; (void)peerlen; (void)arg;
    conn_buf b;
    b.len = 0;
    /* Answers are single sends or end with a short one: do not let Nagle
     * hold the tail back until the client's delayed ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (;;) {
        ssize_t head = read_head(fd, &b);
        request r = { .keep_alive = false };
        if (head == HEAD_TOO_BIG)
            send_error(fd, 431, &r);
        if (head <= 0)
            return;             /* closed, too slow, too big, or an error */
        int status = parse_head(b.data, (size_t)head, &r);
        if (status) {
            send_error(fd, status, &r);
            return;
        }
        if (answer(fd, &r) < 0)
            return;
        /* Keep what a pipelining client sent after this request. */
        b.len -= (size_t)head;
        memmove(b.data, b.data + head, b.len);
    }
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: gev-httpd [--host ADDR] [--port N] [--root DIR] "
                    "[--header-timeout SECONDS] [--max-clients N]\n");
    exit(2);
}

static int listening_port(int fd)
{
    struct sockaddr_in6 sa;         /* large enough for either family */
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    return ntohs(sa.sin6_port);     /* sin_port and sin6_port share an offset */
}

/* Listen, and announce where: scripts and tests read this line. */
static gev_server *open_server(const char *host, const char *port)
{
    int lfd = gev_tcp_listen(host, port, 1024);
    gev_server *server = lfd < 0 ? NULL : gev_server_new(lfd, serve_connection, NULL);
    if (server)
        printf("listening on http://%s:%d/\n", host, listening_port(lfd));
    fflush(stdout);
    return server;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "0", *root = NULL;
    size_t max_clients = 0;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[++i] : NULL;
        if (!val)
            usage();
        else if (!strcmp(opt, "--host"))
            host = val;
        else if (!strcmp(opt, "--port"))
            port = val;
        else if (!strcmp(opt, "--root"))
            root = val;
        else if (!strcmp(opt, "--header-timeout"))
            header_timeout = atof(val);
        else if (!strcmp(opt, "--max-clients"))
            max_clients = strtoul(val, NULL, 10);
        else
            usage();
    }
    format_hello();
    init_tchars();
    if (root && (root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        perror(root);
        return 1;
    }

    gev_server *server = open_server(host, port);
    if (!server) {
        perror("gev-httpd: listen");
        return 1;
    }
    gev_server_set_max_clients(server, max_clients);    /* 0: no limit */

    /* Runs until the listener fails; stop it with a signal. */
    int rc = gev_server_serve_forever(server);
    perror("gev-httpd: serve_forever");
    gev_server_free(server);
    gev_shutdown();
    return rc < 0;
}
