"""The scale-out deployment with real parts, all started by the test in the loopback namespace:
PostgreSQL, redis-server, two ``run.py web`` processes behind nginx and two ``run.py sfu`` workers.
Four headless kiosks (the real kiosk program: socket.io through nginx, aiortc media) sit in two
rooms; the first room also has a Chromium kiosk page (its own ``getStats()``: decoded frames).
Each room is placed on its own worker, and every kiosk decodes its neighbours' video.

Then the worker of the first room is SIGKILLed (or stopped with SIGTERM, which first drains it:
its meeting goes on for the drain's length): its kiosks are told their media is gone, join again,
and the room is placed on the surviving worker, while the second room's media goes on. The
seconds from the signal (or the drain's end) to media flowing again are printed
(``RESULT failover_seconds=``; issue 17's target is 5 s, not asserted: the machine is shared).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio
from sqlalchemy import select

from kiosk.headless import HeadlessKiosk
from kiosk.media import open_source
from rtc import aiortc_internals as ai
from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import close_engine, create_engine, make_sessionmaker, transaction
from server.kiosks.models import Kiosk
from server.rooms import service as rooms
from tests.cluster.conftest import NginxFactory
from tests.cluster.parts import Proc, RedisServer
from tests.conftest import _pg_execute
from tests.lab.browser_hall import BrowserHall
from tests.petitions.live import LiveServer, free_port, prepare
from tests.sfu.sfu_testkit import LOOPBACK, LUMA, Client

pytestmark = [pytest.mark.network, pytest.mark.e2e]

#: The workers' drain on SIGTERM (MAEUL_SFU_DRAIN_SECONDS): long enough to see the meeting go on.
DRAIN_S = 5


def in_thread(work: Callable[[], Any]) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


@dataclass
class Deployment:
    server: LiveServer
    redis: RedisServer
    webs: list[Proc]
    workers: dict[str, Proc]
    url: str  # nginx
    rooms: tuple[int, int]
    tokens: list[str]  # kiosks 0, 1 and 4 in rooms[0]; 2, 3 in rooms[1]


async def _rooms(database_url: str) -> tuple[tuple[int, int], list[int]]:
    engine = create_engine(database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            admin = await session.scalar(select(Account).where(Account.username == "admin"))
            assert admin is not None
            kiosks = list(
                (
                    await session.scalars(
                        select(Kiosk.id).where(Kiosk.label != "사당리 마을회관").order_by(Kiosk.id)
                    )
                ).all()
            )
            principal = Principal(role=Role.ADMIN, id=admin.id, display_name="관리자")
            first = await rooms.create_room(
                session, principal, "북부 회의", rooms.Invitees(kiosk_ids=(*kiosks[:2], kiosks[4]))
            )
            second = await rooms.create_room(
                session, principal, "남부 회의", rooms.Invitees(kiosk_ids=tuple(kiosks[2:4]))
            )
            return (first.id, second.id), kiosks
    finally:
        await close_engine(engine)


async def _wait(check: Callable[[], Any], timeout: float, what: str, *procs: Proc) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        for proc in procs:
            if proc.process is not None and proc.process.poll() is not None:
                raise AssertionError(f"{proc.name} exited while waiting for {what}:\n{proc.log()}")
        assert time.monotonic() < deadline, f"timed out: {what}\n" + "\n".join(p.log() for p in procs)
        await asyncio.sleep(0.1)


@pytest.fixture
async def deployment(
    tmp_path: Path,
    pg_base_url: str,
    redis_server: RedisServer,
    nginx_factory: NginxFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Deployment]:
    """The deployment; a test may add settings for every process with
    ``@pytest.mark.parametrize("deployment", [{...}], indirect=True)``."""
    extra_env: dict[str, str] = dict(getattr(request, "param", {}))
    name = f"cluster_{os.getpid()}_{time.monotonic_ns()}"
    await _pg_execute(pg_base_url, f'CREATE DATABASE "{name}"')
    database_url = f"{pg_base_url}/{name}"
    server = in_thread(lambda: prepare(tmp_path, database_url=database_url, extra_kiosks=4))
    room_ids, _kiosks = await _rooms(database_url)
    env = (
        server.env
        | {
            "MAEUL_REDIS_URL": redis_server.url,
            "MAEUL_LOG_LEVEL": "INFO",
            "MAEUL_SFU_DRAIN_SECONDS": str(DRAIN_S),
        }
        | extra_env
    )
    webs = [
        Proc(f"web{i}", ["web"], env | {"MAEUL_PORT": str(free_port())}, tmp_path / f"web{i}.log")
        for i in (1, 2)
    ]
    workers = {
        w: Proc(f"sfu{w}", ["sfu", "--worker-id", w], env, tmp_path / f"sfu{w}.log") for w in ("1", "2")
    }
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        for proc in [*workers.values(), *webs]:
            proc.start()
        for w, proc in workers.items():

            async def registered(w: str = w) -> bool:
                return bool(await redis.exists(f"maeul:worker:{w}"))

            await _wait(registered, 30, f"worker {w} registered", proc)
        proxy = nginx_factory([int(p.env["MAEUL_PORT"]) for p in webs])

        for proc in webs:

            async def healthy(proc: Proc = proc) -> bool:
                import aiohttp

                try:
                    async with aiohttp.ClientSession() as http:
                        async with http.get(f"http://127.0.0.1:{proc.env['MAEUL_PORT']}/healthz") as r:
                            return r.status == 200
                except aiohttp.ClientError:
                    return False

            await _wait(healthy, 60, f"{proc.name} healthy", proc)
        tokens = [server.seeded.kiosk_token, *server.seeded.extra_kiosk_tokens]
        yield Deployment(server, redis_server, webs, workers, proxy.url, room_ids, tokens)
    finally:
        for proc in [*webs, *workers.values()]:
            proc.stop()
        await redis.aclose()
        await _pg_execute(pg_base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: ``start_kiosks(tokens)``, the fixture below.
StartKiosks = Callable[[Sequence[str]], list[HeadlessKiosk]]


@pytest.fixture
async def start_kiosks(
    deployment: Deployment,
) -> AsyncIterator[Callable[[Sequence[str]], list[HeadlessKiosk]]]:
    """``start_kiosks(tokens)``: headless kiosks (the real kiosk program, a test source) running with
    those tokens through the deployment's nginx, stopped after the test."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start(tokens: Sequence[str]) -> list[HeadlessKiosk]:
        kiosks = [
            HeadlessKiosk(
                deployment.url,
                token,
                lambda: open_source("testsrc"),
                host_addresses=["127.0.0.1"],
                poll_interval=0.2,
            )
            for token in tokens
        ]
        tasks.extend(asyncio.create_task(k.run(stop)) for k in kiosks)
        return kiosks

    yield start
    stop.set()
    await asyncio.gather(*(asyncio.wait_for(t, 30) for t in tasks), return_exceptions=True)


@contextlib.asynccontextmanager
async def scene(
    d: Deployment, start_kiosks: StartKiosks, count: int
) -> AsyncIterator[tuple[list[HeadlessKiosk], BrowserHall, aioredis.Redis, list[Proc]]]:
    """``count`` headless kiosks, and the Chromium kiosk page of the first room (not started yet;
    through nginx like the kiosks: its socket's ``?room=`` pins it to their web process), a Redis
    client, and the processes whose logs a failed wait shows. The page and the client are closed
    after."""
    kiosks = start_kiosks(d.tokens[:count])
    hall = BrowserHall(d.url, d.tokens[4], d.rooms[0])
    redis = aioredis.Redis.from_url(d.redis.url)
    try:
        yield kiosks, hall, redis, [*d.webs, *d.workers.values()]
    finally:
        await hall.close()
        await redis.aclose()


def frames(kiosk: HeadlessKiosk) -> int:
    return sum(kiosk.stats.frames_received.values())


def page_decodes_again(hall: BrowserHall, since: float) -> float | None:
    """When the page decoded video on a new peer connection after ``since``: its counters start
    again from zero (a drop), then grow. (Frames still buffered or sampled late from the old
    connection do not count.)"""
    samples = hall.samples.video_frames
    for i in range(1, len(samples)):
        at, count = samples[i]
        if at > since and count < samples[i - 1][1]:
            return next((t for t, n in samples[i + 1 :] if n > count), None)
    return None


_JOINED = re.compile(r"(?:joined room|took over room participant) \[(?P<fields>[^\]]*)\]")


def room_joins(
    webs: Sequence[Proc], room_id: int, since: dict[str, int] | None = None
) -> dict[str, set[str]]:
    """The participants each web process let into ``room_id`` (its log's `joined room` lines and
    those it took over from a dead web process, from byte ``since[name]`` on), by process name:
    which web process holds the room's hub state."""
    found: dict[str, set[str]] = {}
    for web in webs:
        with open(web.log_path, "rb") as log:
            log.seek((since or {}).get(web.name, 0))
            text = log.read().decode(errors="replace")
        for match in _JOINED.finditer(text):
            fields = dict(f.split("=", 1) for f in match["fields"].split() if "=" in f)
            if fields.get("room_id") == str(room_id):
                found.setdefault(web.name, set()).add(fields["participant"])
    return found


async def _placement(redis: aioredis.Redis, room_id: int) -> str | None:
    worker = await redis.hget(f"maeul:room:{room_id}", "worker")
    return worker.decode() if isinstance(worker, bytes) else worker


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_two_rooms_on_two_workers_and_a_stopped_worker_moves_its_room(
    deployment: Deployment, start_kiosks: StartKiosks, how: signal.Signals
) -> None:
    d = deployment
    async with scene(d, start_kiosks, 4) as (kiosks, hall, redis, procs):
        await hall.start()

        async def all_receive(minimum: int = 30) -> bool:
            return all(frames(k) > minimum for k in kiosks) and len(hall.samples.video) > 5

        await _wait(all_receive, 90, "every kiosk decodes its neighbour's video", *procs)
        first, second = (await _placement(redis, d.rooms[0]), await _placement(redis, d.rooms[1]))
        assert {first, second} == {"1", "2"}, (first, second)  # one room on each worker
        assert first is not None and second is not None

        # SIGKILL (or SIGTERM) the first room's worker.
        stopped = d.workers[first]
        drain_end = None
        if how is signal.SIGTERM:
            drain_end = await _drains(redis, stopped, kiosks[:2], hall, DRAIN_S)
        before = [frames(k) for k in kiosks]
        # After SIGTERM, from the drain's end: the pages are told to move then, before the worker
        # has closed its rooms and exited.
        killed_at = time.monotonic() if drain_end is None else drain_end
        stopped.stop(how)
        if how is signal.SIGTERM:
            assert stopped.process is not None
            assert stopped.process.returncode == 0, stopped.log()
        back: dict[int | str, float] = {}

        async def moved_back() -> bool:
            for i in (0, 1):
                if (
                    i not in back
                    and kiosks[i].stats.meetings_joined >= 2
                    and frames(kiosks[i]) > before[i] + 10
                ):
                    back[i] = time.monotonic() - killed_at
            if "page" not in back and (at := page_decodes_again(hall, killed_at)) is not None:
                back["page"] = at - killed_at
            return len(back) == 3

        others = [d.webs[0], d.webs[1], d.workers[second]]
        await _wait(moved_back, 60, "the killed worker's kiosks get media again", *others)
        assert await _placement(redis, d.rooms[0]) == second  # placed again, on the live worker
        # Each room's page and kiosks, rejoins included, were all let in by one web process.
        joins = [room_joins(d.webs, room) for room in d.rooms]
        assert [len(j) for j in joins] == [1, 1], joins
        assert [len(p) for p in joins[0].values()] == [3], joins  # two kiosks and the page
        # The other room's kiosks never rejoined and kept receiving.
        assert [kiosks[i].stats.meetings_joined for i in (2, 3)] == [1, 1]
        assert all(frames(kiosks[i]) > before[i] + 10 for i in (2, 3))
        print(
            f"RESULT failover_seconds={max(back.values()):.2f} signal={how.name} "
            f"headless={[round(back[i], 2) for i in (0, 1)]} chromium={back['page']:.2f}"
        )


@pytest.mark.parametrize("deployment", [{"MAEUL_ROOM_SPAN_CAP": "2"}], indirect=True, ids=["span-cap-2"])
async def test_a_chromium_page_and_kiosks_in_a_room_spanning_two_workers(
    deployment: Deployment, start_kiosks: StartKiosks
) -> None:
    """Cascade with real parts and a browser: with ``MAEUL_ROOM_SPAN_CAP=2`` the first room's two
    headless kiosks fill its home worker, and the Chromium kiosk page's join grows the span to the
    other worker (the web process opens the pipe). The page decodes the kiosks' video from across
    the pipe, and each kiosk decodes both its neighbours, the page's video among them."""
    d = deployment
    async with scene(d, start_kiosks, 2) as (kiosks, hall, redis, procs):

        async def kiosks_receive() -> bool:
            return all(frames(k) > 30 for k in kiosks)

        await _wait(kiosks_receive, 90, "the two kiosks decode each other", *procs)
        await hall.start()

        def decoding(kiosk: HeadlessKiosk) -> int:
            """The kiosk's receive slots (video and audio) that decode: 4 = both neighbours' video
            and sound."""
            return sum(n > 10 for n in kiosk.stats.frames_received.values())

        async def all_receive() -> bool:
            return all(decoding(k) == 4 for k in kiosks) and len(hall.samples.video) > 10

        await _wait(all_receive, 90, "the page and the kiosks decode each other across the pipe", *procs)
        members = await redis.hgetall(f"maeul:member:{d.rooms[0]}")
        workers = {v.decode().rsplit(":", 1)[0] for v in members.values()}
        assert workers == {"1", "2"}, members  # the room spans both workers
        span = await redis.hget(f"maeul:room:{d.rooms[0]}", "span")
        assert span, "the room's placement lists no span"

        # The media keeps coming over the pipe (no stall after the first frames).
        def page_frames() -> int:
            return hall.samples.video_frames[-1][1] if hall.samples.video_frames else 0

        before = [frames(k) for k in kiosks], page_frames()
        await asyncio.sleep(3)
        assert all(frames(k) > b + 20 for k, b in zip(kiosks, before[0], strict=True))
        assert page_frames() > before[1] + 20, (before[1], hall.samples.video_frames[-3:])


async def _drains(
    redis: aioredis.Redis, worker: Proc, kiosks: Sequence[HeadlessKiosk], hall: BrowserHall, drain_s: float
) -> float:
    """SIGTERM ``worker`` and check its drain: its record says so at once, and for the drain's
    length its room's kiosks and page keep decoding on the same peer connections (no rejoin, no
    counter starting again); then it exits by itself. Returns when the drain ended (monotonic)."""
    assert worker.process is not None
    before = [frames(k) for k in kiosks]
    signalled = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)

    async def draining() -> bool:
        raw = await redis.get(f"maeul:worker:{worker.name.removeprefix('sfu')}")
        return raw is not None and json.loads(raw).get("draining") is True

    await _wait(draining, 2, "the worker's record says draining")
    await asyncio.sleep(max(0.0, signalled + drain_s - 1.5 - time.monotonic()))
    assert worker.process.poll() is None, "the worker stopped before its drain ended\n" + worker.log()
    assert [k.stats.meetings_joined for k in kiosks] == [1] * len(kiosks)
    assert all(frames(k) > b + 10 for k, b in zip(kiosks, before, strict=True)), (before, kiosks)
    during = [n for at, n in hall.samples.video_frames if at > signalled]
    assert during and during == sorted(during) and during[-1] > during[0], during  # no new connection
    await asyncio.to_thread(worker.process.wait, drain_s + 15)
    return signalled + drain_s


async def _offer_sdp() -> tuple[Client, str]:
    client = Client("x", luma=LUMA["a"], amplitude=8000, video_slots=1, audio_slots=1)
    offer = await client.pc.createOffer()
    ai.gather_on(client.pc, LOOPBACK)
    await client.pc.setLocalDescription(offer)
    return client, client.pc.localDescription.sdp


async def _join_until(
    sock: socketio.AsyncClient, room_id: int, within: float
) -> tuple[dict[str, Any], list[str]]:
    """Join, retrying refusals as the pages do; the ack that let us in, and the codes refused."""
    refused: list[str] = []
    deadline = time.monotonic() + within
    while True:
        ack = await sock.call("join", {"room_id": room_id}, timeout=20)
        if "error" not in ack:
            return ack, refused
        refused.append(ack["error"]["code"])
        assert time.monotonic() < deadline, f"join kept failing: {refused}"
        await asyncio.sleep(0.5)


async def test_a_frozen_worker_and_redis_away_get_clear_errors_then_work(deployment: Deployment) -> None:
    d = deployment
    redis = aioredis.Redis.from_url(d.redis.url)
    sock = socketio.AsyncClient(reconnection=False)
    other = socketio.AsyncClient(reconnection=False)
    clients: list[Client] = []
    frozen: Proc | None = None
    try:
        await sock.connect(d.url, auth={"token": d.tokens[0]}, transports=["websocket"], wait_timeout=10)
        ack, _ = await _join_until(sock, d.rooms[0], 10)
        placed = await _placement(redis, d.rooms[0])
        assert placed is not None
        # The room's worker freezes (SIGSTOP) in the middle of the offer: the offer is refused
        # with `unavailable` once the wait runs out, not left hanging.
        frozen = d.workers[placed]
        assert frozen.process is not None
        frozen.process.send_signal(signal.SIGSTOP)
        client, sdp = await _offer_sdp()
        clients.append(client)
        asked = time.monotonic()
        answer = await sock.call("offer", {"sdp": sdp, "type": "offer"}, timeout=40)
        assert answer.get("error", {}).get("code") == "unavailable", answer
        print(f"offer refused after {time.monotonic() - asked:.1f} s")
        # Joining again (as the page does) is refused while the worker still counts as alive, then
        # goes to the other worker once its registration has expired.
        # (Its participant may be gone already: the worker counted as dead, and the page got `left`.)
        assert "left" in await sock.call("leave", {}, timeout=10)
        ack, refused = await _join_until(sock, d.rooms[0], 40)
        assert set(refused) <= {"unavailable"}, refused
        moved = await _placement(redis, d.rooms[0])
        assert moved is not None and moved != placed
        client, sdp = await _offer_sdp()
        clients.append(client)
        answer = await sock.call("offer", {"sdp": sdp, "type": "offer"}, timeout=20)
        assert answer.get("type") == "answer", answer
        # The frozen worker comes back: it finds the room placed elsewhere and closes its copy.
        frozen.process.send_signal(signal.SIGCONT)

        async def stale_room_closed() -> bool:
            raw = await redis.get(f"maeul:worker:{placed}")
            return raw is not None and json.loads(raw)["rooms"] == 0

        await _wait(stale_room_closed, 20, "the thawed worker closes its stale room", frozen)
        assert await _placement(redis, d.rooms[0]) == moved

        # Redis goes away: a join is refused with `unavailable` (the database still answers);
        # when Redis is back, empty, joins work again with nothing restarted.
        await other.connect(d.url, auth={"token": d.tokens[2]}, transports=["websocket"], wait_timeout=10)
        d.redis.kill()
        refusal = await other.call("join", {"room_id": d.rooms[1]}, timeout=30)
        assert refusal.get("error", {}).get("code") == "unavailable", refusal
        d.redis.start()
        ack, refused = await _join_until(other, d.rooms[1], 30)
        assert set(refused) <= {"unavailable"}, refused
        client, sdp = await _offer_sdp()
        clients.append(client)
        answer = await other.call("offer", {"sdp": sdp, "type": "offer"}, timeout=20)
        assert answer.get("type") == "answer", answer
        for proc in [*d.webs, *d.workers.values()]:
            assert proc.process is not None and proc.process.poll() is None, proc.log()
    finally:
        if frozen is not None and frozen.process is not None:
            frozen.process.send_signal(signal.SIGCONT)
        for client in clients:
            await client.close()
        for s in (sock, other):
            if s.connected:
                await s.disconnect()
        await redis.aclose()


async def test_a_killed_web_process_costs_no_media(deployment: Deployment, start_kiosks: StartKiosks) -> None:
    """SIGKILL of a web process: media carries on, because the workers hold it. The Chromium kiosk
    page and the headless kiosks whose sockets it held come back through nginx on the other web
    process and resume there: it takes their participants over with their resume tokens
    (docs/scale.md "Handover"), on the same peer connections. Nobody joins again, and nobody
    goes a second without video."""
    d = deployment
    async with scene(d, start_kiosks, 4) as (kiosks, hall, _redis, procs):
        await hall.start()

        async def all_receive() -> bool:
            return all(frames(k) > 30 for k in kiosks) and len(hall.samples.video) > 5

        await _wait(all_receive, 90, "every kiosk and the page decode video", *procs)
        # The web process that holds the page's room (its two kiosks and the page) goes.
        ((pinned, first_room),) = room_joins(d.webs, d.rooms[0]).items()
        assert len(first_room) == 3, first_room
        victim = next(p for p in d.webs if p.name == pinned)
        survivor = next(p for p in d.webs if p is not victim)
        since = {survivor.name: survivor.log_path.stat().st_size}
        joined = [k.stats.meetings_joined for k in kiosks]
        resumes = [k.stats.resumes for k in kiosks]
        drops = [k.stats.drops for k in kiosks]
        growth: list[list[float]] = [[] for _ in kiosks]  # when each kiosk's decoded frames grew
        sampling = True

        async def sample() -> None:
            last = [frames(k) for k in kiosks]
            while sampling:
                await asyncio.sleep(0.05)
                for i, k in enumerate(kiosks):
                    if (now := frames(k)) > last[i]:
                        growth[i].append(time.monotonic())
                        last[i] = now

        sampled_from = time.monotonic()
        sampler = asyncio.create_task(sample())
        await asyncio.sleep(1)  # (the gaps are measured from a second before the kill)
        killed_at = time.monotonic()
        victim.stop(signal.SIGKILL)
        resumed_at: dict[str, float] = {}

        async def resumed() -> bool:
            for i in (0, 1):  # the page's room's kiosks were on the victim
                if str(i) not in resumed_at and kiosks[i].stats.resumes > resumes[i]:
                    resumed_at[str(i)] = time.monotonic() - killed_at
            # the page too: the survivor took over all three of the room
            if "room" not in resumed_at and room_joins([survivor], d.rooms[0], since) == {
                survivor.name: first_room
            }:
                resumed_at["room"] = time.monotonic() - killed_at
            # (the sockets on the survivor never drop; give every kiosk time to show a gap)
            return len(resumed_at) == 3 and time.monotonic() - killed_at > 8

        try:
            await _wait(
                resumed, 60, "the page and the kiosks resume on the survivor", survivor, *d.workers.values()
            )
        finally:
            sampling = False
            await sampler
        end = time.monotonic()
        # All three of the room were taken over by the survivor; nobody started over.
        assert room_joins([survivor], d.rooms[0], since) == {survivor.name: first_room}
        assert [k.stats.meetings_joined for k in kiosks] == joined, "a kiosk started its meeting over"
        assert [k.stats.drops for k in kiosks] == drops
        assert page_decodes_again(hall, killed_at) is None, "the page's video counters started again"
        gaps = [max(b - a for a, b in itertools.pairwise([sampled_from, *g, end])) for g in growth]
        assert max(gaps) < 1.0, f"video stopped for {max(gaps):.2f} s at a kiosk (gaps {gaps})"
        page = [t for t in hall.samples.video if t >= sampled_from]
        page_gap = max(b - a for a, b in itertools.pairwise([sampled_from, *page, end]))
        # (the page is sampled every 0.25 s, through its own getStats)
        assert page_gap < 1.25, f"the page's video stopped for {page_gap:.2f} s"
        print(
            f"RESULT web_failover_resume_seconds={max(resumed_at.values()):.2f} "
            f"web_failover_max_video_gap_s={max(gaps):.2f} page_gap_s={page_gap:.2f} "
            f"resumed={sorted(resumed_at)} kiosks={len(kiosks)}"
        )
