"""What the hub knows of one live room hosted by this worker, in one object.

:class:`HubRoom` holds the sockets bound to its participants, the chair's :class:`Floor` (scheduled
meetings only), the lobby, the participants listed as reconnecting, each participant's link
quality and latest still picture. Everything about a participant is keyed by its participant id
inside its room, so a participant that is gone for good is one :meth:`HubRoom.forget` and a closed
room is one removal from the hub's ``rooms``.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from server.auth.roles import Principal
from server.cluster.plane import MediaHandle
from server.rooms import service as rooms
from server.signaling.floor import Floor


@dataclass
class Member:
    sid: str
    room_id: str
    pid: str
    principal: Principal
    info: rooms.MemberInfo
    handle: MediaHandle
    audio_muted: bool = False
    video_muted: bool = False
    connected: bool = False
    order: int = 0
    is_chair: bool = False
    sharing: bool = False  # sends a shared screen instead of its camera
    # Proves a later join comes from the same page (which kept its media connection).
    resume_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def to_json(self, state: str | None = None) -> dict[str, Any]:
        return {
            "id": self.pid,
            "kind": self.info.kind,
            "name": self.info.name,
            "village": self.info.village,
            "audio_muted": self.audio_muted,
            "video_muted": self.video_muted,
            "connected": self.connected and state is None,
            "state": state or ("connected" if self.connected else "connecting"),
            "chair": self.is_chair,
            "screen": self.sharing,
        }


@dataclass
class Ghost:
    """A participant whose connection dropped, listed as "reconnecting" until it is back or the
    grace period ends. ``media``: only its socket was lost; its SFU participant is still there
    (its media may well still flow) and the page can resume it."""

    member: Member
    expiry: asyncio.TimerHandle
    media: bool = False


@dataclass
class HubRoom:
    room_id: str
    floor: Floor | None = None  # scheduled meetings only: ad-hoc rooms have no chair
    sids: dict[str, str] = field(default_factory=dict)  # participant id -> its bound socket
    lobby: dict[str, str] = field(default_factory=dict)  # waiting socket -> participant id
    ghosts: dict[str, Ghost] = field(default_factory=dict)  # by participant id
    # The SFU's view of each participant's link (LinkQualityChanged), for the pages.
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The simulcast layer (rid) each participant receives of each publisher (ReceivedLayersChanged).
    received_layers: dict[str, dict[str, str]] = field(default_factory=dict)
    # The latest still picture (JPEG) each participant sent, shown to audio-only participants.
    stills: dict[str, bytes] = field(default_factory=dict)
    stills_wanted: bool = False  # somebody here receives sound only
    # The participant list's throttle (RoomHub.broadcast_participants): when it was last sent
    # (loop time), and the send due at the end of the current window, if any.
    participants_sent_at: float = float("-inf")
    participants_due: asyncio.Task[None] | None = None

    def exorcise(self, pid: str) -> Ghost | None:
        """Stop listing ``pid`` as reconnecting (it is back, or gone for good)."""
        ghost = self.ghosts.pop(pid, None)
        if ghost is not None:
            ghost.expiry.cancel()
        return ghost

    def clear_state(self, pid: str) -> None:
        """Drop ``pid``'s link estimate and still picture: a new connection starts afresh, and a
        participant gone for good leaves nothing behind (a still is up to 64 KB)."""
        self.links.pop(pid, None)
        self.received_layers.pop(pid, None)
        self.stills.pop(pid, None)

    def audio_only_present(self) -> bool:
        """Somebody with a bound socket receives no video (the others should send stills)."""
        return any(link["mode"] == "audio_only" and pid in self.sids for pid, link in self.links.items())

    def close(self) -> None:
        """The room is over here: no reconnecting participant's timer may fire for it, and no
        participant list is sent for it any more."""
        for pid in list(self.ghosts):
            self.exorcise(pid)
        if self.participants_due is not None:
            self.participants_due.cancel()
            self.participants_due = None
