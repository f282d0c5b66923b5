"""What this worker is doing right now, read from the SFU's and the hub's own state.

One snapshot feeds the Prometheus collector, the system page and the history sampler, so the three
never disagree on what a "participant" or a "weak link" is. Reading it costs a walk over the live
rooms (a few dozen participants at most), done at scrape or page time, never per packet.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiohttp import web

from server.keys import ROOM_HUB, SFU
from server.sfu import Sfu
from server.sfu.errors import RoomNotFound
from server.signaling.room_hub import RoomHub

#: Link modes (server/sfu/linkquality.py) in which a hall's line is too thin for normal video.
WEAK_MODES = frozenset({"low_video", "audio_only"})
#: The mode the SFU assumes until its first link estimate.
DEFAULT_MODE = "video"
DEFAULT_BARS = 3


@dataclass(frozen=True)
class LiveParticipant:
    room_id: str
    participant_id: str
    kind: str  # "kiosk" | "official" | "unknown" (an SFU participant the hub has not bound)
    hall: str  # the village hall for kiosks, the display name otherwise
    mode: str  # video | low_video | audio_only
    bars: int
    downlink_kbps: int | None
    packets_out: int
    bytes_out: int
    retransmitted: int
    nacks_sent: int
    plis_sent: int

    @property
    def weak(self) -> bool:
        return self.mode in WEAK_MODES


@dataclass(frozen=True)
class LiveRoom:
    room_id: str
    participants: tuple[LiveParticipant, ...]
    recording_bytes: int


@dataclass(frozen=True)
class LiveState:
    rooms: tuple[LiveRoom, ...]

    @property
    def participants(self) -> list[LiveParticipant]:
        return [p for room in self.rooms for p in room.participants]

    @property
    def bytes_out(self) -> int:
        return sum(p.bytes_out for p in self.participants)


def _recording_bytes(sfu: Sfu, room_id: str) -> int:
    """Bytes on disk of the room's running recording (its files grow while it runs).

    A meeting keeps every recording in one directory, so only files written since this session
    started count (an earlier recording of the same meeting is finished and no longer grows)."""
    session = sfu.recording(room_id)
    if session is None:
        return 0
    since = session.started_at.timestamp() - 1.0
    total = 0
    for path in session.directory.iterdir():
        with contextlib.suppress(OSError):  # a temporary file renamed under us
            info = path.stat()
            if info.st_mtime >= since and path.is_file():
                total += info.st_size
    return total


def live_state(sfu: Sfu, hub: RoomHub) -> LiveState:
    rooms: list[LiveRoom] = []
    for room_id in sfu.room_ids:
        try:
            stats = sfu.room_stats(room_id)
        except RoomNotFound:  # closed between listing and reading
            continue
        hub_room = hub.rooms.get(room_id)
        members = {m.pid: m for m in hub.room_members(room_id)}
        participants = []
        for pid, s in sorted(stats.participants.items()):
            link = hub_room.links.get(pid, {}) if hub_room is not None else {}
            member = members.get(pid)
            kind = member.info.kind if member is not None else "unknown"
            hall = (member.info.village or member.info.name) if member is not None else pid
            participants.append(
                LiveParticipant(
                    room_id=room_id,
                    participant_id=pid,
                    kind=kind,
                    hall=hall,
                    mode=str(link.get("mode") or DEFAULT_MODE),
                    bars=int(link.get("bars") or DEFAULT_BARS) if link else DEFAULT_BARS,
                    downlink_kbps=link.get("downlink_kbps"),
                    packets_out=s.packets_out,
                    bytes_out=s.bytes_out,
                    retransmitted=sum(f.retransmitted for f in s.forwarded),
                    nacks_sent=s.nacks_sent,
                    plis_sent=s.keyframe_requests_sent,
                )
            )
        rooms.append(LiveRoom(room_id, tuple(participants), _recording_bytes(sfu, room_id)))
    return LiveState(tuple(rooms))


def app_live_state(app: web.Application) -> LiveState | None:
    """The app's live state, or None before start-up made its SFU and hub (or after shutdown)."""
    sfu, hub = app.get(SFU), app.get(ROOM_HUB)
    if sfu is None or hub is None:
        return None
    return live_state(sfu, hub)
