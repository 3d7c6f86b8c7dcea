#!/bin/sh
# doc/mkman.sh SRCDIR: make the manual pages doc/man3/*.3 and the list
# doc/man3.am from the one source, doc/gev.man.
#
# doc/gev.man is roff with three directives (roff comments, so groff reads
# the source as one long page too):
#   .\" @date DATE VERSION            the .TH date and source of every page
#   .\" @page NAME HEADER TITLE...    declares page NAME(3): its #include
#                                     HEADER and the title after its names
#   .\" @to NAME...                   the lines that follow, up to the next
#                                     @to, belong to these pages, in order
# A page's NAME line lists every public function (GEV_API in api/gev.h and
# api/gev-patch.h) that one of its .B/.BI/.BR lines writes as "name(" first
# in the source; each such name that is not the page gets an alias page
# ".so man3/PAGE.3", so `man gev_join` finds gev_spawn(3).  The output
# depends on the source alone (no clock), so making it twice changes
# nothing; files are rewritten only when their text changes.
set -eu
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
src=$top/doc/gev.man
out=$top/doc/man3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gev-mkman.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The public functions, one per line.
cat "$top/api/gev.h" "$top/api/gev-patch.h" | tr '\n' ' ' | grep -o 'GEV_API[^;{]*' |
    grep -o 'gev_[a-z_0-9]* *(' | tr -d ' (' | sort -u > "$tmp/api"

awk -v tmp="$tmp" -v apifile="$tmp/api" '
BEGIN {
    while ((getline n < apifile) > 0) api[n] = 1
}
/^\.\\" @date / { date = $3; $1 = $2 = $3 = ""; source = substr($0, 4); next }
/^\.\\" @page / {
    name = $3; header[name] = $4; $1 = $2 = $3 = $4 = ""
    title[name] = substr($0, 5); order[++npages] = name; next
}
/^\.\\" @to / { ntargets = split(substr($0, 8), targets, " "); next }
{
    for (i = 1; i <= ntargets; i++) body[targets[i]] = body[targets[i]] $0 "\n"
    # The first page that writes a public function as "name(" owns it.
    if (ntargets == 1 && $0 ~ /^\.B[IR]? /) {
        line = $0
        while (match(line, /gev_[a-z_0-9]+\(/)) {
            fn = substr(line, RSTART, RLENGTH - 1); line = substr(line, RSTART + RLENGTH)
            if ((fn in api) && !(fn in owner)) { owner[fn] = targets[1]; names[targets[1]] = names[targets[1]] ", " fn }
        }
    }
}
END {
    for (i = 1; i <= npages; i++) {
        p = order[i]; f = tmp "/" p ".3"
        list = names[p]
        # The page name first, then the others in source order.
        gsub(", " p ",", ",", list); sub(", " p "$", "", list)
        printf ".\\\" Made from doc/gev.man by doc/mkman.sh: edit that, not this.\n" > f
        printf ".TH %s 3 %s %s \"gev manual\"\n", toupper(p), date, source > f
        printf ".SH NAME\n%s%s \\- %s\n", p, list, title[p] > f
        printf ".SH SYNOPSIS\n.nf\n.B #include <%s>\n.PP\n", header[p] > f
        pc = header[p] == "gev-patch.h" ? "gev-patch" : "gev"
        printf ".BI \"cc ... $(pkg-config \\-\\-cflags \\-\\-libs %s)\"\n.fi\n", pc > f
        if (body[p] !~ /^\.SH /) printf ".SH DESCRIPTION\n" > f
        printf "%s", body[p] > f
        printf ".SH SEE ALSO\n" > f
        sep = ""
        for (j = 1; j <= npages; j++) {
            q = order[j]
            if (q == p || (p != "gev" && q != "gev")) continue
            printf "%s.BR %s (3)", sep, q > f; sep = ",\n"
        }
        if (p == "gev") printf "%s%s", sep, body["gev:see-also"] > f
        else printf "\n" > f
        close(f)
    }
    for (fn in owner) if (fn != owner[fn]) {
        f = tmp "/" fn ".3"; printf ".so man3/%s.3\n", owner[fn] > f; close(f)
    }
    for (fn in api) if (!(fn in owner)) print "mkman: " fn " has no entry (a .B/.BI line writing " fn "()" > "/dev/stderr"
}' "$src"
[ -n "$(ls "$tmp"/*.3 2>/dev/null)" ] || { echo "mkman: no pages made" >&2; exit 1; }

# The list automake installs and ships.
{
    echo "# Made by doc/mkman.sh from doc/gev.man: edit that, not this."
    printf 'dist_man3_MANS ='
    for f in $(cd "$tmp" && ls *.3 | LC_ALL=C sort); do printf ' \\\n\tdoc/man3/%s' "$f"; done
    echo
} > "$tmp/man3.am"

mkdir -p "$out"
for f in "$tmp"/*.3; do
    cmp -s "$f" "$out/${f##*/}" || cp "$f" "$out/${f##*/}"
done
for f in "$out"/*.3; do
    [ -f "$tmp/${f##*/}" ] || rm -f "$f"          # a page or alias that went away
done
cmp -s "$tmp/man3.am" "$top/doc/man3.am" || cp "$tmp/man3.am" "$top/doc/man3.am"
