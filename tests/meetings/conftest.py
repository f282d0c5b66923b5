"""Fixtures for meetings: enrolled kiosks in villages, principals, petitions filed by real services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.kiosks import service as kiosks
from server.meetings import service as meetings
from server.petitions import service as petitions
from server.petitions.deadlines import PetitionType
from server.petitions.workflow import Action
from tests.conftest import World

# A fixed, far-future Seoul morning: tests never depend on the wall clock.
START = dt.datetime(2030, 3, 5, 10, 0, tzinfo=dt.UTC) - dt.timedelta(hours=9)  # 10:00 KST


@dataclass
class KioskRef:
    id: int
    token: str
    village_id: int

    @property
    def principal(self) -> Principal:
        return Principal(role=Role.KIOSK, id=self.id, display_name="마을회관", village_id=self.village_id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def admin_principal(world: World) -> Principal:
    return Principal(role=Role.ADMIN, id=world.admin_id, display_name="관리자")


def official_principal(world: World, *, other: bool = False) -> Principal:
    if other:
        return Principal(
            Role.OFFICIAL, world.other_official_id, "박안전", department_id=world.department_ids[1]
        )
    return Principal(Role.OFFICIAL, world.official_id, "김민원", department_id=world.department_ids[0])


async def make_kiosk(sessionmaker: Callable[[], AsyncSession], village_id: int, label: str) -> KioskRef:
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        issued = await kiosks.create_kiosk(
            session, village_id=village_id, label=label, code_lifetime=dt.timedelta(hours=1)
        )
        kiosk, token = await kiosks.enroll(session, issued.code)
        return KioskRef(kiosk.id, token, village_id)


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


async def live_meeting(
    sessionmaker: Callable[[], AsyncSession],
    world: World,
    *,
    title: str = "남성리 주민 회의",
    villages: tuple[int, ...] = (0,),
    agenda: tuple[str, ...] = (),
    lobby_mode: str = "auto_admit",
) -> LiveMeeting:
    """A meeting scheduled by the admin (chair: the official; the other official invited; the
    villages ``world.village_ids[i]`` for i in ``villages``), with ``agenda``, started now."""
    now = utcnow()
    admin = admin_principal(world)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        scheduled = await meetings.schedule_meeting(
            session,
            admin,
            meetings.MeetingDraft(
                title=title,
                starts_at=now + dt.timedelta(minutes=1),
                ends_at=now + dt.timedelta(hours=1),
                chair_id=world.official_id,
                official_ids=(world.other_official_id,),
                village_ids=tuple(world.village_ids[i] for i in villages),
                lobby_mode=lobby_mode,
            ),
        )
        meeting = await meetings.get_meeting(session, scheduled.meeting.id)
        items = [(await meetings.add_agenda_item(session, meeting, t)).id for t in agenda]
        meeting = await meetings.start_meeting(session, admin, meeting)
        assert meeting.room_id is not None
        return LiveMeeting(meeting.id, meeting.room_id, tuple(items))
