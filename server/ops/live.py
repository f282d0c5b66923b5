"""What this process is doing right now, read from the media plane's and the hub's own state.

One snapshot feeds the Prometheus collector, the system page and the history sampler, so the three
never disagree on what a "participant" or a "weak link" is. Reading it costs a walk over the live
rooms (a few dozen participants at most), done at scrape or page time, never per packet.

The media numbers come through :class:`server.cluster.plane.MediaCounters`: the in-process SFU's
stats (``run.py serve``), or in a web process (``run.py web``) the latest media report of each
room's SFU worker (at most a second old). Only the rooms whose signaling this process holds (its
hub's rooms) are listed: nginx pins each room to one web process (docs/scale.md), so each room is
exported once, and Prometheus summing over the web processes counts it once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web

from server.cluster.plane import MEDIA, MediaCounters, media_counters
from server.keys import ROOM_HUB
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


_PARTICIPANT_FIELDS = frozenset(f.name for f in fields(LiveParticipant))


def state_to_json(state: LiveState) -> str:
    """``state`` as another web process reads it back (:func:`state_from_json`)."""
    return json.dumps([asdict(room) for room in state.rooms], ensure_ascii=False, separators=(",", ":"))


def state_from_json(text: str) -> LiveState:
    """The state :func:`state_to_json` wrote; ValueError for anything else (another version's
    record, a damaged one), so that one bad record costs its own rows, not the page."""
    try:
        rooms: list[dict[str, Any]] = json.loads(text)
        if not isinstance(rooms, list):
            raise ValueError("not a list of rooms")
        return LiveState(
            tuple(
                LiveRoom(
                    str(room["room_id"]),
                    tuple(_participant(p) for p in room["participants"]),
                    int(room["recording_bytes"]),
                )
                for room in rooms
            )
        )
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a shared live state: {exc!r}") from exc


def _participant(raw: dict[str, Any]) -> LiveParticipant:
    if set(raw) != _PARTICIPANT_FIELDS:
        raise ValueError(f"participant fields {sorted(raw)}")
    # each field converted to its type, so a wrong one fails here and not in the page's template
    downlink = raw["downlink_kbps"]
    return LiveParticipant(
        room_id=str(raw["room_id"]),
        participant_id=str(raw["participant_id"]),
        kind=str(raw["kind"]),
        hall=str(raw["hall"]),
        mode=str(raw["mode"]),
        bars=int(raw["bars"]),
        downlink_kbps=None if downlink is None else int(downlink),
        packets_out=int(raw["packets_out"]),
        bytes_out=int(raw["bytes_out"]),
        retransmitted=int(raw["retransmitted"]),
        nacks_sent=int(raw["nacks_sent"]),
        plis_sent=int(raw["plis_sent"]),
    )


def merged(states: list[LiveState]) -> LiveState:
    """Several web processes' states as one. A room is normally in one only (nginx pins it); while
    its sockets move after a web process died it can be in two for a moment, each with the
    participants whose sockets it holds: those are joined (the first listing of a participant wins)."""
    rooms: dict[str, LiveRoom] = {}
    for state in states:
        for room in state.rooms:
            known = rooms.get(room.room_id)
            if known is None:
                rooms[room.room_id] = room
                continue
            seen = {p.participant_id for p in known.participants}
            rooms[room.room_id] = LiveRoom(
                room.room_id,
                known.participants + tuple(p for p in room.participants if p.participant_id not in seen),
                max(known.recording_bytes, room.recording_bytes),
            )
    return LiveState(tuple(rooms[room_id] for room_id in sorted(rooms)))


def live_state(media: MediaCounters, hub: RoomHub) -> LiveState:
    rooms: list[LiveRoom] = []
    for room_id in media.room_ids:
        hub_room = hub.rooms.get(room_id)
        if hub_room is None:
            continue  # its signaling is in another web process, which exports it
        try:
            counters = media.room_counters(room_id)
        except RoomNotFound:  # closed between listing and reading, or not reported yet
            continue
        members = {m.pid: m for m in hub.room_members(room_id)}
        participants = []
        for pid, c in sorted(counters.participants.items()):
            link = hub_room.links.get(pid, {})
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
                    packets_out=c.packets_out,
                    bytes_out=c.bytes_out,
                    retransmitted=c.retransmitted,
                    nacks_sent=c.nacks_sent,
                    plis_sent=c.plis_sent,
                )
            )
        rooms.append(LiveRoom(room_id, tuple(participants), counters.recording_bytes))
    return LiveState(tuple(rooms))


def app_live_state(app: web.Application) -> LiveState | None:
    """The app's live state, or None before start-up made its media plane and hub (or after
    shutdown)."""
    plane, hub = app.get(MEDIA), app.get(ROOM_HUB)
    if plane is None or hub is None:
        return None
    return live_state(media_counters(plane), hub)
