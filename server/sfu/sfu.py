"""The SFU facade the signaling layer talks to."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rtc.recorded import Mark, RecordedFile

from .config import SfuConfig
from .errors import InvalidRequest, InvalidState, RoomNotFound
from .events import Listener, Listeners, SfuEvent
from .participant import Participant
from .pipe import DEFAULT_TIMEOUT_S, Pipe, PipeStats, check_internal_address
from .recording import RecordingSession
from .room import ParticipantStats, Room, RoomStats

logger = logging.getLogger(__name__)


class ParticipantHandle:
    """What :meth:`Sfu.admit` returns: a participant's calls, bound to its ids.

    Holds no media state itself; after the participant left every call raises
    :class:`~server.sfu.errors.NotInRoom`.
    """

    def __init__(self, sfu: Sfu, room_id: str, participant_id: str) -> None:
        self._sfu = sfu
        self.room_id = room_id
        self.participant_id = participant_id

    def _participant(self) -> Participant:
        return self._sfu._room(self.room_id).get(self.participant_id)

    async def handle_offer(self, sdp: str) -> str:
        """Answer the client's offer (SDP string); returns the answer SDP (with candidates)."""
        return await self._sfu.handle_offer(self.room_id, self.participant_id, sdp)

    async def add_ice_candidate(
        self, candidate: str | None, sdp_mid: str | None = None, sdp_mline_index: int | None = None
    ) -> None:
        await self._sfu.add_ice_candidate(
            self.room_id, self.participant_id, candidate, sdp_mid, sdp_mline_index
        )

    def set_visible_videos(self, publisher_ids: Sequence[str] | None) -> None:
        self._sfu.set_visible_videos(self.room_id, self.participant_id, publisher_ids)

    def set_tile_sizes(self, sizes: Mapping[str, Sequence[int]]) -> None:
        self._sfu.set_tile_sizes(self.room_id, self.participant_id, sizes)

    def slots(self) -> dict[str, str | None]:
        """mid -> publisher id currently forwarded on that receive slot (None: idle)."""
        p = self._participant()
        return {o.mid: (o.source.publisher_id if o.source else None) for o in p.audio_slots + p.video_slots}

    @property
    def connected(self) -> bool:
        """Its media connection has come up (and it has not left)."""
        return self._participant().connected

    def stats(self) -> ParticipantStats:
        return self._sfu.room_stats(self.room_id).participants[self.participant_id]

    async def leave(self) -> None:
        await self._sfu.remove_participant(self.room_id, self.participant_id)


class Sfu:
    """A selective forwarding unit: rooms of participants whose RTP is forwarded
    packet by packet, never decoded.

    One instance per worker process. A room lives in exactly one worker; all
    state other processes need is published as events (see
    :mod:`server.sfu.events`) to listeners added with :meth:`subscribe`.
    """

    def __init__(self, config: SfuConfig | None = None) -> None:
        self.config = config or SfuConfig()
        self._rooms: dict[str, Room] = {}
        self._listeners = Listeners()
        #: Pipes to other SFUs by pipe id (pipe.py).
        self._pipes: dict[str, Pipe] = {}

    # -- events -----------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every SFU event; returns an unsubscribe function."""
        return self._listeners.subscribe(listener)

    def _emit(self, event: SfuEvent) -> None:
        logger.debug("event %s", event)
        self._listeners.emit(event)

    # -- rooms ------------------------------------------------------------------------------
    @property
    def room_ids(self) -> list[str]:
        return list(self._rooms)

    def open_room(self, room_id: str) -> None:
        """Open a room in this worker; opening an open room is a no-op."""
        if not isinstance(room_id, str) or not room_id or len(room_id) > 200:
            raise InvalidRequest("room id must be a non-empty string of at most 200 characters")
        if room_id not in self._rooms:
            self._rooms[room_id] = Room(room_id, self.config, self._emit)

    def _room(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            raise RoomNotFound(f"room {room_id!r} is not open in this SFU worker")
        return room

    async def close_room(self, room_id: str) -> None:
        """Disconnect everybody and forget the room."""
        room = self._room(room_id)
        del self._rooms[room_id]
        for pipe in [p for p in self._pipes.values() if p.room is room]:
            await pipe.close()
        await room.close()

    def room_stats(self, room_id: str) -> RoomStats:
        return self._room(room_id).stats()

    def active_speaker(self, room_id: str) -> str | None:
        return self._room(room_id).active_speaker

    def media_age(self, room_id: str, participant_id: str) -> float | None:
        """Seconds since the participant's last media packet reached us (None: none yet).
        Audio keeps arriving even in silence (DTX), so a few seconds means its uplink is down."""
        last = [
            s.last_packet_at
            for s in self._room(room_id).get(participant_id).inbound.values()
            if s.last_packet_at is not None
        ]
        return time.monotonic() - max(last) if last else None

    # -- recording --------------------------------------------------------------------------
    def start_recording(self, room_id: str, directory: Path) -> RecordingSession:
        """Record every publishing participant of the room, one WebM file each, into
        ``directory`` (created if missing), without decoding or re-encoding.

        Participants who join later get their own file from their join; leaving
        closes a participant's file. Raises InvalidState if already recording.
        """
        return self._room(room_id).start_recording(Path(directory))

    async def stop_recording(self, room_id: str) -> list[RecordedFile]:
        """Stop the room's recording; returns every file it wrote (complete on return)."""
        return await self._room(room_id).stop_recording()

    def recording(self, room_id: str) -> RecordingSession | None:
        return self._room(room_id).recording

    def mark(self, room_id: str, label: str) -> Mark:
        """Add a chapter-like mark (e.g. the next agenda item) to the room's recording:
        written to the sidecar JSON now, and as Matroska chapters when files close."""
        if not isinstance(label, str) or not label or len(label) > 500:
            raise InvalidRequest("label must be a non-empty string of at most 500 characters")
        session = self._room(room_id).recording
        if session is None:
            raise InvalidState(f"room {room_id!r} is not being recorded")
        return session.mark(label)

    # -- participants -----------------------------------------------------------------------
    async def admit(
        self, room_id: str, participant_id: str, *, audio_max_bitrate: int | None = None
    ) -> ParticipantHandle:
        """Admit a participant (raises AlreadyJoined if the id is in the room).

        ``audio_max_bitrate`` (bit/s) is the Opus rate asked of this participant in its
        SDP answer, e.g. 24000 for a hall on a weak link; default
        ``SfuConfig.opus_max_average_bitrate``.
        """
        self._room(room_id).admit(participant_id, audio_max_bitrate)
        return ParticipantHandle(self, room_id, participant_id)

    def participant(self, room_id: str, participant_id: str) -> ParticipantHandle:
        self._room(room_id).get(participant_id)
        return ParticipantHandle(self, room_id, participant_id)

    async def handle_offer(self, room_id: str, participant_id: str, sdp: str) -> str:
        return await self._connectable(room_id, participant_id).handle_offer(sdp)

    async def add_ice_candidate(
        self,
        room_id: str,
        participant_id: str,
        candidate: str | None,
        sdp_mid: str | None = None,
        sdp_mline_index: int | None = None,
    ) -> None:
        await self._connectable(room_id, participant_id).add_ice_candidate(
            candidate, sdp_mid, sdp_mline_index
        )

    def _connectable(self, room_id: str, participant_id: str) -> Participant:
        """A participant of this SFU that connects here (not one that came through a pipe)."""
        room = self._room(room_id)
        participant = room.get(participant_id)
        if participant_id in room.piped:
            raise InvalidState(f"{participant_id!r} publishes on another SFU; it came through a pipe")
        return participant

    def set_visible_videos(
        self, room_id: str, participant_id: str, publisher_ids: Sequence[str] | None
    ) -> None:
        self._room(room_id).set_visible_videos(participant_id, publisher_ids)

    def set_tile_sizes(self, room_id: str, participant_id: str, sizes: Mapping[str, Sequence[int]]) -> None:
        """Tile sizes ([width, height] px) per publisher on the subscriber's page (simulcast)."""
        self._room(room_id).set_tile_sizes(participant_id, sizes)

    async def remove_participant(self, room_id: str, participant_id: str) -> None:
        await self._room(room_id).remove(participant_id, "left")

    # -- pipes to other SFUs (pipe.py; docs/sfu.md, "Pipes") ---------------------------------
    async def open_pipe(
        self, room_id: str, pipe_id: str, host: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> tuple[str, int]:
        """Open this end of a pipe for ``room_id``: a UDP socket on ``host`` (an internal
        address; default the first of ``SfuConfig.host_addresses``). Returns its address, to be
        handed to the other SFU's :meth:`connect_pipe`. The pipe closes when its peer is silent
        for ``timeout`` seconds."""
        room = self._room(room_id)
        if not isinstance(pipe_id, str) or not pipe_id or len(pipe_id) > 200:
            raise InvalidRequest("pipe id must be a non-empty string of at most 200 characters")
        if pipe_id in self._pipes:
            raise InvalidState(f"pipe {pipe_id!r} is already open")
        if not isinstance(timeout, (int, float)) or not 0.5 <= timeout <= 120:
            raise InvalidRequest("pipe timeout must be 0.5..120 seconds")
        address = host if host is not None else (self.config.host_addresses or ("127.0.0.1",))[0]
        host, _ = check_internal_address(address, 1)
        pipe = Pipe(room, pipe_id, self.config, float(timeout), on_closed=self._pipe_closed)
        self._pipes[pipe_id] = pipe
        try:
            return await pipe.open(host)
        except OSError as exc:
            self._pipes.pop(pipe_id, None)
            raise InvalidRequest(f"cannot open a pipe on {host}: {exc}") from exc

    def connect_pipe(self, pipe_id: str, peer: tuple[str, int]) -> None:
        """Connect this end to the other end's address (what its :meth:`open_pipe` returned):
        only datagrams from there are taken."""
        if not isinstance(peer, (tuple, list)) or len(peer) != 2:
            raise InvalidRequest("peer must be (ip, port)")
        self._pipe(pipe_id).connect((peer[0], peer[1]))

    def pipe_out(self, pipe_id: str, publisher_id: str) -> None:
        """Send ``publisher_id``'s tracks through the pipe, once, to the other SFU (from when it
        publishes until it leaves). A publisher that came through a pipe is not sent on."""
        pipe = self._pipe(pipe_id)
        pipe.room.get(publisher_id)
        if any(p.room is pipe.room and p.receives(publisher_id) for p in self._pipes.values()):
            raise InvalidRequest(f"{publisher_id!r} came through a pipe; it is sent from its own SFU")
        pipe.send_publisher(publisher_id)

    def pipe_stats(self, pipe_id: str) -> PipeStats:
        return self._pipe(pipe_id).stats()

    async def close_pipe(self, pipe_id: str) -> None:
        """Close this end (the peer is told, and its received publishers leave its room)."""
        await self._pipe(pipe_id).close()

    def _pipe(self, pipe_id: str) -> Pipe:
        pipe = self._pipes.get(pipe_id)
        if pipe is None:
            raise InvalidState(f"no open pipe {pipe_id!r}")
        return pipe

    def _pipe_closed(self, pipe: Pipe) -> None:
        if self._pipes.get(pipe.id) is pipe:
            del self._pipes[pipe.id]

    async def close(self) -> None:
        """Close every room (worker shutdown)."""
        for room_id in list(self._rooms):
            await self.close_room(room_id)
