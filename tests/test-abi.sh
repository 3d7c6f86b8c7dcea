#!/bin/sh
# The exported symbols of this build's libraries are exactly the ones listed
# in packaging/abi/*.symbols, and the newest section there is the
# -version-info configure uses: a public symbol added without a note (and,
# after a release, without a version bump) fails `make check`.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(pwd)
backend=$(sed -n 's/^GEV_BACKEND = //p' "$build/Makefile")
ltver=$(sed -n 's/^GEV_LT_VERSION = //p' "$build/Makefile")
command -v nm >/dev/null || { echo "SKIP: no nm"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gev-abi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=0

# section_sha LIST SECTION: a short hash of the names SECTION lists.
section_sha() {
    awk -v s="$2" '/^@ /{on = ($2 == s); next} on && /^[^#]/ && NF {print $1}' "$1" |
        sha256sum | cut -c1-16
}

# check LIST SOFILE FILTER: the names SOFILE exports (FILTER: an awk test on
# the name) against LIST; then LIST's sections against their headings.
check() {
    list=$1 so=$2 filter=$3
    [ -f "$so" ] || { echo "FAIL: $so not built"; failed=1; return; }
    nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' |
        awk "$filter" | sort -u > "$tmp/exported"
    # A name followed by [FLAVOUR] is exported by that flavour only.
    awk -v b="[$backend]" '/^[^#@]/ && NF && (NF == 1 || $2 == b) {print $1}' "$list" |
        sort -u > "$tmp/listed"
    comm -23 "$tmp/exported" "$tmp/listed" | sed "s|^|FAIL: exported but not in ${list#"$top"/}: |"
    comm -13 "$tmp/exported" "$tmp/listed" | sed "s|^|FAIL: listed in ${list#"$top"/} but not exported (an ABI break): |"
    if ! cmp -s "$tmp/exported" "$tmp/listed"; then
        echo "  (a new symbol goes under the heading of the next -version-info; see the top of ${list#"$top"/})"
        failed=1
    fi
    newest=$(sed -n 's/^@ \([0-9:]*\).*/\1/p' "$list" | tail -1)
    if [ "$newest" != "$ltver" ]; then
        echo "FAIL: newest section of ${list#"$top"/} is $newest, configure.ac's GEV_LT_VERSION is $ltver"
        failed=1
    fi
    # A frozen (released) section must still list what it listed.
    sed -n 's/^@ \([0-9:]*\) frozen \([0-9a-f]*\)$/\1 \2/p' "$list" |
    while read -r sec sha; do
        got=$(section_sha "$list" "$sec")
        [ "$got" = "$sha" ] || {
            echo "FAIL: released section $sec of ${list#"$top"/} changed ($got, was $sha)"; exit 1; }
    done || failed=1
    echo "checked $(wc -l < "$tmp/exported") symbols of ${so##*/} against ${list#"$top"/}"
}

check "$top/packaging/abi/libgev.symbols" "$build/.libs/libgev-$backend.so" '/^gev_[^_]/'
check "$top/packaging/abi/libgev-patch.symbols" "$build/.libs/libgev-patch-$backend.so" '1'
for list in "$top"/packaging/abi/*.symbols; do
    for sec in $(sed -n 's/^@ \([0-9:]*\)$/\1/p' "$list"); do
        echo "${list##*/} section $sec is not frozen; at its release append: frozen $(section_sha "$list" "$sec")"
    done
done
[ "$failed" -eq 0 ]
