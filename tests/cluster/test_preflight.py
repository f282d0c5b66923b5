"""server/preflight.py against the real parts: a migrated PostgreSQL and a redis-server that are
fine, then each way they can be wrong at start (down, wrong port, wrong password, no database,
schema not migrated or migrated by a newer Maeul, a Redis that does not answer or is a replica).
Each gives one English problem naming the part and what to do, and a non-zero exit status."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from server import migrate, preflight
from server.config import Settings
from server.db import close_engine, create_engine
from server.errors import ConfigError
from server.preflight import Kind, Part, Problem
from tests.cluster.parts import PROJECT_ROOT, RedisServer, running_redis
from tests.conftest import make_settings
from tests.pg import PostgresServer, free_port, running_postgres

pytestmark = pytest.mark.network

# Only the PostgreSQL parameter of tests/conftest.py's db_url: the scale-out roles need it.
on_postgresql = pytest.mark.parametrize("db_backend", ["postgresql"])


def _settings(database_url: str, tmp_path: Path, redis_url: str | None) -> Settings:
    return make_settings(database_url, tmp_path, redis_url=redis_url)


def _assert_operator_message(problem: Problem, *fragments: str) -> None:
    # Operators read logs in English: no Hangul, and never a password.
    assert problem.message.isascii(), problem.message
    assert "secret-pw" not in problem.message
    for fragment in fragments:
        assert fragment in problem.message, problem.message


@on_postgresql
async def test_ready_parts_give_no_problem(db_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    settings = _settings(db_url, tmp_path, redis_server.url)
    assert await preflight.check(settings) == []
    assert preflight.exit_status([]) == 0


@on_postgresql
async def test_redis_stopped_then_back(
    db_url: str, redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(db_url, tmp_path, redis_server.url)
    redis_server.stop()

    with caplog.at_level(logging.ERROR, logger="server.preflight"):
        status = await preflight.run(settings)
    assert status == preflight.EX_UNAVAILABLE
    problems = await preflight.check(settings)
    assert [(p.part, p.kind) for p in problems] == [(Part.REDIS, Kind.UNREACHABLE)]
    _assert_operator_message(problems[0], str(redis_server.socket_path), "redis-server running")
    logged = [r.getMessage() for r in caplog.records if r.name == "server.preflight"]
    assert logged == [f"preflight: redis: {problems[0].message}"]

    # Back with no change to anything: the next start passes.
    redis_server.start()
    assert await preflight.check(settings) == []


async def test_redis_wrong_port(tmp_path: Path) -> None:
    port = free_port()
    settings = _settings("sqlite+aiosqlite:///unused.db", tmp_path, f"redis://127.0.0.1:{port}/0")
    problems = await preflight.check(settings, database=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.REDIS, Kind.UNREACHABLE)]
    _assert_operator_message(problems[0], f"127.0.0.1:{port}", "Connection refused")


async def test_redis_url_missing_or_malformed(tmp_path: Path) -> None:
    settings = _settings("sqlite+aiosqlite:///unused.db", tmp_path, None)
    problems = await preflight.check(settings, database=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.REDIS, Kind.NOT_CONFIGURED)]
    _assert_operator_message(problems[0], "MAEUL_REDIS_URL is not set")
    assert preflight.exit_status(problems) == preflight.EX_CONFIG

    bad = _settings("sqlite+aiosqlite:///unused.db", tmp_path, "redis://127.0.0.1:notaport/0")
    problems = await preflight.check(bad, database=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.REDIS, Kind.BAD_URL)]


async def test_redis_that_never_answers(tmp_path: Path) -> None:
    # A listener that accepts and says nothing: a wrong port on a firewall, a hung server.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = _settings("sqlite+aiosqlite:///unused.db", tmp_path, f"redis://127.0.0.1:{port}/0")
        problems = await preflight.check(settings, database=False, timeout=0.5)
    finally:
        server.close()
        await server.wait_closed()
    assert [(p.part, p.kind) for p in problems] == [(Part.REDIS, Kind.NOT_ANSWERING)]
    assert preflight.exit_status(problems) == preflight.EX_UNAVAILABLE


async def test_redis_wrong_password(tmp_path: Path) -> None:
    with running_redis(extra_args=["--requirepass", "right-pw"]) as server:
        for url in (
            server.url,
            f"unix://:secret-pw@{server.socket_path}",
            f"{server.url}?password=secret-pw",
        ):
            settings = _settings("sqlite+aiosqlite:///unused.db", tmp_path, url)
            problems = await preflight.check(settings, database=False)
            assert [(p.part, p.kind) for p in problems] == [(Part.REDIS, Kind.AUTH_FAILED)], url
            _assert_operator_message(problems[0], "MAEUL_REDIS_URL")
        good = _settings("sqlite+aiosqlite:///unused.db", tmp_path, f"{server.url}?password=right-pw")
        assert await preflight.check(good, database=False) == []


async def test_redis_database_number_out_of_range(tmp_path: Path) -> None:
    with running_redis(tcp=True) as server:
        for url in (f"{server.url}?db=99", f"redis://127.0.0.1:{server.port}/99"):
            settings = _settings("sqlite+aiosqlite:///unused.db", tmp_path, url)
            problems = await preflight.check(settings, database=False)
            assert [(p.part, p.kind) for p in problems] == [(Part.REDIS, Kind.REFUSED)], url
            _assert_operator_message(problems[0], "DB index is out of range")


async def test_redis_replica_is_refused(tmp_path: Path) -> None:
    with (
        running_redis(tcp=True) as primary,
        running_redis(extra_args=["--replicaof", "127.0.0.1", str(primary.port)]) as replica,
    ):
        settings = _settings("sqlite+aiosqlite:///unused.db", tmp_path, replica.url)
        problems = await preflight.check(settings, database=False)
        assert [(p.part, p.kind) for p in problems] == [(Part.REDIS, Kind.REFUSED)]
        _assert_operator_message(problems[0], "read-only replica")


# PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def lone_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, which it may stop or reconfigure."""
    with running_postgres() as server:
        yield server


async def test_postgresql_down(lone_postgres: PostgresServer, tmp_path: Path) -> None:
    settings = _settings(lone_postgres.url + "/postgres", tmp_path, None)
    await asyncio.to_thread(lone_postgres.stop)
    problems = await preflight.check(settings, redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.UNREACHABLE)]
    _assert_operator_message(problems[0], f"127.0.0.1:{lone_postgres.port}", "Connection refused")
    assert preflight.exit_status(problems) == preflight.EX_UNAVAILABLE


async def test_postgresql_wrong_port_and_host(tmp_path: Path) -> None:
    port = free_port()
    settings = _settings(f"postgresql+asyncpg://maeul:secret-pw@127.0.0.1:{port}/maeul", tmp_path, None)
    problems = await preflight.check(settings, redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.UNREACHABLE)]
    _assert_operator_message(problems[0], f"127.0.0.1:{port}")

    # The test namespace has no resolver: the name cannot be looked up.
    settings = _settings("postgresql+asyncpg://maeul:secret-pw@db.invalid:5432/maeul", tmp_path, None)
    problems = await preflight.check(settings, redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.UNREACHABLE)]
    _assert_operator_message(problems[0], "db.invalid")


async def test_postgresql_wrong_password(lone_postgres: PostgresServer, tmp_path: Path) -> None:
    # Give the role a password, then make the server ask for it (the test server trusts by default).
    engine = create_engine(lone_postgres.url + "/postgres")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("ALTER ROLE postgres PASSWORD 'right-pw'"))
    finally:
        await close_engine(engine)
    hba = lone_postgres.data / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    await asyncio.to_thread(lone_postgres.stop)
    await asyncio.to_thread(lone_postgres.start)

    wrong = f"postgresql+asyncpg://postgres:secret-pw@127.0.0.1:{lone_postgres.port}/postgres"
    problems = await preflight.check(_settings(wrong, tmp_path, None), redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.AUTH_FAILED)]
    _assert_operator_message(problems[0], "password", "pg_hba.conf")
    assert preflight.exit_status(problems) == preflight.EX_CONFIG


async def test_postgresql_database_missing(pg_base_url: str, tmp_path: Path) -> None:
    settings = _settings(pg_base_url + "/no_such_maeul", tmp_path, None)
    problems = await preflight.check(settings, redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.NO_DATABASE)]
    _assert_operator_message(problems[0], "'no_such_maeul' does not exist", "run.py migrate")


@pytest.fixture
async def empty_pg_url(pg_base_url: str) -> AsyncIterator[str]:
    """An empty database on the run's PostgreSQL (tests/conftest.py's empty_db_url, PostgreSQL only)."""
    name = f"preflight_{free_port()}"
    engine = create_engine(pg_base_url + "/postgres")
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield f"{pg_base_url}/{name}"
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await close_engine(engine)


async def test_postgresql_schema_missing_behind_and_ahead(empty_pg_url: str, tmp_path: Path) -> None:
    settings = _settings(empty_pg_url, tmp_path, None)
    head = ScriptDirectory.from_config(migrate.alembic_config(empty_pg_url)).get_current_head()

    problems = await preflight.check(settings, redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.SCHEMA)]
    _assert_operator_message(problems[0], "no Maeul schema", "run.py migrate")

    await asyncio.to_thread(migrate.upgrade, empty_pg_url, "0001")
    problems = await preflight.check(settings, redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.SCHEMA)]
    _assert_operator_message(problems[0], "revision 0001", f"needs {head}", "run.py migrate")
    assert preflight.exit_status(problems) == preflight.EX_CONFIG

    await asyncio.to_thread(migrate.upgrade, empty_pg_url, "head")
    assert await preflight.check(settings, redis=False) == []

    # A newer Maeul migrated it past what this code knows.
    engine = create_engine(empty_pg_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await close_engine(engine)
    problems = await preflight.check(settings, redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.SCHEMA)]
    _assert_operator_message(problems[0], "9999", "newer Maeul")


async def test_sqlite_is_not_a_shared_database(tmp_path: Path) -> None:
    settings = _settings(f"sqlite+aiosqlite:///{tmp_path / 'maeul.db'}", tmp_path, None)
    problems = await preflight.check(settings, redis=False)
    assert [(p.part, p.kind) for p in problems] == [(Part.POSTGRESQL, Kind.NOT_CONFIGURED)]
    _assert_operator_message(problems[0], "postgresql+asyncpg://")


@on_postgresql
async def test_both_parts_wrong_are_both_reported(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    down = db_url.replace(db_url.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{free_port()}")
    settings = _settings(down, tmp_path, f"redis://127.0.0.1:{port}/0")
    problems = await preflight.check(settings)
    assert sorted((p.part, p.kind) for p in problems) == [
        (Part.POSTGRESQL, Kind.UNREACHABLE),
        (Part.REDIS, Kind.UNREACHABLE),
    ]


def test_redis_url_setting() -> None:
    assert Settings.from_env({}).redis_url is None
    url = "redis://maeul:secret-pw@10.0.0.5:6379/0"
    settings = Settings.from_env({"MAEUL_REDIS_URL": url})
    assert settings.redis_url == url
    assert "secret-pw" not in repr(settings)
    with pytest.raises(ConfigError, match="MAEUL_REDIS_URL must be"):
        Settings.from_env({"MAEUL_REDIS_URL": "10.0.0.5:6379"})


# The roles as systemd starts them -------------------------------------------------------------


def _run_py(*args: str, env: dict[str, str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PGSSLMODE": "disable",
        "MAEUL_ENV": "test",
        "MAEUL_DATA_DIR": str(data_dir),
        "MAEUL_LOG_JSON": "false",
        **env,
    }
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_sfu_role_exits_69_with_redis_down(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.stop()
    result = await asyncio.to_thread(
        _run_py, "sfu", "--worker-id", "1", env={"MAEUL_REDIS_URL": redis_server.url}, data_dir=tmp_path
    )
    assert result.returncode == preflight.EX_UNAVAILABLE, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert f"preflight: redis: cannot connect to Redis at {redis_server.url}" in output
    assert "SFU worker 1 starting" not in output


async def test_web_role_exits_78_on_an_unmigrated_database(
    empty_pg_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {"MAEUL_REDIS_URL": redis_server.url, "MAEUL_DATABASE_URL": empty_pg_url}
    result = await asyncio.to_thread(_run_py, "web", env=env, data_dir=tmp_path)
    assert result.returncode == preflight.EX_CONFIG, result.stdout + result.stderr
    assert "has no Maeul schema: run `run.py migrate`" in result.stdout + result.stderr
