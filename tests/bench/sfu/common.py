"""Shared helpers of the SFU benchmark: child-process plumbing and measurements.

Every bench process (server, client) is a ``multiprocessing`` child started
with the *spawn* method. It talks to the orchestrator over a ``Pipe``:
request tuples in, reply objects out. Children ask the kernel to kill them
when the orchestrator dies (``PR_SET_PDEATHSIG``), so nothing outlives a
crashed or interrupted bench.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

Handler = Callable[[tuple[Any, ...]], Awaitable[Any]]


def die_with_parent() -> None:
    """SIGKILL this process when its parent exits (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except OSError:
        pass


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), in seconds, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime/stime are fields 14/15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return float(total - idle), float(total)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept); None with fewer than 2 distinct x."""
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return slope, my - slope * mx


def rtp_payload(data: bytes) -> bytes | None:
    """Payload of a serialized (plain) RTP packet; None for RTCP or garbage."""
    if len(data) < 12 or 200 <= data[1] <= 207:
        return None
    b0 = data[0]
    off = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if len(data) < off + 4:
            return None
        off += 4 + 4 * int.from_bytes(data[off + 2 : off + 4], "big")
    end = len(data) - (data[-1] if b0 & 0x20 else 0)
    if end < off:
        return None
    return data[off:end]


def run_child(
    conn: Connection,
    setup: Callable[[], Awaitable[Handler]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    """Run an event loop (``loop_factory``'s, default asyncio's) serving requests from ``conn``
    until ("stop",) or EOF."""
    die_with_parent()
    # Own session => own scheduler autogroup (kernel.sched_autogroup_enabled=1 here):
    # the server's CPU share is then not split with the load-generating clients,
    # nor the clients' with each other. PDEATHSIG still ties us to the orchestrator.
    try:
        os.setsid()
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator handles Ctrl-C

    async def main() -> None:
        handler = await setup()
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        busy: set[asyncio.Task[None]] = set()

        async def serve(msg: tuple[Any, ...]) -> None:
            try:
                reply = await handler(msg)
            except Exception as exc:  # report, keep serving
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            try:
                conn.send(reply)
            except (BrokenPipeError, OSError):
                if not done.done():
                    done.set_result(None)
                return
            if msg[0] == "stop" and not done.done():
                done.set_result(None)

        def readable() -> None:
            try:
                while conn.poll():
                    msg = conn.recv()
                    task = loop.create_task(serve(msg))
                    busy.add(task)
                    task.add_done_callback(busy.discard)
            except (EOFError, OSError):
                loop.remove_reader(conn.fileno())
                if not done.done():
                    done.set_result(None)

        loop.add_reader(conn.fileno(), readable)
        conn.send({"ready": True, "pid": os.getpid()})
        await done

    profile = os.environ.get("SFU_BENCH_PROFILE")  # debugging aid: cProfile each child to this dir
    if profile:
        import cProfile

        prof = cProfile.Profile(time.process_time)  # CPU time, not wall time (shared machine)
        prof.runctx("_run(main, loop_factory)", globals(), locals())
        prof.dump_stats(f"{profile}/{os.getpid()}.prof")
    else:
        _run(main, loop_factory)
    sys.exit(0)


def _run(
    main: Callable[[], Awaitable[None]], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> None:
    async def body() -> None:
        await main()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(body())


class ChildHandle:
    """The orchestrator's side of one child process."""

    def __init__(self, name: str, process: Any, conn: Connection) -> None:
        self.name = name
        self.process = process
        self.conn = conn
        self.pid: int = process.pid

    def request(self, msg: tuple[Any, ...], timeout: float = 60.0) -> Any:
        self.conn.send(msg)
        return self.recv(timeout, msg[0])

    def recv(self, timeout: float, what: str = "reply") -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"{self.name}: no {what!r} reply within {timeout:.0f} s")
        reply = self.conn.recv()
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"{self.name}: {reply['error']}")
        return reply

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        try:
            if self.process.is_alive():
                self.conn.send(("stop",))
                if self.conn.poll(timeout):
                    self.conn.recv()
        except (OSError, EOFError):
            pass
        self.process.join(5.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(3.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(3.0)
        self.conn.close()


def now() -> float:
    return time.monotonic()


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets a process holds open."""
    out: set[int] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                out.add(int(target[8:-1]))
    except OSError:
        pass
    return out


def udp_queues() -> dict[int, tuple[int, int]]:
    """inode -> (bytes waiting in the receive queue, datagrams dropped so far), from /proc/net/udp.

    The kernel queue is where a CPU-starved process's backlog builds up before
    its event loop reads the socket (invisible to in-process timings)."""
    out: dict[int, tuple[int, int]] = {}
    with open("/proc/net/udp", encoding="ascii") as f:
        next(f)
        for line in f:
            parts = line.split()
            rx = int(parts[4].split(":")[1], 16)
            out[int(parts[9])] = (rx, int(parts[12]))
    return out
