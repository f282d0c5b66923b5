"""Rooms over HTTP: the admin's JSON API and page, the invitations of the caller, and the two meeting
pages (officials/admins, kiosks)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from server.auth.models import Account
from server.auth.participant_ids import parse_participant_id, participant_id
from server.auth.roles import Principal, Role
from server.db import transaction
from server.errors import BadRequest, Forbidden, NotFound
from server.keys import PRINCIPAL, ROOM_HUB, SESSIONMAKER
from server.kiosks.models import Kiosk
from server.meetings import service as meetings_service
from server.meetings.ending import ending
from server.meetings.workflow import MeetingStatus
from server.rendering import render
from server.room_urls import room_url
from server.rooms import service
from server.rooms.models import Room
from server.routing import allow
from server.validation import Id, Input, is_id, json_body, path_id

log = logging.getLogger(__name__)

MAX_INVITEES = 200


class CreateRoomInput(Input):
    title: str = Field(min_length=1, max_length=service.TITLE_MAX)
    account_ids: list[Id] = Field(default_factory=list, max_length=MAX_INVITEES)
    kiosk_ids: list[Id] = Field(default_factory=list, max_length=MAX_INVITEES)


class InviteInput(Input):
    account_ids: list[Id] = Field(default_factory=list, max_length=MAX_INVITEES)
    kiosk_ids: list[Id] = Field(default_factory=list, max_length=MAX_INVITEES)


def room_json(room: Room, occupancy: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": room.id,
        "title": room.title,
        "created_by": room.created_by,
        "created_at": room.created_at.isoformat() if room.created_at else None,
        "closed_at": room.closed_at.isoformat() if room.closed_at else None,
        "open": room.is_open,
        "invited_account_ids": [i.account_id for i in room.invitations if i.account_id is not None],
        "invited_kiosk_ids": [i.kiosk_id for i in room.invitations if i.kiosk_id is not None],
    }
    if occupancy is not None:
        body["participants_here"] = occupancy
    return body


def _room_id(request: web.Request) -> int:
    return path_id(request, "room_id")


def _ids(values: list[str], field: str) -> tuple[int, ...]:
    if len(values) > MAX_INVITEES or not all(is_id(v) for v in values):
        raise BadRequest(f"{field} must be ids", code="validation_failed")
    return tuple(int(v) for v in values)


# -- admin JSON API ------------------------------------------------------------------------------
@allow(Role.ADMIN)
async def api_list_rooms(request: web.Request) -> web.Response:
    hub = request.app[ROOM_HUB]
    async with transaction(request.app[SESSIONMAKER]) as session:
        rooms = await service.list_rooms(session)
        return web.json_response({"rooms": [room_json(r, hub.occupancy(r.id)) for r in rooms]})


@allow(Role.ADMIN)
async def api_create_room(request: web.Request) -> web.Response:
    data = await json_body(request, CreateRoomInput)
    invitees = service.Invitees(tuple(data.account_ids), tuple(data.kiosk_ids))
    async with transaction(request.app[SESSIONMAKER]) as session:
        room = await service.create_room(session, request[PRINCIPAL], data.title, invitees)  # type: ignore[arg-type]
        body = {"room": room_json(room)}
    return web.json_response(body, status=201)


@allow(Role.ADMIN)
async def api_invite(request: web.Request) -> web.Response:
    data = await json_body(request, InviteInput)
    async with transaction(request.app[SESSIONMAKER]) as session:
        room = await service.invite(
            session, _room_id(request), service.Invitees(tuple(data.account_ids), tuple(data.kiosk_ids))
        )
        body = {"room": room_json(room)}
    return web.json_response(body)


async def _close(request: web.Request) -> Room:
    principal: Principal = request[PRINCIPAL]  # type: ignore[assignment]
    async with ending(request.app[SESSIONMAKER], request.app[ROOM_HUB]) as work:
        room = await work.close_room(_room_id(request), principal)
    return room


@allow(Role.ADMIN)
async def api_close_room(request: web.Request) -> web.Response:
    room = await _close(request)
    return web.json_response({"room": room_json(room)})


# -- invitations of the caller ---------------------------------------------------------------------
@allow(Role.OFFICIAL, Role.ADMIN, Role.KIOSK)
async def api_my_rooms(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]  # type: ignore[assignment]
    async with transaction(request.app[SESSIONMAKER]) as session:
        rooms = await service.open_rooms_for(session, principal)
        listed = [{"id": r.id, "title": r.title, "url": room_url(principal.role, r.id)} for r in rooms]
    return web.json_response({"rooms": listed})


# -- admin page ----------------------------------------------------------------------------------
async def _admin_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    hub = request.app[ROOM_HUB]
    async with transaction(request.app[SESSIONMAKER]) as session:
        rooms = await service.list_rooms(session)
        accounts_by_id, kiosks_by_id = await service.invitee_names(session, rooms)
        officials = (
            await session.scalars(
                select(Account).where(Account.is_active.is_(True)).order_by(Account.display_name)
            )
        ).all()
        kiosks = (
            await session.scalars(
                select(Kiosk)
                .where(Kiosk.revoked_at.is_(None), Kiosk.token_hash.is_not(None))
                .order_by(Kiosk.label)
            )
        ).all()
        context = {
            "rooms": rooms,
            "occupancy": {r.id: hub.occupancy(r.id) for r in rooms},
            "account_names": accounts_by_id,
            "kiosk_names": kiosks_by_id,
            "officials": officials,
            "kiosks": kiosks,
            "error": error,
        }
        return render(request, "room/admin_rooms.html", context, status=status)


@allow(Role.ADMIN)
async def admin_rooms_page(request: web.Request) -> web.Response:
    return await _admin_page(request)


@allow(Role.ADMIN)
async def admin_create_room(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    title = str(form.get("title") or "")
    invitees = service.Invitees(
        _ids([str(v) for v in form.getall("account_ids", [])], "account_ids"),
        _ids([str(v) for v in form.getall("kiosk_ids", [])], "kiosk_ids"),
    )
    try:
        async with transaction(request.app[SESSIONMAKER]) as session:
            await service.create_room(session, request[PRINCIPAL], title, invitees)  # type: ignore[arg-type]
    except BadRequest as exc:
        return await _admin_page(request, error=exc.code, status=exc.status)
    raise web.HTTPSeeOther("/admin/rooms")


@allow(Role.ADMIN)
async def admin_close_room(request: web.Request) -> web.StreamResponse:
    await _close(request)
    raise web.HTTPSeeOther("/admin/rooms")


# -- meeting pages -------------------------------------------------------------------------------
async def _meeting_page(request: web.Request, template: str) -> web.Response:
    principal: Principal = request[PRINCIPAL]  # type: ignore[assignment]
    async with transaction(request.app[SESSIONMAKER]) as session:
        room = await service.get_room(session, _room_id(request))
        if not room.is_open:
            return render(request, template, {"room": room, "refusal": "room_closed"}, status=410)
        if not await service.may_join(session, principal, room):
            raise Forbidden("you are not invited to this room", code="not_invited")
        # The chair (or an admin) of the meeting that owns this room gets the recording buttons.
        meeting = await meetings_service.meeting_for_room(session, room.id)
        record_meeting_id = (
            meeting.id
            if meeting is not None
            and meeting.status == MeetingStatus.LIVE
            and meetings_service.may_manage(principal, meeting)
            else None
        )
        return render(
            request, template, {"room": room, "refusal": None, "record_meeting_id": record_meeting_id}
        )


@allow(Role.OFFICIAL, Role.ADMIN)
async def official_meeting_page(request: web.Request) -> web.Response:
    return await _meeting_page(request, "room/official.html")


@allow(Role.KIOSK)
async def kiosk_meeting_page(request: web.Request) -> web.Response:
    return await _meeting_page(request, "room/kiosk.html")


@allow(Role.OFFICIAL, Role.ADMIN, Role.KIOSK)
async def api_still(request: web.Request) -> web.Response:
    """A participant's latest still picture (JPEG), for pages that receive sound only. Only for
    someone in the same room (in this worker); 404 until the participant has sent one."""
    principal: Principal = request[PRINCIPAL]  # type: ignore[assignment]
    room_id = _room_id(request)
    pid = request.match_info["participant_id"]
    if parse_participant_id(pid) is None:
        raise BadRequest("participant_id must look like k12 or a3", code="invalid_participant_id")
    jpeg = request.app[ROOM_HUB].still_of(str(room_id), participant_id(principal), pid)
    if jpeg is None:
        raise NotFound("no still picture of that participant here", code="still_not_found")
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})
