/* tests/realserver.h: real servers that a test starts and stops itself.
 *
 * The patch tests run unmodified client libraries (libpq, hiredis, libcurl)
 * against the real thing: a throw-away PostgreSQL cluster, a redis-server,
 * an `openssl s_server` with a certificate made for the run.  Each listens
 * on a free loopback port, runs in a temporary directory, and is stopped by
 * its PID (a fast-shutdown signal, SIGKILL after 10 s) and its directory
 * removed.  A server whose program is not installed is a skip (exit 77 with
 * a message), never a silent pass.
 *
 * Start servers before gev_patch_all(): the helpers use plain blocking
 * calls and fork/exec, which need no hub.
 */
#ifndef GEV_TESTS_REALSERVER_H
#define GEV_TESTS_REALSERVER_H

#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#define RS_EXIT_SKIP 77

typedef struct {
    pid_t pid;
    int port;
    char dir[PATH_MAX];         /* the server's temporary directory */
    const char *name;
} rs_server;

static inline __attribute__((format(printf, 1, 2), noreturn)) void rs_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("SKIP: ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    fflush(stdout);
    exit(RS_EXIT_SKIP);
}

/* Bounds on wall time are multiplied by this: 5 under valgrind, which runs
 * the client side (TLS, protocol parsing) tens of times slower. */
static inline double rs_time_scale(void)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return 5.0;
#endif
    return 1.0;
}

static inline double rs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A loopback port nobody listens on now (the kernel's choice for port 0). */
static inline int rs_free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Whether something accepts connections on 127.0.0.1:port. */
static inline bool rs_port_open(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The unprivileged user a server runs as when we are root (PostgreSQL
 * refuses to run as root): "postgres" if it exists, else "nobody". */
static inline const struct passwd *rs_unprivileged_user(void)
{
    if (geteuid() != 0)
        return NULL;
    const struct passwd *pw = getpwnam("postgres");
    return pw ? pw : getpwnam("nobody");
}

/* fork + exec argv as `user` (NULL: as we are), stdout and stderr to
 * dir/NAME.log; returns the child's pid. */
static inline pid_t rs_spawn(const rs_server *s, const struct passwd *user, char *const argv[])
{
    char log[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/%s.log", s->dir, s->name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    setpgid(0, 0);              /* a kill of the group reaches its helpers */
    if (user && (setgroups(0, NULL) < 0 || setgid(user->pw_gid) < 0 || setuid(user->pw_uid) < 0))
        _exit(126);
    execvp(argv[0], argv);
    _exit(127);
}

/* Run argv to completion (as `user`); its exit status, or -1. */
static inline int rs_run(const rs_server *s, const struct passwd *user, char *const argv[])
{
    int status;
    pid_t pid = rs_spawn(s, user, argv);
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline void rs_make_dir(rs_server *s, const char *name, const struct passwd *owner)
{
    s->name = name;
    s->pid = -1;
    snprintf(s->dir, sizeof s->dir, "%s/gev-%s.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
    if (!mkdtemp(s->dir))
        rs_skip("%s: mkdtemp: %s", name, strerror(errno));
    if (owner && chown(s->dir, owner->pw_uid, owner->pw_gid) < 0)
        rs_skip("%s: chown %s: %s", name, s->dir, strerror(errno));
}

/* Print the server's log (for a start that failed). */
static inline void rs_show_log(const rs_server *s)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "tail -20 '%s/%s.log'", s->dir, s->name);
    if (system(cmd) < 0)
        perror("system");
}

/* Wait up to `timeout` s for the port to accept; false (and the log shown)
 * if the server died or never listened. */
static inline bool rs_wait_listening(rs_server *s, double timeout)
{
    double end = rs_now() + timeout;
    while (rs_now() < end) {
        if (rs_port_open(s->port))
            return true;
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = -1;
            break;
        }
        usleep(20000);
    }
    rs_show_log(s);
    return false;
}

/* Stop by PID (SIGINT: PostgreSQL's fast shutdown, a clean exit for the
 * others), SIGKILL after 10 s; then remove the directory. */
static inline void rs_stop(rs_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGINT);
        double end = rs_now() + 10;
        while (waitpid(s->pid, NULL, WNOHANG) == 0) {
            if (rs_now() > end) {
                kill(-s->pid, SIGKILL);
                kill(s->pid, SIGKILL);
                waitpid(s->pid, NULL, 0);
                break;
            }
            usleep(20000);
        }
        s->pid = -1;
    }
    if (s->dir[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

static inline bool rs_have(const char *program)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", program);
    return system(cmd) == 0;
}

/* ---- PostgreSQL ------------------------------------------------------------ */

/* The newest installed server's bin directory (Debian keeps initdb and
 * postgres off PATH, in /usr/lib/postgresql/N/bin). */
static inline bool rs_pg_bindir(char *out, size_t size)
{
    glob_t g;
    bool found = false;
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        const char *newest = g.gl_pathv[g.gl_pathc - 1];     /* glob sorts */
        snprintf(out, size, "%.*s", (int)(strrchr(newest, '/') - newest), newest);
        found = true;
    } else if (rs_have("initdb") && rs_have("postgres")) {
        snprintf(out, size, "%s", "");
        found = true;
    }
    globfree(&g);
    return found;
}

/* initdb + postgres in a temporary directory, trust auth for user "gev" on
 * 127.0.0.1:port (and a socket in the directory). */
static inline void rs_pg_start(rs_server *s)
{
    char bin[PATH_MAX - 32], initdb[PATH_MAX], postgres[PATH_MAX], data[PATH_MAX + 8];
    char port[16];
    if (!rs_pg_bindir(bin, sizeof bin))
        rs_skip("PostgreSQL server not installed (apt-get install postgresql)");
    snprintf(initdb, sizeof initdb, "%s%sinitdb", bin, bin[0] ? "/" : "");
    snprintf(postgres, sizeof postgres, "%s%spostgres", bin, bin[0] ? "/" : "");
    const struct passwd *user = rs_unprivileged_user();
    rs_make_dir(s, "postgres", user);
    snprintf(data, sizeof data, "%s/data", s->dir);
    char *init_argv[] = { initdb, "-D", data, "-A", "trust", "-U", "gev", "--no-sync",
                          "-E", "UTF8", NULL };
    if (rs_run(s, user, init_argv) != 0) {
        rs_show_log(s);
        rs_stop(s);
        rs_skip("initdb failed");
    }
    s->port = rs_free_port();
    snprintf(port, sizeof port, "%d", s->port);
    char *run_argv[] = { postgres, "-D", data, "-p", port, "-k", s->dir,
                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                         "-c", "max_connections=150", NULL };
    s->pid = rs_spawn(s, user, run_argv);
    if (!rs_wait_listening(s, 30)) {
        rs_stop(s);
        rs_skip("postgres did not start");
    }
}

/* ---- Redis ---------------------------------------------------------------- */

static inline void rs_redis_start(rs_server *s)
{
    char port[16];
    if (!rs_have("redis-server"))
        rs_skip("redis-server not installed (apt-get install redis-server)");
    rs_make_dir(s, "redis", NULL);
    s->port = rs_free_port();
    snprintf(port, sizeof port, "%d", s->port);
    char *argv[] = { "redis-server", "--port", port, "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", s->dir,
                     "--daemonize", "no", NULL };
    s->pid = rs_spawn(s, NULL, argv);
    if (!rs_wait_listening(s, 15)) {
        rs_stop(s);
        rs_skip("redis-server did not start");
    }
}

/* ---- TLS: openssl s_server -www -------------------------------------------- */

/* A throw-away self-signed certificate for localhost and 127.0.0.1, in
 * s->dir/cert.pem (clients trust exactly that file), and an s_server that
 * answers each connection with its status page. */
static inline void rs_tls_start(rs_server *s)
{
    char cert[PATH_MAX + 16], key[PATH_MAX + 16], accept_at[64];
    if (!rs_have("openssl"))
        rs_skip("openssl not installed (apt-get install openssl)");
    rs_make_dir(s, "tls", NULL);
    snprintf(cert, sizeof cert, "%s/cert.pem", s->dir);
    snprintf(key, sizeof key, "%s/key.pem", s->dir);
    char *req_argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                         "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", NULL };
    if (rs_run(s, NULL, req_argv) != 0) {
        rs_show_log(s);
        rs_stop(s);
        rs_skip("openssl req could not make a certificate");
    }
    s->port = rs_free_port();
    snprintf(accept_at, sizeof accept_at, "127.0.0.1:%d", s->port);
    char *argv[] = { "openssl", "s_server", "-accept", accept_at, "-cert", cert,
                     "-key", key, "-www", "-quiet", NULL };
    s->pid = rs_spawn(s, NULL, argv);
    if (!rs_wait_listening(s, 15)) {
        rs_stop(s);
        rs_skip("openssl s_server did not start");
    }
}

#endif
