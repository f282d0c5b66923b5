"""Joins to a room already placed are charged to its worker (``JOIN_COST_ESTIMATE`` per participant
for ``RECENT_WINDOW_MS``), against the real placement scripts on a real redis-server.

A town hall whose 30 halls join within seconds is, in its worker's CPU measure, still the meeting it
was a few seconds before (the measure averages over 5 s and trails the media). Before the join
charge, a new room placed in those seconds went to that worker whenever it had measured least
busy. The first tests drive the registry as a web process does (place, then charge each admitted
join); the last ones go through the web side's ``RemoteSfu`` and SFU workers in the test's
process, whose CPU meters read a fixed figure: the measure as it stands while the joins' media has
not reached it yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from server.cluster.registry import (
    CPU_MARGIN,
    JOIN_COST_ESTIMATE,
    RECENT_WINDOW_MS,
    ROOM_COST_ESTIMATE,
    Registry,
    WorkerInfo,
    connect,
    joins_key,
    worker_key,
)
from server.cluster.remote import RemoteSfu
from server.cluster.worker import SfuWorker
from tests.cluster.parts import RedisServer, RunningWorker, heartbeat, start_in_process_worker


async def _joins(registry: Registry, worker_id: str) -> int:
    return int(await registry.redis.zcard(joins_key(worker_id, f"boot-{worker_id}")))


async def _town_hall_joins(registry: Registry, halls: int) -> str:
    """A town hall is placed, then its halls join (each join places the room again, finding it,
    and is charged once admitted); returns the worker it is on."""
    hall = await registry.place("town-hall")
    assert hall is not None
    for n in range(halls):
        again = await registry.place("town-hall")
        assert again == hall  # joins never move the room, nor take a new epoch
        await registry.charge_join(hall, f"hall-{n}")
    return hall.worker


async def test_a_worker_taking_a_burst_of_joins_is_avoided_until_the_charge_expires(
    registry: Registry,
) -> None:
    # a is idle, b holds a few meetings: more than a room's charge + the margin busier, so by
    # measure (and the town hall's room charge) a takes the next room, whatever the counts say.
    await heartbeat(registry, "a", 0.02, 0)
    await heartbeat(registry, "b", 0.3, 12)
    assert await _town_hall_joins(registry, 30) == "a"
    assert await _joins(registry, "a") == 30
    # A heartbeat during the joins: the count shows them, the measure does not yet (no media).
    await heartbeat(registry, "a", 0.02, 31)
    # a is charged 30 x 0.02 = 0.6 of a core (more than the room's 0.1): the next room goes to b.
    meeting = await registry.place("meeting")
    assert meeting is not None and meeting.worker == "b"  # before the join charge: "a"
    # A charge entry per participant: the same hall admitted again (its page rejoining) counts once.
    hall = await registry.placement_of("town-hall")
    assert hall is not None
    await registry.charge_join(hall, "hall-0")
    assert await _joins(registry, "a") == 30
    # Once the window has passed, the joins' charges are gone, key and all, and a (measuring idle
    # here) is the least busy again.
    await asyncio.sleep(RECENT_WINDOW_MS / 1000 + 0.5)
    await heartbeat(registry, "a", 0.02, 31)
    await heartbeat(registry, "b", 0.3, 14)
    after = await registry.place("meeting-2")
    assert after is not None and after.worker == "a"
    assert not await registry.redis.exists(joins_key("a", "boot-a"))


async def test_a_rooms_charge_is_its_joins_or_the_room_estimate_whichever_is_larger(
    registry: Registry,
) -> None:
    # a is idle; b measures 0.205 more. A new room on a with 5 joins is charged the room estimate
    # (0.1: a meeting of 5), not 0.1 + its joins (0.2, which would put a within the margin of b,
    # and b's smaller count would then take the next room).
    idle, busy = 0.02, 0.225
    await heartbeat(registry, "a", idle, 0)
    await heartbeat(registry, "b", busy, 5)
    room = await registry.place("meeting-1")
    assert room is not None and room.worker == "a"
    for n in range(5):
        await registry.charge_join(room, f"p{n}")
    await heartbeat(registry, "a", idle, 6)  # its count shows the meeting; its measure not yet
    second = await registry.place("meeting-2")
    assert second is not None and second.worker == "a"  # a at 0.02 + 0.1, b more than 0.1 above
    # Six more joins to meeting-1: 11 x 0.02 = 0.22 > 0.1, so a is charged 0.22 + 0.1 (meeting-2)
    # and is more than the margin above b.
    for n in range(5, 11):
        await registry.charge_join(room, f"p{n}")
    third = await registry.place("meeting-3")
    assert third is not None and third.worker == "b"
    assert idle + 11 * JOIN_COST_ESTIMATE + ROOM_COST_ESTIMATE > busy + CPU_MARGIN


async def test_joins_are_charged_to_the_boot_that_admitted_them(registry: Registry) -> None:
    await heartbeat(registry, "a", 0.02, 0)
    await heartbeat(registry, "b", 0.25, 5)
    assert await _town_hall_joins(registry, 30) == "a"
    # Worker a restarts (a new boot, idle): its predecessor's joins are not its load.
    await registry.redis.delete(worker_key("a"))
    await registry.register(WorkerInfo("a", "boot-a2", (), 0, cpu=0.02), {})
    placed = await registry.place("meeting")
    assert placed is not None and (placed.worker, placed.boot) == ("a", "boot-a2")


# -- through the web side's RemoteSfu and SFU workers ---------------------------------------------

StartWorker = Callable[[str, float | None], Awaitable[SfuWorker]]
Cluster = tuple[StartWorker, RemoteSfu, Redis]


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:
    """``start_worker(id, cpu)``: a worker whose meter reads ``cpu``; a started ``RemoteSfu``."""
    clients: list[Redis] = []
    workers: list[RunningWorker] = []

    def client() -> Redis:
        redis = connect(redis_server.url)
        clients.append(redis)
        return redis

    async def start_worker(worker_id: str, cpu: float | None) -> SfuWorker:
        # until its record carries its measure (the second heartbeat)
        running = await start_in_process_worker(
            redis_server.url,
            worker_id,
            cpu_meter=lambda: cpu,
            registered=lambda info: cpu is None or info.cpu is not None,
        )
        workers.append(running)
        assert not running.task.done()
        return running.worker

    plane = RemoteSfu(client())
    await plane.start()
    yield start_worker, plane, client()
    await plane.close()
    for running in workers:
        await running.stop()
    for redis in clients:
        await redis.aclose()


@pytest.mark.network
async def test_a_town_hall_joining_through_the_web_side_sends_the_next_room_elsewhere(
    cluster: Cluster,
) -> None:
    start_worker, plane, redis = cluster
    a = await start_worker("a", 0.02)
    await start_worker("b", 0.3)
    for n in range(30):
        handle = await plane.admit("town-hall", f"hall-{n}")
        assert handle.placement.worker == "a"
    assert await redis.zcard(joins_key("a", a.boot)) == 30
    other = await plane.admit("meeting", "chair")
    assert other.placement.worker == "b"  # before the join charge: "a" (0.12 with the room charge)
    await asyncio.sleep(RECENT_WINDOW_MS / 1000 + 0.5)
    later = await plane.admit("meeting-2", "chair")
    assert later.placement.worker == "a"


@pytest.mark.network
async def test_a_failed_charge_does_not_fail_the_join(
    cluster: Cluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    start_worker, plane, redis = cluster
    # A worker with no measure yet: placement ranks it by count and does not read its charges, so
    # only the charge meets the broken key below.
    worker = await start_worker("a", None)
    # The joins key holds a string: Redis answers the charge with a WRONGTYPE error.
    await redis.set(joins_key("a", worker.boot), "not a sorted set")
    with caplog.at_level(logging.WARNING, logger="server.cluster.remote"):
        handle = await plane.admit("meeting", "chair")
    assert handle.placement.worker == "a"
    assert plane.participant("meeting", "chair") is handle  # admitted, and the worker has it
    assert ("meeting", "chair") in worker.handles
    failed = [r for r in caplog.records if "charging it to its SFU worker failed" in r.getMessage()]
    assert len(failed) == 1 and "WRONGTYPE" in failed[0].getMessage(), caplog.text
    assert failed[0].__dict__.get("room_id") == "meeting"
