#!/bin/sh
# tests/cross-aarch64.sh: build and run the context-switch test (and only
# it: tests/test-context.c with core/switch_*.S, core/switch_ucontext.c and
# core/stack.c) outside the autotools build.
#
#   tests/cross-aarch64.sh              aarch64 assembly switch, cross-built
#                                       with aarch64-linux-gnu-gcc, run under
#                                       qemu-aarch64 -L /usr/aarch64-linux-gnu
#   tests/cross-aarch64.sh --ucontext   the ucontext switch, built and run
#                                       natively (x86-64 or whatever this is)
#   --keep                              keep the build directory
#
# Needs (Debian/Ubuntu names): gcc-aarch64-linux-gnu libc6-dev-arm64-cross
# qemu-user, and CMocka for arm64 (libcmocka-dev:arm64, from the arm64
# foreign architecture); run as root, the script installs what is missing
# and says so.  Exits non-zero when anything fails.
set -eu

mode=aarch64
keep=no
for arg in "$@"; do
    case $arg in
    --ucontext) mode=ucontext ;;
    --keep) keep=yes ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "$0: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gev-cross.XXXXXX")
cleanup() { [ "$keep" = yes ] && echo "build directory kept: $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT

warn="-Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
-Wold-style-definition -Wvla -Wno-unused-parameter -Wno-missing-field-initializers -Werror"

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
    # apt_install WHY PACKAGE...
    why=$1; shift
    if ! is_root; then
        echo "$0: $why is missing; install (as root): apt-get install $*" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$0: $why is missing and there is no apt-get here; install $* yourself" >&2
        exit 1
    fi
    echo "== $why is missing: running apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# A minimal config.h: what configure would say for this kind of switch.
write_config() {
    {
        echo '/* config.h for tests/cross-aarch64.sh */'
        echo '#ifndef _GNU_SOURCE'
        echo '# define _GNU_SOURCE 1'
        echo '#endif'
        if [ "$1" = asm ]; then
            echo '#define GEV_CONTEXT_ASM 1'
        else
            echo '#define HAVE_UCONTEXT_H 1'
        fi
    } > "$tmp/config.h"
    # core/stack.c asks core/debug.c for GEV_DEBUG, and debug.c needs the
    # whole hub: for the switch and stacks alone, the flag is off.
    cat > "$tmp/debug-off.c" <<'EOF'
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
bool gev__debug_enabled(void);
bool gev__debug_enabled(void)
{
    const char *d = getenv("GEV_DEBUG");
    return d && *d && strcmp(d, "0") != 0;
}
EOF
}

build() {
    # build CC EXTRA_CFLAGS EXTRA_LDFLAGS
    cc=$1; cflags="-O2 -g $2"; ldflags=$3
    for src in core/switch_x86_64.S core/switch_aarch64.S core/switch_ucontext.c core/stack.c; do
        obj=$tmp/$(basename "$src").o
        # shellcheck disable=SC2086
        $cc $cflags $warn -fvisibility=hidden -I"$tmp" -I"$srcdir/core" -I"$srcdir/api" \
            -c "$srcdir/$src" -o "$obj"
    done
    # shellcheck disable=SC2086
    $cc $cflags $warn -c "$tmp/debug-off.c" -o "$tmp/debug-off.o"
    # shellcheck disable=SC2086
    $cc $cflags $warn -I"$tmp" -I"$srcdir/core" -I"$srcdir/api" -c "$srcdir/tests/test-context.c" \
        -o "$tmp/test-context.o"
    # shellcheck disable=SC2086
    $cc $cflags -o "$tmp/test-context" "$tmp"/*.o $ldflags -lcmocka -lpthread
}

if [ "$mode" = ucontext ]; then
    if [ ! -f /usr/include/cmocka.h ] && ! pkg-config --exists cmocka 2>/dev/null; then
        apt_install "CMocka" libcmocka-dev
    fi
    write_config ucontext
    echo "== building test-context with the ucontext switch ($(uname -m), native)"
    build "${CC:-cc}" "$(pkg-config --cflags cmocka 2>/dev/null || true)" \
        "$(pkg-config --libs-only-L cmocka 2>/dev/null || true)"
    echo "== running"
    "$tmp/test-context"
    echo "== ucontext switch: test-context passed"
    exit 0
fi

# --- aarch64 under qemu-user ---------------------------------------------
cross=aarch64-linux-gnu-gcc
sysroot=/usr/aarch64-linux-gnu
missing=
command -v "$cross" >/dev/null 2>&1 || missing="$missing gcc-aarch64-linux-gnu"
[ -f "$sysroot/include/stdio.h" ] || missing="$missing libc6-dev-arm64-cross"
command -v qemu-aarch64 >/dev/null 2>&1 || missing="$missing qemu-user"
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    apt_install "the aarch64 cross toolchain / qemu" $missing
fi

multiarch=/usr/lib/aarch64-linux-gnu
if [ ! -e "$multiarch/libcmocka.so" ] || [ ! -f /usr/include/cmocka.h ]; then
    if is_root && command -v dpkg >/dev/null 2>&1; then
        if ! dpkg --print-foreign-architectures | grep -qx arm64; then
            echo "== adding the arm64 foreign architecture (dpkg --add-architecture arm64)"
            dpkg --add-architecture arm64
        fi
        echo "== CMocka for arm64 is missing: apt-get update && apt-get install -y libcmocka-dev:arm64"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y libcmocka-dev:arm64
    else
        echo "$0: CMocka for arm64 is missing; as root run:" >&2
        echo "    dpkg --add-architecture arm64 && apt-get update && apt-get install -y libcmocka-dev:arm64" >&2
        exit 1
    fi
fi

# cmocka.h alone, not all of the host's /usr/include, for the cross compiler
mkdir -p "$tmp/inc"
cp /usr/include/cmocka.h "$tmp/inc/"
write_config asm
echo "== cross-building test-context for aarch64 (assembly switch)"
build "$cross" "-I$tmp/inc" "-L$multiarch -Wl,-rpath-link,$multiarch"
if command -v file >/dev/null 2>&1; then
    file "$tmp/test-context" | grep -q 'ARM aarch64' || {
        echo "$0: the test program is not an aarch64 executable" >&2; exit 1; }
fi
echo "== running under qemu-aarch64 -L $sysroot"
# libc from the cross sysroot first: the multiarch libc6:arm64 that
# libcmocka0:arm64 pulls in is listed in the host's /etc/ld.so.cache, and
# mixing it with the sysroot's ld.so (another build) breaks, e.g. fork().
qemu-aarch64 -L "$sysroot" -E LD_LIBRARY_PATH="$sysroot/lib:$multiarch" \
    -E GEV_STACK_GUARD_MARKERS=0 "$tmp/test-context"
echo "== aarch64 assembly switch: test-context passed under qemu"
