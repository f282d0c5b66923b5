"""rtc/codecs/opus.py against packets from a real Opus encoder (libopus through PyAV): the
TOC gives each packet's duration, the LBRR flag it reads is set only when the encoder was asked
for in-band FEC, DTX is a TOC-only packet, CELT-only packets have no SILK flag to read, and no
input makes it raise."""

from __future__ import annotations

import math
import random
from array import array
from fractions import Fraction

import av
import pytest

from rtc.codecs import opus
from rtc.codecs.opus import OpusPacketInfo, Toc, inspect, silk_frames_per_packet

FRAME = 960  # 20 ms at 48 kHz


def speech_like(index: int, silent: bool) -> bytes:
    """20 ms of a warbling tone (or silence), enough for the encoder's voice activity detector."""
    if silent:
        return bytes(2 * FRAME)
    samples = array(
        "h",
        (
            int(
                8000
                * math.sin(2 * math.pi * (300 + (k % 7) * 40) * (index * FRAME + k) / 48000)
                * (0.5 + 0.5 * math.sin(k / 37))
            )
            for k in range(FRAME)
        ),
    )
    return samples.tobytes()


def encode(options: dict[str, str], bit_rate: int = 24000, frames: int = 100) -> list[bytes]:
    """Half a second of tone, half a second of silence, repeated; one packet per 20 ms."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = bit_rate
    encoder.options = options
    encoder.open()
    packets: list[bytes] = []
    for i in range(frames):
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(speech_like(i, silent=(i // 25) % 2 == 1))
        frame.sample_rate = 48000
        frame.pts = i * FRAME
        frame.time_base = Fraction(1, 48000)
        packets.extend(bytes(p) for p in encoder.encode(frame))
    return packets


def test_lbrr_flag_follows_the_encoders_fec_setting() -> None:
    without = [inspect(p) for p in encode({"application": "voip"})]
    with_fec = [inspect(p) for p in encode({"application": "voip", "fec": "1", "packet_loss": "10"})]
    assert without and all(i.fec is False for i in without), without
    fec = [i.fec for i in with_fec]
    # LBRR copies only voiced frames: about the tone's half of the packets.
    assert fec.count(True) >= len(fec) // 3, fec
    assert fec.count(None) == 0


def test_celt_only_packets_have_no_silk_flags() -> None:
    packets = encode({"application": "lowdelay"}, bit_rate=64000, frames=10)
    assert all(p[0] >> 3 >= 16 for p in packets)  # CELT-only configs
    assert {inspect(p) for p in packets} == {OpusPacketInfo(dtx=False, fec=None)}


def test_dtx_is_a_toc_only_packet() -> None:
    assert inspect(bytes([15 << 3])) == OpusPacketInfo(dtx=True, fec=None)
    assert inspect(bytes([15 << 3, 0])) == OpusPacketInfo(dtx=True, fec=None)
    assert inspect(b"") == OpusPacketInfo(dtx=False, fec=None)
    # An encoder without DTX never sends one, not even in silence.
    assert not any(inspect(p).dtx for p in encode({"application": "voip"}))


@pytest.mark.parametrize(
    ("config", "frames"), [(0, 1), (1, 1), (2, 2), (3, 3), (9, 1), (11, 3), (13, 1), (16, 0)]
)
def test_silk_frames_per_packet(config: int, frames: int) -> None:
    assert silk_frames_per_packet(config) == frames


def test_any_bytes_are_read_without_error() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        info = inspect(payload)
        assert info.dtx == (0 < len(payload) <= 2)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (bytes([0xFC, 0]), 960),  # CELT FB 20 ms, stereo, one frame
        (bytes([0x78 | 1]), 1920),  # SILK WB 20 ms, two frames
        (bytes([0x18 | 3, 3]), 3 * 2880),  # SILK NB 60 ms, code 3 with a count of three
        (bytes([0x18 | 3]), 0),  # code 3 without its count byte: nothing to trust
        (bytes([0x80]), 120),  # CELT 2.5 ms
        (bytes([0x60 | 2, 1, 2]), 2 * 480),  # hybrid SWB 10 ms, two frames of different sizes
        (b"", 0),
    ],
)
def test_samples_from_the_toc(payload: bytes, expected: int) -> None:
    assert opus.samples(payload) == expected


def test_toc_fields() -> None:
    assert Toc.parse(b"") is None
    assert Toc.parse(bytes([0xFC])) == Toc(config=31, stereo=True, code=0)
    assert Toc.parse(bytes([0x4B])) == Toc(config=9, stereo=False, code=3)


def test_samples_agree_with_encoder_output() -> None:
    """Real packets of 20 ms frames, SILK (voip) and CELT (lowdelay), carry 960 samples each."""
    for options in ({"application": "voip"}, {"application": "lowdelay"}):
        packets = encode(options, frames=10)
        assert packets and [opus.samples(p) for p in packets] == [FRAME] * len(packets)
