"""A restart is on the record, and the halls come straight back: the real server process is
stopped (SIGTERM) or killed (SIGKILL) while a headless kiosk (aiortc) and the Chromium kiosk page
are in a live meeting, and started again a second later.

Both kiosks get their media back by themselves; the seconds from the restarted server answering
/healthz to media flowing again are printed (``RESULT restart_to_media_s=…``, target ≤ 3 s, not
asserted: the machine is shared). The attendance record shows the outage as a gap with an
interruption for each hall, ending at the last time its media was seen before the stop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kiosk.headless import HeadlessKiosk
from kiosk.media import open_source
from server.auth.models import Account
from server.db import close_engine, create_engine, make_sessionmaker, transaction, utcnow
from server.meetings import attendance as meeting_attendance
from server.meetings.models import Attendance
from tests.lab.browser_hall import BrowserHall
from tests.meetings.conftest import live_meeting
from tests.petitions.live import LiveServer, prepare
from tests.world_seed import World

pytestmark = [pytest.mark.network, pytest.mark.e2e]

DOWN_SECONDS = 1.0


def in_thread(work: Callable[[], Any]) -> Any:
    """Run ``work`` (it may call asyncio.run) off the test's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


async def _start_meeting(server: LiveServer) -> tuple[int, int]:
    engine = create_engine(server.database_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with transaction(sessionmaker) as session:
            ids = {a.username: a.id for a in (await session.scalars(select(Account))).all()}
        world = World(
            admin_id=ids["admin"],
            official_id=ids["official"],
            other_official_id=ids["official2"],
            village_ids=server.seeded.village_ids,
            department_ids=server.seeded.department_ids,
        )
        live = await live_meeting(sessionmaker, world, title="재시작 회의", invite_other_official=False)
        return live.meeting_id, live.room_id
    finally:
        await close_engine(engine)


async def _presences(server: LiveServer, meeting_id: int) -> tuple[list[Attendance], list[Any]]:
    engine = create_engine(server.database_url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            rows = list(await meeting_attendance.attendance_of(session, meeting_id))
        return rows, meeting_attendance.attendance_totals(rows, until=utcnow())
    finally:
        await close_engine(engine)


def received(kiosk: HeadlessKiosk) -> int:
    return sum(kiosk.stats.frames_received.values())


async def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until ``check()``; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_kiosks_come_back_and_the_record_shows_the_restart(tmp_path: Path, how: signal.Signals) -> None:
    server = in_thread(lambda: prepare(tmp_path, extra_kiosks=1))
    meeting_id, room_id = await _start_meeting(server)
    in_thread(server.start)
    headless = HeadlessKiosk(
        server.base_url,
        server.seeded.kiosk_token,
        lambda: open_source("testsrc"),
        host_addresses=["127.0.0.1"],
        poll_interval=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(headless.run(stop))
    hall = BrowserHall(server.base_url, server.seeded.extra_kiosk_tokens[0], room_id)
    try:
        await hall.start()
        # Both halls get each other's media through the SFU.
        await until(lambda: received(headless) > 30 and len(hall.samples.video) > 5, 90, "media flows")
        await asyncio.sleep(4)  # long enough for a "last seen" mark or two
        stopped_at = utcnow()
        assert server.process is not None
        signalled = time.monotonic()
        server.process.send_signal(how)
        exit_code = await asyncio.to_thread(server.process.wait, 30)
        stopped = time.monotonic()
        server.process = None
        if how is signal.SIGTERM:
            assert exit_code == 0
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(server.start)  # returns once /healthz answers 200
        healthy = time.monotonic()
        frames_then, video_then = received(headless), len(hall.samples.video)
        headless_back = await until(lambda: received(headless) > frames_then + 10, 60, "headless media back")
        page_back = await until(
            lambda: any(t > healthy for t in hall.samples.video[video_then:]), 60, "page media back"
        )
        back = {"headless": headless_back - healthy, "chromium": page_back - healthy}
        print(
            f"RESULT restart_to_media_s={max(back.values()):.2f} signal={how.name} "
            f"headless={back['headless']:.2f} chromium={back['chromium']:.2f} "
            f"exit_s={stopped - signalled:.2f} down_s={healthy - signalled:.2f}"
        )
        await asyncio.sleep(2)
        rows, totals = await _presences(server, meeting_id)
    finally:
        stop.set()
        await hall.close()
        await asyncio.wait_for(task, 30)
        await asyncio.to_thread(server.stop)
    kiosks = [t for t in totals if t.kind == "kiosk"]
    assert len(kiosks) == 2, totals
    for total in kiosks:
        # The outage is a gap on the record, and an interruption.
        assert total.interruptions >= 1, total
        assert total.gap_seconds >= DOWN_SECONDS - 1, total
    for row in rows:
        # Each interval the old process left open ended at (about) the last time media was seen:
        # never after the stop, and no earlier than a few "last seen" marks before it.
        ends = [dt.datetime.fromisoformat(gap[0]) for gap in row.gaps]
        if row.left_at is not None:
            ends.append(row.left_at)
        assert ends, row
        first_end = min(ends)
        assert stopped_at - dt.timedelta(seconds=8) <= first_end <= stopped_at + dt.timedelta(seconds=5)
