/* core/stack.h: greenlet stacks.
 *
 * Each stack is anonymous memory, committed lazily by the kernel, with a
 * guard page below it so an overflow faults instead of corrupting a
 * neighbour.  Stacks of the default size come from arenas of 64 (one mmap
 * for 64 stacks; see "Arenas" in stack.c): guards are guard markers where
 * the kernel has them (one syscall per arena, no mapping each), else an
 * mprotect when a slot is first handed out.  Each hub keeps spare stacks
 * (its idle runners, core/hub-internal.h, and this cache) as many as its
 * greenlets recently needed at once (gev__stack_cache_demand), so a spawn
 * that finds one costs no syscall and no page fault; the rest go back to
 * their arena, whose free slots give their memory back in batches of 64
 * (one process_madvise each).  Stacks of other sizes are a mapping each.
 *
 * Without guard markers each guard made by mprotect costs the stack a kernel
 * mapping of its own, and Linux allows vm.max_map_count (65530 by default)
 * per process.  Past a share of that limit (or when mprotect fails with
 * ENOMEM) stacks are handed out without a guard page; an unguarded stack
 * that is not in an arena is never unmapped (unmapping it from the middle of
 * a merged run would need one mapping more) but kept, its memory given back,
 * for the next stack that cannot be guarded.  gev__stack_stats_get() tells
 * how many of each exist; with GEV_DEBUG set (and not "0") the first
 * fallback is reported on stderr.
 */
#ifndef GEV_CORE_STACK_H
#define GEV_CORE_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEV__STACK_DEFAULT_SIZE (256u * 1024u)
/* Larger requests fail with ENOMEM (checked at spawn, before any mapping). */
#define GEV__STACK_SIZE_LIMIT ((size_t)4 << 30)

typedef struct gev__stack {
    void *lo;                   /* lowest usable byte (just above the guard) */
    size_t size;                /* usable bytes */
    void *map;                  /* the whole mapping, guard included */
    size_t map_size;
    unsigned valgrind_id;       /* VALGRIND_STACK_REGISTER's id */
    bool guarded;
    bool fresh;                 /* in an arena, never handed out yet */
    int release_at;             /* free arena slot: its place in the batch
                                   whose memory goes back next; else -1 */
    struct gev__stack_arena *arena;       /* default-size stacks: the arena it is in */
    struct gev__stack *next;    /* cache link */
} gev__stack;

typedef struct gev__stack_cache {
    gev__stack *head;
    size_t count, max;          /* max stacks kept: from demand */
    size_t peak, peak_prev;     /* most in use at once: this window, the last */
    int64_t window_end;         /* ns, the hub loop's clock */
} gev__stack_cache;

/* Spare stacks a hub keeps at the least, whatever the demand. */
#define GEV__STACK_SPARE_MIN 64u

/* The default usable size: $GEV_STACK_SIZE (bytes, optional k/K/m/M suffix)
 * if set and sane, else GEV__STACK_DEFAULT_SIZE.  Rounded up to pages. */
size_t gev__stack_default_size(void);

void gev__stack_cache_init(gev__stack_cache *c);
/* Unmap every cached stack, and give back the memory of every free one. */
void gev__stack_cache_drain(gev__stack_cache *c);

/* How many spare stacks (idle runners and cached stacks together) the hub
 * should keep, called between polls with the stacks its greenlets need now
 * (`wanted`: the live ones, started or not), how many of them hold one
 * already (`held`), its idle runners and its loop's time: the most wanted
 * at once over the last one to two seconds, minus held, at least
 * GEV__STACK_SPARE_MIN.  Minus held, not minus wanted: the spares of a
 * burst are what its greenlets not started yet will take.  Sizes the cache to the same budget, unmapping what
 * it holds beyond.  After a burst the spares stay for a second wave, and go
 * once the burst is two windows old; gev__stack_cache_window_end() tells
 * when the figure may next drop (an idle hub wakes then to trim). */
size_t gev__stack_cache_demand(gev__stack_cache *c, size_t wanted, size_t held,
                               size_t spare_runners, int64_t now);
int64_t gev__stack_cache_window_end(const gev__stack_cache *c);

/* A stack of at least `size` usable bytes (0 = default): from the cache if
 * one of that size is there, else a new one (an arena's slot for the
 * default size, else a mapping of its own, or a kept unguarded one).
 * NULL + errno (ENOMEM). */
gev__stack *gev__stack_get(gev__stack_cache *c, size_t size);
/* Back to the cache; if the cache is full, or holds stacks of another size
 * (it holds one size at a time), an arena stack goes back to its arena, a
 * guarded stack of its own is unmapped, and an unguarded one is kept for
 * reuse (see above). */
void gev__stack_put(gev__stack_cache *c, gev__stack *s);

typedef struct gev__stack_stats {
    size_t guarded, unguarded;  /* live stacks of each kind, process-wide */
    size_t bytes;               /* their mappings' size, guard pages included */
    bool guard_markers;         /* guards are MADV_GUARD_INSTALL markers (no
                                   mapping each): every stack is guarded */
} gev__stack_stats;
void gev__stack_stats_get(gev__stack_stats *st);

/* Overflow reporting.  Every hub calls this as it is created: the first
 * call in the process installs a SIGSEGV/SIGBUS handler, and each thread's
 * first call gives that thread an alternate signal stack for it (unless the
 * thread has one already) -- so a program that never makes a hub keeps its
 * own signal handling untouched.  When a fault hits a guard page, `describe` (called from the
 * handler, must be async-signal-safe) names the greenlet running on this
 * thread; the handler writes
 *     gev: stack overflow in greenlet <name> (stack size N)
 * to stderr and aborts.  Other faults go to the previous handler / default
 * action, so a real crash still crashes as usual. */
typedef const char *(*gev__stack_describe_fn)(void *fault_addr, size_t *stack_size);
int gev__stack_guard_thread_init(gev__stack_describe_fn describe);
/* Frees this thread's alternate signal stack (at hub shutdown). */
void gev__stack_guard_thread_exit(void);

#endif
