"""Shared fixtures.

Database tests take the ``db_url`` fixture, which is parametrized over both backends: every
database-touching test runs on SQLite and again on a real PostgreSQL server that this test run
starts itself (``tests/pg.py``). Each test gets its own database, cloned from one migrated
template per backend, so tests are isolated and can run in parallel (pytest-xdist).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from server import migrate
from server.app import create_app
from server.auth.secrets import Passwords
from server.config import Environment, SecretStr, Settings
from server.db import close_engine, create_engine, make_sessionmaker, transaction
from server.kiosks import service as kiosks
from tests.pg import postgres_server
from tests.world_seed import World, seed_world

BACKENDS = ("sqlite", "postgresql")
TEST_PASSWORD = "correct horse battery"
_counter = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def pg_base_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


async def _pg_execute(url: str, *statements: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    engine = create_engine(url + "/postgres")
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await close_engine(engine)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_base_url: str) -> str:
    asyncio.run(_pg_execute(pg_base_url, "CREATE DATABASE maeul_template"))
    migrate.upgrade(pg_base_url + "/maeul_template")
    return "maeul_template"


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if db_backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "maeul.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    base: str = request.getfixturevalue("pg_base_url")
    template_name: str = request.getfixturevalue("pg_template")
    name = f"t_{re.sub(r'[^a-z0-9]', '_', request.node.name.lower())[:40]}_{next(_counter)}"
    asyncio.run(_pg_execute(base, f'CREATE DATABASE "{name}" TEMPLATE {template_name}'))
    yield f"{base}/{name}"
    asyncio.run(_pg_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_db_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema), for migration tests."""
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    base: str = request.getfixturevalue("pg_base_url")
    name = f"empty_{next(_counter)}"
    asyncio.run(_pg_execute(base, f'CREATE DATABASE "{name}"'))
    yield f"{base}/{name}"
    asyncio.run(_pg_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": SecretStr("test-secret-" + "x" * 40),
        "env": Environment.TEST,
        "database_url": database_url,
        "data_dir": data_dir,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "log_json": False,
        "rtc_host_addresses": ("127.0.0.1",),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path / "data")


@pytest.fixture
async def sessionmaker(settings: Settings) -> AsyncIterator[Callable[[], AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield make_sessionmaker(engine)
    await close_engine(engine)


@pytest.fixture
async def world(settings: Settings, sessionmaker: Callable[[], AsyncSession]) -> World:
    passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        return await seed_world(session, passwords, TEST_PASSWORD)


async def kiosk_code(
    sessionmaker: Callable[[], AsyncSession], village_id: int, label: str = "남성리 마을회관"
) -> str:
    """Register a kiosk through the real service; returns its one-time enrollment code."""
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        issued = await kiosks.create_kiosk(
            session, village_id=village_id, label=label, code_lifetime=dt.timedelta(hours=1)
        )
    return issued.code


async def enrolled_kiosk(
    sessionmaker: Callable[[], AsyncSession], village_id: int, label: str = "마을회관"
) -> tuple[int, str]:
    """A kiosk registered and enrolled as its agent would be; returns (kiosk id, device token)."""
    code = await kiosk_code(sessionmaker, village_id, label)
    async with transaction(sessionmaker) as session:  # type: ignore[arg-type]
        kiosk, token = await kiosks.enroll(session, code)
    return kiosk.id, token


@pytest.fixture
async def client(settings: Settings, aiohttp_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    # ``settings`` (and the database behind it) is requested first so that it is torn down last:
    # the app, closed by aiohttp_client's teardown, still has its database while it stops.
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[str]:
    """The real app on a free loopback port (for browsers, subprocesses, the kiosk agent)."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


CSRF_META_RE = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


async def page_csrf(client: TestClient, path: str = "/login") -> str:
    """GET a page and return its CSRF token (the client keeps the cookie it belongs to)."""
    response = await client.get(path)
    match = CSRF_META_RE.search(await response.text())
    assert match and match.group(1), f"no CSRF token on {path}"
    return match.group(1)


async def login(client: TestClient, username: str, password: str = TEST_PASSWORD) -> str:
    """Log in through the real form; returns the CSRF token of the new session (rotated at login)."""
    token = await page_csrf(client)
    response = await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return await page_csrf(client, "/login")


def logged_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages of the ERROR (and worse) records logged so far."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
