"""The subscriber's video pacer (server/sfu/pacer.py): a burst (a keyframe relayed as it came)
leaves at 2.5x the subscriber's estimate, in order; without an estimate nothing waits; a queue
beyond a second at the paced rate is sent at once; and a paced packet is stamped when it leaves."""

from __future__ import annotations

import asyncio
import time

from rtc import aiortc_internals as ai
from rtc.rtputil import abs_send_time_now
from server.sfu.pacer import MAX_QUEUE_S, PACING_FACTOR, Pacer
from tests.sfu.test_sfu_simulcast_units import _wired_slot, chair_track, descriptor, rtp

AST_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


async def test_a_burst_leaves_at_the_paced_rate_in_order() -> None:
    pacer = Pacer()
    sent: list[tuple[float, int]] = []
    pacer.send(lambda d: sent.append((time.monotonic(), d[0])), bytearray(1200))
    assert len(sent) == 1  # not paced: no estimate yet
    pacer.set_estimate(1_000_000)  # paced at 2.5 Mbit/s: 312.5 kB/s
    sent.clear()
    start = time.monotonic()
    for n in range(60):  # a 72 kB keyframe at once
        pacer.send(lambda d: sent.append((time.monotonic(), d[0])), bytearray([n]) * 1200)
    assert 1 <= len(sent) <= 3 and pacer.queued >= 57
    while pacer.queued:
        await asyncio.sleep(0.01)
    assert [n for _, n in sent] == list(range(60))
    took = sent[-1][0] - start
    expected = 60 * 1200 / (1_000_000 * PACING_FACTOR / 8)  # 0.23 s
    assert 0.8 * expected <= took <= 3 * expected, took


async def test_without_an_estimate_or_with_a_long_queue_it_sends_at_once() -> None:
    pacer = Pacer()
    sent: list[int] = []
    pacer.set_estimate(100_000)  # 31 kB/s: a second holds 31 kB
    for n in range(40):  # 48 kB: over a second's worth
        pacer.send(lambda d: sent.append(d[0]), bytearray([n]) * 1200)
    # past a second's worth (26 packets) the queue went out at once; the rest waits again
    second = int(100_000 * PACING_FACTOR / 8 * MAX_QUEUE_S / 1200)
    assert pacer.flushed_packets > 0 and len(sent) >= second
    assert sent == list(range(len(sent))) and pacer.queued == 40 - len(sent)
    for n in range(40, 45):
        pacer.send(lambda d: sent.append(d[0]), bytearray([n]) * 1200)
    pacer.set_estimate(None)  # the estimate is gone: whatever waits goes now
    assert sent == list(range(45)) and pacer.queued == 0
    pacer.close()


async def test_a_paced_packet_is_stamped_when_it_leaves() -> None:
    """The subscriber's estimate reads the abs-send-time: a packet that waited in the pacer
    carries the time it left, not the time it was built."""
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    from rtc.rtputil import RtpHeaderLayout

    track = chair_track()
    slot, sink = _wired_slot(track)
    assert slot.layers is not None
    slot.layers.target = 0
    params = RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(uri=AST_URI, id=3)])
    slot._ext_map.configure(params)
    slot._layout = RtpHeaderLayout(slot._serialize_header)
    slot.pacer = Pacer()
    slot.pacer.set_estimate(200_000)  # 62.5 kB/s: 20 x 1.2 kB take about 0.35 s
    for n in range(20):
        packet = rtp(10, 1000 + n, 3000, descriptor(1, 1, key=True, start=n == 0) + bytes(1200))
        slot.forward(track.layers[0], packet)
    while slot.pacer.queued:
        await asyncio.sleep(0.01)
    reader = ai.HeaderExtensionsMap()
    reader.configure(params)
    stamps = [ai.RtpPacket.parse(d, reader).extensions.abs_send_time for d in sink.sent]
    assert len(stamps) == 20 and all(s is not None for s in stamps)
    first, last = stamps[0], stamps[-1]
    assert first is not None and last is not None
    waited = ((last - first) & 0xFFFFFF) / 262144  # 6.18 fixed-point seconds
    assert 0.2 <= waited <= 1.0, waited
    assert ((abs_send_time_now() - last) & 0xFFFFFF) / 262144 < 0.2
