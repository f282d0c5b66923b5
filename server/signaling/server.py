"""The socket.io server on the aiohttp app.

Every connection authenticates at connect time with the same credentials as HTTP (the official's
session cookie, or the kiosk's device token as cookie or ``auth={"token": …}``); the principal is
kept in the socket.io session. Kiosk sockets join the room ``kiosk:<id>`` so a revocation can
close them at once (``revocation.disconnect_kiosk``).
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from aiohttp import web

from server.auth.roles import PUBLIC, Principal, Role
from server.auth.service import principal_for_session
from server.db import transaction
from server.keys import SESSIONMAKER, SIO
from server.kiosks.service import principal_for_token
from server.middlewares import KIOSK_COOKIE, SESSION_COOKIE
from server.routing import allow
from server.signaling.revocation import kiosk_room

log = logging.getLogger(__name__)

SOCKETIO_PATH = "/socket.io/"


def create_sio() -> socketio.AsyncServer:
    # cors_allowed_origins=None: only same-origin pages may open a socket (no cross-site hijack).
    return socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=None,
        logger=False,
        engineio_logger=False,
        max_http_buffer_size=256 * 1024,
    )


async def authenticate_environ(app: web.Application, environ: dict[str, Any], auth: Any) -> Principal | None:
    request: web.Request = environ["aiohttp.request"]
    token = auth.get("token") if isinstance(auth, dict) else None
    async with transaction(app[SESSIONMAKER]) as session:
        if isinstance(token, str) and token:
            return await principal_for_token(session, token)
        session_key = request.cookies.get(SESSION_COOKIE)
        if session_key:
            principal = await principal_for_session(session, session_key)
            if principal is not None:
                return principal
        kiosk_token = request.cookies.get(KIOSK_COOKIE)
        if kiosk_token:
            return await principal_for_token(session, kiosk_token)
    return None


def setup_signaling(app: web.Application) -> None:
    sio = create_sio()
    app[SIO] = sio

    @allow(PUBLIC, self_authenticating=True)
    async def socketio_endpoint(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await sio.eio.handle_request(request)
        return response

    app.router.add_route("GET", SOCKETIO_PATH, socketio_endpoint)
    app.router.add_route("POST", SOCKETIO_PATH, socketio_endpoint)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = await authenticate_environ(app, environ, auth)
        if principal is None:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "authentication_required", "message": "log in or enroll the kiosk first"}
            )
        await sio.save_session(sid, {"principal": principal})
        if principal.role is Role.KIOSK:
            await sio.enter_room(sid, kiosk_room(principal.id))
        log.info("socket connected", extra={"sid": sid, "actor": principal.audit_label})

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        log.info("socket disconnected", extra={"sid": sid, "reason": str(reason)})

    @sio.on("*")
    async def unknown_event(event: str, sid: str, data: Any = None) -> None:
        await sio.emit(
            "error",
            {"code": "unknown_event", "message": f"unknown event {event!r}", "event": event},
            to=sid,
        )

    @sio.event
    async def whoami(sid: str, data: Any = None) -> dict[str, Any]:
        session = await sio.get_session(sid)
        principal: Principal = session["principal"]
        return {"role": principal.role.value, "id": principal.id, "display_name": principal.display_name}
