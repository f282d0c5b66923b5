"""What one forwarded packet's fan-out costs the sender: a ``sendto`` per subscriber socket
(aioice's socket per peer connection) against one ``sendmmsg`` on the shared socket
(rtc/udp_mux.py + rtc/_sendmmsg.c), in process CPU time of the sending process.

Run inside a loopback-only namespace::

    unshare -rn sh -c 'ip link set lo up && .venv/bin/python tests/bench/udp_mux_bench.py'

The N subscribers are N UDP sockets in a child process that drains them with epoll, as the
bench's client processes do. On loopback the sender's syscall also runs the receiving
socket's kernel path (IP/UDP receive, queueing, waking the reader): that part is the same for
both ways and is what a real NIC moves to the receiving machine. Prints
``RESULT sendto_us_per_datagram=``, ``RESULT sendmmsg_us_per_datagram=`` and their ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import socket
import time
from multiprocessing.connection import Connection

import rtc._sendmmsg as sendmmsg
from rtc.udp_mux import pack_sockaddr

HOST = "127.0.0.1"


def drain(n: int, conn: Connection) -> None:
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setblocking(False)
        socks.append(s)
    conn.send([s.getsockname() for s in socks])
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    received = 0
    while not conn.poll():
        for fd, _ in ep.poll(0.1):
            s = by_fd[fd]
            try:
                while True:
                    s.recv(2048)
                    received += 1
            except BlockingIOError:
                pass
    conn.recv()
    conn.send(received)


def run(n: int, packets: int, size: int, rounds: int) -> None:
    parent, child = mp.Pipe()
    proc = mp.Process(target=drain, args=(n, child), daemon=True)
    proc.start()
    addrs = parent.recv()
    packed = [pack_sockaddr(a) for a in addrs]
    # one socket per subscriber, as aioice has it, and the one shared socket
    own = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        own.append(s)
    shared = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    shared.bind((HOST, 0))
    payload = os.urandom(size)
    results: dict[str, list[float]] = {"sendto": [], "sendmmsg": []}
    for _ in range(rounds):
        for way in ("sendto", "sendmmsg"):
            t0 = time.process_time()
            for _ in range(packets):
                # each subscriber's copy is its own bytes object, as SRTP protect makes it
                copies = [bytes(payload) for _ in range(n)]
                if way == "sendto":
                    for s, copy, addr in zip(own, copies, addrs, strict=True):
                        s.sendto(copy, addr)
                else:
                    sendmmsg.send(shared.fileno(), copies, packed)
                time.sleep(0)  # let the reader run, as the event loop would
            results[way].append((time.process_time() - t0) / (packets * n) * 1e6)
    parent.send("stop")
    received = parent.recv()
    proc.join(5)
    for s in [*own, shared]:
        s.close()
    sent = 2 * rounds * packets * n
    best = {way: min(v) for way, v in results.items()}
    print(f"{n} subscribers, {size}-byte datagrams, {packets} packets x {rounds} rounds per way")
    for way, values in results.items():
        print(f"  {way:8} us of sender CPU per datagram, per round: {[round(v, 2) for v in values]}")
    print(f"  the reader got {received} of {sent} datagrams (the rest overflowed its sockets)")
    print(f"  load average {os.getloadavg()[0]:.2f}")
    print(f"RESULT sendto_us_per_datagram={best['sendto']:.2f}")
    print(f"RESULT sendmmsg_us_per_datagram={best['sendmmsg']:.2f}")
    print(f"RESULT sendmmsg_speedup={best['sendto'] / best['sendmmsg']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=64)
    ap.add_argument("--packets", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1100)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    run(a.subscribers, a.packets, a.size, a.rounds)


if __name__ == "__main__":
    main()
