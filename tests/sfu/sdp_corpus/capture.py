"""Capture the SDP offers the meeting pages' browsers make, as fixtures for test_sfu_offer_corpus.

Each browser builds the peer connection the way ``web/static/js/room/room.js``
(``connectMedia``) does: ``bundlePolicy: 'max-bundle'``, a send-only audio transceiver, the
role's receive-only audio slots, a send-only video transceiver (camera, or a shared screen),
the role's receive-only video slots; no camera means receive-only. The offer is taken after ICE
gathering, as the page sends it.

Run it inside a loopback-only network namespace (the candidates in the files are 127.0.0.1):

    unshare -rn sh -c 'ip link set lo up && .venv/bin/python -m tests.sfu.sdp_corpus.capture'

Chromium through Playwright (Debian's /usr/bin/chromium, the browser tests' flags); Firefox ESR
over WebDriver BiDi, headful on a private Xvfb so that it has a screen to share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from playwright.async_api import async_playwright

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.firefox_bidi import launch_firefox, xvfb
from tests.sfu.sdp_corpus import PAGE_SLOTS

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
ROLES = PAGE_SLOTS
#: camera: publishes camera + microphone; screen: a shared screen + microphone; receive: no devices.
SOURCES = ("camera", "screen", "receive")

#: Returns the offer's SDP; with ``keep`` the peer connection stays open as window.offerPc (for
#: the browser test that sets the SFU's answer on it).
OFFER_JS = """
async ([audioSlots, videoSlots, source, keep]) => {
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  let stream = null, video = null;
  if (source !== 'receive') {
    const camera = {width: {ideal: 640}, height: {ideal: 360}};
    stream = await navigator.mediaDevices.getUserMedia({audio: true, video: camera});
    video = stream.getVideoTracks()[0];
    if (source === 'screen') {
      const screen = await navigator.mediaDevices.getDisplayMedia({video: {frameRate: 15}, audio: false});
      video = screen.getVideoTracks()[0];
      video.contentHint = 'detail';
      stream = new MediaStream([stream.getAudioTracks()[0], video]);
    }
    pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly', streams: [stream]});
  }
  for (let i = 0; i < audioSlots; i += 1) pc.addTransceiver('audio', {direction: 'recvonly'});
  if (video) pc.addTransceiver(video, {direction: 'sendonly', streams: [stream]});
  for (let i = 0; i < videoSlots; i += 1) pc.addTransceiver('video', {direction: 'recvonly'});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    setTimeout(done, 5000);
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
  });
  const sdp = pc.localDescription.sdp;
  if (keep) {
    window.offerPc = pc;
    window.offerStream = stream;
  } else {
    pc.close();
    if (stream) stream.getTracks().forEach((t) => t.stop());
  }
  return sdp;
}
"""


@contextlib.asynccontextmanager
async def blank_page() -> AsyncIterator[str]:
    """An empty page on http://127.0.0.1 (a secure context, so getUserMedia works); yields its URL."""
    app = web.Application()

    async def index(_: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>maeul</title>", content_type="text/html")

    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


def save(browser: str, role: str, source: str, sdp: str) -> None:
    name = f"{browser}-{role}-{source}.sdp"
    (HERE / name).write_text(sdp.replace("\r\n", "\n"))
    log.info("%s: %d m-lines", name, sdp.count("\nm="))


async def capture_all() -> None:
    async with blank_page() as url:
        async with async_playwright() as playwright:
            chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            version = chromium.version
            page = await chromium.new_page()
            await page.goto(url)
            for role, (audio, video) in ROLES.items():
                for source in SOURCES:
                    sdp = await page.evaluate(OFFER_JS, [audio, video, source, False])
                    save("chromium", role, source, sdp)
            await chromium.close()
        async with xvfb() as display, launch_firefox(display=display) as firefox:
            tab = await firefox.new_page()
            await tab.goto(url)
            agent = await tab.evaluate("() => navigator.userAgent")
            for role, (audio, video) in ROLES.items():
                for source in SOURCES:
                    sdp = await tab.evaluate(OFFER_JS, [audio, video, source, False], user_activation=True)
                    save("firefox", role, source, sdp)
        (HERE / "browsers.json").write_text(
            json.dumps({"chromium": version, "firefox": agent}, indent=2) + "\n"
        )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    asyncio.run(capture_all())
