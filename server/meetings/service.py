"""Meeting use cases: scheduling rules, the status machine, agenda, minutes, admission, attendance,
closing the record (decisions reach the linked petitions), recordings.

Every illegal move is a ``Conflict`` (409) with a stable code; bad input is a ``BadRequest`` (400);
unknown ids are ``NotFound`` (404). Functions take the caller's ``AsyncSession`` and never commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rtc.recorded import Mark, RecordedFile
from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.errors import BadRequest, Conflict, Forbidden, NotFound
from server.geo.models import Village
from server.kiosks.models import Kiosk
from server.meetings.models import (
    JOIN_MODES,
    LOBBY_MODES,
    ActionItem,
    AgendaItem,
    AgendaPetition,
    Attendance,
    DecisionProposal,
    Meeting,
    MeetingOfficial,
    MeetingVillage,
    Recording,
)
from server.meetings.workflow import CURRENT, FINAL, MeetingAction, MeetingStatus, next_status
from server.petitions import service as petitions
from server.petitions.models import Petition
from server.petitions.workflow import Action, PetitionStatus
from server.rooms import service as rooms
from server.rooms.models import Room

log = logging.getLogger(__name__)

TITLE_MAX = 200
MAX_DURATION = dt.timedelta(hours=12)
# The chair may open the meeting page this long before the start (to test camera and microphone).
CHAIR_EARLY_JOIN = dt.timedelta(minutes=15)
# A participant who comes back within this time continues the same presence (a reconnect).
REJOIN_GRACE = dt.timedelta(seconds=60)


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


@dataclass(frozen=True)
class PetitionOutcome:
    petition_id: int
    receipt_no: str
    outcome: str  # "answered" | "skipped"
    detail: str


@dataclass(frozen=True)
class CloseReport:
    meeting: Meeting
    outcomes: tuple[PetitionOutcome, ...] = ()


@dataclass(frozen=True)
class ParticipantTotal:
    kind: str
    account_id: int | None
    kiosk_id: int | None
    name: str
    first_joined_at: dt.datetime
    last_left_at: dt.datetime | None
    present_seconds: int
    gap_seconds: int
    interruptions: int
    residents_count: int | None


@dataclass(frozen=True)
class MeetingRef:
    """A meeting as a petition page lists it."""

    meeting_id: int
    title: str
    starts_at: dt.datetime
    status: str
    agenda_item_title: str
    decisions: str
    outcome: str | None = None


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


def _check_title(title: str) -> str:
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


async def _check_officials(session: AsyncSession, official_ids: Sequence[int]) -> None:
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
    title = _check_title(draft.title)
    _check_times(draft.starts_at, draft.ends_at)
    _check_modes(draft.join_mode, draft.lobby_mode)
    await _check_chair(session, draft.chair_id)
    officials = sorted(set(draft.official_ids) - {draft.chair_id})
    await _check_officials(session, officials)
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
        meeting.title = _check_title(changes.title)
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
        await _check_officials(session, sorted(wanted))
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


# --- agenda -------------------------------------------------------------------


def _require_agenda_editable(meeting: Meeting) -> None:
    if meeting.status != MeetingStatus.SCHEDULED:
        raise Conflict(
            f"the agenda of a {meeting.status} meeting cannot change (only its minutes)",
            code="agenda_locked",
            details={"status": meeting.status},
        )


def _require_minutes_editable(meeting: Meeting) -> None:
    if meeting.record_closed_at is not None:
        raise Conflict("the record of this meeting is closed", code="record_closed")


def _renumber(meeting: Meeting) -> None:
    for index, item in enumerate(sorted(meeting.agenda, key=lambda i: (i.position, i.id or 0)), start=1):
        item.position = index


def _item(meeting: Meeting, item_id: int) -> AgendaItem:
    for item in meeting.agenda:
        if item.id == item_id:
            return item
    raise NotFound(f"agenda item {item_id} is not in meeting {meeting.id}", code="agenda_item_not_found")


async def _check_petitions(
    session: AsyncSession, actor: Principal | None, petition_ids: Sequence[int]
) -> list[Petition]:
    """The petitions to link, each one the linking official may see (the petitions domain's own
    rule, ``visible_to``); any other is "not found", exactly as its GET answers, so an agenda
    reveals nothing of another department's requests. Linking needs an actor."""
    if not petition_ids:
        return []
    if actor is None:
        raise ValueError("linking petitions needs the linking principal")
    stmt = select(Petition).where(Petition.id.in_(petition_ids), petitions.visible_to(actor))
    found = (await session.scalars(stmt)).all()
    if missing := sorted(set(petition_ids) - {p.id for p in found}):
        raise NotFound(f"no petitions {missing}", code="petition_not_found", details={"ids": missing})
    return list(found)


async def visible_petition_ids(session: AsyncSession, viewer: Principal, petition_ids: set[int]) -> set[int]:
    """Those of ``petition_ids`` the viewer may see (the petitions domain's rule): a meeting's
    record names the others by receipt number only."""
    if not petition_ids:
        return set()
    stmt = select(Petition.id).where(Petition.id.in_(petition_ids), petitions.visible_to(viewer))
    return set((await session.scalars(stmt)).all())


def may_act_on(actor: Principal, petition: Petition) -> bool:
    """May the meeting's decision answer this petition in ``actor``'s name? Admins, and officials of
    the department that handles it (``petitions.handles``); anybody else's decision is proposed."""
    return actor.role is Role.ADMIN or petitions.handles(actor, petition)


async def add_agenda_item(
    session: AsyncSession,
    meeting: Meeting,
    title: str,
    *,
    planned_minutes: int = 10,
    presenter_id: int | None = None,
    petition_ids: Sequence[int] = (),
    position: int | None = None,
    actor: Principal | None = None,
) -> AgendaItem:
    """Insert an item at ``position`` (1-based; default: at the end); the order stays 1..n.
    ``petition_ids`` are linked as ``actor`` (who must be able to see each one)."""
    _require_agenda_editable(meeting)
    title = _check_title(title)
    if not 1 <= planned_minutes <= 600:
        raise BadRequest("planned minutes must be 1-600", code="invalid_planned_minutes")
    if presenter_id is not None:
        await _check_officials(session, [presenter_id])
    await _check_petitions(session, actor, petition_ids)
    count = len(meeting.agenda)
    at = count + 1 if position is None else max(1, min(position, count + 1))
    for other in meeting.agenda:
        if other.position >= at:
            other.position += 1
    item = AgendaItem(
        meeting_id=meeting.id,
        position=at,
        title=title,
        planned_minutes=planned_minutes,
        presenter_id=presenter_id,
        notes="",
        decisions="",
        petitions=[AgendaPetition(petition_id=i) for i in sorted(set(petition_ids))],
        actions=[],
    )
    meeting.agenda.append(item)
    _renumber(meeting)
    await session.flush()
    return item


async def add_item_from_petition(
    session: AsyncSession,
    meeting: Meeting,
    petition_id: int,
    *,
    actor: Principal,
    planned_minutes: int = 10,
) -> AgendaItem:
    """An agenda item titled after the petition, linked to it; 404 unless ``actor`` may see it
    (checked before its title is read)."""
    _require_agenda_editable(meeting)
    petition = await petitions.get_for_account(session, actor, petition_id)
    title = f"[{petition.receipt_no}] {petition.title}"[:TITLE_MAX]
    return await add_agenda_item(
        session, meeting, title, planned_minutes=planned_minutes, petition_ids=[petition.id], actor=actor
    )


async def move_agenda_item(
    session: AsyncSession, meeting: Meeting, item_id: int, position: int
) -> AgendaItem:
    """Move an item to ``position`` (clamped to 1..n); the others close up."""
    _require_agenda_editable(meeting)
    item = _item(meeting, item_id)
    ordered = [i for i in sorted(meeting.agenda, key=lambda i: i.position) if i.id != item.id]
    target = max(1, min(position, len(ordered) + 1))
    ordered.insert(target - 1, item)
    for index, entry in enumerate(ordered, start=1):
        entry.position = index
    await session.flush()
    return item


async def update_agenda_item(
    session: AsyncSession,
    meeting: Meeting,
    item_id: int,
    *,
    title: str | None = None,
    planned_minutes: int | None = None,
    presenter_id: int | None = None,
    petition_ids: Sequence[int] | None = None,
    actor: Principal | None = None,
) -> AgendaItem:
    """Change an item; petitions newly linked must be visible to ``actor`` (links already there
    stay, even ones the actor cannot see: an administrator may have put them there)."""
    _require_agenda_editable(meeting)
    item = _item(meeting, item_id)
    if title is not None:
        item.title = _check_title(title)
    if planned_minutes is not None:
        if not 1 <= planned_minutes <= 600:
            raise BadRequest("planned minutes must be 1-600", code="invalid_planned_minutes")
        item.planned_minutes = planned_minutes
    if presenter_id is not None:
        await _check_officials(session, [presenter_id])
        item.presenter_id = presenter_id
    if petition_ids is not None:
        wanted = set(petition_ids)
        await _check_petitions(session, actor, sorted(wanted - {p.petition_id for p in item.petitions}))
        item.petitions = [p for p in item.petitions if p.petition_id in wanted] + [
            AgendaPetition(petition_id=i) for i in sorted(wanted - {p.petition_id for p in item.petitions})
        ]
    await session.flush()
    return item


async def delete_agenda_item(session: AsyncSession, meeting: Meeting, item_id: int) -> None:
    _require_agenda_editable(meeting)
    item = _item(meeting, item_id)
    meeting.agenda.remove(item)
    await session.delete(item)
    _renumber(meeting)
    await session.flush()


# --- minutes -------------------------------------------------------------------


async def write_minutes(
    session: AsyncSession,
    meeting: Meeting,
    item_id: int,
    *,
    notes: str | None = None,
    decisions: str | None = None,
) -> AgendaItem:
    """Notes and decisions of one item: while live, and after the meeting until the record closes."""
    _require_minutes_editable(meeting)
    item = _item(meeting, item_id)
    if notes is not None:
        item.notes = notes.strip()
    if decisions is not None:
        item.decisions = decisions.strip()
    await session.flush()
    return item


async def add_action_item(
    session: AsyncSession,
    meeting: Meeting,
    item_id: int,
    text: str,
    *,
    owner_id: int | None = None,
    due_date: dt.date | None = None,
) -> ActionItem:
    _require_minutes_editable(meeting)
    item = _item(meeting, item_id)
    text = text.strip()
    if not 1 <= len(text) <= 2000:
        raise BadRequest("an action item needs text", code="invalid_action_item")
    if owner_id is not None:
        await _check_officials(session, [owner_id])
    action = ActionItem(agenda_item_id=item.id, text=text, owner_id=owner_id, due_date=due_date)
    item.actions.append(action)
    await session.flush()
    return action


async def close_record(
    session: AsyncSession, actor: Principal, meeting: Meeting, *, apply_decisions: bool = True
) -> CloseReport:
    """Close the record of an ended meeting. With ``apply_decisions``, every linked petition of an
    item with decisions is answered with them through the petitions service (audited there); a
    petition whose status does not allow an answer is skipped and reported."""
    if meeting.status != MeetingStatus.ENDED:
        raise Conflict(
            f"only an ended meeting's record can be closed (this one is {meeting.status})",
            code="illegal_meeting_transition",
            details={"from_status": meeting.status, "action": "close_record"},
        )
    _require_minutes_editable(meeting)
    outcomes: list[PetitionOutcome] = []
    if apply_decisions:
        for item in sorted(meeting.agenda, key=lambda i: i.position):
            for link in item.petitions:
                outcome = await _apply_decision(session, actor, meeting, item, link)
                link.outcome, link.outcome_detail = outcome.outcome, outcome.detail
                outcomes.append(outcome)
    meeting.record_closed_at = utcnow()
    await session.flush()
    log.info(
        "meeting record closed",
        extra={
            "meeting_id": meeting.id,
            "actor": actor.audit_label,
            "answered": sum(o.outcome == "answered" for o in outcomes),
        },
    )
    return CloseReport(meeting, tuple(outcomes))


async def _apply_decision(
    session: AsyncSession, actor: Principal, meeting: Meeting, item: AgendaItem, link: AgendaPetition
) -> PetitionOutcome:
    petition = await session.scalar(
        select(Petition).where(Petition.id == link.petition_id).with_for_update(of=Petition)
    )
    assert petition is not None  # the link's foreign key cascades on delete
    if not item.decisions.strip():
        return PetitionOutcome(petition.id, petition.receipt_no, "skipped", "no_decision")
    answer = f"{meeting.title} ({meeting.starts_at.date().isoformat()}): {item.decisions.strip()}"
    if not may_act_on(actor, petition):
        # Not the closer's to answer: the handling department gets the decision to confirm.
        session.add(
            DecisionProposal(
                agenda_petition_id=link.id,
                meeting_id=meeting.id,
                petition_id=petition.id,
                answer=answer,
                status="proposed",
                proposed_by=actor.id if actor.is_account else None,
            )
        )
        petitions.record(
            session,
            petition.id,
            actor,
            "meeting_decision_proposed",
            meeting_id=meeting.id,
            agenda_item_id=item.id,
        )
        return PetitionOutcome(petition.id, petition.receipt_no, "proposed", "to_department")
    if Action.ANSWER.value not in petitions.allowed_actions(petition):
        status = PetitionStatus(petition.status)
        return PetitionOutcome(petition.id, petition.receipt_no, "skipped", f"status_{status.value}")
    await petitions.apply_action(
        session, actor, petition, petitions.ActionInput(action=Action.ANSWER, answer=answer)
    )
    petitions.record(
        session, petition.id, actor, "meeting_decision", meeting_id=meeting.id, agenda_item_id=item.id
    )
    return PetitionOutcome(petition.id, petition.receipt_no, "answered", "answered")


# --- decisions proposed to the handling department ----------------------------------------


@dataclass(frozen=True)
class ProposalView:
    proposal: DecisionProposal
    petition: Petition
    meeting_title: str


async def pending_proposals(session: AsyncSession, principal: Principal) -> list[ProposalView]:
    """Decisions waiting for ``principal``'s confirmation: on petitions it may see (the petitions
    domain's rule) and act on (its department handles them; admins: all)."""
    stmt = (
        select(DecisionProposal, Petition, Meeting.title)
        .join(Petition, Petition.id == DecisionProposal.petition_id)
        .join(Meeting, Meeting.id == DecisionProposal.meeting_id)
        .where(DecisionProposal.status == "proposed", petitions.visible_to(principal))
        .order_by(DecisionProposal.id)
    )
    rows = (await session.execute(stmt)).all()
    return [
        ProposalView(p, petition, title) for p, petition, title in rows if may_act_on(principal, petition)
    ]


async def decide_proposal(
    session: AsyncSession, principal: Principal, proposal_id: int, *, confirm: bool
) -> ProposalView:
    """Confirm (the petition is answered with the decision, in ``principal``'s name) or dismiss a
    proposed decision. 404 unless the principal may see and act on the petition; 409 if decided."""
    not_found = NotFound(f"proposal {proposal_id} not found", code="proposal_not_found")
    proposal = await session.scalar(
        select(DecisionProposal)
        .where(DecisionProposal.id == proposal_id)
        .with_for_update(of=DecisionProposal)
    )
    if proposal is None:
        raise not_found
    try:
        petition = await petitions.get_for_account(session, principal, proposal.petition_id, lock=True)
    except NotFound:
        raise not_found from None
    if not may_act_on(principal, petition):
        raise not_found
    if proposal.status != "proposed":
        raise Conflict(f"this proposal was already {proposal.status}", code="proposal_decided")
    link = await session.get(AgendaPetition, proposal.agenda_petition_id)
    if confirm:
        await petitions.apply_action(
            session, principal, petition, petitions.ActionInput(action=Action.ANSWER, answer=proposal.answer)
        )
        petitions.record(
            session,
            petition.id,
            principal,
            "meeting_decision",
            meeting_id=proposal.meeting_id,
            proposal_id=proposal.id,
        )
    proposal.status = "confirmed" if confirm else "dismissed"
    proposal.decided_by = principal.id if principal.is_account else None
    proposal.decided_at = utcnow()
    if link is not None:
        link.outcome = "answered" if confirm else "skipped"
        link.outcome_detail = "confirmed_by_department" if confirm else "dismissed_by_department"
    await session.flush()
    log.info(
        "meeting decision proposal decided",
        extra={"proposal_id": proposal.id, "actor": principal.audit_label, "confirmed": confirm},
    )
    meeting = await get_meeting(session, proposal.meeting_id)
    return ProposalView(proposal, petition, meeting.title)


async def meetings_for_petition(session: AsyncSession, petition_id: int) -> list[MeetingRef]:
    """The meetings that discussed a petition (for the petition page), latest first."""
    stmt = (
        select(Meeting, AgendaItem, AgendaPetition)
        .join(AgendaItem, AgendaItem.meeting_id == Meeting.id)
        .join(AgendaPetition, AgendaPetition.agenda_item_id == AgendaItem.id)
        .where(AgendaPetition.petition_id == petition_id)
        .order_by(Meeting.starts_at.desc(), AgendaItem.position)
    )
    return [
        MeetingRef(m.id, m.title, m.starts_at, m.status, item.title, item.decisions, link.outcome)
        for m, item, link in (await session.execute(stmt)).all()
    ]


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


# --- attendance -------------------------------------------------------------------


def _participant_filter(principal: Principal) -> Any:
    if principal.role is Role.KIOSK:
        return Attendance.kiosk_id == principal.id
    return Attendance.account_id == principal.id


async def record_join(
    session: AsyncSession,
    meeting_id: int,
    principal: Principal,
    *,
    at: dt.datetime | None = None,
    name: str | None = None,
    grace: dt.timedelta = REJOIN_GRACE,
) -> Attendance:
    """A participant's media connection came up. Idempotent (a second join while present changes
    nothing); a rejoin within ``grace`` of the last leave continues that presence and notes the gap."""
    at = at or utcnow()
    latest = await session.scalar(
        select(Attendance)
        .where(Attendance.meeting_id == meeting_id, _participant_filter(principal))
        .order_by(Attendance.joined_at.desc(), Attendance.id.desc())
        .limit(1)
        .with_for_update()
    )
    if latest is not None and latest.left_at is None:
        return latest
    if latest is not None and latest.left_at is not None and dt.timedelta(0) <= at - latest.left_at <= grace:
        gap = int((at - latest.left_at).total_seconds())
        latest.gaps = [*latest.gaps, [latest.left_at.isoformat(), at.isoformat()]]
        latest.gap_seconds += gap
        latest.left_at = None
        await session.flush()
        log.info(
            "meeting rejoin",
            extra={"meeting_id": meeting_id, "participant": principal.audit_label, "gap_s": gap},
        )
        return latest
    is_kiosk = principal.role is Role.KIOSK
    presence = Attendance(
        meeting_id=meeting_id,
        kind="kiosk" if is_kiosk else "official",
        account_id=None if is_kiosk else principal.id,
        kiosk_id=principal.id if is_kiosk else None,
        name=(name or principal.display_name)[:120],
        joined_at=at,
        gap_seconds=0,
        gaps=[],
    )
    session.add(presence)
    await session.flush()
    log.info("meeting join", extra={"meeting_id": meeting_id, "participant": principal.audit_label})
    return presence


async def record_leave(
    session: AsyncSession, meeting_id: int, principal: Principal, *, at: dt.datetime | None = None
) -> Attendance | None:
    """A participant's media connection went away. Idempotent: without an open presence, nothing."""
    at = at or utcnow()
    presence = await session.scalar(
        select(Attendance)
        .where(
            Attendance.meeting_id == meeting_id, _participant_filter(principal), Attendance.left_at.is_(None)
        )
        .order_by(Attendance.id.desc())
        .limit(1)
        .with_for_update()
    )
    if presence is None:
        return None
    presence.left_at = max(at, presence.joined_at)
    await session.flush()
    log.info("meeting leave", extra={"meeting_id": meeting_id, "participant": principal.audit_label})
    return presence


async def set_residents_count(
    session: AsyncSession, meeting_id: int, kiosk: Principal, count: int
) -> Attendance:
    """How many residents sit in front of the kiosk (entered by the kiosk operator)."""
    if kiosk.role is not Role.KIOSK:
        raise Forbidden("only a kiosk reports its residents", code="not_a_kiosk")
    if not 0 <= count <= 500:
        raise BadRequest("residents count must be 0-500", code="invalid_residents_count")
    presence = await session.scalar(
        select(Attendance)
        .where(Attendance.meeting_id == meeting_id, Attendance.kiosk_id == kiosk.id)
        .order_by(Attendance.id.desc())
        .limit(1)
    )
    if presence is None:
        raise Conflict("the kiosk has not joined this meeting", code="not_present")
    presence.residents_count = count
    await session.flush()
    return presence


async def record_room_join(
    session: AsyncSession, room_id: int, principal: Principal, *, at: dt.datetime | None = None
) -> Attendance | None:
    """For the hub: a join in a room; recorded if a meeting owns the room, else nothing."""
    meeting = await meeting_for_room(session, room_id)
    return None if meeting is None else await record_join(session, meeting.id, principal, at=at)


async def record_room_leave(
    session: AsyncSession, room_id: int, principal: Principal, *, at: dt.datetime | None = None
) -> Attendance | None:
    """For the hub: a leave (or a dropped connection) in a room owned by a meeting."""
    meeting = await meeting_for_room(session, room_id)
    return None if meeting is None else await record_leave(session, meeting.id, principal, at=at)


async def record_room_presence(
    sessionmaker: async_sessionmaker[AsyncSession],
    room_id: int,
    principal: Principal,
    *,
    present: bool,
    at: dt.datetime | None = None,
) -> None:
    """One call for the signaling hub, in its own transaction: ``present=True`` when a participant's
    media connection is up in ``room_id``, ``False`` when it left or was dropped. A room that no
    meeting owns is ignored; a database failure is logged and never breaks the media plane."""
    try:
        async with transaction(sessionmaker) as session:
            if present:
                await record_room_join(session, room_id, principal, at=at)
            else:
                await record_room_leave(session, room_id, principal, at=at)
    except SQLAlchemyError:
        extra = {"room_id": room_id, "participant": principal.audit_label}
        log.exception("attendance not recorded", extra=extra)


async def attendance_of(session: AsyncSession, meeting_id: int) -> Sequence[Attendance]:
    stmt = (
        select(Attendance)
        .where(Attendance.meeting_id == meeting_id)
        .order_by(Attendance.joined_at, Attendance.id)
    )
    return (await session.scalars(stmt)).all()


def attendance_totals(presences: Sequence[Attendance], *, until: dt.datetime) -> list[ParticipantTotal]:
    """Per participant: time present (gaps excluded), gaps, interruptions (open presences count
    up to ``until``)."""
    grouped: dict[tuple[str, int | None, int | None], list[Attendance]] = {}
    for p in presences:
        grouped.setdefault((p.kind, p.account_id, p.kiosk_id), []).append(p)
    totals = []
    for (kind, account_id, kiosk_id), rows in grouped.items():
        present = 0
        gaps = 0
        interruptions = 0
        for row in rows:
            end = row.left_at or max(until, row.joined_at)
            present += int((end - row.joined_at).total_seconds()) - row.gap_seconds
            gaps += row.gap_seconds
            interruptions += len(row.gaps)
        lefts = [r.left_at for r in rows]
        counts = [r.residents_count for r in rows if r.residents_count is not None]
        totals.append(
            ParticipantTotal(
                kind=kind,
                account_id=account_id,
                kiosk_id=kiosk_id,
                name=rows[-1].name,
                first_joined_at=min(r.joined_at for r in rows),
                last_left_at=None if any(left is None for left in lefts) else max(lefts),  # type: ignore[type-var]
                present_seconds=max(present, 0),
                gap_seconds=gaps,
                interruptions=interruptions + len(rows) - 1,
                residents_count=max(counts) if counts else None,
            )
        )
    return sorted(totals, key=lambda t: (t.kind != "official", t.first_joined_at))


# --- recordings -------------------------------------------------------------------


async def register_recording(
    session: AsyncSession,
    meeting_id: int,
    *,
    participant: str,
    path: str,
    started_at: dt.datetime,
    ended_at: dt.datetime | None = None,
    marks: Sequence[dict[str, Any]] = (),
) -> Recording:
    """Register a recording file written by the recorder (``path`` relative to the data directory)."""
    await get_meeting(session, meeting_id)
    if path.startswith("/") or ".." in path.split("/"):
        raise BadRequest("a recording path is relative to the data directory", code="invalid_recording_path")
    if ended_at is not None and ended_at < started_at:
        raise BadRequest("a recording ends after it starts", code="invalid_recording_times")
    recording = Recording(
        meeting_id=meeting_id,
        participant=participant[:120],
        path=path,
        started_at=started_at,
        ended_at=ended_at,
        marks=list(marks),
    )
    session.add(recording)
    await session.flush()
    return recording


async def _participant_names(session: AsyncSession, pids: set[str]) -> dict[str, str]:
    """Display names for SFU participant ids (``a<account id>``, ``k<kiosk id>``)."""
    account_ids = {int(p[1:]) for p in pids if p[:1] == "a" and p[1:].isdigit()}
    kiosk_ids = {int(p[1:]) for p in pids if p[:1] == "k" and p[1:].isdigit()}
    names = {f"a{i}": n for i, n in (await account_names(session, account_ids)).items()}
    if kiosk_ids:
        for kiosk in (await session.scalars(select(Kiosk).where(Kiosk.id.in_(kiosk_ids)))).all():
            names[f"k{kiosk.id}"] = kiosk.label
    return names


async def register_room_recording(
    session: AsyncSession,
    room_id: int,
    files: Sequence[RecordedFile],
    marks: Sequence[Mark],
    data_dir: Path,
) -> tuple[int | None, list[dict[str, Any]]]:
    """Register every file of a finished room recording for the meeting that owns the room; returns
    (meeting id, one summary per registered file). A room without a meeting registers nothing."""
    meeting = await meeting_for_room(session, room_id)
    if meeting is None:
        log.warning("recording of a room without a meeting", extra={"room_id": room_id, "files": len(files)})
        return None, []
    marked = [({"label": m.label, "at": m.at.isoformat(), "offset": round(m.offset, 3)}, m.at) for m in marks]
    names = await _participant_names(session, {f.participant_id for f in files})
    registered: list[dict[str, Any]] = []
    for f in files:
        try:
            relative = f.path.relative_to(data_dir).as_posix()  # the hub records under data_dir
        except ValueError:
            log.error("recording outside the data directory", extra={"path": str(f.path)})
            continue
        name = names.get(f.participant_id, f.participant_id)
        recording = await register_recording(
            session,
            meeting.id,
            participant=name,
            path=relative,
            started_at=f.started_at,
            ended_at=f.ended_at,
            marks=[m for m, at in marked if at <= f.ended_at],
        )
        registered.append(
            {
                "id": recording.id,
                "participant": name,
                "duration": round(f.duration, 3),
                "has_audio": f.has_audio,
                "has_video": f.has_video,
                "url": f"/meetings/{meeting.id}/recordings/{recording.id}",
            }
        )
    log.info("meeting recording registered", extra={"meeting_id": meeting.id, "files": len(registered)})
    return meeting.id, registered


async def recordings_of(session: AsyncSession, meeting_id: int) -> Sequence[Recording]:
    stmt = (
        select(Recording)
        .where(Recording.meeting_id == meeting_id)
        .order_by(Recording.started_at, Recording.id)
    )
    return (await session.scalars(stmt)).all()


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
