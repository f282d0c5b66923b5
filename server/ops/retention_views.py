"""``/admin/retention``: what the retention job will erase in the next 30 days, its last runs, and
the legal holds (placed or lifted by an administrator, with a reason)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from server.auth.roles import Role
from server.db import transaction, utcnow
from server.errors import AppError
from server.keys import SESSIONMAKER, SETTINGS
from server.ops import retention
from server.rendering import render
from server.routing import allow
from server.validation import Input, form_body


class HoldBody(Input):
    target: Literal["petition", "meeting"]
    target_id: int = Field(ge=1)
    action: Literal["hold", "release"]
    reason: str = Field(default="", max_length=retention.HOLD_REASON_MAX)


async def _page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    settings = request.app[SETTINGS]
    async with transaction(request.app[SESSIONMAKER]) as session:
        due = await retention.preview(session, settings, utcnow())
        runs = await retention.recent_runs(session)
        held = await retention.held(session)
    context = {
        "due": due,
        "runs": runs,
        "held": held,
        "policy": retention.Policy.from_settings(settings),
        "days": retention.PREVIEW_DAYS,
        "error": error,
    }
    return render(request, "admin/retention.html", context, status=status)


@allow(Role.ADMIN)
async def retention_page(request: web.Request) -> web.Response:
    return await _page(request)


@allow(Role.ADMIN)
async def hold_submit(request: web.Request) -> web.StreamResponse:
    try:
        data = await form_body(request, HoldBody)
        async with transaction(request.app[SESSIONMAKER]) as session:
            reason = data.reason if data.action == "hold" else None
            await retention.set_hold(session, data.target, data.target_id, reason)
    except AppError as exc:
        return await _page(request, exc.code, exc.status)
    raise web.HTTPSeeOther("/admin/retention")
