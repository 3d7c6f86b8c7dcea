/* core/records.h: where greenlet records live.
 *
 * A burst of 100,000 spawns needs 100,000 records (328 bytes each) at
 * once, and one malloc each faulted in 8,200 heap pages one at a time:
 * on the paravirtualized test VM (10 us a page fault) that was 820 ns of
 * the 950 a spawned-and-alive greenlet cost, 3.8x raw libev's callbacks.
 * So records come from slabs: 2 MiB mappings aligned to 2 MiB, advised
 * MADV_HUGEPAGE, so that where transparent huge pages are on (Linux's
 * default "madvise" mode) a slab of 6,393 records costs one fault.  All
 * but a hub's first slab: a program with a few greenlets should not hold
 * a 2 MiB huge page per hub for them.
 *
 * A slab is carved front to back; a record given back goes on its slab's
 * free list and is handed out again before anything new is carved; a
 * slab whose records are all given back is unmapped (the one being carved
 * is kept, emptied), so memory comes back after a burst as it did from
 * malloc -- at 2 MiB granularity: one record still alive holds its slab.
 * The hub's own FIFO of freed records (core/greenlet.c: stale handles find
 * them) sits in front and gives records back here only when it overflows.
 *
 * Under AddressSanitizer and valgrind every record is its own malloc, so
 * that they see each one (use after free, leaks).  Per hub, hub thread
 * only: no lock. */
#ifndef GEV_CORE_RECORDS_H
#define GEV_CORE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

#define GEV__RECORD_SLAB_SIZE ((size_t)2 << 20)

struct gev_greenlet;
typedef struct gev__record_slab gev__record_slab;

typedef struct gev__record_pool {
    gev__record_slab *partial;  /* slabs with given-back records (a list) */
    gev__record_slab *carving;  /* the slab new records are cut from */
    size_t slabs;               /* mapped */
    bool use_malloc;            /* ASan, valgrind: a malloc per record */
} gev__record_pool;

void gev__record_pool_init(gev__record_pool *p);
/* Uninitialised memory for a record; NULL + ENOMEM if none can be had. */
struct gev_greenlet *gev__record_alloc(gev__record_pool *p);
/* Give back a record that gev__record_alloc(p) handed out. */
void gev__record_release(gev__record_pool *p, struct gev_greenlet *g);
/* At the hub's end, every record given back: unmap what is left. */
void gev__record_pool_drain(gev__record_pool *p);

#endif
