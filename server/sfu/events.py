"""Events the SFU reports to the signaling layer.

The SFU keeps no state that other processes need; whatever they need
(membership, who speaks, which tile shows whom, whose video is wanted) is
published as one of these immutable events. Listeners are plain callables
registered with :meth:`server.sfu.Sfu.subscribe`; they run synchronously on
the event loop and must not block (put the event on a queue if needed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

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
class SimulcastLayersChanged:
    """The simulcast layers (rids, lowest first) of this publisher's video that some subscriber
    slot takes; the others may be paused (``RTCRtpSender.setParameters``, ``active=false``).

    A layer nobody takes is left out only after :data:`~.simulcast.PAUSE_AFTER_S` (no flapping);
    a layer a subscriber's choice needs again is put back at once (the SFU asks it for a
    keyframe). The lowest layer is always listed: who receives the video at all is
    :class:`VideoDemandChanged`'s business. Every publisher starts with all its layers active
    and no event."""

    room_id: str
    participant_id: str
    active: tuple[str, ...]


@dataclass(frozen=True)
class ReceivedLayersChanged:
    """The simulcast layer (rid) this participant now receives of each simulcast publisher it
    receives video from (``{publisher_id: rid}``; empty: none), e.g. for the chair's list of
    halls. Re-evaluated with the layer choice (every ``SfuConfig.link_interval``), emitted on a
    change only; a slot waiting for the keyframe of its new layer still counts its old one."""

    room_id: str
    participant_id: str
    layers: dict[str, str]


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


@dataclass(frozen=True)
class LinkQualityChanged:
    """A participant's link quality as the SFU sees it changed (``bars`` or ``mode``).

    Every participant starts at ``bars=3, mode="video"`` with no event; one is emitted
    only on a change, re-evaluated every ``SfuConfig.link_interval`` seconds.

    ``mode`` is what the SFU forwards to the participant (its *downlink*):
    ``"video"`` everything; ``"low_video"`` video still flows but its estimate is below
    ``SfuConfig.full_video_kbps`` and caps the publishers' rate; ``"audio_only"`` its
    estimate leaves no room for video next to the audio, or its loss is heavy: the SFU
    stops forwarding video to it (its tiles keep the last frame: a still picture; the
    slots stay assigned, no SlotAssigned) and probes now and then to bring video back.

    ``bars`` (3 good, 2 degraded, 1 very poor) is the worse of downlink and *uplink*:
    downlink 3 = video, 2 = low_video or >= 5 % loss, 1 = audio_only or >= 20 % loss;
    uplink (what it publishes to us) 2 at >= 5 % loss, 1 at >= 20 % loss or when its
    published media stopped arriving. ``downlink_kbps`` is its bandwidth estimate
    (REMB; ``None`` when it sends none, e.g. while audio-only), ``loss_pct`` the worse
    of its downlink and uplink loss in percent (``None`` without reports).
    """

    room_id: str
    participant_id: str
    bars: int
    mode: Literal["video", "low_video", "audio_only"]
    downlink_kbps: int | None
    loss_pct: float | None


SfuEvent = (
    ParticipantConnected
    | ParticipantLeft
    | ActiveSpeakerChanged
    | VideoDemandChanged
    | SlotAssigned
    | LinkQualityChanged
    | SimulcastLayersChanged
    | ReceivedLayersChanged
)

Listener = Callable[[SfuEvent], None]


class Listeners:
    """The listeners of one event source (the in-process Sfu, or the web side's RemoteSfu)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: SfuEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break forwarding
                logger.exception("SFU event listener failed on %s", event)
