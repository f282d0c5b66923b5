"""Does Chromium really send what the SFU's answer asks for (opus.py): DTX in silence, and
in-band FEC (LBRR) once the receiver reports loss? Read on the wire by the SFU itself
(rtc/codecs/opus.py), from Debian's headless Chromium with its fake microphone (a beep twice
a second, too short a silence for DTX, so the silence here is a muted track).

Loss is real: nftables drops a share of the UDP toward the SFU's port for this browser
(tests/sfu/netfilter.py), so the SFU's receiver reports carry it back to Chromium's encoder."""

from __future__ import annotations

import asyncio
import re

import pytest

from server.sfu import Sfu
from server.sfu.room import ParticipantStats
from tests.sfu.browser_publisher import chromium_page, offer_script, publish
from tests.sfu.netfilter import PortFilter
from tests.sfu.sfu_testkit import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.network]

OFFER_JS = offer_script(
    """
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendonly'});
"""
)

OPUS_PACKET_RATE = 50  # one 20 ms packet every 20 ms without DTX


def sfu_port(answer: str) -> int:
    match = re.search(r"^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", answer, re.M)
    assert match, answer
    return int(match.group(1))


async def test_chromium_sends_dtx_in_silence_and_fec_under_loss(sfu: Sfu, page_url: str) -> None:
    sfu.open_room("r")

    def stats() -> ParticipantStats:
        return sfu.room_stats("r").participants["browser"]

    loss: PortFilter | None = None
    try:
        async with chromium_page(page_url) as page:
            _handle, answer = await publish(page, sfu, "r", "browser", OFFER_JS, audio_max_bitrate=24000)
            await wait_until(lambda: stats().audio_packets_in >= 50, 15, "the SFU receives Chromium's audio")

            # The resident mutes: the track sends digital silence, and with DTX Chromium's
            # encoder sends a comfort-noise update and a TOC-only packet every 400 ms instead
            # of 50 packets a second (a thin link is left to whoever speaks).
            await page.evaluate("() => { window.pc.getSenders()[0].track.enabled = false; }")
            await asyncio.sleep(1)  # the encoder's hangover before DTX
            before = stats()
            seconds = 5.0
            await asyncio.sleep(seconds)
            after = stats()
            packets = after.audio_packets_in - before.audio_packets_in
            assert packets < 0.3 * OPUS_PACKET_RATE * seconds, f"{packets} packets in {seconds} s: no DTX"
            assert after.opus_dtx_packets - before.opus_dtx_packets >= 3, (before, after)
            await page.evaluate("() => { window.pc.getSenders()[0].track.enabled = true; }")

            # 20 % of Chromium's packets lost on the way in: our receiver reports say so, and
            # Chromium's Opus encoder starts carrying each voiced frame's copy in the next.
            loss = PortFilter(sfu_port(answer))
            loss.set_loss(20)
            await wait_until(lambda: stats().opus_fec_packets >= 10, 30, "Chromium sends in-band FEC")
    finally:
        if loss is not None:
            loss.close()
