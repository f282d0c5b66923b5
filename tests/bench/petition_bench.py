"""Benchmark: latency of filing a petition with 100 concurrent kiosks against a live server.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m tests.bench.petition_bench'

For SQLite and for PostgreSQL (a throw-away server from tests/pg.py), this starts the real server
(``python run.py serve``) on loopback, enrolls 100 kiosks, and lets each kiosk file
``--per-kiosk`` petitions back to back (closed loop: 100 requests in flight at all times), or with
``--rate R`` at random intervals (open loop, R filings per second from all kiosks together). Each
filing is the JSON form (typed text; no recording), which includes the Argon2id PIN hash, the
receipt-number counter and an fsynced commit. ``--media`` adds a 2-second Opus/WebM message.

Prints ``RESULT petition_file_p50_ms_<backend>=…`` and ``…_p99_ms_…`` lines. Not a test: numbers
depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import text

from server.db import create_engine
from tests.petitions.live import LiveServer, prepare
from tests.pg import postgres_server

KIOSKS = 100
BODY = {
    "petition_type": "grievance",
    "title": "마을 앞 가로등이 고장났어요",
    "body": "밤에 너무 어두워서 다니기 무서워요.",
    "phone": "010-1234-5678",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _one_kiosk(
    http: aiohttp.ClientSession,
    server: LiveServer,
    token: str,
    count: int,
    clip: bytes | None,
    latencies: list[float],
    failures: list[int],
    mean_gap_s: float | None = None,
    rng: random.Random | None = None,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(count):
        if mean_gap_s is not None and rng is not None:
            await asyncio.sleep(rng.expovariate(1 / mean_gap_s))
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


async def _run(
    server: LiveServer, per_kiosk: int, clip: bytes | None, rate: float | None
) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    failures: list[int] = []
    tokens = server.seeded.extra_kiosk_tokens
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http:
        # Warm-up: one filing per kiosk (connections, caches), not measured.
        await asyncio.gather(*(_one_kiosk(http, server, t, 1, clip, [], []) for t in tokens))
        # Closed loop (rate None): every kiosk files again as soon as it is answered, so 100
        # requests are always in flight. Open loop: each kiosk waits a random (exponential) time
        # between filings, for ``rate`` filings per second from all kiosks together.
        gap = len(tokens) / rate if rate else None
        rng = random.Random(4)
        started = time.perf_counter()
        await asyncio.gather(
            *(_one_kiosk(http, server, t, per_kiosk, clip, latencies, failures, gap, rng) for t in tokens)
        )
        wall = time.perf_counter() - started
    return latencies, failures, wall


def bench(
    backend: str,
    tmp: Path,
    per_kiosk: int,
    clip: bytes | None,
    rate: float | None,
    database_url: str | None = None,
) -> None:
    server = prepare(tmp, database_url=database_url, extra_kiosks=KIOSKS)
    server.start()
    try:
        latencies, failures, wall = asyncio.run(_run(server, per_kiosk, clip, rate))
    finally:
        server.stop()
    suffix = f"{backend}{'_media' if clip is not None else ''}{f'_open{rate:g}ps' if rate else ''}"
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    print(
        f"# {backend}: {len(latencies)} filings by {KIOSKS} concurrent kiosks in {wall:.1f} s "
        f"({len(latencies) / wall:.0f}/s), mean {statistics.fmean(latencies):.1f} ms, "
        f"max {max(latencies):.1f} ms, "
        f"failures {len(failures)} {sorted(set(failures))}",
        flush=True,
    )
    print(f"RESULT petition_file_p50_ms_{suffix}={p50:.1f}", flush=True)
    print(f"RESULT petition_file_p99_ms_{suffix}={p99:.1f}", flush=True)


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
    parser.add_argument("--media", action="store_true", help="attach a 2-second Opus/WebM message")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: filings per second from all kiosks together (default: closed loop)",
    )
    args = parser.parse_args()
    clip = None
    with tempfile.TemporaryDirectory(prefix="petition-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        if args.media:
            from tests.petitions.conftest import write_voice_clip

            clip = write_voice_clip(tmp / "clip.webm", 2.0).read_bytes()
        if args.backend in ("sqlite", "both"):
            bench("sqlite", tmp / "sqlite", args.per_kiosk, clip, args.rate)
        if args.backend in ("postgresql", "both"):
            with postgres_server() as base_url:
                asyncio.run(_create_database(base_url, "bench"))
                bench(
                    "postgresql",
                    tmp / "pg",
                    args.per_kiosk,
                    clip,
                    args.rate,
                    database_url=base_url + "/bench",
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
