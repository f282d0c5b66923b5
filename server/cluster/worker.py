"""An SFU worker process (``run.py sfu --worker-id N``): media only.

It registers in Redis (:mod:`server.cluster.registry`) and refreshes its record every second,
serves the web processes' requests from its queue, and publishes its SFU's events. Forwarding does
not touch Redis: a Redis outage stops new work (joins get ``unavailable``) while media that flows
carries on, and the worker re-registers, with its rooms, as soon as Redis is back.

Requests are JSON objects on the list ``rpc_key(id, boot)`` (BRPOP); each is answered on the
sender's reply list. Requests about one participant run one at a time in arrival order (an ICE
candidate is never handled before the offer sent ahead of it); other requests run concurrently.

A room may span several workers (cascade, docs/scale.md): one of them is its home, the others are
in its span, each holding some of its participants, joined by pipes (server/sfu/pipe.py) that the
web side opens with the ``pipe_*`` requests. Each worker pipes every participant it admitted to
every pipe of the room, and tells the web side only about those: a publisher that came through a
pipe is another worker's to report. The room's active speaker is the home's to report.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.background import FailureStreak
from server.cluster.plane import ParticipantCounters, RoomCounters, room_counters
from server.cluster.registry import (
    EVENTS_CHANNEL,
    HEARTBEAT_S,
    WEB_GRACE_S,
    Registry,
    WorkerIdTaken,
    WorkerInfo,
    connect,
    rpc_key,
)
from server.cluster.wire import (
    StaleEpoch,
    address_from_json,
    counters_to_json,
    dumps,
    error_to_json,
    event_to_json,
    file_to_json,
    mark_to_json,
)
from server.cluster.worker_metrics import Admission, CounterTotals, MetricsAddress, WorkerMetricsServer
from server.sfu import (
    ActiveSpeakerChanged,
    InvalidRequest,
    InvalidState,
    NotInRoom,
    ParticipantConnected,
    ParticipantHandle,
    ParticipantLeft,
    RoomNotFound,
    Sfu,
    SfuConfig,
    SfuError,
    SfuEvent,
    SimulcastLayersChanged,
    SlotAssigned,
    VideoDemandChanged,
)
from server.sfu.pipe import DEFAULT_TIMEOUT_S as PIPE_TIMEOUT_S

log = logging.getLogger(__name__)

#: A reply list outlives a web process that died waiting by this long.
REPLY_TTL_S = 60
#: How long BRPOP blocks before looking at the stop flag again.
POLL_S = 1.0
#: A draining worker looks this often whether its last participant has left.
DRAIN_POLL_S = 0.25
#: Pause after a failed Redis call in a loop (Redis restarting).
REDIS_RETRY_S = 0.5
#: A worker's CPU use is measured over this many seconds: long enough that one busy second (a
#: burst of ICE and DTLS handshakes) does not send the next rooms elsewhere, short enough that a
#: room that grew shows within a few heartbeats.
CPU_WINDOW_S = 5.0


class CpuMeter:
    """This process's CPU time over the last ``CPU_WINDOW_S``, as a fraction of one core.

    Process CPU time counts every thread (aiortc's, the recorder's), which is what the worker costs
    its core. Sampled at each heartbeat; None until two samples exist."""

    def __init__(
        self,
        window: float = CPU_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        cpu_time: Callable[[], float] = time.process_time,
    ) -> None:
        self.window = window
        self._clock = clock
        self._cpu_time = cpu_time
        self._samples: deque[tuple[float, float]] = deque()

    def __call__(self) -> float | None:
        now, used = self._clock(), self._cpu_time()
        self._samples.append((now, used))
        # Keep the newest sample that is at least a window old, so the span covers the window.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        start, start_used = self._samples[0]
        if now <= start:
            return None
        return max(0.0, used - start_used) / (now - start)


#: Events about a publisher that only its own worker tells (the others see it through a pipe).
_OWN_WORKERS_EVENTS = (ParticipantConnected, ParticipantLeft, VideoDemandChanged, SimulcastLayersChanged)


def _participant_of(event: SfuEvent) -> str | None:
    if isinstance(event, SlotAssigned):
        return event.subscriber_id
    pid = getattr(event, "participant_id", None)
    return pid if isinstance(pid, str) else None


class SfuWorker:
    def __init__(
        self,
        sfu: Sfu,
        redis: Redis,
        worker_id: str,
        addresses: tuple[str, ...] = (),
        *,
        cpu_meter: Callable[[], float | None] | None = None,
        drain_s: float = 0.0,
    ) -> None:
        """``cpu_meter``: this worker's CPU use, read at each heartbeat for placement (default:
        the process's, :class:`CpuMeter`). Workers sharing one process cannot tell theirs apart.
        ``drain_s``: how long :meth:`shut_down` lets the worker's meetings go on (0: it stops at
        once)."""
        self.sfu = sfu
        self.redis = redis
        self.registry = Registry(redis)
        self.id = worker_id
        self.boot = secrets.token_hex(8)
        self.addresses = addresses
        self.cpu_meter = cpu_meter if cpu_meter is not None else CpuMeter()
        self.cpu: float | None = None  # the last measure, reported in the registry record
        self.registered_at: float | None = None  # monotonic time of the last registration in Redis
        self.totals = CounterTotals()  # forwarded packets etc. over the worker's life, for /metrics
        self.epochs: dict[str, int] = {}  # room -> epoch of its placement here
        self.homes: set[str] = set()  # the rooms of ``epochs`` this worker is the home of
        self.pipes: dict[str, str] = {}  # pipe id -> room, the pipes opened here (cascade)
        self.handles: dict[tuple[str, str], ParticipantHandle] = {}
        self.gens: dict[tuple[str, str], int] = {}  # admissions per (room, participant)
        self.admitted_by: dict[tuple[str, str], str] = {}  # the web process that admitted it
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: One registration at a time: the drain's (at once) and the heartbeat's may meet, and
        #: both would close the same stale room.
        self._registering = asyncio.Lock()
        self._web_seen: dict[str, float] = {}  # web process id -> when its record was last seen
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self.redis_health = FailureStreak("talking to Redis", log)
        self.stop = asyncio.Event()
        self.drain_s = drain_s
        self.draining_since: float | None = None  # monotonic time shut_down began a drain
        self.refused: WorkerIdTaken | None = None

    @property
    def queue(self) -> str:
        return rpc_key(self.id, self.boot)

    def info(self) -> WorkerInfo:
        participants = len(self.handles)
        rooms = len(self.epochs)
        return WorkerInfo(
            self.id,
            self.boot,
            self.addresses,
            participants + rooms,
            rooms,
            participants,
            self.cpu,
            self.draining_since is not None,
        )

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Register (WorkerIdTaken if the id is live elsewhere), then serve until ``stop``."""
        self.cpu_meter()  # the first sample: the next heartbeat reports a measure
        await self.registry.register(self.info(), {})
        self.registered_at = time.monotonic()
        log.info("SFU worker registered", extra={"worker": self.id, "boot": self.boot})
        unsubscribe = self.sfu.subscribe(self._on_event)
        loops = [
            asyncio.create_task(self._heartbeat(), name="sfu-heartbeat"),
            asyncio.create_task(self._serve(), name="sfu-rpc"),
            asyncio.create_task(self._publish(), name="sfu-events"),
        ]
        try:
            await self.stop.wait()
        finally:
            unsubscribe()
            # ``stop`` is set, so each loop also ends at its next turn: a cancellation that lands
            # while redis-py's own timeout fires comes out as a Redis timeout, which loops retry.
            for task in loops:
                task.cancel()
            await asyncio.wait(loops, timeout=5)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            try:
                await self.registry.unregister(self.info())
                # The web processes send this worker's participants `left` now (their pages join
                # again, on another worker) instead of after the registration's TTL.
                bye = {"kind": "bye", "worker": self.id, "boot": self.boot}
                await self.redis.publish(EVENTS_CHANNEL, dumps(bye))
            except RedisError:
                pass  # the record expires by itself, and the web processes notice the silence
            await self.sfu.close()
            log.info("SFU worker stopped", extra={"worker": self.id})

    def shut_down(self) -> None:
        """SIGTERM: drain, then stop (a second call, SIGTERM or SIGINT again, stops at once).

        Draining, as LiveKit's nodes and Jitsi's bridges do on a graceful shutdown: the registration
        says so at once, so placement gives the worker no new room and no share of a spanning
        room's joins, while its meetings go on undisturbed. It stops once it holds no participant,
        or after ``drain_s``; then the participants still here are moved as on any stop (``bye``:
        they join again on another worker, a gap of about a second)."""
        if self.drain_s <= 0 or self.draining_since is not None or self.stop.is_set():
            self.stop.set()
            return
        self.draining_since = time.monotonic()
        log.info(
            "SFU worker draining",
            extra={"worker": self.id, "participants": len(self.handles), "drain_s": self.drain_s},
        )
        task = asyncio.create_task(self._drain(), name="sfu-drain")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            await self._register_now()
        except WorkerIdTaken:
            pass  # the heartbeat finds it too, and stops the worker
        except RedisError as exc:
            self.redis_health.failed(exc)  # the heartbeat tries again; the deadline still holds
        assert self.draining_since is not None
        deadline = self.draining_since + self.drain_s
        # Participants come and go through many paths (leave, a web process gone, a room closed):
        # looking a few times a second is simpler than a signal from each of them.
        while self.handles and (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), min(DRAIN_POLL_S, remaining))
                return  # stopped meanwhile (a second signal)
        log.info(
            "SFU worker drained" if not self.handles else "SFU worker's drain ended; moving its participants",
            extra={"worker": self.id, "participants": len(self.handles)},
        )
        self.stop.set()

    async def _register_now(self) -> None:
        """Refresh the registration (and the epochs of the rooms held here); close the rooms
        placed elsewhere meanwhile."""
        async with self._registering:
            spanned = self.epochs.keys() - self.homes
            lost = await self.registry.register(self.info(), dict(self.epochs), spanned=spanned)
            self.registered_at = time.monotonic()
            for room_id in lost:
                await self._drop_stale_room(room_id)

    async def _heartbeat(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(HEARTBEAT_S)
            self.cpu = self.cpu_meter()
            try:
                await self._register_now()
                await self._drop_orphans()
                await self.redis.publish(EVENTS_CHANNEL, dumps(self._media_report()))
            except WorkerIdTaken as exc:
                # Our record expired (a long stall) and another process took the id: two workers
                # must never answer for one id, so this one goes.
                log.error("%s; this worker stops", exc)
                self.refused = exc
                self.stop.set()
                return
            except RedisError as exc:
                self.redis_health.failed(exc)
                # Nothing could be seen meanwhile: no web process's grace may run out unseen.
                self._web_seen.update(dict.fromkeys(self._web_seen, time.monotonic()))
            else:
                self.redis_health.succeeded()

    async def _drop_stale_room(self, room_id: str) -> None:
        """The room was placed on another worker while this one was taken for dead (stalled, or
        cut off from Redis): its participants have joined there. Close what is left here."""
        log.warning("room placed elsewhere meanwhile; closing it here", extra={"room_id": room_id})
        for pipe in self._pipes_of(room_id):
            # First, while the room is known: the publishers the pipes brought leave unreported.
            with contextlib.suppress(InvalidState):
                await self.sfu.close_pipe(pipe)
        self._forget_room(room_id)
        if room_id in self.sfu.room_ids:
            await self.sfu.close_room(room_id)

    def _forget_room(self, room_id: str) -> None:
        self.epochs.pop(room_id, None)
        self.homes.discard(room_id)
        for pipe in [p for p, room in self.pipes.items() if room == room_id]:
            del self.pipes[pipe]
        for table in (self.handles, self.admitted_by, self.gens):
            for key in [k for k in table if k[0] == room_id]:
                del table[key]

    def _media_report(self) -> dict[str, Any]:
        """Every room here with its epoch, its participants' media ages and its counters: the web
        processes' view of what this worker hosts (their /metrics and /admin/system read it), and
        the proof that it is alive."""
        rooms: dict[str, Any] = {}
        readings: dict[Admission, ParticipantCounters] = {}
        for room_id, epoch in self.epochs.items():
            ages: dict[str, float | None] = {}
            for rid, pid in self.handles:
                if rid == room_id:
                    try:
                        ages[pid] = self.sfu.media_age(room_id, pid)
                    except SfuError:
                        continue
            try:
                speaker = self.sfu.active_speaker(room_id)
                read = room_counters(self.sfu, room_id)
            except RoomNotFound:
                speaker, counters = None, None
            else:
                readings |= self._keyed(room_id, read.participants)
                if room_id not in self.homes:
                    # A worker the room spans to reports the participants admitted here only: the
                    # publishers its pipes bring are the home's (or another worker's) to count.
                    own = {p: c for p, c in read.participants.items() if (room_id, p) in self.handles}
                    read = RoomCounters(own, 0)  # the recording runs on the home
                counters = counters_to_json(read)
            rooms[room_id] = {
                "epoch": epoch,
                "home": room_id in self.homes,
                "ages": ages,
                "speaker": speaker,
                "recording": self._recording_state(room_id),
                "counters": counters,
            }
        # A reading a second: a participant that leaves loses at most its last second from the totals.
        self.totals.update(readings)
        return {"kind": "media", "worker": self.id, "boot": self.boot, "rooms": rooms}

    def _keyed(
        self, room_id: str, participants: Mapping[str, ParticipantCounters]
    ) -> dict[Admission, ParticipantCounters]:
        """Counters keyed per admission: one admitted again starts from zero under a new key."""
        return {(room_id, pid, self.gens.get((room_id, pid), 0)): c for pid, c in participants.items()}

    def counter_totals(self) -> dict[str, int]:
        """Forwarded packets and bytes, retransmissions, NACKs and PLIs since this worker started
        (every participant's, those gone included): its /metrics counters."""
        readings: dict[Admission, ParticipantCounters] = {}
        for room_id in self.epochs:
            try:
                stats = room_counters(self.sfu, room_id)
            except RoomNotFound:
                continue
            readings |= self._keyed(room_id, stats.participants)
        return self.totals.update(readings)

    # -- events -------------------------------------------------------------------------------
    def _on_event(self, event: SfuEvent) -> None:
        pid = _participant_of(event)
        key = (event.room_id, pid) if pid is not None else None
        if isinstance(event, _OWN_WORKERS_EVENTS) and key not in self.gens:
            return  # a publisher that came through a pipe: its own worker tells about it
        if isinstance(event, ActiveSpeakerChanged) and event.room_id in self.epochs.keys() - self.homes:
            return  # a worker the room spans to: the home hears every voice and tells
        message: dict[str, Any] = {
            "kind": "event",
            "worker": self.id,
            "boot": self.boot,
            "epoch": self.epochs.get(event.room_id),
            "gen": self.gens.get(key) if key is not None else None,
            "event": event_to_json(event),
        }
        if isinstance(event, ParticipantLeft) and key is not None:
            self.handles.pop(key, None)
            self.admitted_by.pop(key, None)
        self._events.put_nowait(message)

    async def _publish(self) -> None:
        while not self.stop.is_set():
            message = await self._events.get()
            try:
                await self.redis.publish(EVENTS_CHANNEL, dumps(message))
            except RedisError as exc:
                # Lost for the web processes, as any pub/sub message while Redis is away; the next
                # media report still tells them who is here.
                self.redis_health.failed(exc, event=message.get("event", {}).get("type"))

    # -- requests -----------------------------------------------------------------------------
    async def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                popped = await self.redis.brpop([self.queue], timeout=POLL_S)
            except RedisError as exc:
                self.redis_health.failed(exc)
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            if popped is None:
                continue
            try:
                request = json.loads(popped[1])
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError:
                log.warning("unreadable request dropped")
                continue
            if float(request.get("expires", 0)) < time.time():
                # The web process stopped waiting: doing it now would leave a participant nobody
                # knows about.
                log.info("expired request dropped", extra={"method": request.get("method")})
                continue
            task = asyncio.create_task(self._answer(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def _participant_lock(self, key: tuple[str, str]) -> AsyncIterator[None]:
        """One request at a time per participant, in arrival order; idle locks are forgotten."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not lock._waiters:  # noqa: SLF001
                self._locks.pop(key, None)

    async def _answer(self, request: dict[str, Any]) -> None:
        room_id = str(request.get("room", ""))
        pid = str(request.get("pid", ""))
        reply: dict[str, Any] = {"id": request.get("id"), "worker": self.id, "boot": self.boot}
        async with self._participant_lock((room_id, pid)):
            try:
                handler = self._methods().get(str(request.get("method")))
                if handler is None:
                    raise InvalidRequest(f"unknown method {request.get('method')!r}")
                result = await handler(room_id, pid, int(request.get("epoch", 0)), request.get("args") or {})
                reply |= {"ok": True, "result": result}
            except SfuError as exc:
                reply |= {"ok": False, "error": error_to_json(exc)}
            except Exception as exc:
                log.exception("request failed", extra={"method": request.get("method")})
                reply |= {"ok": False, "error": {"type": "Internal", "message": type(exc).__name__}}
        reply["epoch"] = self.epochs.get(room_id)
        target = str(request.get("reply", ""))
        if not target:
            return  # sent without waiting for an answer (a leave)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lpush(target, dumps(reply))
                pipe.expire(target, REPLY_TTL_S)
                await pipe.execute()
        except RedisError as exc:
            self.redis_health.failed(exc)

    def _methods(self) -> dict[str, Callable[[str, str, int, dict[str, Any]], Awaitable[Any]]]:
        return {
            "admit": self._admit,
            "offer": self._offer,
            "ice": self._ice,
            "visible": self._visible,
            "tiles": self._tiles,
            "leave": self._leave,
            "take_over": self._take_over,
            "close_room": self._close_room,
            "start_recording": self._start_recording,
            "mark": self._mark,
            "stop_recording": self._stop_recording,
            "pipe_open": self._pipe_open,
            "pipe_connect": self._pipe_connect,
            "pipe_out": self._pipe_out,
            "pipe_close": self._pipe_close,
            "pipe_stats": self._pipe_stats,
        }

    async def _host(self, room_id: str, epoch: int) -> None:
        """Open ``room_id`` here at ``epoch`` if Redis says it is placed here at that epoch, as
        its home or in its span."""
        have = self.epochs.get(room_id)
        if have == epoch:
            return
        if have is not None and epoch < have:
            raise StaleEpoch(f"room {room_id} is at epoch {have} here; the request had {epoch}")
        try:
            placement = await self.registry.placement_of(room_id)
        except RedisError as exc:
            raise StaleEpoch("cannot confirm the room's placement: Redis is not reachable") from exc
        me = (self.id, self.boot)
        if placement is None or placement.epoch != epoch or me not in placement.span:
            raise StaleEpoch(f"room {room_id} is not placed on this worker at epoch {epoch}")
        for pipe in self._pipes_of(room_id):
            # The room was placed again (its home died): the pipes of the older placement lead to
            # the dead home; the publishers they brought leave now, not at the pipe's timeout, so
            # they can join here under their own ids.
            self.pipes.pop(pipe, None)
            with contextlib.suppress(InvalidState):
                await self.sfu.close_pipe(pipe)
        self.sfu.open_room(room_id)
        self.epochs[room_id] = epoch
        if (placement.worker, placement.boot) == me:
            self.homes.add(room_id)
        else:
            self.homes.discard(room_id)

    def _check(self, room_id: str, epoch: int) -> None:
        have = self.epochs.get(room_id)
        if have is None:
            raise RoomNotFound(f"room {room_id!r} is not open on this worker")
        if have != epoch:
            raise StaleEpoch(f"room {room_id} is at epoch {have} here; the request had {epoch}")

    def _handle(self, room_id: str, pid: str, epoch: int) -> ParticipantHandle:
        self._check(room_id, epoch)
        handle = self.handles.get((room_id, pid))
        if handle is None:
            return self.sfu.participant(room_id, pid)  # NotInRoom
        return handle

    async def _admit(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        await self._host(room_id, epoch)
        rate = args.get("audio_max_bitrate")
        key = (room_id, pid)
        web = str(args.get("web", ""))
        earlier = self.handles.get(key)
        earlier_web = self.admitted_by.get(key, "")
        if earlier is not None and web and (earlier_web == web or await self._web_is_dead(earlier_web)):
            # The same web process admits this participant again: it no longer knows the earlier
            # admission (its answer came too late, or the hub dropped the handle while Redis was
            # away). Or the web process that admitted it is dead, and the page came back through
            # another. Either way nobody else will ever remove it; without this the id stays taken.
            log.info("participant admitted again; the earlier admission goes", extra={"room_id": room_id})
            self.handles.pop(key, None)
            await earlier.leave()
        handle = await self.sfu.admit(room_id, pid, audio_max_bitrate=int(rate) if rate is not None else None)
        self.gens[key] = self.gens.get(key, 0) + 1
        self.handles[key] = handle
        self.admitted_by[key] = web
        self._web_seen[web] = time.monotonic()  # it just asked: alive
        for pipe in self._pipes_of(room_id):
            self._send_through(pipe, pid)
        return {
            "gen": self.gens[key],
            "active_speaker": self.sfu.active_speaker(room_id),
            "pipes": self._connected_pipes(room_id),  # the web side repairs any of the span's missing
        }

    async def _dead_webs(self, web_ids: Iterable[str]) -> set[str]:
        """Those of ``web_ids`` whose liveness record this worker has not seen for
        ``WEB_GRACE_S``. Missing once is not enough: a Redis restart empties Redis, and the web
        processes write their records again within ``WEB_REFRESH_S``. A Redis error is "unknown":
        nothing is dead, and the grace starts again, since nothing could be seen meanwhile."""
        ids = {w for w in web_ids if w}
        now = time.monotonic()
        try:
            missing = await self.registry.dead_webs(ids)
        except RedisError:
            self._web_seen.update(dict.fromkeys(ids, now))
            raise
        self._web_seen.update(dict.fromkeys(ids - missing, now))
        for web_id in ids - self._web_seen.keys():
            self._web_seen[web_id] = now
        return {w for w in missing if now - self._web_seen[w] > WEB_GRACE_S}

    async def _web_is_dead(self, web_id: str) -> bool:
        try:
            return web_id in await self._dead_webs([web_id])
        except RedisError:
            return False  # unknown: keep the earlier admission (the join is refused, and retried)

    async def _drop_orphans(self) -> None:
        """Remove the participants whose web process is dead (its liveness record expired or was
        removed at its stop). Their pages have joined again through another web process, or will;
        a participant that never set up media would otherwise stay here, its id taken, for good."""
        dead = await self._dead_webs(self.admitted_by.values())
        for web_id in set(self._web_seen) - set(self.admitted_by.values()):
            del self._web_seen[web_id]  # no participant of it left here: nothing to watch
        if not dead:
            return
        for key in [k for k, web in self.admitted_by.items() if web in dead]:
            # Under the participant's request lock, and checked again: a new admission through a
            # live web process may have taken its place meanwhile.
            async with self._participant_lock(key):
                if self.admitted_by.get(key) not in dead:
                    continue
                self.admitted_by.pop(key, None)
                handle = self.handles.pop(key, None)
                if handle is not None:
                    log.info("participant of a dead web process removed", extra={"room_id": key[0]})
                    await handle.leave()

    async def _offer(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        handle = self._handle(room_id, pid, epoch)
        answer = await handle.handle_offer(str(args.get("sdp", "")))
        return {"sdp": answer, "slots": handle.slots()}

    async def _ice(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        handle = self._handle(room_id, pid, epoch)
        index = args.get("sdp_mline_index")
        await handle.add_ice_candidate(
            args.get("candidate"), args.get("sdp_mid"), int(index) if index is not None else None
        )
        return None

    async def _visible(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        ids = args.get("publisher_ids")
        self._handle(room_id, pid, epoch).set_visible_videos(None if ids is None else [str(i) for i in ids])
        return None

    async def _tiles(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        # The Sfu refuses a malformed report itself (InvalidRequest, answered as an error).
        self._handle(room_id, pid, epoch).set_tile_sizes(args.get("sizes"))  # type: ignore[arg-type]
        return None

    async def _leave(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        handle = self._handle(room_id, pid, epoch)
        gen = args.get("gen")
        if gen is not None and gen != self.gens.get((room_id, pid)):
            # From a web process whose participant another one took over since (_take_over): its
            # page is elsewhere now, and its leave is not that page's.
            log.info("leave of an earlier admission ignored", extra={"room_id": room_id})
            return None
        self.handles.pop((room_id, pid), None)
        await handle.leave()
        return None

    async def _take_over(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        """Another web process takes over a participant whose page's socket came back through it
        (the web process that admitted it died, docs/scale.md "Handover"). That web process
        checked the page's resume token against the admission's record; here the admission
        the record names (``gen``) must be the participant's current one. Its media is not
        touched: from now on its events carry the next generation, and its orphan removal and
        leave go by the new web process."""
        handle = self._handle(room_id, pid, epoch)  # RoomNotFound, StaleEpoch, NotInRoom
        key = (room_id, pid)
        web = str(args.get("web", ""))
        if key not in self.handles or not web or args.get("gen") != self.gens.get(key):
            raise NotInRoom(f"participant {pid!r} was admitted again since; nothing to take over")
        self.admitted_by[key] = web
        self._web_seen[web] = time.monotonic()  # it just asked: alive
        self.gens[key] += 1
        log.info("participant taken over by another web process", extra={"room_id": room_id})
        return {
            "gen": self.gens[key],
            "slots": handle.slots(),
            "connected": handle.connected,
            "active_speaker": self.sfu.active_speaker(room_id),
        }

    # -- pipes to the other workers of a room (cascade) ---------------------------------------
    def _pipes_of(self, room_id: str) -> list[str]:
        return [pipe for pipe, room in self.pipes.items() if room == room_id]

    def _connected_pipes(self, room_id: str) -> list[str]:
        """The room's pipes here that are connected to their other end (and not closed)."""
        connected = []
        for pipe in self._pipes_of(room_id):
            try:
                stats = self.sfu.pipe_stats(pipe)
            except InvalidState:
                self.pipes.pop(pipe, None)  # closed by itself (its peer went silent)
                continue
            if stats.peer is not None and stats.closed is None:
                connected.append(pipe)
        return connected

    def _pipe_arg(self, room_id: str, epoch: int, args: dict[str, Any]) -> str:
        """The request's pipe, open here for ``room_id`` (InvalidState otherwise, never a wait)."""
        self._check(room_id, epoch)
        pipe = args.get("pipe")
        if not isinstance(pipe, str) or self.pipes.get(pipe) != room_id:
            raise InvalidState(f"no open pipe {pipe!r} for room {room_id!r} on this worker")
        return pipe

    def _send_through(self, pipe: str, pid: str) -> None:
        """Pipe a participant admitted here (audio always; video as the far end asks)."""
        try:
            self.sfu.pipe_out(pipe, pid)
        except InvalidState:
            self.pipes.pop(pipe, None)  # closed meanwhile (its peer went silent)
        except SfuError as exc:
            log.warning("a participant could not be piped: %s", exc, extra={"pipe": pipe})

    async def _pipe_open(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        """Open this end of a pipe of the room (hosting the room here if the span says so), on
        this worker's internal media address. Returns the address for the other end."""
        await self._host(room_id, epoch)
        pipe = args.get("pipe")
        timeout = args.get("timeout")
        if not isinstance(pipe, str):
            raise InvalidRequest("pipe must be a string")
        if timeout is not None and not isinstance(timeout, (int, float)):
            raise InvalidRequest("pipe timeout must be a number of seconds")
        seconds = PIPE_TIMEOUT_S if timeout is None else float(timeout)
        address = await self.sfu.open_pipe(room_id, pipe, timeout=seconds)
        self.pipes[pipe] = room_id
        return {"address": list(address)}

    async def _pipe_connect(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        """Connect this end to the other's address and pipe every participant admitted here."""
        pipe = self._pipe_arg(room_id, epoch, args)
        self.sfu.connect_pipe(pipe, address_from_json(args.get("peer")))
        for rid, participant in list(self.handles):
            if rid == room_id:
                self._send_through(pipe, participant)
        return None

    async def _pipe_out(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        pipe = self._pipe_arg(room_id, epoch, args)
        self.sfu.pipe_out(pipe, str(args.get("publisher", "")))
        return None

    async def _pipe_close(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        pipe = self._pipe_arg(room_id, epoch, args)
        self.pipes.pop(pipe, None)
        with contextlib.suppress(InvalidState):  # closed by itself meanwhile
            await self.sfu.close_pipe(pipe)
        return None

    async def _pipe_stats(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        pipe = self._pipe_arg(room_id, epoch, args)
        try:
            stats = self.sfu.pipe_stats(pipe)
        except InvalidState:
            del self.pipes[pipe]
            raise
        return dataclasses.asdict(stats)

    async def _close_room(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        self._check(room_id, epoch)
        await self.sfu.close_room(room_id)
        self._forget_room(room_id)
        placement = await self.registry.placement_of(room_id)
        if placement is not None and placement.worker == self.id and placement.epoch == epoch:
            await self.registry.unplace(placement)
        return None

    async def _start_recording(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        await self._host(room_id, epoch)
        session = self.sfu.start_recording(room_id, Path(str(args["directory"])))
        await self._recording_changed(room_id)
        return {"started_at": session.started_at.isoformat()}

    async def _mark(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        self._check(room_id, epoch)
        mark = self.sfu.mark(room_id, str(args.get("label", "")))
        await self._recording_changed(room_id)
        return mark_to_json(mark)

    async def _stop_recording(self, room_id: str, pid: str, epoch: int, args: dict[str, Any]) -> Any:
        self._check(room_id, epoch)
        session = self.sfu.recording(room_id)
        marks = [mark_to_json(m) for m in session.marks] if session is not None else []
        files = await self.sfu.stop_recording(room_id)
        await self._recording_changed(room_id)
        return {"files": [file_to_json(f) for f in files], "marks": marks}

    def _recording_state(self, room_id: str) -> dict[str, Any] | None:
        try:
            session = self.sfu.recording(room_id)
        except RoomNotFound:
            return None
        if session is None:
            return None
        return {
            "marks": [mark_to_json(m) for m in session.marks],
            "started_at": session.started_at.isoformat(),
            "directory": str(session.directory),
        }

    async def _recording_changed(self, room_id: str) -> None:
        message = {"kind": "recording", "worker": self.id, "boot": self.boot, "room": room_id}
        self._events.put_nowait(message | {"state": self._recording_state(room_id)})


#: Exit status when the worker's /metrics cannot listen (sysexits EX_CONFIG: an operator must act).
EXIT_METRICS_ADDRESS = 78


async def serve_worker(
    config: SfuConfig,
    redis_url: str,
    worker_id: str,
    *,
    metrics: MetricsAddress | None = None,
    metrics_token: str | None = None,
    drain_s: float = 0.0,
) -> int:
    """``run.py sfu``: run one worker until SIGTERM/SIGINT (a drain of up to ``drain_s`` first,
    :meth:`SfuWorker.shut_down`). Exit status 2 when the id is taken by a live worker, 1 when Redis
    cannot be reached at start (systemd starts it again), 78 when its /metrics cannot listen on
    ``metrics`` (None: no listener)."""
    redis = connect(redis_url)
    worker = SfuWorker(Sfu(config), redis, worker_id, tuple(config.host_addresses), drain_s=drain_s)
    listener = WorkerMetricsServer(worker, metrics, metrics_token) if metrics is not None else None
    if listener is not None:
        try:
            # Before registering: a worker that cannot be watched is refused before it takes rooms.
            await listener.start()
        except OSError as exc:
            print(
                f"error: SFU worker {worker_id} cannot serve /metrics on {metrics} ({exc.strerror or exc}): "
                "is another worker or program on that port, and is the address this machine's? "
                "(MAEUL_SFU_METRICS_PORT, MAEUL_SFU_METRICS_HOST)",
                file=sys.stderr,
                flush=True,
            )
            await redis.aclose()
            return EXIT_METRICS_ADDRESS
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.shut_down)
    try:
        await worker.run()
    except WorkerIdTaken as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except RedisError as exc:
        print(f"error: cannot reach Redis at {redis_url}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if listener is not None:
            await listener.stop()
        await redis.aclose()
    if worker.refused is not None:
        print(f"error: {worker.refused}", file=sys.stderr, flush=True)
        return 2
    return 0
