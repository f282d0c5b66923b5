"""The link lab: a "county" network namespace and N "hall" namespaces joined by veth pairs, with a
per-hall, per-direction bandwidth cap (tbf), packet loss (nftables, input hook), a full cut and a
UDP block, all changeable while traffic runs.

Addresses (only from 198.18.0.0/15, the benchmarking range):

    county service address   198.18.0.1/32 on the county's lo  (the server listens and gathers ICE here)
    hall N link, county end  198.18.N.1/24 on county interface ``hallN``
    hall N link, hall end    198.18.N.2/24 on hall interface ``county``; route to 198.18.0.0/24 via .N.1

Why these mechanisms (the kernel here has tbf, ifb, mirred, nftables, but no netem):

- Each direction is capped on the *egress* of the sending end's veth (county ``hallN`` for download,
  hall ``county`` for upload); every node is its own namespace, so no ifb is needed.
- Loss is dropped on the *receiving* end's input hook: an output-hook drop returns EPERM to the
  sender instead of silently losing the packet, which is not what a lossy radio link does.
- A cut drops everything on both input hooks (the interfaces stay up, so the endpoints see
  silence, not "network unreachable", as with a real cut).

Namespaces are anonymous by default: a short-lived thread ``unshare``s a new namespace and this
process keeps an fd on it, so the namespaces (and their veths) vanish when the process exits,
even when it is killed; nothing is left in /run/netns. Named mode (``name_prefix``) uses
``ip netns add`` so the lab outlives the process for demos by hand (scripts/linklab).

Code runs inside a node either as a subprocess (``lab.popen``/``lab.spawn``: ``nsenter --net``)
or in this process on a per-node event-loop thread that has ``setns``-ed into the namespace
(``await lab.run_in(node, coroutine)``): network namespaces are per thread on Linux.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
COUNTY_ADDRESS = "198.18.0.1"
COUNTY = "county"

_libc = ctypes.CDLL(None, use_errno=True)


class LabError(RuntimeError):
    """A lab command failed (the message carries the command and its stderr)."""


def hall_address(hall: int) -> str:
    return f"198.18.{hall}.2"


def hall_gateway(hall: int) -> str:
    return f"198.18.{hall}.1"


def hall_name(hall: int) -> str:
    return f"hall{hall}"


def _check(argv: Sequence[str], *, input_text: str | None = None) -> str:
    result = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")
    return result.stdout


class Namespace:
    """A network namespace reachable through a path (``/proc/PID/fd/N`` or ``/run/netns/NAME``)."""

    def __init__(self, path: str, *, fd: int | None = None, name: str | None = None) -> None:
        self.path = path
        self._fd = fd
        self.name = name  # set for `ip netns` namespaces

    @classmethod
    def anonymous(cls) -> Namespace:
        """A new namespace that lives exactly as long as this process holds its fd."""
        box: dict[str, Any] = {}

        def make() -> None:
            # unshare(CLONE_NEWNET) only moves the calling thread; the thread then just ends.
            if _libc.unshare(CLONE_NEWNET) != 0:
                box["error"] = OSError(
                    ctypes.get_errno(), "unshare(CLONE_NEWNET) failed (need CAP_SYS_ADMIN)"
                )
                return
            box["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        thread = threading.Thread(target=make, name="linklab-unshare")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        fd = int(box["fd"])
        return cls(f"/proc/{os.getpid()}/fd/{fd}", fd=fd)

    @classmethod
    def named(cls, name: str, *, create: bool = True) -> Namespace:
        if create:
            _check(["ip", "netns", "add", name])
        elif not os.path.exists(f"/run/netns/{name}"):
            raise LabError(f"no network namespace {name!r} (is the lab up?)")
        return cls(f"/run/netns/{name}", name=name)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this namespace."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def run(self, *argv: str, input_text: str | None = None) -> str:
        return _check(self.command(argv), input_text=input_text)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        elif self.name is not None:
            with contextlib.suppress(LabError):
                _check(["ip", "netns", "del", self.name])
            self.name = None


class NodeLoop:
    """An asyncio loop on a thread that lives in one namespace: in-process code (aiohttp, aiortc,
    sockets) run here opens its sockets in that namespace."""

    def __init__(self, namespace: Namespace, label: str) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            fd = os.open(namespace.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    failure.append(OSError(ctypes.get_errno(), f"setns into {label} failed"))
                    return
            finally:
                os.close(fd)
                ready.set()
            asyncio.set_event_loop(self.loop)
            self.loop.run_forever()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

        self.thread = threading.Thread(target=main, name=f"linklab-{label}", daemon=True)
        self.thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on this node's loop from any other loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass(frozen=True)
class LinkShape:
    """One hall link. ``up`` = hall → county, ``down`` = county → hall; ``None`` kbit = no cap.
    ``queue_ms`` is how long tbf lets packets wait before dropping (the link's buffer)."""

    up_kbit: int | None = None
    down_kbit: int | None = None
    up_loss_pct: float = 0.0
    down_loss_pct: float = 0.0
    queue_ms: int = 300
    loss_tcp: bool = False  # loss hits UDP (media) only unless set; TCP also loses on real links


@dataclass
class HallLink:
    hall: int
    namespace: Namespace
    shape: LinkShape = field(default_factory=LinkShape)
    cut: bool = False
    udp_blocked: bool = False

    @property
    def name(self) -> str:
        return hall_name(self.hall)

    @property
    def address(self) -> str:
        return hall_address(self.hall)


def _loss_rule(match: str, pct: float, tcp: bool) -> str | None:
    if pct <= 0:
        return None
    # numgen gives integers; per ten-thousand keeps 0.01 % resolution.
    threshold = max(0, min(10000, round(pct * 100)))
    proto = "meta l4proto { udp, tcp }" if tcp else "meta l4proto udp"
    return f"{match} {proto} numgen random mod 10000 < {threshold} drop"


def _tbf(kbit: int, queue_ms: int) -> list[str]:
    # burst: at least one full-size frame plus headroom, else ~20 ms of line rate; a bigger bucket
    # would let the link burst far above its nominal rate.
    burst = max(3000, kbit * 1000 // 8 // 50)
    return ["tbf", "rate", f"{kbit}kbit", "burst", str(burst), "latency", f"{queue_ms}ms"]


class LinkLab:
    """``async with LinkLab(halls=2) as lab:`` (or ``with``): county + halls, shaped on demand."""

    def __init__(self, halls: int = 1, *, name_prefix: str | None = None) -> None:
        if not 1 <= halls <= 250:
            raise ValueError("halls must be 1..250")
        self.hall_count = halls
        self.name_prefix = name_prefix
        self.county_address = COUNTY_ADDRESS
        self.county: Namespace | None = None
        self.halls: dict[int, HallLink] = {}
        self._loops: dict[str, NodeLoop] = {}
        self._processes: list[subprocess.Popen[Any] | asyncio.subprocess.Process] = []

    # -- lifecycle --------------------------------------------------------------------------

    def _namespace(self, node: str) -> Namespace:
        if self.name_prefix is None:
            return Namespace.anonymous()
        return Namespace.named(f"{self.name_prefix}-{node}")

    def start(self) -> LinkLab:
        for tool in ("ip", "tc", "nft", "nsenter"):
            if shutil.which(tool) is None:
                raise LabError(f"{tool} is not installed (scripts/install-system-deps.sh installs it)")
        try:
            self.county = self._namespace(COUNTY)
            self._base(self.county)
            self.county.run("ip", "addr", "add", f"{COUNTY_ADDRESS}/32", "dev", "lo")
            for hall in range(1, self.hall_count + 1):
                self._add_hall(hall)
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def _base(ns: Namespace) -> None:
        ns.run("ip", "link", "set", "lo", "up")
        # IPv4 only: no link-local IPv6 chatter on the shaped links, no v6 ICE candidates.
        ns.run("sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6")
        ns.run("sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")

    def _add_hall(self, hall: int) -> None:
        assert self.county is not None
        ns = self._namespace(hall_name(hall))
        link = HallLink(hall, ns)
        self.halls[hall] = link
        self._base(ns)
        self.county.run(
            "ip", "link", "add", link.name, "type", "veth", "peer", "name", COUNTY, "netns", ns.path
        )
        self.county.run("ip", "addr", "add", f"{hall_gateway(hall)}/24", "dev", link.name)
        self.county.run("ip", "link", "set", link.name, "up")
        ns.run("ip", "addr", "add", f"{link.address}/24", "dev", COUNTY)
        ns.run("ip", "link", "set", COUNTY, "up")
        ns.run("ip", "route", "add", "198.18.0.0/24", "via", hall_gateway(hall))
        self._apply_rules()

    def close(self) -> None:
        for proc in self._processes:
            _terminate(proc)
        self._processes.clear()
        for loop in self._loops.values():
            loop.close()
        self._loops.clear()
        for link in self.halls.values():
            link.namespace.close()
        self.halls.clear()
        if self.county is not None:
            self.county.close()
            self.county = None

    def __enter__(self) -> LinkLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LinkLab:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """``close()`` that lets asyncio children exit gracefully on their own loop first."""
        for proc in self._processes:
            if isinstance(proc, asyncio.subprocess.Process) and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        await asyncio.to_thread(self.close)

    @classmethod
    def attach(cls, name_prefix: str) -> LinkLab:
        """Reopen a named lab created by another process (scripts/linklab); shapes start unknown
        and are rewritten in full by the next change."""
        lab = cls(1, name_prefix=name_prefix)
        lab.county = Namespace.named(f"{name_prefix}-{COUNTY}", create=False)
        hall = 1
        while os.path.exists(f"/run/netns/{name_prefix}-{hall_name(hall)}"):
            ns = Namespace.named(f"{name_prefix}-{hall_name(hall)}", create=False)
            lab.halls[hall] = HallLink(hall, ns)
            hall += 1
        lab.hall_count = len(lab.halls)
        return lab

    def detach(self) -> None:
        """Forget a named lab without deleting it (the CLI's processes end, the lab stays)."""
        self.halls.clear()
        self.county = None

    # -- nodes ------------------------------------------------------------------------------

    def namespace(self, node: str | int) -> Namespace:
        """``"county"`` or a hall number."""
        if node == COUNTY:
            assert self.county is not None, "lab not started"
            return self.county
        return self.link(node).namespace

    def link(self, hall: int | str) -> HallLink:
        if isinstance(hall, str):
            hall = int(hall.removeprefix("hall"))
        try:
            return self.halls[hall]
        except KeyError:
            raise LabError(f"no hall {hall} in this lab (halls: {sorted(self.halls)})") from None

    def address(self, node: str | int) -> str:
        return self.county_address if node == COUNTY else self.link(node).address

    def command(self, node: str | int, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside ``node`` (and to die with this process)."""
        wrapped = self.namespace(node).command(argv)
        if shutil.which("setpriv"):
            # If this process dies without cleanup, its children in the lab get SIGKILL too.
            wrapped = ["setpriv", "--pdeathsig", "KILL", "--", *wrapped]
        return wrapped

    def run(self, node: str | int, *argv: str) -> str:
        return _check(self.command(node, argv))

    def popen(self, node: str | int, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process inside ``node``; it is terminated on ``close()``."""
        proc = subprocess.Popen(self.command(node, argv), **kwargs)  # noqa: S603
        self._processes.append(proc)
        return proc

    async def spawn(self, node: str | int, argv: Sequence[str], **kwargs: Any) -> asyncio.subprocess.Process:
        """The asyncio flavour of ``popen``."""
        proc = await asyncio.create_subprocess_exec(*self.command(node, argv), **kwargs)
        self._processes.append(proc)
        return proc

    def loop(self, node: str | int) -> NodeLoop:
        key = str(node)
        if key not in self._loops:
            self._loops[key] = NodeLoop(
                self.namespace(node), COUNTY if node == COUNTY else hall_name(int(node))
            )
        return self._loops[key]

    async def run_in(self, node: str | int, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on ``node``'s in-namespace loop and await its result here."""
        return await self.loop(node).run(coro)

    # -- link conditions --------------------------------------------------------------------

    def shape(
        self,
        hall: int,
        *,
        up_kbit: int | None = None,
        down_kbit: int | None = None,
        kbit: int | None = None,
        loss_pct: float | None = None,
        up_loss_pct: float = 0.0,
        down_loss_pct: float = 0.0,
        queue_ms: int = 300,
        loss_tcp: bool = False,
    ) -> LinkShape:
        """Set the hall's whole link shape (what is not given is unlimited/lossless).
        ``kbit``/``loss_pct`` set both directions at once. Applies immediately, mid-call too."""
        if kbit is not None:
            up_kbit = down_kbit = kbit
        if loss_pct is not None:
            up_loss_pct = down_loss_pct = loss_pct
        for value in (up_kbit, down_kbit):
            if value is not None and value < 8:
                raise ValueError("a cap below 8 kbit/s is a cut: use lab.cut()")
        for value in (up_loss_pct, down_loss_pct):
            if not 0 <= value <= 100:
                raise ValueError("loss must be 0..100 %")
        return self.set_shape(
            hall,
            LinkShape(
                up_kbit=up_kbit,
                down_kbit=down_kbit,
                up_loss_pct=up_loss_pct,
                down_loss_pct=down_loss_pct,
                queue_ms=queue_ms,
                loss_tcp=loss_tcp,
            ),
        )

    def set_shape(self, hall: int, shape: LinkShape) -> LinkShape:
        link = self.link(hall)
        assert self.county is not None
        _set_tbf(self.county, link.name, shape.down_kbit, shape.queue_ms)
        _set_tbf(link.namespace, COUNTY, shape.up_kbit, shape.queue_ms)
        link.shape = shape
        self._apply_rules()
        return shape

    def unshape(self, hall: int) -> None:
        self.set_shape(hall, LinkShape())

    def cut(self, hall: int) -> None:
        """Drop every packet both ways (interfaces stay up)."""
        self.link(hall).cut = True
        self._apply_rules()

    def restore(self, hall: int) -> None:
        """Undo ``cut`` (the shape and any UDP block stay as they were)."""
        self.link(hall).cut = False
        self._apply_rules()

    def block_udp(self, hall: int) -> None:
        """Drop all UDP both ways (a hall behind a TCP-only firewall); TCP still passes."""
        self.link(hall).udp_blocked = True
        self._apply_rules()

    def unblock_udp(self, hall: int) -> None:
        self.link(hall).udp_blocked = False
        self._apply_rules()

    def _apply_rules(self) -> None:
        """Rewrite the nftables table of every node in one transaction each."""
        assert self.county is not None
        county_rules: list[str] = []
        for link in self.halls.values():
            county_rules += _input_rules(f'iifname "{link.name}"', link, link.shape.up_loss_pct)
            _load_table(link.namespace, _input_rules(f'iifname "{COUNTY}"', link, link.shape.down_loss_pct))
        _load_table(self.county, county_rules)

    def counters(self, node: str | int) -> str:
        """The node's nftables table and tc statistics, for reports and debugging."""
        ns = self.namespace(node)
        return ns.run("nft", "list", "table", "inet", "linklab") + ns.run("tc", "-s", "qdisc", "show")


def _input_rules(match: str, link: HallLink, loss_pct: float) -> list[str]:
    if link.cut:
        return [f"{match} counter drop"]
    rules = []
    if link.udp_blocked:
        rules.append(f"{match} meta l4proto udp counter drop")
    loss = _loss_rule(match, loss_pct, link.shape.loss_tcp)
    if loss is not None:
        rules.append(loss.replace(" drop", " counter drop"))
    return rules


def _load_table(ns: Namespace, rules: list[str]) -> None:
    body = "\n".join(f"    {rule}" for rule in rules)
    script = (
        "table inet linklab\n"
        "delete table inet linklab\n"
        "table inet linklab {\n"
        "  chain input {\n"
        "    type filter hook input priority -10; policy accept;\n"
        f"{body}\n"
        "  }\n"
        "}\n"
    )
    ns.run("nft", "-f", "-", input_text=script)


def _set_tbf(ns: Namespace, device: str, kbit: int | None, queue_ms: int) -> None:
    if kbit is None:
        with contextlib.suppress(LabError):  # no qdisc to delete
            ns.run("tc", "qdisc", "del", "dev", device, "root")
        return
    ns.run("tc", "qdisc", "replace", "dev", device, "root", *_tbf(kbit, queue_ms))


def _terminate(proc: subprocess.Popen[Any] | asyncio.subprocess.Process) -> None:
    """SIGTERM, a grace period, then SIGKILL (synchronously: close() may run without a loop)."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    if isinstance(proc, subprocess.Popen):
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        return
    # An asyncio child is reaped by its loop's watcher: wait until it is a zombie or gone.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(proc.pid):
        time.sleep(0.05)
    if _alive(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


__all__ = [
    "COUNTY",
    "COUNTY_ADDRESS",
    "HallLink",
    "LabError",
    "LinkLab",
    "LinkShape",
    "Namespace",
    "NodeLoop",
    "hall_address",
]
