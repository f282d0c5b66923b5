"""Administration of the petitions feature: departments, answer templates, CSV export, statistics."""

from __future__ import annotations

import csv
import io
import logging
import statistics
from collections import Counter
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Role
from server.charts import bars
from server.db import transaction, utcnow
from server.errors import BadRequest, Conflict, NotFound
from server.keys import SESSIONMAKER
from server.org.models import Department
from server.petitions import masking, service
from server.petitions.api import int_param, principal_of
from server.petitions.deadlines import PetitionType
from server.petitions.models import AnswerTemplate, Petition
from server.petitions.schemas import (
    DepartmentBody,
    DepartmentPatch,
    TemplateBody,
    safe_mask_name,
    safe_mask_phone,
)
from server.petitions.views import templates_for
from server.petitions.workflow import PetitionStatus
from server.rendering import render
from server.routing import allow
from server.spreadsheet import formula_safe
from server.timeutil import format_local
from server.validation import Input, json_body, validate

log = logging.getLogger(__name__)


def department_json(d: Department) -> dict[str, Any]:
    return {"id": d.id, "name_ko": d.name_ko, "name_en": d.name_en, "is_active": d.is_active}


def template_json(t: AnswerTemplate) -> dict[str, Any]:
    return {"id": t.id, "title": t.title, "body": t.body, "department_id": t.department_id}


# --- departments ---------------------------------------------------------------------------------


async def _all_departments(session: AsyncSession) -> list[Department]:
    return list((await session.scalars(select(Department).order_by(Department.id))).all())


async def _save(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("a department with that Korean name exists", code="department_exists") from exc


async def add_department(session: AsyncSession, data: DepartmentBody) -> Department:
    if await session.scalar(select(Department.id).where(Department.name_ko == data.name_ko)) is not None:
        raise Conflict("a department with that Korean name exists", code="department_exists")
    department = Department(name_ko=data.name_ko, name_en=data.name_en, is_active=True)
    session.add(department)
    await _save(session)
    return department


async def patch_department(session: AsyncSession, department_id: int, data: DepartmentPatch) -> Department:
    department = await session.get(Department, department_id)
    if department is None:
        raise NotFound(f"department {department_id} not found", code="department_not_found")
    if data.name_ko is not None and data.name_ko != department.name_ko:
        if await session.scalar(select(Department.id).where(Department.name_ko == data.name_ko)) is not None:
            raise Conflict("a department with that Korean name exists", code="department_exists")
        department.name_ko = data.name_ko
    if data.name_en is not None:
        department.name_en = data.name_en
    if data.is_active is not None:
        department.is_active = data.is_active
    await _save(session)
    return department


@allow(Role.ADMIN)
async def api_departments(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        rows = await _all_departments(session)
    return web.json_response({"departments": [department_json(d) for d in rows]})


@allow(Role.ADMIN)
async def api_add_department(request: web.Request) -> web.Response:
    data = await json_body(request, DepartmentBody)
    async with transaction(request.app[SESSIONMAKER]) as session:
        department = await add_department(session, data)
        body = department_json(department)
    return web.json_response({"department": body}, status=201)


@allow(Role.ADMIN)
async def api_patch_department(request: web.Request) -> web.Response:
    department_id = int_param(request, "department_id")
    data = await json_body(request, DepartmentPatch)
    async with transaction(request.app[SESSIONMAKER]) as session:
        department = await patch_department(session, department_id, data)
        body = department_json(department)
    return web.json_response({"department": body})


class DepartmentForm(Input):
    name_ko: str | None = Field(default=None, min_length=1, max_length=60)
    name_en: str | None = Field(default=None, min_length=1, max_length=120)
    is_active: bool | None = None


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str) and v.strip() != "" and k != "csrf_token"}


@allow(Role.ADMIN)
async def departments_page(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        rows = await _all_departments(session)
    return render(request, "petitions/admin_departments.html", {"departments": rows, "error": None})


@allow(Role.ADMIN)
async def departments_submit(request: web.Request) -> web.StreamResponse:
    fields = await _form(request)
    try:
        async with transaction(request.app[SESSIONMAKER]) as session:
            raw_id = fields.pop("department_id", None)
            if raw_id is None:
                await add_department(session, validate(DepartmentBody, fields))
            else:
                if not raw_id.isdigit() or len(raw_id) > 10:
                    raise BadRequest("bad department id", code="invalid_department_id")
                await patch_department(session, int(raw_id), validate(DepartmentPatch, fields))
    except (BadRequest, Conflict, NotFound) as exc:
        async with transaction(request.app[SESSIONMAKER]) as session:
            rows = await _all_departments(session)
        return render(
            request,
            "petitions/admin_departments.html",
            {"departments": rows, "error": exc},
            status=exc.status,
        )
    raise web.HTTPSeeOther("/admin/departments")


# --- answer templates -------------------------------------------------------------------------------


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_templates(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        rows = await templates_for(session, principal)
    return web.json_response({"templates": [template_json(t) for t in rows]})


async def add_template(session: AsyncSession, principal: Any, data: TemplateBody) -> AnswerTemplate:
    department_id = data.department_id
    if principal.role is Role.OFFICIAL:
        # Officials save templates for their own department only.
        department_id = principal.department_id
    elif department_id is not None and await session.get(Department, department_id) is None:
        raise BadRequest("no such department", code="unknown_department")
    template = AnswerTemplate(title=data.title, body=data.body, department_id=department_id, is_active=True)
    session.add(template)
    await session.flush()
    return template


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_add_template(request: web.Request) -> web.Response:
    principal = principal_of(request)
    data = await json_body(request, TemplateBody)
    async with transaction(request.app[SESSIONMAKER]) as session:
        template = await add_template(session, principal, data)
        body = template_json(template)
    return web.json_response({"template": body}, status=201)


@allow(Role.ADMIN)
async def templates_page(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        rows = await templates_for(session, principal)
        departments = await _all_departments(session)
    return render(request, "petitions/admin_templates.html", {"templates": rows, "departments": departments})


@allow(Role.ADMIN)
async def templates_submit(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    fields = await _form(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        await add_template(session, principal, validate(TemplateBody, fields))
    raise web.HTTPSeeOther("/admin/answer-templates")


# --- CSV export ---------------------------------------------------------------------------------------


class ExportQuery(Input):
    personal: bool = False


CSV_HEADER = (
    "receipt_no",
    "received_at",
    "village",
    "type",
    "department",
    "status",
    "due_at",
    "answered_at",
    "deadline_state",
    "support_count",
    "title",
    "resident_name",
    "resident_phone",
)


def export_csv(rows: list[Petition], *, personal: bool) -> bytes:
    """UTF-8 with a BOM so Excel shows Korean; personal data masked unless ``personal``."""
    now = utcnow()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for p in rows:
        name = p.resident_name if personal else safe_mask_name(p.resident_name)
        phone = masking.format_phone(p.resident_phone) if personal else safe_mask_phone(p.resident_phone)
        writer.writerow(
            (
                p.receipt_no,
                format_local(p.received_at),
                p.village.full_name_ko,
                PetitionType(p.petition_type).label_ko,
                p.department.name_ko if p.department else "",
                PetitionStatus(p.status).label_ko,
                format_local(p.due_at),
                format_local(p.answered_at),
                service.deadline_state(p, now).value,
                p.support_count,
                formula_safe(p.title),
                formula_safe(name or ""),
                phone,
            )
        )
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


@allow(Role.ADMIN)
async def export_petitions(request: web.Request) -> web.Response:
    principal = principal_of(request)
    query = validate(ExportQuery, {k: v for k, v in request.query.items() if k == "personal"})
    async with transaction(request.app[SESSIONMAKER]) as session:
        rows = (await session.scalars(service.list_query(principal, service.Filters(), utcnow()))).all()
    log.info(
        "petitions exported",
        extra={"actor": principal.audit_label, "rows": len(rows), "personal": query.personal},
    )
    return web.Response(
        body=export_csv(list(rows), personal=query.personal),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="petitions.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- statistics ----------------------------------------------------------------------------------------


async def compute_stats(session: AsyncSession) -> dict[str, Any]:
    rows = (await session.scalars(select(Petition))).all()
    now = utcnow()
    by_village = Counter(p.village.full_name_ko for p in rows)
    by_type = Counter(PetitionType(p.petition_type).label_ko for p in rows)
    hours = [
        (p.answered_at - p.received_at).total_seconds() / 3600 for p in rows if p.answered_at is not None
    ]
    open_statuses = set(service.OPEN_STATUSES)
    decided = [p for p in rows if p.answered_at is not None or (p.status in open_statuses and p.due_at < now)]
    overdue = [p for p in decided if (p.answered_at or now) > p.due_at]
    return {
        "total": len(rows),
        "by_village": bars(by_village),
        "by_type": bars(by_type),
        "median_hours_to_answer": round(statistics.median(hours), 1) if hours else None,
        "overdue_rate": round(len(overdue) / len(decided), 3) if decided else None,
    }


@allow(Role.ADMIN)
async def api_stats(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        stats = await compute_stats(session)
    body = stats | {
        "by_village": [{"label": b.label, "count": b.value} for b in stats["by_village"]],
        "by_type": [{"label": b.label, "count": b.value} for b in stats["by_type"]],
    }
    return web.json_response(body)


@allow(Role.ADMIN)
async def stats_page(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        stats = await compute_stats(session)
    return render(request, "petitions/admin_stats.html", {"stats": stats})
