"""``GET /metrics`` (Prometheus), the latency middleware and ``GET /admin/system`` (the IT admin's
view of the live meetings, the kiosks and the history charts)."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from server.auth.roles import PUBLIC, Role
from server.db import transaction, utcnow
from server.errors import describe
from server.keys import ENGINE, METRICS, SESSIONMAKER, SETTINGS
from server.kiosks.fleet import fleet
from server.ops.history import DAY, MONTH, charts
from server.ops.live_share import cluster_live_state
from server.ops.metrics import may_scrape, route_label, tcp_peer
from server.rendering import render
from server.rooms.models import Room
from server.routing import Handler, allow

log = logging.getLogger(__name__)


@web.middleware
async def http_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request by its route template (outermost, so error pages count too)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects raised past the error middleware
        status = exc.status
        raise
    finally:
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.observe_http(request.method, route_label(request), status, time.perf_counter() - started)


# The scrape proves itself (its own Bearer token, or loopback): the auth middleware must not read
# that Bearer header as a kiosk device token and answer a login redirect.
@allow(PUBLIC, self_authenticating=True)
async def metrics_endpoint(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    token = settings.metrics_token.get() if settings.metrics_token is not None else None
    if not may_scrape(tcp_peer(request), request.headers.items(), token):
        log.warning("metrics scrape refused", extra={"peer": tcp_peer(request)})
        # Plain text, not the login redirect a browser would get: the caller is Prometheus.
        return web.Response(
            status=401,
            text="metrics need Authorization: Bearer <MAEUL_METRICS_TOKEN>, or a scrape from loopback\n",
            headers={"WWW-Authenticate": 'Bearer realm="maeul-metrics"', "Cache-Control": "no-store"},
        )
    metrics = request.app[METRICS]
    try:
        async with transaction(request.app[SESSIONMAKER]) as session:
            await metrics.refresh_database(session, request.app[ENGINE], utcnow())
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        # The media plane's and the latency numbers still matter most during an outage.
        log.warning("metrics: database unreadable: %s", describe(exc))
        metrics.database_ok.set(0)
    else:
        metrics.database_ok.set(1)
    return web.Response(
        body=generate_latest(metrics.registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
    )


@allow(Role.ADMIN)
async def system_page(request: web.Request) -> web.Response:
    cluster = await cluster_live_state(request.app)  # every web process's meetings, not ours alone
    live = cluster.state
    now = utcnow()
    async with transaction(request.app[SESSIONMAKER]) as session:
        kiosks = [entry for entry in await fleet(session, now) if entry.kiosk.is_active]
        room_ids = [int(room.room_id) for room in live.rooms if room.room_id.isdigit()]
        titles = {
            str(room.id): room.title
            for room in (await session.scalars(select(Room).where(Room.id.in_(room_ids)))).all()
        }
        day = await charts(session, DAY, now)
        month = await charts(session, MONTH, now)
    return render(
        request,
        "admin/system.html",
        {
            "live": live,
            "live_complete": cluster.complete,
            "titles": titles,
            "kiosks_online": [e for e in kiosks if e.online],
            "kiosks_offline": [e for e in kiosks if not e.online],
            "day": day,
            "month": month,
        },
    )
