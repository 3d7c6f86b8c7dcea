#!/bin/sh
# Every public function has an entry of its own in the manual: a .B/.BI/.BR
# line of doc/gev.3 that names it (the synopsis lines a reader scans).  The
# names come from the GEV_API declarations of the installed headers, so a new
# call without a manual entry fails `make check`.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
man=$top/doc/gev.3
passed=0; failed=0
for h in "$top"/api/gev.h "$top"/api/gev-patch.h; do
    [ -f "$h" ] || continue
    names=$(tr '\n' ' ' < "$h" | grep -o 'GEV_API[^;{]*' |
            grep -o 'gev_[a-z_0-9]* *(' | tr -d ' (' | sort -u)
    for n in $names; do
        if grep -qE "^\.(B|BI|BR|IR) .*\b$n\b" "$man"; then
            passed=$((passed + 1))
        else
            echo "FAIL: $n (declared in ${h#"$top"/}) has no entry in doc/gev.3"
            failed=$((failed + 1))
        fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
