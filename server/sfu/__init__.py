"""Maeul's selective forwarding unit: forwards encoded RTP between
participants without decoding (see docs/sfu.md)."""

from rtc.recorded import Mark, RecordedFile

from .config import SfuConfig
from .errors import (
    AlreadyJoined,
    InvalidRequest,
    InvalidSdp,
    InvalidState,
    NotInRoom,
    RoomNotFound,
    SfuError,
)
from .events import (
    ActiveSpeakerChanged,
    LinkQualityChanged,
    Listener,
    Listeners,
    ParticipantConnected,
    ParticipantLeft,
    ReceivedLayersChanged,
    SfuEvent,
    SimulcastLayersChanged,
    SlotAssigned,
    VideoDemandChanged,
)
from .recording import RecordingSession
from .room import ForwardedStream, ParticipantStats, RoomStats
from .sfu import ParticipantHandle, Sfu

__all__ = [
    "ActiveSpeakerChanged",
    "AlreadyJoined",
    "ForwardedStream",
    "InvalidRequest",
    "InvalidSdp",
    "InvalidState",
    "LinkQualityChanged",
    "Listener",
    "Listeners",
    "Mark",
    "NotInRoom",
    "ParticipantConnected",
    "ParticipantHandle",
    "ParticipantLeft",
    "ParticipantStats",
    "RecordedFile",
    "ReceivedLayersChanged",
    "RecordingSession",
    "RoomNotFound",
    "RoomStats",
    "SfuConfig",
    "SfuError",
    "SfuEvent",
    "Sfu",
    "SimulcastLayersChanged",
    "SlotAssigned",
    "VideoDemandChanged",
]
