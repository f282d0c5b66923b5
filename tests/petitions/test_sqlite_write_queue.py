"""SQLite write transactions of one server wait in an in-process queue, never in SQLite's busy
handler (``server.db.SqliteWrites``; issue 16 item 4).

Why it matters: SQLite lets one connection write at a time, and a connection that finds the lock
taken sleeps in the busy handler (1, 2, 5 ... 100 ms between polls), so with ten kiosks filing at
once a filing could miss many commits in a row and wait for seconds. The proof here is not a
clock: the engines below give SQLite's busy handler no time at all (``sqlite_busy_timeout=0``),
so any writer that met another one's lock would fail with "database is locked" (a 503); with the
queue every one succeeds, and its counter shows that they did overlap and were queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

import server.app
from server.app import create_app
from server.config import Settings
from server.db import SqliteWrites, close_engine, create_engine, make_sessionmaker, sqlite_writes
from server.keys import ENGINE
from tests.petitions.conftest import Kiosk, file_json

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/queue.db", sqlite_busy_timeout=0)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)"))
    yield engine
    await close_engine(engine)


def _writes(engine: AsyncEngine) -> SqliteWrites:
    writes = sqlite_writes(engine)
    assert writes is not None
    return writes


async def _write_twice(engine: AsyncEngine, value: int) -> None:
    """A transaction that reads, writes, yields to the loop mid-transaction, writes again."""
    async with make_sessionmaker(engine)() as session, session.begin():
        await session.execute(text("SELECT count(*) FROM t"))
        await session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        await asyncio.sleep(0.002)  # the others are scheduled meanwhile and try to write
        await session.execute(text("UPDATE t SET v = v + 1000 WHERE v = :v"), {"v": value})


async def test_concurrent_write_transactions_queue_instead_of_meeting_the_lock(engine: AsyncEngine) -> None:
    queued_before = _writes(engine).queued
    await asyncio.gather(*(_write_twice(engine, i) for i in range(12)))
    async with engine.connect() as connection:
        values = sorted((await connection.scalars(text("SELECT v FROM t"))).all())
    assert values == [1000 + i for i in range(12)]
    assert _writes(engine).queued - queued_before >= 6, "the transactions did not overlap"


async def test_a_failed_or_cancelled_writer_lets_the_next_one_go(engine: AsyncEngine) -> None:
    sessionmaker = make_sessionmaker(engine)
    with pytest.raises(OperationalError):  # a failed statement: the rollback ends its transaction
        async with sessionmaker() as session, session.begin():
            await session.execute(text("INSERT INTO t (v) VALUES (1)"))
            await session.execute(text("INSERT INTO no_such_table VALUES (1)"))

    started = asyncio.Event()

    async def stuck() -> None:
        async with sessionmaker() as session, session.begin():
            await session.execute(text("INSERT INTO t (v) VALUES (2)"))
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(stuck())
    await started.wait()
    waiting = asyncio.create_task(_write_twice(engine, 3))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "a second writer got in while the first one's transaction was open"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(waiting, 10)  # the queue lets go once the cancelled one is rolled back
    async with engine.connect() as connection:
        assert sorted((await connection.scalars(text("SELECT v FROM t"))).all()) == [1003]


async def test_reads_do_not_wait_for_an_open_write_transaction(engine: AsyncEngine) -> None:
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as writer, writer.begin():
        await writer.execute(text("INSERT INTO t (v) VALUES (1)"))
        # Another connection reads the last committed state meanwhile (WAL), without queueing.
        async with engine.connect() as reader:
            assert await asyncio.wait_for(reader.scalar(text("SELECT count(*) FROM t")), 5) == 0


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_concurrent_filings_never_wait_in_sqlites_busy_handler(
    aiohttp_client: ClientFactory,
    settings: Settings,
    kiosk: Kiosk,
    other_kiosk: Kiosk,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twenty filings from two kiosks at once, through the real server (authentication's own
    writes included), with no busy wait allowed: every one is filed, none gets a 503."""

    def no_busy_wait(url: str, **kwargs: Any) -> AsyncEngine:
        return create_engine(url, sqlite_busy_timeout=0, **kwargs)

    monkeypatch.setattr(server.app, "create_engine", no_busy_wait)
    client = await aiohttp_client(create_app(settings))
    writes = _writes(client.app[ENGINE])
    replies = await asyncio.gather(*(file_json(client, k) for k in [kiosk, other_kiosk] * 10))
    assert [r.status for r in replies] == [201] * 20, [r.body for r in replies if r.status != 201]
    assert len({r.body["petition"]["receipt_no"] for r in replies}) == 20
    assert writes.queued > 0, "the filings did not overlap: this test proves nothing"
