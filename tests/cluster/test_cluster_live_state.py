"""The live numbers of the cluster, against a real redis-server: a web app in the ``web`` role whose
room lives on an SFU worker (in the test's process, real aiortc peers on 127.0.0.1) shows that room
on its /metrics and /admin/system, from the worker's media reports; a second web process, which
does not hold the room's signaling, does not export it again, but its /admin/system lists it from
the live state the first one shares through Redis (and says so when Redis is away). And
placement by CPU: the registry puts a new room on the live worker with the least CPU use, by count
among those about as busy, and a worker's record carries the CPU use it measured."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.cluster.registry import CPU_MARGIN, Registry, WorkerInfo, connect, worker_key
from server.cluster.remote import RemoteSfu
from server.cluster.worker import CpuMeter, SfuWorker
from server.config import Settings
from server.keys import ROOM_HUB
from server.sfu import RoomNotFound
from tests.cluster.parts import RedisServer, in_process_worker
from tests.conftest import World
from tests.ops.test_metrics_endpoint import sample
from tests.sfu.sfu_testkit import wait_until
from tests.signaling.conftest import people  # noqa: F401  (the fixture)
from tests.signaling.signaling_kit import Admin
from tests.signaling.two_party import live_call

LUMA_OFFICIAL, LUMA_KIOSK = 50, 170
#: The system page's notice (Korean first) when the other web processes' rooms are unreadable.
UNREADABLE = "다른 웹 프로세스가 맡은 회의는 지금 읽을 수 없습니다"


@pytest.fixture
async def worker(redis_server: RedisServer) -> AsyncIterator[SfuWorker]:
    """One SFU worker on the test's Redis, with its real CPU meter; stopped after the test."""
    async with in_process_worker(redis_server.url, "1") as running:
        yield running


@pytest.fixture
def web_settings(settings: Settings, redis_server: RedisServer) -> Settings:
    return dataclasses.replace(settings, redis_url=redis_server.url)


@pytest.fixture
async def client(
    web_settings: Settings, worker: SfuWorker, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> TestClient:
    """``run.py web``: signaling here, the media on the worker (the fixtures the signaling kit
    uses take this one)."""
    return await aiohttp_client(create_app(web_settings, role="web"))


def _counter(text: str, name: str, room: str, pid: str) -> float:
    return sample(text, name, room=room, participant=pid) or 0.0


@pytest.mark.network
@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_a_web_process_shows_its_rooms_on_a_worker_in_metrics_and_the_system_page(
    client: TestClient,
    world: World,
    people: Callable[..., Any],  # noqa: F811
    web_settings: Settings,
    worker: SfuWorker,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    room_id, official, kiosk = await live_call(
        client, world, people, "태풍 대비 회의", (LUMA_OFFICIAL, LUMA_KIOSK)
    )
    assert kiosk.pid and official.pid
    room, pids = str(room_id), (kiosk.pid, official.pid)
    assert worker.sfu.room_ids == [room]  # the media is on the worker; this process has none

    async def scrape(on: TestClient = client) -> str:
        response = await on.get("/metrics")
        assert response.status == 200
        return await response.text()

    async def reported() -> bool:
        text = await scrape()
        return all(_counter(text, "maeul_forwarded_packets_total", room, p) > 0 for p in pids)

    deadline = time.monotonic() + 10
    while not await reported():  # the worker reports once a second
        assert time.monotonic() < deadline, await scrape()
        await asyncio.sleep(0.2)
    text = await scrape()
    assert sample(text, "maeul_rooms") == 1
    assert sample(text, "maeul_participants", kind="kiosk") == 1
    assert sample(text, "maeul_participants", kind="official") == 1
    first = {p: _counter(text, "maeul_forwarded_packets_total", room, p) for p in pids}
    for pid in pids:
        assert _counter(text, "maeul_forwarded_bytes_total", room, pid) > 0
        for name in ("maeul_retransmitted_packets_total", "maeul_nacks_sent_total", "maeul_plis_sent_total"):
            assert sample(text, name, room=room, participant=pid) is not None, name
    assert sample(text, "maeul_recording_bytes", room=room) == 0

    # The counters are live: they grow with the media, report after report.
    deadline = time.monotonic() + 10
    while True:
        text = await scrape()
        now = {p: _counter(text, "maeul_forwarded_packets_total", room, p) for p in pids}
        if all(now[p] > first[p] for p in pids):
            break
        assert time.monotonic() < deadline, (first, now)
        await asyncio.sleep(0.3)

    # The administrator sees the room, with its hall, on the system page (logged in above).
    html = await (await client.get("/admin/system")).text()
    assert "태풍 대비 회의" in html
    assert "진행 중인 회의가 없습니다" not in html
    # One row per live participant, with its link bars (kiosks are listed apart, without them).
    assert len(re.findall(r'<td><svg class="link-bars"', html)) == 2

    # A second web process gets the same media reports but does not hold the room's signaling
    # (nginx pins a room to one web process): it exports no room, so a Prometheus sum over the
    # web processes counts this one once.
    other = await aiohttp_client(create_app(web_settings, role="web"))
    await asyncio.sleep(2.5)  # a report or two reach it
    other_text = await scrape(other)
    assert sample(other_text, "maeul_rooms") == 0
    assert sample(other_text, "maeul_forwarded_packets_total", room=room, participant=kiosk.pid) is None

    # But its system page lists the room, with both participants and their link bars: the web
    # process holding the room shares its live state through Redis (server/ops/live_share.py).
    await Admin(other, world).login()
    html = await (await other.get("/admin/system")).text()
    assert "태풍 대비 회의" in html
    assert "<td>강진읍 남성리</td>" in html  # the kiosk's row: its village hall
    assert len(re.findall(r'<td><svg class="link-bars"', html)) == 2
    assert UNREADABLE not in html

    # A recording runs on the worker (its files on the shared disk); its bytes grow on the gauge.
    hub = client.app[ROOM_HUB]
    await hub.start_recording(room, tmp_path / "recordings", "녹화 시작")
    deadline = time.monotonic() + 15
    while (sample(await scrape(), "maeul_recording_bytes", room=room) or 0) <= 10_000:
        assert time.monotonic() < deadline, "recording bytes did not grow"
        await asyncio.sleep(0.3)
    files, _marks = await hub.stop_recording(room)
    assert files

    # Redis away: each page still answers, with its own process's rooms and a notice (the
    # process holding the room still lists it; the other one has none to list).
    redis_server.kill()
    for on, rows in ((client, 2), (other, 0)):
        response = await on.get("/admin/system")
        assert response.status == 200
        html = await response.text()
        assert UNREADABLE in html
        assert len(re.findall(r'<td><svg class="link-bars"', html)) == rows
    # Redis back: the other process's page lists the room again once it is shared anew.
    redis_server.start()
    deadline = time.monotonic() + 15
    while "태풍 대비 회의" not in (html := await (await other.get("/admin/system")).text()):
        assert time.monotonic() < deadline, "the room did not come back on the other page"
        await asyncio.sleep(0.3)
    assert UNREADABLE not in html


# -- placement by CPU ---------------------------------------------------------------------------


async def _workers(registry: Registry, *records: tuple[str, float | None, int]) -> None:
    """Register workers as their heartbeats do: (id, CPU use, count of participants + rooms)."""
    for worker_id, cpu, load in records:
        await registry.register(WorkerInfo(worker_id, f"boot-{worker_id}", (), load, cpu=cpu), {})


async def test_a_new_room_goes_to_the_worker_with_the_least_cpu_use(registry: Registry) -> None:
    # Worker a holds one town hall (1 official + 30 halls: a few rooms' count, most of a core);
    # worker b a dozen small meetings (a larger count, little CPU). The count alone picks a.
    await _workers(registry, ("a", 0.85, 33), ("b", 0.30, 48))
    placed = await registry.place("briefing")
    assert placed is not None and placed.worker == "b"
    # Both about as busy (within the margin): the count decides, and each placement bumps it.
    await _workers(registry, ("a", 0.30 + CPU_MARGIN / 2, 10), ("b", 0.30, 12))
    placed = await registry.place("small-1")
    assert placed is not None and placed.worker == "a"
    # A worker that has no measure yet (just started) is ranked by its count with the least busy.
    await _workers(registry, ("a", 0.85, 33), ("b", 0.30, 48), ("c", None, 0))
    placed = await registry.place("small-2")
    assert placed is not None and placed.worker == "c"
    # No worker has a measure (all just started): by count, as before.
    await _workers(registry, ("a", None, 5), ("b", None, 4), ("c", None, 6))
    placed = await registry.place("small-3")
    assert placed is not None and placed.worker == "b"
    # A room that is placed stays where it is, whatever the CPU says now.
    await _workers(registry, ("a", 0.05, 0), ("b", 0.95, 60), ("c", 0.05, 0))
    assert (await registry.place("briefing")) == await registry.placement_of("briefing")
    assert (await registry.placement_of("briefing")).worker == "b"  # type: ignore[union-attr]


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def test_the_cpu_meter_reads_the_process_cpu_use() -> None:
    """Process CPU time over the window, as a fraction of one core: an idle spell reads little,
    a thread spinning reads more (how much more depends on what else the machine runs)."""
    meter = CpuMeter(window=1.0)
    assert meter() is None  # one sample: nothing to measure yet
    await asyncio.sleep(1.0)
    idle = meter()
    assert idle is not None and 0.0 <= idle
    spinner = threading.Thread(target=_spin, args=(1.5,))
    spinner.start()
    await asyncio.sleep(1.2)
    busy = meter()
    spinner.join()
    assert busy is not None and busy > idle + 0.1, (idle, busy)


@pytest.mark.network
async def test_a_workers_record_carries_its_measured_cpu_use(
    redis_server: RedisServer, worker: SfuWorker
) -> None:
    probe = connect(redis_server.url)
    try:

        async def measured() -> bool:
            record = json.loads(await probe.get(worker_key("1")))
            return isinstance(record.get("cpu"), float | int)

        deadline = time.monotonic() + 5
        while not await measured():  # the first heartbeat (1 s) brings the first measure
            assert time.monotonic() < deadline, await probe.get(worker_key("1"))
            await asyncio.sleep(0.2)
        info = await Registry(probe).worker("1")
        assert info is not None and info.cpu is not None and info.cpu >= 0
        assert info.cpu == pytest.approx(worker.cpu, abs=1e-3)
    finally:
        await probe.aclose()


# -- the web side's copy of the counters --------------------------------------------------------


@pytest.mark.network
async def test_a_rooms_counters_follow_its_reports_and_go_with_them(
    redis_server: RedisServer, worker: SfuWorker
) -> None:
    """RemoteSfu keeps each room's latest reported counters; once its worker reports the room no
    more (another web process closed it), they are gone within a report, not at the 6 s silence
    that forgets a room."""
    redis = [connect(redis_server.url) for _ in range(2)]
    here, there = RemoteSfu(redis[0]), RemoteSfu(redis[1])
    await here.start()
    await there.start()
    try:
        await here.admit("r", "a")
        await here.admit("r", "b")

        def reported() -> bool:
            try:
                return set(here.room_counters("r").participants) == {"a", "b"}
            except RoomNotFound:
                return False

        await wait_until(reported, 5, "the worker's report with both participants")
        counters = here.room_counters("r")
        assert counters.recording_bytes == 0
        assert counters.participants["a"].packets_out == 0  # admitted, no media yet
        await there.close_room("r")  # the room ends through another web process

        def gone() -> bool:
            try:
                here.room_counters("r")
            except RoomNotFound:
                return True
            return False

        await wait_until(gone, 3, "counters of a room no longer reported")
    finally:
        await here.close()
        await there.close()
        for client in redis:
            await client.aclose()
