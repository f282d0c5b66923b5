"""Meetings open by themselves at their start time, so village kiosks (which join live meetings of
their village by themselves, or with one touch) are there when the chair arrives. The chair can
still open a meeting earlier (the ``start`` transition).

The meeting clock (clock.py) checks every few seconds; each due meeting is started under a row
lock after re-reading its status, so two workers never start it twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.meetings import service
from server.meetings.models import Meeting

log = logging.getLogger(__name__)


def clock_actor(meeting: Meeting, what: str) -> Principal:
    """Who a start or end by the clock acts as: the meeting's chair (the room is theirs to run)."""
    return Principal(role=Role.OFFICIAL, id=meeting.chair_id, display_name=what)


async def start_due_meetings(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: dt.datetime | None = None
) -> list[int]:
    """Start every scheduled meeting whose start time has come and whose end has not; returns
    their ids."""
    now = now or utcnow()
    async with transaction(sessionmaker) as session:
        due = (
            await session.scalars(
                select(Meeting.id).where(
                    Meeting.status == service.SCHEDULED, Meeting.starts_at <= now, Meeting.ends_at > now
                )
            )
        ).all()
    started: list[int] = []
    for meeting_id in due:
        async with transaction(sessionmaker) as session:
            meeting = await service.get_meeting(session, meeting_id, lock=True)
            if meeting.status != service.SCHEDULED:
                continue  # started by hand (or by another worker) meanwhile
            await service.start_meeting(session, clock_actor(meeting, "scheduled start"), meeting, now=now)
            started.append(meeting_id)
            log.info("meeting started at its start time", extra={"meeting_id": meeting_id})
    return started
