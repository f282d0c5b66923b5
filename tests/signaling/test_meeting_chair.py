"""The chair's live controls over real socket.io connections to a running server: the lobby,
raised hands and the floor, mute / ask to unmute, the agenda shown to every kiosk, removal, ending
the meeting for everybody; and a dropped kiosk listed as reconnecting, then back in its place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.db import transaction
from server.keys import ROOM_HUB
from server.meetings import service as meetings
from tests.conftest import World
from tests.meetings.conftest import live_meeting, make_kiosk
from tests.signaling.signaling_kit import Participant, wait_until

pytestmark = pytest.mark.network


def ids(people: list[dict[str, Any]]) -> list[str]:
    return [p["id"] for p in people]


async def test_lobby_hands_floor_agenda_mute_and_removal(
    client: TestClient, world: World, sessionmaker: Any, people: Callable[..., Any]
) -> None:
    hall_a = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    hall_b = await make_kiosk(sessionmaker, world.village_ids[1], "사당리 마을회관")
    live = await live_meeting(
        sessionmaker,
        world,
        title="마을 안전 회의",
        villages=(0, 1),
        agenda=("마을 길 보수", "경로당 난방"),
        lobby_mode="wait",
    )
    meeting_id, room_id, items = live.meeting_id, live.room_id, list(live.item_ids)

    chair: Participant = await people("chair", username="official")
    ack = await chair.join(room_id)
    assert ack["is_chair"] is True and ack["meeting_id"] == meeting_id
    assert [i["id"] for i in ack["floor"]["agenda"]["items"]] == items
    assert ack["floor"]["agenda"]["current"] is None and ack["lobby"] == []

    # Kiosks wait in the lobby until the chair admits them; the chair sees who waits.
    a: Participant = await people("a", token=hall_a.token)
    b: Participant = await people("b", token=hall_b.token)
    waiting = await a.call("join", {"room_id": room_id})
    assert waiting["waiting"] is True and waiting["participant_id"] == f"k{hall_a.id}"
    assert (await b.call("join", {"room_id": room_id}))["waiting"] is True
    await wait_until(
        lambda: (
            chair.got("lobby")
            and ids(chair.got("lobby")[-1]["waiting"]) == [f"k{hall_a.id}", f"k{hall_b.id}"]
        ),
        10,
        "both kiosks in the chair's lobby",
    )
    assert ids(chair.participants) == [chair.pid]  # not in the meeting yet

    # A non-chair official cannot admit; neither can a kiosk.
    other: Participant = await people("other", username="official2")
    assert not (await other.join(room_id)).get("is_chair")
    refused = await other.call("chair", {"action": "admit", "participant_id": f"k{hall_a.id}"})
    assert refused["error"]["code"] == "not_chair"
    bad = await chair.call("chair", {"action": "admit"})
    assert bad["error"]["code"] == "invalid_payload"

    for kiosk, hall in ((a, hall_a), (b, hall_b)):
        assert (await chair.call("chair", {"action": "admit", "participant_id": f"k{hall.id}"})) == {
            "ok": True
        }
        await wait_until(lambda k=kiosk: k.got("admitted"), 10, "the kiosk to be told")  # type: ignore[misc]
        joined = await kiosk.join(room_id)
        assert joined["is_chair"] is False and joined["floor"]["agenda"]["current"] is None
    await wait_until(lambda: chair.got("lobby")[-1]["waiting"] == [], 10, "an empty lobby")
    await wait_until(lambda: len(chair.participants) == 4, 10, "four in the meeting")

    # The chair moves the agenda on: every page is told (and an unknown item is refused).
    assert (await chair.call("chair", {"action": "agenda", "item_id": items[1]})) == {"ok": True}
    for kiosk in (a, b):
        await wait_until(
            lambda k=kiosk: k.got("agenda") and k.got("agenda")[-1]["current"]["id"] == items[1],  # type: ignore[misc]
            10,
            "the new agenda item on the kiosk",
        )
    assert a.got("agenda")[-1]["current"] == {"id": items[1], "position": 2, "title": "경로당 난방"}
    unknown = await chair.call("chair", {"action": "agenda", "item_id": 999999})
    assert unknown["error"]["code"] == "unknown_item"

    # A kiosk raises its hand; the chair sees the queue and gives it the floor.
    assert (await b.call("hand", {"raised": True}))["queue"] == [b.pid]
    assert (await a.call("hand", {"raised": True}))["queue"] == [b.pid, a.pid]
    await wait_until(
        lambda: chair.got("hands") and chair.got("hands")[-1]["queue"] == [b.pid, a.pid], 10, "hands"
    )
    assert [p["hand"] for p in chair.participants if p["id"] in (a.pid, b.pid)] == [True, True]
    await chair.call("chair", {"action": "give_floor", "participant_id": a.pid})
    await wait_until(lambda: a.got("ask_unmute") == [{"floor": True}], 10, "the floor for a")
    await wait_until(lambda: chair.got("hands")[-1] == {"queue": [b.pid], "floor": a.pid}, 10, "a speaks")

    # Mute and ask to unmute reach the kiosk; the others see it muted.
    await chair.call("chair", {"action": "mute", "participant_id": b.pid})
    await wait_until(lambda: b.got("chair_mute"), 10, "b told to mute")
    await wait_until(
        lambda: any(p["id"] == b.pid and p["audio_muted"] for p in a.participants), 10, "b shown muted"
    )
    await chair.call("chair", {"action": "ask_unmute", "participant_id": b.pid})
    await wait_until(lambda: b.got("ask_unmute") == [{"floor": False}], 10, "b asked to unmute")

    # Removed: out of the meeting and cannot come back; its hand is gone from the queue.
    assert (await chair.call("chair", {"action": "remove", "participant_id": chair.pid}))["error"][
        "code"
    ] == ("invalid_target")
    await chair.call("chair", {"action": "remove", "participant_id": b.pid})
    await wait_until(lambda: b.got("removed"), 10, "b told")
    await wait_until(lambda: b.pid not in ids(chair.participants), 10, "b gone from the list")
    assert chair.got("hands")[-1] == {"queue": [], "floor": a.pid}
    assert (await b.call("join", {"room_id": room_id}))["error"]["code"] == "removed"

    # Ending for all: every page is told, the meeting is over and nobody can join again.
    assert (await a.call("chair", {"action": "end"}))["error"]["code"] == "not_chair"
    assert (await chair.call("chair", {"action": "end"})) == {"ok": True}
    await wait_until(lambda: a.got("room_closed") and other.got("room_closed"), 10, "everybody told")
    async with transaction(sessionmaker) as session:
        meeting = await meetings.get_meeting(session, meeting_id)
        assert meeting.status == "ended"
    assert (await a.call("join", {"room_id": room_id}))["error"]["code"] == "room_closed"
    assert str(room_id) not in client.app[ROOM_HUB].rooms


async def test_a_dropped_kiosk_is_reconnecting_then_back_in_its_place(
    client: TestClient, world: World, sessionmaker: Any, people: Callable[..., Any]
) -> None:
    hall = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    room_id = (await live_meeting(sessionmaker, world)).room_id
    chair: Participant = await people("chair", username="official")
    await chair.join(room_id)
    kiosk: Participant = await people("kiosk", token=hall.token)
    await kiosk.join(room_id)  # auto_admit: straight in
    assert (await kiosk.call("hand", {"raised": True}))["queue"] == [kiosk.pid]

    # The kiosk's connection is lost (not closed): the transport goes away without a goodbye.
    ws = kiosk.sock.eio.ws
    assert ws is not None
    await ws.close()
    await wait_until(
        lambda: (
            [(p["id"], p["state"]) for p in chair.participants]
            == [(chair.pid, "connecting"), (kiosk.pid, "reconnecting")]
        ),
        20,
        "the kiosk listed as reconnecting",
    )
    # It comes back on a new connection: same place in the list, hand still raised.
    again: Participant = await people("kiosk-again", token=hall.token)
    back = await again.join(room_id)
    assert ids(back["participants"]) == [chair.pid, kiosk.pid]
    assert back["floor"]["hands"]["queue"] == [kiosk.pid]
    await wait_until(
        lambda: [p["state"] for p in chair.participants] == ["connecting", "connecting"], 10, "back"
    )
