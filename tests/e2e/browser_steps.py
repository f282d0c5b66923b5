"""Steps the browser tests take again and again: logging in through the real form, and enrolling a
Korean-language kiosk browser with a one-time code."""

from __future__ import annotations

import re

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.conftest import TEST_PASSWORD


async def log_in(page: Page, live_server: str, username: str) -> None:
    """Log ``username`` in through the login form; returns once the login page is left (the session
    cookie is set), wherever the role's landing page is."""
    await page.goto(f"{live_server}/login")
    await page.fill("#username", username)
    await page.fill("#password", TEST_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).not_to_have_url(re.compile(r"/login"))


async def enrolled_kiosk_browser(
    browser: Browser, live_server: str, code: str
) -> tuple[BrowserContext, Page]:
    """A new 1920x1080 ``ko-KR`` browser context enrolled as a kiosk with ``code``, on the page the
    enrollment leads to. The caller closes the context."""
    context = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="ko-KR")
    page = await context.new_page()
    await page.goto(f"{live_server}/kiosk/enroll?code={code}")
    await page.click("button[type=submit]")
    return context, page
