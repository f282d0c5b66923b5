"""Meeting use cases: lookups and who may see or run a meeting, scheduling rules, the moves of the
status machine (``workflow.py``), admission to the live room, and names for pages. The agenda,
minutes, the record and decisions are in ``agenda.py``; attendance in ``attendance.py``;
recordings in ``recordings.py``; ending a meeting together with its live room in ``ending.py``.

Every illegal move is a ``Conflict`` (409) with a stable code; bad input is a ``BadRequest`` (400);
unknown ids are ``NotFound`` (404). Functions take the caller's ``AsyncSession`` and never commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.errors import BadRequest, Conflict, Forbidden, NotFound
from server.geo.models import Village
from server.kiosks.models import Kiosk
from server.meetings.models import (
    JOIN_MODES,
    LOBBY_MODES,
    Attendance,
    Meeting,
    MeetingOfficial,
    MeetingVillage,
)
from server.meetings.workflow import CURRENT, FINAL, MeetingAction, MeetingStatus, next_status
from server.petitions.models import Petition
from server.rooms import service as rooms
from server.rooms.models import Room

log = logging.getLogger(__name__)

TITLE_MAX = 200
MAX_DURATION = dt.timedelta(hours=12)
# The chair may open the meeting page this long before the start (to test camera and microphone).
CHAIR_EARLY_JOIN = dt.timedelta(minutes=15)
# --- inputs and results -------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingDraft:
    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    chair_id: int
    purpose: str = ""
    official_ids: tuple[int, ...] = ()
    village_ids: tuple[int, ...] = ()
    join_mode: str = "touch"
    lobby_mode: str = "auto_admit"


@dataclass(frozen=True)
class MeetingChanges:
    """Fields to change; ``None`` leaves a field as it is."""

    title: str | None = None
    purpose: str | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    chair_id: int | None = None
    official_ids: tuple[int, ...] | None = None
    village_ids: tuple[int, ...] | None = None
    join_mode: str | None = None
    lobby_mode: str | None = None


@dataclass(frozen=True)
class ScheduleResult:
    meeting: Meeting
    # Invited villages without an active kiosk: allowed, but nobody will be there unless one enrolls.
    villages_without_kiosk: tuple[int, ...] = ()


@dataclass
class _Invitees:
    official_ids: list[int] = field(default_factory=list)
    village_ids: list[int] = field(default_factory=list)


# --- lookups -------------------------------------------------------------------


async def get_meeting(session: AsyncSession, meeting_id: int, *, lock: bool = False) -> Meeting:
    stmt = select(Meeting).where(Meeting.id == meeting_id)
    if lock:
        stmt = stmt.with_for_update(of=Meeting)
    meeting = await session.scalar(stmt)
    if meeting is None:
        raise NotFound(f"meeting {meeting_id} does not exist", code="meeting_not_found")
    return meeting


async def ids_in(
    sessionmaker: async_sessionmaker[AsyncSession], status: MeetingStatus, *conditions: ColumnElement[bool]
) -> Sequence[int]:
    """The ids of the meetings in ``status`` matching ``conditions`` (read without locks: the
    caller locks and re-reads each, with ``get_locked_in``)."""
    async with transaction(sessionmaker) as session:
        return (await session.scalars(select(Meeting.id).where(Meeting.status == status, *conditions))).all()


async def get_locked_in(session: AsyncSession, meeting_id: int, status: MeetingStatus) -> Meeting | None:
    """The meeting locked and re-read; None if it left ``status`` meanwhile (moved by hand, or by
    another worker)."""
    meeting = await get_meeting(session, meeting_id, lock=True)
    return meeting if meeting.status == status else None


async def each_locked(
    sessionmaker: async_sessionmaker[AsyncSession], status: MeetingStatus, *conditions: ColumnElement[bool]
) -> AsyncIterator[tuple[AsyncSession, Meeting]]:
    """Each meeting in ``status`` matching ``conditions``, in a transaction of its own, locked and
    re-read: one that left ``status`` meanwhile is skipped. For background work such as the
    meeting clock's."""
    for meeting_id in await ids_in(sessionmaker, status, *conditions):
        async with transaction(sessionmaker) as session:
            if (meeting := await get_locked_in(session, meeting_id, status)) is not None:
                yield session, meeting


def clock_actor(meeting: Meeting, what: str) -> Principal:
    """Who a start or end by the clock acts as: the meeting's chair (the room is theirs to run)."""
    return Principal(role=Role.OFFICIAL, id=meeting.chair_id, display_name=what)


async def list_meetings(session: AsyncSession, principal: Principal) -> Sequence[Meeting]:
    """Admins: every meeting; officials: those they chair or are invited to; kiosks: their village's."""
    stmt = select(Meeting).order_by(Meeting.starts_at.desc(), Meeting.id.desc())
    if principal.role is Role.OFFICIAL:
        stmt = stmt.where(_official_filter(principal.id))
    elif principal.role is Role.KIOSK:
        stmt = stmt.where(_village_filter(principal.village_id or 0))
    return (await session.scalars(stmt)).all()


def _official_filter(account_id: int) -> Any:
    return or_(
        Meeting.chair_id == account_id,
        Meeting.id.in_(select(MeetingOfficial.meeting_id).where(MeetingOfficial.account_id == account_id)),
    )


def _village_filter(village_id: int) -> Any:
    return Meeting.id.in_(select(MeetingVillage.meeting_id).where(MeetingVillage.village_id == village_id))


async def upcoming_for_village(
    session: AsyncSession, village_id: int, *, now: dt.datetime | None = None, limit: int = 5
) -> Sequence[Meeting]:
    """Scheduled or live meetings that invite the village and have not ended (kiosk home)."""
    now = now or utcnow()
    stmt = (
        select(Meeting)
        .where(_village_filter(village_id), Meeting.status.in_(CURRENT), Meeting.ends_at > now)
        .order_by(Meeting.starts_at)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def feed_for_official(session: AsyncSession, account_id: int) -> Sequence[Meeting]:
    stmt = select(Meeting).where(_official_filter(account_id)).order_by(Meeting.starts_at)
    return (await session.scalars(stmt)).all()


async def feed_for_village(session: AsyncSession, village_id: int) -> Sequence[Meeting]:
    stmt = select(Meeting).where(_village_filter(village_id)).order_by(Meeting.starts_at)
    return (await session.scalars(stmt)).all()


def is_invited_official(meeting: Meeting, account_id: int) -> bool:
    return meeting.chair_id == account_id or any(o.account_id == account_id for o in meeting.officials)


def may_view(principal: Principal, meeting: Meeting) -> bool:
    """May see the meeting and its record: admins, the chair, invited officials."""
    if principal.role is Role.ADMIN:
        return True
    return principal.role is Role.OFFICIAL and is_invited_official(meeting, principal.id)


def may_manage(principal: Principal, meeting: Meeting) -> bool:
    """May run the meeting (start, end, agenda, minutes, close): admins and the chair."""
    return principal.role is Role.ADMIN or (
        principal.role is Role.OFFICIAL and meeting.chair_id == principal.id
    )


async def get_visible(session: AsyncSession, principal: Principal, meeting_id: int) -> Meeting:
    """The meeting if the principal may view it; otherwise 404 (nothing leaks to the uninvited)."""
    meeting = await get_meeting(session, meeting_id)
    if not may_view(principal, meeting):
        raise NotFound(f"meeting {meeting_id} does not exist", code="meeting_not_found")
    return meeting


def require_manager(principal: Principal, meeting: Meeting) -> None:
    if not may_manage(principal, meeting):
        raise Forbidden("only the chair or an administrator may do this", code="not_meeting_manager")


# --- scheduling -------------------------------------------------------------------


def check_title(title: str) -> str:
    title = title.strip()
    if not 1 <= len(title) <= TITLE_MAX:
        raise BadRequest(f"title must be 1-{TITLE_MAX} characters", code="invalid_title")
    return title


def _check_times(starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise BadRequest("times need a time zone", code="naive_time")
    if ends_at <= starts_at:
        raise BadRequest("the meeting must end after it starts", code="ends_before_start")
    if ends_at - starts_at > MAX_DURATION:
        raise BadRequest("a meeting lasts at most 12 hours", code="meeting_too_long")


def _check_modes(join_mode: str, lobby_mode: str) -> None:
    if join_mode not in JOIN_MODES:
        raise BadRequest(f"join_mode must be one of {JOIN_MODES}", code="invalid_join_mode")
    if lobby_mode not in LOBBY_MODES:
        raise BadRequest(f"lobby_mode must be one of {LOBBY_MODES}", code="invalid_lobby_mode")


async def _check_chair(session: AsyncSession, chair_id: int) -> None:
    account = await session.get(Account, chair_id)
    if account is None or not account.is_active:
        raise BadRequest("the chair must be an active official", code="invalid_chair")


async def check_officials(session: AsyncSession, official_ids: Sequence[int]) -> None:
    if not official_ids:
        return
    found = set(
        (
            await session.scalars(
                select(Account.id).where(Account.id.in_(official_ids), Account.is_active.is_(True))
            )
        ).all()
    )
    if missing := sorted(set(official_ids) - found):
        raise NotFound(f"no active accounts {missing}", code="account_not_found", details={"ids": missing})


async def check_villages(session: AsyncSession, village_ids: Sequence[int]) -> tuple[int, ...]:
    """Refuse villages that do not exist or whose kiosks are all revoked (409
    ``village_kiosk_revoked``); return the villages that have no active kiosk (allowed, but said)."""
    if not village_ids:
        return ()
    ids = sorted(set(village_ids))
    found = set((await session.scalars(select(Village.id).where(Village.id.in_(ids)))).all())
    if missing := [i for i in ids if i not in found]:
        raise NotFound(f"no villages {missing}", code="village_not_found", details={"ids": missing})
    kiosks = (await session.scalars(select(Kiosk).where(Kiosk.village_id.in_(ids)))).all()
    active = {k.village_id for k in kiosks if k.is_active}
    revoked = {k.village_id for k in kiosks if k.revoked_at is not None}
    if refused := sorted(revoked - active):
        raise Conflict(
            f"the kiosks of villages {refused} are revoked",
            code="village_kiosk_revoked",
            details={"village_ids": refused},
        )
    return tuple(i for i in ids if i not in active)


async def schedule_meeting(session: AsyncSession, actor: Principal, draft: MeetingDraft) -> ScheduleResult:
    title = check_title(draft.title)
    _check_times(draft.starts_at, draft.ends_at)
    _check_modes(draft.join_mode, draft.lobby_mode)
    await _check_chair(session, draft.chair_id)
    officials = sorted(set(draft.official_ids) - {draft.chair_id})
    await check_officials(session, officials)
    without_kiosk = await check_villages(session, draft.village_ids)
    meeting = Meeting(
        title=title,
        purpose=draft.purpose.strip(),
        starts_at=draft.starts_at.astimezone(dt.UTC),
        ends_at=draft.ends_at.astimezone(dt.UTC),
        chair_id=draft.chair_id,
        join_mode=draft.join_mode,
        lobby_mode=draft.lobby_mode,
        status=MeetingStatus.SCHEDULED,
        sequence=0,
        created_by=actor.id if actor.is_account else None,
        officials=[MeetingOfficial(account_id=i) for i in officials],
        villages=[MeetingVillage(village_id=i) for i in sorted(set(draft.village_ids))],
    )
    session.add(meeting)
    await session.flush()
    log.info("meeting scheduled", extra={"meeting_id": meeting.id, "actor": actor.audit_label})
    return ScheduleResult(meeting, without_kiosk)


_LIVE_EDITABLE = frozenset({"ends_at"})


async def update_meeting(
    session: AsyncSession, actor: Principal, meeting: Meeting, changes: MeetingChanges
) -> ScheduleResult:
    """Edit a meeting. Scheduled: anything. Live: only the end time. Ended/cancelled: nothing."""
    requested = {name for name, value in vars(changes).items() if value is not None}
    if meeting.status in FINAL:
        raise Conflict(f"a {meeting.status} meeting is read-only", code="meeting_read_only")
    if meeting.status == MeetingStatus.LIVE and (refused := sorted(requested - _LIVE_EDITABLE)):
        raise Conflict(
            "a live meeting can only change its end time (and its minutes)",
            code="meeting_live_limited",
            details={"fields": refused},
        )
    starts_at = changes.starts_at or meeting.starts_at
    ends_at = changes.ends_at or meeting.ends_at
    _check_times(starts_at, ends_at)
    if (
        meeting.status == MeetingStatus.LIVE
        and changes.ends_at is not None
        and changes.ends_at <= (meeting.started_at or starts_at)
    ):
        raise BadRequest("the meeting must end after it started", code="ends_before_start")
    if changes.title is not None:
        meeting.title = check_title(changes.title)
    if changes.purpose is not None:
        meeting.purpose = changes.purpose.strip()
    _check_modes(changes.join_mode or meeting.join_mode, changes.lobby_mode or meeting.lobby_mode)
    if changes.join_mode is not None:
        meeting.join_mode = changes.join_mode
    if changes.lobby_mode is not None:
        meeting.lobby_mode = changes.lobby_mode
    if changes.chair_id is not None:
        await _check_chair(session, changes.chair_id)
        meeting.chair_id = changes.chair_id
    meeting.starts_at = starts_at.astimezone(dt.UTC)
    meeting.ends_at = ends_at.astimezone(dt.UTC)
    if changes.official_ids is not None:
        wanted = set(changes.official_ids) - {meeting.chair_id}
        await check_officials(session, sorted(wanted))
        meeting.officials = [o for o in meeting.officials if o.account_id in wanted] + [
            MeetingOfficial(account_id=i) for i in sorted(wanted - {o.account_id for o in meeting.officials})
        ]
    without_kiosk: tuple[int, ...] = ()
    if changes.village_ids is not None:
        wanted_v = set(changes.village_ids)
        without_kiosk = await check_villages(session, sorted(wanted_v))
        meeting.villages = [v for v in meeting.villages if v.village_id in wanted_v] + [
            MeetingVillage(village_id=i) for i in sorted(wanted_v - {v.village_id for v in meeting.villages})
        ]
    meeting.sequence += 1
    await session.flush()
    log.info(
        "meeting edited",
        extra={"meeting_id": meeting.id, "actor": actor.audit_label, "fields": sorted(requested)},
    )
    return ScheduleResult(meeting, without_kiosk)


async def active_kiosk_ids(session: AsyncSession, meeting: Meeting) -> list[int]:
    village_ids = [v.village_id for v in meeting.villages]
    if not village_ids:
        return []
    stmt = select(Kiosk.id).where(
        Kiosk.village_id.in_(village_ids), Kiosk.revoked_at.is_(None), Kiosk.token_hash.is_not(None)
    )
    return sorted((await session.scalars(stmt)).all())


async def start_meeting(
    session: AsyncSession, actor: Principal, meeting: Meeting, *, now: dt.datetime | None = None
) -> Meeting:
    """scheduled → live. Opens the meeting's room (``meeting.room_id``), inviting the chair, the
    officials and the active kiosks of the invited villages, so today's room signaling and the
    kiosks' "open rooms" polling work unchanged."""
    meeting.status = next_status(meeting.status, MeetingAction.START)
    meeting.started_at = now or utcnow()
    invitees = rooms.Invitees(
        account_ids=tuple(sorted({meeting.chair_id, *(o.account_id for o in meeting.officials)})),
        kiosk_ids=tuple(await active_kiosk_ids(session, meeting)),
    )
    room = await rooms.create_room(session, actor, meeting.title[: rooms.TITLE_MAX], invitees)
    meeting.room_id = room.id
    await session.flush()
    log.info(
        "meeting started", extra={"meeting_id": meeting.id, "room_id": room.id, "actor": actor.audit_label}
    )
    return meeting


async def end_meeting(
    session: AsyncSession, actor: Principal, meeting: Meeting, *, now: dt.datetime | None = None
) -> Meeting:
    """live → ended. Marks the room closed; open presences end now. Callers go through
    ``ending.ending``, which closes the live room after the commit."""
    meeting.status = next_status(meeting.status, MeetingAction.END)
    now = now or utcnow()
    meeting.ended_at = now
    if meeting.room_id is not None:
        await rooms.close_room(session, meeting.room_id, actor)
    for presence in (
        await session.scalars(
            select(Attendance).where(Attendance.meeting_id == meeting.id, Attendance.left_at.is_(None))
        )
    ).all():
        presence.left_at = max(now, presence.joined_at)
    await session.flush()
    log.info("meeting ended", extra={"meeting_id": meeting.id, "actor": actor.audit_label})
    return meeting


async def cancel_meeting(
    session: AsyncSession,
    actor: Principal,
    meeting: Meeting,
    reason: str = "",
    *,
    now: dt.datetime | None = None,
) -> Meeting:
    meeting.status = next_status(meeting.status, MeetingAction.CANCEL)
    meeting.cancelled_at = now or utcnow()
    meeting.cancel_reason = reason.strip() or None
    meeting.sequence += 1
    await session.flush()
    log.info("meeting cancelled", extra={"meeting_id": meeting.id, "actor": actor.audit_label})
    return meeting


# --- admission -------------------------------------------------------------------


async def may_join_meeting(
    session: AsyncSession, principal: Principal, meeting: Meeting, *, now: dt.datetime | None = None
) -> bool:
    """The admission rule of scheduled meetings: while live, admins, the chair, invited officials and
    active kiosks of invited villages; before the start only the chair, from ``CHAIR_EARLY_JOIN``."""
    now = now or utcnow()
    if principal.role is Role.KIOSK:
        if meeting.status != MeetingStatus.LIVE or principal.village_id not in {
            v.village_id for v in meeting.villages
        }:
            return False
        kiosk = await session.get(Kiosk, principal.id)
        return kiosk is not None and kiosk.is_active and kiosk.village_id == principal.village_id
    if meeting.status == MeetingStatus.LIVE:
        return principal.role is Role.ADMIN or is_invited_official(meeting, principal.id)
    if (
        meeting.status == MeetingStatus.SCHEDULED
        and principal.is_account
        and meeting.chair_id == principal.id
    ):
        return now >= meeting.starts_at - CHAIR_EARLY_JOIN
    return False


async def meeting_for_room(session: AsyncSession, room_id: int) -> Meeting | None:
    return await session.scalar(select(Meeting).where(Meeting.room_id == room_id))


async def may_join_room(session: AsyncSession, principal: Principal, room: Room) -> bool:
    """Drop-in for ``rooms.service.may_join`` in signaling: a room owned by a meeting admits by the
    meeting's rule; any other room by the rooms rule."""
    meeting = await meeting_for_room(session, room.id)
    if meeting is None:
        return await rooms.may_join(session, principal, room)
    return room.is_open and await may_join_meeting(session, principal, meeting)


# --- names for pages -------------------------------------------------------------------


async def account_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = (await session.execute(select(Account.id, Account.display_name).where(Account.id.in_(ids)))).all()
    return {row[0]: row[1] for row in rows}


async def village_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        v.id: v.full_name_ko
        for v in (await session.scalars(select(Village).where(Village.id.in_(ids)))).all()
    }


async def petitions_by_id(session: AsyncSession, ids: set[int]) -> dict[int, Petition]:
    if not ids:
        return {}
    return {p.id: p for p in (await session.scalars(select(Petition).where(Petition.id.in_(ids)))).all()}


async def count_active_kiosks(session: AsyncSession, village_ids: Sequence[int]) -> dict[int, int]:
    if not village_ids:
        return {}
    stmt = (
        select(Kiosk.village_id, func.count(Kiosk.id))
        .where(Kiosk.village_id.in_(village_ids), Kiosk.revoked_at.is_(None), Kiosk.token_hash.is_not(None))
        .group_by(Kiosk.village_id)
    )
    return {row[0]: row[1] for row in (await session.execute(stmt)).all()}
