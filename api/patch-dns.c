/* api/patch-dns.c: getaddrinfo, getnameinfo and the gethostbyname family,
 * each made for real in gev's thread pool.  glibc's resolver calls its own
 * socket functions internally, past any interposition, so the only way to
 * keep the hub running is to move the whole call to another thread (whose
 * calls the hooks leave alone).  errno and h_errno come back with it.  If
 * the greenlet is killed or a scoped timeout expires meanwhile, the call
 * still runs to its end (the pool's rule: arguments live on the caller's
 * stack), then fails: EAI_SYSTEM with errno ECANCELED/ETIMEDOUT, or NULL /
 * the error number with h_errno NETDB_INTERNAL. */
#include "config.h"

#include <netdb.h>
#include <stdint.h>

#include "patch.h"

typedef struct dns_job dns_job;
struct dns_job {
    void (*call)(dns_job *j);
    const void *in[3];
    void *out[4];
    intptr_t n[3];
    int rc;
    void *ptr;
    int err, herr;
    bool done;
};

static void *dns_worker(void *arg)
{
    dns_job *j = arg;
    j->call(j);
    j->err = errno;
    j->herr = h_errno;
    j->done = true;
    return NULL;
}

/* Runs the job: 0, or the errno (ECANCELED/ETIMEDOUT) that must replace
 * its result.  Without a pool (no thread could start), the call runs here,
 * blocking, rather than failing. */
static int dns_run(dns_job *j)
{
    int rc = gev_threadpool_run(dns_worker, j, NULL), err = rc < 0 ? errno : 0;
    bool interrupted = rc < 0 && j->done;
    if (!j->done)
        dns_worker(j);
    errno = j->err;
    h_errno = j->herr;
    return interrupted ? err : 0;
}

GEV__PATCH_ORIGINAL(getaddrinfo);
GEV__PATCH_ORIGINAL(getnameinfo);
GEV__PATCH_ORIGINAL(gethostbyname);
GEV__PATCH_ORIGINAL(gethostbyname2);
GEV__PATCH_ORIGINAL(gethostbyname_r);
GEV__PATCH_ORIGINAL(gethostbyname2_r);

/* dlsym finds these in libc always; the fallbacks only keep a broken
 * lookup from calling NULL. */
static int nosys_getaddrinfo(const char *n, const char *s, const struct addrinfo *h,
                             struct addrinfo **r)
{
    errno = ENOSYS;
    return EAI_SYSTEM;
}
static int nosys_getnameinfo(const struct sockaddr *a, socklen_t al, char *h, socklen_t hl,
                             char *s, socklen_t sl, int fl)
{
    errno = ENOSYS;
    return EAI_SYSTEM;
}
static struct hostent *nosys_gethostbyname(const char *n)
{
    h_errno = NO_RECOVERY;
    return NULL;
}
static struct hostent *nosys_gethostbyname2(const char *n, int af)
{
    h_errno = NO_RECOVERY;
    return NULL;
}
static int nosys_gethostbyname_r(const char *n, struct hostent *r, char *b, size_t bl,
                                 struct hostent **res, int *he)
{
    *res = NULL;
    *he = NO_RECOVERY;
    return ENOSYS;
}
static int nosys_gethostbyname2_r(const char *n, int af, struct hostent *r, char *b, size_t bl,
                                  struct hostent **res, int *he)
{
    return nosys_gethostbyname_r(n, r, b, bl, res, he);
}

static void call_getaddrinfo(dns_job *j)
{
    j->rc = GEV__PATCH_REAL_OR(getaddrinfo, nosys_getaddrinfo)(j->in[0], j->in[1], j->in[2],
                                                               (struct addrinfo **)j->out[0]);
}

GEV__HOOK int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                          struct addrinfo **res)
{
    if (!gev__patch_acting())
        return GEV__PATCH_REAL_OR(getaddrinfo, nosys_getaddrinfo)(node, service, hints, res);
    dns_job j = { .call = call_getaddrinfo, .in = { node, service, hints }, .out = { res } };
    int err = dns_run(&j);
    if (!err)
        return j.rc;
    if (j.rc == 0)
        freeaddrinfo(*res);
    errno = err;
    return EAI_SYSTEM;
}

static void call_getnameinfo(dns_job *j)
{
    j->rc = GEV__PATCH_REAL_OR(getnameinfo, nosys_getnameinfo)(
        j->in[0], (socklen_t)j->n[0], j->out[0], (socklen_t)j->n[1], j->out[1],
        (socklen_t)j->n[2], j->rc);
}

GEV__HOOK int getnameinfo(const struct sockaddr *addr, socklen_t addrlen, char *host,
                          socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
    if (!gev__patch_acting())
        return GEV__PATCH_REAL_OR(getnameinfo, nosys_getnameinfo)(addr, addrlen, host, hostlen,
                                                                  serv, servlen, flags);
    dns_job j = { .call = call_getnameinfo, .in = { addr }, .out = { host, serv },
                  .n = { addrlen, hostlen, servlen }, .rc = flags };
    int err = dns_run(&j);
    if (!err)
        return j.rc;
    errno = err;
    return EAI_SYSTEM;
}

static void call_gethostbyname2(dns_job *j)
{
    j->ptr = j->n[0] < 0 ? GEV__PATCH_REAL_OR(gethostbyname, nosys_gethostbyname)(j->in[0]) :
             GEV__PATCH_REAL_OR(gethostbyname2, nosys_gethostbyname2)(j->in[0], (int)j->n[0]);
}

/* af < 0: gethostbyname. */
static struct hostent *patch_gethostbyname2(const char *name, int af)
{
    dns_job j = { .call = call_gethostbyname2, .in = { name }, .n = { af } };
    int err = dns_run(&j);
    if (!err)
        return j.ptr;
    errno = err;
    h_errno = NETDB_INTERNAL;
    return NULL;
}

GEV__HOOK struct hostent *gethostbyname(const char *name)
{
    if (!gev__patch_acting())
        return GEV__PATCH_REAL_OR(gethostbyname, nosys_gethostbyname)(name);
    return patch_gethostbyname2(name, -1);
}

GEV__HOOK struct hostent *gethostbyname2(const char *name, int af)
{
    if (!gev__patch_acting())
        return GEV__PATCH_REAL_OR(gethostbyname2, nosys_gethostbyname2)(name, af);
    return patch_gethostbyname2(name, af);
}

static void call_gethostbyname2_r(dns_job *j)
{
    if (j->n[0] < 0)
        j->rc = GEV__PATCH_REAL_OR(gethostbyname_r, nosys_gethostbyname_r)(
            j->in[0], j->out[0], j->out[1], (size_t)j->n[1], j->out[2], j->out[3]);
    else
        j->rc = GEV__PATCH_REAL_OR(gethostbyname2_r, nosys_gethostbyname2_r)(
            j->in[0], (int)j->n[0], j->out[0], j->out[1], (size_t)j->n[1], j->out[2], j->out[3]);
}

static int patch_gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                                  size_t buflen, struct hostent **result, int *h_errnop)
{
    dns_job j = { .call = call_gethostbyname2_r, .in = { name },
                  .out = { ret, buf, result, h_errnop }, .n = { af, (intptr_t)buflen } };
    int err = dns_run(&j);
    if (!err)
        return j.rc;
    *result = NULL;
    *h_errnop = NETDB_INTERNAL;
    return err;
}

GEV__HOOK int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                              struct hostent **result, int *h_errnop)
{
    if (!gev__patch_acting())
        return GEV__PATCH_REAL_OR(gethostbyname_r, nosys_gethostbyname_r)(name, ret, buf, buflen,
                                                                          result, h_errnop);
    return patch_gethostbyname2_r(name, -1, ret, buf, buflen, result, h_errnop);
}

GEV__HOOK int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                               size_t buflen, struct hostent **result, int *h_errnop)
{
    if (!gev__patch_acting())
        return GEV__PATCH_REAL_OR(gethostbyname2_r, nosys_gethostbyname2_r)(
            name, af, ret, buf, buflen, result, h_errnop);
    return patch_gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
}
