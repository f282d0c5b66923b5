"""Every kiosk page passes axe-core with zero violations, and every interactive element on it is
at least 64×64 CSS px (Maeul's floor for older hands; ../shared/kiosk-accessibility.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from server.app import create_app
from server.config import Settings
from server.db import transaction, utcnow
from server.meetings import service as meetings
from tests.conftest import World, kiosk_code
from tests.e2e.browser_steps import enroll_kiosk
from tests.e2e.router_pages import axe_violations, filled, router_pages
from tests.meetings.conftest import admin_principal, scheduled_meeting

pytestmark = pytest.mark.e2e

MIN_TARGET = 64
INTERACTIVE = (
    "a[href], button, input:not([type=hidden]), select, textarea, [role=button], "
    "[tabindex]:not([tabindex='-1'])"
)

SKIP = {"/kiosk/enroll"}  # the installer's page, checked separately without the kiosk cookie


def kiosk_pages(settings: Settings) -> list[str]:
    """Every page under /kiosk, path parameters as ``{name}`` placeholders."""
    return [path for path in router_pages(settings) if path.startswith("/kiosk") and path not in SKIP]


async def small_targets(page: Page) -> list[dict[str, Any]]:
    return await page.evaluate(
        """([selector, min]) => [...document.querySelectorAll(selector)]
            .filter(el => {
                const s = getComputedStyle(el); const r = el.getBoundingClientRect();
                return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 0 && r.height > 0;
            })
            .map(el => { const r = el.getBoundingClientRect();
                         return {html: el.outerHTML.slice(0, 120), width: r.width, height: r.height}; })
            .filter(t => t.width < min || t.height < min)""",
        [INTERACTIVE, MIN_TARGET],
    )


async def check(page: Page, url: str, status: int = 200) -> list[str]:
    problems = []
    response = await page.goto(url)
    assert response is not None and response.status == status, f"{url}: {response and response.status}"
    await page.wait_for_load_state("networkidle")
    problems += await axe_violations(page)
    for target in await small_targets(page):
        problems.append(f"{url}: target {target['width']:.0f}x{target['height']:.0f} < 64: {target['html']}")
    return problems


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_kiosk_pages_are_accessible(
    browser: Browser, live_server: str, world: World, settings: Settings, sessionmaker: Any
) -> None:
    code = await kiosk_code(sessionmaker, world.village_ids[0], "남성리 마을회관")
    second_code = await kiosk_code(sessionmaker, world.village_ids[1], "동성리 마을회관")
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    problems = await check(page, f"{live_server}/kiosk/enroll?code={second_code}")
    problems += await check(page, f"{live_server}/kiosk", 401)  # not enrolled yet: the "not registered" page
    await enroll_kiosk(page, live_server, code)
    await page.wait_for_url(f"{live_server}/kiosk")
    # The meeting pages: a live meeting of this kiosk's village (its join page leads to the room).
    async with transaction(sessionmaker) as session:
        meeting = await scheduled_meeting(session, world, starts_at=utcnow() - dt.timedelta(minutes=5))
        await meetings.start_meeting(session, admin_principal(world), meeting)
        ids = {"meeting_id": meeting.id, "room_id": meeting.room_id}
    pages = kiosk_pages(settings)
    assert "/kiosk" in pages and "/kiosk/rooms/{room_id}" in pages
    for path in pages:
        problems += await check(page, live_server + filled(path, ids))
    await context.close()
    assert problems == [], "\n".join(problems)


def test_route_listing_sees_kiosk_pages(settings: Settings) -> None:
    assert isinstance(create_app(settings), web.Application)
    assert "/kiosk" in kiosk_pages(settings)
