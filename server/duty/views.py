"""Duty-call API and the kiosk's calling screen."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import StrictBool

from server.auth.roles import Role
from server.db import transaction
from server.duty import service
from server.duty.models import DutyCall
from server.keys import SESSIONMAKER, SETTINGS
from server.rendering import render
from server.routing import allow, principal_of
from server.validation import Input, json_body, path_id


class AvailabilityInput(Input):
    available: StrictBool


def _call_id(request: web.Request) -> int:
    return path_id(request, "call_id")


def call_json(call: DutyCall, room_prefix: str) -> dict[str, Any]:
    return {
        "id": call.id,
        "status": call.status,
        "ring_until": call.ring_until.isoformat(),
        "room_url": f"{room_prefix}{call.room_id}" if call.room_id else None,
    }


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_availability(request: web.Request) -> web.Response:
    data = await json_body(request, AvailabilityInput)
    async with transaction(request.app[SESSIONMAKER]) as session:
        await service.set_available(session, principal_of(request), data.available)
    return web.json_response({"available": data.available})


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_ringing(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        available = await service.is_available(session, principal_of(request))
        views = await service.ringing_for(session, principal_of(request))
        body = {
            "available": available,
            "calls": [{**call_json(v.call, "/rooms/"), "village": v.village} for v in views],
        }
    return web.json_response(body)


@allow(Role.OFFICIAL, Role.ADMIN)
async def api_answer(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        call = await service.answer(session, principal_of(request), _call_id(request))
        body = {"call": call_json(call, "/rooms/")}
    return web.json_response(body)


@allow(Role.KIOSK)
async def api_kiosk_start(request: web.Request) -> web.Response:
    ring_for = dt.timedelta(seconds=request.app[SETTINGS].duty_ring_seconds)
    async with transaction(request.app[SESSIONMAKER]) as session:
        call = await service.start_call(session, principal_of(request), ring_for)
        body = {"call": call_json(call, "/kiosk/rooms/")}
    return web.json_response(body, status=201)


@allow(Role.KIOSK)
async def api_kiosk_call(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        call = await service.kiosk_call(session, principal_of(request), _call_id(request))
        body = {"call": call_json(call, "/kiosk/rooms/")}
    return web.json_response(body)


@allow(Role.KIOSK)
async def api_kiosk_cancel(request: web.Request) -> web.Response:
    async with transaction(request.app[SESSIONMAKER]) as session:
        call = await service.cancel(session, principal_of(request), _call_id(request))
        body = {"call": call_json(call, "/kiosk/rooms/")}
    return web.json_response(body)


@allow(Role.KIOSK)
async def kiosk_call_page(request: web.Request) -> web.Response:
    return render(request, "duty/kiosk_call.html", {"kiosk": principal_of(request)})
