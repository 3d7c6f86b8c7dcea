/* core/out.c: see core/out.h. */
#include "config.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "out.h"

void gev__out_flush(gev__out *o)
{
    size_t off = 0;
    while (off < o->len) {
        ssize_t n = write(o->fd, o->buf + off, o->len - off);
        if (n > 0)
            off += (size_t)n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    o->len = 0;
}

void gev__out_bytes(gev__out *o, const char *s, size_t n)
{
    while (n) {
        if (o->len == o->size)
            gev__out_flush(o);
        size_t k = o->size - o->len < n ? o->size - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

void gev__out_str(gev__out *o, const char *s) { gev__out_bytes(o, s, strlen(s)); }

void gev__out_uint(gev__out *o, uint64_t v, int width)
{
    char d[24];
    size_t n = sizeof d;
    do
        d[--n] = (char)('0' + v % 10);
    while (((v /= 10) || (int)(sizeof d - n) < width) && n > 0);
    gev__out_bytes(o, d + n, sizeof d - n);
}

void gev__out_int(gev__out *o, int v)
{
    if (v < 0)
        gev__out_str(o, "-");
    gev__out_uint(o, v < 0 ? (uint64_t)-(int64_t)v : (uint64_t)v, 1);
}

void gev__out_secs(gev__out *o, int64_t ns)
{
    uint64_t ms = ns > 0 ? (uint64_t)ns / 1000000u : 0;
    gev__out_uint(o, ms / 1000, 1);
    gev__out_str(o, ".");
    gev__out_uint(o, ms % 1000, 3);
}
