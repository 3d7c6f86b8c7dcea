#!/bin/sh
# tests/fuzz/run.sh [SECONDS] [BUILD]: build the libFuzzer harnesses with
# clang (ASan + UBSan) and run each for SECONDS (default 60), both at once,
# starting from the seed corpus in tests/fuzz/corpus/.  BUILD is a plain
# (not sanitized) configured gev build directory whose library the harnesses
# link (default build/libevent, configured and built if missing).  A crash
# leaves its input in tests/fuzz/crashes/: add it to the corpus, so
# make check replays it from then on (tests/test-fuzz-corpus.sh).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-60}
build=${2:-$top/build/libevent}
command -v clang >/dev/null || { echo "fuzz: clang not found (apt-get install clang libclang-rt-14-dev)"; exit 1; }
if [ ! -f "$build/Makefile" ]; then
    mkdir -p "$build"
    (cd "$build" && "$top/configure" -q --with-backend=libevent >/dev/null)
fi
make -C "$build" -s >/dev/null
lib=$(ls "$build"/.libs/libgev-libevent.so "$build"/.libs/libgev-libev.so 2>/dev/null | head -1)
out=$build/fuzz
mkdir -p "$out" "$top/tests/fuzz/crashes"
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
status=0
for h in httpd download; do
    clang -g -O1 $san -I"$top/api" -o "$out/fuzz-$h" "$top/tests/fuzz/fuzz-$h.c" \
        "$lib" -Wl,-rpath,"${lib%/*}"
    mkdir -p "$out/corpus-$h"
    # Found inputs go to a scratch corpus; the seeds in the tree stay as they are.
    (cd "$out" && ASAN_OPTIONS=detect_leaks=1 ./fuzz-$h -max_total_time="$seconds" \
        -max_len=16384 -timeout=10 -artifact_prefix="$top/tests/fuzz/crashes/$h-" \
        "corpus-$h" "$top/tests/fuzz/corpus/$h" > "fuzz-$h.log" 2>&1; echo $? > "fuzz-$h.rc") &
done
wait
for h in httpd download; do
    tail -3 "$out/fuzz-$h.log" | sed "s/^/  $h: /"
    rc=$(cat "$out/fuzz-$h.rc")
    if [ "$rc" != 0 ]; then
        grep -A20 'ERROR\|SUMMARY' "$out/fuzz-$h.log" | head -40
        echo "fuzz: $h FAILED (input in tests/fuzz/crashes/)"
        status=1
    fi
done
exit $status
