"""rtc/tuning.py (the kiosk's weak-link patches) on real data: the time-bounded jitter buffer
gives up on a lost packet instead of stalling, the VP8 encoder goes below aiortc's 250 kbit/s
floor at 320x240, keyframes are throttled. The internals it relies on are pinned in
test_aiortc_internals.py, with the SFU's."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from kiosk import media
from rtc.tuning import (
    TimeBoundedJitterBuffer,
    TunedVp8Encoder,
    WeakLinkTuning,
    opus_bitrate_from_answer,
    tune_peer_connection,
)


async def test_tuning_replaces_the_parts_on_one_connection_only() -> None:
    tuning = WeakLinkTuning()
    tuned = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    plain = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        for pc in (tuned, plain):
            pc.addTransceiver(media.TestPatternVideo(), direction="sendonly")
            pc.addTransceiver("video", direction="recvonly")
        tune_peer_connection(tuned, tuning)
        rx = tuned.getTransceivers()[1].receiver
        assert isinstance(rx._RTCRtpReceiver__jitter_buffer, TimeBoundedJitterBuffer)  # type: ignore[attr-defined]
        assert "_send_keyframe" in vars(tuned.getTransceivers()[0].sender)
        plain_rx = plain.getTransceivers()[1].receiver
        assert not isinstance(plain_rx._RTCRtpReceiver__jitter_buffer, TimeBoundedJitterBuffer)  # type: ignore[attr-defined]
        assert "_send_keyframe" not in vars(plain.getTransceivers()[0].sender)
    finally:
        await tuned.close()
        await plain.close()


def vp8_packets(n_frames: int, per_frame: int = 3) -> list[RtpPacket]:
    packets = []
    seq = 1000
    for f in range(n_frames):
        for i in range(per_frame):
            p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=f * 3000)
            p.payload = bytes([0x10 if i == 0 else 0x00]) + bytes([f, i])
            p._data = p.payload[1:]  # type: ignore[attr-defined]
            packets.append(p)
            seq += 1
    return packets


def test_jitter_buffer_gives_up_on_a_lost_packet_after_max_wait() -> None:
    packets = vp8_packets(20)
    lost = packets[4]  # second packet of frame 1
    stock = JitterBuffer(capacity=128, is_video=True)
    tuned = TimeBoundedJitterBuffer(128, 0.05, WeakLinkTuning())
    stock_frames: list[JitterFrame] = []
    tuned_frames: list[JitterFrame] = []
    asked_keyframe = False
    for p in packets:
        if p is lost:
            continue
        if p.timestamp == 10 * 3000:
            time.sleep(0.06)  # the loss is now older than max_wait
        _, frame = stock.add(p)
        if frame is not None:
            stock_frames.append(frame)
        pli, frame = tuned.add(p)
        asked_keyframe |= pli
        if frame is not None:
            tuned_frames.append(frame)
    assert [f.timestamp for f in stock_frames] == [0]  # stock waits for the lost packet forever
    assert tuned_frames[0].timestamp == 0 and tuned_frames[-1].timestamp == 18 * 3000
    assert 1 * 3000 not in [f.timestamp for f in tuned_frames]  # the broken frame is not decoded
    assert asked_keyframe


def frames(n: int) -> list[av.VideoFrame]:
    out = []
    for i in range(n):
        frame = av.VideoFrame(640, 360, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 7) % 255]) * plane.buffer_size)
        frame.pts = i * 6000
        frame.time_base = Fraction(1, 90000)
        out.append(frame)
    return out


def test_vp8_goes_below_aiortcs_floor_at_320x240() -> None:
    encoder = TunedVp8Encoder(WeakLinkTuning())
    stock = Vp8Encoder()
    encoder.target_bitrate = stock.target_bitrate = 80_000
    assert stock.target_bitrate == 250_000  # aiortc's floor
    decoder = Vp8Decoder()
    sizes = set()
    for frame in frames(5):
        payloads, ts = encoder.encode(frame)
        data = b"".join(p[1 if not (p[0] & 0x80) else 4 :] for p in payloads)
        for out in decoder.decode(JitterFrame(data, ts)):
            sizes.add((out.width, out.height))
    assert encoder.target_bitrate == 80_000
    assert sizes == {(320, 240)}


def test_opus_bitrate_read_from_the_answer() -> None:
    sdp = "m=audio 9 X 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;maxaveragebitrate=24000\r\n"
    assert opus_bitrate_from_answer(sdp) == 24000
    assert opus_bitrate_from_answer("m=audio 9 X 111\r\n") is None


async def test_keyframes_are_throttled() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tuning = WeakLinkTuning(keyframe_min_interval=0.3)
    try:
        sender = pc.addTransceiver(media.TestPatternVideo(), direction="sendonly").sender
        tune_peer_connection(pc, tuning)
        for _ in range(10):
            sender._send_keyframe()
        assert tuning.stats == {"keyframes": 1, "keyframes_deferred": 1}
        await asyncio.sleep(0.4)
        assert tuning.stats["keyframes"] == 2  # the deferred one, after the interval
    finally:
        await pc.close()
