"""Browser tests: headless Debian Chromium (never a downloaded browser) driven by Playwright,
against a live Maeul server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from server.config import PROJECT_ROOT
from tests.conftest import kiosk_code

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name


async def kiosk_browser_page(
    browser: Browser, live_server: str, sessionmaker: Any, village_id: int, label: str = "남성리 마을회관"
) -> Page:
    """A fresh 1920x1080 browser enrolled as a new kiosk of ``village_id``, on its home page."""
    code = await kiosk_code(sessionmaker, village_id, label)
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    await page.goto(f"{live_server}/kiosk/enroll?code={code}")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live_server}/kiosk")
    return page
