"""Does a busy SFU still let its publishers send? (issue #18: the chair's estimate collapsing
under CPU load.)

An in-process SFU receives a headless Chromium's camera (one 1280x720 stream, up to
1.5 Mbit/s) and answers with REMB from its delay-based uplink estimate, which Chromium follows.
The SFU's event loop is made busy the way a loaded machine makes it: it stands still for
``--stall-ms`` every ``--every-ms`` (``time.sleep`` in a callback), while Chromium, its own
process, goes on sending. Run twice, each with a fresh SFU and browser:

- ``kernel``: as the SFU runs, packets timed by the kernel (rtc/aiortc_internals.py item 9);
- ``loop``: the SFU without that (``stamp_receive_times`` made a no-op): packets timed when the
  loop gets to them, as aiortc does.

    # in /work/main
    unshare -rn sh -c 'ip link set lo up && .venv/bin/python tests/bench/receive_times_bench.py'

Prints, for each mode, the median over the last ``--window`` seconds of the SFU's uplink
estimate and of what Chromium sends: ``RESULT uplink_estimate_kbps_<mode>=``,
``RESULT publisher_sent_kbps_<mode>=``, and ``RESULT uplink_estimate_ratio_kernel_over_loop=``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rtc import aiortc_internals as ai  # noqa: E402
from server.sfu import Sfu, SfuConfig  # noqa: E402
from tests.sfu.browser_publisher import chromium_page, offer_script, publish  # noqa: E402
from tests.sfu.sdp_corpus.capture import blank_page  # noqa: E402
from tests.sfu.sfu_testkit import LOOPBACK  # noqa: E402

OFFER_JS = offer_script(
    """
  const stream = await navigator.mediaDevices.getUserMedia(
    {video: {width: 1280, height: 720, frameRate: 30}});
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  window.pc = pc;
  pc.addTransceiver(stream.getVideoTracks()[0],
    {direction: 'sendonly', sendEncodings: [{maxBitrate: 1500000}]});
"""
)

#: Chromium's video bytes sent so far.
SENT_JS = """
async () => {
  let sent = 0;
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') sent += s.bytesSent;
  });
  return sent;
}
"""


class Stalls:
    """Makes the running loop stand still ``stall_s`` every ``every_s``."""

    def __init__(self, stall_s: float, every_s: float) -> None:
        self.stall_s, self.every_s = stall_s, every_s
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.every_s, self._stall)

    def _stall(self) -> None:
        time.sleep(self.stall_s)
        self.start()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


async def run_mode(mode: str, page_url: str, args: argparse.Namespace) -> dict[str, float]:
    stamp = ai.stamp_receive_times
    if mode == "loop":
        ai.stamp_receive_times = lambda pc: None
    sfu = Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=()))
    sfu.open_room("r")
    stalls = Stalls(args.stall_ms / 1000, args.every_ms / 1000)
    estimates: list[float] = []
    sent: list[float] = []
    try:
        async with chromium_page(page_url) as page:
            await publish(page, sfu, "r", "chair", OFFER_JS)
            inbound: Any = sfu._room("r").get("chair").inbound["video"]
            stalls.start()
            last_bytes, last_at = 0, time.monotonic()
            for _ in range(args.settle + args.window):
                await asyncio.sleep(1.0)
                now, total = time.monotonic(), int(await page.evaluate(SENT_JS))
                sent.append((total - last_bytes) * 8 / (now - last_at) / 1000)
                last_bytes, last_at = total, now
                estimate = inbound._remb_estimate
                estimates.append((estimate or 0) / 1000)
            print(
                f"# {mode}: estimates (kbit/s, each second) {[round(e) for e in estimates]}; "
                f"sent {[round(s) for s in sent]}"
            )
    finally:
        stalls.stop()
        ai.stamp_receive_times = stamp
        await sfu.close_room("r")
    window = slice(args.settle, None)
    return {
        "uplink_estimate_kbps": statistics.median(estimates[window]),
        "publisher_sent_kbps": statistics.median(sent[window]),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stall-ms", type=int, default=40, help="how long the loop stands still")
    parser.add_argument("--every-ms", type=int, default=100, help="how often it does")
    parser.add_argument("--settle", type=int, default=10, help="seconds before measuring")
    parser.add_argument("--window", type=int, default=20, help="measured seconds")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    async with blank_page() as url:
        for mode in ("kernel", "loop"):
            results[mode] = await run_mode(mode, url, args)
    print(f"# stalls {args.stall_ms} ms every {args.every_ms} ms; load average {os.getloadavg()}")
    for mode, figures in results.items():
        for name, value in figures.items():
            print(f"RESULT {name}_{mode}={value:.0f}")
    loop_estimate = results["loop"]["uplink_estimate_kbps"]
    if loop_estimate > 0:
        ratio = results["kernel"]["uplink_estimate_kbps"] / loop_estimate
        print(f"RESULT uplink_estimate_ratio_kernel_over_loop={ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
