"""A whole scheduled meeting in headless Chromium (fake cameras and microphones), through the real
server: an administrator schedules it with two villages in the browser; the two village kiosks,
left on their home screen, go in by themselves at the start time and wait in the lobby; the chair
admits them, sees both halls' videos, records, moves through the agenda (the kiosks show each item),
sees a kiosk's raised hand and gives it the floor, shares its screen, and ends the meeting for
everybody. The record
page then shows both halls' attendance and the recording with its agenda chapters.

Screenshots for the README: the chair's view, a kiosk's view, the record page."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from server.db import transaction, utcnow
from server.meetings import service
from tests.conftest import World
from tests.e2e.browser_steps import log_in
from tests.e2e.conftest import kiosk_browser_page, screenshot_path

pytestmark = pytest.mark.e2e

SEOUL = ZoneInfo("Asia/Seoul")
HALL_A, HALL_B = "남성리 마을회관", "동성리 마을회관"  # kiosks of world.village_ids[0] and [1]
ITEMS = ("마을 안길 보수", "경로당 겨울 난방비")


def next_start(now: dt.datetime, margin: float = 30.0) -> dt.datetime:
    """The next whole minute (the schedule form has minutes) at least ``margin`` seconds away."""
    start = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return start if (start - now).total_seconds() >= margin else start + dt.timedelta(minutes=1)


async def logged_in_page(browser: Browser, live_server: str, username: str) -> Page:
    """A new Korean page on Seoul time (the schedule form's local times), logged in as ``username``
    and on the staff's landing page."""
    page = await browser.new_page(
        viewport={"width": 1600, "height": 1000}, locale="ko-KR", timezone_id="Asia/Seoul"
    )
    await log_in(page, live_server, username)
    await page.wait_for_url(re.compile(r"/(admin|official)"))
    return page


async def kiosk_id_of(sessionmaker: Any, label: str) -> int:
    from sqlalchemy import select

    from server.kiosks.models import Kiosk

    async with transaction(sessionmaker) as session:
        return int((await session.scalars(select(Kiosk.id).where(Kiosk.label == label))).one())


async def showing_video(page: Page, publishers: list[str]) -> bool:
    """Every publisher has a visible tile whose video is decoding frames."""
    return bool(
        await page.evaluate(
            """(ids) => ids.every((id) => {
                 const tile = document.querySelector(`[data-tiles] figure[data-publisher="${id}"]`);
                 const video = tile && !tile.hidden && tile.querySelector('video');
                 return Boolean(video && video.videoWidth > 0 && video.readyState >= 2);
               })""",
            publishers,
        )
    )


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_a_scheduled_meeting_from_start_to_record(
    browser: Browser, live_server: str, world: World, sessionmaker: Any
) -> None:
    # Two village halls' kiosks, enrolled and on their first screen.
    kiosk_a = await kiosk_browser_page(browser, live_server, sessionmaker, world.village_ids[0], HALL_A)
    kiosk_b = await kiosk_browser_page(browser, live_server, sessionmaker, world.village_ids[1], HALL_B)
    pid_a = f"k{await kiosk_id_of(sessionmaker, HALL_A)}"
    pid_b = f"k{await kiosk_id_of(sessionmaker, HALL_B)}"

    # The administrator schedules the meeting in the browser: both villages, kiosks join by
    # themselves, and wait in the lobby until the chair lets them in.
    admin = await logged_in_page(browser, live_server, "admin")
    await admin.goto(f"{live_server}/admin/meetings")
    starts = next_start(utcnow()).astimezone(SEOUL)
    await admin.fill("#title", "남성리·동성리 합동 주민 회의")
    await admin.fill("#starts_at", starts.strftime("%Y-%m-%dT%H:%M"))
    await admin.fill("#ends_at", (starts + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await admin.select_option("#chair_id", str(world.official_id))
    await admin.check(f"input[name=village_ids][value='{world.village_ids[0]}']")
    await admin.check(f"input[name=village_ids][value='{world.village_ids[1]}']")
    await admin.check("input[name=join_mode][value=auto]")
    await admin.check("input[name=lobby_mode][value=wait]")
    await admin.click("#schedule-form button[type=submit]")
    await expect(admin).to_have_url(re.compile(r"/admin/meetings/\d+$"))
    meeting_id = int(admin.url.rsplit("/", 1)[1])
    for title in ITEMS:
        await admin.fill("#item-title", title)
        await admin.click("#agenda-form button[type=submit]")
    await expect(admin.locator(".agenda-title")).to_have_count(2)

    # The kiosks show the meeting on their first screen in large text (as they would for days
    # before it), then go in by themselves at the start time.
    for kiosk in (kiosk_a, kiosk_b):
        await kiosk.reload()
        await expect(kiosk.locator(".kiosk-meeting-title")).to_have_text("남성리·동성리 합동 주민 회의")
    wait_s = (starts - utcnow()).total_seconds()
    assert wait_s > 0, "the test must reach the kiosks before the start time"
    for kiosk in (kiosk_a, kiosk_b):
        await kiosk.wait_for_url(re.compile(r"/kiosk/rooms/\d+$"), timeout=(wait_s + 30) * 1000)
        await expect(kiosk.locator("[data-status]")).to_have_text(
            "의장이 입장을 허락할 때까지 기다리고 있습니다.", timeout=20000
        )
    async with transaction(sessionmaker) as session:
        meeting = await service.get_meeting(session, meeting_id)
        assert meeting.status == "live" and meeting.started_at is not None
        assert meeting.started_at >= starts.astimezone(dt.UTC)  # not before its time

    # The chair comes in, sees both halls in the lobby and lets them in.
    chair = await logged_in_page(browser, live_server, "official")
    await chair.goto(f"{live_server}/meetings/{meeting_id}/join")
    await chair.wait_for_url(re.compile(r"/rooms/\d+$"))
    lobby = chair.locator("[data-lobby] li")
    await expect(lobby).to_have_count(2, timeout=20000)
    for pid in (pid_a, pid_b):
        await chair.locator(f'[data-lobby] li[data-participant="{pid}"] .admit').click()
    await expect(lobby).to_have_count(0)
    for _ in range(60):
        if await showing_video(chair, [pid_a, pid_b]):
            break
        await asyncio.sleep(0.5)
    assert await showing_video(chair, [pid_a, pid_b]), "the chair sees both halls' videos"
    for kiosk in (kiosk_a, kiosk_b):
        await expect(kiosk.locator("[data-status]")).to_have_text("회의에 참여 중입니다.", timeout=20000)

    # Recording: every kiosk shows the notice.
    await chair.click('[data-action="record-start"]')
    for kiosk in (kiosk_a, kiosk_b):
        await expect(kiosk.locator("[data-recording-banner]")).to_be_visible(timeout=10000)

    # The agenda moves on: every kiosk shows the current item.
    for number, title in enumerate(ITEMS, start=1):
        await chair.click('[data-action="agenda-next"]')
        for kiosk in (kiosk_a, kiosk_b):
            await expect(kiosk.locator("[data-agenda-title]")).to_have_text(f"{number}. {title}")
        await asyncio.sleep(1)  # a chapter of at least a second in the recording

    # A hall raises its hand with one touch; the chair sees it and gives the floor.
    await kiosk_a.click('[data-action="hand"]')
    await expect(chair.locator(f'[data-hands] li[data-participant="{pid_a}"]')).to_contain_text(HALL_A)
    await expect(kiosk_a.locator('[data-action="hand"]')).to_have_attribute("aria-pressed", "true")
    await chair.locator(f'[data-hands] li[data-participant="{pid_a}"] .floor').click()
    await expect(kiosk_a.locator('[data-action="hand"]')).to_have_text("발언하고 있습니다")
    await expect(chair.locator("[data-hands] li.has-floor")).to_contain_text(HALL_A)

    # The hall counts its residents with two big buttons (no typing).
    for _ in range(3):
        await kiosk_b.click('[data-action="residents-more"]')
    await expect(kiosk_b.locator("[data-residents-count]")).to_have_text("3")
    await asyncio.sleep(2)  # saved a moment after the last touch

    await chair.screenshot(path=screenshot_path("meeting-chair.png"))
    await kiosk_b.screenshot(path=screenshot_path("meeting-kiosk-live.png"))

    # The chair shares its screen (Chromium's fake 1280x720 screen): the kiosks get it in place of
    # the chair's camera, first and full width; stopping brings the camera back.
    chair_tile = kiosk_b.locator(f'[data-tiles] figure[data-publisher="a{world.official_id}"]')
    await chair.click('[data-action="screen"]')
    await expect(chair.locator('[data-action="screen"]')).to_have_attribute("aria-pressed", "true")
    await expect(chair_tile).to_have_class(re.compile(r"\bscreen\b"))
    await kiosk_b.wait_for_function(
        "(id) => { const v = document.querySelector(`[data-tiles] figure[data-publisher='${id}'] video`);"
        " return Boolean(v && v.videoWidth >= 960); }",
        arg=f"a{world.official_id}",
        timeout=30000,
    )
    await kiosk_b.screenshot(path=screenshot_path("meeting-kiosk-screen-share.png"))
    await chair.click('[data-action="screen"]')
    await expect(chair_tile).not_to_have_class(re.compile(r"\bscreen\b"))

    # The chair ends the meeting for everybody.
    chair.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await chair.click('[data-action="end-all"]')
    for kiosk in (kiosk_a, kiosk_b):
        await expect(kiosk.locator("[data-status]")).to_have_text("회의가 끝났습니다.", timeout=20000)
    async with transaction(sessionmaker) as session:
        meeting = await service.get_meeting(session, meeting_id)
        assert meeting.status == "ended"

    # The record: both halls attended, the recording plays, with a chapter per agenda item.
    await chair.goto(f"{live_server}/meetings/{meeting_id}/record")
    attendance = chair.locator("#attendance-title + table tbody")
    # Attendance names a hall by its village.
    await expect(attendance.locator("tr", has_text="강진읍 남성리")).to_have_count(1)
    await expect(attendance.locator("tr", has_text="강진읍 동성리")).to_have_count(1)
    await expect(attendance.locator("tr", has_text="강진읍 동성리").locator("td").nth(5)).to_have_text("3")
    players = chair.locator("[data-player]")
    assert await players.count() >= 3  # the chair and both halls
    marks = chair.locator(".record-marks").first
    for number, title in enumerate(ITEMS, start=1):
        await expect(marks).to_contain_text(f"{number}. {title}")
    duration = await players.first.evaluate(
        """(v) => new Promise((ok) => v.readyState >= 1
             ? ok(v.duration) : v.addEventListener('loadedmetadata', () => ok(v.duration)))"""
    )
    assert duration and duration > 1
    await chair.screenshot(path=screenshot_path("meeting-record-live.png"), full_page=True)
