"""A headless Chromium page talking to an in-process :class:`Sfu` directly (no Maeul pages, no
signaling server): the SFU's own browser tests and benchmarks use it to see what a real
browser's WebRTC stack sends and accepts.

One place launches the browser (Debian's Chromium with the fake camera and loopback flags) and
runs the offer/answer exchange, so a change to either (a flag, the gathering wait) is made once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.async_api import Page

    from server.cluster.plane import MediaHandle, MediaPlane
    from tests.sfu.sfu_testkit import SlotLog

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
    page: Page, sfu: MediaPlane, room_id: str, participant_id: str, script: str, **admit: Any
) -> tuple[MediaHandle, str]:
    """Admit ``participant_id`` and connect the page to the SFU (an in-process :class:`Sfu`, or
    the web side's ``RemoteSfu`` in front of workers): run the page's offer ``script``, answer
    it, and hand the answer to ``window.pc``. Returns the handle and the answer."""
    offer = await page.evaluate(script)
    handle = await sfu.admit(room_id, participant_id, **admit)
    answer = await handle.handle_offer(offer)
    await page.evaluate("(sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})", answer)
    return handle, answer


#: The official room page's camera encodings (web/static/js/room/room.js SIMULCAST_ENCODINGS).
OFFICIAL_CAMERA_OFFER_JS = offer_script(
    """
  const stream = await navigator.mediaDevices.getUserMedia(
    {audio: true, video: {width: 1280, height: 720, frameRate: 15}});
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  window.pc = pc;
  pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly', streams: [stream]});
  pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly', streams: [stream], sendEncodings: [
    {rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000},
    {rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000},
    {rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1200000},
  ]});
"""
)


class FrameWatch:
    """Polls a subscriber slot's decoded-frame count; the longest time it stood still."""

    def __init__(self, log: Callable[[], SlotLog]) -> None:
        self._log = log
        self.longest_freeze = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        frames, since = self._log().frames, time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now, n = time.monotonic(), self._log().frames
            if n != frames:
                frames, since = n, now
            self.longest_freeze = max(self.longest_freeze, now - since)

    def __enter__(self) -> FrameWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
