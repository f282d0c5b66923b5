"""A headless Chromium page talking to an in-process :class:`Sfu` directly (no Maeul pages, no
signaling server): the SFU's own browser tests and benchmarks use it to see what a real
browser's WebRTC stack sends and accepts.

One place launches the browser (Debian's Chromium with the fake camera and loopback flags) and
runs the offer/answer exchange, so a change to either (a flag, the gathering wait) is made once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.async_api import Page

    from server.sfu import Sfu
    from server.sfu.sfu import ParticipantHandle

#: Ends a page's offer script: create the offer, wait for ICE gathering to complete (loopback
#: candidates only, see the flags) and return the SDP. The script's ``pc`` is the connection.
GATHER_AND_RETURN_OFFER = """
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
  });
  return pc.localDescription.sdp;
"""


def offer_script(body: str) -> str:
    """A page function that runs ``body`` (which sets up ``pc`` and its transceivers, and keeps
    what later steps need on ``window``) and returns the gathered offer."""
    return "async () => {\n" + body + GATHER_AND_RETURN_OFFER + "}"


@asynccontextmanager
async def chromium_page(url: str) -> AsyncIterator[Page]:
    """A new headless Chromium page at ``url`` (a secure context: getUserMedia needs one);
    the browser is closed on the way out."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page()
            await page.goto(url)
            yield page
        finally:
            await browser.close()


async def publish(
    page: Page, sfu: Sfu, room_id: str, participant_id: str, script: str, **admit: Any
) -> tuple[ParticipantHandle, str]:
    """Admit ``participant_id`` and connect the page to the SFU: run the page's offer
    ``script``, answer it, and hand the answer to ``window.pc``. Returns the handle and the
    answer."""
    offer = await page.evaluate(script)
    handle = await sfu.admit(room_id, participant_id, **admit)
    answer = await handle.handle_offer(offer)
    await page.evaluate("(sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})", answer)
    return handle, answer
