"""The petitions JSON API under ``/api/v1`` (kiosks, officials, admins)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.errors import BadRequest
from server.keys import SESSIONMAKER, SETTINGS
from server.petitions import pins, service, storage, throttle, visits
from server.petitions.filing import file_from_request
from server.petitions.models import Petition
from server.petitions.schemas import (
    ActionBody,
    BulkAnswerBody,
    NoteBody,
    PetitionTypeName,
    StatusCheckInput,
    StatusName,
    SupportInput,
    event_json,
    note_json,
    official_json,
    public_json,
    resident_json,
)
from server.petitions.workflow import Action
from server.routing import allow, principal_of
from server.validation import Input, json_body, path_id, validate

log = logging.getLogger(__name__)

MAX_ID = 2**31 - 1


class ListQuery(Input):
    status: StatusName | None = None
    department_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    unrouted: bool = False
    village_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    petition_type: PetitionTypeName | None = None
    overdue: bool = False
    due_soon: bool = False
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=100000)


def int_param(request: web.Request, name: str) -> int:
    return path_id(request, name)


def list_filters(query: ListQuery) -> service.Filters:
    return service.Filters(
        status=query.status,
        department_id=query.department_id,
        unrouted=query.unrouted,
        village_id=query.village_id,
        petition_type=query.petition_type,
        overdue=query.overdue,
        due_soon=query.due_soon,
    )


@asynccontextmanager
async def account_petition(
    request: web.Request, petition_id: int, *, lock: bool = False
) -> AsyncIterator[tuple[AsyncSession, Principal, Petition]]:
    """A transaction, the caller, and the petition if the caller may see it (404 otherwise)."""
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        petition = await service.get_for_account(session, principal, petition_id, lock=lock)
        yield session, principal, petition


async def answer_all(session: AsyncSession, principal: Principal, ids: Iterable[int], answer: str) -> None:
    """Answer each petition with the same text, in the caller's transaction (all or nothing)."""
    for petition_id in ids:
        petition = await service.get_for_account(session, principal, petition_id, lock=True)
        await service.apply_action(
            session, principal, petition, service.ActionInput(action=Action.ANSWER, answer=answer)
        )


def detail_json(principal: Principal, petition: Petition) -> dict[str, object]:
    state = service.deadline_state(petition, utcnow()).value
    return official_json(
        petition,
        state,
        personal=service.handles(principal, petition),
        actions=service.allowed_actions(petition, principal),
    )


# --- kiosk ---------------------------------------------------------------------------------------


@allow(Role.KIOSK)
async def file_petition(request: web.Request) -> web.Response:
    kiosk = principal_of(request)
    # Counted in the filing's own transaction: refused input and resends take nothing from it.
    limit = throttle.filing_limit(kiosk.id, request.app[SETTINGS].kiosk_filings_per_hour)
    filed = await file_from_request(request, kiosk, limit)
    state = service.deadline_state(filed.petition, utcnow()).value
    body = {"petition": resident_json(filed.petition, state), "pin": filed.pin}
    # A resend (same Idempotency-Key) gets the same answer as the first send, and is marked.
    headers = {"Idempotent-Replayed": "true"} if filed.replayed else None
    return web.json_response(body, status=201, headers=headers)


@allow(Role.KIOSK)
async def check_status(request: web.Request) -> web.Response:
    """A resident's receipt number + PIN: the only way a kiosk reads a private petition."""
    kiosk = principal_of(request)
    data = await json_body(request, StatusCheckInput)
    petition = await _resident_petition(request, kiosk, data)
    state = service.deadline_state(petition, utcnow()).value
    return web.json_response({"petition": resident_json(petition, state)})


async def _resident_petition(request: web.Request, kiosk: Principal, data: StatusCheckInput) -> Petition:
    try:
        return await pins.check_receipt_pin(
            request.app[SESSIONMAKER], request.app[SETTINGS], kiosk.id, data.receipt_no, data.pin
        )
    except ValueError as exc:
        raise BadRequest("not a receipt number", code="invalid_receipt_no") from exc


@allow(Role.KIOSK)
async def withdraw(request: web.Request) -> web.Response:
    """The resident withdraws (취하) her own petition: receipt number + PIN, like a status check."""
    kiosk = principal_of(request)
    data = await json_body(request, StatusCheckInput)
    checked = await _resident_petition(request, kiosk, data)
    async with transaction(request.app[SESSIONMAKER]) as session:
        petition = await service.withdraw_by_resident(session, kiosk, checked.id)
    state = service.deadline_state(petition, utcnow()).value
    return web.json_response({"petition": resident_json(petition, state)})


@allow(Role.KIOSK)
async def list_public(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        rows = await service.public_petitions(session)
    now = utcnow()
    return web.json_response(
        {"petitions": [public_json(p, service.deadline_state(p, now).value) for p in rows]}
    )


@allow(Role.KIOSK)
async def get_public(request: web.Request) -> web.Response:
    petition_id = int_param(request, "petition_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        petition = await service.get_public(session, petition_id)
    return web.json_response(
        {"petition": public_json(petition, service.deadline_state(petition, utcnow()).value)}
    )


@allow(Role.KIOSK)
async def support(request: web.Request) -> web.Response:
    kiosk = principal_of(request)
    petition_id = int_param(request, "petition_id")
    data = await json_body(request, SupportInput)
    visit = visits.visit_id(request.app[SETTINGS].secret_key.get(), kiosk.id, data.visit)
    async with transaction(request.app[SESSIONMAKER]) as session:
        petition = await service.add_support(session, kiosk, petition_id, visit)
    return web.json_response({"support_count": petition.support_count}, status=201)


@allow(Role.KIOSK)
async def start_visit(request: web.Request) -> web.Response:
    """A new resident at the kiosk (after the idle reset): the token 공감 is counted on."""
    kiosk = principal_of(request)
    token = await visits.issue(request.app[SESSIONMAKER], request.app[SETTINGS].secret_key.get(), kiosk.id)
    return web.json_response({"visit": token}, status=201)


# --- officials and admins --------------------------------------------------------------------------


@allow(Role.OFFICIAL, Role.ADMIN)
async def list_petitions(request: web.Request) -> web.Response:
    principal = principal_of(request)
    query = validate(ListQuery, dict(request.query))
    async with transaction(request.app[SESSIONMAKER]) as session:
        rows = await service.list_petitions(
            session, principal, list_filters(query), limit=query.limit, offset=query.offset
        )
    now = utcnow()
    # Lists always mask personal data, even for the handling department.
    items = [official_json(p, service.deadline_state(p, now).value, personal=False) for p in rows]
    return web.json_response({"petitions": items})


@allow(Role.OFFICIAL, Role.ADMIN)
async def get_petition(request: web.Request) -> web.Response:
    async with account_petition(request, int_param(request, "petition_id")) as (_, principal, petition):
        body = detail_json(principal, petition)
    return web.json_response({"petition": body})


@allow(Role.OFFICIAL, Role.ADMIN)
async def act(request: web.Request) -> web.Response:
    petition_id = int_param(request, "petition_id")
    data = await json_body(request, ActionBody)
    async with account_petition(request, petition_id, lock=True) as (session, principal, petition):
        petition = await service.apply_action(session, principal, petition, to_action(data))
        body = detail_json(principal, petition)
    return web.json_response({"petition": body})


def to_action(data: ActionBody) -> service.ActionInput:
    return service.ActionInput(
        action=Action(data.action),
        assignee_id=data.assignee_id,
        department_id=data.department_id,
        reason=data.reason,
        extension_days=data.extension_days,
        answer=data.answer,
    )


@allow(Role.OFFICIAL, Role.ADMIN)
async def bulk_answer(request: web.Request) -> web.Response:
    """Answer several similar petitions with one text; all or nothing."""
    principal = principal_of(request)
    data = await json_body(request, BulkAnswerBody)
    ids = data.petition_ids
    if len(set(ids)) != len(ids):
        raise BadRequest("petition ids repeat", code="duplicate_ids")
    async with transaction(request.app[SESSIONMAKER]) as session:
        await answer_all(session, principal, ids, data.answer)
    return web.json_response({"answered": ids})


@allow(Role.OFFICIAL, Role.ADMIN)
async def list_notes(request: web.Request) -> web.Response:
    async with account_petition(request, int_param(request, "petition_id")) as (session, _, petition):
        notes = await service.notes_of(session, petition.id)
    return web.json_response({"notes": [note_json(n) for n in notes]})


@allow(Role.OFFICIAL, Role.ADMIN)
async def add_note(request: web.Request) -> web.Response:
    petition_id = int_param(request, "petition_id")
    data = await json_body(request, NoteBody)
    async with account_petition(request, petition_id) as (session, principal, petition):
        note = await service.add_note(session, principal, petition, data.text)
    return web.json_response({"note": note_json(note)}, status=201)


@allow(Role.OFFICIAL, Role.ADMIN)
async def list_events(request: web.Request) -> web.Response:
    async with account_petition(request, int_param(request, "petition_id")) as (session, _, petition):
        events = await service.events_of(session, petition.id)
    return web.json_response({"events": [event_json(e) for e in events]})


@allow(Role.OFFICIAL, Role.ADMIN)
async def get_media(request: web.Request) -> web.StreamResponse:
    """The recorded message or a photo, to officials who may see the petition (Range supported)."""
    petition_id = int_param(request, "petition_id")
    media_id = int_param(request, "media_id")
    async with account_petition(request, petition_id) as (session, _, petition):
        media = await service.media_of(session, petition, media_id)
    path = storage.resolve(request.app[SETTINGS].media_dir, media.storage_name)
    response = web.FileResponse(
        path, headers={"Content-Type": media.content_type, "Cache-Control": "private, no-store"}
    )
    return response
