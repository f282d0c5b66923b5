"""Fixtures for meetings: enrolled kiosks in villages, principals, petitions filed by real services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.meetings import agenda as meeting_agenda
from server.meetings import service as meetings
from server.meetings.models import Meeting
from server.petitions import service as petitions
from server.petitions.deadlines import PetitionType
from server.petitions.workflow import Action
from server.rooms.models import Room
from tests.conftest import World
from tests.kiosk_ref import KioskRef, make_kiosk

# A fixed, far-future Seoul morning: tests never depend on the wall clock.
START = dt.datetime(2030, 3, 5, 10, 0, tzinfo=dt.UTC) - dt.timedelta(hours=9)  # 10:00 KST


def admin_principal(world: World) -> Principal:
    return Principal(role=Role.ADMIN, id=world.admin_id, display_name="관리자")


def official_principal(world: World, *, other: bool = False) -> Principal:
    if other:
        return Principal(
            Role.OFFICIAL, world.other_official_id, "박안전", department_id=world.department_ids[1]
        )
    return Principal(Role.OFFICIAL, world.official_id, "김민원", department_id=world.department_ids[0])


@pytest.fixture
async def kiosk_a(world: World, sessionmaker: Callable[[], AsyncSession]) -> KioskRef:
    return await make_kiosk(sessionmaker, world.village_ids[0], "남성리 마을회관")


@pytest.fixture
async def kiosk_b(world: World, sessionmaker: Callable[[], AsyncSession]) -> KioskRef:
    return await make_kiosk(sessionmaker, world.village_ids[1], "사당리 마을회관")


async def file_petition(
    session: AsyncSession, kiosk: KioskRef, title: str, *, assign_to: Principal | None = None
) -> int:
    """File a petition at the kiosk (routed to the first department); optionally take it in."""
    petition = await petitions.file_petition(
        session,
        kiosk.principal,
        petitions.NewPetition(
            petition_type=PetitionType.GRIEVANCE,
            department_id=assign_to.department_id if assign_to else None,
            title=title,
            body="마을 안길 포장이 깨졌어요.",
            resident_phone="01012345678",
            resident_name="홍길동",
            is_public=False,
        ),
        pin_hash="x",
    )
    if assign_to is not None:
        await petitions.apply_action(
            session,
            assign_to,
            petition,
            petitions.ActionInput(action=Action.ASSIGN, assignee_id=assign_to.id),
        )
    return petition.id


@dataclass(frozen=True)
class LiveMeeting:
    meeting_id: int
    room_id: int
    item_ids: tuple[int, ...]


async def scheduled_meeting(
    session: AsyncSession,
    world: World,
    *,
    title: str = "남성리 주민 회의",
    starts_at: dt.datetime | None = None,
    length: dt.timedelta = dt.timedelta(hours=1),
    villages: tuple[int, ...] = (0,),
    invite_other_official: bool = False,
    lobby_mode: str = "auto_admit",
) -> Meeting:
    """A meeting the admin schedules through the real service: chaired by the official, for the
    villages ``world.village_ids[i]`` (i in ``villages``), from ``starts_at`` (by default a minute
    from now, so it may be started at once) for ``length``."""
    start = starts_at if starts_at is not None else utcnow() + dt.timedelta(minutes=1)
    scheduled = await meetings.schedule_meeting(
        session,
        admin_principal(world),
        meetings.MeetingDraft(
            title=title,
            starts_at=start,
            ends_at=start + length,
            chair_id=world.official_id,
            official_ids=(world.other_official_id,) if invite_other_official else (),
            village_ids=tuple(world.village_ids[i] for i in villages),
            lobby_mode=lobby_mode,
        ),
    )
    return scheduled.meeting


async def live_meeting(
    sessionmaker: Callable[[], AsyncSession],
    world: World,
    *,
    title: str = "남성리 주민 회의",
    villages: tuple[int, ...] = (0,),
    agenda: tuple[str, ...] = (),
    lobby_mode: str = "auto_admit",
    invite_other_official: bool = True,
) -> LiveMeeting:
    """A ``scheduled_meeting`` (by default with the other official invited) with ``agenda``,
    started now."""
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        scheduled = await scheduled_meeting(
            session,
            world,
            title=title,
            villages=villages,
            invite_other_official=invite_other_official,
            lobby_mode=lobby_mode,
        )
        meeting = await meetings.get_meeting(session, scheduled.id)
        items = [(await meeting_agenda.add_agenda_item(session, meeting, t)).id for t in agenda]
        meeting = await meetings.start_meeting(session, admin_principal(world), meeting)
        assert meeting.room_id is not None
        return LiveMeeting(meeting.id, meeting.room_id, tuple(items))


class RoomsClosedAfterCommit:
    """The live side of ``ending``: it records each room it is told to close, and what another
    session sees of that room and its meeting at that moment, so a test shows the close came after
    the commit (a close before it would see the meeting still live and the room open)."""

    def __init__(self, sessionmaker: Callable[[], AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.closed: list[tuple[int, str | None, bool]] = []  # (room id, meeting status, room closed)

    async def close_room(self, room_id: int) -> None:
        async with transaction(self.sessionmaker) as session:  # type: ignore[arg-type]
            meeting = await meetings.meeting_for_room(session, room_id)
            room = await session.get(Room, room_id)
            assert room is not None
            status = None if meeting is None else str(meeting.status)
            self.closed.append((room_id, status, room.closed_at is not None))
