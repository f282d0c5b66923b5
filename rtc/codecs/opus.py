"""What an Opus packet carries, read without decoding it (RFC 6716): the TOC byte once
(:class:`Toc`), for the recorder's durations (:func:`samples`) and the SFU's counters
(:func:`inspect`).

The SFU asks every publisher for in-band FEC and DTX (server/sfu/opus.py), but the answer only *asks*:
whether a browser really sends them depends on its encoder, the loss we report and the
bitrate. These counters show it on the wire:

- DTX: in silence the encoder sends one packet of at most two bytes (only the TOC) and
  then nothing until comfort noise is due (WebRTC's ``WebRtcOpus_Encode``);
- in-band FEC: a SILK or hybrid frame whose LBRR flag is set carries a low-rate copy of the
  previous frame. The flag is one of the first range-coded bits of the frame (§4.2.3), so
  reading it takes a few steps of the range decoder (§4.1), not a decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A DTX packet: the TOC byte and at most one more (see WebRTC's opus_interface.cc).
DTX_MAX_BYTES = 2

_CODE_BOT = 1 << 23  # the range decoder renormalizes while rng <= 2**23 (EC_CODE_BOT)
_CODE_MASK = (1 << 31) - 1


class _RangeDecoder:
    """The first steps of Opus's range decoder (RFC 6716 §4.1; libopus entdec.c)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._rem = self._byte()
        self._rng = 128
        self._val = 127 - (self._rem >> 1)
        self._normalize()

    def _byte(self) -> int:
        value = self._data[self._pos] if self._pos < len(self._data) else 0
        self._pos += 1
        return value

    def _normalize(self) -> None:
        while self._rng <= _CODE_BOT:
            self._rng <<= 8
            sym = self._rem
            self._rem = self._byte()
            sym = ((sym << 8) | self._rem) >> 1
            self._val = ((self._val << 8) + (255 & ~sym)) & _CODE_MASK

    def bit(self, logp: int = 1) -> bool:
        """ec_dec_bit_logp: a bit whose probability of being 1 is 2**-logp."""
        s = self._rng >> logp
        one = self._val < s
        if not one:
            self._val -= s
        self._rng = s if one else self._rng - s
        self._normalize()
        return one


@dataclass(frozen=True)
class OpusPacketInfo:
    dtx: bool
    #: The first SILK frame carries LBRR (in-band FEC) data; None where the packet has no
    #: SILK layer (CELT-only) or a framing we do not read.
    fec: bool | None


@dataclass(frozen=True)
class Toc:
    """The table-of-contents byte that starts every Opus packet (RFC 6716 §3.1)."""

    #: 0..11 SILK-only, 12..15 hybrid, 16..31 CELT-only; with the mode it gives the frame size.
    config: int
    stereo: bool
    #: Frames in the packet: 0 one, 1 two of equal size, 2 two of different sizes, 3 a count follows.
    code: int

    @classmethod
    def parse(cls, payload: bytes) -> Toc | None:
        """The TOC of ``payload``; None for an empty payload."""
        if not payload:
            return None
        toc = payload[0]
        return cls(config=toc >> 3, stereo=bool(toc & 0x04), code=toc & 0x03)

    @property
    def frame_samples(self) -> int:
        """Samples at 48 kHz in one frame of this configuration (Table 2)."""
        if self.config < 12:  # SILK: 10, 20, 40, 60 ms
            return (480, 960, 1920, 2880)[self.config & 3]
        if self.config < 16:  # hybrid: 10, 20 ms
            return (480, 960)[self.config & 1]
        return (120, 240, 480, 960)[self.config & 3]  # CELT: 2.5, 5, 10, 20 ms

    def frame_count(self, payload: bytes) -> int:
        """Frames in ``payload`` (whose TOC this is): code 3 reads the count byte (§3.2.5)."""
        if self.code == 0:
            return 1
        if self.code in (1, 2):
            return 2
        return payload[1] & 0x3F if len(payload) > 1 else 0


def samples(payload: bytes) -> int:
    """Samples (at 48 kHz) in one Opus packet, from its TOC (0 for an empty payload)."""
    toc = Toc.parse(payload)
    return toc.frame_samples * toc.frame_count(payload) if toc is not None else 0


def silk_frames_per_packet(config: int) -> int:
    """20 ms SILK frames in one Opus frame of TOC ``config`` (0 for CELT-only)."""
    if config < 12:  # SILK-only: 10, 20, 40, 60 ms
        return (1, 1, 2, 3)[config % 4]
    if config < 16:  # hybrid: 10 or 20 ms
        return 1
    return 0


def inspect(payload: bytes) -> OpusPacketInfo:
    """Read the TOC (§3.1) and, for SILK or hybrid frames, the mid channel's LBRR flag."""
    if len(payload) <= DTX_MAX_BYTES:
        return OpusPacketInfo(dtx=len(payload) > 0, fec=None)
    toc = Toc.parse(payload)
    assert toc is not None  # longer than DTX_MAX_BYTES
    frames = silk_frames_per_packet(toc.config)
    if frames == 0 or toc.code not in (0, 1):
        # Codes 0 and 1 start the first frame right after the TOC; 2 and 3 put lengths there.
        return OpusPacketInfo(dtx=False, fec=None)
    decoder = _RangeDecoder(payload[1:])
    for _ in range(frames):
        decoder.bit()  # a VAD flag per SILK frame
    return OpusPacketInfo(dtx=False, fec=decoder.bit())
