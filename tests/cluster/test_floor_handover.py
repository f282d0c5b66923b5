"""A meeting's floor outlives the web process that held it (docs/scale.md "Handover"): two real
``run.py web`` apps (the web role, in this process) on one database, one redis-server and one SFU
worker. The chair's decisions made through the first (a kiosk admitted, another removed, the
current agenda item, a raised hand) are what the second finds when the room's sockets come to it:
the removed kiosk stays out, the agenda and the queue are as the chair left them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.signaling.floor import AgendaEntry, Floor
from tests.cluster.conftest import WebRole
from tests.conftest import World
from tests.meetings.conftest import live_meeting, make_kiosk
from tests.signaling.signaling_kit import Participant, session_cookie, wait_until

pytestmark = pytest.mark.network


async def test_the_floor_a_chair_left_is_what_the_next_web_process_finds(
    web_role: Callable[[int, Sequence[str]], Awaitable[WebRole]], world: World, sessionmaker: Any
) -> None:
    (first, second), _workers = await web_role(2, ["1"])
    hall_a = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    hall_b = await make_kiosk(sessionmaker, world.village_ids[1], "사당리 마을회관")
    live = await live_meeting(
        sessionmaker, world, villages=(0, 1), agenda=("마을 길 보수", "경로당 난방"), lobby_mode="wait"
    )
    room_id, items = live.room_id, list(live.item_ids)
    made: list[Participant] = []

    async def person(client: TestClient, name: str, **kw: Any) -> Participant:
        made.append(p := Participant(name, client, **kw))
        return await p.connect()

    try:
        chair = await person(first, "chair", cookie=await session_cookie(first, "official"))
        await chair.join(room_id)
        a = await person(first, "a", token=hall_a.token)
        b = await person(first, "b", token=hall_b.token)
        for kiosk in (a, b):
            assert (await kiosk.call("join", {"room_id": room_id}))["waiting"] is True
        await wait_until(
            lambda: len((chair.got("lobby") or [{"waiting": []}])[-1]["waiting"]) == 2, 10, "lobby"
        )
        assert (await chair.call("chair", {"action": "admit", "participant_id": f"k{hall_a.id}"}))["ok"]
        assert (await chair.call("chair", {"action": "remove", "participant_id": f"k{hall_b.id}"}))["ok"]
        assert (await chair.call("chair", {"action": "agenda", "item_id": items[1]}))["ok"]
        await wait_until(lambda: bool(a.got("admitted")), 10, "a admitted")
        assert "error" not in await a.call("join", {"room_id": room_id})
        assert (await a.call("hand", {"raised": True}))["ok"]
        # The chair leaves the first web process and comes back through the second, which has
        # never held the room: the floor it finds is the one kept for it.
        await chair.call("leave")
        chair_again = await person(second, "chair2", cookie=await session_cookie(second, "official"))
        ack = await chair_again.join(room_id)
        floor = ack["floor"]
        assert floor["agenda"]["current"]["id"] == items[1]
        assert floor["hands"]["queue"] == [f"k{hall_a.id}"]
        # The removed kiosk stays out through the second web process too.
        b_again = await person(second, "b2", token=hall_b.token)
        refused = await b_again.call("join", {"room_id": room_id})
        assert refused.get("error", {}).get("code") == "removed", refused
    finally:
        for p in made:
            await p.close()


def _floor() -> Floor:
    return Floor(
        meeting_id=7,
        chair_id=1,
        lobby_mode="wait",
        agenda=(AgendaEntry(11, 1, "길"), AgendaEntry(12, 2, "난방")),
    )


def test_a_kept_floor_is_restored_only_for_its_meeting_and_only_when_well_formed() -> None:
    kept = _floor()
    kept.admit("k1")
    kept.remove("k2")
    kept.raise_hand("k1")
    kept.give_floor("u3")
    kept.set_item(12)
    kept.sharing = "u3"
    state = kept.durable_json()
    restored = _floor()
    assert restored.restore(state)
    assert restored.durable_json() == state
    assert not restored.must_wait("k1", is_kiosk=True) and "k2" in restored.removed
    # Another meeting's, an item not on this agenda, ids that are not strings, a missing field:
    # refused, and nothing of it taken.
    for bad in (
        state | {"meeting_id": 8},
        state | {"current_item": 99},
        state | {"current_item": "12"},
        state | {"removed": [5]},
        state | {"hands": "k1"},
        state | {"floor": 3},
        {k: v for k, v in state.items() if k != "admitted"},
    ):
        fresh = _floor()
        assert not fresh.restore(bad), bad
        assert fresh.durable_json() == _floor().durable_json()
