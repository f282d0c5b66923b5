"""Transport-wide congestion control with a real browser (rtc/transport_cc.py): headless Chromium
publishes the official page's three simulcast layers; the SFU answers with transport-cc, sends
feedback of every packet's arrival and no REMB of its own, and Chromium's own estimator (GCC)
sets its rate from that feedback.

Unshaped, Chromium's start-up probes find the line at once and it sends all three layers within
seconds (with the SFU's REMB it starts at 300 kbit/s and climbs about 8 % a second: the top
layer does not come for tens of seconds). Then the loopback link is shaped to 700 kbit/s
(tc tbf on ``lo`` in the test's own network namespace): the estimate follows it down, which
only happens when the feedback's arrival times are right (queueing delay is all GCC sees
before loss); unshaped again, it climbs back (measured: about 4,100 kbit/s unshaped, 560-710
while shaped, doubling in the 10 s after)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.sfu import Sfu, SfuConfig
from tests.sfu.browser_publisher import OFFICIAL_CAMERA_OFFER_JS, chromium_page, publish
from tests.sfu.sfu_testkit import LOOPBACK

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.lab]

#: Chromium's estimate of its uplink and bytes sent per rid.
STATS_JS = """
async () => {
  const out = {estimate: null, layers: {}};
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate)
      out.estimate = s.availableOutgoingBitrate;
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid) out.layers[s.rid] = s.bytesSent;
  });
  return out;
}
"""


def tc(*args: str) -> None:
    subprocess.run(["tc", "qdisc", *args], check=True, capture_output=True)


@pytest.fixture
async def sfu() -> AsyncIterator[Sfu]:
    s = Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=()))
    yield s
    await s.close()


async def test_chromium_sets_its_rate_from_the_sfus_transport_feedback(sfu: Sfu, page_url: str) -> None:
    sfu.open_room("r")
    async with chromium_page(page_url) as page:
        _, answer = await publish(page, sfu, "r", "chair", OFFICIAL_CAMERA_OFFER_JS)
        assert "transport-cc" in answer
        chair = sfu._room("r").get("chair")
        feedback = chair._feedback
        assert feedback is not None
        published = list(chair.inbound.values())

        async def stats() -> dict[str, Any]:
            result: dict[str, Any] = await page.evaluate(STATS_JS)
            return result

        estimates: list[float] = []

        async def sample(seconds: float) -> list[float]:
            """Chromium's estimate every 0.5 s for ``seconds``."""
            out = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await asyncio.sleep(0.5)
                estimate = (await stats())["estimate"]
                if estimate:
                    out.append(estimate / 1000)
            estimates.extend(out)
            return out

        start = time.monotonic()
        first = await sample(6.0)
        layers = (await stats())["layers"]
        detail = f"estimates (kbit/s) {[round(e) for e in estimates]}, layers {layers}"
        assert feedback.feedbacks_sent > 20, detail
        assert max(first) > 1500, detail  # found the unshaped line within 6 s
        assert all(layers.get(rid, 0) > 0 for rid in ("q", "h", "f")), detail
        # the SFU's own REMB is not sent: it would cap Chromium's estimate
        assert all(s._remb_bitrate() is None for s in published), detail
        try:
            tc("add", "dev", "lo", "root", "tbf", "rate", "700kbit", "burst", "8000", "latency", "300ms")
            shaped = await sample(15.0)
        finally:
            tc("del", "dev", "lo", "root")
        detail = f"estimates (kbit/s) {[round(e) for e in estimates]}"
        # GCC follows the 700 kbit/s line down (the last few seconds of the shaped spell)
        assert max(shaped[-6:]) < 1000, detail
        assert min(shaped[-6:]) > 150, detail
        again = await sample(10.0)
        # unshaped, it climbs again (GCC grows ~8 %/s without loss or delay: about double in 10 s)
        assert max(again) > 1.5 * shaped[-1], detail + f" then {[round(e) for e in again]}"
        print(f"transport-cc: {time.monotonic() - start:.0f} s, {detail}")
