"""What the room hub needs of a media plane, as a Protocol.

Two things satisfy it: the in-process :class:`server.sfu.Sfu` (``run.py serve``, unchanged) and
:class:`server.cluster.remote.RemoteSfu` (``run.py web``: the rooms live in SFU worker processes).
The hub is written against this and nothing else, so the embedded server and the cluster run the
same signaling code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from rtc.recorded import Mark, RecordedFile
from server.sfu import Sfu, SfuEvent


class MediaHandle(Protocol):
    """One admitted participant (:class:`server.sfu.ParticipantHandle` in process)."""

    room_id: str
    participant_id: str

    async def handle_offer(self, sdp: str) -> str: ...

    async def add_ice_candidate(
        self, candidate: str | None, sdp_mid: str | None = None, sdp_mline_index: int | None = None
    ) -> None: ...

    def set_visible_videos(self, publisher_ids: Sequence[str] | None) -> None: ...

    def slots(self) -> dict[str, str | None]: ...

    async def leave(self) -> None: ...


class RecordingView(Protocol):
    """What the hub reads of a running recording."""

    @property
    def marks(self) -> list[Mark]: ...


class MediaPlane(Protocol):
    """The calls the room hub makes (see docs/sfu.md "Interface for the signaling layer")."""

    @property
    def room_ids(self) -> list[str]: ...

    def subscribe(self, listener: Callable[[SfuEvent], None]) -> Callable[[], None]: ...

    def open_room(self, room_id: str) -> None: ...

    async def close_room(self, room_id: str) -> None: ...

    async def admit(
        self, room_id: str, participant_id: str, *, audio_max_bitrate: int | None = None
    ) -> MediaHandle: ...

    def participant(self, room_id: str, participant_id: str) -> MediaHandle: ...

    def active_speaker(self, room_id: str) -> str | None: ...

    def media_age(self, room_id: str, participant_id: str) -> float | None: ...

    def recording(self, room_id: str) -> RecordingView | None: ...

    def start_recording(self, room_id: str, directory: Path) -> object: ...

    def mark(self, room_id: str, label: str) -> Mark: ...

    async def stop_recording(self, room_id: str) -> list[RecordedFile]: ...


@dataclass(frozen=True)
class TakenOver:
    """A participant taken over from a dead web process (:class:`Handover`)."""

    handle: MediaHandle
    connected: bool  # its media connection is up (attendance already counts it present)


@runtime_checkable
class Handover(Protocol):
    """A media plane whose participants outlive the web process that admitted them
    (:class:`server.cluster.remote.RemoteSfu`): when that process dies, the page's socket comes
    back through another one, which takes the participant over with the page's resume token, and
    its media goes on untouched (docs/scale.md "Handover"). The in-process :class:`Sfu` has no
    such thing: its participants live and die with the process that admitted them."""

    async def keep_for_handover(self, handle: MediaHandle, token: str) -> None:
        """Note where ``handle``'s admission is, for a takeover with ``token`` (best effort)."""
        ...

    async def take_over(self, room_id: str, participant_id: str, token: str) -> TakenOver | None:
        """The participant admitted through another web process, if ``token`` is its page's and
        the admission is still the current one; None otherwise (the page starts over)."""
        ...

    async def keep_floor(self, room_id: str, state: Mapping[str, Any]) -> None:
        """Keep the room's floor (``Floor.durable_json``) for the web process that takes the
        room over (best effort)."""
        ...

    async def kept_floor(self, room_id: str) -> dict[str, Any] | None:
        """The floor a web process that held the room kept (None: none, or unreadable)."""
        ...


@dataclass(frozen=True)
class ParticipantCounters:
    """What one participant's media has cost so far (counters from its admission on)."""

    packets_out: int
    bytes_out: int
    retransmitted: int
    nacks_sent: int
    plis_sent: int  # keyframe requests sent to it


@dataclass(frozen=True)
class RoomCounters:
    """A room's media counters, as /metrics, /admin/system and the history sampler read them."""

    participants: Mapping[str, ParticipantCounters]
    recording_bytes: int


@runtime_checkable
class MediaCounters(Protocol):
    """What the live state (server/ops/live.py) reads of a media plane: its rooms' counters.

    Not part of :class:`MediaPlane`, whose calls :class:`server.sfu.Sfu` makes itself: the SFU
    knows nothing of the rest of the server, so the in-process plane is read through
    :class:`SfuCounters`, and a :class:`server.cluster.remote.RemoteSfu` answers from its workers'
    media reports, which :func:`room_counters` fills on the worker. One computation either way."""

    @property
    def room_ids(self) -> list[str]: ...

    def room_counters(self, room_id: str) -> RoomCounters:
        """The room's counters (RoomNotFound: not open, or not reported yet)."""
        ...


def recording_bytes(sfu: Sfu, room_id: str) -> int:
    """Bytes on disk of the room's running recording (its files grow while it runs).

    A meeting keeps every recording in one directory, so only files written since this session
    started count (an earlier recording of the same meeting is finished and no longer grows)."""
    session = sfu.recording(room_id)
    if session is None:
        return 0
    since = session.started_at.timestamp() - 1.0
    total = 0
    try:
        paths = list(session.directory.iterdir())
    except OSError:
        # Removed or unreadable under us: nothing of it can be counted. An SFU worker reads this
        # in its heartbeat, which must not stop over a number for /metrics.
        return 0
    for path in paths:
        with contextlib.suppress(OSError):  # a temporary file renamed under us
            info = path.stat()
            if info.st_mtime >= since and path.is_file():
                total += info.st_size
    return total


def room_counters(sfu: Sfu, room_id: str) -> RoomCounters:
    """The room's counters read from the SFU's own stats (RoomNotFound if it is not open)."""
    stats = sfu.room_stats(room_id)
    participants = {
        pid: ParticipantCounters(
            packets_out=s.packets_out,
            bytes_out=s.bytes_out,
            retransmitted=sum(f.retransmitted for f in s.forwarded),
            nacks_sent=s.nacks_sent,
            plis_sent=s.keyframe_requests_sent,
        )
        for pid, s in stats.participants.items()
    }
    return RoomCounters(participants, recording_bytes(sfu, room_id))


class SfuCounters:
    """The in-process :class:`Sfu` (``run.py serve``, and each SFU worker) as MediaCounters."""

    def __init__(self, sfu: Sfu) -> None:
        self.sfu = sfu

    @property
    def room_ids(self) -> list[str]:
        return self.sfu.room_ids

    def room_counters(self, room_id: str) -> RoomCounters:
        return room_counters(self.sfu, room_id)


def media_counters(plane: MediaPlane) -> MediaCounters:
    """The counters of the app's media plane: a RemoteSfu has them, an Sfu is read directly."""
    if isinstance(plane, MediaCounters):
        return plane
    if isinstance(plane, Sfu):
        return SfuCounters(plane)
    raise TypeError(f"{type(plane).__name__} has no media counters")


#: The application's media plane: the in-process Sfu (``serve``) or a RemoteSfu (``web``).
MEDIA: web.AppKey[MediaPlane] = web.AppKey("media_plane")
