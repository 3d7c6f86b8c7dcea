#!/usr/bin/env bash
# bench/echo-callgrind.sh: user-space instructions per request of an echo
# server, counted by callgrind (deterministic, unlike CPU time on a shared
# VM).  The server runs under callgrind on CPU 0; after it is listening the
# counters are zeroed, bench/loadgen drives it from CPU 1 for DURATION seconds,
# then SIGTERM makes callgrind write its counts.  Requests are counted
# exactly, as the calls from CALLER (the per-connection function) to CALLEE
# (its reply call); instructions are everything the process ran meanwhile
# (accepts, the hub, the backend, libc; not the kernel).
#
#   bench/echo-callgrind.sh LABEL CALLER CALLEE COMMAND...   (the port is appended)
#   B=build/libevent/bench
#   bench/echo-callgrind.sh gev echo_conn gev_sendall $B/gev-bench echo
#   bench/echo-callgrind.sh patched echo_plain_conn write $B/gev-bench-patch echo_patched
#
# Knobs: LOADGEN (bench/.build/loadgen, which bench/compare builds; or
# cc -O2 -o loadgen bench/loadgen.c), CONNS (100), DURATION (5),
# PORT (29500), OUT (a temp dir for callgrind's file).
# Prints: LABEL Ir_per_request=N requests=N Ir=N
set -u
[ $# -ge 4 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
label=$1 caller=$2 callee=$3
shift 3
LOADGEN=${LOADGEN:-$(dirname "$0")/.build/loadgen}
CONNS=${CONNS:-100}
DURATION=${DURATION:-5}
PORT=${PORT:-29500}
OUT=${OUT:-$(mktemp -d)}
[ -x "$LOADGEN" ] || { echo "missing $LOADGEN (see the header)" >&2; exit 1; }
cg="$OUT/callgrind.$label"

taskset -c 0 valgrind -q --tool=callgrind --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$cg" "$@" "$PORT" 2>"$OUT/stderr.$label" &
S=$!
for _ in $(seq 100); do      # listening (slow to start under callgrind)
    ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && break
    sleep 0.1
done
callgrind_control -z $S >/dev/null 2>&1
load=$(taskset -c 1 "$LOADGEN" echo -p "$PORT" -c "$CONNS" -d "$DURATION" -n "$label" 2>&1)
kill $S
wait $S 2>/dev/null
echo "$load" | grep -q 'errors=0' || { echo "$label: load failed: $load" >&2; exit 1; }

# Sum the calls CALLER -> CALLEE (recursion marks such as 'echo_conn'2 included).
awk -v caller="$caller" -v callee="$callee" -v label="$label" '
    /^fn=/     { f = $0; sub(/^fn=/, "", f); sub(/'"'"'[0-9]+$/, "", f) }
    /^cfn=/    { c = $0; sub(/^cfn=/, "", c); sub(/'"'"'[0-9]+$/, "", c) }
    /^calls=/  { if (f == caller && c == callee) { split($1, a, "="); req += a[2] } }
    /^summary:/ { ir = $2 }
    END { if (req > 0) printf "%s Ir_per_request=%.0f requests=%d Ir=%d\n", label, ir / req, req, ir
          else { print label ": no calls " caller " -> " callee " found" > "/dev/stderr"; exit 1 } }
' "$cg"
