"""Both browsers accept the SFU's answers: for every page shape of the SDP corpus (kiosk and
official; camera, shared screen, receive-only), Chromium and Firefox ESR make the offer live, the
SFU (``server/sfu/offer.py``) answers it, and the browser sets the answer and connects. Also an
offer with a disabled section: the browser accepts the answer that rejects it (port 0) and stops
that transceiver only.

The offers are made as tests/sfu/sdp_corpus/capture.py makes the corpus (the meeting page's
transceivers), so this is the browser end of tests/sfu/test_sfu_offer_corpus.py."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser

from server.sfu import Sfu, SfuConfig
from server.sfu.errors import NotInRoom
from tests.e2e.firefox_bidi import launch_firefox, xvfb
from tests.sfu.sdp_corpus import disable_section
from tests.sfu.sdp_corpus.capture import OFFER_JS, ROLES, SOURCES, blank_page

pytestmark = [pytest.mark.e2e, pytest.mark.network]

Evaluate = Callable[[str, Any], Awaitable[Any]]

# Sets the answer and waits for the connection (10 s at most); returns the state and each
# transceiver's (mid, currentDirection).
ACCEPT_JS = """
async (answer) => {
  const pc = window.offerPc;
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
  for (let i = 0; i < 100 && pc.connectionState !== 'connected'; i += 1) {
    await new Promise((done) => setTimeout(done, 100));
  }
  return {
    state: pc.connectionState,
    directions: pc.getTransceivers().map((t) => [t.mid, t.currentDirection]),
  };
}
"""
CLOSE_JS = """
() => {
  window.offerPc.close();
  if (window.offerStream) window.offerStream.getTracks().forEach((t) => t.stop());
}
"""
SSRC_LINES = re.compile(r"^a=ssrc(-group)?:.*\r\n", re.MULTILINE)


@contextlib.asynccontextmanager
async def sfu_and_page() -> AsyncIterator[tuple[Sfu, str]]:
    sfu = Sfu(SfuConfig(host_addresses=("127.0.0.1",), ice_servers=()))
    sfu.open_room("r")
    try:
        async with blank_page() as url:
            yield sfu, url
    finally:
        await sfu.close()


async def exchange(
    evaluate: Evaluate,
    sfu: Sfu,
    role: str,
    source: str,
    *,
    disable: int | None = None,
    without_ssrc: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """One offer from the browser, answered by the SFU and set by the browser. With ``disable``,
    that m-section is disabled in the offer the SFU gets; ``without_ssrc`` takes the offer's
    ``a=ssrc`` lines out (as some engines send it), and the SFU must still receive the browser's
    media (by the mid header extension). Returns (the browser's result, the disabled mid)."""
    audio, video = ROLES[role]
    offer = await evaluate(OFFER_JS, [audio, video, source, True])
    mid = None
    if disable is not None:
        offer, mid = disable_section(offer, disable)
    if without_ssrc:
        offer = SSRC_LINES.sub("", offer)
    participant = f"{role}-{source}-{disable}-{without_ssrc}"
    handle = await sfu.admit("r", participant)
    try:
        answer = await handle.handle_offer(offer)
        result: dict[str, Any] = await evaluate(ACCEPT_JS, answer)
        if without_ssrc and result["state"] == "connected":
            for _ in range(100):
                stats = handle.stats()
                if stats.packets_in > stats.audio_packets_in > 0:  # audio and video
                    break
                await asyncio.sleep(0.1)
            result["audio_in"] = stats.audio_packets_in
            result["video_in"] = stats.packets_in - stats.audio_packets_in
        await evaluate(CLOSE_JS, None)
    finally:
        with contextlib.suppress(NotInRoom):  # the browser's close may have ended it already
            await handle.leave()
    return result, mid


async def accepts_every_shape(evaluate: Evaluate, sfu: Sfu) -> None:
    for role in ROLES:
        for source in SOURCES:
            result, _ = await exchange(evaluate, sfu, role, source)
            assert result["state"] == "connected", (role, source, result)
            assert all(direction not in (None, "stopped") for _, direction in result["directions"]), result
    result, _ = await exchange(evaluate, sfu, "kiosk", "camera", without_ssrc=True)
    assert result["state"] == "connected" and result["audio_in"] > 0 and result["video_in"] > 0, result
    result, mid = await exchange(evaluate, sfu, "kiosk", "camera", disable=6)
    assert result["state"] == "connected", result
    # The rejected transceiver is stopped (Firefox keeps it without a mid, Chromium removes it).
    live = [m for m, direction in result["directions"] if direction not in ("stopped", None)]
    assert len(live) == 6 and mid not in live, result


async def test_chromium_accepts_the_sfu_answers(browser: Browser) -> None:
    async with sfu_and_page() as (sfu, url):
        page = await browser.new_page()
        await page.goto(url)
        await accepts_every_shape(page.evaluate, sfu)


async def test_firefox_accepts_the_sfu_answers() -> None:
    async with sfu_and_page() as (sfu, url), xvfb() as display, launch_firefox(display=display) as firefox:
        tab = await firefox.new_page()
        await tab.goto(url)

        async def evaluate(js: str, arg: Any) -> Any:
            return await tab.evaluate(js, arg, user_activation=True)  # getDisplayMedia wants a click

        await accepts_every_shape(evaluate, sfu)
