"""The meeting clock on SQLite and PostgreSQL: meetings open at their start time, and a live meeting
ends by itself only past its scheduled end once no official has been in it for the idle time —
closing its attendance and room as the chair's "end for all" would. Times are passed in, so nothing
depends on the wall clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from server.db import transaction
from server.meetings import attendance as meeting_attendance
from server.meetings import service
from server.meetings.autoend import end_idle_meetings
from server.meetings.autostart import start_due_meetings
from server.meetings.workflow import MeetingStatus
from server.rooms.models import Room
from tests.conftest import World
from tests.meetings.conftest import (
    START,
    KioskRef,
    RoomsClosedAfterCommit,
    official_principal,
    scheduled_meeting,
)

Maker = Callable[[], AsyncSession]
IDLE = dt.timedelta(minutes=15)
END = START + dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)


async def started_meeting(sessionmaker: Maker, world: World) -> int:
    """A meeting from START to END for the first village, opened by the clock at START."""
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        meeting_id = (await scheduled_meeting(session, world, starts_at=START)).id
    assert await start_due_meetings(sessionmaker, now=START - MINUTE) == []  # type: ignore[arg-type]
    assert await start_due_meetings(sessionmaker, now=START) == [meeting_id]  # type: ignore[arg-type]
    assert await start_due_meetings(sessionmaker, now=START + MINUTE) == []  # type: ignore[arg-type]
    return meeting_id


async def status_of(sessionmaker: Maker, meeting_id: int) -> tuple[str, int | None]:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        meeting = await service.get_meeting(session, meeting_id)
        return meeting.status, meeting.room_id


async def join(sessionmaker: Maker, meeting_id: int, principal: object, at: dt.datetime) -> None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await meeting_attendance.record_join(session, meeting_id, principal, at=at)  # type: ignore[arg-type]


async def leave(sessionmaker: Maker, meeting_id: int, principal: object, at: dt.datetime) -> None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        await meeting_attendance.record_leave(session, meeting_id, principal, at=at)  # type: ignore[arg-type]


async def test_ends_only_past_its_end_once_no_official_was_in_it_for_the_idle_time(
    world: World, sessionmaker: Maker, kiosk_a: KioskRef
) -> None:
    meeting_id = await started_meeting(sessionmaker, world)
    chair = official_principal(world)
    await join(sessionmaker, meeting_id, chair, START + MINUTE)
    await join(sessionmaker, meeting_id, kiosk_a.principal, START + MINUTE)
    await leave(sessionmaker, meeting_id, chair, START + 10 * MINUTE)  # the chair closed the browser

    live = RoomsClosedAfterCommit(sessionmaker)

    async def end_at(now: dt.datetime) -> list[int]:
        return await end_idle_meetings(sessionmaker, live, IDLE, now=now)  # type: ignore[arg-type]

    # Long idle, but before the scheduled end: a late or returning chair finds it open.
    assert await end_at(END - MINUTE) == []
    # Past the end, the chair back in the room: the meeting runs over, never cut off.
    await join(sessionmaker, meeting_id, chair, END - MINUTE)
    assert await end_at(END + 3 * 60 * MINUTE) == []
    # The chair leaves; the hall that joined by itself does not hold the meeting open.
    await leave(sessionmaker, meeting_id, chair, END + 5 * MINUTE)
    assert await end_at(END + 19 * MINUTE) == []
    status, room_id = await status_of(sessionmaker, meeting_id)
    assert status == MeetingStatus.LIVE
    now = END + 20 * MINUTE
    assert await end_at(now) == [room_id]
    assert await end_at(now + MINUTE) == []  # once

    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        meeting = await service.get_meeting(session, meeting_id)
        assert meeting.status == MeetingStatus.ENDED
        assert meeting.ended_at is not None and meeting.ended_at.replace(tzinfo=dt.UTC) == now
        room = await session.get(Room, room_id)
        assert room is not None and room.closed_at is not None
        presences = await meeting_attendance.attendance_of(session, meeting_id)
        hall = [p for p in presences if p.kind == "kiosk"]
        assert len(hall) == 1 and hall[0].left_at is not None
        assert hall[0].left_at.replace(tzinfo=dt.UTC) == now  # the hall's presence closed at the end


async def test_a_meeting_no_official_ever_joined_ends_after_its_end(
    world: World, sessionmaker: Maker
) -> None:
    meeting_id = await started_meeting(sessionmaker, world)
    live = RoomsClosedAfterCommit(sessionmaker)
    assert await end_idle_meetings(sessionmaker, live, IDLE, now=END - MINUTE) == []  # type: ignore[arg-type]
    _, room_id = await status_of(sessionmaker, meeting_id)
    # An hour with nobody to chair it: it ends at its scheduled end.
    assert await end_idle_meetings(sessionmaker, live, IDLE, now=END) == [room_id]  # type: ignore[arg-type]
    assert live.closed == [(room_id, MeetingStatus.ENDED, True)]  # its live room, after the commit
    assert (await status_of(sessionmaker, meeting_id))[0] == MeetingStatus.ENDED


async def test_scheduled_ended_and_cancelled_meetings_are_left_alone(
    world: World, sessionmaker: Maker
) -> None:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        waiting = (await scheduled_meeting(session, world, starts_at=START)).id
    # Never started (e.g. the clock was down): not ended, and not started once its end has passed.
    later = END + 60 * MINUTE
    live = RoomsClosedAfterCommit(sessionmaker)
    assert await end_idle_meetings(sessionmaker, live, IDLE, now=later) == []  # type: ignore[arg-type]
    assert await start_due_meetings(sessionmaker, now=later) == []  # type: ignore[arg-type]
    assert (await status_of(sessionmaker, waiting))[0] == MeetingStatus.SCHEDULED
