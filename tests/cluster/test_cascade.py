"""Cascade (issue 17 item 4, docs/scale.md "Cascade"): one room spanning two real ``run.py sfu``
workers, a real redis-server, and the web side's ``RemoteSfu`` with aiortc peers in this process.
The span is chosen by the placement script (a span policy forces it), and the pipe between the
workers is opened by ``RemoteSfu`` through the workers' ``pipe_*`` requests; the media crosses as
UDP between the workers, never through Redis or this process."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from server.cluster.registry import Placement, Registry, SpanPolicy, connect, pipe_id
from server.cluster.remote import PIPE_REPAIR_S, RemoteSfu, WorkerSilent
from server.cluster.wire import StaleEpoch
from server.sfu import (
    InvalidRequest,
    InvalidState,
    NotInRoom,
    ParticipantConnected,
    ParticipantLeft,
    SfuEvent,
)
from tests.cluster.parts import Arrivals, Cascade
from tests.sfu.sfu_testkit import LUMA, Client, hears, sees_video, wait_until

pytestmark = pytest.mark.network

ROOM = Cascade.room


def _other(placement: Placement) -> tuple[str, str]:
    return next(w for w in placement.span if w != (placement.worker, placement.boot))


async def _pipe_stats(plane: RemoteSfu, placement: Placement, pipe: str) -> dict[str, Any]:
    stats: dict[str, Any] = await plane.call(placement, "pipe_stats", "", {"pipe": pipe})
    return stats


async def _gets_chair(client: Client) -> None:
    await wait_until(lambda: sees_video(client, "a") and hears(client, "a"), 30, f"{client.name} gets a")


async def _receives_continuously(arrivals: Arrivals, client: Client, publisher: str) -> None:
    """Decoded video and audio of ``publisher`` keep coming over two seconds."""
    video, audio = client.slot_of(publisher, "video"), client.slot_of(publisher, "audio")
    before = (client.log(video).frames, client.log(audio).frames)
    start = time.monotonic()
    await asyncio.sleep(2.0)
    assert client.log(video).frames - before[0] >= 8, client.logs
    assert client.log(audio).frames - before[1] >= 50, client.logs
    assert arrivals.count("video", start) >= 8 and arrivals.count("audio", start) >= 50
    assert arrivals.longest_gap("audio", start, time.monotonic()) < 1.0


async def test_a_room_spans_two_workers_and_media_keyframes_cross_the_pipe(cascade: Cascade) -> None:
    """Forced to span (CPU threshold 0): the chair stays on the room's home, the halls that join
    after it go to the second worker (added to the span, the pipe opened by the web side) or the
    least-loaded worker of the span; every hall receives the chair's video and audio, and a hall's
    keyframe request on the second worker gets a keyframe from the chair on the home. The web side
    hears of each participant once, from its own worker."""
    plane = await cascade.plane(SpanPolicy(cpu=0))
    events: list[SfuEvent] = []
    plane.subscribe(events.append)
    chair, chair_handle, _ = await cascade.join(plane, "a", luma=LUMA["a"], amplitude=8000)
    home = chair_handle.placement
    assert home.home and home.span == ((home.worker, home.boot),)

    halls = [await cascade.join(plane, f"hall{n}", video_slots=1, audio_slots=1) for n in range(3)]
    first = halls[0][1].placement
    assert first.grew and not first.home and first.worker != home.worker  # the span grew to worker 2
    assert first.epoch == home.epoch  # under the room's epoch: the chair's admission stays valid
    assert set(first.span) == {(home.worker, home.boot), (first.worker, first.boot)}
    assert not any(h.placement.grew for _, h, _ in halls[1:])  # one pipe, opened once
    for client, _, _ in halls:
        await _gets_chair(client)
    for client, _, arrivals in halls:
        await _receives_continuously(arrivals, client, "a")

    # The pipe: the chair goes out from the home and arrives on worker 2.
    pipe = pipe_id(home, (home.worker, home.boot), (first.worker, first.boot))
    sending, receiving = await _pipe_stats(plane, home, pipe), await _pipe_stats(plane, first, pipe)
    assert sending["sending"] == ["a"] and receiving["receiving"] == ["a"], (sending, receiving)
    assert receiving["packets_received"] > 100 and receiving["malformed"] == 0

    # A keyframe request from the hall on worker 2 crosses back to the chair on the home.
    client, _, arrivals = halls[0]
    await asyncio.sleep(2.5)  # past the first keyframes (aiortc's encoder sends no other on its own)
    arrivals.keyframes.clear()
    requests_before = sending["keyframe_requests"]
    receiver = next(t.receiver for t in client.pc.getTransceivers() if t.kind == "video")
    await receiver._send_rtcp_pli(arrivals.ssrc["video"])
    await wait_until(lambda: bool(arrivals.keyframes), 10, "a keyframe from a reaches the hall on worker 2")
    assert (await _pipe_stats(plane, home, pipe))["keyframe_requests"] > requests_before

    # Each participant is told once, by its own worker; nobody left (worker 2's view of the chair,
    # which came through the pipe, is not reported).
    connected = [e.participant_id for e in events if isinstance(e, ParticipantConnected)]
    assert sorted(connected) == ["a", "hall0", "hall1", "hall2"], connected
    assert not [e for e in events if isinstance(e, ParticipantLeft)]
    assert plane.room_ids == [ROOM]
    # The chair's media age comes from its own worker's reports (worker 2 reports the room too).
    await wait_until(lambda: (plane.media_age(ROOM, "a") or 99) < 5, 10, "the chair's media age")

    # The room's counters (/metrics, /admin/system) are every participant's, from both workers: the
    # halls on worker 2 too, and the chair once (worker 2's copy of it, from the pipe, is not counted).
    def forwarded() -> dict[str, int]:
        return {pid: c.packets_out for pid, c in plane.room_counters(ROOM).participants.items()}

    await wait_until(
        lambda: (
            set(forwarded()) == {"a", "hall0", "hall1", "hall2"}
            and all(forwarded()[f"hall{n}"] > 0 for n in range(3))
        ),
        5,
        "every participant's counters",
    )
    assert chair.pc.connectionState == "connected"


@pytest.mark.parametrize("cascade", [3], indirect=True, ids=["3-workers"])
async def test_a_room_spans_three_workers_and_every_publisher_reaches_every_worker(cascade: Cascade) -> None:
    """One participant a worker (a cap of one): the span grows twice, and each growth pipes the new
    worker to every worker already in the room, a full mesh. The chair on the home is seen and
    heard on both other workers, and the two halls (audio only, on workers 2 and 3) hear each
    other and are heard by the chair: media of a publisher that is not on the home crosses a pipe
    the home is not part of."""
    policy = SpanPolicy(cap=1)
    plane = await cascade.plane(policy)
    chair, chair_handle, _ = await cascade.join(plane, "a", luma=LUMA["a"], amplitude=8000, audio_slots=2)
    halls = [
        await cascade.join(plane, name, amplitude=6000 + 1000 * n, video_slots=1, audio_slots=2)
        for n, name in enumerate(("b", "c"))
    ]
    placements = [chair_handle.placement, *(h.placement for _, h, _ in halls)]
    assert len({p.worker for p in placements}) == 3, placements
    assert [p.grew for p in placements] == [False, True, True]
    (b, _, _), (c, _, _) = halls
    for hall in (b, c):
        await _gets_chair(hall)
    await wait_until(lambda: hears(b, "c") and hears(c, "b"), 30, "the halls hear each other")
    await wait_until(lambda: hears(chair, "b") and hears(chair, "c"), 30, "the chair hears both halls")
    # Three pipes, one per pair of workers, each connected at both ends.
    members = placements[-1].span
    assert len(members) == 3
    for i, one in enumerate(members):
        for other in members[i + 1 :]:
            pipe = pipe_id(placements[0], one, other)
            for end in (one, other):
                there = Placement(ROOM, end[0], end[1], placements[0].epoch, end == members[0], members)
                stats = await _pipe_stats(plane, there, pipe)
                assert stats["peer"] is not None and stats["closed"] is None, stats


async def test_a_span_grown_by_a_web_process_that_died_before_its_pipes_is_repaired(cascade: Cascade) -> None:
    """A web process's join grows the room's span to worker 2, and the process dies before it opens
    the pipes (here: the placement is made through the registry, and nothing else). The next join
    placed on worker 2, through another web process, is told there is no pipe there; after
    PIPE_REPAIR_S that process opens it, and the hall on worker 2 gets the chair from the home."""
    policy = SpanPolicy(cap=1)
    plane = await cascade.plane(policy)
    _chair, chair_handle, _ = await cascade.join(plane, "a", luma=LUMA["a"], amplitude=8000)
    home = chair_handle.placement
    redis = connect(cascade.redis.url)
    cascade.redises.append(redis)
    registry = Registry(redis)
    grown = await registry.place(ROOM, participant="ghost", span=policy)
    assert grown is not None and grown.grew and grown.worker != home.worker
    await registry.leave_member(grown, "ghost")  # its join never reached the worker

    other = await cascade.plane(policy)
    began = time.monotonic()
    hall, hall_handle, _arrivals = await cascade.join(other, "hall0", video_slots=1, audio_slots=1)
    placed = hall_handle.placement
    assert (placed.worker, placed.grew) == (grown.worker, False)  # on worker 2, the span not grown
    await _gets_chair(hall)
    assert time.monotonic() - began >= PIPE_REPAIR_S  # the repair waited for the grower first
    pipe = pipe_id(home, (home.worker, home.boot), (grown.worker, grown.boot))
    far, near = await _pipe_stats(other, placed, pipe), await _pipe_stats(other, home, pipe)
    assert far["receiving"] == ["a"] and near["sending"] == ["a"], (far, near)


async def test_pipe_requests_refuse_stale_epochs_and_unknown_pipes(cascade: Cascade) -> None:
    """The pipe requests are epoch-checked like every other request, and a bad request is answered
    with a clear error at once, never left to time out."""
    plane = await cascade.plane(SpanPolicy(cpu=0))
    _, chair, _ = await cascade.join(plane, "a", amplitude=8000)
    _, hall, _ = await cascade.join(plane, "hall", audio_slots=1)
    home, spanned = chair.placement, hall.placement
    assert spanned.grew and spanned.worker != home.worker
    pipe = pipe_id(home, (home.worker, home.boot), (spanned.worker, spanned.boot))
    assert (await _pipe_stats(plane, home, pipe))["peer"] is not None  # opened and connected

    async def carries_the_chair() -> bool:
        return bool((await _pipe_stats(plane, spanned, pipe))["receiving"] == ["a"])

    # The chair is piped once it publishes, and announced across within 250 ms. A loaded CI run
    # found nothing announced at the end of this test; waiting for it here first tells a pipe not
    # yet announced from one that the refused requests below broke.
    await _eventually(carries_the_chair, 20, "the pipe carries the chair")

    def at(placement: Placement, epoch: int) -> Placement:
        return Placement(ROOM, placement.worker, placement.boot, epoch, placement.home, placement.span)

    calls: list[tuple[Placement, str, dict[str, Any], type[Exception], str]] = [
        # an older epoch than the room's, on both workers, for each pipe request
        (at(home, home.epoch - 1), "pipe_open", {"pipe": "p2"}, StaleEpoch, "epoch"),
        (
            at(spanned, home.epoch - 1),
            "pipe_connect",
            {"pipe": pipe, "peer": ["127.0.0.1", 9]},
            StaleEpoch,
            "epoch",
        ),
        (at(home, home.epoch - 1), "pipe_out", {"pipe": pipe, "publisher": "a"}, StaleEpoch, "epoch"),
        (at(home, home.epoch - 1), "pipe_close", {"pipe": pipe}, StaleEpoch, "epoch"),
        # a newer epoch than Redis has placed: not this worker's room
        (at(spanned, home.epoch + 5), "pipe_open", {"pipe": "p3"}, StaleEpoch, "epoch"),
        # unknown pipes, and a pipe of another room
        (home, "pipe_connect", {"pipe": "nope", "peer": ["127.0.0.1", 9]}, InvalidState, "no open pipe"),
        (home, "pipe_out", {"pipe": "nope", "publisher": "a"}, InvalidState, "no open pipe"),
        (home, "pipe_close", {"pipe": None}, InvalidState, "no open pipe"),
        (home, "pipe_stats", {"pipe": "nope"}, InvalidState, "no open pipe"),
        # malformed or unsafe
        (home, "pipe_open", {"pipe": pipe}, InvalidState, "already open"),
        (home, "pipe_open", {"pipe": 5}, InvalidRequest, "pipe"),
        (home, "pipe_open", {"pipe": "p4", "timeout": 0}, InvalidRequest, "timeout"),
        (home, "pipe_connect", {"pipe": pipe, "peer": "127.0.0.1:9"}, InvalidRequest, r"\[ip, port\]"),
        (home, "pipe_out", {"pipe": pipe, "publisher": "nobody"}, NotInRoom, "nobody"),
    ]
    for placement, method, args, error, message in calls:
        started = time.monotonic()
        with pytest.raises(error, match=message) as raised:
            await plane.call(placement, method, "", args, timeout=4)
        assert not isinstance(raised.value, WorkerSilent), (method, args)
        assert time.monotonic() - started < 4, (method, args)
    # A pipe open on a public address is refused by the worker's SFU (plain RTP stays internal).
    open_pipe = {"pipe": "p5"}
    address = (await plane.call(home, "pipe_open", "", open_pipe))["address"]
    assert address[0] == "127.0.0.1"
    with pytest.raises(InvalidRequest, match="not a loopback or internal"):
        await plane.call(home, "pipe_connect", "", {"pipe": "p5", "peer": ["8.8.8.8", 5000]})
    await plane.call(home, "pipe_close", "", open_pipe)
    with pytest.raises(InvalidState, match="no open pipe"):
        await plane.call(home, "pipe_stats", "", open_pipe)
    # The requests refused changed nothing: the room's pipe still carries.
    after = await _pipe_stats(plane, spanned, pipe)
    assert after["receiving"] == ["a"], after


async def test_killing_the_second_worker_leaves_the_homes_media_unbroken(cascade: Cascade) -> None:
    """At most 2 of the room's participants per worker: the chair and one hall on the home, two
    halls on the second worker. SIGKILL of the second worker: the home's hall gets the chair's
    media with no gap of a second, the home's end of the pipe closes, the killed worker's halls get
    ``left`` (and join again, on the home)."""
    plane = await cascade.plane(SpanPolicy(cap=2))
    events: list[SfuEvent] = []
    plane.subscribe(events.append)
    _, chair, _ = await cascade.join(plane, "a", luma=LUMA["a"], amplitude=8000)
    near, near_handle, near_arrivals = await cascade.join(plane, "near", video_slots=1, audio_slots=1)
    far = [await cascade.join(plane, f"far{n}", video_slots=1, audio_slots=1) for n in range(2)]
    home = chair.placement
    assert near_handle.placement == home
    spanned = far[0][1].placement
    assert spanned.grew and spanned.worker != home.worker and far[1][1].placement == spanned
    for client, _, _ in [(near, near_handle, near_arrivals), *far]:
        await _gets_chair(client)
    pipe = pipe_id(home, (home.worker, home.boot), (spanned.worker, spanned.boot))
    assert (await _pipe_stats(plane, home, pipe))["sending"] == ["a"]

    start = time.monotonic()
    await asyncio.sleep(1.0)
    cascade.workers[spanned.worker].stop(signal.SIGKILL)
    killed = time.monotonic()

    def left(name: str) -> bool:
        return any(isinstance(e, ParticipantLeft) and e.participant_id == name for e in events)

    await wait_until(lambda: left("far0") and left("far1"), 15, "the killed worker's halls get left")
    assert all(e.reason == "transport-failed" for e in events if isinstance(e, ParticipantLeft))
    assert not left("a") and not left("near")

    async def pipe_closed() -> bool:
        try:
            await _pipe_stats(plane, home, pipe)
        except InvalidState:
            return True
        return False

    await _eventually(pipe_closed, 10, "the home's end of the pipe closes")
    await asyncio.sleep(1.0)
    end = time.monotonic()
    for kind in ("video", "audio"):
        gap = near_arrivals.longest_gap(kind, start, end)
        assert gap < 1.0, f"{kind} gap of {gap:.2f} s on the home (killed at +{killed - start:.1f} s)"
    assert near_arrivals.count("video", killed) >= 10

    # A killed worker's hall joins again: placed on the live worker of the span, it gets the chair.
    again, again_handle, _ = await cascade.join(plane, "far0", video_slots=1, audio_slots=1)
    assert (again_handle.placement.worker, again_handle.placement.epoch) == (home.worker, home.epoch)
    await _gets_chair(again)


async def _eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.2)


async def test_killing_the_home_places_the_room_again_on_the_second_worker(cascade: Cascade) -> None:
    """SIGKILL of the room's home: its participants and those of the second worker all get
    ``left`` (the room is placed again, with a new epoch, which the old span is no part of); they
    join again on the live worker, where the pipe of the old placement is closed at once, so the
    chair joins under its own id and its hall gets it."""
    plane = await cascade.plane(SpanPolicy(cap=2))
    events: list[SfuEvent] = []
    plane.subscribe(events.append)
    _, chair, _ = await cascade.join(plane, "a", luma=LUMA["a"], amplitude=8000)
    await cascade.join(plane, "near", video_slots=1, audio_slots=1)
    far, far_handle, _ = await cascade.join(plane, "far", video_slots=1, audio_slots=1)
    home, spanned = chair.placement, far_handle.placement
    assert spanned.grew and spanned.worker != home.worker
    await _gets_chair(far)

    cascade.workers[home.worker].stop(signal.SIGKILL)

    def left(name: str) -> bool:
        return any(isinstance(e, ParticipantLeft) and e.participant_id == name for e in events)

    await wait_until(lambda: all(left(n) for n in ("a", "near", "far")), 15, "everyone gets left")
    for client in cascade.clients:  # their peer connections led to the dead worker
        await client.close()
    _, chair_again, _ = await cascade.join(plane, "a", luma=LUMA["a"], amplitude=8000)
    placed = chair_again.placement
    assert (placed.worker, placed.home) == (spanned.worker, True) and placed.epoch > home.epoch
    far_again, far_handle_again, _ = await cascade.join(plane, "far", video_slots=1, audio_slots=1)
    assert far_handle_again.placement == placed
    await _gets_chair(far_again)
