#!/bin/sh
# gev quick start.
#   ./quickstart.sh [CONFIGURE-ARGS...]   install missing build dependencies,
#                                         build (build/<backend>), run the demo
#   ./quickstart.sh test [CONFIGURE-ARGS...]
#                                         also install the servers and client
#                                         libraries the patch tests use (PostgreSQL,
#                                         Redis, libcurl, OpenSSL); then
#                                         build both flavours side by side with
#                                         --enable-werror, run the whole suite
#                                         in each, then make distcheck once
# CONFIGURE-ARGS pass through to configure, e.g. --with-backend=libev.
set -eu
cd "$(dirname "$0")"
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

say() { printf '==> %s\n' "$*"; }

# --- dependencies -----------------------------------------------------------
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then say "asking sudo for: $*"; sudo "$@"
    else echo "quickstart: need root for: $*" >&2; exit 1
    fi
}

# install_deps [test]: the build's dependencies; with "test", also the real
# servers and client libraries the patch tests run against, and gdb for
# tests/test-gdb.sh (without them those tests skip themselves and say what
# is missing).
install_deps() {
    if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        want="autoconf automake libtool pkg-config make gcc libc6-dev libevent-dev libev-dev libcmocka-dev curl"
        [ "${1:-}" = test ] &&
            want="$want libcurl4-openssl-dev libpq-dev libhiredis-dev postgresql redis-server openssl gdb"
        missing=
        for p in $want; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
                missing="$missing $p"
        done
        [ -z "$missing" ] && return 0
        say "installing build dependencies:$missing"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # shellcheck disable=SC2086
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    elif command -v dnf >/dev/null 2>&1; then
        want="autoconf automake libtool pkgconf-pkg-config make gcc libevent-devel libev-devel libcmocka-devel curl"
        [ "${1:-}" = test ] &&
            want="$want libcurl-devel libpq-devel hiredis-devel postgresql-server redis openssl gdb"
        missing=
        for p in $want; do rpm -q "$p" >/dev/null 2>&1 || missing="$missing $p"; done
        [ -z "$missing" ] && return 0
        say "installing build dependencies:$missing"
        # shellcheck disable=SC2086
        as_root dnf install -y $missing
    else
        say "no apt-get or dnf here: install autotools, pkg-config, libevent, libev and cmocka yourself"
    fi
}

bootstrap() {
    [ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] && return 0
    say "./autogen.sh"
    ./autogen.sh
}

backend_of() {
    b=libevent
    for a in "$@"; do
        case $a in --with-backend=*) b=${a#--with-backend=} ;; esac
    done
    echo "$b"
}

# configure_in DIR ARGS...: configure DIR unless it is already configured the same way
configure_in() {
    dir=$1; shift
    mkdir -p "$dir"
    stamp="$dir/.quickstart-args"
    if [ ! -f "$dir/Makefile" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$*" ]; then
        say "configure $* (in $dir)"
        (cd "$dir" && "$top/configure" "$@")
        echo "$*" > "$stamp"
    fi
}

# --- commands -----------------------------------------------------------------
run_demo() {
    b=$(backend_of "$@")
    configure_in "build/$b" "$@"
    say "make (build/$b)"
    make -C "build/$b" -j"$jobs" >/dev/null
    make -C "build/$b" -j"$jobs" examples/gev-hello examples/gev-download >/dev/null
    say "a first look: build/$b/examples/gev-hello"
    "build/$b/examples/gev-hello"
    say "the demo: 200 downloads from a local server that answers each after 50 ms,"
    say "one after another, then one greenlet each (build/$b/examples/gev-download --demo 200)"
    "build/$b/examples/gev-download" --demo 200
    run_curl_demo "$b"
}

# gevent's classic with an unmodified blocking client: gev-curl-many (libcurl
# under gev_patch_all) fetching 20 pages from a local gev-httpd that answers
# each after 0.2 s.  Only where configure found libcurl.
run_curl_demo() {
    b=$1
    make -C "build/$b" -j"$jobs" examples/gev-curl-many examples/gev-httpd >/dev/null 2>&1 || {
        say "(no libcurl: skipping the gev-curl-many demo; apt-get install libcurl4-openssl-dev)"
        return 0
    }
    out=$(mktemp)
    "build/$b/examples/gev-httpd" --delay 0.2 >"$out" 2>&1 &
    httpd=$!
    for _ in 1 2 3 4 5 6 7 8 9 10; do grep -q listening "$out" && break; sleep 0.2; done
    url=$(sed -n 's/^listening on //p' "$out")
    if [ -n "$url" ]; then
        say "unmodified libcurl in 20 greenlets, each page answered after 0.2 s"
        say "(build/$b/examples/gev-curl-many URL x 20)"
        t0=$(date +%s.%N)
        # shellcheck disable=SC2046
        "build/$b/examples/gev-curl-many" $(for _ in $(seq 20); do echo "$url"; done) | tail -3
        say "20 downloads in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s (one after another: 4 s)"
    fi
    # gev-httpd ends by the SIGTERM: its status (143) is not the demo's.
    kill "$httpd" 2>/dev/null; wait "$httpd" 2>/dev/null || true; rm -f "$out"
}

run_tests() {
    passed=0; failed=0; status=0
    for b in libevent libev; do
        configure_in "build/$b" --with-backend="$b" --enable-werror --enable-tests "$@"
        say "make check (build/$b)"
        if make -C "build/$b" -j"$jobs" check; then :; else status=1; fi
        log="build/$b/test-suite.log"
        if [ -f "$log" ]; then
            p=$(sed -n 's/^# PASS: *//p' "$log" | head -1)
            f=$(sed -n 's/^# FAIL: *//p' "$log" | head -1)
            e=$(sed -n 's/^# ERROR: *//p' "$log" | head -1)
            say "$b: ${p:-0} test programs passed, $(( ${f:-0} + ${e:-0} )) failed"
            passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
        else
            failed=$((failed + 1))
        fi
    done
    say "make distcheck (build/libevent)"
    if make -C build/libevent -j"$jobs" distcheck >build/distcheck.log 2>&1; then
        say "distcheck: $(grep -E 'archives ready' build/distcheck.log | head -1)"
        passed=$((passed + 1))
    else
        tail -40 build/distcheck.log
        say "distcheck FAILED (log: build/distcheck.log)"
        failed=$((failed + 1)); status=1
    fi
    echo "tests: $passed passed, $failed failed"
    return $status
}

install_deps "${1:-}"
bootstrap
case ${1:-} in
    test) shift; run_tests "$@" ;;
    -h|--help) sed -n '2,10p' "$0" ;;
    *) run_demo "$@" ;;
esac
