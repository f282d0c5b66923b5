"""The live state of one scheduled meeting's room that the chair controls: the lobby, who was
admitted or removed, the raise-hand queue and who has the floor, the current agenda item, and who
shares a screen.

Pure data and rules, no I/O: :class:`server.signaling.room_hub.RoomHub` keeps one ``Floor`` per
room of a scheduled meeting hosted by this worker and turns these changes into socket.io events.
Ad-hoc rooms (no meeting) have no floor: nobody chairs them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgendaEntry:
    item_id: int
    position: int
    title: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.item_id, "position": self.position, "title": self.title}


@dataclass
class LobbyEntry:
    sid: str
    pid: str
    name: str
    village: str | None
    since: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.pid, "name": self.name, "village": self.village, "since": self.since.isoformat()}


@dataclass
class Floor:
    meeting_id: int
    chair_id: int
    #: "wait": kiosks wait in the lobby until the chair admits them; "auto_admit": invited kiosks go in.
    lobby_mode: str
    agenda: tuple[AgendaEntry, ...] = ()
    admitted: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    lobby: dict[str, LobbyEntry] = field(default_factory=dict)  # by participant id
    hands: list[str] = field(default_factory=list)  # participant ids, first raised first
    floor: str | None = None  # who the chair gave the floor to
    current_item: int | None = None  # agenda item id
    sharing: str | None = None  # participant id sharing a screen

    # -- lobby ----------------------------------------------------------------------------------
    def must_wait(self, pid: str, *, is_kiosk: bool) -> bool:
        """Only kiosks wait, only in "wait" mode, and only until admitted once (a reconnect after
        admission goes straight back in)."""
        return is_kiosk and self.lobby_mode == "wait" and pid not in self.admitted

    def wait(self, entry: LobbyEntry) -> None:
        self.lobby[entry.pid] = entry

    def admit(self, pid: str) -> LobbyEntry | None:
        """Let ``pid`` in (now, and on every later reconnect); returns its lobby entry if waiting."""
        self.admitted.add(pid)
        self.removed.discard(pid)
        return self.lobby.pop(pid, None)

    def leave_lobby(self, sid: str) -> LobbyEntry | None:
        for pid, entry in list(self.lobby.items()):
            if entry.sid == sid:
                return self.lobby.pop(pid)
        return None

    def lobby_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in sorted(self.lobby.values(), key=lambda e: e.since)]

    # -- removal --------------------------------------------------------------------------------
    def remove(self, pid: str) -> LobbyEntry | None:
        """``pid`` may not come back to this meeting (until admitted again); returns its lobby entry
        if it was waiting."""
        self.removed.add(pid)
        self.admitted.discard(pid)
        self.gone(pid)
        return self.lobby.pop(pid, None)

    def gone(self, pid: str) -> None:
        """``pid`` left: its hand goes down, it loses the floor and stops sharing."""
        self.lower(pid)
        if self.floor == pid:
            self.floor = None
        if self.sharing == pid:
            self.sharing = None

    # -- hands and floor ------------------------------------------------------------------------
    def raise_hand(self, pid: str) -> None:
        if pid not in self.hands and pid != self.floor:
            self.hands.append(pid)

    def lower(self, pid: str) -> None:
        if pid in self.hands:
            self.hands.remove(pid)

    def give_floor(self, pid: str | None) -> None:
        """``pid`` speaks now (its hand goes down); ``None`` takes the floor back."""
        if pid is not None:
            self.lower(pid)
        self.floor = pid

    def hands_json(self) -> dict[str, Any]:
        return {"queue": list(self.hands), "floor": self.floor}

    # -- agenda ---------------------------------------------------------------------------------
    def item(self, item_id: int) -> AgendaEntry | None:
        return next((e for e in self.agenda if e.item_id == item_id), None)

    def set_item(self, item_id: int | None) -> AgendaEntry | None:
        """Make ``item_id`` current (``None``: no item); KeyError if it is not on this agenda."""
        if item_id is None:
            self.current_item = None
            return None
        entry = self.item(item_id)
        if entry is None:
            raise KeyError(item_id)
        self.current_item = item_id
        return entry

    def agenda_json(self) -> dict[str, Any]:
        current = self.item(self.current_item) if self.current_item is not None else None
        return {
            "items": [e.to_json() for e in self.agenda],
            "current": current.to_json() if current is not None else None,
        }

    def state_json(self) -> dict[str, Any]:
        """What every page gets when it joins."""
        return {"agenda": self.agenda_json(), "hands": self.hands_json(), "sharing": self.sharing}

    # -- what outlives the web process (docs/scale.md "Handover") -------------------------------
    def durable_json(self) -> dict[str, Any]:
        """The chair's decisions and the queue, kept for another web process that takes the room
        over when this one dies. Not the lobby: its sockets come back there and wait again."""
        return {
            "meeting_id": self.meeting_id,
            "admitted": sorted(self.admitted),
            "removed": sorted(self.removed),
            "hands": list(self.hands),
            "floor": self.floor,
            "current_item": self.current_item,
            "sharing": self.sharing,
        }

    def restore(self, state: Mapping[str, Any]) -> bool:
        """Take over ``state`` (:meth:`durable_json`, from another web process). False, with
        nothing changed, when it is another meeting's or not one (written by another version)."""
        try:
            if state.get("meeting_id") != self.meeting_id:
                return False
            admitted, removed, hands = (_ids(state[k]) for k in ("admitted", "removed", "hands"))
            floor, sharing = _id_or_none(state["floor"]), _id_or_none(state["sharing"])
            item = state["current_item"]
            if item is not None and (type(item) is not int or self.item(item) is None):
                raise ValueError("current_item is not on this agenda")
        except (KeyError, ValueError, AttributeError):
            return False
        self.admitted, self.removed, self.hands = set(admitted), set(removed), hands
        self.floor, self.sharing, self.current_item = floor, sharing, item
        return True


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("not a list of participant ids")
    return list(value)


def _id_or_none(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("not a participant id")
    return value
