"""The meeting clock: one background task per worker that opens meetings at their start time
(autostart.py) and ends the ones nobody runs any more past their end (autoend.py), then closes
their rooms in this worker's hub (a running recording is finished and registered first)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from server.background import finish_or_cancel
from server.errors import MaeulError
from server.keys import MEETINGS, SESSIONMAKER, SETTINGS
from server.meetings.autoend import end_idle_meetings
from server.meetings.autostart import start_due_meetings

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0
STOP_SECONDS = 10.0  # a tick that takes longer at shutdown is cancelled


async def tick(app: web.Application) -> None:
    sessionmaker = app[SESSIONMAKER]
    await start_due_meetings(sessionmaker)
    idle_minutes = app[SETTINGS].meeting_idle_end_minutes
    if idle_minutes:
        for room_id in await end_idle_meetings(sessionmaker, dt.timedelta(minutes=idle_minutes)):
            await app[MEETINGS].close_room(room_id)


async def _loop(app: web.Application, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await tick(app)
        except (SQLAlchemyError, MaeulError):
            log.exception("the meeting clock failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_SECONDS)


async def meeting_clock_ctx(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(_loop(app, stop), name="meeting-clock")
    yield
    stop.set()  # between ticks, not inside one
    await finish_or_cancel(task, STOP_SECONDS)
