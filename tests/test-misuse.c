/* tests/test-misuse.c: misuse that C cannot report as an error (API.md,
 * "Robustness"): releasing a handle twice, using it after its release,
 * cancelling a timeout twice, using a hub's object from another thread.
 *
 * Without GEV_DEBUG none of them may act on another object: a released
 * record waits in a quarantine before it is reused, so the stale handle
 * meets its own freed record.  With GEV_DEBUG=1 each aborts with a line
 * naming the call: those cases run in a child that re-executes this program
 * with GEV_DEBUG=1 and "--misuse <case>" (the flag is read once per
 * process), its stderr read through a pipe. */
#include "gevtest.h"
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "hub-internal.h"       /* GEV__QUARANTINE */

static const char *self_path;

static void *ret_arg(void *arg) { return arg; }

/* ---- without GEV_DEBUG ------------------------------------------------- */

/* A spawned, finished and released greenlet: its handle is now stale. */
static gev_greenlet *spawn_finished_released(const char *name)
{
    gev_greenlet *g = gev_spawn(ret_arg, (void *)name);
    assert_non_null(g);
    gev_set_name(g, name);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    gev_release(g);
    return g;
}

static void test_double_release_spares_the_next_greenlet(void **state)
{
    (void)state;
    gev_greenlet *a = spawn_finished_released("a");
    gev_greenlet *b = gev_spawn(ret_arg, "b");      /* a LIFO free list gave it a's record */
    assert_non_null(b);
    gev_set_name(b, "b");
    gev_release(a);                                 /* the misuse */
    assert_false(gev_ready(b));
    assert_int_equal(gev_join(b, GEV_FOREVER), 0);
    assert_string_equal(gev_name(b), "b");
    assert_string_equal(gev_value(b), "b");
    gev_release(b);
    /* The free list is intact: two new greenlets get two records. */
    gev_greenlet *c = gev_spawn(ret_arg, "c"), *d = gev_spawn(ret_arg, "d");
    assert_non_null(c);
    assert_non_null(d);
    assert_ptr_not_equal(c, d);
    gev_greenlet *cd[] = {c, d};
    gevtest_join_release(cd, 2, GEV_FOREVER);
}

static void note_link(gev_greenlet *g, void *arg)
{
    (void)g;
    gevtest_log("%s", (const char *)arg);
}

static void test_released_handle_is_refused(void **state)
{
    (void)state;
    gev_greenlet *a = spawn_finished_released("a");
    gev_greenlet *b = gev_spawn(ret_arg, "b");
    assert_non_null(b);
    gev_set_name(b, "b");
    errno = 0;
    assert_null(gev_name(a));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    gev_set_name(a, "renamed");
    assert_int_equal(errno, EINVAL);
    assert_int_equal(gev_join(a, GEV_FOREVER), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(gev_kill(a, 0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(gev_link(a, note_link, "link-a"), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(gev_unlink(a, note_link, "link-a"), -1);
    assert_int_equal(errno, EINVAL);
    /* The queries answer for the greenlet that was released. */
    assert_true(gev_ready(a));
    assert_false(gev_killed(a));
    assert_string_equal(gev_value(a), "a");
    /* b was not touched: not killed, not renamed, no link. */
    assert_false(gev_ready(b));
    assert_int_equal(gev_join(b, GEV_FOREVER), 0);
    assert_false(gev_killed(b));
    assert_string_equal(gev_name(b), "b");
    assert_log("");
    gev_release(b);
}

/* The quarantine holds a freed record back for GEV__QUARANTINE later frees. */
static void test_released_handle_recognised_for_a_while(void **state)
{
    (void)state;
    gev_greenlet *a = spawn_finished_released("a");
    for (unsigned i = 0; i < GEV__QUARANTINE - 1; i++) {
        gev_greenlet *g = spawn_finished_released("other");
        assert_ptr_not_equal(g, a);
    }
    gev_greenlet *b = gev_spawn(ret_arg, "b");
    assert_ptr_not_equal(b, a);
    errno = 0;
    assert_null(gev_name(a));
    assert_int_equal(errno, EINVAL);
    gev_release(a);
    assert_int_equal(gev_join(b, GEV_FOREVER), 0);
    gev_set_name(b, "b");
    assert_string_equal(gev_name(b), "b");
    gev_release(b);
}

static void test_double_timeout_cancel_is_harmless(void **state)
{
    (void)state;
    gev_timeout *t = gev_timeout_start(10);
    assert_non_null(t);
    gev_timeout_cancel(t);
    gev_timeout_cancel(t);
    /* A new scope that malloc would have put in t's memory. */
    gev_timeout *t2 = gev_timeout_start(0.01);
    assert_non_null(t2);
    gev_timeout_cancel(t);
    double t0 = gevtest_now();
    assert_int_equal(gev_sleep(2), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(gevtest_now() - t0 < 1.0);
    assert_true(gev_timeout_expired(t2));
    gev_timeout_cancel(t2);
    assert_int_equal(gev_sleep(0), 0);
}

static void *leave_scope_open(void *arg)
{
    (void)arg;
    return gev_timeout_start(10);
}

/* A greenlet that returns inside its scope has it cancelled for it. */
static void test_timeout_of_finished_greenlet_cancelled_once(void **state)
{
    (void)state;
    gev_greenlet *g = gev_spawn(leave_scope_open, NULL);
    assert_int_equal(gev_join(g, GEV_FOREVER), 0);
    gev_timeout *t = gev_value(g);
    assert_non_null(t);
    gev_release(g);
    gev_timeout_cancel(t);
    gev_timeout *mine = gev_timeout_start(0.01);
    gev_timeout_cancel(t);
    assert_int_equal(gev_sleep(2), -1);
    assert_int_equal(errno, ETIMEDOUT);
    gev_timeout_cancel(mine);
}

/* ---- with GEV_DEBUG=1: each misuse aborts, naming the call -------------- */

static gev_greenlet *debug_released(void)
{
    gev_greenlet *g = gev_spawn(ret_arg, NULL);
    gev_join(g, GEV_FOREVER);
    gev_release(g);
    return g;
}

static void misuse_release_twice(void) { gev_release(debug_released()); }

static void misuse_release_twice_alive(void)
{
    gev_greenlet *g = gev_spawn(ret_arg, NULL);     /* not started yet */
    gev_release(g);
    gev_release(g);
}

static void misuse_name_after_release(void) { gev_name(debug_released()); }
static void misuse_join_after_release(void) { gev_join(debug_released(), 0); }
static void misuse_kill_after_release(void) { gev_kill(debug_released(), 0); }

/* Even after many more greenlets came and went. */
static void misuse_link_long_after_release(void)
{
    gev_greenlet *g = debug_released();
    for (int i = 0; i < 1000; i++)
        debug_released();
    gev_link(g, note_link, NULL);
}

static void misuse_cancel_twice(void)
{
    gev_timeout *t = gev_timeout_start(1);
    gev_timeout_cancel(t);
    gev_timeout_cancel(t);
}

/* Its greenlet returned inside the scope, which ended it. */
static void misuse_cancel_after_return(void)
{
    gev_greenlet *g = gev_spawn(leave_scope_open, NULL);
    gev_join(g, GEV_FOREVER);
    gev_timeout_cancel(gev_value(g));
}

static void misuse_expired_after_cancel(void)
{
    gev_timeout *t = gev_timeout_start(1);
    gev_timeout_cancel(t);
    gev_timeout_expired(t);
}

/* From another thread: fn(obj), with obj made on this one. */
static void on_other_thread(void *(*fn)(void *), void *obj)
{
    pthread_t th;
    if (pthread_create(&th, NULL, fn, obj) == 0)
        pthread_join(th, NULL);
}

static void *put_there(void *q) { gev_queue_put(q, NULL, 0); return NULL; }
static void *set_there(void *e) { gev_event_set(e); return NULL; }
static void *release_there(void *s) { gev_sem_release(s); return NULL; }
static void *acquire_there(void *l) { gev_lock_acquire(l, 0); return NULL; }
static void *get_there(void *c) { gev_channel_get(c, NULL, 0); return NULL; }
static void *result_there(void *r) { gev_result_set(r, NULL); return NULL; }
static void *kill_there(void *g) { gev_kill(g, 0); return NULL; }
static void *cancel_there(void *t) { gev_timeout_cancel(t); return NULL; }

static void misuse_queue_thread(void) { on_other_thread(put_there, gev_queue_new(0)); }
static void misuse_event_thread(void) { on_other_thread(set_there, gev_event_new()); }
static void misuse_sem_thread(void) { on_other_thread(release_there, gev_sem_new(0)); }
static void misuse_lock_thread(void) { on_other_thread(acquire_there, gev_lock_new()); }
static void misuse_channel_thread(void) { on_other_thread(get_there, gev_channel_new()); }
static void misuse_result_thread(void) { on_other_thread(result_there, gev_result_new()); }
static void misuse_greenlet_thread(void) { on_other_thread(kill_there, gev_spawn(ret_arg, NULL)); }
static void misuse_timeout_thread(void) { on_other_thread(cancel_there, gev_timeout_start(1)); }

static void *detached(void *arg)
{
    gev_sleep(0.001);
    return arg;
}

static void release_in_link(gev_greenlet *g, void *arg)
{
    (void)arg;
    gev_name(g);
    gev_release(g);
}

/* Correct use under GEV_DEBUG: nothing aborts, and the program says nothing. */
static void misuse_none(void)
{
    for (int i = 0; i < 100; i++) {
        gev_greenlet *g = gev_spawn(ret_arg, NULL);
        gev_join(g, GEV_FOREVER);
        gev_name(g);
        gev_release(g);
    }
    gev_release(gev_spawn(detached, NULL));         /* released while alive */
    gev_link(gev_spawn(ret_arg, NULL), release_in_link, NULL);
    gev_timeout *outer = gev_timeout_start(5), *inner = gev_timeout_start(5);
    gev_timeout_cancel(inner);
    gev_timeout_cancel(outer);
    gev_greenlet *open = gev_spawn(leave_scope_open, NULL);
    gev_join(open, GEV_FOREVER);                    /* its scope ends with it */
    gev_release(open);
    gev_queue *q = gev_queue_new(0);
    gev_queue_put(q, q, 0);
    gev_queue_get(q, NULL, 0);
    gev_queue_free(q);
    gev_pool *p = gev_pool_new(2);
    for (int i = 0; i < 5; i++)
        gev_pool_spawn(p, detached, NULL);
    gev_pool_join(p, GEV_FOREVER);
    gev_pool_free(p);
    if (gev_run(5) != 0)
        _exit(3);
    gev_shutdown();
}

static const struct {
    const char *name;
    void (*fn)(void);
} misuse_cases[] = {
    {"release_twice", misuse_release_twice},
    {"release_twice_alive", misuse_release_twice_alive},
    {"name_after_release", misuse_name_after_release},
    {"join_after_release", misuse_join_after_release},
    {"kill_after_release", misuse_kill_after_release},
    {"link_long_after_release", misuse_link_long_after_release},
    {"cancel_twice", misuse_cancel_twice},
    {"expired_after_cancel", misuse_expired_after_cancel},
    {"cancel_after_return", misuse_cancel_after_return},
    {"queue_thread", misuse_queue_thread},
    {"event_thread", misuse_event_thread},
    {"sem_thread", misuse_sem_thread},
    {"lock_thread", misuse_lock_thread},
    {"channel_thread", misuse_channel_thread},
    {"result_thread", misuse_result_thread},
    {"greenlet_thread", misuse_greenlet_thread},
    {"timeout_thread", misuse_timeout_thread},
    {"none", misuse_none},
};

/* Run case `name` in a fresh process with GEV_DEBUG=1; its stderr in buf. */
static int run_debug_case(const char *name, char *buf, size_t size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("GEV_DEBUG", "1", 1);
        execl(self_path, self_path, "--misuse", name, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got < size - 1 && (n = read(fds[0], buf + got, size - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void expect_abort(const char *name, const char *message)
{
    char buf[1024];
    int status = run_debug_case(name, buf, sizeof buf);
    if (!strstr(buf, message))
        fail_msg("case %s: stderr \"%s\" lacks \"%s\"", name, buf, message);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_debug_release_twice(void **state)
{
    (void)state;
    expect_abort("release_twice", "gev: gev_release: greenlet-");
    expect_abort("release_twice", " released twice\n");
    expect_abort("release_twice_alive", "gev: gev_release: greenlet-");
}

static void test_debug_use_after_release(void **state)
{
    (void)state;
    expect_abort("name_after_release", "gev: gev_name: greenlet-");
    expect_abort("name_after_release", " used after gev_release\n");
    expect_abort("join_after_release", "gev: gev_join: greenlet-");
    expect_abort("kill_after_release", "gev: gev_kill: greenlet-");
    expect_abort("link_long_after_release", "gev: gev_link: greenlet-");
}

static void test_debug_timeout_cancelled_twice(void **state)
{
    (void)state;
    expect_abort("cancel_twice", "gev: gev_timeout_cancel: timeout cancelled twice");
    expect_abort("expired_after_cancel",
                 "gev: gev_timeout_expired: timeout used after gev_timeout_cancel");
    expect_abort("cancel_after_return", "gev: gev_timeout_cancel: timeout cancelled twice");
}

static void test_debug_other_thread(void **state)
{
    (void)state;
    expect_abort("queue_thread", "gev: gev_queue_put: queue of another thread's hub\n");
    expect_abort("event_thread", "gev: gev_event_set: event of another thread's hub\n");
    expect_abort("sem_thread", "gev: gev_sem_release: semaphore of another thread's hub\n");
    expect_abort("lock_thread", "gev: gev_lock_acquire: lock of another thread's hub\n");
    expect_abort("channel_thread", "gev: gev_channel_get: channel of another thread's hub\n");
    expect_abort("result_thread", "gev: gev_result_set: result of another thread's hub\n");
    expect_abort("greenlet_thread", "gev: gev_kill: greenlet of another thread's hub\n");
    expect_abort("timeout_thread",
                 "gev: gev_timeout_cancel: timeout of another thread's hub\n");
}

static void test_debug_correct_use_is_silent(void **state)
{
    (void)state;
    char buf[1024];
    int status = run_debug_case("none", buf, sizeof buf);
    assert_string_equal(buf, "");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--misuse") == 0) {
        for (size_t i = 0; i < sizeof misuse_cases / sizeof *misuse_cases; i++)
            if (strcmp(misuse_cases[i].name, argv[2]) == 0) {
                misuse_cases[i].fn();
                _exit(0);
            }
        _exit(2);
    }
    self_path = argv[0];
    unsetenv("GEV_DEBUG");      /* the first tests are about its absence */
    const struct CMUnitTest tests[] = {
        gevtest(test_double_release_spares_the_next_greenlet),
        gevtest(test_released_handle_is_refused),
        gevtest(test_released_handle_recognised_for_a_while),
        gevtest(test_double_timeout_cancel_is_harmless),
        gevtest(test_timeout_of_finished_greenlet_cancelled_once),
        gevtest(test_debug_release_twice),
        gevtest(test_debug_use_after_release),
        gevtest(test_debug_timeout_cancelled_twice),
        gevtest(test_debug_other_thread),
        gevtest(test_debug_correct_use_is_silent),
    };
    return cmocka_run_group_tests_name("misuse", tests, NULL, NULL);
}
