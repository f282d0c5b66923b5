"""Monitoring.

``GET /healthz``: 200 when the database answers, 503 otherwise (is the process worth keeping?).
``GET /readyz``: 200 only when the database answers, the meeting clock has ticked in the last
``CLOCK_STALE_SECONDS`` and the data directory's disk keeps ``MAEUL_MIN_FREE_MB`` free; otherwise
503 with what is wrong (can this server do its work right now?).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from server.auth.roles import PUBLIC
from server.errors import describe
from server.keys import CLOCK, ENGINE, SPACE
from server.petitions.storage import MIB
from server.routing import allow

log = logging.getLogger(__name__)

CLOCK_STALE_SECONDS = 30.0
DATABASE_TIMEOUT_SECONDS = 5.0


async def _database_answers(app: web.Application) -> bool:
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
            async with app[ENGINE].connect() as connection:
                await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        # A warning without a traceback: monitoring polls this every few seconds during an outage.
        log.warning("health check: database unreachable: %s", describe(exc))
        return False
    return True


@allow(PUBLIC)
async def healthz(request: web.Request) -> web.Response:
    if not await _database_answers(request.app):
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


@allow(PUBLIC)
async def readyz(request: web.Request) -> web.Response:
    app = request.app
    database_ok = await _database_answers(app)
    since_tick = app[CLOCK].seconds_since_ok() if CLOCK in app else None
    clock_ok = since_tick is not None and since_tick < CLOCK_STALE_SECONDS
    guard = app[SPACE]
    free = await asyncio.to_thread(guard.free_bytes)
    disk_ok = not guard.is_low(free)
    body: dict[str, Any] = {
        "status": "ok" if database_ok and clock_ok and disk_ok else "unavailable",
        "database": "ok" if database_ok else "unreachable",
        "clock": {
            "status": "ok" if clock_ok else "stalled",
            "seconds_since_tick": None if since_tick is None else round(since_tick, 1),
        },
        "disk": {
            "status": "ok" if disk_ok else "low",
            "free_mb": free // MIB,
            "min_free_mb": guard.min_free_bytes // MIB,
        },
    }
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)
