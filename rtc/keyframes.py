"""Keyframe requests, throttled (mediasoup's ``KeyFrameRequestManager``).

A keyframe is 5-10x a delta frame. The SFU asks a publisher for one (PLI) whenever a subscriber
joins, switches, resumes or loses the picture, and aiortc's sender makes one on every PLI; on a
thin link a burst of them is what freezes the picture. Both ends therefore let at most one
request through per interval. A request inside the window is deferred to its end rather than
dropped, so a late joiner waits at most one interval (:class:`KeyframeThrottle`). Where the
request repeats by itself while the need lasts, the extra ones are simply dropped
(:class:`MinInterval`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

#: What :meth:`KeyframeThrottle.request` did: sent now, deferred to the end of the window, or
#: nothing (a deferred request is already waiting).
Outcome = Literal["sent", "deferred", "waiting"]


class KeyframeThrottle:
    """Calls ``send`` at most once per ``min_interval`` seconds (event-loop time)."""

    def __init__(self, min_interval: float, send: Callable[[], None]) -> None:
        self.min_interval = min_interval
        self._send = send
        self._last = -1e9
        self._timer: asyncio.TimerHandle | None = None

    @property
    def deferred(self) -> bool:
        """A request is waiting for the window to end."""
        return self._timer is not None

    def request(self) -> Outcome:
        """Send now if the window allows, else once it ends (one deferred request at most)."""
        loop = asyncio.get_running_loop()
        wait = self._last + self.min_interval - loop.time()
        if wait <= 0:
            self._last = loop.time()
            self._send()
            return "sent"
        if self._timer is not None:
            return "waiting"
        self._timer = loop.call_later(wait, self._fire)
        return "deferred"

    def _fire(self) -> None:
        self._timer = None
        self.request()

    def cancel(self) -> None:
        """Forget a deferred request (the stream closed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class MinInterval:
    """Lets a request through at most once per ``interval`` seconds and drops the rest, for
    requests that are repeated anyway while the need lasts (a receiver's PLI on every broken
    frame, the recorder asking on every packet until a keyframe comes). Time is the caller's
    (``now``), so it also serves outside the event loop."""

    def __init__(self, interval: float, last: float = -1e9) -> None:
        self.interval = interval
        self._last = last

    def allow(self, now: float) -> bool:
        if now - self._last < self.interval:
            return False
        self._last = now
        return True
