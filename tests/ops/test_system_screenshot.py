"""/admin/system in headless Chromium with a real meeting going on (two village halls and an
official over loopback WebRTC) and a month of history, screenshotted for the README."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import transaction, utcnow
from server.geo.models import Village
from server.kiosks.fleet import record_heartbeat
from server.ops import sampler
from tests.conftest import World
from tests.e2e.browser_steps import log_in
from tests.e2e.conftest import browser, screenshot_path  # noqa: F401  (the fixture)
from tests.ops.test_system_sampler import meeting, participant
from tests.signaling.conftest import people  # noqa: F401  (the fixture)
from tests.signaling.signaling_kit import Admin, base_url
from tests.signaling.two_party import wait_media_both_ways

pytestmark = [pytest.mark.e2e, pytest.mark.network]


async def _a_month_of_history(sessionmaker: Callable[[], AsyncSession], village_ids: list[int]) -> None:
    """Past meetings as the sampler would have recorded them: weekday mornings with two to four
    village halls, the third on a thin line (often sound only), the second sometimes on low video."""
    now = utcnow()
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        villages = {v.id: v.full_name_ko for v in (await session.scalars(select(Village))).all()}
        halls_all = [villages[i] for i in village_ids[:4]]
        for days_ago in range(1, 30):
            start = (now - dt.timedelta(days=days_ago)).replace(hour=1, minute=0, second=0, microsecond=0)
            if start.weekday() >= 5:
                continue
            for minute in range(0, 60, 2):
                halls = halls_all[: 2 + days_ago % 3]
                people = [participant("a1", "official", "김민원")]
                for index, hall in enumerate(halls):
                    mode = "video"
                    if index == 2 and minute % 6 != 0:
                        mode = "audio_only"
                    elif index == 1 and minute % 10 == 0:
                        mode = "low_video"
                    people.append(participant(f"k{index}", "kiosk", hall, mode))
                rate = 420_000.0 * len(people) + 9_000.0 * minute
                await sampler.take_sample(
                    session, meeting(*people), rate, start + dt.timedelta(minutes=minute)
                )
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await sampler.roll_up(session, now)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_system_page_screenshot(
    browser: Browser,  # noqa: F811
    client: TestClient,
    world: World,
    sessionmaker: Callable[[], AsyncSession],
    people: Callable[..., Any],  # noqa: F811
) -> None:
    admin = await Admin(client, world).login()
    hall_a, token_a = await admin.kiosk("남성리 마을회관", village=0)
    hall_b, token_b = await admin.kiosk("동성리 마을회관", village=1)
    await admin.kiosk("서성리 마을회관", village=2)  # enrolled, its agent silent: offline
    room_id = await admin.room(
        "마을 안길 정비 주민 회의", account_ids=[world.official_id], kiosk_ids=[hall_a, hall_b]
    )
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        for kiosk_id in (hall_a, hall_b):
            await record_heartbeat(session, kiosk_id, {"camera": True, "microphone": True}, "0.1.0")
    await _a_month_of_history(sessionmaker, world.village_ids)

    official = await people("official", username="official")
    kiosk_a = await people("kiosk-a", token=token_a)
    kiosk_b = await people("kiosk-b", token=token_b)
    for p in (official, kiosk_a, kiosk_b):
        await p.join(room_id)
    await official.publish(60, 3000, video_slots=4)
    await kiosk_a.publish(170, 3000, video_slots=2)
    await kiosk_b.publish(110, 3000, video_slots=2)
    await wait_media_both_ways(
        official, 60, kiosk_a, 170, 30, "media between the official and the first hall"
    )
    # Two real samples of the live meeting (a minute apart as far as the rate is concerned).
    meter = sampler.BitrateMeter()
    await sampler.tick(client.app, meter)
    await sampler.tick(client.app, meter)

    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="ko-KR")
    page = await context.new_page()
    await log_in(page, base_url(client), "admin")
    await page.goto(f"{base_url(client)}/admin/system")
    await expect(page.locator("h1")).to_have_text("시스템")
    await expect(page.locator("tbody").first).to_contain_text("마을 안길 정비 주민 회의")
    await expect(page.locator("svg.chart")).to_have_count(8)
    await page.screenshot(path=screenshot_path("admin-system.png"), full_page=True)
    await context.close()
