"""Weak rural links (issue #7): a hall in a meeting over 1 Mbit/s, 300 kbit/s and 150 kbit/s
links (each way) with 0 / 5 / 10 % loss (each way), measured at both ends.

Run it inside a network namespace (like the tests; it builds its own namespaces from there)::

    cd /work/main && unshare -n sh -c 'ip link set lo up && .venv/bin/python tests/bench/link_bench.py'

Each cell is a fresh meeting in the link lab (tests/lab/scenario.py): the real server and the
chair (an aiortc official) in the county namespace, the real headless kiosk in a hall namespace.
Media first flows unshaped, then the link is shaped and the cell's window starts at once (so the
adaptation period is part of the figure). Per direction: delivered fps (decoded frames per
second), longest freeze (longest interval without a decoded frame), longest gap between decoded
audio frames, mouth-to-ear delay (median, loud bursts in a quiet tone, send → decode, one clock),
and whether the call dropped (a new peer connection, a failed one, or the chair seeing the hall
anything but connected). The RESULT lines are for the 300 kbit/s / 5 % cell.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab.scenario import MeetingLab  # noqa: E402

RATES = (1000, 300, 150)
LOSSES = (0, 5, 10)
KEY_CELL = (300, 5)


async def run_cell(kbit: int, loss: int, seconds: float, workdir: Path) -> dict[str, Any]:
    async with MeetingLab(workdir) as meeting:
        await meeting.wait_media()
        meeting.lab.shape(1, kbit=kbit, loss_pct=loss)
        start = meeting.now()
        await asyncio.sleep(seconds)
        end = meeting.now()
        records = await meeting.finish()
    return {
        "kbit": kbit,
        "loss_pct": loss,
        "seconds": round(end - start, 1),
        "hall_receives": asdict(records.hall_receives(start, end)),
        "chair_receives": asdict(records.chair_receives(start, end)),
        "dropped": records.dropped(start, end),
        "rejoins": records.hall_rejoins(start, end),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def table(cells: list[dict[str, Any]]) -> str:
    head = (
        "| link (each way) | loss | hall ← chair fps | freeze s | audio gap s | m2e ms "
        "| chair ← hall fps | freeze s | audio gap s | m2e ms | dropped |"
    )
    lines = [head, "|" + "---|" * 11]
    for cell in cells:
        row = [f"{cell['kbit']} kbit/s", f"{cell['loss_pct']} %"]
        for side in ("hall_receives", "chair_receives"):
            d = cell[side]
            row += [
                f"{d['fps']:.1f}",
                f"{d['max_freeze_s']:.2f}",
                f"{d['max_audio_gap_s']:.2f}",
                _ms(d["mouth_to_ear_s"]),
            ]
        row.append("yes" if cell["dropped"] else "no")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    seconds = args.seconds if args.seconds is not None else (12.0 if args.quick else 30.0)
    wanted = [(k, loss) for k in RATES for loss in LOSSES]
    if args.cells:
        wanted = [(int(c.split("/")[0]), int(c.split("/")[1])) for c in args.cells.split(",")]
    cells: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="link-bench-") as tmp:
        for kbit, loss in wanted:
            cell = await run_cell(kbit, loss, seconds, Path(tmp) / f"{kbit}-{loss}")
            cells.append(cell)
            h, c = cell["hall_receives"], cell["chair_receives"]
            print(
                f"{kbit:5d} kbit/s {loss:2d} %: hall←chair {h['fps']:.1f} fps "
                f"freeze {h['max_freeze_s']:.2f} s "
                f"audio gap {h['max_audio_gap_s']:.2f} s m2e {_ms(h['mouth_to_ear_s'])} ms | "
                f"chair←hall {c['fps']:.1f} fps freeze {c['max_freeze_s']:.2f} s "
                f"audio gap {c['max_audio_gap_s']:.2f} s m2e {_ms(c['mouth_to_ear_s'])} ms | "
                f"dropped {'yes' if cell['dropped'] else 'no'}",
                flush=True,
            )
    print()
    print(f"{seconds:g} s per cell, window starts when the link is shaped")
    print(table(cells))
    if args.json:
        args.json.write_text(json.dumps(cells, indent=2))
    key = next((c for c in cells if (c["kbit"], c["loss_pct"]) == KEY_CELL), None)
    if key is not None:
        sides = (key["hall_receives"], key["chair_receives"])
        print(f"RESULT weak_link_min_fps={min(s['fps'] for s in sides):.1f}")
        print(f"RESULT weak_link_max_freeze_s={max(s['max_freeze_s'] for s in sides):.2f}")
        print(f"RESULT weak_link_max_audio_gap_s={max(s['max_audio_gap_s'] for s in sides):.2f}")
        m2e = [s["mouth_to_ear_s"] for s in sides if s["mouth_to_ear_s"] is not None]
        if m2e:
            print(f"RESULT weak_link_mouth_to_ear_ms={max(m2e) * 1000:.0f}")
        print(f"RESULT weak_link_dropped={'yes' if key['dropped'] else 'no'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="12 s cells instead of 30 s")
    parser.add_argument("--seconds", type=float, help="window per cell (default 30, --quick 12)")
    parser.add_argument("--cells", help="only these cells, e.g. 300/5,150/0 (kbit/loss %%)")
    parser.add_argument("--json", type=Path, help="also write all cells to this file")
    sys.exit(asyncio.run(main(parser.parse_args())))
