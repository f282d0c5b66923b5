"""Meetings over HTTP: the JSON API (``/api/v1/meetings…``), the admin pages, the record page and its
exports, the iCalendar feeds, and the kiosk's upcoming-meetings list."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import AwareDatetime, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.errors import AppError, BadRequest, Conflict, Forbidden, NotFound
from server.geo.models import Village
from server.keys import LOCALE, MEETINGS, SESSIONMAKER, SETTINGS
from server.kiosks.models import Kiosk
from server.meetings import agenda as meeting_agenda
from server.meetings import attendance, ics, service
from server.meetings import recordings as meeting_recordings
from server.meetings.ending import ending
from server.meetings.models import Meeting
from server.meetings.record import record_csv_rows, record_data
from server.meetings.workflow import CURRENT, MeetingStatus
from server.petitions.models import Petition
from server.petitions.service import OPEN_STATUSES
from server.rendering import render
from server.room_urls import room_url
from server.routing import allow, principal_of
from server.signaling.room_hub import RecordingStateError
from server.spreadsheet import formula_safe
from server.timeutil import SEOUL, format_local
from server.validation import Id, Input, is_id, json_body, path_id

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


def _id(request: web.Request, name: str) -> int:
    return path_id(request, name)


def _form_ids(form: MultiDictProxy[Any], name: str) -> tuple[int, ...]:
    values = [str(v) for v in form.getall(name, [])]
    if len(values) > MAX_IDS or not all(is_id(v) for v in values):
        raise BadRequest(f"{name} must be ids", code="validation_failed", details=[{"field": name}])
    return tuple(int(v) for v in values)


def _form_int(form: MultiDictProxy[Any], name: str, *, required: bool = True) -> int | None:
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


async def _reload(session: Any, meeting_id: int) -> Meeting:
    session.expire_all()
    return await service.get_meeting(session, meeting_id)


async def _scheduled_json(session: Any, meeting_id: int, result: service.ScheduleResult) -> dict[str, Any]:
    """The meeting as stored after scheduling or changing it, and the invited villages with no kiosk."""
    meeting = await _reload(session, meeting_id)
    return {
        "meeting": meeting_json(meeting),
        "villages_without_kiosk": list(result.villages_without_kiosk),
    }


def _action_of(request: web.Request, allowed: Sequence[str]) -> str:
    """The ``{action}`` of the path; 404 for one the route does not know."""
    action = request.match_info["action"]
    if action not in allowed:
        raise NotFound("no such action", code="not_found")
    return action


async def _list_names(session: Any, meetings: Sequence[Meeting]) -> dict[str, Any]:
    """The chairs' and invited villages' names that the meetings_table macro shows."""
    return {
        "chair_names": await service.account_names(session, {m.chair_id for m in meetings}),
        "village_names": await service.village_names(
            session, {v.village_id for m in meetings for v in m.villages}
        ),
    }


async def _managed(session: Any, principal: Principal, meeting_id: int, *, lock: bool = True) -> Meeting:
    meeting = await service.get_visible(session, principal, meeting_id)
    service.require_manager(principal, meeting)
    if lock:
        meeting = await service.get_meeting(session, meeting_id, lock=True)
    return meeting


async def _transition(
    request: web.Request, meeting_id: int, data: TransitionInput
) -> tuple[Meeting, meeting_agenda.CloseReport | None]:
    principal = principal_of(request)
    report: meeting_agenda.CloseReport | None = None
    async with ending(request.app[SESSIONMAKER], request.app[MEETINGS]) as work:
        session = work.session
        meeting = await _managed(session, principal, meeting_id)
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
        meeting = await _reload(session, meeting_id)
    return meeting, report


def _report_json(report: meeting_agenda.CloseReport | None) -> list[dict[str, Any]] | None:
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
        meeting = await _managed(session, principal_of(request), meeting_id, lock=False)
        if meeting.status != MeetingStatus.LIVE or meeting.room_id is None:
            raise Conflict("the meeting is not live", code="meeting_not_live")
        return meeting.room_id


async def _start_recording(request: web.Request, meeting_id: int) -> None:
    room_id = await _live_room(request, meeting_id)
    try:
        await request.app[MEETINGS].start_recording(
            str(room_id), recordings_dir(request.app, meeting_id), RECORDING_STARTED_MARK
        )
    except RecordingStateError as exc:
        raise Conflict("the meeting is already being recorded", code="already_recording") from exc
    log.info("meeting recording started", extra={"meeting_id": meeting_id, "room_id": room_id})


async def _stop_recording(request: web.Request, meeting_id: int) -> list[dict[str, Any]]:
    room_id = await _live_room(request, meeting_id)
    if not request.app[MEETINGS].is_recording(str(room_id)):
        raise Conflict("the meeting is not being recorded", code="not_recording")
    return await _stop_and_register(request.app, room_id)


async def _stop_and_register(app: web.Application, room_id: int) -> list[dict[str, Any]]:
    """Stop the room's recording and register every file for the meeting's record."""
    try:
        return await app[MEETINGS].finish_recording(str(room_id))
    except RecordingStateError as exc:
        raise Conflict("the meeting is not being recorded", code="not_recording") from exc


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_recording_start(request: web.Request) -> web.Response:
    await _start_recording(request, _id(request, "meeting_id"))
    return web.json_response({"recording": True})


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_recording_stop(request: web.Request) -> web.Response:
    files = await _stop_recording(request, _id(request, "meeting_id"))
    return web.json_response({"recording": False, "files": files})


@allow(Role.ADMIN, Role.OFFICIAL)
async def recording_file(request: web.Request) -> web.StreamResponse:
    """One recording file (WebM), for those who may see the meeting's record; Range requests work."""
    meeting_id, recording_id = _id(request, "meeting_id"), _id(request, "recording_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        await service.get_visible(session, principal_of(request), meeting_id)
        recordings = await meeting_recordings.recordings_of(session, meeting_id)
        recording = next((r for r in recordings if r.id == recording_id), None)
        if recording is None:
            raise NotFound("no such recording", code="recording_not_found")
        relative = recording.path
    data_dir = request.app[SETTINGS].data_dir.resolve()
    path = (data_dir / relative).resolve()
    if not path.is_relative_to(data_dir) or not path.is_file():
        raise NotFound("the recording file is missing", code="recording_not_found")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "video/webm",
            "Content-Disposition": f'inline; filename="{path.name}"',
            "Cache-Control": "private, no-store",
        },
    )


@allow(Role.ADMIN)
async def admin_recording(request: web.Request) -> web.StreamResponse:
    action = _action_of(request, ("start", "stop"))

    async def work(meeting_id: int, form: MultiDictProxy[Any]) -> None:
        if action == "start":
            await _start_recording(request, meeting_id)
        else:
            await _stop_recording(request, meeting_id)

    return await _admin_post(request, work)


# --- JSON API -------------------------------------------------------------------------------------


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_list(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meetings = await service.list_meetings(session, principal_of(request))
        return web.json_response({"meetings": [meeting_json(m) for m in meetings]})


@allow(Role.ADMIN)
async def api_create(request: web.Request) -> web.Response:
    data = await json_body(request, MeetingInput)
    draft = service.MeetingDraft(
        title=data.title,
        purpose=data.purpose,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        chair_id=data.chair_id,
        official_ids=tuple(data.official_ids),
        village_ids=tuple(data.village_ids),
        join_mode=data.join_mode,
        lobby_mode=data.lobby_mode,
    )
    async with transaction(request.app[SESSIONMAKER]) as session:
        result = await service.schedule_meeting(session, principal_of(request), draft)
        body = await _scheduled_json(session, result.meeting.id, result)
    return web.json_response(body, status=201)


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_get(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_visible(session, principal_of(request), _id(request, "meeting_id"))
        return web.json_response({"meeting": meeting_json(meeting)})


@allow(Role.ADMIN)
async def api_patch(request: web.Request) -> web.Response:
    data = await json_body(request, MeetingPatch)
    meeting_id = _id(request, "meeting_id")
    changes = service.MeetingChanges(
        title=data.title,
        purpose=data.purpose,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        chair_id=data.chair_id,
        official_ids=tuple(data.official_ids) if data.official_ids is not None else None,
        village_ids=tuple(data.village_ids) if data.village_ids is not None else None,
        join_mode=data.join_mode,
        lobby_mode=data.lobby_mode,
    )
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_meeting(session, meeting_id, lock=True)
        result = await service.update_meeting(session, principal_of(request), meeting, changes)
        body = await _scheduled_json(session, meeting_id, result)
    return web.json_response(body)


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_transition(request: web.Request) -> web.Response:
    data = await json_body(request, TransitionInput)
    meeting, report = await _transition(request, _id(request, "meeting_id"), data)
    body: dict[str, Any] = {"meeting": meeting_json(meeting)}
    if report is not None:
        body["petitions"] = _report_json(report)
    return web.json_response(body)


async def _change_managed(
    request: web.Request, meeting_id: int, change: Callable[[AsyncSession, Meeting], Awaitable[T]]
) -> tuple[T, dict[str, Any]]:
    """Run ``change`` on a meeting the caller manages (locked), in one transaction.

    Returns what ``change`` returned and the meeting as stored afterwards, as JSON."""
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await _managed(session, principal_of(request), meeting_id)
        result = await change(session, meeting)
        return result, meeting_json(await _reload(session, meeting_id))


async def _change_item(
    request: web.Request, change: Callable[[AsyncSession, Meeting, int], Awaitable[object]]
) -> web.Response:
    """Run ``change`` on the path's agenda item of a meeting the caller manages; reply with the meeting."""
    meeting_id, item_id = _id(request, "meeting_id"), _id(request, "item_id")
    _, meeting = await _change_managed(request, meeting_id, lambda session, m: change(session, m, item_id))
    return web.json_response({"meeting": meeting})


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_add_agenda(request: web.Request) -> web.Response:
    data = await json_body(request, AgendaInput)
    actor = principal_of(request)

    async def add(session: AsyncSession, meeting: Meeting) -> int:
        if data.from_petition_id is not None:
            item = await meeting_agenda.add_item_from_petition(
                session, meeting, data.from_petition_id, actor=actor, planned_minutes=data.planned_minutes
            )
        elif data.title is not None:
            item = await meeting_agenda.add_agenda_item(
                session,
                meeting,
                data.title,
                planned_minutes=data.planned_minutes,
                presenter_id=data.presenter_id,
                petition_ids=data.petition_ids,
                position=data.position,
                actor=actor,
            )
        else:
            raise BadRequest("an agenda item needs a title or a petition", code="validation_failed")
        # Read before the reload expires it.
        return item.id

    item_id, meeting = await _change_managed(request, _id(request, "meeting_id"), add)
    return web.json_response({"item_id": item_id, "meeting": meeting}, status=201)


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_patch_agenda(request: web.Request) -> web.Response:
    data = await json_body(request, AgendaPatch)

    async def patch(session: AsyncSession, meeting: Meeting, item_id: int) -> None:
        await meeting_agenda.update_agenda_item(
            session,
            meeting,
            item_id,
            title=data.title,
            planned_minutes=data.planned_minutes,
            presenter_id=data.presenter_id,
            petition_ids=data.petition_ids,
            actor=principal_of(request),
        )
        if data.position is not None:
            await meeting_agenda.move_agenda_item(session, meeting, item_id, data.position)

    return await _change_item(request, patch)


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_delete_agenda(request: web.Request) -> web.Response:
    return await _change_item(request, meeting_agenda.delete_agenda_item)


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_minutes(request: web.Request) -> web.Response:
    data = await json_body(request, MinutesInput)
    return await _change_item(
        request,
        lambda session, meeting, item_id: meeting_agenda.write_minutes(
            session, meeting, item_id, notes=data.notes, decisions=data.decisions
        ),
    )


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_add_action(request: web.Request) -> web.Response:
    data = await json_body(request, ActionItemInput)
    meeting_id, item_id = _id(request, "meeting_id"), _id(request, "item_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await _managed(session, principal_of(request), meeting_id)
        action = await meeting_agenda.add_action_item(
            session, meeting, item_id, data.text, owner_id=data.owner_id, due_date=data.due_date
        )
        return web.json_response({"action_item_id": action.id}, status=201)


async def _admission(request: web.Request) -> dict[str, Any]:
    """200 with the room for an admitted caller; 409 when invited but not now; 403 otherwise."""
    principal = principal_of(request)
    meeting_id = _id(request, "meeting_id")
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


@allow(Role.ADMIN, Role.OFFICIAL, Role.KIOSK)
async def api_admission(request: web.Request) -> web.Response:
    return web.json_response(await _admission(request))


@allow(Role.ADMIN, Role.OFFICIAL)
async def join_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther((await _admission(request))["url"])


@allow(Role.KIOSK)
async def kiosk_join_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther((await _admission(request))["url"])


@allow(Role.KIOSK)
async def api_residents(request: web.Request) -> web.Response:
    data = await json_body(request, ResidentsInput)
    async with transaction(request.app[SESSIONMAKER]) as session:
        presence = await attendance.set_residents_count(
            session, _id(request, "meeting_id"), principal_of(request), data.count
        )
        return web.json_response({"residents_count": presence.residents_count})


def _kiosk_entry(meeting: Meeting, locale: str) -> dict[str, Any]:
    live = meeting.status == MeetingStatus.LIVE
    return {
        "id": meeting.id,
        "title": meeting.title,
        "purpose": meeting.purpose,
        "when": format_when(meeting.starts_at, locale),
        "starts_at": meeting.starts_at.isoformat(),
        "live": live,
        "join_mode": meeting.join_mode,
        "join_url": f"/kiosk/meetings/{meeting.id}/join" if live else None,
    }


@allow(Role.KIOSK)
async def api_kiosk_upcoming(request: web.Request) -> web.Response:
    principal = principal_of(request)
    locale = request.get(LOCALE) or "ko"
    async with transaction(request.app[SESSIONMAKER]) as session:
        meetings = await service.upcoming_for_village(session, principal.village_id or 0)
        return web.json_response({"meetings": [_kiosk_entry(m, locale) for m in meetings]})


# --- iCalendar feeds ------------------------------------------------------------------------------


def _ics_response(body: bytes, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, max-age=300",
        },
    )


@allow(Role.ADMIN, Role.OFFICIAL)
async def official_ics(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        meetings = await service.feed_for_official(session, principal.id)
        body = ics.build_calendar(
            meetings,
            name=f"마을 회의 · {principal.display_name}",
            now=utcnow(),
            base_url=f"{request.scheme}://{request.host}",
            link_prefix="/meetings/",
        )
    return _ics_response(body, "meetings.ics")


@allow(Role.KIOSK)
async def kiosk_ics(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        meetings = await service.feed_for_village(session, principal.village_id or 0)
        village = await session.get(Village, principal.village_id or 0)
        name = f"마을 회의 · {village.full_name_ko if village else principal.display_name}"
        body = ics.build_calendar(meetings, name=name, now=utcnow(), base_url="", link_prefix=None)
    return _ics_response(body, "meetings.ics")


# --- record ---------------------------------------------------------------------------------------


@allow(Role.ADMIN, Role.OFFICIAL)
async def record_page(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_visible(session, principal_of(request), _id(request, "meeting_id"))
        data = await record_data(session, meeting, principal_of(request))
        return render(request, "meetings/record.html", {"record": data, "meeting": meeting})


@allow(Role.ADMIN, Role.OFFICIAL)
async def record_json(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_visible(session, principal_of(request), _id(request, "meeting_id"))
        data = await record_data(session, meeting, principal_of(request))
    body = json.dumps(data, default=_json_default, ensure_ascii=False, indent=2)
    return web.Response(
        text=body,
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="meeting-{meeting.id}-record.json"'},
    )


@allow(Role.ADMIN, Role.OFFICIAL)
async def record_csv(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_visible(session, principal_of(request), _id(request, "meeting_id"))
        data = await record_data(session, meeting, principal_of(request))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in record_csv_rows(data):
        # Titles, minutes, names and petition titles are typed by people: no cell runs as a formula.
        writer.writerow([formula_safe(cell) for cell in row])
    # A byte-order mark so that spreadsheet programs open the Korean text as UTF-8.
    return web.Response(
        body=("\ufeff" + buffer.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="meeting-{meeting.id}-record.csv"'},
    )


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


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


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_proposals(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        views = await meeting_agenda.pending_proposals(session, principal_of(request))
        body = {"proposals": [proposal_json(v) for v in views]}
    return web.json_response(body)


async def _decide(request: web.Request, action: str) -> meeting_agenda.ProposalView:
    proposal_id = _id(request, "proposal_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        view = await meeting_agenda.decide_proposal(
            session, principal_of(request), proposal_id, confirm=action == "confirm"
        )
        return view


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_decide_proposal(request: web.Request) -> web.Response:
    data = await json_body(request, ProposalDecision)
    return web.json_response({"proposal": proposal_json(await _decide(request, data.action))})


@allow(Role.ADMIN, Role.OFFICIAL)
async def official_decide_proposal(request: web.Request) -> web.StreamResponse:
    """The form on the officials' meetings page; a refusal shows the page again with the reason."""
    form = await request.post()
    action = str(form.get("action") or "")
    if action not in ("confirm", "dismiss"):
        raise BadRequest("action must be confirm or dismiss", code="validation_failed")
    try:
        await _decide(request, action)
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
            **await _list_names(session, meetings),
        }
        return render(request, "meetings/official_list.html", context, status=error.status if error else 200)


# --- admin pages ----------------------------------------------------------------------------------


async def _form_choices(session: Any) -> dict[str, Any]:
    accounts = (
        await session.scalars(
            select(Account).where(Account.is_active.is_(True)).order_by(Account.display_name)
        )
    ).all()
    villages = (await session.scalars(select(Village))).all()
    villages = sorted(villages, key=lambda v: (v.division.name_ko, v.name_ko))
    kiosks = (
        await session.scalars(select(Kiosk).where(Kiosk.village_id.in_([v.id for v in villages])))
    ).all()
    active = {k.village_id for k in kiosks if k.is_active}
    revoked = {k.village_id for k in kiosks if k.revoked_at is not None}
    return {
        "accounts": accounts,
        "villages": villages,
        "village_state": {
            v.id: ("active" if v.id in active else "revoked" if v.id in revoked else "none") for v in villages
        },
    }


async def _list_page(
    request: web.Request, error: AppError | None = None, form: dict[str, Any] | None = None
) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meetings = await service.list_meetings(session, principal_of(request))
        context = {
            "meetings": meetings,
            **await _list_names(session, meetings),
            "error": error,
            "form": form or {},
            "local_input": local_input,
            **await _form_choices(session),
        }
        return render(request, "meetings/admin_list.html", context, status=error.status if error else 200)


@allow(Role.ADMIN)
async def admin_list_page(request: web.Request) -> web.Response:
    return await _list_page(request)


@allow(Role.ADMIN)
async def admin_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    values = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    try:
        draft = service.MeetingDraft(
            title=str(form.get("title") or ""),
            purpose=str(form.get("purpose") or ""),
            starts_at=parse_local(str(form.get("starts_at") or ""), "starts_at"),
            ends_at=parse_local(str(form.get("ends_at") or ""), "ends_at"),
            chair_id=_form_int(form, "chair_id") or 0,
            official_ids=_form_ids(form, "official_ids"),
            village_ids=_form_ids(form, "village_ids"),
            join_mode=str(form.get("join_mode") or "touch"),
            lobby_mode=str(form.get("lobby_mode") or "auto_admit"),
        )
        async with transaction(request.app[SESSIONMAKER]) as session:
            result = await service.schedule_meeting(session, principal_of(request), draft)
            meeting_id = result.meeting.id
    except (BadRequest, Conflict, NotFound) as exc:
        values["official_ids"] = ",".join(str(v) for v in form.getall("official_ids", []))
        values["village_ids"] = ",".join(str(v) for v in form.getall("village_ids", []))
        return await _list_page(request, exc, values)
    raise web.HTTPSeeOther(f"/admin/meetings/{meeting_id}")


async def _edit_page(request: web.Request, meeting_id: int, error: AppError | None = None) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await service.get_meeting(session, meeting_id)
        choices = await _form_choices(session)
        linked = {p.petition_id for item in meeting.agenda for p in item.petitions}
        open_petitions = (
            await session.scalars(
                select(Petition)
                .where(Petition.status.in_(OPEN_STATUSES))
                .order_by(Petition.received_at.desc())
                .limit(200)
            )
        ).all()
        context = {
            "meeting": meeting,
            "error": error,
            "local_input": local_input,
            "names": {a.id: a.display_name for a in choices["accounts"]},
            "village_names": {v.id: v.full_name_ko for v in choices["villages"]},
            "petitions": await service.petitions_by_id(session, linked),
            "open_petitions": [p for p in open_petitions if p.id not in linked],
            "official_ids": {o.account_id for o in meeting.officials},
            "invited_village_ids": {v.village_id for v in meeting.villages},
            "recording": meeting.room_id is not None
            and request.app[MEETINGS].is_recording(str(meeting.room_id)),
            **choices,
        }
        return render(request, "meetings/admin_edit.html", context, status=error.status if error else 200)


@allow(Role.ADMIN)
async def admin_edit_page(request: web.Request) -> web.Response:
    return await _edit_page(request, _id(request, "meeting_id"))


async def _admin_post(request: web.Request, work: Any, *, redirect: str | None = None) -> web.StreamResponse:
    """Run one admin form action; on a refused action show the page again with the reason."""
    meeting_id = _id(request, "meeting_id")
    form = await request.post()
    try:
        await work(meeting_id, form)
    except (BadRequest, Conflict, NotFound) as exc:
        if isinstance(exc, NotFound) and exc.code == "meeting_not_found":
            raise
        return await _edit_page(request, meeting_id, exc)
    if redirect is not None:
        raise web.HTTPSeeOther(redirect)
    anchor = str(form.get("anchor") or "")
    safe = anchor.isascii() and anchor.replace("-", "").isalnum()
    raise web.HTTPSeeOther(f"/admin/meetings/{meeting_id}" + (f"#{anchor}" if safe else ""))


@allow(Role.ADMIN)
async def admin_update(request: web.Request) -> web.StreamResponse:
    async def work(meeting_id: int, form: MultiDictProxy[Any]) -> None:
        async with transaction(request.app[SESSIONMAKER]) as session:
            meeting = await service.get_meeting(session, meeting_id, lock=True)
            if meeting.status == MeetingStatus.LIVE:
                changes = service.MeetingChanges(
                    ends_at=parse_local(str(form.get("ends_at") or ""), "ends_at")
                )
            else:
                changes = service.MeetingChanges(
                    title=str(form.get("title") or ""),
                    purpose=str(form.get("purpose") or ""),
                    starts_at=parse_local(str(form.get("starts_at") or ""), "starts_at"),
                    ends_at=parse_local(str(form.get("ends_at") or ""), "ends_at"),
                    chair_id=_form_int(form, "chair_id"),
                    official_ids=_form_ids(form, "official_ids"),
                    village_ids=_form_ids(form, "village_ids"),
                    join_mode=str(form.get("join_mode") or meeting.join_mode),
                    lobby_mode=str(form.get("lobby_mode") or meeting.lobby_mode),
                )
            await service.update_meeting(session, principal_of(request), meeting, changes)

    return await _admin_post(request, work)


@allow(Role.ADMIN)
async def admin_transition(request: web.Request) -> web.StreamResponse:
    action = _action_of(request, ("start", "end", "cancel", "close_record"))

    async def work(meeting_id: int, form: MultiDictProxy[Any]) -> None:
        data = TransitionInput(
            action=action,  # type: ignore[arg-type]
            reason=str(form.get("reason") or "")[:2000],
            apply_decisions=form.get("apply_decisions") == "on",
        )
        await _transition(request, meeting_id, data)

    record = f"/meetings/{_id(request, 'meeting_id')}/record" if action == "close_record" else None
    return await _admin_post(request, work, redirect=record)


@allow(Role.ADMIN)
async def admin_add_agenda(request: web.Request) -> web.StreamResponse:
    async def work(meeting_id: int, form: MultiDictProxy[Any]) -> None:
        async with transaction(request.app[SESSIONMAKER]) as session:
            meeting = await service.get_meeting(session, meeting_id, lock=True)
            minutes = _form_int(form, "planned_minutes", required=False) or 10
            petition_id = _form_int(form, "from_petition_id", required=False)
            if petition_id is not None:
                await meeting_agenda.add_item_from_petition(
                    session, meeting, petition_id, actor=principal_of(request), planned_minutes=minutes
                )
            else:
                await meeting_agenda.add_agenda_item(
                    session,
                    meeting,
                    str(form.get("title") or ""),
                    planned_minutes=minutes,
                    presenter_id=_form_int(form, "presenter_id", required=False),
                    petition_ids=_form_ids(form, "petition_ids"),
                    actor=principal_of(request),
                )

    return await _admin_post(request, work)


@allow(Role.ADMIN)
async def admin_agenda_action(request: web.Request) -> web.StreamResponse:
    action = _action_of(request, ("up", "down", "delete", "minutes", "actions"))
    item_id = _id(request, "item_id")

    async def work(meeting_id: int, form: MultiDictProxy[Any]) -> None:
        async with transaction(request.app[SESSIONMAKER]) as session:
            meeting = await service.get_meeting(session, meeting_id, lock=True)
            item = next((i for i in meeting.agenda if i.id == item_id), None)
            if item is None:
                raise NotFound("no such agenda item", code="agenda_item_not_found")
            if action in ("up", "down"):
                await meeting_agenda.move_agenda_item(
                    session, meeting, item_id, item.position - 1 if action == "up" else item.position + 1
                )
            elif action == "delete":
                await meeting_agenda.delete_agenda_item(session, meeting, item_id)
            elif action == "minutes":
                await meeting_agenda.write_minutes(
                    session,
                    meeting,
                    item_id,
                    notes=str(form.get("notes") or "")[:TEXT_MAX],
                    decisions=str(form.get("decisions") or "")[:TEXT_MAX],
                )
            else:
                due = str(form.get("due_date") or "").strip()
                try:
                    due_date = dt.date.fromisoformat(due) if due else None
                except ValueError as exc:
                    raise BadRequest("due date is not a date", code="invalid_time") from exc
                await meeting_agenda.add_action_item(
                    session,
                    meeting,
                    item_id,
                    str(form.get("text") or ""),
                    owner_id=_form_int(form, "owner_id", required=False),
                    due_date=due_date,
                )

    return await _admin_post(request, work)
