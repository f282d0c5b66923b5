"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01),
the receiving side: what the SFU sends a publishing browser so that the browser's own send-side
estimator (GCC) sets its rate, as LiveKit, Jitsi and mediasoup do.

With REMB the SFU estimates the publisher's uplink itself, from the abs-send-time the browser
stamps when its pacer lets a packet go; a publisher whose machine is busy stamps packets that
then wait for its network thread, and the SFU reads that wait as a congested uplink (the link
lab's chair fell to 250 kbit/s on an unshaped line). With transport-wide feedback the SFU only
reports when each packet arrived (the kernel's receive time, see ``aiortc_internals`` item 9);
the browser pairs those times with when each packet actually left its socket and runs its own
delay- and loss-based estimator and probing.

Each RTP packet of the bundle carries a transport-wide sequence number (header extension);
:class:`TransportFeedback` records (sequence number, arrival) and, every
:data:`FEEDBACK_INTERVAL_S`, :meth:`TransportFeedback.take` builds the RTCP feedback packets
(RTPFB, FMT 15) for everything received since the last one: a base sequence number, a reference
time in 64 ms units, packet status chunks (run-length or two-bit vectors) and receive deltas in
250 microsecond ticks, one byte when small, two when large or negative.
"""

from __future__ import annotations

import struct

TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
#: How often feedback is sent (seconds): libwebrtc's receivers send every 50-250 ms by rate.
FEEDBACK_INTERVAL_S = 0.1
#: A delta tick (microseconds) and the reference time's unit (64 ms = 256 ticks).
TICK_US = 250
BASE_TICK_US = TICK_US * 256
#: Packets covered by one feedback at most (keeps it well under an MTU with one-byte deltas).
MAX_PACKETS = 400
#: Arrivals kept while waiting for feedback (a stalled sender task must not grow memory).
MAX_PENDING = 10_000

RTPFB, FMT = 205, 15
_NOT_RECEIVED, _SMALL, _LARGE = 0, 1, 2


class TransportFeedback:
    """Arrival times of one transport's packets, and the feedback that reports them."""

    def __init__(self, sender_ssrc: int) -> None:
        self.sender_ssrc = sender_ssrc
        #: Any SSRC the publisher sends (the feedback covers the whole transport).
        self.media_ssrc = 0
        self._arrivals: dict[int, int] = {}  # unwrapped sequence number -> arrival (us)
        self._last16: int | None = None  # the newest sequence number seen, and unwrapped
        self._highest = 0
        #: The first sequence number not yet reported.
        self._next: int | None = None
        self._count = 0  # feedback packet count, 8 bits
        self.feedbacks_sent = 0

    def received(self, seq: int, arrival_us: int, ssrc: int) -> None:
        """Record the arrival of the packet with transport-wide sequence number ``seq``."""
        if self._last16 is None:
            unwrapped = self._highest = seq
            self._last16 = seq
        else:
            delta = (seq - self._last16) & 0xFFFF
            if delta < 0x8000:  # newer (or the same)
                unwrapped = self._highest = self._highest + delta
                self._last16 = seq
            else:  # older: arrived out of order
                unwrapped = self._highest - (0x10000 - delta)
        if self._next is None:
            self._next = unwrapped
        if unwrapped < self._next:
            return  # already reported as lost: too late
        if len(self._arrivals) >= MAX_PENDING:
            self._arrivals.pop(next(iter(self._arrivals)))
        self._arrivals[unwrapped] = arrival_us
        self.media_ssrc = ssrc

    def take(self) -> list[bytes]:
        """The feedback packets for everything received since the last call (none if nothing
        was)."""
        if not self._arrivals:
            return []
        sequence = sorted(self._arrivals)
        packets = []
        while sequence:
            first = sequence[0]
            # a feedback covers at most MAX_PACKETS sequence numbers, from its first received one
            chunk = [s for s in sequence if s - first < MAX_PACKETS]
            packet, used = self._build(chunk, {s: self._arrivals[s] for s in chunk})
            packets.append(packet)
            sequence = sequence[used:]
        self._next = max(self._arrivals) + 1
        self._arrivals.clear()
        return packets

    def _build(self, received: list[int], arrivals: dict[int, int]) -> tuple[bytes, int]:
        """One feedback packet from the received sequence numbers ``received`` (ascending);
        and how many of them it covers (a delta too large for 16 bits ends it early)."""
        base = received[0]
        reference = arrivals[base] // BASE_TICK_US
        last_ticks = reference * 256
        statuses: list[int] = []
        deltas = bytearray()
        used = 0
        for seq in received:
            ticks = (arrivals[seq] + TICK_US // 2) // TICK_US
            delta = ticks - last_ticks
            if not -0x8000 <= delta <= 0x7FFF:
                break  # the next feedback starts here
            statuses.extend([_NOT_RECEIVED] * (seq - base - len(statuses)))
            if 0 <= delta <= 0xFF:
                statuses.append(_SMALL)
                deltas.append(delta)
            else:
                statuses.append(_LARGE)
                deltas += struct.pack("!h", delta)
            last_ticks = ticks
            used += 1
        body = bytearray(
            struct.pack(
                "!IIHHI",
                self.sender_ssrc,
                self.media_ssrc,
                base & 0xFFFF,
                len(statuses),
                ((reference & 0xFFFFFF) << 8) | (self._count & 0xFF),
            )
        )
        for chunk in _chunks(statuses):
            body += struct.pack("!H", chunk)
        body += deltas
        padding = -len(body) % 4
        if padding:
            body += bytes(padding - 1) + bytes([padding])
        header = struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | FMT, RTPFB, (len(body) + 4) // 4 - 1)
        self._count += 1
        self.feedbacks_sent += 1
        return header + bytes(body), used


def _chunks(statuses: list[int]) -> list[int]:
    """Packet status chunks: a run-length chunk for a run of 7 or more equal statuses, else a
    two-bit vector of the next 7 (libwebrtc's parser reads both, and only the statuses the
    header counts)."""
    out = []
    i, n = 0, len(statuses)
    while i < n:
        run = 1
        while i + run < n and statuses[i + run] == statuses[i] and run < 0x1FFF:
            run += 1
        if run >= 7:
            out.append((statuses[i] << 13) | run)
            i += run
            continue
        chunk = 0xC000
        for k, status in enumerate(statuses[i : i + 7]):
            chunk |= status << 2 * (6 - k)
        out.append(chunk)
        i += 7
    return out


def parse(packet: bytes) -> tuple[int, list[tuple[int, int | None]]]:
    """(reference time in us, [(sequence number, arrival in us or None)]) of one feedback packet
    this module built: the tests' reading, as libwebrtc's parser reads it."""
    base, count, ref_and_count = struct.unpack_from("!HHI", packet, 12)
    reference_us = (ref_and_count >> 8) * BASE_TICK_US
    index = 20
    statuses: list[int] = []
    while len(statuses) < count:
        (chunk,) = struct.unpack_from("!H", packet, index)
        index += 2
        if not chunk & 0x8000:
            statuses += [(chunk >> 13) & 0x3] * (chunk & 0x1FFF)
        elif not chunk & 0x4000:
            statuses += [(chunk >> (13 - k)) & 0x1 for k in range(14)]
        else:
            statuses += [(chunk >> 2 * (6 - k)) & 0x3 for k in range(7)]
    statuses = statuses[:count]
    out: list[tuple[int, int | None]] = []
    ticks = reference_us // TICK_US
    for k, status in enumerate(statuses):
        seq = (base + k) & 0xFFFF
        if status == _NOT_RECEIVED:
            out.append((seq, None))
            continue
        if status == _SMALL:
            delta = packet[index]
            index += 1
        else:
            (delta,) = struct.unpack_from("!h", packet, index)
            index += 2
        ticks += delta
        out.append((seq, ticks * TICK_US))
    return reference_us, out
