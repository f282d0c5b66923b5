"""A browser publisher reaching an aiortc subscriber through the real app, on plain loopback:
a Chromium kiosk page publishes its (fake) camera and microphone and an official's aiortc peer
must decode both. This is the path of every village hall's headless kiosk receiving the chair's
browser (Chrome -> SFU -> aiortc). The lab's Chromium hall once published nothing at all: the
lab's http://198.18.0.1 is not a secure context, so the page had no getUserMedia
(tests/lab/browser_hall.py now marks the lab origin secure, as HTTPS is in production)."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import async_playwright

from tests.conftest import World
from tests.e2e.browser_steps import (
    SMALL_SCREEN,
    LiveServer,
    admin_enrolled_kiosk_browser,
    csrf_headers,
    log_in,
)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.signaling.signaling_kit import Participant, session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.network]


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_aiortc_subscriber_decodes_a_chromium_kiosk_page(live_server: str, world: World) -> None:
    server = LiveServer(live_server)
    official = Participant("official", server, cookie=await session_cookie(server, "official"))  # type: ignore[arg-type]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            admin = await (await browser.new_context()).new_page()
            await log_in(admin, live_server, "admin")
            kiosk_id, kiosk = await admin_enrolled_kiosk_browser(
                browser, admin, live_server, world.village_ids[0], "남성리 마을회관", SMALL_SCREEN
            )
            room = await admin.request.post(
                f"{live_server}/api/v1/admin/rooms",
                data={"title": "회의", "account_ids": [world.official_id], "kiosk_ids": [kiosk_id]},
                headers=await csrf_headers(admin),
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
