/* bench/bench-patch.c: the monkey-patch library's workloads, only in
 * gev-bench-patch (gev-bench's sources plus this file, linked with the
 * shared libgev and libgev-patch; gev-bench itself never is, so its modes
 * keep calling libc directly).
 *
 *   echo_patched PORT  the W5 echo server written as unmodified blocking
 *                      code: libc socket/accept, then plain read()/write()
 *                      in a greenlet per connection, after gev_patch_all().
 *                      Compared with `echo` (gev_recv/gev_sendall) for
 *                      server CPU per request (bench/README.md).
 *   hook_cost N        what a hook costs where it does not act: N calls of
 *                      getaddrinfo(NULL, NULL, ...) (EAI_NONAME at once, no
 *                      syscall: the call overhead alone), N/100 of
 *                      fcntl(F_GETFL) and of read(-1, ...) (a syscall each,
 *                      whose own cost and noise dwarf a few ns), through
 *                      the hook and through libc's own functions (dlsym on
 *                      libc.so.6), before gev_patch_all() and, after it, on
 *                      a thread without a hub; best of 5 interleaved runs.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "bench.h"
#include "gev-patch.h"

#define CONN_BUF 16384

/* ---- echo_patched ------------------------------------------------------------ */

/* What a blocking program writes; a blocking write of 64 bytes is whole,
 * the loop is only for correctness. */
static void *echo_plain_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[CONN_BUF];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0)
                goto done;
            off += w;
        }
    }
done:
    close(fd);
    return NULL;
}

int bench_echo_patched(int argc, char **argv)
{
    (void)argc;
    if (gev_patch_all() < 0)
        bench_die("gev_patch_all");
    return bench_serve("echo_patched", argv[1], echo_plain_conn, true);
}

/* ---- hook_cost ---------------------------------------------------------------- */

#define HOOK_REPS 5

typedef int fcntl_fn(int, int, ...);
typedef ssize_t read_fn(int, void *, size_t);
typedef int gai_fn(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static struct hook_cost {
    long n;                         /* getaddrinfo calls; syscalls: n / 100 */
    int fd;                         /* a pipe end for F_GETFL */
    fcntl_fn *libc_fcntl;
    read_fn *libc_read;
    gai_fn *libc_gai;
} hc;

#define HOOK_SYSCALL_DIV 100

/* Both loops call through a pointer, the hook's and libc's alike. */
__attribute__((noinline)) static double time_gai(gai_fn *f)
{
    struct addrinfo *res;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < hc.n; i++)
        if (f(NULL, NULL, NULL, &res) != EAI_NONAME)
            bench_die("getaddrinfo(NULL, NULL) did not fail with EAI_NONAME");
    return (double)(bench_now_ns() - t0) / (double)hc.n;
}

__attribute__((noinline)) static double time_fcntl(fcntl_fn *f)
{
    long n = hc.n / HOOK_SYSCALL_DIV + 1;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        if (f(hc.fd, F_GETFL) < 0)
            bench_die("fcntl");
    return (double)(bench_now_ns() - t0) / (double)n;
}

__attribute__((noinline)) static double time_read(read_fn *f)
{
    long n = hc.n / HOOK_SYSCALL_DIV + 1;
    char c;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        if (f(-1, &c, 1) != -1)
            bench_die("read(-1) succeeded");
    return (double)(bench_now_ns() - t0) / (double)n;
}

static double min2(double a, double b)
{
    return a < b ? a : b;
}

/* Best of HOOK_REPS, direct and hooked interleaved so drift hits both. */
static void hook_cost_round(const char *when)
{
    double fd_direct = 1e30, fd_hook = 1e30, rd_direct = 1e30, rd_hook = 1e30;
    double ga_direct = 1e30, ga_hook = 1e30;
    for (int r = 0; r < HOOK_REPS; r++) {
        ga_direct = min2(ga_direct, time_gai(hc.libc_gai));
        ga_hook = min2(ga_hook, time_gai(getaddrinfo));
        fd_direct = min2(fd_direct, time_fcntl(hc.libc_fcntl));
        fd_hook = min2(fd_hook, time_fcntl(fcntl));
        rd_direct = min2(rd_direct, time_read(hc.libc_read));
        rd_hook = min2(rd_hook, time_read(read));
    }
    bench_result("hook_getaddrinfo_noname", "value=%.2f unit=ns/call direct=%.2f overhead=%.2f when=%s",
                 ga_hook, ga_direct, ga_hook - ga_direct, when);
    bench_result("hook_fcntl", "value=%.2f unit=ns/call direct=%.2f overhead=%.2f when=%s",
                 fd_hook, fd_direct, fd_hook - fd_direct, when);
    bench_result("hook_read_ebadf", "value=%.2f unit=ns/call direct=%.2f overhead=%.2f when=%s",
                 rd_hook, rd_direct, rd_hook - rd_direct, when);
}

static void *hook_cost_thread(void *arg)
{
    hook_cost_round(arg);
    return NULL;
}

int bench_hook_cost(int argc, char **argv)
{
    (void)argc;
    hc.n = atol(argv[1]);
    int p[2];
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (hc.n < 1 || !libc || pipe(p) < 0)
        bench_die("hook_cost: N must be positive, libc.so.6 loaded, a pipe");
    hc.fd = p[0];
    hc.libc_fcntl = (fcntl_fn *)dlsym(libc, "fcntl");
    hc.libc_read = (read_fn *)dlsym(libc, "read");
    hc.libc_gai = (gai_fn *)dlsym(libc, "getaddrinfo");
    if (!hc.libc_fcntl || !hc.libc_read || !hc.libc_gai || hc.libc_fcntl == fcntl ||
        hc.libc_read == read || hc.libc_gai == getaddrinfo)
        bench_die("hook_cost: libc's fcntl/read not found, or not interposed");

    hook_cost_round("before_patch_all");
    if (gev_patch_all() < 0)
        bench_die("gev_patch_all");
    pthread_t t;
    if ((errno = pthread_create(&t, NULL, hook_cost_thread, "other_thread")) != 0)
        bench_die("pthread_create");
    pthread_join(t, NULL);
    return 0;
}
