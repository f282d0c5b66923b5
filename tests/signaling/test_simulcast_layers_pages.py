"""What the pages learn of simulcast layers (issue 18): the SFU's SimulcastLayersChanged
reaches the publisher's own page only, as ``layers {active}`` (the page pauses the other
encodings); ReceivedLayersChanged reaches everybody's participant list."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import ROOM_HUB, SFU
from server.sfu import ReceivedLayersChanged, SimulcastLayersChanged
from tests.conftest import World
from tests.signaling.signaling_kit import Participant, wait_until
from tests.signaling.two_party import official_and_hall_joined

pytestmark = pytest.mark.network


async def test_layers_reach_the_publisher_only(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    _admin, room_id, official, kiosk = await official_and_hall_joined(client, world, people)
    assert official.pid and kiosk.pid
    sfu = client.app[SFU]

    # through the SFU's listeners, as the room emits it (the hub's event pump)
    sfu._emit(SimulcastLayersChanged(str(room_id), official.pid, ("h",)))
    await wait_until(lambda: official.got("layers") == [{"active": ["h"]}], 10, "the publisher told")
    sfu._emit(SimulcastLayersChanged(str(room_id), official.pid, ("h", "f")))
    await wait_until(lambda: len(official.got("layers")) == 2, 10, "the publisher told again")
    assert official.got("layers")[-1] == {"active": ["h", "f"]}
    # nobody else; a publisher not (or no longer) in the room is nobody's business
    sfu._emit(SimulcastLayersChanged(str(room_id), "a999999", ("h",)))
    sfu._emit(SimulcastLayersChanged(str(room_id), kiosk.pid, ("h",)))
    await wait_until(lambda: kiosk.got("layers") == [{"active": ["h"]}], 10, "the kiosk's own")
    assert len(official.got("layers")) == 2
    assert official.errors() == [] and kiosk.errors() == []


async def test_the_participant_list_says_which_layer_each_one_receives(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    """Item 6: the SFU's ReceivedLayersChanged reaches everybody's participant list (``layers``:
    the rid each participant receives of each simulcast publisher), so the chair's page shows
    which layer of its video each hall gets; a participant who leaves takes it along."""
    _admin, room_id, official, kiosk = await official_and_hall_joined(client, world, people)
    assert official.pid and kiosk.pid
    sfu = client.app[SFU]

    def layers_of(p: Participant, pid: str | None) -> dict[str, str] | None:
        return next((entry["layers"] for entry in p.participants if entry["id"] == pid), None)

    assert layers_of(official, kiosk.pid) == {} and layers_of(official, official.pid) == {}
    sfu._emit(ReceivedLayersChanged(str(room_id), kiosk.pid, {official.pid: "h"}))
    for viewer in (official, kiosk):
        await wait_until(
            lambda v=viewer: layers_of(v, kiosk.pid) == {official.pid: "h"},  # type: ignore[misc]
            10,
            "everybody's list shows the hall's layer",
        )
    sfu._emit(ReceivedLayersChanged(str(room_id), kiosk.pid, {official.pid: "f"}))
    await wait_until(lambda: layers_of(official, kiosk.pid) == {official.pid: "f"}, 10, "the new layer")
    # someone not in the room: nothing to show, nothing kept
    sfu._emit(ReceivedLayersChanged(str(room_id), "k999999", {official.pid: "f"}))
    await kiosk.call("leave", {})
    await wait_until(lambda: layers_of(official, kiosk.pid) is None, 10, "the hall left the list")
    hub = client.app[ROOM_HUB]
    room = hub.rooms.get(str(room_id))
    assert room is None or (kiosk.pid not in room.received_layers and "k999999" not in room.received_layers)
    assert official.errors() == []


async def test_a_burst_of_changes_sends_the_participant_list_a_few_times_with_the_last_state(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    """Every change resends the whole list to everybody in the room; a burst of them (a briefing's
    halls taking their first layers at once) goes out as a few lists, the last one as the room
    is at the end, not as one list per change (N lists of N entries per change: N² for N halls)."""
    _admin, room_id, official, kiosk = await official_and_hall_joined(client, world, people)
    assert official.pid and kiosk.pid
    sfu = client.app[SFU]
    await asyncio.sleep(0.5)  # the joins' own lists are out
    before = len(official.got("participants"))
    rids = ["q", "h", "f"] * 10
    for rid in rids:
        sfu._emit(ReceivedLayersChanged(str(room_id), kiosk.pid, {official.pid: rid}))

    def shown() -> dict[str, str] | None:
        return next((p["layers"] for p in official.participants if p["id"] == kiosk.pid), None)

    await wait_until(lambda: shown() == {official.pid: rids[-1]}, 10, "the last layer is shown")
    await asyncio.sleep(0.5)  # nothing more is on its way
    lists = len(official.got("participants")) - before
    assert 1 <= lists <= 3, f"{lists} participant lists for a burst of {len(rids)} changes"
    assert shown() == {official.pid: rids[-1]}
