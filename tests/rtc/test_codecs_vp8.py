"""rtc/codecs/vp8.py: the one VP8 payload-descriptor parser, checked against aiortc's own
serializer for every field combination, on truncated input, and on real encoder output."""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor

from rtc.codecs import vp8


def _encoded(frames: int, width: int = 320, height: int = 180) -> list[list[bytes]]:
    encoder = Vp8Encoder()
    payloads = []
    for i in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 40) % 256]) * (plane.line_size * plane.height))
        frame.pts = i * 3000
        frame.time_base = Fraction(1, 90000)
        payloads.append(encoder.encode(frame)[0])
    return payloads


@pytest.mark.parametrize(
    ("picture_id", "tl0picidx", "tid", "keyidx"),
    list(itertools.product([None, 17, 300], [None, 5], [None, (1, 1)], [None, 3])),
)
@pytest.mark.parametrize(("start", "partition"), [(True, 0), (False, 0), (True, 2)])
def test_descriptor_size_and_flags_match_aiortcs_serializer(
    picture_id: int | None,
    tl0picidx: int | None,
    tid: tuple[int, int] | None,
    keyidx: int | None,
    start: bool,
    partition: int,
) -> None:
    header = bytes(
        VpxPayloadDescriptor(
            partition_start=int(start),
            partition_id=partition,
            picture_id=picture_id,
            tl0picidx=tl0picidx,
            tid=tid,
            keyidx=keyidx,
        )
    )
    parsed = vp8.PayloadDescriptor.parse(header + b"\x10\x02\x00")
    assert parsed == vp8.PayloadDescriptor(start=start, partition=partition, size=len(header))
    assert parsed.frame_start == (start and partition == 0)
    # a payload ending inside the descriptor is refused, never read past its end
    for cut in range(len(header)):
        short = vp8.PayloadDescriptor.parse(header[:cut])
        assert short is None or short.size <= cut


def test_keyframe_start_on_real_encoder_output() -> None:
    payloads = _encoded(3)
    assert vp8.is_keyframe_start(payloads[0][0])
    assert not any(vp8.is_keyframe_start(p) for p in payloads[0][1:])
    assert not vp8.is_keyframe_start(payloads[1][0])
    assert not vp8.is_keyframe_start(b"")
    assert not vp8.is_keyframe_start(b"\x90")  # X set, extension byte missing
    assert not vp8.is_keyframe_start(b"\x10")  # a frame start with no VP8 header after it


def test_keyframe_size_of_a_reassembled_frame() -> None:
    payloads = _encoded(2, 640, 360)
    frames = []
    for packets in payloads:
        parts = []
        for p in packets:
            d = vp8.PayloadDescriptor.parse(p)
            assert d is not None
            parts.append(p[d.size :])
        frames.append(b"".join(parts))
    assert vp8.keyframe_size(frames[0]) == (640, 360)
    assert vp8.keyframe_size(frames[1]) is None  # a delta frame
    assert vp8.keyframe_size(b"\x00" * 9) is None
