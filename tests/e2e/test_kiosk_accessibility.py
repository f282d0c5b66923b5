"""Every kiosk page passes axe-core with zero violations, and every interactive element on it is
at least 64×64 CSS px (Maeul's floor for older hands; ../shared/kiosk-accessibility.md)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from aiohttp import web
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page

from server.app import create_app
from server.config import Settings
from server.db import transaction, utcnow
from server.meetings import service as meetings
from tests.conftest import World, kiosk_code
from tests.e2e.browser_steps import enroll_kiosk
from tests.meetings.conftest import admin_principal, scheduled_meeting

pytestmark = pytest.mark.e2e

MIN_TARGET = 64
INTERACTIVE = (
    "a[href], button, input:not([type=hidden]), select, textarea, [role=button], "
    "[tabindex]:not([tabindex='-1'])"
)

# Kiosk pages that take no path parameter; pages with parameters are listed in test cases below.
SKIP = {"/kiosk/enroll"}  # the installer's page, checked separately without the kiosk cookie
FILES = re.compile(r"\.ics\b|/media$")  # a calendar feed and a notice's media file, not pages


def kiosk_pages(settings: Settings) -> list[str]:
    """Every GET page under /kiosk (from the router, so new pages are checked automatically), with
    its path parameters as ``{name}`` placeholders; routes that serve files are left out."""
    app = create_app(settings)
    paths = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        regex = info["pattern"].pattern if "pattern" in info else ""  # e.g. /kiosk/{feed:meetings\.ics}
        if route.method == "GET" and path and path.startswith("/kiosk") and not FILES.search(path + regex):
            paths.add(path)
    return sorted(paths - SKIP)


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
    results = await Axe().run(page)
    for violation in results.response["violations"]:
        targets = [node["target"] for node in violation["nodes"]][:3]
        problems.append(f"{url}: axe {violation['id']} ({violation['impact']}): {targets}")
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
        url = re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
        problems += await check(page, live_server + url)
    await context.close()
    assert problems == [], "\n".join(problems)


def test_route_listing_sees_kiosk_pages(settings: Settings) -> None:
    assert isinstance(create_app(settings), web.Application)
    assert "/kiosk" in kiosk_pages(settings)
