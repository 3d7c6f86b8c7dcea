/* gev-echo: a TCP echo server on gev_server.
 *
 *   gev-echo [--host ADDR] [--port N] [--max-clients N]
 *
 * Prints "listening on ADDR:PORT" once it accepts (port 0, the default,
 * picks a free one), then echoes every byte back until the client closes.
 * SIGINT or SIGTERM stops it gracefully: no new connections, the current
 * ones get a second to finish.
 *
 * The handler is written as if each client had a thread of its own:
 * plain read-then-write loops.  gev_recv and gev_sendall switch to the hub
 * while they wait, so thousands of clients share one OS thread.
 */
#include <gev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

/* One greenlet per connection runs this; the server closes fd afterwards. */
static void echo(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)peer; (void)peerlen; (void)arg;
    char buf[16384];
    ssize_t n;
    while ((n = gev_recv(fd, buf, sizeof buf, 0, GEV_FOREVER)) > 0)
        if (gev_sendall(fd, buf, (size_t)n, GEV_FOREVER) < 0)
            break;
}

/* A greenlet that waits for a signal, then stops the server: serve_forever
 * in main returns. */
struct stopper {
    gev_server *server;
    int signum;
};

static void *stop_on_signal(void *arg)
{
    const struct stopper *st = arg;
    if (gev_signal_wait(st->signum, GEV_FOREVER) == 0)
        gev_server_stop(st->server, 1.0);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: gev-echo [--host ADDR] [--port N] [--max-clients N]\n");
    exit(2);
}

/* The port the socket really got (port 0 asks the kernel for one). */
static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "0";
    size_t max_clients = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--host"))
            host = argv[++i];
        else if (!strcmp(argv[i], "--port"))
            port = argv[++i];
        else if (!strcmp(argv[i], "--max-clients"))
            max_clients = strtoul(argv[++i], NULL, 10);
        else
            usage();
    }

    int lfd = gev_tcp_listen(host, port, 1024);
    gev_server *server = lfd < 0 ? NULL : gev_server_new(lfd, echo, NULL);
    if (!server || gev_server_set_max_clients(server, max_clients) < 0) {
        perror("gev-echo: listen");
        return 1;
    }
    printf("listening on %s:%d\n", host, bound_port(lfd));
    fflush(stdout);

    struct stopper st[2] = { { server, SIGINT }, { server, SIGTERM } };
    gev_greenlet *sig[2] = { gev_spawn(stop_on_signal, &st[0]),
                             gev_spawn(stop_on_signal, &st[1]) };
    int rc = gev_server_serve_forever(server);   /* until stopped */
    if (rc < 0)
        perror("gev-echo: serve_forever");
    gev_killall(sig, 2, GEV_FOREVER);
    gev_release(sig[0]);
    gev_release(sig[1]);
    gev_server_free(server);
    gev_shutdown();
    return rc < 0;
}
