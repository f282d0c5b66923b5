"""Pacing one subscriber's video (libwebrtc's ``PacingController``, at its pacing factor).

The SFU relays each packet as it arrives from the publisher, so a keyframe leaves the SFU as a
burst at the publisher's own pacing rate (Chromium paces at 2.5x its estimate: with a 4.4 Mbit/s
estimate from the SFU's transport-wide feedback, 11 Mbit/s). A village hall on a 300 kbit/s line
whose modem holds 300 ms (11 KB) then loses a third of the keyframe, asks for another, and loses
that too: in the link lab it lost 25-33 % and dropped to sound only for seconds. Every browser
paces what it sends; the SFU paces what it forwards to a subscriber the same way: at
:data:`PACING_FACTOR` times the subscriber's downlink estimate, all its video slots through one
leaky bucket, in order. Audio is never paced (it is small and late audio is worse than none).

Packets wait as plaintext and get their abs-send-time when they leave, so the subscriber's
delay-based estimate does not read the wait as network delay.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

#: Paced rate = this x the subscriber's downlink estimate (libwebrtc's kDefaultPaceMultiplier).
PACING_FACTOR = 2.5
#: Bytes that may leave at once (about two full packets, or 5 ms at the paced rate).
MIN_BURST_BYTES = 2500
#: A queue longer than this (seconds at the paced rate) is sent at once: the estimate is far
#: below what the slots take, and holding video longer only adds delay (the layer choice lowers it).
MAX_QUEUE_S = 1.0

#: Sends one packet now (plaintext; protected and stamped by the caller's function).
Transmit = Callable[[bytearray], None]


class Pacer:
    """A leaky bucket in front of one subscriber's video slots."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: Bytes per second, None: not paced (no estimate yet).
        self._rate: float | None = None
        self._tokens = float(MIN_BURST_BYTES)
        self._at = clock()
        self._queue: deque[tuple[Transmit, bytearray]] = deque()
        self._queued_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self.paced_packets = 0
        self.flushed_packets = 0

    def set_estimate(self, downlink_bps: float | None) -> None:
        """The subscriber's downlink estimate changed (None: unknown, not paced)."""
        self._rate = None if downlink_bps is None or downlink_bps <= 0 else downlink_bps * PACING_FACTOR / 8
        if self._rate is None:
            self._flush()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def take(self, size: int) -> bool:
        """Whether a packet of ``size`` bytes may leave now (not paced, or the bucket allows
        and nothing waits; its tokens are then spent). The usual answer: the caller sends it
        as it is, with no copy; otherwise it queues it (:meth:`queue`)."""
        if self._rate is None:
            return True
        self._refill()
        if not self._queue and self._tokens >= size:
            self._tokens -= size
            return True
        return False

    def send(self, transmit: Transmit, data: bytearray) -> None:
        """Send ``data`` with ``transmit`` now if :meth:`take` allows, else :meth:`queue` it."""
        if self.take(len(data)):
            transmit(data)
        else:
            self.queue(transmit, data)

    def queue(self, transmit: Transmit, data: bytearray) -> None:
        """Queue ``data`` behind the packets waiting (after :meth:`take` said no)."""
        if self._rate is None:  # (not paced since take() answered)
            _safe(transmit, data)
            return
        self._queue.append((transmit, data))
        self._queued_bytes += len(data)
        self.paced_packets += 1
        if self._queued_bytes > self._rate * MAX_QUEUE_S:
            self._flush()
            return
        self._schedule()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self._queued_bytes = 0

    def _refill(self) -> None:
        now = self._clock()
        assert self._rate is not None
        burst = max(float(MIN_BURST_BYTES), self._rate * 0.005)
        self._tokens = min(burst, self._tokens + (now - self._at) * self._rate)
        self._at = now

    def _schedule(self) -> None:
        if self._timer is not None or not self._queue or self._rate is None:
            return
        need = len(self._queue[0][1]) - self._tokens
        delay = max(0.001, need / self._rate)
        self._timer = asyncio.get_running_loop().call_later(delay, self._drain)

    def _drain(self) -> None:
        self._timer = None
        if self._rate is None:
            self._flush()
            return
        self._refill()
        while self._queue and self._tokens >= len(self._queue[0][1]):
            transmit, data = self._queue.popleft()
            self._queued_bytes -= len(data)
            self._tokens -= len(data)
            _safe(transmit, data)
        self._schedule()

    def _flush(self) -> None:
        """Send everything queued at once (no estimate, or the queue grew too long)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            transmit, data = self._queue.popleft()
            self.flushed_packets += 1
            _safe(transmit, data)
        self._queued_bytes = 0


def _safe(transmit: Transmit, data: bytearray) -> None:
    try:
        transmit(data)
    except ConnectionError:
        pass  # the subscriber's transport went away while the packet waited
