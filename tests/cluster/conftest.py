"""Fixtures for the scale-out tests: a fresh redis-server per test (unix socket, no persistence)
and a factory for an nginx in front of the test's web processes. PostgreSQL: ``pg_base_url`` and
``db_url`` from tests/conftest.py, or ``tests.pg.running_postgres`` for a server a test may stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from server.cluster.registry import Registry, connect
from tests.cluster.parts import Nginx, RedisServer


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
