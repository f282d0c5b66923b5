"""The JSON shapes that cross Redis between web processes and SFU workers, and the errors of the
control plane. JSON only: nothing received from Redis is ever unpickled or evaluated."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from rtc.recorded import Mark, RecordedFile
from server.cluster.plane import ParticipantCounters, RoomCounters
from server.errors import ServiceUnavailable
from server.sfu import (
    ActiveSpeakerChanged,
    AlreadyJoined,
    InvalidRequest,
    InvalidSdp,
    InvalidState,
    LinkQualityChanged,
    NotInRoom,
    ParticipantConnected,
    ParticipantLeft,
    ReceivedLayersChanged,
    RoomNotFound,
    SfuError,
    SfuEvent,
    SimulcastLayersChanged,
    SlotAssigned,
    VideoDemandChanged,
)


class Unavailable(SfuError, ServiceUnavailable):
    """The media plane cannot take this now: Redis is unreachable, no SFU worker is live, or the
    worker did not answer in time. A ``SfuError`` (the hub's ``leave`` ignores it, as it ignores a
    participant that is already gone) and a 503 ``unavailable`` on HTTP; signaling answers the
    ``unavailable`` code, and the pages try again."""

    code = "unavailable"

    def __init__(self, message: str) -> None:
        ServiceUnavailable.__init__(self, message)


class StaleEpoch(Unavailable):
    """The room was placed again (a newer epoch) since this request or answer was made."""


_EVENTS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        ParticipantConnected,
        ParticipantLeft,
        ActiveSpeakerChanged,
        VideoDemandChanged,
        SlotAssigned,
        LinkQualityChanged,
        SimulcastLayersChanged,
        ReceivedLayersChanged,
    )
}

#: SFU errors a worker may answer with, by name; anything else becomes ``Unavailable``.
_ERRORS: dict[str, type[SfuError]] = {
    cls.__name__: cls
    for cls in (InvalidSdp, InvalidRequest, InvalidState, RoomNotFound, NotInRoom, AlreadyJoined, StaleEpoch)
}


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def event_to_json(event: SfuEvent) -> dict[str, Any]:
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def event_from_json(data: dict[str, Any]) -> SfuEvent:
    """The event a worker published (ValueError for a shape this version does not know)."""
    # JSON has no tuples: an event's sequence fields are tuples (SimulcastLayersChanged.active)
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    cls = _EVENTS.get(str(fields.pop("type", "")))
    if cls is None:
        raise ValueError(f"unknown SFU event {data.get('type')!r}")
    event: SfuEvent = cls(**fields)
    return event


def error_to_json(exc: SfuError) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


def error_from_json(data: dict[str, Any]) -> SfuError:
    cls = _ERRORS.get(str(data.get("type")))
    message = str(data.get("message", ""))
    if cls is None:
        return Unavailable(f"the SFU worker failed: {message}")
    return cls(message)


def address_from_json(value: object) -> tuple[str, int]:
    """A pipe end's address sent as ``[ip, port]`` (InvalidRequest for another shape; the SFU
    checks that the address is an internal one)."""
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not isinstance(value[1], int)
        or isinstance(value[1], bool)
    ):
        raise InvalidRequest("a pipe address must be [ip, port]")
    return value[0], value[1]


def mark_to_json(mark: Mark) -> dict[str, Any]:
    return {"label": mark.label, "at": mark.at.isoformat(), "offset": mark.offset}


def mark_from_json(data: dict[str, Any]) -> Mark:
    return Mark(str(data["label"]), datetime.fromisoformat(data["at"]), float(data["offset"]))


def file_to_json(f: RecordedFile) -> dict[str, Any]:
    return {
        "participant_id": f.participant_id,
        "path": str(f.path),
        "started_at": f.started_at.isoformat(),
        "ended_at": f.ended_at.isoformat(),
        "duration": f.duration,
        "has_audio": f.has_audio,
        "has_video": f.has_video,
    }


def file_from_json(data: dict[str, Any]) -> RecordedFile:
    return RecordedFile(
        participant_id=str(data["participant_id"]),
        path=Path(data["path"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        ended_at=datetime.fromisoformat(data["ended_at"]),
        duration=float(data["duration"]),
        has_audio=bool(data["has_audio"]),
        has_video=bool(data["has_video"]),
    )


#: A participant's counters on the wire, in this order: a list, not an object, because a report
#: restates every participant of every room each second to every web process.
_COUNTER_FIELDS = ("packets_out", "bytes_out", "retransmitted", "nacks_sent", "plis_sent")


def counters_to_json(counters: RoomCounters) -> dict[str, Any]:
    return {
        "participants": {
            pid: [getattr(c, name) for name in _COUNTER_FIELDS] for pid, c in counters.participants.items()
        },
        "recording_bytes": counters.recording_bytes,
    }


def counters_from_json(data: dict[str, Any]) -> RoomCounters:
    """A room's counters from a media report (ValueError, TypeError or KeyError for a bad shape)."""
    participants: dict[str, ParticipantCounters] = {}
    for pid, values in dict(data["participants"]).items():
        if not isinstance(values, list) or len(values) != len(_COUNTER_FIELDS):
            raise ValueError(f"counters of {pid!r}: expected {len(_COUNTER_FIELDS)} numbers")
        participants[str(pid)] = ParticipantCounters(*(int(v) for v in values))
    return RoomCounters(participants, int(data["recording_bytes"]))
