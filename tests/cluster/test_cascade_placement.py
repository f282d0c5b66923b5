"""The placement script's span (cascade, docs/scale.md) against a real redis-server, with workers'
registrations written as their heartbeats write them: which worker of a room takes each join, when
the span grows, and how a dead or departed worker and a departed participant leave it."""

from __future__ import annotations

from server.cluster.registry import Placement, Registry, SpanPolicy, member_key, room_key, worker_key
from tests.cluster.parts import heartbeat

CAP2 = SpanPolicy(cap=2)


async def _join(registry: Registry, participant: str, span: SpanPolicy = CAP2) -> Placement:
    placement = await registry.place("r", participant=participant, span=span)
    assert placement is not None
    return placement


async def test_joins_fill_the_home_then_the_span_grows_by_one_worker(registry: Registry) -> None:
    for wid in ("1", "2", "3"):
        await heartbeat(registry, wid, None, 0)
    first, second = await _join(registry, "p1"), await _join(registry, "p2")
    home = (first.worker, first.boot)
    assert first.home and second == first and not first.grew and first.span == (home,)
    third = await _join(registry, "p3")  # the home has 2: the least-loaded other worker joins
    assert third.grew and not third.home and third.epoch == first.epoch
    assert third.worker != first.worker and third.span == (home, (third.worker, third.boot))
    assert await _join(registry, "p4") == third  # not full yet: no new worker
    fifth = await _join(registry, "p5")  # both full: the third worker
    assert fifth.grew and len(fifth.span) == 3 and fifth.worker not in {first.worker, third.worker}
    assert (await registry.placement_of("r")) == first  # the room's key still names its home
    assert [w for w, _ in (await registry.placement_of("r")).span] == [w for w, _ in fifth.span]  # type: ignore[union-attr]

    # Joining again goes where it was; a participant that left frees its place.
    assert await _join(registry, "p3") == third
    await registry.leave_member(third, "p3")
    assert await _join(registry, "p6") == third
    # No policy (or no participant): the home, as before the cascade.
    assert await registry.place("r") == first
    assert await registry.place("r", participant="p7") == first


async def test_a_span_threshold_of_zero_spans_at_once_and_cpu_decides_otherwise(registry: Registry) -> None:
    await heartbeat(registry, "1", 0.2, 0)
    await heartbeat(registry, "2", 0.2, 1)
    home = await _join(registry, "chair", SpanPolicy(cpu=0))
    assert home.worker == "1"
    hall = await _join(registry, "hall", SpanPolicy(cpu=0))
    assert hall.grew and hall.worker == "2"
    # Every worker is full and none is left: the one with the fewest of the room's participants.
    assert (await _join(registry, "hall2", SpanPolicy(cpu=0))).worker in {"1", "2"}

    # A CPU threshold: the home takes joins while it is under it (its measure plus charges).
    await registry.redis.delete(room_key("r"), member_key("r"))
    assert (await _join(registry, "chair", SpanPolicy(cpu=0.9))).worker == "1"
    assert (await _join(registry, "hall", SpanPolicy(cpu=0.9))).worker == "1"
    await heartbeat(registry, "1", 0.95, 2)
    spanned = await _join(registry, "hall3", SpanPolicy(cpu=0.9))
    assert spanned.grew and spanned.worker == "2"


async def test_a_draining_worker_takes_no_more_of_a_spanning_rooms_joins(registry: Registry) -> None:
    for wid in ("1", "2", "3"):
        await heartbeat(registry, wid, None, 0)
    home = await _join(registry, "p1")
    spanned = await _join(registry, "p2", SpanPolicy(cap=1))
    assert spanned.grew
    # The home drains (SIGTERM): the next join goes to the span's other worker, not the home,
    # though the home has room under the cap; and the span grows past it, not onto it.
    await heartbeat(registry, home.worker, None, 0, draining=True)
    assert await _join(registry, "p3", SpanPolicy(cap=5)) == spanned
    await heartbeat(registry, spanned.worker, None, 0, draining=True)
    last = await _join(registry, "p4", SpanPolicy(cap=5))
    assert last.grew and last.worker not in {home.worker, spanned.worker}
    # Joining again still goes where it was, draining or not (its meeting goes on there).
    assert await _join(registry, "p1", SpanPolicy(cap=5)) == home


async def test_dead_and_removed_workers_leave_the_span(registry: Registry) -> None:
    await heartbeat(registry, "1", None, 0)
    await heartbeat(registry, "2", None, 1)
    home = await _join(registry, "p1", SpanPolicy(cap=1))
    spanned = await _join(registry, "p2", SpanPolicy(cap=1))
    assert spanned.grew and spanned.worker == "2"

    # A spanned worker taken out (it did not answer): the span and its members lose it; an older
    # epoch's request to take it out changes nothing.
    stale = Placement("r", spanned.worker, spanned.boot, spanned.epoch - 1, False)
    await registry.unplace(stale)
    assert len((await registry.placement_of("r")).span) == 2  # type: ignore[union-attr]
    await registry.unplace(spanned)
    assert (await registry.placement_of("r")).span == ((home.worker, home.boot),)  # type: ignore[union-attr]
    assert await registry.redis.hkeys(member_key("r")) == [b"p1"]
    again = await _join(registry, "p3", SpanPolicy(cap=1))
    assert again.grew and again.worker == "2"

    # The worker's registration expired: the next placement drops it from the span.
    await registry.redis.delete(worker_key("2"))
    nowhere = await _join(registry, "p4", SpanPolicy(cap=1))
    assert nowhere.worker == "1" and nowhere.span == ((home.worker, home.boot),) and not nowhere.grew
    assert (await registry.placement_of("r")).span == ((home.worker, home.boot),)  # type: ignore[union-attr]


async def test_a_spanned_worker_keeps_its_room_at_its_heartbeat_and_never_places_it(
    registry: Registry,
) -> None:
    await heartbeat(registry, "1", None, 0)
    await heartbeat(registry, "2", None, 1)
    home = await _join(registry, "p1", SpanPolicy(cap=1))
    spanned = await _join(registry, "p2", SpanPolicy(cap=1))
    info_2 = await registry.worker("2")
    assert info_2 is not None
    rooms = {"r": spanned.epoch}
    assert await registry.register(info_2, rooms, spanned=["r"]) == []  # still in the span
    assert await registry.register(info_2, rooms) == ["r"]  # as a home it would have lost it

    # Redis lost the room (a restart): the spanned worker waits, the home places it again, and the
    # spanned worker then puts itself back in the span of the same epoch.
    await registry.redis.delete(room_key("r"))
    assert await registry.register(info_2, rooms, spanned=["r"]) == []
    assert await registry.placement_of("r") is None
    info_1 = await registry.worker("1")
    assert info_1 is not None
    assert await registry.register(info_1, {"r": home.epoch}) == []
    assert await registry.register(info_2, rooms, spanned=["r"]) == []
    restored = await registry.placement_of("r")
    assert (
        restored == home
        and restored is not None
        and restored.span
        == (
            (home.worker, home.boot),
            (spanned.worker, spanned.boot),
        )
    )
    # A placement of another epoch: the spanned worker's room is stale there.
    await registry.redis.hset(room_key("r"), "epoch", home.epoch + 1)
    assert await registry.register(info_2, rooms, spanned=["r"]) == ["r"]
