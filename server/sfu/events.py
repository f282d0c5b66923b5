"""Events the SFU reports to the signaling layer.

The SFU keeps no state that other processes need; whatever they need
(membership, who speaks, which tile shows whom, whose video is wanted) is
published as one of these immutable events. Listeners are plain callables
registered with :meth:`server.sfu.Sfu.subscribe`; they run synchronously on
the event loop and must not block (put the event on a queue if needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["audio", "video"]


@dataclass(frozen=True)
class ParticipantConnected:
    """The participant's media transport is up (DTLS connected)."""

    room_id: str
    participant_id: str


@dataclass(frozen=True)
class ParticipantLeft:
    """The participant is gone; ``reason`` is "left", "transport-closed",
    "transport-failed" or "room-closed"."""

    room_id: str
    participant_id: str
    reason: str


@dataclass(frozen=True)
class ActiveSpeakerChanged:
    """The loudest participant changed (``None``: nobody speaks)."""

    room_id: str
    participant_id: str | None


@dataclass(frozen=True)
class VideoDemandChanged:
    """Somebody (``wanted``) or nobody (not ``wanted``) watches this publisher's
    video. The signaling layer may tell the publisher to pause/resume sending;
    forwarding already skips unwatched video either way."""

    room_id: str
    participant_id: str
    wanted: bool


@dataclass(frozen=True)
class SlotAssigned:
    """The subscriber's receive slot (m-line ``mid``) now carries the media of
    ``publisher_id`` (``None``: the slot is idle). Clients use this to label
    video tiles; the SFU rewrites SSRCs so no renegotiation is needed."""

    room_id: str
    subscriber_id: str
    mid: str
    kind: Kind
    publisher_id: str | None


SfuEvent = ParticipantConnected | ParticipantLeft | ActiveSpeakerChanged | VideoDemandChanged | SlotAssigned
