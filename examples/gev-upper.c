/* gev-upper: a TCP server that sends back what it reads, in upper case,
 * with a reader and a writer greenlet per connection.
 *
 *   gev-upper [PORT]
 *
 * Listens on 127.0.0.1 and prints "listening on 127.0.0.1:PORT" (port 0,
 * the default, picks a free one).  SIGTERM stops it: no new connections,
 * the current ones get half a second, then their handlers are killed; on
 * exit it prints how many writers were joined.  (gev-echo shows options,
 * SIGINT and the port of any address.)
 *
 * The point is the cleanup.  The handler (the reader) shares a connection
 * record with its writer greenlet.  When the server kills the handler, the
 * writer may still be running on that record, so the handler must stop it
 * and wait for it before freeing it.  But once killed, every blocking call
 * of the handler fails at once with ECANCELED, the join included.  So the
 * handler turns on its cancellation shield for the cleanup:
 *
 *     bool was = gev_shield(true);
 *     gev_kill(writer, 1.0);       // returns once the writer has ended
 *     free(state);
 *     gev_shield(was);
 */
#include <gev.h>
#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#define CHUNK 4096

/* What the two greenlets of a connection share. */
struct conn {
    int fd;
    gev_queue *out;             /* chunks for the writer (malloc'd) */
};

static int writers_joined;

static void *writer(void *arg)
{
    struct conn *c = arg;
    void *item;
    while (gev_queue_get(c->out, &item, GEV_FOREVER) == 0) {
        char *chunk = item;
        size_t n = strlen(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)toupper((unsigned char)chunk[i]);
        int rc = gev_sendall(c->fd, chunk, n, GEV_FOREVER);
        free(chunk);
        if (rc < 0)
            break;
    }
    return NULL;
}

/* Give the writer its chunks; 0 once the client closed, -1 on an error or
 * when killed. */
static int read_loop(struct conn *c)
{
    char buf[CHUNK];
    ssize_t n;
    while ((n = gev_recv(c->fd, buf, sizeof buf - 1, 0, GEV_FOREVER)) > 0) {
        buf[n] = '\0';
        char *chunk = strdup(buf);
        if (!chunk || gev_queue_put(c->out, chunk, GEV_FOREVER) < 0) {
            free(chunk);
            return -1;
        }
    }
    return n == 0 ? 0 : -1;
}

/* The reader: one greenlet per connection; the server closes fd after. */
static void handle(int fd, const struct sockaddr *peer, socklen_t peerlen, void *arg)
{
    (void)peer; (void)peerlen; (void)arg;
    struct conn *c = malloc(sizeof *c);
    if (!c)
        return;
    c->fd = fd;
    c->out = gev_queue_new(16);
    gev_greenlet *w = c->out ? gev_spawn(writer, c) : NULL;
    if (w) {
        read_loop(c);           /* until EOF, an error, or a kill */
        /* Killed or not, the writer still uses c: stop it and wait for it
         * (a clean EOF could let it drain the queue first instead).  The
         * shield lets the wait happen even after our own kill. */
        bool was = gev_shield(true);
        if (gev_kill(w, 1.0) == 0)
            writers_joined++;
        gev_shield(was);
        gev_release(w);
    }
    void *item;
    while (c->out && gev_queue_get(c->out, &item, 0) == 0)
        free(item);
    gev_queue_free(c->out);
    free(c);
}

/* Waits for SIGTERM, then stops the server: serve_forever in main returns
 * once the handlers are gone. */
static void *stop_on_sigterm(void *server)
{
    if (gev_signal_wait(SIGTERM, GEV_FOREVER) == 0)
        gev_server_stop(server, 0.5);
    return NULL;
}

int main(int argc, char **argv)
{
    int lfd = gev_tcp_listen("127.0.0.1", argc > 1 ? argv[1] : "0", 128);
    gev_server *server = lfd < 0 ? NULL : gev_server_new(lfd, handle, NULL);
    if (!server) {
        perror("gev-upper: listen");
        return 1;
    }
    struct sockaddr_in sa;      /* the port it got */
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    printf("listening on 127.0.0.1:%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    gev_greenlet *stopper = gev_spawn(stop_on_sigterm, server);
    int rc = gev_server_serve_forever(server);
    if (rc < 0)
        perror("gev-upper: serve_forever");
    gev_kill(stopper, GEV_FOREVER);
    gev_release(stopper);
    gev_server_free(server);
    printf("stopped; %d writers joined\n", writers_joined);
    gev_shutdown();
    return rc < 0;
}
