"""The route matrix's world: two sides of the county, built once through the real services and
copied for every route, so one route's writes never change what the next route sees.

Side A is village 0 with its kiosk, department X and official X (김민원); side B is village 1,
department Y and official Y (박안전). Each side has a request, a notice, a ringing duty call, an
ad-hoc room and a scheduled meeting with one agenda item. Official X is on duty, official Y is
not. Each side's request also has a decision proposed to its department by a meeting the other
side's official chaired. The accounts are logged in once here; their session and CSRF cookies
are valid in every copy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.auth.roles import Principal
from server.auth.secrets import Passwords
from server.config import Settings
from server.db import close_engine, create_engine, make_sessionmaker, transaction, utcnow
from server.duty import service as duty
from server.meetings import agenda as meeting_agenda
from server.meetings import service as meetings
from server.meetings.models import DecisionProposal
from server.migrate import upgrade
from server.notices import service as notices
from server.petitions import service as petitions
from server.petitions.deadlines import PetitionType
from server.petitions.models import Petition
from server.rooms import service as rooms
from tests.conftest import TEST_PASSWORD, login, make_settings
from tests.kiosk_ref import KioskRef, make_kiosk
from tests.meetings.conftest import admin_principal, file_petition, official_principal
from tests.world_seed import seed_world

SIDES = ("A", "B")


@dataclass
class Side:
    """The objects of one side of the county, by the path parameter that names them."""

    kiosk: KioskRef
    ids: dict[str, int] = field(default_factory=dict)


@dataclass
class Account:
    username: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""


@dataclass
class RouteWorld:
    settings: Settings
    sides: dict[str, Side]
    accounts: dict[str, Account]  # role name -> logged-in account


# A stored photo: the routes serve the file as it is, so any bytes do.
PHOTO = b"\xff\xd8\xff\xe0 a photo \xff\xd9"


def _stored_photo(settings: Settings, tag: str) -> petitions.StoredMedia:
    name = f"matrix/{tag}.jpg"
    path = settings.media_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PHOTO)
    return petitions.StoredMedia(
        kind="photo", storage_name=name, content_type="image/jpeg", size_bytes=len(PHOTO), sha256="0" * 64
    )


async def _build_side(
    settings: Settings,
    sessionmaker: Callable[[], AsyncSession],
    village_id: int,
    official: Principal,
    admin: Principal,
    tag: str,
) -> Side:
    kiosk = await make_kiosk(sessionmaker, village_id, f"{tag} 마을회관")
    side = Side(kiosk)
    now = utcnow()
    photo = _stored_photo(settings, tag)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        side.ids["petition_id"] = await file_petition(session, kiosk, f"{tag} 가로등", assign_to=official)
        media = petitions.attach_media(session, await _petition(session, side.ids["petition_id"]), photo)
        await session.flush()
        side.ids["media_id"] = media.id
        public = await petitions.file_petition(
            session,
            kiosk.principal,
            petitions.NewPetition(
                petition_type=PetitionType.SUGGESTION,
                department_id=official.department_id,
                title=f"{tag} 버스 정류장에 의자를 놓아 주세요",
                body="어르신들이 서서 기다리십니다.",
                resident_phone="01012345678",
                resident_name="홍길동",
                is_public=True,
            ),
            pin_hash="x",
        )
        side.ids["public_petition_id"] = public.id
        notice = await notices.post_notice(
            session,
            official,
            notices.NoticeDraft(
                title=f"{tag} 공지",
                body="마을 방송",
                starts_at=now - dt.timedelta(hours=1),
                ends_at=now + dt.timedelta(days=1),
                village_ids=(village_id,),
                media_kind="image",
                media_type="image/jpeg",
                media_storage_name=photo.storage_name,
            ),
        )
        side.ids["notice_id"] = notice.id
        call = await duty.start_call(session, kiosk.principal, dt.timedelta(days=1))
        side.ids["call_id"] = call.id
        room = await rooms.create_room(
            session, admin, f"{tag} 상담", rooms.Invitees(account_ids=(official.id,), kiosk_ids=(kiosk.id,))
        )
        side.ids["room_id"] = room.id
        start = now + dt.timedelta(days=1)
        scheduled = await meetings.schedule_meeting(
            session,
            admin,
            meetings.MeetingDraft(
                title=f"{tag} 주민 회의",
                starts_at=start,
                ends_at=start + dt.timedelta(hours=1),
                chair_id=official.id,
                village_ids=(village_id,),
            ),
        )
        meeting = await meetings.get_meeting(session, scheduled.meeting.id)
        item = await meeting_agenda.add_agenda_item(session, meeting, f"{tag} 안건")
        side.ids["meeting_id"] = scheduled.meeting.id
        side.ids["item_id"] = item.id
    side.ids["kiosk_id"] = kiosk.id
    side.ids["account_id"] = official.id
    return side


async def build_route_world(root: Path) -> RouteWorld:
    """Migrate a SQLite database under ``root``, fill both sides and log the accounts in."""
    settings = make_settings(f"sqlite+aiosqlite:///{root / 'maeul.db'}", root / "data")
    await asyncio.to_thread(upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)
    try:
        passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
        async with transaction(sessionmaker) as session:
            world = await seed_world(session, passwords, TEST_PASSWORD)
        admin = admin_principal(world)
        x, y = official_principal(world), official_principal(world, other=True)
        sides = {
            "A": await _build_side(settings, sessionmaker, world.village_ids[0], x, admin, "남성리"),
            "B": await _build_side(settings, sessionmaker, world.village_ids[1], y, admin, "사당리"),
        }
        sides["A"].ids["department_id"], sides["B"].ids["department_id"] = world.department_ids[:2]
        for side, chair in (("A", y), ("B", x)):
            ids = sides[side].ids
            ids["proposal_id"] = await _proposal(
                sessionmaker, admin, chair, sides[side].kiosk.village_id, ids["petition_id"]
            )
        async with transaction(sessionmaker) as session:
            await duty.set_available(session, x, True)
    finally:
        await close_engine(engine)
    accounts = {
        "official_x": Account("official"),
        "official_y": Account("official2"),
        "admin": Account("admin"),
    }
    for account in accounts.values():
        async with TestClient(TestServer(create_app(settings))) as client:
            account.csrf = await login(client, account.username)
            account.cookies = {c.key: c.value for c in client.session.cookie_jar}
    return RouteWorld(settings, sides, accounts)


async def _proposal(
    sessionmaker: Callable[[], AsyncSession],
    admin: Principal,
    chair: Principal,
    village_id: int,
    petition_id: int,
) -> int:
    """A decision on ``petition_id`` proposed to its department: a meeting chaired by an official
    of another department, to which the admin linked the request, ends and its record is closed."""
    start = utcnow() + dt.timedelta(minutes=1)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        scheduled = await meetings.schedule_meeting(
            session,
            admin,
            meetings.MeetingDraft(
                title="합동 회의",
                starts_at=start,
                ends_at=start + dt.timedelta(hours=1),
                chair_id=chair.id,
                village_ids=(village_id,),
            ),
        )
        meeting = await meetings.get_meeting(session, scheduled.meeting.id)
        item = await meeting_agenda.add_agenda_item(
            session, meeting, "가로등", petition_ids=(petition_id,), actor=admin
        )
        await meetings.start_meeting(session, admin, meeting)
        await meetings.end_meeting(session, admin, meeting)
        await meeting_agenda.write_minutes(session, meeting, item.id, decisions="다음 주에 고칩니다.")
        await meeting_agenda.close_record(session, chair, meeting)
        proposal = await session.scalar(
            select(DecisionProposal.id).where(DecisionProposal.petition_id == petition_id)
        )
    assert proposal is not None
    return proposal


async def _petition(session: AsyncSession, petition_id: int) -> Petition:
    petition = await session.get(Petition, petition_id)
    assert petition is not None
    return petition


def copy_world(world: RouteWorld, root: Path) -> Settings:
    """Settings for a fresh copy of ``world``'s database and data directory under ``root``."""
    source = Path(world.settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    shutil.copy(source, root / "maeul.db")
    if world.settings.data_dir.exists():
        shutil.copytree(world.settings.data_dir, root / "data")
    return make_settings(f"sqlite+aiosqlite:///{root / 'maeul.db'}", root / "data")
