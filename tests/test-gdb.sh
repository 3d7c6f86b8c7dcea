#!/bin/sh
# doc/gev-gdb.py under gdb: tests/gdb-target parks three greenlets (reading
# a pipe, sleeping, waiting on an event) and stops in gdb_stop_here(); then
#   - `info greenlets` lists main, the hub and the three, WAITING, by name;
#   - a second thread's hub has a table of its own, and `greenlet bt 3`
#     there (after `thread 2`) shows its parked greenlet;
#   - `greenlet bt N` of each shows its park_* function and the gev call it
#     waits in, unwound down to where its context started;
#   - the thread's registers and its own `bt` are the same after as before
#     (the command lends frame 0 the greenlet's registers and puts them back);
#   - the running greenlet's `greenlet bt` is the thread's, and an unknown
#     id is an error that says so.
# Not under GEV_TEST_WRAPPER (valgrind): a process on valgrind's synthetic
# CPU cannot be traced by gdb (only through vgdb), and running the target
# plainly here would repeat the plain stages' run.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(pwd)
target=$build/tests/gdb-target
ext=$top/doc/gev-gdb.py
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gev-gdb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

command -v gdb >/dev/null || { echo "SKIP: gdb not found (apt-get install gdb)"; exit 77; }
[ -z "${GEV_TEST_WRAPPER:-}" ] ||
    { echo "SKIP: runs under gdb, not under GEV_TEST_WRAPPER=$GEV_TEST_WRAPPER"; exit 77; }
[ -x "$target" ] || { echo "FAIL: $target not built"; exit 1; }

# LeakSanitizer cannot run in a traced process (an ASan build); gdb kills
# the target at the end anyway.  No debuginfod: everything is local.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export ASAN_OPTIONS
env -u DEBUGINFOD_URLS timeout -k 10 120 gdb -batch -nx -x "$ext" \
    -ex 'set pagination off' -ex 'set width 0' \
    -ex 'break gdb_stop_here' -ex run \
    -ex 'echo ==info==\n' -ex 'info greenlets' \
    -ex 'echo ==before==\n' -ex 'info registers' -ex bt \
    -ex 'echo ==bt3==\n' -ex 'greenlet bt 3' \
    -ex 'echo ==bt4==\n' -ex 'greenlet bt 4' \
    -ex 'echo ==bt5==\n' -ex 'greenlet bt 5' \
    -ex 'echo ==bt2==\n' -ex 'greenlet bt 2' \
    -ex 'echo ==bt1==\n' -ex 'greenlet bt 1' \
    -ex 'echo ==bt99==\n' -ex 'greenlet bt 99' \
    -ex 'thread 2' -ex 'echo ==far==\n' -ex 'greenlet bt 3' -ex 'thread 1' \
    -ex 'echo ==after==\n' -ex 'info registers' -ex bt \
    -ex 'echo ==end==\n' -ex kill \
    --args "$target" >"$tmp/out" 2>&1
rc=$?
section() { sed -n "/^==$1==\$/,/^==/p" "$tmp/out" | sed '1d;$d'; }
if ! grep -q 'Breakpoint 1, gdb_stop_here' "$tmp/out"; then
    cat "$tmp/out"
    if grep -qi 'ptrace\|Operation not permitted' "$tmp/out"; then
        echo "SKIP: gdb cannot trace processes here (ptrace not permitted)"; exit 77
    fi
    echo "FAIL: gdb (exit $rc) did not stop the target in gdb_stop_here"; exit 1
fi
sed -n '/^==info==$/,$p' "$tmp/out"
checks=0 failed=0
# check MESSAGE COMMAND...: one assertion; MESSAGE says what failed
check() {
    msg=$1; shift
    checks=$((checks + 1))
    "$@" || { echo "FAIL: $msg"; failed=$((failed + 1)); }
}
has_row() { tr -s ' ' <"$tmp/info1" | grep -Eq "^ *$1\\b"; }
has_frame() { grep -q " in $2 \\| $2 (" "$tmp/$1"; }
no_stop() { ! grep -q 'Backtrace stopped\|PC not saved\|corrupt stack' "$tmp/$1"; }

# Ids are given in creation order (the first thread's table comes first): main 1, the hub 2, then the spawns.
section info >"$tmp/info"
sed '/^Thread 2 /,$d' "$tmp/info" >"$tmp/info1"
# What each waits for, for how long (seconds) and who spawned it (main, 1).
for row in '\* 1 main RUNNING' '2 hub WAITING' '3 reader WAITING READ fd [0-9]+ [0-9.]+ s 1' \
        '4 sleeper WAITING SLEEP [0-9.]+ s 1' '5 waiter WAITING EVENT [0-9.]+ s 1'; do
    check "info greenlets has no row '$row'" has_row "$row"
done
# the second thread's hub, a section of its own, its ids from 1 again
sed -n '/^Thread 2 /,$p' "$tmp/info" >"$tmp/info2"
check "info greenlets has no second thread's hub" grep -q '^Thread 2 ' "$tmp/info"
check "the second thread's table has no far-reader" grep -Eq '^ +3 +far-reader +WAITING' "$tmp/info2"
section far >"$tmp/far"
check "greenlet bt 3 in thread 2 has no park_in_another_thread" has_frame far park_in_another_thread
# each parked greenlet: its park_* function, the call it waits in, and the
# frames down to the context's start (a complete unwind)
# check_bt ID FUNCTION...
check_bt() {
    id=$1; shift
    section "bt$id" >"$tmp/bt$id"
    for f in "$@" gev__context_boot; do
        check "greenlet bt $id has no frame $f" has_frame "bt$id" "$f"
    done
    check "greenlet bt $id stopped early" no_stop "bt$id"
}
check_bt 3 park_reading_a_pipe gev_read
check_bt 4 park_sleeping gev_sleep
check_bt 5 park_on_event gev_event_wait
check_bt 2 hub_main
section bt1 >"$tmp/bt1"
check "greenlet bt 1 (main, running) is not the thread's bt" has_frame bt1 gdb_stop_here
section bt99 >"$tmp/bt99"
check "greenlet bt 99 does not say there is no such greenlet" grep -q 'no greenlet 99' "$tmp/bt99"
section before >"$tmp/before"
section after >"$tmp/after"
check "no bt before the greenlet bt commands" has_frame before gdb_stop_here
check "registers or bt changed by greenlet bt" cmp -s "$tmp/before" "$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || diff "$tmp/before" "$tmp/after"
echo "$((checks - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
