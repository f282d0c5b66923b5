"""A burst of new rooms (a county day starting: ten meetings opened in the same second) against the
real placement script on a real redis-server.

Each worker's CPU measure trails a new room by seconds, so the script charges every room placed on
a worker an assumed cost (``ROOM_COST_ESTIMATE``) for ``RECENT_WINDOW_MS``. Without it, a burst all
went to the least busy worker whenever the others measured more than ``CPU_MARGIN`` above it,
however many rooms it had just been given. The workers are registered as their heartbeats register
them (id, boot, measured CPU, count of participants + rooms).
"""

from __future__ import annotations

import asyncio

from server.cluster.registry import (
    CPU_MARGIN,
    RECENT_WINDOW_MS,
    ROOM_COST_ESTIMATE,
    Placement,
    Registry,
    recent_key,
)
from tests.cluster.parts import heartbeat


async def _place_all(registry: Registry, rooms: list[str]) -> list[Placement]:
    placed = []
    for room in rooms:
        placement = await registry.place(room)
        assert placement is not None
        placed.append(placement)
    return placed


async def _charged(registry: Registry, worker_id: str) -> int:
    return int(await registry.redis.zcard(recent_key(worker_id, f"boot-{worker_id}")))


async def test_a_burst_of_new_rooms_spreads_before_the_cpu_measure_shows_them(registry: Registry) -> None:
    # Worker a is idle; b holds one small meeting (4 participants + its room, a few % of a core more
    # than a, measured over the last 5 s). Both are idle enough for ten new meetings between them;
    # their measures differ by more than the margin, so by measure and count alone a gets them all.
    cpu = {"a": 0.02, "b": 0.02 + CPU_MARGIN + 0.03}
    await heartbeat(registry, "a", cpu["a"], 0)
    await heartbeat(registry, "b", cpu["b"], 5)
    rooms = [f"meeting-{n}" for n in range(10)]
    first = await _place_all(registry, rooms[:5])
    # A heartbeat in the middle of the burst: the rooms placed so far are open (their first
    # participant admitted), so the count goes up by theirs, but no media has flowed yet and the
    # measures are what they were. The charges are not a heartbeat's to clear.
    hosted = {w: sum(p.worker == w for p in first) for w in cpu}
    await heartbeat(registry, "a", cpu["a"], 2 * hosted["a"])
    await heartbeat(registry, "b", cpu["b"], 5 + 2 * hosted["b"])
    placed = first + await _place_all(registry, rooms[5:])

    per_worker = {w: sum(p.worker == w for p in placed) for w in cpu}
    assert min(per_worker.values()) >= 3, per_worker  # before the charge: {"a": 10, "b": 0}
    # What each worker is expected to carry once its measure shows the rooms is about level: the
    # burst filled a up to b's level, then alternated.
    expected = {w: cpu[w] + ROOM_COST_ESTIMATE * per_worker[w] for w in cpu}
    assert abs(expected["a"] - expected["b"]) <= CPU_MARGIN + ROOM_COST_ESTIMATE, (per_worker, expected)
    assert {w: await _charged(registry, w) for w in cpu} == per_worker
    assert len({p.epoch for p in placed}) == 10  # each placement still has its own epoch


async def test_a_burst_between_workers_alike_alternates(registry: Registry) -> None:
    # Two idle workers measuring alike (within the margin): each charge moves a worker by one margin
    # at most, so the count still decides and the rooms alternate, as before the charge.
    await heartbeat(registry, "a", 0.02, 0)
    await heartbeat(registry, "b", 0.03, 0)
    placed = await _place_all(registry, [f"meeting-{n}" for n in range(10)])
    assert [p.worker for p in placed] == ["a", "b"] * 5


async def test_a_placed_room_stays_where_it_is_and_is_charged_once(registry: Registry) -> None:
    await heartbeat(registry, "a", 0.02, 0)
    await heartbeat(registry, "b", 0.40, 10)
    placed = await registry.place("briefing")
    assert placed is not None and placed.worker == "a"
    # Every later join asks again: the room stays on a, with the same epoch, however busy the
    # charge and the measure now make a look, and the join is not charged as another room.
    await heartbeat(registry, "a", 0.90, 31)
    for _ in range(5):
        assert await registry.place("briefing") == placed
    assert await _charged(registry, "a") == 1
    assert await _charged(registry, "b") == 0


async def test_the_charge_is_gone_after_the_window(registry: Registry) -> None:
    # a idle, b a little busier (more than the margin): three new rooms fill a up to b's level.
    await heartbeat(registry, "a", 0.02, 0)
    await heartbeat(registry, "b", 0.25, 5)
    placed = await _place_all(registry, ["r1", "r2", "r3"])
    assert [p.worker for p in placed] == ["a", "a", "a"]
    assert await _charged(registry, "a") == 3
    await asyncio.sleep(RECENT_WINDOW_MS / 2000)
    assert await _charged(registry, "a") == 3  # still charged halfway through the window
    # Once the window has passed (the rooms' media would be in a's measure by now; here it stays
    # idle), a's charges are gone, key and all, and a is the least busy again.
    await asyncio.sleep(RECENT_WINDOW_MS / 2000 + 0.5)
    assert not await registry.redis.exists(recent_key("a", "boot-a"))
    await heartbeat(registry, "a", 0.02, 6)
    await heartbeat(registry, "b", 0.25, 5)
    after = await registry.place("r4")
    assert after is not None and after.worker == "a"
    assert await _charged(registry, "a") == 1  # r4's own charge only
    assert await registry.redis.pttl(recent_key("a", "boot-a")) <= RECENT_WINDOW_MS
    assert not await registry.redis.exists(recent_key("b", "boot-b"))
