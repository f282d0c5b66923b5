"""Meetings over HTTP, what every audience shares, and the officials' and kiosks' pages.

Shared: the request inputs (also declared in ``openapi_spec.py``), the meeting's JSON, form
parsing and local times, the manager check, the transitions, recording, admission to the live room
and deciding proposals. Pages: joining a meeting (officials and kiosks), the officials' meeting list
and their answer to a decision proposal.

The other audiences have a module each: ``api.py`` (the JSON API), ``admin.py`` (the administrator's
pages), ``exports.py`` (the record page, its JSON and CSV, recording files, iCalendar feeds)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import AwareDatetime, Field

from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.errors import AppError, BadRequest, Conflict, Forbidden, NotFound
from server.keys import ROOM_HUB, SESSIONMAKER, SETTINGS
from server.meetings import agenda as meeting_agenda
from server.meetings import service
from server.meetings.ending import ending
from server.meetings.models import Meeting
from server.meetings.workflow import CURRENT, MeetingStatus
from server.rendering import render
from server.room_urls import room_url
from server.routing import allow, principal_of
from server.signaling.room_hub import RecordingStateError
from server.timeutil import SEOUL, format_local
from server.validation import Id, Input, is_id, path_id

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_IDS = 500
TEXT_MAX = 20000


# --- inputs ---------------------------------------------------------------------------------------


class MeetingInput(Input):
    title: str = Field(min_length=1, max_length=service.TITLE_MAX)
    purpose: str = Field(default="", max_length=4000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    chair_id: Id
    official_ids: list[Id] = Field(default_factory=list, max_length=MAX_IDS)
    village_ids: list[Id] = Field(default_factory=list, max_length=MAX_IDS)
    join_mode: Literal["auto", "touch"] = "touch"
    lobby_mode: Literal["wait", "auto_admit"] = "auto_admit"


class MeetingPatch(Input):
    title: str | None = Field(default=None, min_length=1, max_length=service.TITLE_MAX)
    purpose: str | None = Field(default=None, max_length=4000)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    chair_id: Id | None = None
    official_ids: list[Id] | None = Field(default=None, max_length=MAX_IDS)
    village_ids: list[Id] | None = Field(default=None, max_length=MAX_IDS)
    join_mode: Literal["auto", "touch"] | None = None
    lobby_mode: Literal["wait", "auto_admit"] | None = None


class TransitionInput(Input):
    action: Literal["start", "end", "cancel", "close_record"]
    reason: str = Field(default="", max_length=2000)
    apply_decisions: bool = True


class ProposalDecision(Input):
    action: Literal["confirm", "dismiss"]


class AgendaInput(Input):
    title: str | None = Field(default=None, min_length=1, max_length=service.TITLE_MAX)
    from_petition_id: Id | None = None
    planned_minutes: int = Field(default=10, ge=1, le=600)
    presenter_id: Id | None = None
    petition_ids: list[Id] = Field(default_factory=list, max_length=50)
    position: int | None = Field(default=None, ge=1)


class AgendaPatch(Input):
    title: str | None = Field(default=None, min_length=1, max_length=service.TITLE_MAX)
    planned_minutes: int | None = Field(default=None, ge=1, le=600)
    presenter_id: Id | None = None
    petition_ids: list[Id] | None = Field(default=None, max_length=50)
    position: int | None = Field(default=None, ge=1)


class MinutesInput(Input):
    notes: str | None = Field(default=None, max_length=TEXT_MAX)
    decisions: str | None = Field(default=None, max_length=TEXT_MAX)


class ActionItemInput(Input):
    text: str = Field(min_length=1, max_length=2000)
    owner_id: Id | None = None
    due_date: dt.date | None = None


class ResidentsInput(Input):
    count: int = Field(ge=0, le=500)


# --- helpers --------------------------------------------------------------------------------------


def form_ids(form: MultiDictProxy[Any], name: str) -> tuple[int, ...]:
    values = [str(v) for v in form.getall(name, [])]
    if len(values) > MAX_IDS or not all(is_id(v) for v in values):
        raise BadRequest(f"{name} must be ids", code="validation_failed", details=[{"field": name}])
    return tuple(int(v) for v in values)


def form_int(form: MultiDictProxy[Any], name: str, *, required: bool = True) -> int | None:
    raw = str(form.get(name) or "").strip()
    if not raw and not required:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise BadRequest(f"{name} must be a number", code="validation_failed", details=[{"field": name}])
    return int(raw)


def parse_local(value: str, field: str) -> dt.datetime:
    """A ``datetime-local`` form value, read on Gangjin's clock (Asia/Seoul)."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadRequest(
            f"{field} is not a date and time", code="invalid_time", details=[{"field": field}]
        ) from exc
    return parsed.replace(tzinfo=SEOUL) if parsed.tzinfo is None else parsed


def local_input(value: dt.datetime) -> str:
    return format_local(value, "%Y-%m-%dT%H:%M")


_WEEKDAYS_KO = "월화수목금토일"


def format_when(value: dt.datetime, locale: str) -> str:
    """A start time as a resident reads it: ``3월 5일 (화) 오전 10:00`` / ``Tue 5 Mar, 10:00``."""
    local = value.astimezone(SEOUL)
    if locale == "ko":
        half = "오전" if local.hour < 12 else "오후"
        hour = local.hour % 12 or 12
        weekday = _WEEKDAYS_KO[local.weekday()]
        return f"{local.month}월 {local.day}일 ({weekday}) {half} {hour}:{local.minute:02d}"
    return local.strftime("%a %-d %b, %H:%M")


def meeting_json(meeting: Meeting) -> dict[str, Any]:
    return {
        "id": meeting.id,
        "title": meeting.title,
        "purpose": meeting.purpose,
        "status": meeting.status,
        "starts_at": meeting.starts_at.isoformat(),
        "ends_at": meeting.ends_at.isoformat(),
        "chair_id": meeting.chair_id,
        "official_ids": [o.account_id for o in meeting.officials],
        "village_ids": [v.village_id for v in meeting.villages],
        "join_mode": meeting.join_mode,
        "lobby_mode": meeting.lobby_mode,
        "room_id": meeting.room_id,
        "started_at": meeting.started_at.isoformat() if meeting.started_at else None,
        "ended_at": meeting.ended_at.isoformat() if meeting.ended_at else None,
        "cancelled_at": meeting.cancelled_at.isoformat() if meeting.cancelled_at else None,
        "record_closed_at": meeting.record_closed_at.isoformat() if meeting.record_closed_at else None,
        "agenda": [
            {
                "id": item.id,
                "position": item.position,
                "title": item.title,
                "planned_minutes": item.planned_minutes,
                "presenter_id": item.presenter_id,
                "petition_ids": [p.petition_id for p in item.petitions],
                "notes": item.notes,
                "decisions": item.decisions,
                "actions": [
                    {
                        "id": a.id,
                        "text": a.text,
                        "owner_id": a.owner_id,
                        "due_date": a.due_date.isoformat() if a.due_date else None,
                    }
                    for a in item.actions
                ],
            }
            for item in meeting.agenda
        ],
    }


async def reload(session: Any, meeting_id: int) -> Meeting:
    session.expire_all()
    return await service.get_meeting(session, meeting_id)


def action_of(request: web.Request, allowed: Sequence[str]) -> str:
    """The ``{action}`` of the path; 404 for one the route does not know."""
    action = request.match_info["action"]
    if action not in allowed:
        raise NotFound("no such action", code="not_found")
    return action


async def list_names(session: Any, meetings: Sequence[Meeting]) -> dict[str, Any]:
    """The chairs' and invited villages' names that the meetings_table macro shows."""
    return {
        "chair_names": await service.account_names(session, {m.chair_id for m in meetings}),
        "village_names": await service.village_names(
            session, {v.village_id for m in meetings for v in m.villages}
        ),
    }


async def managed(session: Any, principal: Principal, meeting_id: int, *, lock: bool = True) -> Meeting:
    meeting = await service.get_visible(session, principal, meeting_id)
    service.require_manager(principal, meeting)
    if lock:
        meeting = await service.get_meeting(session, meeting_id, lock=True)
    return meeting


async def transition(
    request: web.Request, meeting_id: int, data: TransitionInput
) -> tuple[Meeting, meeting_agenda.CloseReport | None]:
    principal = principal_of(request)
    report: meeting_agenda.CloseReport | None = None
    async with ending(request.app[SESSIONMAKER], request.app[ROOM_HUB]) as work:
        session = work.session
        meeting = await managed(session, principal, meeting_id)
        if data.action == "start":
            await service.start_meeting(session, principal, meeting)
        elif data.action == "end":
            await work.end_meeting(principal, meeting)
        elif data.action == "cancel":
            if principal.role is not Role.ADMIN:
                raise Forbidden("only an administrator cancels a meeting", code="admin_only")
            await service.cancel_meeting(session, principal, meeting, data.reason)
        else:
            report = await meeting_agenda.close_record(
                session, principal, meeting, apply_decisions=data.apply_decisions
            )
        meeting = await reload(session, meeting_id)
    return meeting, report


def report_json(report: meeting_agenda.CloseReport | None) -> list[dict[str, Any]] | None:
    if report is None:
        return None
    return [
        {"petition_id": o.petition_id, "receipt_no": o.receipt_no, "outcome": o.outcome, "detail": o.detail}
        for o in report.outcomes
    ]


# --- recording ------------------------------------------------------------------------------------

#: The first chapter mark of every recording (there is no "current agenda item" in a live meeting).
RECORDING_STARTED_MARK = "녹화 시작"


def recordings_dir(app: web.Application, meeting_id: int) -> Any:
    return app[SETTINGS].data_dir / "recordings" / str(meeting_id)


async def _live_room(request: web.Request, meeting_id: int) -> int:
    """The room of a live meeting the principal runs (chair or admin); 409 if it is not live."""
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await managed(session, principal_of(request), meeting_id, lock=False)
        if meeting.status != MeetingStatus.LIVE or meeting.room_id is None:
            raise Conflict("the meeting is not live", code="meeting_not_live")
        return meeting.room_id


async def start_recording(request: web.Request, meeting_id: int) -> None:
    room_id = await _live_room(request, meeting_id)
    try:
        await request.app[ROOM_HUB].start_recording(
            str(room_id), recordings_dir(request.app, meeting_id), RECORDING_STARTED_MARK
        )
    except RecordingStateError as exc:
        raise Conflict("the meeting is already being recorded", code="already_recording") from exc
    log.info("meeting recording started", extra={"meeting_id": meeting_id, "room_id": room_id})


async def stop_recording(request: web.Request, meeting_id: int) -> list[dict[str, Any]]:
    room_id = await _live_room(request, meeting_id)
    if not request.app[ROOM_HUB].is_recording(str(room_id)):
        raise Conflict("the meeting is not being recorded", code="not_recording")
    return await _stop_and_register(request.app, room_id)


async def _stop_and_register(app: web.Application, room_id: int) -> list[dict[str, Any]]:
    """Stop the room's recording and register every file for the meeting's record."""
    try:
        return await app[ROOM_HUB].finish_recording(str(room_id))
    except RecordingStateError as exc:
        raise Conflict("the meeting is not being recorded", code="not_recording") from exc


# --- admission and joining -----------------------------------------------------------------------


async def admission(request: web.Request) -> dict[str, Any]:
    """200 with the room for an admitted caller; 409 when invited but not now; 403 otherwise."""
    principal = principal_of(request)
    meeting_id = path_id(request, "meeting_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_meeting(session, meeting_id)
        if await service.may_join_meeting(session, principal, meeting):
            if meeting.room_id is None:
                raise Conflict("the meeting has not opened its room yet", code="meeting_not_live")
            return {
                "may_join": True,
                "room_id": meeting.room_id,
                "url": room_url(principal.role, meeting.room_id),
            }
        invited = (
            principal.village_id in {v.village_id for v in meeting.villages}
            if principal.role is Role.KIOSK
            else service.may_view(principal, meeting)
        )
        if invited:
            raise Conflict(
                f"the meeting is {meeting.status}",
                code="meeting_not_live",
                details={"status": meeting.status},
            )
        raise Forbidden("you are not invited to this meeting", code="not_invited")


@allow(Role.ADMIN, Role.OFFICIAL)
async def join_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther((await admission(request))["url"])


@allow(Role.KIOSK)
async def kiosk_join_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther((await admission(request))["url"])


# --- decisions proposed to the handling department ------------------------------------------------


def proposal_json(view: meeting_agenda.ProposalView) -> dict[str, Any]:
    """A proposed decision as the handling department sees it (no resident's personal data)."""
    p = view.proposal
    return {
        "id": p.id,
        "status": p.status,
        "answer": p.answer,
        "meeting_id": p.meeting_id,
        "meeting_title": view.meeting_title,
        "petition_id": view.petition.id,
        "receipt_no": view.petition.receipt_no,
        "petition_title": view.petition.title,
        "created_at": p.created_at.isoformat() if p.created_at else None,
        "decided_at": p.decided_at.isoformat() if p.decided_at else None,
    }


async def decide(request: web.Request, action: str) -> meeting_agenda.ProposalView:
    proposal_id = path_id(request, "proposal_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        view = await meeting_agenda.decide_proposal(
            session, principal_of(request), proposal_id, confirm=action == "confirm"
        )
        return view


@allow(Role.ADMIN, Role.OFFICIAL)
async def official_decide_proposal(request: web.Request) -> web.StreamResponse:
    """The form on the officials' meetings page; a refusal shows the page again with the reason."""
    form = await request.post()
    action = str(form.get("action") or "")
    if action not in ("confirm", "dismiss"):
        raise BadRequest("action must be confirm or dismiss", code="validation_failed")
    try:
        await decide(request, action)
    except Conflict as exc:
        return await _official_list(request, exc)
    raise web.HTTPSeeOther("/official/meetings#proposals")


@allow(Role.ADMIN, Role.OFFICIAL)
async def official_list_page(request: web.Request) -> web.Response:
    return await _official_list(request)


async def _official_list(request: web.Request, error: AppError | None = None) -> web.Response:
    """The meetings an official chairs or is invited to: join while live, the record, the feed."""
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        meetings = await service.feed_for_official(session, principal.id)
        now = utcnow()
        context = {
            "upcoming": [m for m in meetings if m.status in CURRENT and m.ends_at > now],
            "past": [m for m in reversed(meetings) if not (m.status in CURRENT and m.ends_at > now)],
            "proposals": await meeting_agenda.pending_proposals(session, principal),
            "error": error,
            **await list_names(session, meetings),
        }
        return render(request, "meetings/official_list.html", context, status=error.status if error else 200)
