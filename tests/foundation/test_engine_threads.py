"""``close_engine`` waits for every aiosqlite worker thread, a failed connect's too.

A thread that outlives its event loop dies with "Event loop is closed" when it posts its last
result, and pytest reports that against whichever test runs next.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from server.db import close_engine, create_engine


def _recorded(engine: object) -> list[threading.Thread]:
    return list(engine.sync_engine.maeul_sqlite_workers._threads)  # type: ignore[attr-defined]


async def test_a_failed_connect_is_waited_for(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/db.sqlite")
    with pytest.raises(OperationalError):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    threads = _recorded(engine)
    assert len(threads) == 1, "the failed connect's thread was not recorded"
    await close_engine(engine)
    assert not threads[0].is_alive()


async def test_every_connection_thread_ends_at_close(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    async with engine.connect() as first, engine.connect() as second:
        assert await first.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await second.scalar(text("PRAGMA foreign_keys")) == 1
    threads = _recorded(engine)
    assert len(threads) == 2 and all(t.daemon for t in threads)
    await close_engine(engine)
    assert not any(t.is_alive() for t in threads)
