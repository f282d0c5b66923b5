"""The lean header rewrite (rtc.rtputil.RtpHeaderLayout, used by OutStream) writes exactly
the bytes the per-packet ``RtpPacket(...).serialize(ext_map)`` path wrote (issue 16).

The reference below is that old path, kept here verbatim: a new RtpPacket per subscriber
with our SSRC, payload type, numbering, MID, abs-send-time and the source's audio level.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pylibsrtp
import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

from rtc import aiortc_internals as ai
from rtc._rtp_writer import PacketWriter
from rtc.rtputil import RtpHeaderLayout, level_octet
from server.sfu import SfuConfig
from server.sfu.relay import OutStream

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
AST = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
TWCC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
ABS_SEND_TIME = 0xABCDEF

# Negotiated extension IDs of the subscriber's m-line: every one, none, some, and IDs
# above 14 (which force the two-byte header form, RFC 8285).
EXTENSION_SETS: dict[str, list[tuple[str, int]]] = {
    "all": [(MID, 1), (AST, 2), (LEVEL, 3), (TWCC, 4)],
    "none": [],
    "mid-only": [(MID, 4)],
    "ast-only": [(AST, 9)],
    "level-only": [(LEVEL, 1)],
    "no-mid": [(AST, 3), (LEVEL, 5)],
    "two-byte": [(MID, 15), (AST, 16), (LEVEL, 200)],
}


def _out(kind: str, exts: list[tuple[str, int]], mid: str) -> OutStream:
    out = OutStream(kind=kind, mid=mid, subscriber_id="s1", ssrc=0x11223344, config=SfuConfig())  # type: ignore[arg-type]
    out._pt = 111 if kind == "audio" else 96
    out._ext_map.configure(
        RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(uri=u, id=i) for u, i in exts])
    )
    out._layout = RtpHeaderLayout(out._serialize_header)
    return out


def _old_serialize(out: OutStream, packet: ai.RtpPacket, seq: int, ts: int) -> bytes:
    """The forwarding path before issue 16, byte for byte."""
    new = ai.RtpPacket(
        payload_type=out._pt,
        marker=packet.marker,
        sequence_number=seq,
        timestamp=ts,
        ssrc=out._ssrc,
        payload=packet.payload,
    )
    new.padding_size = packet.padding_size
    new.extensions.mid = out.mid
    new.extensions.abs_send_time = ABS_SEND_TIME
    new.extensions.audio_level = packet.extensions.audio_level
    return new.serialize(out._ext_map)


def _source_packet(kind: str, marker: int, level: tuple[bool, int] | None, padding: int) -> ai.RtpPacket:
    payload = bytes(range(7, 250)) if kind == "video" else b"\xf8\xff\xfe" * 20
    p = ai.RtpPacket(
        payload_type=100, marker=marker, sequence_number=4242, timestamp=99, ssrc=5, payload=payload
    )
    p.csrc = [0xCAFE]  # a mixer's CSRC from the publisher is not forwarded (old path dropped it too)
    p.padding_size = padding
    p.extensions.audio_level = level
    p.extensions.abs_send_time = 0x010203  # the publisher's own value must not leak through
    return p


@pytest.mark.parametrize("kind", ["audio", "video"])
@pytest.mark.parametrize("exts", list(EXTENSION_SETS), ids=list(EXTENSION_SETS))
def test_lean_rewrite_is_byte_identical_to_serialize(kind: str, exts: str) -> None:
    for mid in ("0", "video-slot-12"):
        out = _out(kind, EXTENSION_SETS[exts], mid)
        cases = itertools.product((0, 1), (None, (True, 33), (False, 127), (True, 0)), (0, 1, 4))
        for marker, level, padding in cases:
            packet = _source_packet(kind, marker, level, padding)
            for seq, ts in ((0, 0), (65535, 0xFFFFFFFF), (1234, 3_000_000_000)):
                lean = out._rewrite(packet, seq, ts, packet.payload, ABS_SEND_TIME)
                old = _old_serialize(out, packet, seq, ts)
                assert len(lean) == len(old)
                if padding:
                    # aiortc fills padding with random octets; only the count octet is defined
                    assert lean[:-padding] == old[:-padding]
                    assert lean[-1] == old[-1] == padding
                    assert lean[-padding:-1] == bytes(padding - 1)
                else:
                    assert lean == old, (kind, exts, mid, marker, level, seq, ts)
                parsed = ai.RtpPacket.parse(lean, out._ext_map)
                assert (parsed.sequence_number, parsed.timestamp, parsed.ssrc) == (seq, ts, 0x11223344)
                assert parsed.marker == marker and parsed.payload == packet.payload


def test_layout_rejects_a_serializer_that_moves_fields() -> None:
    # A serializer whose length depends on the value has no fixed layout: refuse it.
    with pytest.raises(ValueError):
        RtpHeaderLayout(lambda ast, level: b"\x80\x60" + bytes(10 + (ast & 1)))


@pytest.mark.parametrize("kind", ["audio", "video"])
@pytest.mark.parametrize("exts", list(EXTENSION_SETS), ids=list(EXTENSION_SETS))
def test_written_and_protected_in_one_call_is_protect_of_the_plain_packet(kind: str, exts: str) -> None:
    """What OutStream sends in the common case (DirectRtpSender.send_written: the slot's
    packet written and SRTP-protected by one C call) is byte for byte pylibsrtp's
    ``Session.protect`` of the plain packet, and the subscriber's session decrypts it to that."""
    key = bytes(range(30))

    def session(kind: int) -> pylibsrtp.Session:
        return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=kind))

    stock, lean = session(pylibsrtp.Policy.SSRC_ANY_OUTBOUND), session(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    rx = session(pylibsrtp.Policy.SSRC_ANY_INBOUND)
    srtp = ai.srtp_context(lean)
    out = _out(kind, EXTENSION_SETS[exts], "video-slot-12")
    assert out._layout is not None
    writer = out._layout.writer
    seq = 65530  # across the wrap: libsrtp's rollover counter moves on both sessions alike
    for marker, level, padding in itertools.product((0, 1), (None, (True, 33), (False, 127)), (0, 1, 4)):
        packet = _source_packet(kind, marker, level, padding)
        plain = out._layout.build(
            marker=marker,
            seq=seq,
            timestamp=seq * 3000,
            abs_send_time=ABS_SEND_TIME,
            audio_level=level,
            payload=packet.payload,
            padding_size=padding,
        )
        protected = writer.write(
            marker, seq, seq * 3000, ABS_SEND_TIME, level_octet(level), packet.payload, padding, srtp
        )
        assert protected == stock.protect(plain), (marker, level, padding)
        assert rx.unprotect(protected) == plain
        seq = (seq + 1) & 0xFFFF


def test_the_writer_refuses_bad_fields_with_a_clear_error() -> None:
    out = _out("video", EXTENSION_SETS["all"], "0")
    assert out._layout is not None
    writer = out._layout.writer
    good = [0, 1, 2, 3, -1, b"payload", 0, None]
    assert writer.write(*good)[12:] != b""
    for index, bad, error in (
        (1, 65536, "seq out of range"),
        (1, -1, "seq out of range"),
        (2, 1 << 32, "timestamp out of range"),
        (3, 1 << 24, "abs_send_time out of range"),
        (4, 256, "level out of range"),
        (6, 256, "padding out of range"),
    ):
        fields = list(good)
        fields[index] = bad
        with pytest.raises(ValueError, match=error):
            writer.write(*fields)
    with pytest.raises(TypeError, match="SrtpContext"):
        writer.write(*good[:7], object())
    with pytest.raises(TypeError):
        writer.write(*good[:5], "not bytes", 0, None)
    with pytest.raises(TypeError, match="8 arguments"):
        writer.write(*good[:7])
    with pytest.raises(ValueError, match="inside the header"):
        PacketWriter(bytes(12), 10, None, -1, -1)  # abs-send-time in the fixed header
    with pytest.raises(ValueError, match="at least 12"):
        PacketWriter(bytes(8), -1, None, -1, -1)


class _Sink:
    """Where a slot's packets go instead of a socket: DirectRtpSender.send_written's packet,
    left plain (no SRTP session here)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_written(self, writer: PacketWriter, *fields: Any) -> bool:
        self.sent.append(writer.write(*fields, None))
        return True


async def test_the_copies_of_one_packet_share_its_departure() -> None:
    """The publisher's receive loop works out a packet's abs-send-time and audio level once
    (relay.Departure) for all its subscribers' copies: each copy carries that one stamp and the
    source's level, and the next packet a later stamp."""
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

    from server.sfu.relay import InboundStream

    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    source = InboundStream(
        kind="audio", publisher_id="p", rtcp_ssrc=1, config=SfuConfig(), on_disconnect=lambda: None
    )
    source.rtcp_sink = lambda data: None  # fed like a pipe's stream: no transport of its own
    await source.start(None, RTCRtpReceiveParameters(codecs=[opus]))
    slots = []
    for mid in ("0", "1", "2"):
        out = _out("audio", EXTENSION_SETS["all"], mid)
        out._direct = _Sink()  # type: ignore[assignment]
        out._transport = object()  # type: ignore[assignment]  # forward() only asks that it is set
        out.assign(source)
        slots.append(out)
    try:
        stamps = []
        for seq, level in ((10, (True, 33)), (11, (False, 90))):
            packet = ai.RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq, ssrc=5)
            packet.payload = b"\xf8\xff\xfe"
            packet.extensions.audio_level = level
            await source._handle_rtp_packet(packet, 0)
            copies = [ai.RtpPacket.parse(out._direct.sent[-1], out._ext_map) for out in slots]  # type: ignore[union-attr]
            assert {c.extensions.abs_send_time for c in copies} == {copies[0].extensions.abs_send_time}
            assert all(c.extensions.audio_level == level for c in copies)
            assert len({c.extensions.mid for c in copies}) == 3  # each slot's own header
            stamps.append(copies[0].extensions.abs_send_time)
            await asyncio.sleep(0.002)  # abs-send-time counts 1/262144 s: two packets 2 ms apart differ
        assert stamps[1] != stamps[0]
    finally:
        await source.stop()
