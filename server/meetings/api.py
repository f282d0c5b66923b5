"""Meetings over the JSON API (``/api/v1/meetings…``, ``/api/v1/kiosk/meetings``,
``/api/v1/meeting-proposals``): scheduling and changing meetings, their transitions, agenda,
minutes, recording, admission and the kiosk's upcoming list."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Role
from server.db import transaction
from server.errors import BadRequest
from server.keys import LOCALE, SESSIONMAKER
from server.meetings import agenda as meeting_agenda
from server.meetings import attendance, service
from server.meetings.models import Meeting
from server.meetings.views import (
    ActionItemInput,
    AgendaInput,
    AgendaPatch,
    MeetingInput,
    MeetingPatch,
    MinutesInput,
    ProposalDecision,
    ResidentsInput,
    T,
    TransitionInput,
    admission,
    decide,
    format_when,
    managed,
    meeting_json,
    proposal_json,
    reload,
    report_json,
    start_recording,
    stop_recording,
    transition,
)
from server.meetings.workflow import MeetingStatus
from server.routing import allow, principal_of
from server.validation import json_body, path_id

log = logging.getLogger(__name__)


async def _scheduled_json(session: Any, meeting_id: int, result: service.ScheduleResult) -> dict[str, Any]:
    """The meeting as stored after scheduling or changing it, and the invited villages with no kiosk."""
    meeting = await reload(session, meeting_id)
    return {
        "meeting": meeting_json(meeting),
        "villages_without_kiosk": list(result.villages_without_kiosk),
    }


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_recording_start(request: web.Request) -> web.Response:
    await start_recording(request, path_id(request, "meeting_id"))
    return web.json_response({"recording": True})


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_recording_stop(request: web.Request) -> web.Response:
    files = await stop_recording(request, path_id(request, "meeting_id"))
    return web.json_response({"recording": False, "files": files})


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
        meeting = await service.get_visible(session, principal_of(request), path_id(request, "meeting_id"))
        return web.json_response({"meeting": meeting_json(meeting)})


@allow(Role.ADMIN)
async def api_patch(request: web.Request) -> web.Response:
    data = await json_body(request, MeetingPatch)
    meeting_id = path_id(request, "meeting_id")
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
    meeting, report = await transition(request, path_id(request, "meeting_id"), data)
    body: dict[str, Any] = {"meeting": meeting_json(meeting)}
    if report is not None:
        body["petitions"] = report_json(report)
    return web.json_response(body)


async def _change_managed(
    request: web.Request, meeting_id: int, change: Callable[[AsyncSession, Meeting], Awaitable[T]]
) -> tuple[T, dict[str, Any]]:
    """Run ``change`` on a meeting the caller manages (locked), in one transaction.

    Returns what ``change`` returned and the meeting as stored afterwards, as JSON."""
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await managed(session, principal_of(request), meeting_id)
        result = await change(session, meeting)
        return result, meeting_json(await reload(session, meeting_id))


async def _change_item(
    request: web.Request, change: Callable[[AsyncSession, Meeting, int], Awaitable[object]]
) -> web.Response:
    """Run ``change`` on the path's agenda item of a meeting the caller manages; reply with the meeting."""
    meeting_id, item_id = path_id(request, "meeting_id"), path_id(request, "item_id")
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

    item_id, meeting = await _change_managed(request, path_id(request, "meeting_id"), add)
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
    meeting_id, item_id = path_id(request, "meeting_id"), path_id(request, "item_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        meeting = await managed(session, principal_of(request), meeting_id)
        action = await meeting_agenda.add_action_item(
            session, meeting, item_id, data.text, owner_id=data.owner_id, due_date=data.due_date
        )
        return web.json_response({"action_item_id": action.id}, status=201)


@allow(Role.ADMIN, Role.OFFICIAL, Role.KIOSK)
async def api_admission(request: web.Request) -> web.Response:
    return web.json_response(await admission(request))


@allow(Role.KIOSK)
async def api_residents(request: web.Request) -> web.Response:
    data = await json_body(request, ResidentsInput)
    async with transaction(request.app[SESSIONMAKER]) as session:
        presence = await attendance.set_residents_count(
            session, path_id(request, "meeting_id"), principal_of(request), data.count
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


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_proposals(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        views = await meeting_agenda.pending_proposals(session, principal_of(request))
        body = {"proposals": [proposal_json(v) for v in views]}
    return web.json_response(body)


@allow(Role.ADMIN, Role.OFFICIAL)
async def api_decide_proposal(request: web.Request) -> web.Response:
    data = await json_body(request, ProposalDecision)
    return web.json_response({"proposal": proposal_json(await decide(request, data.action))})
