"""Payloads of the meeting events, each parsed from the raw socket.io data by an explicit
``from_dict``; anything unexpected raises :class:`SignalingError` with a stable code.

Errors reach the client as ``{"error": {"code", "message"}}`` (ack) and as an ``error`` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Largest SDP offer accepted (a 16-slot browser offer is about 20 KB).
MAX_SDP_BYTES = 64 * 1024
#: Largest engine.io message; bigger frames close that connection (websocket close 1009).
MAX_MESSAGE_BYTES = 96 * 1024
MAX_CANDIDATE_CHARS = 1024
MAX_MEDIA_SECTIONS = 24
MAX_VISIBLE = 32
MAX_ID_CHARS = 64


class SignalingError(Exception):
    """A request the server refuses; the connection and the room carry on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def _mapping(data: Any, event: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SignalingError("invalid_payload", f"'{event}' needs a JSON object")
    return data


def _only(data: Mapping[str, Any], event: str, allowed: set[str]) -> None:
    if unknown := sorted(set(data) - allowed):
        raise SignalingError("invalid_payload", f"'{event}' has unknown fields {unknown}")


@dataclass(frozen=True)
class JoinRequest:
    room_id: int
    # The resume token of this page's earlier join: after a lost socket, the page keeps its
    # media connection and asks to be bound to it again instead of starting over.
    resume: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> JoinRequest:
        d = _mapping(data, "join")
        _only(d, "join", {"room_id", "resume"})
        room_id = d.get("room_id")
        if isinstance(room_id, bool) or not isinstance(room_id, int) or not 0 < room_id < 2**31:
            raise SignalingError("invalid_payload", "'join' needs room_id, a positive integer")
        resume = d.get("resume")
        if resume is not None and (not isinstance(resume, str) or not 0 < len(resume) <= MAX_ID_CHARS):
            raise SignalingError("invalid_payload", "'join' resume must be the token of an earlier join")
        return cls(room_id, resume)


@dataclass(frozen=True)
class OfferRequest:
    sdp: str

    @classmethod
    def from_dict(cls, data: Any) -> OfferRequest:
        d = _mapping(data, "offer")
        _only(d, "offer", {"sdp", "type"})
        sdp = d.get("sdp")
        if d.get("type", "offer") != "offer":
            raise SignalingError("invalid_payload", "'offer' type must be 'offer'")
        if not isinstance(sdp, str):
            raise SignalingError("invalid_payload", "'offer' needs sdp, a string")
        if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
            raise SignalingError("sdp_too_large", f"the SDP is larger than {MAX_SDP_BYTES} bytes")
        if not sdp.startswith("v=0"):
            raise SignalingError("invalid_sdp", "the SDP must start with 'v=0'")
        sections = sum(1 for line in sdp.splitlines() if line.startswith("m="))
        if sections == 0:
            raise SignalingError("no_media", "the offer has no media sections")
        if sections > MAX_MEDIA_SECTIONS:
            raise SignalingError(
                "too_many_slots", f"the offer has more than {MAX_MEDIA_SECTIONS} media sections"
            )
        return cls(sdp)


@dataclass(frozen=True)
class IceRequest:
    candidate: str | None  # None (or "") = end of candidates
    sdp_mid: str | None
    sdp_mline_index: int | None

    @classmethod
    def from_dict(cls, data: Any) -> IceRequest:
        d = _mapping(data, "ice")
        _only(d, "ice", {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})
        candidate = d.get("candidate")
        mid = d.get("sdpMid")
        index = d.get("sdpMLineIndex")
        if candidate is not None and (not isinstance(candidate, str) or len(candidate) > MAX_CANDIDATE_CHARS):
            raise SignalingError(
                "invalid_payload", f"candidate must be a string of at most {MAX_CANDIDATE_CHARS}"
            )
        if mid is not None and (not isinstance(mid, str) or len(mid) > 32):
            raise SignalingError("invalid_payload", "sdpMid must be a short string")
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 64
        ):
            raise SignalingError("invalid_payload", "sdpMLineIndex must be an integer 0-63")
        if candidate and mid is None and index is None:
            raise SignalingError("invalid_payload", "a candidate needs sdpMid or sdpMLineIndex")
        return cls(candidate or None, mid, index)


@dataclass(frozen=True)
class MuteRequest:
    audio: bool
    video: bool

    @classmethod
    def from_dict(cls, data: Any) -> MuteRequest:
        d = _mapping(data, "mute")
        _only(d, "mute", {"audio", "video"})
        audio, video = d.get("audio"), d.get("video")
        if not isinstance(audio, bool) or not isinstance(video, bool):
            raise SignalingError("invalid_payload", "'mute' needs audio and video, both true or false")
        return cls(audio, video)


@dataclass(frozen=True)
class VisibleRequest:
    publisher_ids: tuple[str, ...] | None  # None = everyone, in join order

    @classmethod
    def from_dict(cls, data: Any) -> VisibleRequest:
        d = _mapping(data, "visible")
        _only(d, "visible", {"publisher_ids"})
        ids = d.get("publisher_ids")
        if ids is None:
            return cls(None)
        if (
            not isinstance(ids, list)
            or len(ids) > MAX_VISIBLE
            or not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_CHARS for i in ids)
        ):
            raise SignalingError(
                "invalid_payload", f"publisher_ids must be a list of at most {MAX_VISIBLE} participant ids"
            )
        return cls(tuple(ids))


def _only_flag(data: Any, event: str, name: str) -> bool:
    """The payload ``{name: true|false}`` and nothing else."""
    d = _mapping(data, event)
    _only(d, event, {name})
    value = d.get(name)
    if not isinstance(value, bool):
        raise SignalingError("invalid_payload", f"'{event}' needs {name}, true or false")
    return value


@dataclass(frozen=True)
class HandRequest:
    raised: bool

    @classmethod
    def from_dict(cls, data: Any) -> HandRequest:
        return cls(_only_flag(data, "hand", "raised"))


@dataclass(frozen=True)
class ScreenRequest:
    active: bool

    @classmethod
    def from_dict(cls, data: Any) -> ScreenRequest:
        return cls(_only_flag(data, "screen", "active"))


#: What the chair can do; actions on a participant need ``participant_id``.
CHAIR_ACTIONS = {
    "admit": True,  # let a waiting kiosk in
    "remove": True,  # send a participant (or a waiting kiosk) away for this meeting
    "mute": True,  # turn a participant's microphone off
    "ask_unmute": True,  # ask a participant to turn the microphone on (they decide)
    "give_floor": True,  # the participant speaks now (hand down, asked to unmute)
    "lower_hand": True,
    "take_floor": False,  # nobody has the floor
    "agenda": False,  # make agenda item ``item_id`` current (null: none)
    "end": False,  # end the meeting for everybody
}


@dataclass(frozen=True)
class ChairRequest:
    action: str
    participant_id: str | None = None
    item_id: int | None = None

    @classmethod
    def from_dict(cls, data: Any) -> ChairRequest:
        d = _mapping(data, "chair")
        _only(d, "chair", {"action", "participant_id", "item_id"})
        action = d.get("action")
        if not isinstance(action, str) or action not in CHAIR_ACTIONS:
            raise SignalingError("invalid_payload", f"'chair' action must be one of {sorted(CHAIR_ACTIONS)}")
        pid = d.get("participant_id")
        if CHAIR_ACTIONS[action]:
            if not isinstance(pid, str) or not 0 < len(pid) <= MAX_ID_CHARS:
                raise SignalingError("invalid_payload", f"'chair' {action} needs participant_id")
        elif pid is not None:
            raise SignalingError("invalid_payload", f"'chair' {action} takes no participant_id")
        item = d.get("item_id")
        if action == "agenda":
            if item is not None and (
                isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**31
            ):
                raise SignalingError(
                    "invalid_payload", "'chair' agenda needs item_id, a positive integer or null"
                )
        elif item is not None:
            raise SignalingError("invalid_payload", f"'chair' {action} takes no item_id")
        return cls(action, pid, item)


#: Largest still picture a page may send (a 320x180 JPEG is about 10-20 KB).
MAX_STILL_BYTES = 64 * 1024


@dataclass(frozen=True)
class StillRequest:
    """A still picture of the sender's camera (JPEG), for participants who receive no video."""

    jpeg: bytes

    @classmethod
    def from_dict(cls, data: Any) -> StillRequest:
        d = _mapping(data, "still")
        _only(d, "still", {"jpeg"})
        jpeg = d.get("jpeg")
        if not isinstance(jpeg, bytes) or not jpeg.startswith(b"\xff\xd8\xff"):
            raise SignalingError("invalid_payload", "'still' needs jpeg, the bytes of a JPEG picture")
        if len(jpeg) > MAX_STILL_BYTES:
            raise SignalingError("still_too_large", f"the picture is larger than {MAX_STILL_BYTES} bytes")
        return cls(jpeg)
