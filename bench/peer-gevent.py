"""bench/peer-gevent.py: gevent on gev-bench's workloads (greenlets on
libev or libuv, in CPython), the model gev brings to C.

    python3 peer-gevent.py switch_yield N | switch_direct N | spawn N |
                           mem N SECS | timers N | echo PORT | http PORT

Same output lines as gev-bench: peer=gevent workload=NAME value=V unit=U ...
"""
import sys
import time

import gevent
from gevent import socket
from gevent.event import Event
from gevent.server import StreamServer

REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
         b"hello, world\n")


def result(workload, value, unit, **extra):
    tail = "".join(f" {k}={v}" for k, v in extra.items())
    print(f"peer=gevent workload={workload} value={value} unit={unit}{tail}", flush=True)


def ns():
    return time.monotonic_ns()


def switch_yield(n):
    def yielder():
        for _ in range(n // 2):
            gevent.sleep(0)
    t0 = ns()
    gevent.joinall([gevent.spawn(yielder), gevent.spawn(yielder)])
    result("switch_yield", f"{(ns() - t0) / (n // 2 * 2):.2f}", "ns/op", ops=n // 2 * 2)


def switch_direct(n):
    """A turn passed with two Events (set the other's, wait on your own)."""
    ev = [Event(), Event()]

    def player(me):
        for _ in range(n // 2):
            ev[me].wait()
            ev[me].clear()
            ev[1 - me].set()
    t0 = ns()
    gs = [gevent.spawn(player, 0), gevent.spawn(player, 1)]
    ev[0].set()
    gevent.joinall(gs)
    result("switch_direct", f"{(ns() - t0) / (n // 2 * 2):.2f}", "ns/op", ops=n // 2 * 2)


def spawn(n):
    t0 = ns()
    gevent.joinall([gevent.spawn(lambda: None) for _ in range(n)])
    result("spawn", f"{(ns() - t0) / n:.1f}", "ns/task", n=n)


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def mem(n, secs):
    base = status_kib("VmRSS")
    gevent.joinall([gevent.spawn(gevent.sleep, secs) for _ in range(n)])
    peak = status_kib("VmHWM")
    result("mem", f"{peak / n:.3f}", "KiB/task", peak_kib=peak, base_kib=base, n=n)
    result("mem_delta", f"{(peak - base) / n:.3f}", "KiB/task")


def timers(n):
    durs, s = [], 12345
    for _ in range(n):  # gev-bench's xorshift32 durations
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        durs.append(s % 500001)
    deadline, woke, order = [0] * n, [0] * n, []

    def sleeper(i):
        deadline[i] = ns() + durs[i] * 1000
        gevent.sleep(durs[i] / 1e6)
        woke[i] = ns()
        order.append(i)
    t0 = ns()
    gevent.joinall([gevent.spawn(sleeper, i) for i in range(n)])
    wall_ms = (ns() - t0) / 1e6
    pairs = [deadline[a] - deadline[b] for a, b in zip(order, order[1:])]
    result("timers", f"{wall_ms - max(durs) / 1e3:.1f}", "ms", wall_ms=f"{wall_ms:.1f}")
    result("timers_inv", sum(d > 0 for d in pairs), "pairs")
    result("timers_inv1ms", sum(d > 1000000 for d in pairs), "pairs")
    result("timers_late", f"{sum(w - d for w, d in zip(woke, deadline)) / n / 1e3:.1f}", "us")


def echo_conn(sock, _addr):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = sock.recv(16384)
        if not data:
            return
        sock.sendall(data)


def http_conn(sock, _addr):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = b""
    while True:
        data = sock.recv(16384)
        if not data:
            return
        pending += data
        heads = pending.count(b"\r\n\r\n")
        if heads:
            pending = pending[pending.rfind(b"\r\n\r\n") + 4:]
            sock.sendall(REPLY * heads)


def serve(port, handler):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    StreamServer(listener, handler).serve_forever()


def main():
    modes = {"switch_yield": switch_yield, "switch_direct": switch_direct, "spawn": spawn,
             "timers": timers, "mem": lambda n: mem(n, float(sys.argv[3])),
             "echo": lambda p: serve(p, echo_conn), "http": lambda p: serve(p, http_conn)}
    if len(sys.argv) < 3 or sys.argv[1] not in modes:
        sys.exit("usage: peer-gevent.py " + " | ".join(m + " N" for m in modes))
    modes[sys.argv[1]](int(sys.argv[2]))


if __name__ == "__main__":
    main()
