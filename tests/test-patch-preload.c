/* tests/test-patch-preload.c: a gev program linked with libgev only, never
 * rebuilt, gets patched by LD_PRELOAD=libgev-patch-<backend>.so.0 with
 * GEV_PATCH=1.  The test runs itself again that way: in the child, three
 * greenlets each usleep(200 ms) take ~0.2 s together (patched), not 0.6 s.
 * Preloaded without GEV_PATCH=1, nothing is switched on. */
#include "gevtest.h"
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *napper(void *arg)
{
    return (void *)(intptr_t)usleep(200000);
}

/* The child's part: exit 0 if the sleeps overlapped, 1 if they were
 * serial, 2 on an error. */
static int child_main(void)
{
    gev_greenlet *gs[3];
    double t0 = gevtest_now();
    for (int i = 0; i < 3; i++)
        if (!(gs[i] = gev_spawn(napper, NULL)))
            return 2;
    if (gev_joinall(gs, 3, 5) < 0)
        return 2;
    for (int i = 0; i < 3; i++)
        if (gev_value(gs[i]) != NULL)
            return 2;
    double dt = gevtest_now() - t0;
    return dt < 0.45 ? 0 : dt >= 0.55 ? 1 : 2;
}

/* This program's path: argv[0] (under a wrapper such as valgrind,
 * /proc/self/exe is the wrapper's tool, which refuses to run), else
 * /proc/self/exe. */
static const char *self_path = "/proc/self/exe";

/* Runs this program again with LD_PRELOAD and GEV_PATCH as given; returns
 * its exit status (3: it could not be run). */
static int run_child(const char *gev_patch)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("LD_PRELOAD", PT_PATCH_SO, 1);
        if (gev_patch)
            setenv("GEV_PATCH", gev_patch, 1);
        else
            unsetenv("GEV_PATCH");
        setenv("PT_PRELOAD_CHILD", "1", 1);
        execl(self_path, "test-patch-preload", (char *)NULL);
        _exit(3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_preload_patches(void **state)
{
    assert_int_equal(access(PT_PATCH_SO, R_OK), 0);
    assert_int_equal(run_child("1"), 0);
}

static void test_preload_without_switch_is_libc(void **state)
{
    assert_int_equal(run_child(NULL), 1);
}

int main(int argc, char **argv)
{
    if (getenv("PT_PRELOAD_CHILD"))
        return child_main();
    if (argc > 0 && strchr(argv[0], '/'))
        self_path = argv[0];
    const struct CMUnitTest tests[] = {
        gevtest(test_preload_patches),
        gevtest(test_preload_without_switch_is_libc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
