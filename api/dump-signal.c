/* api/dump-signal.c: GEV_DUMP_SIGNAL, run info on a signal.
 *
 * With GEV_DUMP_SIGNAL=QUIT (or SIGQUIT, or 3) in the environment when a
 * hub is made, that hub prints gev_print_run_info to stderr each time the
 * signal arrives, like a JVM's thread dump on SIGQUIT.  A value that names
 * no signal, or one the hub cannot catch (KILL, another thread's hub has
 * it), is ignored: the library never prints unless asked, and being asked
 * for a dump must not make anything else fail.
 *
 * It is an ordinary gev_signal_handler (api/signal.c): the signal is
 * caught the way the hub catches any, it coexists with the program's own
 * waits and handlers for it, it survives fork + gev_reinit, gev_shutdown
 * lets it go, and it does not keep gev_run going.  The handler runs in a
 * greenlet the hub spawns, which shows in its own table as running,
 * spawned by the hub.
 *
 * Registration: the hub is made by core/, which knows nothing of api/, so
 * this module asks the core, from a constructor, to call it whenever a
 * hub has been made (gev__hub_on_create).  A constructor rather than a
 * hook set on first use: no api call is sure to come before the first
 * hub exists (any call makes one), while the constructor runs when
 * libgev is loaded (it is shared only: configure disables static
 * builds), before any hub can exist.  Not a hub slot: slots have hooks
 * for shutdown and fork, not creation, and this keeps no state of its
 * own beyond its gev_signal handle, which the signals module owns.
 */
#include "config.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "gev.h"
#include "hub.h"
#include "dump-signal.h"

/* The signals a dump is usually asked for on, and the rest of the common
 * catchable ones; "SIG" is optional, case does not matter, and numbers
 * work for any other. */
static const struct {
    const char *name;
    int signum;
} signal_names[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"SYS", SIGSYS}, {"TRAP", SIGTRAP},
};

int gev__dump_signal_parse(const char *v)
{
    if (!v || !*v)
        return 0;
    if (*v >= '0' && *v <= '9') {
        char *end;
        long n = strtol(v, &end, 10);
        return *end == '\0' && n > 0 && n < NSIG ? (int)n : 0;
    }
    if (strncasecmp(v, "SIG", 3) == 0)
        v += 3;
    for (size_t i = 0; i < sizeof signal_names / sizeof *signal_names; i++)
        if (strcasecmp(v, signal_names[i].name) == 0)
            return signal_names[i].signum;
    return 0;
}

static void dump_run_info(int signum, void *arg)
{
    (void)signum;
    (void)arg;
    gev_print_run_info(STDERR_FILENO);
}

static void dump_signal_on_create(gev_hub *hub)
{
    (void)hub;
    int signum = gev__dump_signal_parse(getenv("GEV_DUMP_SIGNAL"));
    if (signum)
        (void)gev_signal_handler(signum, dump_run_info, NULL);  /* failure: ignored */
}

__attribute__((constructor)) static void dump_signal_register(void)
{
    gev__hub_on_create(dump_signal_on_create);
}
