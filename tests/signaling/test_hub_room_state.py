"""The hub's state of one live room (``RoomHub.rooms[room_id]``, a ``HubRoom``): a participant gone
for good leaves nothing in it (no link estimate, no still picture of up to 64 KB), whether it said
goodbye or its socket dropped and it never came back; closing the room removes the whole object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import ROOM_HUB, SFU
from server.sfu import LinkQualityChanged
from tests.conftest import World
from tests.signaling.signaling_kit import Participant, wait_until
from tests.signaling.test_link_quality_pages import jpeg
from tests.signaling.two_party import official_and_hall_joined, wait_media_both_ways

pytestmark = pytest.mark.network

LUMA_OFFICIAL, LUMA_KIOSK = 50, 170


async def _weak_link_and_a_still(client: TestClient, room_id: int, p: Participant) -> None:
    assert p.pid
    hub = client.app[ROOM_HUB]
    await hub._on_sfu_event(LinkQualityChanged(str(room_id), p.pid, 1, "audio_only", 90, 4.0))  # type: ignore[arg-type]
    assert await p.call("still", {"jpeg": jpeg()}) == {"ok": True}


async def test_a_participant_gone_for_good_leaves_nothing_behind(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    admin, room_id, official, kiosk = await official_and_hall_joined(client, world, people)
    await official.publish(LUMA_OFFICIAL, 3000, video_slots=9)
    await kiosk.publish(LUMA_KIOSK, 3000, video_slots=2)
    await wait_media_both_ways(official, LUMA_OFFICIAL, kiosk, LUMA_KIOSK, 20, "media both ways")
    assert official.pid and kiosk.pid
    hub, key = client.app[ROOM_HUB], str(room_id)
    hub.reconnect_grace = 1.0
    for p in (official, kiosk):
        await _weak_link_and_a_still(client, room_id, p)
    live = hub.rooms[key]
    assert set(live.links) == set(live.stills) == {official.pid, kiosk.pid}

    # The hall's socket drops (its transport goes away, no goodbye) and the page never comes back.
    # Its media is held for a resume during the grace period; then everything of it goes.
    ws = kiosk.sock.eio.ws
    assert ws is not None
    await ws.close()
    kiosk_pid = kiosk.pid
    await wait_until(lambda: hub.member_by_pid(key, kiosk_pid) is None, 20, "the loss noticed")
    await wait_until(lambda: kiosk_pid not in live.ghosts, 20, "the grace period to end")
    await wait_until(
        lambda: kiosk_pid not in client.app[SFU].room_stats(key).participants, 10, "its media to end"
    )
    assert kiosk_pid not in live.links and kiosk_pid not in live.stills and kiosk_pid not in live.sids
    assert [p["id"] for p in hub.participants_json(key)] == [official.pid]

    # The official says goodbye: the room's state is empty, though the room stays open.
    assert await official.call("leave") == {"left": True}
    assert (live.sids, live.ghosts, live.lobby, live.links, live.stills) == ({}, {}, {}, {}, {})
    assert hub.members == {}

    # Closing the room is one removal.
    await admin.post(f"/api/v1/admin/rooms/{room_id}/close")
    assert key not in hub.rooms


async def test_closing_a_room_with_people_in_it_removes_its_state_and_tells_them(
    client: TestClient, world: World, people: Callable[..., Any]
) -> None:
    admin, room_id, official, kiosk = await official_and_hall_joined(client, world, people)
    for p in (official, kiosk):
        await _weak_link_and_a_still(client, room_id, p)
    hub, key = client.app[ROOM_HUB], str(room_id)
    await admin.post(f"/api/v1/admin/rooms/{room_id}/close")
    assert key not in hub.rooms and hub.members == {}
    for p in (official, kiosk):
        await wait_until(lambda p=p: p.got("room_closed") == [{"room_id": key}], 10, "room_closed")  # type: ignore[misc]
