"""Database engine lifecycle, the declarative base and the column types every domain shares.

Timestamps are always timezone-aware UTC in Python and in the database; pages convert to
Asia/Seoul for display (``server.timeutil``). SQLite has no timezone type, so ``UtcDateTime``
normalises on the way in and re-attaches UTC on the way out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import DateTime, MetaData, event, func, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

# Stable constraint names so Alembic revisions are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as UTC; naive datetimes are refused (they are always a bug)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        value = value.astimezone(dt.UTC)
        # SQLite stores text; drop tzinfo so every row has the same sortable format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UtcDateTime()}


class CreatedAtMixin:
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# How long an SQLite writer waits for the database: for the write queue below, then (a writer in
# another process, a backup) in SQLite's busy handler; after that it fails with "database is
# locked", which the errors middleware answers 503.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def create_engine(url: str, *, echo: bool = False, sqlite_busy_timeout: float | None = None) -> AsyncEngine:
    """An engine for ``url``. On SQLite, every connection's write transactions go through one
    in-process queue (``SqliteWrites``, waited for up to ``SQLITE_BUSY_TIMEOUT_SECONDS``);
    ``sqlite_busy_timeout`` is SQLite's own wait for its lock (default the same; a test sets 0 to
    prove that no writer of this process ever waits there)."""
    # hide_parameters: an error's text carries its statement's parameters, a resident's name and
    # phone among them, and error texts end up in logs.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    workers: SqliteWorkerThreads | None = None
    if url.startswith("sqlite"):
        busy = SQLITE_BUSY_TIMEOUT_SECONDS if sqlite_busy_timeout is None else sqlite_busy_timeout
        workers = SqliteWorkerThreads(SqliteWrites(SQLITE_BUSY_TIMEOUT_SECONDS))
        kwargs["async_creator"] = workers.connector(url, {"timeout": busy})
    else:
        # No pool_pre_ping: it costs a round trip on every checkout (two per petition filing, one
        # more scheduling wait each on a busy machine). A connection the server lost (a restart,
        # an outage) fails its first statement instead; SQLAlchemy then recognises the disconnect
        # and invalidates every connection pooled before it, and the errors middleware answers
        # that request 503 (the kiosk outbox sends it again), so the pool recovers after one.
        kwargs.update(pool_size=10, max_overflow=20)
    engine = create_async_engine(url, **kwargs)
    if workers is not None:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        engine.sync_engine.maeul_sqlite_workers = workers  # type: ignore[attr-defined]
    return engine


def sqlite_writes(engine: AsyncEngine) -> SqliteWrites | None:
    """The write queue of an SQLite engine (None for other databases)."""
    workers: SqliteWorkerThreads | None = getattr(engine.sync_engine, "maeul_sqlite_workers", None)
    return workers.writes if workers is not None else None


# The statements that take SQLite's write lock (or may: a WITH can end in an INSERT). A plain
# BEGIN (deferred) takes none until its first write, which is then queued itself.
_WRITE_START = re.compile(
    r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|WITH|VACUUM|REINDEX|ANALYZE"
    r"|BEGIN\s+(IMMEDIATE|EXCLUSIVE))\b",
    re.IGNORECASE,
)


class SqliteWrites:
    """One SQLite write transaction at a time per engine, the others queued in arrival order.

    SQLite lets one connection write at a time. Without this queue, every other writer sits in
    SQLite's busy handler on its connection's thread, which polls the lock with sleeps of up to
    100 ms: under concurrent filings a writer can miss many commits in a row and wait for seconds
    while the lock is mostly free. Here a writer waits on an ``asyncio.Lock`` (FIFO, woken the
    moment the previous transaction ends) before its first write statement, and holds it until
    its transaction has ended (commit, rollback, close). It is the engine's concern, not a
    domain's: every write through the engine is queued, so no domain can bypass it and none has
    to know. Reads never wait (WAL).

    It adds no deadlock that SQLite's lock did not already have: a connection holds it exactly
    while it is in a write transaction, plus the moments its first statement and its commit take.
    A writer in another process still meets SQLite's own lock and busy handler."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Write transactions that found another one running and waited for it; for tests.
        self.queued = 0

    def _current(self) -> asyncio.Lock:
        # An engine may outlive one event loop (tests, the CLI); a Lock belongs to one loop. A
        # new loop means the old one is gone, and every connection of it with it.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    async def acquire(self) -> _Held:
        lock = self._current()
        if lock.locked():
            self.queued += 1
        try:
            async with asyncio.timeout(self.timeout):
                await lock.acquire()
        except TimeoutError:
            # What SQLite's busy handler says when it gives up, so callers see one failure.
            raise sqlite3.OperationalError("database is locked") from None
        return _Held(lock, asyncio.get_running_loop())

    @staticmethod
    def release(held: _Held) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is held.loop:
            held.lock.release()
        elif not held.loop.is_closed():
            # A connection stopped off its loop (garbage collection): an asyncio.Lock is not
            # thread-safe.
            held.loop.call_soon_threadsafe(held.lock.release)


@dataclass(frozen=True)
class _Held:
    """The lock a connection took, with its loop: it releases that one, even if the engine has
    moved on to another loop meanwhile."""

    lock: asyncio.Lock
    loop: asyncio.AbstractEventLoop


class _QueuedWritesConnection(aiosqlite.Connection):
    """An aiosqlite connection whose write transactions go through ``SqliteWrites``.

    Every call (statement, commit, rollback, close) passes through ``_execute``: before a
    statement that writes outside a transaction it queues; after any call that leaves the
    connection outside a transaction it lets the next writer go."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], writes: SqliteWrites) -> None:
        super().__init__(connector, 64)  # aiosqlite.connect's iter_chunk_size
        self._writes = writes
        self._held: _Held | None = None

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self._held is None and _starts_write(fn, args):
            self._held = await self._writes.acquire()
        cancelled = False
        try:
            return await super()._execute(fn, *args, **kwargs)
        except asyncio.CancelledError:
            # The worker thread still runs the call: whether it left a transaction open is not
            # known yet. The rollback or the close that follows a cancellation lets go.
            cancelled = True
            raise
        finally:
            if self._held is not None and not cancelled and not self._in_transaction():
                self._let_go()

    def _in_transaction(self) -> bool:
        # Read while this connection's thread is idle: its call has just returned.
        connection = self._connection
        return connection is not None and connection.in_transaction

    def stop(self) -> asyncio.Future[Any] | None:
        # Termination (a cancelled request's connection, shutdown) ends the transaction by
        # closing the connection; the next writer meets SQLite's lock until that is done.
        self._let_go()
        return super().stop()

    def _let_go(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            SqliteWrites.release(held)


def _starts_write(fn: Any, args: tuple[Any, ...]) -> bool:
    if getattr(fn, "__name__", "") == "executescript":
        return True
    return bool(args) and isinstance(args[0], str) and _WRITE_START.match(args[0]) is not None


class SqliteWorkerThreads:
    """The worker thread of every aiosqlite connection an engine opened.

    A connection whose statement was cancelled (a request cut short, a task stopped at shutdown)
    is terminated by SQLAlchemy without waiting: its thread finishes the statement and then posts
    the result to the event loop. If the loop has closed by then, the thread dies with
    "Event loop is closed". ``close_engine`` therefore waits for these threads while the loop
    still runs."""

    def __init__(self, writes: SqliteWrites) -> None:
        self._threads: list[threading.Thread] = []
        self.writes = writes

    def connector(self, url: str, connect_args: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
        """An ``async_creator`` that records each connection's thread before it connects.

        A connect that fails (a missing directory, a full disk) also leaves a thread behind: it
        posts the stop of its half-made connection to the loop, so it is recorded before the
        connect is awaited, not in a "connect" event that only a success fires."""
        path = make_url(url).database or ":memory:"

        async def connect() -> Any:
            def connector() -> sqlite3.Connection:
                return sqlite3.connect(path, check_same_thread=False, **connect_args)

            connection = _QueuedWritesConnection(connector, self.writes)
            # As SQLAlchemy's own aiosqlite connect does: a thread must never keep the process up.
            connection._thread.daemon = True
            self._threads = [t for t in self._threads if t.is_alive()] + [connection._thread]
            return await connection

        return connect

    def alive(self) -> list[threading.Thread]:
        return [t for t in self._threads if t.is_alive()]


# How long a terminated connection may take to finish its last statement (SQLite's busy timeout
# is 30 s, but by shutdown nothing else holds the lock for long).
WORKER_JOIN_SECONDS = 10.0


async def close_engine(engine: AsyncEngine) -> None:
    """Dispose of the engine's pool and, on SQLite, wait for every connection thread to end."""
    await engine.dispose()
    workers: SqliteWorkerThreads | None = getattr(engine.sync_engine, "maeul_sqlite_workers", None)
    if workers is None:
        return
    for thread in workers.alive():
        await asyncio.to_thread(thread.join, WORKER_JOIN_SECONDS)
        if thread.is_alive():
            log.warning("an SQLite connection thread did not end", extra={"thread_name": thread.name})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged petition must survive a power cut at the village hall's server.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


# Residents' requests, recorded messages and meeting recordings live under the data directory:
# readable by the server's own user only.
PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PRIVATE_SUBDIRS = ("media", "recordings")


def make_private(data_dir: Path, database_url: str) -> None:
    """Make everything the server writes from now on owner-only, and the data directory with it.

    Sets the process umask to 077 (so every file the server, SQLite or the recorder creates later
    is 0600 and every directory 0700; an entry point calls this once, before anything is written),
    creates ``data_dir`` and its media and recordings directories 0700 (tightening existing ones),
    and makes an embedded SQLite database and its WAL/SHM files 0600."""
    os.umask(PRIVATE_UMASK)
    for folder in (data_dir, *(data_dir / name for name in PRIVATE_SUBDIRS)):
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        folder.chmod(PRIVATE_DIR_MODE)
    database = sqlite_path(database_url)
    if database is None:
        return
    database.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    for path in (
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
    ):
        if path.exists():
            path.chmod(PRIVATE_FILE_MODE)


def sqlite_path(database_url: str) -> Path | None:
    """The file of a ``sqlite+aiosqlite:///path`` URL (None for other databases or in-memory)."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


_T = TypeVar("_T")

# The key, in every session's ``info``, of the state its sessionmaker keeps for the domains.
_SHARED = "maeul_shared"


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Each session's ``info`` is a shallow copy of this one: every session of this sessionmaker
    # (one per app) shares the one dict under _SHARED (see ``shared_state``).
    return async_sessionmaker(engine, expire_on_commit=False, info={_SHARED: {}})


def shared_state(session: AsyncSession, key: str, factory: Callable[[], _T]) -> _T | None:
    """The object under ``key`` that every session of this session's sessionmaker shares (made
    by ``factory`` the first time), or None for a session not made by ``make_sessionmaker``.

    For state a domain keeps per database and app, in memory, alongside its rows (the kiosks'
    batched sightings), without a module global and without every caller passing it along."""
    shared: dict[str, Any] | None = session.info.get(_SHARED)
    if shared is None:
        return None
    found = shared.get(key)
    if found is None:
        found = shared[key] = factory()
    return found


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed on success and rolled back on any exception."""
    async with sessionmaker() as session, session.begin():
        yield session
