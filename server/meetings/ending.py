"""Ending a meeting (or closing a room) and then closing its live room: the one place that does it.

The order matters and is the same for every caller (the chair's or an administrator's transition,
the meeting clock, the chair's "end for everybody", an administrator closing a room):

1. in one transaction the meeting ends (status, attendance) and its room is marked closed;
2. the transaction commits;
3. only then is the live room closed in this worker's hub: a running recording is finished and
   registered (it needs the meeting ended in the database to file the record), then everybody
   still in the room is told ``room_closed`` and disconnected.

Closing the live room before the commit would tell the pages the meeting is over while a failed
commit leaves it live; a failed body (any exception) closes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.roles import Principal
from server.db import transaction
from server.meetings import service
from server.meetings.models import Meeting
from server.meetings.workflow import MeetingStatus
from server.rooms import service as rooms
from server.rooms.models import Room


class LiveRooms(Protocol):
    """What ending needs of the live side (the hub): close one room after the commit."""

    async def close_room(self, room_id: int) -> None: ...


class Ending:
    """The work inside one ``ending`` transaction; it remembers which live rooms to close."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.room_ids: list[int] = []

    async def locked(self, meeting_id: int, status: MeetingStatus) -> Meeting | None:
        """The meeting, locked and re-read; None if it left ``status`` meanwhile (by hand, or by
        another worker's clock)."""
        return await service.get_locked_in(self.session, meeting_id, status)

    async def end_meeting(
        self, actor: Principal, meeting: Meeting, *, now: dt.datetime | None = None
    ) -> Meeting:
        """live → ended (``service.end_meeting``); its live room closes after the commit."""
        await service.end_meeting(self.session, actor, meeting, now=now)
        if meeting.room_id is not None:
            self.room_ids.append(meeting.room_id)
        return meeting

    async def close_room(self, room_id: int, actor: Principal) -> Room:
        """Close a room (an administrator's "close"); its live room closes after the commit."""
        room = await rooms.close_room(self.session, room_id, actor)
        self.room_ids.append(room.id)
        return room


@contextlib.asynccontextmanager
async def ending(sessionmaker: async_sessionmaker[AsyncSession], live: LiveRooms) -> AsyncIterator[Ending]:
    """A transaction in which meetings may end (``Ending.end_meeting``) or rooms close; after it
    commits, their live rooms are closed in ``live``, in the order they ended."""
    async with transaction(sessionmaker) as session:
        work = Ending(session)
        yield work
    for room_id in work.room_ids:
        await live.close_room(room_id)
