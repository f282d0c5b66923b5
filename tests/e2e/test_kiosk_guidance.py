"""Spoken guidance and volume on the kiosk: with no Korean browser voice (headless Chromium has
none), the shipped Korean clip plays; the volume buttons change and remember the level."""

from __future__ import annotations

from typing import Any

import av
import pytest
from playwright.async_api import Browser, expect

from server.config import PROJECT_ROOT
from tests.conftest import World
from tests.e2e.conftest import kiosk_browser_page

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
    page = await kiosk_browser_page(browser, live_server, sessionmaker, world.village_ids[0])
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
    await page.context.close()
