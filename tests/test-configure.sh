#!/bin/sh
# configure refuses what it cannot build, with a message that says what to do:
# a bad --with-backend value, and a chosen event library that is missing
# (simulated with autoconf cache variables and an empty pkg-config path).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gev-configure.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
failed=0; passed=0

# expect_failure MESSAGE-PATTERN CONFIGURE-ARGS...
expect_failure() {
    pattern=$1; shift
    if "$top/configure" "$@" >out.log 2>&1; then
        echo "FAIL: configure $* succeeded"; failed=$((failed + 1)); return
    fi
    if grep -q "$pattern" out.log; then
        echo "ok: $*"; passed=$((passed + 1))
    else
        echo "FAIL: configure $*: no '$pattern' in:"; tail -3 out.log; failed=$((failed + 1))
    fi
}

expect_failure "use --with-backend=libevent or --with-backend=libev" --with-backend=bogus
expect_failure "use --with-backend=libevent or --with-backend=libev" --with-backend=yes
expect_failure "use --with-backend=libevent or --with-backend=libev" --without-backend
expect_failure "Install libev-dev (Debian/Ubuntu) or libev-devel (Fedora), or set LIBEV_CFLAGS and LIBEV_LIBS" \
    PKG_CONFIG_LIBDIR=/nonexistent --with-backend=libev ac_cv_header_ev_h=no ac_cv_header_libev_ev_h=no
expect_failure "Install libevent-dev (Debian/Ubuntu) or libevent-devel (Fedora), or set LIBEVENT_CFLAGS and LIBEVENT_LIBS" \
    PKG_CONFIG_LIBDIR=/nonexistent --with-backend=libevent ac_cv_header_event2_event_h=no
expect_failure "use asm or ucontext" --with-context=bogus

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
