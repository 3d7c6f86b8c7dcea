/* core/records.c: see core/records.h. */
#include "config.h"
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include "hub.h"
#include "records.h"
#include "switch.h"             /* GEV__ASAN */

/* A slab is on the pool's partial list exactly while it has records given
 * back to hand out (free != NULL). */
struct gev__record_slab {
    gev__record_slab *next, *prev;      /* in the pool's partial list */
    gev_greenlet *free;         /* given back, linked through all_next */
    size_t live;                /* handed out, not given back */
    size_t carved;              /* cut so far, front to back */
};

/* The records start one cache line in: the header is alone in it. */
#define FIRST_OFFSET 64u
#define PER_SLAB ((GEV__RECORD_SLAB_SIZE - FIRST_OFFSET) / sizeof(gev_greenlet))

static gev_greenlet *slab_record(gev__record_slab *s, size_t i)
{
    return (gev_greenlet *)(void *)((char *)s + FIRST_OFFSET) + i;
}

static gev__record_slab *slab_of(gev_greenlet *g)
{
    return (gev__record_slab *)((uintptr_t)g & ~(uintptr_t)(GEV__RECORD_SLAB_SIZE - 1));
}

void gev__record_pool_init(gev__record_pool *p)
{
    *p = (gev__record_pool){ .use_malloc = false };
#ifdef GEV__ASAN
    p->use_malloc = true;
#endif
#ifdef RUNNING_ON_VALGRIND
    if (RUNNING_ON_VALGRIND)
        p->use_malloc = true;
#endif
}

/* 2 MiB aligned to 2 MiB (a huge page can back only such a range): map
 * twice that, unmap the ends. */
static gev__record_slab *slab_map(gev__record_pool *p)
{
    size_t size = GEV__RECORD_SLAB_SIZE;
    char *m = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    char *at = (char *)(((uintptr_t)m + size - 1) & ~(uintptr_t)(size - 1));
    if (at > m)
        munmap(m, (size_t)(at - m));
    if (at + size < m + 2 * size)
        munmap(at + size, (size_t)(m + 2 * size - (at + size)));
#ifdef MADV_HUGEPAGE
    /* Not the first: a program with a few greenlets keeps a few 4 KiB
     * pages of records, not a 2 MiB huge page per hub; a burst beyond a
     * slab's worth gets huge pages from its second slab on. */
    if (p->slabs > 0)
        madvise(at, size, MADV_HUGEPAGE);   /* advice: without it, 4 KiB pages */
#endif
    gev__record_slab *s = (gev__record_slab *)(void *)at;   /* zeroed */
    p->slabs++;
    return s;
}

static void partial_add(gev__record_pool *p, gev__record_slab *s)
{
    s->prev = NULL;
    s->next = p->partial;
    if (p->partial)
        p->partial->prev = s;
    p->partial = s;
}

static void partial_remove(gev__record_pool *p, gev__record_slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        p->partial = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

gev_greenlet *gev__record_alloc(gev__record_pool *p)
{
    if (p->use_malloc)
        return malloc(sizeof(gev_greenlet));
    gev__record_slab *s = p->partial;
    if (s) {
        gev_greenlet *g = s->free;
        s->free = g->all_next;
        if (!s->free)
            partial_remove(p, s);
        s->live++;
        return g;
    }
    s = p->carving;
    if (!s || s->carved == PER_SLAB) {
        if (!(s = slab_map(p)))
            return NULL;
        p->carving = s;
    }
    s->live++;
    return slab_record(s, s->carved++);
}

void gev__record_release(gev__record_pool *p, gev_greenlet *g)
{
    if (p->use_malloc) {
        free(g);
        return;
    }
    gev__record_slab *s = slab_of(g);
    if (--s->live == 0) {
        if (s->free)
            partial_remove(p, s);
        if (s == p->carving) {
            s->free = NULL;     /* kept, and carved again from the front */
            s->carved = 0;
        } else {
            munmap(s, GEV__RECORD_SLAB_SIZE);
            p->slabs--;
        }
        return;
    }
    if (!s->free)
        partial_add(p, s);
    g->all_next = s->free;
    s->free = g;
}

void gev__record_pool_drain(gev__record_pool *p)
{
    gev__record_slab *s = p->carving;
    p->carving = NULL;
    if (s && s->live == 0) {    /* else a record is still out: leave it mapped */
        munmap(s, GEV__RECORD_SLAB_SIZE);
        p->slabs--;
    }
}
