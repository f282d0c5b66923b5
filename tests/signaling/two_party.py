"""An official and a village hall's kiosk in one room: the setup and the "media both ways" wait that
the signaling and TURN call tests share."""

from __future__ import annotations

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
