"""Pages: the kiosk request and status flows, and the officials' inbox."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Account
from server.auth.roles import Principal, Role
from server.db import transaction, utcnow
from server.errors import AppError, BadRequest
from server.geo.models import Village
from server.keys import PRINCIPAL, SESSIONMAKER
from server.meetings import agenda
from server.org.models import Department
from server.petitions import masking, service
from server.petitions.api import (
    ListQuery,
    account_petition,
    answer_all,
    int_param,
    list_filters,
    principal_of,
    to_action,
)
from server.petitions.deadlines import PetitionType
from server.petitions.models import AnswerTemplate, Petition
from server.petitions.schemas import ActionBody, NoteBody, safe_mask_name, safe_mask_phone
from server.petitions.workflow import PetitionStatus
from server.rendering import render
from server.routing import allow
from server.validation import Input, validate

log = logging.getLogger(__name__)

# Kiosk "kind" buttons: type, icon file (web/static/img/petitions/), English msgid of the label.
KIOSK_KINDS = (
    ("grievance", "broken"),
    ("suggestion", "idea"),
    ("question_procedure", "paper"),
    ("question_law", "scale"),
    ("simple", "hand"),
)


async def active_departments(session: AsyncSession) -> list[Department]:
    stmt = select(Department).where(Department.is_active.is_(True)).order_by(Department.name_ko)
    return list((await session.scalars(stmt)).all())


# --- kiosk ---------------------------------------------------------------------------------------


@allow(Role.KIOSK)
async def kiosk_request_page(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        departments = await active_departments(session)
    return render(
        request,
        "kiosk/request_flow.html",
        {"kiosk": request[PRINCIPAL], "departments": departments, "kinds": KIOSK_KINDS},
    )


@allow(Role.KIOSK)
async def kiosk_public_page(request: web.Request) -> web.Response:
    """Public requests from all villages, without personal data, to support (공감)."""
    async with transaction(request.app[SESSIONMAKER]) as session:
        rows = await service.public_petitions(session)
    petitions = [(p, PetitionType(p.petition_type).label_ko) for p in rows]
    return render(request, "kiosk/request_public.html", {"kiosk": request[PRINCIPAL], "petitions": petitions})


@allow(Role.KIOSK)
async def kiosk_status_page(request: web.Request) -> web.Response:
    return render(request, "kiosk/status_check.html", {"kiosk": request[PRINCIPAL]})


# --- official inbox ----------------------------------------------------------------------------------


def _query_from(request: web.Request) -> ListQuery:
    # Empty form fields mean "any"; an unchecked checkbox is simply absent.
    values = {k: v for k, v in request.query.items() if v != "" and k != "lang"}
    return validate(ListQuery, values)


async def _inbox_context(session: AsyncSession, principal: Principal, query: ListQuery) -> dict[str, Any]:
    rows = await service.list_petitions(
        session, principal, list_filters(query), limit=query.limit, offset=query.offset
    )
    now = utcnow()
    villages = list(
        (await session.scalars(select(Village).order_by(Village.division_id, Village.name_ko))).all()
    )
    templates = await templates_for(session, principal)
    return {
        "rows": [(p, service.deadline_state(p, now).value) for p in rows],
        "query": query,
        "departments": await active_departments(session),
        "villages": villages,
        "types": list(PetitionType),
        "statuses": list(PetitionStatus),
        "templates": templates,
    }


async def templates_for(session: AsyncSession, principal: Principal) -> list[AnswerTemplate]:
    stmt = select(AnswerTemplate).where(AnswerTemplate.is_active.is_(True))
    if principal.role is Role.OFFICIAL:
        stmt = stmt.where(
            (AnswerTemplate.department_id.is_(None))
            | (AnswerTemplate.department_id == principal.department_id)
        )
    return list((await session.scalars(stmt.order_by(AnswerTemplate.title))).all())


@allow(Role.OFFICIAL, Role.ADMIN)
async def inbox_page(request: web.Request) -> web.Response:
    principal = principal_of(request)
    query = _query_from(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        context = await _inbox_context(session, principal, query)
    return render(request, "petitions/inbox.html", context | {"error": request.query.get("error")})


async def _detail_context(session: AsyncSession, principal: Principal, petition: Petition) -> dict[str, Any]:
    officials_stmt = select(Account).where(Account.is_active.is_(True), Account.role == Role.OFFICIAL.value)
    if petition.department_id is not None:
        officials_stmt = officials_stmt.where(Account.department_id == petition.department_id)
    return {
        "petition": petition,
        "deadline": service.deadline_state(petition, utcnow()).value,
        "personal": service.handles(principal, petition),
        "actions": service.allowed_actions(petition, principal),
        "notes": await service.notes_of(session, petition.id),
        "events": await service.events_of(session, petition.id),
        "departments": await active_departments(session),
        "officials": list((await session.scalars(officials_stmt.order_by(Account.display_name))).all()),
        "templates": await templates_for(session, principal),
        "ptype": PetitionType(petition.petition_type),
        "status": PetitionStatus(petition.status),
        "format_phone": _display_phone,
        "masked_phone": lambda phone: safe_mask_phone(phone),
        "masked_name": lambda name: safe_mask_name(name) or "",
    }


def _display_phone(phone: str) -> str:
    try:
        return masking.format_phone(phone)
    except ValueError:
        return phone


async def _render_detail(
    request: web.Request, petition_id: int, error: AppError | None = None
) -> web.Response:
    async with account_petition(request, petition_id) as (session, principal, petition):
        context = await _detail_context(session, principal, petition)
        context["meeting_refs"] = await agenda.meetings_for_petition(session, petition.id)
    status = error.status if error is not None else 200
    return render(request, "petitions/detail.html", context | {"error": error}, status=status)


@allow(Role.OFFICIAL, Role.ADMIN)
async def detail_page(request: web.Request) -> web.Response:
    return await _render_detail(request, int_param(request, "petition_id"))


class ActionForm(Input):
    action: str = Field(max_length=20)
    assignee_id: int | None = Field(default=None, gt=0, le=2**31 - 1)
    department_id: int | None = Field(default=None, gt=0, le=2**31 - 1)
    reason: str | None = Field(default=None, max_length=2000)
    extension_days: int | None = Field(default=None, ge=1, le=90)
    answer: str | None = Field(default=None, max_length=10000)
    template_id: int | None = Field(default=None, gt=0, le=2**31 - 1)


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str) and v.strip() != "" and k != "csrf_token"}


async def _template_text(session: AsyncSession, principal: Principal, template_id: int | None) -> str | None:
    if template_id is None:
        return None
    for template in await templates_for(session, principal):
        if template.id == template_id:
            return template.body
    raise BadRequest("no such answer template", code="unknown_template")


async def _detail_post(
    request: web.Request, work: Callable[[int], Awaitable[None]], *, anchor: str = ""
) -> web.StreamResponse:
    """Run one form of the detail page on the path's petition, then back to the page.

    A refused form shows the page again with the reason and its status; a petition the caller may
    not see stays a plain 404."""
    petition_id = int_param(request, "petition_id")
    try:
        await work(petition_id)
    except AppError as exc:
        if exc.status == 404:
            raise
        return await _render_detail(request, petition_id, exc)
    raise web.HTTPSeeOther(f"/official/requests/{petition_id}{anchor}")


@allow(Role.OFFICIAL, Role.ADMIN)
async def action_submit(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)

    async def act(petition_id: int) -> None:
        form = validate(ActionForm, await _form(request))
        async with transaction(request.app[SESSIONMAKER]) as session:
            answer = form.answer or await _template_text(session, principal, form.template_id)
            body = validate(
                ActionBody, form.model_dump(exclude={"template_id", "answer"}) | {"answer": answer}
            )
            petition = await service.get_for_account(session, principal, petition_id, lock=True)
            await service.apply_action(session, principal, petition, to_action(body))

    return await _detail_post(request, act)


@allow(Role.OFFICIAL, Role.ADMIN)
async def note_submit(request: web.Request) -> web.StreamResponse:
    async def add(petition_id: int) -> None:
        data = validate(NoteBody, await _form(request))
        async with account_petition(request, petition_id) as (session, principal, petition):
            await service.add_note(session, principal, petition, data.text)

    return await _detail_post(request, add, anchor="#notes")


@allow(Role.OFFICIAL, Role.ADMIN)
async def bulk_answer_submit(request: web.Request) -> web.StreamResponse:
    """Answer the checked requests of the inbox with one text (or a saved template)."""
    principal = principal_of(request)
    form = await request.post()
    raw_ids = [v for v in form.getall("petition_id", []) if isinstance(v, str)]
    if not raw_ids or len(raw_ids) > 100 or not all(v.isdigit() and len(v) <= 10 for v in raw_ids):
        raise web.HTTPSeeOther("/official/requests?error=bulk_nothing_selected")
    answer = form.get("answer")
    template = form.get("template_id")
    async with transaction(request.app[SESSIONMAKER]) as session:
        text = answer.strip() if isinstance(answer, str) else ""
        if not text and isinstance(template, str) and template.isdigit() and len(template) <= 10:
            text = (await _template_text(session, principal, int(template))) or ""
        if not text:
            raise web.HTTPSeeOther("/official/requests?error=bulk_answer_missing")
        try:
            await answer_all(session, principal, (int(raw) for raw in dict.fromkeys(raw_ids)), text)
        except AppError as exc:
            raise web.HTTPSeeOther(f"/official/requests?error={exc.code}") from exc
    raise web.HTTPSeeOther("/official/requests?done=bulk")
