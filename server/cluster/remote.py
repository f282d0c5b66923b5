"""The web process's media plane: the rooms live in SFU worker processes, reached through Redis.

:class:`RemoteSfu` makes the calls of :class:`server.sfu.Sfu` that the room hub makes
(:class:`server.cluster.plane.MediaPlane`), so the hub runs unchanged in ``run.py web``:

* ``admit`` places the room (the registry's Lua script: its live worker, or the least-loaded
  live one with a new epoch) and asks that worker; a worker that does not answer and is no longer
  registered is excluded and the room placed again;
* every other call goes to the worker and epoch of the participant's admission; an answer
  carrying another epoch is refused (:class:`StaleEpoch`), as is a request the worker finds stale;
* the hub's synchronous reads (slots, active speaker, media age, recording, rooms) come from a
  mirror kept by the workers' events and their media reports (one a second), and so do the
  rooms' counters that /metrics and /admin/system read (:class:`MediaCounters`);
* a worker whose registration expired and that has gone quiet is dead: each participant this
  process admitted there gets ``ParticipantLeft(reason="transport-failed")``, so its page joins
  again, and the join places the room on a live worker;
* with a :class:`SpanPolicy`, a room spans workers when it outgrows its home (cascade,
  docs/scale.md): each join goes to the worker the placement script chooses, each participant's
  requests to its own worker, and the process whose join grew the span opens the pipes between
  the new worker and each other worker of the room (``pipe_open`` on both, then ``pipe_connect``).

Redis unreachable, no live worker, or no answer in time: :class:`Unavailable` (``unavailable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rtc.recorded import Mark, RecordedFile
from server.background import FailureStreak
from server.cluster.plane import MediaHandle, RoomCounters, TakenOver
from server.cluster.registry import (
    EVENTS_CHANNEL,
    HEARTBEAT_S,
    WEB_REFRESH_S,
    WORKER_TTL_MS,
    HandoverRecord,
    Placement,
    Registry,
    SpanPolicy,
    pipe_id,
    reply_key,
    token_digest,
)
from server.cluster.wire import (
    StaleEpoch,
    Unavailable,
    counters_from_json,
    dumps,
    error_from_json,
    event_from_json,
    file_from_json,
    mark_from_json,
)
from server.sfu import (
    ActiveSpeakerChanged,
    InvalidRequest,
    InvalidState,
    Listener,
    Listeners,
    NotInRoom,
    ParticipantLeft,
    RoomNotFound,
    SfuError,
    SfuEvent,
    SlotAssigned,
)

log = logging.getLogger(__name__)

#: Seconds to wait for a worker's answer. An offer includes the worker's ICE gathering.
CALL_TIMEOUT_S = 5.0
OFFER_TIMEOUT_S = 10.0
#: A request queue outlives a worker that died with requests in it by this long.
QUEUE_TTL_S = 30
#: How often the registrations of the workers this process uses are checked.
WATCH_S = 0.5
#: A worker is dead when its registration is gone and nothing was heard from it for this long.
SILENCE_S = WORKER_TTL_MS / 1000
#: At shutdown, how long the background loops may take to stop (each turn is at most ~1 s).
CLOSE_WAIT_S = 5.0
#: How long a join waits for its charge (server/cluster/registry.py JOIN_COST_ESTIMATE) at most:
#: the charge is a hint for placement, and a Redis slow enough to miss this fails the next call
#: that matters instead (redis-py's own timeout, 5 s, would hold the join that long).
CHARGE_TIMEOUT_S = 1.0
#: Placements tried per join: the current one, then others when a worker does not answer.
PLACE_ATTEMPTS = 3
#: A join let in on a worker of a spanning room without a pipe to another worker of the span
#: waits this long for the join that grew the span to open it, then opens it itself (cascade).
PIPE_REPAIR_S = 3.0


@dataclass
class RemoteRecording:
    """A room's running recording as the web processes know it (the worker holds the files)."""

    started_at: datetime
    directory: Path
    marks: list[Mark] = field(default_factory=list)


@dataclass
class HostedRoom:
    placement: Placement
    seen_at: float
    ages: dict[str, tuple[float | None, float]] = field(default_factory=dict)  # pid -> (age, when)
    #: The latest report's counters (None: none reported yet, or the room stopped being reported).
    counters: RoomCounters | None = None
    #: The counters of the participants on the other workers of the room's span, by (worker, boot),
    #: with when they were reported (cascade: the home reports only its own participants).
    spanned: dict[tuple[str, str], tuple[RoomCounters, float]] = field(default_factory=dict)


class RemoteHandle:
    """One participant admitted on a worker, bound to that worker's placement of its room."""

    def __init__(self, plane: RemoteSfu, placement: Placement, participant_id: str, gen: int) -> None:
        self._plane = plane
        self.placement = placement
        self.room_id = placement.room_id
        self.participant_id = participant_id
        self.gen = gen
        self._slots: dict[str, str | None] = {}

    async def handle_offer(self, sdp: str) -> str:
        result = await self._plane.call(
            self.placement, "offer", self.participant_id, {"sdp": sdp}, timeout=OFFER_TIMEOUT_S
        )
        self._slots.update(result["slots"])
        return str(result["sdp"])

    async def add_ice_candidate(
        self, candidate: str | None, sdp_mid: str | None = None, sdp_mline_index: int | None = None
    ) -> None:
        args = {"candidate": candidate, "sdp_mid": sdp_mid, "sdp_mline_index": sdp_mline_index}
        await self._plane.call(self.placement, "ice", self.participant_id, args)

    def set_visible_videos(self, publisher_ids: Sequence[str] | None) -> None:
        # Synchronous in the hub's interface: sent in the background, after earlier requests.
        ids = None if publisher_ids is None else list(publisher_ids)
        self._plane.send_later(self.placement, "visible", self.participant_id, {"publisher_ids": ids})

    def set_tile_sizes(self, sizes: Mapping[str, Sequence[int]]) -> None:
        # Parsed by the hub (TilesRequest) and checked again by the worker's Sfu; sent in the
        # background after earlier requests, like `visible`.
        report = {str(publisher): [int(v) for v in size] for publisher, size in sizes.items()}
        self._plane.send_later(self.placement, "tiles", self.participant_id, {"sizes": report})

    def slot_changed(self, mid: str, publisher_id: str | None) -> None:
        self._slots[mid] = publisher_id

    def slots(self) -> dict[str, str | None]:
        return dict(self._slots)

    async def leave(self) -> None:
        # Not waited for: a page leaving (or its socket dropping) must not wait for a worker that
        # may be stopping or gone; a join that follows under the same id is queued after it.
        self._plane.forget(self)
        # (its generation: a web process whose participant was taken over meanwhile leaves nothing)
        await self._plane.send(self.placement, "leave", self.participant_id, {"gen": self.gen})


class RemoteSfu:
    """See the module docstring. ``start()`` before use, ``close()`` at shutdown."""

    def __init__(self, redis: Redis, *, web_id: str | None = None, span: SpanPolicy | None = None) -> None:
        """``span``: when a room spans workers (None: never; a room lives on one worker)."""
        self.redis = redis
        self.registry = Registry(redis)
        self.span = span if span is not None else SpanPolicy()
        self.web_id = web_id or secrets.token_hex(8)
        self.replies = reply_key(self.web_id)
        self._listeners = Listeners()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._waiting_on: dict[str, tuple[str, str]] = {}  # request id -> (worker, boot)
        self._handles: dict[tuple[str, str], RemoteHandle] = {}
        self._hosted: dict[str, HostedRoom] = {}  # every room some live worker reports
        self._speakers: dict[str, str | None] = {}
        self._recordings: dict[str, RemoteRecording] = {}
        self._heard: dict[tuple[str, str], float] = {}  # (worker, boot) -> last message
        self._chains: dict[str, asyncio.Task[None]] = {}  # per room or participant: ordered sends
        # One send at a time: requests reach a worker's queue in the order the hub made them.
        self._send_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.redis_health = FailureStreak("the SFU control plane's Redis", log)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._read_replies(), name="cluster-replies"),
            asyncio.create_task(self._read_events(), name="cluster-events"),
            asyncio.create_task(self._watch_workers(), name="cluster-watch"),
            asyncio.create_task(self._keep_alive(), name="cluster-alive"),
        ]

    async def close(self) -> None:
        # The flag too: a cancellation that lands while redis-py's own timeout fires comes out as
        # a Redis timeout, which the loops retry; they stop at their next turn instead.
        self._closing = True
        tasks = [*self._tasks, *self._chains.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
        self._chains.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(Unavailable("the web process is stopping"))
        # The workers remove this process's participants now rather than when the record expires.
        with contextlib.suppress(RedisError):
            await self.registry.web_gone(self.web_id)

    async def _keep_alive(self) -> None:
        while not self._closing:
            try:
                await self.registry.web_alive(self.web_id)
            except RedisError:
                pass  # the workers cannot read it either; the record outlives a short outage
            await asyncio.sleep(WEB_REFRESH_S)

    # -- the calls ----------------------------------------------------------------------------
    async def call(
        self,
        placement: Placement,
        method: str,
        pid: str,
        args: dict[str, Any],
        *,
        timeout: float = CALL_TIMEOUT_S,
    ) -> Any:
        """Ask the placement's worker; its result, or the SFU error it answered with."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._waiting_on[request_id] = (placement.worker, placement.boot)
        try:
            await self._push(placement, method, pid, args, request_id, self.replies, timeout)
            try:
                reply = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise WorkerSilent(placement, method) from None
        finally:
            self._pending.pop(request_id, None)
            self._waiting_on.pop(request_id, None)
        if (reply.get("worker"), reply.get("boot")) != (placement.worker, placement.boot) or (
            reply.get("epoch") is not None and reply.get("epoch") != placement.epoch
        ):
            # Mostly a worker that lost the room and had it placed on itself again; what it says
            # is about another placement than the one this request was for.
            raise StaleEpoch(
                f"answer for room {placement.room_id} at epoch {reply.get('epoch')} from worker "
                f"{reply.get('worker')}; the request was for epoch {placement.epoch}"
            )
        if not reply.get("ok"):
            raise error_from_json(reply.get("error") or {})
        return reply.get("result")

    async def send(self, placement: Placement, method: str, pid: str, args: dict[str, Any]) -> None:
        """Queue a request for the placement's worker without waiting for it (no answer is sent).
        Later requests about the same participant still run after it."""
        await self._push(placement, method, pid, args, uuid.uuid4().hex, "", CALL_TIMEOUT_S)

    async def _push(
        self,
        placement: Placement,
        method: str,
        pid: str,
        args: dict[str, Any],
        request_id: str,
        reply: str,
        timeout: float,
    ) -> None:
        request = {
            "id": request_id,
            "reply": reply,
            "method": method,
            "room": placement.room_id,
            "epoch": placement.epoch,
            "pid": pid,
            "args": args,
            "expires": time.time() + timeout,
        }
        try:
            async with self._send_lock:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.lpush(placement.queue, dumps(request))
                    pipe.expire(placement.queue, QUEUE_TTL_S)
                    await pipe.execute()
        except RedisError:
            raise Unavailable("the media service is not reachable (Redis); try again") from None

    def send_later(self, placement: Placement, method: str, pid: str, args: dict[str, Any]) -> None:
        """A call made from a synchronous method: queued after earlier ones of the same
        participant; a failure is logged (the hub's synchronous calls cannot get it)."""

        async def send() -> None:
            try:
                await self.call(placement, method, pid, args)
            except Exception as exc:
                log.warning(
                    "background SFU request failed: %s",
                    exc,
                    extra={"method": method, "room_id": placement.room_id, "participant": pid},
                )

        self._chain(f"{placement.room_id}/{pid}", send)

    def _chain(self, key: str, work: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        previous = self._chains.get(key)

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(BaseException):
                    await previous
            await work()

        task = asyncio.get_running_loop().create_task(run())
        self._chains[key] = task
        task.add_done_callback(lambda t: self._chains.pop(key, None) if self._chains.get(key) is t else None)
        return task

    async def _place(
        self, room_id: str, exclude: tuple[str, str] | None = None, participant: str = ""
    ) -> Placement:
        """The room's placement; with ``participant`` joining (and a span policy), the worker of
        the room that takes it."""
        joining = participant if self.span.active else ""
        try:
            placement = await self.registry.place(
                room_id, exclude=exclude, participant=joining, span=self.span
            )
        except RedisError:
            raise Unavailable("the media service is not reachable (Redis); try again") from None
        if placement is None:
            raise Unavailable("no SFU worker is running; try again")
        return placement

    async def _charge_join(self, placement: Placement, participant_id: str) -> None:
        """Charge the worker for the participant it just admitted, so placements in the next few
        seconds see the join before its CPU measure does. The participant is in already: a failed
        charge costs only that hint, never the join."""
        try:
            async with asyncio.timeout(CHARGE_TIMEOUT_S):
                await self.registry.charge_join(placement, participant_id)
        except (RedisError, TimeoutError) as exc:
            log.warning(
                "join admitted, but charging it to its SFU worker failed (placement will not see "
                "it until the worker's CPU measure does): %s: %s",
                type(exc).__name__,
                exc,
                extra={
                    "room_id": placement.room_id,
                    "worker": placement.worker,
                    "participant": participant_id,
                },
            )

    async def _worker_gone(self, placement: Placement) -> bool:
        """The worker is not registered any more (or another boot has its id)."""
        try:
            info = await self.registry.worker(placement.worker)
        except RedisError:
            return False  # cannot tell: not a reason to move a room
        return info is None or info.boot != placement.boot

    # -- MediaPlane ---------------------------------------------------------------------------
    @property
    def room_ids(self) -> list[str]:
        """The rooms open on live workers (from their media reports), and those placed here."""
        rooms = set(self._hosted) | {room for room, _pid in self._handles}
        return sorted(rooms)

    def room_counters(self, room_id: str) -> RoomCounters:
        """The room's counters from its workers' latest media reports (at most a second old): its
        home's, with the participants on the other workers of its span."""
        hosted = self._hosted.get(room_id)
        if hosted is None or hosted.counters is None:
            raise RoomNotFound(f"no SFU worker reports room {room_id!r}")
        now = time.monotonic()
        spanned = [c for c, at in hosted.spanned.values() if now - at <= 2 * SILENCE_S]
        if not spanned:
            return hosted.counters
        participants = dict(hosted.counters.participants)
        for counters in spanned:
            participants.update(counters.participants)
        return RoomCounters(participants, hosted.counters.recording_bytes)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._listeners.subscribe(listener)

    def _emit(self, event: SfuEvent) -> None:
        self._listeners.emit(event)

    def open_room(self, room_id: str) -> None:
        # The room opens on its worker with the first admission (placement); only checked here.
        if not isinstance(room_id, str) or not room_id or len(room_id) > 200:
            raise InvalidRequest("room id must be a non-empty string of at most 200 characters")

    async def admit(
        self, room_id: str, participant_id: str, *, audio_max_bitrate: int | None = None
    ) -> RemoteHandle:
        exclude: tuple[str, str] | None = None
        for _attempt in range(PLACE_ATTEMPTS):
            placement = await self._place(room_id, exclude, participant_id)
            args = {"audio_max_bitrate": audio_max_bitrate, "web": self.web_id}
            try:
                if placement.grew:
                    await self.open_pipes(placement)
                result = await self.call(placement, "admit", participant_id, args)
            except StaleEpoch:
                continue  # placed again meanwhile: ask the new placement
            except WorkerSilent:
                if not await self._worker_gone(placement):
                    raise
                # The room's worker died: forget its placement and put the room elsewhere.
                log.warning(
                    "SFU worker did not answer and is gone; placing the room again",
                    extra={"room_id": room_id, "worker": placement.worker},
                )
                with contextlib.suppress(RedisError):
                    await self.registry.unplace(placement)
                exclude = (placement.worker, placement.boot)
                continue
            await self._charge_join(placement, participant_id)
            if not placement.grew and (unpiped := self._unpiped(placement, result.get("pipes"))):
                self._later(self._repair_pipes(placement, unpiped))
            handle = RemoteHandle(self, placement, participant_id, int(result["gen"]))
            self._handles[(room_id, participant_id)] = handle
            home = self._home_of(placement)
            self._hosted.setdefault(room_id, HostedRoom(home, time.monotonic()))
            self._speakers[room_id] = result.get("active_speaker")
            return handle
        raise Unavailable("no SFU worker took the room; try again")

    # -- handover (docs/scale.md "Handover") --------------------------------------------------
    async def keep_for_handover(self, handle: MediaHandle, token: str) -> None:
        assert isinstance(handle, RemoteHandle)
        record = HandoverRecord(token_digest(token), handle.placement, handle.gen)
        try:
            await self.registry.keep_handover(record, handle.participant_id)
        except RedisError as exc:
            # Only a takeover needs it: should this web process die, its page starts over.
            log.warning("handover record not written: %s", exc, extra={"room_id": handle.room_id})

    async def take_over(self, room_id: str, participant_id: str, token: str) -> TakenOver | None:
        try:
            record = await self.registry.handover(room_id, participant_id)
        except RedisError as exc:
            log.warning("handover record not read: %s", exc, extra={"room_id": room_id})
            return None
        if record is None or not secrets.compare_digest(record.digest, token_digest(token)):
            return None
        args = {"web": self.web_id, "gen": record.gen}
        try:
            result = await self.call(record.placement, "take_over", participant_id, args)
        except SfuError as exc:
            # Gone with its worker, admitted again, or the room placed again: nothing to take over.
            log.info("no takeover: %s", exc, extra={"room_id": room_id})
            return None
        handle = RemoteHandle(self, record.placement, participant_id, int(result["gen"]))
        handle._slots.update(result.get("slots") or {})
        self._handles[(room_id, participant_id)] = handle
        self._hosted.setdefault(room_id, HostedRoom(self._home_of(record.placement), time.monotonic()))
        self._speakers[room_id] = result.get("active_speaker")
        await self.keep_for_handover(handle, token)  # its new generation, for a further takeover
        return TakenOver(handle, bool(result.get("connected")))

    async def keep_floor(self, room_id: str, state: Mapping[str, Any]) -> None:
        try:
            await self.registry.keep_floor(room_id, json.dumps(state))
        except RedisError as exc:
            # Should this web process die, the room's next one starts the floor afresh.
            log.warning("floor not kept: %s", exc, extra={"room_id": room_id})

    async def kept_floor(self, room_id: str) -> dict[str, Any] | None:
        try:
            raw = await self.registry.kept_floor(room_id)
            state = None if raw is None else json.loads(raw)
        except (RedisError, ValueError) as exc:
            log.warning("kept floor not read: %s", exc, extra={"room_id": room_id})
            return None
        return state if isinstance(state, dict) else None

    def forget(self, handle: RemoteHandle) -> None:
        key = (handle.room_id, handle.participant_id)
        if self._handles.get(key) is handle:
            del self._handles[key]
        if self.span.active:
            self._later(self._leave_member(handle.placement, handle.participant_id))

    async def _leave_member(self, placement: Placement, participant_id: str) -> None:
        try:
            await self.registry.leave_member(placement, participant_id)
        except RedisError as exc:
            # It counts against its worker's share of the room until the room is placed again.
            log.warning("a participant's leave not recorded for placement: %s", exc)

    # -- cascade ------------------------------------------------------------------------------
    @staticmethod
    def _home_of(placement: Placement) -> Placement:
        """The room's home placement, from a placement on any worker of its span."""
        if placement.home or not placement.span:
            return placement
        worker, boot = placement.span[0]
        return Placement(placement.room_id, worker, boot, placement.epoch, True, placement.span)

    @staticmethod
    def _on_worker(placement: Placement, worker: tuple[str, str]) -> Placement:
        """The same room and epoch on another worker of its span."""
        home = bool(placement.span) and placement.span[0] == worker
        return Placement(placement.room_id, worker[0], worker[1], placement.epoch, home, placement.span)

    async def open_pipes(self, placement: Placement) -> None:
        """Join ``placement``'s worker, just added to the room's span, to each other worker of the
        span by a pipe: both ends opened (each on its worker's registered internal address), then
        each connected to the other; from then each worker pipes its own participants. Any
        failure is the worker's that did not answer or refused: it is taken out of the span
        (Unavailable; the join is placed again)."""
        new = (placement.worker, placement.boot)
        for other in placement.span:
            if other == new:
                continue
            there = self._on_worker(placement, other)
            pipe = pipe_id(placement, new, other)
            try:
                await self._join_ends(placement, there, pipe)
            except Exception as exc:
                log.warning(
                    "the pipe to a worker just added to the room's span failed; taking it out: %s",
                    exc,
                    extra={"room_id": placement.room_id, "worker": placement.worker, "pipe": pipe},
                )
                with contextlib.suppress(RedisError):
                    await self.registry.unplace(placement)
                for end in (placement, there):  # an end opened but never connected never times out
                    with contextlib.suppress(SfuError):
                        await self.call(end, "pipe_close", "", {"pipe": pipe})
                if isinstance(exc, StaleEpoch):
                    raise
                raise WorkerSilent(placement, "pipe_open") from exc

    async def _join_ends(self, here: Placement, there: Placement, pipe: str) -> None:
        """Open ``pipe``'s end on both workers, then connect each to the other."""
        here_at, there_at = await asyncio.gather(
            self.call(here, "pipe_open", "", {"pipe": pipe}),
            self.call(there, "pipe_open", "", {"pipe": pipe}),
        )
        await asyncio.gather(
            self.call(here, "pipe_connect", "", {"pipe": pipe, "peer": there_at["address"]}),
            self.call(there, "pipe_connect", "", {"pipe": pipe, "peer": here_at["address"]}),
        )

    def _unpiped(self, placement: Placement, connected: object) -> list[tuple[str, str]]:
        """The workers of ``placement``'s span that its worker has no connected pipe to, by the
        admission's answer (``connected``: the pipe ids there)."""
        if len(placement.span) < 2 or not isinstance(connected, list):
            return []
        here = (placement.worker, placement.boot)
        return [w for w in placement.span if w != here and pipe_id(placement, here, w) not in connected]

    async def _repair_pipes(self, placement: Placement, others: list[tuple[str, str]]) -> None:
        """A join was let in on a worker of a spanning room that has no pipe to ``others``: the
        web process whose join grew the span died before it opened them (or is still opening
        them). After ``PIPE_REPAIR_S``, each pipe still not connected is opened again, ends that
        were opened but never connected closed first, by one web process at a time. Without this
        the worker's participants would see nobody of the other workers until the room moved."""
        await asyncio.sleep(PIPE_REPAIR_S)
        here = (placement.worker, placement.boot)
        for other in others:
            pipe = pipe_id(placement, here, other)
            there = self._on_worker(placement, other)
            try:
                stats = await self.call(placement, "pipe_stats", "", {"pipe": pipe})
                if stats.get("peer") is not None and stats.get("closed") is None:
                    continue  # the join that grew the span connected it meanwhile
            except StaleEpoch:
                return  # the room moved: its new placement has its own pipes
            except InvalidState:
                pass  # not open here
            except SfuError:
                return  # the worker is gone or unreachable: the room is placed again
            try:
                if not await self.registry.claim_pipe_repair(pipe, PIPE_REPAIR_S * 4):
                    continue  # another web process repairs it
            except RedisError:
                return
            log.warning(
                "a worker of a spanning room had no pipe to another; opening it",
                extra={"room_id": placement.room_id, "worker": placement.worker, "pipe": pipe},
            )
            for end in (placement, there):
                with contextlib.suppress(SfuError):
                    await self.call(end, "pipe_close", "", {"pipe": pipe})
            try:
                await self._join_ends(placement, there, pipe)
            except SfuError as exc:  # (WorkerSilent, Unavailable: SfuErrors too)
                log.warning("the pipe could not be opened: %s", exc, extra={"pipe": pipe})
                for end in (placement, there):
                    with contextlib.suppress(SfuError):
                        await self.call(end, "pipe_close", "", {"pipe": pipe})

    def participant(self, room_id: str, participant_id: str) -> RemoteHandle:
        handle = self._handles.get((room_id, participant_id))
        if handle is None:
            raise NotInRoom(f"{participant_id!r} was not admitted to room {room_id!r} by this process")
        return handle

    def active_speaker(self, room_id: str) -> str | None:
        return self._speakers.get(room_id)

    def media_age(self, room_id: str, participant_id: str) -> float | None:
        hosted = self._hosted.get(room_id)
        seen = hosted.ages.get(participant_id) if hosted is not None else None
        if seen is None:
            return None
        age, when = seen
        return None if age is None else age + (time.monotonic() - when)

    async def close_room(self, room_id: str) -> None:
        try:
            placement = await self.registry.placement_of(room_id)
        except RedisError:
            raise Unavailable("the media service is not reachable (Redis); try again") from None
        self._forget_room(room_id)
        if placement is not None:
            # The workers the room spans to first: the home's close forgets the placement.
            for worker in [*placement.span[1:], placement.span[0]]:
                with contextlib.suppress(NotInRoom, RoomNotFound, WorkerSilent):
                    await self.call(self._on_worker(placement, worker), "close_room", "", {})

    def _forget_room(self, room_id: str) -> None:
        self._hosted.pop(room_id, None)
        self._speakers.pop(room_id, None)
        self._recordings.pop(room_id, None)
        for key in [k for k in self._handles if k[0] == room_id]:
            del self._handles[key]

    # -- recording ----------------------------------------------------------------------------
    def recording(self, room_id: str) -> RemoteRecording | None:
        return self._recordings.get(room_id)

    def start_recording(self, room_id: str, directory: Path) -> RemoteRecording:
        if room_id in self._recordings:
            raise InvalidState(f"room {room_id!r} is already being recorded")
        session = RemoteRecording(datetime.now(UTC), Path(directory))
        self._recordings[room_id] = session

        async def start() -> None:
            try:
                placement = await self._place(room_id)
                await self.call(placement, "start_recording", "", {"directory": str(directory)})
            except Exception as exc:
                log.error("starting the recording failed: %s", exc, extra={"room_id": room_id})
                if self._recordings.get(room_id) is session:
                    del self._recordings[room_id]

        self._chain(f"{room_id}/recording", start)
        return session

    def mark(self, room_id: str, label: str) -> Mark:
        if not isinstance(label, str) or not label or len(label) > 500:
            raise InvalidRequest("label must be a non-empty string of at most 500 characters")
        session = self._recordings.get(room_id)
        if session is None:
            raise InvalidState(f"room {room_id!r} is not being recorded")
        now = datetime.now(UTC)
        mark = Mark(label, now, (now - session.started_at).total_seconds())
        session.marks.append(mark)  # the worker's own mark (its clock) replaces it on its report

        async def send() -> None:
            try:
                placement = await self._place(room_id)
                await self.call(placement, "mark", "", {"label": label})
            except Exception as exc:
                log.error("a recording mark failed: %s", exc, extra={"room_id": room_id})

        self._chain(f"{room_id}/recording", send)
        return mark

    async def stop_recording(self, room_id: str) -> list[RecordedFile]:
        pending = self._chains.get(f"{room_id}/recording")
        if pending is not None:
            with contextlib.suppress(BaseException):
                await pending
        placement = await self._place(room_id)
        result = await self.call(placement, "stop_recording", "", {}, timeout=OFFER_TIMEOUT_S)
        self._recordings.pop(room_id, None)
        return [file_from_json(f) for f in result["files"]]

    # -- what the workers tell --------------------------------------------------------------
    async def _read_replies(self) -> None:
        while not self._closing:
            try:
                popped = await self.redis.brpop([self.replies], timeout=1)
            except RedisError as exc:
                self.redis_health.failed(exc)
                await asyncio.sleep(0.5)
                continue
            self.redis_health.succeeded()
            if popped is None:
                continue
            try:
                reply = json.loads(popped[1])
                future = self._pending.get(str(reply.get("id")))
            except (ValueError, AttributeError):
                log.warning("unreadable reply dropped")
                continue
            if future is not None and not future.done():
                future.set_result(reply)

    async def _read_events(self) -> None:
        while not self._closing:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(EVENTS_CHANNEL)
                while not self._closing:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message["data"])
            except RedisError as exc:
                self.redis_health.failed(exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _on_message(self, raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
            kind = message["kind"]
            worker, boot = str(message["worker"]), str(message["boot"])
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable SFU worker message dropped")
            return
        self._heard[(worker, boot)] = time.monotonic()
        try:
            if kind == "event":
                self._on_event(message, event_from_json(message["event"]))
            elif kind == "media":
                self._on_media(worker, boot, message["rooms"])
            elif kind == "recording":
                self._set_recording(str(message["room"]), message["state"])
            elif kind == "bye":  # a worker stopping (SIGTERM): its participants move now
                self._later(self._on_worker_dead(worker, boot))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("SFU worker message dropped: %s", exc, extra={"kind": kind})

    def _on_event(self, message: dict[str, Any], event: SfuEvent) -> None:
        hosted = self._hosted.get(event.room_id)
        epoch = message.get("epoch")
        if hosted is not None and isinstance(epoch, int) and epoch < hosted.placement.epoch:
            # From a worker the room has moved away from (it was taken for dead): not this room.
            log.info("event from a stale placement dropped", extra={"room_id": event.room_id})
            return
        if isinstance(event, ActiveSpeakerChanged):
            self._speakers[event.room_id] = event.participant_id
            if not any(room == event.room_id for room, _pid in self._handles):
                # The hub tells a room by a socket.io room emit, which the Redis manager carries to
                # every web process: only those with participants there pass it on, or a page
                # would hear it once from each web process.
                return
        elif isinstance(event, SlotAssigned):
            if (handle := self._handles.get((event.room_id, event.subscriber_id))) is not None:
                handle.slot_changed(event.mid, event.publisher_id)
        elif isinstance(event, ParticipantLeft):
            handle = self._handles.get((event.room_id, event.participant_id))
            # Only the admission the event is about: a newer one under the same id stays.
            if handle is not None and message.get("gen") in (None, handle.gen):
                del self._handles[(event.room_id, event.participant_id)]
        self._emit(event)

    def _on_media(self, worker: str, boot: str, rooms: dict[str, Any]) -> None:
        now = time.monotonic()
        for room in self._hosted.values():
            p = room.placement
            if p.room_id not in rooms:
                room.spanned.pop((worker, boot), None)  # closed there: its numbers are no longer live
                if (p.worker, p.boot) == (worker, boot):
                    room.counters = None
        for room_id, report in rooms.items():
            placement = Placement(room_id, worker, boot, int(report["epoch"]), bool(report.get("home", True)))
            hosted = self._hosted.get(room_id)
            ages = {pid: (age, now) for pid, age in report["ages"].items()}
            if not placement.home:
                # A worker the room spans to: its participants' media ages and counters; the room's
                # speaker and recording are the home's to report.
                if hosted is not None and hosted.placement.epoch == placement.epoch:
                    hosted.ages |= ages
                    counters = report.get("counters")
                    if counters is None:
                        hosted.spanned.pop((worker, boot), None)
                    else:
                        hosted.spanned[(worker, boot)] = (counters_from_json(counters), now)
                continue
            if hosted is None or hosted.placement.epoch <= placement.epoch:
                # The span's counters stay while the placement does (each report replaces this).
                same = hosted is not None and hosted.placement.epoch == placement.epoch
                kept = hosted.spanned if hosted is not None and same else {}
                hosted = self._hosted[room_id] = HostedRoom(
                    placement, now, hosted.ages if hosted else {}, spanned=kept
                )
            if hosted.placement != placement:
                continue  # an older placement's worker still reporting: not this room's media
            hosted.seen_at = now
            # Other workers' participants' ages stay until they are a report old.
            recent = {pid: seen for pid, seen in hosted.ages.items() if now - seen[1] <= 2 * HEARTBEAT_S}
            hosted.ages = recent | ages
            counters = report.get("counters")
            hosted.counters = None if counters is None else counters_from_json(counters)
            self._speakers[room_id] = report.get("speaker")
            # Restated every second: a web process started, or cut off from Redis, meanwhile
            # learns of a running recording too.
            self._set_recording(room_id, report.get("recording"))

    def _set_recording(self, room_id: str, state: dict[str, Any] | None) -> None:
        if f"{room_id}/recording" in self._chains:
            return  # this process's own start/mark/stop is on its way: the worker has not seen it
        if state is None:
            self._recordings.pop(room_id, None)
            return
        marks = [mark_from_json(m) for m in state["marks"]]
        session = self._recordings.get(room_id)
        if session is None:
            started = datetime.fromisoformat(state["started_at"])
            session = self._recordings[room_id] = RemoteRecording(started, Path(state["directory"]))
        session.marks[:] = marks

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    # -- dead workers -------------------------------------------------------------------------
    async def _watch_workers(self) -> None:
        while not self._closing:
            await asyncio.sleep(WATCH_S)
            now = time.monotonic()
            self._drop_unreported_rooms(now)
            used = {(h.placement.worker, h.placement.boot) for h in self._handles.values()}
            for worker, boot in used:
                if now - self._heard.get((worker, boot), 0.0) < SILENCE_S:
                    continue
                try:
                    info = await self.registry.worker(worker)
                except RedisError:
                    continue  # Redis away: nothing is known, and media may well flow on
                if info is None or info.boot != boot:
                    await self._on_worker_dead(worker, boot)

    def _drop_unreported_rooms(self, now: float) -> None:
        for room_id, hosted in list(self._hosted.items()):
            placement = hosted.placement
            if now - hosted.seen_at <= 2 * SILENCE_S:
                continue
            hosted.counters = None  # numbers that stopped coming are not live numbers
            if not any(h.placement == placement for h in self._handles.values()):
                del self._hosted[room_id]

    async def _on_worker_dead(self, worker: str, boot: str) -> None:
        dead = [h for h in self._handles.values() if (h.placement.worker, h.placement.boot) == (worker, boot)]
        placements = {h.placement for h in dead}
        # The home of a room that spans workers: the room is placed again with a new epoch, which
        # the other workers of the span are not part of; their participants here join again too.
        homes = {(p.room_id, p.epoch) for p in placements if p.home}
        spanned = [
            h for h in self._handles.values() if h not in dead and (h.room_id, h.placement.epoch) in homes
        ]
        log.warning(
            "SFU worker is gone; its participants here join again elsewhere",
            extra={"worker": worker, "participants": len(dead), "spanned": len(spanned)},
        )
        for handle in spanned:
            with contextlib.suppress(Unavailable):
                await self.send(handle.placement, "leave", handle.participant_id, {})
        dead += spanned
        for placement in placements - {p for p in placements if p.home}:
            self._later(self._close_pipes_to(placement))
        for request_id, target in list(self._waiting_on.items()):
            future = self._pending.get(request_id)
            if target == (worker, boot) and future is not None and not future.done():
                # Nobody will answer: the call fails now rather than at its timeout.
                future.set_exception(Unavailable(f"SFU worker {worker} is gone; try again"))
        for handle in dead:
            self.forget(handle)
            self._emit(ParticipantLeft(handle.room_id, handle.participant_id, "transport-failed"))
        for placement in placements:
            with contextlib.suppress(RedisError):
                await self.registry.unplace(placement)
            hosted = self._hosted.get(placement.room_id)
            if hosted is not None and hosted.placement == placement:
                del self._hosted[placement.room_id]
                self._recordings.pop(placement.room_id, None)

    async def _close_pipes_to(self, gone: Placement) -> None:
        """A worker the room spans to is gone: the other workers of the room close their pipes to
        it now (they would at the pipe's timeout, 5 s), so the publishers it sent leave at once."""
        try:
            current = await self.registry.placement_of(gone.room_id)
        except RedisError:
            return  # the pipes time out by themselves
        if current is None or current.epoch != gone.epoch:
            return
        dead = (gone.worker, gone.boot)
        for other in current.span:
            if other != dead:
                with contextlib.suppress(SfuError):
                    pipe = pipe_id(gone, dead, other)
                    await self.call(self._on_worker(current, other), "pipe_close", "", {"pipe": pipe})


class WorkerSilent(Unavailable):
    """The worker did not answer in time (busy, or gone: its registration then expires)."""

    def __init__(self, placement: Placement, method: str) -> None:
        super().__init__(
            f"SFU worker {placement.worker} did not answer {method!r} for room {placement.room_id} "
            "in time; try again"
        )
        self.placement = placement
