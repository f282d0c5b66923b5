"""An SFU worker's own /metrics: a real ``run.py sfu --worker-id 1`` process with
``MAEUL_SFU_METRICS_PORT`` set, a real redis-server, and the web side's ``RemoteSfu`` with two
aiortc peers in this process (as tests/bench/scale_bench.py drives it). The worker's database URL
points at nothing: its /metrics needs none."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from server.cluster.plane import ParticipantCounters
from server.cluster.registry import connect, worker_key
from server.cluster.remote import RemoteSfu
from server.cluster.worker import EXIT_METRICS_ADDRESS
from server.cluster.worker_metrics import COUNTER_FIELDS, CounterTotals, MetricsAddress, metrics_address
from server.config import PROJECT_ROOT
from server.errors import ConfigError
from tests.cluster.parts import Proc, RedisServer, sfu_worker_env
from tests.ops.test_metrics_endpoint import sample
from tests.pg import free_port
from tests.sfu.sfu_testkit import LUMA, Client, sees_video, wait_until

WORKER = "1"


def _env(redis_url: str, base_port: int, tmp: Path) -> dict[str, str]:
    return sfu_worker_env(redis_url, tmp, MAEUL_SFU_METRICS_PORT=str(base_port))


Scrape = Callable[..., Awaitable[tuple[int, str]]]


@pytest.fixture
async def scrape() -> AsyncIterator[Scrape]:
    async with aiohttp.ClientSession() as session:

        async def get(port: int, **headers: str) -> tuple[int, str]:
            async with session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response:
                return response.status, await response.text()

        yield get


def _value(text: str, name: str) -> float:
    found = sample(text, name, worker=WORKER)
    assert found is not None, f"{name} missing:\n{text}"
    return found


@pytest.mark.network
async def test_a_worker_serves_its_own_metrics_while_media_flows(
    redis_server: RedisServer, scrape: Scrape, tmp_path: Path
) -> None:
    port = free_port()
    worker = Proc(
        "sfu1",
        ["sfu", "--worker-id", WORKER],
        _env(redis_server.url, port - 1, tmp_path),
        tmp_path / "sfu1.log",
    )
    probe, plane_redis = connect(redis_server.url), connect(redis_server.url)
    plane: RemoteSfu | None = None
    clients: list[Client] = []
    try:
        worker.start()
        deadline = time.monotonic() + 30
        while not await probe.exists(worker_key(WORKER)):
            assert worker.process is not None and worker.process.poll() is None, worker.log()
            assert time.monotonic() < deadline, worker.log()
            await asyncio.sleep(0.1)

        deadline = time.monotonic() + 5
        while True:  # the first heartbeat (1 s after registering) brings the first CPU measure
            status, text = await scrape(port)
            assert status == 200, text
            if sample(text, "maeul_worker_cpu_cores", worker=WORKER) is not None:
                break
            assert time.monotonic() < deadline, text
            await asyncio.sleep(0.2)
        # The figure placement reads: the worker's record in Redis carries the same measure (the
        # record read before or after the scrape: a heartbeat may fall in between).
        records = [json.loads(await probe.get(worker_key(WORKER)))]
        _, text = await scrape(port)
        records.append(json.loads(await probe.get(worker_key(WORKER))))
        cpu = _value(text, "maeul_worker_cpu_cores")
        assert any(cpu == pytest.approx(r["cpu"], abs=1e-4) for r in records), (cpu, records)
        record = records[-1]
        assert sample(text, "maeul_worker_info", worker=WORKER, boot=record["boot"]) == 1
        assert _value(text, "maeul_worker_rooms") == 0
        assert _value(text, "maeul_worker_participants") == 0
        assert _value(text, "maeul_worker_forwarded_packets_total") == 0
        assert _value(text, "maeul_worker_redis_up") == 1
        assert _value(text, "maeul_worker_draining") == 0
        assert 0 <= _value(text, "maeul_worker_registration_age_seconds") < 3

        # Two peers in one room on the worker, through the web side's control plane.
        plane = RemoteSfu(plane_redis)
        await plane.start()
        for name in ("a", "b"):
            client = Client(name, luma=LUMA[name], amplitude=8000, video_slots=1, audio_slots=1)
            clients.append(client)
            await client.connect(await plane.admit("r", name))  # type: ignore[arg-type]
        a, b = clients
        await wait_until(lambda: sees_video(a, "b") and sees_video(b, "a"), 30, "media both ways")

        _, first = await scrape(port)
        assert _value(first, "maeul_worker_rooms") == 1
        assert _value(first, "maeul_worker_participants") == 2
        assert _value(first, "maeul_worker_forwarded_packets_total") > 0
        assert 0 <= _value(first, "maeul_worker_cpu_cores") < 4
        await asyncio.sleep(1.0)
        _, second = await scrape(port)
        for name in ("maeul_worker_forwarded_packets_total", "maeul_worker_forwarded_bytes_total"):
            assert _value(second, name) > _value(first, name), name  # media flows: the counters grow

        # b leaves: the participants fall, the worker's totals do not (Prometheus counters).
        before = _value(second, "maeul_worker_forwarded_packets_total")
        await plane.participant("r", "b").leave()
        await clients.pop().close()
        deadline = time.monotonic() + 10
        while True:
            _, text = await scrape(port)
            if _value(text, "maeul_worker_participants") == 1:
                break
            assert time.monotonic() < deadline, text
            await asyncio.sleep(0.2)
        assert _value(text, "maeul_worker_forwarded_packets_total") >= before

        # Through a proxy (a forwarded-for header), as the web processes' /metrics: refused.
        status, text = await scrape(port, **{"X-Forwarded-For": "203.0.113.9"})
        assert status == 401 and "MAEUL_METRICS_TOKEN" in text

        # Redis goes away: the worker still answers, and says its registration is getting old.
        redis_server.stop()
        deadline = time.monotonic() + 10
        while True:
            status, text = await scrape(port)
            assert status == 200
            if _value(text, "maeul_worker_redis_up") == 0:
                break
            assert time.monotonic() < deadline, text
            await asyncio.sleep(0.2)
        while _value(text, "maeul_worker_registration_age_seconds") < 2.5:  # no refresh gets through
            assert time.monotonic() < deadline, text
            await asyncio.sleep(0.2)
            status, text = await scrape(port)
            assert status == 200
        assert _value(text, "maeul_worker_redis_up") == 0
        assert _value(text, "maeul_worker_rooms") == 1  # media carries on without Redis
    finally:
        for client in clients:
            await client.close()
        if plane is not None:
            await plane.close()
        worker.stop()
        await probe.aclose()
        await plane_redis.aclose()
    assert worker.process is not None and worker.process.returncode == 0, worker.log()


@pytest.mark.network
async def test_a_worker_whose_metrics_port_is_taken_is_refused(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "run.py", "sfu", "--worker-id", WORKER],
            cwd=PROJECT_ROOT,
            env=_env(redis_server.url, port - 1, tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == EXIT_METRICS_ADDRESS, done.stderr
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in done.stderr
    assert "ddress already in use" in done.stderr
    redis = connect(redis_server.url)
    try:
        assert not await redis.exists(worker_key(WORKER))  # refused before it registered
    finally:
        await redis.aclose()


def test_each_worker_of_a_machine_gets_its_own_port() -> None:
    assert metrics_address("127.0.0.1", 0, "1") is None  # no listener
    assert metrics_address("127.0.0.1", 9300, "1") == MetricsAddress("127.0.0.1", 9301)
    assert metrics_address("10.0.0.5", 9300, "12") == MetricsAddress("10.0.0.5", 9312)
    with pytest.raises(ConfigError, match="worker ids must be numbers; 'east-1'"):
        metrics_address("127.0.0.1", 9300, "east-1")
    with pytest.raises(ConfigError, match="past the last port"):
        metrics_address("127.0.0.1", 65000, "999")


def _counters(packets: int, size: int) -> ParticipantCounters:
    return ParticipantCounters(packets, size, 0, 0, 0)


def test_the_totals_only_grow_as_participants_come_and_go() -> None:
    totals = CounterTotals()
    assert totals.update({}) == dict.fromkeys(COUNTER_FIELDS, 0)
    seen = totals.update({("r", "a", 1): _counters(10, 1000), ("r", "b", 1): _counters(5, 500)})
    assert (seen["packets_out"], seen["bytes_out"]) == (15, 1500)
    # b leaves; a is admitted again (its counters start from zero under a new admission).
    seen = totals.update({("r", "a", 2): _counters(3, 300)})
    assert (seen["packets_out"], seen["bytes_out"]) == (18, 1800)
    seen = totals.update({("r", "a", 2): _counters(7, 700)})
    assert (seen["packets_out"], seen["bytes_out"]) == (22, 2200)
