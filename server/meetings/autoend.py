"""A live meeting that nobody runs any more ends by itself, so its record closes (status, attendance,
recording) and the village kiosks that went in by themselves are let go.

Only past its scheduled end, and only once no official (the chair or another invited official)
has been in it for ``idle`` (``MAEUL_MEETING_IDLE_END_MINUTES``): a meeting that runs over while
officials are in it is never cut off, a chair who is late or away for a moment finds it still
open, and kiosks alone do not hold it open (a hall that joined by itself stays until told).
This is how BigBlueButton and Jitsi treat rooms their moderators have left.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import utcnow
from server.meetings import service
from server.meetings.ending import LiveRooms, ending
from server.meetings.models import Attendance, Meeting
from server.meetings.workflow import MeetingStatus

log = logging.getLogger(__name__)


async def officials_last_seen(session: AsyncSession, meeting: Meeting) -> dt.datetime | None:
    """When an official was last in the meeting: None while one is in it now; the start if none
    ever came."""
    present = await session.scalar(
        select(func.count())
        .select_from(Attendance)
        .where(
            Attendance.meeting_id == meeting.id, Attendance.kind == "official", Attendance.left_at.is_(None)
        )
    )
    if present:
        return None
    last_left = await session.scalar(
        select(func.max(Attendance.left_at)).where(
            Attendance.meeting_id == meeting.id, Attendance.kind == "official"
        )
    )
    seen = [t for t in (last_left, meeting.started_at) if t is not None]
    return max(seen) if seen else meeting.starts_at


async def end_idle_meetings(
    sessionmaker: async_sessionmaker[AsyncSession],
    live: LiveRooms,
    idle: dt.timedelta,
    *,
    now: dt.datetime | None = None,
) -> list[int]:
    """End every live meeting past its scheduled end with no official in it for ``idle``, each in a
    transaction of its own, and close its live room after that commit; returns the ids of the
    rooms closed."""
    now = now or utcnow()
    closed: list[int] = []
    for meeting_id in await service.ids_in(sessionmaker, MeetingStatus.LIVE, Meeting.ends_at <= now):
        async with ending(sessionmaker, live) as work:
            meeting = await work.locked(meeting_id, MeetingStatus.LIVE)
            if meeting is None:
                continue
            seen = await officials_last_seen(work.session, meeting)
            if seen is None or now - seen < idle:
                continue
            await work.end_meeting(service.clock_actor(meeting, "idle end"), meeting, now=now)
            log.info(
                "meeting ended by itself: past its end, no official for a while",
                extra={"meeting_id": meeting.id, "idle_s": int((now - seen).total_seconds())},
            )
        closed.extend(work.room_ids)
    return closed
