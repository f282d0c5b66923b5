"""The socket.io server on the aiohttp app.

Every connection authenticates at connect time with the same credentials as HTTP (the official's
session cookie, or the kiosk's device token as cookie or ``auth={"token": …}``); the principal is
kept in the socket.io session. Kiosk sockets join the room ``kiosk:<id>`` so a revocation can
close them at once (``revocation.disconnect_kiosk``); closing a socket also removes its meeting
participant from the SFU. Before any handler runs, :mod:`server.signaling.guard` refuses reserved
event names, re-checks the credential (revocation, logout, expiry, deactivation) and caps the
sockets per kiosk and per account.

Room events (``join``, ``offer``, ``ice``, ``mute``, ``visible``, ``leave``, …) are handled by
:class:`server.signaling.room_hub.RoomHub`; see docs/signaling.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import socketio
from aiohttp import web

from server.auth.roles import PUBLIC, Principal, Role
from server.auth.service import principal_for_session
from server.cluster.plane import MEDIA
from server.cluster.wire import Unavailable
from server.db import transaction
from server.errors import DatabaseUnavailable, outage_error
from server.keys import ROOM_HUB, SESSIONMAKER, SETTINGS, SIO
from server.kiosks.service import principal_for_token
from server.middlewares import KIOSK_COOKIE, SESSION_COOKIE
from server.ops.hooks import counted_event
from server.routing import allow
from server.signaling import chair
from server.signaling.events import Error, emit
from server.signaling.guard import Credential, SocketLimitReached, SocketServer, SocketSessions
from server.signaling.messages import MAX_MESSAGE_BYTES, SignalingError, StillRequest
from server.signaling.revocation import kiosk_room
from server.signaling.room_hub import RoomHub

log = logging.getLogger(__name__)

SOCKETIO_PATH = "/socket.io/"

#: engine.io disconnect reasons of a connection that was lost rather than closed.
LOST_CONNECTION = frozenset(
    {
        socketio.AsyncServer.reason.PING_TIMEOUT,
        socketio.AsyncServer.reason.TRANSPORT_CLOSE,
        socketio.AsyncServer.reason.TRANSPORT_ERROR,
    }
)

RequestHandler = Callable[[str, Principal, Any], Awaitable[dict[str, Any]]]


def create_sio(client_manager: socketio.AsyncManager | None = None) -> SocketServer:
    # cors_allowed_origins=None: only same-origin pages may open a socket (no cross-site hijack).
    # Messages above MAX_MESSAGE_BYTES close that connection; a kiosk that vanished without a
    # close is noticed after ping_interval + ping_timeout (20 s) and leaves its room.
    # ``client_manager``: run.py web's AsyncRedisManager (emits reach every web process).
    return SocketServer(
        client_manager=client_manager,
        async_mode="aiohttp",
        cors_allowed_origins=None,
        logger=False,
        engineio_logger=False,
        max_http_buffer_size=MAX_MESSAGE_BYTES,
        ping_interval=10,
        ping_timeout=10,
    )


async def authenticate_environ(app: web.Application, environ: Any, auth: Any) -> Credential | None:
    """The credential a connecting socket presents, checked as HTTP checks it; None if none holds.
    Only socket.io's own connect reaches this (``SocketServer`` refuses a client's "connect")."""
    request = environ.get("aiohttp.request") if isinstance(environ, dict) else None
    if not isinstance(request, web.BaseRequest):
        return None
    token = auth.get("token") if isinstance(auth, dict) else None
    async with transaction(app[SESSIONMAKER]) as session:
        if isinstance(token, str) and token:
            principal = await principal_for_token(session, token)
            return None if principal is None else Credential(principal, token)
        session_key = request.cookies.get(SESSION_COOKIE)
        if session_key:
            principal = await principal_for_session(session, session_key)
            if principal is not None:
                return Credential(principal, session_key)
        kiosk_token = request.cookies.get(KIOSK_COOKIE)
        if kiosk_token:
            principal = await principal_for_token(session, kiosk_token)
            return None if principal is None else Credential(principal, kiosk_token)
    return None


def setup_signaling(app: web.Application, *, client_manager: socketio.AsyncManager | None = None) -> None:
    """Mount socket.io and the meeting events. Needs ``app[MEDIA]`` (the in-process SFU or the
    SFU workers' remote) at start-up: a cleanup_ctx registered before this one."""
    sio = create_sio(client_manager)
    app[SIO] = sio
    settings = app[SETTINGS]
    hub = RoomHub(sio, settings)
    app[ROOM_HUB] = hub
    sessions = SocketSessions(
        sio,
        lambda: app[SESSIONMAKER],
        limit=settings.sockets_per_principal,
        recheck_seconds=settings.socket_recheck_seconds,
    )
    sio.sessions = sessions

    async def meetings_ctx(_app: web.Application) -> AsyncIterator[None]:
        # The media plane and the database exist once their (earlier) cleanup contexts ran.
        async for _ in hub.run(app[MEDIA], app[SESSIONMAKER]):
            yield

    async def sessions_ctx(_app: web.Application) -> AsyncIterator[None]:
        async for _ in sessions.run():
            yield

    app.cleanup_ctx.append(meetings_ctx)
    app.cleanup_ctx.append(sessions_ctx)

    @allow(PUBLIC, self_authenticating=True)
    async def socketio_endpoint(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await sio.eio.handle_request(request)
        return response

    app.router.add_route("GET", SOCKETIO_PATH, socketio_endpoint)
    app.router.add_route("POST", SOCKETIO_PATH, socketio_endpoint)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            credential = await authenticate_environ(app, environ, auth)
        except Exception as exc:
            # Authentication only talks to the database, so an OSError here is the database going
            # away even when its traceback no longer shows the driver. It must not escape as the
            # builtin ConnectionRefusedError: python-socketio turns that into a reasonless refusal.
            outage = outage_error(exc) or (DatabaseUnavailable() if isinstance(exc, OSError) else None)
            if outage is None:
                raise
            # Refused with a reason the page can act on (try again), not a traceback and no answer.
            log.warning("socket refused: %s", outage.message, extra={"sid": sid})
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": outage.code, "message": outage.message}
            ) from None
        if credential is None:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "authentication_required", "message": "log in or enroll the kiosk first"}
            )
        principal = credential.principal
        try:
            sessions.register(sid, credential)
        except SocketLimitReached:
            log.warning("socket refused: too many open", extra={"actor": principal.audit_label})
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "too_many_sockets", "message": "this device or account has too many sockets open"}
            ) from None
        try:
            await sio.save_session(sid, {"principal": principal})
            if principal.role is Role.KIOSK:
                await sio.enter_room(sid, kiosk_room(principal.id))
        except BaseException:
            sessions.unregister(sid)  # a refused connect gets no disconnect event
            raise
        log.info("socket connected", extra={"sid": sid, "actor": principal.audit_label})

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        # A dropped socket, a closed tab and a revoked kiosk all end here: free the SFU participant.
        # A lost connection (not closed by either side) may come back: listed as reconnecting.
        lost = str(reason) in LOST_CONNECTION
        sessions.unregister(sid)
        await hub.leave(sid, reason="dropped" if lost else "disconnect")
        log.info("socket disconnected (%s)", reason, extra={"sid": sid, "reason": str(reason)})

    @sio.on("*")
    async def unknown_event(event: str, sid: str, data: Any = None) -> dict[str, Any]:
        error = SignalingError("unknown_event", f"unknown event {event[:64]!r}")
        await emit(sio, Error.of(error, event), to=sid)
        return error.to_json()

    @sio.event
    async def whoami(sid: str, data: Any = None) -> dict[str, Any]:
        session = await sio.get_session(sid)
        principal: Principal = session["principal"]
        return {"role": principal.role.value, "id": principal.id, "display_name": principal.display_name}

    def request(name: str, handler: RequestHandler) -> None:
        """Register a room event: errors become an ``error`` event plus an error ack, and the
        server (and the room) carry on."""

        async def run(sid: str, data: Any = None) -> dict[str, Any]:
            try:
                session = await sio.get_session(sid)
                principal: Principal = session["principal"]
                return await handler(sid, principal, data)
            except SignalingError as error:
                log.info("room request refused", extra={"sid": sid, "event": name, "code": error.code})
                await emit(sio, Error.of(error, name), to=sid)
                return error.to_json()
            except Unavailable as exc:
                # The SFU workers cannot be reached (Redis away, no live worker, no answer in time):
                # a clear refusal the page retries, never a hang or an internal error.
                log.warning("room request: %s", exc.message, extra={"sid": sid, "event": name})
                unavailable = SignalingError("unavailable", exc.message)
                await emit(sio, Error.of(unavailable, name), to=sid)
                return unavailable.to_json()
            except Exception as exc:
                # A database outage or a full disk is named as such (the page may try again); only
                # a bug is an internal error with a traceback.
                outage = outage_error(exc)
                if outage is None:
                    log.exception("room request failed", extra={"sid": sid, "event": name})
                    failure = SignalingError("internal_error", "something went wrong on the server")
                else:
                    log.warning("room request failed: %s", outage.message, extra={"sid": sid, "event": name})
                    failure = SignalingError(outage.code, outage.message)
                await emit(sio, Error.of(failure, name), to=sid)
                return failure.to_json()

        sio.on(name, counted_event(app, name, run))  # metrics: the ack tells ok or the error code

    async def on_leave(sid: str, _principal: Principal, _data: Any) -> dict[str, Any]:
        return {"left": await hub.leave(sid)}

    request("join", hub.join)
    request("offer", lambda sid, _p, data: hub.offer(sid, data))
    request("ice", lambda sid, _p, data: hub.ice(sid, data))
    request("mute", lambda sid, _p, data: hub.mute(sid, data))
    request("visible", lambda sid, _p, data: hub.visible(sid, data))
    request("tiles", lambda sid, _p, data: hub.tiles(sid, data))
    request("leave", on_leave)
    request("hand", lambda sid, _p, data: chair.hand(hub, sid, data))
    request("screen", lambda sid, principal, data: chair.screen(hub, sid, principal, data))
    request("chair", lambda sid, principal, data: chair.chair(hub, sid, principal, data))

    async def on_still(sid: str, _principal: Principal, data: Any) -> dict[str, Any]:
        hub.set_still(sid, StillRequest.from_dict(data).jpeg)
        return {"ok": True}

    request("still", on_still)
