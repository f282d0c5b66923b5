"""A kiosk enrolled, or re-enrolled, while its village's meeting is live is invited to the live
room: /api/v1/rooms/mine lists it and the headless kiosk goes in by itself. A kiosk of a village
the meeting does not invite is not."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from kiosk.headless import HeadlessKiosk
from kiosk.media import open_source
from server.db import transaction
from server.kiosks import service as kiosks
from server.kiosks.models import Kiosk
from tests.conftest import World
from tests.meetings.conftest import live_meeting
from tests.signaling.signaling_kit import Admin, base_url, wait_until


async def _my_rooms(client: TestClient, token: str) -> list[int]:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent,
        agent.get(client.make_url("/api/v1/rooms/mine"), headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
    return [room["id"] for room in body["rooms"]]


async def _enroll(client: TestClient, code: str) -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as agent:
        response = await agent.post(client.make_url("/api/v1/kiosk/enroll"), json={"code": code})
        assert response.status == 201, await response.text()
        return str((await response.json())["token"])


async def test_a_kiosk_enrolled_during_a_live_meeting_is_invited(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    admin = await Admin(client, world).login()
    meeting = await live_meeting(sessionmaker, world, villages=(0,))

    _late_id, late_token = await admin.kiosk("늦게 설치한 남성리 마을회관", village=0)
    assert await _my_rooms(client, late_token) == [meeting.room_id]

    _other_id, other_token = await admin.kiosk("초대받지 않은 마을회관", village=1)
    assert await _my_rooms(client, other_token) == []


async def test_a_kiosk_re_enrolled_during_a_live_meeting_is_invited(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    admin = await Admin(client, world).login()
    kiosk_id, _token = await admin.kiosk("남성리 마을회관", village=0)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        # A new code (the hall's PC replaced) ends the old token: not active when the meeting starts.
        kiosk = await session.get(Kiosk, kiosk_id)
        assert kiosk is not None
        issued = await kiosks.issue_enrollment_code(session, kiosk, dt.timedelta(hours=1))
    meeting = await live_meeting(sessionmaker, world, villages=(0,))
    token = await _enroll(client, issued.code)
    assert await _my_rooms(client, token) == [meeting.room_id]


@pytest.mark.network
async def test_the_headless_kiosk_enrolled_during_a_live_meeting_joins_it(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    admin = await Admin(client, world).login()
    meeting = await live_meeting(sessionmaker, world, villages=(0,))
    _kiosk_id, token = await admin.kiosk("늦게 설치한 남성리 마을회관", village=0)
    headless = HeadlessKiosk(
        base_url(client),
        token,
        lambda: open_source("testsrc"),
        host_addresses=["127.0.0.1"],
        poll_interval=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(headless.run(stop))
    try:
        await wait_until(
            lambda: headless.stats.current_room == meeting.room_id, 30, "the late kiosk joins by itself"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
