"""Fixtures for the scale-out tests: a fresh redis-server per test (unix socket, no persistence),
a factory for an nginx in front of the test's web processes, and ``web_role`` (web-role apps and SFU
workers in the test's own process). PostgreSQL: ``pg_base_url`` and
``db_url`` from tests/conftest.py, or ``tests.pg.running_postgres`` for a server a test may stop."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.cluster.registry import Registry, connect, worker_key
from server.config import Settings
from tests.cluster.parts import (
    Cascade,
    Nginx,
    Proc,
    RedisServer,
    RunningWorker,
    sfu_worker_env,
    start_in_process_worker,
)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
async def registry(redis_server: RedisServer) -> AsyncIterator[Registry]:
    """The placement registry on the test's redis-server."""
    redis = connect(redis_server.url)
    yield Registry(redis)
    await redis.aclose()


WebRole = tuple[list[TestClient], dict[str, RunningWorker]]


@pytest.fixture
async def web_role(
    settings: Settings, redis_server: RedisServer, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> AsyncIterator[Callable[[int, Sequence[str]], Awaitable[WebRole]]]:
    """``await web_role(webs, worker_ids)``: that many ``run.py web`` apps (the web role, in the
    test's process, each its own test client) on the test's database and redis-server, and SFU
    workers of those ids as tasks of the test; all stopped after it."""
    workers: dict[str, RunningWorker] = {}

    async def start(webs: int, worker_ids: Sequence[str]) -> WebRole:
        for w in worker_ids:
            workers[w] = await start_in_process_worker(redis_server.url, w, cpu_meter=lambda: None)
        web = dataclasses.replace(settings, redis_url=redis_server.url)
        return [await aiohttp_client(create_app(web, role="web")) for _ in range(webs)], workers

    yield start
    for running in workers.values():
        await running.stop()


NginxFactory = Callable[[Sequence[str | Path | int]], Nginx]


@pytest.fixture
def nginx_factory() -> Iterator[NginxFactory]:
    """``nginx_factory([sock_a, port_b])`` starts an nginx in front of those backends; every
    nginx started this way is stopped after the test."""
    started: list[Nginx] = []

    def start(backends: Sequence[str | Path | int]) -> Nginx:
        proxy = Nginx(backends)
        started.append(proxy)
        proxy.start()
        return proxy

    yield start
    for proxy in started:
        proxy.remove()


@pytest.fixture
async def cascade(
    redis_server: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Cascade]:
    """Two ``run.py sfu`` workers ("1" and "2") registered on the test's Redis (a test may ask for
    more: ``@pytest.mark.parametrize("cascade", [3], indirect=True)``)."""
    count = int(getattr(request, "param", 2))
    workers = {
        wid: Proc(
            f"sfu{wid}",
            ["sfu", "--worker-id", wid],
            sfu_worker_env(redis_server.url, tmp_path),
            tmp_path / f"sfu{wid}.log",
        )
        for wid in (str(n) for n in range(1, count + 1))
    }
    setup = Cascade(redis_server, workers, tmp_path)
    probe = connect(redis_server.url)
    setup.redises.append(probe)
    try:
        for proc in workers.values():
            proc.start()
        deadline = time.monotonic() + 30
        for wid, proc in workers.items():
            while not await probe.exists(worker_key(wid)):
                assert proc.process is not None and proc.process.poll() is None, proc.log()
                assert time.monotonic() < deadline, proc.log()
                await asyncio.sleep(0.1)
        yield setup
    finally:
        for client in setup.clients:
            await client.close()
        for plane in setup.planes:
            await plane.close()
        for proc in workers.values():
            proc.stop()
        for redis in setup.redises:
            await redis.aclose()
