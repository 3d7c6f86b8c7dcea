#!/bin/sh
# The manual pages in doc/man3 are what doc/mkman.sh makes from doc/gev.man
# now (so the shipped pages are never stale); every public function (a
# GEV_API declaration in the installed headers) has a page of its name, the
# family page or an alias to it, so `man NAME` works; and groff renders every
# page without a warning.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gev-manual.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# 1. Made again from the source, in a copy: the same files, byte for byte.
mkdir -p "$tmp/src/doc" "$tmp/src/api"
cp "$top/doc/gev.man" "$top/doc/mkman.sh" "$tmp/src/doc/"
cp "$top/api/gev.h" "$top/api/gev-patch.h" "$tmp/src/api/"
if sh "$tmp/src/doc/mkman.sh" "$tmp/src" 2> "$tmp/mkman.err" && [ ! -s "$tmp/mkman.err" ]; then
    if diff -r "$tmp/src/doc/man3" "$top/doc/man3" > "$tmp/diff" &&
       cmp -s "$tmp/src/doc/man3.am" "$top/doc/man3.am"; then
        passed=$((passed + 1))
    else
        head -20 "$tmp/diff"
        fail "doc/man3 is stale: run doc/mkman.sh (or make) and commit the pages"
    fi
else
    cat "$tmp/mkman.err"
    fail "doc/mkman.sh failed or warned"
fi

# 2. Every public function reaches a page.
for h in "$top"/api/gev.h "$top"/api/gev-patch.h; do
    names=$(tr '\n' ' ' < "$h" | grep -o 'GEV_API[^;{]*' |
            grep -o 'gev_[a-z_0-9]* *(' | tr -d ' (' | sort -u)
    for n in $names; do
        page=$top/doc/man3/$n.3
        if [ ! -f "$page" ]; then
            fail "$n (declared in ${h#"$top"/}) has no page doc/man3/$n.3"
        elif target=$(sed -n 's/^\.so //p' "$page") && [ -n "$target" ] &&
             [ ! -f "$top/doc/$target" ]; then
            fail "doc/man3/$n.3 points at $target, which does not exist"
        else
            passed=$((passed + 1))
        fi
    done
done

# 3. groff renders every page (an alias through its target) with no warning.
if command -v groff >/dev/null; then
    for page in "$top"/doc/man3/*.3; do
        out=$(cd "$top/doc" && groff -man -ww -z "man3/${page##*/}" 2>&1)
        if [ -z "$out" ]; then passed=$((passed + 1)); else fail "groff on ${page##*/}: $out"; fi
    done
else
    echo "groff not found: pages not rendered (apt-get install groff-base)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
