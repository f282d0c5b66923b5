"""Prometheus metrics of one Maeul process, served at ``GET /metrics``.

Each app owns its :class:`Metrics` (``app[METRICS]``) with its own ``CollectorRegistry``: the
library's global default registry would be shared by every app a test suite builds, and once Maeul
runs several processes each one exports its own numbers (Prometheus scrapes each and sums them).

Three kinds of numbers, each gathered where it is cheapest:

* counted as they happen: HTTP latency by route template (the ``http_metrics`` middleware) and
  socket events by name and result (``count_socket_event``, hooked where signaling dispatches);
* read from the media plane at scrape time (:class:`LiveCollector`): rooms, participants, link
  mode per participant, forwarded packets and bytes, NACKs, PLIs, retransmissions and recording
  bytes come from the SFU's own stats objects, so forwarding a packet costs nothing extra;
* asked of the database at scrape time: kiosks online/offline, requests by status and overdue,
  and the connection pool in use.

Access: a ``Authorization: Bearer <MAEUL_METRICS_TOKEN>`` header, or a TCP peer on loopback that
did not come through a proxy (see :func:`may_scrape`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from server.keys import METRICS
from server.kiosks.fleet import fleet
from server.ops.live import LiveState, app_live_state
from server.petitions.models import Petition
from server.petitions.service import OPEN_STATUSES

log = logging.getLogger(__name__)

#: Buckets (seconds) for page and API latency: a kiosk page should answer well under a second.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The route label of a request no route matched (never its raw path: unbounded label values).
UNMATCHED = "unmatched"

LiveSource = Callable[[], LiveState | None]

#: Per-participant counters read from the SFU: (LiveParticipant attribute, family, help).
PARTICIPANT_COUNTERS = (
    ("packets_out", "maeul_forwarded_packets", "RTP packets forwarded to a participant"),
    ("bytes_out", "maeul_forwarded_bytes", "RTP bytes forwarded to a participant"),
    ("retransmitted", "maeul_retransmitted_packets", "Packets resent to a participant after its NACKs"),
    (
        "nacks_sent",
        "maeul_nacks_sent",
        "NACKs sent to a participant for media it published that arrived with gaps",
    ),
    ("plis_sent", "maeul_plis_sent", "Keyframe requests (PLI) sent to a participant"),
)


class LiveCollector(Collector):
    """The media plane's numbers, computed from a fresh :class:`LiveState` at each scrape.

    Per-participant series carry ``room`` and ``participant`` labels: a participant's counters
    restart when it rejoins (Prometheus treats that as a counter reset) and vanish when it leaves,
    so the series stay as many as the live participants."""

    def __init__(self, source: LiveSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        state = self._source()
        rooms = GaugeMetricFamily("maeul_rooms", "Live rooms whose signaling this process holds")
        participants = GaugeMetricFamily(
            "maeul_participants", "Participants in live rooms, by kind", labels=["kind"]
        )
        modes = GaugeMetricFamily(
            "maeul_participants_by_link_mode",
            "Participants by link mode (video, low_video, audio_only)",
            labels=["mode"],
        )
        link = GaugeMetricFamily(
            "maeul_participant_link_bars",
            "Link bars (0-3) of each participant, labelled with its link mode",
            labels=["room", "participant", "mode"],
        )
        recording = GaugeMetricFamily(
            "maeul_recording_bytes", "Bytes written by each room's running recording", labels=["room"]
        )
        per_participant = {
            attr: CounterMetricFamily(name, doc, labels=["room", "participant"])
            for attr, name, doc in PARTICIPANT_COUNTERS
        }
        by_kind: dict[str, int] = {"kiosk": 0, "official": 0}
        by_mode: dict[str, int] = {"video": 0, "low_video": 0, "audio_only": 0}
        if state is not None:
            rooms.add_metric([], len(state.rooms))
            for room in state.rooms:
                recording.add_metric([room.room_id], room.recording_bytes)
            for p in state.participants:
                by_kind[p.kind] = by_kind.get(p.kind, 0) + 1
                by_mode[p.mode] = by_mode.get(p.mode, 0) + 1
                link.add_metric([p.room_id, p.participant_id, p.mode], p.bars)
                for attr, family in per_participant.items():
                    family.add_metric([p.room_id, p.participant_id], getattr(p, attr))
        else:
            rooms.add_metric([], 0)
        for kind, count in sorted(by_kind.items()):
            participants.add_metric([kind], count)
        for mode, count in sorted(by_mode.items()):
            modes.add_metric([mode], count)
        yield from (rooms, participants, modes, link, recording, *per_participant.values())


class Metrics:
    """Every metric of one app, in the app's own registry."""

    def __init__(self, live: LiveSource) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_seconds = Histogram(
            "maeul_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.socket_events = Counter(
            "maeul_socket_events",
            "Socket.io meeting events handled, by name and result (ok or the error code)",
            ["event", "result"],
            registry=r,
        )
        self.kiosks = Gauge("maeul_kiosks", "Enrolled kiosks by heartbeat state", ["state"], registry=r)
        self.requests = Gauge("maeul_requests", "Residents' requests by status", ["status"], registry=r)
        self.requests_overdue = Gauge(
            "maeul_requests_overdue", "Open residents' requests past their legal deadline", registry=r
        )
        self.db_pool_in_use = Gauge(
            "maeul_db_pool_in_use", "Database connections checked out of this process's pool", registry=r
        )
        self.database_ok = Gauge(
            "maeul_metrics_database_ok", "1 if the last scrape could read the database, else 0", registry=r
        )
        r.register(LiveCollector(live))

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_seconds.labels(method, route, str(status)).observe(seconds)

    def count_socket_event(self, event: str, ack: Any) -> None:
        """Count one handled event from its ack: ``{"error": {"code": ...}}`` or anything else (ok)."""
        result = "ok"
        if isinstance(ack, dict) and isinstance(ack.get("error"), dict):
            result = str(ack["error"].get("code") or "error")[:64]
        self.socket_events.labels(event, result).inc()

    async def refresh_database(self, session: AsyncSession, engine: AsyncEngine, now: dt.datetime) -> None:
        """Set the gauges read from the database (called by the scrape, before rendering)."""
        entries = [e for e in await fleet(session, now) if e.kiosk.is_active]
        online = sum(1 for e in entries if e.online)
        self.kiosks.labels("online").set(online)
        self.kiosks.labels("offline").set(len(entries) - online)
        rows = await session.execute(select(Petition.status, func.count()).group_by(Petition.status))
        counts: dict[str, int] = {status: count for status, count in rows.all()}
        for status in sorted(set(counts) | set(OPEN_STATUSES)):
            self.requests.labels(status).set(counts.get(status, 0))
        overdue = await session.scalar(
            select(func.count()).where(Petition.status.in_(OPEN_STATUSES), Petition.due_at < now)
        )
        self.requests_overdue.set(overdue or 0)
        self.db_pool_in_use.set(pool_in_use(engine))


def pool_in_use(engine: AsyncEngine) -> int:
    """Connections checked out now, the caller's own included (a pool without the count: 0)."""
    checkedout = getattr(engine.sync_engine.pool, "checkedout", None)
    return int(checkedout()) if callable(checkedout) else 0


def route_label(request: web.Request) -> str:
    """The matched route's template (``/admin/kiosks/{kiosk_id}/revoke``), never the raw path."""
    if request.match_info.http_exception is not None:
        return UNMATCHED
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else UNMATCHED


def may_scrape(peer: str | None, headers: Iterable[tuple[str, str]], token: str | None) -> bool:
    """Whether a request may read /metrics.

    With a token configured, a matching ``Authorization: Bearer`` header admits it from anywhere.
    Otherwise (or without the header) only a loopback TCP peer may: a Prometheus on the same host.
    A request carrying X-Forwarded-For/Forwarded came through a proxy on this host, so its
    loopback peer says nothing about who sent it: refused, whatever MAEUL_TRUST_PROXY says."""
    forwarded = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "authorization" and token is not None:
            scheme, _, given = value.partition(" ")
            if scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode()):
                return True
        if lowered in ("x-forwarded-for", "forwarded", "x-real-ip"):
            forwarded = True
    if forwarded or peer is None:
        return False
    try:
        return ipaddress.ip_address(peer.split("%", 1)[0]).is_loopback
    except ValueError:  # a Unix socket peer has no address
        return False


def tcp_peer(request: web.Request) -> str | None:
    """The TCP peer's address itself (never X-Forwarded-For, whatever the settings)."""
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple | list) and peername:
        return str(peername[0])
    return None


def setup_metrics(app: web.Application) -> None:
    """Give the app its own registry (before the middleware and the signaling hook use it)."""
    app[METRICS] = Metrics(lambda: app_live_state(app))
