/* core/out.h: text for diagnostics, built in a caller's buffer and written
 * with write(2).  Async-signal-safe (no stdio, no malloc, no locks), so the
 * run-info table (core/runinfo.c) and the blocking monitor's report, which
 * is written from a signal handler (core/monitor.c), share it.  A full
 * buffer is written out and reused: a line longer than the buffer goes out
 * in pieces, a shorter one in one write(2) (so two reports to one fd do
 * not interleave within a line). */
#ifndef GEV_CORE_OUT_H
#define GEV_CORE_OUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct gev__out {
    int fd;
    size_t len, size;
    char *buf;
} gev__out;

static inline gev__out gev__out_to(int fd, char *buf, size_t size)
{
    return (gev__out){ .fd = fd, .len = 0, .size = size, .buf = buf };
}

/* Write what is buffered.  A reader that went away (EPIPE, a full
 * non-blocking pipe) loses the rest: the caller is not told, as with any
 * diagnostic.  errno may change. */
void gev__out_flush(gev__out *o);
void gev__out_bytes(gev__out *o, const char *s, size_t n);
void gev__out_str(gev__out *o, const char *s);
/* v in decimal, at least `width` digits (zero-padded). */
void gev__out_uint(gev__out *o, uint64_t v, int width);
void gev__out_int(gev__out *o, int v);
/* ns as seconds with three decimals ("0.512"); a negative span (a
 * deadline just passed) shows as 0.000. */
void gev__out_secs(gev__out *o, int64_t ns);

#endif
