/* gev-curl-many: gevent's classic example in C, with an unmodified blocking
 * HTTP client.
 *
 *   gev-curl-many URL...
 *
 * Python's version:
 *
 *     from gevent import monkey; monkey.patch_all()
 *     def download(url): print(url, len(urlopen(url).read()))
 *     gevent.joinall([gevent.spawn(download, url) for url in urls])
 *
 * Here download() calls libcurl's blocking curl_easy_perform(), which knows
 * nothing of gev.  gev_patch_all() makes the libc calls underneath it
 * (connect, poll, recv, send, getaddrinfo...) switch to the hub instead of
 * blocking the thread, so every download waits at the same time and the
 * whole run takes about as long as the slowest one.
 */
#include <gev.h>
#include <gev-patch.h>
#include <curl/curl.h>
#include <stdio.h>

static size_t count_bytes(char *data, size_t size, size_t n, void *total)
{
    (void)data;
    *(size_t *)total += size * n;
    return size * n;
}

/* An ordinary blocking download: nothing here is gev-specific. */
static void *download(void *url)
{
    size_t total = 0;
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, (char *)url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &total);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);       /* no SIGALRM for DNS timeouts */
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        printf("%-40s %zu bytes\n", (char *)url, total);
    else
        printf("%-40s %s\n", (char *)url, curl_easy_strerror(rc));
    curl_easy_cleanup(c);
    return NULL;
}

int main(int argc, char **argv)
{
    enum { MAX = 256 };
    gev_greenlet *g[MAX];
    size_t n = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: gev-curl-many URL...\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    if (gev_patch_all() < 0) {
        perror("gev_patch_all");
        return 1;
    }
    for (int i = 1; i < argc && n < MAX; i++)
        g[n++] = gev_spawn(download, argv[i]);      /* nothing runs yet */
    int rc = gev_joinall(g, n, GEV_FOREVER);        /* now all download at once */
    for (size_t i = 0; i < n; i++)
        gev_release(g[i]);
    curl_global_cleanup();
    return rc < 0;
}
