"""A PostgreSQL server of the test's own, which the test may stop and start again: ``db_url`` here
replaces the suite's (so ``settings``, ``world``, ``client`` … use it) and ``outage_pg`` is the
server. Commits are durable, so an immediate stop loses nothing that was acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from server import migrate
from tests.conftest import _pg_execute
from tests.pg import PostgresServer, running_postgres


@pytest.fixture
def outage_pg() -> Iterator[PostgresServer]:
    with running_postgres(durable_commits=True) as server:
        yield server


@pytest.fixture
def db_url(outage_pg: PostgresServer) -> str:
    asyncio.run(_pg_execute(outage_pg.url, 'CREATE DATABASE "maeul"'))
    url = f"{outage_pg.url}/maeul"
    migrate.upgrade(url)
    return url
