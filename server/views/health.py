"""``GET /healthz`` for monitoring: 200 when the database answers, 503 otherwise."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from server.auth.roles import PUBLIC
from server.keys import ENGINE
from server.routing import allow

log = logging.getLogger(__name__)


@allow(PUBLIC)
async def healthz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(5):
            async with request.app[ENGINE].connect() as connection:
                await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        log.exception("health check: database unreachable")
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})
