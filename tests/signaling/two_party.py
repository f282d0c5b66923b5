"""An official and a village hall's kiosk in one room: the setup and the "media both ways" wait that
the signaling, TURN, operations and cluster call tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import World
from tests.signaling.signaling_kit import Admin, Participant, wait_until


async def room_with_a_hall(
    client: TestClient, world: World, title: str, hall: str = "남성리 마을회관"
) -> tuple[Admin, int, str, int]:
    """The admin (logged in) enrolls a kiosk labelled ``hall`` and opens a room inviting the official
    and that kiosk; returns (admin, kiosk id, kiosk device token, room id)."""
    admin = await Admin(client, world).login()
    kiosk_id, token = await admin.kiosk(hall)
    room_id = await admin.room(title, account_ids=[world.official_id], kiosk_ids=[kiosk_id])
    return admin, kiosk_id, token, room_id


async def wait_media_both_ways(
    a: Participant, a_luma: int, b: Participant, b_luma: int, within: float, what: str
) -> None:
    """Until each side decodes the other's video (at the other's test-pattern luma) and hears it."""
    assert a.pid and b.pid
    a_pid, b_pid = a.pid, b.pid
    await wait_until(
        lambda: a.sees(b_pid, b_luma) and b.sees(a_pid, a_luma) and a.hears(b_pid) and b.hears(a_pid),
        within,
        what,
    )


async def official_and_hall_joined(
    client: TestClient, world: World, people: Callable[..., Any], title: str = "마을 안전 회의"
) -> tuple[Admin, int, Participant, Participant]:
    """The official and a hall's kiosk joined to a new room: (admin, room id, official, kiosk).
    ``people`` is the signaling tests' fixture (it closes them)."""
    admin, _kiosk_id, token, room_id = await room_with_a_hall(client, world, title)
    official: Participant = await people("official", username="official")
    kiosk: Participant = await people("kiosk", token=token)
    await official.join(room_id)
    await kiosk.join(room_id)
    return admin, room_id, official, kiosk


async def live_call(
    client: TestClient,
    world: World,
    people: Callable[..., Any],
    title: str,
    luma: tuple[int, int],
) -> tuple[int, Participant, Participant]:
    """:func:`official_and_hall_joined`, both publishing (test patterns at ``luma``: official,
    kiosk; two video slots each) until media flows both ways: (room id, official, kiosk)."""
    _admin, room_id, official, kiosk = await official_and_hall_joined(client, world, people, title)
    await official.publish(luma[0], 3000, video_slots=2)
    await kiosk.publish(luma[1], 3000, video_slots=2)
    await wait_media_both_ways(official, luma[0], kiosk, luma[1], 20, "media both ways")
    return room_id, official, kiosk
