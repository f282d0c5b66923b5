"""Issue 18's link-lab test: the chair's official page (Chromium in the county) publishes its
camera as simulcast (``?simulcast=1``) to three village halls, each a Chromium kiosk page in its
own namespace:

- hall A: downlink shaped to 300 kbit/s (tc), full screen: it must get a layer its line carries;
- hall B: unshaped, full screen on a 1.5x screen (a hall TV), the chair shown large: the top layer;
- hall C: unshaped, a small window: the chair in a small tile, the layer that fits it.

Once hall B decodes the top layer and every hall decodes steadily (hall A may have been taken to
sound only while the halls' cameras were on), 60 s are measured from the pages' own getStats
(the chair's receive slots only). Then hall B's window shrinks: no hall wants the top layer, and the chair's
page must pause it (outbound-rtp ``active=false``, ``bytesSent`` standing still); it grows again:
the page must turn the layer back on and hall B decode it. The halls' microphones and cameras
are off, as in a town-hall briefing: the chair is the one talker (so it stays the active
speaker and on each kiosk's two tiles), and the 2-core machine runs four browsers without three
more encoders.

In the suite again since session 13 (docs/linklab.md, "Simulcast halls", runs 49-60). Session 10
put it in after 4 passes in 5, and the next CI run's lab phase failed on hall A freezing over 2 s.
Run 53's server log showed the window could begin while hall A was still on sound only from the
start (the halls' cameras on its 300 kbit/s line). With the window waiting for every hall to
decode, it passed 5 runs alone and two whole lab phases (59, 60) before it went back in.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import ViewportSize

from server.sfu.simulcast import LAYER_OF_RID, LayerInfo, choose_layer
from tests.lab.browser_hall import BrowserHall, BrowserOfficial
from tests.lab.linklab import COUNTY
from tests.lab.scenario import OFFICIAL, MeetingLab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.e2e,
]

WEAK, STRONG, SMALL = 1, 2, 3  # halls A, B, C
NAMES = {WEAK: "A (300 kbit/s)", STRONG: "B (large)", SMALL: "C (small tile)"}
WINDOW_S = 60.0
#: A hall's link mode must have held this long before the window (the link controller judges
#: every 2 s, and a loss episode shows in its next verdict or the one after).
STEADY_LINK_S = 6.0
FULL_SCREEN: ViewportSize = {"width": 1280, "height": 720}
#: Hall C's window: two kiosk tiles of about 200x110 px.
SMALL_WINDOW: ViewportSize = {"width": 480, "height": 320}
#: Hall B's window before it grows: tiles of about 180x100 device px (no top layer wanted).
TINY_WINDOW: ViewportSize = {"width": 320, "height": 240}
#: Hall B's devicePixelRatio (a hall TV): its full-screen tile (about 900x500 device px) wants a
#: 1280x720 top layer too, not only today's 640x360 (a 1x kiosk tile is at most 690x388).
HALL_TV_SCALE = 1.5


async def until(test: Callable[[], bool], within: float, what: str, state: Callable[[], str]) -> None:
    deadline = time.monotonic() + within
    while not test():
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s: {state()}"
        await asyncio.sleep(0.25)


def last(samples: list[tuple[float, Any]]) -> Any:
    return samples[-1][1] if samples else None


def window(samples: list[tuple[float, Any]], start: float, end: float) -> list[Any]:
    return [s for t, s in samples if start <= t <= end]


# Joining (~40 s), hall B reaching the top layer (<= 60 s), the window, pause and resume (<= 80 s).
@pytest.mark.timeout(600)
async def test_each_hall_gets_the_chairs_layer_its_line_and_tile_carry(tmp_path: Path) -> None:
    async with MeetingLab(tmp_path, halls=3, browser_halls={1, 2, 3}, aiortc_chair=False) as meeting:
        seed, lab = meeting.seed, meeting.lab
        assert seed is not None
        chair_id = f"a{seed.official_id}"
        lab.shape(WEAK, down_kbit=300)
        chair = BrowserOfficial(meeting.base_url, OFFICIAL, seed.password, seed.room_id, query="?simulcast=1")
        screens = {WEAK: (FULL_SCREEN, 1.0), STRONG: (FULL_SCREEN, HALL_TV_SCALE), SMALL: (SMALL_WINDOW, 1.0)}
        halls = {
            n: BrowserHall(
                meeting.base_url, seed.kiosk_tokens[n], seed.room_id, publisher=chair_id, viewport=v, scale=s
            )
            for n, (v, s) in screens.items()
        }
        started: list[tuple[str | int, BrowserHall]] = []
        try:
            await lab.run_in(COUNTY, chair.start())
            started.append((COUNTY, chair))
            for n, hall in halls.items():
                await lab.run_in(n, hall.start())
                started.append((n, hall))
                await mute(meeting, n, hall)
            await run(meeting, chair, halls)
        finally:
            for node, page in started:
                await lab.run_in(node, page.close())


async def mute(meeting: MeetingLab, n: int, hall: BrowserHall) -> None:
    """The hall's microphone and camera off as soon as its page sends them, before the next hall
    joins: in a briefing the chair is the one talker, and the halls' own video on hall A's
    300 kbit/s line took it to sound only from the start (run 61 in docs/linklab.md: 45 % loss
    and sound only for 8 s, with the halls muted only once all three decoded the chair)."""
    await until(lambda: hall.samples.sent.get("video", 0) > 0, 60, f"hall {NAMES[n]} sends", lambda: "")
    assert hall.page is not None
    for button in ("mic", "camera"):
        await meeting.lab.run_in(n, hall.page.click(f'[data-action="{button}"]'))


def describe(chair: BrowserHall, halls: dict[int, BrowserHall]) -> str:
    layers = last(chair.samples.layers) or {}
    sent = {
        rid: f"{'on' if x['active'] else 'OFF'} {x['width']}x{x['height']} {x['fps']}fps "
        f"{x['bytes'] // 1000}kB {x['limit']}"
        for rid, x in layers.items()
    }
    got = {
        NAMES[n]: (last(h.samples.sizes), len(h.samples.video), h.samples.page_states[-1:])
        for n, h in halls.items()
    }
    outgoing = last(chair.samples.outgoing)
    estimate = "-" if outgoing is None else f"{outgoing / 1000:.0f}"
    return f"chair sends {sent} (its estimate {estimate} kbit/s); halls decode {got}; load {os.getloadavg()}"


async def run(meeting: MeetingLab, chair: BrowserHall, halls: dict[int, BrowserHall]) -> None:
    lab = meeting.lab

    def state() -> str:
        return describe(chair, halls)

    # Everyone in (the halls' microphones and cameras off: mute), every hall decoding the chair.
    await until(
        lambda: all(len(h.samples.video) >= 5 for h in halls.values()),
        90,
        "every hall decodes the chair",
        state,
    )

    # The chair publishes simulcast: every layer seen sending at least once, with its size.
    def sizes() -> dict[str, tuple[int, int]]:
        seen: dict[str, tuple[int, int]] = {}
        for _, layers in chair.samples.layers:
            for rid, x in layers.items():
                if x["width"]:
                    seen[rid] = (x["width"], x["height"])
        return seen

    # the chair's encodings (rids; f is the page's top one), each seen with a size at least once
    top = "f"
    await until(lambda: top in (last(chair.samples.layers) or {}), 30, "the chair publishes simulcast", state)
    rids = sorted(last(chair.samples.layers), key=LAYER_OF_RID.__getitem__)
    await until(lambda: set(sizes()) == set(rids), 60, "the chair sends each of its layers", state)

    def fitting(hall: BrowserHall) -> str | None:
        """The layer the SFU's choice gives this hall's tile (bandwidth aside)."""
        size = last(hall.samples.sizes)
        if not size or not size["tile"]:
            return None
        heights = sizes()
        infos = [LayerInfo(live=True, bitrate=0.0, height=heights[rid][1]) for rid in rids]
        return rids[choose_layer(infos, tile_height=size["tile"][1], budget_bps=None, loss=None)]

    strong = halls[STRONG]

    def strong_on_top() -> bool:
        """Hall B decodes the chair's top layer at the width the chair's page publishes it."""
        layers = last(chair.samples.layers) or {}
        size = last(strong.samples.sizes)
        return bool(size) and top in layers and size["width"] == layers[top]["width"] > 0

    failures: list[str] = []
    joined = meeting.now()
    try:
        await until(strong_on_top, 60, "hall B decodes the top layer", state)
    except AssertionError as exc:
        failures.append(str(exc))
    on_top = meeting.now()

    def decoding_steadily(hall: BrowserHall) -> bool:
        """No second of the last 3 s without a frame decoded (the page is sampled every 0.25 s),
        and the link mode the page shows unchanged for :data:`STEADY_LINK_S` and not sound only."""
        now = meeting.now()
        marks = [now - 3.0, *(t for t in hall.samples.video if t > now - 3.0), now]
        if max(b - a for a, b in zip(marks, marks[1:], strict=False)) > 1.0:
            return False
        modes = [(t, mode) for t, _, mode in hall.samples.bars]  # (its bars change more often)
        changes = [b for a, b in zip(modes, modes[1:], strict=False) if a[1] != b[1]] or modes[:1]
        return bool(changes) and modes[-1][1] != "audio_only" and now - changes[-1][0] >= STEADY_LINK_S

    # The window is the briefing's steady state. While the halls' cameras were on, hall A's
    # 300 kbit/s line carried the other halls' video too; the link controller may then have taken
    # it to sound only (run 53 in docs/linklab.md: 26-50 % loss, sound only for 8 s, and the window
    # had begun 0.3 s after the halls muted). So it begins once every hall decodes again and its
    # link mode has held a while (run 61: hall A still decoded when the window began, and the
    # link controller's verdict on its start-up losses came a second later); how long that took
    # is reported.
    try:
        await until(lambda: all(map(decoding_steadily, halls.values())), 60, "every hall decodes", state)
    except AssertionError as exc:
        failures.append(str(exc))
    steady = meeting.now()

    # 60 s measured.
    start = meeting.now()
    await asyncio.sleep(WINDOW_S)
    end = meeting.now()
    window_state = state()
    figures = {n: h.receives(start, end) for n, h in halls.items()}
    published = window(chair.samples.layers, start, end)
    top_widths = sorted({x[top]["width"] for x in published if top in x})
    # how often the top layer went off and on in the window (the SFU's pause, or Chromium)
    actives = [x[top]["active"] for x in published if top in x]
    flips = sum(1 for a, b in zip(actives, actives[1:], strict=False) if a != b)
    estimates = [bps / 1000 for bps in window(chair.samples.outgoing, start, end)]
    lines = [
        f"simulcast halls, load {os.getloadavg()}: chair publishes {rids}, sizes {sizes()}, top {top} "
        f"{top_widths} wide in the window, switched on/off {flips} times; "
        f"hall B on it {on_top - joined:.1f} s after every hall decoded the chair, every hall steady "
        f"{steady - joined:.1f} s after; the chair's send estimate "
        f"{min(estimates, default=0):.0f}-{max(estimates, default=0):.0f} kbit/s in the window"
    ]
    # each hall's figures, last in the report (CI's summary keeps only a failure's end)
    rows: list[str] = []
    for n, hall in halls.items():
        got = window(hall.samples.sizes, start, end)
        widths = sorted({s["width"] for s in got})
        freezes = None
        if got:  # Chromium's own freeze count and total, over the window
            freezes = (got[-1]["freezes"] - got[0]["freezes"], round(got[-1]["frozen"] - got[0]["frozen"], 2))
        rows.append(
            f"  hall {NAMES[n]}: {figures[n].row()}; widths {widths}, "
            f"tile {got[-1]['tile'] if got else None}, fits {fitting(hall)}; "
            f"chromium freezes (count, s) {freezes}; link modes in the window "
            f"{[(round(t - start, 1), mode) for t, _, mode in hall.samples.bars if start <= t <= end]}"
        )
    # how much of the window hall B spent on the top layer, and the chair sent it
    b_sizes = window(strong.samples.sizes, start, end)
    b_top = sum(1 for x in b_sizes if x["width"] == sizes()[top][0]) / max(len(b_sizes), 1)
    sent_top = sum(1 for x in published if top in x and x[top]["fps"] > 0) / max(len(published), 1)
    lines.append(
        f"  hall B on {top} {b_top:.0%} of the window; the chair sent {top} in {sent_top:.0%} of its samples"
    )
    lines.append(f"  window end: {window_state}")
    weak, large = figures[WEAK], figures[STRONG]
    checks = {
        "hall A >= 10 fps": weak.fps >= 10,
        "hall A no freeze > 2 s": weak.max_freeze_s <= 2.0,
        "hall A no audio gap > 1 s": weak.max_audio_gap_s <= 1.0,
        "hall B >= 14 fps": large.fps >= 14,
        "hall B on the top layer at the window's end": strong_on_top(),
    }
    # C: the layer that fits its tile, below the top one, through the window.
    small_layer = fitting(halls[SMALL])
    small_widths = {s["width"] for s in window(halls[SMALL].samples.sizes, start, end)}
    checks["hall C's tile wants a lower layer"] = small_layer is not None and small_layer != top
    checks["hall C decodes that layer's width"] = small_layer is not None and small_widths == {
        sizes()[small_layer][0]
    }

    # Paused: hall B's window shrinks; now no hall wants the top layer (A's line cannot carry
    # it, B's and C's tiles are small), and the chair's page stops sending it.
    def top_paused() -> bool:
        layers = last(chair.samples.layers) or {}
        return top in layers and layers[top]["active"] is False

    assert strong.page is not None
    await lab.run_in(STRONG, strong.page.set_viewport_size(TINY_WINDOW))
    shrunk = meeting.now()
    try:
        assert not top_paused(), f"{top} was paused before hall B shrank: {state()}"
        await until(lambda: fitting(strong) != top, 10, "hall B's small tile wants a lower layer", state)
        await until(top_paused, 30, f"the chair's page pauses {top}", state)
        paused_after = meeting.now() - shrunk
        await asyncio.sleep(1.0)  # what was in flight when the encoding stopped
        held = last(chair.samples.layers)[top]["bytes"]
        await asyncio.sleep(3.0)
        paused = last(chair.samples.layers)[top]
        still = paused["active"] is False and paused["bytes"] == held
        checks[f"{top} stays paused, no bytes for 3 s"] = still
        lines.append(f"  {top} paused {paused_after:.1f} s after B shrank: {state()}")

        # Hall B's window grows again: the chair large on a hall TV; the top layer comes back.
        grown = meeting.now()
        await lab.run_in(STRONG, strong.page.set_viewport_size(FULL_SCREEN))
        await until(lambda: not top_paused(), 15, f"the chair's page resumes {top}", state)
        resumed = meeting.now() - grown
        # Whether Chromium then puts bytes on it again is its own estimate's business (see
        # docs/linklab.md): reported, and asserted only as hall B decoding it within 30 s.
        try:
            await until(strong_on_top, 30, "hall B decodes the top layer again", state)
            back = f"hall B on it again {meeting.now() - grown:.1f} s after"
        except AssertionError as exc:
            back = str(exc)
        lines.append(f"  {top} resumed {resumed:.1f} s after B grew; {back}")
        checks[f"B decodes {top} again after the resume"] = strong_on_top()
    except AssertionError as exc:
        failures.append(str(exc))

    failed = [f"  FAILED {what}" for what, ok in checks.items() if not ok]
    report = "\n".join(lines + rows + failed + failures)
    print(report)
    assert all(checks.values()) and not failures, report
