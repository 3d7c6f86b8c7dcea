#!/usr/bin/env bash
# bench/echo-pairs.sh: W5 (echo) and W6 (HTTP) server CPU per request, as
# gev ÷ the raw callback server of the same library, measured in pairs.
#
# On a VM whose speed drifts by 10-30 % within minutes, medians of separate
# runs (run-compare.sh) cannot tell 1.03x from 1.08x.  Here every round runs
# each gev server right next to its raw twin (in alternating order), and the
# ratio is taken within the round; the median of the per-round ratios is what
# drift affects least.  Needs the builds of one run-compare.sh run.
#
#   BENCH_BUILD=/tmp/gev-bench ROUNDS=10 DURATION=3 bench/echo-pairs.sh
#   LOADS="echo100 echo1000 http httpd" (default: all four)
#   BACKENDS="libevent libev" (default: both)
#
# LOADS=ab pairs any two HTTP servers the same way: AB_NUM and AB_DEN are
# their commands (the port is appended), the ratio is NUM ÷ DEN, e.g.
#   LOADS=ab BACKENDS=libevent AB_NUM="$B/gev-httpd-libevent --port" \
#     AB_DEN="$B/gev-httpd-libevent --header-timeout -1 --port" bench/echo-pairs.sh
# AB_LOAD=echo100 (or echoN) drives the pair with echoload instead of wrk;
# LOADS=ab needs only $PEERS/echoload (or wrk), not the builds of
# run-compare.sh, e.g. the patched echo server against gev's own:
#   LOADS=ab AB_LOAD=echo100 BACKENDS=libevent AB_NUM="$G/gev-bench-patch echo_patched" \
#     AB_DEN="$G/gev-bench echo" bench/echo-pairs.sh
set -u
BUILD=${BENCH_BUILD:-/tmp/gev-bench}
PEERS=$BUILD/peers
ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-3}
LOADS=${LOADS:-"echo100 echo1000 http httpd"}
BACKENDS=${BACKENDS:-"libevent libev"}
PORT=${PORT_BASE:-29300}
AB_LOAD=${AB_LOAD:-http}
need="$PEERS/echoload"
[ "$LOADS" = ab ] || need="$need $BUILD/gev-bench-libevent $PEERS/bench-libevent"
for f in $need; do
    [ -x "$f" ] || { echo "missing $f: run bench/run-compare.sh with BENCH_BUILD=$BUILD first" >&2; exit 1; }
done

ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# Thousands of loopback connections in TIME_WAIT (echo at 1,000 conns, run
# after run) use up the ephemeral ports, and later loads then fail to
# connect: wait for them to go (60 s at most).
wait_time_wait() {
    local i
    for i in $(seq 60); do
        [ "$(ss -Htan state time-wait 2>/dev/null | wc -l)" -lt 2000 ] && return
        sleep 1
    done
}

# cpu_per_req LOAD COMMAND...: starts the server on CPU 0, loads it from
# CPU 1, prints server CPU per request in us
cpu_per_req() {
    local load=$1 rps t0 t1 out S
    shift
    PORT=$((PORT + 1))
    wait_time_wait
    taskset -c 0 "$@" "$PORT" >/dev/null 2>&1 &
    S=$!
    sleep 0.4
    t0=$(ticks $S)
    case $load in
        echo*) out=$(taskset -c 1 "$PEERS/echoload" -p "$PORT" -c "${load#echo}" -d "$DURATION" -n x 2>&1)
               rps=$(echo "$out" | grep -o 'value=[0-9.]*' | head -1 | cut -d= -f2)
               echo "$out" | grep -q 'errors=0' || rps=0 ;;
        *)     out=$(taskset -c 1 wrk -t1 -c100 -d"${DURATION}s" "http://127.0.0.1:$PORT/" 2>&1)
               rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
               echo "$out" | grep -q -e 'Socket errors' -e 'Non-2xx' && rps=0 ;;
    esac
    t1=$(ticks $S)
    kill $S 2>/dev/null
    wait $S 2>/dev/null
    awk -v t=$((t1 - t0)) -v r="${rps:-0}" -v d="$DURATION" \
        'BEGIN { if (r > 0) printf "%.3f", t / 100 * 1e6 / (r * d); else print "nan" }'
}

gev_cmd() {   # LOAD BACKEND
    case $1 in
        echo*) echo "$BUILD/gev-bench-$2 echo" ;;
        http)  echo "$BUILD/gev-bench-$2 http" ;;
        httpd) echo "$BUILD/gev-httpd-$2 --port" ;;
        ab)    echo "${AB_NUM:?LOADS=ab needs AB_NUM}" ;;
    esac
}
raw_cmd() {   # LOAD BACKEND
    case $1 in
        echo*) echo "$PEERS/bench-$2 echo" ;;
        ab)    echo "${AB_DEN:?LOADS=ab needs AB_DEN}" ;;
        *)     echo "$PEERS/bench-$2 http" ;;
    esac
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# $ROUNDS rounds of ${DURATION}s per server; ratio = gev / raw of the same round (LOADS=ab: NUM / DEN)"
for load in $LOADS; do
    for b in $BACKENDS; do
        ratios=""
        kind=$load                      # what drives it: echoN or HTTP
        [ "$load" = ab ] && kind=$AB_LOAD
        for r in $(seq "$ROUNDS"); do
            if [ $((r % 2)) -eq 1 ]; then
                g=$(cpu_per_req "$kind" $(gev_cmd "$load" $b)); w=$(cpu_per_req "$kind" $(raw_cmd "$load" $b))
            else
                w=$(cpu_per_req "$kind" $(raw_cmd "$load" $b)); g=$(cpu_per_req "$kind" $(gev_cmd "$load" $b))
            fi
            # a round with a failed load (errors, no requests) does not count
            [ "$g" = nan ] || [ "$w" = nan ] ||
                ratios="$ratios $(awk -v g="$g" -v w="$w" 'BEGIN { printf "%.3f", g / w }')"
            echo "#   $load $b round $r: gev $g us, raw $w us" >&2
        done
        med=$(echo "$ratios" | tr ' ' '\n' | grep . | median)
        lo=$(echo "$ratios" | tr ' ' '\n' | grep . | sort -g | head -1)
        hi=$(echo "$ratios" | tr ' ' '\n' | grep . | sort -g | tail -1)
        n=$(echo "$ratios" | wc -w)
        echo "peer=gev-$b workload=${load}_cpureq_ratio value=$med unit=x min=$lo max=$hi rounds=$n"
    done
done
