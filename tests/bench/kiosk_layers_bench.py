"""Kiosks: one layer or two? (issue 18 item 1: "Kiosks publish one layer, or two where their uplink
allows. Decide by measurement and say which.")

In the link lab (tests/lab/linklab.py: every node its own network namespace, tc on each hall's
link), with Chromium pages everywhere, as tests/lab/test_simulcast_halls.py:

- **hall K**, the kiosk that speaks: its page publishes its 640x360 camera as one layer (today's
  kiosk) or as two (``?layers=2``: q 320x180 at 150 kbit/s and h 640x360 at 500 kbit/s, the
  room page's ``KIOSK_ENCODINGS``); its *uplink* is shaped (``--uplinks``, kbit/s);
- **the chair**, an official's room page in the county, unshaped, 1280x720: it shows K in its
  main tile and wants h;
- **hall W**, a kiosk page whose *downlink* is 300 kbit/s, full screen, showing K.

Both halls' other media is off except K's camera and microphone (K is the one talker). After
everyone decodes K and ``--settle`` seconds, ``--window`` seconds are measured from the pages'
own getStats. Printed per case (``<n>l`` one or two layers, ``up<kbit>`` the uplink)::

    RESULT kiosk_<n>l_up<kbit>_chair_width=     width the chair decodes K at (the window's end)
    RESULT kiosk_<n>l_up<kbit>_chair_fps=       frames the chair decoded per second
    RESULT kiosk_<n>l_up<kbit>_chair_max_freeze_s=
    RESULT kiosk_<n>l_up<kbit>_chair_kbps=       K's video as the chair receives it (RTP, kbit/s)
    RESULT kiosk_<n>l_up<kbit>_chair_qp=         its mean VP8 quantizer (qpSum / frames: lower is
                                                 a finer picture at the same size)
    RESULT kiosk_<n>l_up<kbit>_weak_fps=        the same for hall W (300 kbit/s)
    RESULT kiosk_<n>l_up<kbit>_weak_max_freeze_s=
    RESULT kiosk_<n>l_up<kbit>_weak_kbps=, _weak_qp=, _weak_width=
    RESULT kiosk_<n>l_up<kbit>_uplink_kbps=     what K's video put on its uplink (RTP, every layer)
    # ... K's encoder limits (Chromium's qualityLimitationReason) and the load average

Run it in a namespace of its own (the lab makes its own inside)::

    cd /work/main && unshare -rn sh -c \
        'ip link set lo up && .venv/bin/python tests/bench/kiosk_layers_bench.py'

One case takes about 1.5-2 minutes (four browsers joining, settling, the window).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab.browser_hall import BrowserHall, BrowserOfficial  # noqa: E402
from tests.lab.linklab import COUNTY  # noqa: E402
from tests.lab.scenario import OFFICIAL, MeetingLab  # noqa: E402
from tests.lab.test_simulcast_halls import FULL_SCREEN, last, until, window  # noqa: E402

KIOSK, WEAK = 1, 2
WEAK_DOWN_KBIT = 300


async def case(layers: int, uplink: int, settle: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kiosk-layers-") as tmp:
        async with MeetingLab(Path(tmp), halls=2, browser_halls={KIOSK, WEAK}, aiortc_chair=False) as meeting:
            seed, lab = meeting.seed, meeting.lab
            assert seed is not None
            kiosk_id = f"k{seed.kiosk_ids[KIOSK]}"
            lab.shape(KIOSK, up_kbit=uplink)
            lab.shape(WEAK, down_kbit=WEAK_DOWN_KBIT)
            chair = BrowserOfficial(
                meeting.base_url,
                OFFICIAL,
                seed.password,
                seed.room_id,
                publisher=kiosk_id,
                viewport=FULL_SCREEN,
            )
            kiosk = BrowserHall(
                meeting.base_url,
                seed.kiosk_tokens[KIOSK],
                seed.room_id,
                query="?layers=2" if layers == 2 else "",
            )
            weak = BrowserHall(
                meeting.base_url,
                seed.kiosk_tokens[WEAK],
                seed.room_id,
                publisher=kiosk_id,
                viewport=FULL_SCREEN,
            )
            started: list[tuple[str | int, BrowserHall]] = []
            try:
                for node, page in ((COUNTY, chair), (KIOSK, kiosk), (WEAK, weak)):
                    await lab.run_in(node, page.start())
                    started.append((node, page))
                return await measure(meeting, chair, kiosk, weak, settle, seconds)
            finally:
                for node, page in started:
                    await lab.run_in(node, page.close())


async def measure(
    meeting: MeetingLab,
    chair: BrowserHall,
    kiosk: BrowserHall,
    weak: BrowserHall,
    settle: float,
    seconds: float,
) -> dict[str, float]:
    lab = meeting.lab

    def state() -> str:
        sends = last(kiosk.samples.layers)
        return f"chair {last(chair.samples.sizes)}, weak {last(weak.samples.sizes)}, kiosk sends {sends}"

    await until(
        lambda: len(chair.samples.video) >= 5 and len(weak.samples.video) >= 5,
        90,
        "both decode the kiosk",
        state,
    )
    for node, page in ((COUNTY, chair), (WEAK, weak)):
        assert page.page is not None
        for button in ("mic", "camera"):
            await lab.run_in(node, page.page.click(f'[data-action="{button}"]'))
    await asyncio.sleep(settle)
    start = meeting.now()
    await asyncio.sleep(seconds)
    end = meeting.now()
    seen = chair.receives(start, end), weak.receives(start, end)
    sent = [(t, n) for t, n, _ in kiosk.samples.sent_video if start <= t <= end]
    limits = Counter(limit for t, _, limit in kiosk.samples.sent_video if start <= t <= end)
    uplink = (sent[-1][1] - sent[0][1]) * 8 / 1000 / (sent[-1][0] - sent[0][0]) if len(sent) > 1 else 0.0
    chair_size = last(chair.samples.sizes) or {}
    chair_rate, weak_rate = received(chair, start, end), received(weak, start, end)
    weak_widths = sorted({s["width"] for s in window(weak.samples.sizes, start, end)})
    chair_widths = sorted({s["width"] for s in window(chair.samples.sizes, start, end)})
    print(
        f"# kiosk sends {last(kiosk.samples.layers) or '(one layer)'}; its encoder limited "
        f"{dict(limits)} of {len(sent)} samples; chair decoded widths {chair_widths}, tile "
        f"{chair_size.get('tile')}; weak hall widths {weak_widths}; load {os.getloadavg()}",
        flush=True,
    )
    return {
        "chair_width": float(chair_size.get("width", 0)),
        "chair_fps": seen[0].fps,
        "chair_max_freeze_s": seen[0].max_freeze_s,
        "chair_kbps": chair_rate[0],
        "chair_qp": chair_rate[1],
        "weak_fps": seen[1].fps,
        "weak_max_freeze_s": seen[1].max_freeze_s,
        "weak_kbps": weak_rate[0],
        "weak_qp": weak_rate[1],
        "weak_width": float((last(weak.samples.sizes) or {}).get("width", 0)),
        "uplink_kbps": uplink,
    }


def received(page: BrowserHall, start: float, end: float) -> tuple[float, float]:
    """(kbit/s, mean quantizer) of the watched publisher's video the page received in the window."""
    got = [(t, s) for t, s in page.samples.sizes if start <= t <= end and "bytes" in s]
    if len(got) < 2:
        return 0.0, 0.0
    (t0, a), (t1, b) = got[0], got[-1]
    frames = b["decoded"] - a["decoded"]
    kbps = (b["bytes"] - a["bytes"]) * 8 / 1000 / (t1 - t0) if t1 > t0 else 0.0
    return kbps, (b["qpSum"] - a["qpSum"]) / frames if frames > 0 else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uplinks", default="1000,400", help="the kiosk's uplinks to try (kbit/s)")
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=40.0)
    args = parser.parse_args()
    for uplink in (int(u) for u in args.uplinks.split(",")):
        for layers in (1, 2):
            figures = await case(layers, uplink, args.settle, args.window)
            for name, value in figures.items():
                print(f"RESULT kiosk_{layers}l_up{uplink}_{name}={value:.2f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
