"""The meeting clock: one background task per worker that opens meetings at their start time
(autostart.py) and ends the ones nobody runs any more past their end (autoend.py), then closes
their rooms in this worker's hub (a running recording is finished and registered first).

The clock must outlive anything a tick can raise (a database that refuses connections raises a
bare ``OSError``): a dead clock silently never opens another meeting. Failures back off briefly,
are logged once per streak (``FailureStreak``), and /readyz reports a clock that stopped ticking.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.background import FailureStreak, finish_or_cancel
from server.keys import CLOCK, ROOM_HUB, SESSIONMAKER, SETTINGS
from server.meetings.autoend import end_idle_meetings
from server.meetings.autostart import start_due_meetings

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0
STOP_SECONDS = 10.0  # a tick that takes longer at shutdown is cancelled
# After a failed tick: 1, 2, 3, 3 … s. Capped low so a meeting due during a database outage opens
# within a few seconds of the database coming back.
RETRY_FIRST_SECONDS = 1.0
RETRY_CAP_SECONDS = 3.0


async def tick(app: web.Application) -> None:
    sessionmaker = app[SESSIONMAKER]
    await start_due_meetings(sessionmaker)
    idle_minutes = app[SETTINGS].meeting_idle_end_minutes
    if idle_minutes:
        await end_idle_meetings(sessionmaker, app[ROOM_HUB], dt.timedelta(minutes=idle_minutes))


async def _loop(app: web.Application, stop: asyncio.Event, health: FailureStreak) -> None:
    while not stop.is_set():
        try:
            await tick(app)
        except Exception as exc:  # any failure: the next tick may well succeed
            health.failed(exc)
        else:
            health.succeeded()
        pause = health.backoff(RETRY_FIRST_SECONDS, RETRY_CAP_SECONDS) or TICK_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


async def meeting_clock_ctx(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    health = app[CLOCK] = FailureStreak("the meeting clock", log)
    task = asyncio.get_running_loop().create_task(_loop(app, stop, health), name="meeting-clock")
    yield
    stop.set()  # between ticks, not inside one
    await finish_or_cancel(task, STOP_SECONDS)
