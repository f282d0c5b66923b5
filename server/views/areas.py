"""The home of each area. The official and admin areas are shells that later features fill."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from server.auth.roles import PUBLIC, Role
from server.db import transaction
from server.duty import service as duty
from server.keys import PRINCIPAL, SESSIONMAKER
from server.kiosks.models import Kiosk
from server.rendering import render
from server.routing import allow


@allow(PUBLIC)
async def index(request: web.Request) -> web.StreamResponse:
    principal = request[PRINCIPAL]
    if principal is None:
        raise web.HTTPSeeOther("/login")
    target = {Role.ADMIN: "/admin", Role.OFFICIAL: "/official", Role.KIOSK: "/kiosk"}[principal.role]
    raise web.HTTPSeeOther(target)


@allow(Role.OFFICIAL, Role.ADMIN)
async def official_home(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    assert principal is not None
    async with transaction(request.app[SESSIONMAKER]) as session:
        on_duty = await duty.is_available(session, principal)
    return render(request, "official/home.html", {"on_duty": on_duty})


@allow(Role.ADMIN)
async def admin_home(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        kiosk_count = await session.scalar(select(func.count(Kiosk.id)).where(Kiosk.revoked_at.is_(None)))
    return render(request, "admin/home.html", {"kiosk_count": kiosk_count or 0})
