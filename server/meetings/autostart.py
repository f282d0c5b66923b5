"""Meetings open by themselves at their start time, so village kiosks (which join live meetings of
their village by themselves, or with one touch) are there when the chair arrives. The chair can
still open a meeting earlier (the ``start`` transition).

The meeting clock (clock.py) checks every few seconds; each due meeting is started under a row
lock after re-reading its status, so two workers never start it twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import utcnow
from server.meetings import service
from server.meetings.models import Meeting
from server.meetings.workflow import MeetingStatus

log = logging.getLogger(__name__)


async def start_due_meetings(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: dt.datetime | None = None
) -> list[int]:
    """Start every scheduled meeting whose start time has come and whose end has not; returns
    their ids."""
    now = now or utcnow()
    started: list[int] = []
    due = (Meeting.starts_at <= now, Meeting.ends_at > now)
    async for session, meeting in service.each_locked(sessionmaker, MeetingStatus.SCHEDULED, *due):
        await service.start_meeting(
            session, service.clock_actor(meeting, "scheduled start"), meeting, now=now
        )
        started.append(meeting.id)
        log.info("meeting started at its start time", extra={"meeting_id": meeting.id})
    return started
