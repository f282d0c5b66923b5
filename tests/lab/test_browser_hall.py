"""Issue #7 with the Chromium kiosk page as the hall (the browser's own WebRTC stack, not aiortc):
300 kbit/s each way with 5 % loss, measured from the page's getStats and at the chair."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.lab.browser_hall import BrowserHall
from tests.lab.scenario import MeetingLab

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


async def test_chromium_kiosk_page_at_300kbit_with_5pct_loss(tmp_path: Path) -> None:
    async with MeetingLab(tmp_path, browser_halls={1}) as meeting:
        assert meeting.seed is not None
        hall = BrowserHall(meeting.base_url, meeting.seed.kiosk_tokens[1], meeting.seed.room_id)
        pid = f"k{meeting.seed.kiosk_ids[1]}"
        await meeting.lab.run_in(1, hall.start())
        try:
            deadline = time.monotonic() + 60
            while not (
                meeting.status("chair").get("frames", {}).get(f"{pid}/video", 0) >= 10
                and len(hall.samples.video) >= 5
            ):
                assert time.monotonic() < deadline, (
                    f"the kiosk page and the chair never exchanged media: page decoded "
                    f"{len(hall.samples.video)} video samples, chair {meeting.status('chair')}"
                )
                await asyncio.sleep(0.25)
            meeting.lab.shape(1, kbit=300, loss_pct=5)
            start = meeting.now()
            await asyncio.sleep(30)
            end = meeting.now()
            page = hall.receives(start, end)
        finally:
            await meeting.lab.run_in(1, hall.close())
        records = await meeting.finish()
    chair = records.chair_receives(start, end)
    away = sorted(set(records.chair_saw_hall_away(start, end)))
    report = (
        f"Chromium hall, 300 kbit/s 5 %: page receives [{page.row()}]; "
        f"chair receives [{chair.row()}]; chair saw hall={away}"
    )
    print(report)
    assert not away, report
    for received in (page, chair):
        assert received.max_audio_gap_s <= 1.0, report
        assert received.fps >= 10, report
        assert received.max_freeze_s <= 2.0, report
