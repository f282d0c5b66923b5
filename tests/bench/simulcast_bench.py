"""Simulcast benchmark (issue #18): one headless Chromium publisher (fake 1280x720 camera) and
three aiortc subscribers in the in-process SFU, run twice in one go: with simulcast (q/h/f, the
encodings of tests/sfu/test_sfu_simulcast_browser.py) and, as the comparison row, with one layer
(same camera, one encoding of 1.2 Mbit/s max).

Run it inside a loopback-only namespace (like the tests)::

    cd /work/main && unshare -rn sh -c 'ip link set lo up && .venv/bin/python tests/bench/simulcast_bench.py'

The subscribers:

* **strong**: a 1280x720 tile, unshaped. ``strong_hall_width`` is the width it decodes at the
  end of the window, ``strong_hall_fps`` its decoded frames per second over the window.
* **weak**: a 1280x720 tile, its downlink "shaped" to 300 kbit/s **by its REMB only**: the SFU
  reads a REMB capped at 300 kbit/s from it (a wrapper on its slots' RTCP handler), the packets
  themselves are not limited (no tc here: the publisher, the SFU and the subscribers share one
  loopback). So ``weak_hall_fps`` / ``weak_hall_max_freeze_s`` show what the SFU's choice gives a
  hall that reports 300 kbit/s — q for simulcast; for one layer, the publisher's REMB capped by
  that slowest subscriber, which lowers the strong hall too — not what a real 300 kbit/s line
  would deliver (tests/bench/link_bench.py measures that for one layer, with tc in namespaces).
* **switcher**: its tile flips between 160x90 and 1280x720 every ``--switch-every`` seconds.
  For each flip, the longest time without a decoded frame from the flip until 0.5 s after the
  decoded size changed (frames seen by polling every 10 ms) is one ``layer_switch_gap`` sample.
  With one layer nothing switches (no row).

``subscriber_decode_errors`` (a ``#`` line): aiortc's "failed to decode" warnings of the three
subscribers over the whole mode, settling included; a decoder gone end-of-stream logs one per
frame from then on.

CPU: utime+stime of this process's main thread (/proc/self/task/<pid>/stat) over the window,
in % of one core, divided by the 3 subscribers. The SFU runs in this process, so the figure
includes the aiortc subscribers' own receive path (SRTP, jitter buffer) on the same thread; their
VP8 decoders run in threads of their own and are not counted, nor is Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from server.sfu import Sfu, SfuConfig  # noqa: E402
from tests.sfu.browser_publisher import (  # noqa: E402
    OFFICIAL_CAMERA_OFFER_JS,  # noqa: E402
    chromium_page,
    publish,
)
from tests.sfu.sdp_corpus.capture import blank_page  # noqa: E402
from tests.sfu.sfu_testkit import LOOPBACK, Client, SlotLog  # noqa: E402

SIMULCAST_ENCODINGS = """[
    {rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000},
    {rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000},
    {rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1200000},
  ]"""
SINGLE_ENCODINGS = "[{maxBitrate: 1200000}]"
WEAK_REMB_BPS = 300_000
LARGE, SMALL = [1280, 720], [160, 90]
PUBLISHER = "chair"
SUBSCRIBERS = ("strong", "weak", "switcher")


def offer_js(simulcast: bool) -> str:
    """The test's publishing script, with its encodings or one layer of the same camera."""
    assert SIMULCAST_ENCODINGS in OFFICIAL_CAMERA_OFFER_JS, "the simulcast test's encodings changed"
    script = OFFICIAL_CAMERA_OFFER_JS
    return script if simulcast else script.replace(SIMULCAST_ENCODINGS, SINGLE_ENCODINGS)


@dataclass
class FrameTimes:
    """When each decoded frame of a slot was seen (10 ms polling) and its size then."""

    log: Callable[[], SlotLog]
    times: list[float] = field(default_factory=list)
    sizes: list[tuple[int, int] | None] = field(default_factory=list)

    async def run(self) -> None:
        frames = self.log().frames
        while True:
            await asyncio.sleep(0.01)
            log = self.log()
            if log.frames != frames:
                frames = log.frames
                self.times.append(time.monotonic())
                self.sizes.append(log.size)

    def between(self, start: float, end: float) -> list[float]:
        return [t for t in self.times if start <= t <= end]

    def fps(self, start: float, end: float) -> float:
        return len(self.between(start, end)) / (end - start)

    def longest_gap(self, start: float, end: float) -> float:
        """Longest time without a frame in [start, end], the edges included."""
        return self.longest_gap_at(start, end)[0]

    def longest_gap_at(self, start: float, end: float) -> tuple[float, float]:
        """The longest gap in [start, end] and when it began, in seconds after ``start``."""
        points = [start, *self.between(start, end), end]
        return max((b - a, a - start) for a, b in zip(points, points[1:], strict=False))


def main_thread_cpu_s() -> float:
    pid = os.getpid()
    with open(f"/proc/self/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cap_remb(slot: Any, bps: int) -> None:
    """The SFU sees this subscriber's REMB at most ``bps``: the bench's stand-in for a shaped link."""
    original: Callable[[Any], Awaitable[None]] = slot._handle_rtcp_packet

    async def capped(packet: Any) -> None:
        await original(packet)
        if slot.remb is not None and slot.remb > bps:
            slot.remb = bps

    slot._handle_rtcp_packet = capped


class DecodeErrors(logging.Handler):
    """Counts aiortc's "failed to decode" warnings (its receivers log one per frame its decoder
    refuses). A subscriber whose decoder went end-of-stream logs one per frame for good: that is
    how the slots frozen on `f` under load were found (docs/sfu.md, Simulcast)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "failed to decode" in record.getMessage():
            self.count += 1


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def run_mode(simulcast: bool, page_url: str, args: argparse.Namespace) -> dict[str, Any]:
    decode_errors = DecodeErrors()
    receiver_log = logging.getLogger("aiortc.rtcrtpreceiver")
    receiver_log.addHandler(decode_errors)
    receiver_log.propagate = False  # counted, not printed (one line per refused frame)
    sfu = Sfu(SfuConfig(host_addresses=tuple(LOOPBACK), ice_servers=(), pli_min_interval=1.0))
    sfu.open_room("r")
    clients: dict[str, Client] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        for name in SUBSCRIBERS:
            client = Client(name, video_slots=1)
            await client.connect(await sfu.admit("r", name))
            clients[name] = client
            assert client.handle is not None
            client.handle.set_tile_sizes({PUBLISHER: LARGE})
        for slot in sfu._room("r").get("weak").video_slots:
            cap_remb(slot, WEAK_REMB_BPS)
        async with chromium_page(page_url) as page:
            _handle, answer = await publish(page, sfu, "r", PUBLISHER, offer_js(simulcast))
            assert ("a=simulcast:recv" in answer) == simulcast, answer

            def log_of(name: str) -> Callable[[], SlotLog]:
                client = clients[name]
                return lambda: client.log(client.slot_of(PUBLISHER, "video"))

            watches = {name: FrameTimes(log_of(name)) for name in SUBSCRIBERS}
            loop = asyncio.get_running_loop()
            tasks += [loop.create_task(w.run()) for w in watches.values()]
            deadline = time.monotonic() + 60
            while not all(w.times for w in watches.values()):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"not every subscriber decodes: { {n: len(w.times) for n, w in watches.items()} }"
                    )
                await asyncio.sleep(0.1)
            await asyncio.sleep(args.settle)

            print(f"# window starts: {diagnose(sfu)}; chromium {await page.evaluate(OUTBOUND_JS)}")
            start, cpu0 = time.monotonic(), main_thread_cpu_s()
            switcher = clients["switcher"]
            assert switcher.handle is not None
            gaps: list[float] = []
            switcher_slot = sfu._room("r").get("switcher").video_slots[0]
            tile = LARGE
            end = start + args.window
            while time.monotonic() + args.switch_every <= end:
                before = switcher.log(switcher.slot_of(PUBLISHER, "video")).size
                tile = SMALL if tile == LARGE else LARGE
                flipped = time.monotonic()
                layers = switcher_slot.layers
                was = (layers.current, layers.switches) if layers is not None else (0, 0)
                switcher.handle.set_tile_sizes({PUBLISHER: tile})
                await asyncio.sleep(args.switch_every)
                if layers is None:
                    continue  # one layer: nothing to switch
                if layers.switches == was[1] and layers.target == was[0]:
                    # the tile's layer is the one it had (or its estimate kept it there)
                    print(f"# {flipped - start:.1f}s: tile {tile}, layer {was[0]} kept", flush=True)
                    continue
                watch = watches["switcher"]
                changed = next(
                    (
                        t
                        for t, s in zip(watch.times, watch.sizes, strict=True)
                        if t >= flipped and s != before
                    ),
                    None,
                )
                if changed is None:  # it did not switch within the period: the whole period counts
                    print(f"# {flipped - start:.1f}s: no switch to {tile} within {args.switch_every}s")
                    gaps.append(watch.longest_gap(flipped, flipped + args.switch_every))
                else:
                    gaps.append(watch.longest_gap(flipped, min(changed + 0.5, flipped + args.switch_every)))
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            stop, cpu1 = time.monotonic(), main_thread_cpu_s()
            strong_size = clients["strong"].log(clients["strong"].slot_of(PUBLISHER, "video")).size
            return {
                "strong_hall_width": None if strong_size is None else strong_size[0],
                "strong_hall_fps": watches["strong"].fps(start, stop),
                "weak_hall_fps": watches["weak"].fps(start, stop),
                "weak_hall_max_freeze_s": watches["weak"].longest_gap(start, stop),
                "strong_hall_longest_freeze_s_at_s": watches["strong"].longest_gap_at(start, stop),
                "weak_hall_longest_freeze_s_at_s": watches["weak"].longest_gap_at(start, stop),
                "weak_hall_size": clients["weak"].log(clients["weak"].slot_of(PUBLISHER, "video")).size,
                "switch_gaps_ms": [round(g * 1000) for g in gaps],
                "layer_switch_gap_p95_ms": None if not gaps else (p95(gaps) or 0.0) * 1000,
                "cpu_per_subscriber_pct": (cpu1 - cpu0) / (stop - start) * 100 / len(SUBSCRIBERS),
                "subscriber_decode_errors": decode_errors.count,
                "load": os.getloadavg(),
                "layers": diagnose(sfu),
                "chromium": await page.evaluate(OUTBOUND_JS),
            }
    finally:
        receiver_log.removeHandler(decode_errors)
        receiver_log.propagate = True
        for task in tasks:
            task.cancel()
        for client in clients.values():
            await client.close()
        await sfu.close()


#: Chromium's outbound video per rid (or "-" for one layer), for the log.
OUTBOUND_JS = """
async () => {
  const out = {};
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') out[s.rid || '-'] = [
      s.active, s.frameWidth, s.framesPerSecond, s.framesSent, s.bytesSent, s.qualityLimitationReason];
  });
  return out;
}
"""


def diagnose(sfu: Sfu) -> str:
    """The publisher's layers and each subscriber's (current, target) layer, for the log."""
    room = sfu._room("r")
    track: Any = room.get(PUBLISHER).inbound.get("video")
    sizes: Any = []
    if track is not None and hasattr(track, "layer_widths"):
        live = [info.live for info in track.layer_info(time.monotonic())]
        sizes = (track.layer_widths, [x.packets for x in track.layers], track.layer_bitrates, live)
    slots = {
        name: [
            ((o.layers.current, o.layers.target) if o.layers else None, o.packets, o.keyframe_requests)
            for o in room.get(name).video_slots
        ]
        for name in SUBSCRIBERS
    }
    return (
        f"layer (widths, packets, bitrates, live) {sizes}, "
        f"slots ((current, target), packets sent, PLIs from it) {slots}, downlink {room._downlink}"
    )


def fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--window", type=float, default=40.0, help="measured seconds per mode")
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds after first frames before measuring"
    )
    parser.add_argument(
        "--switch-every", type=float, default=5.0, help="seconds between the switcher's tile flips"
    )
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    async with blank_page() as page_url:
        for mode, simulcast in (("simulcast", True), ("single", False)):
            results[mode] = await run_mode(simulcast, page_url, args)
            print(f"# {mode}: " + ", ".join(f"{k}={fmt(v)}" for k, v in results[mode].items()), flush=True)
    sim, single = results["simulcast"], results["single"]
    for key in ("strong_hall_width", "strong_hall_fps", "weak_hall_fps", "weak_hall_max_freeze_s"):
        print(f"RESULT {key}={fmt(sim[key])}")
        print(f"RESULT single_layer_{key}={fmt(single[key])}")
    print(f"RESULT layer_switch_gap_p95_ms={fmt(sim['layer_switch_gap_p95_ms'])}")
    print(f"RESULT simulcast_cpu_per_subscriber_pct={fmt(sim['cpu_per_subscriber_pct'])}")
    print(f"RESULT single_layer_cpu_per_subscriber_pct={fmt(single['cpu_per_subscriber_pct'])}")


if __name__ == "__main__":
    asyncio.run(main())
