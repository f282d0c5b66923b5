"""The administrator's meeting pages (``/admin/meetings…``): the list, scheduling, editing, the
agenda, transitions and recording, as HTML forms that redirect back."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select

from server.auth.models import Account
from server.auth.roles import Role
from server.db import transaction
from server.errors import AppError, BadRequest, Conflict, NotFound
from server.geo.models import Village
from server.keys import ROOM_HUB, SESSIONMAKER
from server.kiosks.models import Kiosk
from server.meetings import agenda as meeting_agenda
from server.meetings import service
from server.meetings.views import (
    TEXT_MAX,
    TransitionInput,
    action_of,
    form_ids,
    form_int,
    list_names,
    local_input,
    parse_local,
    start_recording,
    stop_recording,
    transition,
)
from server.meetings.workflow import MeetingStatus
from server.petitions.models import Petition
from server.petitions.service import OPEN_STATUSES
from server.rendering import render
from server.routing import allow, principal_of
from server.validation import path_id

log = logging.getLogger(__name__)


@allow(Role.ADMIN)
async def admin_recording(request: web.Request) -> web.StreamResponse:
    action = action_of(request, ("start", "stop"))

    async def work(meeting_id: int, form: MultiDictProxy[Any]) -> None:
        if action == "start":
            await start_recording(request, meeting_id)
        else:
            await stop_recording(request, meeting_id)

    return await _admin_post(request, work)


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
            **await list_names(session, meetings),
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
            chair_id=form_int(form, "chair_id") or 0,
            official_ids=form_ids(form, "official_ids"),
            village_ids=form_ids(form, "village_ids"),
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
            and request.app[ROOM_HUB].is_recording(str(meeting.room_id)),
            **choices,
        }
        return render(request, "meetings/admin_edit.html", context, status=error.status if error else 200)


@allow(Role.ADMIN)
async def admin_edit_page(request: web.Request) -> web.Response:
    return await _edit_page(request, path_id(request, "meeting_id"))


async def _admin_post(request: web.Request, work: Any, *, redirect: str | None = None) -> web.StreamResponse:
    """Run one admin form action; on a refused action show the page again with the reason."""
    meeting_id = path_id(request, "meeting_id")
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
                    chair_id=form_int(form, "chair_id"),
                    official_ids=form_ids(form, "official_ids"),
                    village_ids=form_ids(form, "village_ids"),
                    join_mode=str(form.get("join_mode") or meeting.join_mode),
                    lobby_mode=str(form.get("lobby_mode") or meeting.lobby_mode),
                )
            await service.update_meeting(session, principal_of(request), meeting, changes)

    return await _admin_post(request, work)


@allow(Role.ADMIN)
async def admin_transition(request: web.Request) -> web.StreamResponse:
    action = action_of(request, ("start", "end", "cancel", "close_record"))

    async def work(meeting_id: int, form: MultiDictProxy[Any]) -> None:
        data = TransitionInput(
            action=action,  # type: ignore[arg-type]
            reason=str(form.get("reason") or "")[:2000],
            apply_decisions=form.get("apply_decisions") == "on",
        )
        await transition(request, meeting_id, data)

    record = f"/meetings/{path_id(request, 'meeting_id')}/record" if action == "close_record" else None
    return await _admin_post(request, work, redirect=record)


@allow(Role.ADMIN)
async def admin_add_agenda(request: web.Request) -> web.StreamResponse:
    async def work(meeting_id: int, form: MultiDictProxy[Any]) -> None:
        async with transaction(request.app[SESSIONMAKER]) as session:
            meeting = await service.get_meeting(session, meeting_id, lock=True)
            minutes = form_int(form, "planned_minutes", required=False) or 10
            petition_id = form_int(form, "from_petition_id", required=False)
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
                    presenter_id=form_int(form, "presenter_id", required=False),
                    petition_ids=form_ids(form, "petition_ids"),
                    actor=principal_of(request),
                )

    return await _admin_post(request, work)


@allow(Role.ADMIN)
async def admin_agenda_action(request: web.Request) -> web.StreamResponse:
    action = action_of(request, ("up", "down", "delete", "minutes", "actions"))
    item_id = path_id(request, "item_id")

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
                    owner_id=form_int(form, "owner_id", required=False),
                    due_date=due_date,
                )

    return await _admin_post(request, work)
