"""A meeting's agenda, its minutes and action items, closing the record (the decisions reach the
linked petitions), the decision proposals to the handling department, and the meetings a petition
was discussed in.

Every illegal move is a ``Conflict`` (409) with a stable code; bad input is a ``BadRequest`` (400);
unknown ids are ``NotFound`` (404). Functions take the caller's ``AsyncSession`` and never commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.db import utcnow
from server.errors import BadRequest, Conflict, NotFound
from server.meetings.models import (
    ActionItem,
    AgendaItem,
    AgendaPetition,
    DecisionProposal,
    Meeting,
)
from server.meetings.service import TITLE_MAX, check_officials, check_title, get_meeting
from server.meetings.workflow import MeetingStatus
from server.petitions import service as petitions
from server.petitions.models import Petition
from server.petitions.workflow import Action, PetitionStatus

log = logging.getLogger(__name__)


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
class MeetingRef:
    """A meeting as a petition page lists it."""

    meeting_id: int
    title: str
    starts_at: dt.datetime
    status: str
    agenda_item_title: str
    decisions: str
    outcome: str | None = None


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
    title = check_title(title)
    if not 1 <= planned_minutes <= 600:
        raise BadRequest("planned minutes must be 1-600", code="invalid_planned_minutes")
    if presenter_id is not None:
        await check_officials(session, [presenter_id])
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
        item.title = check_title(title)
    if planned_minutes is not None:
        if not 1 <= planned_minutes <= 600:
            raise BadRequest("planned minutes must be 1-600", code="invalid_planned_minutes")
        item.planned_minutes = planned_minutes
    if presenter_id is not None:
        await check_officials(session, [presenter_id])
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
        await check_officials(session, [owner_id])
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
