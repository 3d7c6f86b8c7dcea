# gev-gdb.py: gdb commands for programs that use gev (gev(3), DEBUGGING
# WITH GDB).
#
#   info greenlets           every greenlet of every thread's hub: id, name,
#                            state, what it waits for, since when, parent
#   greenlet bt N [ARGS]     the backtrace of greenlet N of the selected
#                            thread's hub; ARGS go to `bt` (full, -3, ...)
#
# Load it with `source /usr/share/gev/gev-gdb.py` (gdb loads it by itself
# from $datadir/gdb/auto-load when the library is installed under a prefix
# gdb trusts).  Everything is read from the process's memory through
# libgev's debug info (struct gev_hub, struct gev_greenlet): a library built
# without -g, or stripped without its debug symbols at hand, cannot be read,
# and the commands say so.  Works on a live process and on a core file for
# `info greenlets`; `greenlet bt` of a parked greenlet needs a live process
# (it writes the thread's registers for the duration of one `bt`).
#
# A parked greenlet's registers are where its context switch left them
# (core/switch.h): with the assembly switch, pushed on its own stack below
# the saved stack pointer (the frame layouts in core/switch_x86_64.S and
# core/switch_aarch64.S); with --with-context=ucontext, in the ucontext_t's
# machine context.  `greenlet bt` puts them in the selected thread's frame 0
# for one `bt`, as if the thread had just returned from that switch, and
# restores every register it changed afterwards, whatever happened.
import struct

import gdb

# enum gev__wait_kind (core/hub.h), for a library whose debug info lacks the
# enum (compilers drop unused types): keep in the same order.
_WAIT_KINDS = ("OTHER", "SLEEP", "READ", "WRITE", "JOIN", "EVENT", "RESULT",
               "QUEUE", "CHANNEL", "LOCK", "SEMAPHORE", "THREADPOOL", "SIGNAL",
               "CHILD")
_MAX_GREENLETS = 10000000       # a walk longer than this is a corrupt list


class GevError(Exception):
    """A condition the user can act on: printed, not a Python traceback."""


def _hub_of_selected_thread():
    """The selected thread's hub (a gev_hub *), or None if it has none."""
    if gdb.selected_thread() is None:
        raise GevError("no process")
    try:
        hub = gdb.parse_and_eval("gev__tls_hub")
    except gdb.error as e:
        raise GevError(
            "cannot read gev__tls_hub (%s).  gev-gdb.py needs libgev's debug "
            "info (a build with -g, or the distribution's debug symbols: "
            "Debian's libgev-<flavour>0-dbgsym, Fedora's debuginfo) and a "
            "live process or core file with the library loaded; thread-local "
            "storage is read through libthread_db." % e)
    if int(hub) == 0:
        return None
    try:
        hub.dereference()["main"]
    except gdb.error as e:
        raise GevError("struct gev_hub is not in the debug info (%s): "
                       "load libgev's debug symbols" % e)
    return hub


def _enum_name(value, prefix):
    s = str(value)
    return s[len(prefix):] if s.startswith(prefix) else s


def _wait_kind_name(kind):
    try:
        t = gdb.lookup_type("enum gev__wait_kind")
        for f in t.fields():
            if f.enumval == kind:
                return _enum_name(f.name, "GEV__WAIT_")
    except gdb.error:
        pass
    return _WAIT_KINDS[kind] if 0 <= kind < len(_WAIT_KINDS) else str(kind)


def _greenlets(hub):
    """main, the hub greenlet, then every spawned record, in id order."""
    h = hub.dereference()
    out = [h["main"].address, h["hub_g"]]
    g, seen = h["all"], set()
    while int(g) != 0 and int(g) not in seen and len(seen) < _MAX_GREENLETS:
        seen.add(int(g))
        out.append(g)
        g = g["all_next"]
    return sorted((g for g in out if int(g) != 0), key=lambda g: int(g["id"]))


def _name(g):
    try:
        if int(g["name"]) != 0:
            return g["name"].string()
        if int(g["name_buf"][0]) != 0:
            return g["name_buf"].string()
    except gdb.MemoryError:
        return "<unreadable>"
    return "greenlet-%d" % int(g["id"])


def _find(hub, gid):
    for g in _greenlets(hub):
        if int(g["id"]) == gid:
            return g
    return None


def _loop_now(hub):
    """The loop's cached time (ns), or None if its struct is not readable."""
    try:
        return int(hub.dereference()["hot"]["loop"].dereference()["head"]["now"])
    except gdb.error:
        return None


def _is_current(hub, g):
    return int(hub.dereference()["hot"]["current"]) == int(g)


def _state(hub, g):
    # The hub greenlet's state says RUNNING from its first run on: the
    # library never parks it through gev__wait.  Not current, it waits for
    # the next thing to schedule.
    if bool(g["is_hub"]) and not _is_current(hub, g):
        return "WAITING"
    return _enum_name(g["state"], "GEV__")


def _row(hub, g, now):
    state = _state(hub, g)
    wait = since = ""
    if state == "WAITING" and not bool(g["is_hub"]):
        wait = _wait_kind_name(int(g["wait_kind"]))
        if wait in ("READ", "WRITE"):
            wait += " fd %d" % int(g["wait_fd"])
        began = int(g["wait_since"])
        if began and now is not None:
            since = "%.3f s" % ((now - began) / 1e9)
    parent = int(g["parent_id"])
    return ("*" if _is_current(hub, g) else " ", str(int(g["id"])), _name(g), state, wait,
            since, str(parent) if parent else "")


def _print_table(rows):
    head = (" ", "Id", "Name", "State", "Waits for", "Since", "Parent")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        gdb.write(" ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


class _KeepSelection:
    """Restores the selected thread and frame on exit."""

    def __enter__(self):
        self.thread = gdb.selected_thread()
        try:
            self.level = gdb.selected_frame().level()
        except gdb.error:
            self.level = None
        return self

    def __exit__(self, *exc):
        if self.thread is not None and self.thread.is_valid():
            self.thread.switch()
            if self.level is not None:
                _select_level(self.level)
        return False


def _select_level(level):
    f = gdb.newest_frame()
    while f is not None and f.level() < level:
        f = f.older()
    (f or gdb.newest_frame()).select()


class InfoGreenlets(gdb.Command):
    """Every greenlet of every thread's gev hub.

Usage: info greenlets

Per thread that has a hub: id, name, state, and for a waiting greenlet what
it waits for (READ/WRITE with the fd, SLEEP, EVENT, ...), for how long (on
the loop's clock, as of its last turn) and the id of the greenlet that
spawned it.  '*' marks the greenlet running on that thread.  Ids are per
hub: `greenlet bt N` takes one of the selected thread's."""

    def __init__(self):
        super().__init__("info greenlets", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        inferior = gdb.selected_inferior()
        if not inferior.pid and not inferior.threads():
            raise gdb.GdbError("info greenlets: no process")
        found = 0
        try:
            with _KeepSelection():
                for t in sorted(inferior.threads(), key=lambda t: t.num):
                    t.switch()
                    hub = _hub_of_selected_thread()
                    if hub is None:
                        continue
                    found += 1
                    gdb.write("Thread %d (%s), hub %#x:\n" %
                              (t.num, t.name or "LWP %d" % t.ptid[1], int(hub)))
                    now = _loop_now(hub)
                    _print_table([_row(hub, g, now) for g in _greenlets(hub)])
        except GevError as e:
            raise gdb.GdbError("info greenlets: %s" % e)
        if not found:
            gdb.write("No thread has a gev hub (yet).\n")


# Registers a parked greenlet's frame 0 is rebuilt from, per architecture
# and kind of switch: a function of (context value, inferior) -> {reg: int}.

def _words(inferior, addr, n):
    return struct.unpack("<%dQ" % n, bytes(inferior.read_memory(addr, 8 * n)))


def _regs_asm_x86_64(ctx, inferior):
    # core/switch_x86_64.S: MXCSR/x87, r15, r14, r13, r12, rbx, rbp, return
    # address, from the saved stack pointer up; as after its `ret`.
    sp = int(ctx["sp"])
    w = _words(inferior, sp, 8)
    return {"r15": w[1], "r14": w[2], "r13": w[3], "r12": w[4], "rbx": w[5],
            "rbp": w[6], "rip": w[7], "rsp": sp + 64}


def _regs_asm_aarch64(ctx, inferior):
    # core/switch_aarch64.S: x19..x28, x29, x30 from the saved sp up, in a
    # 176-byte frame; as after its `ret` (pc = x30).  (The aarch64 paths
    # follow the frame layouts but are not run by tests/test-gdb.sh, which
    # runs where the suite runs: x86-64.)
    sp = int(ctx["sp"])
    w = _words(inferior, sp, 12)
    regs = {"x%d" % (19 + i): w[i] for i in range(12)}
    regs.update(sp=sp + 176, pc=w[11])
    return regs


# <sys/ucontext.h>, x86-64: indices into uc_mcontext.gregs.
_X86_64_GREGS = {"r12": 4, "r13": 5, "r14": 6, "r15": 7, "rbp": 10,
                 "rbx": 11, "rsp": 15, "rip": 16}


def _regs_ucontext_x86_64(ctx, inferior):
    gregs = ctx["uc"]["uc_mcontext"]["gregs"]
    return {r: int(gregs[i]) & 0xFFFFFFFFFFFFFFFF for r, i in _X86_64_GREGS.items()}


def _regs_ucontext_aarch64(ctx, inferior):
    mc = ctx["uc"]["uc_mcontext"]
    regs = {"x%d" % i: int(mc["regs"][i]) for i in range(19, 31)}
    regs.update(sp=int(mc["sp"]), pc=int(mc["pc"]))
    return regs


_REGS_OF = {
    ("asm", "i386:x86-64"): _regs_asm_x86_64,
    ("asm", "aarch64"): _regs_asm_aarch64,
    ("ucontext", "i386:x86-64"): _regs_ucontext_x86_64,
    ("ucontext", "aarch64"): _regs_ucontext_aarch64,
}


def _saved_regs(g):
    ctx = g["ctx"].dereference()
    fields = [f.name for f in ctx.type.strip_typedefs().fields()]
    kind = "asm" if "sp" in fields else "ucontext"
    arch = gdb.newest_frame().architecture().name()
    fn = _REGS_OF.get((kind, arch))
    if fn is None:
        raise GevError("greenlet bt of a parked greenlet is not supported on "
                       "%s with the %s switch (x86-64 and aarch64 are)" % (arch, kind))
    return fn(ctx, gdb.selected_inferior())


def _set_reg(name, value):
    gdb.execute("set var $%s = %d" % (name, value), to_string=True)


def _live():
    """Whether the registers can be written: a process, not a core file."""
    inferior = gdb.selected_inferior()
    conn = getattr(inferior, "connection", None)     # gdb 12 and later
    if conn is not None:
        return conn.type != "core"
    return bool(inferior.pid)


def _bt_with_regs(regs, bt_args):
    """`bt` with frame 0's registers set to regs; every one put back."""
    gdb.newest_frame().select()
    frame = gdb.selected_frame()
    saved = {r: int(frame.read_register(r)) & 0xFFFFFFFFFFFFFFFF for r in regs}
    written = []
    try:
        for r, v in regs.items():
            written.append(r)
            _set_reg(r, v)
        gdb.execute("bt " + bt_args)
    finally:
        for r in written:
            _set_reg(r, saved[r])


class Greenlet(gdb.Command):
    """Commands about one greenlet of gev: see `help greenlet bt`."""

    def __init__(self):
        super().__init__("greenlet", gdb.COMMAND_STACK, prefix=True)


class GreenletBt(gdb.Command):
    """Backtrace of greenlet N of the selected thread's gev hub.

Usage: greenlet bt N [BT-ARGS]

N is an id from `info greenlets` (pick the thread first with `thread T`
when several have hubs).  The running greenlet's backtrace is the thread's
own.  A parked one's is unwound from the registers its last switch saved:
they stand in frame 0 of the thread for the one `bt`, then the thread's own
are put back.  BT-ARGS go to `bt` (e.g. full, -frame-arguments all, 5).
Needs a live process; a greenlet that has not run yet, or has finished, has
no stack to show."""

    def __init__(self):
        super().__init__("greenlet bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = arg.split(None, 1)
        if not args or not args[0].isdigit():
            raise gdb.GdbError("usage: greenlet bt N [BT-ARGS] (ids: info greenlets)")
        gid, bt_args = int(args[0]), args[1] if len(args) > 1 else ""
        try:
            self._bt(gid, bt_args)
        except GevError as e:
            raise gdb.GdbError("greenlet bt: %s" % e)

    def _bt(self, gid, bt_args):
        hub = _hub_of_selected_thread()
        if hub is None:
            raise GevError("the selected thread has no gev hub")
        g = _find(hub, gid)
        if g is None:
            raise GevError("no greenlet %d in this thread's hub (info greenlets)" % gid)
        state = _state(hub, g)
        label = "greenlet %d (%s)" % (gid, _name(g))
        if _is_current(hub, g):
            gdb.write("%s is running: the thread's own backtrace\n" % label)
            with _KeepSelection():
                gdb.newest_frame().select()
                gdb.execute("bt " + bt_args)
            return
        if state in ("DEAD", "FREED"):
            raise GevError("%s has finished: it has no stack" % label)
        if int(g["ctx"]) == 0:
            raise GevError("%s has not run yet: it has no stack" % label)
        regs = _saved_regs(g)
        if not _live():
            raise GevError("%s is parked, and its registers can be set for a "
                           "backtrace in a live process only (not a core file)" % label)
        gdb.write("%s, %s: unwound from its saved registers\n" % (label, state))
        with _KeepSelection():
            _bt_with_regs(regs, bt_args)


InfoGreenlets()
Greenlet()
GreenletBt()
