"""The socket matrix (issue 12): every event the socket.io server registers × every role × the
role's own meeting room or a foreign one, each cell with the outcome the rules below give.

The events are read from the server object itself: an event added without a rule here fails
``test_every_registered_event_has_a_rule``. Each cell uses a fresh socket: connect as the role,
``join`` the room (own or foreign), then send the event with a well-formed payload and classify
the acknowledgement (``ok`` or the error code).

The county: meeting room A (village A, chaired by official X of department X) and meeting room B
(village B, chaired by official Y of department Y), both live, lobby off; and an ad-hoc room per
side (kiosk A and official X invited to A, kiosk B and official Y to B). Roles: anonymous, kiosk
of village A, kiosk of village B, official X, official Y, admin. "Own" room: A for kiosk A and
official X, B for kiosk B and official Y, A for the admin (who may enter every room: its foreign
room B gives the same outcomes).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.db import transaction, utcnow
from server.keys import SIO
from server.meetings import service as meetings
from server.rooms import service as rooms_service
from server.signaling.guard import RESERVED_EVENTS
from tests.conftest import World, enrolled_kiosk, make_settings
from tests.meetings.conftest import admin_principal
from tests.signaling.signaling_kit import base_url, session_cookie

ROLES = ("anonymous", "kiosk_a", "kiosk_b", "official_x", "official_y", "admin")
ROOMS = ("own", "foreign")
KINDS = ("meeting", "adhoc")
OWN_SIDE = {"kiosk_a": "A", "kiosk_b": "B", "official_x": "A", "official_y": "B", "admin": "A"}
# A JPEG's first and last bytes: the server keeps a still picture as it is.
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9"

#: A well-formed payload for each event (what a page sends).
PAYLOADS: dict[str, Any] = {
    "whoami": None,
    "join": None,  # filled per cell: the room
    "offer": {"sdp": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "type": "offer"},
    "ice": {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0"},
    "mute": {"audio": True, "video": False},
    "visible": {"publisher_ids": []},
    "tiles": {"sizes": {"someone": [320, 180]}},
    "leave": None,
    "hand": {"raised": True},
    "screen": {"active": True},
    "chair": {"action": "take_floor"},
    "still": {"jpeg": JPEG},
}


def _in_room_outcome(event: str, role: str, kind: str) -> str:
    """What an event does for a socket that is in the room."""
    kiosk = role.startswith("kiosk")
    if kind == "adhoc" and event in ("hand", "chair"):
        # Nobody chairs an ad-hoc room: no hands, no chair's controls (not even an admin's).
        return "no_chair" if event == "hand" else "not_chair"
    return {
        "offer": "no_media",  # past the membership check; the SDP itself is refused
        "ice": "offer_first",  # past the membership check; no peer connection yet
        "screen": "forbidden" if kiosk else "ok",  # kiosks never share a screen
        "chair": "not_chair" if kiosk else "ok",  # officials in their own room chair it; admins chair all
        "leave": "left",
    }.get(event, "ok")


def expected(event: str, role: str, room: str, kind: str) -> str:
    """The rule of each cell."""
    if role == "anonymous":
        return "refused_at_connect"  # no cookie, no token: no socket at all
    if event in RESERVED_EVENTS:
        return "reserved_event"
    if event == "whoami":
        return "ok"
    inside = room == "own" or role == "admin"
    if event == "join":
        return "ok" if inside else "not_invited"
    if not inside:
        return "not_in_room" if event == "leave" else "not_joined"
    return _in_room_outcome(event, role, kind)


RULED_EVENTS = frozenset(PAYLOADS) | RESERVED_EVENTS


@dataclass
class County:
    client: TestClient
    rooms: dict[tuple[str, str], int]  # (kind, side) -> room id
    credentials: dict[str, dict[str, Any]]  # role -> socketio.connect kwargs


@pytest.fixture
async def county(
    db_url: str,
    tmp_path: Path,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> AsyncIterator[County]:
    # Many short sockets per role, one after the other: the cap is not what this test is about.
    client = await aiohttp_client(
        create_app(make_settings(db_url, tmp_path / "data", sockets_per_principal=64))
    )
    kiosk_a, token_a = await enrolled_kiosk(sessionmaker, world.village_ids[0], "남성리")
    kiosk_b, token_b = await enrolled_kiosk(sessionmaker, world.village_ids[1], "사당리")
    rooms: dict[tuple[str, str], int] = {}
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        admin = admin_principal(world)
        start = utcnow()
        for side, chair, village, kiosk in (
            ("A", world.official_id, world.village_ids[0], kiosk_a),
            ("B", world.other_official_id, world.village_ids[1], kiosk_b),
        ):
            invitees = rooms_service.Invitees(account_ids=(chair,), kiosk_ids=(kiosk,))
            adhoc = await rooms_service.create_room(session, admin, f"{side} 사랑방", invitees)
            rooms[("adhoc", side)] = adhoc.id
            scheduled = await meetings.schedule_meeting(
                session,
                admin,
                meetings.MeetingDraft(
                    title=f"{side} 마을 회의",
                    starts_at=start,
                    ends_at=start + meetings.MAX_DURATION,
                    chair_id=chair,
                    village_ids=(village,),
                    lobby_mode="auto_admit",
                ),
            )
            meeting = await meetings.start_meeting(
                session, admin, await meetings.get_meeting(session, scheduled.meeting.id)
            )
            assert meeting.room_id is not None
            rooms[("meeting", side)] = meeting.room_id

    def cookie(value: str) -> dict[str, Any]:
        return {"headers": {"Cookie": f"maeul_session={value}"}}

    credentials = {
        "anonymous": {},
        "kiosk_a": {"auth": {"token": token_a}},
        "kiosk_b": {"auth": {"token": token_b}},
        "official_x": cookie(await session_cookie(client, "official")),
        "official_y": cookie(await session_cookie(client, "official2")),
        "admin": cookie(await session_cookie(client, "admin")),
    }
    yield County(client, rooms, credentials)


def _classify(event: str, ack: Any) -> str:
    if isinstance(ack, dict) and isinstance(ack.get("error"), dict):
        return str(ack["error"]["code"])
    if event == "leave":
        return "left" if ack == {"left": True} else "not_in_room"
    if event == "join":
        return (
            "ok"
            if isinstance(ack, dict) and "participant_id" in ack and not ack.get("waiting")
            else repr(ack)
        )
    return "ok" if isinstance(ack, dict) else repr(ack)


async def _cell(county: County, event: str, role: str, room: str, kind: str) -> str:
    sock = socketio.AsyncClient(reconnection=False)
    try:
        try:
            await sock.connect(
                # A copy: the client takes the Cookie header out of the dict it is given.
                base_url(county.client),
                transports=["websocket"],
                wait_timeout=10,
                **copy.deepcopy(county.credentials[role]),
            )
        except socketio.exceptions.ConnectionError as exc:
            return "refused_at_connect" if role == "anonymous" else f"refused_at_connect: {exc}"
        side = OWN_SIDE[role] if room == "own" else ("B" if OWN_SIDE[role] == "A" else "A")
        join = {"room_id": county.rooms[(kind, side)]}
        if event == "join":
            return _classify(event, await sock.call("join", join, timeout=15))
        if event in RESERVED_EVENTS:
            errors: asyncio.Queue[Any] = asyncio.Queue()
            sock.on("error", errors.put_nowait)
            await sock.emit(event, {"token": "x"})
            return str((await asyncio.wait_for(errors.get(), 10))["code"])
        if event != "whoami":
            await sock.call(
                "join", join, timeout=15
            )  # refused for a foreign room: the event then runs outside
        return _classify(event, await sock.call(event, PAYLOADS[event], timeout=15))
    finally:
        if sock.connected:
            await sock.disconnect()


def test_every_registered_event_has_a_rule(county: County) -> None:
    sio = county.client.app[SIO]
    registered = set(sio.handlers["/"]) - {"*"}
    assert registered - RULED_EVENTS == set(), "a socket event without a row in the matrix"
    assert set(PAYLOADS) <= registered, "a rule for an event the server no longer has"


async def test_socket_matrix(county: County) -> None:
    events = sorted((set(county.client.app[SIO].handlers["/"]) - {"*"}) | RESERVED_EVENTS)
    got: dict[tuple[str, str, str, str], str] = {}
    for event in events:
        for role in ROLES:
            for room in ROOMS:
                for kind in KINDS:
                    got[(event, role, room, kind)] = await _cell(county, event, role, room, kind)
    wrong = {cell: (outcome, expected(*cell)) for cell, outcome in got.items() if outcome != expected(*cell)}
    assert wrong == {}, "\n".join(
        f"{cell}: got {o!r}, expected {e!r}" for cell, (o, e) in sorted(wrong.items())
    )
    assert len(got) == len(events) * len(ROLES) * len(ROOMS) * len(KINDS)
