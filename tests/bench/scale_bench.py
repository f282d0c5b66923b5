"""Scale-out benchmark (issue 17 item 8): SFU workers as real ``run.py sfu`` processes.

Run it inside a loopback-only network namespace::

    cd /work/main && unshare -rn sh -c \
        'ip link set lo up && .venv/bin/python tests/bench/scale_bench.py --quick'

Parts, all started here: a redis-server (``tests/cluster/parts.py``), two ``run.py sfu
--worker-id`` processes (started as ``tests/cluster/test_cluster_media.py`` starts them), and, in
this process, the web side's control plane (``RemoteSfu``, as ``tests/cluster/test_control_plane.py``
drives it) with real aiortc peers from ``tests/sfu/sfu_testkit.py``. No PostgreSQL or web process
is needed: a worker needs only Redis, and the peers are admitted through the same ``RemoteSfu``
that ``run.py web`` uses. The subscribers count the RTP packets of each slot instead of decoding
(so this process stays light on a 2-core machine); "media" below means RTP of the publisher's
video arriving at a subscriber.

Printed, all from one run:

* ``RESULT single_worker_cpu_per_subscriber_pct=`` and ``RESULT cascade_cpu_per_subscriber_pct=``
  (issue 17 items 4 and 8): first, one publisher -> N subscribers (``--cost-subscribers``: 300 by
  default, the county's briefing to every village hall) in one room on one worker; then the same
  1 -> N room spanning both workers (docs/scale.md "Cascade"): the web side's placement with a
  participant cap (``SpanPolicy(cap=N // 2 + 1)``, as ``MAEUL_ROOM_SPAN_CAP`` sets it) puts the
  publisher and half the subscribers on the room's home and the rest on the other worker, joined
  by a pipe. Each figure is the CPU time of the workers (utime+stime from /proc/<pid>/stat, all
  their threads) over a measuring window, as % of one core, divided by N (the publisher's ingest
  included, so it is a little above the marginal cost). Then ``RESULT cascade_vs_single_ratio=``
  (the issue's target: at most 1.15). Spanning adds a fixed cost (the far worker's ingest of the
  piped publisher and its own loops, the home's pipe send) that does not grow with N, so the
  ratio is measured at the size a room spans for; at 1 -> 16 that fixed cost alone is 30-110 %
  of the room's own.
* ``RESULT failover_seconds=``: a 1 -> 16 room (``--subscribers``) on one worker and a second room
  (1 -> 2) on the other. The broadcast room's worker is SIGKILLed; when the control plane finds it
  dead it reports each participant left (``transport-failed``), and each peer joins again as a
  kiosk does (a new peer connection; the room is placed on the surviving worker). The figure is the
  worst, over the room's subscribers, of the seconds from the kill until the publisher's video
  arrives again.
* ``RESULT other_room_max_gap_s=``: meanwhile, the longest time without video RTP at a subscriber
  of the room on the surviving worker (from 2 s before the kill until every peer is back).

* ``RESULT broadcast_subscribers_at_14fps=``: then a ladder of 1 -> N rooms spanning both workers
  (``LADDER``: 16, 32, 48, 64, 96, ... until one fails; ``--no-ladder`` skips it): the largest N in
  which every subscriber got at least 14 complete frames a second (the publisher sends 15) and
  every audio packet in the window (the gaps between audio packets are printed, not judged: see
  ``LADDER``). The subscribers count instead of decoding (``FrameCounter``:
  a frame is complete when its last packet arrives with no sequence number missing since the
  previous frame; a lost packet is not asked for again, so the figure errs low). They live in
  this process, so on a 2-core machine its event loop may run out of CPU before the workers do:
  each step prints both, and ``failed_at=`` says which was at 85 % of a core or more when the
  ladder stopped, or ``machine`` when together they held 85 % of all its cores (a step that
  fails is tried once more before it stops the ladder). Once connected, each subscriber counts
  from the clear RTP header as the datagram arrives (``CountingClient.count_at_the_socket``), so
  this process costs less than the workers it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from kiosk.media import PacedVideo  # noqa: E402
from rtc import aiortc_internals as ai  # noqa: E402
from server.cluster.registry import SpanPolicy, connect, worker_key  # noqa: E402
from server.cluster.remote import RemoteSfu  # noqa: E402
from server.sfu import ParticipantLeft, SfuEvent  # noqa: E402
from tests.bench.sfu.clip import FPS, HEIGHT, WIDTH  # noqa: E402
from tests.bench.sfu.common import proc_cpu_seconds  # noqa: E402
from tests.cluster.parts import (  # noqa: E402
    Proc,  # noqa: E402
    RedisServer,
    sfu_worker_env,
)
from tests.sfu.sfu_testkit import LUMA, Client, _PacketCounter  # noqa: E402

BROADCAST = "broadcast"
OTHER = "other"
CASCADE = "cascade"
#: The broadcast ladder (``broadcast_subscribers_at_14fps``): room sizes tried in turn, each
#: spanning both workers, until one fails. A subscriber passes with at least MIN_FPS complete
#: frames a second and no audio packet missing. (Not by the gaps between audio packets as this
#: process sees them: its one event loop reads each subscriber's socket a packet at a time, so an
#: audio packet waits behind that subscriber's video, all subscribers alike. At 128 every
#: subscriber saw the same 0.17 s gaps at the same moments while this loop never lagged 40 ms.)
LADDER = (16, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 448, 512, 640)
MIN_FPS = 14.0


class NoisyVideo(PacedVideo):
    """640x360 at 15 fps of a noisy texture (as the SFU bench's clip), so aiortc's encoder sends
    camera-like frames of several RTP packets; the bitrate it settles at is printed with the CPU
    figure. (The testkit's flat picture makes a few tens of kbit/s.)"""

    def __init__(self) -> None:
        super().__init__(WIDTH, HEIGHT, FPS)
        # A handful of noise pictures in turn: every frame differs from the last one.
        # Low-amplitude noise (luma 112-143): a few hundred kbit/s; full-range noise makes libvpx
        # overshoot to several Mbit/s, far above what a camera at a hall sends.
        self._noise = [bytes(112 + (b & 0x1F) for b in os.urandom(WIDTH * HEIGHT)) for _ in range(7)]

    def picture(self, n: int) -> bytes:
        return self._noise[n % len(self._noise)]


@dataclass
class Reception:
    """What a subscriber could show, counted without decoding: when each complete video frame
    arrived, and each audio packet."""

    frames: list[float] = field(default_factory=list)
    audio: list[float] = field(default_factory=list)
    #: When an audio packet was found missing (its sequence number skipped), one entry each.
    audio_lost: list[float] = field(default_factory=list)


class FrameCounter(_PacketCounter):
    """The testkit's RTP counter, also noting complete frames: a frame is complete when its last
    packet (the marker) arrives and no sequence number went missing since the previous frame's
    last packet (the SFU numbers its own padding in the same sequence). A real receiver would ask
    for a lost packet again; this one counts the frame as lost, so the figure errs low. Audio:
    each packet's arrival, and each one missing."""

    def __init__(self, client: Client, transceiver: Any, reception: Reception) -> None:
        super().__init__(client, transceiver)
        self.audio = transceiver.kind == "audio"
        self.reception = reception
        self.expected: int | None = None
        self.broken = False

    async def _handle_rtp_packet(self, packet: Any, arrival_time_ms: int) -> None:
        self.count(packet.sequence_number, bool(packet.marker))

    def count(self, seq: int, marker: bool) -> None:
        """One RTP packet of this slot (from aiortc, or from the socket: CountingClient.tap)."""
        mid = self.transceiver.mid
        self.client.rtp_packets[mid] = self.client.rtp_packets.get(mid, 0) + 1
        now = time.monotonic()
        skipped = 0 if self.expected is None else (seq - self.expected) & 0xFFFF
        if skipped >= 0x8000:
            return  # late (reordered), already counted missing
        self.expected = (seq + 1) & 0xFFFF
        if self.audio:
            self.reception.audio.append(now)
            self.reception.audio_lost.extend([now] * skipped)
            return
        if skipped:
            self.broken = True
        if marker:
            if not self.broken:
                self.reception.frames.append(now)
            self.broken = False


class CountingClient(Client):
    """A subscriber with one video and one audio slot that counts instead of decoding.

    Once connected, :meth:`count_at_the_socket` makes it count each RTP packet from its header
    as the datagram arrives (``ai.tap_protected_rtp``): no SRTP unprotect, parse or coroutine
    per packet, so hundreds of subscribers in this one process cost less than the workers they
    measure (through aiortc's receive path the ladder stopped at 1 -> 192 with this process's
    loop at 91 % of a core and the workers at 29 %). What arrives before that goes through
    aiortc to the same counters."""

    def __init__(self, name: str, reception: Reception) -> None:
        self.reception = reception  # (the parent's constructor installs the counters)
        self.counters: dict[str, FrameCounter] = {}
        super().__init__(name, video_slots=1, audio_slots=1, decode=False)

    def _count_packets_instead_of_decoding(self) -> None:
        for t in self.pc.getTransceivers():
            if t.direction == "recvonly":
                counter = self.counters[t.kind] = FrameCounter(self, t, self.reception)
                ai.intercept_receive(t.receiver, counter.start)

    def count_at_the_socket(self) -> None:
        """Count from each datagram's clear header, by the payload types of the SFU's answer
        (one audio slot, opus; one video slot, VP8); any other packet goes to aiortc."""
        sdp = self.pc.remoteDescription.sdp
        counters = {
            int(pt): self.counters["audio" if codec == "opus" else "video"]
            for pt, codec in re.findall(r"a=rtpmap:(\d+) (opus|VP8)/", sdp)
        }

        def tap(data: bytes) -> bool:
            counter = counters.get(data[1] & 0x7F)
            if counter is None:
                return False
            counter.count((data[2] << 8) | data[3], bool(data[1] & 0x80))
            return True

        ai.tap_protected_rtp(self.pc, tap)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Peer:
    """One participant: its current aiortc client, and when its video RTP last grew."""

    def __init__(self, room: str, name: str, publisher: bool) -> None:
        self.room = room
        self.name = name
        self.publisher = publisher
        self.client: Client | None = None
        self.packets = 0  # video RTP packets received by the current client
        self.last_growth: float | None = None
        self.growth_times: list[float] = []
        self.joins = 0
        self.joined_at = 0.0  # when the current client's answer came
        self.reception = Reception()

    def make_client(self) -> Client:
        if self.publisher:
            client = Client(self.name, luma=LUMA["a"], amplitude=8000)
            video = next(t for t in client.pc.getTransceivers() if t.kind == "video")
            video.sender.replaceTrack(NoisyVideo())
            return client
        return CountingClient(self.name, self.reception)

    def video_packets(self) -> int:
        client = self.client
        if client is None:
            return 0
        mids = {t.mid for t in client.pc.getTransceivers() if t.kind == "video" and t.direction == "recvonly"}
        return sum(n for mid, n in client.rtp_packets.items() if mid in mids)

    def sample(self, now: float) -> None:
        count = self.video_packets()
        if count > self.packets or (count and count < self.packets):
            self.growth_times.append(now)
            self.last_growth = now
        self.packets = count

    async def video_sent(self) -> tuple[int, int]:
        """(bytes, packets) of video the current client has sent (aiortc's outbound-rtp stats)."""
        assert self.client is not None
        sender = next(t.sender for t in self.client.pc.getTransceivers() if t.kind == "video")
        stats = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
        return sum(s.bytesSent for s in stats), sum(s.packetsSent for s in stats)

    async def join(self, plane: RemoteSfu) -> None:
        old, self.client = self.client, None
        if old is not None:
            await old.close()
        self.packets = 0
        client = self.make_client()
        handle = await plane.admit(self.room, self.name)
        await client.connect(handle)  # type: ignore[arg-type]
        if isinstance(client, CountingClient):
            client.count_at_the_socket()
        self.client = client
        self.joins += 1
        self.joined_at = time.monotonic()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


def longest_gap(times: list[float], start: float, end: float) -> float:
    points = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


async def wait_for(check: Callable[[], bool], timeout: float, what: str, workers: list[Proc]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for proc in workers:
            if proc.process is not None and proc.process.poll() is not None:
                raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.log()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s: {what}")
        await asyncio.sleep(0.05)


async def sampler(peers: list[Peer], stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = time.monotonic()
        for peer in peers:
            if not peer.publisher:
                peer.sample(now)
        await asyncio.sleep(0.02)


async def worker_cpu_pct(pids: list[int], window: float) -> tuple[list[float], float]:
    """Each process's CPU use over ``window`` seconds (% of one core), and the window measured."""
    cpu0, t0 = [proc_cpu_seconds(pid) for pid in pids], time.monotonic()
    await asyncio.sleep(window)
    cpu1, t1 = [proc_cpu_seconds(pid) for pid in pids], time.monotonic()
    return [100 * (b - a) / (t1 - t0) for a, b in zip(cpu0, cpu1, strict=True)], t1 - t0


async def settle(pids: list[int], workers: list[Proc]) -> None:
    """Wait (up to 20 s) until the workers are idle again (under 3 % of a core each over 1 s):
    the cascade's room has closed and its peers' packets have stopped."""
    deadline = time.monotonic() + 20
    while True:
        pcts, _ = await worker_cpu_pct(pids, 1.0)
        if max(pcts) < 3 or time.monotonic() > deadline:
            log(f"workers at {', '.join(f'{p:.1f}' for p in pcts)} % of a core")
            return
        dead = [proc.name for proc in workers if proc.process is None or proc.process.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited after the cascade")


@dataclass
class BroadcastRoom:
    """A 1 -> N room, on one worker or spanning both, every subscriber receiving video."""

    publisher: Peer
    subscribers: list[Peer]
    home: str  # the worker the room lives on (the publisher's)
    counts: dict[str, int]  # subscribers per worker
    cap: int | None
    pids: list[int]  # the workers' processes, in the order of ``workers``


@contextlib.asynccontextmanager
async def broadcast_room(
    redis_url: str,
    workers: dict[str, Proc],
    n_subscribers: int,
    clients: list[Redis],
    room: str = CASCADE,
    span: bool = True,
) -> AsyncIterator[BroadcastRoom]:
    """With ``span``, the web side's placement with a participant cap of N/2 + 1
    (``SpanPolicy(cap=...)``, what ``MAEUL_ROOM_SPAN_CAP`` sets) puts the publisher and half the
    subscribers on the room's home and the other half on the second worker, joined by a pipe;
    without, the whole room lives on its home (the default placement). Yielded once every
    subscriber receives video and 3 s more have passed; closed (on both workers, with its pipes)
    after, and the workers left idle again."""
    redis = connect(redis_url)
    clients.append(redis)
    policy = SpanPolicy(cap=n_subscribers // 2 + 1) if span else SpanPolicy()
    plane = RemoteSfu(redis, span=policy)
    await plane.start()
    publisher = Peer(room, "cpub", publisher=True)
    subscribers = [Peer(room, f"csub{i}", publisher=False) for i in range(n_subscribers)]
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler(subscribers, stop))
    everyone = [publisher, *subscribers]
    try:
        for peer in everyone:
            await peer.join(plane)
        where = {p.name: plane.participant(room, p.name).placement.worker for p in everyone}
        home = where["cpub"]
        counts = {w: sum(1 for p in subscribers if where[p.name] == w) for w in workers}
        log(f"{room} placed: home {home}, subscribers per worker {counts} (cap {policy.cap})")
        if span and min(counts.values()) == 0:
            raise RuntimeError(f"the room {room} did not span both workers: {counts}")
        if not span and counts[home] != n_subscribers:
            raise RuntimeError(f"the room {room} spanned workers without a span policy: {counts}")
        await wait_for(
            lambda: all(p.packets > 50 for p in subscribers),
            60 + n_subscribers / 2,
            f"every subscriber of the room {room} receives video",
            list(workers.values()),
        )
        log(f"every subscriber of {room} receives video; settling 3 s")
        await asyncio.sleep(3)
        pids = [proc.process.pid for proc in workers.values() if proc.process is not None]
        yield BroadcastRoom(publisher, subscribers, home, counts, policy.cap, pids)
    finally:
        stop.set()
        await asyncio.gather(sampling, return_exceptions=True)
        for peer in everyone:
            await peer.close()
        await plane.close_room(room)
        await plane.close()
        pids = [proc.process.pid for proc in workers.values() if proc.process is not None]
        await settle(pids, list(workers.values()))


async def room_cpu_pct(
    redis_url: str,
    workers: dict[str, Proc],
    n_subscribers: int,
    window: float,
    clients: list[Redis],
    span: bool,
) -> float:
    """The 1 -> N room's CPU per subscriber (% of a core): on one worker, or spanning both."""
    name = "cascade" if span else "single"
    async with broadcast_room(redis_url, workers, n_subscribers, clients, room=name, span=span) as room:
        packets0 = [p.video_packets() for p in room.subscribers]
        pcts, elapsed = await worker_cpu_pct(room.pids, window)
        pps = sorted(
            (p.video_packets() - b) / elapsed for p, b in zip(room.subscribers, packets0, strict=True)
        )
    # Both workers count in either case: the idle one's own loops are a small, fixed cost.
    total = sum(pcts)
    per_worker = " ".join(f"worker{w}_cpu_pct={pct:.1f}" for w, pct in zip(workers, pcts, strict=True))
    label = "cascade_cpu_per_subscriber_pct" if span else "single_worker_cpu_per_subscriber_pct"
    print(
        f"RESULT {label}={total / n_subscribers:.3f} {per_worker} home={room.home} "
        f"subscribers={n_subscribers} per_worker={room.counts} window_s={elapsed:.1f} "
        f"subscriber_video_pps_min={pps[0]:.0f} median={pps[len(pps) // 2]:.0f} "
        f"loadavg={os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return total / n_subscribers


async def cost_phase(
    redis_url: str, workers: dict[str, Proc], n_subscribers: int, window: float, clients: list[Redis]
) -> tuple[float, float]:
    """The same 1 -> N room on one worker, then spanning both: (single, cascade) CPU per
    subscriber, and ``cascade_vs_single_ratio``."""
    single = await room_cpu_pct(redis_url, workers, n_subscribers, window, clients, span=False)
    cascade = await room_cpu_pct(redis_url, workers, n_subscribers, window, clients, span=True)
    # (what spanning adds, in % of a core for the whole room: the far worker's ingest of the
    # piped publisher and its own loops, the home's pipe send; it does not grow with N)
    extra = (cascade - single) * n_subscribers
    print(
        f"RESULT cascade_vs_single_ratio={cascade / single:.2f} target=1.15 subscribers={n_subscribers} "
        f"extra_cpu_pct_of_a_core={extra:.1f}",
        flush=True,
    )
    return single, cascade


@dataclass
class LadderStep:
    """One step of the broadcast ladder, measured over its window."""

    n: int
    fps: list[float]  # each subscriber's complete frames a second
    gaps: list[float]  # each subscriber's longest audio gap (seconds), as this process saw it
    lost: list[int]  # each subscriber's audio packets missing
    worker_pcts: list[float]
    loop_pct: float  # this process's event loop (main thread), % of a core
    #: False: some subscriber never received video, so the step had no window
    started: bool = True

    @property
    def min_fps(self) -> float:
        return min(self.fps)

    @property
    def passed(self) -> bool:
        return self.min_fps >= MIN_FPS and not any(self.lost)

    @property
    def bound(self) -> str:
        """What ran out, if anything: a worker or this process's loop at 85 % of a core or more,
        or the machine (the workers and this loop together at 85 % of all its cores); ``setup``
        when the room never got going."""
        if not self.started:
            return "setup"
        if max(self.worker_pcts) >= 85:
            return "workers"
        if self.loop_pct >= 85:
            return "bench"
        cores = os.cpu_count() or 1
        return "machine" if sum(self.worker_pcts) + self.loop_pct >= 85 * cores else "neither"


async def ladder_step(
    redis_url: str, workers: dict[str, Proc], n: int, window: float, clients: list[Redis]
) -> LadderStep:
    try:
        return await _measure_step(redis_url, workers, n, window, clients)
    except TimeoutError as exc:  # past the machine's limit: a failed step, not a failed bench
        log(f"ladder 1 -> {n}: FAILED before its window: {exc}")
        return LadderStep(n, [0.0] * n, [window] * n, [0] * n, [], 0.0, started=False)


async def _measure_step(
    redis_url: str, workers: dict[str, Proc], n: int, window: float, clients: list[Redis]
) -> LadderStep:
    async with broadcast_room(redis_url, workers, n, clients, room=f"ladder{n}") as room:
        start, loop0 = time.monotonic(), time.thread_time()
        packets0 = [p.video_packets() for p in room.subscribers]
        pcts, elapsed = await worker_cpu_pct(room.pids, window)
        end = time.monotonic()
        loop_pct = 100 * (time.thread_time() - loop0) / (end - start)
        packets = zip(room.subscribers, packets0, strict=True)
        pps = sorted((p.video_packets() - before) / elapsed for p, before in packets)
    step = LadderStep(
        n,
        [sum(1 for t in p.reception.frames if start <= t <= end) / elapsed for p in room.subscribers],
        [longest_gap(p.reception.audio, start, end) for p in room.subscribers],
        [sum(1 for t in p.reception.audio_lost if start <= t <= end) for p in room.subscribers],
        pcts,
        loop_pct,
    )
    gaps = sorted(step.gaps)
    log(
        f"ladder 1 -> {n}: {'passed' if step.passed else 'FAILED'}; fps min {step.min_fps:.1f} median "
        f"{sorted(step.fps)[n // 2]:.1f}, below {MIN_FPS:.0f}: {sum(f < MIN_FPS for f in step.fps)}; "
        f"audio packets lost {sum(step.lost)} (at {sum(1 for x in step.lost if x)} subscribers); "
        f"longest audio gap as this process saw it {gaps[-1]:.2f} s (median {gaps[n // 2]:.2f}); workers "
        f"{', '.join(f'{x:.0f}' for x in pcts)} % of a core; this process's loop {loop_pct:.0f} %; "
        f"video {pps[n // 2]:.0f} packets/s per subscriber (median); "
        f"load {os.getloadavg()[0]:.1f}"
    )
    return step


async def broadcast_ladder(
    redis_url: str, workers: dict[str, Proc], steps: Sequence[int], window: float, clients: list[Redis]
) -> int:
    """``broadcast_subscribers_at_14fps``: the largest 1 -> N room spanning both workers in which
    every subscriber gets at least MIN_FPS complete frames a second and every audio packet, trying
    the sizes of ``steps`` in turn until one fails twice. Each step also says how busy this
    process's event loop was (its main thread's CPU): the subscribers live here, and on a 2-core
    machine they may run out of CPU before the workers do (``bound``)."""
    best = 0
    failed_at = "none"  # every step passed
    for n in steps:
        # A step that fails is tried once more: one hiccup of this process (a burst of packets
        # its loop read too late) is not the SFU's limit.
        step = await ladder_step(redis_url, workers, n, window, clients)
        if not step.passed:
            step = await ladder_step(redis_url, workers, n, window, clients)
        if not step.passed:
            failed_at = f"{n}:{step.bound}:min_fps={step.min_fps:.1f}:audio_lost={sum(step.lost)}"
            break
        best = n
    print(
        f"RESULT broadcast_subscribers_at_14fps={best} spanning_workers=2 min_fps={MIN_FPS:.0f} "
        f"audio=no_packet_lost failed_at={failed_at}",
        flush=True,
    )
    return best


async def run(
    n_subscribers: int, n_cost: int, window: float, tmp: Path, ladder: bool = True
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    redis_server = RedisServer()
    redis_server.start()
    env = sfu_worker_env(redis_server.url, tmp)
    workers = {w: Proc(f"sfu{w}", ["sfu", "--worker-id", w], env, tmp / f"sfu{w}.log") for w in ("1", "2")}
    clients: list[Redis] = []
    plane: RemoteSfu | None = None
    peers: list[Peer] = []
    stop = asyncio.Event()
    sampling: asyncio.Task[None] | None = None
    try:
        probe = connect(redis_server.url)
        clients.append(probe)
        for proc in workers.values():
            proc.start()
        for w, proc in workers.items():
            deadline = time.monotonic() + 30
            while not await probe.exists(worker_key(w)):
                if proc.process is not None and proc.process.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited at start:\n{proc.log()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{proc.name} did not register:\n{proc.log()}")
                await asyncio.sleep(0.1)
        log("redis-server and 2 SFU workers up")
        (
            results["single_worker_cpu_per_subscriber_pct"],
            results["cascade_cpu_per_subscriber_pct"],
        ) = await cost_phase(redis_server.url, workers, n_cost, window, clients)
        if ladder:
            results["broadcast_subscribers_at_14fps"] = await broadcast_ladder(
                redis_server.url, workers, LADDER, window, clients
            )
        plane_redis = connect(redis_server.url)
        clients.append(plane_redis)
        plane = RemoteSfu(plane_redis)
        await plane.start()

        publisher = Peer(BROADCAST, "pub", publisher=True)
        subscribers = [Peer(BROADCAST, f"sub{i}", publisher=False) for i in range(n_subscribers)]
        other_pub = Peer(OTHER, "opub", publisher=True)
        other_subs = [Peer(OTHER, f"osub{i}", publisher=False) for i in range(2)]
        peers = [publisher, *subscribers, other_pub, *other_subs]
        # The broadcast room is placed first, so the other room goes to the less-loaded worker.
        await publisher.join(plane)
        await other_pub.join(plane)
        for peer in [*subscribers, *other_subs]:
            await peer.join(plane)
        hosts = {
            room: plane.participant(room, name).placement.worker
            for room, name in ((BROADCAST, "pub"), (OTHER, "opub"))
        }
        log(f"placed: {hosts}")
        if hosts[BROADCAST] == hosts[OTHER]:
            raise RuntimeError(
                f"both rooms were placed on worker {hosts[BROADCAST]}; the bench needs one on each"
            )
        broadcast_worker = workers[hosts[BROADCAST]]
        watched = workers.values()
        sampling = asyncio.create_task(sampler(peers, stop))
        await wait_for(
            lambda: all(p.packets > 50 for p in peers if not p.publisher),
            60,
            "every subscriber receives video",
            list(watched),
        )
        log(f"all {n_subscribers + 2} subscribers receive video; settling 3 s")
        await asyncio.sleep(3)

        # The failover's room, as it runs before the kill.
        assert broadcast_worker.process is not None
        pid = broadcast_worker.process.pid
        [worker_pct], elapsed = await worker_cpu_pct([pid], 2.0)
        log(f"1 -> {n_subscribers} on worker {hosts[BROADCAST]}: {worker_pct:.1f} % of a core")

        # SIGKILL the broadcast worker; its peers join again as kiosks do.
        rejoins: list[asyncio.Task[None]] = []
        killed_at = 0.0

        def on_event(event: SfuEvent) -> None:
            if isinstance(event, ParticipantLeft) and event.room_id == BROADCAST and killed_at:
                peer = next(
                    (p for p in peers if p.room == BROADCAST and p.name == event.participant_id), None
                )
                if peer is not None:
                    assert plane is not None
                    rejoins.append(asyncio.create_task(rejoin(peer, plane)))

        async def rejoin(peer: Peer, plane: RemoteSfu) -> None:
            for _ in range(40):
                try:
                    await peer.join(plane)
                    return
                except Exception as exc:  # noqa: BLE001 - `unavailable` while the death is noticed: retry as a page does
                    log(f"{peer.name}: join refused ({type(exc).__name__}: {exc}); retrying")
                    await asyncio.sleep(0.5)

        unsubscribe = plane.subscribe(on_event)
        gap_from = time.monotonic() - 2
        killed_at = time.monotonic()
        broadcast_worker.process.send_signal(signal.SIGKILL)
        broadcast_worker.process.wait(5)
        log(f"SIGKILLed worker {hosts[BROADCAST]} (pid {pid})")
        back: dict[str, float] = {}

        def all_back() -> bool:
            for p in subscribers:
                if (
                    p.name not in back
                    and p.joins >= 2
                    and p.packets > 10
                    and p.last_growth is not None
                    and p.last_growth > p.joined_at
                ):
                    back[p.name] = p.last_growth - killed_at
            return len(back) == len(subscribers)

        await wait_for(
            all_back,
            90,
            "every subscriber of the killed worker's room receives again",
            [workers[hosts[OTHER]]],
        )
        done_at = time.monotonic()
        moved = plane.participant(BROADCAST, "pub").placement.worker
        failover = max(back.values())
        results["failover_seconds"] = failover
        print(
            f"RESULT failover_seconds={failover:.2f} participants={len(subscribers) + 1} "
            f"median_s={sorted(back.values())[len(back) // 2]:.2f} moved_to_worker={moved} "
            f"loadavg={os.getloadavg()[0]:.1f}",
            flush=True,
        )
        gap = max(longest_gap(p.growth_times, gap_from, done_at) for p in other_subs)
        results["other_room_max_gap_s"] = gap
        print(
            f"RESULT other_room_max_gap_s={gap:.2f} over_s={done_at - gap_from:.1f} "
            f"subscribers={len(other_subs)} worker={hosts[OTHER]}",
            flush=True,
        )
        unsubscribe()  # closing the plane below reports everyone left: no more rejoins
        await asyncio.gather(*rejoins, return_exceptions=True)
    finally:
        stop.set()
        if sampling is not None:
            await asyncio.gather(sampling, return_exceptions=True)
        for peer in peers:
            await peer.close()
        if plane is not None:
            await plane.close()
        for proc in workers.values():
            proc.stop()
        for redis in clients:
            await redis.aclose()
        redis_server.stop()
        redis_server.remove()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 s windows instead of 30 s")
    ap.add_argument(
        "--subscribers", type=int, help="subscribers in the failover's room (default 16 quick, 48 full)"
    )
    ap.add_argument(
        "--cost-subscribers",
        type=int,
        default=300,
        help="subscribers in the room whose CPU is measured on one worker and spanning two (default "
        "300, the county's briefing)",
    )
    ap.add_argument(
        "--no-ladder",
        action="store_true",
        help="skip the broadcast ladder (broadcast_subscribers_at_14fps: several minutes)",
    )
    args = ap.parse_args()
    n = args.subscribers or (16 if args.quick else 48)
    window = 10.0 if args.quick else 30.0
    log(
        f"scale bench ({'quick' if args.quick else 'full'}): {os.cpu_count()} cores, "
        f"cost at 1 -> {args.cost_subscribers}, failover at 1 -> {n}, window {window:.0f} s"
    )
    with tempfile.TemporaryDirectory(prefix="maeul-scale-") as tmp:
        asyncio.run(run(n, args.cost_subscribers, window, Path(tmp), ladder=not args.no_ladder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
