"""An administrator schedules a meeting with two villages in the browser, builds its agenda (one
item from a resident's request), runs it, writes the minutes and closes the record; the record page
renders with attendance, decisions and the request's outcome. Screenshots for docs/."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from server.db import transaction, utcnow
from server.meetings import attendance as meeting_attendance
from server.meetings import recordings as meeting_recordings
from server.meetings import service
from server.petitions.models import Petition
from tests.conftest import World, kiosk_code
from tests.e2e.browser_steps import enrolled_kiosk_browser, log_in
from tests.e2e.conftest import screenshot_path
from tests.meetings.conftest import (
    START,
    admin_principal,
    file_petition,
    make_kiosk,
    official_principal,
    scheduled_meeting,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_admin_schedules_a_meeting_and_the_record_renders(
    browser: Browser, live_server: str, world: World, sessionmaker: Any
) -> None:
    first = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    second = await make_kiosk(sessionmaker, world.village_ids[1], "동성리 마을회관")
    async with transaction(sessionmaker) as session:
        petition_id = await file_petition(
            session, first, "마을 안길 포장이 깨졌어요", assign_to=official_principal(world)
        )
        receipt = (await session.get(Petition, petition_id)).receipt_no  # type: ignore[union-attr]

    page = await browser.new_page(
        viewport={"width": 1280, "height": 1000}, locale="ko-KR", timezone_id="Asia/Seoul"
    )
    await log_in(page, live_server, "admin")
    await page.goto(f"{live_server}/admin")
    await page.click("a[href='/admin/meetings']")
    await expect(page.locator("h1")).to_have_text("예약된 회의")

    await page.fill("#title", "마을 안길 정비 주민 회의")
    await page.fill("#purpose", "남성리·동성리 안길 포장과 가로등 설치를 함께 논의합니다.")
    await page.fill("#starts_at", "2030-03-05T10:00")
    await page.fill("#ends_at", "2030-03-05T11:30")
    await page.select_option("#chair_id", str(world.official_id))
    await page.check(f"input[name=village_ids][value='{world.village_ids[0]}']")
    await page.check(f"input[name=village_ids][value='{world.village_ids[1]}']")
    await page.check(f"input[name=official_ids][value='{world.other_official_id}']")
    await page.screenshot(path=screenshot_path("admin-meeting-schedule.png"), full_page=True)
    await page.click("#schedule-form button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/admin/meetings/\d+$"))
    meeting_id = int(page.url.rsplit("/", 1)[1])
    await expect(page.locator(".invited")).to_contain_text("남성리")
    await expect(page.locator(".invited")).to_contain_text("동성리")

    await page.fill("#item-title", "개회와 지난 회의 결과 보고")
    await page.fill("#item-minutes", "5")
    await page.click("#agenda-form button[type=submit]")
    await page.select_option("#from-petition", str(petition_id))
    await page.click("#petition-item-form button[type=submit]")
    await page.fill("#item-title", "가로등 설치 위치")
    await page.click("#agenda-form button[type=submit]")
    titles = page.locator(".agenda-title")
    await expect(titles).to_have_count(3)
    # Move the last item up once: order 1, 3, 2.
    await page.locator(".agenda-item").nth(2).get_by_role("button", name=re.compile("^위로")).click()
    await expect(titles.nth(1)).to_have_text("가로등 설치 위치")
    await expect(titles.nth(2)).to_contain_text(receipt)
    # Drag the request's item by its handle onto the top half of the first item: it goes first, and
    # the page reloads itself once the server has saved the order, and shows it.
    async with page.expect_navigation():
        await (
            page.locator(".agenda-item")
            .nth(2)
            .locator("[data-drag-handle]")
            .drag_to(page.locator(".agenda-item").nth(0), target_position={"x": 40, "y": 5})
        )
    await expect(titles.nth(0)).to_contain_text(receipt)
    await expect(titles.nth(1)).to_have_text("개회와 지난 회의 결과 보고")
    await expect(titles.nth(2)).to_have_text("가로등 설치 위치")
    # A drag called off (dropped outside the agenda, after passing over the first item, which
    # moved the dragged one up on screen): the item goes back, and nothing is saved.
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.method) if r.method == "PATCH" else None)
    await page.locator(".agenda-item").nth(2).locator("[data-drag-handle]").hover()
    await page.mouse.down()
    for _ in range(2):  # dragover needs two moves (Playwright's note on HTML5 drag and drop)
        await page.locator(".agenda-item").nth(0).hover(position={"x": 40, "y": 5})
    await expect(titles.nth(0)).to_have_text("가로등 설치 위치")  # moved while dragging
    for _ in range(2):
        await page.locator("h1").hover()
    await page.mouse.up()
    await expect(titles.nth(0)).to_contain_text(receipt)
    await expect(titles.nth(2)).to_have_text("가로등 설치 위치")
    assert requests == []

    await page.screenshot(path=screenshot_path("admin-meeting-agenda.png"), full_page=True)

    # The meeting is run at its scheduled time (the media plane's join/leave events are recorded
    # through the same service functions the hub will call).
    admin = admin_principal(world)
    async with transaction(sessionmaker) as session:
        meeting = await service.get_meeting(session, meeting_id)
        assert meeting.starts_at == START
        await service.start_meeting(session, admin, meeting, now=START - dt.timedelta(minutes=2))
    # This page still shows the scheduled agenda. A drag now is refused by the server (a live
    # meeting's agenda is fixed): the page says so and puts the item back.
    await (
        page.locator(".agenda-item")
        .nth(2)
        .locator("[data-drag-handle]")
        .drag_to(page.locator(".agenda-item").nth(0), target_position={"x": 40, "y": 5})
    )
    await expect(page.locator("[data-agenda-order-error]")).to_have_text(
        "바꾼 순서를 저장하지 못했습니다. 페이지를 새로 고친 뒤 다시 해 주세요."
    )
    await expect(titles.nth(0)).to_contain_text(receipt)
    await expect(titles.nth(2)).to_have_text("가로등 설치 위치")
    async with transaction(sessionmaker) as session:
        meeting = await service.get_meeting(session, meeting_id)
        assert [i.title for i in sorted(meeting.agenda, key=lambda i: i.position)][2] == "가로등 설치 위치"
        chair = official_principal(world)
        at = START - dt.timedelta(minutes=2)
        await meeting_attendance.record_join(session, meeting_id, chair, at=at)
        await meeting_attendance.record_join(
            session, meeting_id, first.principal, at=at + dt.timedelta(minutes=1), name="남성리 마을회관"
        )
        await meeting_attendance.set_residents_count(session, meeting_id, first.principal, 12)
        await meeting_attendance.record_leave(
            session, meeting_id, first.principal, at=START + dt.timedelta(minutes=20)
        )
        await meeting_attendance.record_join(
            session, meeting_id, first.principal, at=START + dt.timedelta(minutes=20, seconds=30)
        )
        await meeting_attendance.record_join(
            session, meeting_id, second.principal, at=START + dt.timedelta(minutes=3), name="동성리 마을회관"
        )
        await meeting_attendance.set_residents_count(session, meeting_id, second.principal, 8)
        await meeting_attendance.record_leave(
            session, meeting_id, second.principal, at=START + dt.timedelta(minutes=70)
        )
        await meeting_recordings.register_recording(
            session,
            meeting_id,
            participant="회의 전체",
            path=f"recordings/meeting-{meeting_id}/mix.webm",
            started_at=START,
            ended_at=START + dt.timedelta(minutes=84),
        )
        await service.end_meeting(session, admin, meeting, now=START + dt.timedelta(minutes=85))
    await page.reload()
    await expect(page.locator("h1 .badge")).to_have_text("종료")
    item = page.locator(".agenda-item", has_text=receipt)
    await item.locator("textarea[name=notes]").fill("주민 12명 참석. 안길 200m 구간 포장 상태 확인.")
    await item.locator("textarea[name=decisions]").fill("12월 1일부터 안길 200m 구간을 재포장합니다.")
    await item.get_by_role("button", name="회의록 저장").click()
    item = page.locator(".agenda-item", has_text=receipt)
    await item.locator("input[name=text]").fill("시공 업체 선정")
    await item.locator("select[name=owner_id]").select_option(str(world.official_id))
    await item.locator("input[name=due_date]").fill("2030-03-20")
    await item.get_by_role("button", name="할 일 추가").click()
    await page.click("text=회의록 마감")
    await expect(page).to_have_url(f"{live_server}/meetings/{meeting_id}/record")
    main = page.locator("main")
    await expect(main).to_contain_text("마을 안길 정비 주민 회의")
    await expect(main).to_contain_text("남성리 마을회관")
    await expect(main).to_contain_text("12월 1일부터 안길 200m 구간을 재포장합니다.")
    await expect(main).to_contain_text("시공 업체 선정")
    await expect(main).to_contain_text("결정 사항으로 답변함")
    await expect(main).to_contain_text("mix.webm")
    await page.screenshot(path=screenshot_path("meeting-record.png"), full_page=True)
    async with transaction(sessionmaker) as session:
        petition = await session.get(Petition, petition_id)
        assert petition is not None and petition.status == "answered"


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_kiosk_home_lists_its_villages_meetings_accessibly(
    browser: Browser, live_server: str, world: World, sessionmaker: Any
) -> None:
    from tests.e2e.test_kiosk_accessibility import check

    code = await kiosk_code(sessionmaker, world.village_ids[0], "남성리 마을회관")
    async with transaction(sessionmaker) as session:
        live = await scheduled_meeting(
            session, world, title="겨울철 경로당 난방 회의", starts_at=utcnow() - dt.timedelta(minutes=5)
        )
        await service.start_meeting(session, admin_principal(world), live)
        await scheduled_meeting(
            session, world, title="마을 안길 정비 주민 회의", starts_at=START, villages=(0, 1)
        )
        await scheduled_meeting(session, world, title="다른 마을 회의", starts_at=START, villages=(2,))
    context, page = await enrolled_kiosk_browser(browser, live_server, code)
    meetings = page.locator(".kiosk-meeting")
    await expect(meetings).to_have_count(2)
    await expect(meetings.nth(0)).to_contain_text("지금 회의 중")
    await expect(meetings.nth(0).locator("a.kiosk-meeting-join")).to_have_text("지금 참여하기")
    await expect(meetings.nth(1)).to_contain_text("3월 5일 (화) 오전 10:00")
    await expect(page.locator("main")).not_to_contain_text("다른 마을 회의")
    assert await check(page, f"{live_server}/kiosk") == []
    await page.screenshot(path=screenshot_path("kiosk-upcoming-meetings.png"), full_page=True)
    await context.close()
