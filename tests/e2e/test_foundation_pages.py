"""The login page, the admin's kiosk page and an enrolled kiosk's home, as a person sees them."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import TEST_PASSWORD, World
from tests.e2e.browser_steps import csrf_headers, enrolled_kiosk_browser, kiosk_registered_by
from tests.e2e.conftest import screenshot_path

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_admin_logs_in_enrolls_a_kiosk_and_the_kiosk_shows_its_home(
    browser: Browser, live_server: str, world: World
) -> None:
    admin = await browser.new_page(viewport={"width": 1280, "height": 800})
    await admin.goto(f"{live_server}/login")
    await expect(admin.locator("h1")).to_have_text("로그인")
    await admin.screenshot(path=screenshot_path("login.png"))

    await admin.fill("#username", "admin")
    await admin.fill("#password", "wrong password")
    await admin.click("button[type=submit]")
    await expect(admin.locator(".alert")).to_contain_text("맞지 않습니다")

    await admin.fill("#password", TEST_PASSWORD)
    await admin.click("button[type=submit]")
    await expect(admin).to_have_url(re.compile(r"/admin$"))

    # Create a kiosk through the API the page's own session and CSRF token allow.
    _, code = await kiosk_registered_by(admin, live_server, world.village_ids[0], "남성리 마을회관")
    await admin.goto(f"{live_server}/admin/kiosks")
    await expect(admin.locator("tbody tr")).to_have_count(1)
    await expect(admin.locator("tbody")).to_contain_text("등록 대기")
    await admin.screenshot(path=screenshot_path("admin-kiosks.png"), full_page=True)

    kiosk_context, kiosk = await enrolled_kiosk_browser(browser, live_server, code)
    await expect(kiosk).to_have_url(re.compile(r"/kiosk$"))
    await expect(kiosk.locator("h1")).to_have_text("안녕하세요. 무엇을 도와드릴까요?")
    cookies = {c["name"]: c for c in await kiosk_context.cookies()}
    assert cookies["maeul_kiosk"]["httpOnly"]

    beat = await kiosk.request.post(
        f"{live_server}/api/v1/kiosk/heartbeat",
        data={
            "camera": True,
            "microphone": True,
            "browser_alive": True,
            "rtt_ms": 18.4,
            "free_disk_mb": 51200,
            "agent_version": "0.1.0",
        },
        headers=await csrf_headers(kiosk),
    )
    assert beat.status == 200
    await admin.reload()
    await expect(admin.locator("tbody")).to_contain_text("등록됨")
    await expect(admin.locator("tbody")).to_contain_text("연결됨")
    await admin.screenshot(path=screenshot_path("admin-fleet.png"), full_page=True)
    await admin.click("text=사용 중지")
    await expect(admin.locator("tbody")).to_contain_text("사용 중지됨")
    await kiosk.reload()
    await expect(kiosk.locator("h1")).to_have_text("이 키오스크는 등록되어 있지 않습니다")
    await kiosk_context.close()
