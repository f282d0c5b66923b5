"""An SFU worker's own Prometheus endpoint: ``GET /metrics`` on a small listener of its own.

The web processes export the rooms whose signaling they hold, with the media figures their workers
report (server/ops/live.py). This is the worker's own view, for what only the worker knows and for
when the web side cannot say it (its Redis is away, or no web process holds the room): the rooms
and participants it hosts, the media it has forwarded, its CPU use as placement reads it, and how
its registration in Redis fares. It needs no database.

Every name starts ``maeul_worker_`` and carries a ``worker`` label: the web processes' series
(``maeul_rooms``, ``maeul_forwarded_packets_total``, ...) count the same rooms and packets, so a
Prometheus sum over all targets must never add the two families together.

Access is the web processes' (:func:`server.ops.metrics.may_scrape`): a loopback peer that did not
come through a proxy, or ``Authorization: Bearer <MAEUL_METRICS_TOKEN>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.cluster.plane import ParticipantCounters
from server.errors import ConfigError
from server.ops.metrics import PARTICIPANT_COUNTERS, may_scrape, tcp_peer

if TYPE_CHECKING:
    from server.cluster.worker import SfuWorker

log = logging.getLogger(__name__)

#: The per-participant counters, summed over the worker (ParticipantCounters attribute names).
COUNTER_FIELDS = tuple(attr for attr, _name, _doc in PARTICIPANT_COUNTERS)
#: One admission of a participant: (room, participant, the worker's admission number for it).
Admission = tuple[str, str, int]


@dataclass(frozen=True)
class MetricsAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def metrics_address(host: str, base_port: int, worker_id: str) -> MetricsAddress | None:
    """Where worker ``worker_id`` serves /metrics: ``base_port`` + its id (None: ``base_port`` 0).

    One setting for every worker of a machine (the systemd template shares one environment file),
    so each worker's port comes from its id, as each ``maeul-web@PORT`` takes its port from its
    instance name."""
    if not base_port:
        return None
    if not worker_id.isdigit():
        raise ConfigError(
            f"MAEUL_SFU_METRICS_PORT gives worker N the port {base_port} + N, so worker ids must be "
            f"numbers; {worker_id!r} is not (or set MAEUL_SFU_METRICS_PORT=0 for no worker /metrics)"
        )
    port = base_port + int(worker_id)
    if port > 65535:
        raise ConfigError(
            f"MAEUL_SFU_METRICS_PORT {base_port} + worker id {worker_id} is {port}, past the last port "
            "(65535): choose a lower MAEUL_SFU_METRICS_PORT"
        )
    return MetricsAddress(host, port)


class CounterTotals:
    """Worker-wide totals of the per-participant counters, that only grow, as Prometheus counters
    must.

    A participant's counters vanish when it leaves and start again from zero when it is admitted
    again, so a plain sum over those present would fall. Each reading is keyed per admission; the
    totals are the last reading of every admission no longer present plus the current ones. Read
    at each heartbeat (every second) and each scrape: what a participant forwarded between the
    last reading and its leaving is not counted."""

    def __init__(self) -> None:
        self._gone = dict.fromkeys(COUNTER_FIELDS, 0)
        self._last: dict[Admission, ParticipantCounters] = {}

    def update(self, current: Mapping[Admission, ParticipantCounters]) -> dict[str, int]:
        for key, last in self._last.items():
            if key not in current:
                for attr in COUNTER_FIELDS:
                    self._gone[attr] += getattr(last, attr)
        self._last = dict(current)
        return {
            attr: self._gone[attr] + sum(getattr(c, attr) for c in current.values())
            for attr in COUNTER_FIELDS
        }


class WorkerCollector(Collector):
    """The worker's numbers, read from it at each scrape."""

    def __init__(self, worker: SfuWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        labels = [w.id]
        info = GaugeMetricFamily(
            "maeul_worker_info",
            "This SFU worker: its id and boot id (a new boot id: restarted)",
            labels=["worker", "boot"],
        )
        info.add_metric([w.id, w.boot], 1)
        yield info
        rooms = GaugeMetricFamily("maeul_worker_rooms", "Rooms hosted by this SFU worker", labels=["worker"])
        rooms.add_metric(labels, len(w.epochs))
        yield rooms
        participants = GaugeMetricFamily(
            "maeul_worker_participants", "Participants admitted on this SFU worker", labels=["worker"]
        )
        participants.add_metric(labels, len(w.handles))
        yield participants
        totals = w.counter_totals()
        for attr, name, doc in PARTICIPANT_COUNTERS:
            family = CounterMetricFamily(
                name.replace("maeul_", "maeul_worker_", 1),
                f"{doc}, summed over this SFU worker",
                labels=["worker"],
            )
            family.add_metric(labels, totals[attr])
            yield family
        cpu = GaugeMetricFamily(
            "maeul_worker_cpu_cores",
            "CPU use of this worker's process over its last measuring window, in cores: the figure "
            "placement ranks workers by (absent until the first heartbeat measured it)",
            labels=["worker"],
        )
        if w.cpu is not None:
            cpu.add_metric(labels, w.cpu)
        yield cpu
        age = GaugeMetricFamily(
            "maeul_worker_registration_age_seconds",
            "Seconds since this worker last refreshed its registration in Redis (every second; "
            "past 3 s its record has expired and no new room is placed on it)",
            labels=["worker"],
        )
        registered = w.registered_at
        if registered is not None:
            age.add_metric(labels, max(0.0, time.monotonic() - registered))
        yield age
        redis_up = GaugeMetricFamily(
            "maeul_worker_redis_up",
            "1 if this worker's last call to Redis succeeded, else 0",
            labels=["worker"],
        )
        redis_up.add_metric(labels, 0 if w.redis_health.failures else 1)
        yield redis_up
        draining = GaugeMetricFamily(
            "maeul_worker_draining",
            "1 while this worker drains before it stops (SIGTERM: no new rooms; its meetings go on)",
            labels=["worker"],
        )
        draining.add_metric(labels, 0 if w.draining_since is None else 1)
        yield draining


def metrics_app(registry: CollectorRegistry, token: Callable[[], str | None]) -> web.Application:
    """The listener's app: ``GET /metrics`` and nothing else."""

    async def metrics(request: web.Request) -> web.Response:
        if not may_scrape(tcp_peer(request), request.headers.items(), token()):
            log.warning("metrics scrape refused", extra={"peer": tcp_peer(request)})
            return web.Response(
                status=401,
                text="metrics need Authorization: Bearer <MAEUL_METRICS_TOKEN>, or a scrape from loopback\n",
                headers={"WWW-Authenticate": 'Bearer realm="maeul-metrics"', "Cache-Control": "no-store"},
            )
        return web.Response(
            body=generate_latest(registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


class WorkerMetricsServer:
    """The worker's listener: started before it registers, stopped after it stopped."""

    def __init__(self, worker: SfuWorker, address: MetricsAddress, token: str | None = None) -> None:
        self.address = address
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(WorkerCollector(worker))
        self._runner = web.AppRunner(metrics_app(self.registry, lambda: token), access_log=None)

    async def start(self) -> None:
        """Listen; OSError (the port is taken, the address is not this machine's) if it cannot."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address.host, self.address.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        log.info("SFU worker metrics listening", extra={"address": str(self.address)})

    async def stop(self) -> None:
        await self._runner.cleanup()
