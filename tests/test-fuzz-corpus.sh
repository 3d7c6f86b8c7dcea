#!/bin/sh
# Every input in tests/fuzz/corpus/ (the seeds, and each crash the fuzzers
# ever found, added there) through the two parser harnesses, built with
# the plain driver tests/fuzz/replay.c: a crash once found stays fixed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
status=0
for h in httpd download; do
    bin=./tests/fuzz-$h-replay
    [ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
    if out=$("$bin" "$top"/tests/fuzz/corpus/$h/* 2>&1); then
        echo "$h: $out"
    else
        echo "$out" | tail -20
        echo "FAIL: $h harness on the corpus"
        status=1
    fi
done
exit $status
