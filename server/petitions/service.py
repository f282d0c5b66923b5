"""Petition use cases: filing at a kiosk, who may see what, the status machine, support, notes.

Every change appends a ``PetitionEvent`` (the audit trail) in the same transaction. Personal data
(name, phone, PIN) is never logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import utcnow
from server.errors import BadRequest, Conflict, Forbidden, NotFound
from server.geo.models import Village
from server.org.models import Department
from server.petitions import deadlines, receipts, workflow
from server.petitions.deadlines import PetitionType
from server.petitions.models import (
    Petition,
    PetitionCounter,
    PetitionEvent,
    PetitionMedia,
    PetitionNote,
    PetitionSupport,
)
from server.petitions.sql import insert_ignoring_conflicts
from server.petitions.workflow import Action, IllegalTransition, PetitionStatus, WorkflowState

log = logging.getLogger(__name__)

OPEN_STATUSES = (
    PetitionStatus.RECEIVED.value,
    PetitionStatus.IN_PROGRESS.value,
    PetitionStatus.INFO_REQUESTED.value,
    PetitionStatus.TRANSFERRED.value,
)


@dataclass(frozen=True)
class NewPetition:
    petition_type: PetitionType
    department_id: int | None
    title: str
    body: str
    resident_phone: str  # normalised digits
    resident_name: str | None
    is_public: bool


@dataclass(frozen=True)
class StoredMedia:
    kind: str  # "message" or "photo"
    storage_name: str
    content_type: str
    size_bytes: int
    sha256: str
    duration_s: float | None = None
    has_video: bool = False


@dataclass(frozen=True)
class ActionInput:
    action: Action
    assignee_id: int | None = None
    department_id: int | None = None
    reason: str | None = None
    extension_days: int | None = None
    answer: str | None = None


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    department_id: int | None = None
    unrouted: bool = False
    village_id: int | None = None
    petition_type: str | None = None
    overdue: bool = False
    due_soon: bool = False
    ids: Sequence[int] = field(default_factory=tuple)


def record(
    session: AsyncSession, petition_id: int, actor: Principal | None, action: str, **details: Any
) -> None:
    """Append one audit event (never updated or deleted)."""
    session.add(
        PetitionEvent(
            petition_id=petition_id,
            at=utcnow(),
            actor=actor.audit_label if actor else "system",
            actor_role=actor.role.value if actor else "system",
            action=action,
            details=details,
        )
    )


# --- filing -------------------------------------------------------------------------------------


async def next_receipt_seq(session: AsyncSession, year: int) -> int:
    """Allocate the next sequence of ``year`` inside the caller's transaction.

    The UPDATE takes the row lock (PostgreSQL) or the database write lock (SQLite) until commit, so
    concurrent filings are serialised on the counter and never get the same number; a rolled-back
    filing gives its number back. The first filing of a year inserts the row (ON CONFLICT DO
    NOTHING makes the race between two first filings harmless), then updates it like everyone else.
    """
    bump = (
        update(PetitionCounter)
        .where(PetitionCounter.year == year)
        .values(last_seq=PetitionCounter.last_seq + 1)
        .returning(PetitionCounter.last_seq)
    )
    seq = await session.scalar(bump)
    if seq is None:
        stmt = insert_ignoring_conflicts(session, PetitionCounter).values(year=year, last_seq=0)
        await session.execute(stmt)
        seq = await session.scalar(bump)
    if seq is None or seq > receipts.MAX_SEQ:
        raise Conflict("no receipt numbers left this year", code="receipt_numbers_exhausted")
    return int(seq)


async def file_petition(
    session: AsyncSession,
    kiosk: Principal,
    data: NewPetition,
    pin_hash: str,
    *,
    received_at: dt.datetime | None = None,
) -> Petition:
    """Create a petition for a kiosk (receipt number allocated here). Flushes; the caller commits
    after making its files durable."""
    if kiosk.role is not Role.KIOSK or kiosk.village_id is None:
        raise BadRequest("only a kiosk files petitions", code="not_a_kiosk")
    now = received_at or utcnow()
    year = receipts.receipt_year(now)
    # On a worker thread, and before the transaction's first statement (no lock held meanwhile):
    # the first deadline of a year imports and builds the Korean holiday table, about half a
    # second of CPU that would otherwise stall the event loop for every other request.
    due_at = await asyncio.to_thread(deadlines.compute_due, now, data.petition_type)
    # First statement of the transaction: on SQLite it takes the write lock before any read.
    seq = await next_receipt_seq(session, year)
    department = None
    if data.department_id is not None:
        department = await session.get(Department, data.department_id)
        if department is None or not department.is_active:
            raise BadRequest("no such department", code="unknown_department")
    village = await session.get(Village, kiosk.village_id)
    if village is None:
        raise BadRequest("only a kiosk files petitions", code="not_a_kiosk")
    petition = Petition(
        receipt_no=receipts.format_receipt(year, seq),
        receipt_year=year,
        receipt_seq=seq,
        village_id=kiosk.village_id,
        kiosk_id=kiosk.id,
        petition_type=data.petition_type.value,
        department_id=data.department_id,
        status=PetitionStatus.RECEIVED.value,
        info_requests_count=0,
        extended=False,
        title=data.title,
        body=data.body,
        resident_name=data.resident_name,
        resident_phone=data.resident_phone,
        pin_hash=pin_hash,
        is_public=data.is_public,
        received_at=now,
        due_at=due_at.astimezone(dt.UTC),
        support_count=0,
        # Given, not loaded: the receipt shows them right after the commit, and loading them
        # then would cost the filing another transaction.
        village=village,
        department=department,
        media=[],
    )
    session.add(petition)
    await session.flush()
    record(
        session,
        petition.id,
        kiosk,
        "file",
        receipt_no=petition.receipt_no,
        petition_type=petition.petition_type,
        department_id=petition.department_id,
        is_public=petition.is_public,
    )
    log.info("petition filed", extra={"petition_id": petition.id, "kiosk_id": kiosk.id})
    return petition


def attach_media(session: AsyncSession, petition: Petition, media: StoredMedia) -> PetitionMedia:
    row = PetitionMedia(
        kind=media.kind,
        storage_name=media.storage_name,
        content_type=media.content_type,
        size_bytes=media.size_bytes,
        sha256=media.sha256,
        duration_s=media.duration_s,
        has_video=media.has_video,
    )
    # Through the relationship (its collection is loaded: a new petition's is given, a fetched
    # one's is loaded with it), so the petition lists the row without another query.
    petition.media.append(row)
    return row


# --- who sees what --------------------------------------------------------------------------------


def visible_to(principal: Principal) -> Any:
    """SQL condition: the petitions an account may see. Officials: their department's and unrouted
    ones; admins: all. Kiosks never list petitions through this (see ``public_petitions``)."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.OFFICIAL:
        if principal.department_id is None:
            return Petition.department_id.is_(None)
        return or_(Petition.department_id == principal.department_id, Petition.department_id.is_(None))
    return False


def handles(principal: Principal, petition: Petition) -> bool:
    """True for an official of the handling department: the only view that shows personal data."""
    return (
        principal.role is Role.OFFICIAL
        and principal.department_id is not None
        and petition.department_id == principal.department_id
    )


async def get_for_account(
    session: AsyncSession, principal: Principal, petition_id: int, *, lock: bool = False
) -> Petition:
    stmt = select(Petition).where(Petition.id == petition_id, visible_to(principal))
    if lock:
        stmt = stmt.with_for_update(of=Petition)
    petition = await session.scalar(stmt)
    if petition is None:
        # Same answer for "does not exist" and "not yours": nothing leaks across departments.
        raise NotFound(f"petition {petition_id} not found", code="petition_not_found")
    return petition


def list_query(principal: Principal, filters: Filters, now: dt.datetime) -> Select[Petition]:
    stmt = select(Petition).where(visible_to(principal))
    if filters.status:
        stmt = stmt.where(Petition.status == filters.status)
    if filters.unrouted:
        stmt = stmt.where(Petition.department_id.is_(None))
    elif filters.department_id is not None:
        stmt = stmt.where(Petition.department_id == filters.department_id)
    if filters.village_id is not None:
        stmt = stmt.where(Petition.village_id == filters.village_id)
    if filters.petition_type:
        stmt = stmt.where(Petition.petition_type == filters.petition_type)
    if filters.overdue:
        stmt = stmt.where(Petition.status.in_(OPEN_STATUSES), Petition.due_at < now)
    if filters.due_soon:
        stmt = stmt.where(Petition.status.in_(OPEN_STATUSES), Petition.due_at >= now)
    if filters.ids:
        stmt = stmt.where(Petition.id.in_(list(filters.ids)))
    return stmt.order_by(Petition.due_at, Petition.id)


def deadline_state(petition: Petition, now: dt.datetime) -> deadlines.DeadlineState:
    return deadlines.deadline_state(
        petition.due_at, now, petition.answered_at, petition_type=PetitionType(petition.petition_type)
    )


async def list_petitions(
    session: AsyncSession, principal: Principal, filters: Filters, *, limit: int = 200, offset: int = 0
) -> list[Petition]:
    now = utcnow()
    stmt = list_query(principal, filters, now)
    if filters.due_soon:
        # "Due soon" is counted in office time, so it is decided in Python on open petitions.
        rows = (await session.scalars(stmt)).all()
        soon = [p for p in rows if deadline_state(p, now) is deadlines.DeadlineState.DUE_SOON]
        return soon[offset : offset + limit]
    return list((await session.scalars(stmt.limit(limit).offset(offset))).all())


async def public_petitions(session: AsyncSession, *, limit: int = 50) -> list[Petition]:
    stmt = (
        select(Petition)
        .where(Petition.is_public.is_(True), Petition.status != PetitionStatus.CLOSED.value)
        .order_by(Petition.received_at.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def get_public(session: AsyncSession, petition_id: int, *, lock: bool = False) -> Petition:
    stmt = select(Petition).where(Petition.id == petition_id, Petition.is_public.is_(True))
    if lock:
        stmt = stmt.with_for_update(of=Petition)
    petition = await session.scalar(stmt)
    if petition is None:
        raise NotFound(f"public petition {petition_id} not found", code="petition_not_found")
    return petition


async def find_by_receipt(session: AsyncSession, receipt_text: str) -> Petition | None:
    try:
        year, seq = receipts.parse_receipt(receipt_text)
    except ValueError:
        return None
    return await session.scalar(
        select(Petition).where(Petition.receipt_year == year, Petition.receipt_seq == seq)
    )


# --- status machine --------------------------------------------------------------------------------


def workflow_state(petition: Petition) -> WorkflowState:
    return WorkflowState(
        status=PetitionStatus(petition.status),
        info_requests_count=petition.info_requests_count,
        extended=petition.extended,
        department_id=petition.department_id,
        assignee_id=petition.assignee_id,
    )


def allowed_actions(petition: Petition, principal: Principal | None = None) -> list[str]:
    """The status machine's next actions; with ``principal``, only those that principal may take."""
    actions = workflow.allowed_actions(workflow_state(petition))
    if principal is not None:
        actions = frozenset(a for a in actions if refusal(principal, petition, a) is None)
    return sorted(a.value for a in actions)


def refusal(principal: Principal, petition: Petition, action: Action) -> str | None:
    """Why ``principal`` may not take ``action`` on ``petition`` (None if it may), whatever the
    status machine says.

    * Withdrawal (취하) is the resident's own act: at a kiosk after the receipt's PIN, or by an
      admin who records the resident's reason; never by an official.
    * A request no department has yet is routed by triage only (``Principal.may_triage``: admins
      and officials an admin granted it); other officials see it masked and cannot act on it,
      so nobody can take a request to their own department just to read the resident's data.
    * Kiosks take no other action."""
    if action is Action.WITHDRAW:
        if principal.role in (Role.KIOSK, Role.ADMIN):
            return None
        return "only the resident (at a kiosk, with the PIN) or an admin withdraws a request"
    if principal.role is Role.KIOSK:
        return "a kiosk only withdraws"
    if petition.department_id is None and not principal.may_triage:
        return "only triage routes a request that no department has yet"
    return None


async def _check_assignee(session: AsyncSession, assignee_id: int | None, department_id: int | None) -> None:
    # None cannot come out of an assign (the workflow requires the id); it is refused all the same.
    account = None if assignee_id is None else await session.get(Account, assignee_id)
    if account is None or not account.is_active:
        raise BadRequest("no such official", code="unknown_assignee")
    if account.role == Role.OFFICIAL.value and account.department_id != department_id:
        raise BadRequest("the official belongs to another department", code="assignee_wrong_department")


async def apply_action(
    session: AsyncSession, principal: Principal, petition: Petition, data: ActionInput
) -> Petition:
    """Apply one status-machine action; illegal moves raise Conflict (409), actions the principal
    may not take (``refusal``) Forbidden (403)."""
    refused = refusal(principal, petition, data.action)
    if refused is not None:
        code = "withdraw_not_allowed" if data.action is Action.WITHDRAW else "triage_only"
        raise Forbidden(refused, code=code)
    if data.action is Action.WITHDRAW and principal.role is Role.ADMIN and not (data.reason or "").strip():
        raise BadRequest(
            "an admin withdraws a request only with the resident's reason", code="reason_required"
        )
    state = workflow_state(petition)
    params: dict[str, Any] = {}
    action = data.action
    now = utcnow()
    ptype = PetitionType(petition.petition_type)
    if action is Action.ASSIGN:
        params["assignee_id"] = data.assignee_id if data.assignee_id is not None else principal.id
        department = data.department_id
        if department is None and petition.department_id is None:
            department = principal.department_id
        if department is not None:
            params["department_id"] = department
    elif action in (Action.REQUEST_INFO, Action.CLOSE, Action.REOPEN, Action.WITHDRAW):
        if data.reason is not None:
            params["reason"] = data.reason
    elif action is Action.TRANSFER:
        params["department_id"] = data.department_id
        if data.reason is not None:
            params["reason"] = data.reason
    elif action is Action.EXTEND:
        params.update(reason=data.reason, extension_days=data.extension_days, petition_type=ptype)
    elif action is Action.ANSWER:
        if not data.answer or not data.answer.strip():
            raise BadRequest("an answer needs text", code="answer_required")
    try:
        new_state = workflow.apply(state, action, **params)
    except IllegalTransition as exc:
        raise Conflict(
            str(exc),
            code="illegal_transition",
            details={
                "from_status": exc.from_status.value,
                "action": exc.action.value,
                "reason": exc.reason,
            },
        ) from exc

    if action is Action.ASSIGN:
        await _check_assignee(session, new_state.assignee_id, new_state.department_id)
        if new_state.department_id != petition.department_id:
            await _check_department(session, new_state.department_id)
    if action is Action.TRANSFER:
        await _check_department(session, new_state.department_id)
    details: dict[str, Any] = {"from_status": petition.status, "to_status": new_state.status.value}
    if action is Action.REQUEST_INFO:
        petition.info_request_text = data.reason
        petition.paused_at = now
    if action is Action.SUPPLEMENT and petition.paused_at is not None:
        petition.due_at = deadlines.due_after_pause(
            petition.due_at, petition.paused_at, now, ptype
        ).astimezone(dt.UTC)
        petition.paused_at = None
        details["due_at"] = petition.due_at.isoformat()
    if action is Action.EXTEND:
        assert data.extension_days is not None
        petition.due_at = deadlines.extended_due(
            petition.due_at, petition.received_at, ptype, data.extension_days
        ).astimezone(dt.UTC)
        petition.extension_reason = data.reason
        details.update(extension_days=data.extension_days, due_at=petition.due_at.isoformat())
    if action is Action.ANSWER:
        petition.answer_text = (data.answer or "").strip()
        petition.answered_at = now
        petition.answered_by = principal.id if principal.is_account else None
    if action is Action.REOPEN:
        petition.answered_at = None
    if new_state.status is PetitionStatus.CLOSED:
        petition.closed_at = now
    if data.reason:
        details["reason"] = data.reason
    if action in (Action.TRANSFER, Action.ASSIGN):
        details["department_id"] = new_state.department_id
        details["assignee_id"] = new_state.assignee_id
    petition.status = new_state.status.value
    petition.info_requests_count = new_state.info_requests_count
    petition.extended = new_state.extended
    petition.department_id = new_state.department_id
    petition.assignee_id = new_state.assignee_id
    record(session, petition.id, principal, action.value, **details)
    await session.flush()
    await session.refresh(petition, attribute_names=["department"])
    return petition


async def withdraw_by_resident(session: AsyncSession, kiosk: Principal, petition_id: int) -> Petition:
    """Withdraw (취하) a petition whose receipt PIN the resident just gave at ``kiosk``."""
    petition = await session.scalar(
        select(Petition).where(Petition.id == petition_id).with_for_update(of=Petition)
    )
    if petition is None:
        raise NotFound(f"petition {petition_id} not found", code="petition_not_found")
    action = ActionInput(action=Action.WITHDRAW, reason="withdrawn by the resident at a kiosk")
    return await apply_action(session, kiosk, petition, action)


async def _check_department(session: AsyncSession, department_id: int | None) -> None:
    department = None if department_id is None else await session.get(Department, department_id)
    if department is None or not department.is_active:
        raise BadRequest("no such department", code="unknown_department")


# --- support and notes ------------------------------------------------------------------------------


async def add_support(session: AsyncSession, kiosk: Principal, petition_id: int, session_id: str) -> Petition:
    petition = await get_public(session, petition_id, lock=True)
    if petition.status == PetitionStatus.CLOSED.value:
        raise Conflict("a closed petition takes no more support", code="petition_closed")
    inserted = await session.scalar(
        insert_ignoring_conflicts(session, PetitionSupport)
        .values(petition_id=petition.id, kiosk_id=kiosk.id, session_id=session_id, created_at=utcnow())
        .returning(PetitionSupport.id)
    )
    if inserted is None:
        raise Conflict("this kiosk session already supported the petition", code="already_supported")
    await session.execute(
        update(Petition).where(Petition.id == petition.id).values(support_count=Petition.support_count + 1)
    )
    record(session, petition.id, kiosk, "support")
    await session.refresh(petition, attribute_names=["support_count"])
    return petition


async def add_note(
    session: AsyncSession, principal: Principal, petition: Petition, text: str
) -> PetitionNote:
    note = PetitionNote(
        petition_id=petition.id, author_id=principal.id, author_name=principal.display_name, text=text
    )
    session.add(note)
    record(session, petition.id, principal, "note")
    await session.flush()
    return note


async def notes_of(session: AsyncSession, petition_id: int) -> list[PetitionNote]:
    stmt = select(PetitionNote).where(PetitionNote.petition_id == petition_id).order_by(PetitionNote.id)
    return list((await session.scalars(stmt)).all())


async def events_of(session: AsyncSession, petition_id: int) -> list[PetitionEvent]:
    stmt = select(PetitionEvent).where(PetitionEvent.petition_id == petition_id).order_by(PetitionEvent.id)
    return list((await session.scalars(stmt)).all())


async def media_of(session: AsyncSession, petition: Petition, media_id: int) -> PetitionMedia:
    media = await session.scalar(
        select(PetitionMedia).where(
            and_(PetitionMedia.id == media_id, PetitionMedia.petition_id == petition.id)
        )
    )
    if media is None:
        raise NotFound(f"media {media_id} not found", code="media_not_found")
    return media
