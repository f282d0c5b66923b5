"""VP8 over RTP (RFC 7741), read without decoding: the payload descriptor once, for everyone.

The SFU forwards from a keyframe on (:func:`is_keyframe_start`), the recorder strips the
descriptor and reassembles frames (:meth:`PayloadDescriptor.parse`, :func:`keyframe_size`), and
the kiosk's jitter buffer skips to the next frame start (:attr:`PayloadDescriptor.frame_start`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class PayloadDescriptor:
    """The RFC 7741 §4.2 payload descriptor at the start of a VP8 RTP payload."""

    #: S: the packet starts a VP8 partition.
    start: bool
    #: PID: the partition index (0..7).
    partition: int
    #: Bytes the descriptor takes; the VP8 payload starts right after.
    size: int

    @classmethod
    def parse(cls, payload: bytes) -> PayloadDescriptor | None:
        """The descriptor, or None when ``payload`` ends inside it."""
        n = len(payload)
        if n < 1:
            return None
        b0 = payload[0]
        pos = 1
        if b0 & 0x80:  # X: an extension byte follows
            if n <= pos:
                return None
            x = payload[pos]
            pos += 1
            if x & 0x80:  # I: picture id, 7 or 15 bits
                if n <= pos:
                    return None
                pos += 2 if payload[pos] & 0x80 else 1
            if x & 0x40:  # L: TL0PICIDX
                pos += 1
            if x & 0x30:  # T or K: TID/Y/KEYIDX share one byte
                pos += 1
        if pos > n:
            return None
        return cls(start=bool(b0 & 0x10), partition=b0 & 0x07, size=pos)

    @property
    def frame_start(self) -> bool:
        """S=1 and PID=0: the first packet of a frame."""
        return self.start and self.partition == 0


def is_keyframe_start(payload: bytes) -> bool:
    """True if this VP8 RTP payload is the first packet of a keyframe: a frame start whose
    VP8 payload header has the P bit (inverse keyframe flag) clear (RFC 7741 §4.3)."""
    descriptor = PayloadDescriptor.parse(payload)
    if descriptor is None or not descriptor.frame_start or descriptor.size >= len(payload):
        return False
    return (payload[descriptor.size] & 0x01) == 0


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) if ``frame`` (a whole VP8 frame, descriptors stripped) is a keyframe,
    else None (RFC 6386 §9.1: the start code and the 14-bit sizes after the frame tag)."""
    if len(frame) < 10 or frame[0] & 0x01:  # P bit: 0 = keyframe
        return None
    if frame[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF
