"""Benchmark: latency of filing a petition with 100 concurrent kiosks against a live server.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m tests.bench.petition_bench'

For SQLite and for PostgreSQL (a throw-away server from tests/pg.py, run durable: fsync and
synchronous commit on, as in production), in one run, this starts the
real server (``python run.py serve``) on loopback, enrolls 100 kiosks, and lets each kiosk file
``--per-kiosk`` petitions at random intervals: open loop, ``--rate`` (default 3) filings per second
from all kiosks together, the load of issue 16's target (p99 <= 50 ms). ``--closed-loop`` files
back to back instead (100 requests in flight at all times: a stress test, not the target). Each
filing is the JSON form (typed text; no recording), which includes the Argon2id PIN hash, the
receipt-number counter and an fsynced commit. ``--media`` adds a 2-second Opus/WebM message.

Prints ``RESULT filing_p50_ms_<backend>=…`` and ``RESULT filing_p99_ms_<backend>=…`` (backend
``sqlite`` or ``postgresql``), and ``RESULT filing_server_cpu_ms_<backend>=…``: the CPU time the
server process (all its threads) spent per measured filing, which depends far less on what else
the machine runs than the latencies do (PostgreSQL's own processes are not in it). Suffixes
(``_media``, ``_closed``, ``_open<R>ps`` or ``_kiosks<N>``) are appended when the scenario is not
the default one. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from sqlalchemy import text

from server.db import create_engine
from tests.petitions.live import LiveServer, prepare
from tests.pg import PostgresServer

KIOSKS = 100  # the county's village halls
DEFAULT_RATE = 3.0  # filings per second from all kiosks together (issue 16's scenario)
BODY = {
    "petition_type": "grievance",
    "title": "마을 앞 가로등이 고장났어요",
    "body": "밤에 너무 어두워서 다니기 무서워요.",
    "phone": "010-1234-5678",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _one_kiosk(
    http: aiohttp.ClientSession,
    server: LiveServer,
    token: str,
    starts: list[float | None],
    clip: bytes | None,
    latencies: list[float],
    failures: list[int],
) -> None:
    """File once per entry of ``starts``: at that perf_counter() time, or (None) right after the
    previous filing's answer. A kiosk files one request at a time, like the real one."""
    for start in starts:
        if start is not None:
            await asyncio.sleep(max(0.0, start - time.perf_counter()))
        # Like the kiosk page (kiosk-outbox.js): a fresh Idempotency-Key per request, which costs
        # the server one more lookup.
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
        data: aiohttp.FormData | None = None
        if clip is not None:
            data = aiohttp.FormData()
            data.add_field("petition", json.dumps(BODY), content_type="application/json")
            data.add_field("media", io.BytesIO(clip), filename="m.webm", content_type="audio/webm")
        started = time.perf_counter()
        async with http.post(
            server.base_url + "/api/v1/kiosk/petitions",
            json=None if clip is not None else BODY,
            data=data,
            headers=headers,
        ) as response:
            await response.read()
            elapsed = (time.perf_counter() - started) * 1000
        if response.status == 201:
            latencies.append(elapsed)
        else:
            failures.append(response.status)


def _schedules(kiosks: int, per_kiosk: int, rate: float | None, t0: float) -> list[list[float | None]]:
    """When each kiosk files. Closed loop (rate None): back to back, so ``kiosks`` requests are
    always in flight. Open loop: one Poisson arrival process of ``rate`` filings per second for the
    whole county, dealt to the kiosks in turn, so the rate holds from the first filing to the last
    (per-kiosk random gaps instead would thin out towards the end, as the kiosks finish)."""
    if rate is None:
        return [[None] * per_kiosk for _ in range(kiosks)]
    rng = random.Random(4)
    schedules: list[list[float | None]] = [[] for _ in range(kiosks)]
    at = t0
    for index in range(kiosks * per_kiosk):
        at += rng.expovariate(rate)
        schedules[index % kiosks].append(at)
    return schedules


async def _run(
    server: LiveServer, per_kiosk: int, clip: bytes | None, rate: float | None
) -> tuple[list[float], list[int], float, float]:
    latencies: list[float] = []
    failures: list[int] = []
    tokens = server.seeded.extra_kiosk_tokens
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http:
        # Warm-up: one filing per kiosk (connections, caches), not measured.
        await asyncio.gather(*(_one_kiosk(http, server, t, [None], clip, [], []) for t in tokens))
        assert server.process is not None
        cpu_before = cpu_seconds(server.process.pid)
        started = time.perf_counter()
        schedules = _schedules(len(tokens), per_kiosk, rate, started)
        await asyncio.gather(
            *(
                _one_kiosk(http, server, t, starts, clip, latencies, failures)
                for t, starts in zip(tokens, schedules, strict=True)
            )
        )
        wall = time.perf_counter() - started
        cpu = cpu_seconds(server.process.pid) - cpu_before
    return latencies, failures, wall, cpu


def bench(
    backend: str,
    tmp: Path,
    kiosks: int,
    per_kiosk: int,
    clip: bytes | None,
    rate: float | None,
    database_url: str | None = None,
) -> None:
    server = prepare(tmp, database_url=database_url, extra_kiosks=kiosks)
    server.start()
    try:
        latencies, failures, wall, cpu = asyncio.run(_run(server, per_kiosk, clip, rate))
    finally:
        server.stop()
    if rate is None:
        load = "_closed"
    else:
        load = "" if rate == DEFAULT_RATE else f"_open{rate:g}ps"
    fleet = "" if kiosks == KIOSKS else f"_kiosks{kiosks}"
    suffix = f"{backend}{'_media' if clip is not None else ''}{load}{fleet}"
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    print(
        f"# {backend}: {len(latencies)} filings by {kiosks} kiosks in {wall:.1f} s "
        f"({len(latencies) / wall:.0f}/s), mean {statistics.fmean(latencies):.1f} ms, "
        f"max {max(latencies):.1f} ms, "
        f"failures {len(failures)} {sorted(set(failures))}",
        flush=True,
    )
    print(f"RESULT filing_p50_ms_{suffix}={p50:.1f}", flush=True)
    print(f"RESULT filing_p99_ms_{suffix}={p99:.1f}", flush=True)
    print(f"RESULT filing_server_cpu_ms_{suffix}={cpu * 1000 / len(latencies):.2f}", flush=True)


class DurablePostgres(PostgresServer):
    """The throw-away server of tests/pg.py, but durable as in production: ``fsync``,
    ``full_page_writes`` and ``synchronous_commit`` at PostgreSQL's defaults (on), so a commit
    returns only after its WAL is flushed, the guarantee a 201 stands on. (The test servers turn
    them off for speed; a latency measured that way is not the production path.) The rest of the
    configuration is PostgreSQL's default too; its log records checkpoints and autovacuum runs,
    which the bench prints after the run."""

    def start(self) -> None:
        self.start_with(
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c log_checkpoints=on"
            " -c log_autovacuum_min_duration=0"
        )

    def background_work(self) -> list[str]:
        """Checkpoint and autovacuum lines of the server's log so far."""
        log = self.root / "log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return [line for line in lines if "checkpoint" in line or "automatic" in line]


async def _create_database(base_url: str, name: str) -> None:
    engine = create_engine(base_url + "/postgres")
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kiosk", type=int, default=5, help="filings per kiosk (measured)")
    parser.add_argument(
        "--kiosks",
        type=int,
        default=KIOSKS,
        help=f"kiosks filing (default {KIOSKS}); '--kiosks 1 --closed-loop' measures one filing's "
        "service time with no concurrency",
    )
    parser.add_argument("--media", action="store_true", help="attach a 2-second Opus/WebM message")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"open loop: filings per second from all kiosks together (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--closed-loop",
        action="store_true",
        help="file back to back instead (100 requests always in flight; ignores --rate)",
    )
    args = parser.parse_args()
    if args.rate <= 0 or args.kiosks < 1 or args.per_kiosk < 1:
        parser.error("--rate, --kiosks and --per-kiosk must be positive")
    rate: float | None = None if args.closed_loop else args.rate
    clip = None
    with tempfile.TemporaryDirectory(prefix="petition-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        if args.media:
            from tests.petitions.conftest import write_voice_clip

            clip = write_voice_clip(tmp / "clip.webm", 2.0).read_bytes()
        if args.backend in ("sqlite", "both"):
            bench("sqlite", tmp / "sqlite", args.kiosks, args.per_kiosk, clip, rate)
        if args.backend in ("postgresql", "both"):
            pg = DurablePostgres()
            try:
                pg.init()
                pg.start()
                try:
                    asyncio.run(_create_database(pg.url, "bench"))
                    bench(
                        "postgresql",
                        tmp / "pg",
                        args.kiosks,
                        args.per_kiosk,
                        clip,
                        rate,
                        database_url=pg.url + "/bench",
                    )
                    for line in pg.background_work():
                        print(f"# postgresql log: {line}", flush=True)
                finally:
                    pg.stop("fast")
            finally:
                pg.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
