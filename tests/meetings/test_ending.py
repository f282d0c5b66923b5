"""``meetings/ending.py`` on SQLite and PostgreSQL: the one way a meeting ends (or a room closes) and
its live room is closed. The live room closes only after the commit, so what it sees (here: another
session reading the database) is the meeting ended and the room closed; a body that fails closes
nothing and leaves the meeting live."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import transaction, utcnow
from server.meetings import service
from server.meetings.autoend import end_idle_meetings
from server.meetings.ending import ending
from server.meetings.workflow import MeetingStatus
from server.rooms import service as rooms
from tests.conftest import World
from tests.meetings.conftest import (
    RoomsClosedAfterCommit,
    admin_principal,
    live_meeting,
    official_principal,
)

Maker = Callable[[], AsyncSession]


async def _live(sessionmaker: Maker, world: World) -> tuple[int, int]:
    live = await live_meeting(sessionmaker, world)
    return live.meeting_id, live.room_id


async def test_the_live_room_closes_after_the_meeting_ended_is_committed(
    world: World, sessionmaker: Maker
) -> None:
    meeting_id, room_id = await _live(sessionmaker, world)
    live = RoomsClosedAfterCommit(sessionmaker)
    async with ending(sessionmaker, live) as work:  # type: ignore[arg-type]
        meeting = await service.get_meeting(work.session, meeting_id, lock=True)
        await work.end_meeting(official_principal(world), meeting)
        assert live.closed == []  # nothing is closed before the commit
    assert live.closed == [(room_id, MeetingStatus.ENDED, True)]


async def test_a_failed_body_closes_no_live_room_and_the_meeting_stays_live(
    world: World, sessionmaker: Maker
) -> None:
    meeting_id, _ = await _live(sessionmaker, world)
    live = RoomsClosedAfterCommit(sessionmaker)
    with pytest.raises(RuntimeError):
        async with ending(sessionmaker, live) as work:  # type: ignore[arg-type]
            meeting = await service.get_meeting(work.session, meeting_id, lock=True)
            await work.end_meeting(official_principal(world), meeting)
            raise RuntimeError("the commit never comes")
    assert live.closed == []
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert (await service.get_meeting(session, meeting_id)).status == MeetingStatus.LIVE


async def test_closing_a_room_by_hand_closes_its_live_room_after_the_commit(
    world: World, sessionmaker: Maker
) -> None:
    meeting_id, room_id = await _live(sessionmaker, world)
    live = RoomsClosedAfterCommit(sessionmaker)
    async with ending(sessionmaker, live) as work:  # type: ignore[arg-type]
        await work.close_room(room_id, admin_principal(world))
    # The room is closed, the meeting itself untouched (as an administrator's "close room" did).
    assert live.closed == [(room_id, MeetingStatus.LIVE, True)]
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        assert (await rooms.get_room(session, room_id)).closed_at is not None


async def test_the_clock_closes_each_idle_meetings_live_room_after_its_commit(
    world: World, sessionmaker: Maker
) -> None:
    meeting_id, room_id = await _live(sessionmaker, world)
    live = RoomsClosedAfterCommit(sessionmaker)
    end = utcnow() + dt.timedelta(hours=2)  # past its end, nobody in it
    assert await end_idle_meetings(sessionmaker, live, dt.timedelta(minutes=15), now=end) == [room_id]  # type: ignore[arg-type]
    assert live.closed == [(room_id, MeetingStatus.ENDED, True)]
    # A second tick finds nothing live: nothing more is closed.
    assert await end_idle_meetings(sessionmaker, live, dt.timedelta(minutes=15), now=end) == []  # type: ignore[arg-type]
    assert live.closed == [(room_id, MeetingStatus.ENDED, True)]
