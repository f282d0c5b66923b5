"""The kiosk's and the chair's meeting pages in headless Chromium show a large "● 녹화 중" banner
while the meeting is recorded, and hide it when the recording stops (real pages, socket.io and SFU;
an invited official is an aiortc peer publishing through the same signaling). The admin starts the
recording from the admin meeting page; the chair stops it from the official meeting page."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from server.db import transaction, utcnow
from server.meetings import recordings as meeting_recordings
from server.meetings import service
from tests.conftest import World, kiosk_code
from tests.e2e.browser_steps import LiveServer, enrolled_kiosk_browser, log_in
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_meeting_browsers import wait_connected
from tests.meetings.conftest import admin_principal, scheduled_meeting
from tests.signaling.signaling_kit import Participant, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.network]


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_kiosk_page_shows_the_recording_banner(
    browser: Browser, live_server: str, world: World, sessionmaker: Any
) -> None:
    code = await kiosk_code(sessionmaker, world.village_ids[0], "남성리 마을회관")
    async with transaction(sessionmaker) as session:
        scheduled = await scheduled_meeting(
            session,
            world,
            title="겨울철 경로당 난방 회의",
            starts_at=utcnow() + dt.timedelta(minutes=10),  # started by hand below
            invite_other_official=True,
        )
        meeting_id = scheduled.id

    # The village hall's kiosk is enrolled; then the meeting starts (its room invites the kiosk).
    context, kiosk = await enrolled_kiosk_browser(browser, live_server, code)
    async with transaction(sessionmaker) as session:
        meeting = await service.get_meeting(session, meeting_id, lock=True)
        await service.start_meeting(session, admin_principal(world), meeting)
        room_id = meeting.room_id
    assert room_id is not None

    # An invited official (an aiortc peer) publishes, so the kiosk has someone to watch.
    server = LiveServer(live_server)
    chair = Participant("peer", server, cookie=await session_cookie(server, "official2"))  # type: ignore[arg-type]
    try:
        await chair.connect()
        await chair.join(room_id)
        await chair.publish(60, 3000, video_slots=0, audio_slots=0)

        await kiosk.reload()
        await kiosk.locator("a.kiosk-meeting-join").first.click()
        await wait_connected(kiosk)
        banner = kiosk.locator("[data-recording-banner]")
        await expect(banner).to_be_hidden()

        # The chair's own meeting page has the recording buttons.
        chair_context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="ko-KR")
        chair_page = await chair_context.new_page()
        await log_in(chair_page, live_server, "official")
        await chair_page.goto(f"{live_server}/rooms/{room_id}")
        await wait_connected(chair_page)
        chair_banner = chair_page.locator("[data-recording-banner]")
        await expect(chair_page.locator('[data-action="record-start"]')).to_be_visible()
        await expect(chair_page.locator('[data-action="record-stop"]')).to_be_hidden()
        await expect(chair_banner).to_be_hidden()

        # The administrator starts the recording from the meeting's admin page.
        admin_page = await browser.new_page(locale="ko-KR")
        await log_in(admin_page, live_server, "admin")
        await admin_page.goto(f"{live_server}/admin/meetings/{meeting_id}")
        await admin_page.click('[data-action="start-recording"]')
        await expect(admin_page).to_have_url(re.compile(rf"/admin/meetings/{meeting_id}$"))
        await expect(admin_page.locator(".meeting-steps [data-recording-banner]")).to_have_text("● 녹화 중")

        await expect(banner).to_be_visible(timeout=15000)
        await expect(banner).to_have_text("● 녹화 중")
        box = await banner.bounding_box()
        assert box is not None and box["width"] >= 600 and box["height"] >= 60, box
        colors = await banner.evaluate(
            "(el) => { const s = getComputedStyle(el); return [s.color, s.backgroundColor]; }"
        )
        assert colors == ["rgb(255, 255, 255)", "rgb(155, 28, 28)"], colors
        await kiosk.wait_for_function(
            "() => [...document.querySelectorAll('.tile:not(.self) video')]"
            ".some((v) => v.videoWidth > 0 && v.currentTime > 0)",
            timeout=20000,
        )
        await kiosk.wait_for_timeout(500)
        await kiosk.screenshot(path=screenshot_path("meeting-kiosk-recording.png"))

        await expect(chair_banner).to_be_visible()
        await expect(chair_page.locator('[data-action="record-start"]')).to_be_hidden()

        # The chair stops it from the meeting page.
        await chair_page.click('[data-action="record-stop"]')
        await expect(banner).to_be_hidden(timeout=15000)
        await expect(chair_banner).to_be_hidden()
        await expect(chair_page.locator('[data-action="record-start"]')).to_be_visible()
        await admin_page.reload()
        await expect(admin_page.locator('[data-action="start-recording"]')).to_be_visible()
        # The pages are told the recording stopped once its files are complete; the files are
        # registered for the meeting right after, in their own transaction (a CI run on a loaded
        # machine read the table in between and found it empty).
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            async with transaction(sessionmaker) as session:
                recordings = await meeting_recordings.recordings_of(session, meeting_id)
            if recordings or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert {r.participant for r in recordings} == {"김민원", "박안전", "남성리 마을회관"}
        await chair_context.close()
    finally:
        await chair.close()
        await context.close()
