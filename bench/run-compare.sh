#!/usr/bin/env bash
# gev beside its peers, in one invocation: builds gev-bench for both backends
# (libevent, libev) and the peer programs of ../shared/peers/ (gevent, Go,
# State Threads, raw libev, raw libevent; nginx for W6), runs W1-W6 plus the
# gev-only workloads REPS times, and prints Markdown tables: medians, gev's
# ratio to each peer, and the targets of the issues.  W6 also runs
# examples/gev-httpd (built per backend) under the same wrk load: the
# "gev-httpd" rows of the gev columns, compared with nginx and the raw servers.
#
#     bench/run-compare.sh                     # from the project root; ~8 min
#     REPS=1 ONLY="W1 W2" bench/run-compare.sh # quick look
#
# Knobs (environment):
#   REPS (3)            runs per workload; the table shows medians
#   ONLY ("W1 W2 W3 W4 W5 W6 GEV")   GEV = the gev-only rows (spawn_seq is
#                       part of W2): queue, channel, semaphore, pingpong
#   SYSTEMS ("gev-libevent gev-libev gevent go st libev libevent")
#   DURATION (5)        seconds per W5 / W6 load run
#   N_SWITCH (1000000)  W1 operations;  N_TASKS (100000) W2-W4 tasks
#   MEM_SECS (2)        W3 sleep;  N_SYNC (1000000) queue/channel/semaphore
#   N_PINGPONG (200000) pingpong round trips
#   PORT_BASE (29100)   first TCP port tried (ports in use are skipped)
#   BENCH_BUILD (/tmp/gev-bench)   builds, raw results and tables go here
#   PEERS_DIR (<project>/../shared/peers)
#
# Pinning as in the peers' run: every CPU-bound program and every server on
# CPU 0, Go with GOMAXPROCS=1, load generators (echoload, wrk) on CPU 1.
# Servers listen on 127.0.0.1 only, each load is bounded in time (and killed
# by timeout(1) if it overruns), every server started here is stopped by its
# PID.  Needs (Debian 12): build-essential autoconf automake libtool
# pkg-config libev-dev libevent-dev python3-gevent python3-greenlet
# golang-go libst-dev wrk nginx-light.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
PEERS_DIR=${PEERS_DIR:-$(cd "$TOP/../shared/peers" 2>/dev/null && pwd || echo "$TOP/../shared/peers")}
BUILD=${BENCH_BUILD:-/tmp/gev-bench}
REPS=${REPS:-3}
ONLY=${ONLY:-"W1 W2 W3 W4 W5 W6 GEV"}
SYSTEMS=${SYSTEMS:-"gev-libevent gev-libev gevent go st libev libevent"}
DURATION=${DURATION:-5}
N_SWITCH=${N_SWITCH:-1000000}
N_TASKS=${N_TASKS:-100000}
MEM_SECS=${MEM_SECS:-2}
N_SYNC=${N_SYNC:-1000000}
N_PINGPONG=${N_PINGPONG:-200000}
PORT=${PORT_BASE:-29100}
PY=/usr/bin/python3                 # Debian's, which has python3-gevent
SERVER_CPU=0
CLIENT_CPU=1
OUT=$BUILD/results
RAW=$OUT/raw.txt
PEERS_BUILD=$BUILD/peers

say() { printf '%s\n' "$*" >&2; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
have_system() { case " $SYSTEMS " in *" $1 "*) return 0 ;; esac; return 1; }

mkdir -p "$BUILD" "$OUT" "$PEERS_BUILD"
RUN=$(mktemp -d "${TMPDIR:-/tmp}/gev-compare.XXXXXX")
: >"$RAW"
SERVER_PID=""

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
finish() {
    stop_server
    rm -rf "$RUN"
}
trap finish EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ checks
missing=()
for tool in gcc make taskset timeout wrk; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
for h in ev.h event2/event.h; do
    [ -e "/usr/include/$h" ] || missing+=("$h")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "missing: ${missing[*]} (see the header of $0 for the Debian packages)"
    exit 1
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if want W5 && [ "$(ulimit -n)" -lt 2100 ]; then
    say "open-file limit $(ulimit -n) is too low for 1000 connections"
    exit 1
fi

# ------------------------------------------------------------------ build gev
# A configure + make per backend in a scratch dir, -O2 and nothing else (no
# sanitizers, no -g).  While Makefile.am has no rule for gev-bench, it is
# linked here by hand against the convenience library.
build_gev() { # BACKEND
    local b=$1 dir libs
    dir=$BUILD/gev-$b
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        [ -x "$TOP/configure" ] || (cd "$TOP" && autoreconf -fi >/dev/null)
        (cd "$dir" && "$TOP/configure" -q --with-backend="$b" CFLAGS=-O2) >&2
    fi
    make -C "$dir" -j2 -s libgev-internal.la >&2
    if grep -q '^bench/gev-bench' "$dir/Makefile" 2>/dev/null || grep -q 'bench_gev_bench' "$dir/Makefile"; then
        make -C "$dir" -s bench/gev-bench >&2
        cp "$dir/bench/gev-bench" "$BUILD/gev-bench-$b"
    else
        libs=$(sed -n 's/^BACKEND_LIBS = //p' "$dir/Makefile")
        gcc -O2 -Wall -Wextra -I"$TOP/api" -o "$BUILD/gev-bench-$b" "$HERE"/*.c \
            "$dir/.libs/libgev-internal.a" $libs -lpthread
    fi
    # the example HTTP server, for the W6 "gev-httpd" rows (issue 6)
    if want W6; then
        rm -f "$BUILD/gev-httpd-$b"
        if make -C "$dir" -s examples/gev-httpd >&2; then
            cp "$dir/examples/gev-httpd" "$BUILD/gev-httpd-$b"
        else
            say "gev-httpd ($b) did not build: no gev-httpd rows for gev-$b"
        fi
    fi
}
say "== build gev-bench"
for s in $SYSTEMS; do
    case $s in gev-*) build_gev "${s#gev-}" ;; esac
done

# ------------------------------------------------------------------ build peers
# run-all.sh builds every peer into PEERS_BUILD; with ONLY=none it runs nothing.
need_peers=no
for s in $SYSTEMS; do case $s in gev-*) ;; *) need_peers=yes ;; esac; done
if [ $need_peers = yes ] || want W5; then
    say "== build peers ($PEERS_DIR/run-all.sh, ONLY=none)"
    PEERS_BUILD=$PEERS_BUILD OUTDIR=$PEERS_BUILD/results REPS=1 ONLY=none \
        "$PEERS_DIR/run-all.sh" >/dev/null 2>"$RUN/peers-build.log" || {
        cat "$RUN/peers-build.log" >&2
        exit 1
    }
    grep '^#' "$RUN/peers-build.log" >&2 || true
fi

{
    echo "date $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r); $(nproc) CPUs: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p')"
    echo "gev $(git -C "$TOP" describe --always --dirty 2>/dev/null || echo '?'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for s in $SYSTEMS; do case $s in gev-*)
        echo "$s: libgev-internal built with CFLAGS=-O2; $(dpkg-query -W -f='${Package} ${Version}' "${s#gev-}-dev" 2>/dev/null)" ;;
    esac; done
    cat "$PEERS_BUILD/results/versions.txt" 2>/dev/null || true
} >"$OUT/versions.txt"

# system name -> command prefix (mode and arguments are appended)
cmd_of() {
    case $1 in
        gev-*) echo "$BUILD/gev-bench-${1#gev-}" ;;
        gevent) echo "$PY $PEERS_DIR/gevent/bench.py" ;;
        go) echo "env GOMAXPROCS=1 $PEERS_BUILD/bench-go" ;;
        *) echo "$PEERS_BUILD/bench-$1" ;;
    esac
}

# one CPU-bound run on the server CPU; result lines go to RAW
bench() {
    local out
    if ! out=$(timeout 600 taskset -c $SERVER_CPU "$@" 2>"$RUN/err"); then
        say "FAILED: $*"
        sed 's/^/    /' "$RUN/err" >&2
        return 0
    fi
    printf '%s\n' "$out" | grep '^peer=' | tee -a "$RAW" >&2 || true
}

each_rep_each_system() { # MODE ARGS...: every system, REPS rounds, interleaved
    local r s
    for r in $(seq "$REPS"); do
        for s in $SYSTEMS; do bench $(cmd_of "$s") "$@"; done
    done
}

# ------------------------------------------------------------------ W1-W4
if want W1; then
    say "== W1 switch ($N_SWITCH operations)"
    each_rep_each_system switch_yield "$N_SWITCH"
    each_rep_each_system switch_direct "$N_SWITCH"
fi
if want W2; then
    say "== W2 spawn + join ($N_TASKS)"
    each_rep_each_system spawn "$N_TASKS"
fi
if want W3; then
    say "== W3 $N_TASKS tasks asleep for ${MEM_SECS}s"
    each_rep_each_system mem "$N_TASKS" "$MEM_SECS"
fi
if want W4; then
    say "== W4 $N_TASKS sleeps of 0-500 ms"
    for r in $(seq "$REPS"); do
        for s in $SYSTEMS; do bench $(cmd_of "$s") timers "$N_TASKS"; done
        if have_system libevent; then
            bench env EVENT_PRECISE_TIMER=1 "$PEERS_BUILD/bench-libevent" timers "$N_TASKS"
        fi
    done
fi
if want GEV; then
    say "== gev only: queue, channel, semaphore ($N_SYNC), pingpong ($N_PINGPONG)"
    for r in $(seq "$REPS"); do
        for s in $SYSTEMS; do
            case $s in gev-*) ;; *) continue ;; esac
            bench $(cmd_of "$s") queue "$N_SYNC"
            bench $(cmd_of "$s") channel "$N_SYNC"
            bench $(cmd_of "$s") semaphore "$N_SYNC"
            bench $(cmd_of "$s") pingpong "$N_PINGPONG"
        done
    done
fi

# ------------------------------------------------------------------ servers
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_free_port() {
    PORT=$((PORT + 1))
    while port_busy "$PORT"; do PORT=$((PORT + 1)); done
}

start_server() { # LOGNAME PORT CMD...: pinned, in the background; waits for PORT
    local name=$1 port=$2 i
    shift 2
    taskset -c $SERVER_CPU "$@" >"$RUN/$name.log" 2>&1 &
    SERVER_PID=$!
    for i in $(seq 1 200); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            say "server $name died:"
            sed 's/^/    /' "$RUN/$name.log" >&2
            SERVER_PID=""
            return 1
        fi
        port_busy "$port" && return 0
        sleep 0.05
    done
    say "server $name never listened on $port"
    stop_server
    return 1
}

# CPU time (clock ticks, user + system) of the server and its children
server_ticks() {
    local sum=0 p
    for p in $SERVER_PID $(ps -o pid= --ppid "$SERVER_PID" 2>/dev/null); do
        [ -r "/proc/$p/stat" ] || continue
        sum=$((sum + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$sum"
}
HZ=$(getconf CLK_TCK)

# emit the CPU lines for one load run: SYSTEM WORKLOAD TICKS0 TICKS1 REQ_PER_S
cpu_lines() {
    awk -v s="$1" -v w="$2" -v a="$3" -v b="$4" -v r="$5" -v hz="$HZ" -v d="$DURATION" 'BEGIN {
        secs = (b - a) / hz
        printf "peer=%s workload=%s_cpu value=%.0f unit=%%\n", s, w, secs / d * 100
        printf "peer=%s workload=%s_cpureq value=%.2f unit=us/req\n", s, w, (r > 0 ? secs * 1e6 / (r * d) : 0)
    }'
}

field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p"; }

if want W5; then
    say "== W5 TCP echo, 64 B, ${DURATION}s per run, 100 and 1000 connections"
    # Repetitions outermost: a drift of the machine's speed during the run
    # (this VM's varies by several % over minutes) then hits every system
    # alike instead of whichever ran last.
    for r in $(seq "$REPS"); do
    for s in $SYSTEMS; do
        next_free_port
        start_server "$s-echo" "$PORT" $(cmd_of "$s") echo "$PORT" || continue
        for c in 100 1000; do
                t0=$(server_ticks)
                if ! line=$(timeout $((DURATION + 60)) taskset -c $CLIENT_CPU \
                    "$PEERS_BUILD/echoload" -p "$PORT" -c "$c" -d "$DURATION" -n "$s" 2>"$RUN/err"); then
                    say "echoload failed against $s: $(cat "$RUN/err")"
                    continue
                fi
                t1=$(server_ticks)
                rps=$(printf '%s\n' "$line" | field value)
                {
                    printf '%s\n' "$line"
                    printf 'peer=%s workload=echo_c%s_p99 value=%s unit=us errors=%s\n' "$s" "$c" \
                        "$(printf '%s\n' "$line" | field p99_us)" "$(printf '%s\n' "$line" | field errors)"
                    cpu_lines "$s" "echo_c$c" "$t0" "$t1" "$rps"
                } | tee -a "$RAW" >&2
        done
        stop_server
    done
    done
fi

wrk_once() { # SYSTEM PORT [WORKLOAD (http)]
    local s=$1 port=$2 w=${3:-http} out t0 t1 rps p99 errs
    t0=$(server_ticks)
    out=$(timeout $((DURATION + 60)) taskset -c $CLIENT_CPU \
        wrk -t1 -c100 -d"${DURATION}s" --latency "http://127.0.0.1:$port/") || {
        say "wrk failed against $s"
        return 0
    }
    t1=$(server_ticks)
    rps=$(printf '%s\n' "$out" | awk '$1 == "Requests/sec:" {print $2}')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { v = $2; m = 1
        if (v ~ /us$/) m = 0.001; else if (v ~ /ms$/) m = 1; else if (v ~ /s$/) m = 1000
        sub(/[mu]?s$/, "", v); print v * m }')
    errs=$(printf '%s\n' "$out" | awk '/Non-2xx/ {n += $NF}
        /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
    {
        printf 'peer=%s workload=%s value=%s unit=req/s errors=%s\n' "$s" "$w" "$rps" "$errs"
        printf 'peer=%s workload=%s_p99 value=%s unit=ms\n' "$s" "$w" "$p99"
        cpu_lines "$s" "$w" "$t0" "$t1" "$rps"
    } | tee -a "$RAW" >&2
}

if want W6; then
    say "== W6 HTTP hello, wrk -t1 -c100 -d${DURATION}s"
    mod=/usr/lib/nginx/modules/ngx_http_echo_module.so
    have_nginx=false
    if command -v nginx >/dev/null && [ -e "$mod" ]; then
        have_nginx=true
        next_free_port
        hello=$PORT
        next_free_port
        mkdir -p "$RUN/nginx/www"
        chmod -R a+rX "$RUN"
        sed -e "s#@RUNDIR@#$RUN/nginx#g; s#@HELLO_PORT@#$hello#; s#@FILE_PORT@#$PORT#" \
            -e "s#@DELAY@#0.02#; s#@ECHO_MODULE@#$mod#" \
            "$PEERS_DIR/nginx/nginx.conf.in" >"$RUN/nginx/nginx.conf"
    else
        say "nginx or its echo module missing: no nginx column"
    fi
    # Repetitions outermost, as in W5.
    for r in $(seq "$REPS"); do
        for s in $SYSTEMS; do
            next_free_port
            start_server "$s-http" "$PORT" $(cmd_of "$s") http "$PORT" || continue
            wrk_once "$s" "$PORT"
            stop_server
        done
        # examples/gev-httpd (full request parsing, Host check, gev_server):
        # the gev columns' "gev-httpd" rows, compared with nginx and the raw
        # servers
        for s in $SYSTEMS; do
            case $s in gev-*) ;; *) continue ;; esac
            [ -x "$BUILD/gev-httpd-${s#gev-}" ] || continue
            next_free_port
            start_server "$s-httpd" "$PORT" "$BUILD/gev-httpd-${s#gev-}" --port "$PORT" || continue
            wrk_once "$s" "$PORT" httpd
            stop_server
        done
        if $have_nginx && start_server nginx-http "$hello" nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf"; then
            wrk_once nginx "$hello"
            stop_server
        fi
    done
fi

# ------------------------------------------------------------------ tables
say ""
say "raw lines: $RAW; versions: $OUT/versions.txt"
"$PY" - "$RAW" "$SYSTEMS" >"$OUT/table.md" <<'PYEOF'
import statistics, sys

raw, systems = sys.argv[1], sys.argv[2].split()
# raw peer names that belong to another column
ALIAS = {"greenlet": "gevent"}          # gevent's switch_direct is raw greenlet
cols = systems + ["libevent-precise", "nginx"]
gevs = [s for s in systems if s.startswith("gev-")]
peers = [c for c in cols if not c.startswith("gev-")]

ROWS = [  # key, label, higher is better
    ("switch_yield", "W1 yield to the scheduler, 2 tasks [ns/op]", False),
    ("switch_direct", "W1 direct hand-off ping-pong [ns/op]", False),
    ("spawn", "W2 spawn+join, 100k alive at once [ns/task]", False),
    ("spawn_seq", "W2 spawn+join one at a time [ns/task]", False),
    ("mem", "W3 100k tasks asleep: peak RSS / task [KiB]", False),
    ("mem_delta", "W3 (peak - baseline RSS) / task [KiB]", False),
    ("timers", "W4 100k timers: overhead beyond 500 ms [ms]", False),
    ("timers_inv", "W4 adjacent wake-order inversions [pairs]", False),
    ("timers_inv1ms", "W4 inversions by more than 1 ms [pairs]", False),
    ("timers_inv_gev", "W4 inversions against gev's own deadlines [pairs]", False),
    ("timers_late", "W4 mean wake lateness [us]", None),
    ("timers_until", "W4 gev_sleep_until(gev_now() + d): overhead beyond 500 ms [ms]", False),
    ("timers_until_inv", "W4 gev_sleep_until: adjacent wake-order inversions [pairs]", False),
    ("timers_until_late", "W4 gev_sleep_until: mean wake lateness [us]", None),
    ("echo_c100", "W5 echo 100 conns [req/s]", True),
    ("echo_c100_p99", "W5 echo 100 conns: p99 [us]", False),
    ("echo_c100_cpureq", "W5 echo 100 conns: server CPU per request [us]", False),
    ("echo_c100_cpu", "W5 echo 100 conns: server CPU [%]", None),
    ("echo_c1000", "W5 echo 1000 conns [req/s]", True),
    ("echo_c1000_p99", "W5 echo 1000 conns: p99 [us]", False),
    ("echo_c1000_cpureq", "W5 echo 1000 conns: server CPU per request [us]", False),
    ("echo_c1000_cpu", "W5 echo 1000 conns: server CPU [%]", None),
    ("http", "W6 HTTP hello, wrk -t1 -c100 [req/s]", True),
    ("http_p99", "W6 HTTP: p99 [ms]", False),
    ("http_cpureq", "W6 HTTP: server CPU per request [us]", False),
    ("http_cpu", "W6 HTTP: server CPU [%]", None),
    ("httpd", "W6 examples/gev-httpd (gev columns) [req/s]", True),
    ("httpd_p99", "W6 gev-httpd: p99 [ms]", False),
    ("httpd_cpureq", "W6 gev-httpd: server CPU per request [us]", False),
    ("httpd_cpu", "W6 gev-httpd: server CPU [%]", None),
    ("pingpong", "gev: socketpair ping-pong, 64 B [round trips/s]", True),
    ("queue", "gev: queue(128) producer -> consumer [items/s]", True),
    ("channel", "gev: channel rendezvous ping-pong [ns/msg]", False),
    ("semaphore", "gev: semaphore, 100 contending greenlets [ns/pair]", False),
]

data, errors = {}, {}
for line in open(raw):
    f = dict(x.split("=", 1) for x in line.split() if "=" in x)
    if "peer" not in f or "workload" not in f:
        continue
    try:
        v = float(f["value"])
    except (KeyError, ValueError):
        continue
    col = ALIAS.get(f["peer"], f["peer"])
    data.setdefault((col, f["workload"]), []).append(v)
    bad = int(float(f.get("errors", "0") or 0))
    errors[(col, f["workload"])] = errors.get((col, f["workload"]), 0) + bad

def fmt(v):
    a = abs(v)
    return f"{v:,.0f}" if a >= 1000 else f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}"

def med(col, key):
    vals = data.get((col, key))
    return statistics.median(vals) if vals else None

def cell(col, key):
    vals = sorted(data.get((col, key), []))
    if not vals:
        return "–"
    m = statistics.median(vals)
    s = fmt(m)
    if len(vals) > 1 and vals[0] != vals[-1]:
        if "_inv" in key or m == 0:
            s += f" [{fmt(vals[0])}..{fmt(vals[-1])}]"
        else:
            s += f" ±{(vals[-1] - vals[0]) / abs(m) * 50:.0f}%"
    if errors.get((col, key)):
        s += " (errors!)"
    return s

rows = [r for r in ROWS if any((c, r[0]) in data for c in cols)]
used = [c for c in cols if any((c, r[0]) in data for r in rows)]
out = []
reps = max((len(v) for v in data.values()), default=0)
out.append(f"### Medians (up to {reps} runs each; ±x% = half the min–max range over the median)\n")
out.append("| workload | " + " | ".join(used) + " |")
out.append("|---|" + "---|" * len(used))
for key, label, _ in rows:
    out.append(f"| {label} | " + " | ".join(cell(c, key) for c in used) + " |")

upeers = [p for p in peers if p in used]
# the gev-httpd rows are compared with the peers' (minimal) HTTP servers
PEER_KEY = {"httpd": "http", "httpd_p99": "http_p99", "httpd_cpureq": "http_cpureq",
            "timers_until": "timers"}
if gevs and upeers:
    out.append("\n### gev ÷ peer (medians; each cell: " + " / ".join(gevs) + ")\n")
    out.append("For times, CPU, memory, latency: below 1 means gev is better. "
               "For req/s: above 1 means gev is better.\n")
    out.append("| workload | " + " | ".join(upeers) + " |")
    out.append("|---|" + "---|" * len(upeers))
    for key, label, hib in rows:
        if hib is None or "_inv" in key:
            continue
        cells, anyv = [], False
        for p in upeers:
            pm = med(p, PEER_KEY.get(key, key))
            parts = []
            for g in gevs:
                gm = med(g, key)
                parts.append(f"{gm / pm:.2f}" if gm is not None and pm else "–")
            anyv |= any(x != "–" for x in parts)
            cells.append(" / ".join(parts))
        if anyv:
            out.append(f"| {label} | " + " | ".join(cells) + " |")

# targets from the issues (3, 4, 5, 6)
def check(g, key, limit, how="le"):
    m = med(g, key)
    if m is None:
        return "not run"
    ok = m <= limit
    return f"{'met' if ok else 'NOT met'} ({fmt(m)})"

def vs(g, key, peer, pkey, limit, op):
    """gev's median of key against limit × peer's median of pkey; op: le, lt, ge"""
    gm, pm = med(g, key), med(peer, pkey)
    if gm is None or not pm:
        return "not run"
    r = gm / pm
    ok = {"le": r <= limit, "lt": r < limit, "ge": r >= limit}[op]
    return f"{'met' if ok else 'NOT met'} ({r:.2f}×: {fmt(gm)} vs {fmt(pm)})"

tg = []
for g in gevs:
    lib = g[len("gev-"):]
    t = [("switch (yield through the hub) ≤ 15 ns", check(g, "switch_yield", 15)),
         ("spawn+join ≤ 40 ns, 100k alive at once", check(g, "spawn", 40)),
         ("spawn+join ≤ 40 ns, one at a time", check(g, "spawn_seq", 40)),
         ("≤ 4.5 KiB RSS per parked greenlet (peak/task)", check(g, "mem", 4.5)),
         ("0 timer wake-order inversions (all)", check(g, "timers_inv", 0)),
         ("0 timer wake-order inversions > 1 ms", check(g, "timers_inv1ms", 0)),
         ("0 inversions against the deadlines gev computed", check(g, "timers_inv_gev", 0)),
         ("0 inversions, sleeping until deadlines (gev_sleep_until)",
          check(g, "timers_until_inv", 0))]
    for c in ("100", "1000"):
        k = f"echo_c{c}_cpureq"
        t.append((f"echo {c} conns: CPU/request ≤ 1.05× raw server of the same library",
                  vs(g, k, lib, k, 1.05, "le")))
        t.append((f"echo {c} conns: CPU/request below ST's", vs(g, k, "st", k, 1, "lt")))
        t.append((f"echo {c} conns: CPU/request below Go's", vs(g, k, "go", k, 1, "lt")))
        t.append((f"echo {c} conns: CPU/request under half of gevent's",
                  vs(g, k, "gevent", k, 0.5, "lt")))
    t.append(("channel message ≤ 30 ns", check(g, "channel", 30)))
    # issue 6: examples/gev-httpd beside nginx (1 worker) and the raw server
    t.append(("gev-httpd: req/s ≥ nginx's (wrk-bound, see notes)",
              vs(g, "httpd", "nginx", "http", 1, "ge")))
    t.append(("gev-httpd: CPU/request below nginx's",
              vs(g, "httpd_cpureq", "nginx", "http_cpureq", 1, "lt")))
    t.append(("gev-httpd: CPU/request ≤ 1.05× raw server of the same library",
              vs(g, "httpd_cpureq", lib, "http_cpureq", 1.05, "le")))
    t.append(("gev-bench http: CPU/request ≤ 1.05× raw server of the same library",
              vs(g, "http_cpureq", lib, "http_cpureq", 1.05, "le")))
    tg.append((g, t))
if tg:
    out.append("\n### Targets (issues 3, 4, 5, 6), on the medians above "
               "(ratios: gev ÷ peer)\n")
    out.append("| target | " + " | ".join(g for g, _ in tg) + " |")
    out.append("|---|" + "---|" * len(tg))
    for i, (name, _) in enumerate(tg[0][1]):
        out.append(f"| {name} | " + " | ".join(t[i][1] for _, t in tg) + " |")
print("\n".join(out))
PYEOF
cat "$OUT/table.md"
