#!/bin/sh
# The README's first program, built the way the README says a newcomer can
# without `make install`: pkg-config pointed at this build tree picks up
# gev-uninstalled.pc by itself.  The binary must run (rpath) and, with no
# URLs, join nothing and exit 0.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gev-readme.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

command -v pkg-config >/dev/null || { echo "SKIP: no pkg-config"; exit 77; }
[ -f "$build/gev-uninstalled.pc" ] || { echo "FAIL: no gev-uninstalled.pc in $build"; exit 1; }
# The first ```c block of the README.
sed -n '/^```c$/,/^```$/p' "$top/README.md" | sed '1d;/^```$/,$d' > "$tmp/demo.c"
grep -q gev_joinall "$tmp/demo.c" || { echo "FAIL: README has no demo block"; exit 1; }
flags=$(PKG_CONFIG_PATH="$build" pkg-config --cflags --libs gev) || {
    echo "FAIL: pkg-config --cflags --libs gev with PKG_CONFIG_PATH=$build"; exit 1; }
echo "cc demo.c $flags"
# shellcheck disable=SC2086
${CC:-cc} -o "$tmp/demo" "$tmp/demo.c" $flags || { echo "FAIL: the README demo does not build"; exit 1; }
# A build with AddressSanitizer (CI's asan stage) has the runtime in the
# library only: let it come second in the demo, which was built plainly.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    env -u LD_LIBRARY_PATH "$tmp/demo" || { echo "FAIL: the README demo exited $?"; exit 1; }
lib=$(ldd "$tmp/demo" | sed -n 's/.*libgev-[a-z]*\.so\.0 => \([^ ]*\).*/\1/p')
case $lib in
    "$build"/.libs/*) echo "ok: runs against $lib" ;;
    *) echo "FAIL: linked against '$lib', not this build's"; exit 1 ;;
esac
echo "1 passed, 0 failed"
