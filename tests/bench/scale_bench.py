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

* ``RESULT single_worker_cpu_per_subscriber_pct=``: one publisher -> N subscribers (16 with
  ``--quick``) in one room on one worker; the CPU time of that worker process (utime+stime from
  /proc/<pid>/stat, all its threads) over a measuring window, as % of one core, divided by N (the
  publisher's ingest included, so it is a little above the marginal cost).
* ``RESULT failover_seconds=``: a second room (1 -> 2) lives on the other worker. The broadcast
  room's worker is SIGKILLed; when the control plane finds it dead it reports each participant
  left (``transport-failed``), and each peer joins again as a kiosk does (a new peer connection;
  the room is placed on the surviving worker). The figure is the worst, over the room's
  subscribers, of the seconds from the kill until the publisher's video arrives again.
* ``RESULT other_room_max_gap_s=``: meanwhile, the longest time without video RTP at a subscriber
  of the room on the surviving worker (from 2 s before the kill until every peer is back).

* ``RESULT cascade_cpu_per_subscriber_pct=``: first, before the rooms above, the same 1 -> N room
  spanning both workers (issue 17 item 4; docs/scale.md "Cascade"): the web side's placement with
  a participant cap (``SpanPolicy(cap=N // 2 + 1)``, as ``MAEUL_ROOM_SPAN_CAP`` sets it) puts the
  publisher and half the subscribers on the room's home and the rest on the other worker, joined
  by a pipe. The CPU time of both worker processes over the same window, divided by N. Then
  ``RESULT cascade_vs_single_ratio=`` (the issue's target: at most 1.15).

Not printed: ``broadcast_subscribers_at_14fps``. The subscribers here count packets and do not
decode, and on this 2-core machine the peers in this process run out of CPU before two workers
do, so the largest room that keeps 14 fps would measure the bench, not the SFU. See docs/scale.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from kiosk.media import PacedVideo  # noqa: E402
from server.cluster.registry import SpanPolicy, connect, worker_key  # noqa: E402
from server.cluster.remote import RemoteSfu  # noqa: E402
from server.sfu import ParticipantLeft, SfuEvent  # noqa: E402
from tests.bench.sfu.clip import FPS, HEIGHT, WIDTH  # noqa: E402
from tests.bench.sfu.common import proc_cpu_seconds  # noqa: E402
from tests.cluster.parts import RedisServer, sfu_worker_env  # noqa: E402
from tests.cluster.test_cluster_media import Proc  # noqa: E402
from tests.sfu.sfu_testkit import LUMA, Client  # noqa: E402

BROADCAST = "broadcast"
OTHER = "other"
CASCADE = "cascade"


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

    def make_client(self) -> Client:
        if self.publisher:
            client = Client(self.name, luma=LUMA["a"], amplitude=8000)
            video = next(t for t in client.pc.getTransceivers() if t.kind == "video")
            video.sender.replaceTrack(NoisyVideo())
            return client
        return Client(self.name, video_slots=1, audio_slots=1, decode=False)

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


async def cascade_phase(
    redis_url: str, workers: dict[str, Proc], n_subscribers: int, window: float, clients: list[Redis]
) -> float:
    """The 1 -> N room spanning both workers; returns its CPU per subscriber (% of a core)."""
    redis = connect(redis_url)
    clients.append(redis)
    span = SpanPolicy(cap=n_subscribers // 2 + 1)
    plane = RemoteSfu(redis, span=span)
    await plane.start()
    publisher = Peer(CASCADE, "cpub", publisher=True)
    subscribers = [Peer(CASCADE, f"csub{i}", publisher=False) for i in range(n_subscribers)]
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler(subscribers, stop))
    everyone = [publisher, *subscribers]
    try:
        for peer in everyone:
            await peer.join(plane)
        where = {p.name: plane.participant(CASCADE, p.name).placement.worker for p in everyone}
        home = where["cpub"]
        counts = {w: sum(1 for p in subscribers if where[p.name] == w) for w in workers}
        log(f"cascade placed: home {home}, subscribers per worker {counts} (cap {span.cap})")
        if min(counts.values()) == 0:
            raise RuntimeError(f"the cascade room did not span both workers: {counts}")
        await wait_for(
            lambda: all(p.packets > 50 for p in subscribers),
            60,
            "every subscriber of the spanning room receives video",
            list(workers.values()),
        )
        log("every subscriber of the spanning room receives video; settling 3 s")
        await asyncio.sleep(3)
        pids = [proc.process.pid for proc in workers.values() if proc.process is not None]
        packets0 = [p.video_packets() for p in subscribers]
        pcts, elapsed = await worker_cpu_pct(pids, window)
        pps = [(p.video_packets() - b) / elapsed for p, b in zip(subscribers, packets0, strict=True)]
        total = sum(pcts)
        per_worker = " ".join(f"worker{w}_cpu_pct={pct:.1f}" for w, pct in zip(workers, pcts, strict=True))
        print(
            f"RESULT cascade_cpu_per_subscriber_pct={total / n_subscribers:.2f} {per_worker} "
            f"home={home} subscribers={n_subscribers} per_worker={counts} window_s={elapsed:.1f} "
            f"min_subscriber_video_pps={min(pps):.0f} loadavg={os.getloadavg()[0]:.1f}",
            flush=True,
        )
        return total / n_subscribers
    finally:
        stop.set()
        await asyncio.gather(sampling, return_exceptions=True)
        for peer in everyone:
            await peer.close()
        await plane.close_room(CASCADE)  # (on both workers, with its pipes)
        await plane.close()
        pids = [proc.process.pid for proc in workers.values() if proc.process is not None]
        await settle(pids, list(workers.values()))


async def run(n_subscribers: int, window: float, tmp: Path) -> dict[str, Any]:
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
        results["cascade_cpu_per_subscriber_pct"] = await cascade_phase(
            redis_server.url, workers, n_subscribers, window, clients
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

        # 1. The broadcast worker's CPU per subscriber.
        assert broadcast_worker.process is not None
        pid = broadcast_worker.process.pid
        sent0 = await publisher.video_sent()
        packets0 = [p.video_packets() for p in subscribers]
        [worker_pct], elapsed = await worker_cpu_pct([pid], window)
        sent1 = await publisher.video_sent()
        kbps = (sent1[0] - sent0[0]) * 8 / 1000 / elapsed
        sent_pps = (sent1[1] - sent0[1]) / elapsed
        pps = [(p.video_packets() - b) / elapsed for p, b in zip(subscribers, packets0, strict=True)]
        load = os.getloadavg()[0]
        single = results["single_worker_cpu_per_subscriber_pct"] = worker_pct / n_subscribers
        print(
            f"RESULT single_worker_cpu_per_subscriber_pct={single:.2f} "
            f"worker_cpu_pct={worker_pct:.1f} subscribers={n_subscribers} window_s={elapsed:.1f} "
            f"publisher_video_kbps={kbps:.0f} publisher_video_pps={sent_pps:.0f} "
            f"min_subscriber_video_pps={min(pps):.0f} loadavg={load:.1f}",
            flush=True,
        )
        cascade = results["cascade_cpu_per_subscriber_pct"]
        # (what spanning adds, in % of a core for the whole room: the far worker's ingest of the
        # piped publisher and its own loops, the home's pipe send; it does not grow with N)
        extra = (cascade - single) * n_subscribers
        print(
            f"RESULT cascade_vs_single_ratio={cascade / single:.2f} target=1.15 "
            f"extra_cpu_pct_of_a_core={extra:.1f}",
            flush=True,
        )

        # 2. SIGKILL the broadcast worker; its peers join again as kiosks do.
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
    ap.add_argument("--quick", action="store_true", help="16 subscribers, a 10 s window (about a minute)")
    ap.add_argument(
        "--subscribers", type=int, help="subscribers in the broadcast room (default 16 quick, 48 full)"
    )
    args = ap.parse_args()
    n = args.subscribers or (16 if args.quick else 48)
    window = 10.0 if args.quick else 30.0
    log(
        f"scale bench ({'quick' if args.quick else 'full'}): {os.cpu_count()} cores, "
        f"1 -> {n}, window {window:.0f} s"
    )
    with tempfile.TemporaryDirectory(prefix="maeul-scale-") as tmp:
        asyncio.run(run(n, window, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
