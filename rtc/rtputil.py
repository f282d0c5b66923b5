"""Small RTP helpers that need no aiortc internals (sequence maths, receive statistics,
NACK bookkeeping, NTP time). Codec payloads are read in :mod:`rtc.codecs`."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable

from rtc._rtp_writer import PacketWriter

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def seq_add(a: int, b: int) -> int:
    return (a + b) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b between two 16-bit sequence numbers (-32768..32767)."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


def nack_runs(missing: Iterable[int], newest: int) -> list[list[int]]:
    """Missing sequence numbers, oldest first, split where they wrap past 65535.

    aiortc packs a NACK by subtracting consecutive numbers, so one packet may not cross the
    wrap (65534, 65535, 0, 1 would give a negative shift); each run becomes its own packet."""
    runs: list[list[int]] = []
    for seq in sorted(missing, key=lambda s: seq_diff(s, newest)):
        if not runs or seq < runs[-1][-1]:
            runs.append([])
        runs[-1].append(seq)
    return runs


def ts_add(a: int, b: int) -> int:
    return (a + b) & 0xFFFFFFFF


def ts_diff(a: int, b: int) -> int:
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


def ntp_now() -> int:
    """Current time as a 64-bit NTP timestamp (32.32 fixed point)."""
    now = time.time() + NTP_EPOCH_OFFSET
    return int(now * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def abs_send_time_now() -> int:
    """abs-send-time header extension value: 6.18 fixed-point seconds, 24 bits.

    The NTP time's bits 14-37 (``ntp_now() >> 14``), computed without the 64-bit value:
    called once per forwarded packet per subscriber."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 262144.0) & 0x00FFFFFF


#: Builds one serialized packet header (empty payload) with the given abs-send-time
#: and audio level (None: no audio-level extension); see :class:`RtpHeaderLayout`.
HeaderSerializer = Callable[[int, "tuple[bool, int] | None"], bytes]

_U32 = struct.Struct("!L")


class RtpHeaderLayout:
    """The byte layout of one outgoing stream's RTP header, computed once per stream.

    Forwarding writes the same SSRC, MID and extension layout into every packet of a
    subscriber's slot; only marker, sequence number, timestamp, abs-send-time and
    audio level change. So the header is serialized once (by ``serialize``, the same
    serializer the per-packet path used) and each packet is a copy of it with those
    fields written at known offsets, plus the payload: no packet object and no
    extension encoding per packet. The offsets are found by serializing twice with
    different values and comparing, so the layout follows whatever extension IDs and
    header form (one- or two-byte) the serializer chose. The copying is done by
    :attr:`writer` (C, ``rtc/_rtp_writer.c``), which can also SRTP-protect the packet
    in the same call: the per-subscriber step of forwarding.
    """

    __slots__ = ("writer", "header_size", "_ast_plain", "_ast_prefix")

    def __init__(self, serialize: HeaderSerializer) -> None:
        plain = serialize(0, None)
        ast_plain = _changed_at(plain, serialize(0xFFFFFF, None), 3)
        with_level = serialize(0, (False, 0))
        level_at = _changed_at(with_level, serialize(0, (True, 0x7F)), 1)
        # No audio-level ID negotiated: the serializer leaves the extension out.
        ast_level = (
            _changed_at(with_level, serialize(0xFFFFFF, (False, 0)), 3) if level_at is not None else None
        )
        for header in (plain, with_level):
            if header[1] & 0x80 or header[0] & 0x20:
                raise ValueError("the template must have neither marker nor padding")
        # (the writer refuses offsets outside the header's extensions: ValueError)
        self.writer = PacketWriter(
            plain,
            -1 if ast_plain is None else ast_plain,
            with_level if level_at is not None else None,
            -1 if ast_level is None else ast_level,
            -1 if level_at is None else level_at,
        )
        #: Octets of a packet's header without audio level (what a paced video packet has).
        self.header_size = len(plain)
        # where restamp writes abs-send-time, and the octet before it (the extension's ID and
        # length), so the value goes in with one 4-byte pack
        self._ast_plain = ast_plain
        self._ast_prefix = plain[ast_plain - 1] << 24 if ast_plain is not None else 0

    def restamp(self, data: bytearray, abs_send_time: int) -> None:
        """Write a new abs-send-time into a packet :meth:`build` made without audio level
        (video), as it leaves a pacer: the receiver's estimate must not count the wait."""
        if self._ast_plain is not None:
            _U32.pack_into(data, self._ast_plain - 1, self._ast_prefix | (abs_send_time & 0xFFFFFF))

    def build(
        self,
        *,
        marker: int,
        seq: int,
        timestamp: int,
        abs_send_time: int,
        audio_level: tuple[bool, int] | None,
        payload: bytes,
        padding_size: int,
    ) -> bytes:
        """The plain packet: template header with this packet's fields, payload, padding
        (zeros but the last octet, which counts them: RFC 3550 5.1)."""
        return self.writer.write(
            marker,
            seq,
            timestamp,
            abs_send_time & 0xFFFFFF,
            level_octet(audio_level),
            payload,
            padding_size,
            None,
        )


def level_octet(audio_level: tuple[bool, int] | None) -> int:
    """The audio-level extension's octet (RFC 6464: V, then -dBov), -1 for none: what
    :meth:`PacketWriter.write` takes."""
    if audio_level is None:
        return -1
    return (0x80 if audio_level[0] else 0) | (audio_level[1] & 0x7F)


def _changed_at(a: bytes, b: bytes, width: int) -> int | None:
    """Offset of the ``width`` bytes in which ``a`` and ``b`` differ (None: identical)."""
    if len(a) != len(b):
        raise ValueError("header layouts differ in length")
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if not diff:
        return None
    if diff != list(range(diff[0], diff[0] + width)):
        raise ValueError("header field is not where expected")
    return diff[0]


class ReceiveStatistics:
    """RFC 3550 receiver statistics for one incoming SSRC (feeds our RR)."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.base_seq: int | None = None
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.jitter_q4 = 0
        self._last_arrival: float | None = None
        self._last_ts = 0
        self._expected_prior = 0
        self._received_prior = 0

    def add(self, seq: int, timestamp: int, arrival: float) -> None:
        self.received += 1
        if self.base_seq is None:
            self.base_seq = seq
            self.max_seq = seq
        elif seq_diff(seq, self.max_seq) > 0:
            if seq < self.max_seq:
                self.cycles += 1 << 16
            self.max_seq = seq
        else:
            return  # late/duplicate packet: no jitter update
        if self._last_arrival is not None and timestamp != self._last_ts:
            d = (arrival - self._last_arrival) * self.clock_rate - ts_diff(timestamp, self._last_ts)
            self.jitter_q4 += int(abs(d)) - ((self.jitter_q4 + 8) >> 4)
        self._last_arrival = arrival
        self._last_ts = timestamp

    @property
    def expected(self) -> int:
        if self.base_seq is None:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(-0x800000, min(self.expected - self.received, 0x7FFFFF))

    @property
    def highest_sequence(self) -> int:
        return (self.cycles + self.max_seq) & 0xFFFFFFFF

    @property
    def jitter(self) -> int:
        return self.jitter_q4 >> 4

    def fraction_lost(self) -> int:
        """Fraction lost since the previous call, as RFC 3550's 8-bit fixed point."""
        expected = self.expected - self._expected_prior
        received = self.received - self._received_prior
        self._expected_prior = self.expected
        self._received_prior = self.received
        lost = expected - received
        if expected <= 0 or lost <= 0:
            return 0
        return min(255, (lost << 8) // expected)


class NackTracker:
    """Tracks sequence numbers missing from one incoming stream."""

    def __init__(self, max_age: int = 512) -> None:
        self.max_age = max_age
        self.max_seq: int | None = None
        self.missing: set[int] = set()

    def add(self, seq: int) -> bool:
        """Record a received packet; True if new gaps appeared."""
        if self.max_seq is None:
            self.max_seq = seq
            return False
        d = seq_diff(seq, self.max_seq)
        if d <= 0:
            self.missing.discard(seq)
            return False
        gap = False
        if d > 1:
            # A jump larger than the cache means the stream restarted: don't NACK it.
            if d <= self.max_age:
                for i in range(1, d):
                    self.missing.add(seq_add(self.max_seq, i))
                gap = True
        self.max_seq = seq
        if self.missing:
            self.missing = {s for s in self.missing if 0 < seq_diff(seq, s) <= self.max_age}
        return gap


class PacedNackList:
    """Missing sequence numbers of one incoming stream, NACKed with a retry limit and
    paced by the round-trip time (used by the SFU toward publishers and by the kiosk).

    aiortc's receiver re-NACKs *every* packet missing in its history on every new gap,
    unpaced and without limit: on a lossy thin link that feedback and the retransmissions
    it triggers take the bandwidth the media needed. Here each missing packet is asked
    for at most ``max_retries`` times, never twice within ~one RTT, and forgotten after
    ``max_age_s`` (a retransmission arriving later is useless to a real-time receiver).
    """

    def __init__(
        self, *, max_retries: int = 3, max_age_s: float = 1.0, max_tracked: int = 512, window: int = 512
    ) -> None:
        self.max_retries = max_retries
        self.max_age_s = max_age_s
        self.max_tracked = max_tracked
        self.window = window
        self.max_seq: int | None = None
        #: seq -> [first noticed, last NACK time (or None), NACKs sent]
        self.missing: dict[int, list[float | int | None]] = {}
        self.given_up = 0

    def received(self, seq: int, now: float) -> None:
        if self.max_seq is None:
            self.max_seq = seq
            return
        d = seq_diff(seq, self.max_seq)
        if d <= 0:
            self.missing.pop(seq, None)
            return
        if 1 < d <= self.window:  # a larger jump is a stream restart: nothing to ask for
            for i in range(1, d):
                if len(self.missing) >= self.max_tracked:
                    break
                self.missing[seq_add(self.max_seq, i)] = [now, None, 0]
        self.max_seq = seq

    def due(self, now: float, rtt: float | None) -> list[int]:
        """Sequence numbers to NACK now (their NACK is counted as sent)."""
        if not self.missing:
            return []
        # Wait a little more than one RTT (the retransmission's way back) before asking again.
        gap = max(0.02, 1.5 * rtt) if rtt is not None else 0.1
        result: list[int] = []
        for seq, entry in list(self.missing.items()):
            first, last, count = entry
            assert isinstance(first, float) and isinstance(count, int)
            if count >= self.max_retries or now - first > self.max_age_s:
                del self.missing[seq]
                self.given_up += 1
                continue
            if last is None or now - float(last) >= gap:
                entry[1] = now
                entry[2] = count + 1
                result.append(seq)
        return result


class TokenBucket:
    """Byte budget refilled at ``rate`` bytes/s, holding at most ``burst`` bytes."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last: float | None = None

    def take(self, nbytes: int, now: float) -> bool:
        if self._last is None:
            self._tokens = self.burst
        else:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < nbytes:
            return False
        self._tokens -= nbytes
        return True
