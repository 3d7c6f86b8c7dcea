/* tests/test-runinfo.c: gev_stats, gev_print_run_info, GEV_DUMP_SIGNAL and
 * GEV_DEBUG's explanation of an EDEADLK (issue 17).
 *
 * Greenlets are parked on every kind of wait; the table printed into a
 * pipe must say exactly what each one does: its state, fd or signal or
 * pid, and who spawned it.  Lines are compared whole against patterns in
 * which '#' stands for a figure in seconds ("0.512") and '%' for an
 * integer; everything else must match to the byte (gev(3) documents the
 * format).  What dies or prints to stderr runs in a forked child; GEV_DEBUG,
 * read once per process, in a fresh one (this program run again with
 * --deadlock). */
#include "config.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gevtest.h"
#include "stack.h"
#include "dump-signal.h"

static const char *self_path;

/* ---- reading the table ----------------------------------------------------- */

#define OUT_CAP 65536

/* gev_print_run_info through a pipe, into buf (NUL-terminated). */
static void capture(char *buf, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    gev_print_run_info(p[1]);
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && ((n = read(p[0], buf + len, cap - 1 - len)) > 0 ||
                             (n < 0 && errno == EINTR)))
        if (n > 0)
            len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
}

/* Whether the line at s (up to its '\n') is pat: '#' in pat matches
 * seconds (digits, '.', three digits), '%' an integer, all else itself. */
static bool line_is(const char *s, const char *pat)
{
    for (; *pat; pat++) {
        if (*pat == '#' || *pat == '%') {
            if (*s < '0' || *s > '9')
                return false;
            while (*s >= '0' && *s <= '9')
                s++;
            if (*pat == '#') {
                if (s[0] != '.' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
                    s[3] < '0' || s[3] > '9')
                    return false;
                s += 4;
            }
        } else if (*s++ != *pat) {
            return false;
        }
    }
    return *s == '\n';
}

/* The line of out that starts with prefix, or NULL. */
static const char *line_of(const char *out, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *s = out; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
        if (strncmp(s, prefix, n) == 0)
            return s;
    return NULL;
}

/* out has a line matching pat that starts as pat does up to its first
 * placeholder. */
static void expect_line(const char *out, const char *pat)
{
    char prefix[128];
    size_t n = strcspn(pat, "#%");
    snprintf(prefix, sizeof prefix, "%.*s", (int)(n < sizeof prefix ? n : sizeof prefix - 1), pat);
    const char *l = line_of(out, prefix);
    if (!l || !line_is(l, pat))
        fail_msg("no line \"%s\" in:\n%s", pat, out);
}

/* The row of greenlet `id` is exactly `  id <id> <rest>`. */
static void expect_row(const char *out, uint64_t id, const char *rest)
{
    char pat[256];
    snprintf(pat, sizeof pat, "  id %llu %s", (unsigned long long)id, rest);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "  id %llu ", (unsigned long long)id);
    const char *l = line_of(out, prefix);
    if (!l || !line_is(l, pat))
        fail_msg("greenlet %llu: expected \"%s\" in:\n%s", (unsigned long long)id, pat, out);
}

/* The seconds figure after `key` on the row of greenlet id. */
static double figure_after(const char *out, uint64_t id, const char *key)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "  id %llu ", (unsigned long long)id);
    const char *l = line_of(out, prefix);
    assert_non_null(l);
    const char *k = strstr(l, key);
    assert_true(k && k < strchr(l, '\n'));
    return strtod(k + strlen(key), NULL);
}

/* A greenlet's id: its default name says it. */
static uint64_t id_of(gev_greenlet *g)
{
    const char *name = gev_name(g);
    assert_true(strncmp(name, "greenlet-", 9) == 0);
    return strtoull(name + 9, NULL, 10);
}

static gev_greenlet *spawn_named(gev_fn fn, void *arg, const char *name, uint64_t *id)
{
    gev_greenlet *g = gev_spawn(fn, arg);
    assert_non_null(g);
    *id = id_of(g);
    if (name)
        gev_set_name(g, name);
    return g;
}

/* ---- what the greenlets wait on -------------------------------------------- */

static int rd_pair[2], wr_pair[2];
static gev_event *ev, *ev_go, *ev_release, *ev_never;
static gev_queue *queue;
static gev_lock *lock;
static gev_sem *sem;
static gev_channel *chan;
static gev_result *result;
static gev_pool *full_pool;
static gev_greenlet *child_g;

static void *do_read(void *a)
{
    char c;
    return (void *)(intptr_t)gev_read(rd_pair[0], &c, 1, GEV_FOREVER);
}

static void *do_write(void *a)
{
    char c = 0;
    return (void *)(intptr_t)gev_write(wr_pair[0], &c, 1, GEV_FOREVER);
}

static void *do_sleep(void *a) { gev_sleep(100); return NULL; }
static void *do_join(void *a) { gev_join(a, GEV_FOREVER); return NULL; }
static void *do_event(void *a) { gev_event_wait(a, GEV_FOREVER); return NULL; }
static void *do_queue(void *a) { void *it; gev_queue_get(queue, &it, 50); return NULL; }
static void *do_lock(void *a) { gev_lock_acquire(lock, GEV_FOREVER); return NULL; }
static void *do_sem(void *a) { gev_sem_acquire(sem, GEV_FOREVER); return NULL; }
static void *do_chan(void *a) { void *it; gev_channel_get(chan, &it, GEV_FOREVER); return NULL; }
static void *do_result(void *a) { gev_result_get(result, NULL, GEV_FOREVER); return NULL; }

static void *do_spawn_then_wait(void *a)
{
    child_g = gev_spawn(do_event, ev);
    gev_event_wait(ev, GEV_FOREVER);
    return NULL;
}

/* A wait that said what it was, then one that says nothing: no stale kind. */
static bool unsaid_parked;

static void *do_unsaid_after_said(void *a)
{
    gev_event_wait(ev_never, 0.001);
    unsaid_parked = true;           /* and parked before anyone else runs */
    gev_pool_wait_available(full_pool, GEV_FOREVER);
    return NULL;
}

static void *do_shielded(void *a)
{
    gev_shield(true);
    gev_event_wait(ev_release, GEV_FOREVER);
    return NULL;
}

static void *do_nothing(void *a) { return a; }

/* Fill s's send buffer to the last byte: a 1-byte write must wait. */
static void fill_to_the_brim(int s)
{
    gevtest_fill(s);
    char c = 0;
    while (write(s, &c, 1) == 1)
        ;
}

#define MAX_G 32

static void test_every_wait_says_what(void **state)
{
    (void)state;
    char *out = malloc(OUT_CAP);
    gev_greenlet *g[MAX_G];
    uint64_t id[MAX_G];
    size_t n = 0;
    gevtest_socketpair(rd_pair);
    gevtest_socketpair(wr_pair);
    fill_to_the_brim(wr_pair[0]);
    ev = gev_event_new(), ev_go = gev_event_new(), ev_release = gev_event_new();
    ev_never = gev_event_new();
    queue = gev_queue_new(0), lock = gev_lock_new(), sem = gev_sem_new(0);
    chan = gev_channel_new(), result = gev_result_new(), full_pool = gev_pool_new(1);
    assert_int_equal(gev_lock_acquire(lock, 0), 0);          /* main holds it */
    gev_greenlet *member = gev_pool_spawn(full_pool, do_event, ev);
    uint64_t member_id = id_of(member);

    enum { READER, WRITER, SLEEPER, JOINER, EVENT, QUEUE, LOCK, SEM, CHAN, RESULT, SPAWNER,
           UNSAID, SHIELDED, WOKEN };
    g[n] = spawn_named(do_read, NULL, "reader", &id[n]), n++;
    g[n] = spawn_named(do_write, NULL, "writer", &id[n]), n++;
    g[n] = spawn_named(do_sleep, NULL, "sleeper", &id[n]), n++;
    g[n] = spawn_named(do_join, g[SLEEPER], NULL, &id[n]), n++;
    g[n] = spawn_named(do_event, ev, "event", &id[n]), n++;
    g[n] = spawn_named(do_queue, NULL, "queue", &id[n]), n++;
    g[n] = spawn_named(do_lock, NULL, "lock", &id[n]), n++;
    g[n] = spawn_named(do_sem, NULL, "sem", &id[n]), n++;
    g[n] = spawn_named(do_chan, NULL, "chan", &id[n]), n++;
    g[n] = spawn_named(do_result, NULL, "result", &id[n]), n++;
    g[n] = spawn_named(do_spawn_then_wait, NULL, "spawner", &id[n]), n++;
    g[n] = spawn_named(do_unsaid_after_said, NULL, "unsaid", &id[n]), n++;
    g[n] = spawn_named(do_shielded, NULL, "shielded", &id[n]), n++;
    g[n] = spawn_named(do_event, ev_go, "woken", &id[n]), n++;
    double t0 = gevtest_now();                  /* all parked: the 1 ms wait expired */
    while (!unsaid_parked && gevtest_now() - t0 < 10)
        assert_int_equal(gev_sleep(0.005), 0);
    assert_true(unsaid_parked);
    assert_fails(gev_kill(g[SHIELDED], 0), ETIMEDOUT);     /* held back */
    gev_event_set(ev_go);                       /* "woken" is ready, not run */
    uint64_t fresh_id, later_id;
    gev_greenlet *fresh = spawn_named(do_nothing, NULL, "we\"ird\nname", &fresh_id);
    gev_greenlet *later = gev_spawn_later(100, do_nothing, NULL);
    later_id = id_of(later);

    capture(out, OUT_CAP);
    /* main, hub, 14 + the child + the pool member + fresh + later */
    expect_line(out, "gev: 19 greenlets (1 running, 1 ready, 2 new, 15 waiting), loop iteration %");
    expect_row(out, 1, "\"main\" running");
    expect_row(out, 2, "\"hub\" idle");
    char rest[160];
    snprintf(rest, sizeof rest, "\"reader\" waiting on fd %d for read for # s, spawned by 1",
             rd_pair[0]);
    expect_row(out, id[READER], rest);
    snprintf(rest, sizeof rest, "\"writer\" waiting on fd %d for write for # s, spawned by 1",
             wr_pair[0]);
    expect_row(out, id[WRITER], rest);
    expect_row(out, id[SLEEPER], "\"sleeper\" sleeping for # s, wakes in # s, spawned by 1");
    double wakes = figure_after(out, id[SLEEPER], "wakes in ");
    assert_true(wakes > 99 && wakes <= 100);
    snprintf(rest, sizeof rest, "\"greenlet-%llu\" waiting on join for # s, spawned by 1",
             (unsigned long long)id[JOINER]);
    expect_row(out, id[JOINER], rest);
    assert_true(figure_after(out, id[JOINER], " for ") < 10 * gevtest_slow());
    expect_row(out, id[EVENT], "\"event\" waiting on event for # s, spawned by 1");
    expect_row(out, id[QUEUE], "\"queue\" waiting on queue for # s, times out in # s, spawned by 1");
    expect_row(out, id[LOCK], "\"lock\" waiting on lock for # s, spawned by 1");
    expect_row(out, id[SEM], "\"sem\" waiting on semaphore for # s, spawned by 1");
    expect_row(out, id[CHAN], "\"chan\" waiting on channel for # s, spawned by 1");
    expect_row(out, id[RESULT], "\"result\" waiting on result for # s, spawned by 1");
    expect_row(out, id[SPAWNER], "\"spawner\" waiting on event for # s, spawned by 1");
    snprintf(rest, sizeof rest, "\"greenlet-%llu\" waiting on event for # s, spawned by %llu",
             (unsigned long long)id_of(child_g), (unsigned long long)id[SPAWNER]);
    expect_row(out, id_of(child_g), rest);
    snprintf(rest, sizeof rest, "\"greenlet-%llu\" waiting on event for # s, spawned by 1",
             (unsigned long long)member_id);
    expect_row(out, member_id, rest);
    expect_row(out, id[UNSAID], "\"unsaid\" waiting for # s, spawned by 1");
    expect_row(out, id[SHIELDED],
               "\"shielded\" waiting on event for # s, killed, shielded, spawned by 1");
    expect_row(out, id[WOKEN], "\"woken\" ready, spawned by 1");
    expect_row(out, fresh_id, "\"we?ird?name\" new, spawned by 1");
    snprintf(rest, sizeof rest, "\"greenlet-%llu\" new, starts in # s, spawned by 1",
             (unsigned long long)later_id);
    expect_row(out, later_id, rest);
    /* Two fds; the sleep, the queue's timeout and the later start. */
    expect_line(out, "gev: watchers: io 2 (fds 2), timers 3, signals 0, children 0, async 1; "
                     "referenced 5");
    expect_line(out, "gev: counters: switches %, spawns 18, finished unreleased 0, "
                     "stacks cached %, stack bytes mapped %");
    assert_non_null(strstr(out, "\ngev: end of run info\n"));
    assert_null(strstr(out, "  id 2 \"hub\" idle, spawned"));

    gev_event_set(ev_release);
    gev_greenlet *all[MAX_G + 4];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        all[m++] = g[i];
    all[m++] = child_g, all[m++] = fresh, all[m++] = later;
    assert_int_equal(gev_killall(all, m, 5.0), 0);
    gevtest_release_all(all, m);
    assert_int_equal(gev_pool_kill(full_pool, 5.0), 0);
    gev_pool_free(full_pool);
    gev_close(rd_pair[0]), gev_close(wr_pair[0]);
    close(rd_pair[1]), close(wr_pair[1]);
    gev_event_free(ev), gev_event_free(ev_go), gev_event_free(ev_release);
    gev_event_free(ev_never);
    gev_queue_free(queue), gev_lock_free(lock), gev_sem_free(sem);
    gev_channel_free(chan), gev_result_free(result);
    free(out);
}

/* ---- signals, children, the thread pool --------------------------------------- */

static int block_fd = -1;

static void *block_in_worker(void *a)
{
    char c;
    ssize_t r;
    while ((r = read(block_fd, &c, 1)) < 0 && errno == EINTR)
        ;
    return a;
}

static void *do_signal(void *a) { gev_signal_wait(SIGUSR1, GEV_FOREVER); return NULL; }
static void *do_child(void *a) { gev_waitpid((pid_t)(intptr_t)a, NULL, GEV_FOREVER); return NULL; }
static void *do_pool(void *a) { gev_threadpool_run(block_in_worker, NULL, NULL); return NULL; }

static void test_signal_child_and_pool_waits(void **state)
{
    (void)state;
    char *out = malloc(OUT_CAP);
    int release[2], child_gate[2];
    assert_int_equal(pipe(release), 0);
    assert_int_equal(pipe(child_gate), 0);
    block_fd = release[0];
    pid_t pid = gevtest__fork();
    if (pid == 0) {
        char c;
        close(child_gate[1]);
        _exit(read(child_gate[0], &c, 1) >= 0 ? 0 : 1);
    }
    close(child_gate[0]);
    uint64_t sig_id, child_id, pool_id;
    gev_greenlet *g[3] = {
        spawn_named(do_signal, NULL, "sig", &sig_id),
        spawn_named(do_child, (void *)(intptr_t)pid, "child", &child_id),
        spawn_named(do_pool, NULL, "pool", &pool_id),
    };
    assert_int_equal(gev_sleep(0.02), 0);
    capture(out, OUT_CAP);
    char rest[128];
    snprintf(rest, sizeof rest, "\"sig\" waiting on signal %d for # s, spawned by 1", SIGUSR1);
    expect_row(out, sig_id, rest);
    snprintf(rest, sizeof rest, "\"child\" waiting on child %d for # s, spawned by 1", (int)pid);
    expect_row(out, child_id, rest);
    expect_row(out, pool_id, "\"pool\" waiting on thread pool for # s, spawned by 1");
    expect_line(out, "gev: watchers: io 0 (fds 0), timers 0, signals 1, children 1, async %; "
                     "referenced %");

    assert_int_equal(write(child_gate[1], "x", 1), 1);
    assert_int_equal(write(release[1], "x", 1), 1);
    assert_int_equal(gev_join(g[1], 10), 0);
    assert_int_equal(gev_join(g[2], 10), 0);
    assert_int_equal(gev_kill(g[0], 5), 0);
    gevtest_release_all(g, 3);
    close(child_gate[1]), close(release[0]), close(release[1]);
    free(out);
}

/* ---- counters ---------------------------------------------------------------- */

static void *sleep_a_little(void *a)
{
    gev_sleep(0.001);
    return a;
}

static void expect_stacks_consistent(const struct gev_stats *st)
{
    gev__stack_stats ss;
    gev__stack_stats_get(&ss);
    assert_int_equal(st->stacks_mapped, ss.guarded + ss.unguarded);
    assert_int_equal(st->stack_bytes_mapped, ss.bytes);
    assert_true(st->stack_bytes_mapped >= st->stacks_mapped * gev__stack_default_size());
    for (size_t i = 0; i < sizeof st->reserved / sizeof st->reserved[0]; i++)
        assert_int_equal(st->reserved[i], 0);
}

static void test_stats_count(void **state)
{
    (void)state;
    enum { N = 50 };
    struct gev_stats a, b;
    assert_fails(gev_stats(NULL), EINVAL);
    assert_int_equal(gev_stats(&a), 0);
    expect_stacks_consistent(&a);
    gev_greenlet *g[N];
    for (int i = 0; i < N; i++)
        g[i] = gev_spawn(sleep_a_little, NULL);
    struct gev_stats mid;
    assert_int_equal(gev_stats(&mid), 0);
    assert_int_equal(mid.spawns, a.spawns + N);
    assert_int_equal(mid.live_greenlets, a.live_greenlets + N);
    assert_int_equal(mid.switches, a.switches);             /* spawning never switches */
    gevtest_join_release(g, N, 10);
    assert_int_equal(gev_stats(&b), 0);
    assert_int_equal(b.spawns, a.spawns + N);
    assert_int_equal(b.live_greenlets, a.live_greenlets);
    assert_true(b.switches >= a.switches + 2 * N);          /* each ran twice at least */
    assert_true(b.loop_iterations > a.loop_iterations);     /* the sleeps' timers */
    assert_true(b.stacks_cached >= 1);                      /* finished runners are kept */
    assert_true(b.stacks_mapped >= b.stacks_cached);
    expect_stacks_consistent(&b);
}

/* ---- no hub --------------------------------------------------------------------- */

static void *print_without_hub(void *arg)
{
    capture(arg, OUT_CAP);
    return NULL;
}

static void test_thread_without_hub(void **state)
{
    (void)state;
    char *out = malloc(OUT_CAP);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, print_without_hub, out), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(out, "gev: no hub in this thread\n");
    free(out);
}

/* ---- GEV_DUMP_SIGNAL ------------------------------------------------------------ */

static void test_dump_signal_values(void **state)
{
    (void)state;
    assert_int_equal(gev__dump_signal_parse("QUIT"), SIGQUIT);
    assert_int_equal(gev__dump_signal_parse("SIGUSR2"), SIGUSR2);
    assert_int_equal(gev__dump_signal_parse("usr1"), SIGUSR1);
    assert_int_equal(gev__dump_signal_parse("12"), 12);
    const char *bad[] = {NULL, "", "0", "-3", "65536", "12x", "SIG", "NOPE", "SIGSIGQUIT", " QUIT"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(gev__dump_signal_parse(bad[i]), 0);
}

/* In a child: a fresh hub made with GEV_DUMP_SIGNAL=<arg>, a greenlet
 * parked on an event, SIGUSR2 raised, time for the hub to catch it. */
static int dump_on_signal(void *arg)
{
    gev_shutdown();
    setenv("GEV_DUMP_SIGNAL", arg, 1);
    gev_event *e = gev_event_new();
    gev_greenlet *g = gev_spawn(do_event, e);
    gev_set_name(g, "parked");
    gev_sleep(0.01);
    raise(SIGUSR2);
    /* Until the handler's greenlet was spawned and has finished (its
     * table printed), or 10 s: then the parent sees what is missing. */
    struct gev_stats st;
    double t0 = gevtest_now();
    do
        gev_sleep(0.005);
    while (gev_stats(&st) == 0 && (st.spawns < 2 || st.live_greenlets > 1) &&
           gevtest_now() - t0 < 10);
    return 0;
}

/* What fn(arg), in a child that must exit 0, wrote to stderr (malloc'd). */
static char *stderr_of(int (*fn)(void *arg), void *arg)
{
    char *err = malloc(OUT_CAP);
    assert_non_null(err);
    gevtest_assert_exited(gevtest_fork_capture(fn, arg, err, OUT_CAP), 0);
    return err;
}

static void test_dump_signal_prints_the_table(void **state)
{
    (void)state;
    char *err = stderr_of(dump_on_signal, "USR2");
    /* main sleeps; the handler's greenlet, spawned by the hub, prints. */
    expect_line(err, "gev: 3 greenlets (1 running, 0 ready, 0 new, 2 waiting), loop iteration %");
    expect_row(err, 1, "\"main\" sleeping for # s, wakes in # s");
    expect_row(err, 2, "\"hub\" idle");
    expect_row(err, 3, "\"parked\" waiting on event for # s, spawned by 1");
    expect_row(err, 4, "\"greenlet-4\" running, spawned by 2");
    expect_line(err, "gev: watchers: io 0 (fds 0), timers 1, signals 1, children 0, async 1; "
                     "referenced 1");
    assert_non_null(strstr(err, "\ngev: end of run info\n"));
    assert_null(strstr(strstr(err, "end of run info"), "gev:"));    /* once */
    free(err);
}

/* A value that names no signal is ignored: no handler, nothing printed
 * (the signal keeps its default action and would kill the child). */
static void test_dump_signal_invalid_is_ignored(void **state)
{
    (void)state;
    char err[256];
    int st = gevtest_fork_capture(dump_on_signal, "NOT-A-SIGNAL", err, sizeof err);
    gevtest_assert_killed(st, SIGUSR2);
    assert_string_equal(err, "");
}

/* ---- GEV_DEBUG: why main fails with EDEADLK ------------------------------------ */

/* Run as `test-runinfo --deadlock` with GEV_DEBUG=1: main waits on an event
 * nobody can set while a greenlet waits on another.  Exit 0 if the wait
 * failed with EDEADLK. */
static int deadlock_main(void)
{
    gev_event *mine = gev_event_new(), *theirs = gev_event_new();
    gev_greenlet *g = gev_spawn(do_event, theirs);
    gev_set_name(g, "stuck");
    int rc = gev_event_wait(mine, GEV_FOREVER);
    int err = errno;
    gev_event_free(mine);           /* leaves nothing for LeakSanitizer */
    gev_event_free(theirs);         /* stuck wakes with EBADF */
    gev_release(g);
    gev_shutdown();
    return rc == -1 && err == EDEADLK ? 0 : 1;
}

static int exec_deadlock(void *debug)
{
    if (debug)
        setenv("GEV_DEBUG", "1", 1);
    else
        unsetenv("GEV_DEBUG");
    execl(self_path, self_path, "--deadlock", (char *)NULL);
    return 127;
}

static void test_debug_explains_deadlock(void **state)
{
    (void)state;
    char *err = stderr_of(exec_deadlock, "1");
    expect_line(err, "gev: GEV_DEBUG: the main greenlet would wait forever, its wait fails "
                     "with EDEADLK: no greenlet is ready, and no referenced watcher, "
                     "thread-pool job or hub reference is left to wake one");
    assert_true(strncmp(err, "gev: GEV_DEBUG: ", 16) == 0);    /* the why comes first */
    expect_line(err, "gev: 2 greenlets (0 running, 0 ready, 0 new, 2 waiting), loop iteration %");
    expect_row(err, 1, "\"main\" waiting on event for # s");
    expect_row(err, 2, "\"hub\" running");
    expect_row(err, 3, "\"stuck\" waiting on event for # s, spawned by 1");
    expect_line(err, "gev: watchers: io 0 (fds 0), timers 0, signals 0, children 0, async 1; "
                     "referenced 0");
    /* Without GEV_DEBUG the same EDEADLK says nothing. */
    free(err);
    err = stderr_of(exec_deadlock, NULL);
    assert_string_equal(err, "");
    free(err);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--deadlock") == 0)
        return deadlock_main();
    self_path = argv[0];
    unsetenv("GEV_DUMP_SIGNAL");
    const struct CMUnitTest tests[] = {
        gevtest(test_every_wait_says_what),
        gevtest(test_signal_child_and_pool_waits),
        gevtest(test_stats_count),
        gevtest(test_thread_without_hub),
        gevtest(test_dump_signal_values),
        gevtest(test_dump_signal_prints_the_table),
        gevtest(test_dump_signal_invalid_is_ignored),
        gevtest(test_debug_explains_deadlock),
    };
    return cmocka_run_group_tests_name("runinfo", tests, NULL, NULL);
}
