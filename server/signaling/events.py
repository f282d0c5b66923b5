"""Server → client socket events, typed: one frozen dataclass per event, its ``NAME`` the socket.io
event name and its fields the payload (:meth:`ServerEvent.to_dict`). docs/signaling.md's table of
server → client events is checked against :data:`SERVER_EVENTS` by a test.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import socketio

from server.signaling.messages import SignalingError


@dataclass(frozen=True)
class ServerEvent:
    NAME: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        # Shallow: nested values (participant entries, agenda items) are JSON-ready already.
        return {f.name: getattr(self, f.name) for f in fields(self)}


async def emit(
    sio: socketio.AsyncServer, event: ServerEvent, *, to: str | None = None, room: str | None = None
) -> None:
    """Send ``event`` to one socket (``to``) or a socket.io room (``room``); neither: everybody."""
    await sio.emit(event.NAME, event.to_dict(), to=to, room=room)


@dataclass(frozen=True)
class Participants(ServerEvent):
    NAME = "participants"
    participants: list[dict[str, Any]]  # Member.to_json entries with hand, floor and link


@dataclass(frozen=True)
class Slot(ServerEvent):
    NAME = "slot"
    mid: str
    kind: str
    publisher_id: str | None


@dataclass(frozen=True)
class ActiveSpeaker(ServerEvent):
    NAME = "active_speaker"
    participant_id: str | None


@dataclass(frozen=True)
class VideoDemand(ServerEvent):
    NAME = "video_demand"
    wanted: bool


@dataclass(frozen=True)
class Layers(ServerEvent):
    """The simulcast layers (rids) of your video some subscriber takes (SFU
    ``SimulcastLayersChanged``): send these, pause the others."""

    NAME = "layers"
    active: list[str]


@dataclass(frozen=True)
class Left(ServerEvent):
    NAME = "left"
    reason: str


@dataclass(frozen=True)
class RoomClosed(ServerEvent):
    NAME = "room_closed"
    room_id: str


@dataclass(frozen=True)
class Recording(ServerEvent):
    NAME = "recording"
    active: bool


@dataclass(frozen=True)
class Revoked(ServerEvent):
    NAME = "revoked"
    code: str
    message: str


@dataclass(frozen=True)
class Lobby(ServerEvent):
    NAME = "lobby"
    waiting: list[dict[str, Any]]


@dataclass(frozen=True)
class Admitted(ServerEvent):
    NAME = "admitted"


@dataclass(frozen=True)
class Removed(ServerEvent):
    NAME = "removed"


@dataclass(frozen=True)
class Replaced(ServerEvent):
    NAME = "replaced"


@dataclass(frozen=True)
class Hands(ServerEvent):
    NAME = "hands"
    queue: list[str]
    floor: str | None


@dataclass(frozen=True)
class Agenda(ServerEvent):
    NAME = "agenda"
    items: list[dict[str, Any]]
    current: dict[str, Any] | None


@dataclass(frozen=True)
class ChairMute(ServerEvent):
    NAME = "chair_mute"


@dataclass(frozen=True)
class AskUnmute(ServerEvent):
    NAME = "ask_unmute"
    floor: bool


@dataclass(frozen=True)
class LinkQuality(ServerEvent):
    NAME = "link_quality"
    bars: int
    mode: str
    downlink_kbps: int | None  # None until the SFU has an estimate
    loss_pct: float | None


@dataclass(frozen=True)
class StillsWanted(ServerEvent):
    NAME = "stills_wanted"
    wanted: bool


@dataclass(frozen=True)
class Error(ServerEvent):
    NAME = "error"
    code: str
    message: str
    event: str

    @classmethod
    def of(cls, error: SignalingError, event: str) -> Error:
        return cls(error.code, error.message, event[:64])


@dataclass(frozen=True)
class ServerRestarting(ServerEvent):
    NAME = "server_restarting"
    reconnect: str = "now"


#: Every event the server sends, for the documentation check.
SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    Participants,
    Slot,
    ActiveSpeaker,
    VideoDemand,
    Layers,
    Left,
    RoomClosed,
    Recording,
    Revoked,
    Lobby,
    Admitted,
    Removed,
    Replaced,
    Hands,
    Agenda,
    ChairMute,
    AskUnmute,
    LinkQuality,
    StillsWanted,
    Error,
    ServerRestarting,
)
