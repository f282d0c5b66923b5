"""Attendance comes from the media plane: real aiortc clients joining and leaving a live meeting's
room through the real signaling server open and close attendance rows; an uninvited kiosk cannot
join."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.db import transaction
from server.meetings import attendance as meeting_attendance
from tests.conftest import World
from tests.meetings.conftest import live_meeting, make_kiosk
from tests.signaling.signaling_kit import Participant, session_cookie, wait_until

pytestmark = pytest.mark.network


async def _rows(sessionmaker: Any, meeting_id: int) -> list[Any]:
    async with transaction(sessionmaker) as session:
        return list(await meeting_attendance.attendance_of(session, meeting_id))


async def test_joins_and_leaves_of_real_peers_write_attendance(
    client: TestClient, world: World, sessionmaker: Any
) -> None:
    hall = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    stranger = await make_kiosk(sessionmaker, world.village_ids[1], "동성리 마을회관")
    live = await live_meeting(sessionmaker, world, invite_other_official=False)
    meeting_id, room_id = live.meeting_id, live.room_id

    chair = await Participant("chair", client, cookie=await session_cookie(client, "official")).connect()
    kiosk = await Participant("kiosk", client, token=hall.token).connect()
    outsider = await Participant("outsider", client, token=stranger.token).connect()
    try:
        refused = await outsider.call("join", {"room_id": room_id})
        assert refused["error"]["code"] == "not_invited"

        await chair.join(room_id)
        await kiosk.join(room_id)
        await chair.publish(60, 3000, video_slots=9)
        await kiosk.publish(170, 3000, video_slots=2)
        assert kiosk.pid and chair.pid
        await wait_until(lambda: chair.sees(kiosk.pid, 170), 20, "media flows")  # type: ignore[arg-type]

        async def present() -> dict[str, Any]:
            rows = await _rows(sessionmaker, meeting_id)
            return {("kiosk" if r.kiosk_id else "official"): r for r in rows}

        rows: dict[str, Any] = {}
        for _ in range(100):
            rows = await present()
            if len(rows) == 2:
                break
            await asyncio.sleep(0.1)
        assert set(rows) == {"kiosk", "official"}
        assert rows["kiosk"].kiosk_id == hall.id and rows["kiosk"].left_at is None
        assert rows["official"].account_id == world.official_id

        assert "error" not in await kiosk.call("leave", {})
        rows = await present()
        assert rows["kiosk"].left_at is not None and rows["kiosk"].left_at >= rows["kiosk"].joined_at
        assert rows["official"].left_at is None
    finally:
        for p in (chair, kiosk, outsider):
            await p.close()
