"""/admin/system: the administrator's view of the live meetings, the kiosks and the history charts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import transaction, utcnow
from server.ops import sampler
from tests.conftest import World, login
from tests.kiosk_ref import make_kiosk
from tests.ops.test_system_sampler import meeting, participant
from tests.signaling.conftest import people  # noqa: F401  (the fixture)
from tests.signaling.two_party import room_with_a_hall


async def _history(sessionmaker: Callable[[], AsyncSession]) -> None:
    now = utcnow()
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        for minutes_ago in range(1, 40):
            mode = "audio_only" if minutes_ago < 10 else "video"
            state = meeting(
                participant("k1", "kiosk", "남성리", mode), participant("a1", "official", "김민원")
            )
            await sampler.take_sample(session, state, 250_000.0, now - dt.timedelta(minutes=minutes_ago))


async def test_the_admin_sees_kiosks_and_the_history_charts_in_korean(
    client: TestClient, world: World, sessionmaker: Callable[[], AsyncSession]
) -> None:
    await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")  # enrolled, never heard
    await _history(sessionmaker)
    await login(client, "admin")
    response = await client.get("/admin/system")
    assert response.status == 200
    html = await response.text()
    assert "<h1>시스템</h1>" in html
    assert "진행 중인 회의" in html and "지금 진행 중인 회의가 없습니다." in html
    assert "남성리 마을회관" in html  # offline kiosk listed
    assert "최근 24시간" in html and "최근 30일" in html
    # Charts drawn server-side: eight SVG figures, the weak-link one with 남성리's 9 minutes.
    assert len(re.findall(r'<svg class="chart"', html)) == 8
    assert "<title>남성리: 9분</title>" in html
    # The forwarded bitrate (250 kbit/s) is in the 24-hour table.
    assert "<td>250</td>" in html
    english = await (await client.get("/admin/system?lang=en")).text()
    assert "<h1>System</h1>" in english and "Minutes on a weak link by village hall" in english


@pytest.mark.network
async def test_the_live_part_lists_each_hall_with_its_link_bars(
    client: TestClient,
    world: World,
    people: Callable[..., Any],  # noqa: F811
) -> None:
    _admin, _kiosk_id, token, room_id = await room_with_a_hall(
        client, world, "마을 안길 회의", hall="사당리 마을회관"
    )
    kiosk = await people("kiosk", token=token)
    await kiosk.join(room_id)
    html = await (await client.get("/admin/system")).text()
    assert "마을 안길 회의" in html
    assert re.search(
        r"<td>[^<]*</td>\s*<td><svg class=\"link-bars\" role=\"img\" aria-label=\"연결 상태: 3칸 중 3칸\"",
        html,
    )
    assert "<td>영상</td>" in html
    await kiosk.close()


@pytest.mark.parametrize("username", ["official"])
async def test_an_official_may_not_open_it(client: TestClient, world: World, username: str) -> None:
    await login(client, username)
    response = await client.get("/admin/system", allow_redirects=False)
    assert response.status == 403
