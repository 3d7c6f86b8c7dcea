/* The example programs, end to end: each runs as a child process (found
 * in ../examples next to this test's directory, or $GEV_EXAMPLES_DIR),
 * servers print the ephemeral port they listen on, and are always killed
 * by their PID.  The clients here are gev greenlets (raw sockets) and,
 * when installed, curl. */
#define _GNU_SOURCE             /* memrchr */
#include "gevtest.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char examples_dir[PATH_MAX];

/* ---- child processes ----------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int out;                    /* its stdout and stderr, non-blocking */
    char buf[16384];
    size_t len;
    char port[8];
} proc;

/* exec examples/<argv[0]> with argv, behind $GEV_EXAMPLE_WRAPPER if set
 * (e.g. "valgrind -q --error-exitcode=1 --leak-check=full"). */
static void exec_example(char *path, char *const argv[])
{
    char *args[64], *wrapper = getenv("GEV_EXAMPLE_WRAPPER"), *save = NULL;
    int n = 0;
    for (char *w = wrapper ? strtok_r(wrapper, " ", &save) : NULL; w && n < 32;
         w = strtok_r(NULL, " ", &save))
        args[n++] = w;
    args[n++] = path;
    for (int i = 1; argv[i] && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    execvp(args[0], args);
}

/* Start examples/<argv[0]> with argv; output goes to p->buf. */
static void proc_start(proc *p, char *const argv[])
{
    char path[PATH_MAX + 64];
    int fds[2];
    snprintf(path, sizeof path, "%s/%s", examples_dir, argv[0]);
    assert_int_equal(pipe(fds), 0);
    memset(p, 0, sizeof *p);
    fflush(NULL);
    p->pid = fork();
    assert_ge(p->pid, 0);
    if (p->pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        exec_example(path, argv);
        _exit(127);
    }
    close(fds[1]);
    p->out = fds[0];
    assert_int_equal(gev_nonblock(p->out), 0);
}

/* Read output until it contains `needle` (NULL: until EOF) or timeout. */
static bool proc_read_until(proc *p, const char *needle, double timeout)
{
    double end = gevtest_now() + timeout;
    while (!(needle && strstr(p->buf, needle)) && p->len < sizeof p->buf - 1) {
        double left = end - gevtest_now();
        ssize_t n = left > 0 ? gev_read(p->out, p->buf + p->len,
                                        sizeof p->buf - 1 - p->len, left) : -1;
        if (n <= 0)
            return needle == NULL && n == 0;
        p->len += (size_t)n;
        p->buf[p->len] = '\0';
    }
    return needle == NULL || strstr(p->buf, needle) != NULL;
}

/* Wait for the exit status (-1: did not end in time, killed). */
static int proc_wait(proc *p, double timeout)
{
    int status;
    proc_read_until(p, NULL, timeout);
    if (gev_waitpid(p->pid, &status, timeout) != p->pid) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
        status = -1;
    }
    gev_close(p->out);
    if (status == -1)
        print_message("%s", p->buf);
    return status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int proc_kill(proc *p)
{
    kill(p->pid, SIGTERM);
    return proc_wait(p, 10.0);
}

/* Start a server example and read the port from "listening on HOST:PORT". */
static void server_start(proc *p, char *const argv[])
{
    proc_start(p, argv);
    const char *line = proc_read_until(p, "\n", 10.0) ? strstr(p->buf, "listening on ") : NULL;
    const char *eol = line ? strchr(line, '\n') : NULL;
    const char *colon = eol ? memrchr(line, ':', (size_t)(eol - line)) : NULL;
    if (!colon) {
        proc_kill(p);
        fail_msg("%s did not start: %s", argv[0], p->buf);
    }
    snprintf(p->port, sizeof p->port, "%d", atoi(colon + 1));
}

static int run_example(proc *p, char *const argv[], double timeout)
{
    proc_start(p, argv);
    return proc_wait(p, timeout);
}

/* ---- a raw HTTP client --------------------------------------------------------- */

/* Send `request` (len bytes) and read the answer until the server closes
 * or `timeout`.  The answer's status (0: none), the text in resp. */
static int http_raw(const char *port, const char *request, size_t len, char *resp,
                    size_t size, double timeout)
{
    int fd = gev_tcp_connect("127.0.0.1", port, 2.0);
    size_t got = 0;
    ssize_t n;
    assert_ge(fd, 0);
    gev_sendall(fd, request, len, 2.0);
    while (got < size - 1 && (n = gev_recv(fd, resp + got, size - 1 - got, 0, timeout)) > 0)
        got += (size_t)n;
    resp[got] = '\0';
    gev_close(fd);
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    return status;
}

static int http_text(const char *port, const char *request, char *resp, size_t size)
{
    return http_raw(port, request, strlen(request), resp, size, 5.0);
}

static int http_get(const char *port, const char *target, char *resp, size_t size)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                     target);
    return http_raw(port, req, (size_t)n, resp, size, 5.0);
}

static void assert_hello(const char *port)
{
    char resp[1024];
    assert_int_equal(http_get(port, "/", resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "\r\n\r\nhello"));
}

/* ---- gev-hello, gev-echo ----------------------------------------------------------- */

static void test_hello(void **state)
{
    proc p;
    char *argv[] = { "gev-hello", NULL };
    assert_int_equal(run_example(&p, argv, 10.0), 0);
    assert_non_null(strstr(p.buf, gev_backend()));
    assert_non_null(strstr(p.buf, "fast: tick 3"));
    assert_non_null(strstr(p.buf, "the pipe is readable"));
}

static void test_echo_round_trip(void **state)
{
    proc p;
    char *argv[] = { "gev-echo", "--max-clients", "10", NULL };
    char buf[64];
    server_start(&p, argv);
    int fd = gev_tcp_connect("127.0.0.1", p.port, 2.0);
    assert_ge(fd, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gev_sendall(fd, "hello gev", 9, 2.0), 9);
        size_t got = 0;
        ssize_t n;
        while (got < 9 && (n = gev_recv(fd, buf + got, sizeof buf - got, 0, 2.0)) > 0)
            got += (size_t)n;
        assert_int_equal(got, 9);
        assert_memory_equal(buf, "hello gev", 9);
    }
    gev_close(fd);
    assert_int_equal(proc_kill(&p), 0);     /* SIGTERM stops it gracefully */
}

/* gev-upper: stopped with clients still connected, each killed handler
 * kills and joins its writer (under its shield) before freeing their state. */
static void test_upper_stop_joins_writers(void **state)
{
    proc p;
    char *argv[] = { "gev-upper", NULL };
    char buf[16];
    server_start(&p, argv);
    int fd[2];
    for (int i = 0; i < 2; i++) {
        fd[i] = gev_tcp_connect("127.0.0.1", p.port, 2.0);
        assert_ge(fd[i], 0);
        assert_int_equal(gev_sendall(fd[i], "hello", 5, 2.0), 5);
        size_t got = 0;
        ssize_t n;
        while (got < 5 && (n = gev_recv(fd[i], buf + got, sizeof buf - got, 0, 2.0)) > 0)
            got += (size_t)n;
        assert_int_equal(got, 5);
        assert_memory_equal(buf, "HELLO", 5);
    }
    assert_int_equal(proc_kill(&p), 0);     /* handlers killed after 0.5 s */
    assert_non_null(strstr(p.buf, "stopped; 2 writers joined"));
    gev_close(fd[0]);
    gev_close(fd[1]);
}

/* ---- gev-httpd ------------------------------------------------------------------------- */

static void test_httpd_curl(void **state)
{
    if (system("command -v curl >/dev/null 2>&1") != 0) {
        print_message("curl not installed: skipping the curl check\n");
        skip();
    }
    proc p;
    char *argv[] = { "gev-httpd", NULL };
    char cmd[256], out[256] = "";
    server_start(&p, argv);
    /* Two URLs in one curl run: the second reuses the connection. */
    snprintf(cmd, sizeof cmd, "curl -s -S -m 5 -w ' %%{http_code} %%{num_connects}' "
             "http://127.0.0.1:%s/ http://127.0.0.1:%s/", p.port, p.port);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    pclose(f);
    proc_kill(&p);
    assert_string_equal(out, "hello 200 1hello 200 0");   /* keep-alive */
}

static void test_httpd_garbage(void **state)
{
    proc p;
    char *argv[] = { "gev-httpd", NULL };
    char resp[4096];
    static const char junk[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 junk\r\n\r\n";
    server_start(&p, argv);
    int status = http_raw(p.port, junk, sizeof junk - 1, resp, sizeof resp, 5.0);
    assert_true(status == 400 || status == 0);    /* 400, or just closed */
    assert_int_equal(http_text(p.port, "GARBAGE\r\n\r\n", resp, sizeof resp), 400);
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\n\r\n", resp, sizeof resp),
                     400);                      /* no Host */
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\nHost: t\r\n Folded\r\n\r\n",
                               resp, sizeof resp), 400);
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n",
                               resp, sizeof resp), 400);    /* a bare CR */
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\nHost: t\r\r\n\r\n",
                               resp, sizeof resp), 400);    /* a bare CR at the end */
    static const char nul_in_value[] = "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\0 5\r\n\r\n";
    assert_int_equal(http_raw(p.port, nul_in_value, sizeof nul_in_value - 1, resp, sizeof resp,
                              5.0), 400);
    static const char nul_in_target[] = "GET /\0x HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(http_raw(p.port, nul_in_target, sizeof nul_in_target - 1, resp, sizeof resp,
                              5.0), 400);
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\nHost: t\x01\r\n\r\n",
                               resp, sizeof resp), 400);    /* a control character */
    /* long values are checked eight bytes at a time: a DEL or an ESC in the
     * middle of one is found, a tab or a byte above 0x7f is allowed */
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\nHost: t\r\n"
                               "X: aaaaaaaaaaaa\x7f" "aaaaaaaa\r\n\r\n", resp, sizeof resp), 400);
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\nHost: t\r\n"
                               "X: aaaaaaaaaaaaa\x1b" "aaaaaaa\r\n\r\n", resp, sizeof resp), 400);
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                               "X: aaaa\taaaaaaaaa\xe9" "aaaaaa\r\n\r\n", resp, sizeof resp), 200);
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\nHost: t\n\r\n",
                               resp, sizeof resp), 400);    /* bare LF line ends */
    assert_int_equal(http_text(p.port, "\r\n", resp, sizeof resp), 400);
    assert_int_equal(http_text(p.port, "BREW / HTTP/1.1\r\nHost: t\r\n\r\n", resp,
                               sizeof resp), 501);
    assert_int_equal(http_text(p.port, "GET / HTTP/3.0\r\nHost: t\r\n\r\n", resp,
                               sizeof resp), 505);
    assert_hello(p.port);                       /* still serving */
    proc_kill(&p);
}

/* Requests sent back to back in one write are answered in order, each
 * exactly once, and the connection ends after the one that asks for it. */
static void test_httpd_pipelining(void **state)
{
    proc p;
    char *argv[] = { "gev-httpd", NULL };
    char resp[4096];
    server_start(&p, argv);
    const char *three = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                        "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"
                        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_int_equal(http_text(p.port, three, resp, sizeof resp), 200);
#define HELLO_HEAD "HTTP/1.1 200 OK\r\nServer: gev-httpd\r\nContent-Type: text/plain\r\n" \
                   "Content-Length: 5\r\n"
    assert_string_equal(resp, HELLO_HEAD "\r\nhello" HELLO_HEAD "\r\n"
                              HELLO_HEAD "Connection: close\r\n\r\nhello");
#undef HELLO_HEAD
    proc_kill(&p);
}

/* A head that arrives in pieces, cut inside a token, between CR and LF and
 * inside the blank line, is answered once it is whole. */
static void test_httpd_split_head(void **state)
{
    proc p;
    char *argv[] = { "gev-httpd", NULL };
    char resp[4096];
    server_start(&p, argv);
    static const char *const pieces[] = {
        "GE", "T / HT", "TP/1.1\r", "\nHost: t\r\nConnection: CLOSE", "\r\n\r", "\n",
    };
    int fd = gev_tcp_connect("127.0.0.1", p.port, 2.0);
    assert_ge(fd, 0);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        assert_int_equal(gev_recv(fd, resp, sizeof resp, 0, 0.05), -1);   /* no answer yet */
        assert_int_equal(errno, ETIMEDOUT);
        assert_int_equal(gev_sendall(fd, pieces[i], strlen(pieces[i]), 2.0),
                         (ssize_t)strlen(pieces[i]));
    }
    size_t got = 0;
    ssize_t n;
    while ((n = gev_recv(fd, resp + got, sizeof resp - 1 - got, 0, 5.0)) > 0)
        got += (size_t)n;
    assert_int_equal(n, 0);                     /* "Connection: CLOSE" closes */
    resp[got] = '\0';
    assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(resp, "Connection: close\r\n\r\nhello"));
    gev_close(fd);
    proc_kill(&p);
}

static void test_httpd_limits(void **state)
{
    proc p;
    char *argv[] = { "gev-httpd", "--header-timeout", "0.5", NULL };
    char resp[4096];
    static char big[10000];
    server_start(&p, argv);
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX: ");
    memset(big + n, 'a', sizeof big - (size_t)n);
    assert_int_equal(http_raw(p.port, big, sizeof big, resp, sizeof resp, 5.0), 431);
    /* many short lines, each far below the size limit */
    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\n");
    while (n < 1500)
        n += snprintf(big + n, sizeof big - (size_t)n, "X: y\r\n");
    n += snprintf(big + n, sizeof big - (size_t)n, "\r\n");
    assert_int_equal(http_raw(p.port, big, (size_t)n, resp, sizeof resp, 5.0), 431);
    /* slowloris: a head that never ends is cut after the header timeout */
    double t0 = gevtest_now();
    assert_int_equal(http_text(p.port, "GET / HTTP/1.1\r\nHost: t\r\n", resp, sizeof resp), 0);
    double took = gevtest_now() - t0;
    assert_true(took > 0.4 && took < 3.0);
    /* a client that drips a byte at a time is cut as well */
    int fd = gev_tcp_connect("127.0.0.1", p.port, 2.0);
    assert_ge(fd, 0);
    t0 = gevtest_now();
    const char *drip = "GET / HTTP/1.1\r\nHost: t\r\n";
    ssize_t sent = 0;
    for (int i = 0; drip[i] && gev_send(fd, drip + i, 1, 0, 1.0) == 1; i++) {
        sent++;
        gev_sleep(0.1);
    }
    took = gevtest_now() - t0;
    assert_true(sent > 2 && sent < (ssize_t)strlen(drip));   /* cut mid-head */
    assert_true(took > 0.4 && took < 3.0);
    gev_close(fd);
    /* an idle connection, nothing sent, is closed after the timeout too */
    t0 = gevtest_now();
    assert_int_equal(http_raw(p.port, "", 0, resp, sizeof resp, 5.0), 0);
    took = gevtest_now() - t0;
    assert_true(took > 0.4 && took < 3.0);
    assert_hello(p.port);
    proc_kill(&p);
}

/* Make a root with a file, a subdirectory, and ways out of it. */
static void make_root(char *root, size_t size)
{
    char path[PATH_MAX + 64];
    snprintf(root, size, "/tmp/gev-test-root-XXXXXX");
    assert_non_null(mkdtemp(root));
    snprintf(path, sizeof path, "%s/www", root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/www/sub", root);
    assert_int_equal(mkdir(path, 0755), 0);
    const char *files[][2] = { { "secret.txt", "secret\n" }, { "www/index.html", "<p>hi</p>\n" },
                               { "www/sub/a.txt", "in sub\n" } };
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", root, files[i][0]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(files[i][1], f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/www/out", root);
    assert_int_equal(symlink("../secret.txt", path), 0);
    snprintf(path, sizeof path, "%s/www/etc", root);
    assert_int_equal(symlink("/etc", path), 0);
}

static void remove_root(const char *root)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static void test_httpd_files_and_escapes(void **state)
{
    char root[PATH_MAX], www[PATH_MAX + 8], resp[4096];
    make_root(root, sizeof root);
    snprintf(www, sizeof www, "%s/www", root);
    proc p;
    char *argv[] = { "gev-httpd", "--root", www, NULL };
    server_start(&p, argv);
    assert_int_equal(http_get(p.port, "/index.html", resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "\r\n\r\n<p>hi</p>\n"));
    assert_non_null(strstr(resp, "Content-Type: text/html"));
    assert_int_equal(http_get(p.port, "/sub/a.txt", resp, sizeof resp), 200);
    static const char *const escapes[] = {
        "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
        "/out", "/etc/passwd", "//etc/passwd", "/etc/hostname", "/sub/../index.html",
        "/sub", "/nothing-here", "/a%00b",
    };
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        int status = http_get(p.port, escapes[i], resp, sizeof resp);
        if (status != 403 && status != 404 && status != 400)
            fail_msg("%s: got %d", escapes[i], status);
        assert_null(strstr(resp, "secret\n"));
        assert_null(strstr(resp, "root:"));
    }
    assert_int_equal(http_text(p.port, "GET ../secret.txt HTTP/1.1\r\nHost: t\r\n\r\n",
                               resp, sizeof resp), 400);    /* not an origin-form path */
    assert_hello(p.port);
    proc_kill(&p);
    remove_root(root);
}

/* ---- gev-download ------------------------------------------------------------------------ */

static void test_download_demo_speedup(void **state)
{
    proc p;
    char *argv[] = { "gev-download", "--demo", "20", NULL };
    assert_int_equal(run_example(&p, argv, 60.0), 0);
    const char *s = strstr(p.buf, "speed-up: ");
    assert_non_null(s);
    double speedup = atof(s + 10);
    print_message("%s", p.buf);
    assert_gt(speedup, 5.0);
}

static void test_download_from_httpd(void **state)
{
    proc srv, p;
    char *sargv[] = { "gev-httpd", NULL };
    char url[64];
    server_start(&srv, sargv);
    snprintf(url, sizeof url, "http://127.0.0.1:%s/", srv.port);
    char *argv[] = { "gev-download", url, url, NULL };
    assert_int_equal(run_example(&p, argv, 20.0), 0);
    proc_kill(&srv);
    assert_non_null(strstr(p.buf, "total: 2 URLs (0 failed), 10 bytes"));
}

static void test_download_bad_urls(void **state)
{
    proc p;
    char *argv[] = { "gev-download", "--timeout", "5", "https://example.com/", "http:///x",
                     "http://h:99999/", "http://h:x/", "http://127.0.0.1:1/", NULL };
    double t0 = gevtest_now();
    assert_int_equal(run_example(&p, argv, 20.0), 1);
    assert_lt(gevtest_now() - t0, 5.0);
    assert_non_null(strstr(p.buf, "unsupported scheme"));
    assert_non_null(strstr(p.buf, "no host"));
    assert_non_null(strstr(p.buf, "bad port"));
    assert_non_null(strstr(p.buf, "Connection refused"));
    assert_non_null(strstr(p.buf, "total: 5 URLs (5 failed)"));
}

/* ---- gev-stuck ------------------------------------------------------------------------ */

/* The longest gap between two of gev-stuck's "tick at T s" lines. */
static double longest_tick_gap(const char *out)
{
    double last = 0, gap = 0;
    for (const char *t = strstr(out, "tick at "); t; t = strstr(t + 1, "tick at ")) {
        double at = atof(t + 8);
        if (at - last > gap)
            gap = at - last;
        last = at;
    }
    return gap;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *t = strstr(text, needle); t; t = strstr(t + 1, needle))
        n++;
    return n;
}

/* The doc/debugging.md walkthrough's program: its 0.6 s of work stops the
 * ticker, and the monitor names the greenlet and the function, once. */
static void test_stuck_monitor_names_the_culprit(void **state)
{
    proc p;
    char *argv[] = { "gev-stuck", NULL };
    setenv("GEV_MONITOR", "0.1", 1);
    proc_start(&p, argv);
    unsetenv("GEV_MONITOR");
    assert_int_equal(proc_wait(&p, 30.0), 0);
    print_message("%s", p.buf);
    assert_int_equal(count_of(p.buf, "tick at "), 10);
    assert_ge(longest_tick_gap(p.buf), 0.5);        /* the work is 0.6 s of real time */
    assert_int_equal(count_of(p.buf, "gev monitor: "), 1);
    assert_non_null(strstr(p.buf, "gev monitor: greenlet \"crunch\" (id 7) has run "));
    assert_non_null(strstr(p.buf, "(checksum_the_slow_way+"));
}

static void test_stuck_dump_and_forever(void **state)
{
    proc p;
    char *dump[] = { "gev-stuck", "--dump", NULL };
    assert_int_equal(run_example(&p, dump, 30.0), 0);
    assert_non_null(strstr(p.buf, "  id 4 \"reader\" waiting on fd "));
    assert_non_null(strstr(p.buf, "  id 5 \"waiter\" waiting on event for "));
    assert_non_null(strstr(p.buf, "  id 7 \"crunch\" sleeping for "));
    assert_null(strstr(p.buf, "gev monitor: "));
    char *forever[] = { "gev-stuck", "--forever", NULL };
    setenv("GEV_DEBUG", "1", 1);
    proc_start(&p, forever);
    unsetenv("GEV_DEBUG");
    assert_int_equal(proc_wait(&p, 30.0), 0);
    assert_non_null(strstr(p.buf, "the main greenlet would wait forever"));
    assert_non_null(strstr(p.buf, "  id 5 \"waiter\" waiting on event for "));
    assert_non_null(strstr(p.buf, "gev-stuck: gev_event_wait: "));
}

/* A server that answers garbage, then one that never answers. */
static void garbage_handler(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    char buf[1024];
    (void)peer; (void)peerlen;
    gev_recv(fd, buf, sizeof buf, 0, 2.0);
    if (arg)
        gev_sendall(fd, "\x01\x02 not http\r\n\r\n", 16, 2.0);
    else
        gev_sleep(5.0);         /* killed when the server stops */
}

static void test_download_garbage_and_timeout(void **state)
{
    int lg = gev_tcp_listen("127.0.0.1", "0", 16), lh = gev_tcp_listen("127.0.0.1", "0", 16);
    gev_server *sg = gev_server_new(lg, garbage_handler, (void *)1);
    gev_server *sh = gev_server_new(lh, garbage_handler, NULL);
    assert_int_equal(gev_server_start(sg), 0);
    assert_int_equal(gev_server_start(sh), 0);
    struct sockaddr_in a, b;
    socklen_t la = sizeof a, lb = sizeof b;
    getsockname(lg, (struct sockaddr *)&a, &la);
    getsockname(lh, (struct sockaddr *)&b, &lb);
    char u1[64], u2[64];
    snprintf(u1, sizeof u1, "http://127.0.0.1:%u/", (unsigned)ntohs(a.sin_port));
    snprintf(u2, sizeof u2, "http://127.0.0.1:%u/", (unsigned)ntohs(b.sin_port));
    proc p;
    char *argv[] = { "gev-download", "--timeout", "0.5", u1, u2, NULL };
    proc_start(&p, argv);
    int status = proc_wait(&p, 20.0);   /* our servers run while we wait */
    gev_server_free(sg);
    gev_server_free(sh);
    assert_int_equal(status, 1);
    assert_non_null(strstr(p.buf, "not an HTTP/1.x response"));
    assert_non_null(strstr(p.buf, "timed out after 0.5 s"));
}

int main(int argc, char **argv)
{
    const char *env = getenv("GEV_EXAMPLES_DIR");
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(examples_dir, sizeof examples_dir, "%s", env ? env : dirname(self));
    if (!env)
        strncat(examples_dir, "/../examples", sizeof examples_dir - strlen(examples_dir) - 1);
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        gevtest(test_hello),
        gevtest(test_echo_round_trip),
        gevtest(test_upper_stop_joins_writers),
        gevtest(test_httpd_curl),
        gevtest(test_httpd_garbage),
        gevtest(test_httpd_pipelining),
        gevtest(test_httpd_split_head),
        gevtest(test_httpd_limits),
        gevtest(test_httpd_files_and_escapes),
        gevtest(test_download_demo_speedup),
        gevtest(test_download_from_httpd),
        gevtest(test_download_bad_urls),
        gevtest(test_stuck_monitor_names_the_culprit),
        gevtest(test_stuck_dump_and_forever),
        gevtest(test_download_garbage_and_timeout),
    };
    return cmocka_run_group_tests_name("examples", tests, NULL, NULL);
}
