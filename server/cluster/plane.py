"""What the room hub needs of a media plane, as a Protocol.

Two things satisfy it: the in-process :class:`server.sfu.Sfu` (``run.py serve``, unchanged) and
:class:`server.cluster.remote.RemoteSfu` (``run.py web``: the rooms live in SFU worker processes).
The hub is written against this and nothing else, so the embedded server and the cluster run the
same signaling code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from aiohttp import web

from rtc.recorded import Mark, RecordedFile
from server.sfu import SfuEvent


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


#: The application's media plane: the in-process Sfu (``serve``) or a RemoteSfu (``web``).
MEDIA: web.AppKey[MediaPlane] = web.AppKey("media_plane")
