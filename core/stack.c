/* core/stack.c: greenlet stacks (see stack.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include "debug.h"
#include "dlist.h"
#include "stack.h"

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#define STACK_MAP_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK)
#define DEMAND_WINDOW   ((int64_t)1000 * 1000 * 1000)     /* ns */
#define STACK_SIZE_MIN  ((size_t)16 * 1024)
#define STACK_SIZE_MAX  ((size_t)1024 * 1024 * 1024)
#define ALTSTACK_SIZE   ((size_t)64 * 1024)
#define MAP_COUNT_DEFAULT 65530L
#define MAP_COUNT_RESERVE 1000L         /* mappings left for everything else */

/* ------------------------------------------------------------------------
 * Process-wide state
 * ------------------------------------------------------------------------ */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static size_t page_size;
static size_t default_size;
static size_t guarded_limit;            /* live guarded stacks allowed */
static bool debug_enabled;
static long maps_budget;                /* mappings arena guards may split off */
static int guard_marker_mode = -1;      /* -1 unknown, 0 no, 1 madvise, 2 batch */

static atomic_size_t live_guarded, live_unguarded, live_bytes;
static atomic_bool fallback_reported;

static size_t round_to_pages(size_t n)
{
    return (n + page_size - 1) & ~(page_size - 1);
}

/* "$GEV_STACK_SIZE": digits, then optionally one of k K m M.  0 if absent
 * or not sane (outside [16 KiB, 1 GiB]). */
static size_t parse_stack_size(const char *s)
{
    size_t n = 0, mul = 1;
    const char *p = s;

    if (!s || *s < '0' || *s > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > STACK_SIZE_MAX)         /* already too large: stop growing */
            return 0;
        n = n * 10 + (size_t)(*p - '0');
    }
    if (*p == 'k' || *p == 'K')
        mul = 1024, p++;
    else if (*p == 'm' || *p == 'M')
        mul = 1024 * 1024, p++;
    if (*p != '\0')
        return 0;
    if (n > STACK_SIZE_MAX / mul)
        return 0;
    n *= mul;
    if (n < STACK_SIZE_MIN || n > STACK_SIZE_MAX)
        return 0;
    return n;
}

static long read_max_map_count(void)
{
    char buf[32];
    ssize_t len;
    long v = 0;
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return MAP_COUNT_DEFAULT;
    len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return MAP_COUNT_DEFAULT;
    buf[len] = '\0';
    for (char *p = buf; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 1000L * 1000 * 1000)
            break;
    }
    return v > 0 ? v : MAP_COUNT_DEFAULT;
}

static void stack_init_once(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    long maps = read_max_map_count();
    size_t env;

    page_size = ps > 0 ? (size_t)ps : 4096;
    /* GEV_STACK_GUARD_MARKERS=0: mprotect guards even where the kernel has
     * guard markers.  For emulators: under qemu-user (tests/cross-aarch64.sh)
     * an overflow into a marker killed the process with a SIGSEGV the
     * guest's handler never saw, while mprotect guards are reported. */
    const char *markers = getenv("GEV_STACK_GUARD_MARKERS");
    if (markers && !strcmp(markers, "0"))
        guard_marker_mode = 0;
    env = parse_stack_size(getenv("GEV_STACK_SIZE"));
    default_size = round_to_pages(env ? env : GEV__STACK_DEFAULT_SIZE);
    /* Each guarded stack is two mappings; keep half the limit, minus a
     * reserve for the rest of the process. */
    guarded_limit = (size_t)(maps / 2 > 2 * MAP_COUNT_RESERVE
                             ? maps / 2 - MAP_COUNT_RESERVE : maps / 4);
    /* Arenas' mprotect guards: two mappings each, from the same share. */
    maps_budget = (long)guarded_limit * 2;
    debug_enabled = gev__debug_enabled();
}

static void stack_init(void)
{
    pthread_once(&init_once, stack_init_once);
}

size_t gev__stack_default_size(void)
{
    stack_init();
    return default_size;
}

void gev__stack_stats_get(gev__stack_stats *st)
{
    st->guarded = atomic_load_explicit(&live_guarded, memory_order_relaxed);
    st->unguarded = atomic_load_explicit(&live_unguarded, memory_order_relaxed);
    st->bytes = atomic_load_explicit(&live_bytes, memory_order_relaxed);
    st->guard_markers = guard_marker_mode > 0;
}

/* ------------------------------------------------------------------------
 * Mapping and unmapping
 * ------------------------------------------------------------------------ */
static void report_fallback(const char *why)
{
    if (!debug_enabled || atomic_exchange(&fallback_reported, true))
        return;
    fprintf(stderr, "gev: making greenlet stacks without guard pages from now on "
            "(%s; %zu guarded stacks live, limit %zu from vm.max_map_count)\n",
            why, atomic_load(&live_guarded), guarded_limit);
}

/* Unguarded stacks are never unmapped.  Neighbouring ones merge into one
 * kernel mapping, and unmapping one from the middle of such a run splits it
 * in two: one mapping more, which is exactly what there is none of once
 * stacks go unguarded.  munmap then fails, and the range would be lost.  So
 * a returned unguarded stack gives its memory back (MADV_DONTNEED) and waits
 * here, process-wide, address range and all, for the next stack that cannot
 * have a guard page.  Without this, a second wave of 100,000 greenlets found
 * no mappings left for half of its stacks. */
static pthread_mutex_t dormant_lock = PTHREAD_MUTEX_INITIALIZER;
static gev__stack *dormant;

static void dormant_put(gev__stack *s)
{
    (void)madvise(s->map, s->map_size, MADV_DONTNEED);
    pthread_mutex_lock(&dormant_lock);
    s->next = dormant;
    dormant = s;
    pthread_mutex_unlock(&dormant_lock);
}

/* A dormant stack of `size` usable bytes, or NULL. */
static gev__stack *dormant_take(size_t size)
{
    gev__stack *s, **pp;
    pthread_mutex_lock(&dormant_lock);
    for (pp = &dormant; (s = *pp) && s->size != size; pp = &s->next)
        ;
    if (s)
        *pp = s->next;
    pthread_mutex_unlock(&dormant_lock);
    return s;
}

/* ------------------------------------------------------------------------
 * Arenas: stacks of the default size, ARENA_SLOTS to a mapping
 *
 * 100,000 greenlets that start at once used to cost an mmap and an
 * mprotect each, and as much again to give the memory back.  An arena maps
 * ARENA_SLOTS stacks (guard page + stack each) with one mmap.  Guards:
 *  - where the kernel has guard markers (MADV_GUARD_INSTALL, Linux 6.13),
 *    one process_madvise() installs all of an arena's guards, and they cost
 *    no kernel mapping, so every stack is guarded however many there are;
 *  - else a slot gets its guard by mprotect when first handed out (once: a
 *    reused slot costs nothing), while the mapping budget from
 *    vm.max_map_count allows, and goes unguarded past it.
 * Slots are never unmapped one by one (that would split a mapping, the
 * dormant-list problem of the old unguarded stacks); a free slot stays in
 * its arena and its memory goes back in a batch with others' (below;
 * guards survive it).  The
 * arenas are process-wide behind a mutex: only a start that finds no idle
 * runner and no cached stack comes here.
 * ------------------------------------------------------------------------ */
#define ARENA_SLOTS 64u
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define PIDFD_SELF_THREAD_ (-10000)
#define MADV_POPULATE_WRITE_ 23         /* Linux 5.14; through process_madvise, 6.13 */
#ifndef SYS_process_madvise
#define SYS_process_madvise (-1)
#endif

typedef struct gev__stack_arena {
    struct gev__stack_arena *next, *prev;   /* arenas with a free slot */
    gev__stack *free;            /* its free slots, LIFO */
    unsigned nfree;
    bool listed;
    gev__stack slots[ARENA_SLOTS];
} arena;

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static arena *arenas_head, *arenas_tail;        /* those with a free slot */
static atomic_long maps_used;           /* mappings our guards split off */

static void arena_list_remove(arena *a)
{
    GEV__DLIST_UNLINK(arenas_head, arenas_tail, a, next, prev);
    a->listed = false;
}

/* Partly used arenas first, so fully free ones stay free. */
static void arena_list_add(arena *a, bool at_tail)
{
    if (a->listed)
        arena_list_remove(a);
    if (at_tail)
        GEV__DLIST_APPEND(arenas_head, arenas_tail, a, next, prev);
    else {
        a->prev = NULL;
        a->next = arenas_head;
        if (arenas_head)
            arenas_head->prev = a;
        else
            arenas_tail = a;
        arenas_head = a;
    }
    a->listed = true;
}

/* Guard markers for every slot of a new arena.  True if installed. */
static bool arena_guard_markers(arena *a)
{
    if (guard_marker_mode == 0)
        return false;
    if (guard_marker_mode != 1 && SYS_process_madvise != -1) {
        struct iovec iov[ARENA_SLOTS];
        for (unsigned i = 0; i < ARENA_SLOTS; i++) {
            iov[i].iov_base = a->slots[i].map;
            iov[i].iov_len = page_size;
        }
        long n = syscall(SYS_process_madvise, PIDFD_SELF_THREAD_, iov,
                         (size_t)ARENA_SLOTS, MADV_GUARD_INSTALL, 0u);
        if (n == (long)(ARENA_SLOTS * page_size)) {
            guard_marker_mode = 2;
            return true;
        }
    }
    for (unsigned i = 0; i < ARENA_SLOTS; i++)
        if (madvise(a->slots[i].map, page_size, MADV_GUARD_INSTALL) != 0) {
            guard_marker_mode = 0;      /* older kernel: mprotect from now on */
            return false;
        }
    guard_marker_mode = 1;
    return true;
}

/* The top page of every slot, written in by one call.  A greenlet's first
 * run touches that page (its context and first frames live there), and a
 * page fault cost 15-35 us each on the paravirtualized test machine (shadow
 * page tables): populating 64 at once cut that by about a third.  Best
 * effort: where process_madvise cannot do it, the first runs fault. */
static void arena_prefault(arena *a)
{
    struct iovec iov[ARENA_SLOTS];
    if (guard_marker_mode != 2)
        return;                 /* no process_madvise for this process */
    for (unsigned i = 0; i < ARENA_SLOTS; i++) {
        iov[i].iov_base = (char *)a->slots[i].lo + a->slots[i].size - page_size;
        iov[i].iov_len = page_size;
    }
    (void)syscall(SYS_process_madvise, PIDFD_SELF_THREAD_, iov, (size_t)ARENA_SLOTS,
                  MADV_POPULATE_WRITE_, 0u);
}

static arena *arena_new(size_t size)
{
    size_t slot = size + page_size;
    arena *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    char *map = mmap(NULL, slot * ARENA_SLOTS, PROT_READ | PROT_WRITE, STACK_MAP_FLAGS, -1, 0);
    if (map == MAP_FAILED) {
        free(a);
        return NULL;
    }
#ifdef MADV_NOHUGEPAGE
    (void)madvise(map, slot * ARENA_SLOTS, MADV_NOHUGEPAGE);   /* one page per parked stack */
#endif
    a->free = NULL;
    for (unsigned i = ARENA_SLOTS; i-- > 0;) {
        gev__stack *s = &a->slots[i];
        s->map = map + i * slot;
        s->map_size = slot;
        s->lo = (char *)s->map + page_size;
        s->size = size;
        s->guarded = false;
        s->fresh = true;
        s->release_at = -1;
        s->arena = a;
        s->next = a->free;
        a->free = s;
    }
    a->nfree = ARENA_SLOTS;
    a->listed = false;
    if (arena_guard_markers(a))
        for (unsigned i = 0; i < ARENA_SLOTS; i++)
            a->slots[i].guarded = true, a->slots[i].fresh = false;
    arena_prefault(a);
    return a;
}

/* ------------------------------------------------------------------------
 * Giving memory back: a slot that returns to its arena (the hub's spares
 * were trimmed, see gev__stack_cache_demand) joins a batch, and a full
 * batch gives the memory of all its stacks back with one process_madvise
 * (a madvise each where that cannot take ranges).  A slot was given back
 * alone, not with its whole arena as before: one greenlet that lives on in
 * an arena held the memory of the 63 others.  Per slot, not per page: a
 * stack that is mostly unmapped costs only the walk of its page tables.
 * A slot handed out again while in the batch leaves it (under arena_lock,
 * like the whole batch: never released while in use).  At most
 * RELEASE_BATCH free stacks keep their memory meanwhile.
 *
 * MADV_DONTNEED, not MADV_FREE (measured on the 2-core test VM, 6.18):
 * with MADV_FREE, RSS after 100,000 parked greenlets had woken and the hub
 * had idled 4 s stayed at 446 of 447 MB (the kernel takes such pages only
 * under memory pressure); with MADV_DONTNEED it fell to 46 MB, the rest
 * malloc's.  MADV_FREE's one gain, a cheaper first touch on reuse (9 us
 * against 24 us a page there), is for memory reused soon, and that is what
 * the hub's demand-sized spares keep: what gets here was not needed.
 * ------------------------------------------------------------------------ */
#define RELEASE_BATCH 64u
#ifndef STACK_RELEASE_ADVICE
#define STACK_RELEASE_ADVICE MADV_DONTNEED
#endif

static gev__stack *release_batch[RELEASE_BATCH];        /* under arena_lock */
static unsigned release_count;

static void release_flush(void)
{
    struct iovec iov[RELEASE_BATCH];
    size_t bytes = 0;
    for (unsigned i = 0; i < release_count; i++) {
        iov[i].iov_base = release_batch[i]->lo;
        iov[i].iov_len = release_batch[i]->size;
        bytes += iov[i].iov_len;
        release_batch[i]->release_at = -1;
    }
    long done = -1;
    if (guard_marker_mode == 2)
        done = syscall(SYS_process_madvise, PIDFD_SELF_THREAD_, iov, (size_t)release_count,
                       STACK_RELEASE_ADVICE, 0u);
    if (done != (long)bytes)            /* no process_madvise, or a partial one */
        for (unsigned i = 0; i < release_count; i++)
            (void)madvise(iov[i].iov_base, iov[i].iov_len, STACK_RELEASE_ADVICE);
    release_count = 0;
}

static void release_add(gev__stack *s)
{
    s->release_at = (int)release_count;
    release_batch[release_count++] = s;
    if (release_count == RELEASE_BATCH)
        release_flush();
}

/* s is handed out again before its memory went back: it stays. */
static void release_cancel(gev__stack *s)
{
    gev__stack *last = release_batch[--release_count];
    release_batch[s->release_at] = last;
    last->release_at = s->release_at;
    s->release_at = -1;
}

/* A fresh slot's guard page, by mprotect, if the mapping budget allows
 * (each one splits two mappings off the arena's). */
static void slot_guard_mprotect(gev__stack *s)
{
    s->fresh = false;
    if (atomic_fetch_add(&maps_used, 2) + 2 > maps_budget) {
        atomic_fetch_sub(&maps_used, 2);
        report_fallback("too many guarded stacks");
        return;
    }
    if (mprotect(s->map, page_size, PROT_NONE) != 0) {
        atomic_fetch_sub(&maps_used, 2);
        report_fallback("mprotect failed");
        return;
    }
    s->guarded = true;
}

static gev__stack *arena_take(size_t size)
{
    pthread_mutex_lock(&arena_lock);
    arena *a = arenas_head;
    if (!a) {
        a = arena_new(size);
        if (!a) {
            pthread_mutex_unlock(&arena_lock);
            return NULL;
        }
        arena_list_add(a, false);
    }
    gev__stack *s = a->free;
    a->free = s->next;
    if (s->release_at >= 0)
        release_cancel(s);
    if (--a->nfree == 0)
        arena_list_remove(a);
    if (s->fresh)
        slot_guard_mprotect(s);
    pthread_mutex_unlock(&arena_lock);
    return s;
}

static void arena_give(gev__stack *s)
{
    arena *a = s->arena;
    pthread_mutex_lock(&arena_lock);
    s->next = a->free;
    a->free = s;
    release_add(s);
    if (++a->nfree == ARENA_SLOTS)
        arena_list_add(a, true);        /* last in line: it stays free */
    else if (!a->listed)
        arena_list_add(a, false);
    pthread_mutex_unlock(&arena_lock);
}

/* A new guarded mapping: true if s now describes one. */
static bool stack_map_guarded(gev__stack *s, size_t size)
{
    if (atomic_load_explicit(&live_guarded, memory_order_relaxed) >= guarded_limit) {
        report_fallback("too many guarded stacks");
        return false;
    }
    void *map = mmap(NULL, size + page_size, PROT_READ | PROT_WRITE, STACK_MAP_FLAGS, -1, 0);
    if (map == MAP_FAILED) {
        report_fallback("mmap failed");
        return false;
    }
    if (mprotect(map, page_size, PROT_NONE) != 0) {
        /* Out of mappings (ENOMEM): this one becomes unguarded. */
        munmap(map, size + page_size);
        report_fallback("mprotect failed");
        return false;
    }
    s->map = map;
    s->map_size = size + page_size;
    s->lo = (char *)map + page_size;
    s->guarded = true;
    return true;
}

static bool stack_map_unguarded(gev__stack *s, size_t size)
{
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, STACK_MAP_FLAGS, -1, 0);
    if (map == MAP_FAILED)
        return false;
    s->map = map;
    s->map_size = size;
    s->lo = map;
    s->guarded = false;
    return true;
}

static void stack_register(gev__stack *s)
{
    atomic_fetch_add_explicit(s->guarded ? &live_guarded : &live_unguarded, 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&live_bytes, s->map_size, memory_order_relaxed);
    s->next = NULL;
#ifdef HAVE_VALGRIND_VALGRIND_H
    s->valgrind_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#else
    s->valgrind_id = 0;
#endif
}

/* Arenas are for the many small stacks of C10K/C100K: a default raised to
 * huge sizes (GEV_STACK_SIZE=1024M) would make one arena 64 times that much
 * address space, more than some environments (valgrind) can map. */
#define ARENA_STACK_MAX ((size_t)8 * 1024 * 1024)

static gev__stack *stack_map(size_t size)
{
    if (size == default_size && size <= ARENA_STACK_MAX) {
        gev__stack *s = arena_take(size);
        if (s) {
            stack_register(s);
            return s;
        }
        /* No room for a whole arena: one stack may still fit on its own. */
    }
    gev__stack *s = malloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->size = size;
    s->arena = NULL;
    s->fresh = false;
    s->release_at = -1;
    if (!stack_map_guarded(s, size)) {
        gev__stack *old = dormant_take(size);
        if (old) {
            free(s);
            s = old;
        } else if (!stack_map_unguarded(s, size)) {
            free(s);
            errno = ENOMEM;
            return NULL;
        }
    }
    stack_register(s);
    return s;
}

static void stack_unmap(gev__stack *s)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
    atomic_fetch_sub_explicit(s->guarded ? &live_guarded : &live_unguarded, 1,
                              memory_order_relaxed);
    atomic_fetch_sub_explicit(&live_bytes, s->map_size, memory_order_relaxed);
    if (s->arena) {
        arena_give(s);
    } else if (s->guarded) {
        munmap(s->map, s->map_size);    /* its own two mappings: no split */
        free(s);
    } else {
        dormant_put(s);
    }
}

/* ------------------------------------------------------------------------
 * The cache: LIFO (the most recently used stack is the warmest), holding
 * stacks of one size at a time.  Sized from demand (below).
 * ------------------------------------------------------------------------ */
void gev__stack_cache_init(gev__stack_cache *c)
{
    memset(c, 0, sizeof *c);
    c->max = GEV__STACK_SPARE_MIN;
}

/* Unmap cached stacks until at most `keep` are left. */
static void cache_shrink(gev__stack_cache *c, size_t keep)
{
    while (c->count > keep) {
        gev__stack *s = c->head;
        c->head = s->next;
        c->count--;
        stack_unmap(s);
    }
}

void gev__stack_cache_drain(gev__stack_cache *c)
{
    cache_shrink(c, 0);
    pthread_mutex_lock(&arena_lock);
    release_flush();            /* a hub that goes leaves no memory behind */
    pthread_mutex_unlock(&arena_lock);
}

/* Demand: the most stacks in use at once in this window and the previous
 * one (DEMAND_WINDOW each).  A burst is remembered one to two windows: long
 * enough that a second wave reuses the spares of the first (a fresh stack's
 * first page fault cost 15-35 us on the test machine, more than the rest
 * of a spawn), short enough that its memory goes back soon after. */
static size_t demand_update(gev__stack_cache *c, size_t in_use, int64_t now)
{
    if (now >= c->window_end) {
        /* A whole window without a call: nothing ran, in_use held. */
        c->peak_prev = now - c->window_end < DEMAND_WINDOW ? c->peak : in_use;
        c->peak = in_use;
        c->window_end = now + DEMAND_WINDOW;
    }
    if (in_use > c->peak)
        c->peak = in_use;
    return c->peak > c->peak_prev ? c->peak : c->peak_prev;
}

size_t gev__stack_cache_demand(gev__stack_cache *c, size_t wanted, size_t held,
                               size_t spare_runners, int64_t now)
{
    size_t want = demand_update(c, wanted, now);
    size_t keep = want > held ? want - held : 0;
    if (keep < GEV__STACK_SPARE_MIN)
        keep = GEV__STACK_SPARE_MIN;
    /* Bare stacks count against the same budget as idle runners. */
    c->max = keep > spare_runners + GEV__STACK_SPARE_MIN ? keep - spare_runners
                                                         : GEV__STACK_SPARE_MIN;
    cache_shrink(c, c->max);
    return keep;
}

int64_t gev__stack_cache_window_end(const gev__stack_cache *c)
{
    return c->window_end;
}

gev__stack *gev__stack_get(gev__stack_cache *c, size_t size)
{
    stack_init();
    if (size == 0) {
        size = default_size;
    } else {
        if (size > GEV__STACK_SIZE_LIMIT) {
            errno = ENOMEM;
            return NULL;
        }
        size = round_to_pages(size);
    }
    if (c && c->head && c->head->size == size) {
        gev__stack *s = c->head;
        c->head = s->next;
        c->count--;
        s->next = NULL;
        return s;
    }
    return stack_map(size);
}

void gev__stack_put(gev__stack_cache *c, gev__stack *s)
{
    if (!s)
        return;
    if (c && c->count < c->max && (!c->head || c->head->size == s->size)) {
        s->next = c->head;
        c->head = s;
        c->count++;
        return;
    }
    stack_unmap(s);
}

/* ------------------------------------------------------------------------
 * Overflow reporting
 * ------------------------------------------------------------------------ */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction prev_segv, prev_bus;
static _Atomic(gev__stack_describe_fn) guard_describe;

static __thread void *altstack_map;     /* this thread's, if we made it */
static __thread size_t altstack_map_size;

static size_t fmt_size(char *out, size_t n)
{
    char tmp[24];
    size_t len = 0, i = 0;
    do {
        tmp[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (len)
        out[i++] = tmp[--len];
    return i;
}

static size_t append(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at < cap)
        buf[at++] = *s++;
    return at;
}

/* Async-signal-safe only: no stdio, no malloc. */
static void guard_handler(int sig, siginfo_t *info, void *uctx)
{
    int saved_errno = errno;
    gev__stack_describe_fn describe = atomic_load(&guard_describe);
    const char *name = NULL;
    size_t size = 0;

    if (describe && info && info->si_code > 0)
        name = describe(info->si_addr, &size);
    if (name) {
        char buf[512];
        size_t n = 0, cap = sizeof buf - 32;     /* room for the number */
        struct sigaction dfl;

        n = append(buf, n, cap, "gev: stack overflow in greenlet ");
        n = append(buf, n, cap, name);
        n = append(buf, n, sizeof buf, " (stack size ");
        n += fmt_size(buf + n, size);
        n = append(buf, n, sizeof buf, ")\n");
        for (size_t off = 0; off < n;) {
            ssize_t w = write(2, buf + off, n - off);
            if (w > 0)
                off += (size_t)w;
            else if (!(w < 0 && errno == EINTR))
                break;
        }
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGABRT, &dfl, NULL);
        abort();
    }

    /* Not ours: the previous handler gets it, called from here so that we
     * stay installed (a program whose own handler recovers, a GC or a JIT,
     * keeps having overflows reported); the default action or an ignore
     * is put back and the fault left to recur. */
    const struct sigaction *prev = sig == SIGBUS ? &prev_bus : &prev_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, info, uctx);
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
    } else {
        sigaction(sig, prev, NULL);
        if (!info || info->si_code <= 0)
            raise(sig); /* sent, not a fault: it would not come back by itself */
    }
    errno = saved_errno;
}

static int guard_install_one(int sig, struct sigaction *prev)
{
    struct sigaction sa, cur;

    if (sigaction(sig, NULL, &cur) != 0)
        return -1;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == guard_handler)
        return 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_ONSTACK | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, prev);
}

/* Checked at every hub creation rather than once per process: a program
 * (or a test harness such as CMocka) may have replaced our handler since,
 * and the report must still come out. */
static int guard_install(void)
{
    pthread_mutex_lock(&guard_lock);
    int rc = guard_install_one(SIGSEGV, &prev_segv);
    if (rc == 0)
        rc = guard_install_one(SIGBUS, &prev_bus);
    pthread_mutex_unlock(&guard_lock);
    return rc;
}

int gev__stack_guard_thread_init(gev__stack_describe_fn describe)
{
    stack_t cur, ss;
    void *map;
    size_t map_size;

    stack_init();
    atomic_store(&guard_describe, describe);
    if (guard_install() != 0)
        return -1;
    if (altstack_map)
        return 0;                       /* this thread is set up already */
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return 0;                       /* someone else's: use it */

    /* 64 KiB, with its own guard page below. */
    map_size = ALTSTACK_SIZE + page_size;
    map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, STACK_MAP_FLAGS, -1, 0);
    if (map == MAP_FAILED)
        return -1;
    (void)mprotect(map, page_size, PROT_NONE);  /* best effort */
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = (char *)map + page_size;
    ss.ss_size = ALTSTACK_SIZE;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) != 0) {
        int e = errno;
        munmap(map, map_size);
        errno = e;
        return -1;
    }
    altstack_map = map;
    altstack_map_size = map_size;
    return 0;
}

void gev__stack_guard_thread_exit(void)
{
    stack_t cur, ss;

    if (!altstack_map)
        return;
    /* Disable it only if it is still ours (and we are not running on it). */
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_ONSTACK)) {
        if (!(cur.ss_flags & SS_DISABLE) &&
            cur.ss_sp == (char *)altstack_map + page_size) {
            memset(&ss, 0, sizeof ss);
            ss.ss_flags = SS_DISABLE;
            if (sigaltstack(&ss, NULL) != 0)
                return;
        }
        munmap(altstack_map, altstack_map_size);
        altstack_map = NULL;
        altstack_map_size = 0;
    }
}
