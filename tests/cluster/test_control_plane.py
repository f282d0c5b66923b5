"""The control plane against a real redis-server, with SFU workers and the web side's RemoteSfu in
the test's process and real aiortc peers on 127.0.0.1: registration and the refusal of a second
worker with a live id, atomic least-loaded placement with epochs, media through rooms placed on
two workers, stale epochs refused in both directions, and Redis going away (joins refused as
``unavailable``, media carrying on) and coming back (joins work again, nothing restarted)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.registry import (
    Placement,
    Registry,
    WorkerIdTaken,
    connect,
    reply_key,
    room_key,
    web_key,
    worker_key,
)
from server.cluster.remote import RemoteSfu
from server.cluster.wire import StaleEpoch, Unavailable
from server.sfu import (
    AlreadyJoined,
    NotInRoom,
    ParticipantConnected,
    ParticipantLeft,
    Sfu,
    SfuConfig,
    SfuEvent,
    SlotAssigned,
)
from tests.cluster.parts import RedisServer, RunningWorker, start_in_process_worker
from tests.sfu.sfu_testkit import LOOPBACK, LUMA, Client, hears, sees_video, wait_until

pytestmark = pytest.mark.network


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Callable[..., object]]:
    """``start_worker(id)`` and ``remote()``, all stopped after the test."""
    clients: list[Redis] = []
    workers: list[RunningWorker] = []
    remotes: list[RemoteSfu] = []

    def client() -> Redis:
        redis = connect(redis_server.url)
        clients.append(redis)
        return redis

    async def start_worker(worker_id: str, drain_s: float = 0.0, sfu: Sfu | None = None) -> RunningWorker:
        # Workers in one process cannot tell their CPU use apart (each would measure the whole
        # test): they report none, and placement goes by their counts, which the tests set.
        running = await start_in_process_worker(
            redis_server.url, worker_id, sfu=sfu, cpu_meter=lambda: None, drain_s=drain_s
        )
        workers.append(running)
        return running

    async def remote() -> RemoteSfu:
        plane = RemoteSfu(client())
        await plane.start()
        remotes.append(plane)
        return plane

    yield start_worker, remote, client
    for plane in remotes:
        await plane.close()
    for running in workers:
        await running.stop()
    for redis in clients:
        await redis.aclose()


async def test_a_second_worker_with_a_live_id_is_refused(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, _remote, client = cluster
    first = await start_worker("1")
    second = await start_worker("1")
    with pytest.raises(WorkerIdTaken, match="already registered by a live worker"):
        await asyncio.wait_for(second.task, 5)
    record = json.loads(await client().get(worker_key("1")))
    assert record["boot"] == first.worker.boot  # the first one is untouched
    assert not first.task.done()
    await first.stop()  # a clean stop frees the id at once
    third = await start_worker("1")
    await asyncio.sleep(1.5)  # a heartbeat or so: it keeps its registration
    assert not third.task.done()
    assert json.loads(await client().get(worker_key("1")))["boot"] == third.worker.boot


async def test_placement_is_atomic_least_loaded_and_carries_an_epoch(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, _remote, client = cluster
    a, b = await start_worker("a"), await start_worker("b")
    registries = [Registry(client()) for _ in range(4)]
    # Four "web processes" place the same ten rooms at the same time.
    results = await asyncio.gather(*(reg.place(f"room{n}") for reg in registries for n in range(10)))
    by_room: dict[str, set[Placement | None]] = {}
    for placement in results:
        assert placement is not None
        by_room.setdefault(placement.room_id, set()).add(placement)
    assert all(len(found) == 1 for found in by_room.values()), by_room  # one placement per room
    placements = [next(iter(found)) for found in by_room.values()]
    assert len({p.epoch for p in placements}) == 10  # each placement has its own epoch
    per_worker = {w: sum(p.worker == w for p in placements) for w in ("a", "b")}
    assert per_worker == {"a": 5, "b": 5}, per_worker  # least-loaded: they alternate
    assert {p.boot for p in placements} == {a.worker.boot, b.worker.boot}


async def test_media_flows_in_rooms_placed_on_two_workers(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, remote, _client = cluster
    await start_worker("1")
    await start_worker("2")
    plane = await remote()
    events: list[SfuEvent] = []
    plane.subscribe(events.append)
    clients: list[Client] = []
    try:
        for room in ("r1", "r2"):
            for name in ("a", "b"):
                client = Client(name, luma=LUMA[name], amplitude=8000, video_slots=1, audio_slots=1)
                clients.append(client)
                handle = await plane.admit(room, name)
                await client.connect(handle)  # type: ignore[arg-type]
        a1, b1, a2, b2 = clients
        for subscriber, publisher in ((a1, "b"), (b1, "a"), (a2, "b"), (b2, "a")):
            await wait_until(lambda s=subscriber, p=publisher: sees_video(s, p) and hears(s, p), 20, "media")
        placed = {room: plane.participant(room, "a").placement for room in ("r1", "r2")}  # type: ignore[attr-defined]
        assert {p.worker for p in placed.values()} == {"1", "2"}  # one room on each worker
        # The worker's events reached this process: slots, connections.
        assert any(isinstance(e, SlotAssigned) and e.room_id == "r2" for e in events)
        connected = {(e.room_id, e.participant_id) for e in events if isinstance(e, ParticipantConnected)}
        assert connected == {("r1", "a"), ("r1", "b"), ("r2", "a"), ("r2", "b")}
        # The worker's media reports arrive (one a second).
        await wait_until(lambda: (plane.media_age("r1", "a") or 99) < 3, 5, "fresh media age")
        assert sorted(plane.room_ids) == ["r1", "r2"]
    finally:
        for client in clients:
            await client.close()


async def test_stale_epochs_are_refused_both_ways(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, remote, client = cluster
    await start_worker("1")
    plane = await remote()
    old = await plane.admit("r", "a")
    redis = client()
    # The room is placed again on the same worker (its registration had lapsed, say): a newer
    # epoch. A join at the new epoch moves the worker to it ...
    newer = await redis.incr("maeul:epoch")
    await redis.hset(room_key("r"), mapping={"epoch": newer})
    late = await plane.admit("r", "b")
    assert late.placement.epoch == newer  # type: ignore[attr-defined]
    # ... and a request made for the older placement is refused by the worker.
    with pytest.raises(StaleEpoch, match="epoch"):
        await old.add_ice_candidate(None)
    # An answer that carries another epoch than its request is refused by the web side.
    placement = late.placement  # type: ignore[attr-defined]
    call = asyncio.create_task(plane.call(placement, "ice", "b", {"candidate": None}, timeout=3))
    await asyncio.sleep(0)  # the request is queued and the reply future exists
    request_id = next(iter(plane._pending))
    stale = {
        "id": request_id,
        "ok": True,
        "result": None,
        "worker": "1",
        "boot": placement.boot,
        "epoch": placement.epoch - 1,
    }
    await redis.lpush(reply_key(plane.web_id), json.dumps(stale))
    with pytest.raises(StaleEpoch, match="answer for room r"):
        await call


async def test_redis_away_refuses_joins_and_media_carries_on(
    cluster: tuple,
    redis_server: RedisServer,  # type: ignore[type-arg]
) -> None:
    start_worker, remote, _client = cluster
    await start_worker("1")
    plane = await remote()
    events: list[SfuEvent] = []
    plane.subscribe(events.append)
    a = Client("a", luma=LUMA["a"], amplitude=8000, video_slots=1, audio_slots=1)
    b = Client("b", luma=LUMA["b"], amplitude=8000, video_slots=1, audio_slots=1)
    c = Client("c", luma=LUMA["c"], amplitude=8000, video_slots=1, audio_slots=1)
    try:
        await a.connect(await plane.admit("r", "a"))  # type: ignore[arg-type]
        await b.connect(await plane.admit("r", "b"))  # type: ignore[arg-type]
        await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 20, "media")
        redis_server.kill()
        frames = b.log(b.slot_of("a", "video")).frames
        with pytest.raises(Unavailable, match="not reachable"):
            await asyncio.wait_for(plane.admit("r2", "c"), 10)  # refused, not hung
        await asyncio.sleep(2)
        assert b.log(b.slot_of("a", "video")).frames > frames + 10  # media went on meanwhile
        redis_server.start()  # empty: no workers, no placements
        # The worker registers again with its room by itself; joins work again.

        for _ in range(50):
            try:
                handle = await plane.admit("r", "c")
                break
            except Unavailable:
                await asyncio.sleep(0.2)
        else:
            raise AssertionError("joins did not work again after Redis came back")
        assert handle.placement.worker == "1"  # the live room stayed where its media is
        # The worker's events and media reports reach this web process again.
        await c.connect(handle)  # type: ignore[arg-type]
        await wait_until(lambda: sees_video(c, "a"), 20, "the new participant's media")
        await wait_until(
            lambda: any(isinstance(e, ParticipantConnected) and e.participant_id == "c" for e in events),
            10,
            "its connection event",
        )
        await wait_until(lambda: (plane.media_age("r", "c") or 99) < 3, 10, "its media age")
    finally:
        await a.close()
        await b.close()
        await c.close()


async def test_recording_and_closing_a_room_from_another_web_process(
    cluster: tuple,  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    start_worker, remote, _client = cluster
    await start_worker("1")
    here, there = await remote(), await remote()
    events: list[SfuEvent] = []
    here.subscribe(events.append)
    a = Client("a", luma=LUMA["a"], amplitude=8000, video_slots=1, audio_slots=1)
    b = Client("b", luma=LUMA["b"], amplitude=8000, video_slots=1, audio_slots=1)
    try:
        await a.connect(await here.admit("r", "a"))  # type: ignore[arg-type]
        await b.connect(await here.admit("r", "b"))  # type: ignore[arg-type]
        await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 20, "media")
        # The other web process starts the recording and marks it; both see it.
        there.start_recording("r", tmp_path / "rec")
        there.mark("r", "1. 마을회관 보수 공사")
        await wait_until(lambda: bool((rec := here.recording("r")) and rec.marks), 5, "recording seen")
        assert [m.label for m in here.recording("r").marks] == ["1. 마을회관 보수 공사"]  # type: ignore[union-attr]
        # A web process that starts later learns of the running recording from the media reports.
        late = await remote()
        await wait_until(lambda: bool((rec := late.recording("r")) and rec.marks), 5, "late web process")
        await asyncio.sleep(1)
        files = await there.stop_recording("r")
        assert sorted(f.participant_id for f in files) == ["a", "b"]
        assert all(f.path.exists() and f.path.stat().st_size > 10_000 and f.has_video for f in files)
        await wait_until(
            lambda: here.recording("r") is None and late.recording("r") is None, 5, "stopped everywhere"
        )
        # A room closed by the other web process: this one's participants learn it from the worker.
        assert "r" in there.room_ids  # from the worker's media reports
        await there.close_room("r")
        await wait_until(
            lambda: (
                {
                    e.participant_id
                    for e in events
                    if isinstance(e, ParticipantLeft) and e.reason == "room-closed"
                }
                == {"a", "b"}
            ),
            5,
            "room-closed events",
        )
        with pytest.raises(NotInRoom):
            here.participant("r", "a")
    finally:
        await a.close()
        await b.close()


async def test_a_worker_taken_for_dead_closes_the_room_that_moved_away(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, remote, client = cluster
    first = await start_worker("1")
    await start_worker("2")
    plane = await remote()
    handle = await plane.admit("r", "a")
    assert handle.placement.worker == "1"  # type: ignore[attr-defined]
    # Worker 1 was taken for dead (its registration lapsed while it stalled): the room is placed
    # again, on worker 2, by a web process that no longer hears it.
    registry = Registry(client())
    await registry.unplace(handle.placement)  # type: ignore[attr-defined]
    moved = await registry.place("r", exclude=("1", first.worker.boot))
    assert moved is not None and moved.worker == "2"
    # Worker 1 finds out at its next heartbeat and closes its stale copy of the room.
    await wait_until(lambda: "r" not in first.worker.sfu.room_ids, 5, "stale room closed")
    assert "r" not in first.worker.epochs
    assert await registry.placement_of("r") == moved  # and leaves the new placement alone


async def test_two_registrations_at_once_close_a_stale_room_once(
    cluster: tuple,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A drain registers at once while the heartbeat may be registering too: one at a time, so a
    room placed elsewhere meanwhile is closed here once, not by both."""
    start_worker, remote, client = cluster
    first = await start_worker("1")
    await start_worker("2")
    plane = await remote()
    handle = await plane.admit("r", "a")
    registry = Registry(client())
    await registry.unplace(handle.placement)  # type: ignore[attr-defined]
    assert await registry.place("r", exclude=("1", first.worker.boot)) is not None
    with caplog.at_level(logging.WARNING, logger="server.cluster.worker"):
        await asyncio.gather(first.worker._register_now(), first.worker._register_now())
    closed = [r for r in caplog.records if r.getMessage().startswith("room placed elsewhere meanwhile")]
    assert len(closed) == 1, closed
    assert "r" not in first.worker.sfu.room_ids


async def test_an_admission_its_web_process_lost_does_not_keep_the_id_taken(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, remote, _client = cluster
    first = await start_worker("1")
    here, there = await remote(), await remote()
    lost = await here.admit("r", "a")
    # Its answer never reached the hub (it came after the wait ran out), so the hub has no
    # handle: the page joins again through the same web process, which admits it again.
    here.forget(lost)  # type: ignore[arg-type]
    again = await here.admit("r", "a")
    assert again.gen == lost.gen + 1  # type: ignore[attr-defined]
    assert list(first.worker.handles) == [("r", "a")]
    # Another web process cannot take the id while this one holds it.
    with pytest.raises(AlreadyJoined):
        await there.admit("r", "a")


async def settles(probe: Callable[[], Awaitable[object]], value: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while (seen := await probe()) != value:
        assert time.monotonic() < deadline, f"{what}: still {seen!r} after {within} s"
        await asyncio.sleep(0.1)


async def test_the_participants_of_a_dead_web_process_are_removed(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, remote, client = cluster
    first = await start_worker("1")
    dying, survivor = await remote(), await remote()
    redis = client()
    # Admitted through a web process that then dies before the pages set up any media: no
    # connection will ever end to tell the worker, and no leave will come from that process.
    await dying.admit("r", "a")
    await dying.admit("r", "b")
    await settles(lambda: redis.exists(web_key(dying.web_id)), 1, 5, "the web process's record")
    for task in dying._tasks:  # noqa: SLF001 - as a SIGKILL: no goodbye, the record just expires
        task.cancel()
    # While its record lives, the id stays its own: another web process is refused.
    with pytest.raises(AlreadyJoined):
        await survivor.admit("r", "a")
    await settles(lambda: redis.exists(web_key(dying.web_id)), 0, 10, "the dead web's record")
    # Once the worker has seen no record for its grace, the page's join through the survivor (it
    # retries with backoff, as the pages do) takes the earlier admission's place,
    deadline = time.monotonic() + 10
    while True:
        try:
            await survivor.admit("r", "a")
            break
        except AlreadyJoined:
            assert time.monotonic() < deadline, "the dead web's admission kept the id taken"
            await asyncio.sleep(0.5)
    assert first.worker.admitted_by[("r", "a")] == survivor.web_id

    # and the worker's heartbeat removes the participant that never came back.
    async def hosted() -> list[tuple[str, str]]:
        return sorted(first.worker.handles)

    await settles(hosted, [("r", "a")], 10, "the dead web's participants")
    # A web process that stops cleanly takes its participants with it, without waiting for a TTL.
    await survivor.close()
    assert not await redis.exists(web_key(survivor.web_id))
    await settles(hosted, [], 10, "the stopped web's participants")


async def test_another_web_process_takes_over_a_participant_whose_web_process_died(cluster: tuple) -> None:  # type: ignore[type-arg]
    """SIGKILL of a web process: a page's socket comes back through another one, which takes its
    participant over with the page's resume token; its media is never touched, and the worker
    no longer removes it with the dead process's participants."""
    start_worker, remote, client = cluster
    first = await start_worker("1")
    dying, survivor = await remote(), await remote()
    redis = client()
    a = Client("a", luma=LUMA["a"], amplitude=8000, video_slots=1, audio_slots=1)
    b = Client("b", luma=LUMA["b"], amplitude=8000, video_slots=1, audio_slots=1)
    try:
        # a's page on the web process that dies, b's on the other; c never set up media.
        lost = await dying.admit("r", "a")
        await a.connect(lost)  # type: ignore[arg-type]
        await dying.keep_for_handover(lost, "token-a")  # as the hub does at each admission
        await dying.admit("r", "c")
        await b.connect(await survivor.admit("r", "b"))  # type: ignore[arg-type]
        await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 20, "media both ways")
        for task in dying._tasks:  # noqa: SLF001 - as a SIGKILL: no goodbye, the record just expires
            task.cancel()
        # A wrong token, or a participant with no record, hands nothing over.
        assert await survivor.take_over("r", "a", "token-b") is None
        assert await survivor.take_over("r", "c", "token-a") is None
        taken = await survivor.take_over("r", "a", "token-a")
        assert taken is not None and taken.connected
        assert taken.handle.gen == lost.gen + 1  # type: ignore[attr-defined]
        assert taken.handle.slots() == lost.slots()  # its page keeps its slots as they are
        assert first.worker.admitted_by[("r", "a")] == survivor.web_id
        # The dead process's late leave (its page's socket dropped) names the old admission:
        # ignored, the media goes on.
        await lost.leave()
        await settles(lambda: redis.exists(web_key(dying.web_id)), 0, 10, "the dead web's record")
        # Past the worker's grace c, not taken over, is removed; a stays, its media flowing.
        await settles(lambda: _hosted(first), [("r", "a"), ("r", "b")], 10, "the dead web's participants")
        seen = {c: c.log(c.slot_of(p, "video")).frames for c, p in ((a, "b"), (b, "a"))}
        await wait_until(
            lambda: all(c.log(c.slot_of(p, "video")).frames > seen[c] + 10 for c, p in ((a, "b"), (b, "a"))),
            10,
            "video both ways after the takeover",
        )
        # The record names the new admission: a further takeover (this process dying too) works.
        assert await survivor.take_over("r", "a", "token-a") is not None
        assert first.worker.admitted_by[("r", "a")] == survivor.web_id
    finally:
        for c in (a, b):
            await c.close()


async def _hosted(running: RunningWorker) -> list[tuple[str, str]]:
    return sorted(running.worker.handles)


class TileRecordingSfu(Sfu):
    """A real Sfu that also keeps the tile reports it was given."""

    def __init__(self, config: SfuConfig) -> None:
        super().__init__(config)
        self.tile_reports: list[tuple[str, str, dict[str, list[int]]]] = []

    def set_tile_sizes(self, room_id: str, participant_id: str, sizes: Any) -> None:
        super().set_tile_sizes(room_id, participant_id, sizes)
        self.tile_reports.append((room_id, participant_id, {k: list(v) for k, v in sizes.items()}))


async def test_a_pages_tile_sizes_reach_the_worker_that_holds_its_room(cluster: tuple) -> None:  # type: ignore[type-arg]
    """The tiles a page reports (simulcast layer choice by tile size) reach the worker's Sfu
    through the remote handle; a malformed one is refused there and changes nothing."""
    start_worker, remote, _client = cluster
    sfu = TileRecordingSfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=()))
    await start_worker("7", sfu=sfu)
    plane = await remote()
    a = await plane.admit("r", "a")
    await plane.admit("r", "b")
    a.set_tile_sizes({"b": [320, 180]})
    await wait_until(lambda: sfu.tile_reports == [("r", "a", {"b": [320, 180]})], 5, "report at the worker")
    a.set_tile_sizes({"b": [1, 2, 3]})  # refused by the worker's Sfu
    a.set_tile_sizes({"b": [1280, 720]})
    await wait_until(lambda: len(sfu.tile_reports) == 2, 5, "second report at the worker")
    assert sfu.tile_reports[-1] == ("r", "a", {"b": [1280, 720]})


async def test_a_draining_worker_keeps_its_meeting_takes_no_new_room_and_stops_when_it_empties(
    cluster: tuple,  # type: ignore[type-arg]
) -> None:
    start_worker, remote, client = cluster
    first = await start_worker("1", drain_s=60)
    plane = await remote()
    registry = Registry(client())
    clients: list[Client] = []
    try:
        handles = {}
        for name in ("a", "b"):
            client_ = Client(name, luma=LUMA[name], amplitude=8000, video_slots=1, audio_slots=1)
            clients.append(client_)
            handles[name] = await plane.admit("r", name)
            await client_.connect(handles[name])  # type: ignore[arg-type]
        a, b = clients
        await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 20, "media")

        began = time.monotonic()
        first.worker.shut_down()  # what SIGTERM does (serve_worker's signal handler)
        # The registration says so at once, not at the next heartbeat.
        await settles(lambda: _draining(registry, "1"), True, 2, "the record says draining")
        # No new room is placed on it, even as the only live worker: a page is told `unavailable`
        # and tries again; the room goes to the next worker that starts.
        assert await registry.place("new") is None
        await start_worker("2")
        placed = await registry.place("new")
        assert placed is not None and placed.worker == "2"
        # Its meeting goes on undisturbed: the same peer connections keep decoding.
        seen = (_frames(a, "b"), _frames(b, "a"))
        await asyncio.sleep(2)
        assert _frames(a, "b") > seen[0] + 10 and _frames(b, "a") > seen[1] + 10
        assert not first.task.done()
        # One participant leaving is not enough; the last one leaving ends the drain.
        await handles["b"].leave()  # type: ignore[attr-defined]
        await asyncio.sleep(1)
        assert not first.task.done()
        await handles["a"].leave()  # type: ignore[attr-defined]
        await asyncio.wait_for(first.task, 10)
        assert time.monotonic() - began < 30  # it did not wait out its 60 s
        assert await registry.worker("1") is None  # unregistered
    finally:
        for client_ in clients:
            await client_.close()


async def test_a_drain_that_runs_out_moves_the_participants_still_there(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, remote, _client = cluster
    first = await start_worker("1", drain_s=1.5)
    plane = await remote()
    events: list[SfuEvent] = []
    plane.subscribe(events.append)
    await plane.admit("r", "a")
    began = time.monotonic()
    first.worker.shut_down()
    await asyncio.wait_for(first.task, 15)
    assert time.monotonic() - began >= 1.5  # the meeting had its drain
    # Then, as on any stop, the web process tells the participant its media is gone (its page
    # joins again, on another worker).
    await wait_until(
        lambda: any(isinstance(e, ParticipantLeft) and e.participant_id == "a" for e in events), 5, "left"
    )


async def test_a_second_signal_stops_a_draining_worker_at_once(cluster: tuple) -> None:  # type: ignore[type-arg]
    start_worker, remote, _client = cluster
    first = await start_worker("1", drain_s=60)
    plane = await remote()
    await plane.admit("r", "a")
    first.worker.shut_down()
    await asyncio.sleep(0.3)
    assert not first.task.done()
    first.worker.shut_down()
    await asyncio.wait_for(first.task, 10)


def _frames(client_: Client, publisher: str) -> int:
    return client_.log(client_.slot_of(publisher, "video")).frames


async def _draining(registry: Registry, worker_id: str) -> bool | None:
    info = await registry.worker(worker_id)
    return None if info is None else info.draining
