"""Steps the browser tests take again and again: logging in through the real form, registering a
kiosk with the admin's own browser session, and enrolling a Korean-language kiosk browser with a
one-time code. Also the live server's address in the shape the signaling kit wants, for the tests
that add an aiortc peer next to the browsers."""

from __future__ import annotations

import re

from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect
from yarl import URL

from tests.conftest import TEST_PASSWORD

FULL_HD: ViewportSize = {"width": 1920, "height": 1080}  # the village halls' kiosk screens
SMALL_SCREEN: ViewportSize = {"width": 1280, "height": 800}  # the media tests' kiosk pages


class LiveServer:
    """The live server's base URL where the signaling kit expects an aiohttp TestClient."""

    def __init__(self, base: str) -> None:
        self.base = base

    def make_url(self, path: str) -> URL:
        return URL(self.base + path)


async def log_in(page: Page, live_server: str, username: str, password: str = TEST_PASSWORD) -> None:
    """Log ``username`` in through the login form; returns once the login page is left (the session
    cookie is set), wherever the role's landing page is."""
    await page.goto(f"{live_server}/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await expect(page).not_to_have_url(re.compile(r"/login"))


async def csrf_headers(page: Page) -> dict[str, str]:
    """The header the API's writes need from ``page``'s own session (its CSRF token, from the page)."""
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    return {"X-CSRF-Token": token or ""}


async def kiosk_registered_by(admin: Page, live_server: str, village_id: int, label: str) -> tuple[int, str]:
    """Register a kiosk of ``village_id`` through the admin API with the logged-in ``admin`` page's
    session and CSRF token; returns (kiosk id, one-time enrollment code)."""
    created = await admin.request.post(
        f"{live_server}/api/v1/admin/kiosks",
        data={"village_id": village_id, "label": label},
        headers=await csrf_headers(admin),
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    return int(body["kiosk"]["id"]), str(body["enrollment_code"])


async def enroll_kiosk(page: Page, live_server: str, code: str) -> None:
    """Enroll ``page``'s browser as a kiosk with ``code`` through the installer's page; returns once
    the form is submitted, on the page the enrollment leads to."""
    await page.goto(f"{live_server}/kiosk/enroll?code={code}")
    await page.click("button[type=submit]")


async def enrolled_kiosk_browser(
    browser: Browser, live_server: str, code: str, viewport: ViewportSize = FULL_HD
) -> tuple[BrowserContext, Page]:
    """A new ``ko-KR`` browser context (1920x1080 unless told) enrolled as a kiosk with ``code``, on
    the page the enrollment leads to. The caller closes the context."""
    context = await browser.new_context(viewport=viewport, locale="ko-KR")
    page = await context.new_page()
    await enroll_kiosk(page, live_server, code)
    return context, page


async def admin_enrolled_kiosk_browser(
    browser: Browser,
    admin: Page,
    live_server: str,
    village_id: int,
    label: str,
    viewport: ViewportSize = FULL_HD,
) -> tuple[int, Page]:
    """A kiosk registered by the logged-in ``admin`` page and a new browser enrolled as it, checked
    to be on the kiosk's home; returns (kiosk id, the kiosk's page)."""
    kiosk_id, code = await kiosk_registered_by(admin, live_server, village_id, label)
    _, page = await enrolled_kiosk_browser(browser, live_server, code, viewport)
    await expect(page).to_have_url(re.compile(r"/kiosk$"))
    return kiosk_id, page
