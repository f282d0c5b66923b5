"""Duty-call API and the kiosk's calling screen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import StrictBool
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.roles import Principal, Role
from server.db import transaction
from server.duty import service
from server.duty.models import DutyCall
from server.keys import SESSIONMAKER, SETTINGS
from server.rendering import render
from server.room_urls import room_url
from server.routing import allow, principal_of
from server.validation import Input, json_body, path_id


class AvailabilityInput(Input):
    available: StrictBool


def _call_id(request: web.Request) -> int:
    return path_id(request, "call_id")


def call_json(call: DutyCall, role: Role) -> dict[str, Any]:
    """A call as the caller of ``role`` sees it (the room link is the kiosk's or the official's page)."""
    return {
        "id": call.id,
        "status": call.status,
        "ring_until": call.ring_until.isoformat(),
        "room_url": room_url(role, call.room_id) if call.room_id else None,
    }


#: A service step on one call: (session, caller, call id) -> the call afterwards.
CallStep = Callable[[AsyncSession, Principal, int], Awaitable[DutyCall]]


async def _step_reply(request: web.Request, step: CallStep) -> web.Response:
    """Run ``step`` on the call named in the path, in one transaction; reply with the call."""
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        call = await step(session, principal, _call_id(request))
        body = {"call": call_json(call, principal.role)}
    return web.json_response(body)


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_availability(request: web.Request) -> web.Response:
    data = await json_body(request, AvailabilityInput)
    async with transaction(request.app[SESSIONMAKER]) as session:
        await service.set_available(session, principal_of(request), data.available)
    return web.json_response({"available": data.available})


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_ringing(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with transaction(request.app[SESSIONMAKER]) as session:
        available = await service.is_available(session, principal)
        views = await service.ringing_for(session, principal)
        body = {
            "available": available,
            "calls": [{**call_json(v.call, principal.role), "village": v.village} for v in views],
        }
    return web.json_response(body)


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_answer(request: web.Request) -> web.Response:
    return await _step_reply(request, service.answer)


@allow(Role.KIOSK)
async def api_kiosk_start(request: web.Request) -> web.Response:
    kiosk = principal_of(request)
    ring_for = dt.timedelta(seconds=request.app[SETTINGS].duty_ring_seconds)
    async with transaction(request.app[SESSIONMAKER]) as session:
        call = await service.start_call(session, kiosk, ring_for)
        body = {"call": call_json(call, kiosk.role)}
    return web.json_response(body, status=201)


@allow(Role.KIOSK)
async def api_kiosk_call(request: web.Request) -> web.Response:
    return await _step_reply(request, service.kiosk_call)


@allow(Role.KIOSK)
async def api_kiosk_cancel(request: web.Request) -> web.Response:
    return await _step_reply(request, service.cancel)


@allow(Role.KIOSK)
async def kiosk_call_page(request: web.Request) -> web.Response:
    return render(request, "duty/kiosk_call.html", {"kiosk": principal_of(request)})
