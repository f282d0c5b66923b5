"""The lean header rewrite (rtc.rtputil.RtpHeaderLayout, used by OutStream) writes exactly
the bytes the per-packet ``RtpPacket(...).serialize(ext_map)`` path wrote (issue 16).

The reference below is that old path, kept here verbatim: a new RtpPacket per subscriber
with our SSRC, payload type, numbering, MID, abs-send-time and the source's audio level.
"""

from __future__ import annotations

import itertools

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

from rtc import aiortc_internals as ai
from rtc.rtputil import RtpHeaderLayout
from server.sfu import SfuConfig
from server.sfu import relay as relay_mod
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
def test_lean_rewrite_is_byte_identical_to_serialize(
    kind: str, exts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_mod, "abs_send_time_now", lambda: ABS_SEND_TIME)
    for mid in ("0", "video-slot-12"):
        out = _out(kind, EXTENSION_SETS[exts], mid)
        cases = itertools.product((0, 1), (None, (True, 33), (False, 127), (True, 0)), (0, 1, 4))
        for marker, level, padding in cases:
            packet = _source_packet(kind, marker, level, padding)
            for seq, ts in ((0, 0), (65535, 0xFFFFFFFF), (1234, 3_000_000_000)):
                lean = out._rewrite(packet, seq, ts)
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
