"""The live numbers of the cluster, against a real redis-server: a web app in the ``web`` role whose
room lives on an SFU worker (in the test's process, real aiortc peers on 127.0.0.1) shows that room
on its /metrics and /admin/system, from the worker's media reports; a second web process, which
does not hold the room's signaling, does not export it again."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.cluster.registry import connect, worker_key
from server.cluster.remote import RemoteSfu
from server.cluster.worker import SfuWorker
from server.config import Settings
from server.keys import ROOM_HUB
from server.sfu import RoomNotFound, Sfu, SfuConfig
from tests.cluster.parts import RedisServer
from tests.conftest import World
from tests.ops.test_metrics_endpoint import sample
from tests.sfu.sfu_testkit import LOOPBACK, wait_until
from tests.signaling.conftest import people  # noqa: F401  (the fixture)
from tests.signaling.two_party import room_with_a_hall, wait_media_both_ways

LUMA_OFFICIAL, LUMA_KIOSK = 50, 170


@pytest.fixture
async def worker(redis_server: RedisServer) -> AsyncIterator[SfuWorker]:
    """One SFU worker on the test's Redis, with its real CPU meter; stopped after the test."""
    redis = connect(redis_server.url)
    sfu = Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=()))
    running = SfuWorker(sfu, redis, "1", tuple(LOOPBACK))
    task = asyncio.create_task(running.run())
    probe = connect(redis_server.url)
    try:
        for _ in range(100):
            if task.done() or await probe.exists(worker_key("1")):
                break
            await asyncio.sleep(0.05)
        assert not task.done(), "the worker did not start"
        yield running
    finally:
        running.stop.set()
        await asyncio.wait_for(task, 15)
        await probe.aclose()
        await redis.aclose()


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
) -> None:
    _admin, _kiosk_id, token, room_id = await room_with_a_hall(client, world, "태풍 대비 회의")
    official = await people("official", username="official")
    kiosk = await people("kiosk", token=token)
    await official.join(room_id)
    await kiosk.join(room_id)
    await official.publish(LUMA_OFFICIAL, 3000, video_slots=2)
    await kiosk.publish(LUMA_KIOSK, 3000, video_slots=2)
    await wait_media_both_ways(official, LUMA_OFFICIAL, kiosk, LUMA_KIOSK, 20, "media both ways")
    room, pids = str(room_id), (kiosk.pid, official.pid)
    assert kiosk.pid and official.pid
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

    # A recording runs on the worker (its files on the shared disk); its bytes grow on the gauge.
    hub = client.app[ROOM_HUB]
    await hub.start_recording(room, tmp_path / "recordings", "녹화 시작")
    deadline = time.monotonic() + 15
    while (sample(await scrape(), "maeul_recording_bytes", room=room) or 0) <= 10_000:
        assert time.monotonic() < deadline, "recording bytes did not grow"
        await asyncio.sleep(0.3)
    files, _marks = await hub.stop_recording(room)
    assert files


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
