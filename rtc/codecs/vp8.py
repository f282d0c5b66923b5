"""VP8 over RTP (RFC 7741), read without decoding: the payload descriptor once, for everyone.

The SFU forwards from a keyframe on (:func:`is_keyframe_start`), the recorder strips the
descriptor and reassembles frames (:meth:`PayloadDescriptor.parse`, :func:`keyframe_size`), and
the kiosk's jitter buffer skips to the next frame start (:attr:`PayloadDescriptor.frame_start`).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

#: Segments of :class:`PictureIdMunger` kept for retransmissions (one per dropped picture): at
#: half the pictures of 30 fps video dropped (the top of three temporal layers), about 8 s.
MAX_PICTURE_SEGMENTS = 128


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


def _picture_fields(payload: bytes) -> tuple[int, int, int] | None:
    """(offset of the PictureID, its width in bits (7 or 15, 0 if absent), offset of
    TL0PICIDX or -1) in a VP8 payload descriptor, or None when the payload ends inside it."""
    n = len(payload)
    if n < 1 or not payload[0] & 0x80:
        return 0, 0, -1
    if n < 2:
        return None
    x = payload[1]
    pos = 2
    pid_at, pid_bits = 0, 0
    if x & 0x80:
        if n <= pos:
            return None
        pid_at = pos
        pid_bits = 15 if payload[pos] & 0x80 else 7
        pos += 2 if pid_bits == 15 else 1
    tl0_at = -1
    if x & 0x40:
        if n <= pos:
            return None
        tl0_at = pos
    return pid_at, pid_bits, tl0_at


class PictureIdMunger:
    """Keeps a forwarded stream's VP8 PictureID and TL0PICIDX continuous when the packets
    start coming from another encoder (a simulcast layer switch; LiveKit's ``VP8Munger``,
    mediasoup's ``PictureIdList``): each switch, made at a keyframe, shifts the new source's
    values so that its first picture follows the last one sent. Decoders and the receiver's
    frame buffer then see one stream with no missing pictures.

    Pictures of a temporal layer the slot does not forward are dropped (:meth:`drop`): the pictures
    after one are numbered one lower, so the receiver sees no missing PictureID (a gap makes
    Chromium's frame buffer wait for the picture, or judge later ones undecodable). Like the
    sequence numbers (:class:`~rtc.seq_rewriter.SeqRewriter`), each drop starts a *segment*
    with its own offset, so a retransmission of an older packet gets the PictureID it had.
    TL0PICIDX needs no such care: base-layer pictures are never dropped.

    :meth:`rebase` is called on the first packet of the new source; every packet then goes
    through :meth:`munge` (retransmissions too: the same offsets give the same bytes).
    """

    __slots__ = (
        "_pid_offset",
        "_tl0_offset",
        "_last_pid",
        "_last_tl0",
        "_rebase",
        "_segments",
        "_newest_src",
    )

    def __init__(self) -> None:
        self._pid_offset = 0
        self._tl0_offset = 0
        self._last_pid: int | None = None  # newest output PictureID (15-bit space)
        self._last_tl0: int | None = None
        self._rebase = True
        #: (first source PictureID, offset) of each segment since the last rebase, oldest first.
        self._segments: deque[tuple[int, int]] = deque(maxlen=MAX_PICTURE_SEGMENTS)
        #: The newest source PictureID seen (munged or dropped) since the last rebase.
        self._newest_src: int | None = None

    def rebase(self) -> None:
        """The next packet munged is the first of a new source (a keyframe)."""
        self._rebase = True

    def drop(self, payload: bytes) -> None:
        """The picture this packet belongs to is not forwarded. Called for each of its packets;
        the first one seen (a PictureID newer than any seen) shifts the pictures after it."""
        fields = _picture_fields(payload)
        if fields is None or fields[1] == 0 or self._rebase or self._newest_src is None:
            return
        pid_at, pid_bits, _ = fields
        pid, mask = _read_pid(payload, pid_at, pid_bits)
        if not 0 < ((pid - self._newest_src) & mask) <= mask // 2:
            return  # this picture (or an older one) was already counted
        self._newest_src = pid
        self._pid_offset = (self._pid_offset - 1) & 0x7FFF
        self._segments.append(((pid + 1) & mask, self._pid_offset))

    def _offset_of(self, pid: int, mask: int) -> int:
        """The PictureID offset of the segment source picture ``pid`` falls in."""
        if not self._segments:
            return self._pid_offset
        first, offset = self._segments[-1]
        if ((pid - first) & mask) <= mask // 2:
            if self._newest_src is None or 0 < ((pid - self._newest_src) & mask) <= mask // 2:
                self._newest_src = pid
            return offset
        for first, offset in reversed(self._segments):
            if ((pid - first) & mask) <= mask // 2:
                return offset
        return self._segments[0][1]

    def munge(self, payload: bytes) -> bytes:
        fields = _picture_fields(payload)
        if fields is None:
            return payload
        pid_at, pid_bits, tl0_at = fields
        if pid_bits == 0 and tl0_at < 0:
            return payload
        pid = tl0 = None
        mask = 0x7FFF
        if pid_bits:
            pid, mask = _read_pid(payload, pid_at, pid_bits)
        if tl0_at >= 0:
            tl0 = payload[tl0_at]
        if self._rebase:
            self._rebase = False
            if pid is not None:
                self._pid_offset = 0 if self._last_pid is None else (self._last_pid + 1 - pid) & 0x7FFF
                self._segments.clear()
                self._segments.append((pid, self._pid_offset))
                self._newest_src = pid
            if tl0 is not None:
                self._tl0_offset = 0 if self._last_tl0 is None else (self._last_tl0 + 1 - tl0) & 0xFF
        out = bytearray(payload)
        if pid is not None:
            new_pid = (pid + self._offset_of(pid, mask)) & mask
            if pid_bits == 15:
                out[pid_at] = 0x80 | (new_pid >> 8)
                out[pid_at + 1] = new_pid & 0xFF
            else:
                out[pid_at] = new_pid
            if self._last_pid is None or 0 < ((new_pid - self._last_pid) & mask) <= mask // 2:
                self._last_pid = new_pid
        if tl0 is not None:
            new_tl0 = (tl0 + self._tl0_offset) & 0xFF
            out[tl0_at] = new_tl0
            if self._last_tl0 is None or 0 < ((new_tl0 - self._last_tl0) & 0xFF) < 0x80:
                self._last_tl0 = new_tl0
        return bytes(out)


def _read_pid(payload: bytes, pid_at: int, pid_bits: int) -> tuple[int, int]:
    """(PictureID, its mask) at ``pid_at`` (see :func:`_picture_fields`)."""
    if pid_bits == 15:
        return ((payload[pid_at] & 0x7F) << 8) | payload[pid_at + 1], 0x7FFF
    return payload[pid_at] & 0x7F, 0x7F


def temporal_id(payload: bytes) -> int | None:
    """The TID of a VP8 payload descriptor (RFC 7741 §4.2, T bit), or None when absent."""
    fields = _picture_fields(payload)
    if fields is None or not payload[0] & 0x80:
        return None
    x = payload[1]
    if not x & 0x20:
        return None
    pos = 2
    if x & 0x80:
        pos += 2 if payload[pos] & 0x80 else 1
    if x & 0x40:
        pos += 1
    return payload[pos] >> 6 if pos < len(payload) else None


def temporal_frame(payload: bytes) -> tuple[int | None, bool]:
    """(TID or None when absent, whether the packet starts a frame): what a slot that forwards
    some temporal layers only reads of each packet (one parse)."""
    descriptor = PayloadDescriptor.parse(payload)
    if descriptor is None:
        return None, False
    return temporal_id(payload), descriptor.frame_start
