"""The SFU times each received RTP packet by the kernel's clock, not by when its busy event loop
got to it (rtc/aiortc_internals.py item 9): packets that waited out a stall of the loop keep the
times they really arrived at, so the delay-based uplink estimate (REMB toward the publisher)
does not read the SFU's own CPU load as a congested line. The publisher is a real Chromium (its
own process: it goes on sending while the SFU's loop stands still)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rtc import aiortc_internals as ai
from server.sfu import Sfu
from tests.sfu.browser_publisher import chromium_page, offer_script, publish
from tests.sfu.sfu_testkit import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.network]

OFFER_JS = offer_script(
    """
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 360, frameRate: 30}});
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  window.pc = pc;
  pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly'});
"""
)

STALL_S = 0.5


async def test_packets_that_waited_out_a_stall_keep_their_kernel_receive_times(
    sfu: Sfu, page_url: str
) -> None:
    sfu.open_room("r")
    async with chromium_page(page_url) as page:
        await publish(page, sfu, "r", "browser", OFFER_JS)
        inbound: Any = sfu._room("r").get("browser").inbound["video"]
        await wait_until(lambda: inbound.packets > 30, 20, "the SFU receives Chromium's video")
        # (aiortc's time, the kernel's time) of each packet as the stream gets it
        times: list[tuple[int, int]] = []
        handle = inbound._handle_rtp_packet

        micros: list[tuple[int, int | None]] = []  # (kernel ms, kernel us) of the same packet

        async def recording(packet: ai.RtpPacket, arrival_time_ms: int) -> None:
            times.append((arrival_time_ms, ai.receive_time_ms(inbound._transport, arrival_time_ms)))
            micros.append((times[-1][1], ai.receive_time_us(inbound._transport)))
            await handle(packet, arrival_time_ms)

        inbound._handle_rtp_packet = recording
        await asyncio.sleep(2.0)
        steady = len(times)
        # the SFU's loop stands still (as on a loaded machine); Chromium sends on
        time.sleep(STALL_S)  # noqa: ASYNC251
        await asyncio.sleep(1.0)
        inbound._handle_rtp_packet = handle

    assert steady > 20, times
    # the same time in microseconds since 1970 (transport-wide feedback's clock)
    ntp_unix_offset_ms = 2_208_988_800_000
    assert all(us is not None and us // 1000 + ntp_unix_offset_ms == ms for ms, us in micros), micros[:5]
    # in steady state both clocks agree to a few ms: the same base, the packet read at once
    assert all(abs(loop - kernel) < 50 for loop, kernel in times[5:steady]), times[:steady]
    # the packets read right after the stall: aiortc gave them (nearly) one time, the kernel
    # the times they arrived at, spread over the stall
    after = times[steady:]
    backlog = [(loop, kernel) for loop, kernel in after if loop - kernel > 50]
    assert len(backlog) >= 5, after[:40]
    loop_span = max(x for x, _ in backlog) - min(x for x, _ in backlog)
    kernel_span = max(k for _, k in backlog) - min(k for _, k in backlog)
    assert kernel_span >= 0.5 * STALL_S * 1000, (kernel_span, backlog)
    assert loop_span < kernel_span / 3, (loop_span, kernel_span, backlog)
    # and the kernel's times never run backwards, nor past aiortc's
    kernels = [k for _, k in after]
    assert kernels == sorted(kernels)
    assert all(kernel <= loop + 2 for loop, kernel in after)
