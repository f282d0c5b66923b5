"""rtc/keyframes.py: one keyframe per interval; a request inside the window is deferred to its
end (once), not dropped; a cancelled throttle sends nothing; MinInterval drops instead."""

from __future__ import annotations

import asyncio

from rtc.keyframes import KeyframeThrottle, MinInterval


async def test_requests_inside_the_window_are_deferred_once() -> None:
    sent: list[float] = []
    loop = asyncio.get_running_loop()
    throttle = KeyframeThrottle(0.2, lambda: sent.append(loop.time()))
    assert throttle.request() == "sent"
    assert [throttle.request() for _ in range(5)] == ["deferred"] + ["waiting"] * 4
    assert len(sent) == 1 and throttle.deferred
    await asyncio.sleep(0.3)
    assert len(sent) == 2 and not throttle.deferred
    assert sent[1] - sent[0] >= 0.2 - 1e-3  # never two within the interval
    await asyncio.sleep(0.25)
    assert throttle.request() == "sent"  # the window has passed


async def test_cancel_drops_the_deferred_request() -> None:
    sent: list[int] = []
    throttle = KeyframeThrottle(0.1, lambda: sent.append(1))
    throttle.request()
    throttle.request()
    throttle.cancel()
    await asyncio.sleep(0.2)
    assert sent == [1]


def test_min_interval_drops_what_comes_too_soon() -> None:
    gate = MinInterval(1.0, last=10.0)  # as if one went through at t=10
    assert [gate.allow(t) for t in (10.5, 10.99, 11.0, 11.5, 12.0, 12.2)] == [
        False,
        False,
        True,
        False,
        True,
        False,
    ]
    assert MinInterval(1.0).allow(0.0)  # nothing before: the first one passes
