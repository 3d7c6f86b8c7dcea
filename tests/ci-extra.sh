#!/bin/sh
# The checks CI runs besides ./quickstart.sh test:
#   asan      both flavours built with AddressSanitizer + UBSan, full suite
#   tsan      ThreadSanitizer (greenlets annotated as TSan fibers), both
#             flavours, over the programs where threads meet the hub: the
#             thread pool, thread-safe calls, hub references, DNS in the
#             pool, signal delivery, hubs in several threads, the patch
#             library called from other threads
#   faults    --enable-fault-injection with ASan+UBSan, both flavours:
#             tests/test-faults makes each call site of a representative
#             program fail in turn (clean error, no crash, hang or leak)
#   valgrind  both flavours' suite under valgrind memcheck (leaks are errors)
#   aarch64   the context-switch test cross-built for aarch64, run under qemu
#   ucontext  the suite with the portable ucontext switch (not by default:
#             distcheck covers it)
#   distcheck make distcheck for the libev flavour (quickstart does libevent),
#             its suite built with the portable ucontext switch
#   soak      tests/soak for 60 s per flavour (both at once): checksummed
#             traffic with kills and timeouts, pipelined HTTP, then
#             slowloris and garbage against gev-httpd while an ordinary
#             client must be served within 1 s; nothing lost, no
#             descriptor or greenlet left, RSS back
#   fuzz      libFuzzer (clang, ASan+UBSan) on gev-httpd's request parser and
#             gev-download's response parser, 60 s each (both at once)
#   packaging packaging/check: Debian packages built, linted, installed and
#             autopkgtested; the RPM spec linted and built
#   compare   bench/compare --smoke: every benchmark workload once, tiny sizes
#             (the peers that are installed run too; no timing is judged)
#   untimed   faults, fuzz, packaging and compare at once (none of them
#             judges time; the suite's timing-bound stages run alone before)
# ./tests/ci-extra.sh [STAGE...]   (default: all of them)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
say() { printf '==> %s\n' "$*"; }
status=0

# slowest_tests DIR: the five test programs that took longest (their times,
# from tests/run-with-timeout.sh's last line in each .log)
slowest_tests() {
    # only the logs this check wrote (a reused build keeps older ones)
    find "$1/tests" -name '*.log' -newer "$1/.check-started" 2>/dev/null |
        xargs -r sed -n 's|^run-with-timeout: .*/\(.*\) took \([0-9]*\) ms.*|\2 \1|p' |
        sort -rn | head -5 | awk '{ printf "%s %.0f s; ", $2, $1 / 1000 }'
}

# check_in DIR: make check in a configured build; of the tests in
# $CHECK_TESTS only when it is set, building only $CHECK_PROGRAMS when that is
check_in() {
    dir=$1
    touch "$dir/.check-started"
    if make -C "$dir" -j"$jobs" check ${CHECK_TESTS:+TESTS="$CHECK_TESTS"} \
            ${CHECK_PROGRAMS:+check_PROGRAMS="$CHECK_PROGRAMS"} >"$dir/check.log" 2>&1; then
        say "$dir: $(grep -E '^# (PASS|FAIL)' "$dir/test-suite.log" | tr '\n' ' ')"
        say "$dir: slowest: $(slowest_tests "$dir")"
    else
        tail -60 "$dir/check.log"
        [ -f "$dir/test-suite.log" ] && grep -B2 -A30 -E '^(FAIL|ERROR):' "$dir/test-suite.log" | head -120
        say "$dir: FAILED"
        status=1
    fi
}

# library_tests DIR: the suite of a configured build less the scripts that
# check the build itself (configure's answers, the manual, the exported ABI,
# the README's program built by pkg-config): those run in the plain suites
# and would only repeat there under a sanitizer or valgrind, which they do
# not run the library under.  (test-fuzz-corpus.sh stays: it replays the
# corpus through the library.)
library_tests() {
    # Only the words that name tests: make may regenerate a file on the way
    # and say so ("  GEN  doc/man3.am") on the same output.
    printf 'print-tests:\n\t@echo $(TESTS)\n' |
        make -s --no-print-directory -C "$1" -f Makefile -f - print-tests | tr ' ' '\n' |
        grep -E '^tests/' | grep -v -E '/test-(configure|manual|abi|readme-build)\.sh$' | tr '\n' ' '
}

# build_and_check DIR CONFIGURE-ARGS...: a fresh out-of-tree build + check_in
build_and_check() {
    dir=$1; shift
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$dir" && "$top/configure" -q --enable-tests "$@" >/dev/null)
    CHECK_TESTS=${CHECK_TESTS:-$(library_tests "$dir")} check_in "$dir"
}

# plain_build B: a configured ordinary build (no sanitizer) of flavour B:
# the one ./quickstart.sh test left, when it made one (CI runs it first:
# valgrind and the soak then build nothing twice), else a new one.
plain_build() {
    if [ "$(cat "build/$1/.quickstart-args" 2>/dev/null)" = "--with-backend=$1 --enable-werror --enable-tests" ]; then
        echo "build/$1"
        return
    fi
    dir=build/plain-$1
    [ -f "$dir/Makefile" ] ||
        (mkdir -p "$dir" && cd "$dir" && "$top/configure" -q --with-backend="$1" --enable-tests >/dev/null)
    echo "$dir"
}

stage_asan() {
    san="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
    for b in libevent libev; do
        say "ASan+UBSan, $b"
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            build_and_check "build/asan-$b" --with-backend="$b" CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined"
    done
}

# Fork cases stay out: TSan does not support fork() in a process that has
# threads (its documentation), and its child-side reports are about that.
# The fork helpers of tests/gevtest.h skip under TSan; test-signal stays out
# whole (its waitpid and fork cases are most of it).
tsan_tests="tests/test-threadpool tests/test-threadsafe tests/test-hubref tests/test-dns \
    tests/test-loop-async tests/test-loop-signal tests/test-signal-handler tests/test-patch-libc \
    tests/test-monitor"

stage_tsan() {
    for b in libevent libev; do
        say "ThreadSanitizer, $b"
        TSAN_OPTIONS=halt_on_error=1 CHECK_TESTS=$tsan_tests CHECK_PROGRAMS=$tsan_tests build_and_check "build/tsan-$b" \
            --with-backend="$b" CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread"
    done
}

stage_faults() {
    san="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
    for b in libevent libev; do
        say "failure injection, $b"
        dir=build/faults-$b
        rm -rf "$dir"; mkdir -p "$dir"
        if (cd "$dir" && "$top/configure" -q --with-backend="$b" --enable-tests \
                --enable-fault-injection CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" \
                >/dev/null && make -j"$jobs" tests/test-faults >build.log 2>&1 &&
                ./tests/test-faults >faults.log 2>&1); then
            say "$dir: $(grep 'fault injection:' "$dir/faults.log")"
        else
            tail -60 "$dir/faults.log" "$dir/build.log" 2>/dev/null
            say "$dir: FAILED"
            status=1
        fi
    done
}

stage_valgrind() {
    command -v valgrind >/dev/null || { say "valgrind missing: apt-get install valgrind"; status=1; return; }
    for b in libevent libev; do
        say "valgrind, $b"
        dir=$(plain_build "$b")
        GEV_TEST_TIMEOUT=900 \
        GEV_TEST_WRAPPER="valgrind -q --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite,indirect" \
            CHECK_TESTS=$(library_tests "$dir") check_in "$dir"
    done
}

stage_ucontext() {
    say "ucontext switch, libevent"
    build_and_check build/ucontext --with-backend=libevent --with-context=ucontext
}

stage_aarch64() {
    say "aarch64 context switch under qemu"
    if ./tests/cross-aarch64.sh; then :; else status=1; fi
}

# The tarball's own suite runs with the ucontext switch: one suite run
# proves both that the libev flavour builds from the tarball and that the
# portable switch passes everything (stage ucontext did that separately,
# with a build and a suite run of its own).
stage_distcheck() {
    say "make distcheck, libev, ucontext switch"
    dir=build/distcheck-libev
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$dir" && "$top/configure" -q --with-backend=libev --enable-tests >/dev/null)
    if make -C "$dir" -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS=--with-context=ucontext \
            >"$dir/distcheck.log" 2>&1; then
        say "$dir: $(grep -E 'archives ready' "$dir/distcheck.log" | head -1)"
    else
        tail -40 "$dir/distcheck.log"
        say "$dir: FAILED"
        status=1
    fi
}

stage_compare() {
    say "bench/compare --smoke"
    mkdir -p build
    if BUILD_DIR=build/compare ./bench/compare --smoke --json build/compare-smoke.json \
            >build/compare-smoke.log 2>&1; then
        say "bench/compare --smoke: $(tail -1 build/compare-smoke.log)"
    else
        tail -60 build/compare-smoke.log
        say "bench/compare --smoke: FAILED"
        status=1
    fi
}

stage_soak() {
    for b in libevent libev; do
        dir=$(plain_build "$b")
        eval "soak_$b=\$dir"
        make -C "$dir" -j"$jobs" soak >"$dir/soak-build.log" 2>&1 ||
            { tail -20 "$dir/soak-build.log"; say "soak, $b: build FAILED"; status=1; return; }
    done
    say "soak: 60 s per flavour, both at once"
    (cd "$soak_libevent" && exec ./tests/soak 60 > soak.log 2>&1) & pid_libevent=$!
    (cd "$soak_libev" && exec ./tests/soak 60 > soak.log 2>&1) & pid_libev=$!
    for b in libevent libev; do
        if eval "wait \$pid_$b"; then rc=0; else rc=$?; fi
        eval "sed \"s/^/  $b: /\" \"\$soak_$b/soak.log\""
        [ "$rc" -eq 0 ] || { say "soak, $b: FAILED"; status=1; }
    done
}

stage_fuzz() {
    say "fuzz: 60 s per parser"
    ./tests/fuzz/run.sh 60 "$top/build/fuzz-lib" || status=1
}

stage_packaging() {
    say "packaging/check"
    mkdir -p build
    if ./packaging/check >build/packaging.log 2>&1; then
        say "packaging: $(grep -c '^=== ' build/packaging.log) steps passed"
    else
        tail -60 build/packaging.log
        say "packaging: FAILED"
        status=1
    fi
}

# faults, fuzz, packaging and compare judge no time, so they share the machine.
stage_untimed() {
    mkdir -p build
    for u in faults fuzz packaging compare; do
        ( status=0; "stage_$u"; exit "$status" ) > "build/untimed-$u.log" 2>&1 &
        eval "pid_$u=\$!"
    done
    for u in faults fuzz packaging compare; do
        if eval "wait \$pid_$u"; then rc=0; else rc=$?; fi
        cat "build/untimed-$u.log"
        [ "$rc" -eq 0 ] || { say "$u: FAILED"; status=1; }
    done
}

stages=${*:-asan tsan valgrind aarch64 distcheck soak untimed}
passed=0; failed=0
for s in $stages; do
    before=$status; status=0
    started=$(date +%s)
    "stage_$s"
    say "stage $s: $(( $(date +%s) - started )) s"
    if [ "$status" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    [ "$before" -ne 0 ] && status=$before
done
echo "extra stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
