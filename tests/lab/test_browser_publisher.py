"""A browser publisher reaching an aiortc subscriber through the real app, on plain loopback:
a Chromium kiosk page publishes its (fake) camera and microphone and an official's aiortc peer
must decode both. This is the path of every village hall's headless kiosk receiving the chair's
browser (Chrome -> SFU -> aiortc). The lab's Chromium hall once published nothing at all: the
lab's http://198.18.0.1 is not a secure context, so the page had no getUserMedia
(tests/lab/browser_hall.py now marks the lab origin secure, as HTTPS is in production)."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import async_playwright, expect
from yarl import URL

from tests.conftest import TEST_PASSWORD, World
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.signaling.signaling_kit import Participant, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.network]


class _Server:
    """The live server's base URL where the signaling kit expects an aiohttp TestClient."""

    def __init__(self, base: str) -> None:
        self.base = base

    def make_url(self, path: str) -> URL:
        return URL(self.base + path)


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_aiortc_subscriber_decodes_a_chromium_kiosk_page(live_server: str, world: World) -> None:
    server = _Server(live_server)
    official = Participant("official", server, cookie=await session_cookie(server, "official"))  # type: ignore[arg-type]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            admin = await (await browser.new_context()).new_page()
            await admin.goto(f"{live_server}/login")
            await admin.fill("#username", "admin")
            await admin.fill("#password", TEST_PASSWORD)
            await admin.click("button[type=submit]")
            await expect(admin).not_to_have_url(re.compile(r"/login"))
            csrf = {
                "X-CSRF-Token": await admin.locator('meta[name="csrf-token"]').get_attribute("content") or ""
            }
            created = await admin.request.post(
                f"{live_server}/api/v1/admin/kiosks",
                data={"village_id": world.village_ids[0], "label": "남성리 마을회관"},
                headers=csrf,
            )
            body = await created.json()
            kiosk_id = int(body["kiosk"]["id"])
            kiosk = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
            await kiosk.goto(f"{live_server}/kiosk/enroll?code={body['enrollment_code']}")
            await kiosk.click("button[type=submit]")
            await expect(kiosk).to_have_url(re.compile(r"/kiosk$"))
            room = await admin.request.post(
                f"{live_server}/api/v1/admin/rooms",
                data={"title": "회의", "account_ids": [world.official_id], "kiosk_ids": [kiosk_id]},
                headers=csrf,
            )
            room_id = int((await room.json())["room"]["id"])

            # The official (aiortc, 2 video + 3 audio receive slots) first, then the page.
            await official.connect()
            await official.join(room_id)
            await official.publish(110, 8000)
            await kiosk.goto(f"{live_server}/kiosk/rooms/{room_id}")
            pid = f"k{kiosk_id}"

            def decoded() -> tuple[int, int]:
                if official._slot(pid, "video") is None or official._slot(pid, "audio") is None:
                    return 0, 0
                return official.video_frames(pid), official.audio_frames(pid)

            for _ in range(120):
                video, audio = decoded()
                if video >= 10 and audio >= 50:
                    break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError(f"the official decoded {decoded()} (video, audio) frames of the page")
            # ...and keeps decoding it.
            before = decoded()
            await asyncio.sleep(2)
            after = decoded()
            assert after[0] > before[0] + 10 and after[1] > before[1] + 50, (before, after)
        finally:
            await official.close()
            await browser.close()
