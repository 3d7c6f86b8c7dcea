/* Limits: what gev does when the kernel's per-process map count runs out
 * while greenlets start, a hub with a million pending timers, and a
 * greenlet that never yields.  (Descriptor exhaustion under load is in
 * test-server.c: the acceptor backs off on EMFILE and serves again.) */
#include "gevtest.h"
#include <stdlib.h>
#include <sys/mman.h>

/* ---- vm.max_map_count ------------------------------------------------------- */

static long map_count_limit(void)
{
    long max = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f && fscanf(f, "%ld", &max) != 1)
        max = 0;
    if (f)
        fclose(f);
    return max;
}

/* Takes every mapping the kernel still allows, one page each; alternating
 * protections keep neighbours from merging.  Returns how many were made. */
static size_t exhaust_maps(void **pages, size_t cap)
{
    size_t n = 0;
    while (n < cap) {
        void *p = mmap(NULL, 4096, n % 2 ? PROT_READ : PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            break;
        pages[n++] = p;
    }
    return n;
}

static void *count_run(void *arg)
{
    ++*(int *)arg;
    gev_sleep(0.001);
    return NULL;
}

/* With no mapping left, greenlets that need a new stack end without running
 * (killed before their start, as the manual says), the rest run, nothing
 * crashes, and once mappings are free again new greenlets run normally. */
static void test_map_count_exhausted_at_spawn(void **state)
{
    if (GEVTEST_UNDER_ASAN || GEVTEST_ON_VALGRIND)
        skip();             /* their runtimes need mappings of their own */
    long limit = map_count_limit();
    if (limit <= 0 || limit > 1000000)
        skip();             /* unknown or too large to exhaust here */
    enum { N = 2000 };
    size_t cap = (size_t)limit + 16;
    void **pages = malloc(cap * sizeof *pages);
    gev_greenlet **g = malloc(N * sizeof *g);
    assert_non_null(pages);
    assert_non_null(g);
    int ran = 0;
    for (int i = 0; i < N; i++)
        assert_non_null(g[i] = gev_spawn(count_run, &ran));     /* no stack yet */
    size_t taken = exhaust_maps(pages, cap);
    assert_gt(taken, 0);
    int rc = gev_joinall(g, N, 30.0);
    int killed = 0;
    for (int i = 0; i < N; i++)
        killed += gev_killed(g[i]);
    for (size_t i = 0; i < taken; i++)
        munmap(pages[i], 4096);
    assert_int_equal(rc, 0);
    assert_int_equal(ran + killed, N);          /* each either ran or was refused */
    assert_gt(killed, 0);                       /* the limit was really reached */
    gevtest_release_all(g, N);

    ran = 0;                                    /* and gev recovers */
    for (int i = 0; i < N; i++)
        assert_non_null(g[i] = gev_spawn(count_run, &ran));
    assert_int_equal(gev_joinall(g, N, 30.0), 0);
    assert_int_equal(ran, N);
    gevtest_release_all(g, N);
    free(g);
    free(pages);
}

/* ---- a million timers ------------------------------------------------------- */

/* A million scoped timeouts pending at once in one greenlet: all expire,
 * each says so, and cancelling them (innermost first, as scopes close)
 * leaves the hub able to run ordinary timers. */
static void test_million_timeouts(void **state)
{
    const int N = GEVTEST_ON_VALGRIND ? 100000 : 1000000;
    gev_timeout **t = malloc(N * sizeof *t);
    assert_non_null(t);
    unsigned seed = 1;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        assert_non_null(t[i] = gev_timeout_start(0.001 + (seed >> 16) % 100 * 0.001));
    }
    assert_fails(gev_sleep(1.0), ETIMEDOUT);    /* the earliest ends the sleep */
    int expired = 0;
    for (int i = 0; i < N; i++)
        expired += gev_timeout_expired(t[i]);
    assert_gt(expired, 0);
    for (int i = N - 1; i >= 0; i--)
        gev_timeout_cancel(t[i]);
    free(t);
    double t0 = gev_now();
    assert_int_equal(gev_sleep(0.01), 0);       /* the hub's timers still work */
    assert_ge(gev_now() - t0, 0.01);
}

/* ---- a greenlet that never yields ------------------------------------------- */

static void *sleeper(void *arg)
{
    gev_sleep(0.01);
    gevtest_log("%s", (const char *)arg);
    return NULL;
}

static void *spinner(void *arg)
{
    double end = gevtest_now() + 0.2;          /* the clock, not the hub's */
    volatile unsigned long spins = 0;
    while (gevtest_now() < end)
        spins++;                                /* never blocks, never yields */
    gevtest_log("spun");
    return NULL;
}

/* It holds the thread: the sleepers whose time passed meanwhile wake after
 * it, late but in their deadline order, and the hub is unharmed. */
static void test_greenlet_that_never_yields(void **state)
{
    gevtest_log_reset();
    gev_greenlet *g[3] = { gev_spawn(sleeper, "a"), gev_spawn(spinner, NULL),
                           gev_spawn(sleeper, "b") };
    assert_int_equal(gev_joinall(g, 3, 10.0), 0);
    assert_log("spun a b");
    gevtest_release_all(g, 3);
    assert_int_equal(gev_sleep(0.001), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        gevtest(test_map_count_exhausted_at_spawn),
        gevtest(test_million_timeouts),
        gevtest(test_greenlet_that_never_yields),
    };
    return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
