"""Live rooms over socket.io: one SFU participant per joined socket.

``RoomHub`` (one per application / worker process) turns the validated client events into SFU
calls and turns SFU events into socket.io events:

* client → server: ``join``, ``offer``, ``ice``, ``mute``, ``visible``, ``tiles``, ``leave``, ``hand``,
  ``screen``, ``chair`` (see docs/signaling.md; the chair's controls are in :mod:`server.signaling.chair`);
* server → client: ``participants``, ``active_speaker``, ``slot``, ``video_demand``, ``layers``, ``left``,
  ``room_closed``, ``recording``, ``lobby``, ``admitted``, ``removed``, ``replaced``, ``hands``,
  ``agenda``, ``chair_mute``, ``ask_unmute``, ``error``.

A participant whose connection dropped (socket gone, or its media transport failed) stays listed as
``reconnecting`` for ``RECONNECT_GRACE``; when the same kiosk or account joins again, from any socket,
it takes its place (and its raised hand, floor and attendance row) back.

The hub's registry (which socket is which participant, mute flags) describes the rooms hosted by this
worker's SFU and nothing else; invitations and rooms live in the database. Each live room's state is
one :class:`server.signaling.hub_room.HubRoom` in ``rooms``. "Room" is the live call; "meeting" is
the scheduled one (:mod:`server.meetings`) a room may belong to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.participant_ids import participant_id
from server.auth.roles import Principal, Role
from server.background import FailureStreak, finish_or_cancel
from server.cluster.plane import Handover, MediaPlane
from server.config import Settings
from server.db import transaction, utcnow
from server.meetings import attendance as meeting_attendance
from server.meetings import recordings as meeting_recordings
from server.meetings import service as meetings
from server.rooms import service as rooms_service
from server.sfu import (
    ActiveSpeakerChanged,
    AlreadyJoined,
    InvalidRequest,
    InvalidSdp,
    InvalidState,
    LinkQualityChanged,
    Mark,
    NotInRoom,
    ParticipantConnected,
    ParticipantLeft,
    ReceivedLayersChanged,
    RecordedFile,
    RoomNotFound,
    SfuError,
    SfuEvent,
    SimulcastLayersChanged,
    SlotAssigned,
    VideoDemandChanged,
)
from server.signaling.events import (
    ActiveSpeaker,
    Hands,
    Layers,
    Left,
    LinkQuality,
    Lobby,
    Participants,
    Recording,
    Replaced,
    RoomClosed,
    Slot,
    StillsWanted,
    VideoDemand,
    emit,
)
from server.signaling.floor import AgendaEntry, Floor, LobbyEntry
from server.signaling.hub_room import Ghost, HubRoom, Member
from server.signaling.ice import client_rtc_config
from server.signaling.messages import (
    IceRequest,
    JoinRequest,
    MuteRequest,
    OfferRequest,
    SignalingError,
    TilesRequest,
    VisibleRequest,
)
from server.signaling.names import chair_room, socket_room

log = logging.getLogger(__name__)


@runtime_checkable
class TileSizing(Protocol):
    """A media handle that chooses simulcast layers by tile size (server.sfu.ParticipantHandle)."""

    def set_tile_sizes(self, sizes: Mapping[str, Sequence[int]]) -> None: ...


#: Media older than this (seconds) means a participant's uplink is down (audio arrives even in
#: silence, DTX sends every 400 ms); the SFU's link quality says so after the same time.
MEDIA_SILENCE_S = 3.0
#: How long a dropped participant stays listed as "reconnecting" (the attendance record also joins
#: a rejoin within its own grace period to the same presence).
RECONNECT_GRACE = 60.0
#: At shutdown, how long the hub may take to finish the SFU events it already has.
SHUTDOWN_DRAIN_SECONDS = 5.0
#: After an SFU event failed: pause 0.05, 0.1, 0.2 … up to 0.5 s while failures go on in a row.
PUMP_RETRY_FIRST_SECONDS = 0.05
PUMP_RETRY_CAP_SECONDS = 0.5
#: A room's participant list goes out at most once per this many seconds (see
#: RoomHub.broadcast_participants): short enough that a join or a mute shows at once.
PARTICIPANTS_EVERY_S = 0.25

#: Receive slots the pages offer (the server only recommends; the SFU accepts any number).
SLOT_PLAN = {
    Role.KIOSK: {"audio": 3, "video": 2},
    Role.OFFICIAL: {"audio": 3, "video": 9},
    Role.ADMIN: {"audio": 3, "video": 9},
}


class RecordingStateError(Exception):
    """Recording asked to start in a recorded room, or to stop in one that is not recorded.

    The hub's own type, raised in place of the SFU's ``InvalidState``: the domain code that
    starts and stops recordings does not import the media plane (tests/test_import_boundaries.py).
    """


@dataclass
class RoomHub:
    sio: socketio.AsyncServer
    settings: Settings
    members: dict[str, Member] = field(default_factory=dict)  # by sid
    rooms: dict[str, HubRoom] = field(default_factory=dict)  # the live rooms hosted here, by id
    joining: set[str] = field(default_factory=set)
    # Sockets that disconnected while their join was still in flight, with the disconnect's reason:
    # the join, once done, leaves for them as their disconnect would have.
    abandoned: dict[str, str] = field(default_factory=dict)
    _queue: asyncio.Queue[SfuEvent | None] = field(default_factory=asyncio.Queue)  # None: stop
    # Start/stop of recordings, one at a time (two "stop"s must not both collect the files).
    _recording_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _order: int = 0
    reconnect_grace: float = RECONNECT_GRACE
    pump_health: FailureStreak = field(default_factory=lambda: FailureStreak("forwarding SFU events", log))
    # The SFU and the database come up in cleanup contexts after the hub is made: handed to run().
    # The media plane is the in-process Sfu (run.py serve) or the SFU workers' remote (run.py web).
    _sfu: MediaPlane | None = None
    _sessionmaker: async_sessionmaker[AsyncSession] | None = None

    @property
    def sfu(self) -> MediaPlane:
        if self._sfu is None:
            raise RuntimeError("the room hub is not running")
        return self._sfu

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        if self._sessionmaker is None:
            raise RuntimeError("the room hub is not running")
        return self._sessionmaker

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(
        self, sfu: MediaPlane, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[None]:
        """cleanup_ctx body: forward SFU events while the app runs."""
        self._sfu, self._sessionmaker = sfu, sessionmaker
        unsubscribe: Callable[[], None] = self.sfu.subscribe(self._queue.put_nowait)
        pump = asyncio.get_running_loop().create_task(self._pump(), name="room-event-pump")
        try:
            yield
        finally:
            unsubscribe()
            self._queue.put_nowait(None)  # after the events already queued (attendance writes)
            await finish_or_cancel(pump, SHUTDOWN_DRAIN_SECONDS)
            for room in self.rooms.values():
                room.close()

    async def _pump(self) -> None:
        # Any failure (an attendance write while the database is down) costs that one event, never
        # the pump. A streak is logged once, and a short pause per failure keeps a dead database
        # from being asked again back to back; capped low, since slots and speakers wait behind it.
        while (event := await self._queue.get()) is not None:
            try:
                await self._on_sfu_event(event)
            except Exception as exc:
                self.pump_health.failed(exc, event=type(event).__name__)
                pause = self.pump_health.backoff(PUMP_RETRY_FIRST_SECONDS, PUMP_RETRY_CAP_SECONDS)
                await asyncio.sleep(pause)
            else:
                self.pump_health.succeeded()

    async def _on_sfu_event(self, event: SfuEvent) -> None:
        if isinstance(event, SlotAssigned):
            sid = self._sid_of(event.room_id, event.subscriber_id)
            if sid is not None:
                await emit(self.sio, Slot(event.mid, event.kind, event.publisher_id), to=sid)
        elif isinstance(event, VideoDemandChanged):
            sid = self._sid_of(event.room_id, event.participant_id)
            if sid is not None:
                await emit(self.sio, VideoDemand(event.wanted), to=sid)
        elif isinstance(event, SimulcastLayersChanged):
            sid = self._sid_of(event.room_id, event.participant_id)
            if sid is not None:
                await emit(self.sio, Layers(list(event.active)), to=sid)
        elif isinstance(event, ReceivedLayersChanged):
            room = self.rooms.get(event.room_id)
            if room is not None and self._sid_of(event.room_id, event.participant_id) is not None:
                room.received_layers[event.participant_id] = dict(event.layers)
                await self.refresh_participants(event.room_id)
        elif isinstance(event, ActiveSpeakerChanged):
            await emit(self.sio, ActiveSpeaker(event.participant_id), room=socket_room(event.room_id))
        elif isinstance(event, LinkQualityChanged):
            await self._on_link_quality(event)
        elif isinstance(event, ParticipantConnected):
            sid = self._sid_of(event.room_id, event.participant_id)
            if sid is not None and sid in self.members:
                member = self.members[sid]
                member.connected = True
                # Attendance is recorded from the media plane: present once media flows.
                await self._presence(member, present=True)
                await self.refresh_participants(event.room_id)
        elif isinstance(event, ParticipantLeft):
            sid = self._sid_of(event.room_id, event.participant_id)
            room = self.rooms.get(event.room_id)
            ghost = room.ghosts.get(event.participant_id) if room is not None else None
            if sid is None and ghost is not None and ghost.media and event.reason != "left":
                # Its page had lost its socket and now its media is gone too: it can only rejoin.
                ghost.media = False
                if ghost.member.connected:
                    ghost.member.connected = False
                    await self._presence(ghost.member, present=False)
                await self.broadcast_participants(event.room_id)
                return
            if sid is None or event.reason == "left":
                return  # a leave/disconnect this hub started has already been handled
            if self._sfu_has(event.room_id, event.participant_id):
                return  # stale: the page already left and joined again under the same id
            # The SFU dropped the participant (transport failure, room closed): tell its page,
            # which rejoins with a new peer connection (or shows that the meeting is over).
            dropped = self._forget(sid)
            if dropped is not None:
                self._clear_state(dropped)
                await self._presence(dropped, present=False)
                if event.reason != "room-closed":
                    self._haunt(dropped)
            await self._leave_rooms(sid, event.room_id)
            if event.reason == "room-closed":
                await emit(self.sio, RoomClosed(event.room_id), to=sid)
            else:
                await emit(self.sio, Left(event.reason), to=sid)
            await self.broadcast_participants(event.room_id)

    async def _on_link_quality(self, event: LinkQualityChanged) -> None:
        room = self.rooms.get(event.room_id)
        pid = event.participant_id
        if room is None:
            return
        sid = room.sids.get(pid)
        if sid is None and pid not in room.ghosts:
            return
        link = LinkQuality(event.bars, event.mode, event.downlink_kbps, event.loss_pct).to_dict()
        room.links[pid] = link
        log.info(
            "link quality", extra={"room_id": event.room_id, "participant": event.participant_id, **link}
        )
        if sid is not None:
            await emit(self.sio, LinkQuality(**link), to=sid)
        # A participant whose socket is lost has nobody to tell, but the others' list may change
        # (its media stopped arriving: now it is "reconnecting").
        await self.refresh_participants(event.room_id)
        await self._update_stills_wanted(event.room_id)

    async def _update_stills_wanted(self, room_id: str) -> None:
        """Ask the pages for still pictures while somebody in the room receives no video."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        wanted = room.audio_only_present()
        if wanted == room.stills_wanted:
            return
        room.stills_wanted = wanted
        await emit(self.sio, StillsWanted(wanted), room=socket_room(room_id))

    def set_still(self, sid: str, jpeg: bytes) -> None:
        member = self._member(sid)
        self._hub_room(member.room_id).stills[member.pid] = jpeg

    def still_of(self, room_id: str, viewer: str, pid: str) -> bytes | None:
        """``pid``'s still picture, for a ``viewer`` who is in the room (None otherwise)."""
        room = self.rooms.get(room_id)
        if room is None or viewer not in room.sids:
            return None
        return room.stills.get(pid)

    def _sfu_has(self, room_id: str, pid: str) -> bool:
        try:
            self.sfu.participant(room_id, pid)
        except (NotInRoom, RoomNotFound):
            return False
        return True

    async def _end_media(self, member: Member) -> None:
        """The SFU participant of a member whose page is gone for good: leave, and end its presence."""
        with contextlib.suppress(SfuError):
            await member.handle.leave()
        if member.connected:
            await self._presence(member, present=False)

    async def _presence(self, member: Member, *, present: bool) -> None:
        """The member's attendance: present while its media is up (ignored outside meetings)."""
        await meeting_attendance.record_room_presence(
            self.sessionmaker, int(member.room_id), member.principal, present=present
        )

    async def _enter_rooms(self, sid: str, room_id: str, *, chair: bool) -> None:
        # socket.io refuses a socket that disconnected while its join was in flight: ValueError
        # when no other socket is connected, KeyError (its room table) when some are. That
        # socket is in ``abandoned`` and join() leaves for it once this returns.
        with contextlib.suppress(KeyError, ValueError):
            await self.sio.enter_room(sid, socket_room(room_id))
            if chair:
                await self.sio.enter_room(sid, chair_room(room_id))

    async def _leave_rooms(self, sid: str, room_id: str) -> None:
        with contextlib.suppress(KeyError, ValueError):
            await self.sio.leave_room(sid, socket_room(room_id))
            await self.sio.leave_room(sid, chair_room(room_id))

    # -- registry -----------------------------------------------------------------------------
    def _hub_room(self, room_id: str) -> HubRoom:
        """The live state of ``room_id`` here, made on first use (a join)."""
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = HubRoom(room_id)
        return room

    def _lobby_of(self, sid: str) -> HubRoom | None:
        """The room whose lobby this socket waits in (a handful of rooms per worker)."""
        return next((room for room in self.rooms.values() if sid in room.lobby), None)

    def _sid_of(self, room_id: str, pid: str) -> str | None:
        room = self.rooms.get(room_id)
        return None if room is None else room.sids.get(pid)

    def _forget(self, sid: str) -> Member | None:
        """Unbind the socket from its member (the member's link state and still stay)."""
        member = self.members.pop(sid, None)
        room = self.rooms.get(member.room_id) if member is not None else None
        if member is not None and room is not None and room.sids.get(member.pid) == sid:
            del room.sids[member.pid]
        return member

    def _clear_state(self, member: Member) -> None:
        """A new connection starts with a fresh link estimate (and sends a new still)."""
        if (room := self.rooms.get(member.room_id)) is not None:
            room.clear_state(member.pid)

    def _floor(self, room_id: str) -> Floor | None:
        room = self.rooms.get(room_id)
        return None if room is None else room.floor

    def ghosts(self) -> list[Ghost]:
        """Every participant listed as reconnecting, in every room hosted here."""
        return [ghost for room in self.rooms.values() for ghost in room.ghosts.values()]

    def room_members(self, room_id: str) -> list[Member]:
        return sorted((m for m in self.members.values() if m.room_id == room_id), key=lambda m: m.order)

    def member_by_pid(self, room_id: str, pid: str) -> Member | None:
        sid = self._sid_of(room_id, pid)
        return None if sid is None else self.members.get(sid)

    def participants_json(self, room_id: str) -> list[dict[str, Any]]:
        listed: list[tuple[int, dict[str, Any]]] = [
            (m.order, m.to_json()) for m in self.room_members(room_id)
        ]
        room = self.rooms.get(room_id)
        listed += [
            (g.member.order, g.member.to_json(None if self._media_flows(g) else "reconnecting"))
            for g in (room.ghosts.values() if room is not None else ())
        ]
        floor = room.floor if room is not None else None
        people = [entry for _, entry in sorted(listed, key=lambda pair: pair[0])]
        for person in people:
            person["hand"] = floor is not None and person["id"] in floor.hands
            person["floor"] = floor is not None and floor.floor == person["id"]
            link = room.links.get(person["id"]) if room is not None else None
            person["link"] = {"bars": link["bars"], "mode": link["mode"]} if link else None
            # which simulcast layer of whose video it receives (the chair's list shows it)
            person["layers"] = dict(room.received_layers.get(person["id"], {})) if room is not None else {}
        return people

    # -- reconnecting participants ------------------------------------------------------------
    def _media_flows(self, ghost: Ghost) -> bool:
        """A participant whose socket was lost but whose media still arrives is still in the
        meeting for everybody else: it is not shown as reconnecting."""
        if not ghost.media:
            return False
        age = self.media_age(ghost.member.room_id, ghost.member.pid)
        return age is not None and age < MEDIA_SILENCE_S

    def media_age(self, room_id: str, pid: str) -> float | None:
        """Seconds since the participant's media last reached the SFU; None if none has, or if
        the SFU does not host the participant (any more)."""
        try:
            return self.sfu.media_age(room_id, pid)
        except SfuError:
            return None

    def _haunt(self, member: Member, *, media: bool = False) -> None:
        """List a dropped participant as "reconnecting" for a while instead of gone."""
        room_id, pid = member.room_id, member.pid
        room = self._hub_room(room_id)
        room.exorcise(pid)
        loop = asyncio.get_running_loop()
        expiry = loop.call_later(
            self.reconnect_grace, lambda: loop.create_task(self._ghost_expired(room_id, pid))
        )
        if not media:
            member.connected = False
        room.ghosts[pid] = Ghost(member, expiry, media)

    def _exorcise(self, room_id: str, pid: str) -> Ghost | None:
        room = self.rooms.get(room_id)
        return None if room is None else room.exorcise(pid)

    async def _ghost_expired(self, room_id: str, pid: str) -> None:
        room = self.rooms.get(room_id)
        ghost = room.exorcise(pid) if room is not None else None
        if room is None or ghost is None:
            return
        # Gone for good: its link estimate and its last still picture go with it.
        room.clear_state(pid)
        if ghost.media:
            await self._end_media(ghost.member)
        if (floor := room.floor) is not None:
            floor.gone(pid)
            await self.keep_floor(room_id)
            await self.broadcast_hands(room_id)
        log.info("participant did not come back", extra={"room_id": room_id, "participant": pid})
        await self.broadcast_participants(room_id)

    async def broadcast_participants(self, room_id: str) -> None:
        """Send the room's participant list to everybody in it, now (a join, a leave, a mute or
        a chair's action: the pages' answers to them come after the list). A list due from
        :meth:`refresh_participants` is sent with this one."""
        room = self.rooms.get(room_id)
        if room is not None:
            if room.participants_due is not None:
                room.participants_due.cancel()
                room.participants_due = None
            room.participants_sent_at = asyncio.get_running_loop().time()
        await self._send_participants(room_id)

    async def refresh_participants(self, room_id: str) -> None:
        """Send the room's participant list for a change the media plane reports (a hall's
        media connected, its link bars, a layer it receives): at once when the list has not gone
        out for :data:`PARTICIPANTS_EVERY_S`, otherwise once at the end of that window, as the
        list is then (the changes in between ride along).

        Why a throttle: each change resends the whole list to every socket of the room, so a
        burst of them in a room of N halls costs N lists of N entries per change. At a county
        briefing's start, 300 halls connecting and taking their first simulcast layers would
        have sent tens of millions of list entries; now it is four lists a second."""
        room = self.rooms.get(room_id)
        if room is None:  # not hosted here (any more): nothing to throttle
            await self._send_participants(room_id)
            return
        if room.participants_due is not None:
            return  # the send due at the end of this window carries the change
        loop = asyncio.get_running_loop()
        wait = room.participants_sent_at + PARTICIPANTS_EVERY_S - loop.time()
        if wait <= 0:
            room.participants_sent_at = loop.time()
            await self._send_participants(room_id)
        else:
            room.participants_due = loop.create_task(
                self._send_participants_later(room, wait), name=f"participants-{room_id}"
            )

    async def _send_participants_later(self, room: HubRoom, wait: float) -> None:
        await asyncio.sleep(wait)
        room.participants_due = None
        room.participants_sent_at = asyncio.get_running_loop().time()
        try:
            await self._send_participants(room.room_id)
        except Exception:
            # A lost send (the message queue away) costs this list only: the next change
            # sends it again whole.
            log.exception("sending the participant list failed", extra={"room_id": room.room_id})

    async def _send_participants(self, room_id: str) -> None:
        await emit(self.sio, Participants(self.participants_json(room_id)), room=socket_room(room_id))

    async def broadcast_hands(self, room_id: str) -> None:
        if (floor := self._floor(room_id)) is not None:
            await emit(self.sio, Hands(**floor.hands_json()), room=socket_room(room_id))

    async def send_lobby(self, room_id: str) -> None:
        if (floor := self._floor(room_id)) is not None:
            await emit(self.sio, Lobby(floor.lobby_json()), room=chair_room(room_id))

    async def forget_ghost(self, room_id: str, pid: str) -> None:
        """``pid`` will not be back (the chair removed it): stop listing it, end its media."""
        ghost = self._exorcise(room_id, pid)
        if ghost is not None:
            self.rooms[room_id].clear_state(pid)
            if ghost.media:
                await self._end_media(ghost.member)

    def remove_from_lobby(self, room_id: str, sid: str) -> None:
        """The chair admitted or removed a waiting socket: it no longer waits here."""
        if (room := self.rooms.get(room_id)) is not None:
            room.lobby.pop(sid, None)

    def floor_of(self, room_id: str) -> Floor | None:
        """The chair's floor of ``room_id`` (None: not a scheduled meeting, or not hosted here)."""
        return self._floor(room_id)

    async def keep_floor(self, room_id: str) -> None:
        """After a change to the room's floor: keep it for the web process that takes the room
        over should this one die (docs/scale.md "Handover"); nothing to do in one process."""
        floor = self._floor(room_id)
        if floor is not None and isinstance(self.sfu, Handover):
            await self.sfu.keep_floor(room_id, floor.durable_json())

    def joined(self, sid: str) -> Member:
        """The member this socket is (SignalingError ``not_joined`` if none)."""
        return self._member(sid)

    def _member(self, sid: str) -> Member:
        member = self.members.get(sid)
        if member is None:
            raise SignalingError("not_joined", "join a room first")
        return member

    # -- client requests ----------------------------------------------------------------------
    async def join(self, sid: str, principal: Principal, data: Any) -> dict[str, Any]:
        request = JoinRequest.from_dict(data)
        if (again := await self._resumed_again(sid, request)) is not None:
            return again
        if sid in self.members or sid in self.joining:
            raise SignalingError("already_joined", "this connection is already in a room; leave first")
        self.joining.add(sid)
        try:
            joined = await self._join(sid, principal, request)
        finally:
            self.joining.discard(sid)
            abandoned = self.abandoned.pop(sid, None)
        if abandoned is not None:
            await self.leave(sid, reason=abandoned)
            raise SignalingError("not_joined", "the connection closed while joining")
        return joined

    async def _join(self, sid: str, principal: Principal, request: JoinRequest) -> dict[str, Any]:
        if self._lobby_of(sid) is not None:
            raise SignalingError("already_joined", "this connection is already waiting in a lobby")
        room_id = str(request.room_id)
        async with transaction(self.sessionmaker) as session:
            room = await session.get(rooms_service.Room, request.room_id)
            if room is None:
                raise SignalingError("room_not_found", f"room {request.room_id} does not exist")
            if not room.is_open:
                raise SignalingError("room_closed", "this meeting is over")
            if not await meetings.may_join_room(session, principal, room):
                raise SignalingError("not_invited", "you are not invited to this room")
            info = await rooms_service.member_info(session, principal)
            title = room.title
            meeting = await meetings.meeting_for_room(session, room.id)
            live = self._hub_room(room_id)
            fresh = None
            if meeting is not None and live.floor is None:
                fresh = Floor(
                    meeting_id=meeting.id,
                    chair_id=meeting.chair_id,
                    lobby_mode=meeting.lobby_mode,
                    agenda=tuple(AgendaEntry(i.id, i.position, i.title) for i in meeting.agenda),
                )
        if fresh is not None:
            # The room is new here: a web process that held it before (and died) may have kept
            # its floor. Restored before anybody is let in by it (a removed participant stays out).
            if isinstance(self.sfu, Handover) and (kept := await self.sfu.kept_floor(room_id)) is not None:
                if fresh.restore(kept):
                    log.info("floor taken over", extra={"room_id": room_id})
            if live.floor is None:
                live.floor = fresh
        pid = participant_id(principal)
        floor = live.floor
        is_chair = floor is not None and (
            principal.role is Role.ADMIN
            or (principal.role is Role.OFFICIAL and principal.id == floor.chair_id)
        )
        room_json = {"id": request.room_id, "title": title}
        if floor is not None and pid in floor.removed:
            raise SignalingError("removed", "the chair asked you to leave this meeting")
        if request.resume is not None and (
            taken := await self._take_over(sid, room_id, pid, request.resume, principal, info, is_chair)
        ):
            return self._join_ack(taken, floor, room_json, resumed=True)
        if floor is not None and floor.must_wait(pid, is_kiosk=principal.role is Role.KIOSK):
            return await self._wait_in_lobby(sid, floor, room_id, pid, info, room_json)
        if request.resume is not None and (resumed := await self._resume(sid, room_id, pid, request.resume)):
            return self._join_ack(resumed, floor, room_json, resumed=True)
        replaced = await self._replace_earlier(room_id, pid, sid)
        if (stale := live.ghosts.get(pid)) is not None and stale.media:
            # A new page (not a resume) while the old one's media is still held: drop that media.
            stale.media = False
            with contextlib.suppress(SfuError):
                await stale.member.handle.leave()
        self.sfu.open_room(room_id)
        try:
            # Village halls sit on thin links: their Opus is asked for a lower rate.
            audio_rate = self.settings.kiosk_audio_bitrate if principal.role is Role.KIOSK else None
            handle = await self.sfu.admit(room_id, pid, audio_max_bitrate=audio_rate)
        except AlreadyJoined as exc:
            raise SignalingError("already_joined", "this device or account is already in the room") from exc
        ghost = self._exorcise(room_id, pid)
        previous = replaced or (ghost.member if ghost is not None else None)
        if previous is not None:
            order = previous.order  # back in its place in the list
        else:
            self._order += 1
            order = self._order
        member = Member(sid, room_id, pid, principal, info, handle, order=order, is_chair=is_chair)
        if previous is not None:
            member.audio_muted, member.video_muted = previous.audio_muted, previous.video_muted
        self.members[sid] = member
        self._hub_room(room_id).sids[pid] = sid
        if isinstance(self.sfu, Handover):
            await self.sfu.keep_for_handover(handle, member.resume_token)
        await self._enter_rooms(sid, room_id, chair=is_chair)
        log.info(
            "joined room",
            extra={"room_id": room_id, "participant": pid, "sid": sid, "rejoin": previous is not None},
        )
        await self.broadcast_participants(room_id)
        return self._join_ack(member, floor, room_json, resumed=False)

    def _join_ack(
        self, member: Member, floor: Floor | None, room_json: dict[str, Any], *, resumed: bool
    ) -> dict[str, Any]:
        room_id, pid = member.room_id, member.pid
        live = self._hub_room(room_id)
        ack = {
            "participant_id": pid,
            "room": room_json,
            **client_rtc_config(self.settings, pid),
            "participants": self.participants_json(room_id),
            "slot_plan": SLOT_PLAN[member.principal.role],
            "active_speaker": self.sfu.active_speaker(room_id),
            "recording": self.is_recording(room_id),
            "is_chair": member.is_chair,
            "meeting_id": floor.meeting_id if floor is not None else None,
            "floor": floor.state_json() if floor is not None else None,
            "lobby": floor.lobby_json() if floor is not None and member.is_chair else [],
            "stills_wanted": live.stills_wanted,
            "resume_token": member.resume_token,
            "resumed": resumed,
        }
        if resumed:
            ack["slots"] = member.handle.slots()  # the page keeps its peer connection
            ack["link"] = live.links.get(pid)
        return ack

    async def _resumed_again(self, sid: str, request: JoinRequest) -> dict[str, Any] | None:
        """The resume this socket already made, asked for again: its answer was lost or late
        (a hall's congested link), and the page or kiosk retried on the same socket. It gets the
        same answer, not ``already_joined``, which would make it start over with new media."""
        member = self.members.get(sid)
        if (
            member is None
            or request.resume is None
            or member.room_id != str(request.room_id)
            or not secrets.compare_digest(member.resume_token, request.resume)
        ):
            return None
        async with transaction(self.sessionmaker) as session:
            room = await session.get(rooms_service.Room, request.room_id)
        if room is None or not room.is_open:
            return None  # the room went away meanwhile: the usual refusal says so
        log.info("resume repeated", extra={"room_id": member.room_id, "participant": member.pid, "sid": sid})
        room_json = {"id": request.room_id, "title": room.title}
        return self._join_ack(member, self._floor(member.room_id), room_json, resumed=True)

    async def _resume(self, sid: str, room_id: str, pid: str, token: str) -> Member | None:
        """Bind this socket to the participant whose page lost its socket but kept its media
        connection (its token proves it is the same page). None if there is nothing to resume:
        the page then starts over with a new peer connection."""
        live = self._hub_room(room_id)
        ghost = live.ghosts.get(pid)
        member = ghost.member if ghost is not None and ghost.media else self.member_by_pid(room_id, pid)
        if member is None or not secrets.compare_digest(member.resume_token, token):
            return None
        if not self._sfu_has(room_id, pid):
            return None
        if ghost is not None:
            live.exorcise(pid)
        else:
            self._forget(member.sid)  # the old socket is dead but not noticed yet
        member.sid = sid
        self.members[sid] = member
        live.sids[pid] = sid
        await self._enter_rooms(sid, room_id, chair=member.is_chair)
        log.info("resumed room", extra={"room_id": room_id, "participant": pid, "sid": sid})
        await self.broadcast_participants(room_id)
        return member

    async def _take_over(
        self,
        sid: str,
        room_id: str,
        pid: str,
        token: str,
        principal: Principal,
        info: rooms_service.MemberInfo,
        is_chair: bool,
    ) -> Member | None:
        """Bind this socket to a participant admitted through another web process that died:
        nginx now sends the room's sockets here, and the page resumes with its token. The
        participant is taken over on its worker and its media goes on untouched (docs/scale.md
        "Handover"). None when this process knows the participant itself (the local resume
        decides), or when there is nothing to take over (the page then starts over)."""
        live = self._hub_room(room_id)
        if not isinstance(self.sfu, Handover) or pid in live.ghosts or self.member_by_pid(room_id, pid):
            return None
        taken = await self.sfu.take_over(room_id, pid, token)
        if taken is None:
            return None
        self._order += 1
        member = Member(
            sid,
            room_id,
            pid,
            principal,
            info,
            taken.handle,
            connected=taken.connected,
            order=self._order,
            is_chair=is_chair,
            resume_token=token,
        )
        if live.floor is not None:
            live.floor.admitted.add(pid)  # it was in the meeting: a later reconnect skips the lobby
            await self.keep_floor(room_id)
        self.members[sid] = member
        live.sids[pid] = sid
        await self._enter_rooms(sid, room_id, chair=is_chair)
        log.info("took over room participant", extra={"room_id": room_id, "participant": pid, "sid": sid})
        await self.broadcast_participants(room_id)
        return member

    async def _wait_in_lobby(
        self,
        sid: str,
        floor: Floor,
        room_id: str,
        pid: str,
        info: rooms_service.MemberInfo,
        room_json: dict[str, Any],
    ) -> dict[str, Any]:
        """Park a kiosk in the lobby; the chair's ``admit`` sends it ``admitted`` and it joins again."""
        live = self._hub_room(room_id)
        earlier = floor.lobby.get(pid)
        if earlier is not None and earlier.sid != sid:
            live.lobby.pop(earlier.sid, None)
            await emit(self.sio, Replaced(), to=earlier.sid)
        floor.wait(LobbyEntry(sid, pid, info.name, info.village, utcnow()))
        live.lobby[sid] = pid
        log.info("waiting in the lobby", extra={"room_id": room_id, "participant": pid})
        await self.send_lobby(room_id)
        return {"waiting": True, "participant_id": pid, "room": room_json}

    async def _replace_earlier(self, room_id: str, pid: str, sid: str) -> Member | None:
        """The same kiosk or account joins again (a page reloaded, a kiosk came back after its link
        dropped before the old socket timed out): the newest connection wins, the older one is
        told it was ``replaced`` and stops. Attendance continues."""
        earlier = self._sid_of(room_id, pid)
        if earlier is None or earlier == sid:
            return None
        log.info("participant replaced by a newer connection", extra={"room_id": room_id, "participant": pid})
        member = self.members.get(earlier)
        await emit(self.sio, Replaced(), to=earlier)
        await self.leave(earlier, reason="replaced")
        return member

    async def offer(self, sid: str, data: Any) -> dict[str, Any]:
        member = self._member(sid)
        request = OfferRequest.from_dict(data)
        try:
            answer = await member.handle.handle_offer(request.sdp)
        except InvalidSdp as exc:
            raise SignalingError("invalid_sdp", str(exc)) from exc
        except InvalidState as exc:
            raise SignalingError(
                "offer_already_handled", "one offer per join; rejoin to renegotiate"
            ) from exc
        except (NotInRoom, RoomNotFound) as exc:
            raise SignalingError("not_joined", "you are no longer in the room; join again") from exc
        return {"sdp": answer, "type": "answer", "slots": member.handle.slots()}

    async def ice(self, sid: str, data: Any) -> dict[str, Any]:
        member = self._member(sid)
        request = IceRequest.from_dict(data)
        try:
            await member.handle.add_ice_candidate(request.candidate, request.sdp_mid, request.sdp_mline_index)
        except InvalidRequest as exc:
            raise SignalingError("invalid_candidate", str(exc)) from exc
        except InvalidState as exc:
            raise SignalingError("offer_first", "send the offer before ICE candidates") from exc
        except (NotInRoom, RoomNotFound) as exc:
            raise SignalingError("not_joined", "you are no longer in the room; join again") from exc
        return {"ok": True}

    async def mute(self, sid: str, data: Any) -> dict[str, Any]:
        member = self._member(sid)
        request = MuteRequest.from_dict(data)
        member.audio_muted, member.video_muted = request.audio, request.video
        await self.broadcast_participants(member.room_id)
        return {"ok": True}

    async def visible(self, sid: str, data: Any) -> dict[str, Any]:
        member = self._member(sid)
        request = VisibleRequest.from_dict(data)
        try:
            member.handle.set_visible_videos(request.publisher_ids)
        except InvalidRequest as exc:
            raise SignalingError("invalid_payload", str(exc)) from exc
        except (NotInRoom, RoomNotFound) as exc:
            raise SignalingError("not_joined", "you are no longer in the room; join again") from exc
        return {"ok": True}

    async def tiles(self, sid: str, data: Any) -> dict[str, Any]:
        member = self._member(sid)
        request = TilesRequest.from_dict(data)
        handle = member.handle
        if not isinstance(handle, TileSizing):
            # A media plane without simulcast layer choice: its layers follow bandwidth
            # alone; the page is told, nothing breaks. (Both of Maeul's handles choose: the
            # in-process Sfu's and the cluster's RemoteHandle, which forwards the report.)
            return {"ok": True, "used": False}
        try:
            handle.set_tile_sizes(request.sizes)
        except InvalidRequest as exc:
            raise SignalingError("invalid_payload", str(exc)) from exc
        except (NotInRoom, RoomNotFound) as exc:
            raise SignalingError("not_joined", "you are no longer in the room; join again") from exc
        return {"ok": True}

    async def leave(self, sid: str, reason: str = "left") -> bool:
        """Leave the room (the ``leave`` event and every disconnect); True if the socket was in one.
        ``reason`` "dropped" (the connection was lost, not closed) lists the participant as
        reconnecting for a while."""
        if (lobby := self._lobby_of(sid)) is not None:
            del lobby.lobby[sid]
            if lobby.floor is not None:
                lobby.floor.leave_lobby(sid)
                await self.send_lobby(lobby.room_id)
            return True
        member = self._forget(sid)
        if member is None:
            if reason in ("disconnect", "dropped") and sid in self.joining:
                self.abandoned[sid] = reason
            return False
        if reason == "dropped" and member.connected:
            # Only the socket was lost (a congested or cut link): the media connection may carry
            # on, or come back with the link, and the page resumes it with its token. Nothing
            # else changes until it is back, replaced, or the grace period ends.
            await self._leave_rooms(sid, member.room_id)
            self._haunt(member, media=True)
            log.info(
                "socket lost; media kept for a resume",
                extra={"room_id": member.room_id, "participant": member.pid},
            )
            await self.broadcast_participants(member.room_id)
            return True
        self._clear_state(member)
        with contextlib.suppress(SfuError):
            await member.handle.leave()
        # A replaced connection hands its presence straight to the new one.
        if member.connected and reason != "replaced":
            await self._presence(member, present=False)
        await self._leave_rooms(sid, member.room_id)
        if reason == "dropped":
            self._haunt(member)  # a lost connection, not a goodbye: it may come back
        elif reason != "replaced" and (floor := self._floor(member.room_id)) is not None:
            floor.gone(member.pid)
            await self.keep_floor(member.room_id)
            await self.broadcast_hands(member.room_id)
        log.info("left room", extra={"room_id": member.room_id, "participant": member.pid, "reason": reason})
        await self.broadcast_participants(member.room_id)
        await self._update_stills_wanted(member.room_id)
        return True

    # -- recording ----------------------------------------------------------------------------
    def is_recording(self, room_id: str) -> bool:
        try:
            return self.sfu.recording(room_id) is not None
        except RoomNotFound:
            return False

    async def start_recording(self, room_id: str, directory: Path, label: str) -> None:
        """Record the room (RecordingStateError if it already is), mark ``label`` and tell
        everybody."""
        async with self._recording_lock:
            self.sfu.open_room(room_id)
            try:
                self.sfu.start_recording(room_id, directory)
            except InvalidState as exc:
                raise RecordingStateError("the room is already being recorded") from exc
            self.sfu.mark(room_id, label[:500])
        log.info("recording started", extra={"room_id": room_id})
        await emit(self.sio, Recording(active=True), room=socket_room(room_id))

    def mark(self, room_id: str, label: str) -> None:
        """A chapter mark in the room's recording, if it is being recorded."""
        if self.is_recording(room_id):
            with contextlib.suppress(SfuError):
                self.sfu.mark(room_id, label[:500])

    async def stop_recording(self, room_id: str) -> tuple[list[RecordedFile], list[Mark]]:
        """Stop the room's recording (RecordingStateError if it is not recorded); every file is
        complete on return. Everybody is told."""
        files, marks = await self._stop_media_recording(room_id)
        await self._tell_recording_stopped(room_id, files)
        return files, marks

    async def _stop_media_recording(self, room_id: str) -> tuple[list[RecordedFile], list[Mark]]:
        async with self._recording_lock:
            try:
                session = self.sfu.recording(room_id)
            except RoomNotFound as exc:
                raise RecordingStateError("the room is not being recorded") from exc
            if session is None:
                raise RecordingStateError("the room is not being recorded")
            marks = list(session.marks)
            files = await self.sfu.stop_recording(room_id)
        return files, marks

    async def _tell_recording_stopped(self, room_id: str, files: list[RecordedFile]) -> None:
        log.info("recording stopped", extra={"room_id": room_id, "files": len(files)})
        await emit(self.sio, Recording(active=False), room=socket_room(room_id))

    async def finish_recording(self, room_id: str) -> list[dict[str, Any]]:
        """Stop the room's recording (RecordingStateError if it is not recorded) and register every
        file for the meeting that owns the room; returns the registered files."""
        files, marks = await self._stop_media_recording(room_id)
        try:
            async with transaction(self.sessionmaker) as session:
                _, registered = await meeting_recordings.register_room_recording(
                    session, int(room_id), files, marks, self.settings.data_dir
                )
        finally:
            # Told after the registration, so a page that opens the meeting's record on "stopped"
            # finds the files; told even when it failed, because the recording has stopped.
            await self._tell_recording_stopped(room_id, files)
        return registered

    async def close_room(self, room_id: int) -> None:
        """A closed room: a running recording is finished and registered, then everybody hosted
        here is disconnected (they get ``room_closed``)."""
        key = str(room_id)
        if self.is_recording(key):
            try:
                await self.finish_recording(key)
            except RecordingStateError:
                pass  # a "stop" in flight collects the files
            except Exception:
                log.exception("finishing the recording of a closed room failed", extra={"room_id": key})
        if key in self.sfu.room_ids:
            await self.sfu.close_room(key)
        # Everything this worker knew of the room goes in one removal. The SFU's "room-closed"
        # events that the pump has not handled yet then find nobody: their pages are told here.
        live = self.rooms.pop(key, None)
        if live is None:
            return
        live.close()
        for sid in live.lobby:
            await emit(self.sio, RoomClosed(key), to=sid)
        for sid in live.sids.values():
            if (member := self.members.pop(sid, None)) is None:
                continue
            await self._leave_rooms(sid, key)
            await emit(self.sio, RoomClosed(key), to=sid)
            if member.connected:
                try:
                    await self._presence(member, present=False)
                except Exception:
                    # The room is closed either way (the pump logs the same failure and carries on).
                    log.exception("ending a presence in a closed room failed", extra={"room_id": key})

    def occupancy(self, room_id: int) -> int:
        return len(self.room_members(str(room_id)))
