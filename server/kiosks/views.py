"""Kiosk enrollment (API for the kiosk agent, page for a kiosk browser), the kiosk home shell,
and the admin's kiosk management."""

from __future__ import annotations

import datetime as dt
import logging

from aiohttp import web
from pydantic import Field, StrictBool

from server.auth.roles import PUBLIC, Role
from server.cookies import set_cookie
from server.db import transaction, utcnow
from server.errors import AuthenticationRequired, BadRequest
from server.keys import PRINCIPAL, SESSIONMAKER, SETTINGS, SIO
from server.kiosks import fleet, service
from server.kiosks.models import Kiosk
from server.middlewares import KIOSK_COOKIE
from server.notices import service as notices_service
from server.rendering import render
from server.routing import allow
from server.signaling.revocation import disconnect_kiosk
from server.validation import Id, Input, form_body, json_body, path_id

log = logging.getLogger(__name__)

TEN_YEARS = 10 * 365 * 24 * 3600


class EnrollInput(Input):
    code: str = Field(min_length=1, max_length=64)


class HeartbeatInput(Input):
    camera: StrictBool
    microphone: StrictBool
    browser_alive: StrictBool
    rtt_ms: float | None = Field(default=None, ge=0, le=600_000)
    free_disk_mb: int = Field(ge=0)
    agent_version: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z.+_-]+$")


class CreateKioskInput(Input):
    village_id: Id
    label: str = Field(min_length=1, max_length=80)


def kiosk_json(kiosk: Kiosk, now: dt.datetime | None = None) -> dict[str, object]:
    entry = fleet.status_of(kiosk, now or utcnow())
    return {
        "id": kiosk.id,
        "label": kiosk.label,
        "village_id": kiosk.village_id,
        "village": kiosk.village.full_name_ko,
        "enrolled_at": kiosk.enrolled_at.isoformat() if kiosk.enrolled_at else None,
        "revoked_at": kiosk.revoked_at.isoformat() if kiosk.revoked_at else None,
        "last_seen_at": kiosk.last_seen_at.isoformat() if kiosk.last_seen_at else None,
        "active": kiosk.is_active,
        "online": entry.online,
        "last_heartbeat_at": kiosk.last_heartbeat_at.isoformat() if kiosk.last_heartbeat_at else None,
        "health": kiosk.health,
        "agent_version": kiosk.agent_version,
    }


@allow(PUBLIC)
async def api_enroll(request: web.Request) -> web.Response:
    data = await json_body(request, EnrollInput)
    async with transaction(request.app[SESSIONMAKER]) as session:
        kiosk, token = await service.enroll(session, data.code)
        body = {"token": token, "kiosk": kiosk_json(kiosk)}
    return web.json_response(body, status=201)


@allow(PUBLIC)
async def enroll_page(request: web.Request) -> web.Response:
    return render(request, "kiosk/enroll.html", {"code": request.query.get("code", "")[:64], "error": None})


@allow(PUBLIC)
async def enroll_submit(request: web.Request) -> web.StreamResponse:
    """A kiosk browser enrolls itself: the device token goes into an HttpOnly cookie, never the URL."""
    try:
        data = await form_body(request, EnrollInput)
        async with transaction(request.app[SESSIONMAKER]) as session:
            _kiosk, token = await service.enroll(session, data.code)
    except (BadRequest, AuthenticationRequired) as exc:
        return render(request, "kiosk/enroll.html", {"code": "", "error": exc.code}, status=exc.status)
    response = web.HTTPSeeOther("/kiosk")
    set_cookie(response, request, KIOSK_COOKIE, token, max_age=TEN_YEARS)
    raise response


@allow(Role.KIOSK)
async def kiosk_home(request: web.Request) -> web.Response:
    kiosk = request[PRINCIPAL]
    assert kiosk is not None and kiosk.village_id is not None
    async with transaction(request.app[SESSIONMAKER]) as session:
        notices = await notices_service.current_for_village(session, kiosk.village_id)
    return render(request, "kiosk/home.html", {"kiosk": kiosk, "notices": notices})


@allow(Role.KIOSK)
async def api_heartbeat(request: web.Request) -> web.Response:
    data = await json_body(request, HeartbeatInput)
    principal = request[PRINCIPAL]
    assert principal is not None
    health = data.model_dump(exclude={"agent_version"})
    async with transaction(request.app[SESSIONMAKER]) as session:
        await fleet.record_heartbeat(session, principal.id, health, data.agent_version)
    return web.json_response({"status": "ok"})


async def _fleet_page(request: web.Request, issued: service.IssuedCode | None = None) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        entries = await fleet.fleet(session)
    return render(request, "admin/kiosks.html", {"entries": entries, "issued": issued})


@allow(Role.ADMIN)
async def admin_kiosks_page(request: web.Request) -> web.Response:
    return await _fleet_page(request)


@allow(Role.ADMIN)
async def api_list_kiosks(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        entries = await fleet.fleet(session)
        return web.json_response({"kiosks": [kiosk_json(e.kiosk) for e in entries]})


@allow(Role.ADMIN)
async def api_create_kiosk(request: web.Request) -> web.Response:
    data = await json_body(request, CreateKioskInput)
    lifetime = dt.timedelta(hours=request.app[SETTINGS].enrollment_code_hours)
    async with transaction(request.app[SESSIONMAKER]) as session:
        issued = await service.create_kiosk(
            session, village_id=data.village_id, label=data.label, code_lifetime=lifetime
        )
        body = {
            "kiosk": kiosk_json(issued.kiosk),
            "enrollment_code": issued.code,
            "expires_at": issued.expires_at.isoformat(),
        }
    return web.json_response(body, status=201)


def _kiosk_id(request: web.Request) -> int:
    return path_id(request, "kiosk_id")


async def _revoke(request: web.Request) -> Kiosk:
    async with transaction(request.app[SESSIONMAKER]) as session:
        kiosk = await service.revoke(session, _kiosk_id(request))
    # After the commit: open sockets of this kiosk are closed now, not at their next event.
    await disconnect_kiosk(request.app[SIO], kiosk.id)
    return kiosk


@allow(Role.ADMIN)
async def api_revoke_kiosk(request: web.Request) -> web.Response:
    kiosk = await _revoke(request)
    return web.json_response({"kiosk": kiosk_json(kiosk)})


@allow(Role.ADMIN)
async def admin_revoke_kiosk(request: web.Request) -> web.StreamResponse:
    await _revoke(request)
    raise web.HTTPSeeOther("/admin/kiosks")


@allow(Role.ADMIN)
async def admin_reenroll_kiosk(request: web.Request) -> web.Response:
    lifetime = dt.timedelta(hours=request.app[SETTINGS].enrollment_code_hours)
    async with transaction(request.app[SESSIONMAKER]) as session:
        kiosk = await session.get(Kiosk, _kiosk_id(request))
        if kiosk is None:
            raise web.HTTPNotFound()
        issued = await service.issue_enrollment_code(session, kiosk, lifetime)
    await disconnect_kiosk(request.app[SIO], issued.kiosk.id)
    return await _fleet_page(request, issued)
