"""Headless Chromium (Debian's, fake camera/microphone) in a room with an aiortc
kiosk: the SFU must interoperate with a real browser's WebRTC stack."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from server.sfu import Sfu
from tests.sfu.browser_publisher import chromium_page, offer_script, publish
from tests.sfu.sfu_testkit import LUMA, Client, join, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.network]


# The browser side: publish the fake camera and microphone, offer 2 video and
# 2 audio receive slots, gather (loopback only, see the flags), hand the offer out.
OFFER_JS = offer_script(
    """
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 480}});
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  window.pc = pc;
  window.tracks = [];
  pc.ontrack = (e) => window.tracks.push(e.transceiver.mid);
  pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly'});
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('video', {direction: 'recvonly'});
"""
)

STATS_JS = """
async () => {
  const out = [];
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') out.push({kind: s.kind, mid: s.mid, packets: s.packetsReceived,
      frames: s.framesDecoded || 0, width: s.frameWidth || 0, height: s.frameHeight || 0});
  });
  return JSON.stringify(out);
}
"""


async def test_browser_and_kiosk_exchange_media(
    sfu: Sfu, make_client: Callable[..., Client], page_url: str
) -> None:
    sfu.open_room("r")
    kiosk = await join(sfu, make_client, "a", luma=LUMA["a"], amplitude=5000, video_slots=1, audio_slots=1)
    async with chromium_page(page_url) as page:
        handle, answer = await publish(page, sfu, "r", "browser", OFFER_JS)

        # kiosk decodes the browser's fake camera (VP8 from Chrome, forwarded untouched)
        def kiosk_sees_browser() -> bool:
            log = kiosk.log(kiosk.slot_of("browser", "video"))
            return log.frames >= 3 and log.size == (640, 480)

        await wait_until(kiosk_sees_browser, 15, "kiosk decodes the browser's video")
        await wait_until(lambda: kiosk.log(kiosk.slot_of("browser", "audio")).frames >= 25, 10, "kiosk hears")

        # the browser decodes the kiosk's 640x360 video and receives its audio
        async def browser_stats() -> list[dict[str, object]]:
            return json.loads(await page.evaluate(STATS_JS))

        seen: list[dict[str, object]] = []

        async def poll() -> None:
            seen[:] = await browser_stats()

        for _ in range(200):
            await poll()
            video = [s for s in seen if s["kind"] == "video" and s["frames"]]
            audio = [s for s in seen if s["kind"] == "audio" and s["packets"]]
            if video and audio and (video[0]["width"], video[0]["height"]) == (640, 360):
                break
            await page.wait_for_timeout(50)
        else:
            raise AssertionError(f"browser did not decode the kiosk's media: {seen}")
        stats = sfu.room_stats("r").participants["browser"]
        assert stats.published == ("audio", "video")
        assert stats.packets_in > 0 and stats.packets_out > 0
