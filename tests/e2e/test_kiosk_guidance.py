"""Spoken guidance and volume on the kiosk: with no Korean browser voice (headless Chromium has
none), the shipped Korean clip plays; the volume buttons change and remember the level."""

from __future__ import annotations

import datetime as dt
from typing import Any

import av
import pytest
from playwright.async_api import Browser, expect

from server.config import PROJECT_ROOT
from server.db import transaction
from server.kiosks import service as kiosks
from tests.conftest import World

pytestmark = pytest.mark.e2e


def test_shipped_guidance_clips_are_real_audio() -> None:
    folder = PROJECT_ROOT / "web" / "static" / "audio" / "guidance"
    clips = sorted(folder.glob("*.ogg"))
    assert {c.name for c in clips} >= {"home.ko.ogg", "still_there.ko.ogg", "goodbye.ko.ogg"}
    for clip in clips:
        with av.open(str(clip)) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.name == "opus"
            duration = sum(float(p.duration * p.time_base) for p in container.demux(stream) if p.duration)
            assert 0.5 < duration < 30, clip.name


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_home_speaks_and_volume_is_remembered(
    browser: Browser, live_server: str, world: World, sessionmaker: Any
) -> None:
    async with transaction(sessionmaker) as session:
        issued = await kiosks.create_kiosk(
            session,
            village_id=world.village_ids[0],
            label="남성리 마을회관",
            code_lifetime=dt.timedelta(hours=1),
        )
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    page = await context.new_page()
    await page.goto(f"{live_server}/kiosk/enroll?code={issued.code}")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live_server}/kiosk")
    player = page.locator("audio[data-guidance-player]")
    await expect(player).to_have_attribute("src", "/static/audio/guidance/home.ko.ogg")
    await page.wait_for_function(
        "() => { const a = document.querySelector('audio[data-guidance-player]');"
        " return a && a.currentTime > 0.3; }",
        timeout=15000,
    )
    await expect(page.locator("[data-volume-level]")).to_have_text("80%")
    await page.click("[data-volume-down]")
    await page.click("[data-volume-down]")
    await expect(page.locator("[data-volume-level]")).to_have_text("40%")
    await page.reload()
    await expect(page.locator("[data-volume-level]")).to_have_text("40%")
    assert await player.evaluate("a => a.volume") == pytest.approx(0.4)
    await context.close()
