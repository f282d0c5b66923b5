"""A resident touches "call the county office": the on-duty official's page rings, the official
answers and both land in the same call; an unanswered call offers a recorded request instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from server.config import Settings
from tests.conftest import World, make_settings
from tests.e2e.browser_steps import log_in
from tests.e2e.conftest import kiosk_browser_page, screenshot_path

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path / "data", duty_ring_seconds=8)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_duty_call_rings_and_is_answered_or_falls_back(
    browser: Browser, live_server: str, world: World, sessionmaker: Any
) -> None:
    official = await browser.new_page(viewport={"width": 1280, "height": 800})
    await log_in(official, live_server, "official")
    await official.wait_for_url(f"{live_server}/official")
    toggle = official.locator("[data-duty-toggle]")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")

    kiosk = await kiosk_browser_page(browser, live_server, sessionmaker, world.village_ids[0])
    await kiosk.click("a[href='/kiosk/call']")
    await expect(kiosk.locator("[data-show=calling] h1")).to_be_visible()
    await kiosk.screenshot(path=screenshot_path("kiosk-duty-call.png"))

    ring = official.locator("[data-duty-ring]")
    await expect(ring).to_be_visible(timeout=10000)
    await expect(ring).to_contain_text("마을회관에서 영상통화가 왔습니다")
    await official.screenshot(path=screenshot_path("official-duty-ring.png"))
    await ring.locator("button").click()
    await official.wait_for_url(re.compile(r"/rooms/\d+$"))
    room_id = official.url.rsplit("/", 1)[1]
    await kiosk.wait_for_url(f"{live_server}/kiosk/rooms/{room_id}", timeout=10000)

    # Nobody on duty now: the next call rings out and offers a recorded request.
    await official.goto(f"{live_server}/official")
    await official.locator("[data-duty-toggle]").click()
    await expect(official.locator("[data-duty-toggle]")).to_have_attribute("aria-pressed", "false")
    await kiosk.goto(f"{live_server}/kiosk/call")
    await expect(kiosk.locator("[data-show=missed] h1")).to_be_visible(timeout=20000)
    await expect(official.locator("[data-duty-ring]")).to_be_hidden()
    await kiosk.screenshot(path=screenshot_path("kiosk-duty-missed.png"))
    await kiosk.click("text=음성으로 요청 남기기")
    await kiosk.wait_for_url(f"{live_server}/kiosk/request")
