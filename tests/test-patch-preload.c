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

/* The child's exit statuses: codes nothing else uses, so that a child
 * that could not run (a failed exec, a sanitizer's abort: 1) never passes
 * for a result. */
enum { CHILD_OVERLAP = 20, CHILD_SERIAL, CHILD_ERROR, CHILD_NO_EXEC };

/* The child's part: whether the sleeps overlapped. */
static int child_main(void)
{
    gev_greenlet *gs[3];
    double t0 = gevtest_now();
    for (int i = 0; i < 3; i++)
        if (!(gs[i] = gev_spawn(napper, NULL)))
            return CHILD_ERROR;
    if (gev_joinall(gs, 3, 5) < 0)
        return CHILD_ERROR;
    for (int i = 0; i < 3; i++)
        if (gev_value(gs[i]) != NULL)
            return CHILD_ERROR;
    double dt = gevtest_now() - t0;
    return dt < 0.45 ? CHILD_OVERLAP : dt >= 0.55 ? CHILD_SERIAL : CHILD_ERROR;
}

/* This program's path: argv[0] (under a wrapper such as valgrind,
 * /proc/self/exe is the wrapper's tool, which refuses to run), else
 * /proc/self/exe. */
static const char *self_path = "/proc/self/exe";

/* Runs this program again with LD_PRELOAD and GEV_PATCH as given; returns
 * its exit status. */
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
        /* In a sanitizer build the preloaded library comes before the
         * ASan runtime (its dependency); the hooks then run in front of
         * ASan's interceptors, which is fine. */
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        execl(self_path, "test-patch-preload", (char *)NULL);
        _exit(CHILD_NO_EXEC);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_preload_patches(void **state)
{
    assert_int_equal(access(PT_PATCH_SO, R_OK), 0);
    assert_int_equal(run_child("1"), CHILD_OVERLAP);
}

static void test_preload_without_switch_is_libc(void **state)
{
    assert_int_equal(run_child(NULL), CHILD_SERIAL);
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
