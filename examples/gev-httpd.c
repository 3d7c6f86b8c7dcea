/* gev-httpd: a small HTTP/1.1 server with keep-alive, on gev_server.
 *
 *   gev-httpd [--host ADDR] [--port N] [--root DIR] [--header-timeout S]
 *             [--max-clients N] [--delay S]
 *
 * GET / answers "hello"; with --root, GET /a/b.txt serves DIR/a/b.txt.
 * --delay S holds every answer back S seconds (gev_sleep: other clients go
 * on meanwhile), a slow backend for clients that should overlap their waits.
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
 *  - oversized heads: more than HEAD_MAX bytes or LINES_MAX header lines
 *    get 431;
 *  - malformed requests: 400, and so does a NUL, a bare CR or LF or any
 *    other control byte anywhere in the head; methods other than GET and
 *    HEAD: 501;
 *  - path escapes: the path is opened one component at a time below the
 *    root with openat(O_NOFOLLOW), so "..", symlinks (even ones pointing
 *    inside the root) and anything else that could leave the root get 403
 *    or 404, without a window between checking a path and opening it.
 * Request bodies are not read: a request that announces one is answered
 * and then the connection is closed, so the body is never mistaken for
 * the next request.
 */
#include <gev.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
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
static double answer_delay;     /* --delay */

/* ---- parsing a request head ---------------------------------------------------- */

#define LINES_MAX 100           /* header lines (Apache's LimitRequestFields) */

typedef struct {
    int status;                     /* 0, or the error to answer */
    const char *method;             /* NUL-terminated inside the buffer */
    char *target;                   /* likewise; decoded in place */
    int minor;                      /* HTTP/1.<minor> */
    bool head_only;                 /* HEAD */
    bool keep_alive;
    bool has_body;                  /* Content-Length > 0 or Transfer-Encoding */
} request;

/* The head is parsed in one pass over its bytes, each checked against a
 * table of what may stand there, and the pass itself finds where the head
 * ends.  A head is parsed per request, and searching it again for each
 * thing it may hold costs more than the rest of the request's work in user
 * space.  Because every byte is checked, a NUL, a bare CR or LF or another
 * control character anywhere gets 400 (RFC 9112 lets a server reject
 * them; accepting them is how request smuggling starts). */
static bool tchar[256];         /* RFC 9110 token characters (methods, names) */
static bool vchar[256];         /* what may stand in a field value */

static void init_tables(void)
{
    for (int c = 0; c < 256; c++) {
        tchar[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
        vchar[c] = c == '\t' || (c >= ' ' && c != 0x7f);
    }
}

static char *skip_tchars(char *p)
{
    while (tchar[(unsigned char)*p])
        p++;
    return p;
}

/* Skip the bytes a field value may hold.  Values are most of a head's
 * bytes, so they go eight at a time where they can: a word holds nothing
 * else if no byte of it is below ' ' (HTAB is, so a word with a tab takes
 * the byte loop) and none is DEL.  (x - 0x20..20) & ~x & 0x80..80 is
 * nonzero exactly when some byte of x is below 0x20; x ^ 0x7f..7f turns a
 * DEL into a zero byte, found the same way.) */
static char *skip_vchars(char *p, const char *end)
{
    const uint64_t ones = 0x0101010101010101u, highs = ones * 0x80;
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, sizeof w);
        uint64_t del = w ^ (ones * 0x7f);
        if (((w - ones * ' ') & ~w & highs) | ((del - ones) & ~del & highs))
            break;
        p += 8;
    }
    while (vchar[(unsigned char)*p])
        p++;
    return p;
}

/* A header name (len bytes of tchars) against a lower-case name.  Setting
 * bit 0x20 lower-cases a letter and leaves '-' and digits alone; no other
 * tchar becomes a letter or '-' by it. */
static bool name_is(const char *name, size_t len, const char *want, size_t want_len)
{
    if (len != want_len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((name[i] | 0x20) != want[i])
            return false;
    return true;
}
#define NAME_IS(name, len, lit) name_is(name, len, lit, sizeof lit - 1)

/* Whether the n bytes at v hold `word`, in any case. */
static bool has_word(const char *v, size_t n, const char *word)
{
    size_t len = strlen(word);
    for (size_t i = 0; i + len <= n; i++)
        if (!strncasecmp(v + i, word, len))
            return true;
    return false;
}

/* Act on one header; [value, vend) is its value, leading blanks included. */
static void apply_header(request *r, const char *name, size_t len,
                         const char *value, const char *vend, bool *has_host)
{
    while (value < vend && (*value == ' ' || *value == '\t'))
        value++;
    size_t vlen = (size_t)(vend - value);
    if (NAME_IS(name, len, "host"))
        *has_host = true;
    else if (NAME_IS(name, len, "connection"))
        r->keep_alive = has_word(value, vlen, "close") ? false
                      : has_word(value, vlen, "keep-alive") ? true : r->keep_alive;
    else if (NAME_IS(name, len, "transfer-encoding"))
        r->has_body = true;
    else if (NAME_IS(name, len, "content-length"))
        while (value < vend && *value != ' ' && *value != '\t')
            r->has_body |= *value++ != '0';
}

enum { HEAD_EOF = 0, HEAD_FAILED = -1, HEAD_MORE = -2 };

/* What the head's end means once it is all here. */
static int finish_head(request *r, bool has_host)
{
    if (r->minor == 1 && !has_host)
        return 400;                 /* RFC 9112: HTTP/1.1 requires Host */
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return 501;
    r->head_only = r->method[0] == 'H';
    if (r->has_body)
        r->keep_alive = false;
    return 0;
}

#define NEED(cond) do { if (p == end) return HEAD_MORE; if (!(cond)) goto bad; } while (0)

/* Parse the head at data[0..len) (data[len] is a NUL, which no table
 * accepts, so every loop stops at the end).  The head's length, with
 * r->status 0 or the error to answer; HEAD_MORE if it is not all here
 * yet.  The buffer is only written to once the head is known complete, so
 * a partial head can be parsed again when more arrives. */
static ssize_t parse_head(char *data, size_t len, request *r)
{
    char *p = data, *end = data + len;
    memset(r, 0, sizeof *r);
    char *method_end = p = skip_tchars(p);
    NEED(p > data && *p == ' ');
    char *target = ++p;
    while ((unsigned char)*p > ' ' && *p != 0x7f)
        p++;
    NEED(p > target && *p == ' ');
    char *target_end = p++;
    if (end - p < 10)               /* "HTTP/1.1\r\n" */
        return memchr(p, '\n', (size_t)(end - p)) ? (r->status = 400, (ssize_t)len) : HEAD_MORE;
    if (memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[8] != '\r' || p[9] != '\n')
        goto bad;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        r->status = 505;
    r->minor = p[7] - '0';
    r->keep_alive = r->minor == 1;
    p += 10;

    bool has_host = false;
    for (int lines = 0;; lines++) {
        NEED(true);
        if (*p == '\r')
            break;
        if (lines == LINES_MAX)
            return r->status = 431, (ssize_t)len;
        char *name = p;
        p = skip_tchars(p);
        NEED(p > name && *p == ':');        /* also refuses obsolete line folding */
        char *value = ++p;
        p = skip_vchars(p, end);
        NEED(*p == '\r');
        p++;
        NEED(*p == '\n');
        apply_header(r, name, (size_t)(value - 1 - name), value, p - 1, &has_host);
        p++;
    }
    p++;
    NEED(*p == '\n');
    *method_end = *target_end = '\0';
    r->method = data;
    r->target = target;
    if (!r->status)
        r->status = finish_head(r, has_host);
    return p + 1 - data;
bad:
    r->status = 400;
    return (ssize_t)len;
}
#undef NEED

/* ---- reading a request head ------------------------------------------------ */

typedef struct {
    char data[HEAD_MAX + 1];    /* + the NUL parse_head() wants after the bytes */
    size_t len;                 /* bytes in data (a pipelined request may follow the head) */
} conn_buf;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read until the buffer holds a whole head, and parse it into r.  Two
 * limits, as nginx has them: a connection with nothing sent yet waits
 * header_timeout for a first byte; from that byte on, the whole head must
 * arrive within header_timeout too (one deadline for all reads, so a
 * client dripping a byte at a time is cut as surely as a silent one).  The
 * clock is read only once part of a head is here: the usual head comes in
 * one piece, and the wait for it needs no clock of ours (gev_recv's
 * timeout is relative).  A partial head is parsed again only once a new
 * line has begun, so a head dripped byte by byte costs a parse per line,
 * not per byte.  Returns the length of the head (r->status says if it is
 * an error), or HEAD_EOF (closed before a byte), HEAD_FAILED. */
static ssize_t read_head(int fd, conn_buf *b, request *r)
{
    double deadline = 0;            /* 0: no byte of this head yet */
    size_t checked = 0;             /* bytes that held no whole head */
    for (;;) {
        if (b->len > 0 && (checked == 0 ||
                           memchr(b->data + checked, '\n', b->len - checked))) {
            b->data[b->len] = '\0';
            ssize_t head = parse_head(b->data, b->len, r);
            if (head != HEAD_MORE)
                return head;
        }
        if (b->len == HEAD_MAX) {
            memset(r, 0, sizeof *r);
            r->status = 431;
            return (ssize_t)b->len;
        }
        double left = header_timeout;
        if (b->len > 0 && deadline == 0) {
            deadline = now() + header_timeout;
        } else if (b->len > 0) {
            left = deadline - now();
            if (left <= 0)
                return HEAD_FAILED;
        }
        ssize_t n = gev_recv(fd, b->data + b->len, HEAD_MAX - b->len, 0, left);
        if (n <= 0)
            return n == 0 && b->len == 0 ? HEAD_EOF : HEAD_FAILED;
        checked = b->len;
        b->len += (size_t)n;
    }
}

/* Drop the head just served, keeping what a pipelining client sent after it. */
static void consume_head(conn_buf *b, size_t head)
{
    b->len -= head;
    memmove(b->data, b->data + head, b->len);
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

/* Percent-decode the path of `target` in place (a decoded path is never
 * longer), dropping the query.  0, or 400 (bad escape, NUL). */
static int decode_path(char *target)
{
    char *out = target;
    for (const char *p = target; *p && *p != '?' && *p != '#'; p++) {
        char c = *p;
        if (c == '%') {
            int hi = hex(p[1]), lo = hi < 0 ? -1 : hex(p[2]);
            if (lo < 0 || (hi == 0 && lo == 0))
                return 400;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        *out++ = c;
    }
    *out = '\0';
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
    char *path = r->target;
    int rc, status = path[0] == '/' ? decode_path(path) : 400;
    if (answer_delay > 0 && gev_sleep(answer_delay) < 0)
        return -1;
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

/* Read, parse and answer requests until the connection should end. */
static void serve_requests(int fd, conn_buf *b)
{
    for (;;) {
        request r;
        ssize_t head = read_head(fd, b, &r);
        if (head <= 0)
            return;             /* closed, too slow, or an error */
        if (r.status) {
            send_error(fd, r.status, &r);
            return;
        }
        if (answer(fd, &r) < 0)
            return;
        consume_head(b, (size_t)head);
    }
}

/* The handler: one greenlet per connection runs it; the server closes fd
 * when it returns.  The input buffer lives on the heap, not the greenlet's
 * stack: the few bytes of it a request touches then sit beside the stack
 * frames of the calls instead of 8 KiB away from them, which keeps the
 * memory each connection touches per request to a page or two. */
static void serve_connection(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)peer; (void)peerlen; (void)arg;
    conn_buf *b = malloc(sizeof *b);
    if (!b)
        return;
    b->len = 0;
    /* Answers are single sends or end with a short one: do not let Nagle
     * hold the tail back until the client's delayed ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    serve_requests(fd, b);
    free(b);
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: gev-httpd [--host ADDR] [--port N] [--root DIR] "
                    "[--header-timeout SECONDS] [--max-clients N] [--delay SECONDS]\n");
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
        else if (!strcmp(opt, "--delay"))
            answer_delay = atof(val);
        else
            usage();
    }
    format_hello();
    init_tables();
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
