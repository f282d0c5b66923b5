"""An official posts a notice in the browser; the kiosk home shows it; the delivery report fills in."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import World, kiosk_code
from tests.e2e.browser_steps import enrolled_kiosk_browser, log_in
from tests.e2e.conftest import screenshot_path

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_notice_from_official_page_to_kiosk_home(
    browser: Browser, live_server: str, world: World, sessionmaker: object
) -> None:
    code = await kiosk_code(sessionmaker, world.village_ids[0])  # type: ignore[arg-type]
    official = await browser.new_page(viewport={"width": 1280, "height": 1000})
    await log_in(official, live_server, "official")
    await official.goto(f"{live_server}/official/notices")
    await official.fill("#title", "벼 수매 안내")
    await official.fill(
        "#body", "11월 30일 오전 9시, 마을회관 앞에서 벼 수매가 있습니다.\n포대는 농협에서 나눠 드립니다."
    )
    await official.check(f"input[name=village_ids][value='{world.village_ids[0]}']")
    await official.click("#notice-form button[type=submit]")
    await expect(official).to_have_url(re.compile(r"/official/notices/\d+$"))
    await expect(official.locator("main")).to_contain_text("키오스크 0대 중 0대")  # not enrolled yet

    kiosk_context, kiosk = await enrolled_kiosk_browser(browser, live_server, code)
    await expect(kiosk.locator(".kiosk-notice-title")).to_have_text("벼 수매 안내")
    await kiosk.screenshot(path=screenshot_path("kiosk-home.png"), full_page=True)

    await official.reload()
    await expect(official.locator("main")).to_contain_text("키오스크 1대 중 1대에 표시되었습니다")
    await official.screenshot(path=screenshot_path("official-notice-delivery.png"), full_page=True)
    await kiosk_context.close()
