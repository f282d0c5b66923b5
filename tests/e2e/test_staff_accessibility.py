"""Every page an official or an administrator opens passes axe-core with zero violations.

The kiosk pages have their own, stricter check (test_kiosk_accessibility.py). The pages come from the
router, so a new page is checked without anyone remembering to add it; a path parameter is filled
with a real record of that kind; routes that serve files are left out (router_pages.FILES).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.async_api import Browser

from server.config import Settings
from server.db import transaction, utcnow
from server.meetings import agenda as meeting_agenda
from server.meetings import service as meetings
from server.notices import service as notices
from server.rooms import service as rooms
from tests.conftest import World
from tests.e2e.browser_steps import log_in
from tests.e2e.router_pages import axe_violations, filled, router_pages
from tests.meetings.conftest import (
    admin_principal,
    file_petition,
    make_kiosk,
    official_principal,
    scheduled_meeting,
)

pytestmark = pytest.mark.e2e

NOT_STAFF = ("/kiosk", "/api/", "/static/", "/socket.io", "/healthz", "/readyz", "/metrics")


def staff_pages(settings: Settings) -> list[str]:
    """Every page outside the kiosk and the API."""
    return [path for path in router_pages(settings) if not path.startswith(NOT_STAFF)]


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_staff_pages_are_accessible(
    browser: Browser, live_server: str, world: World, settings: Settings, sessionmaker: Any
) -> None:
    kiosk = await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")
    admin = admin_principal(world)
    async with transaction(sessionmaker) as session:
        petition_id = await file_petition(
            session, kiosk, "마을 앞 가로등이 꺼졌어요", assign_to=official_principal(world)
        )
        # A live meeting (its join page is the chair's meeting view) with an agenda item.
        meeting = await scheduled_meeting(
            session, world, title="겨울철 경로당 난방 회의", starts_at=utcnow() - dt.timedelta(minutes=5)
        )
        meeting = await meetings.get_meeting(session, meeting.id)
        await meeting_agenda.add_item_from_petition(session, meeting, petition_id, actor=admin)
        await meetings.start_meeting(session, admin, meeting)
        room = await rooms.create_room(
            session, admin, "민원 상담", rooms.Invitees(account_ids=(world.official_id,))
        )
        notice = await notices.post_notice(
            session,
            admin,
            notices.NoticeDraft(
                title="독감 예방접종 안내",
                body="11월 30일까지 보건지소에서 무료로 접종합니다.",
                starts_at=utcnow() - dt.timedelta(hours=1),
                ends_at=utcnow() + dt.timedelta(days=7),
                village_ids=(),
            ),
        )
        ids = {
            "meeting_id": meeting.id,
            "petition_id": petition_id,
            "room_id": room.id,
            "notice_id": notice.id,
        }

    problems: list[str] = []
    seen: dict[str, int] = {}
    pages = staff_pages(settings)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="ko-KR")
    page = await context.new_page()
    await page.goto(f"{live_server}/login")
    problems += await axe_violations(page)
    for user in ("admin", "official"):
        await log_in(page, live_server, user)
        for path in pages:
            url = filled(path, ids)
            response = await page.goto(live_server + url)
            assert response is not None
            if response.status == 403:  # an official on an administrator's page
                continue
            assert response.status == 200, f"{user} {url}: {response.status}"
            seen[path] = seen.get(path, 0) + 1
            await page.wait_for_load_state("load")
            problems += [f"{user} {line}" for line in await axe_violations(page)]
        await page.goto(f"{live_server}/")
        await page.locator("form[action='/logout'] button").click()
    await context.close()
    assert problems == []
    # Every page was really checked, as at least one of the two roles.
    assert set(seen) == set(pages), set(pages) - set(seen)
